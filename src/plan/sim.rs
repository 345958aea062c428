//! The simulator's parameters: a `[sim]` table in the workload, optionally on top of a profile
//! (`profile = "gke-t4"`, a built-in, or a path to a TOML file with its own `[sim]` table), with per-pipeline
//! overrides under `[sim.pipeline.<stream>]`. Every default is documented in `docs/simulator.md`.

use crate::units::{Dist, Micros};

/// The node pool of the simulated GPU nodes: the `node.*` series of a simulated run are reported under it.
pub const NODE_POOL: &str = "gpu-pool";
use crate::plan::diagnostics::Diagnostics;
use crate::plan::diagnostics::Val;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Built-in profiles, also shipped as files under `fixtures/profiles/`.
pub const BUILTIN_PROFILES: [(&str, &str); 2] = [
    (
        "gke-t4",
        include_str!("../../fixtures/profiles/gke-t4.toml"),
    ),
    (
        "kind-local",
        include_str!("../../fixtures/profiles/kind-local.toml"),
    ),
];

#[derive(Debug, Clone, Serialize)]
pub struct SimConfig {
    /// Where the parameters came from (`built-in defaults`, a profile name or path).
    pub profile: String,
    pub pubsub: PubsubModel,
    pub metrics: MetricsModel,
    pub hpa: HpaModel,
    pub autoscaler: AutoscalerModel,
    /// One per stream, in stream order.
    pub pipelines: Vec<PipelineModel>,
    /// What the run's log shows of the simulated stack: everything (`sim`), or only what one real producer
    /// would report of it.
    pub observe: Observe,
}

/// Which real producers the simulator speaks as (`[sim] observe`). The simulated stack is the same; only what
/// reaches the log changes, through the same translation the real producers' output goes through:
/// - `sim`: every event, exact to the microsecond, with the simulator's own names;
/// - `kube`: what the Kubernetes watchers would record of a real cluster (Pod, Node, Deployment, ScaledObject
///   and Event objects with cluster names, whole-second stamps, watch delivery delays, aggregated events);
/// - `worker`: what the reference workers report on the results topic (start, model load, stop, completions);
/// - `kube+worker`: both, so one pod is described twice;
/// - `events-only`: the Events alone, as `kubectl get events -o json` leaves them after a scale-down.
///
/// In every mode the harness's own events (scheduled, published, lost) and the workers' completions are
/// recorded, since the harness sees them itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Observe {
    #[default]
    #[serde(rename = "sim")]
    Sim,
    #[serde(rename = "kube")]
    Kube,
    #[serde(rename = "worker")]
    Worker,
    #[serde(rename = "kube+worker")]
    KubeWorker,
    #[serde(rename = "events-only")]
    EventsOnly,
}

impl Observe {
    /// Every mode, in the order the docs list them.
    pub const ALL: [Observe; 5] = [
        Observe::Sim,
        Observe::Kube,
        Observe::Worker,
        Observe::KubeWorker,
        Observe::EventsOnly,
    ];

    /// Whether the log shows the cluster's nodes and their GPUs (and so its GPU cost): Events alone name nodes
    /// but not their GPUs.
    pub fn sees_cluster(self) -> bool {
        matches!(self, Observe::Sim | Observe::Kube | Observe::KubeWorker)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Observe::Sim => "sim",
            Observe::Kube => "kube",
            Observe::Worker => "worker",
            Observe::KubeWorker => "kube+worker",
            Observe::EventsOnly => "events-only",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineModel {
    pub name: String,
    pub keda: KedaModel,
    pub kubelet: KubeletModel,
    pub worker: WorkerModel,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PubsubModel {
    /// Intended send → message stored by Pub/Sub.
    pub publish_latency: Dist,
    /// Stored → handed to a free worker's streaming pull.
    pub delivery_latency: Dist,
    /// An unacked message whose worker disappeared is redelivered this long after its delivery.
    pub ack_deadline: Micros,
}

impl Default for PubsubModel {
    fn default() -> Self {
        PubsubModel {
            publish_latency: Dist::Uniform {
                min: Micros::from_millis(10),
                max: Micros::from_millis(40),
            },
            delivery_latency: Dist::Uniform {
                min: Micros::from_millis(5),
                max: Micros::from_millis(50),
            },
            ack_deadline: Micros::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricSource {
    /// `num_undelivered_messages` through Cloud Monitoring (KEDA `gcp-pubsub`, or `prometheus` on Managed
    /// Prometheus): sampled every 60 s, visible 30–120 s after the sample.
    GcpMonitoring,
    /// KEDA `metrics-api` polling the backlog directly: no sampling, no lag.
    MetricsApi,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsModel {
    pub source: MetricSource,
    /// Sampling period of the backlog metric; `0s` reads the live value.
    pub sample_period: Option<Micros>,
    /// How long after a sample it becomes visible to KEDA and the HPA (drawn per sample).
    pub delay: Option<Dist>,
}

impl Default for MetricsModel {
    fn default() -> Self {
        MetricsModel {
            source: MetricSource::GcpMonitoring,
            sample_period: None,
            delay: None,
        }
    }
}

impl MetricsModel {
    pub fn sample_period(&self) -> Micros {
        self.sample_period.unwrap_or(match self.source {
            MetricSource::GcpMonitoring => Micros::from_secs(60),
            MetricSource::MetricsApi => Micros::ZERO,
        })
    }
    pub fn delay(&self) -> Dist {
        self.delay.clone().unwrap_or(match self.source {
            MetricSource::GcpMonitoring => Dist::Uniform {
                min: Micros::from_secs(30),
                max: Micros::from_secs(120),
            },
            MetricSource::MetricsApi => Dist::Fixed(Micros::ZERO),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KedaModel {
    pub polling_interval: Micros,
    pub cooldown_period: Micros,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// KEDA `idleReplicaCount`: replicas while inactive (KEDA supports only 0, and requires it below
    /// `min_replicas`); unset means `min_replicas`. With it, an idle pipeline is at 0 and each activation goes
    /// 0 → `min_replicas`: a cold start per activation even with `min_replicas` ≥ 1.
    pub idle_replicas: Option<u32>,
    /// KEDA's `autoscaling.keda.sh/paused-replicas` annotation (or `paused: "true"`, at the replicas it had):
    /// the Deployment is held at this count from the start, and neither KEDA nor the HPA scales it.
    pub paused_replicas: Option<u32>,
    /// Target backlog per replica (the trigger's `value`).
    pub target_value: f64,
    /// Backlog above which KEDA activates the deployment from idle (the trigger's `activationValue`).
    pub activation_value: f64,
}

impl Default for KedaModel {
    fn default() -> Self {
        KedaModel {
            polling_interval: Micros::from_secs(30),
            cooldown_period: Micros::from_secs(300),
            min_replicas: 0,
            max_replicas: 4,
            idle_replicas: None,
            paused_replicas: None,
            target_value: 10.0,
            activation_value: 0.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HpaModel {
    pub sync_period: Micros,
    pub scale_down_stabilization: Micros,
    /// Changes smaller than this ratio are ignored (Kubernetes default 0.1).
    pub tolerance: f64,
}

impl Default for HpaModel {
    fn default() -> Self {
        HpaModel {
            sync_period: Micros::from_secs(15),
            scale_down_stabilization: Micros::from_secs(300),
            tolerance: 0.1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoscalerModel {
    pub scan_interval: Micros,
    /// Scale-up decided → Node object registered (VM boot, kubelet start).
    pub node_provision: Dist,
    /// Registered → Ready.
    pub node_ready: Dist,
    /// Ready → `nvidia.com/gpu` allocatable (driver install and device plugin).
    pub gpu_driver: Dist,
    pub scale_down_unneeded: Micros,
    pub scale_down_delay_after_add: Micros,
    pub max_nodes: u32,
    pub gpus_per_node: u32,
    pub gpu_type: String,
    pub price_per_gpu_hour_usd: f64,
}

impl Default for AutoscalerModel {
    fn default() -> Self {
        AutoscalerModel {
            scan_interval: Micros::from_secs(10),
            node_provision: Dist::Uniform {
                min: Micros::from_secs(45),
                max: Micros::from_secs(85),
            },
            node_ready: Dist::Fixed(Micros::from_secs(5)),
            gpu_driver: Dist::Uniform {
                min: Micros::from_secs(10),
                max: Micros::from_secs(30),
            },
            scale_down_unneeded: Micros::from_secs(600),
            scale_down_delay_after_add: Micros::from_secs(600),
            max_nodes: 16,
            gpus_per_node: 1,
            gpu_type: "nvidia-tesla-t4".into(),
            price_per_gpu_hour_usd: 0.48,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubeletModel {
    /// Image pull on a node that does not have the image yet.
    pub image_pull: Dist,
    pub container_start: Dist,
    pub image_bytes: u64,
}

impl Default for KubeletModel {
    fn default() -> Self {
        KubeletModel {
            image_pull: Dist::Uniform {
                min: Micros::from_secs(30),
                max: Micros::from_secs(60),
            },
            container_start: Dist::Fixed(Micros::from_secs(2)),
            image_bytes: 6_500_000_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerModel {
    pub model_load: Dist,
    /// Model weights on a warm PVC/disk cache: loads take `cached_model_load` instead.
    pub model_cache: bool,
    pub cached_model_load: Dist,
    /// Model loaded → pod Ready (readiness probe period).
    pub readiness_delay: Dist,
    pub processing: Dist,
    /// Messages one pod processes at once.
    pub concurrency: u32,
    /// Messages one pod leases at once (the Pub/Sub client's flow control, `maxOutstandingMessages`); those
    /// beyond `concurrency` wait in the worker until a slot frees. Unset: `concurrency` (nothing waits).
    pub max_outstanding_messages: Option<u32>,
    /// A deleted pod finishes its current messages if they end within this grace period.
    pub termination_grace: Micros,
    /// Chance that the worker process dies while processing a message (GPU OOM, driver fault): its messages are
    /// redelivered after the ack deadline and the container restarts (back-off, start, model load).
    pub crash_probability: f64,
    /// The client library extends message leases while processing (the official clients do). Without it, a
    /// message processed for longer than the ack deadline is delivered again and completed twice.
    pub lease_extension: bool,
}

impl Default for WorkerModel {
    fn default() -> Self {
        WorkerModel {
            model_load: Dist::Uniform {
                min: Micros::from_secs(30),
                max: Micros::from_secs(60),
            },
            model_cache: false,
            cached_model_load: Dist::Uniform {
                min: Micros::from_secs(8),
                max: Micros::from_secs(15),
            },
            readiness_delay: Dist::Fixed(Micros::ZERO),
            processing: Dist::LogNormal {
                median: Micros::from_secs(6),
                sigma: 0.3,
            },
            concurrency: 1,
            max_outstanding_messages: None,
            termination_grace: Micros::from_secs(30),
            crash_probability: 0.0,
            lease_extension: true,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct SimRaw {
    profile: Option<String>,
    observe: Observe,
    pubsub: PubsubModel,
    metrics: MetricsModel,
    keda: KedaModel,
    hpa: HpaModel,
    autoscaler: AutoscalerModel,
    kubelet: KubeletModel,
    worker: WorkerModel,
    pipeline: BTreeMap<String, PipelineRaw>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, default)]
struct PipelineRaw {
    keda: Option<toml::Table>,
    kubelet: Option<toml::Table>,
    worker: Option<toml::Table>,
}

/// Resolves `[sim]` (with its profile) into a validated config; problems go to `diag`.
pub(crate) fn resolve(
    diag: &mut Diagnostics<'_>,
    sim: Option<&Val<'_>>,
    streams: &[String],
    base_dir: &Path,
) -> Option<SimConfig> {
    let empty = Spanned::new(0..0, DeValue::Table(DeTable::default()));
    let sim = sim.unwrap_or(&empty);
    // The workload's own `[sim]` is checked alone first, so its problems point at its own lines.
    let _: SimRaw = crate::plan::diagnostics::de(diag, sim, "sim")?;
    let own: toml::Value = crate::plan::diagnostics::de(diag, sim, "sim")?;
    let mut label = "built-in defaults".to_string();
    let mut merged = own.clone();
    if let Some(p) = sim.get_ref().get("profile") {
        let name = p.get_ref().as_str().unwrap_or_default().to_string();
        match load_profile(&name, base_dir) {
            Ok((text, origin)) => {
                let mut pdiag = Diagnostics::new(Path::new(&origin), &text);
                match DeTable::parse(&text) {
                    Ok(ptable) => match ptable.get_ref().get("sim") {
                        Some(psim) => {
                            // The profile is checked on its own too, with its own file and lines.
                            let _: Option<SimRaw> =
                                crate::plan::diagnostics::de(&mut pdiag, psim, "sim");
                            if let Some(base) =
                                crate::plan::diagnostics::de::<toml::Value>(&mut pdiag, psim, "sim")
                            {
                                merged = overlay(base, own.clone());
                            }
                        }
                        None => pdiag.push(
                            Some(0..0),
                            "sim",
                            "the profile has no `[sim]` table",
                            Some("put the parameters under `[sim]`".into()),
                        ),
                    },
                    Err(e) => pdiag.push(
                        e.span(),
                        "",
                        format!("not valid TOML: {}", e.message().trim()),
                        None,
                    ),
                }
                diag.problems.append(&mut pdiag.problems);
                label = origin;
            }
            Err(e) => {
                let names: Vec<&str> = BUILTIN_PROFILES.iter().map(|(n, _)| *n).collect();
                diag.push(
                    Some(p.span()),
                    "sim.profile",
                    e,
                    Some(format!(
                        "use a built-in profile ({}) or a path to a .toml file",
                        names.join(", ")
                    )),
                );
            }
        }
    }
    let raw: SimRaw = match merged.try_into() {
        Ok(r) => r,
        Err(e) => {
            let e: toml::de::Error = e;
            diag.push(
                Some(sim.span()),
                "sim",
                format!(
                    "the profile and `[sim]` do not combine: {}",
                    e.message().trim()
                ),
                None,
            );
            return None;
        }
    };
    let mut ok = validate_global(diag, sim, &raw);
    // The workload's own pipeline entries must name its streams; a profile's may cover pipelines this workload
    // does not have (a calibrated profile is shared by workloads), and those are simply not used.
    let own_pipelines: Vec<String> = sim
        .get_ref()
        .get("pipeline")
        .and_then(|p| p.get_ref().as_table())
        .map(|t| t.keys().map(|k| k.get_ref().to_string()).collect())
        .unwrap_or_default();
    for name in raw.pipeline.keys().filter(|n| own_pipelines.contains(n)) {
        if !streams.contains(name) {
            let span = sim
                .get_ref()
                .get("pipeline")
                .and_then(|p| p.get_ref().get(name.as_str()))
                .map(|v| v.span());
            let fix =
                match crate::plan::diagnostics::nearest(name, streams.iter().map(String::as_str)) {
                    Some(n) => format!("did you mean `{n}`? pipelines are named after streams"),
                    None => format!("pipelines are named after streams: {}", streams.join(", ")),
                };
            diag.push(
                span,
                format!("sim.pipeline.{name}"),
                format!("no stream is named `{name}`"),
                Some(fix),
            );
            ok = false;
        }
    }
    let mut pipelines = Vec::new();
    for s in streams {
        let over = raw.pipeline.get(s).cloned().unwrap_or_default();
        let key = format!("sim.pipeline.{s}");
        let span = sim
            .get_ref()
            .get("pipeline")
            .and_then(|p| p.get_ref().get(s.as_str()))
            .map(|v| v.span());
        let keda = merge_section(
            diag,
            &raw.keda,
            over.keda,
            &format!("{key}.keda"),
            span.clone(),
        );
        let kubelet = merge_section(
            diag,
            &raw.kubelet,
            over.kubelet,
            &format!("{key}.kubelet"),
            span.clone(),
        );
        let worker = merge_section(
            diag,
            &raw.worker,
            over.worker,
            &format!("{key}.worker"),
            span.clone(),
        );
        match (keda, kubelet, worker) {
            (Some(keda), Some(kubelet), Some(worker)) => {
                let p = PipelineModel {
                    name: s.clone(),
                    keda,
                    kubelet,
                    worker,
                };
                ok &= validate_pipeline(diag, &p, &key, span.or(Some(sim.span())));
                pipelines.push(p);
            }
            _ => ok = false,
        }
    }
    ok.then_some(SimConfig {
        profile: label,
        pubsub: raw.pubsub,
        metrics: raw.metrics,
        hpa: raw.hpa,
        autoscaler: raw.autoscaler,
        pipelines,
        observe: raw.observe,
    })
}

fn load_profile(name: &str, base_dir: &Path) -> Result<(String, String), String> {
    if let Some((n, text)) = BUILTIN_PROFILES.iter().find(|(n, _)| *n == name) {
        return Ok((text.to_string(), format!("profile {n} (built-in)")));
    }
    let candidates = [
        base_dir.join(name),
        Path::new("fixtures/profiles").join(format!("{name}.toml")),
    ];
    for c in &candidates {
        if c.is_file() {
            let text = crate::limits::read_text(c, crate::limits::MAX_TEXT_FILE_BYTES)
                .map_err(|e| format!("cannot read profile `{}`: {e}", c.display()))?;
            return Ok((text, c.display().to_string()));
        }
    }
    Err(format!(
        "no profile `{name}`: not built in, and not a file at {}",
        candidates[0].display()
    ))
}

/// `top` wins over `base`, table by table.
fn overlay(base: toml::Value, top: toml::Value) -> toml::Value {
    match (base, top) {
        (toml::Value::Table(mut b), toml::Value::Table(t)) => {
            for (k, v) in t {
                let merged = match b.remove(&k) {
                    Some(old) => overlay(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            toml::Value::Table(b)
        }
        (_, t) => t,
    }
}

/// A pipeline's section: the global one with the pipeline's keys laid over it.
fn merge_section<T: Serialize + serde::de::DeserializeOwned>(
    diag: &mut Diagnostics<'_>,
    global: &T,
    over: Option<toml::Table>,
    key: &str,
    span: Option<std::ops::Range<usize>>,
) -> Option<T> {
    let Some(over) = over else {
        return toml::Value::try_from(global)
            .ok()
            .and_then(|v| v.try_into().ok());
    };
    let mut base = toml::Table::try_from(global).expect("models serialize to tables");
    for (k, v) in over {
        base.insert(k, v);
    }
    match toml::Value::Table(base).try_into() {
        Ok(t) => Some(t),
        Err(e) => {
            let e: toml::de::Error = e;
            diag.push(
                span,
                key,
                e.message().trim().to_string(),
                Some("see docs/simulator.md for the keys of this section".into()),
            );
            None
        }
    }
}

fn validate_global(diag: &mut Diagnostics<'_>, sim: &Val<'_>, raw: &SimRaw) -> bool {
    let mut ok = true;
    let span = |path: &[&str]| {
        let mut v = sim;
        for p in path {
            match v.get_ref().get(*p) {
                Some(x) => v = x,
                None => return Some(v.span()),
            }
        }
        Some(v.span())
    };
    let mut check = |cond: bool, path: &[&str], msg: &str, fix: &str| {
        if !cond {
            diag.push(
                span(path),
                format!("sim.{}", path.join(".")),
                msg,
                Some(fix.into()),
            );
            ok = false;
        }
    };
    let a = &raw.autoscaler;
    check(
        a.scan_interval.0 > 0,
        &["autoscaler", "scan_interval"],
        "must be above zero",
        "the cluster autoscaler default is `10s`",
    );
    check(
        a.gpus_per_node >= 1,
        &["autoscaler", "gpus_per_node"],
        "a GPU node has at least one GPU",
        "write e.g. `gpus_per_node = 1`",
    );
    check(
        a.max_nodes >= 1,
        &["autoscaler", "max_nodes"],
        "the pool needs room for at least one node",
        "write e.g. `max_nodes = 8`",
    );
    check(
        a.price_per_gpu_hour_usd.is_finite() && a.price_per_gpu_hour_usd >= 0.0,
        &["autoscaler", "price_per_gpu_hour_usd"],
        "must be zero or more",
        "e.g. `0.48` for an on-demand T4",
    );
    check(
        raw.hpa.sync_period.0 > 0,
        &["hpa", "sync_period"],
        "must be above zero",
        "the Kubernetes default is `15s`",
    );
    check(
        (0.0..1.0).contains(&raw.hpa.tolerance),
        &["hpa", "tolerance"],
        "must be in [0, 1)",
        "the Kubernetes default is `0.1`",
    );
    ok
}

fn validate_pipeline(
    diag: &mut Diagnostics<'_>,
    p: &PipelineModel,
    key: &str,
    span: Option<std::ops::Range<usize>>,
) -> bool {
    let k = &p.keda;
    let mut problems = Vec::new();
    if k.polling_interval.0 == 0 {
        problems.push((
            "keda.polling_interval",
            "must be above zero".to_string(),
            "KEDA's default is `30s`",
        ));
    }
    if k.max_replicas == 0 || k.max_replicas < k.min_replicas {
        problems.push((
            "keda.max_replicas",
            format!(
                "max_replicas {} must be at least 1 and at least min_replicas {}",
                k.max_replicas, k.min_replicas
            ),
            "raise max_replicas",
        ));
    }
    // KEDA's own bounds check (`checkReplicaCountBoundsAreValid`, keda.sh/v1alpha1 scaledobject_types.go):
    // `IdleReplicaCount=%d must be less than MinReplicaCount=%d`; and its docs: the only supported value is 0.
    if let Some(idle) = k.idle_replicas
        && (idle >= k.min_replicas || idle != 0)
    {
        problems.push((
            "keda.idle_replicas",
            format!(
                "idle_replicas {idle} must be 0 and less than min_replicas {}",
                k.min_replicas
            ),
            "KEDA supports only idleReplicaCount = 0, below minReplicaCount (leave it unset to scale to min_replicas)",
        ));
    }
    if !(k.target_value.is_finite() && k.target_value > 0.0) {
        problems.push((
            "keda.target_value",
            format!("must be above zero, got {}", k.target_value),
            "e.g. `target_value = 10` messages per replica",
        ));
    }
    if !(k.activation_value.is_finite() && k.activation_value >= 0.0) {
        problems.push((
            "keda.activation_value",
            "must be zero or more".to_string(),
            "KEDA's default is 0",
        ));
    }
    if !(0.0..=1.0).contains(&p.worker.crash_probability) {
        problems.push((
            "worker.crash_probability",
            format!(
                "must be between 0 and 1, got {}",
                p.worker.crash_probability
            ),
            "e.g. `crash_probability = 0.01` for one crash in a hundred messages",
        ));
    }
    if p.worker
        .max_outstanding_messages
        .is_some_and(|m| m < p.worker.concurrency)
    {
        problems.push((
            "worker.max_outstanding_messages",
            format!(
                "a worker leases at least the {} messages it processes at once",
                p.worker.concurrency
            ),
            "raise max_outstanding_messages to at least `concurrency`, or remove it",
        ));
    }
    if p.worker.concurrency == 0 {
        problems.push((
            "worker.concurrency",
            "a worker processes at least one message at a time".to_string(),
            "write `concurrency = 1`",
        ));
    }
    let ok = problems.is_empty();
    for (k, msg, fix) in problems {
        diag.push(span.clone(), format!("{key}.{k}"), msg, Some(fix.into()));
    }
    ok
}
