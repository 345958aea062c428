//! Parsers for the Kubernetes event messages that carry numbers, tolerant of the wordings real clusters emit across
//! versions. The event *reason* is the key (matched case-insensitively); the message is parsed where it holds a
//! number we need. Anything unparseable comes back as [`Parsed::Unparsed`] with the raw text, to be counted and
//! kept, never a panic.

/// What an event says, once parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// kubelet `Pulling`: `Pulling image "repo/name:tag"`.
    Pulling {
        image: Option<String>,
    },
    /// kubelet `Pulled`: a pull that happened (with its reported time and size), or an image already present.
    Pulled(Pulled),
    /// scheduler `Scheduled`: `Successfully assigned ns/pod to node`.
    Scheduled {
        node: Option<String>,
    },
    /// scheduler `FailedScheduling` (the message is kept: it lists why).
    FailedScheduling {
        message: String,
    },
    /// cluster-autoscaler `TriggeredScaleUp`: one or more node groups grown.
    TriggeredScaleUp(Vec<ScaleUp>),
    /// Something that lengthened a cold start: cluster-autoscaler's `FailedScaleUp` (GKE: "Node scale up in zones
    /// Z associated with this pod failed: R. Pod is at risk of not being scheduled.") and `NotTriggerScaleUp`
    /// ("pod didn't trigger scale-up: 3 in backoff after failed scale-up, ..."), the kubelet's failed pulls
    /// (`Failed` "Failed to pull image ..."), pull back-off (`BackOff` "Back-off pulling image ..."),
    /// `FailedCreatePodSandBox`, `FailedMount`, `FailedAttachVolume` and failing probes (`Unhealthy`).
    /// Wordings: kubernetes/autoscaler `processors/status/eventing_scale_up_processor.go`, GKE's cluster
    /// autoscaler visibility messages, kubernetes `pkg/kubelet/images/image_manager.go`, `pkg/kubelet/prober`.
    Problem {
        /// The cold-start phase it lengthened.
        phase: &'static str,
        reason: String,
        /// The zones of a failed scale-up.
        node_group: Option<String>,
    },
    /// KEDA `KEDAScaleTargetActivated` / `KEDAScaleTargetDeactivated`.
    Keda(KedaScale),
    /// The node is gone: node-lifecycle `RemovingNode` / `DeletingNode`, or cluster-autoscaler `ScaleDown` saying
    /// "node removed by cluster autoscaler".
    NodeRemoved,
    /// replicaset-controller `SuccessfulCreate`: `Created pod: <name>`.
    CreatedPod {
        pod: String,
    },
    /// replicaset-controller `SuccessfulDelete`: `Deleted pod: <name>`.
    DeletedPod {
        pod: String,
    },
    /// deployment-controller `ScalingReplicaSet`, in its three wordings (Kubernetes source,
    /// `pkg/controller/deployment/sync.go`): `Scaled up replica set <rs> to <n>` (to 1.28),
    /// `Scaled up replica set <rs> to <n> from <m>` (about 1.29–1.30), `Scaled up replica set <rs> from <m> to <n>`
    /// (since kubernetes#125118).
    ScaledReplicaSet {
        replica_set: String,
        from: Option<u32>,
        to: u32,
    },
    /// Reasons whose wording changed across versions and whose message carries nothing we need
    /// (`Created`, `Started`, `Killing`, `ScaleDown`, ...): keyed on the reason alone.
    Reason {
        reason: String,
    },
    Unparsed {
        reason: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pulled {
    pub image: Option<String>,
    pub cached: bool,
    /// The pull itself, as the kubelet reports it.
    pub duration_us: Option<u64>,
    /// Including time spent waiting for other pulls (newer kubelets).
    pub including_waiting_us: Option<u64>,
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScaleUp {
    /// The node group's short name (on GKE the last segment of the managed instance group URL).
    pub group: String,
    /// As written in the message (a URL on GKE).
    pub group_raw: String,
    pub from: u32,
    pub to: u32,
    pub max: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KedaScale {
    pub activated: bool,
    /// `apps/v1.Deployment`
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub from: Option<u32>,
    pub to: Option<u32>,
    pub triggered_by: Option<String>,
}

/// Parses a Go `time.Duration` string: `26.345675198s`, `1m2.5s`, `1h2m3s`, `500ms`, `1.5µs`, `12ns`, `0s`.
pub fn go_duration_us(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "0" || t == "0s" {
        return Some(0);
    }
    let mut total_ns = 0f64;
    let mut rest = t;
    let mut any = false;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" | "μs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total_ns += value * scale;
        rest = &rest[unit_end..];
        any = true;
    }
    any.then(|| (total_ns / 1e3).round() as u64)
}

fn quoted(message: &str) -> Option<String> {
    let start = message.find('"')? + 1;
    let end = start + message[start..].find('"')?;
    Some(message[start..end].to_string())
}

fn after<'a>(text: &'a str, lower: &str, needle: &str) -> Option<&'a str> {
    lower.find(needle).map(|i| &text[i + needle.len()..])
}

fn pulled(message: &str) -> Option<Pulled> {
    let lower = message.to_lowercase();
    let image = quoted(message);
    if lower.contains("already present on machine") {
        return Some(Pulled {
            image,
            cached: true,
            duration_us: Some(0),
            ..Pulled::default()
        });
    }
    if !lower.contains("successfully pulled image") {
        return None;
    }
    let mut p = Pulled {
        image,
        ..Pulled::default()
    };
    // `... in 26.345675198s (26.345675198s including waiting). Image size: 70519823 bytes.`
    if let Some(rest) = after(message, &lower, "\" in ") {
        // Up to the first space or parenthesis; a sentence's full stop is not part of the duration.
        let token = rest
            .split([' ', '('])
            .next()
            .unwrap_or("")
            .trim_end_matches('.');
        p.duration_us = go_duration_us(token);
    }
    if let Some(rest) = after(message, &lower, "(") {
        let token = rest.split_whitespace().next().unwrap_or("");
        if lower.contains("including waiting") {
            p.including_waiting_us = go_duration_us(token);
        }
    }
    if let Some(rest) = after(message, &lower, "image size: ") {
        p.bytes = rest.split_whitespace().next().and_then(|n| n.parse().ok());
    }
    Some(p)
}

/// `pod triggered scale-up: [{https://.../instanceGroups/gke-c-gpu-pool-1234-grp 0->1 (max: 4)} {g2 1->3 (max: 5)}]`
fn scale_ups(message: &str) -> Option<Vec<ScaleUp>> {
    let mut out = Vec::new();
    for chunk in message.split('{').skip(1) {
        let body = chunk.split('}').next()?;
        let mut words = body.split_whitespace();
        let group_raw = words.next()?.to_string();
        let arrow = words.next()?;
        let (from, to) = arrow.split_once("->")?;
        let max = body
            .split("max:")
            .nth(1)
            .and_then(|m| m.trim().trim_end_matches(')').trim().parse().ok());
        let group = group_raw
            .rsplit('/')
            .next()
            .unwrap_or(&group_raw)
            .to_string();
        out.push(ScaleUp {
            group,
            group_raw,
            from: from.trim().parse().ok()?,
            to: to.trim().parse().ok()?,
            max,
        });
    }
    (!out.is_empty()).then_some(out)
}

/// `Scaled apps/v1.Deployment imagen/upscale-worker from 0 to 1, triggered by gcp-pubsubScaler`
/// `Deactivated apps/v1.Deployment imagen/upscale-worker from 1 to 0`
fn keda(message: &str, activated: bool) -> KedaScale {
    let lower = message.to_lowercase();
    let words: Vec<&str> = message.split_whitespace().collect();
    let kind = words
        .get(1)
        .filter(|w| w.contains('/'))
        .map(|w| w.to_string());
    let (namespace, name) = match words.get(2).and_then(|w| w.split_once('/')) {
        Some((ns, n)) => (Some(ns.to_string()), Some(n.to_string())),
        None => (None, words.get(2).map(|w| w.to_string())),
    };
    let number = |needle: &str| {
        after(message, &lower, needle)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
    };
    let triggered_by =
        after(message, &lower, "triggered by ").map(|r| r.trim().trim_end_matches('.').to_string());
    KedaScale {
        activated,
        kind,
        namespace,
        name,
        from: number(" from "),
        to: number(" to "),
        triggered_by,
    }
}

/// `Scaled up replica set <rs> to <n>`, `... to <n> from <m>`, `... from <m> to <n>` (up or down).
fn scaled_replica_set(message: &str) -> Option<Parsed> {
    let rest = message
        .strip_prefix("Scaled up replica set ")
        .or_else(|| message.strip_prefix("Scaled down replica set "))?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let num = |w: Option<&&str>| w.and_then(|w| w.trim_end_matches('.').parse::<u32>().ok());
    let replica_set = words.first()?.to_string();
    let (from, to) = match words.get(1).copied() {
        Some("to") => (
            words
                .iter()
                .position(|w| *w == "from")
                .and_then(|i| num(words.get(i + 1))),
            num(words.get(2))?,
        ),
        Some("from") => (num(words.get(2)), num(words.get(4))?),
        _ => return None,
    };
    Some(Parsed::ScaledReplicaSet {
        replica_set,
        from,
        to,
    })
}

/// Parses one event by its reason and message.
pub fn parse(reason: &str, message: &str) -> Parsed {
    let unparsed = || Parsed::Unparsed {
        reason: reason.to_string(),
        message: message.to_string(),
    };
    match reason.to_ascii_lowercase().as_str() {
        "pulling" => Parsed::Pulling {
            image: quoted(message),
        },
        "pulled" => pulled(message).map(Parsed::Pulled).unwrap_or_else(unparsed),
        "scheduled" => {
            let lower = message.to_lowercase();
            let node =
                after(message, &lower, " to ").map(|n| n.trim().trim_end_matches('.').to_string());
            Parsed::Scheduled { node }
        }
        "failedscheduling" => Parsed::FailedScheduling {
            message: message.to_string(),
        },
        "triggeredscaleup" => scale_ups(message)
            .map(Parsed::TriggeredScaleUp)
            .unwrap_or_else(unparsed),
        "failedscaleup" => {
            let lower = message.to_lowercase();
            let why = after(message, &lower, "failed: ")
                .map(|r| r.split(". Pod is at risk").next().unwrap_or(r))
                .unwrap_or(message)
                .trim()
                .trim_end_matches('.');
            let zones = after(message, &lower, "in zones ")
                .and_then(|r| r.split(" associated").next())
                .map(|z| z.trim().to_string())
                .filter(|z| !z.is_empty());
            Parsed::Problem {
                phase: "node_provisioning",
                reason: why.to_string(),
                node_group: zones,
            }
        }
        "nottriggerscaleup" => {
            // "pod didn't trigger scale-up: 3 in backoff after failed scale-up, 3 Insufficient nvidia.com/gpu":
            // the reasons, without their node-group counts.
            let lower = message.to_lowercase();
            let list = after(message, &lower, "scale-up: ")
                .or_else(|| after(message, &lower, "): "))
                .unwrap_or(message);
            let reasons: Vec<&str> = list
                .trim()
                .trim_end_matches('.')
                .split(", ")
                .map(|r| {
                    r.split_once(' ')
                        .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
                        .map_or(r, |(_, rest)| rest)
                })
                .collect();
            Parsed::Problem {
                phase: "node_provisioning",
                reason: format!("no scale-up: {}", reasons.join(", ")),
                node_group: None,
            }
        }
        "failed" if message.starts_with("Failed to pull image") => Parsed::Problem {
            phase: "image_pull",
            reason: "ErrImagePull".into(),
            node_group: None,
        },
        "backoff" if message.starts_with("Back-off pulling image") => Parsed::Problem {
            phase: "image_pull",
            reason: "ImagePullBackOff".into(),
            node_group: None,
        },
        "failedcreatepodsandbox" | "failedmount" | "failedattachvolume" => Parsed::Problem {
            phase: "container_start",
            reason: reason.to_string(),
            node_group: None,
        },
        "unhealthy" => {
            let probe = message.split(" probe failed").next().unwrap_or("");
            match probe {
                "Readiness" | "Startup" | "Liveness" => Parsed::Problem {
                    phase: "model_load",
                    reason: format!("{} probe failed", probe.to_lowercase()),
                    node_group: None,
                },
                _ => unparsed(),
            }
        }
        "kedascaletargetactivated" => Parsed::Keda(keda(message, true)),
        "kedascaletargetdeactivated" => Parsed::Keda(keda(message, false)),
        "removingnode" | "deletingnode" => Parsed::NodeRemoved,
        "successfulcreate" => match message.strip_prefix("Created pod: ") {
            Some(pod) => Parsed::CreatedPod {
                pod: pod.trim().to_string(),
            },
            None => unparsed(),
        },
        "successfuldelete" => match message.strip_prefix("Deleted pod: ") {
            Some(pod) => Parsed::DeletedPod {
                pod: pod.trim().to_string(),
            },
            None => unparsed(),
        },
        "scalingreplicaset" => scaled_replica_set(message).unwrap_or_else(unparsed),
        "scaledown" if message.to_lowercase().contains("removed") => Parsed::NodeRemoved,
        "created" | "started" | "killing" | "scaledown" | "scaledownempty" | "imagestreaming"
        | "failed" | "backoff" | "registerednode" | "nodeready" | "nodenotready" | "starting"
        | "successfulrescale" | "kedascalersstarted" | "scaledobjectready" => Parsed::Reason {
            reason: reason.to_string(),
        },
        _ => unparsed(),
    }
}

/// client-go names events `<object>.<hex UnixNano>`: that suffix is a sharper timestamp than the event's
/// whole-second fields. Returns microseconds since the Unix epoch.
pub fn event_name_unix_us(name: &str) -> Option<u64> {
    let (_, hex) = name.rsplit_once('.')?;
    if hex.len() < 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|ns| ns / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_us("26.345675198s"), Some(26_345_675));
        assert_eq!(go_duration_us("1m2.5s"), Some(62_500_000));
        assert_eq!(go_duration_us("1h2m3s"), Some(3_723_000_000));
        assert_eq!(go_duration_us("500ms"), Some(500_000));
        assert_eq!(go_duration_us("1.5µs"), Some(2));
        assert_eq!(go_duration_us("0s"), Some(0));
        assert_eq!(go_duration_us("soon"), None);
        assert_eq!(go_duration_us("5 s"), None);
    }

    #[test]
    fn kubelet_pulled_across_versions() {
        // 1.29+: waiting and size.
        let p = parse(
            "Pulled",
            r#"Successfully pulled image "us-docker.pkg.dev/p/imagen/upscale:1.4" in 26.345675198s (26.345675198s including waiting). Image size: 7051982300 bytes."#,
        );
        assert_eq!(
            p,
            Parsed::Pulled(Pulled {
                image: Some("us-docker.pkg.dev/p/imagen/upscale:1.4".into()),
                cached: false,
                duration_us: Some(26_345_675),
                including_waiting_us: Some(26_345_675),
                bytes: Some(7_051_982_300),
            })
        );
        // 1.25–1.28: waiting, no size.
        let Parsed::Pulled(p) = parse(
            "Pulled",
            r#"Successfully pulled image "nginx:1.25" in 1m2.5s (1m30s including waiting)"#,
        ) else {
            panic!()
        };
        assert_eq!(
            (p.duration_us, p.including_waiting_us, p.bytes),
            (Some(62_500_000), Some(90_000_000), None)
        );
        // Older: just the duration.
        let Parsed::Pulled(p) = parse(
            "pulled",
            r#"Successfully pulled image "nginx" in 2.013918364s"#,
        ) else {
            panic!()
        };
        assert_eq!(
            (p.duration_us, p.including_waiting_us),
            (Some(2_013_918), None)
        );
        // Cached.
        let Parsed::Pulled(p) = parse(
            "Pulled",
            r#"Container image "nginx:1.25" already present on machine"#,
        ) else {
            panic!()
        };
        assert!(p.cached && p.duration_us == Some(0) && p.image.as_deref() == Some("nginx:1.25"));
        // Something else under the same reason stays raw.
        assert!(matches!(
            parse("Pulled", "the image was pulled, probably"),
            Parsed::Unparsed { .. }
        ));
    }

    #[test]
    fn autoscaler_scale_ups_gke_urls_and_several_groups() {
        let m = "pod triggered scale-up: [{https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instanceGroups/gke-imagen-gpu-pool-3c1a2b-grp 0->1 (max: 4)}]";
        let Parsed::TriggeredScaleUp(v) = parse("TriggeredScaleUp", m) else {
            panic!()
        };
        assert_eq!(v, vec![ScaleUp {
            group: "gke-imagen-gpu-pool-3c1a2b-grp".into(),
            group_raw: "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instanceGroups/gke-imagen-gpu-pool-3c1a2b-grp".into(),
            from: 0,
            to: 1,
            max: Some(4),
        }]);
        let Parsed::TriggeredScaleUp(v) = parse(
            "triggeredscaleup",
            "pod triggered scale-up: [{gpu-a 0->1 (max: 2)} {gpu-b 1->3 (max: 5)}]",
        ) else {
            panic!()
        };
        assert_eq!(
            v.iter()
                .map(|s| (s.group.as_str(), s.from, s.to, s.max))
                .collect::<Vec<_>>(),
            vec![("gpu-a", 0, 1, Some(2)), ("gpu-b", 1, 3, Some(5))]
        );
        assert!(matches!(
            parse("TriggeredScaleUp", "pod triggered scale-up"),
            Parsed::Unparsed { .. }
        ));
        assert_eq!(
            parse(
                "NotTriggerScaleUp",
                "pod didn't trigger scale-up: 3 in backoff after failed scale-up, 3 Insufficient nvidia.com/gpu"
            ),
            Parsed::Problem {
                phase: "node_provisioning",
                reason:
                    "no scale-up: in backoff after failed scale-up, Insufficient nvidia.com/gpu"
                        .into(),
                node_group: None
            }
        );
        assert_eq!(
            parse(
                "FailedScaleUp",
                "Node scale up in zones us-central1-a associated with this pod failed: GCE out of resources. Pod is at risk of not being scheduled."
            ),
            Parsed::Problem {
                phase: "node_provisioning",
                reason: "GCE out of resources".into(),
                node_group: Some("us-central1-a".into())
            }
        );
        for (reason, message, phase, why) in [
            (
                "Failed",
                "Failed to pull image \"x\": rpc error: code = NotFound",
                "image_pull",
                "ErrImagePull",
            ),
            (
                "BackOff",
                "Back-off pulling image \"x\"",
                "image_pull",
                "ImagePullBackOff",
            ),
            (
                "Unhealthy",
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
                "model_load",
                "readiness probe failed",
            ),
            (
                "FailedCreatePodSandBox",
                "Failed to create pod sandbox: rpc error",
                "container_start",
                "FailedCreatePodSandBox",
            ),
        ] {
            assert_eq!(
                parse(reason, message),
                Parsed::Problem {
                    phase,
                    reason: why.into(),
                    node_group: None
                },
                "{reason}"
            );
        }
        // The repeats of a failed pull in `Error: ...` form add nothing.
        assert!(matches!(
            parse("Failed", "Error: ErrImagePull"),
            Parsed::Reason { .. }
        ));
    }

    #[test]
    fn keda_activation_old_and_new() {
        let Parsed::Keda(k) = parse(
            "KEDAScaleTargetActivated",
            "Scaled apps/v1.Deployment imagen/upscale-worker from 0 to 1, triggered by gcp-pubsubScaler",
        ) else {
            panic!()
        };
        assert_eq!(
            k,
            KedaScale {
                activated: true,
                kind: Some("apps/v1.Deployment".into()),
                namespace: Some("imagen".into()),
                name: Some("upscale-worker".into()),
                from: Some(0),
                to: Some(1),
                triggered_by: Some("gcp-pubsubScaler".into()),
            }
        );
        let Parsed::Keda(k) = parse(
            "KEDAScaleTargetDeactivated",
            "Deactivated apps/v1.Deployment imagen/upscale-worker from 1 to 0",
        ) else {
            panic!()
        };
        assert_eq!(
            (k.activated, k.from, k.to, k.triggered_by),
            (false, Some(1), Some(0), None)
        );
    }

    #[test]
    fn scheduled_reasons_and_raw_fallback() {
        assert_eq!(
            parse(
                "Scheduled",
                "Successfully assigned imagen/upscale-worker-7d4b9 to gke-imagen-gpu-pool-3c1a2b-x7k2"
            ),
            Parsed::Scheduled {
                node: Some("gke-imagen-gpu-pool-3c1a2b-x7k2".into())
            }
        );
        assert_eq!(
            parse("Started", "Started container worker"),
            Parsed::Reason {
                reason: "Started".into()
            }
        );
        assert_eq!(
            parse("Created", "Created container: worker"),
            Parsed::Reason {
                reason: "Created".into()
            }
        );
        // Scale-down: the node's end, in the node controller's and the autoscaler's words.
        for (reason, message) in [
            (
                "RemovingNode",
                "Node gke-imagen-gpu-pool-3c1a2b-x7k2 event: Removing Node gke-imagen-gpu-pool-3c1a2b-x7k2 from Controller",
            ),
            (
                "DeletingNode",
                "Deleting node gke-imagen-gpu-pool-3c1a2b-x7k2 because it does not exist in the cloud provider",
            ),
            ("ScaleDown", "node removed by cluster autoscaler"),
        ] {
            assert_eq!(parse(reason, message), Parsed::NodeRemoved, "{reason}");
        }
        assert_eq!(
            parse("ScaleDown", "marked the node as toBeDeleted/unschedulable"),
            Parsed::Reason {
                reason: "ScaleDown".into()
            },
            "being drained is not gone yet"
        );
        assert_eq!(
            parse(
                "ScaleDownEmpty",
                "Scale-down: removing empty node \"gke-x\""
            ),
            Parsed::Reason {
                reason: "ScaleDownEmpty".into()
            }
        );
        assert!(matches!(
            parse("SomethingNew", "🤷"),
            Parsed::Unparsed { .. }
        ));
    }

    #[test]
    fn workload_controllers_in_every_wording() {
        assert_eq!(
            parse(
                "SuccessfulCreate",
                "Created pod: upscale-worker-7d9f8b6c5d-q4x8z"
            ),
            Parsed::CreatedPod {
                pod: "upscale-worker-7d9f8b6c5d-q4x8z".into()
            }
        );
        assert_eq!(
            parse(
                "SuccessfulDelete",
                "Deleted pod: upscale-worker-7d9f8b6c5d-q4x8z"
            ),
            Parsed::DeletedPod {
                pod: "upscale-worker-7d9f8b6c5d-q4x8z".into()
            }
        );
        for (message, from, to) in [
            (
                "Scaled up replica set upscale-worker-7d9f8b6c5d to 1",
                None,
                1,
            ),
            (
                "Scaled up replica set upscale-worker-7d9f8b6c5d to 2 from 1",
                Some(1),
                2,
            ),
            (
                "Scaled down replica set upscale-worker-7d9f8b6c5d from 2 to 0",
                Some(2),
                0,
            ),
        ] {
            assert_eq!(
                parse("ScalingReplicaSet", message),
                Parsed::ScaledReplicaSet {
                    replica_set: "upscale-worker-7d9f8b6c5d".into(),
                    from,
                    to
                },
                "{message}"
            );
        }
        assert!(matches!(
            parse("ScalingReplicaSet", "Scaled sideways"),
            Parsed::Unparsed { .. }
        ));
    }

    #[test]
    fn client_go_event_names_carry_nanoseconds() {
        // 0x17a2b3c4d5e6f789 ns since the epoch.
        assert_eq!(
            event_name_unix_us("upscale-worker-7d4b9.17a2b3c4d5e6f789"),
            Some(0x17a2b3c4d5e6f789 / 1_000)
        );
        assert_eq!(event_name_unix_us("no-suffix"), None);
        assert_eq!(event_name_unix_us("pod.abc"), None);
    }
}
