//! imagen-load: a load generator and end-to-end test harness for scale-from-zero GPU workers behind Pub/Sub and
//! KEDA. See `docs/ARCHITECTURE.md` for the flow: workload → plan → pacer → target → events → analysis → reports.

pub mod analysis;
pub mod app;
pub mod calibrate;
pub mod cli;
pub mod cluster;
pub mod compare;
pub mod emulator;
pub mod event;
pub mod eventlog;
pub mod gates;
pub mod limits;
pub mod live;
pub mod merge;
pub mod pacer;
pub mod progress;
pub mod pubsub;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod seqset;
pub mod sim;
pub mod units;
pub mod whatif;
pub mod worker;
pub mod workload;

pub use app::{ExitStatus, run};
