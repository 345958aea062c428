//! The worker contract (docs/worker-contract.md), as code: the attributes the harness puts on every job, and the
//! messages a worker publishes to the results topic — completions, and optionally its own lifecycle (started,
//! model loaded, stopping). Pure functions: the tracker parses with them, the reference worker builds with them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// On every job: the run it belongs to.
pub const ATTR_RUN: &str = "imagen_load_run";
/// On every job: its sequence number in its stream (from 0).
pub const ATTR_ID: &str = "imagen_load_id";
/// On every job: the stream (pipeline) it belongs to.
pub const ATTR_STREAM: &str = "imagen_load_stream";
/// On every job: its intended send time, microseconds after the run started.
pub const ATTR_INTENDED_US: &str = "imagen_load_intended_us";
/// On results: what the message reports (`completed`, the default, or a lifecycle event).
pub const ATTR_EVENT: &str = "imagen_load_event";

/// Adds the contract's attributes of one job (run, stream, id, intended send) to `attributes` (a stream's own,
/// which they replace where a name is the same).
pub fn add_job_attributes(
    attributes: &mut std::collections::HashMap<String, String>,
    run_id: &str,
    id: &crate::event::MsgId,
    intended_us: u64,
) {
    attributes.insert(ATTR_RUN.into(), run_id.into());
    attributes.insert(ATTR_STREAM.into(), id.stream.clone());
    attributes.insert(ATTR_ID.into(), id.seq.to_string());
    attributes.insert(ATTR_INTENDED_US.into(), intended_us.to_string());
}

/// Whether `key` is one of the attributes [`add_job_attributes`] sets.
pub fn is_job_attribute(key: &str) -> bool {
    matches!(key, ATTR_RUN | ATTR_STREAM | ATTR_ID | ATTR_INTENDED_US)
}

/// What a results message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Completed,
    /// A job was delivered to the worker (before it is processed): what lets the harness count redeliveries
    /// itself, since Pub/Sub says which delivery attempt a message is only with a dead-letter policy.
    Received,
    /// The worker process started (its container is running).
    Started,
    /// The model is loaded: the worker is ready to take jobs.
    ModelLoaded,
    /// The worker is shutting down.
    Stopping,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Received => "received",
            Self::Started => "started",
            Self::ModelLoaded => "model_loaded",
            Self::Stopping => "stopping",
        }
    }
}

/// The JSON body of a results message. Times are the worker's wall clock, microseconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The pod (or process) that did the work: `HOSTNAME` in Kubernetes.
    #[serde(default)]
    pub pod: String,
    /// The pipeline the worker serves (the stream name in the workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_ready_unix_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_unix_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_start_unix_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_end_unix_us: Option<u64>,
    /// Pub/Sub's delivery attempt for this job, where the worker knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Set when the job failed: the job then counts as completed with an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A results message as the tracker understood it.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Completion {
        run: String,
        stream: String,
        seq: u64,
        report: Report,
    },
    Lifecycle {
        kind: ReportKind,
        report: Report,
    },
    /// A job reached a worker (`received`).
    Receipt {
        run: String,
        stream: String,
        seq: u64,
        report: Report,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("attribute `{0}` is missing")]
    MissingAttribute(&'static str),
    #[error("attribute `{name}` is `{value}`, expected {expected}")]
    BadAttribute {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("the body is not the contract's JSON: {0}")]
    BadBody(String),
}

/// Reads a results message: attributes and body.
pub fn parse(attributes: &BTreeMap<String, String>, data: &[u8]) -> Result<Parsed, ContractError> {
    let kind = match attributes.get(ATTR_EVENT).map(String::as_str) {
        None | Some("completed") => ReportKind::Completed,
        Some("received") => ReportKind::Received,
        Some("started") => ReportKind::Started,
        Some("model_loaded") => ReportKind::ModelLoaded,
        Some("stopping") => ReportKind::Stopping,
        Some(other) => {
            return Err(ContractError::BadAttribute {
                name: ATTR_EVENT,
                value: other.to_string(),
                expected: "completed, received, started, model_loaded or stopping",
            });
        }
    };
    let report: Report = if data.is_empty() {
        Report::default()
    } else {
        serde_json::from_slice(data).map_err(|e| ContractError::BadBody(e.to_string()))?
    };
    if !matches!(kind, ReportKind::Completed | ReportKind::Received) {
        if report.pod.is_empty() {
            return Err(ContractError::BadBody(
                "a lifecycle report needs `pod`".into(),
            ));
        }
        return Ok(Parsed::Lifecycle { kind, report });
    }
    let get = |name: &'static str| {
        attributes
            .get(name)
            .filter(|v| !v.is_empty())
            .ok_or(ContractError::MissingAttribute(name))
    };
    let run = get(ATTR_RUN)?.clone();
    let stream = get(ATTR_STREAM)?.clone();
    let id = get(ATTR_ID)?;
    let seq = id.parse().map_err(|_| ContractError::BadAttribute {
        name: ATTR_ID,
        value: id.clone(),
        expected: "a whole number",
    })?;
    Ok(if kind == ReportKind::Received {
        Parsed::Receipt {
            run,
            stream,
            seq,
            report,
        }
    } else {
        Parsed::Completion {
            run,
            stream,
            seq,
            report,
        }
    })
}

/// The attributes a worker copies from a job onto its completion.
pub fn correlation(job: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    [ATTR_RUN, ATTR_ID, ATTR_STREAM, ATTR_INTENDED_US]
        .iter()
        .filter_map(|k| job.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// Converts a worker's wall-clock time to microseconds since the run started (saturating at 0).
pub fn to_run_us(unix_us: u64, run_start_unix_us: u64) -> u64 {
    unix_us.saturating_sub(run_start_unix_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_completion_round_trips() {
        let job = attrs(&[
            (ATTR_RUN, "r1"),
            (ATTR_ID, "7"),
            (ATTR_STREAM, "upscale"),
            (ATTR_INTENDED_US, "1000"),
            ("pipeline", "upscale"),
        ]);
        let report = Report {
            pod: "upscale-abc".into(),
            processing_start_unix_us: Some(10),
            processing_end_unix_us: Some(20),
            ..Default::default()
        };
        let body = serde_json::to_vec(&report).unwrap();
        let parsed = parse(&correlation(&job), &body).unwrap();
        assert_eq!(
            parsed,
            Parsed::Completion {
                run: "r1".into(),
                stream: "upscale".into(),
                seq: 7,
                report
            }
        );
    }

    #[test]
    fn bad_messages_say_what_is_wrong() {
        let e = parse(&attrs(&[(ATTR_RUN, "r")]), b"{}").unwrap_err();
        assert_eq!(e, ContractError::MissingAttribute(ATTR_STREAM));
        let e = parse(
            &attrs(&[(ATTR_RUN, "r"), (ATTR_STREAM, "s"), (ATTR_ID, "x")]),
            b"",
        )
        .unwrap_err();
        assert!(matches!(
            e,
            ContractError::BadAttribute { name: ATTR_ID, .. }
        ));
        let e = parse(
            &attrs(&[(ATTR_RUN, "r"), (ATTR_STREAM, "s"), (ATTR_ID, "1")]),
            b"not json",
        )
        .unwrap_err();
        assert!(matches!(e, ContractError::BadBody(_)));
        let e = parse(&attrs(&[(ATTR_EVENT, "exploded")]), b"").unwrap_err();
        assert!(e.to_string().contains("exploded"));
    }

    #[test]
    fn lifecycle_reports_need_a_pod() {
        let ok = parse(
            &attrs(&[(ATTR_EVENT, "model_loaded")]),
            br#"{"pod":"w-1","model_ready_unix_us":5}"#,
        )
        .unwrap();
        assert!(matches!(
            ok,
            Parsed::Lifecycle {
                kind: ReportKind::ModelLoaded,
                ..
            }
        ));
        assert!(parse(&attrs(&[(ATTR_EVENT, "started")]), b"{}").is_err());
    }
}
