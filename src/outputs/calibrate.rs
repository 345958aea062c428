//! Calibration: a run's measured phase histograms become a simulator profile, so what-if answers rest on the
//! team's own numbers. Each measured phase becomes an empirical distribution. Phases with too few samples keep the
//! defaults, and the profile's header says where and when it was measured.
//!
//! The metric lag is measured from the run's `metric_read` events (what the autoscaler saw) against the true
//! backlog (published, not completed): when the value it reads changes, how long ago the backlog reached that value.
//! Those lags are seen at the autoscaler's polls, and the simulator polls on top of the lag, so half the observed
//! poll interval is taken off. The profile then reads the live backlog that much late (`sample_period = "0s"`,
//! `delay` = the lags), which reproduces the staleness without guessing how it splits into sampling and delay.

use crate::analysis::RunReport;
use crate::analysis::series::ALL;
use crate::units::Micros;
use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Fewer samples than this and a phase keeps the default.
pub const MIN_SAMPLES: u64 = 5;
/// The most points a calibrated distribution lists.
pub const MAX_POINTS: usize = 40;

pub struct Calibration {
    /// The profile, as TOML.
    pub text: String,
    /// `sim.section.key (scope): samples` for what was calibrated.
    pub used: Vec<String>,
    /// What was not, and why.
    pub skipped: Vec<String>,
}

/// A distribution in the workload language from a histogram: the measured values with their counts when there are
/// few, otherwise `MAX_POINTS` quantile midpoints (equally likely).
pub fn distribution(h: &Histogram<u64>) -> String {
    let values: Vec<(u64, u64)> = h
        .iter_recorded()
        .map(|v| {
            (
                h.median_equivalent(v.value_iterated_to()),
                v.count_at_value(),
            )
        })
        .collect();
    if values.len() <= MAX_POINTS {
        let parts: Vec<String> = values
            .iter()
            .map(|(v, c)| format!("{}:{c}", Micros(*v)))
            .collect();
        return format!("histogram({})", parts.join(", "));
    }
    let parts: Vec<String> = (0..MAX_POINTS)
        .map(|k| {
            Micros(h.median_equivalent(h.value_at_quantile((k as f64 + 0.5) / MAX_POINTS as f64)))
                .to_string()
        })
        .collect();
    format!("empirical({})", parts.join(", "))
}

pub fn calibrate(r: &RunReport, measured_at: &str) -> Calibration {
    let mut used = Vec::new();
    let mut skipped = Vec::new();
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut put = |section: String,
                   key: &str,
                   metric: &str,
                   scope: &str,
                   used: &mut Vec<String>,
                   skipped: &mut Vec<String>| {
        let label = format!("{section}.{key} ({metric}, {scope})");
        match r.series.get(metric, scope, None) {
            Some(h) if h.len() >= MIN_SAMPLES => {
                used.push(format!("{label}: {} samples", h.len()));
                let entry = match sections.iter_mut().find(|(s, _)| *s == section) {
                    Some(e) => e,
                    None => {
                        sections.push((section.clone(), Vec::new()));
                        sections.last_mut().expect("just pushed")
                    }
                };
                entry
                    .1
                    .push((key.to_string(), format!("\"{}\"", distribution(h))));
            }
            Some(h) => skipped.push(format!(
                "{label}: only {} samples (at least {MIN_SAMPLES} needed)",
                h.len()
            )),
            None => skipped.push(format!("{label}: not measured in this run")),
        }
    };
    let pool = crate::plan::sim::NODE_POOL;
    put(
        "sim.autoscaler".into(),
        "node_provision",
        "node.register",
        pool,
        &mut used,
        &mut skipped,
    );
    put(
        "sim.autoscaler".into(),
        "node_ready",
        "node.ready",
        pool,
        &mut used,
        &mut skipped,
    );
    put(
        "sim.autoscaler".into(),
        "gpu_driver",
        "node.gpu_driver",
        pool,
        &mut used,
        &mut skipped,
    );
    put(
        "sim.kubelet".into(),
        "image_pull",
        "kubelet.image_pull",
        ALL,
        &mut used,
        &mut skipped,
    );
    put(
        "sim.kubelet".into(),
        "container_start",
        "cold_start.container_start",
        ALL,
        &mut used,
        &mut skipped,
    );
    put(
        "sim.worker".into(),
        "model_load",
        "cold_start.model_load",
        ALL,
        &mut used,
        &mut skipped,
    );
    put(
        "sim.worker".into(),
        "readiness_delay",
        "cold_start.ready",
        ALL,
        &mut used,
        &mut skipped,
    );
    put(
        "sim.worker".into(),
        "processing",
        "processing",
        ALL,
        &mut used,
        &mut skipped,
    );
    for s in &r.run.streams {
        put(
            format!("sim.pipeline.{s}.worker"),
            "processing",
            "processing",
            s,
            &mut used,
            &mut skipped,
        );
        put(
            format!("sim.pipeline.{s}.worker"),
            "model_load",
            "cold_start.model_load",
            s,
            &mut used,
            &mut skipped,
        );
        put(
            format!("sim.pipeline.{s}.kubelet"),
            "image_pull",
            "kubelet.image_pull",
            s,
            &mut used,
            &mut skipped,
        );
    }
    match (
        r.series.get("metrics.lag", ALL, None),
        r.series.get("metrics.poll_interval", ALL, None),
    ) {
        (Some(lag), Some(poll)) if lag.len() >= MIN_SAMPLES => {
            let half_poll = poll.value_at_quantile(0.5) / 2;
            let mut shifted = crate::analysis::series::new_histogram();
            for v in lag.iter_recorded() {
                let value = lag
                    .median_equivalent(v.value_iterated_to())
                    .saturating_sub(half_poll);
                shifted
                    .record_n(value, v.count_at_value())
                    .expect("in range");
            }
            used.push(format!(
                "sim.metrics.delay (metrics.lag less half the {} poll interval): {} samples",
                Micros(half_poll * 2),
                lag.len()
            ));
            sections.push((
                "sim.metrics".into(),
                vec![
                    ("sample_period".into(), "\"0s\"".into()),
                    ("delay".into(), format!("\"{}\"", distribution(&shifted))),
                ],
            ));
        }
        (Some(lag), _) => skipped.push(format!(
            "sim.metrics (metric lag): only {} samples",
            lag.len()
        )),
        _ => skipped.push(
            "sim.metrics (metric lag): the run has no metric_read events (the autoscaler's view)"
                .into(),
        ),
    }
    let mut text = String::new();
    writeln!(
        text,
        "# imagen-load simulator profile, calibrated by `imagen-load calibrate` on {measured_at}"
    )
    .unwrap();
    writeln!(
        text,
        "# from run `{}` (workload `{}`, target `{}`, {} observed):",
        r.run.run_id,
        r.run.workload,
        r.run.target,
        Micros(r.run.end_us)
    )
    .unwrap();
    writeln!(
        text,
        "# {} pods that cold-started, {} nodes created, {} completed messages.",
        r.pods.iter().filter(|p| !p.preexisting).count(),
        r.cost.nodes_created,
        r.delivery.completed
    )
    .unwrap();
    writeln!(
        text,
        "# Phases with fewer than {MIN_SAMPLES} samples keep the values this profile is layered on."
    )
    .unwrap();
    writeln!(text, "# Use it with `[sim] profile = \"<this file>\"`.").unwrap();
    if r.run.price_per_gpu_hour_usd > 0.0 {
        let a = match sections.iter_mut().find(|(s, _)| s == "sim.autoscaler") {
            Some(e) => e,
            None => {
                sections.insert(0, ("sim.autoscaler".into(), Vec::new()));
                &mut sections[0]
            }
        };
        a.1.push((
            "price_per_gpu_hour_usd".into(),
            format!("{}", r.run.price_per_gpu_hour_usd),
        ));
    }
    for (section, keys) in &sections {
        writeln!(text, "\n[{section}]").unwrap();
        for (k, v) in keys {
            writeln!(text, "{k} = {v}").unwrap();
        }
    }
    Calibration {
        text,
        used,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::series::new_histogram;

    #[test]
    fn few_values_keep_their_counts_many_become_quantiles() {
        let mut h = new_histogram();
        for (v, n) in [(30_000_000, 3), (45_000_000, 1)] {
            h.record_n(v, n).unwrap();
        }
        let d = distribution(&h);
        assert!(
            d.starts_with("histogram(") && d.contains(":3") && d.contains(":1"),
            "{d}"
        );
        assert!(crate::units::parse_dist(&d).is_ok(), "{d} parses back");
        let mut wide = new_histogram();
        for i in 0..1000u64 {
            wide.record(1_000_000 + i * 97_000).unwrap();
        }
        let d = distribution(&wide);
        assert!(d.starts_with("empirical("), "{d}");
        assert_eq!(d.matches(',').count(), MAX_POINTS - 1);
        assert!(crate::units::parse_dist(&d).is_ok());
    }
}
