//! HdrHistogram outputs.
//! - `.hgrm`: the classic percentile distribution text (HdrHistogram's `outputPercentileDistribution`, as wrk2
//!   prints it), values in milliseconds. HdrHistogram's online plotter and `hdr-plot` read it.
//! - `.hlog`: an interval log (V2 compressed histograms, base64, one line per interval and tag), values recorded in
//!   microseconds with the max column in milliseconds; read by HdrHistogram's `HistogramLogProcessor` and
//!   `HistogramLogReader` (Java), `hdrhistogram`'s `IntervalLogIterator` (Rust), and HdrHistogram_py.

use super::{Error, Result, write_file};
use crate::analysis::RunReport;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// The series written as `.hgrm` besides every other (kept for the docs).
pub const HGRM_SERIES: &str = "every series in summary.json, one file each under histograms/";

/// Output unit: microseconds recorded, milliseconds printed.
const US_PER_MS: f64 = 1000.0;

/// Percentile ticks per half distance, as wrk2 and `HistogramLogProcessor` print by default.
const TICKS_PER_HALF_DISTANCE: i64 = 5;

/// Percentile distribution in HdrHistogram's text format, byte for byte what Java's
/// `AbstractHistogram.outputPercentileDistribution(out, 5, 1000.0)` prints for the same histogram (values in ms):
/// - percentile levels are stepped in percent, as Java's `PercentileIterator` does (`PercentileIterator.java`,
///   `incrementIterationLevel`), so that levels such as 90% are exact and a rank k = 0.9·N is reported at k, not
///   at the next bucket (the `hdrhistogram` crate's `iter_quantiles` steps in fractions, which drift);
/// - the mean and standard deviation are summed over the buckets' median-equivalent values and divided once;
/// - numbers are formatted as `java.util.Formatter` formats `%w.pf`: half-up on the shortest decimal digits.
///
/// `tests/interop/HdrReferee.java` (Java's HdrHistogram) is the referee: a test compares them.
pub fn hgrm_text(h: &Histogram<u64>) -> String {
    let digits = h.sigfig() as u32;
    let n = h.len();
    let mut out = String::new();
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )
    .unwrap();
    let value = |v: u64| java_fixed(h.highest_equivalent(v) as f64 / US_PER_MS, digits, 12);
    if n > 0 {
        let (mut level, mut cumulative) = (0.0f64, 0u64);
        'buckets: for b in h.iter_recorded() {
            cumulative += b.count_at_value();
            while (100.0 * cumulative as f64) / n as f64 >= level {
                let v = b.value_iterated_to();
                if level == 100.0 {
                    writeln!(
                        out,
                        "{} {} {cumulative:10}",
                        value(v),
                        java_fixed(1.0, 12, 2)
                    )
                    .unwrap();
                    break 'buckets;
                }
                writeln!(
                    out,
                    "{} {} {cumulative:10} {}",
                    value(v),
                    java_fixed(level / 100.0, 12, 2),
                    java_fixed(1.0 / (1.0 - level / 100.0), 2, 14)
                )
                .unwrap();
                if cumulative == n {
                    level = 100.0;
                    continue;
                }
                let e = ((100.0 / (100.0 - level)).ln() / 2f64.ln()) as i64 + 1;
                level += 100.0 / (TICKS_PER_HALF_DISTANCE * (1i64 << e.clamp(0, 62))) as f64;
            }
        }
    }
    let (mut total, mut counted) = (0.0f64, Vec::new());
    for b in h.iter_recorded() {
        let m = h.median_equivalent(b.value_iterated_to()) as f64;
        total += m * b.count_at_value() as f64;
        counted.push((m, b.count_at_value()));
    }
    let mean = if n == 0 { 0.0 } else { total / n as f64 };
    let squares: f64 = counted
        .iter()
        .map(|(m, c)| (m - mean).powi(2) * *c as f64)
        .sum();
    let stdev = if n == 0 {
        0.0
    } else {
        (squares / n as f64).sqrt()
    };
    let sub_buckets = (2.0 * 10f64.powi(h.sigfig() as i32)).log2().ceil().exp2() as u64;
    writeln!(
        out,
        "#[Mean    = {}, StdDeviation   = {}]",
        java_fixed(mean / US_PER_MS, digits, 12),
        java_fixed(stdev / US_PER_MS, digits, 12)
    )
    .unwrap();
    writeln!(
        out,
        "#[Max     = {}, Total count    = {:12}]",
        java_fixed(h.max() as f64 / US_PER_MS, digits, 12),
        n
    )
    .unwrap();
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets
    )
    .unwrap();
    out
}

/// `java.util.Formatter`'s `%{width}.{prec}f` (Locale.US): half-up rounding of the shortest decimal digits that
/// identify `x` (what `Double.toString` gives), where Rust's `{:.prec}` rounds the exact binary value, ties to
/// even (1000.0005 prints `1000.001` in Java, `1000.000` in Rust).
fn java_fixed(x: f64, prec: u32, width: usize) -> String {
    let sci = format!("{:e}", x.abs());
    let (mant, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("an exponent");
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let d: u128 = digits.parse().expect("at most 17 digits");
    // x·10^prec = d·10^shift
    let shift = exp - (digits.len() as i32 - 1) + prec as i32;
    let n: u128 = if shift >= 0 {
        d.saturating_mul(10u128.saturating_pow(shift as u32))
    } else if -shift > 38 {
        0
    } else {
        let p = 10u128.pow((-shift) as u32);
        d / p + u128::from((d % p) * 2 >= p)
    };
    let mut s = n.to_string();
    if prec > 0 {
        s = format!("{:0>w$}", s, w = prec as usize + 1);
        s.insert(s.len() - prec as usize, '.');
    }
    if x.is_sign_negative() && n != 0 {
        s.insert(0, '-');
    }
    format!("{s:>width$}")
}

/// End-to-end latency by completion interval: an untagged line for all streams and one tagged
/// `e2e_latency.<stream>` per stream, for every reporting period that completed messages. The period is the
/// analysis's ([`crate::analysis::intervals::period_for`]): 10 s, or 60 s for runs over two hours, doubled for
/// runs over a day so that a run has at most 1,440 intervals.
pub fn write_hlog(report: &RunReport, path: &Path) -> Result<()> {
    let start = UNIX_EPOCH + Duration::from_micros(report.run.wall_clock_start_unix_us);
    let streams = &report.run.streams;
    let mut buf = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let fail = |message: String| Error::HlogFailed {
        path: path.to_path_buf(),
        message,
    };
    {
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "imagen-load {} end-to-end latency, run {}",
                env!("CARGO_PKG_VERSION"),
                report.run.run_id
            ))
            .add_comment("values in microseconds; interval max column in milliseconds")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(US_PER_MS)
            .begin_log_with(&mut buf, &mut serializer)
            .map_err(|e| fail(e.to_string()))?;
        let tags: Vec<String> = streams.iter().map(|s| format!("e2e_latency.{s}")).collect();
        let intervals = &report.intervals;
        let period = Duration::from_micros(intervals.period_us);
        for iv in intervals.closed() {
            let (all, per) = crate::analysis::Intervals::decode(iv);
            let at = Duration::from_micros(iv.slot * intervals.period_us);
            w.write_histogram(&all, at, period, None)
                .map_err(|e| fail(e.to_string()))?;
            for (s, h) in &per {
                if let Some(tag) = tags.get(*s as usize) {
                    w.write_histogram(h, at, period, Tag::new(tag))
                        .map_err(|e| fail(e.to_string()))?;
                }
            }
        }
    }
    write_file(path, &buf)
}

#[cfg(test)]
mod java_format_tests {
    use super::java_fixed;

    #[test]
    fn numbers_round_as_javas_formatter_rounds_them() {
        assert_eq!(java_fixed(1000.0005, 3, 12), "    1000.001");
        assert_eq!(java_fixed(0.9, 12, 2), "0.900000000000");
        assert_eq!(java_fixed(10.0, 2, 14), "         10.00");
        assert_eq!(java_fixed(0.0, 3, 12), "       0.000");
        assert_eq!(java_fixed(548405.247, 3, 12), "  548405.247");
    }
}
