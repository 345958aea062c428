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
    // KEDA scaled 0→1 at 10:02:30; pod created 10:02:31; the Scheduled event's eventTime 10:04:30.25; pulled
    // 10:05:17; container started 10:05:20; Ready 10:06:02. No message and no model_loaded signal in a dump.
    assert_eq!(s(&ph["pod_creation"]), Some(1.0));
    assert_eq!(s(&ph["node_provisioning"]), Some(119.25));
    assert_eq!(s(&ph["image_pull"]), Some(46.75));
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
    assert_eq!(s(&comic["phases_us"]["image_pull"]), Some(1.0));
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
