//! Named HdrHistogram series: a metric (`e2e_latency`, `cold_start.image_pull`, ...), a scope (a stream or
//! deployment, or `all`), and for message series whether the message was cold, warm, or either (`None`).
//! Values are microseconds, 3 significant digits, from 1 µs to a day.

use hdrhistogram::Histogram;
use serde::Serialize;

pub const SIGFIG: u8 = 3;
pub const MAX_US: u64 = 86_400_000_000;
pub const ALL: &str = "all";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SeriesKey {
    pub metric: &'static str,
    pub scope: String,
    /// `Some(true)` cold messages only, `Some(false)` warm only, `None` all.
    pub cold: Option<bool>,
}

impl SeriesKey {
    /// `e2e_latency{stream:upscale,cold:true}`, the name thresholds and reports use.
    pub fn label(&self) -> String {
        let mut tags = Vec::new();
        if self.scope != ALL {
            tags.push(format!("scope:{}", self.scope));
        }
        if let Some(c) = self.cold {
            tags.push(format!("cold:{c}"));
        }
        if tags.is_empty() { self.metric.to_string() } else { format!("{}{{{}}}", self.metric, tags.join(",")) }
    }

    /// A file-name-safe form: `e2e_latency.upscale.cold`.
    pub fn file_stem(&self) -> String {
        let mut s = self.metric.to_string();
        if self.scope != ALL {
            s.push('.');
            s.push_str(&self.scope);
        }
        match self.cold {
            Some(true) => s.push_str(".cold"),
            Some(false) => s.push_str(".warm"),
            None => {}
        }
        s
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, SIGFIG).expect("valid histogram bounds")
}

#[derive(Debug, Clone, Default)]
pub struct SeriesSet {
    hists: std::collections::HashMap<(&'static str, u16, Option<bool>), Histogram<u64>>,
    scopes: Vec<String>,
    /// Values above a day, clamped to the histogram's top.
    pub clamped: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Stats {
    pub fn of(h: &Histogram<u64>) -> Stats {
        Stats {
            count: h.len(),
            min_us: h.min(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }

    /// Percentile by name, as thresholds write it: `p(95)`, or `p95`, `p99.9`, `med`, `min`, `max`.
    pub fn quantile_us(&self, p: f64) -> Option<u64> {
        match p {
            x if x == 50.0 => Some(self.p50_us),
            x if x == 90.0 => Some(self.p90_us),
            x if x == 95.0 => Some(self.p95_us),
            x if x == 99.0 => Some(self.p99_us),
            x if x == 99.9 => Some(self.p999_us),
            x if x == 100.0 => Some(self.max_us),
            _ => None,
        }
    }
}

impl SeriesSet {
    /// Records into the scope's series and the `all` series; with `cold` given, also into the cold/warm split.
    pub fn record(&mut self, metric: &'static str, scope: &str, cold: Option<bool>, value_us: u64) {
        let v = if value_us > MAX_US {
            self.clamped += 1;
            MAX_US
        } else {
            value_us
        };
        let (s, all) = (self.scope_id(scope), self.scope_id(ALL));
        for id in [s, all] {
            self.one(metric, id, None, v);
            if cold.is_some() {
                self.one(metric, id, cold, v);
            }
        }
    }

    fn scope_id(&mut self, scope: &str) -> u16 {
        match self.scopes.iter().position(|s| s == scope) {
            Some(i) => i as u16,
            None => {
                self.scopes.push(scope.to_string());
                (self.scopes.len() - 1) as u16
            }
        }
    }

    fn one(&mut self, metric: &'static str, scope: u16, cold: Option<bool>, v: u64) {
        self.hists.entry((metric, scope, cold)).or_insert_with(new_histogram).record(v).expect("value within bounds");
    }

    /// Every series, sorted by metric, scope (`all` first), then all/cold/warm.
    pub fn iter(&self) -> impl Iterator<Item = (SeriesKey, &Histogram<u64>)> {
        let mut v: Vec<(SeriesKey, &Histogram<u64>)> = self
            .hists
            .iter()
            .map(|(&(metric, scope, cold), h)| (SeriesKey { metric, scope: self.scopes[scope as usize].clone(), cold }, h))
            .collect();
        v.sort_by(|a, b| {
            let rank = |k: &SeriesKey| (k.metric, k.scope != ALL, k.scope.clone(), k.cold.map(|c| if c { 1 } else { 2 }).unwrap_or(0));
            rank(&a.0).cmp(&rank(&b.0))
        });
        v.into_iter()
    }

    pub fn get(&self, metric: &str, scope: &str, cold: Option<bool>) -> Option<&Histogram<u64>> {
        let s = self.scopes.iter().position(|x| x == scope)? as u16;
        self.hists.iter().find(|((m, sc, c), _)| *m == metric && *sc == s && *c == cold).map(|(_, h)| h)
    }

    pub fn stats(&self, metric: &str, scope: &str, cold: Option<bool>) -> Option<Stats> {
        self.get(metric, scope, cold).map(Stats::of)
    }

    pub fn len(&self) -> usize {
        self.hists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hists.is_empty()
    }
}
