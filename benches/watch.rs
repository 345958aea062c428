//! How fast the Kubernetes observer ingests what the API server sends, and what watching a big cluster costs in
//! memory. The real `kube` client and the harness's watchers and translator run against the fake API server of
//! the tests (`tests/fakekube.rs`) on loopback:
//!
//! - the first lists hold `PODS` worker pods and `NODES` GPU nodes (realistic objects, ~3 KB a pod);
//! - then the pods' watch streams `UPDATES` pod changes (a pod's readiness flapping, one new fact each), in
//!   bodies of 2,000;
//! - measured: the time from the first list to the last fact out of the translator (the whole path: HTTP, JSON
//!   into the k8s-openapi types, back to JSON, translation, dedupe), and the process's resident memory with the
//!   cluster watched (the fake server's own scripts are counted in the baseline, taken before watching).
//!
//! `cargo bench --bench watch` (or `cargo bench --bench watch -- 1000 200 40000` for pods, nodes, updates).

#[path = "../tests/fakekube.rs"]
mod fakekube;

use fakekube::{FakeKube, Script, WatchStep};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn stamp(origin: u64, offset_s: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(origin / 1_000_000 + offset_s);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pods = *args.first().unwrap_or(&1000) as usize;
    let nodes = *args.get(1).unwrap_or(&200) as usize;
    let updates = *args.get(2).unwrap_or(&40_000) as usize;

    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kube/scale-0-2-0.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let timeline = fixture["timeline"].as_array().unwrap();
    // The fixture's running, ready pod and Ready GPU node as templates.
    let pod_template = timeline
        .iter()
        .rev()
        .find(|s| s["resource"] == "pods" && s["type"] == "MODIFIED")
        .unwrap()["object"]
        .clone();
    let node_template = timeline
        .iter()
        .find(|s| s["resource"] == "nodes" && s["type"] == "MODIFIED")
        .unwrap()["object"]
        .clone();
    let origin = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let pod = |i: usize, ready_at: u64| {
        let mut p = pod_template.clone();
        let name = format!("upscale-worker-6f9c8d7b5-{i:05}");
        p["metadata"]["name"] = json!(name);
        p["metadata"]["uid"] = json!(format!("uid-{name}"));
        p["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("deletionTimestamp");
        p["spec"]["nodeName"] = json!(format!(
            "gke-imagen-gpu-pool-3c1a2b-{:04}",
            i % nodes.max(1)
        ));
        for c in p["status"]["conditions"].as_array_mut().unwrap() {
            if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                c["lastTransitionTime"] = json!(stamp(origin, ready_at));
            }
        }
        p
    };
    let node_list: Vec<Value> = (0..nodes)
        .map(|i| {
            let mut n = node_template.clone();
            let name = format!("gke-imagen-gpu-pool-3c1a2b-{i:04}");
            n["metadata"]["name"] = json!(name);
            n["metadata"]["uid"] = json!(format!("uid-{name}"));
            n
        })
        .collect();
    let pod_list: Vec<Value> = (0..pods).map(|i| pod(i, 1)).collect();
    // Each update moves one pod's readiness to a later second: one new fact each.
    let watches: Vec<WatchStep> = (0..updates)
        .collect::<Vec<_>>()
        .chunks(2000)
        .map(|chunk| WatchStep::Lines {
            delay: Duration::ZERO,
            lines: chunk
                .iter()
                .map(|u| {
                    (
                        "MODIFIED".to_string(),
                        pod(u % pods.max(1), 2 + (u / pods.max(1)) as u64),
                    )
                })
                .collect(),
        })
        .collect();
    let mut scripts: HashMap<String, Script> = fakekube::steady(&json!({}));
    scripts.insert(
        fakekube::PATHS[0].1.into(),
        Script::new("PodList", "v1", vec![pod_list], watches),
    );
    scripts.insert(
        fakekube::PATHS[1].1.into(),
        Script::new("NodeList", "v1", vec![node_list], Vec::new()),
    );
    let server = FakeKube::start(scripts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let baseline_kib = rss_kib("VmRSS:");
    let (events, listed_at, done_at, listed_kib, counts) = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let started = Instant::now();
        let watching = imagen_load::observe::cluster::watch::start(
            server.client(),
            &Default::default(),
            origin,
            tx,
        );
        // Facts out of the first lists: each pod's creation (pre-existing) and readiness (after time zero), each
        // node's creation; their older facts (scheduling, start, node readiness) are history, counted and left out.
        let mut events = 0usize;
        let mut listed_at = None;
        let mut listed_kib = 0;
        let want_listed = pods * 2 + nodes;
        let want = want_listed + updates;
        while events < want {
            match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
                Ok(Some(_)) => events += 1,
                _ => break,
            }
            if events == want_listed {
                listed_at = Some(started.elapsed());
                listed_kib = rss_kib("VmRSS:");
            }
        }
        let done_at = started.elapsed();
        let counts = watching.stop().await;
        (events, listed_at, done_at, listed_kib, counts)
    });
    let peak_kib = rss_kib("VmHWM:");
    let listed = listed_at.unwrap_or(done_at);
    let streamed = done_at.saturating_sub(listed);
    println!(
        "watch ingest: {pods} pods, {nodes} nodes listed, then {updates} pod updates streamed"
    );
    println!(
        "  first lists: {} facts in {:.3}s ({:.0} objects/s)",
        pods * 2 + nodes,
        listed.as_secs_f64(),
        (pods + nodes) as f64 / listed.as_secs_f64()
    );
    println!(
        "  streamed:    {updates} updates in {:.3}s = {:.0} events/s",
        streamed.as_secs_f64(),
        updates as f64 / streamed.as_secs_f64()
    );
    println!(
        "  facts out: {events} (objects seen {}, emitted {}, before start {})",
        counts.objects, counts.emitted, counts.before_start
    );
    println!(
        "  memory: baseline {:.1} MiB (fake server and its scripts), {:.1} MiB with the cluster listed (+{:.1} MiB), peak {:.1} MiB",
        baseline_kib as f64 / 1024.0,
        listed_kib as f64 / 1024.0,
        listed_kib.saturating_sub(baseline_kib) as f64 / 1024.0,
        peak_kib as f64 / 1024.0
    );
    assert_eq!(
        events,
        pods * 2 + nodes + updates,
        "every fact came out once"
    );
}
