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
#[serde(try_from = "wire::Wire")]
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
        /// `INDEX/COUNT` when this run was one shard of a workload spread over machines (`run --shard`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<String>,
        /// Each stream's names across Pub/Sub and Kubernetes (its topic, subscription, Deployment and
        /// ScaledObject): how the analysis ties cluster objects and worker reports to streams. Absent in logs
        /// written before it existed (then a Deployment is assumed to be named like its stream).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pipelines: Vec<PipelineNames>,
        /// Whether a producer observed the cluster's nodes and pods (the simulator, the Kubernetes watchers, an
        /// import): without one, GPU nodes and cost are unknown, not zero. Absent in older logs (then inferred
        /// from node events).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster_observed: Option<bool>,
        /// The `--set KEY=VALUE` overrides applied to the workload file, as given: a run is reproduced by its
        /// file and these (the results folder's `workload.toml` is the file with them applied).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        overrides: Vec<String>,
        /// A real-time run's `[run] timer_slack`, µs: the pacer may send up to this late by design, so the
        /// analysis judges its lateness beyond it. Absent for the simulator (which paces nothing) and in older
        /// logs (then 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timer_slack_us: Option<u64>,
    },
    RunFinished {
        interrupted: bool,
        /// Why a run stopped early: a signal, or the threshold that aborted it.
        reason: Option<String>,
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
        /// Whose view this is: absent for the true backlog (the simulator's, or published − completed as the
        /// harness counts it); `emulator`, `prometheus` or `cloud-monitoring` for the metric an autoscaler reads.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<String>,
        /// How old the value was when it was read (µs), where the view stamps its points: the read's wall-clock
        /// time less a Cloud Monitoring point's interval end. The autoscaler reading the same metric sees values
        /// this old. Absent where the view has no point time (the emulator's endpoint is live; a Prometheus
        /// instant query is stamped with its evaluation time).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        point_age_us: Option<u64>,
    },
    /// Results-topic messages the tracker could not use: completions of other runs, and malformed ones.
    ResultsIgnored {
        other_runs: u64,
        malformed: u64,
        /// The first malformed message's problem.
        example: Option<String>,
    },
    /// The harness's CPU use from the run's start to this event (cumulative: the last one covers the run), sampled
    /// once a second by a live run and once at its end ([`crate::observe::host`]). It tells a pacer that fell
    /// behind because the machine had no CPU to spare from one that did not.
    HarnessCpu {
        /// The harness process's CPU time, user + system, every thread (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`), µs.
        process_cpu_us: u64,
        /// The whole machine's busy CPU time, every core (`/proc/stat`: all but idle and iowait; steal counts
        /// as busy: the hypervisor gave that time to someone else), µs; `None` where `/proc/stat` is unreadable.
        machine_busy_us: Option<u64>,
        /// The whole machine's CPU time, busy or not, every core, µs; `None` with `machine_busy_us`.
        machine_total_us: Option<u64>,
        /// The CPUs the harness may run on (`std::thread::available_parallelism`: affinity and cgroup quota).
        cores: u32,
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
    /// A condition of a KEDA ScaledObject (`Ready`, `Active`, `Fallback`, `Paused`) or of the HPA it manages
    /// (`AbleToScale`, `ScalingActive`, `ScalingLimited`) as the cluster reported it.
    ScalerCondition {
        scaled_object: String,
        condition: String,
        /// The condition's status is `True`.
        active: bool,
        /// The condition's reason and message.
        reason: Option<String>,
    },
    /// A Deployment's desired and ready replicas. `ready` is `None` where the producer cannot see it (an
    /// Event such as KEDA's activation or the Deployment controller's `ScalingReplicaSet` names only the
    /// desired count).
    Replicas {
        deployment: String,
        desired: u32,
        ready: Option<u32>,
    },
    /// A KEDA ScaledObject and what it scales (`spec.scaleTargetRef`) on which subscription (its trigger's
    /// `subscriptionName`, a `metrics-api` URL's last segment, or a query's `subscription_id`): what ties a
    /// cluster's names to a stream. Emitted once per object by the watchers, `import` and the simulator.
    ScaleTarget {
        scaled_object: String,
        deployment: String,
        subscription: Option<String>,
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
    /// Something the cluster reported that lengthened a cold start: a failed or refused scale-up
    /// (cluster-autoscaler's `FailedScaleUp`, `NotTriggerScaleUp`), a failed image pull or its back-off, a pod
    /// sandbox or volume that could not be set up, a failing probe.
    ColdStartProblem {
        /// The pod it happened to.
        pod: Option<String>,
        /// The phase it lengthened: `node_provisioning`, `image_pull`, `container_start` or `model_load`.
        phase: String,
        /// The cause in the producer's words: `GCE out of resources`, `IP space exhausted`, `in backoff after
        /// failed scale-up`, `ErrImagePull`, `ImagePullBackOff`, `FailedCreatePodSandBox`, `readiness probe
        /// failed`...
        reason: String,
        /// Where, when the producer says: the zones of a failed scale-up.
        node_group: Option<String>,
        /// The Event it came from (its uid, or namespace/name), and how often that Event had happened by then
        /// (`count`): one Event seen several times counts once, at its highest count.
        source_event: String,
        count: u32,
        message: String,
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
    /// A ready pod stopped being ready (its container exited and restarts, or its readiness probe failed).
    PodNotReady {
        pod: String,
        reason: String,
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

impl EventKind {
    /// The message this event is about, for the kinds that are about one message.
    pub fn msg_id(&self) -> Option<&MsgId> {
        match self {
            EventKind::Scheduled { id, .. }
            | EventKind::Published { id, .. }
            | EventKind::PublishFailed { id, .. }
            | EventKind::Delivered { id, .. }
            | EventKind::Completed { id, .. }
            | EventKind::Duplicate { id, .. }
            | EventKind::Lost { id } => Some(id),
            _ => None,
        }
    }
}

impl Event {
    /// The same event on a time axis that starts `delta_us` earlier: its time and every run-relative instant it
    /// carries move by `delta_us` (durations do not). Used to put shards that started apart on one axis.
    pub fn shifted(mut self, delta_us: u64) -> Event {
        self.t_us += delta_us;
        match &mut self.kind {
            EventKind::Scheduled { intended_us, .. }
            | EventKind::HttpCalled { intended_us, .. } => *intended_us += delta_us,
            EventKind::Completed {
                received_us,
                processing_start_us,
                processing_end_us,
                ..
            } => {
                for t in [received_us, processing_start_us, processing_end_us]
                    .into_iter()
                    .flatten()
                {
                    *t += delta_us;
                }
            }
            EventKind::RunStarted { deadline_us, .. } => *deadline_us += delta_us,
            _ => {}
        }
        self
    }
}

/// One stream's names across Pub/Sub and Kubernetes, as the run header records them. `deployment` and
/// `scaled_object` are `None` when the workload does not name them: the stream's name is then assumed, unless a
/// watched cluster's ScaledObject says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PipelineNames {
    pub stream: String,
    pub topic: String,
    /// The workers' subscription (short name).
    pub subscription: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaled_object: Option<String>,
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

pub mod log;
pub(crate) mod wire;

impl Event {
    pub fn new(t_us: u64, source: Source, kind: EventKind) -> Self {
        Event { t_us, source, kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64) -> MsgId {
        MsgId {
            stream: "upscale".into(),
            seq,
        }
    }

    /// One of every kind, with optional fields both present and absent.
    pub(crate) fn every_kind() -> Vec<EventKind> {
        vec![
            EventKind::RunStarted {
                log_version: EVENT_LOG_VERSION,
                run_id: "r".into(),
                workload: "w".into(),
                seed: 3,
                target: "sim".into(),
                wall_clock_start_unix_us: 1,
                streams: vec!["upscale".into(), "comic".into()],
                warmup_us: 2,
                deadline_us: 4,
                price_per_gpu_hour_usd: 0.48,
                shard: Some("1/3".into()),
                pipelines: vec![PipelineNames {
                    stream: "upscale".into(),
                    topic: "imagen-upscale".into(),
                    subscription: "imagen-upscale-sub".into(),
                    deployment: Some("upscale-worker".into()),
                    scaled_object: None,
                }],
                cluster_observed: Some(false),
                overrides: Vec::new(),
                timer_slack_us: Some(200),
            },
            EventKind::RunFinished {
                interrupted: true,
                reason: Some("signal".into()),
            },
            EventKind::Scheduled {
                id: id(1),
                intended_us: 5,
            },
            EventKind::Published {
                id: id(1),
                lateness_us: 6,
                server_id: Some("s".into()),
            },
            EventKind::Published {
                id: id(2),
                lateness_us: 0,
                server_id: None,
            },
            EventKind::PublishFailed {
                id: id(3),
                error: "e".into(),
            },
            EventKind::Delivered {
                id: id(1),
                pod: "p".into(),
                attempt: 2,
            },
            EventKind::Completed {
                id: id(1),
                pod: "p".into(),
                received_us: Some(1),
                processing_start_us: Some(2),
                processing_end_us: Some(3),
            },
            EventKind::Completed {
                id: id(2),
                pod: "p".into(),
                received_us: None,
                processing_start_us: None,
                processing_end_us: None,
            },
            EventKind::Duplicate {
                id: id(1),
                pod: "p".into(),
            },
            EventKind::Lost { id: id(4) },
            EventKind::HttpCalled {
                stream: "upscale".into(),
                step: 1,
                method: "POST".into(),
                url: "http://127.0.0.1/warmup".into(),
                intended_us: 7,
                status: Some(202),
                error: None,
                response_time_us: 8,
                simulated: false,
            },
            EventKind::Backlog {
                subscription: "s".into(),
                depth: 9,
                view: None,
                point_age_us: None,
            },
            EventKind::Backlog {
                subscription: "s".into(),
                depth: 7,
                view: Some("emulator".into()),
                point_age_us: None,
            },
            EventKind::Backlog {
                subscription: "s".into(),
                depth: 5,
                view: Some("cloud-monitoring".into()),
                point_age_us: Some(3),
            },
            EventKind::ResultsIgnored {
                other_runs: 2,
                malformed: 1,
                example: Some("attribute `imagen_load_id` is missing".into()),
            },
            EventKind::HarnessCpu {
                process_cpu_us: 1_500_000,
                machine_busy_us: Some(3_000_000),
                machine_total_us: Some(4_000_000),
                cores: 2,
            },
            EventKind::HarnessCpu {
                process_cpu_us: 10,
                machine_busy_us: None,
                machine_total_us: None,
                cores: 1,
            },
            EventKind::MetricRead {
                scaled_object: "o".into(),
                value: 1.5,
            },
            EventKind::ScalerActive {
                scaled_object: "o".into(),
                active: true,
            },
            EventKind::ScalerCondition {
                scaled_object: "o".into(),
                condition: "Fallback".into(),
                active: true,
                reason: Some("FallbackExists: At least one trigger is falling back".into()),
            },
            EventKind::Replicas {
                deployment: "d".into(),
                desired: 2,
                ready: Some(1),
            },
            EventKind::Replicas {
                deployment: "d".into(),
                desired: 1,
                ready: None,
            },
            EventKind::ScaleTarget {
                scaled_object: "upscale-scaler".into(),
                deployment: "upscale-worker".into(),
                subscription: Some("imagen-upscale-sub".into()),
            },
            EventKind::ScaleTarget {
                scaled_object: "o".into(),
                deployment: "d".into(),
                subscription: None,
            },
            EventKind::PodCreated {
                pod: "p".into(),
                deployment: "d".into(),
                preexisting: false,
            },
            EventKind::PodUnschedulable {
                pod: "p".into(),
                reason: "r".into(),
            },
            EventKind::ScaleUpTriggered {
                node_group: "g".into(),
                from: 0,
                to: 2,
            },
            EventKind::ColdStartProblem {
                pod: Some("p".into()),
                phase: "node_provisioning".into(),
                reason: "GCE out of resources".into(),
                node_group: Some("us-central1-a".into()),
                source_event: "uid-1".into(),
                count: 2,
                message: "Node scale up in zones us-central1-a associated with this pod failed: GCE out of resources. Pod is at risk of not being scheduled.".into(),
            },
            EventKind::ColdStartProblem {
                pod: None,
                phase: "image_pull".into(),
                reason: "ErrImagePull".into(),
                node_group: None,
                source_event: "uid-2".into(),
                count: 1,
                message: String::new(),
            },
            EventKind::PodScheduled {
                pod: "p".into(),
                node: "n".into(),
            },
            EventKind::ImagePulling {
                pod: "p".into(),
                image: "i".into(),
            },
            EventKind::ImagePulled {
                pod: "p".into(),
                image: "i".into(),
                duration_us: 10,
                bytes: Some(11),
                cached: false,
            },
            EventKind::ImagePulled {
                pod: "p".into(),
                image: "i".into(),
                duration_us: 0,
                bytes: None,
                cached: true,
            },
            EventKind::ContainerStarted { pod: "p".into() },
            EventKind::ModelLoaded {
                pod: "p".into(),
                duration_us: Some(12),
            },
            EventKind::ModelLoaded {
                pod: "p".into(),
                duration_us: None,
            },
            EventKind::PodReady { pod: "p".into() },
            EventKind::PodNotReady {
                pod: "p".into(),
                reason: "r".into(),
            },
            EventKind::PodDeleted { pod: "p".into() },
            EventKind::NodeCreated {
                node: "n".into(),
                pool: "g".into(),
                gpus: 1,
                preexisting: true,
            },
            EventKind::NodeReady { node: "n".into() },
            EventKind::GpuAllocatable {
                node: "n".into(),
                gpus: 1,
            },
            EventKind::NodeDeleted { node: "n".into() },
            EventKind::SimPodTruth {
                pod: "p".into(),
                phases: PodPhaseTruth {
                    node_provisioning_us: 1,
                    image_pull_us: 2,
                    container_start_us: 3,
                    model_load_us: 4,
                    ready_us: 5,
                },
            },
        ]
    }

    #[test]
    fn events_round_trip_as_flat_json() {
        let e = Event::new(
            5,
            Source::Sim,
            EventKind::Published {
                id: id(3),
                lateness_us: 0,
                server_id: None,
            },
        );
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(
            line,
            r#"{"t_us":5,"source":"sim","event":"published","stream":"upscale","seq":3,"lateness_us":0,"server_id":null}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
    }

    /// The fast reader (a flat wire struct) and the derived writer agree on every kind.
    #[test]
    fn every_kind_round_trips() {
        for (i, kind) in every_kind().into_iter().enumerate() {
            let e = Event::new(i as u64, Source::Kube, kind);
            let line = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e, "{line}");
        }
    }

    /// The log reader's guess from a line's text sends every per-message event, as the writer writes it, to the
    /// small struct, and every other kind straight to the whole one (only speed depends on it).
    #[test]
    fn the_log_readers_guess_from_the_text_sorts_the_kinds() {
        for kind in every_kind() {
            let per_message = matches!(
                kind,
                EventKind::Scheduled { .. }
                    | EventKind::Published { .. }
                    | EventKind::PublishFailed { .. }
                    | EventKind::Delivered { .. }
                    | EventKind::Completed { .. }
                    | EventKind::Duplicate { .. }
                    | EventKind::Lost { .. }
            );
            let line = serde_json::to_string(&Event::new(1, Source::Harness, kind)).unwrap();
            assert_eq!(wire::may_be_per_message(&line), per_message, "{line}");
        }
    }

    /// The log reader's fast path (per-message events through a small struct) reads what the derived reader
    /// reads, for every kind, in the writer's key order and in another (sorted, as a JSON tool re-emitting a line
    /// would), spaced, with escapes; and where a field of the kind is missing it fails with the same message.
    /// One difference, on purpose: a field a per-message kind does not have is ignored whatever its value, as an
    /// unknown one is (the derived reader also type-checks the fields of other kinds).
    #[test]
    fn the_log_reader_reads_every_line_as_the_derived_reader() {
        let mut kinds = every_kind();
        kinds.push(EventKind::Scheduled {
            id: MsgId {
                stream: "up\"scale\u{e9}\n".into(),
                seq: 7,
            },
            intended_us: 3,
        });
        for (i, kind) in kinds.into_iter().enumerate() {
            let e = Event::new(i as u64, Source::Worker, kind);
            let line = serde_json::to_string(&e).unwrap();
            let sorted =
                serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&line).unwrap())
                    .unwrap()
                    .replace(',', " , ");
            // Spaced as a JSON tool may write it: the reader's guess of the kind from the text does not find it.
            let spaced = line.replacen("\"event\":", "\"event\": ", 1);
            for text in [&line, &sorted, &spaced] {
                assert_eq!(wire::parse_line(text.as_bytes()).unwrap(), e, "{text}");
            }
            // Each field removed in turn: read or refused as the derived reader does.
            let serde_json::Value::Object(fields) = serde_json::from_str(&line).unwrap() else {
                unreachable!()
            };
            for key in fields.keys() {
                let mut less = fields.clone();
                less.remove(key);
                let text = serde_json::to_string(&less).unwrap();
                let derived = serde_json::from_str::<Event>(&text).map_err(|e| e.to_string());
                let fast = wire::parse_line(text.as_bytes()).map_err(|e| e.to_string());
                assert_eq!(fast, derived, "{text}");
            }
        }
        let other =
            r#"{"t_us":1,"source":"harness","event":"lost","stream":"s","seq":1,"status":70000}"#;
        assert!(serde_json::from_str::<Event>(other).is_err());
        assert_eq!(
            wire::parse_line(other.as_bytes()).unwrap().kind,
            EventKind::Lost {
                id: MsgId {
                    stream: "s".into(),
                    seq: 1
                }
            }
        );
        let bad =
            b"{\"t_us\":1,\"source\":\"harness\",\"event\":\"lost\",\"stream\":\"\xff\",\"seq\":1}";
        assert_eq!(
            wire::parse_line(bad).unwrap_err().to_string(),
            serde_json::from_slice::<Event>(bad)
                .unwrap_err()
                .to_string()
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_ones_named() {
        let e: Event = serde_json::from_str(
            r#"{"t_us":1,"source":"kube","event":"pod_ready","pod":"p","extra":1}"#,
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::PodReady { pod: "p".into() });
        let err =
            serde_json::from_str::<Event>(r#"{"t_us":1,"source":"kube","event":"pod_ready"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("`pod`"), "{err}");
        assert!(
            serde_json::from_str::<Event>(
                r#"{"t_us":1,"source":"kube","event":"pod_exploded","pod":"p"}"#
            )
            .is_err()
        );
    }
}
