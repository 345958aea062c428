//! What a run's report becomes: `report` (summary.json, HdrHistogram files, junit.xml, report.md, report.html,
//! the terminal), `gates` (thresholds evaluated: the exit status), `compare` (against a baseline), `metrics`
//! (Prometheus and OTLP while a run goes), `calibrate` (a run's measured phases → a simulator profile).

pub mod calibrate;
pub mod compare;
pub mod gates;
pub mod metrics;
pub mod report;
