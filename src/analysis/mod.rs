//! Analysis: a pure function of the event log. Events in, [`RunReport`] out: per-message latency from the
//! *intended* send instant and its split (publish delay, waiting for capacity, queueing, processing), per-pod
//! cold-start phases, per-pipeline scale cycles, delivery accounting, cost, and HdrHistograms of every series.
//! Missing signals leave a phase unknown (`None`), never a made-up number.

pub mod identity;
pub mod intervals;
mod open;
pub mod series;

pub use identity::Identity;
pub use intervals::Intervals;
pub use series::{Moments, SeriesKey, SeriesSet, Stats};

use crate::event::{Event, EventKind, MsgId, PipelineNames, Source};
use crate::seqset::SeqSet;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

/// The cold-start phases of one pod, in order. Each is a duration in microseconds, `None` when unknown
/// (a signal was missing) or not applicable (activation for pods after the first of a cycle).
pub const POD_PHASES: [&str; 9] = [
    "activation",
    "pod_creation",
    "node_provisioning",
    "image_pull",
    "container_start",
    "model_load",
    "ready",
    "first_message",
    "total",
];

/// Series names of the pod phases, in [`POD_PHASES`] order.
pub const COLD_START_METRICS: [&str; 9] = [
    "cold_start.activation",
    "cold_start.pod_creation",
    "cold_start.node_provisioning",
    "cold_start.image_pull",
    "cold_start.container_start",
    "cold_start.model_load",
    "cold_start.ready",
    "cold_start.first_message",
    "cold_start.total",
];

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub workload: String,
    pub seed: u64,
    pub target: String,
    pub wall_clock_start_unix_us: u64,
    pub streams: Vec<String>,
    pub warmup_us: u64,
    pub deadline_us: u64,
    /// Last event's time: the observed length of the run.
    pub end_us: u64,
    pub interrupted: bool,
    pub finished: bool,
    pub price_per_gpu_hour_usd: f64,
    /// `INDEX/COUNT` when the run was one shard of a workload (its messages are that share only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The `--set KEY=VALUE` overrides the run was started with, as given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Delivery {
    pub scheduled: u64,
    pub published: u64,
    pub publish_failed: u64,
    pub completed: u64,
    /// Completions of a message already completed (Pub/Sub delivers at least once).
    pub duplicates: u64,
    /// Deliveries after the first (a worker died, or a lease lapsed).
    pub redelivered: u64,
    /// Published but never completed (by the deadline or the end of the log). Publish failures are not here.
    pub lost: u64,
    /// Completed after the run's deadline.
    pub late: u64,
    /// Neither completed nor declared lost when the log ends (an interrupted or cut-short run).
    pub open_at_end: u64,
    /// Completed, but intended during the warm-up: counted here, left out of latency statistics.
    pub warmup_excluded: u64,
    /// The schedule's rate: messages scheduled over the span of their intended sends (per second); `None` when
    /// the schedule spans under a second (a burst has no rate to keep up with).
    pub offered_per_s: Option<f64>,
    /// The rate publishing achieved: messages published over the time from the first intended send to the last
    /// publish answered (per second); `None` with `offered_per_s`.
    pub achieved_per_s: Option<f64>,
    /// How far publishing fell short of the schedule: `1 − achieved/offered`, at least 0 (0.32 = 32% short);
    /// `None` with `offered_per_s`. The gate metric `publish_shortfall`.
    pub publish_shortfall: Option<f64>,
    /// Every lost message, as runs of consecutive sequence numbers per stream, sorted: a million lost messages in
    /// a row are one entry, not a million. Reports show the first few; `summary.json` has them all.
    pub lost_ranges: Vec<SeqRange>,
    pub publish_errors: BTreeMap<String, u64>,
}

/// The warning for a stream whose messages were all lost without one reaching a worker: nobody pulled from its
/// subscription (no workers started, or workers on another subscription or project).
fn nothing_pulled(stream: &str, lost: usize, subscription: Option<&str>) -> String {
    let sub = subscription.map_or_else(|| format!("{stream}'s subscription"), |s| format!("`{s}`"));
    format!(
        "stream {stream}: {lost} message{} lost and none reached a worker: nothing pulled from subscription \
         {sub}\n    fix: start the workers for it (e.g. `imagen-load worker --subscription {} \
         --pipeline {stream}`, or scale up the Deployment), and check they use the run's project and subscription",
        if lost == 1 { "" } else { "s" },
        subscription.unwrap_or("SUB"),
    )
}

/// Messages `first..=last` (sequence numbers, both included) of one stream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct SeqRange {
    pub stream: String,
    pub first: u64,
    pub last: u64,
}

impl SeqRange {
    /// How many messages the range holds.
    pub fn count(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Sorted ranges from each stream's sequence numbers (sorted here; duplicates merged).
    pub fn from_seqs(per_stream: Vec<(String, Vec<u64>)>) -> Vec<SeqRange> {
        let mut out: Vec<SeqRange> = Vec::new();
        for (stream, mut seqs) in per_stream {
            seqs.sort_unstable();
            for seq in seqs {
                match out.last_mut() {
                    Some(r) if r.stream == stream && seq <= r.last + 1 => r.last = r.last.max(seq),
                    _ => out.push(SeqRange {
                        stream: stream.clone(),
                        first: seq,
                        last: seq,
                    }),
                }
            }
        }
        out.sort();
        out
    }
}

impl std::fmt::Display for SeqRange {
    /// `upscale#14`, or `upscale#14-79` for a run of them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}#{}", self.stream, self.first)
        } else {
            write!(f, "{}#{}-{}", self.stream, self.first, self.last)
        }
    }
}

/// The first `max` ranges, as a reader sees them (`upscale#3, enhance#10-99 and 12 more ranges (…)`).
pub fn describe_ranges(ranges: &[SeqRange], max: usize) -> String {
    let mut text = ranges
        .iter()
        .take(max)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ranges.len() > max {
        text.push_str(&format!(
            " and {} more range{} (summary.json lists all)",
            ranges.len() - max,
            if ranges.len() - max == 1 { "" } else { "s" }
        ));
    }
    text
}

impl Delivery {
    /// The counts as (name, value), in the order reports show them.
    pub fn columns(&self) -> [(&'static str, u64); 8] {
        [
            ("scheduled", self.scheduled),
            ("published", self.published),
            ("publish failures", self.publish_failed),
            ("completed", self.completed),
            ("lost", self.lost),
            ("late", self.late),
            ("duplicates", self.duplicates),
            ("redelivered", self.redelivered),
        ]
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PodColdStart {
    pub pod: String,
    /// The Deployment as the producers named it (the watchers by the pod's owner, a worker by its pipeline).
    pub deployment: String,
    /// The stream the pod serves ([`identity`]); `None` when its Deployment matched no stream.
    pub pipeline: Option<String>,
    /// Who reported the pod (`kube`, `worker`, `sim`): two producers describing one pod are merged, each phase
    /// keeping its sharpest time.
    pub sources: Vec<Source>,
    pub node: Option<String>,
    /// Present before the run; not a cold start and not in the phase statistics.
    pub preexisting: bool,
    /// When it was created; `None` when no producer reported its creation (an events-only log whose
    /// `SuccessfulCreate` expired): the phases from creation are then unknown too.
    pub created_us: Option<u64>,
    pub ready_us: Option<u64>,
    pub image_cached: Option<bool>,
    /// When the pod was bound to a node, and deleted (it holds a GPU in between).
    pub scheduled_us: Option<u64>,
    pub deleted_us: Option<u64>,
    /// Times the pod stopped being ready after its cold start (a crashed worker restarting).
    pub restarts: u32,
    /// What lengthened its cold start, as the cluster reported it: (phase, reason) with how often.
    pub problems: Vec<Problem>,
    /// The node group whose scale-up brought its node (a cluster-autoscaler `TriggeredScaleUp` group whose
    /// name, without `-grp`, starts the node's, as GKE names nodes after their managed instance group).
    pub scale_up_group: Option<String>,
    /// Phase name → duration (µs); null when unknown, and no phases at all for a pod present before the run.
    pub phases_us: PodPhases,
}

/// A pod's cold-start phases ([`POD_PHASES`] → µs, `None` when unknown), in 80 bytes rather than a map of
/// strings: a long run lists every pod it saw. Reads like a map (`phases["image_pull"]`) and is written as one,
/// keys in alphabetical order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodPhases {
    values: [Option<u64>; 9],
    /// False for a pod that did not cold-start during the run: no phases.
    known: bool,
}

impl PodPhases {
    pub fn get(&self, phase: &str) -> Option<&Option<u64>> {
        let i = POD_PHASES.iter().position(|p| *p == phase)?;
        self.known.then_some(&self.values[i])
    }

    /// (phase, µs) in [`POD_PHASES`] order; empty for a pod that did not cold-start.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Option<u64>)> + '_ {
        POD_PHASES
            .iter()
            .zip(self.values)
            .filter(|_| self.known)
            .map(|(k, v)| (*k, v))
    }
}

impl std::ops::Index<&str> for PodPhases {
    type Output = Option<u64>;

    fn index(&self, phase: &str) -> &Option<u64> {
        self.get(phase)
            .unwrap_or_else(|| panic!("no phase `{phase}` for this pod"))
    }
}

impl Serialize for PodPhases {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut sorted: Vec<(&str, Option<u64>)> = self.iter().collect();
        sorted.sort_by_key(|(k, _)| *k);
        let mut m = s.serialize_map(Some(sorted.len()))?;
        for (k, v) in sorted {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

/// A reason a cold start was slow ([`EventKind::ColdStartProblem`]), counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The phase it lengthened (a [`POD_PHASES`] name).
    pub phase: String,
    /// The cause in the producer's words (`GCE out of resources`, `ErrImagePull`, ...).
    pub reason: String,
    /// Where: the zones of a failed scale-up, when named.
    pub node_group: Option<String>,
    /// How many times it happened.
    pub count: u32,
    /// To how many pods (0 when the producer named none).
    pub pods: u32,
}

impl Problem {
    /// A failed scale-up (not a refused one): what `scale_up_failures` counts.
    pub fn is_failed_scale_up(&self) -> bool {
        self.phase == "node_provisioning" && !self.reason.starts_with("no scale-up")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleCycle {
    /// The Deployment as the producers named it.
    pub deployment: String,
    /// The stream it serves; `None` when its Deployment matched no stream.
    pub pipeline: Option<String>,
    /// Replicas went from zero to at least one.
    pub start_us: u64,
    /// First message published while the deployment was at zero, if one caused the cycle.
    pub first_message_us: Option<u64>,
    pub time_to_first_ready_us: Option<u64>,
    pub peak_replicas: u32,
    pub peak_nodes: u32,
    pub last_completion_us: Option<u64>,
    /// Last completion → replicas back at zero; `None` if not reached in the run.
    pub to_zero_replicas_us: Option<u64>,
    /// Last completion → every node that served the cycle's pods deleted or handed to another deployment;
    /// `None` if not reached in the run.
    pub to_zero_nodes_us: Option<u64>,
    pub messages: u64,
    pub gpu_busy_seconds: f64,
    /// GPU-seconds of the cycle's nodes not spent processing; `None` (with the two below) when its nodes were
    /// not observed.
    pub gpu_idle_seconds: Option<f64>,
    pub node_seconds: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// GPU nodes and what they cost. Without a producer that sees the cluster (a live run with no `[cluster]`, or
/// the simulator observing as the workers alone), `observed` is false and every number is unknown (written
/// `null`), never zero.
impl ScaleCycle {
    /// What the cycle is reported under: its stream, else its Deployment's name.
    pub fn scope(&self) -> &str {
        self.pipeline.as_deref().unwrap_or(&self.deployment)
    }
}

impl Cost {
    /// Why GPU nodes and cost are unknown, for every report: `None` when they were observed.
    pub fn unknown_why(&self) -> Option<&'static str> {
        (!self.observed).then_some(
            "unknown: the run did not observe the cluster's nodes (watch it with [cluster], or `imagen-load import` its events)",
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct Cost {
    pub observed: bool,
    pub node_seconds: f64,
    pub gpu_seconds: f64,
    pub gpu_busy_seconds: f64,
    pub gpu_idle_seconds: f64,
    pub cost_usd: f64,
    pub peak_nodes: u32,
    pub nodes_created: u32,
}

impl Serialize for Cost {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(8))?;
        m.serialize_entry("observed", &self.observed)?;
        let known = |v: f64| self.observed.then_some(v);
        m.serialize_entry("node_seconds", &known(self.node_seconds))?;
        m.serialize_entry("gpu_seconds", &known(self.gpu_seconds))?;
        // Busy time is the workers' processing time: known whether or not the nodes were seen.
        m.serialize_entry("gpu_busy_seconds", &self.gpu_busy_seconds)?;
        m.serialize_entry("gpu_idle_seconds", &known(self.gpu_idle_seconds))?;
        m.serialize_entry("cost_usd", &known(self.cost_usd))?;
        m.serialize_entry("peak_nodes", &self.observed.then_some(self.peak_nodes))?;
        m.serialize_entry(
            "nodes_created",
            &self.observed.then_some(self.nodes_created),
        )?;
        m.end()
    }
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub run: RunInfo,
    pub delivery: Delivery,
    pub series: SeriesSet,
    pub pods: Vec<PodColdStart>,
    pub cycles: Vec<ScaleCycle>,
    pub cost: Cost,
    pub http_calls: u64,
    pub warnings: Vec<String>,
    /// Why cold starts were slow: every reported problem (failed and refused scale-ups, image pull failures and
    /// back-offs, sandbox and volume failures, failing probes) by phase, reason and node group, with how many
    /// times it happened and to how many pods.
    pub problems: Vec<Problem>,
    /// Every completed message outside the warm-up, exact to the microsecond, in completion order — only when
    /// asked for ([`Analyzer::keeping_messages`], and [`analyze`] of an in-memory log): it grows with the run,
    /// while everything else here is bounded.
    pub messages: Vec<MessageLatency>,
    /// End-to-end latency by completion interval (the `.hlog`).
    pub intervals: Intervals,
    /// Threshold outcomes, filled in by the caller that has thresholds (`gates::evaluate`).
    pub thresholds: Vec<crate::gates::Outcome>,
    /// What happened over time, for charts.
    pub timeline: Timeline,
}

/// Counts and levels over the run, for the timeline chart, in memory that does not grow with the run: counts
/// per slot (10 s, doubled whenever the run passes [`MAX_TIMELINE_SLOTS`] slots) and levels at their changes
/// (thinned to at most [`MAX_TIMELINE_POINTS`] per series, neighbours merged into their peak).
#[derive(Debug, Clone)]
pub struct Timeline {
    pub slot_us: u64,
    /// Messages published / completed in each slot.
    pub published: Vec<u32>,
    pub completed: Vec<u32>,
    /// Sampled backlog per subscription: (time, depth).
    pub backlog: BTreeMap<String, Vec<(u64, u64)>>,
    /// Per deployment: (time, desired, ready) at every change.
    pub replicas: BTreeMap<String, Vec<(u64, u32, u32)>>,
    /// (time, live GPU nodes) at every change.
    pub nodes: Vec<(u64, u32)>,
}

/// Timeline slot length, until the run is long enough to double it.
pub const TIMELINE_SLOT_US: u64 = 10_000_000;
/// Most count slots a timeline keeps (11 h at 10 s).
pub const MAX_TIMELINE_SLOTS: usize = 4_096;
/// Most points a level series (backlog, replicas, nodes) keeps.
pub const MAX_TIMELINE_POINTS: usize = 4_096;

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            slot_us: TIMELINE_SLOT_US,
            published: Vec::new(),
            completed: Vec::new(),
            backlog: BTreeMap::new(),
            replicas: BTreeMap::new(),
            nodes: Vec::new(),
        }
    }
}

impl Timeline {
    fn count(&mut self, completed: bool, t: u64) {
        while t / self.slot_us >= MAX_TIMELINE_SLOTS as u64 {
            self.slot_us *= 2;
            for v in [&mut self.published, &mut self.completed] {
                *v = v.chunks(2).map(|c| c.iter().sum()).collect();
            }
        }
        let v = if completed {
            &mut self.completed
        } else {
            &mut self.published
        };
        let i = (t / self.slot_us) as usize;
        if v.len() <= i {
            v.resize(i + 1, 0);
        }
        v[i] += 1;
    }

    /// Adds a point to a level series; past the limit, halves it by merging neighbours into one point at the
    /// first's time with the peak of both (the last point, the latest level, stays as it is).
    fn level<T: Copy>(v: &mut Vec<T>, point: T, peak: impl Fn(T, T) -> T) {
        v.push(point);
        if v.len() > MAX_TIMELINE_POINTS {
            let last = v.pop().expect("non-empty");
            *v = v
                .chunks(2)
                .map(|c| if c.len() == 2 { peak(c[0], c[1]) } else { c[0] })
                .collect();
            v.push(last);
        }
    }

    fn nodes(&mut self, t: u64, live: u32) {
        Self::level(&mut self.nodes, (t, live), |a, b| (a.0, a.1.max(b.1)));
    }
}

impl RunReport {
    pub fn failed_thresholds(&self) -> usize {
        self.thresholds.iter().filter(|t| !t.passed).count()
    }
}

/// One completed message's latency and its split, exact (µs). `None` where a signal was missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MessageLatency {
    /// Index into `RunInfo::streams`.
    pub stream: u32,
    /// No ready replica of its pipeline existed when it was published.
    pub cold: bool,
    pub seq: u64,
    pub intended_us: u64,
    pub completed_us: u64,
    pub publish_delay_us: Option<u64>,
    pub capacity_wait_us: Option<u64>,
    pub queueing_us: Option<u64>,
    pub processing_us: Option<u64>,
}

impl MessageLatency {
    /// From the intended send instant to completion.
    pub fn e2e_us(&self) -> u64 {
        self.completed_us.saturating_sub(self.intended_us)
    }
}

/// An instant that may be unknown, in 8 bytes (`u64::MAX` = unknown): messages in flight are the analysis's
/// only state that grows with the load, so it is kept small (40 bytes a message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At(u64);

impl Default for At {
    fn default() -> Self {
        At(u64::MAX)
    }
}

impl At {
    fn get(self) -> Option<u64> {
        (self.0 != u64::MAX).then_some(self.0)
    }
    fn set(&mut self, t: u64) {
        self.0 = t;
    }
    fn is_some(self) -> bool {
        self.0 != u64::MAX
    }
}

/// One stream's messages: those still open (scheduled, not completed), and which have completed.
#[derive(Debug, Clone, Default)]
struct StreamMsgs {
    open: open::OpenSeqs<Msg>,
    done: SeqSet,
    /// The stream's scope in the series.
    scope: usize,
    /// Whether any of its messages reached a worker (a delivery or a completion).
    reached_worker: bool,
}

/// What is known of a message in flight: 40 bytes, the analysis's only per-message state (what its completion
/// adds is folded at once, see [`Analyzer::fold`]).
#[derive(Debug, Clone, Copy, Default)]
struct Msg {
    intended: At,
    published: At,
    /// Delivered to a worker (last attempt before completion).
    delivered: At,
    /// When capacity (a ready replica) first existed after the message was published, for cold messages.
    capacity: At,
    cold: bool,
    lost: bool,
    publish_failed: bool,
}

/// One instant a producer reported, and whether it is a whole-second API stamp (which stands for its whole
/// second, so a sharper report inside that second is preferred).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stamp {
    t: u64,
    coarse: bool,
}

impl Stamp {
    /// Two reports of one instant by different producers: the sharper one when they agree within the coarse
    /// one's second, else the earlier one (a phase has begun once anyone saw it begin).
    fn merge(old: Option<Stamp>, new: Stamp) -> Stamp {
        let Some(old) = old else { return new };
        let inside = |c: Stamp, f: Stamp| (c.t..c.t + 1_000_000).contains(&f.t);
        match (old.coarse, new.coarse) {
            (true, false) if inside(old, new) => new,
            (false, true) if inside(new, old) => old,
            _ if new.t < old.t => new,
            _ => old,
        }
    }
}

/// The instant of an optional stamp.
fn at(s: Option<Stamp>) -> Option<u64> {
    s.map(|s| s.t)
}

#[derive(Debug, Clone, Default)]
struct Pod {
    /// The Deployment as first named (a watcher's owner name is preferred to a worker's `--pipeline`).
    deployment: String,
    /// The pipeline key: the stream's name, or the Deployment's own name when it matched no stream.
    pipeline: String,
    /// Reported as present before the run by its producer; whether it counts as pre-existing is settled at the
    /// end (only a pod ready by the first send does).
    preexisting: bool,
    /// Its creation was reported (`pod_created`). Facts about a pod can arrive first (at the same instant, or
    /// when the creation was never recorded): they are kept, and counted for its pipeline once it is known.
    announced: bool,
    created: Stamp,
    /// Producers that reported the pod (a bit per [`Source`]).
    sources: u8,

    unschedulable: Option<u64>,
    scheduled: Option<Stamp>,
    node: Option<String>,
    /// The kubelet began pulling the image (its first attempt).
    pulling: Option<Stamp>,
    pulled: Option<Stamp>,
    cached: Option<bool>,
    started: Option<Stamp>,
    loaded: Option<Stamp>,
    /// The worker's own measure of its model load, where it reports one.
    load_duration: Option<u64>,
    /// The kubelet's own measure of its image pull (without waiting for other pulls), where it reports one.
    pull_us: Option<u64>,
    ready: Option<Stamp>,
    /// Ready now (counted in its pipeline's ready pods).
    is_ready: bool,
    first_done: Option<u64>,
    deleted: Option<Stamp>,
    cycle: Option<usize>,
    restarts: u32,
}

fn source_bit(s: Source) -> u8 {
    1 << (s as u8)
}

const SOURCES: [Source; 5] = [
    Source::Harness,
    Source::Sim,
    Source::Pubsub,
    Source::Kube,
    Source::Worker,
];

#[derive(Debug, Clone, Default)]
struct Deployment {
    /// The Deployment's name as the cluster (or the workload) gives it, for reports.
    name: Option<String>,
    desired: u32,
    ready: u32,
    /// A producer reported the Deployment's ready replicas: they are the pipeline's capacity. Otherwise its
    /// pods' readiness is.
    replicas_ready_known: bool,
    /// Pods of the pipeline ready now, from `pod_ready` / `pod_not_ready` / `pod_deleted`.
    ready_pods: u32,
    /// Any readiness signal was ever seen (replicas or pods).
    readiness_seen: bool,
    /// No readiness signal exists, but a message was delivered: a worker was serving (an events-only log).
    serving: bool,
    /// First message published while at zero (desired and ready), the start of activation.
    waiting_since: Option<u64>,
    /// Cold messages waiting for the first ready replica, by stream index, as ranges of sequence numbers (those
    /// that completed meanwhile are skipped when capacity comes): a few bytes however long nothing is ready.
    cold_waiting: BTreeMap<u32, SeqSet>,
    cycle: Option<usize>,
    /// Every time desired replicas went up: what new pods were created for.
    triggers: Vec<u64>,
}

impl Deployment {
    /// Ready replicas now: the Deployment's own count when it is reported, else its ready pods, else one when a
    /// delivery showed a worker serving.
    fn capacity(&self) -> u32 {
        if self.replicas_ready_known {
            self.ready
        } else if self.ready_pods > 0 {
            self.ready_pods
        } else {
            u32::from(self.serving)
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Node {
    created: u64,
    ready: Option<u64>,
    gpu: Option<u64>,
    deleted: Option<u64>,
    gpus: u32,
    trigger: Option<u64>,
    preexisting: bool,
}

/// Analyses a run's events (any order; they are sorted by time, stably).
pub fn analyze(mut events: Vec<Event>) -> RunReport {
    events.sort_by_key(|e| e.t_us);
    let mut a = Analyzer::default().keeping_messages();
    for e in &events {
        a.push(e);
    }
    a.finish()
}

/// Streams events into an [`Analyzer`] through a reorder window: events may arrive up to `window_us` out of
/// time order (watchers and subscribers report with different delays) and are still analysed in order.
/// Memory stays bounded by the window, not by the log.
pub struct Reordering {
    analyzer: Analyzer,
    /// Held events, ordered by time and then arrival (a min-heap: a live log is out of order by milliseconds at
    /// tens of thousands of events a second, and inserting into a sorted queue moved megabytes per event).
    buf: BinaryHeap<Held>,
    arrivals: u64,
    max_t: u64,
    released_t: u64,
    late: u64,
    window_us: u64,
    /// The most events held at once: past it the earliest is released even inside the window, so memory stays
    /// bounded at high rates (a 60 s window at 300,000 events/s would otherwise hold a whole run).
    max_held: usize,
}

/// The most events [`Reordering`] holds by default: about 0.9 s of a run at 300,000 events a second, minutes of a
/// run at the rates where cluster events arrive seconds late. Tens of MiB.
pub const MAX_HELD_EVENTS: usize = 262_144;

struct Held {
    t_us: u64,
    arrival: u64,
    /// Boxed: the heap moves its entries on every push and pop.
    event: Box<Event>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.t_us, self.arrival) == (other.t_us, other.arrival)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed, so the max-heap pops the earliest (time, arrival) first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.t_us, other.arrival).cmp(&(self.t_us, self.arrival))
    }
}

impl Reordering {
    pub fn new(window_us: u64) -> Self {
        Reordering {
            analyzer: Analyzer::default(),
            buf: BinaryHeap::new(),
            arrivals: 0,
            max_t: 0,
            released_t: 0,
            late: 0,
            window_us,
            max_held: MAX_HELD_EVENTS,
        }
    }

    /// The same with at most `max_held` events held at once (at least 1).
    pub fn with_max_held(mut self, max_held: usize) -> Self {
        self.max_held = max_held.max(1);
        self
    }

    /// Keeps every completed message's exact record, as [`Analyzer::keeping_messages`].
    pub fn keeping_messages(mut self) -> Self {
        self.analyzer = self.analyzer.keeping_messages();
        self
    }

    pub fn push(&mut self, e: Event) {
        if e.t_us < self.released_t {
            // Too late to be put in its place: analysed now, and counted.
            self.late += 1;
            self.analyzer.push(&e);
            return;
        }
        self.max_t = self.max_t.max(e.t_us);
        self.arrivals += 1;
        self.buf.push(Held {
            t_us: e.t_us,
            arrival: self.arrivals,
            event: Box::new(e),
        });
        while self.buf.peek().is_some_and(|f| {
            f.t_us + self.window_us <= self.max_t || self.buf.len() > self.max_held
        }) {
            let h = self.buf.pop().expect("non-empty");
            self.released_t = h.t_us;
            self.analyzer.push(&h.event);
        }
    }

    pub fn finish(mut self) -> RunReport {
        while let Some(h) = self.buf.pop() {
            self.analyzer.push(&h.event);
        }
        let late = self.late;
        let mut report = self.analyzer.finish();
        if late > 0 {
            report.warnings.push(format!(
                "{late} events arrived more than {} (or {} events) out of time order and were analysed where they \
                 arrived",
                crate::units::human_us(self.window_us),
                self.max_held
            ));
        }
        report
    }
}

/// How far a worker's clock may disagree with the harness's before it is reported.
pub const CLOCK_SKEW_TOLERANCE_US: u64 = 5_000;

/// The analysis state machine: feed it events in time order with [`Analyzer::push`], then [`Analyzer::finish`].
/// Cloning it gives a report of the run so far (for thresholds that abort a run).
#[derive(Default, Clone)]
pub struct Analyzer {
    /// Events naming a message no plan can have (sequence ≥ the per-run limit), ignored.
    out_of_range: u64,
    /// Per pod: how far its clock seemed behind (reporting a delivery before the send) and ahead (reporting the
    /// end of processing after the harness saw the completion), in µs, and in how many completions.
    clock_skew: HashMap<String, (u64, u64, u64)>,
    info: Option<RunInfo>,
    stream_index: HashMap<String, u32>,
    streams: Vec<String>,
    /// Per stream: messages in flight, and the completed ones as ranges. Completed messages are folded into
    /// `series` and `intervals` as they complete, so this grows with what is in flight, not with the run.
    msgs: Vec<StreamMsgs>,
    series: SeriesSet,
    intervals: Intervals,
    /// Completions without a scheduled event (no intended time, so no latency).
    no_intended: u64,
    /// Exact per-message records, when asked for.
    kept: Option<Vec<MessageLatency>>,
    pods: HashMap<String, Pod>,
    pod_order: Vec<String>,
    deployments: HashMap<String, Deployment>,
    nodes: HashMap<String, Node>,
    node_order: Vec<String>,
    live_nodes: u32,
    /// Scale-ups not yet matched to a node, one entry per node asked for, oldest first.
    /// Scale-ups still waiting for their node: (time, node group).
    pending_scale_ups: VecDeque<(u64, String)>,
    cycles: Vec<ScaleCycle>,
    /// Per cycle: (node, from, until) spans during which the node served the cycle; `until` is set when the
    /// node is deleted or handed to another deployment's pod.
    cycle_nodes: Vec<Vec<(String, u64, Option<u64>)>>,
    /// Node → (cycle, index into cycle_nodes[cycle]) currently billed to it.
    node_owner: HashMap<String, (usize, usize)>,
    cycle_open: Vec<bool>,
    delivery: Delivery,
    duplicates_by_completion: u64,
    http_calls: u64,
    last_t: u64,
    finished: bool,
    interrupted: bool,
    warnings: Vec<String>,
    gpu_busy_us: u64,
    timeline: Timeline,
    /// Per stream: the true backlog (published, not completed) at each change, kept for a while to measure how
    /// stale the autoscaler's view of it is.
    backlog_history: HashMap<String, VecDeque<(u64, i64)>>,
    last_metric: HashMap<String, f64>,
    last_metric_at: HashMap<String, u64>,
    /// Which stream each Deployment, ScaledObject and worker pipeline belongs to.
    identity: Identity,
    /// The first message's intended send: pods ready by then are pre-existing, the rest are the run's cold starts.
    first_send: Option<u64>,
    /// The last intended send and the last publish answered (µs): the offered and the achieved publishing rate.
    last_intended: u64,
    last_published: u64,
    /// The header names a real-time target (not the simulator): sends have a pacer's lateness.
    real_time: bool,
    /// The header says whether the cluster was observed; older logs leave it to be inferred from node events.
    cluster_observed: Option<bool>,
    /// A node was reported (for logs whose header does not say whether the cluster was observed).
    nodes_seen: bool,
    /// Wall-clock time of t = 0 (µs since the epoch): whole-second API stamps are recognised by it.
    wall_start_us: u64,
    /// Node groups that were scaled up.
    scale_up_groups: BTreeSet<String>,
    /// Reported problems by the Event they came from, at its highest count.
    problems: HashMap<String, Reported>,
}

/// A reported problem (pod, phase, reason, node group, highest count).
type Reported = (Option<String>, String, String, Option<String>, u32);
/// Problems of the run by (phase order, reason, node group): (count, pods).
type ProblemTally<'a> = BTreeMap<(usize, &'a str, Option<&'a str>), (u32, BTreeSet<&'a str>)>;

/// How far back the metric lag is looked for.
const METRIC_LAG_WINDOW_US: u64 = 15 * 60 * 1_000_000;

impl Analyzer {
    /// Also keeps every completed message's exact record ([`RunReport::messages`]), which grows with the run.
    pub fn keeping_messages(mut self) -> Self {
        self.kept = Some(Vec::new());
        self
    }

    /// The records kept since the last call ([`Analyzer::keeping_messages`]), taken out: a consumer that reads
    /// them as they come (the run's metrics) keeps the analyzer from holding them. Empty when not keeping.
    pub fn drain_messages(&mut self) -> impl Iterator<Item = MessageLatency> + '_ {
        self.kept.iter_mut().flat_map(|k| k.drain(..))
    }

    /// Messages in flight (scheduled and not completed) and ranges of completed ones: the state that grows with
    /// the load.
    pub fn held_messages(&self) -> (usize, usize) {
        (
            self.msgs.iter().map(|m| m.open.len()).sum(),
            self.msgs.iter().map(|m| m.done.ranges()).sum(),
        )
    }

    fn stream(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.stream_index.get(name) {
            return i;
        }
        self.identity.add_stream(PipelineNames {
            stream: name.to_string(),
            ..PipelineNames::default()
        });
        let i = self.streams.len() as u32;
        self.streams.push(name.to_string());
        self.stream_index.insert(name.to_string(), i);
        let scope = self.series.scope_id(name);
        self.msgs.push(StreamMsgs {
            scope,
            ..StreamMsgs::default()
        });
        i
    }

    /// A message's stream and sequence number; `None` (counted) for one no plan can have (a damaged or hostile
    /// log), which is kept out of every statistic.
    fn locate(&mut self, id: &MsgId) -> Option<(usize, u64)> {
        if id.seq >= crate::workload::MAX_MESSAGES_PER_RUN {
            self.out_of_range += 1;
            return None;
        }
        Some((self.stream(&id.stream) as usize, id.seq))
    }

    /// An open message's state (created on first mention); `None` once it has completed, when what else is said
    /// of it no longer matters, or when it is out of range.
    fn msg(&mut self, id: &MsgId) -> Option<&mut Msg> {
        let (s, seq) = self.locate(id)?;
        let StreamMsgs { open, done, .. } = &mut self.msgs[s];
        if open.contains(seq) {
            return open.get_mut(seq);
        }
        (!done.contains(seq)).then(|| open.get_or_insert_with(seq, Msg::default))
    }

    pub fn push(&mut self, e: &Event) {
        let t = e.t_us;
        self.last_t = self.last_t.max(t);
        match &e.kind {
            EventKind::RunStarted {
                run_id,
                workload,
                seed,
                target,
                wall_clock_start_unix_us,
                streams,
                warmup_us,
                deadline_us,
                price_per_gpu_hour_usd,
                shard,
                pipelines,
                cluster_observed,
                overrides,
                ..
            } => {
                self.identity = Identity::new(pipelines);
                self.real_time = target != "sim";
                self.cluster_observed = *cluster_observed;
                self.wall_start_us = *wall_clock_start_unix_us;
                for s in streams {
                    self.stream(s);
                }
                for p in pipelines {
                    if let Some(d) = &p.deployment {
                        self.deployments.entry(p.stream.clone()).or_default().name =
                            Some(d.clone());
                    }
                }
                self.info = Some(RunInfo {
                    run_id: run_id.clone(),
                    workload: workload.clone(),
                    seed: *seed,
                    target: target.clone(),
                    wall_clock_start_unix_us: *wall_clock_start_unix_us,
                    streams: streams.clone(),
                    warmup_us: *warmup_us,
                    deadline_us: *deadline_us,
                    end_us: 0,
                    interrupted: false,
                    finished: false,
                    price_per_gpu_hour_usd: *price_per_gpu_hour_usd,
                    shard: shard.clone(),
                    overrides: overrides.clone(),
                });
            }
            EventKind::RunFinished {
                interrupted,
                reason,
            } => {
                self.finished = true;
                self.interrupted = *interrupted;
                if let Some(r) = reason.as_ref().filter(|_| *interrupted) {
                    self.warnings.push(format!("the run stopped early: {r}"));
                }
            }
            EventKind::Scheduled { id, intended_us } => {
                self.delivery.scheduled += 1;
                self.last_intended = self.last_intended.max(*intended_us);
                self.first_send = Some(
                    self.first_send
                        .map_or(*intended_us, |f| f.min(*intended_us)),
                );
                if let Some(m) = self.msg(id) {
                    m.intended.set(*intended_us);
                }
            }
            EventKind::Published {
                id, lateness_us, ..
            } => {
                self.delivery.published += 1;
                self.last_published = self.last_published.max(t);
                self.timeline.count(false, t);
                // The stream's pipeline state is kept under the stream's name.
                if !self.deployments.contains_key(&id.stream) {
                    self.deployments
                        .insert(id.stream.clone(), Deployment::default());
                }
                let cold = self.deployments[&id.stream].capacity() == 0;
                let warmup_us = self.info.as_ref().map_or(0, |i| i.warmup_us);
                let Some(m) = self.msg(id) else {
                    return;
                };
                // The publish delay is known now, whether or not the message ever completes (a publish-only run,
                // a lost message): recorded once, at its first publish, outside the warm-up.
                let delay = (!m.published.is_some())
                    .then(|| m.intended.get())
                    .flatten()
                    .filter(|&i| i >= warmup_us)
                    .map(|i| t.saturating_sub(i));
                m.published.set(t);
                m.cold |= cold;
                let s = self.stream_index[&id.stream] as usize;
                let scope = self.msgs[s].scope;
                // The pacer's lateness (actual send − intended): only a real-time run has a pacer.
                if self.real_time {
                    self.series
                        .record_in_order("pacer_lateness", scope, None, *lateness_us);
                }
                if let Some(delay) = delay {
                    self.series
                        .record_in_order("publish_delay", scope, Some(cold), delay);
                }
                self.true_backlog(&id.stream, t, 1);
                let d = self.deployments.get_mut(&id.stream).expect("inserted");
                if cold {
                    d.cold_waiting.entry(s as u32).or_default().insert(id.seq);
                    if d.desired == 0 && d.waiting_since.is_none() {
                        d.waiting_since = Some(t);
                    }
                }
            }
            EventKind::PublishFailed { id, error } => {
                self.last_published = self.last_published.max(t);
                self.delivery.publish_failed += 1;
                *self
                    .delivery
                    .publish_errors
                    .entry(short(error))
                    .or_default() += 1;
                if let Some(m) = self.msg(id) {
                    m.publish_failed = true;
                }
            }
            EventKind::Delivered { id, attempt, .. } => {
                if *attempt > 1 {
                    self.delivery.redelivered += 1;
                }
                if let Some((s, _)) = self.locate(id) {
                    self.msgs[s].reached_worker = true;
                }
                if let Some(m) = self.msg(id) {
                    m.delivered.set(t);
                }
                // With no readiness signal at all (an events-only log), a delivery shows a worker serving.
                if let Some(d) = self
                    .deployments
                    .get_mut(&id.stream)
                    .filter(|d| !d.readiness_seen && !d.serving)
                {
                    d.serving = true;
                    self.capacity_changed(&id.stream.clone(), t, 0);
                }
            }
            EventKind::Completed {
                id,
                pod,
                received_us,
                processing_start_us,
                processing_end_us,
            } => {
                let Some((s, seq)) = self.locate(id) else {
                    return;
                };
                if !self.msgs[s].done.insert(seq) {
                    self.duplicates_by_completion += 1;
                    return;
                }
                let m = self.msgs[s].open.remove(seq).unwrap_or_default();
                // A worker's clock against the harness's: a job cannot reach a worker before it was sent, nor
                // finish after the harness saw its completion. Worker-measured spans are clamped at zero either
                // way; here the disagreement is measured, to be reported.
                let behind = match (m.intended.get(), received_us.or(*processing_start_us)) {
                    (Some(sent), Some(got)) => sent.saturating_sub(got),
                    _ => 0,
                };
                let ahead = processing_end_us.map_or(0, |end| end.saturating_sub(t));
                if behind > CLOCK_SKEW_TOLERANCE_US || ahead > CLOCK_SKEW_TOLERANCE_US {
                    let s = self.clock_skew.entry(pod.clone()).or_default();
                    s.0 = s.0.max(behind);
                    s.1 = s.1.max(ahead);
                    s.2 += 1;
                }
                // The worker's own processing span, when it reported both ends.
                let processing = processing_start_us.zip(*processing_end_us);
                let busy = processing.map_or(0, |(a, b)| b.saturating_sub(a));
                self.timeline.count(true, t);
                self.true_backlog(&id.stream, t, -1);
                self.gpu_busy_us += busy;
                if let Some(p) = self.pods.get_mut(pod) {
                    p.first_done.get_or_insert(t);
                    if let Some(c) = p.cycle {
                        let cy = &mut self.cycles[c];
                        cy.messages += 1;
                        cy.gpu_busy_seconds += busy as f64 / 1e6;
                        cy.last_completion_us = Some(t);
                    }
                }
                self.fold(s, seq, &m, processing, t);
            }
            EventKind::Duplicate { .. } => self.delivery.duplicates += 1,
            EventKind::Lost { id } => {
                if let Some(m) = self.msg(id) {
                    m.lost = true;
                }
            }
            EventKind::HttpCalled { .. } => self.http_calls += 1,
            EventKind::Backlog {
                subscription,
                depth,
                view,
                point_age_us,
            } => {
                let key = match view {
                    None => subscription.clone(),
                    Some(v) => format!("{subscription} ({v})"),
                };
                let series = self.timeline.backlog.entry(key).or_default();
                Timeline::level(series, (t, *depth), |a, b| (a.0, a.1.max(b.1)));
                // How old the autoscaler's view was when it was read.
                if let Some(age) = point_age_us {
                    let stream = match self.identity.subscription(subscription) {
                        Some(i) => self.identity.stream_name(i).to_string(),
                        None => subscription.clone(),
                    };
                    self.series.record("metrics.point_age", &stream, None, *age);
                }
            }
            EventKind::ResultsIgnored {
                other_runs,
                malformed,
                example,
            } => {
                if *other_runs > 0 {
                    self.warnings.push(format!(
                        "{other_runs} results-topic messages belonged to other runs and were ignored"
                    ));
                }
                if *malformed > 0 {
                    self.warnings.push(format!(
                        "{malformed} results-topic messages did not follow the worker contract (docs/worker-contract.md){}",
                        example.as_ref().map(|e| format!(", e.g. {e}")).unwrap_or_default()
                    ));
                }
            }
            EventKind::MetricRead {
                scaled_object,
                value,
            } => {
                let stream = match self.identity.scaled_object(scaled_object) {
                    Some(i) => self.identity.stream_name(i).to_string(),
                    None => scaled_object.clone(),
                };
                self.metric_read(t, &stream, *value)
            }
            EventKind::ScaleTarget {
                scaled_object,
                deployment,
                subscription,
            } => {
                if let Some(i) =
                    self.identity
                        .learn(scaled_object, deployment, subscription.as_deref())
                {
                    let stream = self.identity.stream_name(i).to_string();
                    self.adopt(deployment, &stream);
                }
            }
            EventKind::ScalerCondition {
                scaled_object,
                condition,
                active,
                reason,
            } => {
                // The states that change what the run measured: KEDA falling back to its fallback replicas or
                // paused, the HPA held at maxReplicaCount, a ScaledObject not ready.
                let reason = reason.as_deref().unwrap_or("no reason given");
                let notable = match (condition.as_str(), *active) {
                    ("Fallback", true) => Some("fell back to its fallback replica count"),
                    ("Paused", true) => Some("was paused"),
                    ("ScalingLimited", true) if reason.starts_with("TooManyReplicas") => {
                        Some("was held at its maximum replica count")
                    }
                    ("Ready", false) => Some("was not ready"),
                    _ => None,
                };
                if let Some(what) = notable {
                    self.warnings.push(format!(
                        "at {}, scaler {scaled_object} {what} ({condition}: {reason})",
                        crate::units::human_us(t)
                    ));
                }
            }
            EventKind::ScalerActive { .. } | EventKind::SimPodTruth { .. } => {}
            EventKind::Replicas {
                deployment,
                desired,
                ready,
            } => {
                let key = self.pipeline_key(deployment);
                self.replicas(t, &key, deployment, *desired, *ready)
            }
            EventKind::PodCreated {
                pod,
                deployment,
                preexisting,
            } => {
                let key = self.pipeline_key(deployment);
                let stamp = self.stamp(t, e.source);
                if self.pods.get(pod).is_some_and(|p| !p.announced) {
                    return self.announce(pod, deployment, key, stamp, *preexisting, e.source, t);
                }
                if let Some(p) = self.pods.get_mut(pod) {
                    // A second producer describing the same pod: merged, each instant its sharpest.
                    p.sources |= source_bit(e.source);
                    p.created = Stamp::merge(Some(p.created), stamp);
                    p.preexisting &= *preexisting;
                    if e.source == Source::Kube && p.deployment != *deployment {
                        if p.pipeline != key {
                            self.warnings.push(format!(
                                "pod {pod} is reported for pipeline {} and for {key}; {key} (its owner, as the cluster says) is kept",
                                p.pipeline
                            ));
                        }
                        p.deployment = deployment.clone();
                        p.pipeline = key;
                    }
                    return;
                }
                let d = self.deployments.entry(key.clone()).or_default();
                if d.name.is_none() && e.source != Source::Worker {
                    d.name = Some(deployment.clone());
                }
                // Its trigger and whether it opened its cycle are settled at the end, from times alone: a watcher
                // may report the pod before the Deployment change that made it, at the same instant.
                let cycle = if *preexisting { None } else { d.cycle };
                self.pods.insert(
                    pod.clone(),
                    Pod {
                        deployment: deployment.clone(),
                        pipeline: key,
                        preexisting: *preexisting,
                        announced: true,
                        created: stamp,
                        sources: source_bit(e.source),
                        cycle,
                        ..Pod::default()
                    },
                );
                self.pod_order.push(pod.clone());
            }
            EventKind::PodUnschedulable { pod, .. } => {
                self.pod_mut(pod).unschedulable.get_or_insert(t);
            }
            EventKind::ColdStartProblem {
                pod,
                phase,
                reason,
                node_group,
                source_event,
                count,
                ..
            } => {
                let e = self.problems.entry(source_event.clone()).or_insert((
                    pod.clone(),
                    phase.clone(),
                    reason.clone(),
                    node_group.clone(),
                    0,
                ));
                e.4 = e.4.max(*count);
            }
            EventKind::ScaleUpTriggered {
                node_group,
                from,
                to,
            } => {
                if !self.scale_up_groups.contains(node_group) {
                    self.scale_up_groups.insert(node_group.clone());
                }
                for _ in 0..to.saturating_sub(*from).max(1) {
                    self.pending_scale_ups.push_back((t, node_group.clone()));
                }
            }
            EventKind::PodScheduled { pod, node } => {
                let stamp = self.stamp(t, e.source);
                let p = self.pod_mut(pod);
                p.sources |= source_bit(e.source);
                let first = p.scheduled.is_none();
                p.scheduled = Some(Stamp::merge(p.scheduled, stamp));
                p.node = Some(node.clone());
                let (cycle, announced) = (p.cycle, p.announced);
                if first && announced {
                    self.assign_node(t, node, cycle);
                }
            }
            EventKind::ImagePulling { pod, .. } => {
                let stamp = self.stamp(t, e.source);
                let p = self.pod_mut(pod);
                if p.restarts == 0 {
                    p.pulling = Some(Stamp::merge(p.pulling, stamp));
                }
            }
            EventKind::ImagePulled {
                pod,
                cached,
                duration_us,
                ..
            } => {
                let stamp = self.stamp(t, e.source);
                let p = self.pod_mut(pod);
                let first = p.pulled.is_none();
                p.pulled = Some(Stamp::merge(p.pulled, stamp));
                p.cached = Some(*cached);
                if !*cached && first {
                    p.pull_us = Some(*duration_us);
                }
            }
            EventKind::ContainerStarted { pod } => {
                let stamp = self.stamp(t, e.source);
                let p = self.pod_mut(pod);
                p.sources |= source_bit(e.source);
                // A restart's start is not the cold start's (from one producer, the first is kept).
                if p.restarts == 0 {
                    p.started = Some(Stamp::merge(p.started, stamp));
                }
            }
            EventKind::ModelLoaded { pod, duration_us } => {
                let stamp = self.stamp(t, e.source);
                let p = self.pod_mut(pod);
                if p.restarts == 0 {
                    p.loaded = Some(Stamp::merge(p.loaded, stamp));
                    if p.load_duration.is_none() {
                        p.load_duration = *duration_us;
                    }
                }
            }
            EventKind::PodNotReady { pod, .. } => {
                let p = self.pod_mut(pod);
                p.restarts += 1;
                if p.is_ready {
                    p.is_ready = false;
                    let (key, counted) = (p.pipeline.clone(), p.announced);
                    if counted {
                        self.pod_readiness(&key, t, -1);
                    }
                }
            }
            EventKind::PodReady { pod } => {
                let stamp = self.stamp(t, e.source);
                let p = self.pod_mut(pod);
                p.sources |= source_bit(e.source);
                if p.ready.is_none() || p.restarts == 0 {
                    p.ready = Some(Stamp::merge(p.ready, stamp));
                }
                if !p.is_ready && p.deleted.is_none() {
                    p.is_ready = true;
                    let (key, counted) = (p.pipeline.clone(), p.announced);
                    if counted {
                        self.pod_readiness(&key, t, 1);
                    }
                }
            }
            EventKind::PodDeleted { pod } => {
                let stamp = self.stamp(t, e.source);
                let p = self.pod_mut(pod);
                p.deleted = Some(Stamp::merge(p.deleted, stamp));
                if p.is_ready {
                    p.is_ready = false;
                    let (key, counted) = (p.pipeline.clone(), p.announced);
                    if counted {
                        self.pod_readiness(&key, t, -1);
                    }
                }
            }
            EventKind::NodeCreated {
                node,
                gpus,
                preexisting,
                ..
            } => {
                self.nodes_seen = true;
                if self.nodes.contains_key(node) {
                    return; // reported twice (two producers, or a re-list)
                }
                self.live_nodes += 1;
                self.timeline.nodes(t, self.live_nodes);
                let n = Node {
                    created: t,
                    gpus: *gpus,
                    // The oldest scale-up still waiting for a node brought this one.
                    trigger: if *preexisting {
                        None
                    } else {
                        self.scale_up_of(node)
                    },
                    preexisting: *preexisting,
                    ..Node::default()
                };
                self.nodes.insert(node.clone(), n);
                self.node_order.push(node.clone());
                for (i, c) in self.cycles.iter_mut().enumerate() {
                    if self.cycle_open[i] {
                        c.peak_nodes = c.peak_nodes.max(self.live_nodes);
                    }
                }
            }
            EventKind::NodeReady { node } => {
                if let Some(n) = self.nodes.get_mut(node) {
                    n.ready.get_or_insert(t);
                }
            }
            EventKind::GpuAllocatable { node, gpus } => {
                if let Some(n) = self.nodes.get_mut(node) {
                    n.gpu.get_or_insert(t);
                    // A GPU node registers before its device plugin reports the GPUs.
                    n.gpus = n.gpus.max(*gpus);
                }
            }
            EventKind::NodeDeleted { node } => {
                if let Some(n) = self.nodes.get_mut(node)
                    && n.deleted.is_none()
                {
                    n.deleted = Some(t);
                    self.live_nodes = self.live_nodes.saturating_sub(1);
                    self.timeline.nodes(t, self.live_nodes);
                }
                if let Some((c, i)) = self.node_owner.remove(node) {
                    self.cycle_nodes[c][i].2 = Some(t);
                }
            }
        }
        let _ = e.source == Source::Sim;
    }

    /// The offered and achieved publishing rates, and a warning when publishing fell more than 5% short of the
    /// schedule (the harness could not deliver the load it was asked for).
    fn publishing_rates(&mut self, d: &mut Delivery) {
        let Some(first) = self.first_send else {
            return;
        };
        let span_s = self.last_intended.saturating_sub(first) as f64 / 1e6;
        if span_s < 1.0 || d.scheduled < 2 || d.published == 0 {
            return;
        }
        let offered = (d.scheduled - 1) as f64 / span_s;
        let took_s = (self.last_published.saturating_sub(first) as f64 / 1e6).max(span_s);
        // Every publish answered counts, a failure too: the shortfall is about keeping time, not about errors.
        let achieved = (d.published + d.publish_failed).saturating_sub(1) as f64 / took_s;
        let shortfall = (1.0 - achieved / offered).max(0.0);
        d.offered_per_s = Some(offered);
        d.achieved_per_s = Some(achieved);
        d.publish_shortfall = Some(shortfall);
        // A handful of messages has no rate to speak of: judged from 20 on.
        if shortfall > 0.05 && d.scheduled >= 20 {
            let rate = |r: f64| {
                if r >= 100.0 {
                    format!("{r:.0}")
                } else {
                    format!("{r:.2}")
                }
            };
            let p99 = |m: &str| {
                self.series
                    .get(m, "all", None)
                    .map(|h| crate::units::human_us(h.value_at_quantile(0.99)))
                    .unwrap_or_else(|| "unknown".into())
            };
            self.warnings.push(format!(
                "publishing fell behind the schedule: achieved {}/s of {}/s offered ({:.0}% \
                 short); publish delay p99 {}, pacer lateness p99 {}\n    fix: lower the rate, shard the load \
                 across machines (`run --shard`), give the harness more CPU, or check the target; latencies are \
                 still measured from the intended sends",
                rate(achieved),
                rate(offered),
                shortfall * 100.0,
                p99("publish_delay"),
                p99("pacer_lateness"),
            ));
        }
    }

    /// A message completed at `done`: counted, and its latency and split folded into the series and the
    /// interval log. Nothing of it is kept after this (unless records are kept).
    fn fold(&mut self, s: usize, seq: u64, m: &Msg, processing: Option<(u64, u64)>, done: u64) {
        self.delivery.completed += 1;
        let (warmup_us, deadline_us) = self
            .info
            .as_ref()
            .map_or((0, u64::MAX), |i| (i.warmup_us, i.deadline_us));
        if done > deadline_us {
            self.delivery.late += 1;
        }
        let Some(intended) = m.intended.get() else {
            self.no_intended += 1;
            return;
        };
        if intended < warmup_us {
            self.delivery.warmup_excluded += 1;
            return;
        }
        let mut rec = MessageLatency {
            stream: s as u32,
            cold: m.cold,
            seq,
            intended_us: intended,
            completed_us: done,
            publish_delay_us: None,
            capacity_wait_us: None,
            queueing_us: None,
            processing_us: None,
        };
        if let Some(p) = m.published.get() {
            rec.publish_delay_us = Some(p.saturating_sub(intended));
            if let Some(start) = processing.map(|(a, _)| a).or(m.delivered.get()) {
                // Cold: waiting until the first replica was ready (or delivery, if sooner); then queueing.
                let cap = if m.cold {
                    m.capacity.get().unwrap_or(start).min(start).max(p)
                } else {
                    p
                };
                rec.capacity_wait_us = Some(cap - p);
                rec.queueing_us = Some(start.saturating_sub(cap));
            }
        }
        rec.processing_us = match (processing, m.delivered.get()) {
            (Some((a, b)), _) => Some(b.saturating_sub(a)),
            (_, Some(d)) => Some(done.saturating_sub(d)),
            _ => None,
        };
        let (scope, cold) = (self.msgs[s].scope, Some(m.cold));
        self.series
            .record_in_order("e2e_latency", scope, cold, rec.e2e_us());
        // The publish delay went in at the publish.
        for (metric, v) in [
            ("capacity_wait", rec.capacity_wait_us),
            ("queueing", rec.queueing_us),
            ("processing", rec.processing_us),
        ] {
            if let Some(v) = v {
                self.series.record_in_order(metric, scope, cold, v);
            }
        }
        self.intervals
            .record(done, s as u32, rec.e2e_us(), self.last_t);
        if let Some(k) = &mut self.kept {
            k.push(rec);
        }
    }

    fn true_backlog(&mut self, stream: &str, t: u64, delta: i64) {
        // On the hot path (every publish and completion): look up before allocating a key.
        if !self.backlog_history.contains_key(stream) {
            self.backlog_history
                .insert(stream.to_string(), VecDeque::new());
        }
        let h = self.backlog_history.get_mut(stream).expect("inserted");
        let now = h.back().map_or(0, |b| b.1) + delta;
        h.push_back((t, now));
        while h.front().is_some_and(|f| f.0 + METRIC_LAG_WINDOW_US < t) && h.len() > 1 {
            h.pop_front();
        }
    }

    /// The metric lag: when the value the autoscaler reads changes from `u` to `v`, how long ago the true backlog
    /// crossed `u` in that direction (the first thing a reader lagging by L would see, L later). The autoscaler's
    /// read cadence is recorded too, since these lags are observed at its polls.
    /// The scale-up that brought a new node: the oldest one still waiting in the node's group (GKE names a node
    /// after its managed instance group: `gke-<cluster>-<pool>-<hash>-grp` makes `gke-<cluster>-<pool>-<hash>-xxxx`),
    /// else the oldest one waiting.
    fn scale_up_of(&mut self, node: &str) -> Option<u64> {
        let of_group = self
            .pending_scale_ups
            .iter()
            .position(|(_, group)| group_of(group, node));
        self.pending_scale_ups
            .remove(of_group.unwrap_or(0))
            .map(|(t, _)| t)
    }

    fn metric_read(&mut self, t: u64, stream: &str, value: f64) {
        if let Some(prev) = self.last_metric_at.insert(stream.to_string(), t) {
            self.series.record(
                "metrics.poll_interval",
                stream,
                None,
                t.saturating_sub(prev),
            );
        }
        let Some(old) = self.last_metric.insert(stream.to_string(), value) else {
            return;
        };
        let Some(h) = self.backlog_history.get(stream).filter(|_| old != value) else {
            return;
        };
        let (u, up) = (old.round() as i64, value > old);
        let crossed = |before: i64, after: i64| {
            if up {
                before <= u && after > u
            } else {
                before >= u && after < u
            }
        };
        let points: Vec<&(u64, i64)> = h.iter().filter(|p| p.0 <= t).collect();
        for w in points.windows(2).rev() {
            if crossed(w[0].1, w[1].1) {
                let lag = t - w[1].0;
                self.series.record("metrics.lag", stream, None, lag);
                return;
            }
        }
    }

    /// A pod of `cycle` landed on `node`: the node is billed to that cycle from now (from its creation if it is
    /// new), and stops being billed to whichever cycle had it before.
    fn assign_node(&mut self, t: u64, node: &str, cycle: Option<usize>) {
        let previous = self.node_owner.get(node).copied();
        if previous.map(|(c, _)| Some(c)) == Some(cycle) {
            return;
        }
        if let Some((c, i)) = previous {
            self.cycle_nodes[c][i].2 = Some(t);
            self.node_owner.remove(node);
        }
        if let Some(c) = cycle {
            let fresh = previous.is_none()
                && self
                    .nodes
                    .get(node)
                    .is_some_and(|n| !n.preexisting && n.created >= self.cycles[c].start_us);
            let from = if fresh { self.nodes[node].created } else { t };
            self.cycle_nodes[c].push((node.to_string(), from, None));
            self.node_owner
                .insert(node.to_string(), (c, self.cycle_nodes[c].len() - 1));
        }
    }

    /// The pipeline a Deployment (or a worker's `--pipeline`) belongs to: its stream's name, or its own name
    /// when it matches no stream.
    fn pipeline_key(&mut self, deployment: &str) -> String {
        match self.identity.deployment(deployment) {
            Some(i) => self.identity.stream_name(i).to_string(),
            None => deployment.to_string(),
        }
    }

    /// A producer's instant: whole-second API stamps (the watchers' and `import`'s object times) stand for their
    /// whole second.
    fn stamp(&self, t: u64, source: Source) -> Stamp {
        Stamp {
            t,
            coarse: source == Source::Kube && (self.wall_start_us + t).is_multiple_of(1_000_000),
        }
    }

    /// A Deployment first seen under its own name turns out (from a ScaledObject) to serve `stream`: what was
    /// recorded under its name moves to the stream's pipeline.
    fn adopt(&mut self, deployment: &str, stream: &str) {
        if deployment == stream {
            return;
        }
        if let Some(old) = self.deployments.remove(deployment) {
            let target = self.deployments.entry(stream.to_string()).or_default();
            if target.desired == 0 && target.ready_pods == 0 && target.cycle.is_none() {
                let waiting = std::mem::take(&mut target.cold_waiting);
                let since = target.waiting_since;
                *target = old;
                for (s, seqs) in waiting {
                    let into = target.cold_waiting.entry(s).or_default();
                    for seq in seqs.into_values() {
                        into.insert(seq);
                    }
                }
                target.waiting_since = target.waiting_since.or(since);
            }
        }
        let named = self.deployments.entry(stream.to_string()).or_default();
        named.name.get_or_insert_with(|| deployment.to_string());
        for p in self.pods.values_mut() {
            if p.pipeline == deployment {
                p.pipeline = stream.to_string();
            }
        }
        for c in &mut self.cycles {
            if c.pipeline.is_none() && c.deployment == deployment {
                c.pipeline = Some(stream.to_string());
            }
        }
        if let Some(series) = self.timeline.replicas.remove(deployment) {
            self.timeline
                .replicas
                .entry(stream.to_string())
                .or_default()
                .extend(series);
        }
    }

    /// A pod's state, created (not yet announced) when a fact about it comes before its creation.
    fn pod_mut(&mut self, pod: &str) -> &mut Pod {
        if !self.pods.contains_key(pod) {
            self.pods.insert(pod.to_string(), Pod::default());
            self.pod_order.push(pod.to_string());
        }
        self.pods.get_mut(pod).expect("inserted")
    }

    /// A pod whose facts came first is created: it joins its pipeline, and what it already is counts there.
    #[allow(clippy::too_many_arguments)]
    fn announce(
        &mut self,
        pod: &str,
        deployment: &str,
        key: String,
        created: Stamp,
        preexisting: bool,
        source: Source,
        t: u64,
    ) {
        let d = self.deployments.entry(key.clone()).or_default();
        if d.name.is_none() && source != Source::Worker {
            d.name = Some(deployment.to_string());
        }
        let cycle = if preexisting { None } else { d.cycle };
        let p = self.pods.get_mut(pod).expect("a pod");
        p.announced = true;
        p.deployment = deployment.to_string();
        p.pipeline = key.clone();
        p.created = created;
        p.preexisting = preexisting;
        p.sources |= source_bit(source);
        p.cycle = cycle;
        let (ready, node) = (p.is_ready, p.node.clone());
        if let Some(node) = node {
            self.assign_node(t, &node, cycle);
        }
        if ready {
            self.pod_readiness(&key, t, 1);
        }
    }

    /// A pod of pipeline `key` became ready (`+1`) or stopped being ready (`-1`).
    fn pod_readiness(&mut self, key: &str, t: u64, delta: i32) {
        let d = self.deployments.entry(key.to_string()).or_default();
        let before = d.capacity();
        d.readiness_seen = true;
        d.ready_pods = d.ready_pods.saturating_add_signed(delta);
        if !d.replicas_ready_known {
            let point = (t, d.desired, d.capacity());
            let series = self.timeline.replicas.entry(key.to_string()).or_default();
            Timeline::level(series, point, |a, b| (a.0, a.1.max(b.1), a.2.max(b.2)));
        }
        self.capacity_changed(key, t, before);
    }

    /// After a change to pipeline `key`'s readiness: when capacity appears (from `before` = 0), the cold messages
    /// waiting for it stop waiting, and the open scale cycle has its first ready replica.
    fn capacity_changed(&mut self, key: &str, t: u64, before: u32) {
        let Some(d) = self.deployments.get_mut(key) else {
            return;
        };
        if before > 0 || d.capacity() == 0 {
            return;
        }
        for (s, seqs) in std::mem::take(&mut d.cold_waiting) {
            for seq in seqs.into_values() {
                if let Some(m) = self.msgs[s as usize].open.get_mut(seq) {
                    m.capacity.set(t);
                }
            }
        }
        if let Some(c) = d.cycle {
            let cy = &mut self.cycles[c];
            if cy.time_to_first_ready_us.is_none() {
                cy.time_to_first_ready_us =
                    Some(t.saturating_sub(cy.first_message_us.unwrap_or(cy.start_us)));
            }
        }
    }

    /// A Deployment's replicas: `ready` is `None` when the producer could not see it (an Event).
    fn replicas(&mut self, t: u64, key: &str, name: &str, desired: u32, ready: Option<u32>) {
        let d = self.deployments.entry(key.to_string()).or_default();
        if d.name.is_none() {
            d.name = Some(name.to_string());
        }
        let before = d.capacity();
        let (old_desired, old_ready) = (d.desired, d.ready);
        let ready_now = ready.unwrap_or(if desired == 0 { 0 } else { old_ready });
        if desired > old_desired {
            d.triggers.push(t);
        }
        if old_desired == 0 && old_ready == 0 && desired > 0 {
            // A scale cycle starts (0 → N).
            let c = self.cycles.len();
            let pipeline = self
                .identity
                .knows_deployment(name)
                .map(|i| self.identity.stream_name(i).to_string());
            self.cycles.push(ScaleCycle {
                deployment: name.to_string(),
                pipeline,
                start_us: t,
                first_message_us: d.waiting_since,
                time_to_first_ready_us: None,
                peak_replicas: desired,
                peak_nodes: self.live_nodes,
                last_completion_us: None,
                to_zero_replicas_us: None,
                to_zero_nodes_us: None,
                messages: 0,
                gpu_busy_seconds: 0.0,
                gpu_idle_seconds: None,
                node_seconds: None,
                cost_usd: None,
            });
            self.cycle_nodes.push(Vec::new());
            self.cycle_open.push(true);
            d.cycle = Some(c);
            // Pods reported a moment before the change that opened the cycle (same instant) belong to it.
            for p in self.pods.values_mut() {
                if p.pipeline == key
                    && !p.preexisting
                    && p.cycle.is_none()
                    && p.created.t >= t
                    && p.deleted.is_none()
                {
                    p.cycle = Some(c);
                }
            }
        }
        if let Some(c) = d.cycle {
            let cy = &mut self.cycles[c];
            cy.peak_replicas = cy.peak_replicas.max(desired).max(ready_now);
            if desired == 0 && ready_now == 0 {
                let from = cy.last_completion_us.unwrap_or(cy.start_us);
                cy.to_zero_replicas_us = Some(t.saturating_sub(from));
                self.cycle_open[c] = false;
                d.cycle = None;
            }
        }
        if desired == 0 && ready_now == 0 {
            d.waiting_since = None;
            d.serving = false;
        }
        d.desired = desired;
        d.ready = ready_now;
        if ready.is_some() {
            d.replicas_ready_known = true;
            d.readiness_seen = true;
        }
        let point = (t, desired, d.capacity());
        let series = self.timeline.replicas.entry(key.to_string()).or_default();
        Timeline::level(series, point, |a, b| (a.0, a.1.max(b.1), a.2.max(b.2)));
        // A cycle that closed and reopened keeps the capacity appearing as the new cycle's first ready.
        self.capacity_changed(key, t, before);
    }

    pub fn finish(mut self) -> RunReport {
        let end = self.last_t;
        if self.out_of_range > 0 {
            self.warnings.push(format!(
                "{} events named messages no run can have (sequence number ≥ {}); they were ignored (a damaged log?)",
                self.out_of_range,
                crate::workload::MAX_MESSAGES_PER_RUN
            ));
        }
        let mut skewed: Vec<(&String, &(u64, u64, u64))> = self.clock_skew.iter().collect();
        skewed.sort();
        for (pod, (behind, ahead, n)) in skewed {
            let mut how = Vec::new();
            if *behind > CLOCK_SKEW_TOLERANCE_US {
                how.push(format!(
                    "up to {} behind (jobs received before they were sent)",
                    crate::units::human_us(*behind)
                ));
            }
            if *ahead > CLOCK_SKEW_TOLERANCE_US {
                how.push(format!(
                    "up to {} ahead (processing ended after the harness saw the completion)",
                    crate::units::human_us(*ahead)
                ));
            }
            self.warnings.push(format!(
                "clock skew: worker {pod}'s clock is {} in {n} completions; its queueing and processing times are clamped at zero where they would be negative (sync the clocks, e.g. with chrony)",
                how.join(" and ")
            ));
        }
        let mut info = self.info.take().unwrap_or_else(|| {
            self.warnings
                .push("the event log has no run_started header; run details are unknown".into());
            RunInfo {
                run_id: "unknown".into(),
                workload: "unknown".into(),
                seed: 0,
                target: "unknown".into(),
                wall_clock_start_unix_us: 0,
                streams: self.streams.clone(),
                warmup_us: 0,
                deadline_us: u64::MAX,
                end_us: 0,
                interrupted: false,
                finished: false,
                price_per_gpu_hour_usd: 0.0,
                shard: None,
                overrides: Vec::new(),
            }
        });
        info.end_us = end;
        info.finished = self.finished;
        info.interrupted = self.interrupted;
        if !self.finished {
            self.warnings.push(
                "the run did not finish (no run_finished event): results cover what was logged"
                    .into(),
            );
        }
        let mut delivery = std::mem::take(&mut self.delivery);
        delivery.duplicates += self.duplicates_by_completion;
        // What never completed: lost (a finished run's deadline has passed for everything), or still open (an
        // interrupted run's has not).
        let mut lost_seqs: Vec<(String, Vec<u64>)> = Vec::new();
        for (s, st) in self.msgs.iter().enumerate() {
            let mut lost_here = Vec::new();
            for (seq, m) in st.open.iter() {
                if !m.intended.is_some() && !m.published.is_some() && !m.lost {
                    continue; // only heard of (a delivery), never scheduled in this log
                }
                if m.publish_failed && !m.published.is_some() {
                    continue; // counted as a publish failure, never reached Pub/Sub
                }
                if m.lost || (self.finished && !self.interrupted) {
                    delivery.lost += 1;
                    lost_here.push(seq);
                } else {
                    delivery.open_at_end += 1;
                }
            }
            if !lost_here.is_empty() {
                if !st.reached_worker && st.done.ranges() == 0 && !self.streams[s].is_empty() {
                    self.warnings.push(nothing_pulled(
                        &self.streams[s],
                        lost_here.len(),
                        self.identity.subscription_of(&self.streams[s]),
                    ));
                }
                lost_seqs.push((self.streams[s].clone(), lost_here));
            }
        }
        delivery.lost_ranges = SeqRange::from_seqs(lost_seqs);
        self.publishing_rates(&mut delivery);
        if self.no_intended > 0 {
            self.warnings.push(format!(
                "{} completions had no scheduled event: counted, but without a latency",
                self.no_intended
            ));
        }
        let mut messages = self.kept.take().unwrap_or_default();
        messages.sort_by_key(|m| (m.completed_us, m.stream, m.seq));
        let mut series = std::mem::take(&mut self.series);
        let mut intervals = std::mem::take(&mut self.intervals);
        intervals.finish(end);

        let mut pods = self.pod_phases(&mut series);
        let problems = self.problems(&mut pods);
        let observed = self.cluster_observed.unwrap_or(self.nodes_seen);
        let mut cost = self.cost(end, info.price_per_gpu_hour_usd, observed, &mut series);
        cost.observed = observed;
        if !cost.observed {
            self.warnings.push(if info.target == "kubectl-dump" {
                "the dump has no Node objects (Events name nodes, not their GPUs): GPU nodes and cost are unknown\n    fix: save the nodes too, while they exist (`kubectl get pods,nodes,events -o json`)".into()
            } else {
                "the run did not observe the cluster: GPU nodes and cost are unknown\n    fix: watch it during the run (`[cluster]`, or --context/--namespace), or import its events afterwards (`imagen-load import`)".into()
            });
        }
        self.warnings.extend(self.identity.warnings());
        for c in &self.cycles {
            let scope = c.pipeline.as_deref().unwrap_or(&c.deployment);
            if let Some(v) = c.time_to_first_ready_us {
                series.record("scale.time_to_first_ready", scope, None, v);
            }
            if let Some(v) = c.to_zero_replicas_us {
                series.record("scale.to_zero_replicas", scope, None, v);
            }
            if let Some(v) = c.to_zero_nodes_us {
                series.record("scale.to_zero_nodes", scope, None, v);
            }
        }
        RunReport {
            run: info,
            delivery,
            series,
            pods,
            cycles: self.cycles,
            cost,
            http_calls: self.http_calls,
            problems,
            warnings: self.warnings,
            messages,
            intervals,
            thresholds: Vec::new(),
            timeline: self.timeline,
        }
    }

    fn pod_phases(&mut self, series: &mut SeriesSet) -> Vec<PodColdStart> {
        // Only a pod ready by the first send is pre-existing: one that starts while the run sets up (its producer
        // saw it before time zero) is the run's own cold start.
        let first_send = self.first_send.unwrap_or(0);
        for p in self.pods.values_mut() {
            if p.preexisting && at(p.ready).is_some_and(|r| r > first_send) {
                p.preexisting = false;
            }
        }
        // Pods whose creation no producer reported: their Deployment from their name (`<deployment>-<hash>-<x>`,
        // as the ReplicaSet controller names them), their creation unknown.
        let unannounced: Vec<String> = self
            .pod_order
            .iter()
            .filter(|n| !self.pods[*n].announced)
            .cloned()
            .collect();
        for name in unannounced {
            let deployment = name.rsplitn(3, '-').last().unwrap_or(&name).to_string();
            let key = self.pipeline_key(&deployment);
            let p = self.pods.get_mut(&name).expect("a pod");
            p.deployment = deployment;
            p.pipeline = key;
        }
        // The first pod created in each cycle carries the cycle's activation.
        let mut first_of_cycle: HashMap<usize, (u64, &str)> = HashMap::new();
        for name in &self.pod_order {
            let p = &self.pods[name];
            if let Some(c) = p.cycle.filter(|_| p.announced) {
                let e = first_of_cycle.entry(c).or_insert((p.created.t, name));
                if p.created.t < e.0 {
                    *e = (p.created.t, name);
                }
            }
        }
        let mut out = Vec::new();
        for name in &self.pod_order {
            let p = &self.pods[name];
            let created = p.announced.then_some(p.created.t);
            let triggers = self
                .deployments
                .get(&p.pipeline)
                .map(|d| d.triggers.as_slice())
                .unwrap_or(&[]);
            let trigger = created.and_then(|c| {
                triggers[..triggers.partition_point(|&x| x <= c)]
                    .last()
                    .copied()
            });
            let activation = p
                .cycle
                .filter(|c| first_of_cycle.get(c).is_some_and(|f| f.1 == name.as_str()))
                .and_then(|c| {
                    self.cycles[c]
                        .first_message_us
                        .map(|m| self.cycles[c].start_us.saturating_sub(m))
                });
            let diff = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (Some(a), Some(b)) if b >= a => Some(b - a),
                _ => None,
            };
            let (scheduled, pulled, started, loaded, ready) = (
                at(p.scheduled),
                at(p.pulled),
                at(p.started),
                at(p.loaded),
                at(p.ready),
            );
            let mut phases = PodPhases::default();
            if let Some(pull) = p.pull_us {
                series.record("kubelet.image_pull", &p.pipeline, None, pull);
            }
            if !p.preexisting {
                let model_end = loaded.or(ready);
                let origin = match (activation, trigger) {
                    (Some(act), Some(trig)) => Some(trig.saturating_sub(act)),
                    (None, trig) => trig,
                    (Some(_), None) => None,
                };
                // The worker's own measure of its model load is the sharpest, and the only one when the
                // container started before the run's time zero.
                let model_load = match (loaded, p.load_duration) {
                    (Some(_), Some(d)) => Some(d),
                    _ => diff(started, model_end),
                };
                let values = [
                    ("activation", activation),
                    ("pod_creation", diff(trigger, created)),
                    ("node_provisioning", diff(created, scheduled)),
                    // From the kubelet's first pull attempt (failed attempts and back-off included); a cached
                    // image took none. Without a `Pulling` signal, from the scheduling.
                    (
                        "image_pull",
                        diff(
                            at(p.pulling).or(if p.cached == Some(true) {
                                pulled
                            } else {
                                scheduled
                            }),
                            pulled,
                        ),
                    ),
                    ("container_start", diff(pulled, started)),
                    ("model_load", model_load),
                    (
                        "ready",
                        if loaded.is_some() {
                            diff(loaded, ready)
                        } else {
                            None
                        },
                    ),
                    ("first_message", diff(ready, p.first_done)),
                    ("total", diff(origin, ready)),
                ];
                for (i, (k, v)) in values.into_iter().enumerate() {
                    if let Some(v) = v {
                        series.record(COLD_START_METRICS[i], &p.pipeline, None, v);
                    }
                    debug_assert_eq!(POD_PHASES[i], k);
                    phases.values[i] = v;
                    phases.known = true;
                }
            }
            out.push(PodColdStart {
                pod: name.clone(),
                deployment: p.deployment.clone(),
                pipeline: self
                    .identity
                    .knows_deployment(&p.pipeline)
                    .map(|i| self.identity.stream_name(i).to_string()),
                sources: SOURCES
                    .into_iter()
                    .filter(|s| p.sources & source_bit(*s) != 0)
                    .collect(),
                node: p.node.clone(),
                preexisting: p.preexisting,
                created_us: created,
                ready_us: ready,
                image_cached: p.cached,
                scheduled_us: scheduled,
                deleted_us: at(p.deleted),
                restarts: p.restarts,
                problems: Vec::new(),
                scale_up_group: p.node.as_deref().and_then(|n| {
                    self.scale_up_groups
                        .iter()
                        .find(|g| group_of(g, n))
                        .cloned()
                }),
                phases_us: phases,
            });
        }
        out
    }

    /// The reported problems, per pod and for the run (phase order, then most frequent first).
    fn problems(&self, pods: &mut [PodColdStart]) -> Vec<Problem> {
        let order = |phase: &str| POD_PHASES.iter().position(|p| *p == phase).unwrap_or(99);
        let mut by_pod: HashMap<&str, BTreeMap<(usize, &str), u32>> = HashMap::new();
        let mut run: ProblemTally = BTreeMap::new();
        for (pod, phase, reason, group, count) in self.problems.values() {
            let r = run
                .entry((order(phase), reason, group.as_deref()))
                .or_default();
            r.0 += count;
            if let Some(p) = pod {
                r.1.insert(p);
                *by_pod
                    .entry(p)
                    .or_default()
                    .entry((order(phase), reason))
                    .or_default() += count;
            }
        }
        for p in pods.iter_mut() {
            if let Some(found) = by_pod.get(p.pod.as_str()) {
                p.problems = found
                    .iter()
                    .map(|((o, reason), count)| Problem {
                        phase: POD_PHASES.get(*o).unwrap_or(&"other").to_string(),
                        reason: reason.to_string(),
                        node_group: None,
                        count: *count,
                        pods: 1,
                    })
                    .collect();
            }
        }
        run.into_iter()
            .map(|((o, reason, group), (count, pods))| Problem {
                phase: POD_PHASES.get(o).unwrap_or(&"other").to_string(),
                reason: reason.to_string(),
                node_group: group.map(str::to_string),
                count,
                pods: pods.len() as u32,
            })
            .collect()
    }

    fn cost(&mut self, end: u64, price: f64, observed: bool, series: &mut SeriesSet) -> Cost {
        let mut c = Cost::default();
        let mut timeline: Vec<(u64, i32)> = Vec::new();
        for name in &self.node_order {
            let n = &self.nodes[name];
            let until = n.deleted.unwrap_or(end);
            let secs = until.saturating_sub(n.created) as f64 / 1e6;
            c.node_seconds += secs;
            c.gpu_seconds += secs * n.gpus as f64;
            timeline.push((n.created, 1));
            timeline.push((until, -1));
            if !n.preexisting {
                c.nodes_created += 1;
                if let (Some(trig), Some(ready)) = (n.trigger, n.ready) {
                    series.record("node.boot", "gpu-pool", None, ready.saturating_sub(trig));
                    series.record(
                        "node.register",
                        "gpu-pool",
                        None,
                        n.created.saturating_sub(trig),
                    );
                    series.record(
                        "node.ready",
                        "gpu-pool",
                        None,
                        ready.saturating_sub(n.created),
                    );
                }
                if let (Some(ready), Some(gpu)) = (n.ready, n.gpu) {
                    series.record(
                        "node.gpu_driver",
                        "gpu-pool",
                        None,
                        gpu.saturating_sub(ready),
                    );
                }
            }
        }
        timeline.sort();
        let mut live = 0i32;
        for (_, d) in timeline {
            live += d;
            c.peak_nodes = c.peak_nodes.max(live as u32);
        }
        c.gpu_busy_seconds = self.gpu_busy_us as f64 / 1e6;
        c.gpu_idle_seconds = (c.gpu_seconds - c.gpu_busy_seconds).max(0.0);
        c.cost_usd = c.gpu_seconds / 3600.0 * price;
        for (i, cy) in self.cycles.iter_mut().enumerate() {
            let spans = &self.cycle_nodes[i];
            let mut all_left = !spans.is_empty();
            let mut last_left = 0;
            let (mut gpu_seconds, mut node_seconds) = (0.0, 0.0);
            // A node the run never saw has an unknown GPU count: the cycle's cost is unknown, not guessed.
            let mut known = observed;
            for (name, from, until) in spans {
                let secs = until.unwrap_or(end).saturating_sub(*from) as f64 / 1e6;
                node_seconds += secs;
                match self.nodes.get(name) {
                    Some(n) => gpu_seconds += secs * n.gpus as f64,
                    None => known = false,
                }
                match until {
                    Some(u) => last_left = last_left.max(*u),
                    None => all_left = false,
                }
            }
            if known {
                cy.node_seconds = Some(node_seconds);
                cy.cost_usd = Some(gpu_seconds / 3600.0 * price);
                cy.gpu_idle_seconds = Some((gpu_seconds - cy.gpu_busy_seconds).max(0.0));
            }
            if all_left && let Some(last) = cy.last_completion_us {
                cy.to_zero_nodes_us = Some(last_left.saturating_sub(last));
            }
        }
        c
    }
}

/// Whether `node` is one of node group `group`'s: GKE names a node after its managed instance group,
/// `gke-<cluster>-<pool>-<hash>-grp` making `gke-<cluster>-<pool>-<hash>-<xxxx>`.
fn group_of(group: &str, node: &str) -> bool {
    let stem = group.strip_suffix("-grp").unwrap_or(group);
    !stem.is_empty() && node.starts_with(stem)
}

fn short(error: &str) -> String {
    let first = error.lines().next().unwrap_or("");
    first.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_become_sorted_ranges_per_stream() {
        let r = SeqRange::from_seqs(vec![
            ("upscale".into(), vec![7, 3, 4, 5, 9, 4]),
            ("enhance".into(), vec![0]),
        ]);
        let text: Vec<String> = r.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["enhance#0", "upscale#3-5", "upscale#7", "upscale#9"]);
        assert_eq!(r.iter().map(SeqRange::count).sum::<u64>(), 6);
        assert_eq!(
            describe_ranges(&r, 2),
            "enhance#0, upscale#3-5 and 2 more ranges (summary.json lists all)"
        );
    }

    #[test]
    fn the_timeline_stays_bounded_and_keeps_counts_and_peaks() {
        let mut t = Timeline::default();
        // 30 days, a message a minute: 4.3 days of 10 s slots would be 37,000 of them.
        let minute = 60_000_000;
        for i in 0..30 * 24 * 60 {
            t.count(false, i * minute);
            t.count(true, i * minute + 1);
        }
        assert!(t.published.len() <= MAX_TIMELINE_SLOTS);
        assert_eq!(t.published.iter().sum::<u32>(), 30 * 24 * 60);
        assert_eq!(t.completed.iter().sum::<u32>(), 30 * 24 * 60);
        assert!(t.slot_us > TIMELINE_SLOT_US && t.slot_us.is_multiple_of(TIMELINE_SLOT_US));
        // A level changing every minute, with one spike: thinned, the spike and the last level survive.
        let mut levels = Vec::new();
        for i in 0..30 * 24 * 60u64 {
            let v = if i == 20_000 { 99 } else { i % 3 };
            Timeline::level(&mut levels, (i * minute, v), |a, b| (a.0, a.1.max(b.1)));
        }
        assert!(levels.len() <= MAX_TIMELINE_POINTS);
        assert_eq!(levels.iter().map(|l| l.1).max(), Some(99));
        assert_eq!(
            levels.last(),
            Some(&((30 * 24 * 60 - 1) * minute, (30 * 24 * 60 - 1) % 3))
        );
        assert!(levels.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
