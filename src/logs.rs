//! Where diagnostics go: stderr, as text for a terminal or, with `--log-format json`, one JSON object per line in
//! the shape Cloud Logging reads from a GKE container's output ("Structured logging", special JSON fields:
//! `severity`, `message`, `time`; every other field lands in `jsonPayload`). Both the `tracing` events and the
//! harness's own notes (the `note!` lines) follow the format chosen.

use std::sync::atomic::{AtomicBool, Ordering};
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, format::Writer};
use tracing_subscriber::registry::LookupSpan;

/// `--log-format`: how stderr lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain text for a terminal.
    #[default]
    Text,
    /// One JSON object per line with Cloud Logging's `severity`, `message` and `time`.
    Json,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Installs the `tracing` subscriber on stderr: `verbose` 0..=3 is warn, info, debug, trace (`RUST_LOG` overrides).
pub fn init(verbose: u8, format: LogFormat) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.event_format(CloudLogging).try_init(),
    };
}

/// Whether stderr lines are JSON.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// One of the harness's own notes (progress, what a run is doing, an error), as the format says: the text, or
/// `{"severity": "NOTICE" (or "ERROR"), "message": …, "time": …}`.
pub fn note(text: &str, severity: &str) {
    use std::io::Write as _;
    let line = if json() {
        serde_json::json!({"severity": severity, "message": text, "time": now()}).to_string()
    } else {
        text.to_string()
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// Cloud Logging's name for a `tracing` level (its `LogSeverity`: DEBUG, INFO, WARNING, ERROR).
pub fn severity(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::TRACE | tracing::Level::DEBUG => "DEBUG",
        tracing::Level::INFO => "INFO",
        tracing::Level::WARN => "WARNING",
        tracing::Level::ERROR => "ERROR",
    }
}

/// The JSON line of one `tracing` event: `severity`, `message`, `time`, `target`, and the event's other fields.
struct CloudLogging;

#[derive(Default)]
struct Fields(serde_json::Map<String, serde_json::Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            serde_json::Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(
            field.name().to_string(),
            serde_json::Value::String(value.into()),
        );
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
}

impl<S, N> FormatEvent<S, N> for CloudLogging
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = serde_json::Map::new();
        line.insert("severity".into(), severity(event.metadata().level()).into());
        line.insert(
            "message".into(),
            fields.0.remove("message").unwrap_or_default(),
        );
        line.insert("time".into(), now().into());
        line.insert("target".into(), event.metadata().target().into());
        line.extend(fields.0);
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_cloud_loggings_severities() {
        assert_eq!(severity(&tracing::Level::WARN), "WARNING");
        assert_eq!(severity(&tracing::Level::TRACE), "DEBUG");
        assert_eq!(severity(&tracing::Level::ERROR), "ERROR");
    }
}
