//! The report's types: what analysis makes of a run ([`RunReport`]: the run, delivery, latency series, per-pod
//! cold starts, scale cycles, cost, timeline, thresholds' outcomes, warnings), serialized as `summary.json`.

use super::*;

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
    /// The harness's own CPU use over a live run (its `harness_cpu` events); `None` for the simulator and for logs
    /// without them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub harness: Option<HarnessCpu>,
}

/// The harness's own CPU use over a live run, and whether a pacer that fell behind had a machine with no CPU to
/// spare (the harness's limit) or not (the target's flow control, or the OS's scheduling).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HarnessCpu {
    /// The harness process's CPU time over the run, user + system, seconds.
    pub cpu_s: f64,
    /// That per message published, µs; `None` when none was.
    pub cpu_per_message_us: Option<f64>,
    /// The CPUs the harness could run on.
    pub cores: u32,
    /// The CPUs the harness kept busy on average over the run.
    pub cores_used: f64,
    /// The machine's busy share of its CPU time over the run, 0–1 (every process: an emulator or workers on the
    /// same machine count); `None` where the machine's CPU time is unreadable.
    pub machine_busy: Option<f64>,
    /// Seconds sampled while messages were being sent (from the first intended send to the last publish answered).
    pub sending_s: u64,
    /// Of those, the seconds in which the machine, or the harness on its own cores, was at least
    /// [`SATURATED_BUSY`] busy.
    pub saturated_s: u64,
    /// The pacer fell behind (lateness p99 over [`PACER_LATE_P99_US`] beyond the run's `timer_slack`) while the
    /// machine was saturated in at least 1 % of the sending seconds (the share of sends a p99 leaves out): the
    /// limit measured is the harness's machine, not the target.
    pub pacer_saturated: bool,
}

impl HarnessCpu {
    /// One line for reports and warnings: "N CPU per message published, X of Y cores, the machine Z% busy".
    pub fn usage(&self) -> String {
        format!(
            "{} CPU per message published, {:.1} of {} cores{}",
            self.cpu_per_message_us
                .map_or("no".into(), |us| crate::units::human_us(us.round() as u64)),
            self.cores_used,
            self.cores,
            self.machine_busy
                .map(|b| format!(", the machine {:.0}% busy", b * 100.0))
                .unwrap_or_default(),
        )
    }
}

/// A second in which this share of the CPU was busy counts as saturated: no CPU to spare for the pacer.
pub const SATURATED_BUSY: f64 = 0.9;
/// The pacer lateness p99, beyond the run's `[run] timer_slack` (lateness by design), over which the pacer is said
/// to have fallen behind: issue 26's goal for "p99 ≤ 1 ms while the harness has CPU to spare".
pub const PACER_LATE_P99_US: u64 = 1_000;

/// The warning for a stream whose messages were all lost without one reaching a worker: nobody pulled from its
/// subscription (no workers started, or workers on another subscription or project).
pub(super) fn nothing_pulled(stream: &str, lost: usize, subscription: Option<&str>) -> String {
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
    pub(super) values: [Option<u64>; 9],
    /// False for a pod that did not cold-start during the run: no phases.
    pub(super) known: bool,
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
    pub thresholds: Vec<crate::analysis::Outcome>,
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
    pub(super) fn count(&mut self, completed: bool, t: u64) {
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
    pub(super) fn level<T: Copy>(v: &mut Vec<T>, point: T, peak: impl Fn(T, T) -> T) {
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

    pub(super) fn nodes(&mut self, t: u64, live: u32) {
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
