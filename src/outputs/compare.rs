//! `compare BASE CURRENT`: per-metric deltas between two runs, and a regression gate that does not flap on noise.
//!
//! Cold starts in the cloud are noisy, so a percentile moving is not enough. A series regresses only when
//! - its gated percentile (p95 by default) is worse by more than the tolerance, **and**
//! - a one-sided Mann-Whitney U test on the two recorded histograms (rank test, tie-corrected, normal
//!   approximation) says the current run is stochastically slower, at a significance level split across every
//!   series tested (Bonferroni). Message latencies queued behind each other are correlated, so the test uses
//!   each series' effective sample size (lag-1 autocorrelation, AR(1) design effect), **and**
//! - both runs have at least [`MIN_SAMPLES`] samples; with fewer the verdict is "too few samples to judge", never a
//!   failure.
//!
//! Lost messages are compared as counts (more lost than the base is a regression). Cost is shown but not gated:
//! it has no distribution to test.

use crate::analysis::RunReport;
use crate::units::human_us as h;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt::Write as _;

/// Fewer samples than this on either side: the series is reported but not judged.
pub const MIN_SAMPLES: u64 = 20;
/// Family-wise significance level, divided among the series tested.
pub const ALPHA: f64 = 0.01;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regression,
    Improvement,
    NoChange,
    TooFewSamples,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `e2e_latency{scope:upscale,cold:true}`, or `lost`.
    pub metric: String,
    pub base_count: u64,
    pub current_count: u64,
    pub base_p50_us: u64,
    pub current_p50_us: u64,
    pub base_gate_us: u64,
    pub current_gate_us: u64,
    /// Relative change of the gated percentile (0.1 = 10% slower).
    pub change: f64,
    /// One-sided p-value that the current run is slower (Mann-Whitney U); `None` when not tested.
    pub p_value: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub base: String,
    pub current: String,
    pub percentile: f64,
    pub tolerance: f64,
    pub rows: Vec<Row>,
    /// `None` when that run did not observe the cluster.
    pub base_cost_usd: Option<f64>,
    pub current_cost_usd: Option<f64>,
    pub base_lost: u64,
    pub current_lost: u64,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
            .count()
            + usize::from(self.current_lost > self.base_lost)
    }
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26 for erf; absolute error below 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// One-sided Mann-Whitney U test on two histograms: the p-value that `current` tends to larger values than
/// `base`. Values in one histogram bucket are ties.
pub fn mann_whitney_greater(base: &Histogram<u64>, current: &Histogram<u64>) -> f64 {
    mann_whitney_z(base, current).map_or(1.0, |z| 1.0 - normal_cdf(z))
}

/// The Mann-Whitney z-score (continuity-corrected) for `current` being larger; `None` when every value is tied.
pub fn mann_whitney_z(base: &Histogram<u64>, current: &Histogram<u64>) -> Option<f64> {
    let (n1, n2) = (base.len() as f64, current.len() as f64);
    let n = n1 + n2;
    let mut a: Vec<(u64, u64)> = base
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    let mut b: Vec<(u64, u64)> = current
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    a.sort_unstable();
    b.sort_unstable();
    let (mut i, mut j) = (0, 0);
    let (mut below, mut rank_sum_current, mut ties) = (0.0_f64, 0.0_f64, 0.0_f64);
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.0.min(y.0),
            (Some(x), None) => x.0,
            (None, Some(y)) => y.0,
            (None, None) => unreachable!(),
        };
        let ca = if a.get(i).is_some_and(|x| x.0 == v) {
            i += 1;
            a[i - 1].1 as f64
        } else {
            0.0
        };
        let cb = if b.get(j).is_some_and(|y| y.0 == v) {
            j += 1;
            b[j - 1].1 as f64
        } else {
            0.0
        };
        let t = ca + cb;
        let mid_rank = below + (t + 1.0) / 2.0;
        rank_sum_current += cb * mid_rank;
        ties += t * t * t - t;
        below += t;
    }
    let u = rank_sum_current - n2 * (n2 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return None; // every value tied: no evidence either way
    }
    Some((u - mean - 0.5) / var.sqrt())
}

/// The share of a sample that is independent information, for a series with lag-1 autocorrelation `rho`
/// (AR(1) design effect: n_eff = n (1 − ρ) / (1 + ρ)). Messages queued behind each other have correlated
/// latencies; testing them as if independent would call ordinary run-to-run noise significant.
pub fn effective_fraction(rho: f64) -> f64 {
    let rho = rho.clamp(0.0, 0.999);
    (1.0 - rho) / (1.0 + rho)
}

/// Compares two analysed runs on every series both have (message latencies and their split, cold-start phases,
/// scale timings), gating on `percentile` with a relative `tolerance` (0.1 = 10%).
pub fn compare(
    base: &RunReport,
    current: &RunReport,
    percentile: f64,
    tolerance: f64,
) -> Comparison {
    let mut pairs = Vec::new();
    for (key, hb) in base.series.iter() {
        if let Some(hc) = current.series.get(key.metric, &key.scope, key.cold) {
            // Correlated samples carry less information: scale the test by the smaller effective share.
            // Message series keep their lag-1 autocorrelation in completion order; others count as independent.
            let fraction = match (
                base.series.moments(key.metric, &key.scope, key.cold),
                current.series.moments(key.metric, &key.scope, key.cold),
            ) {
                (Some(b), Some(c)) => effective_fraction(b.lag1_autocorrelation())
                    .min(effective_fraction(c.lag1_autocorrelation())),
                _ => 1.0,
            };
            pairs.push((key.label(), hb.clone(), hc.clone(), fraction));
        }
    }
    let tested = pairs
        .iter()
        .filter(|(_, b, c, _)| b.len() >= MIN_SAMPLES && c.len() >= MIN_SAMPLES)
        .count()
        .max(1);
    let alpha = ALPHA / tested as f64;
    let q = percentile / 100.0;
    let rows = pairs
        .into_iter()
        .map(|(metric, b, c, fraction)| {
            let (gb, gc) = (b.value_at_quantile(q), c.value_at_quantile(q));
            let change = if gb == 0 {
                if gc == 0 { 0.0 } else { f64::INFINITY }
            } else {
                gc as f64 / gb as f64 - 1.0
            };
            let enough = b.len() >= MIN_SAMPLES && c.len() >= MIN_SAMPLES;
            // The z-score scales with √n: with only a fraction of the samples independent, shrink it by √fraction.
            let p = |x: &Histogram<u64>, y: &Histogram<u64>| {
                mann_whitney_z(x, y).map_or(1.0, |z| 1.0 - normal_cdf(z * fraction.sqrt()))
            };
            let p_slower = enough.then(|| p(&b, &c));
            let p_faster = enough.then(|| p(&c, &b));
            let verdict = match (p_slower, p_faster) {
                (None, _) | (_, None) => Verdict::TooFewSamples,
                (Some(p), _) if p < alpha && change > tolerance => Verdict::Regression,
                (_, Some(p)) if p < alpha && change < -tolerance => Verdict::Improvement,
                _ => Verdict::NoChange,
            };
            Row {
                metric,
                base_count: b.len(),
                current_count: c.len(),
                base_p50_us: b.value_at_quantile(0.5),
                current_p50_us: c.value_at_quantile(0.5),
                base_gate_us: gb,
                current_gate_us: gc,
                change,
                p_value: p_slower,
                verdict,
            }
        })
        .collect();
    Comparison {
        base: base.run.run_id.clone(),
        current: current.run.run_id.clone(),
        percentile,
        tolerance,
        rows,
        base_cost_usd: base.cost.observed.then_some(base.cost.cost_usd),
        current_cost_usd: current.cost.observed.then_some(current.cost.cost_usd),
        base_lost: base.delivery.lost,
        current_lost: current.delivery.lost,
    }
}

fn dollars(v: Option<f64>) -> String {
    v.map_or_else(|| "unknown".into(), |v| format!("${v:.2}"))
}

fn pct(change: f64) -> String {
    if change.is_infinite() {
        "new".into()
    } else {
        format!("{:+.1}%", change * 100.0)
    }
}

/// The comparison as a Markdown table (also readable in a terminal), regressions first.
pub fn render(c: &Comparison) -> String {
    let mut out = String::new();
    let regressions = c.regressions();
    writeln!(
        out,
        "## imagen-load compare · `{}` → `{}` · {}\n",
        c.base,
        c.current,
        if regressions == 0 {
            "no regression".to_string()
        } else {
            format!("**{regressions} regression(s)**")
        }
    )
    .unwrap();
    writeln!(
        out,
        "Gate: p{} worse by more than {:.0}% and slower by a one-sided Mann-Whitney test (α = {} across series, effective sample sizes for correlated latencies); series with fewer than {MIN_SAMPLES} samples on a side are not judged.\n",
        c.percentile,
        c.tolerance * 100.0,
        ALPHA
    )
    .unwrap();
    writeln!(
        out,
        "| verdict | metric | n (base → current) | p50 | p{} | change | p-value |",
        c.percentile
    )
    .unwrap();
    writeln!(out, "| --- | --- | --- | --- | --- | ---: | ---: |").unwrap();
    let mut rows: Vec<&Row> = c.rows.iter().collect();
    rows.sort_by_key(|r| match r.verdict {
        Verdict::Regression => 0,
        Verdict::Improvement => 1,
        Verdict::NoChange => 2,
        Verdict::TooFewSamples => 3,
    });
    for r in rows {
        let verdict = match r.verdict {
            Verdict::Regression => "**REGRESSION**",
            Verdict::Improvement => "improved",
            Verdict::NoChange => "same",
            Verdict::TooFewSamples => "too few samples",
        };
        writeln!(
            out,
            "| {verdict} | `{}` | {} → {} | {} → {} | {} → {} | {} | {} |",
            r.metric,
            r.base_count,
            r.current_count,
            h(r.base_p50_us),
            h(r.current_p50_us),
            h(r.base_gate_us),
            h(r.current_gate_us),
            pct(r.change),
            r.p_value
                .map(|p| format!("{p:.2e}"))
                .unwrap_or_else(|| "-".into())
        )
        .unwrap();
    }
    let lost_verdict = if c.current_lost > c.base_lost {
        "**REGRESSION**"
    } else {
        "same"
    };
    writeln!(out, "\n| | base | current |\n| --- | ---: | ---: |").unwrap();
    writeln!(
        out,
        "| lost messages ({lost_verdict}) | {} | {} |",
        c.base_lost, c.current_lost
    )
    .unwrap();
    writeln!(
        out,
        "| GPU cost (not gated) | {} | {} |",
        dollars(c.base_cost_usd),
        dollars(c.current_cost_usd)
    )
    .unwrap();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::series::new_histogram;

    fn hist(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-2.326) - 0.01).abs() < 1e-4);
    }

    /// The textbook two-pass definition, which the analysis's one-pass running sums must match.
    fn lag1_autocorrelation(values: &[u64]) -> f64 {
        let values: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        let n = values.len();
        if n < 3 {
            return 0.0;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        if var == 0.0 {
            return 0.0;
        }
        let cov: f64 = values
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum();
        cov / var
    }

    fn running(values: &[u64]) -> crate::analysis::Moments {
        let mut m = crate::analysis::Moments::default();
        values.iter().for_each(|&v| m.push(v));
        m
    }

    #[test]
    fn correlated_series_count_for_less() {
        use rand::{RngExt, SeedableRng};
        let mut rng = crate::units::SeededRng::seed_from_u64(3);
        let independent: Vec<u64> = (0..400).map(|_| rng.random_range(0..1_000_000)).collect();
        let queued: Vec<u64> = (0..100)
            .map(|i| 60_000_000 + (i / 10) * 1_000_000)
            .collect();
        let constant = vec![5_000_000; 50];
        for values in [&independent, &queued, &constant, &vec![1, 2], &vec![]] {
            let (two_pass, one_pass) = (
                lag1_autocorrelation(values),
                running(values).lag1_autocorrelation(),
            );
            assert!(
                (two_pass - one_pass).abs() < 1e-9,
                "{two_pass} vs {one_pass}"
            );
            assert_eq!(
                running(values).sum_us(),
                values.iter().map(|&v| u128::from(v)).sum::<u128>()
            );
        }
        let independent = running(&independent).lag1_autocorrelation();
        let queued = running(&queued).lag1_autocorrelation();
        assert!(independent.abs() < 0.3);
        assert!(queued > 0.8);
        assert!(effective_fraction(queued) < 0.15);
        assert_eq!(effective_fraction(-0.5), 1.0);
    }

    #[test]
    fn mann_whitney_sees_a_shift_and_not_its_absence() {
        let base = hist((0..200).map(|i| 1_000 + i * 10));
        let same = hist((0..200).map(|i| 1_005 + i * 10));
        let slower = hist((0..200).map(|i| 1_600 + i * 10));
        assert!(mann_whitney_greater(&base, &slower) < 1e-6);
        assert!(mann_whitney_greater(&base, &same) > 0.05);
        assert!(mann_whitney_greater(&slower, &base) > 0.99, "one-sided");
    }
}
