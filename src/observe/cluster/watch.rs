//! Watching the cluster while a workload runs (or on its own: `imagen-load watch`): kube-runtime watchers on the
//! worker pods, the GPU nodes and the events of both, turned into the event vocabulary by the same translation as
//! `import` ([`super::import::object_events`], [`super::import::event_events`]).
//!
//! - A watch that drops is resumed from its last resource version; a `410 Gone` makes the watcher list again.
//!   Either way the same facts come again, and [`Seen`] lets each through once.
//! - Object timestamps are whole seconds. When the watch delivers a change within that second, the delivery time
//!   is the sharper estimate and is used; otherwise the server's.
//! - Facts from before the run's time zero are history: objects that already existed are `preexisting` at 0, and
//!   the rest is counted and left out (never a negative time).
//! - API errors back off and are logged; a `403` names the permission that is missing, once.

use super::import::{Seen, event_events, last_write, object_events, ts};
use crate::event::{Event, EventKind, Source};
pub use crate::plan::workload::ZeroScope;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Node, Pod};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tokio::sync::{mpsc, watch as state_watch};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "cannot find a Kubernetes configuration: {0}\n    fix: set KUBECONFIG or ~/.kube/config (as kubectl uses), pass --context, or run in a pod"
    )]
    Config(String),
    #[error("cannot reach the Kubernetes API: {0}")]
    Client(String),
    #[error(
        "the cluster watch needs permissions this identity does not have (SelfSubjectAccessReview said no):\n{}\n    fix: {RBAC_FIX}",
        missing.iter().map(|m| format!("      - {m}")).collect::<Vec<_>>().join("\n")
    )]
    Forbidden { missing: Vec<String> },
}

/// How to give the watchers what they need (the fix of a denied [`missing_permissions`]).
pub const RBAC_FIX: &str = "apply kind-config/rbac.yaml and run as its ServiceAccount `imagen-load`, or bind its Role and ClusterRole to your user (docs/gke.md, \"RBAC for the watchers\"); or run with --no-cluster";

/// One permission the watchers use: a verb on a resource of an API group (`""` for the core group), in a
/// namespace or cluster-wide (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub namespace: Option<String>,
}

impl std::fmt::Display for Permission {
    /// As `kubectl auth can-i` takes it: `list scaledobjects.keda.sh in namespace imagen`, `watch nodes
    /// (cluster-wide)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " (cluster-wide)"),
        }
    }
}

/// What [`start`]'s watchers do, as permissions: `list` and `watch` of pods, events, Deployments, HPAs and KEDA
/// ScaledObjects in `namespace`, and of nodes and events cluster-wide (node events are in no worker namespace).
pub fn permissions(namespace: &str) -> Vec<Permission> {
    let ns = Some(namespace.to_string());
    let resources: [(&str, &str, Option<String>); 7] = [
        ("", "pods", ns.clone()),
        ("", "events", ns.clone()),
        ("apps", "deployments", ns.clone()),
        ("autoscaling", "horizontalpodautoscalers", ns.clone()),
        ("keda.sh", "scaledobjects", ns),
        ("", "nodes", None),
        ("", "events", None),
    ];
    resources
        .into_iter()
        .flat_map(|(group, resource, namespace)| {
            ["list", "watch"].map(|verb| Permission {
                verb,
                group,
                resource,
                namespace: namespace.clone(),
            })
        })
        .collect()
}

/// The preflight of a cluster watch: [`denied`], as an error listing what is missing
/// ([`WatchError::Forbidden`]).
pub async fn check_permissions(client: &Client, namespace: &str) -> Result<(), WatchError> {
    let missing = denied(client, namespace).await;
    if missing.is_empty() {
        return Ok(());
    }
    Err(WatchError::Forbidden {
        missing: missing.iter().map(Permission::to_string).collect(),
    })
}

/// [`missing_permissions`] for a preflight: a review that could not be made is one warning, and nothing is
/// reported missing (the watchers report a `403` themselves).
pub async fn denied(client: &Client, namespace: &str) -> Vec<Permission> {
    missing_permissions(client, namespace)
        .await
        .unwrap_or_else(|e| {
            crate::logs::note(
                &format!(
                    "warning: cannot check the cluster watch's permissions (SelfSubjectAccessReview: {e}); going on"
                ),
                "WARNING",
            );
            Vec::new()
        })
}

/// Asks the API server whether this identity may do what the watchers do: one `SelfSubjectAccessReview` per
/// permission of [`permissions`], all at once (every authenticated identity may create them: the
/// `system:basic-user` role). Returns the permissions denied, in order (empty: all allowed). Errors: a review that
/// could not be made (an API server without the authorization API, a network failure); the caller goes on
/// without the check, since the watchers report a `403` themselves.
pub async fn missing_permissions(
    client: &Client,
    namespace: &str,
) -> Result<Vec<Permission>, kube::Error> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let api = Api::<SelfSubjectAccessReview>::all(client.clone());
    let asks = permissions(namespace).into_iter().map(|p| {
        let api = api.clone();
        async move {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(p.verb.to_string()),
                        group: Some(p.group.to_string()),
                        resource: Some(p.resource.to_string()),
                        namespace: p.namespace.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let answer = api.create(&Default::default(), &review).await?;
            let allowed = answer.status.is_some_and(|s| s.allowed);
            Ok::<_, kube::Error>((!allowed).then_some(p))
        }
    });
    let answers = futures::future::join_all(asks).await;
    let mut missing = Vec::new();
    for a in answers {
        if let Some(p) = a? {
            missing.push(p);
        }
    }
    Ok(missing)
}

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The workers' namespace (pods and their events).
    pub namespace: String,
    /// Label selector of the worker pods and their Deployments (all of the namespace when empty).
    pub selector: Option<String>,
    /// Label selector of the GPU nodes (all nodes when empty), e.g. `cloud.google.com/gke-nodepool=gpu-pool`.
    pub node_selector: Option<String>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            namespace: DEFAULT_NAMESPACE.into(),
            selector: None,
            node_selector: None,
        }
    }
}

/// A client as kubectl would pick it: the kubeconfig (`KUBECONFIG`, `~/.kube/config`) with `context`, else the
/// in-cluster service account.
///
/// `kubeconfig` is kubectl's `--kubeconfig`: that file instead of `KUBECONFIG` or `~/.kube/config`. Also returns
/// the namespace kubectl would default to without `-n`: the context's `namespace` when the context sets one, or
/// in a pod (no kubeconfig) the service account's; `None` when neither says (then the caller's default holds).
pub async fn client(
    context: Option<&str>,
    kubeconfig: Option<&std::path::Path>,
) -> Result<(Client, Option<String>), WatchError> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let failed = |e: String| WatchError::Config(e);
    let (config, namespace) = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| failed(format!("--kubeconfig {}: {e}", path.display())))?;
            let ns = context_namespace(&kc, context);
            let config = kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| failed(e.to_string()))?;
            (config, ns)
        }
        None => {
            let file = Kubeconfig::read().ok();
            let config = match context {
                Some(_) => kube::Config::from_kubeconfig(&options)
                    .await
                    .map_err(|e| failed(e.to_string()))?,
                None => kube::Config::infer()
                    .await
                    .map_err(|e| failed(e.to_string()))?,
            };
            let ns = match &file {
                Some(kc) => context_namespace(kc, context),
                // In a pod: the service account's namespace, which kube read with the in-cluster config.
                None => Some(config.default_namespace.clone()),
            };
            (config, ns)
        }
    };
    let client = Client::try_from(config).map_err(|e| WatchError::Client(e.to_string()))?;
    Ok((client, namespace))
}

/// The namespace a kubeconfig's context (the named one, else the current one) sets, if it sets one.
fn context_namespace(kc: &kube::config::Kubeconfig, context: Option<&str>) -> Option<String> {
    let name = context
        .map(str::to_string)
        .or_else(|| kc.current_context.clone())?;
    kc.contexts
        .iter()
        .find(|c| c.name == name)?
        .context
        .as_ref()?
        .namespace
        .clone()
}

/// The workers' namespace as kubectl would choose it: `-n` (or the workload's `[cluster] namespace`), else what
/// the kubeconfig context or the pod says, else `imagen`, the platform's namespace.
pub fn namespace_of(given: Option<&str>, from_kubeconfig: Option<&str>) -> String {
    given
        .or(from_kubeconfig)
        .unwrap_or(DEFAULT_NAMESPACE)
        .to_string()
}

/// The platform's namespace, used when neither a flag, the workload, nor the kubeconfig names one.
pub const DEFAULT_NAMESPACE: &str = "imagen";

/// One object as a watcher delivered it.
struct Delivered {
    object: Value,
    observed_unix_us: u64,
    deleted: bool,
}

/// What the watchers hand the translator.
enum Msg {
    /// A (re-)list begins: what it does not deliver is gone.
    Listing(Watched),
    Object(Watched, Delivered),
    /// A watcher's (re-)list is complete: the state of its kind of object is known.
    Listed(Watched),
    /// The API does not serve this kind (KEDA not installed): it will not be known, and that is not waited for.
    Absent(Watched),
}

/// The kinds of object watched for the cluster's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Watched {
    Pods,
    Nodes,
    Deployments,
    ScaledObjects,
    Hpas,
    Events,
    NodeEvents,
}

/// The cluster as the watchers last saw it: what `--require-zero` and `--wait-for-zero` wait on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterState {
    /// Kinds whose first list is complete (or which the API does not serve).
    pub listed: BTreeSet<Watched>,
    /// Deployment → (desired, ready) replicas.
    pub deployments: BTreeMap<String, (u32, u32)>,
    /// Pods not yet deleted (terminating ones still hold their GPU).
    pub pods: BTreeSet<String>,
    /// GPU nodes not yet deleted: nodes of `--node-selector`, else nodes with `nvidia.com/gpu` capacity or a
    /// `cloud.google.com/gke-accelerator` label.
    pub gpu_nodes: BTreeSet<String>,
}

impl ClusterState {
    /// Whether the deployments, pods and nodes are known.
    pub fn known(&self) -> bool {
        [Watched::Pods, Watched::Nodes, Watched::Deployments]
            .iter()
            .all(|w| self.listed.contains(w))
    }

    /// Drops the objects of kind `w` a complete list did not hold; true if any.
    fn forget_absent(&mut self, w: Watched, present: &HashSet<String>) -> bool {
        let before = self.deployments.len() + self.pods.len() + self.gpu_nodes.len();
        match w {
            Watched::Deployments => self.deployments.retain(|n, _| present.contains(n)),
            Watched::Pods => self.pods.retain(|n| present.contains(n)),
            Watched::Nodes => self.gpu_nodes.retain(|n| present.contains(n)),
            _ => {}
        }
        before != self.deployments.len() + self.pods.len() + self.gpu_nodes.len()
    }

    /// What is not at zero yet, in words (empty when at zero).
    pub fn above_zero(&self, scope: ZeroScope) -> Vec<String> {
        let mut left: Vec<String> = self
            .deployments
            .iter()
            .filter(|(_, (d, r))| *d > 0 || *r > 0)
            .map(|(name, (d, r))| format!("deployment {name} ({d} desired, {r} ready)"))
            .collect();
        if !self.pods.is_empty() {
            let names: Vec<&str> = self.pods.iter().take(5).map(String::as_str).collect();
            left.push(format!(
                "{} pod{} ({}{})",
                self.pods.len(),
                if self.pods.len() == 1 { "" } else { "s" },
                names.join(", "),
                if self.pods.len() > 5 { ", ..." } else { "" }
            ));
        }
        if scope == ZeroScope::Nodes && !self.gpu_nodes.is_empty() {
            let names: Vec<&str> = self.gpu_nodes.iter().take(5).map(String::as_str).collect();
            left.push(format!(
                "{} GPU node{} ({}{})",
                self.gpu_nodes.len(),
                if self.gpu_nodes.len() == 1 { "" } else { "s" },
                names.join(", "),
                if self.gpu_nodes.len() > 5 {
                    ", ..."
                } else {
                    ""
                }
            ));
        }
        left
    }
}

/// The running watchers; [`Watching::stop`] ends them and returns what they counted.
pub struct Watching {
    watchers: Vec<JoinHandle<()>>,
    translator: JoinHandle<Counts>,
    state: state_watch::Receiver<ClusterState>,
}

/// Why waiting for zero ended without it.
#[derive(Debug, thiserror::Error)]
pub enum ZeroError {
    #[error(
        "the cluster did not reach zero within {timeout}: still up: {left}\n    fix: wait for KEDA's cooldown and the autoscaler's scale-down (or scale the workers to 0 yourself), raise `zero_timeout` in [cluster] / --zero-timeout, or drop --require-zero to measure warm starts"
    )]
    NotZero { timeout: String, left: String },
    #[error(
        "the cluster's state is not known after {timeout}: {missing} could not be listed\n    fix: check the permissions (kind-config/rbac.yaml) and that the API server answers"
    )]
    Unknown { timeout: String, missing: String },
}

/// What the translation left out or could not read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub objects: u64,
    pub emitted: u64,
    /// Facts dated before the run's time zero (history, left out).
    pub before_start: u64,
    /// Event messages no parser knew (kept raw in the cluster, counted here).
    pub unparsed: u64,
}

/// Starts the watchers. Events go to `events` with times relative to `origin_unix_us` (the run's time zero).
pub fn start(
    client: Client,
    opts: &WatchOptions,
    origin_unix_us: u64,
    events: mpsc::UnboundedSender<Event>,
) -> Watching {
    let (tx, rx) = mpsc::unbounded_channel::<Msg>();
    let mut pods_cfg = watcher::Config::default();
    if let Some(s) = &opts.selector {
        pods_cfg = pods_cfg.labels(s);
    }
    let mut nodes_cfg = watcher::Config::default();
    if let Some(s) = &opts.node_selector {
        nodes_cfg = nodes_cfg.labels(s);
    }
    let ns = opts.namespace.clone();
    let scaled_objects = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "keda.sh",
        "v1alpha1",
        "ScaledObject",
    ));
    let watchers = vec![
        spawn_watcher(
            Api::<Pod>::namespaced(client.clone(), &ns),
            pods_cfg.clone(),
            Watched::Pods,
            format!("pods in namespace {ns}"),
            tx.clone(),
        ),
        spawn_watcher(
            Api::<Node>::all(client.clone()),
            nodes_cfg,
            Watched::Nodes,
            "nodes".into(),
            tx.clone(),
        ),
        spawn_watcher(
            Api::<Deployment>::namespaced(client.clone(), &ns),
            pods_cfg,
            Watched::Deployments,
            format!("deployments in namespace {ns}"),
            tx.clone(),
        ),
        spawn_watcher(
            Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &scaled_objects),
            watcher::Config::default(),
            Watched::ScaledObjects,
            format!("KEDA ScaledObjects in namespace {ns}"),
            tx.clone(),
        ),
        spawn_watcher(
            Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), &ns),
            watcher::Config::default(),
            Watched::Hpas,
            format!("HorizontalPodAutoscalers in namespace {ns}"),
            tx.clone(),
        ),
        spawn_watcher(
            Api::<KubeEvent>::namespaced(client.clone(), &ns),
            watcher::Config::default(),
            Watched::Events,
            format!("events in namespace {ns}"),
            tx.clone(),
        ),
        // Node and cluster-autoscaler events are not in the workers' namespace.
        spawn_watcher(
            Api::<KubeEvent>::all(client),
            watcher::Config::default().fields("involvedObject.kind=Node"),
            Watched::NodeEvents,
            "node events (all namespaces)".into(),
            tx,
        ),
    ];
    let (tr, state) = Translator::new(origin_unix_us, opts.node_selector.is_some(), events);
    let translator = tokio::spawn(translate(rx, tr));
    Watching {
        watchers,
        translator,
        state,
    }
}

impl Watching {
    /// The cluster as last seen.
    pub fn state(&self) -> ClusterState {
        self.state.borrow().clone()
    }

    /// Waits until what `scope` names is at zero, for at most `timeout`.
    pub async fn wait_for_zero(
        &self,
        scope: ZeroScope,
        timeout: std::time::Duration,
    ) -> Result<(), ZeroError> {
        let mut rx = self.state.clone();
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|s| s.known() && s.above_zero(scope).is_empty()),
        )
        .await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => {
                let s = self.state();
                let timeout = humantime::format_duration(timeout).to_string();
                if !s.known() {
                    let missing: Vec<String> =
                        [Watched::Pods, Watched::Nodes, Watched::Deployments]
                            .iter()
                            .filter(|w| !s.listed.contains(w))
                            .map(|w| format!("{w:?}").to_lowercase())
                            .collect();
                    return Err(ZeroError::Unknown {
                        timeout,
                        missing: missing.join(", "),
                    });
                }
                Err(ZeroError::NotZero {
                    timeout,
                    left: s.above_zero(scope).join("; "),
                })
            }
        }
    }

    /// Stops watching; what was delivered so far has been translated.
    pub async fn stop(self) -> Counts {
        for w in &self.watchers {
            w.abort();
        }
        for w in self.watchers {
            let _ = w.await;
        }
        self.translator.await.unwrap_or_default()
    }
}

fn spawn_watcher<K>(
    api: Api<K>,
    config: watcher::Config,
    kind: Watched,
    what: String,
    tx: mpsc::UnboundedSender<Msg>,
) -> JoinHandle<()>
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Send
        + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher(api, config).default_backoff().boxed();
        let mut forbidden_reported = false;
        while let Some(item) = stream.next().await {
            let (object, deleted) = match item {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, false),
                Ok(watcher::Event::Delete(o)) => (o, true),
                Ok(watcher::Event::Init) => {
                    if tx.send(Msg::Listing(kind)).is_err() {
                        break;
                    }
                    continue;
                }
                Ok(watcher::Event::InitDone) => {
                    if tx.send(Msg::Listed(kind)).is_err() {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    if status_of(&e) == Some(404) && kind == Watched::ScaledObjects {
                        // No keda.sh API: KEDA is not installed. Nothing to watch, and not worth a retry.
                        tracing::warn!(
                            "{what}: the API server does not serve keda.sh/v1alpha1 ScaledObjects (KEDA not installed?); their conditions will not be recorded"
                        );
                        let _ = tx.send(Msg::Absent(kind));
                        break;
                    }
                    report_error(&what, &e, &mut forbidden_reported);
                    continue;
                }
            };
            let Ok(object) = serde_json::to_value(&object) else {
                continue;
            };
            let seen = Delivered {
                object,
                observed_unix_us: crate::units::unix_now_us(),
                deleted,
            };
            if tx.send(Msg::Object(kind, seen)).is_err() {
                break;
            }
        }
    })
}

fn status_of(e: &watcher::Error) -> Option<u16> {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    }
}

/// Watch errors are retried with backoff by the watcher; a missing permission is named once.
fn report_error(what: &str, e: &watcher::Error, forbidden_reported: &mut bool) {
    if status_of(e) == Some(403) {
        if !*forbidden_reported {
            *forbidden_reported = true;
            tracing::error!(
                "not allowed to list and watch {what}: the harness needs get, list and watch on them \
                 (kind-config/rbac.yaml has a Role and ClusterRole that grant exactly that)"
            );
        }
    } else {
        tracing::warn!("watching {what}: {e} (retrying with backoff)");
    }
}

/// The whole second a server timestamp stands for, sharpened by the delivery time when it falls inside it.
fn sharpen(server_unix_us: u64, observed_unix_us: u64) -> u64 {
    if (server_unix_us..server_unix_us + 1_000_000).contains(&observed_unix_us) {
        observed_unix_us
    } else {
        server_unix_us
    }
}

/// How long a pod's scheduling time from its (whole-second) condition waits for the pod's `Scheduled` event,
/// whose eventTime has microseconds (µs).
const SCHEDULED_GRACE_US: u64 = 3_000_000;

/// Turns delivered objects into events: the watchers' translation, also what the simulator's `kube` and
/// `events-only` observation modes go through. It keeps no clock of its own: every call says when it is
/// (µs since the epoch), so it runs in real or simulated time alike.
pub struct Translator {
    origin_unix_us: u64,
    seen: Seen,
    counts: Counts,
    events: mpsc::UnboundedSender<Event>,
    /// Nodes seen without an allocatable GPU: for them the moment it turns allocatable is observed.
    gpu_pending: HashSet<String>,
    /// Scheduling times from pod conditions, held until the `Scheduled` event or the grace period (until when,
    /// µs since the epoch).
    scheduled_pending: HashMap<String, (u64, EventKind, u64)>,
    /// Unparsed events already counted (a re-list delivers them again).
    unparsed_seen: HashSet<String>,
    /// Every selected node is a GPU node (`--node-selector` names the GPU pool).
    nodes_selected: bool,
    state: ClusterState,
    state_changed: bool,
    /// Names delivered by each list in progress.
    listing: HashMap<Watched, HashSet<String>>,
    state_tx: state_watch::Sender<ClusterState>,
}

/// One object as a watcher delivered it: the object, when it was seen (µs since the epoch), and whether the
/// watch said it was deleted.
pub struct Delivery {
    pub object: Value,
    pub observed_unix_us: u64,
    pub deleted: bool,
}

impl Translator {
    /// A translator for a run whose time zero is `origin_unix_us`; events go to `events`. `nodes_selected`: every
    /// node delivered is a GPU node (`--node-selector` names the pool).
    pub fn new(
        origin_unix_us: u64,
        nodes_selected: bool,
        events: mpsc::UnboundedSender<Event>,
    ) -> (Translator, state_watch::Receiver<ClusterState>) {
        let (state_tx, state) = state_watch::channel(ClusterState::default());
        let tr = Translator {
            origin_unix_us,
            seen: Seen::default(),
            counts: Counts::default(),
            events,
            gpu_pending: Default::default(),
            scheduled_pending: Default::default(),
            unparsed_seen: Default::default(),
            nodes_selected,
            state: ClusterState::default(),
            state_changed: false,
            listing: HashMap::new(),
            state_tx,
        };
        (tr, state)
    }

    /// What was translated and left out so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// One delivered object.
    pub fn deliver(&mut self, d: Delivery) {
        let now = d.observed_unix_us;
        self.object(Delivered {
            object: d.object,
            observed_unix_us: d.observed_unix_us,
            deleted: d.deleted,
        });
        self.flush(now, false);
    }

    /// Time passes with nothing delivered: held facts whose grace is over go out.
    pub fn tick(&mut self, now_unix_us: u64) {
        self.flush(now_unix_us, false);
    }

    /// The end: everything held goes out.
    pub fn finish(&mut self) {
        self.flush(u64::MAX, true);
    }

    fn emit(&mut self, t: u64, kind: EventKind) {
        self.emit_keyed(t, t, kind)
    }

    /// Emits at `t`, deduplicated by the server's time `key_t`: a fact delivered again in a re-list long after
    /// its second is the same fact, though only the first delivery could sharpen its time.
    fn emit_keyed(&mut self, key_t: u64, t: u64, mut kind: EventKind) {
        if !self.seen.first(key_t, &kind) {
            return;
        }
        let at = if t < self.origin_unix_us {
            match &mut kind {
                EventKind::PodCreated { preexisting, .. }
                | EventKind::NodeCreated { preexisting, .. } => {
                    *preexisting = true;
                    0
                }
                // States (not facts) older than the run: as they stood at its start.
                EventKind::Replicas { .. }
                | EventKind::ScaleTarget { .. }
                | EventKind::ScalerActive { .. }
                | EventKind::ScalerCondition { .. } => 0,
                _ => {
                    self.counts.before_start += 1;
                    return;
                }
            }
        } else {
            t - self.origin_unix_us
        };
        self.counts.emitted += 1;
        let _ = self.events.send(Event::new(at, Source::Kube, kind));
    }

    /// Emits the held scheduling times whose grace is over at `now` (µs since the epoch), all of them with `all`.
    fn flush(&mut self, now: u64, all: bool) {
        let due: Vec<String> = self
            .scheduled_pending
            .iter()
            .filter(|(_, (_, _, until))| all || *until <= now)
            .map(|(pod, _)| pod.clone())
            .collect();
        for pod in due {
            if let Some((t, kind, _)) = self.scheduled_pending.remove(&pod) {
                self.emit(t, kind);
            }
        }
    }

    fn object(&mut self, d: Delivered) {
        let Delivered {
            object,
            observed_unix_us,
            deleted,
        } = d;
        self.counts.objects += 1;
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        match object["kind"].as_str() {
            Some("Deployment") => {
                let t =
                    last_write(&object).map_or(observed_unix_us, |t| sharpen(t, observed_unix_us));
                for (_, e) in object_events(&object, false) {
                    if let EventKind::Replicas { desired, ready, .. } = &e {
                        let now = if deleted {
                            (0, 0)
                        } else {
                            (*desired, ready.unwrap_or(0))
                        };
                        // Only a change: a Deployment is written for many reasons.
                        if self.state.deployments.insert(name.clone(), now) != Some(now) {
                            self.state_changed = true;
                            let e = EventKind::Replicas {
                                deployment: name.clone(),
                                desired: now.0,
                                ready: Some(now.1),
                            };
                            self.emit(t, e);
                        }
                    }
                }
                if deleted {
                    self.state_changed |= self.state.deployments.remove(&name).is_some();
                }
            }
            Some("ScaledObject" | "HorizontalPodAutoscaler") => {
                for (t, e) in object_events(&object, false) {
                    self.emit_keyed(t, sharpen(t, observed_unix_us), e);
                }
            }
            Some("Event") => {
                let (found, known) = event_events(&object);
                let id = object["metadata"]["uid"]
                    .as_str()
                    .or(object["metadata"]["name"].as_str())
                    .unwrap_or("")
                    .to_string();
                if !known && self.unparsed_seen.insert(id) {
                    self.counts.unparsed += 1;
                }
                for (t, e) in found {
                    if let EventKind::PodScheduled { pod, .. } = &e {
                        // The event's time is the sharper one: it replaces the condition's.
                        self.scheduled_pending.remove(pod);
                    }
                    self.emit(t, e);
                }
            }
            Some(kind @ ("Pod" | "Node")) => {
                let gpu_node = self.nodes_selected
                    || object
                        .pointer("/status/capacity/nvidia.com~1gpu")
                        .and_then(|g| g.as_str()?.parse::<u32>().ok())
                        .is_some_and(|g| g > 0)
                    || object
                        .pointer("/metadata/labels/cloud.google.com~1gke-accelerator")
                        .is_some();
                self.state_changed |= match (kind, deleted) {
                    ("Pod", false) => self.state.pods.insert(name.clone()),
                    ("Pod", true) => self.state.pods.remove(&name),
                    (_, false) if gpu_node => self.state.gpu_nodes.insert(name.clone()),
                    _ => self.state.gpu_nodes.remove(&name),
                };
                for (t, e) in object_events(&object, false) {
                    match e {
                        EventKind::PodCreated { .. } | EventKind::NodeCreated { .. } => {
                            self.emit(t, e)
                        }
                        EventKind::PodScheduled { ref pod, .. } => {
                            let t = sharpen(t, observed_unix_us);
                            if !self.scheduled_pending.contains_key(pod) {
                                let until = observed_unix_us + SCHEDULED_GRACE_US;
                                self.scheduled_pending.insert(pod.clone(), (t, e, until));
                            }
                        }
                        // Whole-second object stamps: the delivery time is sharper when it falls in that second.
                        _ => self.emit_keyed(t, sharpen(t, observed_unix_us), e),
                    }
                }
                if kind == "Node" {
                    let gpus: u32 = object
                        .pointer("/status/allocatable/nvidia.com~1gpu")
                        .and_then(|g| g.as_str()?.parse().ok())
                        .unwrap_or(0);
                    // A GPU node is Ready before its driver and device plugin are: the moment `nvidia.com/gpu`
                    // turns allocatable has no timestamp of its own, so it is when the watch saw the change. A
                    // node first seen already allocatable gives no time (unknown, not made up).
                    if gpus == 0 {
                        self.gpu_pending.insert(name.clone());
                    } else if self.gpu_pending.remove(&name) {
                        self.emit(
                            observed_unix_us,
                            EventKind::GpuAllocatable {
                                node: name.clone(),
                                gpus,
                            },
                        );
                    }
                }
                if deleted && ts(object.pointer("/metadata/deletionTimestamp")).is_none() {
                    let e = match kind {
                        "Pod" => EventKind::PodDeleted { pod: name },
                        _ => EventKind::NodeDeleted { node: name },
                    };
                    self.emit(observed_unix_us, e);
                }
            }
            _ => {}
        }
    }
}

async fn translate(mut rx: mpsc::UnboundedReceiver<Msg>, mut tr: Translator) -> Counts {
    loop {
        match tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv()).await {
            Ok(Some(Msg::Listing(w))) => drop(tr.listing.insert(w, HashSet::new())),
            Ok(Some(Msg::Object(w, d))) => {
                if let Some(names) = tr.listing.get_mut(&w)
                    && let Some(name) = d.object.pointer("/metadata/name").and_then(Value::as_str)
                {
                    names.insert(name.to_string());
                }
                tr.object(d)
            }
            Ok(Some(Msg::Listed(w))) => {
                // A re-list after a gap (`410 Gone`) leaves out what was deleted meanwhile: gone from the state,
                // though when it went is not known (no event is made up for it).
                if let Some(present) = tr.listing.remove(&w) {
                    tr.state_changed |= tr.state.forget_absent(w, &present);
                }
                tr.state_changed |= tr.state.listed.insert(w);
            }
            Ok(Some(Msg::Absent(w))) => {
                tr.state_changed |= tr.state.listed.insert(w);
            }
            Ok(None) => break,
            Err(_) => {}
        }
        tr.flush(crate::units::unix_now_us(), false);
        // Once a burst of deliveries is through, not per object (a list of 1,000 pods is one burst).
        if tr.state_changed && rx.is_empty() {
            tr.state_changed = false;
            tr.state_tx.send_replace(tr.state.clone());
        }
    }
    tr.flush(u64::MAX, true);
    tr.counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translator() -> (Translator, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        let origin = ts(Some(&json!("2026-11-28T10:00:00Z"))).unwrap();
        (Translator::new(origin, false, events).0, rx)
    }

    #[test]
    fn a_fact_sharpened_on_its_first_delivery_is_not_repeated_by_a_later_relist() {
        let (mut tr, mut rx) = translator();
        let pod = json!({"kind": "Pod", "metadata": {"name": "p", "creationTimestamp": "2026-11-28T10:00:01Z"},
            "status": {"conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": "2026-11-28T10:03:34Z"}]}});
        let second = ts(Some(&json!("2026-11-28T10:03:34Z"))).unwrap();
        for observed in [second + 300_000, second + 100_000_000] {
            tr.object(Delivered {
                object: pod.clone(),
                observed_unix_us: observed,
                deleted: false,
            });
        }
        let mut ready = Vec::new();
        while let Ok(e) = rx.try_recv() {
            if matches!(e.kind, EventKind::PodReady { .. }) {
                ready.push(e.t_us);
            }
        }
        // 10:03:34.3 after 10:00:00, once.
        assert_eq!(ready, vec![214_300_000]);
    }
}
