//! Analysis: a pure function of the event log. Events in, [`RunReport`] out: per-message latency from the
//! *intended* send instant and its split (publish delay, waiting for capacity, queueing, processing), per-pod
//! cold-start phases, per-pipeline scale cycles, delivery accounting, cost, and HdrHistograms of every series.
//! Missing signals leave a phase unknown (`None`), never a made-up number.

mod finish;
pub mod identity;
pub mod intervals;
mod open;
mod outcome;
mod reorder;
mod report;
pub mod series;

pub use identity::Identity;
pub use intervals::Intervals;
pub use outcome::Outcome;
pub use reorder::{MAX_HELD_EVENTS, REORDER_WINDOW_US, Reordering, analyze};
pub use report::*;
pub use series::{Moments, SeriesKey, SeriesSet, Stats};

use crate::event::{Event, EventKind, MsgId, PipelineNames, Source};
use crate::seqset::SeqSet;
use foldhash::HashMap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
    /// The header's `timer_slack_us` (0 when absent): lateness the pacer has by design.
    timer_slack_us: u64,
    /// A node was reported (for logs whose header does not say whether the cluster was observed).
    nodes_seen: bool,
    /// Wall-clock time of t = 0 (µs since the epoch): whole-second API stamps are recognised by it.
    wall_start_us: u64,
    /// Node groups that were scaled up.
    scale_up_groups: BTreeSet<String>,
    /// Reported problems by the Event they came from, at its highest count.
    problems: HashMap<String, Reported>,
    /// `harness_cpu` samples in log order: (t, process CPU µs, machine busy µs, machine total µs, cores).
    harness_cpu: Vec<CpuSample>,
}

/// One `harness_cpu` sample: (t_us, process CPU µs, machine (busy µs, total µs), cores), all cumulative from the
/// run's start.
type CpuSample = (u64, u64, Option<(u64, u64)>, u32);

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
        if id.seq >= crate::limits::MAX_MESSAGES_PER_RUN {
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
                timer_slack_us,
                ..
            } => {
                self.timer_slack_us = timer_slack_us.unwrap_or(0);
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
            EventKind::HarnessCpu {
                process_cpu_us,
                machine_busy_us,
                machine_total_us,
                cores,
            } => self.harness_cpu.push((
                t,
                *process_cpu_us,
                machine_busy_us.zip(*machine_total_us),
                *cores,
            )),
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

    /// The harness's CPU use from its `harness_cpu` samples, and whether a late pacer had CPU to spare: a warning
    /// either way when the pacer lateness p99 is over [`PACER_LATE_P99_US`] beyond the run's timer slack.
    fn harness_cpu(&mut self, d: &mut Delivery) {
        let Some(&(t_last, cpu_us, machine, cores)) = self.harness_cpu.last() else {
            return;
        };
        let cores = cores.max(1);
        // The seconds of sending: sample intervals that overlap the span from the first intended send to the last
        // publish answered.
        let (from, to) = (
            self.first_send.unwrap_or(0),
            self.last_published.max(self.last_intended),
        );
        let (mut sending_s, mut saturated_s, mut busiest) = (0u64, 0u64, 0f64);
        let mut prev = (0u64, 0u64, Some((0u64, 0u64)));
        for &(t, cpu, m, _) in &self.harness_cpu {
            let dt = t.saturating_sub(prev.0);
            if dt > 0 && t > from && prev.0 < to {
                let own = cpu.saturating_sub(prev.1) as f64 / (dt as f64 * cores as f64);
                let machine = m.zip(prev.2).and_then(|((b, tot), (pb, ptot))| {
                    let total = tot.saturating_sub(ptot);
                    (total > 0).then(|| b.saturating_sub(pb) as f64 / total as f64)
                });
                let busy = machine.unwrap_or(0.0).max(own);
                busiest = busiest.max(busy);
                sending_s += 1;
                if busy >= SATURATED_BUSY {
                    saturated_s += 1;
                }
            }
            prev = (t, cpu, m);
        }
        let lateness_p99 = self
            .series
            .get("pacer_lateness", "all", None)
            .map(|h| h.value_at_quantile(0.99));
        // Beyond the slack the pacer has by design: lateness up to it is the grouping, not falling behind.
        let limit_us = PACER_LATE_P99_US + self.timer_slack_us;
        let late = lateness_p99.is_some_and(|p| p > limit_us);
        let pacer_saturated =
            late && sending_s > 0 && saturated_s > 0 && saturated_s * 100 >= sending_s;
        let h = HarnessCpu {
            cpu_s: cpu_us as f64 / 1e6,
            cpu_per_message_us: (d.published > 0).then(|| cpu_us as f64 / d.published as f64),
            cores,
            cores_used: if t_last > 0 {
                cpu_us as f64 / t_last as f64
            } else {
                0.0
            },
            machine_busy: machine
                .filter(|m| m.1 > 0)
                .map(|(b, t)| b as f64 / t as f64),
            sending_s,
            saturated_s,
            pacer_saturated,
        };
        if late {
            let p99 = crate::units::human_us(lateness_p99.unwrap_or(0));
            let over = if self.timer_slack_us == 0 {
                "over 1 ms".to_string()
            } else {
                format!(
                    "over 1 ms beyond the timer slack of {}",
                    crate::units::human_us(self.timer_slack_us)
                )
            };
            let usage = format!("the harness: {}", h.usage());
            self.warnings.push(if pacer_saturated {
                format!(
                    "the pacer fell behind the schedule (lateness p99 {p99}, {over}) on a saturated machine: at \
                     least {:.0}% of its CPU busy in {saturated_s} of {sending_s} seconds of sending ({usage})\n    \
                     fix: shard the load across machines (`run --shard`), give the harness more CPU, or move the \
                     emulator and workers off its machine; latencies are still measured from the intended sends",
                    SATURATED_BUSY * 100.0
                )
            } else {
                format!(
                    "the pacer fell behind the schedule (lateness p99 {p99}, {over}) though the machine had CPU \
                     to spare (its busiest second of sending {:.0}% busy; {usage})\n    fix: a slow target holds \
                     sends back at the in-flight bound (`[target] max_outstanding_messages` and \
                     `max_outstanding_bytes`; see the publish delay), else the OS ran the pacer late",
                    busiest * 100.0
                )
            });
        }
        d.harness = Some(h);
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
