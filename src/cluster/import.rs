//! `imagen-load import`: a cold start that already happened, broken down from what was saved with
//! `kubectl get pods,nodes,events -o json` (a `List`, or several files). Pods, nodes and events become the event
//! vocabulary; the usual analysis does the rest. What a dump cannot hold (the first message, the model-load
//! signal, the GPU-allocatable moment) stays unknown in the report, never made up.

use super::parse::{self, Parsed};
use crate::event::{Event, EventKind, Source};
use serde_json::Value;
use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{file}: not JSON: {message}\n    fix: save the objects with `kubectl get pods,nodes,events -o json > dump.json`"
    )]
    NotJson { file: String, message: String },
    #[error(
        "no pods, nodes or events in the dump\n    fix: include pods, nodes and events: `kubectl get pods,nodes,events -n imagen -o json`"
    )]
    Empty,
}

/// What the dump became.
pub struct Imported {
    pub events: Vec<Event>,
    /// Wall-clock time of t = 0 (the earliest timestamp in the dump), µs since the epoch.
    pub origin_unix_us: u64,
    pub deployments: Vec<String>,
    /// Event messages kept raw because no parser knew them.
    pub unparsed: u64,
}

pub fn ts(v: Option<&Value>) -> Option<u64> {
    let s = v?.as_str()?;
    humantime::parse_rfc3339_weak(s)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_micros() as u64)
}

fn items(v: Value, out: &mut Vec<Value>) {
    match v.get("items").and_then(Value::as_array) {
        Some(list) => list.iter().cloned().for_each(|i| items(i, out)),
        None if v.get("kind").is_some() => out.push(v),
        None => {}
    }
}

fn condition_time(obj: &Value, kind: &str) -> Option<u64> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
        .and_then(|c| ts(c.get("lastTransitionTime")))
}

/// The Deployment a pod belongs to: its ReplicaSet owner without the pod-template hash.
pub fn deployment_of(pod: &Value) -> String {
    let owner = pod
        .pointer("/metadata/ownerReferences/0/name")
        .and_then(Value::as_str);
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    match owner {
        Some(rs) => rs.rsplit_once('-').map_or(rs, |(d, _)| d).to_string(),
        None => name.rsplitn(3, '-').last().unwrap_or(name).to_string(),
    }
}

/// Remembers what was already emitted, so the same fact seen twice (a re-list after `410 Gone`, a restarted
/// watch, every pending pod carrying the same scale-up) becomes one event.
#[derive(Default)]
pub struct Seen(std::collections::HashSet<String>);

impl Seen {
    /// True the first time this fact is seen.
    pub fn first(&mut self, t_unix_us: u64, kind: &EventKind) -> bool {
        let key = match kind {
            // One scale-up per group and size change (per minute): every pending pod gets the same event.
            EventKind::ScaleUpTriggered {
                node_group,
                from,
                to,
            } => format!(
                "scale-up {node_group} {from} {to} {}",
                t_unix_us / 60_000_000
            ),
            // A pod is created, scheduled, started and deleted once, whatever time each source gives it.
            EventKind::PodCreated { pod, .. } => format!("created {pod}"),
            EventKind::PodScheduled { pod, .. } => format!("scheduled {pod}"),
            EventKind::PodDeleted { pod } => format!("deleted {pod}"),
            EventKind::NodeCreated { node, .. } => format!("node created {node}"),
            EventKind::NodeDeleted { node } => format!("node deleted {node}"),
            EventKind::GpuAllocatable { node, .. } => format!("gpu {node}"),
            k => format!("{t_unix_us} {k:?}"),
        };
        self.0.insert(key)
    }
}

/// What a Pod or Node object says happened, with its server timestamps (µs since the epoch). `scheduled_by_event`:
/// the pod's `Scheduled` event gives its scheduling time (sharper), so the condition's is left out.
pub fn object_events(o: &Value, scheduled_by_event: bool) -> Vec<(u64, EventKind)> {
    let mut out = Vec::new();
    let name = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match o["kind"].as_str() {
        Some("Pod") => {
            if let Some(t) = ts(o.pointer("/metadata/creationTimestamp")) {
                out.push((
                    t,
                    EventKind::PodCreated {
                        pod: name.clone(),
                        deployment: deployment_of(o),
                        preexisting: false,
                    },
                ));
            }
            if let (false, Some(t), Some(node)) = (
                scheduled_by_event,
                condition_time(o, "PodScheduled"),
                o.pointer("/spec/nodeName").and_then(Value::as_str),
            ) {
                out.push((
                    t,
                    EventKind::PodScheduled {
                        pod: name.clone(),
                        node: node.to_string(),
                    },
                ));
            }
            if let Some(t) = ts(o.pointer("/status/containerStatuses/0/state/running/startedAt")) {
                out.push((t, EventKind::ContainerStarted { pod: name.clone() }));
            }
            if let Some(t) = condition_time(o, "Ready") {
                out.push((t, EventKind::PodReady { pod: name.clone() }));
            }
            // A container that exited and was restarted (a model that ran out of GPU memory, a crash): its last
            // termination, once per restart.
            for c in o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let term = &c["lastState"]["terminated"];
                if let Some(t) = ts(term.get("finishedAt")) {
                    out.push((
                        t,
                        EventKind::PodNotReady {
                            pod: name.clone(),
                            reason: format!(
                                "container {} exited ({}, exit code {}); restart {}",
                                c["name"].as_str().unwrap_or("?"),
                                term["reason"].as_str().unwrap_or("no reason given"),
                                term["exitCode"].as_i64().unwrap_or(-1),
                                c["restartCount"].as_u64().unwrap_or(0)
                            ),
                        },
                    ));
                }
            }
            if let Some(t) = ts(o.pointer("/metadata/deletionTimestamp")) {
                out.push((t, EventKind::PodDeleted { pod: name }));
            }
        }
        Some("Node") => {
            // GPUs as allocatable, else as capacity (a GPU node registers before its device plugin reports them).
            let gpu = |path: &str| -> Option<u32> { o.pointer(path)?.as_str()?.parse().ok() };
            let gpus = gpu("/status/allocatable/nvidia.com~1gpu")
                .filter(|g| *g > 0)
                .or_else(|| gpu("/status/capacity/nvidia.com~1gpu"))
                .unwrap_or(0);
            let pool = o
                .pointer("/metadata/labels/cloud.google.com~1gke-nodepool")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(t) = ts(o.pointer("/metadata/creationTimestamp")) {
                out.push((
                    t,
                    EventKind::NodeCreated {
                        node: name.clone(),
                        pool,
                        gpus,
                        preexisting: false,
                    },
                ));
            }
            if let Some(t) = condition_time(o, "Ready") {
                out.push((t, EventKind::NodeReady { node: name.clone() }));
            }
            if let Some(t) = ts(o.pointer("/metadata/deletionTimestamp")) {
                out.push((t, EventKind::NodeDeleted { node: name }));
            }
        }
        Some("Deployment") => {
            // A Deployment says how many replicas it wants and has, not when that changed: its last write (the
            // newest managedFields time, whole seconds) is when.
            if let Some(t) = last_write(o) {
                out.push((
                    t,
                    EventKind::Replicas {
                        deployment: name,
                        desired: count(o.pointer("/spec/replicas")),
                        ready: Some(count(o.pointer("/status/readyReplicas"))),
                    },
                ));
            }
        }
        Some(kind @ ("ScaledObject" | "HorizontalPodAutoscaler")) => {
            // KEDA names the HPA it manages `keda-hpa-<scaledobject>`: both speak for the ScaledObject.
            let scaled_object = name.strip_prefix("keda-hpa-").unwrap_or(&name).to_string();
            if kind == "ScaledObject"
                && let (Some(t), Some(target)) = (
                    ts(o.pointer("/metadata/creationTimestamp")),
                    o.pointer("/spec/scaleTargetRef/name")
                        .and_then(Value::as_str),
                )
            {
                out.push((
                    t,
                    EventKind::ScaleTarget {
                        scaled_object: scaled_object.clone(),
                        deployment: target.to_string(),
                        subscription: trigger_subscription(o),
                    },
                ));
            }
            for c in o
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(condition), Some(t)) =
                    (c["type"].as_str(), ts(c.get("lastTransitionTime")))
                else {
                    continue;
                };
                let active = c["status"] == "True";
                if kind == "ScaledObject" && condition == "Active" && c["status"] != "Unknown" {
                    out.push((
                        t,
                        EventKind::ScalerActive {
                            scaled_object: scaled_object.clone(),
                            active,
                        },
                    ));
                }
                let reason = [c["reason"].as_str(), c["message"].as_str()]
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(": ");
                out.push((
                    t,
                    EventKind::ScalerCondition {
                        scaled_object: scaled_object.clone(),
                        condition: condition.to_string(),
                        active,
                        reason: (!reason.is_empty()).then_some(reason),
                    },
                ));
            }
        }
        _ => {}
    }
    out
}

/// The subscription a ScaledObject's triggers read: `gcp-pubsub`'s `subscriptionName` (short or
/// `projects/P/subscriptions/S`), a `metrics-api` URL ending in `/backlog/<subscription>` (the built-in
/// emulator's endpoint), or a Prometheus query's `subscription_id="..."` label (Managed Prometheus' Pub/Sub
/// metrics). KEDA's trigger metadata: <https://keda.sh/docs/latest/scalers/gcp-pub-sub/>.
pub fn trigger_subscription(scaled_object: &Value) -> Option<String> {
    let triggers = scaled_object.pointer("/spec/triggers")?.as_array()?;
    triggers.iter().find_map(|t| {
        let meta = t.get("metadata")?;
        let text = |k: &str| meta.get(k).and_then(Value::as_str);
        match t.get("type").and_then(Value::as_str)? {
            "gcp-pubsub" => text("subscriptionName").map(str::to_string),
            "metrics-api" => text("url")
                .and_then(|u| u.split_once("/backlog/"))
                .map(|(_, sub)| sub.trim_end_matches('/').to_string()),
            "prometheus" => text("query").and_then(|q| {
                let (_, rest) = q.split_once("subscription_id=")?;
                let rest = rest.trim_start_matches(['"', '\'']);
                let end = rest.find(['"', '\'', ',', '}'])?;
                Some(rest[..end].to_string())
            }),
            _ => None,
        }
    })
}

fn count(v: Option<&Value>) -> u32 {
    v.and_then(Value::as_u64)
        .unwrap_or(0)
        .min(u64::from(u32::MAX)) as u32
}

/// The newest write to an object the server recorded (`metadata.managedFields[].time`, whole seconds), else its
/// creation.
pub fn last_write(o: &Value) -> Option<u64> {
    o.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| ts(f.get("time")))
        .max()
        .or_else(|| ts(o.pointer("/metadata/creationTimestamp")))
}

/// An events.k8s.io/v1 Event in the shape of a core/v1 one (both APIs serve the same objects; dumps and
/// watches may hold either): `regarding` → `involvedObject`, `note` → `message`, `deprecatedFirstTimestamp` →
/// `firstTimestamp`.
fn as_core_event(o: &Value) -> std::borrow::Cow<'_, Value> {
    if o.get("involvedObject").is_some() || o.get("regarding").is_none() {
        return std::borrow::Cow::Borrowed(o);
    }
    let mut c = o.clone();
    if let Some(m) = c.as_object_mut() {
        for (from, to) in [
            ("regarding", "involvedObject"),
            ("note", "message"),
            ("deprecatedFirstTimestamp", "firstTimestamp"),
            ("deprecatedLastTimestamp", "lastTimestamp"),
            ("deprecatedCount", "count"),
        ] {
            if let Some(v) = m.remove(from) {
                m.insert(to.to_string(), v);
            }
        }
    }
    std::borrow::Cow::Owned(c)
}

/// When an Event first happened, at the sharpest time that can be defended (µs since the epoch):
/// - `eventTime` (microseconds; the scheduler's and newer recorders' events);
/// - else `firstTimestamp` (whole seconds), sharpened by the UnixNano suffix of the event's name when that
///   suffix falls inside the same second: client-go's `tools/record` names an event `<object>.<hex UnixNano>`
///   of the same instant (`tools/record/event.go`, `makeEvent`), but names from other libraries, hand-made or
///   renamed dumps carry suffixes that are not times, so the name is never trusted alone;
/// - else `series.lastObservedTime`, `lastTimestamp`, then `metadata.creationTimestamp`.
pub fn event_time(o: &Value) -> Option<u64> {
    if let Some(t) = ts(o.get("eventTime")) {
        return Some(t);
    }
    let name = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(first) = ts(o.get("firstTimestamp")) {
        let sharp =
            parse::event_name_unix_us(name).filter(|s| (first..first + 1_000_000).contains(s));
        return Some(sharp.unwrap_or(first));
    }
    ts(o.pointer("/series/lastObservedTime"))
        .or_else(|| ts(o.get("lastTimestamp")))
        .or_else(|| ts(o.pointer("/metadata/creationTimestamp")))
}

/// The Deployment of a ReplicaSet: its name without the pod-template hash.
fn deployment_of_replica_set(rs: &str) -> String {
    rs.rsplit_once('-').map_or(rs, |(d, _)| d).to_string()
}

/// When a repeated Event last happened (µs since the epoch): `series.lastObservedTime`, else `lastTimestamp`,
/// when the Event says it happened more than once (`count` > 1, or a `series`). client-go aggregates an event
/// repeated on the same object into the first one (`tools/record/events_cache.go`, `eventObserve`;
/// `tools/events` series), so one Event object can stand for a KEDA activation at 7 min and another at 31 min.
pub fn last_occurrence(o: &Value) -> Option<u64> {
    let count = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(1);
    if count(o.get("count")).max(count(o.pointer("/series/count"))) < 2 {
        return None;
    }
    ts(o.pointer("/series/lastObservedTime")).or_else(|| ts(o.get("lastTimestamp")))
}

/// What a core/v1 Event says happened: at its first occurrence, at the sharpest time it has ([`event_time`]),
/// and, for an aggregated event, at its last ([`last_occurrence`]). Returns false as well when no parser knew its
/// reason (kept raw, counted).
pub fn event_events(o: &Value) -> (Vec<(u64, EventKind)>, bool) {
    let o = &*as_core_event(o);
    let Some(first) = event_time(o) else {
        return (Vec::new(), true);
    };
    let (mut out, known) = occurrence(o, first);
    if let Some(last) = last_occurrence(o).filter(|l| *l > first) {
        out.extend(occurrence(o, last).0);
    }
    (out, known)
}

/// What one occurrence (at `t`) of an Event says happened.
fn occurrence(o: &Value, t: u64) -> (Vec<(u64, EventKind)>, bool) {
    let mut out = Vec::new();
    let reason = o["reason"].as_str().unwrap_or("");
    let message = o["message"].as_str().unwrap_or("");
    let object = o
        .pointer("/involvedObject/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let object_kind = o
        .pointer("/involvedObject/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    match parse::parse(reason, message) {
        Parsed::Pulling { image } => out.push((
            t,
            EventKind::ImagePulling {
                pod: object,
                image: image.unwrap_or_default(),
            },
        )),
        Parsed::Pulled(p) => out.push((
            t,
            EventKind::ImagePulled {
                pod: object,
                image: p.image.unwrap_or_default(),
                duration_us: p.duration_us.unwrap_or(0),
                bytes: p.bytes,
                cached: p.cached,
            },
        )),
        Parsed::Scheduled { node: Some(node) } => {
            out.push((t, EventKind::PodScheduled { pod: object, node }))
        }
        Parsed::FailedScheduling { message } => out.push((
            t,
            EventKind::PodUnschedulable {
                pod: object,
                reason: message,
            },
        )),
        Parsed::TriggeredScaleUp(groups) => {
            for g in groups {
                out.push((
                    t,
                    EventKind::ScaleUpTriggered {
                        node_group: g.group,
                        from: g.from,
                        to: g.to,
                    },
                ));
            }
        }
        Parsed::Keda(k) => {
            let deployment = k.name.clone().unwrap_or(object);
            let desired = k.to.unwrap_or(u32::from(k.activated));
            out.push((
                t,
                EventKind::ScalerActive {
                    scaled_object: deployment.clone(),
                    active: k.activated,
                },
            ));
            out.push((
                t,
                EventKind::Replicas {
                    deployment,
                    desired,
                    ready: None,
                },
            ));
        }
        Parsed::NodeRemoved => out.push((t, EventKind::NodeDeleted { node: object })),
        Parsed::CreatedPod { pod } => out.push((
            t,
            EventKind::PodCreated {
                pod,
                deployment: deployment_of_replica_set(&object),
                preexisting: false,
            },
        )),
        Parsed::DeletedPod { pod } => out.push((t, EventKind::PodDeleted { pod })),
        Parsed::ScaledReplicaSet { to, .. }
            if object_kind == "Deployment" || object_kind.is_empty() =>
        {
            out.push((
                t,
                EventKind::Replicas {
                    deployment: object,
                    desired: to,
                    ready: None,
                },
            ))
        }
        Parsed::Reason { reason }
            if reason.eq_ignore_ascii_case("started") && object_kind == "Pod" =>
        {
            out.push((t, EventKind::ContainerStarted { pod: object }))
        }
        Parsed::Unparsed { .. } => return (out, false),
        _ => {}
    }
    (out, true)
}

/// Parses the dump files' contents (each a `List` or a single object).
pub fn import(files: &[(String, String)], price_per_gpu_hour_usd: f64) -> Result<Imported, Error> {
    let mut objects = Vec::new();
    for (file, text) in files {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::NotJson {
            file: file.clone(),
            message: e.to_string(),
        })?;
        items(v, &mut objects);
    }
    let mut out: Vec<(u64, Source, EventKind)> = Vec::new();
    let mut deployments = BTreeSet::new();
    let mut unparsed = 0;
    // Pods with a `Scheduled` event: its eventTime (µs) is sharper than the pod's whole-second condition.
    let scheduled_by_event: BTreeSet<&str> = objects
        .iter()
        .filter(|o| {
            o["kind"] == "Event"
                && o["reason"]
                    .as_str()
                    .is_some_and(|r| r.eq_ignore_ascii_case("Scheduled"))
        })
        .filter_map(|o| o.pointer("/involvedObject/name").and_then(Value::as_str))
        .collect();
    let mut seen = Seen::default();
    for o in objects.iter().filter(|o| o["kind"] != "Event") {
        if o["kind"] == "Pod" {
            deployments.insert(deployment_of(o));
        }
        let name = o.pointer("/metadata/name").and_then(Value::as_str);
        let sharp = name.is_some_and(|n| scheduled_by_event.contains(n));
        for (t, kind) in object_events(o, sharp) {
            if seen.first(t, &kind) {
                out.push((t, Source::Kube, kind));
            }
        }
    }
    for o in objects.iter().filter(|o| o["kind"] == "Event") {
        let (events, known) = event_events(o);
        unparsed += u64::from(!known);
        for (t, kind) in events {
            if seen.first(t, &kind) {
                out.push((t, Source::Kube, kind));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Empty);
    }
    let origin = out.iter().map(|e| e.0).min().unwrap_or(0);
    let end = out.iter().map(|e| e.0).max().unwrap_or(0);
    // Time order; at one instant, a deployment's change before the pods it makes.
    out.sort_by_key(|e| {
        (
            e.0,
            !matches!(
                e.2,
                EventKind::ScalerActive { .. } | EventKind::Replicas { .. }
            ),
        )
    });
    let deployments: Vec<String> = deployments.into_iter().collect();
    let mut events = vec![Event::new(
        0,
        Source::Harness,
        EventKind::RunStarted {
            log_version: crate::event::EVENT_LOG_VERSION,
            run_id: "import".into(),
            workload: "import".into(),
            seed: 0,
            target: "kubectl-dump".into(),
            wall_clock_start_unix_us: origin,
            streams: deployments.clone(),
            warmup_us: 0,
            deadline_us: end - origin,
            price_per_gpu_hour_usd,
            shard: None,
            pipelines: Vec::new(),
            cluster_observed: Some(true),
        },
    )];
    events.extend(
        out.into_iter()
            .map(|(t, source, kind)| Event::new(t - origin, source, kind)),
    );
    events.push(Event::new(
        end - origin,
        Source::Harness,
        EventKind::RunFinished {
            interrupted: false,
            reason: None,
        },
    ));
    Ok(Imported {
        events,
        origin_unix_us: origin,
        deployments,
        unparsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_k8s_io_v1_reads_as_core_v1() {
        // What `kubectl get events.v1.events.k8s.io -o json` shows for the scheduler's binding.
        let e = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "upscale-worker-6f9c8d7b5-k2x9p.187c1f0e2a9b7c00", "namespace": "imagen"},
            "eventTime": "2026-11-28T10:02:05.600000Z",
            "reason": "Scheduled", "action": "Binding", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "upscale-worker-6f9c8d7b5-k2x9p", "namespace": "imagen"},
            "note": "Successfully assigned imagen/upscale-worker-6f9c8d7b5-k2x9p to gke-imagen-gpu-pool-3c1a2b-n1x4",
            "reportingController": "default-scheduler", "reportingInstance": "default-scheduler-gke"
        });
        let (events, known) = event_events(&e);
        assert!(known);
        assert_eq!(
            events,
            vec![(
                ts(Some(&json!("2026-11-28T10:02:05.600000Z"))).unwrap(),
                EventKind::PodScheduled {
                    pod: "upscale-worker-6f9c8d7b5-k2x9p".into(),
                    node: "gke-imagen-gpu-pool-3c1a2b-n1x4".into()
                }
            )]
        );
        // A kubelet event through the new API keeps its deprecated whole-second stamp.
        let pulled = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "p.x"}, "reason": "Pulled",
            "regarding": {"kind": "Pod", "name": "p"},
            "note": "Container image \"img\" already present on machine",
            "deprecatedFirstTimestamp": "2026-11-28T10:00:01Z", "deprecatedCount": 1
        });
        let (events, _) = event_events(&pulled);
        assert!(
            matches!(&events[0], (t, EventKind::ImagePulled { pod, cached: true, .. })
            if pod == "p" && *t == ts(Some(&json!("2026-11-28T10:00:01Z"))).unwrap())
        );
    }

    #[test]
    fn deployments_and_scalers_say_their_state_at_their_last_write() {
        let d = json!({"kind": "Deployment", "metadata": {"name": "upscale-worker",
            "creationTimestamp": "2026-11-20T08:00:00Z",
            "managedFields": [{"time": "2026-11-28T10:00:35Z"}, {"time": "2026-11-28T10:00:05Z"}]},
            "spec": {"replicas": 2}, "status": {"readyReplicas": 1}});
        assert_eq!(
            object_events(&d, false),
            vec![(
                ts(Some(&json!("2026-11-28T10:00:35Z"))).unwrap(),
                EventKind::Replicas {
                    deployment: "upscale-worker".into(),
                    desired: 2,
                    ready: Some(1)
                }
            )]
        );
        let hpa = json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "keda-hpa-upscale-worker"},
            "status": {"conditions": [{"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas",
                "message": "the desired replica count is more than the maximum replica count",
                "lastTransitionTime": "2026-11-28T10:00:50Z"}]}});
        let pod = json!({"kind": "Pod", "metadata": {"name": "p", "creationTimestamp": "2026-11-28T10:00:00Z"},
            "status": {"containerStatuses": [{"name": "worker", "restartCount": 1,
                "state": {"running": {"startedAt": "2026-11-28T10:05:10Z"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                    "startedAt": "2026-11-28T10:04:00Z", "finishedAt": "2026-11-28T10:05:02Z"}}}]}});
        assert!(object_events(&pod, false).contains(&(
            ts(Some(&json!("2026-11-28T10:05:02Z"))).unwrap(),
            EventKind::PodNotReady {
                pod: "p".into(),
                reason: "container worker exited (OOMKilled, exit code 137); restart 1".into()
            }
        )));
        let out = object_events(&hpa, false);
        assert!(
            matches!(&out[..], [(_, EventKind::ScalerCondition { scaled_object, condition, active: true, reason: Some(r) })]
            if scaled_object == "upscale-worker" && condition == "ScalingLimited" && r.starts_with("TooManyReplicas: "))
        );
    }
}
