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

use super::import::{Seen, event_events, object_events, ts};
use crate::event::{Event, EventKind, Source};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Node, Pod};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::Value;
use std::time::SystemTime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "cannot find a Kubernetes configuration: {0}\n    fix: set KUBECONFIG or ~/.kube/config (as kubectl uses), pass --context, or run in a pod"
    )]
    Config(String),
    #[error("cannot reach the Kubernetes API: {0}")]
    Client(String),
}

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The workers' namespace (pods and their events).
    pub namespace: String,
    /// Label selector of the worker pods (all pods of the namespace when empty).
    pub selector: Option<String>,
    /// Label selector of the GPU nodes (all nodes when empty), e.g. `cloud.google.com/gke-nodepool=gpu-pool`.
    pub node_selector: Option<String>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            namespace: "imagen".into(),
            selector: None,
            node_selector: None,
        }
    }
}

/// A client as kubectl would pick it: the kubeconfig (`KUBECONFIG`, `~/.kube/config`) with `context`, else the
/// in-cluster service account.
pub async fn client(context: Option<&str>) -> Result<Client, WatchError> {
    let config = match context {
        Some(c) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
            context: Some(c.to_string()),
            ..Default::default()
        })
        .await
        .map_err(|e| WatchError::Config(e.to_string()))?,
        None => kube::Config::infer()
            .await
            .map_err(|e| WatchError::Config(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| WatchError::Client(e.to_string()))
}

/// One object as a watcher delivered it.
struct Delivered {
    object: Value,
    observed_unix_us: u64,
    deleted: bool,
}

/// The running watchers; [`Watching::stop`] ends them and returns what they counted.
pub struct Watching {
    watchers: Vec<JoinHandle<()>>,
    translator: JoinHandle<Counts>,
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

fn now_unix_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

/// Starts the watchers. Events go to `events` with times relative to `origin_unix_us` (the run's time zero).
pub fn start(
    client: Client,
    opts: &WatchOptions,
    origin_unix_us: u64,
    events: mpsc::UnboundedSender<Event>,
) -> Watching {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut pods_cfg = watcher::Config::default();
    if let Some(s) = &opts.selector {
        pods_cfg = pods_cfg.labels(s);
    }
    let mut nodes_cfg = watcher::Config::default();
    if let Some(s) = &opts.node_selector {
        nodes_cfg = nodes_cfg.labels(s);
    }
    let ns = opts.namespace.clone();
    let watchers = vec![
        spawn_watcher(
            Api::<Pod>::namespaced(client.clone(), &ns),
            pods_cfg,
            format!("pods in namespace {ns}"),
            tx.clone(),
        ),
        spawn_watcher(
            Api::<Node>::all(client.clone()),
            nodes_cfg,
            "nodes".into(),
            tx.clone(),
        ),
        spawn_watcher(
            Api::<KubeEvent>::namespaced(client.clone(), &ns),
            watcher::Config::default(),
            format!("events in namespace {ns}"),
            tx.clone(),
        ),
        // Node and cluster-autoscaler events are not in the workers' namespace.
        spawn_watcher(
            Api::<KubeEvent>::all(client),
            watcher::Config::default().fields("involvedObject.kind=Node"),
            "node events (all namespaces)".into(),
            tx,
        ),
    ];
    let translator = tokio::spawn(translate(rx, origin_unix_us, events));
    Watching {
        watchers,
        translator,
    }
}

impl Watching {
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
    what: String,
    tx: mpsc::UnboundedSender<Delivered>,
) -> JoinHandle<()>
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Send
        + 'static,
    K::DynamicType: Default,
{
    tokio::spawn(async move {
        let mut stream = watcher(api, config).default_backoff().boxed();
        let mut forbidden_reported = false;
        while let Some(item) = stream.next().await {
            let (object, deleted) = match item {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, false),
                Ok(watcher::Event::Delete(o)) => (o, true),
                Ok(watcher::Event::Init | watcher::Event::InitDone) => continue,
                Err(e) => {
                    report_error(&what, &e, &mut forbidden_reported);
                    continue;
                }
            };
            let Ok(object) = serde_json::to_value(&object) else {
                continue;
            };
            let seen = Delivered {
                object,
                observed_unix_us: now_unix_us(),
                deleted,
            };
            if tx.send(seen).is_err() {
                break;
            }
        }
    })
}

/// Watch errors are retried with backoff by the watcher; a missing permission is named once.
fn report_error(what: &str, e: &watcher::Error, forbidden_reported: &mut bool) {
    let status = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    };
    if status == Some(403) {
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
/// whose eventTime has microseconds.
const SCHEDULED_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

struct Translator {
    origin_unix_us: u64,
    seen: Seen,
    counts: Counts,
    events: mpsc::UnboundedSender<Event>,
    /// Nodes seen without an allocatable GPU: for them the moment it turns allocatable is observed.
    gpu_pending: std::collections::HashSet<String>,
    /// Scheduling times from pod conditions, held until the `Scheduled` event or the grace period.
    scheduled_pending: std::collections::HashMap<String, (u64, EventKind, tokio::time::Instant)>,
    /// Unparsed events already counted (a re-list delivers them again).
    unparsed_seen: std::collections::HashSet<String>,
}

impl Translator {
    fn emit(&mut self, t: u64, mut kind: EventKind) {
        if !self.seen.first(t, &kind) {
            return;
        }
        let at = if t < self.origin_unix_us {
            match &mut kind {
                EventKind::PodCreated { preexisting, .. }
                | EventKind::NodeCreated { preexisting, .. } => {
                    *preexisting = true;
                    0
                }
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

    /// Emits the held scheduling times whose grace is over (all of them with `all`).
    fn flush(&mut self, all: bool) {
        let now = tokio::time::Instant::now();
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
        match object["kind"].as_str() {
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
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                for (t, e) in object_events(&object, false) {
                    match e {
                        EventKind::PodCreated { .. } | EventKind::NodeCreated { .. } => {
                            self.emit(t, e)
                        }
                        EventKind::PodScheduled { ref pod, .. } => {
                            let t = sharpen(t, observed_unix_us);
                            if !self.scheduled_pending.contains_key(pod) {
                                let until = tokio::time::Instant::now() + SCHEDULED_GRACE;
                                self.scheduled_pending.insert(pod.clone(), (t, e, until));
                            }
                        }
                        // Whole-second object stamps: the delivery time is sharper when it falls in that second.
                        _ => self.emit(sharpen(t, observed_unix_us), e),
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

async fn translate(
    mut rx: mpsc::UnboundedReceiver<Delivered>,
    origin_unix_us: u64,
    events: mpsc::UnboundedSender<Event>,
) -> Counts {
    let mut tr = Translator {
        origin_unix_us,
        seen: Seen::default(),
        counts: Counts::default(),
        events,
        gpu_pending: Default::default(),
        scheduled_pending: Default::default(),
        unparsed_seen: Default::default(),
    };
    loop {
        match tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv()).await {
            Ok(Some(d)) => tr.object(d),
            Ok(None) => break,
            Err(_) => {}
        }
        tr.flush(false);
    }
    tr.flush(true);
    tr.counts
}
