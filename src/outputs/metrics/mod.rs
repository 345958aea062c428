//! Prometheus metrics of a run, made from its events: one more consumer of the event stream, beside the log
//! writer and the analysis, so what a scrape shows during the run is what `analyze` computes after it.
//!
//! - [`RunMetrics`] takes every event (`see`) and keeps the metrics in a `prometheus-client` registry. Message
//!   splits (end-to-end latency, publish delay, capacity wait, queueing, processing) come from the streaming
//!   [`Analyzer`]'s per-message records, so they have the analysis's definitions; counts, backlog, replicas, pods
//!   and nodes come from the events directly.
//! - [`WorkerMetrics`]: the reference worker's own (`imagen_load_worker_…`).
//! - [`serve`]: `GET /metrics` on an address, OpenMetrics when the scraper asks for it (as Prometheus does), else
//!   the Prometheus text format 0.0.4.
//! - [`MetricsFile`]: a whole run as OpenMetrics with a timestamp on every sample, for
//!   `promtool tsdb create-blocks-from openmetrics`, which a simulated run writes in simulated time.
//!
//! Names follow Prometheus' conventions (<https://prometheus.io/docs/practices/naming/>): the `imagen_load_`
//! prefix, base units (`_seconds`), `_total` on counters; labels are streams, deployments, subscriptions,
//! phases, never a message id or a pod name.

pub mod otlp;

use crate::analysis::Analyzer;
use crate::event::{Event, EventKind};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "metrics address {addr} (--metrics-addr or [run] metrics_addr): not a loopback address; the endpoint shows what the run is doing\n    fix: use 127.0.0.1:PORT, or add --metrics-allow-remote to serve it on {addr}"
    )]
    NotLoopback { addr: SocketAddr },
    #[error(
        "cannot serve metrics on {addr}: {error}\n    fix: choose a free port (or 0 for any), e.g. --metrics-addr 127.0.0.1:0"
    )]
    BindFailed {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error(
        "cannot write the metrics file {path}: {error}\n    fix: name a file in a folder that exists"
    )]
    WriteFailed {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

/// The OpenMetrics content type (OpenMetrics 1.0.0, "Overall Structure").
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text format's content type (exposition formats, "Text-based format").
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    stream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SplitLabels {
    stream: String,
    /// `cold` (no ready replica of its pipeline when it was published) or `warm`.
    start: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BacklogLabels {
    subscription: String,
    /// `actual` (published, not acknowledged, as the harness counts it or the simulator knows it) or the metric
    /// an autoscaler reads (`emulator`, `prometheus`, `cloud-monitoring`).
    view: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    deployment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodPhaseLabels {
    deployment: String,
    /// `starting` (not ready yet, or no longer) or `ready`.
    phase: &'static str,
}

/// Bucket bounds from `start`, each `factor` times the last, rounded to 3 significant figures (`0.0113`, not
/// `0.011249999999999998`: the `le` labels a dashboard shows). Rounding keeps them increasing for a factor ≥ 1.1.
fn buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    exponential_buckets(start, factor, count as u16)
        .map(|v| {
            let scale = 10f64.powi(2 - v.log10().floor() as i32);
            (v * scale).round() / scale
        })
        .collect()
}

/// Durations from 5 ms to 54 minutes, each bucket 1.5 times the last (34 buckets): a message's time in the system
/// spans both, and `histogram_quantile` over them is within about 25% of the exact value.
fn seconds_buckets() -> Vec<f64> {
    buckets(0.005, 1.5, 34)
}

/// The pacer's lateness: from 10 µs to about 5 s, doubling.
fn lateness_buckets() -> Vec<f64> {
    buckets(0.000_01, 2.0, 20)
}

fn seconds_histogram() -> Histogram {
    Histogram::new(seconds_buckets())
}

fn lateness_histogram() -> Histogram {
    Histogram::new(lateness_buckets())
}

type Seconds = Family<SplitLabels, Histogram>;

/// A pod as the metrics follow it.
#[derive(Debug, Clone)]
struct PodState {
    deployment: String,
    ready: bool,
}

/// What the metrics need to remember between events.
struct State {
    analyzer: Analyzer,
    streams: Vec<String>,
    pods: HashMap<String, PodState>,
    nodes: HashSet<String>,
    /// Per stream, its series (handles on the families' atomics: no label is built per event) and the messages
    /// completed so far (a redelivery's second completion is not counted again).
    per_stream: HashMap<String, StreamSeries>,
    /// Publishes are paced in real time (not a simulated run, whose "lateness" is always 0 and says nothing of
    /// a pacer: its pacer histogram stays empty).
    paced: bool,
}

struct StreamSeries {
    scheduled: Counter,
    published: Counter,
    publish_failures: Counter,
    completed: Counter,
    lost: Counter,
    duplicated: Counter,
    in_flight: Gauge,
    done: crate::seqset::SeqSet,
}

/// A run's metrics, fed every event in log order by [`RunMetrics::see`] and read by [`RunMetrics::encode`] at
/// any time (a scrape, a snapshot).
pub struct RunMetrics {
    registry: Registry,
    scheduled: Family<StreamLabels, Counter>,
    published: Family<StreamLabels, Counter>,
    publish_failures: Family<StreamLabels, Counter>,
    completed: Family<StreamLabels, Counter>,
    lost: Family<StreamLabels, Counter>,
    duplicated: Family<StreamLabels, Counter>,
    in_flight: Family<StreamLabels, Gauge>,
    e2e: Seconds,
    publish_delay: Seconds,
    capacity_wait: Seconds,
    queueing: Seconds,
    processing: Seconds,
    lateness: Histogram,
    backlog: Family<BacklogLabels, Gauge>,
    replicas_desired: Family<DeploymentLabels, Gauge>,
    replicas_ready: Family<DeploymentLabels, Gauge>,
    pods: Family<PodPhaseLabels, Gauge>,
    gpu_nodes: Gauge,
    model_load: Histogram,
    run_seconds: Gauge<f64, AtomicU64>,
    state: Mutex<State>,
    /// The run id, the `run` label.
    run: Option<String>,
    /// The same series for an OTLP push ([`RunMetrics::with_otlp`]).
    otel: Option<otlp::Instruments>,
}

/// Each series' help text, by name (after `imagen_load_`): the one text of the registry and the OTLP push.
const HELP: [(&str, &str); 20] = [
    (
        "messages_scheduled",
        "Messages the schedule sent (at their intended instant)",
    ),
    ("messages_published", "Messages Pub/Sub acknowledged"),
    (
        "publish_failures",
        "Messages whose publish failed after its retry budget",
    ),
    (
        "messages_completed",
        "Messages a worker completed (once each)",
    ),
    (
        "messages_lost",
        "Messages with no completion by the deadline",
    ),
    (
        "messages_duplicated",
        "Completions of a message already completed",
    ),
    (
        "messages_in_flight",
        "Messages scheduled and neither completed, failed nor lost",
    ),
    (
        "backlog_messages",
        "Unacknowledged messages of a subscription, as last sampled, per view",
    ),
    (
        "replicas_desired",
        "A Deployment's desired replicas, as last reported",
    ),
    (
        "replicas_ready",
        "A Deployment's ready replicas, as last reported",
    ),
    (
        "pods",
        "Pods the run has seen (present at its start or created since) and not deleted, by phase",
    ),
    ("gpu_nodes", "GPU nodes created and not deleted"),
    (
        "run_time",
        "Run time of the last event (simulated time for a simulated run)",
    ),
    (
        "e2e_latency",
        "From the intended send instant to the completion",
    ),
    (
        "publish_delay",
        "From the intended send instant to Pub/Sub's acknowledgement",
    ),
    (
        "capacity_wait",
        "Waiting for the first ready replica (cold messages; 0 for warm ones)",
    ),
    (
        "queueing",
        "From capacity being there to the start of processing",
    ),
    ("processing", "The worker's processing"),
    ("model_load", "Model load time, as the worker reported it"),
    (
        "pacer_lateness",
        "Actual send minus intended send, per publish: the generator's own lag",
    ),
];

/// The help text of series `name`, from [`HELP`].
fn help(name: &str) -> &'static str {
    HELP.iter().find(|(n, _)| *n == name).map_or("", |(_, h)| h)
}

/// The counters and gauges as the OTLP push exports them: name (after `imagen_load_`), unit (UCUM, as
/// OpenTelemetry's semantic conventions write them: `{message}` is a count of messages), kind.
const OTLP_OBSERVABLES: [(&str, &str, otlp::Kind); 13] = [
    ("messages_scheduled", "{message}", otlp::Kind::Counter),
    ("messages_published", "{message}", otlp::Kind::Counter),
    ("publish_failures", "{message}", otlp::Kind::Counter),
    ("messages_completed", "{message}", otlp::Kind::Counter),
    ("messages_lost", "{message}", otlp::Kind::Counter),
    ("messages_duplicated", "{message}", otlp::Kind::Counter),
    ("messages_in_flight", "{message}", otlp::Kind::UpDown),
    ("backlog_messages", "{message}", otlp::Kind::Gauge),
    ("replicas_desired", "{replica}", otlp::Kind::Gauge),
    ("replicas_ready", "{replica}", otlp::Kind::Gauge),
    ("pods", "{pod}", otlp::Kind::UpDown),
    ("gpu_nodes", "{node}", otlp::Kind::UpDown),
    ("run_time", "s", otlp::Kind::Seconds),
];

impl Default for RunMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RunMetrics {
    /// Metrics without a run label (tests).
    pub fn new() -> RunMetrics {
        Self::for_run(None)
    }

    /// A run's metrics; `run` (its id) becomes a `run` label on every series, so runs backfilled or scraped into
    /// one Prometheus stay apart.
    pub fn for_run(run: Option<&str>) -> RunMetrics {
        let mut registry = match run {
            Some(id) => Registry::with_prefix_and_labels(
                "imagen_load",
                std::iter::once((
                    std::borrow::Cow::Borrowed("run"),
                    std::borrow::Cow::Owned(id.to_string()),
                )),
            ),
            None => Registry::with_prefix("imagen_load"),
        };
        let split = || Seconds::new_with_constructor(seconds_histogram as fn() -> Histogram);
        let m = RunMetrics {
            registry: Registry::default(),
            scheduled: Family::default(),
            published: Family::default(),
            publish_failures: Family::default(),
            completed: Family::default(),
            lost: Family::default(),
            duplicated: Family::default(),
            in_flight: Family::default(),
            e2e: split(),
            publish_delay: split(),
            capacity_wait: split(),
            queueing: split(),
            processing: split(),
            lateness: lateness_histogram(),
            backlog: Family::default(),
            replicas_desired: Family::default(),
            replicas_ready: Family::default(),
            pods: Family::default(),
            gpu_nodes: Gauge::default(),
            model_load: seconds_histogram(),
            run_seconds: Gauge::default(),
            state: Mutex::new(State {
                analyzer: Analyzer::default().keeping_messages(),
                streams: Vec::new(),
                pods: HashMap::new(),
                nodes: HashSet::new(),
                per_stream: HashMap::new(),
                paced: true,
            }),
            run: run.map(str::to_string),
            otel: None,
        };
        let counters = [
            (
                "messages_scheduled",
                help("messages_scheduled"),
                &m.scheduled,
            ),
            (
                "messages_published",
                help("messages_published"),
                &m.published,
            ),
            (
                "publish_failures",
                help("publish_failures"),
                &m.publish_failures,
            ),
            (
                "messages_completed",
                help("messages_completed"),
                &m.completed,
            ),
            ("messages_lost", help("messages_lost"), &m.lost),
            (
                "messages_duplicated",
                help("messages_duplicated"),
                &m.duplicated,
            ),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "messages_in_flight",
            help("messages_in_flight"),
            m.in_flight.clone(),
        );
        let splits = [
            ("e2e_latency", help("e2e_latency"), &m.e2e),
            ("publish_delay", help("publish_delay"), &m.publish_delay),
            ("capacity_wait", help("capacity_wait"), &m.capacity_wait),
            ("queueing", help("queueing"), &m.queueing),
            ("processing", help("processing"), &m.processing),
        ];
        for (name, help, family) in splits {
            registry.register_with_unit(name, help, Unit::Seconds, family.clone());
        }
        registry.register_with_unit(
            "pacer_lateness",
            help("pacer_lateness"),
            Unit::Seconds,
            m.lateness.clone(),
        );
        registry.register(
            "backlog_messages",
            help("backlog_messages"),
            m.backlog.clone(),
        );
        registry.register(
            "replicas_desired",
            help("replicas_desired"),
            m.replicas_desired.clone(),
        );
        registry.register(
            "replicas_ready",
            help("replicas_ready"),
            m.replicas_ready.clone(),
        );
        registry.register("pods", help("pods"), m.pods.clone());
        registry.register("gpu_nodes", help("gpu_nodes"), m.gpu_nodes.clone());
        registry.register_with_unit(
            "model_load",
            help("model_load"),
            Unit::Seconds,
            m.model_load.clone(),
        );
        registry.register_with_unit(
            "run_time",
            help("run_time"),
            Unit::Seconds,
            m.run_seconds.clone(),
        );
        RunMetrics { registry, ..m }
    }

    /// Also exports the series through an OTLP push's `meter` (before the first event): the counters and gauges
    /// read from the registry's own handles, the histograms recorded beside the registry's with its bounds.
    pub fn with_otlp(mut self, meter: &opentelemetry::metrics::Meter) -> RunMetrics {
        let histograms = [
            ("e2e_latency", "s", seconds_buckets()),
            ("publish_delay", "s", seconds_buckets()),
            ("capacity_wait", "s", seconds_buckets()),
            ("queueing", "s", seconds_buckets()),
            ("processing", "s", seconds_buckets()),
            ("model_load", "s", seconds_buckets()),
            ("pacer_lateness", "s", lateness_buckets()),
        ];
        let otel = otlp::Instruments::new(
            meter,
            self.run.as_deref(),
            &OTLP_OBSERVABLES,
            &histograms,
            help,
        );
        otel.gauge("gpu_nodes", &[], &self.gpu_nodes);
        otel.seconds("run_time", &self.run_seconds);
        self.otel = Some(otel);
        self
    }

    /// Takes one event, in log order.
    pub fn see(&self, e: &Event) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.run_seconds.set(e.t_us as f64 / 1e6);
        match &e.kind {
            EventKind::RunStarted {
                streams, target, ..
            } => {
                st.streams = streams.clone();
                st.paced = target != "sim";
                // Every stream's counters exist from the start, at 0, so a rate or a ratio has a series.
                for s in streams {
                    self.stream(&mut st, s);
                }
            }
            EventKind::Scheduled { id, .. } => {
                let s = self.stream(&mut st, &id.stream);
                s.scheduled.inc();
                s.in_flight.inc();
            }
            EventKind::Published {
                id, lateness_us, ..
            } => {
                self.stream(&mut st, &id.stream).published.inc();
                if st.paced {
                    self.lateness.observe(*lateness_us as f64 / 1e6);
                    if let Some(o) = &self.otel {
                        o.record("pacer_lateness", &[], *lateness_us as f64 / 1e6);
                    }
                }
            }
            EventKind::PublishFailed { id, .. } => {
                let s = self.stream(&mut st, &id.stream);
                s.publish_failures.inc();
                s.in_flight.dec();
            }
            EventKind::Completed { id, .. } => {
                let s = self.stream(&mut st, &id.stream);
                if s.done.insert(id.seq) {
                    s.completed.inc();
                    s.in_flight.dec();
                }
            }
            EventKind::Lost { id } => {
                let s = self.stream(&mut st, &id.stream);
                s.lost.inc();
                s.in_flight.dec();
            }
            EventKind::Duplicate { id, .. } => {
                self.stream(&mut st, &id.stream).duplicated.inc();
            }
            EventKind::Backlog {
                subscription,
                depth,
                view,
                ..
            } => {
                let l = BacklogLabels {
                    subscription: subscription.clone(),
                    view: view.clone().unwrap_or_else(|| "actual".into()),
                };
                let g = self.backlog.get_or_create_owned(&l);
                g.set(*depth as i64);
                if let Some(o) = &self.otel {
                    o.gauge(
                        "backlog_messages",
                        &[("subscription", &l.subscription), ("view", &l.view)],
                        &g,
                    );
                }
            }
            EventKind::Replicas {
                deployment,
                desired,
                ready,
            } => {
                let l = DeploymentLabels {
                    deployment: deployment.clone(),
                };
                let d = self.replicas_desired.get_or_create_owned(&l);
                d.set(i64::from(*desired));
                let labels = [("deployment", l.deployment.as_str())];
                if let Some(o) = &self.otel {
                    o.gauge("replicas_desired", &labels, &d);
                }
                if let Some(r) = ready {
                    let g = self.replicas_ready.get_or_create_owned(&l);
                    g.set(i64::from(*r));
                    if let Some(o) = &self.otel {
                        o.gauge("replicas_ready", &labels, &g);
                    }
                }
            }
            EventKind::PodCreated {
                pod, deployment, ..
            } if !st.pods.contains_key(pod) => {
                st.pods.insert(
                    pod.clone(),
                    PodState {
                        deployment: deployment.clone(),
                        ready: false,
                    },
                );
                self.pods_add(deployment, false, 1);
            }
            EventKind::PodReady { pod } => {
                if let Some(p) = st.pods.get_mut(pod)
                    && !p.ready
                {
                    p.ready = true;
                    self.pods_add(&p.deployment, false, -1);
                    self.pods_add(&p.deployment, true, 1);
                }
            }
            EventKind::PodNotReady { pod, .. } => {
                if let Some(p) = st.pods.get_mut(pod)
                    && p.ready
                {
                    p.ready = false;
                    self.pods_add(&p.deployment, true, -1);
                    self.pods_add(&p.deployment, false, 1);
                }
            }
            EventKind::PodDeleted { pod } => {
                if let Some(p) = st.pods.remove(pod) {
                    self.pods_add(&p.deployment, p.ready, -1);
                }
            }
            EventKind::ModelLoaded {
                duration_us: Some(d),
                ..
            } => {
                self.model_load.observe(*d as f64 / 1e6);
                if let Some(o) = &self.otel {
                    o.record("model_load", &[], *d as f64 / 1e6);
                }
            }
            // A node seen twice (a re-list) is counted once.
            EventKind::NodeCreated { node, .. } => {
                let _ = self
                    .gpu_nodes
                    .inc_by(i64::from(st.nodes.insert(node.clone())));
            }
            EventKind::NodeDeleted { node } => {
                let _ = self.gpu_nodes.dec_by(i64::from(st.nodes.remove(node)));
            }
            _ => {}
        }
        st.analyzer.push(e);
        let State {
            analyzer, streams, ..
        } = &mut *st;
        for rec in analyzer.drain_messages() {
            let Some(name) = streams.get(rec.stream as usize) else {
                continue;
            };
            let l = SplitLabels {
                stream: name.clone(),
                start: if rec.cold { "cold" } else { "warm" },
            };
            let labels = [("stream", l.stream.as_str()), ("start", l.start)];
            for (name, family, v) in [
                ("e2e_latency", &self.e2e, Some(rec.e2e_us())),
                ("publish_delay", &self.publish_delay, rec.publish_delay_us),
                ("capacity_wait", &self.capacity_wait, rec.capacity_wait_us),
                ("queueing", &self.queueing, rec.queueing_us),
                ("processing", &self.processing, rec.processing_us),
            ] {
                if let Some(v) = v {
                    family.get_or_create(&l).observe(v as f64 / 1e6);
                    if let Some(o) = &self.otel {
                        o.record(name, &labels, v as f64 / 1e6);
                    }
                }
            }
        }
    }

    /// A stream's series, made on first sight.
    fn stream<'s>(&self, st: &'s mut State, name: &str) -> &'s mut StreamSeries {
        if !st.per_stream.contains_key(name) {
            let l = StreamLabels {
                stream: name.to_string(),
            };
            let series = StreamSeries {
                scheduled: self.scheduled.get_or_create_owned(&l),
                published: self.published.get_or_create_owned(&l),
                publish_failures: self.publish_failures.get_or_create_owned(&l),
                completed: self.completed.get_or_create_owned(&l),
                lost: self.lost.get_or_create_owned(&l),
                duplicated: self.duplicated.get_or_create_owned(&l),
                in_flight: self.in_flight.get_or_create_owned(&l),
                done: Default::default(),
            };
            if let Some(o) = &self.otel {
                let labels = [("stream", name)];
                for (metric, c) in [
                    ("messages_scheduled", &series.scheduled),
                    ("messages_published", &series.published),
                    ("publish_failures", &series.publish_failures),
                    ("messages_completed", &series.completed),
                    ("messages_lost", &series.lost),
                    ("messages_duplicated", &series.duplicated),
                ] {
                    o.counter(metric, &labels, c);
                }
                o.gauge("messages_in_flight", &labels, &series.in_flight);
            }
            st.per_stream.insert(name.to_string(), series);
        }
        st.per_stream.get_mut(name).expect("inserted above")
    }

    /// Moves `delta` pods of `deployment` into (or, negative, out of) a phase.
    fn pods_add(&self, deployment: &str, ready: bool, delta: i64) {
        let phase = if ready { "ready" } else { "starting" };
        let g = self.pods.get_or_create_owned(&PodPhaseLabels {
            deployment: deployment.to_string(),
            phase,
        });
        g.inc_by(delta);
        if let Some(o) = &self.otel {
            o.gauge("pods", &[("deployment", deployment), ("phase", phase)], &g);
        }
    }

    /// The metrics in the OpenMetrics text format, ending with `# EOF`.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

/// OpenMetrics text as the Prometheus text format 0.0.4, for scrapers that do not ask for OpenMetrics: no
/// `# EOF`, no `# UNIT`, and a counter's `# TYPE`/`# HELP` named like its `_total` samples (the classic format has
/// no family name apart from the samples).
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# TYPE ", "# HELP "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        // A counter's `_created` sample is OpenMetrics only.
        if line.split(['{', ' ']).next().is_some_and(|n| {
            n.strip_suffix("_created")
                .is_some_and(|base| counters.contains(base))
        }) {
            continue;
        }
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The reference worker's metrics (`imagen_load_worker_…`), served on its HTTP port beside its probes.
pub struct WorkerMetrics {
    registry: Registry,
    jobs: Family<OutcomeLabels, Counter>,
    processing: Histogram,
    model_load: Gauge<f64, AtomicU64>,
    ready: Gauge,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerMetrics")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// `completed` (result published, acked) or `failed` (the result could not be published: nacked, so Pub/Sub
    /// redelivers it).
    outcome: &'static str,
}

/// How a worker's job ended, for [`WorkerMetrics::job`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Completed,
    Failed,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerMetrics {
    pub fn new() -> WorkerMetrics {
        let mut registry = Registry::with_prefix("imagen_load_worker");
        let m = WorkerMetrics {
            registry: Registry::default(),
            jobs: Family::default(),
            processing: seconds_histogram(),
            model_load: Gauge::default(),
            ready: Gauge::default(),
        };
        for outcome in ["completed", "failed"] {
            let _ = m.jobs.get_or_create(&OutcomeLabels { outcome });
        }
        registry.register("jobs", "Jobs taken, by how they ended", m.jobs.clone());
        registry.register_with_unit(
            "processing",
            "Processing time of a job",
            Unit::Seconds,
            m.processing.clone(),
        );
        registry.register_with_unit(
            "model_load",
            "How long the model took to load (0 until it has)",
            Unit::Seconds,
            m.model_load.clone(),
        );
        registry.register(
            "ready",
            "1 when the model is loaded and jobs are taken, else 0",
            m.ready.clone(),
        );
        WorkerMetrics { registry, ..m }
    }

    /// A job ended; `processing_us` is its processing time, where it was processed.
    pub fn job(&self, outcome: JobOutcome, processing_us: Option<u64>) {
        let outcome = match outcome {
            JobOutcome::Completed => "completed",
            JobOutcome::Failed => "failed",
        };
        self.jobs.get_or_create(&OutcomeLabels { outcome }).inc();
        if let Some(us) = processing_us {
            self.processing.observe(us as f64 / 1e6);
        }
    }

    /// The model is loaded, after `load_us`.
    pub fn ready(&self, load_us: u64) {
        self.model_load.set(load_us as f64 / 1e6);
        self.ready.set(1);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }
}

/// The body and content type of a `/metrics` response: OpenMetrics when the request's `Accept` names it (as
/// Prometheus' scrapes do), else the Prometheus text format.
pub fn exposition(openmetrics: String, accept: Option<&str>) -> (String, &'static str) {
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        (openmetrics, OPENMETRICS_CONTENT_TYPE)
    } else {
        (
            to_prometheus_text(&openmetrics),
            PROMETHEUS_TEXT_CONTENT_TYPE,
        )
    }
}

/// Checks `--metrics-addr`: a loopback address, unless `allow_remote`.
pub fn check_addr(addr: SocketAddr, allow_remote: bool) -> Result<(), Error> {
    if addr.ip().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(Error::NotLoopback { addr })
    }
}

/// Serves `GET /metrics` (and `GET /healthz`) on `listener` until the task is dropped; `render` gives the
/// OpenMetrics text at each scrape.
pub async fn serve(
    listener: tokio::net::TcpListener,
    render: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
) {
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let render = render.clone();
                    async move {
                        let (status, body, ctype) = match (req.method().as_str(), req.uri().path())
                        {
                            ("GET", "/metrics") => {
                                let accept = req
                                    .headers()
                                    .get(http::header::ACCEPT)
                                    .and_then(|v| v.to_str().ok());
                                let (body, ctype) = exposition(render(), accept);
                                (200, body, ctype)
                            }
                            ("GET", "/healthz") => {
                                (200, r#"{"status":"ok"}"#.to_string(), "application/json")
                            }
                            _ => (
                                404,
                                r#"{"error":"no such route; metrics are at /metrics"}"#.to_string(),
                                "application/json",
                            ),
                        };
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .status(status)
                                .header(http::header::CONTENT_TYPE, ctype)
                                .body(Full::new(bytes::Bytes::from(body)))
                                .expect("valid response"),
                        )
                    }
                });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(conn), service)
                .await;
        });
    }
}

/// A whole run as one OpenMetrics exposition with a timestamp on every sample: snapshots of [`RunMetrics`]
/// taken at a fixed interval of run time, each sample stamped with the snapshot's time, families kept together
/// as OpenMetrics requires (and `promtool tsdb create-blocks-from openmetrics` reads).
pub struct MetricsFile {
    /// Family name → (metadata lines, sample lines), in first-seen order.
    families: Vec<(String, Vec<String>, Vec<String>)>,
    /// Unix time of run time 0, seconds.
    origin_unix_s: f64,
}

impl MetricsFile {
    /// A file whose run time 0 is `origin_unix_s` (Unix seconds).
    pub fn new(origin_unix_s: f64) -> MetricsFile {
        MetricsFile {
            families: Vec::new(),
            origin_unix_s,
        }
    }

    /// Adds a snapshot (OpenMetrics text) taken at run time `t_us`.
    pub fn snapshot(&mut self, openmetrics: &str, t_us: u64) {
        let ts = self.origin_unix_s + t_us as f64 / 1e6;
        let mut current: Option<usize> = None;
        for line in openmetrics.lines() {
            if line == "# EOF" {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# ") {
                let name = rest.split(' ').nth(1).unwrap_or_default().to_string();
                let i = match self.families.iter().position(|f| f.0 == name) {
                    Some(i) => i,
                    None => {
                        self.families.push((name, Vec::new(), Vec::new()));
                        self.families.len() - 1
                    }
                };
                if !self.families[i].1.iter().any(|m| m == line) {
                    self.families[i].1.push(line.to_string());
                }
                current = Some(i);
            } else if let Some(i) = current
                && !line.is_empty()
            {
                self.families[i].2.push(format!("{line} {ts:.3}"));
            }
        }
    }

    /// The exposition, ending with `# EOF`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (_, meta, samples) in &self.families {
            for l in meta.iter().chain(samples) {
                out.push_str(l);
                out.push('\n');
            }
        }
        out.push_str("# EOF\n");
        out
    }

    /// Writes the exposition to `path`.
    pub fn write(&self, path: &std::path::Path) -> Result<(), Error> {
        std::fs::write(path, self.text()).map_err(|error| Error::WriteFailed {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// A run's metrics as the run feeds them its events: [`RunMetrics`], and with a metrics file its snapshots every
/// `interval` of run time (each taken before the first event past its instant, so it shows the run as of then).
pub struct Recorder {
    pub metrics: std::sync::Arc<RunMetrics>,
    file: Option<FileRecording>,
    push: Option<otlp::Push>,
}

struct FileRecording {
    file: MetricsFile,
    path: std::path::PathBuf,
    interval_us: u64,
    next_us: u64,
    last_us: u64,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("file", &self.file.as_ref().map(|r| &r.path))
            .field("push", &self.push)
            .finish()
    }
}

impl Recorder {
    /// Metrics only (served, not written).
    pub fn new(metrics: std::sync::Arc<RunMetrics>) -> Recorder {
        Recorder {
            metrics,
            file: None,
            push: None,
        }
    }

    /// Also pushes the metrics by OTLP (`metrics` made [`RunMetrics::with_otlp`] on `push`'s meter) until
    /// [`Recorder::finish_push`].
    pub fn with_push(mut self, push: otlp::Push) -> Self {
        self.push = Some(push);
        self
    }

    /// Pushes the last values and stops the push; its URL and what it did, if there is one (blocking: call it
    /// outside the async runtime).
    pub fn finish_push(&mut self) -> Option<(String, otlp::Pushed)> {
        let push = self.push.take()?;
        let url = push.url().to_string();
        Some((url, push.finish()))
    }

    /// Also writes the run's metrics to `path` at [`Recorder::finish`]: a snapshot every `interval_us` of run
    /// time, stamped `origin_unix_s` (Unix seconds of run time 0) plus the run time.
    pub fn with_file(
        mut self,
        path: std::path::PathBuf,
        interval_us: u64,
        origin_unix_s: f64,
    ) -> Self {
        self.file = Some(FileRecording {
            file: MetricsFile::new(origin_unix_s),
            path,
            interval_us: interval_us.max(1_000),
            next_us: 0,
            last_us: 0,
        });
        self
    }

    /// Takes one event, in log order. A live run's header sets the file's time 0 to the run's wall-clock start.
    pub fn see(&mut self, e: &Event) {
        if let Some(f) = &mut self.file {
            if let EventKind::RunStarted {
                wall_clock_start_unix_us,
                ..
            } = &e.kind
                && *wall_clock_start_unix_us > 0
            {
                f.file.origin_unix_s = *wall_clock_start_unix_us as f64 / 1e6;
            }
            while e.t_us >= f.next_us {
                f.file.snapshot(&self.metrics.encode(), f.next_us);
                f.next_us += f.interval_us;
            }
            f.last_us = f.last_us.max(e.t_us);
        }
        self.metrics.see(e);
    }

    /// Takes the last snapshot (at the last event) and writes the file; returns its path, if there is one.
    pub fn finish(&mut self) -> Result<Option<std::path::PathBuf>, Error> {
        let Some(f) = &mut self.file else {
            return Ok(None);
        };
        if f.last_us + f.interval_us >= f.next_us {
            f.file.snapshot(&self.metrics.encode(), f.last_us);
            f.next_us = f.last_us + f.interval_us;
        }
        f.file.write(&f.path)?;
        Ok(Some(f.path.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_increase_and_read_short() {
        for b in [seconds_buckets(), lateness_buckets()] {
            assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
            assert!(
                b.iter().all(|v| v
                    .to_string()
                    .trim_start_matches("0.")
                    .trim_start_matches('0')
                    .len()
                    <= 5),
                "{b:?}"
            );
        }
        assert_eq!(&seconds_buckets()[..4], &[0.005, 0.0075, 0.0113, 0.0169]);
        assert_eq!(seconds_buckets()[33], 3240.0); // 54 minutes
    }
    use crate::event::{MsgId, Source};

    fn ev(t_us: u64, kind: EventKind) -> Event {
        Event::new(t_us, Source::Harness, kind)
    }

    fn id(seq: u64) -> MsgId {
        MsgId {
            stream: "upscale".into(),
            seq,
        }
    }

    #[test]
    fn counts_and_splits_follow_the_events() {
        let m = RunMetrics::new();
        m.see(&ev(
            0,
            EventKind::RunStarted {
                log_version: 1,
                run_id: "r".into(),
                workload: "w".into(),
                seed: 1,
                target: "emulator".into(),
                wall_clock_start_unix_us: 0,
                streams: vec!["upscale".into()],
                warmup_us: 0,
                deadline_us: 60_000_000,
                price_per_gpu_hour_usd: 0.48,
                shard: None,
                pipelines: vec![],
                cluster_observed: None,
                overrides: vec![],
                timer_slack_us: None,
            },
        ));
        for seq in 0..3 {
            m.see(&ev(
                seq * 1000,
                EventKind::Scheduled {
                    id: id(seq),
                    intended_us: seq * 1000,
                },
            ));
            m.see(&ev(
                seq * 1000 + 500,
                EventKind::Published {
                    id: id(seq),
                    lateness_us: 100,
                    server_id: None,
                },
            ));
        }
        m.see(&Event::new(
            2_000_000,
            Source::Worker,
            EventKind::Completed {
                id: id(0),
                pod: "upscale-a".into(),
                received_us: None,
                processing_start_us: None,
                processing_end_us: None,
            },
        ));
        m.see(&ev(3_000_000, EventKind::Lost { id: id(2) }));
        let text = m.encode();
        for want in [
            "imagen_load_messages_scheduled_total{stream=\"upscale\"} 3",
            "imagen_load_messages_published_total{stream=\"upscale\"} 3",
            "imagen_load_messages_completed_total{stream=\"upscale\"} 1",
            "imagen_load_messages_lost_total{stream=\"upscale\"} 1",
            "imagen_load_messages_in_flight{stream=\"upscale\"} 1",
            // No replica was seen ready: the message was cold.
            "imagen_load_e2e_latency_seconds_count{stream=\"upscale\",start=\"cold\"} 1",
            "imagen_load_e2e_latency_seconds_sum{stream=\"upscale\",start=\"cold\"} 2.0",
            "# EOF",
        ] {
            assert!(text.contains(want), "no `{want}` in:\n{text}");
        }
        let classic = to_prometheus_text(&text);
        assert!(classic.contains("# TYPE imagen_load_messages_completed_total counter"));
        assert!(!text.contains(".."), "a help text ends in two dots");
        assert!(!classic.contains("# EOF") && !classic.contains("# UNIT"));
    }

    #[test]
    fn a_metrics_file_keeps_each_family_together_with_timestamps() {
        let m = RunMetrics::new();
        let mut f = MetricsFile::new(1_800_000_000.0);
        f.snapshot(&m.encode(), 0);
        m.see(&ev(
            15_000_000,
            EventKind::Backlog {
                subscription: "s".into(),
                depth: 7,
                view: None,
                point_age_us: None,
            },
        ));
        f.snapshot(&m.encode(), 15_000_000);
        let text = f.text();
        assert_eq!(
            text.matches("# TYPE imagen_load_gpu_nodes gauge").count(),
            1
        );
        assert!(text.contains("imagen_load_gpu_nodes 0 1800000000.000\n"));
        assert!(text.contains("imagen_load_gpu_nodes 0 1800000015.000\n"));
        assert!(text.contains(
            "imagen_load_backlog_messages{subscription=\"s\",view=\"actual\"} 7 1800000015.000\n"
        ));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_remote_address_needs_the_explicit_flag() {
        let remote: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        assert!(check_addr(remote, false).is_err());
        assert!(check_addr(remote, true).is_ok());
        assert!(check_addr("127.0.0.1:9464".parse().unwrap(), false).is_ok());
        assert!(check_addr("[::1]:9464".parse().unwrap(), false).is_ok());
    }
}
