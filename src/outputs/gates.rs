//! Thresholds evaluated: the plan's conditions (`plan::thresholds`, the k6 grammar) on a [`RunReport`], at the end
//! of a run and, for those with `abort_on_fail`, on the results so far. A pure function of the report.

use crate::analysis::{Outcome, RunReport};
use crate::plan::thresholds::*;
use crate::units::Micros;

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
