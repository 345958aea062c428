//! `imagen-load import`: a cold start that already happened, broken down from what was saved with
//! `kubectl get pods,nodes,events -o json` (a `List`, or several files). Pods, nodes and events become the event
//! vocabulary; the usual analysis does the rest. What a dump cannot hold (the first message, the model-load
//! signal, the GPU-allocatable moment) stays unknown in the report, never made up.

use super::parse::{self, Parsed};
use crate::event::{Event, EventKind, Source};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{file}: not JSON: {message}\n    fix: save the objects with `kubectl get pods,nodes,events -o json > dump.json`"
    )]
    NotJson { file: String, message: String },
    #[error(
        "{file}: found {found} where Kubernetes objects were expected\n    fix: give `kubectl get pods,nodes,events -n imagen -o json` (a List), `kubectl get events -A -o json`, or a Cloud Logging export (`gcloud logging read 'logName=\"projects/P/logs/events\"' --format=json`)"
    )]
    NotKubernetes { file: String, found: String },
    #[error(
        "no pods, nodes or events in the dump\n    fix: include pods, nodes and events: `kubectl get pods,nodes,events -n imagen -o json`"
    )]
    Empty,
    #[error(
        "the dump's times are not a real cluster's: they run from {earliest} to {latest}\n    fix: check that the times are the objects' own (eventTime, firstTimestamp, lastTimestamp, creationTimestamp); a hand-edited or renamed dump may carry made-up ones. Nothing was analysed"
    )]
    ImplausibleTimes { earliest: String, latest: String },
}

/// What the dump became.
pub struct Imported {
    pub events: Vec<Event>,
    /// Wall-clock time of t = 0 (the earliest timestamp in the dump), µs since the epoch.
    pub origin_unix_us: u64,
    pub deployments: Vec<String>,
    /// Events no parser knew, by reason (each counted once).
    pub unparsed: BTreeMap<String, u64>,
}

pub fn ts(v: Option<&Value>) -> Option<u64> {
    let s = v?.as_str()?;
    humantime::parse_rfc3339_weak(s)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_micros() as u64)
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
    // GKE's event exporter drops `firstTimestamp` and `count` from the Events it writes to Cloud Logging, one
    // entry per write: each entry's `lastTimestamp` is that occurrence.
    let first = ts(o.get("firstTimestamp")).or_else(|| {
        (o.get("firstTimestamp").is_none() && o.get("count").is_none())
            .then(|| ts(o.get("lastTimestamp")))
            .flatten()
    });
    if let Some(first) = first {
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
        Parsed::Problem {
            phase,
            reason,
            node_group,
        } => {
            let id = object_key(o);
            let count = [o.get("count"), o.pointer("/series/count")]
                .into_iter()
                .filter_map(|c| c.and_then(Value::as_u64))
                .max()
                .unwrap_or(1)
                .min(u64::from(u32::MAX)) as u32;
            out.push((
                t,
                EventKind::ColdStartProblem {
                    pod: (object_kind == "Pod").then_some(object),
                    phase: phase.to_string(),
                    reason,
                    node_group,
                    source_event: id,
                    count,
                    message: message.chars().take(500).collect(),
                },
            ))
        }
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

/// A source of Kubernetes objects: a file's name and its bytes, read as they are parsed.
pub struct Input {
    pub name: String,
    pub reader: Box<dyn std::io::Read>,
}

/// Earliest time a real cluster's record can have: Kubernetes 1.0 was released in July 2015.
const EARLIEST_PLAUSIBLE_UNIX_US: u64 = 1_435_708_800_000_000;
/// The longest span one import may cover: Events live an hour in the API server and 30 days in Cloud Logging.
const LONGEST_PLAUSIBLE_SPAN_US: u64 = 31 * 86_400_000_000;

/// One fact translated from an object: when, what, the namespace of what it names, and whether it came from an
/// Event (the sharper source of a pod's scheduling time).
struct Fact {
    t: u64,
    kind: EventKind,
    namespace: Option<String>,
}

/// The Kubernetes objects of one JSON document, streamed: a `List` (`kubectl get ... -o json`), a single object,
/// or a JSON array of objects or of Cloud Logging entries (`gcloud logging read ... --format=json`, where each
/// entry's `jsonPayload` is the Event). `f` gets each object; the document is never held whole.
pub fn read_objects(input: Input, mut f: impl FnMut(Value)) -> Result<u64, Error> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    struct Each<'a>(&'a mut dyn FnMut(Value), &'a mut u64);
    impl Each<'_> {
        /// One element of a list: an object (a nested List's items too), or a logging entry's payload.
        fn one(&mut self, v: Value) {
            if let Some(items) = v.get("items").and_then(Value::as_array) {
                for i in items.clone() {
                    self.one(i);
                }
            } else if let Some(p) = v.get("jsonPayload").filter(|p| p.get("kind").is_some()) {
                *self.1 += 1;
                (self.0)(p.clone());
            } else if v.get("kind").is_some() {
                *self.1 += 1;
                (self.0)(v);
            }
        }
    }
    struct Items<'a, 'b>(&'b mut Each<'a>);
    impl<'de> DeserializeSeed<'de> for Items<'_, '_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Items<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of Kubernetes objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(v) = seq.next_element::<Value>()? {
                self.0.one(v);
            }
            Ok(())
        }
    }
    /// The document: a map (a List, or one object) or an array.
    struct Doc<'a, 'b>(&'b mut Each<'a>, &'b mut String);
    impl<'de> Visitor<'de> for Doc<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a Kubernetes List, object, or a JSON array of them")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
            *self.1 = String::from("a JSON array with no Kubernetes objects in it");
            Items(self.0).visit_seq(seq)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut rest = serde_json::Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if key == "items" {
                    map.next_value_seed(Items(&mut *self.0))?;
                } else {
                    rest.insert(key, map.next_value::<Value>()?);
                }
            }
            if rest.get("kind").and_then(Value::as_str) == Some("List") {
                *self.1 = String::from("an empty List");
            } else {
                *self.1 = format!(
                    "an object with the keys {}",
                    rest.keys().take(6).cloned().collect::<Vec<_>>().join(", ")
                );
                self.0.one(Value::Object(rest));
            }
            Ok(())
        }
    }
    let mut n = 0;
    let mut found = String::from("no Kubernetes objects");
    {
        let mut each = Each(&mut f, &mut n);
        let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(input.reader));
        de.deserialize_any(Doc(&mut each, &mut found))
            .and_then(|()| de.end())
            .map_err(|e| Error::NotJson {
                file: input.name.clone(),
                message: e.to_string(),
            })?;
    }
    if n == 0 && found != "an empty List" {
        return Err(Error::NotKubernetes {
            file: input.name,
            found,
        });
    }
    Ok(n)
}

/// The namespace of what an object or Event is about.
/// One object's identity across dumps: its `metadata.uid`, else `namespace/name`.
fn object_key(o: &Value) -> String {
    match o.pointer("/metadata/uid").and_then(Value::as_str) {
        Some(uid) => uid.to_string(),
        None => {
            let field = |f: &str| o.pointer(f).and_then(Value::as_str).unwrap_or("");
            format!(
                "{}/{}",
                field("/metadata/namespace"),
                field("/metadata/name")
            )
        }
    }
}

fn namespace_of(o: &Value) -> Option<String> {
    o.pointer("/involvedObject/namespace")
        .or_else(|| o.pointer("/regarding/namespace"))
        .or_else(|| o.pointer("/metadata/namespace"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// `ns/name` for every pod, Deployment and ScaledObject a fact names (nodes are cluster-wide).
fn qualify(kind: &mut EventKind, ns: &str) {
    let q = |s: &mut String| *s = format!("{ns}/{s}");
    match kind {
        EventKind::PodCreated {
            pod, deployment, ..
        } => {
            q(pod);
            q(deployment);
        }
        EventKind::PodUnschedulable { pod, .. }
        | EventKind::PodScheduled { pod, .. }
        | EventKind::ImagePulling { pod, .. }
        | EventKind::ImagePulled { pod, .. }
        | EventKind::ContainerStarted { pod }
        | EventKind::ModelLoaded { pod, .. }
        | EventKind::PodReady { pod }
        | EventKind::PodNotReady { pod, .. }
        | EventKind::PodDeleted { pod } => q(pod),
        EventKind::ColdStartProblem { pod: Some(pod), .. } => q(pod),
        EventKind::Replicas { deployment, .. } => q(deployment),
        EventKind::ScalerActive { scaled_object, .. }
        | EventKind::ScalerCondition { scaled_object, .. } => q(scaled_object),
        EventKind::ScaleTarget {
            scaled_object,
            deployment,
            ..
        } => {
            q(scaled_object);
            q(deployment);
        }
        _ => {}
    }
}

/// Breaks down what the inputs hold (dumps of `kubectl get pods,nodes,events -o json`, Events alone, Cloud
/// Logging exports of GKE's events log, in any mix): every object is read as it is parsed, translated, and only
/// the facts are kept. The same object in two files counts once; with several namespaces, pods and Deployments
/// are named `namespace/name`.
pub fn import(inputs: Vec<Input>, price_per_gpu_hour_usd: f64) -> Result<Imported, Error> {
    let mut facts: Vec<Fact> = Vec::new();
    let mut unparsed: BTreeMap<String, u64> = BTreeMap::new();
    let mut unparsed_seen: HashSet<String> = HashSet::new();
    let mut nodes_seen = false;
    for input in inputs {
        read_objects(input, |o| {
            let namespace = namespace_of(&o);
            if o["kind"] == "Event" {
                let (found, known) = event_events(&o);
                if !known && unparsed_seen.insert(object_key(&o)) {
                    let reason = o["reason"].as_str().unwrap_or("(none)").to_string();
                    *unparsed.entry(reason).or_default() += 1;
                }
                for (t, kind) in found {
                    facts.push(Fact {
                        t,
                        kind,
                        namespace: namespace.clone(),
                    });
                }
            } else {
                nodes_seen |= o["kind"] == "Node";
                for (t, kind) in object_events(&o, false) {
                    facts.push(Fact {
                        t,
                        kind,
                        namespace: namespace.clone(),
                    });
                }
            }
        })?;
    }
    if facts.is_empty() {
        return Err(Error::Empty);
    }
    // Times a real cluster cannot have recorded (a name taken for a time, a hand-edited dump): no number is built
    // on them.
    let (first, last) = (
        facts.iter().min_by_key(|f| f.t).expect("non-empty"),
        facts.iter().max_by_key(|f| f.t).expect("non-empty"),
    );
    if first.t < EARLIEST_PLAUSIBLE_UNIX_US || last.t - first.t > LONGEST_PLAUSIBLE_SPAN_US {
        let at = |f: &Fact| {
            let when = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_micros(f.t),
            );
            let what: String = format!("{:?}", f.kind).chars().take(100).collect();
            format!("{when} ({what})")
        };
        return Err(Error::ImplausibleTimes {
            earliest: at(first),
            latest: at(last),
        });
    }
    let namespaces: BTreeSet<&str> = facts
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                EventKind::PodCreated { .. } | EventKind::Replicas { .. }
            )
        })
        .filter_map(|f| f.namespace.as_deref())
        .collect();
    if namespaces.len() > 1 {
        for f in &mut facts {
            if let Some(ns) = f.namespace.clone() {
                qualify(&mut f.kind, &ns);
            }
        }
    }
    // Time order; at one instant, a deployment's change before the pods it makes.
    facts.sort_by_key(|f| {
        (
            f.t,
            !matches!(
                f.kind,
                EventKind::ScalerActive { .. } | EventKind::Replicas { .. }
            ),
        )
    });
    // The same object in two files, or an Event and the object it describes, say a fact twice: exact repeats
    // count once; a pod's facts from two sources (its object's whole-second stamp, its Event's microseconds) are
    // both kept for the analysis to take the sharpest. Every pending pod carries the same scale-up: once.
    let mut seen = Seen::default();
    let mut exact: HashSet<(u64, String)> = HashSet::new();
    let mut out: Vec<(u64, EventKind)> = Vec::new();
    let mut deployments = BTreeSet::new();
    for f in facts {
        let new = match &f.kind {
            EventKind::ScaleUpTriggered { .. } => seen.first(f.t, &f.kind),
            k => exact.insert((f.t, format!("{k:?}"))),
        };
        if !new {
            continue;
        }
        if let EventKind::PodCreated { deployment, .. } | EventKind::Replicas { deployment, .. } =
            &f.kind
        {
            deployments.insert(deployment.clone());
        }
        out.push((f.t, f.kind));
    }
    let origin = out.first().map_or(0, |e| e.0);
    let end = out.last().map_or(0, |e| e.0);
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
            // Events name nodes, not their GPUs: cost needs the Node objects.
            cluster_observed: Some(nodes_seen),
            overrides: Vec::new(),
            timer_slack_us: None,
        },
    )];
    events.extend(
        out.into_iter()
            .map(|(t, kind)| Event::new(t - origin, Source::Kube, kind)),
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

/// [`import`] of documents already in memory: (name, text).
pub fn import_texts(
    files: &[(String, String)],
    price_per_gpu_hour_usd: f64,
) -> Result<Imported, Error> {
    let inputs = files
        .iter()
        .map(|(name, text)| Input {
            name: name.clone(),
            reader: Box::new(std::io::Cursor::new(text.clone().into_bytes())),
        })
        .collect();
    import(inputs, price_per_gpu_hour_usd)
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
