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

fn ts(v: Option<&Value>) -> Option<u64> {
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
fn deployment_of(pod: &Value) -> String {
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
    for o in &objects {
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match o["kind"].as_str() {
            Some("Pod") => {
                let dep = deployment_of(o);
                deployments.insert(dep.clone());
                if let Some(t) = ts(o.pointer("/metadata/creationTimestamp")) {
                    out.push((
                        t,
                        Source::Kube,
                        EventKind::PodCreated {
                            pod: name.clone(),
                            deployment: dep,
                            preexisting: false,
                        },
                    ));
                }
                if let (false, Some(t), Some(node)) = (
                    scheduled_by_event.contains(name.as_str()),
                    condition_time(o, "PodScheduled"),
                    o.pointer("/spec/nodeName").and_then(Value::as_str),
                ) {
                    out.push((
                        t,
                        Source::Kube,
                        EventKind::PodScheduled {
                            pod: name.clone(),
                            node: node.to_string(),
                        },
                    ));
                }
                if let Some(t) =
                    ts(o.pointer("/status/containerStatuses/0/state/running/startedAt"))
                {
                    out.push((
                        t,
                        Source::Kube,
                        EventKind::ContainerStarted { pod: name.clone() },
                    ));
                }
                if let Some(t) = condition_time(o, "Ready") {
                    out.push((t, Source::Kube, EventKind::PodReady { pod: name.clone() }));
                }
                if let Some(t) = ts(o.pointer("/metadata/deletionTimestamp")) {
                    out.push((t, Source::Kube, EventKind::PodDeleted { pod: name.clone() }));
                }
            }
            Some("Node") => {
                let gpus = o
                    .pointer("/status/allocatable/nvidia.com~1gpu")
                    .and_then(|g| g.as_str()?.parse().ok())
                    .unwrap_or(0);
                let pool = o
                    .pointer("/metadata/labels/cloud.google.com~1gke-nodepool")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Some(t) = ts(o.pointer("/metadata/creationTimestamp")) {
                    out.push((
                        t,
                        Source::Kube,
                        EventKind::NodeCreated {
                            node: name.clone(),
                            pool,
                            gpus,
                            preexisting: false,
                        },
                    ));
                }
                if let Some(t) = condition_time(o, "Ready") {
                    out.push((t, Source::Kube, EventKind::NodeReady { node: name.clone() }));
                }
            }
            _ => {}
        }
    }
    let mut scale_ups_seen = BTreeSet::new();
    for o in objects.iter().filter(|o| o["kind"] == "Event") {
        let reason = o["reason"].as_str().unwrap_or("");
        let message = o["message"].as_str().unwrap_or("");
        let object = o
            .pointer("/involvedObject/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        // The sharpest time the event has: eventTime (µs), the name's UnixNano, then whole-second stamps.
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(t) = ts(o.get("eventTime"))
            .or_else(|| parse::event_name_unix_us(name))
            .or_else(|| ts(o.get("firstTimestamp")))
        else {
            continue;
        };
        match parse::parse(reason, message) {
            Parsed::Pulling { image } => out.push((
                t,
                Source::Kube,
                EventKind::ImagePulling {
                    pod: object,
                    image: image.unwrap_or_default(),
                },
            )),
            Parsed::Pulled(p) => out.push((
                t,
                Source::Kube,
                EventKind::ImagePulled {
                    pod: object,
                    image: p.image.unwrap_or_default(),
                    duration_us: p.duration_us.unwrap_or(0),
                    bytes: p.bytes,
                    cached: p.cached,
                },
            )),
            Parsed::Scheduled { node: Some(node) } => out.push((
                t,
                Source::Kube,
                EventKind::PodScheduled { pod: object, node },
            )),
            Parsed::FailedScheduling { message } => out.push((
                t,
                Source::Kube,
                EventKind::PodUnschedulable {
                    pod: object,
                    reason: message,
                },
            )),
            Parsed::TriggeredScaleUp(groups) => {
                // Every pending pod gets the same event: one scale-up per group and size change.
                for g in groups {
                    if scale_ups_seen.insert((g.group.clone(), g.from, g.to, t / 60_000_000)) {
                        out.push((
                            t,
                            Source::Kube,
                            EventKind::ScaleUpTriggered {
                                node_group: g.group,
                                from: g.from,
                                to: g.to,
                            },
                        ));
                    }
                }
            }
            Parsed::Keda(k) => {
                let deployment = k.name.clone().unwrap_or(object);
                let desired = k.to.unwrap_or(u32::from(k.activated));
                out.push((
                    t,
                    Source::Kube,
                    EventKind::ScalerActive {
                        scaled_object: deployment.clone(),
                        active: k.activated,
                    },
                ));
                out.push((
                    t,
                    Source::Kube,
                    EventKind::Replicas {
                        deployment,
                        desired,
                        ready: 0,
                    },
                ));
            }
            Parsed::Unparsed { .. } => unparsed += 1,
            _ => {}
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
