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
        if tags.is_empty() {
            self.metric.to_string()
        } else {
            format!("{}{{{}}}", self.metric, tags.join(","))
        }
    }

    /// A file-name-safe form: `e2e_latency.upscale.cold`.
    /// A file name for the series: the scope comes from the log (a namespaced `ns/deployment`, or anything a
    /// damaged log holds), so everything but letters, digits, `-` and `_` becomes `_`: no separator, no `..`.
    pub fn file_stem(&self) -> String {
        let mut s = self.metric.to_string();
        if self.scope != ALL {
            s.push('.');
            s.extend(self.scope.chars().map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            }));
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

/// Every series of a run, in a dense `[metric][scope][all|cold|warm]` table: recording is on the hot path
/// (several records per message), so lookups are index arithmetic, not hashing.
#[derive(Debug, Clone)]
pub struct SeriesSet {
    metrics: Vec<&'static str>,
    /// Scope 0 is always `all`.
    scopes: Vec<String>,
    table: Vec<Vec<[Option<Histogram<u64>>; 3]>>,
    /// Beside each series recorded in order ([`record_in_order`](Self::record_in_order)): exact sums and the
    /// lag-1 autocorrelation, in the same `[metric][scope][all|cold|warm]` layout.
    moments: Vec<Vec<[Moments; 3]>>,
    /// Values above a day, clamped to the histogram's top.
    pub clamped: u64,
}

/// Exact running sums of a series in recording order: its total, and its lag-1 autocorrelation, in constant
/// memory. Values are shifted by the first one (the autocorrelation does not change), so the sums stay exact in
/// 128-bit integers for any run the limits allow (50,000,000 values of up to a day in µs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    n: u64,
    first: u64,
    last: i128,
    sum: i128,
    sum_sq: i128,
    sum_lag: i128,
}

impl Moments {
    pub fn push(&mut self, x_us: u64) {
        if self.n == 0 {
            self.first = x_us;
        }
        let y = i128::from(x_us) - i128::from(self.first);
        if self.n > 0 {
            self.sum_lag += self.last * y;
        }
        self.sum += y;
        self.sum_sq += y * y;
        self.last = y;
        self.n += 1;
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// The exact sum of the values (µs).
    pub fn sum_us(&self) -> u128 {
        (self.sum + i128::from(self.n) * i128::from(self.first)) as u128
    }

    /// Lag-1 autocorrelation of the values in recording order: Σ(xᵢ − x̄)(xᵢ₊₁ − x̄) / Σ(xᵢ − x̄)²; 0 for fewer
    /// than 3 values or none that differ.
    pub fn lag1_autocorrelation(&self) -> f64 {
        if self.n < 3 {
            return 0.0;
        }
        let n = self.n as f64;
        let mean = self.sum as f64 / n;
        let var = self.sum_sq as f64 - self.sum as f64 * mean;
        if var <= 0.0 {
            return 0.0;
        }
        // Σ over neighbours of (yᵢ − m)(yᵢ₊₁ − m), with y₁ = 0 (the shift) and yₙ = last.
        let ends = 2.0 * self.sum as f64 - self.last as f64;
        let cov = self.sum_lag as f64 - mean * ends + (n - 1.0) * mean * mean;
        cov / var
    }
}

impl Default for SeriesSet {
    fn default() -> Self {
        SeriesSet {
            metrics: Vec::new(),
            scopes: vec![ALL.to_string()],
            table: Vec::new(),
            moments: Vec::new(),
            clamped: 0,
        }
    }
}

fn cold_index(cold: Option<bool>) -> usize {
    match cold {
        None => 0,
        Some(true) => 1,
        Some(false) => 2,
    }
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
}

impl SeriesSet {
    /// Records into the scope's series and the `all` series; with `cold` given, also into the cold/warm split.
    pub fn record(&mut self, metric: &'static str, scope: &str, cold: Option<bool>, value_us: u64) {
        let s = self.scope_id(scope);
        self.record_at(metric, s, cold, value_us);
    }

    /// As [`record`](Self::record), with the scope already looked up by [`scope_id`](Self::scope_id).
    pub fn record_at(
        &mut self,
        metric: &'static str,
        scope: usize,
        cold: Option<bool>,
        value_us: u64,
    ) {
        let v = if value_us > MAX_US {
            self.clamped += 1;
            MAX_US
        } else {
            value_us
        };
        let m = self.metric_id(metric);
        let row = &mut self.table[m];
        if row.len() < self.scopes.len() {
            row.resize_with(self.scopes.len(), Default::default);
        }
        let scopes: &[usize] = if scope == 0 { &[0] } else { &[scope, 0] };
        let cells: &[usize] = if cold.is_some() {
            &[0, cold_index(cold)]
        } else {
            &[0]
        };
        for &s in scopes {
            for &c in cells {
                row[s][c]
                    .get_or_insert_with(new_histogram)
                    .record(v)
                    .expect("value within bounds");
            }
        }
    }

    /// As [`record_at`](Self::record_at), for a series whose order means something (messages, by completion):
    /// also keeps its exact sum and lag-1 autocorrelation ([`moments`](Self::moments)).
    pub fn record_in_order(
        &mut self,
        metric: &'static str,
        scope: usize,
        cold: Option<bool>,
        value_us: u64,
    ) {
        self.record_at(metric, scope, cold, value_us);
        let m = self.metric_id(metric);
        if self.moments.len() < self.table.len() {
            self.moments.resize_with(self.table.len(), Vec::new);
        }
        let row = &mut self.moments[m];
        if row.len() < self.scopes.len() {
            row.resize_with(self.scopes.len(), Default::default);
        }
        let v = value_us.min(MAX_US);
        let scopes = [scope, 0];
        for &s in if scope == 0 {
            &scopes[1..]
        } else {
            &scopes[..]
        } {
            row[s][0].push(v);
            if cold.is_some() {
                row[s][cold_index(cold)].push(v);
            }
        }
    }

    /// The running sums of a series recorded with [`record_in_order`](Self::record_in_order).
    pub fn moments(&self, metric: &str, scope: &str, cold: Option<bool>) -> Option<&Moments> {
        let m = self.metrics.iter().position(|x| *x == metric)?;
        let s = self.scopes.iter().position(|x| x == scope)?;
        let cell = &self.moments.get(m)?.get(s)?[cold_index(cold)];
        (cell.count() > 0).then_some(cell)
    }

    pub fn scope_id(&mut self, scope: &str) -> usize {
        match self.scopes.iter().position(|s| s == scope) {
            Some(i) => i,
            None => {
                self.scopes.push(scope.to_string());
                self.scopes.len() - 1
            }
        }
    }

    fn metric_id(&mut self, metric: &'static str) -> usize {
        // Metric names are static strings: compare addresses first, then text.
        match self
            .metrics
            .iter()
            .position(|m| std::ptr::eq(*m, metric) || *m == metric)
        {
            Some(i) => i,
            None => {
                self.metrics.push(metric);
                self.table.push(Vec::new());
                self.metrics.len() - 1
            }
        }
    }

    /// Every series, sorted by metric, scope (`all` first), then all/cold/warm.
    pub fn iter(&self) -> impl Iterator<Item = (SeriesKey, &Histogram<u64>)> {
        let mut v: Vec<(SeriesKey, &Histogram<u64>)> = Vec::new();
        for (m, row) in self.table.iter().enumerate() {
            for (s, cells) in row.iter().enumerate() {
                for (c, h) in cells.iter().enumerate() {
                    if let Some(h) = h {
                        let cold = [None, Some(true), Some(false)][c];
                        v.push((
                            SeriesKey {
                                metric: self.metrics[m],
                                scope: self.scopes[s].clone(),
                                cold,
                            },
                            h,
                        ));
                    }
                }
            }
        }
        v.sort_by(|a, b| {
            let rank = |k: &SeriesKey| {
                (
                    k.metric,
                    k.scope != ALL,
                    k.scope.clone(),
                    cold_index(k.cold),
                )
            };
            rank(&a.0).cmp(&rank(&b.0))
        });
        v.into_iter()
    }

    pub fn get(&self, metric: &str, scope: &str, cold: Option<bool>) -> Option<&Histogram<u64>> {
        let m = self.metrics.iter().position(|x| *x == metric)?;
        let s = self.scopes.iter().position(|x| x == scope)?;
        self.table[m].get(s)?[cold_index(cold)].as_ref()
    }

    pub fn stats(&self, metric: &str, scope: &str, cold: Option<bool>) -> Option<Stats> {
        self.get(metric, scope, cold).map(Stats::of)
    }

    pub fn len(&self) -> usize {
        self.table
            .iter()
            .flatten()
            .flatten()
            .filter(|h| h.is_some())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
