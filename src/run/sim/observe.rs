//! The simulator as each real producer would observe it (`[sim] observe`, [`Observe`]). The simulated stack is
//! the same; what reaches the log is what a real producer would have recorded of it, through the same code the
//! real producers' output goes through:
//! - the cluster (`kube`, `kube+worker`, `events-only`) becomes Kubernetes objects as a watch delivers them (Pod,
//!   Node, Deployment and ScaledObject objects with cluster names and whole-second stamps, and Events with the
//!   kubelet's, scheduler's, controllers', cluster-autoscaler's and KEDA's wording), each delivered some
//!   milliseconds late, and translated by the watchers' own [`Translator`];
//! - the workers (`worker`, `kube+worker`, and the completions in every mode) become results-topic messages as
//!   the reference worker publishes them, read by the completion tracker's own [`Matcher`].
//!
//! So the simulator's ground truth (`sim_pod_truth`, and [`Truth`] per message) can check the analysis against
//! what real producers emit, not against the simulator's own names and exact times. Message texts follow
//! Kubernetes 1.33 (kubernetes/kubernetes `pkg/kubelet/images/image_manager.go`,
//! `pkg/kubelet/kuberuntime/kuberuntime_container.go`, `pkg/scheduler/schedule_one.go`,
//! `pkg/controller/deployment/sync.go`), kubernetes/autoscaler `processors/status/eventing_scale_up_processor.go`
//! and KEDA 2.x `pkg/scaling/executor/scale_scaledobjects.go`.

use crate::event::{Event, EventKind, MsgId, Source};
use crate::observe::cluster::import::ts;
use crate::observe::cluster::watch::{Delivery, Translator};
use crate::observe::pubsub::contract::{self, Report, ReportKind};
use crate::observe::pubsub::tracker::{Matcher, RunClock};
use crate::plan::sim::Observe;
use crate::plan::workload::Plan;
use crate::units::SeededRng;
use crate::units::derive_seed;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use tokio::sync::mpsc;

/// The simulated cluster's wall clock at the run's time zero: 2026-01-01T00:00:00Z (µs since the epoch). Its
/// objects carry real-looking timestamps, and whole seconds fall on whole seconds of the run.
pub const SIM_EPOCH_UNIX_US: u64 = 1_767_225_600_000_000;
/// A watch delivers an object this long after it changed (uniform, ms).
const WATCH_DELAY_MS: (u64, u64) = (20, 300);
/// A results message reaches the tracker this long after the worker published it (uniform, ms).
const RESULT_DELAY_MS: (u64, u64) = (5, 50);
/// Events are held this long before they are released in time order (µs): whole-second stamps and delivery
/// delays put an observation up to 1 s + the watch delay before the moment it is translated.
const HOLD_US: u64 = 2_000_000;
/// The longest a delivery being processed holds back the release of later events (µs).
const MAX_HOLD_US: u64 = 900_000_000;
const NAMESPACE: &str = "imagen";
/// How long the API server keeps an Event after its last write (`kube-apiserver --event-ttl`, default 1 h).
const EVENT_TTL_US: u64 = 3_600_000_000;
const CONTAINER: &str = "worker";
/// The characters of a pod-template hash (`rand.SafeEncodeString` of decimal digits) and of a pod's random
/// suffix (`utilrand.String`), as the apiserver and the Deployment controller make them.
const HASH_CHARS: &[u8] = b"456789bcdf";
const SUFFIX_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// What the simulator knows of one message that no producer shows: when it was stored, when its pipeline
/// first had a ready replica after that, and when a worker started and ended processing it (µs since the run
/// started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageTruth {
    pub intended_us: u64,
    pub published_us: u64,
    /// When a ready replica of its pipeline first existed at or after publication.
    pub capacity_us: Option<u64>,
    pub processing_start_us: Option<u64>,
    pub completed_us: Option<u64>,
}

/// Ground truth the simulator collects for tests, keyed by message.
#[derive(Debug, Default)]
pub struct Truth {
    pub messages: HashMap<MsgId, MessageTruth>,
    /// Per stream, messages waiting for the first ready replica.
    pub(crate) waiting: Vec<Vec<MsgId>>,
    /// Pods whose worker process started (what a worker-only view can see), by the simulator's names.
    pub started_pods: std::collections::HashSet<String>,
}

#[derive(Debug, Clone)]
struct Names {
    stream: String,
    deployment: String,
    replica_set: String,
    scaled_object: String,
    subscription_path: String,
    image: String,
}

struct PodView {
    name: String,
    p: usize,
    uid: String,
    object: Value,
    pulling_since: Option<u64>,
    started_us: Option<u64>,
    model_ready_us: Option<u64>,
    restarts: u32,
}

struct NodeView {
    name: String,
    object: Value,
}

/// Something a producer will hand over later: a watch delivery, or a results message.
enum Pending {
    Object {
        object: Value,
        deleted: bool,
    },
    Result {
        attributes: BTreeMap<String, String>,
        data: Vec<u8>,
        /// The delivery it completes (stream, sequence, simulated pod): in flight until the tracker has it.
        completes: Option<(String, u64, String)>,
    },
}

/// An event held for release in time order.
struct Held {
    t: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.t, self.seq).cmp(&(o.t, o.seq))
    }
}

/// Re-expresses the simulator's events as the producers of `mode` would record them.
pub(crate) struct Lens {
    mode: Observe,
    names: Vec<Names>,
    rng: SeededRng,
    translator: Option<(Translator, mpsc::UnboundedReceiver<Event>)>,
    matcher: Matcher,
    run_id: String,
    /// (deliver at µs since the run started, order) → what.
    pending: BinaryHeap<Reverse<(u64, u64)>>,
    pending_items: HashMap<u64, Pending>,
    out: BinaryHeap<Reverse<Held>>,
    seq: u64,
    now: u64,
    /// Deliveries being processed: (stream, seq, sim pod) → received µs; and their received times.
    in_flight: HashMap<(String, u64, String), u64>,
    in_flight_t: BTreeMap<u64, u32>,
    /// Deliveries completed whose report is on its way: in flight until the tracker has it, whatever becomes of
    /// the pod meanwhile.
    reporting: std::collections::HashSet<(String, u64, String)>,
    pods: HashMap<String, PodView>,
    nodes: HashMap<String, NodeView>,
    /// Pods the scheduler could not place yet (sim names), for the autoscaler's events.
    unschedulable: Vec<String>,
    desired: Vec<u32>,
    /// Kubernetes Event objects by key (object, reason, message), for aggregation (`count`, `lastTimestamp`).
    kube_events: HashMap<(String, String, String), Value>,
    max_nodes: u32,
    node_hash: String,
    pod_index: u64,
    /// Per watch (object kind), when it last delivered: a watch delivers its changes in order.
    watch_last: HashMap<String, u64>,
}

fn rfc3339(unix_us: u64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(unix_us),
    )
    .to_string()
}

fn rfc3339_micros(unix_us: u64) -> String {
    humantime::format_rfc3339_micros(
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(unix_us),
    )
    .to_string()
}

/// Go's `time.Duration.String()` of a duration truncated to milliseconds, as the kubelet prints pull times:
/// `500ms`, `4.546s`, `1m2.5s`.
fn go_duration_ms(us: u64) -> String {
    let ms = us / 1_000;
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let (h, m, s_ms) = (ms / 3_600_000, (ms / 60_000) % 60, ms % 60_000);
    let secs = if s_ms % 1_000 == 0 {
        format!("{}", s_ms / 1_000)
    } else {
        format!("{}.{:03}", s_ms / 1_000, s_ms % 1_000)
            .trim_end_matches('0')
            .to_string()
    };
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

fn pick(rng: &mut SeededRng, chars: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| chars[rng.random_range(0..chars.len())] as char)
        .collect()
}

impl Lens {
    pub(crate) fn new(plan: &Plan, run_id: &str) -> Lens {
        let mode = plan.sim.observe;
        let mut rng = SeededRng::seed_from_u64(derive_seed(plan.seed, &[0x0b5e]));
        let names = plan
            .streams
            .iter()
            .map(|s| {
                // A cluster's names, unlike the stream's unless the workload gives them.
                let deployment = s
                    .deployment
                    .clone()
                    .unwrap_or_else(|| format!("{}-worker", s.name));
                let replica_set = format!("{deployment}-{}", pick(&mut rng, HASH_CHARS, 10));
                Names {
                    stream: s.name.clone(),
                    scaled_object: s
                        .scaled_object
                        .clone()
                        .unwrap_or_else(|| format!("{}-scaler", s.name)),
                    subscription_path: format!(
                        "projects/imagen-load/subscriptions/{}",
                        s.subscription
                    ),
                    image: format!("us-docker.pkg.dev/imagen-load/imagen/{}-worker:1.0", s.name),
                    deployment,
                    replica_set,
                }
            })
            .collect();
        let translator = matches!(
            mode,
            Observe::Kube | Observe::KubeWorker | Observe::EventsOnly
        )
        .then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            (Translator::new(SIM_EPOCH_UNIX_US, false, tx).0, rx)
        });
        let clock = RunClock {
            origin: tokio::time::Instant::now(),
            wall_start_unix_us: SIM_EPOCH_UNIX_US,
        };
        let node_hash = format!("{:08x}", rng.random::<u32>());
        let mut lens = Lens {
            mode,
            names,
            rng,
            translator,
            matcher: Matcher::new(run_id, clock),
            run_id: run_id.to_string(),
            pending: BinaryHeap::new(),
            pending_items: HashMap::new(),
            out: BinaryHeap::new(),
            seq: 0,
            now: 0,
            in_flight: HashMap::new(),
            in_flight_t: BTreeMap::new(),
            reporting: Default::default(),
            pods: HashMap::new(),
            nodes: HashMap::new(),
            unschedulable: Vec::new(),
            desired: vec![0; plan.streams.len()],
            kube_events: HashMap::new(),
            max_nodes: plan.sim.autoscaler.max_nodes,
            node_hash,
            pod_index: 0,
            watch_last: HashMap::new(),
        };
        if lens.objects() {
            // The ScaledObjects exist before the run: what ties the cluster's names to the streams.
            for i in 0..lens.names.len() {
                let n = lens.names[i].clone();
                let so = json!({
                    "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                    "metadata": {"name": n.scaled_object, "namespace": NAMESPACE,
                        "creationTimestamp": rfc3339(SIM_EPOCH_UNIX_US - 86_400_000_000)},
                    "spec": {"scaleTargetRef": {"name": n.deployment},
                        "triggers": [{"type": "gcp-pubsub",
                            "metadata": {"subscriptionName": n.subscription_path, "mode": "SubscriptionSize", "value": "5"}}]},
                    "status": {"conditions": [{"type": "Ready", "status": "True",
                        "lastTransitionTime": rfc3339(SIM_EPOCH_UNIX_US - 86_400_000_000)}]}
                });
                lens.later(
                    0,
                    Pending::Object {
                        object: so,
                        deleted: false,
                    },
                );
            }
        }
        lens
    }

    /// Cluster objects (Pods, Nodes, Deployments, ScaledObjects) are watched.
    fn objects(&self) -> bool {
        matches!(self.mode, Observe::Kube | Observe::KubeWorker)
    }

    /// Kubernetes Events are recorded.
    fn kube_events_on(&self) -> bool {
        self.translator.is_some()
    }

    /// The workers report their own lifecycle on the results topic.
    fn worker_reports(&self) -> bool {
        matches!(self.mode, Observe::Worker | Observe::KubeWorker)
    }

    fn stream_of(&self, deployment: &str) -> usize {
        // The simulator names Deployments after the workload (its own stream name, or the workload's name).
        self.names
            .iter()
            .position(|n| n.deployment == deployment || n.stream == deployment)
            .unwrap_or(0)
    }

    fn later(&mut self, at_us: u64, what: Pending) {
        self.seq += 1;
        self.pending.push(Reverse((at_us, self.seq)));
        self.pending_items.insert(self.seq, what);
    }

    /// When the watch of `kind` delivers a change made now: a moment later, and never before the changes it
    /// delivered already (a watch is one ordered stream).
    fn watch_at(&mut self, kind: &str) -> u64 {
        let delay = self
            .rng
            .random_range(WATCH_DELAY_MS.0 * 1_000..=WATCH_DELAY_MS.1 * 1_000);
        let last = self.watch_last.entry(kind.to_string()).or_default();
        *last = (*last).max(self.now + delay);
        *last
    }

    /// A changed object, delivered by the watch a moment later.
    fn object(&mut self, object: Value, deleted: bool) {
        if self.objects() {
            let kind = object["kind"].as_str().unwrap_or("").to_string();
            let at = self.watch_at(&kind);
            self.later(at, Pending::Object { object, deleted });
        }
    }

    fn hold(&mut self, event: Event) {
        self.seq += 1;
        self.out.push(Reverse(Held {
            t: event.t_us,
            seq: self.seq,
            event,
        }));
    }

    /// Hands over what is due by `t` and releases the events no later observation can precede.
    fn advance(&mut self, t: u64, sink: &mut impl FnMut(Event)) {
        while let Some(&Reverse((at, k))) = self.pending.peek() {
            if at > t {
                break;
            }
            self.pending.pop();
            let what = self.pending_items.remove(&k).expect("pending item");
            self.hand_over(at, what);
        }
        if let Some((tr, _)) = &mut self.translator {
            tr.tick(SIM_EPOCH_UNIX_US + t);
        }
        self.drain_translator();
        // A completion reports its delivery at the worker's time: nothing is released before the oldest delivery
        // still being processed.
        // A delivery abandoned without a word (a worker killed at the end of its grace period) is no longer waited
        // for after MAX_HOLD_US.
        let oldest = self.in_flight_t.keys().next().copied().unwrap_or(u64::MAX);
        let watermark = t
            .saturating_sub(HOLD_US)
            .min(oldest.max(t.saturating_sub(MAX_HOLD_US)));
        while self.out.peek().is_some_and(|h| h.0.t <= watermark) {
            let h = self.out.pop().expect("peeked").0;
            sink(h.event);
        }
    }

    fn hand_over(&mut self, at: u64, what: Pending) {
        match what {
            Pending::Object { object, deleted } => {
                if let Some((tr, _)) = &mut self.translator {
                    tr.deliver(Delivery {
                        object,
                        observed_unix_us: SIM_EPOCH_UNIX_US + at,
                        deleted,
                    });
                }
            }
            Pending::Result {
                attributes,
                data,
                completes,
            } => {
                for e in self.matcher.handle_at(at, &attributes, &data) {
                    self.hold(e);
                }
                if let Some(key) = completes {
                    self.reporting.remove(&key);
                    self.drop_in_flight(&key);
                }
            }
        }
    }

    fn drain_translator(&mut self) {
        let mut got = Vec::new();
        if let Some((_, rx)) = &mut self.translator {
            while let Ok(e) = rx.try_recv() {
                got.push(e);
            }
        }
        for e in got {
            self.hold(e);
        }
    }

    /// A Kubernetes Event about `object` (kind, name, uid), recorded as its producer does: the scheduler
    /// through events.k8s.io (`eventTime` in µs, no whole-second stamps), everyone else through core/v1
    /// (`firstTimestamp`/`lastTimestamp` in whole seconds, named `<object>.<hex UnixNano>`), a repeat of the same
    /// message on the same object aggregated into the first one (`count`, `lastTimestamp`).
    fn kube_event(
        &mut self,
        involved: (&str, &str, &str),
        reason: &str,
        message: &str,
        component: &str,
    ) {
        if !self.kube_events_on() {
            return;
        }
        let (kind, name, uid) = involved;
        let unix = SIM_EPOCH_UNIX_US + self.now;
        let key = (name.to_string(), reason.to_string(), message.to_string());
        let ns = if kind == "Node" { "default" } else { NAMESPACE };
        // An Event expires an hour after its last write (the API server's default `--event-ttl`); a repeat
        // after that is a new Event.
        let expired = self.kube_events.get(&key).is_some_and(|e| {
            ts(e.get("lastTimestamp").or(e.get("eventTime")))
                .is_some_and(|last| last + EVENT_TTL_US < unix)
        });
        if expired {
            self.kube_events.remove(&key);
        }
        // Expired Events are forgotten, so the lens holds about an hour of them, not the run's.
        if self.kube_events.len() > 4_096 && self.seq.is_multiple_of(1_024) {
            self.kube_events.retain(|_, e| {
                ts(e.get("lastTimestamp").or(e.get("eventTime")))
                    .is_some_and(|last| last + EVENT_TTL_US >= unix)
            });
        }
        let event = match self.kube_events.get_mut(&key) {
            Some(e) => {
                let count = e["count"].as_u64().unwrap_or(1) + 1;
                e["count"] = json!(count);
                e["lastTimestamp"] = json!(rfc3339(unix));
                if e.get("series").is_some() {
                    e["series"] = json!({"count": count, "lastObservedTime": rfc3339_micros(unix)});
                }
                e.clone()
            }
            None => {
                let scheduler = component == "default-scheduler";
                let mut e = json!({
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": format!("{name}.{:x}", unix * 1_000 + 417),
                        "namespace": ns, "uid": format!("ev-{}-{}", self.seq, uid),
                        "creationTimestamp": rfc3339(unix)},
                    "involvedObject": {"kind": kind, "name": name, "namespace": ns, "uid": uid},
                    "reason": reason, "message": message,
                    "type": if reason.starts_with("Failed") { "Warning" } else { "Normal" },
                    "reportingComponent": component, "reportingInstance": "",
                    "source": if scheduler { json!({}) } else { json!({"component": component}) },
                });
                if scheduler {
                    e["eventTime"] = json!(rfc3339_micros(unix));
                    e["firstTimestamp"] = Value::Null;
                    e["lastTimestamp"] = Value::Null;
                } else {
                    e["eventTime"] = Value::Null;
                    e["firstTimestamp"] = json!(rfc3339(unix));
                    e["lastTimestamp"] = json!(rfc3339(unix));
                    e["count"] = json!(1);
                }
                self.seq += 1;
                self.kube_events.insert(key, e.clone());
                e
            }
        };
        let at = self.watch_at(if kind == "Node" {
            "Event/Node"
        } else {
            "Event"
        });
        self.later(
            at,
            Pending::Object {
                object: event,
                deleted: false,
            },
        );
    }

    fn pod_object(&self, pod: &PodView, created_unix: u64) -> Value {
        let n = &self.names[pod.p];
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": NAMESPACE, "uid": pod.uid,
                "creationTimestamp": rfc3339(created_unix),
                "labels": {"app.kubernetes.io/name": n.deployment, "app.kubernetes.io/component": "worker"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": n.replica_set,
                    "controller": true}]},
            "spec": {"containers": [{"name": CONTAINER, "image": n.image}]},
            "status": {"phase": "Pending", "conditions": [], "containerStatuses": []}
        })
    }

    fn set_condition(
        object: &mut Value,
        kind: &str,
        status: bool,
        unix: u64,
        reason: Option<&str>,
    ) {
        if !object["status"]["conditions"].is_array() {
            object["status"]["conditions"] = json!([]);
        }
        let conditions = object["status"]["conditions"]
            .as_array_mut()
            .expect("an array");
        conditions.retain(|c| c["type"] != kind);
        let mut c = json!({"type": kind, "status": if status { "True" } else { "False" },
            "lastTransitionTime": rfc3339(unix)});
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        conditions.push(c);
    }

    /// A results message the worker publishes now; `completes` is the delivery a completion ends.
    fn worker_report(
        &mut self,
        kind: ReportKind,
        attributes: BTreeMap<String, String>,
        r: Report,
        completes: Option<(String, u64, String)>,
    ) {
        let mut attributes = attributes;
        if kind != ReportKind::Completed {
            attributes.insert(contract::ATTR_EVENT.into(), kind.as_str().into());
        }
        let data = serde_json::to_vec(&r).expect("a report serializes");
        let at = self.now
            + self
                .rng
                .random_range(RESULT_DELAY_MS.0 * 1_000..=RESULT_DELAY_MS.1 * 1_000);
        self.later(
            at,
            Pending::Result {
                attributes,
                data,
                completes,
            },
        );
    }

    /// The worker's own report of itself (pod, pipeline, start and model-ready times), where it reports them.
    fn report_of(&self, pod: &PodView) -> Report {
        let unix = |t: Option<u64>| t.map(|t| SIM_EPOCH_UNIX_US + t);
        if self.worker_reports() {
            Report {
                pod: pod.name.clone(),
                pipeline: Some(self.names[pod.p].stream.clone()),
                started_unix_us: unix(pod.started_us),
                model_ready_unix_us: unix(pod.model_ready_us),
                ..Report::default()
            }
        } else {
            Report {
                pod: pod.name.clone(),
                ..Report::default()
            }
        }
    }

    fn drop_in_flight(&mut self, key: &(String, u64, String)) {
        if let Some(t) = self.in_flight.remove(key)
            && let Some(c) = self.in_flight_t.get_mut(&t)
        {
            *c -= 1;
            if *c == 0 {
                self.in_flight_t.remove(&t);
            }
        }
    }

    fn drop_pod_in_flight(&mut self, pod: &str) {
        let keys: Vec<_> = self
            .in_flight
            .keys()
            .filter(|k| k.2 == pod && !self.reporting.contains(*k))
            .cloned()
            .collect();
        for k in keys {
            self.drop_in_flight(&k);
        }
    }

    /// One simulated event, observed.
    pub(crate) fn push(&mut self, e: Event, sink: &mut impl FnMut(Event)) {
        self.advance(e.t_us, sink);
        self.now = e.t_us;
        let t = e.t_us;
        let unix = SIM_EPOCH_UNIX_US + t;
        match e.kind {
            EventKind::RunFinished { .. } => {
                self.finish(sink);
                sink(e);
            }
            // The harness's own observations, and truth for tests.
            EventKind::RunStarted { .. }
            | EventKind::Scheduled { .. }
            | EventKind::Published { .. }
            | EventKind::PublishFailed { .. }
            | EventKind::Lost { .. }
            | EventKind::HttpCalled { .. }
            | EventKind::Backlog { .. }
            | EventKind::ResultsIgnored { .. }
            | EventKind::HarnessCpu { .. } => self.hold(e),
            EventKind::SimPodTruth { pod, phases } => {
                if let Some(v) = self.pods.get(&pod) {
                    let pod = v.name.clone();
                    self.hold(Event::new(
                        t,
                        Source::Sim,
                        EventKind::SimPodTruth { pod, phases },
                    ));
                }
            }
            // KEDA's own reading of the metric: no producer shows it.
            EventKind::MetricRead { .. }
            | EventKind::ScaleTarget { .. }
            | EventKind::ScalerCondition { .. }
            | EventKind::ColdStartProblem { .. } => {}
            EventKind::ScalerActive {
                scaled_object,
                active,
            } => {
                let p = self
                    .names
                    .iter()
                    .position(|n| n.scaled_object == scaled_object || n.stream == scaled_object)
                    .unwrap_or(0);
                let n = self.names[p].clone();
                let so = json!({
                    "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                    "metadata": {"name": n.scaled_object, "namespace": NAMESPACE,
                        "creationTimestamp": rfc3339(SIM_EPOCH_UNIX_US - 86_400_000_000)},
                    "spec": {"scaleTargetRef": {"name": n.deployment},
                        "triggers": [{"type": "gcp-pubsub", "metadata": {"subscriptionName": n.subscription_path}}]},
                    "status": {"conditions": [
                        {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(SIM_EPOCH_UNIX_US - 86_400_000_000)},
                        {"type": "Active", "status": if active { "True" } else { "False" },
                            "reason": if active { "ScalerActive" } else { "ScalerNotActive" },
                            "lastTransitionTime": rfc3339(unix)}]}
                });
                self.object(so, false);
            }
            EventKind::Replicas {
                deployment,
                desired,
                ready,
            } => {
                let p = self.stream_of(&deployment);
                let n = self.names[p].clone();
                let old = self.desired[p];
                self.desired[p] = desired;
                let d = json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": n.deployment, "namespace": NAMESPACE,
                        "creationTimestamp": rfc3339(SIM_EPOCH_UNIX_US - 86_400_000_000),
                        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                            "time": rfc3339(unix)}]},
                    "spec": {"replicas": desired},
                    "status": {"replicas": desired, "readyReplicas": ready.unwrap_or(0)}
                });
                self.object(d, false);
                if desired != old && t > 0 {
                    let so = (
                        "ScaledObject",
                        n.scaled_object.as_str(),
                        n.scaled_object.as_str(),
                    );
                    if old == 0 {
                        let msg = format!(
                            "Scaled apps/v1.Deployment {NAMESPACE}/{} from 0 to {desired}, triggered by pubsubScaler",
                            n.deployment
                        );
                        self.kube_event(so, "KEDAScaleTargetActivated", &msg, "keda-operator");
                    } else if desired == 0 {
                        let msg = format!(
                            "Deactivated apps/v1.Deployment {NAMESPACE}/{} from {old} to 0",
                            n.deployment
                        );
                        self.kube_event(so, "KEDAScaleTargetDeactivated", &msg, "keda-operator");
                    }
                    let msg = format!(
                        "Scaled {} replica set {} from {old} to {desired}",
                        if desired > old { "up" } else { "down" },
                        n.replica_set
                    );
                    let dep = ("Deployment", n.deployment.as_str(), n.deployment.as_str());
                    self.kube_event(dep, "ScalingReplicaSet", &msg, "deployment-controller");
                }
            }
            EventKind::PodCreated {
                pod,
                deployment,
                preexisting,
            } => {
                let p = self.stream_of(&deployment);
                self.pod_index += 1;
                let name = format!(
                    "{}-{}",
                    self.names[p].replica_set,
                    pick(&mut self.rng, SUFFIX_CHARS, 5)
                );
                let created = if preexisting {
                    SIM_EPOCH_UNIX_US - 3_600_000_000
                } else {
                    unix
                };
                let mut view = PodView {
                    name: name.clone(),
                    p,
                    uid: format!("pod-uid-{}", self.pod_index),
                    object: Value::Null,
                    pulling_since: None,
                    started_us: None,
                    model_ready_us: None,
                    restarts: 0,
                };
                view.object = self.pod_object(&view, created);
                if preexisting {
                    // Running and ready since before the run.
                    view.started_us = Some(0);
                    view.model_ready_us = Some(0);
                    let o = &mut view.object;
                    o["status"]["phase"] = json!("Running");
                    o["status"]["containerStatuses"] = json!([{"name": CONTAINER, "ready": true,
                        "restartCount": 0, "state": {"running": {"startedAt": rfc3339(created + 60_000_000)}}}]);
                    Self::set_condition(o, "PodScheduled", true, created, None);
                    Self::set_condition(o, "Ready", true, created + 90_000_000, None);
                    if self.worker_reports() {
                        let r = Report {
                            pod: name.clone(),
                            pipeline: Some(self.names[p].stream.clone()),
                            started_unix_us: Some(created + 60_000_000),
                            model_ready_unix_us: Some(created + 90_000_000),
                            ..Report::default()
                        };
                        self.worker_report(ReportKind::ModelLoaded, BTreeMap::new(), r, None);
                    }
                } else {
                    let rs = self.names[p].replica_set.clone();
                    self.kube_event(
                        ("ReplicaSet", &rs, &rs),
                        "SuccessfulCreate",
                        &format!("Created pod: {name}"),
                        "replicaset-controller",
                    );
                }
                let object = view.object.clone();
                self.pods.insert(pod, view);
                self.object(object, false);
            }
            EventKind::PodUnschedulable { pod, .. } => {
                let Some(v) = self.pods.get_mut(&pod) else {
                    return;
                };
                Self::set_condition(
                    &mut v.object,
                    "PodScheduled",
                    false,
                    unix,
                    Some("Unschedulable"),
                );
                let (name, uid, object) = (v.name.clone(), v.uid.clone(), v.object.clone());
                let live = self.nodes.len();
                let msg = format!(
                    "0/{live} nodes are available: {live} Insufficient nvidia.com/gpu. preemption: 0/{live} nodes are available: {live} No preemption victims found for incoming pod."
                );
                self.kube_event(
                    ("Pod", &name, &uid),
                    "FailedScheduling",
                    &msg,
                    "default-scheduler",
                );
                self.object(object, false);
                self.unschedulable.push(pod);
            }
            EventKind::ScaleUpTriggered { from, to, .. } => {
                let msg = format!(
                    "pod triggered scale-up: [{{https://www.googleapis.com/compute/v1/projects/imagen-load/zones/us-central1-a/instanceGroups/gke-imagen-gpu-pool-{}-grp {from}->{to} (max: {})}}]",
                    self.node_hash, self.max_nodes
                );
                for pod in self.unschedulable.clone() {
                    if let Some(v) = self.pods.get(&pod) {
                        let (name, uid) = (v.name.clone(), v.uid.clone());
                        self.kube_event(
                            ("Pod", &name, &uid),
                            "TriggeredScaleUp",
                            &msg,
                            "cluster-autoscaler",
                        );
                    }
                }
            }
            EventKind::PodScheduled { pod, node } => {
                self.unschedulable.retain(|x| *x != pod);
                let node_name = self
                    .nodes
                    .get(&node)
                    .map(|n| n.name.clone())
                    .unwrap_or(node);
                let Some(v) = self.pods.get_mut(&pod) else {
                    return;
                };
                Self::set_condition(&mut v.object, "PodScheduled", true, unix, None);
                v.object["spec"]["nodeName"] = json!(node_name);
                v.pulling_since = Some(t);
                let (name, uid, object) = (v.name.clone(), v.uid.clone(), v.object.clone());
                let msg = format!("Successfully assigned {NAMESPACE}/{name} to {node_name}");
                self.kube_event(("Pod", &name, &uid), "Scheduled", &msg, "default-scheduler");
                self.object(object, false);
            }
            EventKind::ImagePulling { pod, .. } => {
                let Some(v) = self.pods.get_mut(&pod) else {
                    return;
                };
                v.pulling_since = Some(t);
                let (name, uid, image) =
                    (v.name.clone(), v.uid.clone(), self.names[v.p].image.clone());
                self.kube_event(
                    ("Pod", &name, &uid),
                    "Pulling",
                    &format!("Pulling image \"{image}\""),
                    "kubelet",
                );
            }
            EventKind::ImagePulled {
                pod,
                duration_us,
                bytes,
                cached,
                ..
            } => {
                let Some(v) = self.pods.get(&pod) else { return };
                let (name, uid, image) =
                    (v.name.clone(), v.uid.clone(), self.names[v.p].image.clone());
                let waited = t.saturating_sub(v.pulling_since.unwrap_or(t));
                let msg = if cached {
                    format!("Container image \"{image}\" already present on machine")
                } else {
                    format!(
                        "Successfully pulled image \"{image}\" in {} ({} including waiting). Image size: {} bytes.",
                        go_duration_ms(duration_us),
                        go_duration_ms(waited.max(duration_us)),
                        bytes.unwrap_or(0)
                    )
                };
                self.kube_event(("Pod", &name, &uid), "Pulled", &msg, "kubelet");
            }
            EventKind::ContainerStarted { pod } => {
                let Some(v) = self.pods.get_mut(&pod) else {
                    return;
                };
                if v.started_us.is_none() {
                    v.started_us = Some(t);
                }
                let restarts = v.restarts;
                v.object["status"]["phase"] = json!("Running");
                let mut status = json!({"name": CONTAINER, "ready": false, "restartCount": restarts,
                    "state": {"running": {"startedAt": rfc3339(unix)}}});
                if let Some(last) = v.object["status"]["containerStatuses"][0].get("lastState") {
                    status["lastState"] = last.clone();
                }
                v.object["status"]["containerStatuses"] = json!([status]);
                let (name, uid, object) = (v.name.clone(), v.uid.clone(), v.object.clone());
                self.kube_event(
                    ("Pod", &name, &uid),
                    "Created",
                    &format!("Created container: {CONTAINER}"),
                    "kubelet",
                );
                self.kube_event(
                    ("Pod", &name, &uid),
                    "Started",
                    &format!("Started container {CONTAINER}"),
                    "kubelet",
                );
                self.object(object, false);
                if self.worker_reports() && restarts == 0 {
                    let r = self.report_of(&self.pods[&pod]);
                    self.worker_report(ReportKind::Started, BTreeMap::new(), r, None);
                }
            }
            EventKind::ModelLoaded { pod, .. } => {
                let reports = self.worker_reports();
                let Some(v) = self.pods.get_mut(&pod) else {
                    return;
                };
                if v.model_ready_us.is_none() {
                    v.model_ready_us = Some(t);
                }
                if reports && v.restarts == 0 {
                    let r = self.report_of(&self.pods[&pod]);
                    self.worker_report(ReportKind::ModelLoaded, BTreeMap::new(), r, None);
                }
            }
            EventKind::PodReady { pod } => {
                let Some(v) = self.pods.get_mut(&pod) else {
                    return;
                };
                if v.object["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                {
                    return; // a pod ready before the run: already in its object
                }
                Self::set_condition(&mut v.object, "Ready", true, unix, None);
                v.object["status"]["containerStatuses"][0]["ready"] = json!(true);
                let object = v.object.clone();
                self.object(object, false);
            }
            EventKind::PodNotReady { pod, reason } => {
                self.drop_pod_in_flight(&pod);
                let Some(v) = self.pods.get_mut(&pod) else {
                    return;
                };
                v.restarts += 1;
                Self::set_condition(&mut v.object, "Ready", false, unix, None);
                let status = &mut v.object["status"]["containerStatuses"][0];
                status["ready"] = json!(false);
                status["restartCount"] = json!(v.restarts);
                status["lastState"] = json!({"terminated": {"reason": "OOMKilled", "exitCode": 137,
                    "finishedAt": rfc3339(unix), "message": reason}});
                status["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
                let (name, uid, object) = (v.name.clone(), v.uid.clone(), v.object.clone());
                let msg = format!(
                    "Back-off restarting failed container {CONTAINER} in pod {name}_{NAMESPACE}({uid})"
                );
                self.kube_event(("Pod", &name, &uid), "BackOff", &msg, "kubelet");
                self.object(object, false);
            }
            EventKind::PodDeleted { pod } => {
                // A deleted pod still finishes what it holds (its grace period): its deliveries stay in flight.
                self.unschedulable.retain(|x| *x != pod);
                let Some(v) = self.pods.get_mut(&pod) else {
                    return;
                };
                v.object["metadata"]["deletionTimestamp"] = json!(rfc3339(unix));
                let (name, uid, object, p) = (v.name.clone(), v.uid.clone(), v.object.clone(), v.p);
                let started = v.started_us.is_some();
                if started {
                    self.kube_event(
                        ("Pod", &name, &uid),
                        "Killing",
                        &format!("Stopping container {CONTAINER}"),
                        "kubelet",
                    );
                }
                let rs = self.names[p].replica_set.clone();
                self.kube_event(
                    ("ReplicaSet", &rs, &rs),
                    "SuccessfulDelete",
                    &format!("Deleted pod: {name}"),
                    "replicaset-controller",
                );
                self.object(object, true);
                if let Some(v) = self.pods.get_mut(&pod) {
                    v.object = Value::Null; // gone from the API: only its name is still needed
                }
                if self.worker_reports() && started {
                    let r = self.report_of(&self.pods[&pod]);
                    self.worker_report(ReportKind::Stopping, BTreeMap::new(), r, None);
                }
            }
            EventKind::NodeCreated {
                node,
                pool,
                gpus,
                preexisting,
            } => {
                let name = format!(
                    "gke-imagen-{pool}-{}-{}",
                    self.node_hash,
                    pick(&mut self.rng, SUFFIX_CHARS, 4)
                );
                let created = if preexisting {
                    SIM_EPOCH_UNIX_US - 3_600_000_000
                } else {
                    unix
                };
                let mut object = json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "uid": format!("node-uid-{name}"),
                        "creationTimestamp": rfc3339(created),
                        "labels": {"cloud.google.com/gke-nodepool": pool,
                            "cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}},
                    "status": {"capacity": {"nvidia.com/gpu": gpus.to_string()},
                        "allocatable": {"nvidia.com/gpu": if preexisting { gpus.to_string() } else { "0".into() }},
                        "conditions": []}
                });
                if preexisting {
                    Self::set_condition(&mut object, "Ready", true, created + 60_000_000, None);
                } else {
                    let msg = format!("Node {name} event: Registered Node {name} in Controller");
                    self.kube_event(
                        ("Node", &name, &format!("node-uid-{name}")),
                        "RegisteredNode",
                        &msg,
                        "node-controller",
                    );
                }
                self.nodes.insert(
                    node,
                    NodeView {
                        name,
                        object: object.clone(),
                    },
                );
                self.object(object, false);
            }
            EventKind::NodeReady { node } => {
                let Some(n) = self.nodes.get_mut(&node) else {
                    return;
                };
                if n.object["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| !c.is_empty())
                {
                    return;
                }
                Self::set_condition(&mut n.object, "Ready", true, unix, None);
                let (name, object) = (n.name.clone(), n.object.clone());
                let msg = format!("Node {name} status is now: NodeReady");
                self.kube_event(("Node", &name, &name), "NodeReady", &msg, "kubelet");
                self.object(object, false);
            }
            EventKind::GpuAllocatable { node, gpus } => {
                let Some(n) = self.nodes.get_mut(&node) else {
                    return;
                };
                if n.object["status"]["allocatable"]["nvidia.com/gpu"] == json!(gpus.to_string()) {
                    return;
                }
                n.object["status"]["allocatable"]["nvidia.com/gpu"] = json!(gpus.to_string());
                let object = n.object.clone();
                self.object(object, false);
            }
            EventKind::NodeDeleted { node } => {
                let Some(n) = self.nodes.remove(&node) else {
                    return;
                };
                let uid = format!("node-uid-{}", n.name);
                self.kube_event(
                    ("Node", &n.name, &uid),
                    "ScaleDown",
                    "nodes removed by cluster autoscaler",
                    "cluster-autoscaler",
                );
                self.object(n.object, true);
            }
            EventKind::Delivered { id, pod, .. } => {
                // The reference worker's receipt (what the harness counts redeliveries from).
                if self.worker_reports()
                    && let Some(v) = self.pods.get(&pod)
                {
                    let receipt = Report {
                        received_unix_us: Some(unix),
                        ..self.report_of(v)
                    };
                    let attributes = self.job_attributes(&id);
                    self.worker_report(ReportKind::Received, attributes, receipt, None);
                }
                // A redelivery to the same pod replaces the earlier one.
                let key = (id.stream.clone(), id.seq, pod);
                self.drop_in_flight(&key);
                self.in_flight.insert(key, t);
                *self.in_flight_t.entry(t).or_default() += 1;
            }
            EventKind::Completed {
                id,
                pod,
                received_us,
                processing_start_us,
                processing_end_us,
            } => {
                self.completion(
                    &id,
                    &pod,
                    received_us,
                    processing_start_us,
                    processing_end_us,
                );
            }
            EventKind::Duplicate { id, pod } => {
                self.completion(&id, &pod, None, None, Some(t));
            }
        }
    }

    /// A worker's completion on the results topic, as the reference worker publishes it.
    fn completion(
        &mut self,
        id: &MsgId,
        pod: &str,
        received: Option<u64>,
        start: Option<u64>,
        end: Option<u64>,
    ) {
        let Some(v) = self.pods.get(pod) else { return };
        let unix = |t: Option<u64>| t.map(|t| SIM_EPOCH_UNIX_US + t);
        let report = Report {
            received_unix_us: unix(received),
            processing_start_unix_us: unix(start),
            processing_end_unix_us: unix(end),
            ..self.report_of(v)
        };
        let attributes = self.job_attributes(id);
        let key = (id.stream.clone(), id.seq, pod.to_string());
        let completes = self.in_flight.contains_key(&key).then_some(key);
        if let Some(k) = &completes {
            self.reporting.insert(k.clone());
        }
        self.worker_report(ReportKind::Completed, attributes, report, completes);
    }

    /// The correlation attributes a worker copies from a job onto its reports.
    fn job_attributes(&self, id: &MsgId) -> BTreeMap<String, String> {
        [
            (contract::ATTR_RUN, self.run_id.clone()),
            (contract::ATTR_STREAM, id.stream.clone()),
            (contract::ATTR_ID, id.seq.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The run is over: everything still pending is handed over, and every held event released in order.
    pub(crate) fn finish(&mut self, sink: &mut impl FnMut(Event)) {
        while let Some(Reverse((at, k))) = self.pending.pop() {
            let what = self.pending_items.remove(&k).expect("pending item");
            self.hand_over(at, what);
        }
        if let Some((tr, _)) = &mut self.translator {
            tr.finish();
        }
        self.drain_translator();
        while let Some(Reverse(h)) = self.out.pop() {
            sink(h.event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_times_print_as_the_kubelet_prints_them() {
        assert_eq!(go_duration_ms(4_546_999), "4.546s");
        assert_eq!(go_duration_ms(500_000), "500ms");
        assert_eq!(go_duration_ms(62_500_000), "1m2.5s");
        assert_eq!(go_duration_ms(34_000_000), "34s");
        assert_eq!(go_duration_ms(3_723_000_000), "1h2m3s");
    }
}
