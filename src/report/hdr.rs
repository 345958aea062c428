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

/// Percentile distribution in HdrHistogram's text format (5 ticks per half distance, values in ms).
pub fn hgrm_text(h: &Histogram<u64>) -> String {
    let digits = h.sigfig() as usize;
    let mut out = String::new();
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )
    .unwrap();
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let value = h.highest_equivalent(v.value_iterated_to()) as f64 / US_PER_MS;
        let count = h.count_between(0, v.value_iterated_to());
        if q < 1.0 {
            writeln!(
                out,
                "{value:12.digits$} {q:2.12} {count:10} {:14.2}",
                1.0 / (1.0 - q)
            )
            .unwrap();
        } else {
            writeln!(out, "{value:12.digits$} {q:2.12} {count:10}").unwrap();
        }
    }
    let sub_buckets = (2.0 * 10f64.powi(h.sigfig() as i32)).log2().ceil().exp2() as u64;
    writeln!(
        out,
        "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]",
        h.mean() / US_PER_MS,
        h.stdev() / US_PER_MS
    )
    .unwrap();
    writeln!(
        out,
        "#[Max     = {:12.digits$}, Total count    = {:12}]",
        h.max() as f64 / US_PER_MS,
        h.len()
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
