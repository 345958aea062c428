//! The one event vocabulary. Every observation (scheduled, published, completed, pod/node/image/model phases,
//! replicas, backlog) is an [`Event`]: a time in microseconds since the run started, the source that saw it, and
//! what was seen. The simulator, the Pub/Sub tracker and the Kubernetes watchers are only producers of these;
//! analysis is a pure function of a list of them. `events.jsonl` holds one per line.

use serde::{Deserialize, Serialize};

/// Version of the event format, written in the `run_started` header of every log.
pub const EVENT_LOG_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The harness itself (pacer, publisher, run lifecycle).
    Harness,
    /// The built-in simulator.
    Sim,
    Pubsub,
    Kube,
    Worker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Observed time, microseconds since the run started (the run's time zero is the pacer's origin).
    pub t_us: u64,
    pub source: Source,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Identifies a message: its stream and its sequence number in that stream (from 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MsgId {
    pub stream: String,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        log_version: u32,
        run_id: String,
        workload: String,
        seed: u64,
        target: String,
        /// Wall-clock time of t_us = 0, microseconds since the Unix epoch; 0 for simulated runs (virtual time).
        wall_clock_start_unix_us: u64,
        streams: Vec<String>,
        /// Messages intended after this offset are still in the statistics; before it, excluded (warm-up).
        warmup_us: u64,
        /// Messages not completed by this offset are lost.
        deadline_us: u64,
        /// Price per GPU-hour used for cost (so cost can be re-analysed from the log alone).
        price_per_gpu_hour_usd: f64,
    },
    RunFinished {
        interrupted: bool,
    },
    // ---- messages
    Scheduled {
        #[serde(flatten)]
        id: MsgId,
        intended_us: u64,
    },
    /// Stamped when Pub/Sub acknowledged the publish.
    Published {
        #[serde(flatten)]
        id: MsgId,
        /// Actual send − intended send: the generator's own lag.
        lateness_us: u64,
        server_id: Option<String>,
    },
    PublishFailed {
        #[serde(flatten)]
        id: MsgId,
        error: String,
    },
    /// A worker received the message (a pull delivery). `attempt` counts from 1.
    Delivered {
        #[serde(flatten)]
        id: MsgId,
        pod: String,
        attempt: u32,
    },
    Completed {
        #[serde(flatten)]
        id: MsgId,
        pod: String,
        /// Worker-reported timestamps (µs since run start on the worker's clock), where the worker reports them.
        received_us: Option<u64>,
        processing_start_us: Option<u64>,
        processing_end_us: Option<u64>,
    },
    Duplicate {
        #[serde(flatten)]
        id: MsgId,
        pod: String,
    },
    Lost {
        #[serde(flatten)]
        id: MsgId,
    },
    HttpCalled {
        stream: String,
        step: u32,
        method: String,
        url: String,
        intended_us: u64,
        status: Option<u16>,
        error: Option<String>,
        response_time_us: u64,
        simulated: bool,
    },
    // ---- queue and scaling
    Backlog {
        subscription: String,
        depth: u64,
    },
    /// The value KEDA/HPA read for the scaler's metric at this time (after sampling and lag).
    MetricRead {
        scaled_object: String,
        value: f64,
    },
    ScalerActive {
        scaled_object: String,
        active: bool,
    },
    Replicas {
        deployment: String,
        desired: u32,
        ready: u32,
    },
    // ---- pods
    PodCreated {
        pod: String,
        deployment: String,
        /// Present before the run started (initial state); not a cold start.
        preexisting: bool,
    },
    PodUnschedulable {
        pod: String,
        reason: String,
    },
    ScaleUpTriggered {
        node_group: String,
        from: u32,
        to: u32,
    },
    PodScheduled {
        pod: String,
        node: String,
    },
    ImagePulling {
        pod: String,
        image: String,
    },
    ImagePulled {
        pod: String,
        image: String,
        /// The kubelet-reported pull time (0 when cached).
        duration_us: u64,
        bytes: Option<u64>,
        cached: bool,
    },
    ContainerStarted {
        pod: String,
    },
    ModelLoaded {
        pod: String,
        /// Worker-reported load time, where known.
        duration_us: Option<u64>,
    },
    PodReady {
        pod: String,
    },
    PodDeleted {
        pod: String,
    },
    // ---- nodes
    NodeCreated {
        node: String,
        pool: String,
        gpus: u32,
        preexisting: bool,
    },
    NodeReady {
        node: String,
    },
    GpuAllocatable {
        node: String,
        gpus: u32,
    },
    NodeDeleted {
        node: String,
    },
    /// Simulator ground truth of one pod's cold start, for tests that compare analysis with truth.
    SimPodTruth {
        pod: String,
        phases: PodPhaseTruth,
    },
}

/// Exact per-pod phase durations known to the simulator (µs); `None` where the phase did not apply.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PodPhaseTruth {
    pub node_provisioning_us: u64,
    pub image_pull_us: u64,
    pub container_start_us: u64,
    pub model_load_us: u64,
    pub ready_us: u64,
}

impl Event {
    pub fn new(t_us: u64, source: Source, kind: EventKind) -> Self {
        Event { t_us, source, kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_as_flat_json() {
        let e = Event::new(
            5,
            Source::Sim,
            EventKind::Published { id: MsgId { stream: "upscale".into(), seq: 3 }, lateness_us: 0, server_id: None },
        );
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(line, r#"{"t_us":5,"source":"sim","event":"published","stream":"upscale","seq":3,"lateness_us":0,"server_id":null}"#);
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
    }
}
