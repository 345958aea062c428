//! Thresholds: pass/fail conditions on a run's metrics, in the grammar k6 users know.
//!
//! ```toml
//! [thresholds]
//! "e2e_latency{stream:upscale,cold:true}" = ["p(95) < 5m", "max < 8m"]
//! "lost" = ["count == 0"]
//! "cold_start.image_pull" = ["p(95) < 60s"]
//! "scale_to_zero" = ["max < 12m"]
//! ```
//!
//! A key is a metric with optional `{tag:value,...}` filters; each condition is `aggregation operator value`.
//! Everything is checked when the workload is loaded: an unknown metric, tag, stream or aggregation is a
//! configuration error (exit 2), never a silent pass. Evaluation is a pure function of the [`RunReport`].

use crate::analysis::{COLD_START_METRICS, RunReport};
use crate::units::{Micros, parse_duration};
use serde::Serialize;
use std::fmt;

/// Histogram-backed metrics (values in µs). `scale_to_zero` is an alias of `scale.to_zero_replicas`.
pub const SERIES_METRICS: [&str; 23] = [
    "e2e_latency",
    "publish_delay",
    "pacer_lateness",
    "capacity_wait",
    "queueing",
    "processing",
    COLD_START_METRICS[0],
    COLD_START_METRICS[1],
    COLD_START_METRICS[2],
    COLD_START_METRICS[3],
    COLD_START_METRICS[4],
    COLD_START_METRICS[5],
    COLD_START_METRICS[6],
    COLD_START_METRICS[7],
    COLD_START_METRICS[8],
    "scale.time_to_first_ready",
    "scale.to_zero_replicas",
    "scale.to_zero_nodes",
    "node.boot",
    "node.register",
    "node.ready",
    "node.gpu_driver",
    "kubelet.image_pull",
];

/// Message series: the ones split cold and warm.
const MESSAGE_SERIES: [&str; 5] = [
    "e2e_latency",
    "publish_delay",
    "capacity_wait",
    "queueing",
    "processing",
];

/// Run-level counts and amounts.
pub const COUNTERS: [&str; 14] = [
    "scheduled",
    "published",
    "publish_failed",
    "completed",
    "duplicates",
    "redelivered",
    "lost",
    "late",
    "cold_starts",
    "cost_usd",
    "scale_up_failures",
    "gpu_hours",
    "idle_gpu_hours",
    "publish_shortfall",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    Series {
        name: &'static str,
        scope: Option<String>,
        cold: Option<bool>,
    },
    Counter(&'static str),
    /// A k6 Rate metric: the fraction of scheduled messages with a property (0 to 1), as `rate`, and how many
    /// had it, as `count`.
    Ratio(&'static str),
}

/// Rate metrics, as k6's `http_req_failed`: `"messages_lost" = ["rate < 0.01"]` is under 1% of the scheduled
/// messages lost; `publishes_failed` the same for messages whose publish failed.
pub const RATIOS: [&str; 2] = ["messages_lost", "publishes_failed"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    Avg,
    Min,
    Med,
    Max,
    Percentile(f64),
    Count,
    Rate,
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub agg: Agg,
    pub op: Op,
    /// µs for durations, a plain number otherwise.
    pub value: f64,
    pub text: String,
    /// Stop the run as soon as this condition fails (checked during the run), still writing results.
    pub abort_on_fail: bool,
    /// Do not judge an aborting condition before this much of the run has passed.
    pub delay_abort_eval: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The key as written, e.g. `e2e_latency{stream:upscale,cold:true}`.
    pub key: String,
    pub metric: Metric,
    pub conditions: Vec<Condition>,
}

/// One condition's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub metric: String,
    pub condition: String,
    pub passed: bool,
    /// The measured value, rendered with its unit; `None` when the series has no samples.
    pub measured: Option<String>,
    pub measured_raw: Option<f64>,
    pub note: Option<String>,
}

impl Outcome {
    /// `p(95) = 6m33s, wanted p(95) < 5m`
    pub fn describe(&self) -> String {
        match &self.measured {
            Some(m) => format!(
                "{} = {m}; wanted {}",
                agg_text(&self.condition),
                self.condition
            ),
            None => format!("no samples; wanted {}", self.condition),
        }
    }
}

fn agg_text(condition: &str) -> &str {
    condition
        .split([' ', '<', '>', '=', '!'])
        .next()
        .unwrap_or(condition)
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        })
    }
}

/// Parses a threshold key: `metric` or `metric{tag:value,...}`; `streams` are the workload's streams.
pub fn parse_key(key: &str, streams: &[String]) -> Result<Metric, (String, Option<String>)> {
    let key = key.trim();
    let (name, tags) = match key.split_once('{') {
        Some((n, rest)) => {
            let Some(inner) = rest.strip_suffix('}') else {
                return Err((
                    format!("`{key}`: the tag list is not closed with `}}`"),
                    Some("write `metric{tag:value}`".into()),
                ));
            };
            (n.trim(), Some(inner))
        }
        None => (key, None),
    };
    let name = if name == "scale_to_zero" {
        "scale.to_zero_replicas"
    } else {
        name
    };
    let total = RATIOS
        .iter()
        .find(|r| **r == name)
        .map(|&r| Metric::Ratio(r))
        .or_else(|| {
            COUNTERS
                .iter()
                .find(|c| **c == name)
                .map(|&c| Metric::Counter(c))
        });
    if let Some(total) = total {
        if tags.is_some() {
            return Err((
                format!("`{name}` is a run total and takes no tags"),
                Some(format!("write `\"{name}\"`")),
            ));
        }
        return Ok(total);
    }
    let Some(&series) = SERIES_METRICS.iter().find(|m| **m == name) else {
        let all: Vec<&str> = SERIES_METRICS
            .iter()
            .chain(COUNTERS.iter())
            .chain(RATIOS.iter())
            .copied()
            .chain(["scale_to_zero"])
            .collect();
        let fix = match crate::workload::nearest(name, all.iter().copied()) {
            Some(n) => format!("did you mean `{n}`?"),
            None => format!("metrics are {}", all.join(", ")),
        };
        return Err((format!("unknown metric `{name}`"), Some(fix)));
    };
    let (mut scope, mut cold) = (None, None);
    for tag in tags
        .into_iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let Some((k, v)) = tag.split_once(':') else {
            return Err((
                format!("tag `{tag}` has no value"),
                Some("write tags as `name:value`, e.g. `stream:upscale`".into()),
            ));
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "stream" | "deployment" | "scope" => {
                let ok = streams.iter().any(|s| s == v)
                    || (series.starts_with("node.") && v == crate::sim::NODE_POOL);
                if !ok {
                    let fix = match crate::workload::nearest(v, streams.iter().map(String::as_str))
                    {
                        Some(n) => format!("did you mean `{n}`?"),
                        None => format!("streams are {}", streams.join(", ")),
                    };
                    return Err((format!("no stream is named `{v}`"), Some(fix)));
                }
                scope = Some(v.to_string());
            }
            "cold" => {
                if !MESSAGE_SERIES.contains(&series) {
                    return Err((
                        format!("`cold` applies to message metrics only, not `{series}`"),
                        Some(format!("message metrics are {}", MESSAGE_SERIES.join(", "))),
                    ));
                }
                cold = Some(match v {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err((
                            format!("`cold:{v}` must be `cold:true` or `cold:false`"),
                            None,
                        ));
                    }
                });
            }
            other => {
                return Err((
                    format!("unknown tag `{other}`"),
                    Some("tags are `stream` (or `deployment`) and `cold`".into()),
                ));
            }
        }
    }
    if series.starts_with("node.") && scope.is_none() {
        scope = Some(crate::sim::NODE_POOL.to_string());
    }
    Ok(Metric::Series {
        name: series,
        scope,
        cold,
    })
}

/// Parses a condition such as `p(95) < 5m`, `count == 0`, `rate < 0.5`, `value <= 3.20`.
pub fn parse_condition(text: &str, metric: &Metric) -> Result<Condition, (String, Option<String>)> {
    let t = text.trim();
    // k6's operators, `===` included (the same as `==` here).
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("===", Op::Eq),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let Some((pos, len, op)) = ops
        .iter()
        .filter_map(|(s, op)| t.find(s).map(|p| (p, s.len(), *op)))
        .min_by_key(|x| (x.0, std::cmp::Reverse(x.1)))
    else {
        return Err((
            format!("`{t}` has no comparison"),
            Some(
                "write `aggregation operator value`, e.g. `p(95) < 5m` (operators < <= > >= == === !=)"
                    .into(),
            ),
        ));
    };
    let (agg_s, value_s) = (t[..pos].trim(), t[pos + len..].trim());
    let agg = match agg_s {
        "avg" => Agg::Avg,
        "min" => Agg::Min,
        "med" => Agg::Med,
        "max" => Agg::Max,
        "count" => Agg::Count,
        "rate" => Agg::Rate,
        "value" => Agg::Value,
        p => {
            let inner = p
                .strip_prefix("p(")
                .and_then(|x| x.strip_suffix(')'))
                .or_else(|| p.strip_prefix('p'));
            // `p(0)` (the minimum) to `p(100)` (the maximum), as k6 accepts.
            match inner.and_then(|n| n.trim().parse::<f64>().ok()) {
                Some(n) if (0.0..=100.0).contains(&n) => Agg::Percentile(n),
                Some(n) => {
                    return Err((
                        format!("`{p}`: a percentile must be from 0 to 100, got {n}"),
                        Some("e.g. `p(95)` or `p(99.9)`".into()),
                    ));
                }
                None => {
                    return Err((
                        format!("unknown aggregation `{p}`"),
                        Some(
                            "aggregations are avg, min, med, max, p(N), count, rate and value"
                                .into(),
                        ),
                    ));
                }
            }
        }
    };
    let value = match (metric, agg) {
        (Metric::Series { .. }, Agg::Count | Agg::Rate)
        | (Metric::Ratio(_), Agg::Count | Agg::Rate)
        | (Metric::Counter(_), Agg::Count | Agg::Rate | Agg::Value) => value_s
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                (
                    format!("`{value_s}` is not a number"),
                    Some(format!(
                        "`{agg_s}` compares with a plain number, e.g. `{agg_s} {op} 10`"
                    )),
                )
            })?,
        (Metric::Series { .. }, Agg::Value) => {
            return Err((
                "`value` applies to run totals such as `cost_usd`".into(),
                Some("for a latency use avg, min, med, max or p(N)".into()),
            ));
        }
        (Metric::Counter(c), _) => {
            return Err((
                format!("`{agg_s}` does not apply to the run total `{c}`"),
                Some("use `count`, `rate` or `value`".into()),
            ));
        }
        (Metric::Ratio(r), _) => {
            return Err((
                format!("`{agg_s}` does not apply to the rate metric `{r}`"),
                Some("use `rate` (the fraction, 0 to 1, e.g. `rate < 0.01`) or `count`".into()),
            ));
        }
        // A bare number on a time metric is milliseconds, as in k6 (`p(95) < 300000` is 5 minutes).
        (Metric::Series { .. }, _) => match value_s.parse::<f64>() {
            Ok(ms) if ms.is_finite() && ms >= 0.0 => ms * 1_000.0,
            _ => parse_duration(value_s).map(|d| d.0 as f64).map_err(|e| {
                (
                    e,
                    Some(
                        "write a duration, e.g. `5m`, `60s`, `50ms` (a bare number is milliseconds, as in k6)"
                            .into(),
                    ),
                )
            })?,
        },
    };
    Ok(Condition {
        agg,
        op,
        value,
        text: t.to_string(),
        abort_on_fail: false,
        delay_abort_eval: Micros::ZERO,
    })
}

/// Reads a `[thresholds]` table: keys are metrics, values a condition or a list of them. Problems go to `diag`
/// with their line and column.
pub(crate) fn parse_table(
    diag: &mut crate::workload::diagnostics::Diagnostics<'_>,
    table: &crate::workload::Val<'_>,
    streams: &[String],
) -> Vec<Threshold> {
    use toml::de::DeValue;
    let Some(t) = table.get_ref().as_table() else {
        diag.push(
            Some(table.span()),
            "thresholds",
            "`thresholds` must be a table",
            Some("write it as `[thresholds]`".into()),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in t.iter() {
        let key = k.get_ref().to_string();
        let path = format!("thresholds.\"{key}\"");
        let metric = match parse_key(&key, streams) {
            Ok(m) => m,
            Err((msg, fix)) => {
                diag.push(Some(k.span()), &path, msg, fix);
                continue;
            }
        };
        let items: Vec<&crate::workload::Val<'_>> = match v.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            _ => vec![v],
        };
        let mut conditions = Vec::new();
        // One mistake is one problem: a key whose conditions were all refused is not also "without conditions".
        let mut refused = false;
        for item in items {
            // A condition is a string, or a table that adds `abort_on_fail` and `delay_abort_eval` (as k6 does).
            let (text, abort, delay) = match item.get_ref() {
                DeValue::String(s) => (s.to_string(), false, Micros::ZERO),
                DeValue::Table(_) => match crate::workload::de::<AbortRaw>(diag, item, &path) {
                    Some(a) => (a.threshold, a.abort_on_fail, a.delay_abort_eval),
                    None => {
                        refused = true;
                        continue;
                    }
                },
                _ => {
                    diag.push(
                        Some(item.span()),
                        &path,
                        "a condition must be a string or a table",
                        Some("e.g. `[\"p(95) < 5m\", { threshold = \"max < 8m\", abort_on_fail = true }]`".into()),
                    );
                    refused = true;
                    continue;
                }
            };
            match parse_condition(&text, &metric) {
                Ok(c) => conditions.push(Condition {
                    abort_on_fail: abort,
                    delay_abort_eval: delay,
                    ..c
                }),
                Err((msg, fix)) => {
                    diag.push(Some(item.span()), &path, msg, fix);
                    refused = true;
                }
            }
        }
        if conditions.is_empty() {
            if !refused {
                diag.push(
                    Some(v.span()),
                    &path,
                    "no conditions",
                    Some("list at least one, e.g. `[\"p(95) < 5m\"]`".into()),
                );
            }
            continue;
        }
        out.push(Threshold {
            key,
            metric,
            conditions,
        });
    }
    out
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AbortRaw {
    threshold: String,
    #[serde(default)]
    abort_on_fail: bool,
    #[serde(default)]
    delay_abort_eval: Micros,
}

/// Only the conditions that abort a run, for checking during it.
pub fn aborting(thresholds: &[Threshold]) -> Vec<Threshold> {
    thresholds
        .iter()
        .filter_map(|t| {
            let conditions: Vec<Condition> = t
                .conditions
                .iter()
                .filter(|c| c.abort_on_fail)
                .cloned()
                .collect();
            (!conditions.is_empty()).then(|| Threshold {
                conditions,
                ..t.clone()
            })
        })
        .collect()
}

/// During a run: the first aborting condition that fails on the results so far, once its delay has passed.
pub fn first_abort(aborting: &[Threshold], partial: &RunReport, now_us: u64) -> Option<String> {
    let due: Vec<Threshold> = aborting
        .iter()
        .map(|t| Threshold {
            conditions: t
                .conditions
                .iter()
                .filter(|c| now_us >= c.delay_abort_eval.0)
                .cloned()
                .collect(),
            ..t.clone()
        })
        .filter(|t| !t.conditions.is_empty())
        .collect();
    evaluate(&due, partial)
        .into_iter()
        .find(|o| !o.passed)
        .map(|o| {
            format!(
                "`{} {}` failed at {} ({})",
                o.metric,
                o.condition,
                crate::units::human_us(now_us),
                o.describe()
            )
        })
}

/// Reads the `[thresholds]` table of a gates file (such as `ci/gates.toml`) for a workload with these streams.
pub fn load_file(
    path: &std::path::Path,
    streams: &[String],
) -> Result<Vec<Threshold>, crate::workload::Error> {
    use crate::workload::{Error, diagnostics::Diagnostics};
    let src =
        crate::limits::read_text(path, crate::limits::MAX_TEXT_FILE_BYTES).map_err(|error| {
            Error::ReadFailed {
                role: "gates file",
                path: path.to_path_buf(),
                error,
            }
        })?;
    let mut diag = Diagnostics::new(path, &src);
    let root = match toml::de::DeTable::parse(&src) {
        Ok(r) => r,
        Err(e) => {
            diag.push(
                e.span(),
                "",
                format!("not valid TOML: {}", e.message().trim()),
                None,
            );
            return Err(Error::Invalid {
                problems: diag.problems,
            });
        }
    };
    let mut thresholds = Vec::new();
    for (k, v) in root.get_ref().iter() {
        match k.get_ref().as_ref() {
            "thresholds" => thresholds = parse_table(&mut diag, v, streams),
            other => diag.push(
                Some(k.span()),
                other,
                format!("a gates file holds only `[thresholds]`, not `{other}`"),
                Some("move other keys to the workload".into()),
            ),
        }
    }
    if diag.problems.is_empty() {
        Ok(thresholds)
    } else {
        Err(Error::Invalid {
            problems: diag.problems,
        })
    }
}

fn compare(op: Op, a: f64, b: f64) -> bool {
    match op {
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        Op::Eq => a == b,
        Op::Ne => a != b,
    }
}

fn counter_value(r: &RunReport, name: &str) -> f64 {
    let d = &r.delivery;
    match name {
        "scheduled" => d.scheduled as f64,
        "published" => d.published as f64,
        "publish_failed" => d.publish_failed as f64,
        "completed" => d.completed as f64,
        "duplicates" => d.duplicates as f64,
        "redelivered" => d.redelivered as f64,
        "lost" => d.lost as f64,
        "late" => d.late as f64,
        "cold_starts" => r.pods.iter().filter(|p| !p.preexisting).count() as f64,
        "cost_usd" => r.cost.cost_usd,
        "scale_up_failures" => r
            .problems
            .iter()
            .filter(|p| p.is_failed_scale_up())
            .map(|p| f64::from(p.count))
            .sum(),
        "gpu_hours" => r.cost.gpu_seconds / 3600.0,
        "idle_gpu_hours" => r.cost.gpu_idle_seconds / 3600.0,
        "publish_shortfall" => d.publish_shortfall.unwrap_or(0.0),
        _ => unreachable!("counter names are validated when parsed"),
    }
}

/// Evaluates every condition of every threshold against a run.
pub fn evaluate(thresholds: &[Threshold], r: &RunReport) -> Vec<Outcome> {
    let run_secs = (r.run.end_us as f64 / 1e6).max(1e-9);
    let mut out = Vec::new();
    for t in thresholds {
        for c in &t.conditions {
            let (measured, shown, note) = match &t.metric {
                Metric::Counter(name)
                    if matches!(*name, "cost_usd" | "gpu_hours" | "idle_gpu_hours")
                        && !r.cost.observed =>
                {
                    (
                        None,
                        None,
                        r.cost.unknown_why().map(|w| format!("GPU cost {w}")),
                    )
                }
                Metric::Counter("publish_shortfall") if r.delivery.publish_shortfall.is_none() => (
                    None,
                    None,
                    Some(
                        "no publishing rate to fall short of (the schedule spans under a second)"
                            .into(),
                    ),
                ),
                Metric::Ratio(name) => {
                    let d = &r.delivery;
                    let had = match *name {
                        "messages_lost" => d.lost,
                        _ => d.publish_failed,
                    } as f64;
                    if c.agg == Agg::Count {
                        (Some(had), Some(format_plain(had)), None)
                    } else if d.scheduled == 0 {
                        (
                            None,
                            None,
                            Some("no message was scheduled, so there is no fraction".into()),
                        )
                    } else {
                        let v = had / d.scheduled as f64;
                        (Some(v), Some(format_plain(v)), None)
                    }
                }
                Metric::Counter(name) => {
                    let v = counter_value(r, name);
                    let m = if c.agg == Agg::Rate { v / run_secs } else { v };
                    (Some(m), Some(format_plain(m)), None)
                }
                Metric::Series { name, scope, cold } => {
                    match r.series.get(name, scope.as_deref().unwrap_or("all"), *cold) {
                        None => (
                            None,
                            None,
                            Some("the series has no samples in this run".to_string()),
                        ),
                        Some(h) => {
                            let (v, is_dur) = match c.agg {
                                Agg::Avg => (h.mean(), true),
                                Agg::Min => (h.min() as f64, true),
                                Agg::Med => (h.value_at_quantile(0.5) as f64, true),
                                Agg::Max => (h.max() as f64, true),
                                Agg::Percentile(p) => (h.value_at_quantile(p / 100.0) as f64, true),
                                Agg::Count => (h.len() as f64, false),
                                Agg::Rate => (h.len() as f64 / run_secs, false),
                                Agg::Value => unreachable!("rejected when parsed"),
                            };
                            // The reports' one duration form, unless at three figures it reads as the limit
                            // itself (`3m00s` against `< 3m`): then the exact form says which side it fell.
                            // Rounding is monotone, so a rounded value that differs from the rounded limit is on
                            // the same side of it as the measured one.
                            let shown = if is_dur {
                                let us = v.round() as u64;
                                let human = crate::units::human_us(us);
                                if human == crate::units::human_us(c.value.round() as u64) {
                                    Micros(us).to_string()
                                } else {
                                    human
                                }
                            } else {
                                format_plain(v)
                            };
                            (Some(v), Some(shown), None)
                        }
                    }
                }
            };
            // An empty series violates nothing: say so rather than fail on missing data.
            let passed = measured.is_none_or(|m| compare(c.op, m, c.value));
            out.push(Outcome {
                metric: t.key.clone(),
                condition: c.text.clone(),
                passed,
                measured: shown,
                measured_raw: measured,
                note,
            });
        }
    }
    out
}

fn format_plain(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> Vec<String> {
        vec!["upscale".into(), "comic".into()]
    }

    #[test]
    fn keys_parse_with_tags_and_aliases() {
        assert_eq!(
            parse_key("e2e_latency{stream:upscale,cold:true}", &streams()).unwrap(),
            Metric::Series {
                name: "e2e_latency",
                scope: Some("upscale".into()),
                cold: Some(true)
            }
        );
        assert_eq!(
            parse_key("scale_to_zero", &streams()).unwrap(),
            Metric::Series {
                name: "scale.to_zero_replicas",
                scope: None,
                cold: None
            }
        );
        assert_eq!(
            parse_key("lost", &streams()).unwrap(),
            Metric::Counter("lost")
        );
    }

    #[test]
    fn bad_keys_name_the_problem() {
        let e = |k: &str| parse_key(k, &streams()).unwrap_err();
        assert!(e("e2e_latncy").1.unwrap().contains("`e2e_latency`"));
        assert!(
            e("e2e_latency{stream:upscal}")
                .0
                .contains("no stream is named `upscal`")
        );
        assert!(e("e2e_latency{zone:a}").0.contains("unknown tag `zone`"));
        assert!(
            e("cold_start.image_pull{cold:true}")
                .0
                .contains("message metrics only")
        );
        assert!(e("lost{stream:upscale}").0.contains("takes no tags"));
        assert!(e("e2e_latency{stream:upscale").0.contains("not closed"));
    }

    #[test]
    fn only_aborting_conditions_are_checked_during_a_run() {
        let metric = Metric::Counter("lost");
        let mut c = parse_condition("count == 0", &metric).unwrap();
        let plain = Threshold {
            key: "lost".into(),
            metric: metric.clone(),
            conditions: vec![c.clone()],
        };
        c.abort_on_fail = true;
        let abort = Threshold {
            key: "lost".into(),
            metric,
            conditions: vec![c],
        };
        assert!(aborting(&[plain]).is_empty());
        assert_eq!(aborting(&[abort]).len(), 1);
    }

    #[test]
    fn conditions_parse_and_check_units() {
        let s = Metric::Series {
            name: "e2e_latency",
            scope: None,
            cold: None,
        };
        let c = parse_condition("p(95) < 5m", &s).unwrap();
        assert_eq!(
            (c.agg, c.op, c.value),
            (Agg::Percentile(95.0), Op::Lt, 300e6)
        );
        assert_eq!(
            parse_condition("p99.9<=1s", &s).unwrap().agg,
            Agg::Percentile(99.9)
        );
        assert_eq!(parse_condition("count >= 10", &s).unwrap().value, 10.0);
        let e = |t: &str, m: &Metric| parse_condition(t, m).unwrap_err().0;
        assert!(e("p(95) < 5 minutes", &s).contains("unit"));
        assert!(e("p(101) < 5m", &s).contains("from 0 to 100"));
        assert!(e("mean < 5m", &s).contains("unknown aggregation `mean`"));
        assert!(e("p(95) 5m", &s).contains("no comparison"));
        let lost = Metric::Counter("lost");
        assert_eq!(parse_condition("count == 0", &lost).unwrap().op, Op::Eq);
        assert!(e("p(95) < 1", &lost).contains("does not apply"));
        assert!(e("count == none", &lost).contains("not a number"));
    }

    /// What k6 accepts is accepted with k6's meaning: a bare number on a time metric is milliseconds, `p(0)` and
    /// `p(100)` exist, `===` is `==`, and rate metrics take `rate < 0.01` as a fraction.
    #[test]
    fn k6_habits_keep_their_meaning() {
        let e2e = parse_key("e2e_latency", &["upscale".into()]).unwrap();
        let c = parse_condition("p(95)<300000", &e2e).unwrap();
        assert_eq!(
            (c.agg, c.op, c.value),
            (Agg::Percentile(95.0), Op::Lt, 300e6)
        );
        assert_eq!(
            parse_condition("p(0) > 0", &e2e).unwrap().agg,
            Agg::Percentile(0.0)
        );
        assert_eq!(
            parse_condition("p(100) < 1h", &e2e).unwrap().agg,
            Agg::Percentile(100.0)
        );
        assert!(parse_condition("p(101) < 1h", &e2e).is_err());
        let lost = parse_key("lost", &[]).unwrap();
        assert_eq!(parse_condition("count===0", &lost).unwrap().op, Op::Eq);
        let ratio = parse_key("messages_lost", &[]).unwrap();
        assert_eq!(ratio, Metric::Ratio("messages_lost"));
        assert_eq!(parse_condition("rate<0.01", &ratio).unwrap().value, 0.01);
        assert!(
            parse_condition("p(95) < 1", &ratio)
                .unwrap_err()
                .0
                .contains("rate metric")
        );
    }
}
