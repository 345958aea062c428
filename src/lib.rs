//! imagen-load: a load generator and end-to-end test harness for scale-from-zero GPU workers behind Pub/Sub and
//! KEDA. See `docs/ARCHITECTURE.md` for the flow: plan (workload → Plan → schedule) → run (a source: the simulator,
//! or the pacer into Pub/Sub with the observers) → the collector (events.jsonl) → analysis → outputs (reports, gates).

/// Writes a line to stderr, ignoring a closed stderr (a reader that went away): a note is never worth a panic.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        $crate::logs::note(&format!($($arg)*), "NOTICE");
    }};
}

/// Writes a line to stdout and returns its error; a reader that went away (a closed pipe) is not one: the
/// command goes on, writes its files and returns its own exit status, as if it had been read.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        $crate::unless_closed(writeln!(std::io::stdout().lock(), $($arg)*))
    }};
}

/// A write's result, with a closed pipe (`BrokenPipe`: `| head` stopped reading) taken as done.
pub fn unless_closed(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

// The flow, in its order: plan → run (sources, pacer, collector; it drives observe) → event log → analysis →
// outputs;
// commands is the command-line edge. Below them, the shared leaves: event (the vocabulary and its log), units,
// limits, logs, seqset.
pub mod analysis;
pub mod commands;
pub mod event;
pub mod limits;
pub mod logs;
pub mod observe;
pub mod outputs;
pub mod plan;
pub mod run;
pub mod seqset;
pub mod units;
