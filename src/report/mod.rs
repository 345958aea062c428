//! Exporters: one per format behind one trait, fanned out by [`write_all`]. Each reads the [`RunReport`] only.

mod hdr;
pub mod html;
pub mod junit;
pub mod markdown;
mod summary;
mod terminal;
pub mod trends;

/// The one display form of a duration ([`crate::units::Micros::human`]), under the name the reports use.
pub use crate::units::human_us as human_duration;
pub use hdr::{HGRM_SERIES, hgrm_text, write_hlog};
pub use summary::{SCHEMA_VERSION, Summary};
pub use terminal::render as render_terminal;

use crate::analysis::RunReport;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {path}: {error}")]
    WriteFailed {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot encode the interval log {path}: {message}")]
    HlogFailed { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Where a message's time went, in the order it lives it: (series, label). Every report shows these rows, under
/// the end-to-end latency.
pub const TIME_SPLIT: [(&str, &str); 4] = [
    ("publish_delay", "publish delay"),
    ("capacity_wait", "waiting for capacity"),
    ("queueing", "queueing"),
    ("processing", "processing"),
];

/// The end-to-end latency rows every report shows, for `all` and each stream: the scope (labelled "(all cold)"
/// or "(all warm)" when its messages were of one kind), then its cold and warm rows only when it had both, since
/// a split of one kind repeats the row.
pub fn latency_rows(r: &RunReport) -> Vec<(String, crate::analysis::Stats)> {
    let mut out = Vec::new();
    let scopes = std::iter::once("all").chain(r.run.streams.iter().map(String::as_str));
    for s in scopes {
        let Some(both) = r.series.stats("e2e_latency", s, None) else {
            continue;
        };
        let cold = r.series.stats("e2e_latency", s, Some(true));
        let warm = r.series.stats("e2e_latency", s, Some(false));
        let tag = match (&cold, &warm) {
            (Some(_), None) => " (all cold)",
            (None, Some(_)) => " (all warm)",
            _ => "",
        };
        out.push((format!("{s}{tag}"), both));
        if let (Some(c), Some(w)) = (cold, warm) {
            out.push((format!("{s} · cold"), c));
            out.push((format!("{s} · warm"), w));
        }
    }
    out
}

/// The rows of [`TIME_SPLIT`] that have samples, over all streams.
pub fn time_split_rows(r: &RunReport) -> Vec<(&'static str, crate::analysis::Stats)> {
    TIME_SPLIT
        .iter()
        .filter_map(|(m, label)| r.series.stats(m, "all", None).map(|st| (*label, st)))
        .collect()
}

/// Why cold starts were slow, one line per phase the problems lengthened, for every report: e.g.
/// ("node provisioning", "2 failed scale-ups: GCE out of resources ×1 (us-central1-a), IP space exhausted ×1
/// (us-central1-b); no scale-up: in backoff after failed scale-up ×1").
pub fn problem_lines(r: &RunReport) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for phase in crate::analysis::POD_PHASES {
        let here: Vec<&crate::analysis::Problem> =
            r.problems.iter().filter(|p| p.phase == phase).collect();
        if here.is_empty() {
            continue;
        }
        let failed: u32 = here
            .iter()
            .filter(|p| p.is_failed_scale_up())
            .map(|p| p.count)
            .sum();
        let items: Vec<String> = here
            .iter()
            .map(|p| {
                let place = p
                    .node_group
                    .as_ref()
                    .map(|g| format!(" ({g})"))
                    .unwrap_or_default();
                format!("{} ×{}{place}", p.reason, p.count)
            })
            .collect();
        let lead = if failed > 0 {
            format!(
                "{failed} failed scale-up{}: ",
                if failed == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        out.push((
            phase.replace('_', " "),
            format!("{lead}{}", items.join(", ")),
        ));
    }
    out
}

/// One output format.
pub trait Exporter {
    /// Files this exporter writes, relative to the results folder (for listing them to the user).
    fn write(&self, report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>>;
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|error| Error::WriteFailed {
        path: path.to_path_buf(),
        error,
    })
}

pub struct SummaryJson;
pub struct Hgrm;
pub struct Hlog;
pub struct JUnit;
pub struct Markdown;
pub struct Html;

impl Exporter for Html {
    fn write(&self, report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
        let path = dir.join("report.html");
        write_file(&path, html::render(report).as_bytes())?;
        Ok(vec![path])
    }
}

impl Exporter for JUnit {
    fn write(&self, report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
        let path = dir.join("junit.xml");
        write_file(&path, junit::render(report).as_bytes())?;
        Ok(vec![path])
    }
}

impl Exporter for Markdown {
    fn write(&self, report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
        let path = dir.join("report.md");
        write_file(&path, markdown::render(report).as_bytes())?;
        Ok(vec![path])
    }
}

impl Exporter for SummaryJson {
    fn write(&self, report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
        let path = dir.join("summary.json");
        // Streamed to the file: a long run lists thousands of pods, and the text need not be held.
        let failed = |error: std::io::Error| Error::WriteFailed {
            path: path.clone(),
            error,
        };
        let file = std::fs::File::create(&path).map_err(failed)?;
        let mut w = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(&mut w, &Summary::from_report(report))
            .map_err(|e| failed(e.into()))?;
        w.write_all(b"\n").map_err(failed)?;
        w.flush().map_err(failed)?;
        Ok(vec![path])
    }
}

impl Exporter for Hgrm {
    fn write(&self, report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
        let hdir = dir.join("histograms");
        std::fs::create_dir_all(&hdir).map_err(|error| Error::WriteFailed {
            path: hdir.clone(),
            error,
        })?;
        let mut out = Vec::new();
        for (key, h) in report.series.iter() {
            if h.is_empty() {
                continue;
            }
            let path = hdir.join(format!("{}.hgrm", key.file_stem()));
            write_file(&path, hgrm_text(h).as_bytes())?;
            out.push(path);
        }
        Ok(out)
    }
}

impl Exporter for Hlog {
    fn write(&self, report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
        let path = dir.join("e2e_latency.hlog");
        write_hlog(report, &path)?;
        Ok(vec![path])
    }
}

/// Writes every output format into `dir`; returns the files written.
pub fn write_all(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let exporters: [&dyn Exporter; 6] = [&SummaryJson, &Hgrm, &Hlog, &JUnit, &Markdown, &Html];
    let mut files = Vec::new();
    for e in exporters {
        files.extend(e.write(report, dir)?);
    }
    Ok(files)
}
