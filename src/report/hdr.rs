//! HdrHistogram outputs.
//! - `.hgrm`: the classic percentile distribution text (HdrHistogram's `outputPercentileDistribution`, as wrk2
//!   prints it), values in milliseconds. HdrHistogram's online plotter and `hdr-plot` read it.
//! - `.hlog`: an interval log (V2 compressed histograms, base64, one line per interval and tag), values recorded in
//!   microseconds with the max column in milliseconds; read by HdrHistogram's `HistogramLogProcessor` and
//!   `HistogramLogReader` (Java), `hdrhistogram`'s `IntervalLogIterator` (Rust), and HdrHistogram_py.

use super::{Error, Result, write_file};
use crate::analysis::RunReport;
use crate::analysis::series::new_histogram;
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

/// The reporting period of the interval log: 10 s, or 60 s for runs over two hours.
pub fn reporting_period(end_us: u64) -> Duration {
    if end_us > 2 * 3600 * 1_000_000 {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(10)
    }
}

/// End-to-end latency by completion interval: an untagged line for all streams and one tagged
/// `e2e_latency.<stream>` per stream, for every reporting period that completed messages.
pub fn write_hlog(report: &RunReport, path: &Path) -> Result<()> {
    let period = reporting_period(report.run.end_us);
    let period_us = period.as_micros() as u64;
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
        // One histogram per tag, reset between intervals (allocating a fresh one per interval costs more than
        // everything else here on a day-long run).
        let mut all = new_histogram();
        let mut per: Vec<Histogram<u64>> = streams.iter().map(|_| new_histogram()).collect();
        let mut i = 0;
        let c = &report.messages;
        while i < c.len() {
            let slot = c[i].completed_us / period_us;
            all.reset();
            per.iter_mut().for_each(Histogram::reset);
            while i < c.len() && c[i].completed_us / period_us == slot {
                let (s, e2e) = (c[i].stream as usize, c[i].e2e_us());
                all.saturating_record(e2e);
                if let Some(h) = per.get_mut(s) {
                    h.saturating_record(e2e);
                }
                i += 1;
            }
            let at = Duration::from_micros(slot * period_us);
            w.write_histogram(&all, at, period, None)
                .map_err(|e| fail(e.to_string()))?;
            for (h, tag) in per.iter().zip(&tags) {
                if !h.is_empty() {
                    w.write_histogram(h, at, period, Tag::new(tag))
                        .map_err(|e| fail(e.to_string()))?;
                }
            }
        }
    }
    write_file(path, &buf)
}
