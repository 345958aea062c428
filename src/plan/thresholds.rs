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
//! configuration error (exit 2), never a silent pass. This is the grammar and its types, part of the plan;
//! evaluation on a report is `outputs::gates`.

use crate::analysis::COLD_START_METRICS;
use crate::units::{Micros, parse_duration};
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
        let fix = match crate::plan::diagnostics::nearest(name, all.iter().copied()) {
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
                    || (series.starts_with("node.") && v == crate::plan::sim::NODE_POOL);
                if !ok {
                    let fix = match crate::plan::diagnostics::nearest(
                        v,
                        streams.iter().map(String::as_str),
                    ) {
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
        scope = Some(crate::plan::sim::NODE_POOL.to_string());
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
    diag: &mut crate::plan::diagnostics::Diagnostics<'_>,
    table: &crate::plan::diagnostics::Val<'_>,
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
        let items: Vec<&crate::plan::diagnostics::Val<'_>> = match v.get_ref() {
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
                DeValue::Table(_) => {
                    match crate::plan::diagnostics::de::<AbortRaw>(diag, item, &path) {
                        Some(a) => (a.threshold, a.abort_on_fail, a.delay_abort_eval),
                        None => {
                            refused = true;
                            continue;
                        }
                    }
                }
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

/// Reads the `[thresholds]` table of a gates file (such as `ci/gates.toml`) for a workload with these streams.
pub fn load_file(
    path: &std::path::Path,
    streams: &[String],
) -> Result<Vec<Threshold>, crate::plan::diagnostics::Error> {
    use crate::plan::diagnostics::{Diagnostics, Error};
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
