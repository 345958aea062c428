//! The plan's types: what a validated workload says a run will do ([`Plan`]: the run, its target, streams and
//! phases, `[cluster]`, the simulator's parameters, thresholds). Made by `workload::parse`; nothing else makes one.

use super::*;

/// The largest payload template (bytes) a stream may declare.
pub const MAX_PAYLOAD_TEMPLATE_BYTES: usize = 10 * 1024 * 1024;

/// What must be at zero: the worker replicas (`replicas`), or those and the GPU nodes (`nodes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ZeroScope {
    Replicas,
    Nodes,
}

/// A validated workload: what a run will do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: PathBuf,
    pub name: String,
    pub seed: u64,
    /// How long after the last scheduled message in-flight messages may still complete before they count as lost.
    pub deadline: Micros,
    /// Messages intended before this offset are excluded from latency statistics (still counted in delivery).
    pub warmup: Micros,
    /// After the last completion, how long to keep observing scale-down back to the idle state.
    pub drain: Micros,
    /// `[run] timer_slack`: how late the real-time pacer may send a message so that sends close together go in
    /// one wake-up ([`crate::run::pacer`]); 0 sends each at its own instant. Named for Linux's per-thread timer
    /// slack (`prctl(2)`, `PR_SET_TIMERSLACK`), which groups a thread's timer expirations the same way.
    pub timer_slack: Micros,
    /// `[run] metrics_addr`: serve the run's Prometheus metrics there (`run --metrics-addr` overrides it).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `[run] otlp_endpoint`: push the run's metrics by OTLP/HTTP there (`run --otlp-endpoint` overrides it).
    pub otlp_endpoint: Option<String>,
    pub target: TargetKind,
    /// `[target]` settings for the Pub/Sub targets (`emulator`, `gcp`); unused by the simulator.
    pub pubsub: PubsubPlan,
    pub streams: Vec<StreamPlan>,
    pub sim: SimConfig,
    /// `[thresholds]`: the run's pass/fail conditions (exit code 1 when one fails).
    pub thresholds: Vec<crate::plan::thresholds::Threshold>,
    /// `[cluster]`: the Kubernetes cluster a live run watches (none on the simulator, which simulates one).
    pub cluster: Option<ClusterPlan>,
    /// The `--set KEY=VALUE` overrides applied, as given (empty when none).
    pub overrides: Vec<String>,
    /// The workload text this plan was validated from: the file with the overrides applied. The results
    /// folder's `workload.toml` is this text, so a re-analysis or a nightly reader sees what actually ran.
    pub text: String,
}

impl Plan {
    /// The effective workload as the results folder keeps it: [`Plan::text`], headed by a comment naming the
    /// file and the overrides when there were any (so the record says it is not the file as written).
    pub fn effective_workload(&self) -> String {
        if self.overrides.is_empty() {
            return self.text.clone();
        }
        let mut out = format!(
            "# imagen-load: {} with {} applied\n",
            self.source.display(),
            self.overrides
                .iter()
                .map(|o| format!("--set {o}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        out.push_str(&self.text);
        out
    }

    /// Whether the run sees the cluster's pods and nodes: the simulator does (unless it is told to observe as
    /// the workers alone would), a live run when it watches a cluster (`[cluster]`).
    pub fn observes_cluster(&self) -> bool {
        match self.target {
            TargetKind::Sim => self.sim.observe.sees_cluster(),
            _ => self.cluster.is_some(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// The built-in simulation of Pub/Sub, KEDA, the cluster autoscaler, kubelet and GPU workers.
    Sim,
    /// A Pub/Sub emulator: `endpoint`, else `PUBSUB_EMULATOR_HOST`, else the built-in one started in-process.
    Emulator,
    /// Google Cloud Pub/Sub with Application Default Credentials.
    Gcp,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sim => "sim",
            Self::Emulator => "emulator",
            Self::Gcp => "gcp",
        }
    }
}

/// `[target] prometheus_auth`: how the Prometheus backlog view authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrometheusAuth {
    /// No credentials (a Prometheus reached directly, or through `kubectl port-forward`).
    None,
    /// A bearer token from Application Default Credentials: Google Managed Prometheus' query frontend
    /// (`https://monitoring.googleapis.com/v1/projects/PROJECT/location/global/prometheus`).
    Adc,
}

impl PubsubPlan {
    /// Whether the Prometheus view sends an ADC bearer token: as `prometheus_auth` says, else for a URL on
    /// Managed Prometheus' frontend (`monitoring.googleapis.com`).
    pub fn prometheus_uses_adc(&self) -> bool {
        match self.prometheus_auth {
            Some(a) => a == PrometheusAuth::Adc,
            None => self
                .prometheus_url
                .as_deref()
                .is_some_and(|u| u.contains("://monitoring.googleapis.com")),
        }
    }
}

/// Which backlog metric to sample during a Pub/Sub run (the autoscaler's view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BacklogKind {
    None,
    Emulator,
    Prometheus,
    CloudMonitoring,
}

/// `[target]` for `emulator` and `gcp`, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct PubsubPlan {
    /// The GCP project (the emulator accepts any name).
    pub project: Option<String>,
    /// `host:port` of an emulator.
    pub endpoint: Option<String>,
    /// Where workers publish completions.
    pub results_topic: String,
    /// The harness's subscription on the results topic.
    pub results_subscription: String,
    /// Create missing topics and subscriptions (default: yes on the emulator, no on gcp).
    pub create_topics: Option<bool>,
    /// Ack deadline of the subscriptions the harness creates.
    pub ack_deadline: Micros,
    /// How long the publisher may hold a message to batch it.
    pub publish_batch_delay: Micros,
    /// How long a failing publish is retried before it counts as failed.
    pub publish_retry_budget: Micros,
    /// The most publishes in flight (handed over, not yet answered); at the limit the pacer waits, so memory
    /// stays bounded and an overloaded target shows as lateness and a shortfall rather than as growth. The name
    /// is the Pub/Sub publisher's flow-control setting.
    pub max_outstanding_messages: u64,
    /// The most bytes in flight (data and attributes, as Pub/Sub counts a message's size); with large payloads
    /// this is the bound that holds memory down. The Pub/Sub publisher's flow-control setting of that name.
    pub max_outstanding_bytes: u64,
    pub backlog: Option<BacklogKind>,
    /// How often the autoscaler's view is read: 5 s, or 60 s for Cloud Monitoring, whose
    /// `num_undelivered_messages` has one point a minute (reading it more often reads the same point again).
    pub backlog_interval: Micros,
    pub prometheus_url: Option<String>,
    pub prometheus_query: Option<String>,
    /// How the Prometheus view authenticates: `adc` (a bearer token from Application Default Credentials, as
    /// Google Managed Prometheus' query frontend wants) or `none`; by default `adc` for a URL on
    /// `monitoring.googleapis.com`, else `none`.
    pub prometheus_auth: Option<PrometheusAuth>,
    /// Cloud Monitoring's API at another address (a private endpoint, or a local stand-in in tests).
    pub monitoring_endpoint: Option<String>,
}

/// Cloud Monitoring's sampling period for `pubsub.googleapis.com/subscription/num_undelivered_messages`: one
/// point a minute (Google Cloud metrics list, "Sampled every 60 seconds").
pub const CLOUD_MONITORING_INTERVAL: Micros = Micros::from_secs(60);

/// The default `[run] timer_slack`. Measured on a 2-core VM (`run` into the built-in emulator in its own process,
/// 1 KiB payloads, alternating runs of both builds): at 50,000 sends a second, 0 cost 22–24 µs of harness CPU a message, of which about half was the
/// pacer's sleeps and the runtime's wake-ups (0.9–1.0 context switches a message); 200 µs cost 10.7–11.0 µs
/// (0.27), its p99 lateness 0.23 ms; at 10,000 a second, 52–55 µs against 29 µs, p99 lateness 0.04 ms against
/// 0.24 ms.
pub const DEFAULT_TIMER_SLACK: Micros = Micros(200);
/// The largest `[run] timer_slack`: beyond it, grouping would reshape the workload rather than time it.
pub const MAX_TIMER_SLACK: Micros = Micros(100_000);

/// The default bound on publishes in flight. By Little's law the publishes in flight are the rate times the
/// publish round trip, so 5,000 carry 100,000 msg/s at a 50 ms round trip (a batch delay plus a GCP RPC); on
/// loopback (`benches/overload.sh`) 5,000 achieved more than 20,000 did, in ~100 MiB less memory.
pub const DEFAULT_MAX_OUTSTANDING_MESSAGES: u64 = 5_000;
/// The default bound on bytes in flight: 32 MiB of data and attributes (Google's Python publisher, for
/// comparison, defaults its flow control to 1,000 messages and 10 MB, though it ignores them unless asked).
pub const DEFAULT_MAX_OUTSTANDING_BYTES: u64 = 32 * 1024 * 1024;

impl Default for PubsubPlan {
    fn default() -> Self {
        PubsubPlan {
            project: None,
            endpoint: None,
            results_topic: "imagen-load-results".into(),
            results_subscription: "imagen-load-results-harness".into(),
            create_topics: None,
            ack_deadline: Micros::from_secs(60),
            publish_batch_delay: Micros::from_millis(5),
            publish_retry_budget: Micros::from_secs(30),
            max_outstanding_messages: DEFAULT_MAX_OUTSTANDING_MESSAGES,
            max_outstanding_bytes: DEFAULT_MAX_OUTSTANDING_BYTES,
            backlog: None,
            backlog_interval: Micros::from_secs(5),
            prometheus_url: None,
            prometheus_query: None,
            prometheus_auth: None,
            monitoring_endpoint: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StreamPlan {
    pub name: String,
    pub topic: String,
    /// The workers' subscription on the topic (created with `--create-topics`; its backlog is sampled).
    pub subscription: String,
    pub payload: Template,
    pub attributes: BTreeMap<String, Template>,
    pub phases: Vec<Phase>,
    /// The pipeline's worker Deployment (`[[stream]] deployment`), when the workload names it. Unnamed, the
    /// analysis assumes the stream's name, unless a watched cluster's ScaledObject (its `scaleTargetRef` and
    /// its trigger's subscription) says otherwise.
    pub deployment: Option<String>,
    /// The KEDA ScaledObject that scales it (`[[stream]] scaled_object`), when named.
    pub scaled_object: Option<String>,
}

impl StreamPlan {
    /// The Deployment's name: as named, else the stream's.
    pub fn deployment_name(&self) -> &str {
        self.deployment.as_deref().unwrap_or(&self.name)
    }

    /// The ScaledObject's name: as named, else the stream's.
    pub fn scaled_object_name(&self) -> &str {
        self.scaled_object.as_deref().unwrap_or(&self.name)
    }

    /// The stream's names across Pub/Sub and Kubernetes, for the run header.
    pub fn names(&self) -> crate::event::PipelineNames {
        crate::event::PipelineNames {
            stream: self.name.clone(),
            topic: self.topic.clone(),
            subscription: self.subscription.clone(),
            deployment: self.deployment.clone(),
            scaled_object: self.scaled_object.clone(),
        }
    }
}

/// One step of a stream's schedule, resolved and validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle {
        duration: Micros,
    },
    /// A rate-driven phase: constant, ramp, poisson, sine or diurnal.
    Rate {
        shape: RateShape,
        duration: Micros,
        arrivals: Arrivals,
    },
    Burst {
        count: u64,
        within: Micros,
        spread: Spread,
    },
    /// Offsets from the phase start, sorted, already scaled.
    Trace {
        file: PathBuf,
        offsets: Vec<Micros>,
        duration: Micros,
    },
    Repeat {
        times: u32,
        phases: Vec<Phase>,
    },
    Http(HttpStep),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RateShape {
    Constant(Rate),
    Ramp {
        from: Rate,
        to: Rate,
    },
    /// rate(t) = base + amplitude * sin(2π (t + shift) / period)
    Sine {
        base: Rate,
        amplitude: Rate,
        period: Micros,
        shift: Micros,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Deterministic: the k-th message at the instant the cumulative rate reaches k.
    #[default]
    Even,
    /// Random (seeded): a Poisson process with the phase's rate.
    Poisson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Spread {
    #[default]
    Even,
    Random,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_http_timeout")]
    pub timeout: Micros,
    /// What the simulator does for this call: `warm` scales the stream's deployment to at least one replica
    /// (as the team's `POST /warmup` does); `none` only records it.
    #[serde(default)]
    pub sim_effect: HttpSimEffect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HttpSimEffect {
    #[default]
    None,
    Warm,
}

fn default_method() -> String {
    "POST".into()
}
fn default_http_timeout() -> Micros {
    Micros::from_secs(10)
}

impl Phase {
    /// How long the phase occupies the stream's timeline.
    pub fn duration(&self) -> Micros {
        match self {
            Phase::Idle { duration }
            | Phase::Rate { duration, .. }
            | Phase::Trace { duration, .. } => *duration,
            Phase::Burst { within, .. } => *within,
            Phase::Repeat { times, phases } => {
                Micros(phases.iter().map(|p| p.duration().0).sum::<u64>() * *times as u64)
            }
            Phase::Http(_) => Micros::ZERO,
        }
    }

    /// Expected number of messages (exact for deterministic phases, the mean for Poisson ones).
    pub fn expected_messages(&self) -> f64 {
        match self {
            Phase::Idle { .. } | Phase::Http(_) => 0.0,
            Phase::Rate {
                shape, duration, ..
            } => shape.cumulative(duration.as_secs_f64(), duration.as_secs_f64()),
            Phase::Burst { count, .. } => *count as f64,
            Phase::Trace { offsets, .. } => offsets.len() as f64,
            Phase::Repeat { times, phases } => {
                *times as f64 * phases.iter().map(Phase::expected_messages).sum::<f64>()
            }
        }
    }
}

/// At least how near the root of Λ(t) = k a halving of the sine's bisection is decided by evaluating Λ rather
/// than by the root ([`RateShape::inverse_near`]): far wider than the Newton root's error (1e-10 s); the zone
/// widens where Λ's rounding could decide otherwise (a low rate, a trough of rate zero), so both decide alike
/// (tested against the plain bisection, troughs of rate zero included).
pub const SINE_EXACT_ZONE_S: f64 = 1e-6;

impl RateShape {
    /// Λ(t): messages expected from the phase start to `t` seconds.
    pub fn cumulative(&self, t: f64, total: f64) -> f64 {
        match self {
            RateShape::Constant(r) => r.per_sec * t,
            RateShape::Ramp { from, to } => {
                from.per_sec * t + (to.per_sec - from.per_sec) * t * t / (2.0 * total)
            }
            RateShape::Sine { .. } => {
                let (b, a, w, s, c0) = self.sine_terms();
                b * t + a / w * (c0 - (w * (t + s)).cos())
            }
        }
    }

    /// A sine's terms: base and amplitude (per second), angular frequency w = 2π/period (per second), shift
    /// (seconds), and cos(w·shift); zeros for other shapes. Λ(t) = base·t + amplitude/w·(cos(w·shift) −
    /// cos(w·(t + shift))).
    fn sine_terms(&self) -> (f64, f64, f64, f64, f64) {
        let RateShape::Sine {
            base,
            amplitude,
            period,
            shift,
        } = self
        else {
            return (0.0, 0.0, 0.0, 0.0, 0.0);
        };
        let w = std::f64::consts::TAU / period.as_secs_f64();
        let s = shift.as_secs_f64();
        (base.per_sec, amplitude.per_sec, w, s, (w * s).cos())
    }

    /// Λ⁻¹(k): the instant (seconds) at which the cumulative count reaches `k` (k ≤ Λ(total)).
    pub fn inverse(&self, k: f64, total: f64) -> f64 {
        self.inverse_near(k, total, 0.0)
    }

    /// [`RateShape::inverse`], found faster from `near` (seconds; the previous arrival's instant, say), and
    /// equal to it bit for bit. For a sine, Λ⁻¹ is the result of a bisection of `[0, total]` to 1e-7 s (about 40
    /// halvings, each a cosine); here a safeguarded Newton iteration from `near` finds the root first (a few
    /// steps), and the same bisection is then replayed with each halving decided by the root, evaluating Λ only
    /// within [`SINE_EXACT_ZONE_S`] of it, where rounding could decide otherwise: 5–8 cosines an arrival in all.
    pub fn inverse_near(&self, k: f64, total: f64, near: f64) -> f64 {
        match self {
            RateShape::Constant(r) => k / r.per_sec,
            RateShape::Ramp { from, to } => {
                let (a, slope) = (from.per_sec, (to.per_sec - from.per_sec) / total);
                if slope == 0.0 {
                    return k / a;
                }
                // Stable root of slope/2 t² + a t − k = 0.
                let disc = (a * a + 2.0 * slope * k).max(0.0);
                2.0 * k / (a + disc.sqrt())
            }
            RateShape::Sine { .. } => {
                // Λ and λ = Λ′, with Λ's operations exactly as `cumulative`'s (its constant cosine taken once).
                let (b, a, w, s, c0) = self.sine_terms();
                let big_lambda = |t: f64| b * t + a / w * (c0 - (w * (t + s)).cos());
                let lambda = |t: f64| b + a * (w * (t + s)).sin();
                // The root: Newton's steps, kept inside a bracket that each evaluation narrows (a step that
                // leaves it, or a rate of zero at a trough, halves the bracket instead).
                let (mut lo, mut hi) = (0.0_f64, total);
                let mut t = near.clamp(0.0, total);
                for _ in 0..200 {
                    let f = big_lambda(t) - k;
                    if f < 0.0 {
                        lo = t;
                    } else {
                        hi = t;
                    }
                    let d = lambda(t);
                    let mut next = t - f / d;
                    if !(d > 0.0 && next > lo && next < hi) {
                        next = 0.5 * (lo + hi);
                    }
                    let step = (next - t).abs();
                    t = next;
                    if step < 1e-10 || hi - lo < 1e-10 {
                        break;
                    }
                }
                let root = t;
                // Where Λ's rounding (a few ulps of its terms) could decide a halving against the root: that
                // much over the rate at the root, and at a trough of rate zero (where Λ − k grows as
                // a·w²·δ³/6) the cube root's width; never under SINE_EXACT_ZONE_S.
                let noise = 1e-14 * ((b * root).abs() + a / w + k.abs());
                let flat = (6.0 * noise / (a * w * w).max(f64::MIN_POSITIVE)).cbrt();
                let zone = SINE_EXACT_ZONE_S.max(4.0 * (noise / lambda(root).max(0.0)).min(flat));
                // Λ is monotone (amplitude ≤ base is validated), so bisection always converges.
                let (mut lo, mut hi) = (0.0_f64, total);
                for _ in 0..64 {
                    let mid = 0.5 * (lo + hi);
                    let below = if (mid - root).abs() > zone {
                        mid < root
                    } else {
                        big_lambda(mid) < k
                    };
                    if below {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                    if hi - lo < 1e-7 {
                        break;
                    }
                }
                hi
            }
        }
    }
}

/// A `--set KEY=VALUE` given on the command line, applied to the workload text before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub path: Vec<String>,
    pub value: String,
    pub text: String,
}

impl std::str::FromStr for Override {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` has no `=`; write KEY=VALUE"))?;
        let path: Vec<String> = k.trim().split('.').map(|p| p.trim().to_string()).collect();
        if path.iter().any(String::is_empty) {
            return Err(format!(
                "`{k}` is not a dotted key like `sim.keda.cooldown_period`"
            ));
        }
        Ok(Override {
            path,
            value: v.trim().to_string(),
            text: s.to_string(),
        })
    }
}

/// `[cluster]`: watch the Kubernetes cluster during a live run (pods, nodes, events, Deployments, ScaledObjects,
/// HPAs), and optionally insist it starts and ends at zero.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterPlan {
    /// kubeconfig context (default: the current one, or the in-cluster service account).
    pub context: Option<String>,
    /// The workers' namespace (default: the kubeconfig context's, as kubectl; else `imagen`).
    pub namespace: Option<String>,
    /// kubectl's `--kubeconfig`: read this file instead of `KUBECONFIG` or `~/.kube/config` (a flag only).
    #[serde(skip)]
    pub kubeconfig: Option<PathBuf>,
    /// Label selector of the worker pods and Deployments, e.g. `app.kubernetes.io/component=worker`.
    pub selector: Option<String>,
    /// Label selector of the GPU nodes, e.g. `cloud.google.com/gke-nodepool=gpu-pool`.
    pub node_selector: Option<String>,
    /// Before publishing, wait until the replicas (`replicas`), or the replicas and the GPU nodes (`nodes`), are
    /// at zero, so a cold-start test does not measure warm pods.
    pub require_zero: Option<crate::plan::workload::ZeroScope>,
    /// After the workload, keep watching until they are back at zero, so the scale-down is in the results.
    pub wait_for_zero: Option<crate::plan::workload::ZeroScope>,
    /// The longest either wait may take.
    #[serde(default = "default_zero_timeout")]
    pub zero_timeout: Micros,
}

fn default_zero_timeout() -> Micros {
    Micros::from_secs(15 * 60)
}

impl Default for ClusterPlan {
    fn default() -> Self {
        ClusterPlan {
            context: None,
            namespace: None,
            kubeconfig: None,
            selector: None,
            node_selector: None,
            require_zero: None,
            wait_for_zero: None,
            zero_timeout: default_zero_timeout(),
        }
    }
}
