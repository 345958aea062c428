//! The embedded default target: a discrete-event model of Pub/Sub, Cloud Monitoring's metric lag, KEDA + HPA,
//! the cluster autoscaler, kubelet and GPU workers, run in virtual time. It emits exactly the event vocabulary the
//! real observers emit (`source = sim`), plus `sim_pod_truth` ground truth for tests.
//!
//! The run is observed until `last send + deadline + drain`, whatever the setup, so that the costs of different
//! setups cover the same window.
//!
//! Determinism: all randomness comes from per-component RNGs derived from the run seed, and ties in time are
//! broken by insertion order, so the same plan and seed give the same events, byte for byte.

pub mod observe;

pub use observe::{MessageTruth, SIM_EPOCH_UNIX_US, Truth};

use crate::event::{Event, EventKind, MsgId, PodPhaseTruth, Source};
use crate::plan::schedule::{Item, ItemKind};
use crate::plan::sim::{NODE_POOL, PipelineModel, SimConfig};
use crate::plan::workload::{HttpSimEffect, Plan};
use crate::run::stop::Stop;
use crate::units::SeededRng;
use crate::units::{Dist, derive_seed};
use rand::{RngExt, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// kubelet's first restart back-off after a container exits.
const RESTART_BACKOFF_US: u64 = 10_000_000;
/// How far back a live-read metric may lag (a longer delay drawn from `metrics.delay` reads an hour back): the
/// backlog's history is kept that long, so memory does not grow with the run.
const HISTORY_US: u64 = 3_600_000_000;

/// What the simulation did, besides the events it emitted.
#[derive(Debug, Clone)]
pub struct SimOutcome {
    /// The end of the observation, µs of simulated time.
    pub end_us: u64,
    /// Events emitted (a shard's caller may keep fewer).
    pub events: u64,
    /// Stopped early through its `Stop`: Ctrl-C or SIGTERM, or a failed `abort_on_fail` threshold.
    pub interrupted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Stored {
        msg: usize,
    },
    MetricSample {
        p: usize,
    },
    KedaPoll {
        p: usize,
    },
    HpaSync,
    CaScan,
    NodeRegistered {
        node: usize,
    },
    NodeReady {
        node: usize,
    },
    GpuReady {
        node: usize,
    },
    PodPulled {
        pod: usize,
    },
    PodStarted {
        pod: usize,
    },
    PodLoaded {
        pod: usize,
    },
    PodReady {
        pod: usize,
    },
    Delivered {
        msg: usize,
        attempt: u32,
    },
    Done {
        msg: usize,
        attempt: u32,
        pod: usize,
    },
    /// The worker process dies while processing this delivery (a GPU OOM, a driver fault).
    Crash {
        msg: usize,
        attempt: u32,
        pod: usize,
    },
    Redeliver {
        msg: usize,
        attempt: u32,
    },
    GraceOver {
        pod: usize,
    },
    Deadline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodState {
    Pending,
    Starting,
    Ready,
    Terminating,
    Gone,
}

struct Pod {
    name: String,
    p: usize,
    state: PodState,
    node: Option<usize>,
    /// Deliveries leased to the pod: (message, attempt).
    holding: Vec<(usize, u32)>,
    /// Of those, the ones being processed (at most `concurrency`)...
    processing: Vec<(usize, u32)>,
    /// ...and the ones waiting in the worker for a free slot (leased beyond `concurrency`, up to
    /// `max_outstanding_messages`).
    queued: VecDeque<(usize, u32)>,
    restarts: u32,
    created_us: u64,
    unschedulable_reported: bool,
    /// Its deletion was requested (and reported) before it was gone: a pod finishing its work.
    deletion_reported: bool,
    truth: PodPhaseTruth,
    mark_us: u64,
}

struct Node {
    name: String,
    gpus: u32,
    used: u32,
    gpu_ready: bool,
    gone: bool,
    /// Per pipeline: when its image is (or will be) on the node.
    image_ready_at: Vec<Option<u64>>,
    unneeded_since: Option<u64>,
}

struct Msg {
    p: usize,
    seq: u64,
    attempt: u32,
    pod: Option<usize>,
    delivered_us: u64,
    processing_start_us: u64,
    done: bool,
    /// Pods holding a delivery of it: a completed message is forgotten once none does (a later finish of an
    /// old delivery is a duplicate, and needs the message's name).
    held: u32,
}

struct Pipeline {
    model: PipelineModel,
    backlog: VecDeque<usize>,
    /// Published and not yet acked: Pub/Sub's `num_undelivered_messages`.
    unacked: u64,
    /// (time, unacked) at every change over the last [`HISTORY_US`], for reading a lagged live metric (kept
    /// only when the metric is read live rather than sampled).
    history: VecDeque<(u64, u64)>,
    /// (visible_at, sample time, value) of the sampled metric.
    samples: VecDeque<(u64, u64, u64)>,
    active: bool,
    last_active_us: u64,
    desired: u32,
    ready: u32,
    last_reported: (u32, u32),
    recommendations: VecDeque<(u64, u32)>,
    pods: Vec<usize>,
    rng: SeededRng,
}

struct Sim<'a, F: FnMut(Event)> {
    plan: &'a Plan,
    cfg: &'a SimConfig,
    /// The schedule, read as it is due: the next item is sent before any other event of its instant.
    items: std::iter::Peekable<Box<dyn Iterator<Item = Item> + 'a>>,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    emit: F,
    emitted: u64,
    pipelines: Vec<Pipeline>,
    pods: Vec<Pod>,
    nodes: Vec<Node>,
    /// Messages sent and not yet done (or done and still held), by number: what is in flight, not the run.
    msgs: HashMap<usize, Msg, foldhash::fast::RandomState>,
    next_msg: usize,
    pending: VecDeque<usize>,
    last_scale_up_us: Option<u64>,
    node_rng: SeededRng,
    pubsub_rng: SeededRng,
    /// The insertion number reserved for the deadline event at the start, so it orders among events of its
    /// instant as if it had been queued then; it is queued once the schedule's end is known.
    deadline_seq: u64,
    /// Ground truth for tests, when asked for.
    truth: Option<&'a mut Truth>,
}

/// Runs the plan's schedule through the model; `emit` receives every event in time order.
pub fn simulate<F: FnMut(Event)>(plan: &Plan, emit: F) -> SimOutcome {
    simulate_until(plan, &Stop::default(), emit)
}

/// As [`simulate`], stopping early (with `run_finished {interrupted: true}`) once `stop` is set.
pub fn simulate_until<F: FnMut(Event)>(plan: &Plan, stop: &Stop, emit: F) -> SimOutcome {
    simulate_observed(plan, stop, emit, None)
}

/// As [`simulate_until`], with the run seen as `[sim] observe` says (through [`observe`]'s lens when it is not
/// `sim`), and the simulator's ground truth per message collected into `truth` when given.
pub fn simulate_observed<F: FnMut(Event)>(
    plan: &Plan,
    stop: &Stop,
    emit: F,
    truth: Option<&mut Truth>,
) -> SimOutcome {
    simulate_from(plan, None, stop, emit, truth)
}

/// As [`simulate_observed`], sending `held` (the whole schedule of `plan`, as [`crate::plan::schedule::ahead`] held
/// it) when given, instead of generating the schedule again.
pub fn simulate_from<F: FnMut(Event)>(
    plan: &Plan,
    held: Option<Vec<Item>>,
    stop: &Stop,
    mut emit: F,
    truth: Option<&mut Truth>,
) -> SimOutcome {
    let items: Box<dyn Iterator<Item = Item> + '_> = match held {
        Some(items) => Box::new(items.into_iter()),
        None => Box::new(crate::plan::schedule::iter(plan)),
    };
    if plan.sim.observe == crate::plan::sim::Observe::Sim {
        return run(plan, items, stop, emit, truth);
    }
    let mut emitted = 0u64;
    let mut counted = |e: Event| {
        emitted += 1;
        emit(e)
    };
    let mut lens = observe::Lens::new(plan, "sim");
    let mut outcome = run(plan, items, stop, |e| lens.push(e, &mut counted), truth);
    outcome.events = emitted;
    outcome
}

fn run<'a, F: FnMut(Event)>(
    plan: &'a Plan,
    items: Box<dyn Iterator<Item = Item> + 'a>,
    stop: &Stop,
    emit: F,
    truth: Option<&'a mut Truth>,
) -> SimOutcome {
    let cfg = &plan.sim;
    let pipelines = cfg
        .pipelines
        .iter()
        .enumerate()
        .map(|(i, m)| Pipeline {
            model: m.clone(),
            backlog: VecDeque::new(),
            unacked: 0,
            history: VecDeque::from([(0, 0)]),
            samples: VecDeque::new(),
            active: false,
            last_active_us: 0,
            desired: 0,
            ready: 0,
            last_reported: (u32::MAX, u32::MAX),
            recommendations: VecDeque::new(),
            pods: Vec::new(),
            rng: SeededRng::seed_from_u64(derive_seed(plan.seed, &[0x51, i as u64])),
        })
        .collect();
    // The schedule is read once, as it is sent, and never held: its end (which sets the deadline and the end of the
    // observation) is known when its last item has been sent, and nothing before that depends on it.
    let mut sim = Sim {
        plan,
        cfg,
        items: items.peekable(),
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        emit,
        emitted: 0,
        pipelines,
        pods: Vec::new(),
        nodes: Vec::new(),
        msgs: HashMap::default(),
        next_msg: 0,
        pending: VecDeque::new(),
        last_scale_up_us: None,
        node_rng: SeededRng::seed_from_u64(derive_seed(plan.seed, &[0x52])),
        pubsub_rng: SeededRng::seed_from_u64(derive_seed(plan.seed, &[0x53])),
        deadline_seq: 0,
        truth,
    };
    if let Some(t) = &mut sim.truth {
        t.waiting = vec![Vec::new(); plan.streams.len()];
    }
    sim.start();
    // Until the schedule's end is known, no instant is past it: every item is at or before the last one.
    let mut hard_stop = u64::MAX;
    let mut last_sent = 0;
    let mut interrupted = false;
    loop {
        let next_item = sim.items.peek().map(|i| i.offset_us);
        if next_item.is_none() && hard_stop == u64::MAX {
            let deadline_us = last_sent + plan.deadline.0;
            sim.queue
                .push(Reverse((deadline_us, sim.deadline_seq, Ev::Deadline)));
            hard_stop = deadline_us + plan.drain.0;
        }
        let next_event = sim.queue.peek().map(|Reverse((t, _, _))| *t);
        // An item goes before every other event of its instant (as if queued first).
        let (t, item) = match (next_item, next_event) {
            (Some(i), Some(e)) if i <= e => (i, true),
            (Some(i), None) => (i, true),
            (_, Some(e)) => (e, false),
            (None, None) => break,
        };
        if t > hard_stop {
            break;
        }
        if stop.requested() {
            interrupted = true;
            break;
        }
        sim.now = t;
        if item {
            let it = sim.items.next().expect("peeked");
            last_sent = it.offset_us;
            sim.send(it);
        } else {
            let Reverse((_, _, ev)) = sim.queue.pop().expect("peeked");
            sim.handle(ev);
        }
    }
    // Every setup is observed over the same window (last send + deadline + drain), so costs compare fairly:
    // stopping once a setup is idle would bill an always-on setup for a shorter window than a scale-to-zero one.
    if !interrupted {
        sim.now = hard_stop;
    }
    let end = sim.now;
    let reason = interrupted.then(|| stop.reason());
    sim.out(
        Source::Sim,
        EventKind::RunFinished {
            interrupted,
            reason,
        },
    );
    SimOutcome {
        end_us: end,
        events: sim.emitted,
        interrupted,
    }
}

impl<F: FnMut(Event)> Sim<'_, F> {
    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, ev)));
    }

    fn out(&mut self, source: Source, kind: EventKind) {
        self.emitted += 1;
        (self.emit)(Event::new(self.now, source, kind));
    }

    fn ev(&mut self, kind: EventKind) {
        self.out(Source::Sim, kind);
    }

    fn sample(rng: &mut SeededRng, d: &Dist) -> u64 {
        d.sample(rng).0
    }

    fn start(&mut self) {
        // Pipelines kept hot (min replicas ≥ 1) start with their pods ready on nodes that already exist.
        for p in 0..self.pipelines.len() {
            // The replicas of a quiet pipeline: held at the paused count, else idle, else the minimum.
            let k = &self.pipelines[p].model.keda;
            let min = k
                .paused_replicas
                .or(k.idle_replicas)
                .unwrap_or(k.min_replicas);
            for _ in 0..min {
                let node = self.new_node(true);
                let pod = self.new_pod(p, true);
                self.bind(pod, node);
                self.nodes[node].image_ready_at[p] = Some(0);
                self.pods[pod].state = PodState::Ready;
                self.ev(EventKind::PodReady {
                    pod: self.pods[pod].name.clone(),
                });
            }
            self.pipelines[p].desired = min;
            self.pipelines[p].ready = min;
            self.pipelines[p].active = false;
            self.report_replicas(p);
        }
        for p in 0..self.pipelines.len() {
            self.at(0, Ev::KedaPoll { p });
            if self.cfg.metrics.sample_period().0 > 0 {
                self.at(0, Ev::MetricSample { p });
            }
        }
        self.at(0, Ev::HpaSync);
        self.at(0, Ev::CaScan);
        // Queued when the schedule's end is known (see `simulate_observed`), with the number it would have had.
        self.seq += 1;
        self.deadline_seq = self.seq;
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Stored { msg } => {
                let p = self.msgs[&msg].p;
                let id = self.msg_id(msg);
                let server_id = Some(format!("sim-{p}-{}", self.msgs[&msg].seq));
                // Stamped when Pub/Sub acknowledges the publish; the sim's pacer is never late.
                self.out(
                    Source::Harness,
                    EventKind::Published {
                        id,
                        lateness_us: 0,
                        server_id,
                    },
                );
                self.pipelines[p].backlog.push_back(msg);
                self.change_unacked(p, 1);
                let (now, ready) = (self.now, self.pipelines[p].ready > 0);
                let id = self.msg_id(msg);
                if let Some(t) = &mut self.truth
                    && let Some(m) = t.messages.get_mut(&id)
                {
                    m.published_us = now;
                    if ready {
                        m.capacity_us = Some(now);
                    } else {
                        t.waiting[p].push(id);
                    }
                }
                self.deliver(p);
            }
            Ev::MetricSample { p } => {
                let delay = Self::sample(&mut self.pipelines[p].rng, &self.cfg.metrics.delay());
                let value = self.pipelines[p].unacked;
                self.pipelines[p]
                    .samples
                    .push_back((self.now + delay, self.now, value));
                self.backlog_event(p);
                self.at(
                    self.now + self.cfg.metrics.sample_period().0,
                    Ev::MetricSample { p },
                );
            }
            Ev::KedaPoll { p } => {
                self.keda_poll(p);
                self.at(
                    self.now + self.pipelines[p].model.keda.polling_interval.0,
                    Ev::KedaPoll { p },
                );
            }
            Ev::HpaSync => {
                for p in 0..self.pipelines.len() {
                    self.hpa_sync(p);
                }
                self.at(self.now + self.cfg.hpa.sync_period.0, Ev::HpaSync);
            }
            Ev::CaScan => {
                self.ca_scan();
                self.at(self.now + self.cfg.autoscaler.scan_interval.0, Ev::CaScan);
            }
            Ev::NodeRegistered { node } => {
                let n = &self.nodes[node];
                let kind = EventKind::NodeCreated {
                    node: n.name.clone(),
                    pool: NODE_POOL.into(),
                    gpus: n.gpus,
                    preexisting: false,
                };
                self.ev(kind);
                let d = Self::sample(&mut self.node_rng, &self.cfg.autoscaler.node_ready);
                self.at(self.now + d, Ev::NodeReady { node });
            }
            Ev::NodeReady { node } => {
                self.ev(EventKind::NodeReady {
                    node: self.nodes[node].name.clone(),
                });
                let d = Self::sample(&mut self.node_rng, &self.cfg.autoscaler.gpu_driver);
                self.at(self.now + d, Ev::GpuReady { node });
            }
            Ev::GpuReady { node } => {
                self.nodes[node].gpu_ready = true;
                let kind = EventKind::GpuAllocatable {
                    node: self.nodes[node].name.clone(),
                    gpus: self.nodes[node].gpus,
                };
                self.ev(kind);
                self.schedule_pending();
            }
            Ev::PodPulled { pod } => self.pod_pulled(pod),
            Ev::PodStarted { pod } => {
                if self.pods[pod].state != PodState::Starting {
                    return;
                }
                if self.pods[pod].restarts == 0 {
                    self.pods[pod].truth.container_start_us = self.now - self.pods[pod].mark_us;
                    if let Some(t) = &mut self.truth {
                        t.started_pods.insert(self.pods[pod].name.clone());
                    }
                }
                self.pods[pod].mark_us = self.now;
                self.ev(EventKind::ContainerStarted {
                    pod: self.pods[pod].name.clone(),
                });
                let p = self.pods[pod].p;
                let w = &self.pipelines[p].model.worker;
                let dist = if w.model_cache {
                    w.cached_model_load.clone()
                } else {
                    w.model_load.clone()
                };
                let d = Self::sample(&mut self.pipelines[p].rng, &dist);
                self.at(self.now + d, Ev::PodLoaded { pod });
            }
            Ev::PodLoaded { pod } => {
                if self.pods[pod].state != PodState::Starting {
                    return;
                }
                let took = self.now - self.pods[pod].mark_us;
                if self.pods[pod].restarts == 0 {
                    self.pods[pod].truth.model_load_us = took;
                }
                self.pods[pod].mark_us = self.now;
                self.ev(EventKind::ModelLoaded {
                    pod: self.pods[pod].name.clone(),
                    duration_us: Some(took),
                });
                let p = self.pods[pod].p;
                let dist = self.pipelines[p].model.worker.readiness_delay.clone();
                let d = Self::sample(&mut self.pipelines[p].rng, &dist);
                self.at(self.now + d, Ev::PodReady { pod });
            }
            Ev::PodReady { pod } => {
                if self.pods[pod].state != PodState::Starting {
                    return;
                }
                self.pods[pod].state = PodState::Ready;
                let name = self.pods[pod].name.clone();
                self.ev(EventKind::PodReady { pod: name.clone() });
                if self.pods[pod].restarts == 0 {
                    // Ground truth describes the cold start, not restarts after a crash.
                    self.pods[pod].truth.ready_us = self.now - self.pods[pod].mark_us;
                    let truth = self.pods[pod].truth.clone();
                    self.ev(EventKind::SimPodTruth {
                        pod: name,
                        phases: truth,
                    });
                }
                let p = self.pods[pod].p;
                self.pipelines[p].ready += 1;
                if self.pipelines[p].ready == 1
                    && let Some(t) = &mut self.truth
                {
                    for id in std::mem::take(&mut t.waiting[p]) {
                        if let Some(m) = t.messages.get_mut(&id) {
                            m.capacity_us = Some(self.now);
                        }
                    }
                }
                self.report_replicas(p);
                self.deliver(p);
            }
            Ev::Delivered { msg, attempt } => {
                let Some(pod) = self.current_holder(msg, attempt) else {
                    return;
                };
                if !self.pods[pod].holding.contains(&(msg, attempt)) {
                    return;
                }
                self.msg(msg).delivered_us = self.now;
                let id = self.msg_id(msg);
                self.out(
                    Source::Sim,
                    EventKind::Delivered {
                        id,
                        pod: self.pods[pod].name.clone(),
                        attempt,
                    },
                );
                let p = self.msgs[&msg].p;
                if self.pods[pod].processing.len() as u32
                    >= self.pipelines[p].model.worker.concurrency
                {
                    // Leased beyond what the worker processes at once: it waits in the worker.
                    self.pods[pod].queued.push_back((msg, attempt));
                } else {
                    self.start_processing(msg, attempt, pod);
                }
            }
            Ev::Done { msg, attempt, pod } => self.done(msg, attempt, pod),

            Ev::Crash { msg, attempt, pod } => self.crash(msg, attempt, pod),
            Ev::Redeliver { msg, attempt } => {
                // A message forgotten is done.
                let Some(m) = self
                    .msgs
                    .get_mut(&msg)
                    .filter(|m| m.attempt == attempt && !m.done)
                else {
                    return;
                };
                // A pod still working on the old attempt keeps it; if it finishes, that is a duplicate.
                m.attempt += 1;
                m.pod = None;
                let p = m.p;
                self.pipelines[p].backlog.push_front(msg);
                self.deliver(p);
            }
            Ev::GraceOver { pod } => {
                if self.pods[pod].state == PodState::Terminating {
                    self.abandon(pod);
                    self.remove_pod(pod);
                }
            }
            Ev::Deadline => {
                let mut open: Vec<usize> = self
                    .msgs
                    .iter()
                    .filter(|(_, m)| !m.done)
                    .map(|(&k, _)| k)
                    .collect();
                open.sort_unstable();
                for m in open {
                    let id = self.msg_id(m);
                    self.ev(EventKind::Lost { id });
                }
            }
        }
    }

    /// A worker starts processing a delivery it holds: its processing time (and whether it crashes) is drawn now.
    fn start_processing(&mut self, msg: usize, attempt: u32, pod: usize) {
        self.pods[pod].processing.push((msg, attempt));
        self.msg(msg).processing_start_us = self.now;
        let p = self.msgs[&msg].p;
        let w = self.pipelines[p].model.worker.clone();
        let d = Self::sample(&mut self.pipelines[p].rng, &w.processing).max(1);
        let crashes = w.crash_probability > 0.0
            && self.pipelines[p].rng.random::<f64>() < w.crash_probability;
        if crashes {
            let at = (d as f64 * self.pipelines[p].rng.random::<f64>()) as u64;
            self.at(self.now + at, Ev::Crash { msg, attempt, pod });
        } else {
            self.at(self.now + d, Ev::Done { msg, attempt, pod });
        }
        let ack = self.cfg.pubsub.ack_deadline.0;
        if !w.lease_extension && d > ack {
            // Nobody extends the lease: Pub/Sub hands the message out again while this worker still has it.
            self.at(self.now + ack, Ev::Redeliver { msg, attempt });
        }
    }

    /// A slot freed in `pod`: the next delivery waiting in the worker starts.
    fn next_queued(&mut self, pod: usize) {
        let p = self.pods[pod].p;
        let conc = self.pipelines[p].model.worker.concurrency;
        while (self.pods[pod].processing.len() as u32) < conc {
            let Some((msg, attempt)) = self.pods[pod].queued.pop_front() else {
                return;
            };
            if self.pods[pod].holding.contains(&(msg, attempt)) {
                self.start_processing(msg, attempt, pod);
            }
        }
    }

    fn msg(&mut self, msg: usize) -> &mut Msg {
        self.msgs.get_mut(&msg).expect("a message in flight")
    }

    /// Forgets a message once it is done and no pod holds a delivery of it.
    fn release(&mut self, msg: usize) {
        if self.msgs.get(&msg).is_some_and(|m| m.done && m.held == 0) {
            self.msgs.remove(&msg);
        }
    }

    fn msg_id(&self, msg: usize) -> MsgId {
        let m = &self.msgs[&msg];
        MsgId {
            stream: self.plan.streams[m.p].name.clone(),
            seq: m.seq,
        }
    }

    fn send(&mut self, it: Item) {
        let p = it.stream as usize;
        match it.kind {
            ItemKind::Message { seq } => {
                let msg = self.next_msg;
                self.next_msg += 1;
                self.msgs.insert(
                    msg,
                    Msg {
                        p,
                        seq,
                        attempt: 1,
                        pod: None,
                        delivered_us: 0,
                        processing_start_us: 0,
                        done: false,
                        held: 0,
                    },
                );
                let id = self.msg_id(msg);
                if let Some(t) = &mut self.truth {
                    t.messages.insert(
                        id.clone(),
                        MessageTruth {
                            intended_us: it.offset_us,
                            ..MessageTruth::default()
                        },
                    );
                }
                self.out(
                    Source::Harness,
                    EventKind::Scheduled {
                        id: id.clone(),
                        intended_us: it.offset_us,
                    },
                );
                let lat = Self::sample(&mut self.pubsub_rng, &self.cfg.pubsub.publish_latency);
                self.at(self.now + lat, Ev::Stored { msg });
            }
            ItemKind::Http { step } => {
                let spec =
                    crate::plan::schedule::http_steps(self.plan, p)[step as usize - 1].clone();
                self.out(
                    Source::Harness,
                    EventKind::HttpCalled {
                        stream: self.plan.streams[p].name.clone(),
                        step,
                        method: spec.method.clone(),
                        url: spec.url.clone(),
                        intended_us: it.offset_us,
                        status: None,
                        error: None,
                        response_time_us: 0,
                        simulated: true,
                    },
                );
                if spec.sim_effect == HttpSimEffect::Warm && self.pipelines[p].desired == 0 {
                    // A warm-up call activates the deployment as KEDA would; the HPA and cooldown take it from there.
                    self.pipelines[p].last_active_us = self.now;
                    self.set_active(p, true);
                    self.set_desired(p, 1);
                }
            }
        }
    }

    fn change_unacked(&mut self, p: usize, delta: i64) {
        let sampled = self.cfg.metrics.sample_period().0 > 0;
        let pl = &mut self.pipelines[p];
        pl.unacked = (pl.unacked as i64 + delta) as u64;
        if sampled {
            return; // the metric is read from samples; no history is needed
        }
        let now = self.now;
        match pl.history.back_mut() {
            Some(last) if last.0 == now => last.1 = pl.unacked,
            _ => pl.history.push_back((now, pl.unacked)),
        }
        // Keep the last change before the window: the value at its start.
        while pl.history.len() > 1 && pl.history[1].0 + HISTORY_US < now {
            pl.history.pop_front();
        }
    }

    fn backlog_event(&mut self, p: usize) {
        let kind = EventKind::Backlog {
            subscription: self.plan.streams[p].subscription.clone(),
            depth: self.pipelines[p].unacked,
            view: None,
            point_age_us: None,
        };
        self.ev(kind);
    }

    /// The backlog metric as KEDA and the HPA see it now: sampled and lagged.
    fn metric(&mut self, p: usize) -> f64 {
        let now = self.now;
        if self.cfg.metrics.sample_period().0 > 0 {
            let pl = &mut self.pipelines[p];
            // Newest sample already visible (delays differ per sample, so look at all pending ones).
            let mut best: Option<(u64, u64)> = None;
            for &(visible, taken, v) in &pl.samples {
                if visible <= now && best.is_none_or(|(t, _)| taken > t) {
                    best = Some((taken, v));
                }
            }
            // Drop samples superseded by a newer visible one.
            if let Some((taken, _)) = best {
                pl.samples
                    .retain(|&(visible, t, _)| t >= taken || visible > now);
            }
            best.map_or(0.0, |(_, v)| v as f64)
        } else {
            let delay = Self::sample(&mut self.pipelines[p].rng, &self.cfg.metrics.delay());
            let at = now.saturating_sub(delay.min(HISTORY_US));
            if delay == 0 {
                self.backlog_event(p);
            }
            let h = &self.pipelines[p].history;
            let i = h.partition_point(|&(t, _)| t <= at);
            if i == 0 { 0.0 } else { h[i - 1].1 as f64 }
        }
    }

    fn keda_poll(&mut self, p: usize) {
        if self.pipelines[p].model.keda.paused_replicas.is_some() {
            return; // paused: KEDA neither activates nor deactivates, and there is no HPA
        }
        let value = self.metric(p);
        let name = self.plan.streams[p].scaled_object_name().to_string();
        self.ev(EventKind::MetricRead {
            scaled_object: name,
            value,
        });
        let k = self.pipelines[p].model.keda.clone();
        if value > k.activation_value {
            self.pipelines[p].last_active_us = self.now;
            if !self.pipelines[p].active {
                self.set_active(p, true);
            }
            if self.pipelines[p].desired == 0 {
                self.set_desired(p, k.min_replicas.max(1));
            }
        } else if self.pipelines[p].active
            && self.now - self.pipelines[p].last_active_us >= k.cooldown_period.0
        {
            self.set_active(p, false);
            // Back to zero when the minimum is zero, or to the idle count when one is set.
            if k.min_replicas == 0 || k.idle_replicas.is_some() {
                self.pipelines[p].recommendations.clear();
                self.set_desired(p, k.idle_replicas.unwrap_or(0));
            }
        }
    }

    fn set_active(&mut self, p: usize, active: bool) {
        self.pipelines[p].active = active;
        self.ev(EventKind::ScalerActive {
            scaled_object: self.plan.streams[p].scaled_object_name().to_string(),
            active,
        });
    }

    fn hpa_sync(&mut self, p: usize) {
        let current = self.pipelines[p].desired;
        if current == 0 || self.pipelines[p].model.keda.paused_replicas.is_some() {
            return; // the HPA does not scale from zero (KEDA activates), nor a paused object (KEDA removed it)
        }
        let value = self.metric(p);
        let k = self.pipelines[p].model.keda.clone();
        let ratio = value / (k.target_value * current as f64);
        let mut rec = if (ratio - 1.0).abs() <= self.cfg.hpa.tolerance {
            current
        } else {
            (value / k.target_value).ceil() as u32
        };
        rec = rec.clamp(k.min_replicas.max(1), k.max_replicas);
        let window = self.cfg.hpa.scale_down_stabilization.0;
        let now = self.now;
        let recs = &mut self.pipelines[p].recommendations;
        recs.push_back((now, rec));
        while recs.front().is_some_and(|&(t, _)| now - t > window) {
            recs.pop_front();
        }
        // Scale-down stabilisation: never go below the highest recommendation of the window.
        let stabilised = if rec < current {
            recs.iter()
                .map(|&(_, r)| r)
                .max()
                .unwrap_or(rec)
                .min(current)
        } else {
            rec
        };
        if stabilised != current {
            self.set_desired(p, stabilised);
        }
    }

    fn set_desired(&mut self, p: usize, desired: u32) {
        // The Deployment's spec changes first; its controller then creates or deletes pods.
        self.pipelines[p].desired = desired;
        self.report_replicas(p);
        let alive: Vec<usize> = self.pipelines[p]
            .pods
            .iter()
            .copied()
            .filter(|&i| self.pods[i].state != PodState::Terminating)
            .collect();
        if (alive.len() as u32) < desired {
            for _ in alive.len() as u32..desired {
                let pod = self.new_pod(p, false);
                self.try_schedule(pod);
            }
        } else {
            // Delete surplus pods: unscheduled, then starting, then idle ready (newest first), then busy.
            let mut victims = alive;
            victims.sort_by_key(|&i| {
                let pod = &self.pods[i];
                let rank = match pod.state {
                    PodState::Pending => 0,
                    PodState::Starting => 1,
                    _ if pod.holding.is_empty() => 2,
                    _ => 3,
                };
                (rank, Reverse(pod.created_us), Reverse(i))
            });
            let surplus = victims.len() - desired as usize;
            for &pod in victims.iter().take(surplus) {
                self.terminate(pod);
            }
        }
        self.report_replicas(p);
    }

    fn report_replicas(&mut self, p: usize) {
        let pl = &self.pipelines[p];
        if pl.last_reported != (pl.desired, pl.ready) {
            let (desired, ready) = (pl.desired, pl.ready);
            self.pipelines[p].last_reported = (desired, ready);
            self.ev(EventKind::Replicas {
                deployment: self.plan.streams[p].deployment_name().to_string(),
                desired,
                ready: Some(ready),
            });
        }
    }

    fn new_pod(&mut self, p: usize, preexisting: bool) -> usize {
        let i = self.pods.len();
        let name = format!("{}-{:05}", self.plan.streams[p].deployment_name(), i);
        self.pods.push(Pod {
            name: name.clone(),
            p,
            state: PodState::Pending,
            node: None,
            holding: Vec::new(),
            processing: Vec::new(),
            queued: VecDeque::new(),
            restarts: 0,
            created_us: self.now,
            unschedulable_reported: false,
            deletion_reported: false,
            truth: PodPhaseTruth::default(),
            mark_us: self.now,
        });
        self.pipelines[p].pods.push(i);
        self.ev(EventKind::PodCreated {
            pod: name,
            deployment: self.plan.streams[p].deployment_name().to_string(),
            preexisting,
        });
        i
    }

    fn new_node(&mut self, preexisting: bool) -> usize {
        let i = self.nodes.len();
        let gpus = self.cfg.autoscaler.gpus_per_node;
        let name = format!("gke-imagen-{NODE_POOL}-{i:04x}");
        self.nodes.push(Node {
            name: name.clone(),
            gpus,
            used: 0,
            gpu_ready: preexisting,
            gone: false,
            image_ready_at: vec![None; self.pipelines.len()],
            unneeded_since: None,
        });
        if preexisting {
            self.ev(EventKind::NodeCreated {
                node: name.clone(),
                pool: NODE_POOL.into(),
                gpus,
                preexisting: true,
            });
            self.ev(EventKind::NodeReady { node: name.clone() });
            self.ev(EventKind::GpuAllocatable { node: name, gpus });
        }
        i
    }

    fn try_schedule(&mut self, pod: usize) {
        let p = self.pods[pod].p;
        // Prefer a node that already has the image (the scheduler's ImageLocality score).
        let free = |n: &Node| !n.gone && n.gpu_ready && n.used < n.gpus;
        let node = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| free(n))
            .max_by_key(|(i, n)| (n.image_ready_at[p].is_some(), Reverse(*i)))
            .map(|(i, _)| i);
        match node {
            Some(node) => self.bind(pod, node),
            None => {
                if !self.pods[pod].unschedulable_reported {
                    self.pods[pod].unschedulable_reported = true;
                    let total = self.nodes.iter().filter(|n| !n.gone).count();
                    let reason =
                        format!("0/{total} nodes are available: Insufficient nvidia.com/gpu");
                    self.ev(EventKind::PodUnschedulable {
                        pod: self.pods[pod].name.clone(),
                        reason,
                    });
                }
                if !self.pending.contains(&pod) {
                    self.pending.push_back(pod);
                }
            }
        }
    }

    fn schedule_pending(&mut self) {
        let pending: Vec<usize> = self.pending.drain(..).collect();
        for pod in pending {
            if self.pods[pod].state == PodState::Pending {
                self.try_schedule(pod);
            }
        }
    }

    fn bind(&mut self, pod: usize, node: usize) {
        self.nodes[node].used += 1;
        self.nodes[node].unneeded_since = None;
        let t_sched = self.now;
        let pd = &mut self.pods[pod];
        pd.node = Some(node);
        pd.state = PodState::Starting;
        pd.truth.node_provisioning_us = t_sched - pd.created_us;
        pd.mark_us = t_sched;
        let (name, p) = (pd.name.clone(), pd.p);
        self.ev(EventKind::PodScheduled {
            pod: name.clone(),
            node: self.nodes[node].name.clone(),
        });
        let image = format!("imagen/{}-worker:1", self.plan.streams[p].name);
        match self.nodes[node].image_ready_at[p] {
            Some(t) if t <= self.now => {
                let bytes = Some(self.pipelines[p].model.kubelet.image_bytes);
                self.ev(EventKind::ImagePulled {
                    pod: name,
                    image,
                    duration_us: 0,
                    bytes,
                    cached: true,
                });
                self.pods[pod].truth.image_pull_us = 0;
                self.start_container(pod);
            }
            Some(t) => {
                // Another pod is pulling the same image on this node: kubelet serialises pulls, so wait for it.
                self.ev(EventKind::ImagePulling { pod: name, image });
                self.at(t, Ev::PodPulled { pod });
            }
            None => {
                self.ev(EventKind::ImagePulling { pod: name, image });
                let dist = self.pipelines[p].model.kubelet.image_pull.clone();
                let d = Self::sample(&mut self.pipelines[p].rng, &dist);
                self.nodes[node].image_ready_at[p] = Some(self.now + d);
                self.at(self.now + d, Ev::PodPulled { pod });
            }
        }
    }

    fn pod_pulled(&mut self, pod: usize) {
        if self.pods[pod].state != PodState::Starting {
            return;
        }
        let took = self.now - self.pods[pod].mark_us;
        self.pods[pod].truth.image_pull_us = took;
        let p = self.pods[pod].p;
        let image = format!("imagen/{}-worker:1", self.plan.streams[p].name);
        let bytes = Some(self.pipelines[p].model.kubelet.image_bytes);
        self.ev(EventKind::ImagePulled {
            pod: self.pods[pod].name.clone(),
            image,
            duration_us: took,
            bytes,
            cached: false,
        });
        self.start_container(pod);
    }

    fn start_container(&mut self, pod: usize) {
        self.pods[pod].mark_us = self.now;
        let p = self.pods[pod].p;
        let dist = self.pipelines[p].model.kubelet.container_start.clone();
        let d = Self::sample(&mut self.pipelines[p].rng, &dist);
        self.at(self.now + d, Ev::PodStarted { pod });
    }

    fn terminate(&mut self, pod: usize) {
        let p = self.pods[pod].p;
        match self.pods[pod].state {
            PodState::Ready if !self.pods[pod].queued.is_empty() => {
                // A stopping worker gives back what it leased and had not started (its stream closes): those are
                // delivered again at once; what it is processing finishes within the grace period.
                for (msg, attempt) in std::mem::take(&mut self.pods[pod].queued) {
                    self.pods[pod].holding.retain(|&h| h != (msg, attempt));
                    let m = self.msg(msg);
                    m.held -= 1;
                    if m.attempt == attempt && !m.done {
                        m.attempt += 1;
                        m.pod = None;
                        self.pipelines[p].backlog.push_front(msg);
                    }
                    self.release(msg);
                }
                self.terminate(pod);
                self.deliver(p);
            }
            PodState::Ready if !self.pods[pod].holding.is_empty() => {
                self.pipelines[p].ready -= 1;
                self.pods[pod].state = PodState::Terminating;
                // Its deletion is requested now (Kubernetes' `deletionTimestamp`): it takes no more work, and
                // finishes what it holds within the grace period.
                self.pods[pod].deletion_reported = true;
                self.ev(EventKind::PodDeleted {
                    pod: self.pods[pod].name.clone(),
                });
                let grace = self.pipelines[p].model.worker.termination_grace.0;
                self.at(self.now + grace, Ev::GraceOver { pod });
            }
            PodState::Ready => {
                self.pipelines[p].ready -= 1;
                self.remove_pod(pod);
            }
            PodState::Pending | PodState::Starting => self.remove_pod(pod),
            PodState::Terminating | PodState::Gone => {}
        }
    }

    fn remove_pod(&mut self, pod: usize) {
        let p = self.pods[pod].p;
        self.pods[pod].state = PodState::Gone;
        if let Some(node) = self.pods[pod].node {
            self.nodes[node].used -= 1;
        }
        self.pending.retain(|&x| x != pod);
        self.pipelines[p].pods.retain(|&x| x != pod);
        if !self.pods[pod].deletion_reported {
            self.ev(EventKind::PodDeleted {
                pod: self.pods[pod].name.clone(),
            });
        }
        self.report_replicas(p);
        self.schedule_pending();
    }

    fn deliver(&mut self, p: usize) {
        while !self.pipelines[p].backlog.is_empty() {
            let w = &self.pipelines[p].model.worker;
            let conc = w.max_outstanding_messages.unwrap_or(w.concurrency);
            let pod = self.pipelines[p]
                .pods
                .iter()
                .copied()
                .filter(|&i| {
                    self.pods[i].state == PodState::Ready
                        && (self.pods[i].holding.len() as u32) < conc
                })
                .min_by_key(|&i| (self.pods[i].holding.len(), i));
            let Some(pod) = pod else { return };
            let msg = self.pipelines[p].backlog.pop_front().expect("non-empty");
            // Acked by an earlier delivery while this one waited (done, or done and forgotten): Pub/Sub drops it.
            let Some(m) = self.msgs.get_mut(&msg).filter(|m| !m.done) else {
                continue;
            };
            let attempt = m.attempt;
            m.pod = Some(pod);
            m.held += 1;
            self.pods[pod].holding.push((msg, attempt));
            let d = Self::sample(&mut self.pubsub_rng, &self.cfg.pubsub.delivery_latency);
            self.at(self.now + d, Ev::Delivered { msg, attempt });
        }
    }

    /// The pod holding this delivery attempt, if the attempt is still the current one and its pod still exists;
    /// events of superseded attempts (redelivered, or the pod killed) are ignored.
    fn current_holder(&self, msg: usize, attempt: u32) -> Option<usize> {
        let m = self.msgs.get(&msg)?;
        let pod = m.pod.filter(|_| m.attempt == attempt)?;
        (self.pods[pod].state != PodState::Gone).then_some(pod)
    }

    /// A worker finished a delivery. It counts if the pod still holds it (the pod may have crashed or been
    /// killed since); a message already completed by another delivery is a duplicate (at-least-once).
    fn done(&mut self, msg: usize, attempt: u32, pod: usize) {
        let Some(k) = self.pods[pod]
            .holding
            .iter()
            .position(|&h| h == (msg, attempt))
        else {
            return;
        };
        if self.pods[pod].state == PodState::Gone {
            return;
        }
        self.pods[pod].holding.swap_remove(k);
        self.pods[pod].processing.retain(|&h| h != (msg, attempt));
        self.msg(msg).held -= 1;
        let id = self.msg_id(msg);
        let name = self.pods[pod].name.clone();
        if self.msgs[&msg].done {
            self.out(Source::Sim, EventKind::Duplicate { id, pod: name });
        } else {
            self.msg(msg).done = true;
            let (d, start) = (
                self.msgs[&msg].delivered_us,
                self.msgs[&msg].processing_start_us,
            );
            if let Some(t) = &mut self.truth
                && let Some(m) = t.messages.get_mut(&id)
            {
                m.processing_start_us = Some(start);
                m.completed_us = Some(self.now);
            }
            self.out(
                Source::Worker,
                EventKind::Completed {
                    id,
                    pod: name,
                    received_us: Some(d),
                    processing_start_us: Some(start),
                    processing_end_us: Some(self.now),
                },
            );
            let p = self.msgs[&msg].p;
            self.change_unacked(p, -1);
        }
        if self.msgs[&msg].pod == Some(pod) {
            self.msg(msg).pod = None;
        }
        self.release(msg);
        let p = self.pods[pod].p;
        if self.pods[pod].state == PodState::Terminating {
            if self.pods[pod].holding.is_empty() {
                self.remove_pod(pod);
            }
        } else {
            self.next_queued(pod);
            self.deliver(p);
        }
    }

    /// Everything `pod` holds is abandoned: Pub/Sub redelivers it once its lease lapses (the ack deadline).
    fn abandon(&mut self, pod: usize) {
        self.pods[pod].processing.clear();
        self.pods[pod].queued.clear();
        let ack = self.cfg.pubsub.ack_deadline.0;
        for (msg, attempt) in std::mem::take(&mut self.pods[pod].holding) {
            let m = self.msg(msg);
            m.held -= 1;
            if m.attempt == attempt && !m.done {
                self.at(self.now + ack, Ev::Redeliver { msg, attempt });
            }
            self.release(msg);
        }
    }

    /// The worker process died: its deliveries are abandoned and the container restarts after kubelet's back-off
    /// (10 s), loads the model again, and becomes ready again.
    fn crash(&mut self, msg: usize, attempt: u32, pod: usize) {
        if !self.pods[pod].holding.contains(&(msg, attempt)) {
            return;
        }
        self.abandon(pod);
        let p = self.pods[pod].p;
        let name = self.pods[pod].name.clone();
        match self.pods[pod].state {
            PodState::Terminating => return self.remove_pod(pod),
            PodState::Ready => self.pipelines[p].ready -= 1,
            _ => {}
        }
        self.pods[pod].state = PodState::Starting;
        self.pods[pod].restarts += 1;
        self.ev(EventKind::PodNotReady {
            pod: name,
            reason: "worker exited (code 137, OOMKilled)".into(),
        });
        self.report_replicas(p);
        let dist = self.pipelines[p].model.kubelet.container_start.clone();
        let d = Self::sample(&mut self.pipelines[p].rng, &dist);
        self.at(self.now + RESTART_BACKOFF_US + d, Ev::PodStarted { pod });
    }

    fn ca_scan(&mut self) {
        let a = &self.cfg.autoscaler;
        // Scale-up: pending pods beyond what nodes already on their way will hold.
        let upcoming: u32 = self
            .nodes
            .iter()
            .filter(|n| !n.gone && !n.gpu_ready)
            .map(|n| n.gpus - n.used)
            .sum();
        let pending = self
            .pending
            .iter()
            .filter(|&&i| self.pods[i].state == PodState::Pending)
            .count() as u32;
        let live = self.nodes.iter().filter(|n| !n.gone).count() as u32;
        if pending > upcoming && live < a.max_nodes {
            let needed = (pending - upcoming)
                .div_ceil(a.gpus_per_node)
                .min(a.max_nodes - live);
            self.ev(EventKind::ScaleUpTriggered {
                node_group: NODE_POOL.into(),
                from: live,
                to: live + needed,
            });
            self.last_scale_up_us = Some(self.now);
            for _ in 0..needed {
                let node = self.new_node(false);
                let d = Self::sample(&mut self.node_rng, &self.cfg.autoscaler.node_provision);
                self.at(self.now + d, Ev::NodeRegistered { node });
            }
        }
        // Scale-down: empty ready nodes, unneeded long enough, and not too soon after a scale-up.
        let (unneeded, delay) = (a.scale_down_unneeded.0, a.scale_down_delay_after_add.0);
        let cooling = self.last_scale_up_us.is_some_and(|t| self.now - t < delay);
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            if n.gone || !n.gpu_ready || n.used > 0 {
                continue;
            }
            let since = *n.unneeded_since.get_or_insert(self.now);
            if !cooling && self.now - since >= unneeded {
                n.gone = true;
                let name = n.name.clone();
                self.ev(EventKind::NodeDeleted { node: name });
            }
        }
    }
}
