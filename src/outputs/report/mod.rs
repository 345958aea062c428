//! Exporters: one per format behind one trait, fanned out by [`write_all`]. Each reads the [`RunReport`] only; the
//! three human-readable ones (terminal, `report.md`, `report.html`) render the one content model of [`model`].

pub(crate) mod chart;
mod hdr;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod model;
mod summary;
mod terminal;
pub mod trends;

/// The one display form of a duration ([`crate::units::Micros::human`]), under the name the reports use.
pub use hdr::{HGRM_SERIES, hgrm_text, write_hlog};
pub use model::{TIME_SPLIT, latency_rows, problem_lines, time_split_rows};
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
