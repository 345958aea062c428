//! Reading events fast: every event is read into one flat struct of optional fields and then checked into its
//! kind. The derived reader for `#[serde(flatten)]` + an internally tagged enum buffers each line several times
//! and was most of `analyze`'s time on large logs. Unknown fields are ignored, so newer logs still read.
//!
//! [`parse_line`] reads a line first into [`MsgWire`], the fields of the per-message events (`scheduled`,
//! `published`, `delivered`, `completed`, …: all but a handful of a large log's lines), and only for another
//! kind again into the whole [`Wire`]. The whole struct is about a kilobyte of mostly empty options; building and
//! moving it was a fifth of a large log's reading (callgrind: `memcpy` and `visit_map`).

use super::{Event, EventKind, MsgId, PodPhaseTruth, Source};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Tag {
    RunStarted,
    RunFinished,
    Scheduled,
    Published,
    PublishFailed,
    Delivered,
    Completed,
    Duplicate,
    Lost,
    HttpCalled,
    Backlog,
    ResultsIgnored,
    HarnessCpu,
    MetricRead,
    ScalerActive,
    ScalerCondition,
    Replicas,
    ScaleTarget,
    PodCreated,
    PodUnschedulable,
    ColdStartProblem,
    ScaleUpTriggered,
    PodScheduled,
    ImagePulling,
    ImagePulled,
    ContainerStarted,
    ModelLoaded,
    PodReady,
    PodNotReady,
    PodDeleted,
    NodeCreated,
    NodeReady,
    GpuAllocatable,
    NodeDeleted,
    SimPodTruth,
}

impl Tag {
    /// A per-message event's tag: such an event is read through [`MsgWire`] ([`msg_kind`]; the whole wire struct's
    /// conversion lists the same tags, in a match the compiler checks for every tag).
    fn is_per_message(&self) -> bool {
        matches!(
            self,
            Tag::Scheduled
                | Tag::Published
                | Tag::PublishFailed
                | Tag::Delivered
                | Tag::Completed
                | Tag::Duplicate
                | Tag::Lost
        )
    }
}

/// Declares a wire struct: the header every event has, the per-message events' fields, then `$more`.
macro_rules! wire_struct {
    ($(#[$doc:meta])* $name:ident { $($more:tt)* }) => {
        $(#[$doc])*
        #[derive(Deserialize)]
        pub(super) struct $name {
            t_us: u64,
            source: Source,
            event: Tag,
            stream: Option<String>,
            seq: Option<u64>,
            intended_us: Option<u64>,
            lateness_us: Option<u64>,
            server_id: Option<String>,
            pod: Option<String>,
            attempt: Option<u32>,
            received_us: Option<u64>,
            processing_start_us: Option<u64>,
            processing_end_us: Option<u64>,
            error: Option<String>,
            $($more)*
        }
    };
}

wire_struct!(
    /// The header and the fields of the per-message events: enough for every kind [`msg_kind`] builds.
    MsgWire {}
);

wire_struct!(
    /// Every field any event has.
    Wire {
        log_version: Option<u32>,
        run_id: Option<String>,
        workload: Option<String>,
        seed: Option<u64>,
        target: Option<String>,
        wall_clock_start_unix_us: Option<u64>,
        streams: Option<Vec<String>>,
        warmup_us: Option<u64>,
        deadline_us: Option<u64>,
        price_per_gpu_hour_usd: Option<f64>,
        shard: Option<String>,
        pipelines: Option<Vec<super::PipelineNames>>,
        cluster_observed: Option<bool>,
        overrides: Option<Vec<String>>,
        timer_slack_us: Option<u64>,
        interrupted: Option<bool>,
        step: Option<u32>,
        method: Option<String>,
        url: Option<String>,
        status: Option<u16>,
        response_time_us: Option<u64>,
        simulated: Option<bool>,
        subscription: Option<String>,
        depth: Option<u64>,
        view: Option<String>,
        point_age_us: Option<u64>,
        other_runs: Option<u64>,
        malformed: Option<u64>,
        example: Option<String>,
        condition: Option<String>,
        scaled_object: Option<String>,
        value: Option<f64>,
        active: Option<bool>,
        deployment: Option<String>,
        desired: Option<u32>,
        ready: Option<u32>,
        preexisting: Option<bool>,
        reason: Option<String>,
        node_group: Option<String>,
        from: Option<u32>,
        to: Option<u32>,
        node: Option<String>,
        image: Option<String>,
        duration_us: Option<u64>,
        bytes: Option<u64>,
        cached: Option<bool>,
        pool: Option<String>,
        phase: Option<String>,
        source_event: Option<String>,
        count: Option<u32>,
        message: Option<String>,
        gpus: Option<u32>,
        phases: Option<PodPhaseTruth>,
        process_cpu_us: Option<u64>,
        machine_busy_us: Option<u64>,
        machine_total_us: Option<u64>,
        cores: Option<u32>,
    }
);

fn req<T>(v: Option<T>, field: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing field `{field}`"))
}

/// Reads one line of a log: through [`MsgWire`] when it is a well-formed per-message event, else through
/// [`Wire`] (so a bad line's error is the `Event` reader's). A per-message event is built from its own fields
/// only: another field is ignored, as an unknown one is, whatever its value.
///
/// The line is checked to be UTF-8 once, whole: reading from a `&[u8]`, serde_json checks each string by itself,
/// which cost more (callgrind) than the one pass.
pub(crate) fn parse_line(line: &[u8]) -> serde_json::Result<Event> {
    let Ok(line) = std::str::from_utf8(line) else {
        return serde_json::from_slice::<Event>(line);
    };
    if may_be_per_message(line)
        && let Ok(w) = serde_json::from_str::<MsgWire>(line)
    {
        let (t_us, source) = (w.t_us, w.source);
        if let Some(Ok(kind)) = msg_kind(w) {
            return Ok(Event { t_us, source, kind });
        }
    }
    serde_json::from_str::<Event>(line)
}

/// A guess from the text, so that a cluster event (most of a simulated run's lines) is not read twice: `false`
/// when the line plainly names another kind (`"event":"pod_ready"`, as every producer here writes it). Only
/// speed depends on it: [`parse_line`] checks the kind it read.
pub(super) fn may_be_per_message(line: &str) -> bool {
    const KEY: &str = "\"event\":\"";
    let Some(at) = line.find(KEY) else {
        return true;
    };
    let tag = line[at + KEY.len()..].split('"').next().unwrap_or_default();
    // By the tags' own names; a name it does not know (or one written with escapes) goes to the whole wire
    // struct, which reads every kind.
    Tag::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(tag))
        .is_ok_and(|t| t.is_per_message())
}

/// Moves the fields of a per-message event out of a wire struct (either of the two) into a [`MsgWire`].
macro_rules! msg_fields {
    ($w:ident) => {
        MsgWire {
            t_us: $w.t_us,
            source: $w.source,
            event: $w.event,
            stream: $w.stream,
            seq: $w.seq,
            intended_us: $w.intended_us,
            lateness_us: $w.lateness_us,
            server_id: $w.server_id,
            pod: $w.pod,
            attempt: $w.attempt,
            received_us: $w.received_us,
            processing_start_us: $w.processing_start_us,
            processing_end_us: $w.processing_end_us,
            error: $w.error,
        }
    };
}

/// The kind of a per-message event (`None` for any other tag), or the field it lacks.
fn msg_kind(w: MsgWire) -> Option<Result<EventKind, String>> {
    macro_rules! ok {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Some(Err(e)),
            }
        };
    }
    macro_rules! r {
        ($f:ident) => {
            ok!(req(w.$f, stringify!($f)))
        };
    }
    let id = match (w.stream, w.seq) {
        (Some(stream), Some(seq)) => Ok(MsgId { stream, seq }),
        (None, _) => Err("missing field `stream`".to_string()),
        (_, None) => Err("missing field `seq`".to_string()),
    };
    let kind = match w.event {
        Tag::Scheduled => EventKind::Scheduled {
            intended_us: r!(intended_us),
            id: ok!(id),
        },
        Tag::Published => EventKind::Published {
            lateness_us: r!(lateness_us),
            server_id: w.server_id,
            id: ok!(id),
        },
        Tag::PublishFailed => EventKind::PublishFailed {
            error: r!(error),
            id: ok!(id),
        },
        Tag::Delivered => EventKind::Delivered {
            pod: r!(pod),
            attempt: r!(attempt),
            id: ok!(id),
        },
        Tag::Completed => EventKind::Completed {
            pod: r!(pod),
            received_us: w.received_us,
            processing_start_us: w.processing_start_us,
            processing_end_us: w.processing_end_us,
            id: ok!(id),
        },
        Tag::Duplicate => EventKind::Duplicate {
            pod: r!(pod),
            id: ok!(id),
        },
        Tag::Lost => EventKind::Lost { id: ok!(id) },
        _ => return None,
    };
    Some(Ok(kind))
}

impl TryFrom<Wire> for Event {
    type Error = String;

    fn try_from(w: Wire) -> Result<Event, String> {
        macro_rules! r {
            ($f:ident) => {
                req(w.$f, stringify!($f))?
            };
        }
        let kind = match w.event {
            Tag::Scheduled
            | Tag::Published
            | Tag::PublishFailed
            | Tag::Delivered
            | Tag::Completed
            | Tag::Duplicate
            | Tag::Lost => {
                let m = msg_fields!(w);
                return Ok(Event {
                    t_us: m.t_us,
                    source: m.source,
                    kind: msg_kind(m).expect("a per-message tag")?,
                });
            }
            Tag::RunStarted => EventKind::RunStarted {
                log_version: r!(log_version),
                run_id: r!(run_id),
                workload: r!(workload),
                seed: r!(seed),
                target: r!(target),
                wall_clock_start_unix_us: r!(wall_clock_start_unix_us),
                streams: r!(streams),
                warmup_us: r!(warmup_us),
                deadline_us: r!(deadline_us),
                price_per_gpu_hour_usd: r!(price_per_gpu_hour_usd),
                shard: w.shard.clone(),
                pipelines: w.pipelines.unwrap_or_default(),
                cluster_observed: w.cluster_observed,
                overrides: w.overrides.unwrap_or_default(),
                timer_slack_us: w.timer_slack_us,
            },
            Tag::RunFinished => EventKind::RunFinished {
                reason: w.reason.clone(),
                interrupted: r!(interrupted),
            },
            Tag::HttpCalled => EventKind::HttpCalled {
                stream: r!(stream),
                step: r!(step),
                method: r!(method),
                url: r!(url),
                intended_us: r!(intended_us),
                status: w.status,
                error: w.error,
                response_time_us: r!(response_time_us),
                simulated: r!(simulated),
            },
            Tag::Backlog => EventKind::Backlog {
                subscription: r!(subscription),
                depth: r!(depth),
                view: w.view,
                point_age_us: w.point_age_us,
            },
            Tag::ResultsIgnored => EventKind::ResultsIgnored {
                other_runs: r!(other_runs),
                malformed: r!(malformed),
                example: w.example,
            },
            Tag::HarnessCpu => EventKind::HarnessCpu {
                process_cpu_us: r!(process_cpu_us),
                machine_busy_us: w.machine_busy_us,
                machine_total_us: w.machine_total_us,
                cores: r!(cores),
            },
            Tag::MetricRead => EventKind::MetricRead {
                scaled_object: r!(scaled_object),
                value: r!(value),
            },
            Tag::ScalerActive => EventKind::ScalerActive {
                scaled_object: r!(scaled_object),
                active: r!(active),
            },
            Tag::ScalerCondition => EventKind::ScalerCondition {
                scaled_object: r!(scaled_object),
                condition: r!(condition),
                active: r!(active),
                reason: w.reason,
            },
            Tag::Replicas => EventKind::Replicas {
                deployment: r!(deployment),
                desired: r!(desired),
                ready: w.ready,
            },
            Tag::ScaleTarget => EventKind::ScaleTarget {
                scaled_object: r!(scaled_object),
                deployment: r!(deployment),
                subscription: w.subscription,
            },
            Tag::PodCreated => EventKind::PodCreated {
                pod: r!(pod),
                deployment: r!(deployment),
                preexisting: r!(preexisting),
            },
            Tag::PodUnschedulable => EventKind::PodUnschedulable {
                pod: r!(pod),
                reason: r!(reason),
            },
            Tag::ColdStartProblem => EventKind::ColdStartProblem {
                pod: w.pod,
                phase: r!(phase),
                reason: r!(reason),
                node_group: w.node_group,
                source_event: r!(source_event),
                count: w.count.unwrap_or(1),
                message: w.message.unwrap_or_default(),
            },
            Tag::ScaleUpTriggered => EventKind::ScaleUpTriggered {
                node_group: r!(node_group),
                from: r!(from),
                to: r!(to),
            },
            Tag::PodScheduled => EventKind::PodScheduled {
                pod: r!(pod),
                node: r!(node),
            },
            Tag::ImagePulling => EventKind::ImagePulling {
                pod: r!(pod),
                image: r!(image),
            },
            Tag::ImagePulled => EventKind::ImagePulled {
                pod: r!(pod),
                image: r!(image),
                duration_us: r!(duration_us),
                bytes: w.bytes,
                cached: r!(cached),
            },
            Tag::ContainerStarted => EventKind::ContainerStarted { pod: r!(pod) },
            Tag::ModelLoaded => EventKind::ModelLoaded {
                pod: r!(pod),
                duration_us: w.duration_us,
            },
            Tag::PodReady => EventKind::PodReady { pod: r!(pod) },
            Tag::PodNotReady => EventKind::PodNotReady {
                pod: r!(pod),
                reason: r!(reason),
            },
            Tag::PodDeleted => EventKind::PodDeleted { pod: r!(pod) },
            Tag::NodeCreated => EventKind::NodeCreated {
                node: r!(node),
                pool: r!(pool),
                gpus: r!(gpus),
                preexisting: r!(preexisting),
            },
            Tag::NodeReady => EventKind::NodeReady { node: r!(node) },
            Tag::GpuAllocatable => EventKind::GpuAllocatable {
                node: r!(node),
                gpus: r!(gpus),
            },
            Tag::NodeDeleted => EventKind::NodeDeleted { node: r!(node) },
            Tag::SimPodTruth => EventKind::SimPodTruth {
                pod: r!(pod),
                phases: r!(phases),
            },
        };
        Ok(Event {
            t_us: w.t_us,
            source: w.source,
            kind,
        })
    }
}
