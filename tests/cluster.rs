//! `import`: a saved `kubectl get pods,nodes,events -o json` dump broken down into the usual per-pod phases, with
//! the expected values worked out by hand from `fixtures/kube/dump-scaleup.json`.

use crate::common::bin;

#[test]
fn a_kubectl_dump_breaks_down_into_exact_phases() {
    let out = tempfile::tempdir().unwrap();
    bin()
        .args([
            "import",
            "fixtures/kube/dump-scaleup.json",
            "--quiet",
            "--run-id",
            "i",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success();
    let d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("i/summary.json")).unwrap()).unwrap();
    let pod = |name: &str| crate::common::summary_pod(&d, name);
    let s = |v: &serde_json::Value| v.as_u64().map(|us| us as f64 / 1e6);
    let up = pod("upscale-worker-7d4b9c-x2k9p");
    assert_eq!(
        up["deployment"], "upscale-worker",
        "the ReplicaSet owner without its hash"
    );
    let ph = &up["phases_us"];
    // KEDA scaled 0→1 at 10:02:30; pod created 10:02:31; the Scheduled event's eventTime 10:04:30.25; Pulling
    // 10:04:31, pulled 10:05:17; container started 10:05:20; Ready 10:06:02. No message and no model_loaded
    // signal in a dump.
    assert_eq!(s(&ph["pod_creation"]), Some(1.0));
    assert_eq!(s(&ph["node_provisioning"]), Some(119.25));
    assert_eq!(
        s(&ph["image_pull"]),
        Some(46.0),
        "from the kubelet's Pulling"
    );
    assert_eq!(s(&ph["container_start"]), Some(3.0));
    assert_eq!(
        s(&ph["model_load"]),
        Some(42.0),
        "container start → Ready without a model_loaded signal"
    );
    assert_eq!(s(&ph["total"]), Some(212.0));
    assert!(
        ph["activation"].is_null() && ph["ready"].is_null() && ph["first_message"].is_null(),
        "unknown, never made up"
    );
    let comic = pod("comic-worker-5f6d7-aaaaa");
    assert_eq!(comic["image_cached"], true);
    assert_eq!(
        s(&comic["phases_us"]["image_pull"]),
        Some(0.0),
        "already present on the node: no pull"
    );
    assert!(
        comic["phases_us"]["pod_creation"].is_null(),
        "no Deployment change for comic in the dump"
    );
    // The scale-up (deduplicated from the pod's event) at 10:02:41, the node registered 10:03:50 and Ready 10:04:05.
    let series = |label: &str| {
        d["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["label"] == label)
            .unwrap()["count"]
            .as_u64()
    };
    assert_eq!(series("node.boot"), Some(1));
    assert!(d["warnings"].as_array().unwrap().iter().any(|w| {
        w.as_str()
            .unwrap()
            .contains("1 event messages were not recognised")
    }));
    assert!(out.path().join("i/report.html").is_file());
}

#[test]
fn a_dump_that_is_not_json_or_empty_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "NAME READY STATUS\nupscale 1/1 Running\n").unwrap();
    bin()
        .arg("import")
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "kubectl get pods,nodes,events -o json",
        ));
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, r#"{"apiVersion":"v1","kind":"List","items":[]}"#).unwrap();
    bin()
        .arg("import")
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no pods, nodes or events"));
}

/// `imagen-load import FILES... --run-id ID`, and its summary.json.
fn import(files: &[&str], id: &str, out: &std::path::Path) -> serde_json::Value {
    bin()
        .arg("import")
        .args(files)
        .args(["--quiet", "--run-id", id, "--out"])
        .arg(out)
        .assert()
        .success();
    serde_json::from_slice(&std::fs::read(out.join(id).join("summary.json")).unwrap()).unwrap()
}

const L4: &str = "fixtures/kube/events/gke-l4-scale-up.json";

/// A whole GPU cold start from Events alone (no Pod, no Node: they were gone by the morning), built from the
/// wordings of the scheduler, cluster-autoscaler, kubelet and the workload controllers. The expected values are
/// read off the events by hand (fixtures/kube/events/make-events.py writes each event from one instant):
/// ScalingReplicaSet 10:02:31.204117, SuccessfulCreate 10:02:31.262840, Scheduled (eventTime) 10:03:55.903517,
/// Pulling 10:03:57.214301, Pulled 10:04:01.760844 ("in 4.546s"), Started 10:04:03.412955.
#[test]
fn events_alone_give_a_gpu_cold_starts_phases_and_its_node_group() {
    let out = tempfile::tempdir().unwrap();
    let d = import(&[L4], "l4", out.path());
    let p = crate::common::summary_pod(&d, "upscale-worker-7d9f8b6c5d-q4x8z");
    assert_eq!(p["deployment"], "upscale-worker");
    let ph = &p["phases_us"];
    assert_eq!(ph["pod_creation"], 58_723);
    assert_eq!(ph["node_provisioning"], 84_640_677, "created → Scheduled");
    assert_eq!(ph["image_pull"], 4_546_543, "Pulling → Pulled");
    assert_eq!(ph["container_start"], 1_652_111, "Pulled → Started");
    for unknown in ["model_load", "ready", "total", "first_message"] {
        assert!(ph[unknown].is_null(), "{unknown} is not in Events");
    }
    assert_eq!(
        p["scale_up_group"],
        "gke-imagen-prod-gpu-l4-g2-5a8c3e1f-grp"
    );
    let kubelet = d["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "kubelet.image_pull")
        .unwrap();
    // The kubelet's own "4.546s", to the histogram's 3 significant digits.
    let k = kubelet["p50_us"].as_u64().unwrap();
    assert!((4_546_000..4_551_000).contains(&k), "{k}");
    assert_eq!(
        d["cost"]["observed"], false,
        "Events name nodes, not their GPUs"
    );
    assert!(d["cost"]["cost_usd"].is_null());
    assert_eq!(d["problems"].as_array().unwrap().len(), 0);
}

/// One event stream, three views: `kubectl get events` (core/v1), `kubectl get events.v1.events.k8s.io`
/// (`regarding`, `note`, `deprecated*`), and GKE's Cloud Logging export (each Event in `jsonPayload`, without
/// `count` and `firstTimestamp`): the same phases, to the microsecond.
#[test]
fn core_v1_events_k8s_io_and_cloud_logging_give_identical_phases() {
    let out = tempfile::tempdir().unwrap();
    let views = [
        L4,
        "fixtures/kube/events/gke-l4-scale-up.events-v1.json",
        "fixtures/kube/events/gke-l4-scale-up.cloud-logging.json",
    ];
    let phases: Vec<serde_json::Value> = views
        .iter()
        .enumerate()
        .map(|(i, f)| import(&[f], &format!("v{i}"), out.path())["pods"].clone())
        .collect();
    assert_eq!(phases[0], phases[1], "events.k8s.io/v1");
    assert_eq!(phases[0], phases[2], "Cloud Logging");
}

/// Event names whose suffix is not a creation UnixNano (other libraries, hand-made or renamed dumps): the
/// times come from the Events' own stamps, never 1970; the phases agree with the true ones within the stamps'
/// resolution (whole seconds, where the µs of the name cannot be trusted).
#[test]
fn event_names_that_are_not_timestamps_are_not_taken_for_times() {
    let out = tempfile::tempdir().unwrap();
    let good = import(&[L4], "good", out.path());
    let bad = import(
        &["fixtures/kube/events/gke-l4-scale-up.bad-names.json"],
        "bad",
        out.path(),
    );
    assert!(
        bad["run"]["end_us"].as_u64().unwrap() < 3_600_000_000,
        "an hour of events, not decades: {}",
        bad["run"]["end_us"]
    );
    let (g, b) = (&good["pods"][0]["phases_us"], &bad["pods"][0]["phases_us"]);
    for phase in ["node_provisioning", "image_pull", "container_start"] {
        let (g, b) = (g[phase].as_i64().unwrap(), b[phase].as_i64().unwrap());
        assert!((g - b).abs() <= 1_000_000, "{phase}: {b} against {g}");
    }
}

/// The morning after a slow GPU cold start: two zones failed (stockout, IP exhaustion), the third was in back-off,
/// and the first image pull failed. The report says why, next to the phases they lengthened, and the gate counts
/// the failed scale-ups.
#[test]
fn failed_scale_ups_and_pulls_are_reported_next_to_the_phases_they_lengthened() {
    let out = tempfile::tempdir().unwrap();
    let f = "fixtures/kube/events/failed-scale-up.json";
    let d = import(&[f], "failed", out.path());
    let p = crate::common::summary_pod(&d, "upscale-worker-7d9f8b6c5d-n5wjf");
    assert_eq!(
        p["phases_us"]["image_pull"], 88_918_786,
        "first Pulling → Pulled, the failed attempt and its back-off included"
    );
    assert_eq!(p["phases_us"]["container_start"], 1_975_590);
    assert_eq!(
        p["scale_up_group"],
        "gke-imagen-prod-gpu-l4-g2-e61f3a90-grp"
    );
    let problems: Vec<(String, String, Option<String>, u64)> = d["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["phase"].as_str().unwrap().into(),
                p["reason"].as_str().unwrap().into(),
                p["node_group"].as_str().map(Into::into),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let np = "node_provisioning".to_string();
    assert_eq!(
        problems,
        vec![
            (
                np.clone(),
                "GCE out of resources".into(),
                Some("us-central1-a".into()),
                1
            ),
            (
                np.clone(),
                "IP space exhausted".into(),
                Some("us-central1-b".into()),
                1
            ),
            (
                np,
                "no scale-up: in backoff after failed scale-up, Insufficient nvidia.com/gpu".into(),
                None,
                1
            ),
            ("image_pull".into(), "ErrImagePull".into(), None, 1),
            ("image_pull".into(), "ImagePullBackOff".into(), None, 1),
        ]
    );
    // In the terminal summary, beside the phases.
    let run = bin()
        .args(["import", f, "--run-id", "shown", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let text = String::from_utf8(run.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains(
            "node provisioning: 2 failed scale-ups: GCE out of resources ×1 (us-central1-a)"
        ),
        "{text}"
    );
    // And as a gate: two failed scale-ups.
    let gates = out.path().join("gates.toml");
    std::fs::write(
        &gates,
        "[thresholds]\nscale_up_failures = [\"count == 0\"]\n",
    )
    .unwrap();
    bin()
        .arg("analyze")
        .arg(out.path().join("failed"))
        .arg("--gates")
        .arg(&gates)
        .arg("--quiet")
        .assert()
        .code(1);
}

/// Autopilot: node auto-provisioning creates the pool (`gk3-...-nap-...`) before the scale-up.
#[test]
fn an_autopilot_scale_up_is_broken_down_with_its_auto_provisioned_group() {
    let out = tempfile::tempdir().unwrap();
    let d = import(
        &["fixtures/kube/events/autopilot-nap-scale-up.json"],
        "ap",
        out.path(),
    );
    let p = &d["pods"][0];
    assert_eq!(p["phases_us"]["node_provisioning"], 147_553_467);
    assert_eq!(p["phases_us"]["image_pull"], 38_204_786);
    assert_eq!(p["phases_us"]["container_start"], 1_840_808);
    assert_eq!(
        p["scale_up_group"],
        "gk3-imagen-autopilot-nap-1x9k2m7q-3f9a1c2e-grp"
    );
}

/// KEDA's activation and deactivation Events, 545 s apart, make one scale cycle; the readiness probe failing
/// five times while the model loaded is counted on its pod.
#[test]
fn a_keda_cycle_from_its_events_fills_the_cycle_table() {
    let out = tempfile::tempdir().unwrap();
    let d = import(
        &["fixtures/kube/events/keda-cycle.json"],
        "keda",
        out.path(),
    );
    let cycles = d["cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0]["deployment"], "upscale-worker");
    assert_eq!(cycles[0]["peak_replicas"], 2);
    assert_eq!(cycles[0]["to_zero_replicas_us"], 545_000_000);
    let q = crate::common::summary_pod(&d, "upscale-worker-7d9f8b6c5d-q4x8z");
    assert_eq!(q["phases_us"]["pod_creation"], 66_130);
    assert_eq!(q["phases_us"]["image_pull"], 0, "already present");
    assert_eq!(q["phases_us"]["container_start"], 872_162);
    assert_eq!(
        q["problems"],
        serde_json::json!([{"phase": "model_load", "reason": "readiness probe failed", "node_group": null, "count": 5, "pods": 1}])
    );
}

/// Several dumps: the same Events twice count once; `kubectl get events -A` across namespaces keeps pods of the
/// same name apart.
#[test]
fn several_dumps_merge_and_namespaces_stay_apart() {
    let out = tempfile::tempdir().unwrap();
    let once = import(&[L4], "once", out.path());
    let twice = import(&[L4, L4], "twice", out.path());
    assert_eq!(once["pods"], twice["pods"]);
    assert_eq!(once["series"], twice["series"]);
    // The same story in another namespace.
    let text = std::fs::read_to_string(crate::common::path(L4))
        .unwrap()
        .replace("\"namespace\": \"imagen\"", "\"namespace\": \"staging\"")
        .replace("imagen/upscale-worker", "staging/upscale-worker")
        .replace("\"uid\": \"", "\"uid\": \"staging-");
    let other = out.path().join("staging.json");
    std::fs::write(&other, text).unwrap();
    let both = import(&[L4, other.to_str().unwrap()], "both", out.path());
    let pods: Vec<&str> = both["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pod"].as_str().unwrap())
        .collect();
    assert_eq!(pods.len(), 2, "one pod per namespace: {pods:?}");
    assert!(
        pods.contains(&"imagen/upscale-worker-7d9f8b6c5d-q4x8z"),
        "{pods:?}"
    );
    assert!(
        pods.contains(&"staging/upscale-worker-7d9f8b6c5d-q4x8z"),
        "{pods:?}"
    );
}

/// What is not a dump, or a dump whose times no cluster wrote, is refused with the file and what was expected;
/// nothing is analysed, nothing panics.
#[test]
fn what_is_not_a_dump_or_has_impossible_times_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let not_k8s = write(
        "prom.json",
        r#"{"status": "success", "data": {"result": []}}"#,
    );
    bin()
        .arg("import")
        .arg(&not_k8s)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "prom.json: found an object with the keys data, status where Kubernetes objects were expected",
        ))
        .stderr(predicates::str::contains("gcloud logging read"));
    let array = write("numbers.json", "[1, 2, 3]");
    bin()
        .arg("import")
        .arg(&array)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "numbers.json: found a JSON array with no Kubernetes objects in it",
        ));
    // One event dated 1970 (an eventTime written as zero) beside a real cold start.
    let mut l4: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crate::common::path(L4)).unwrap()).unwrap();
    let scheduled = l4["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["reason"] == "Scheduled")
        .unwrap();
    scheduled["eventTime"] = serde_json::json!("1970-01-01T00:00:00.000000Z");
    let old = write("epoch.json", &l4.to_string());
    bin()
        .arg("import")
        .arg(&old)
        .args(["--out"])
        .arg(dir.path().join("out"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not a real cluster's"))
        .stderr(predicates::str::contains("1970-01-01"));
    assert!(!dir.path().join("out").exists(), "nothing written");
}
