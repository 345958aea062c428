//! The Kubernetes watchers against a local fake API server, through the real `kube` client: list and watch, a
//! watch that drops, a `410 Gone` that forces a re-list. The objects are those of `fixtures/kube/dump-scaleup.json`
//! delivered over time; the events the watchers produce must break down into exactly the per-pod phases that
//! `import` finds in the dump (tests/cluster.rs), with nothing counted twice.

use crate::fakekube::{FakeKube, Script, WatchStep};
use imagen_load::event::{Event, EventKind, Source};
use imagen_load::observe::cluster::watch::{self, ClusterState, ZeroScope};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn lines(objects: &[(&str, Value)]) -> WatchStep {
    WatchStep::Lines {
        delay: Duration::ZERO,
        lines: objects
            .iter()
            .map(|(t, o)| (t.to_string(), o.clone()))
            .collect(),
    }
}

/// Collects what the watchers emit until `done` holds and nothing new came for a while (at most 30 s).
async fn collect(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    done: impl Fn() -> bool,
) -> Vec<Event> {
    let mut got: Vec<Event> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout(Duration::from_millis(1500), rx.recv()).await {
            Ok(Some(e)) => got.push(e),
            Ok(None) => break,
            Err(_) if done() => break,
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "the watchers did not play the script: {got:?}"
            ),
        }
    }
    got
}

/// No fact twice, though re-lists deliver every object again. `states`: kinds that are states (replicas, scaler
/// conditions) may repeat at other times, e.g. inactive before the run and again after the cycle.
fn assert_no_duplicates(got: &[Event], states: bool) {
    let mut keys: HashMap<String, usize> = HashMap::new();
    for e in got {
        let state = matches!(
            e.kind,
            EventKind::Replicas { .. }
                | EventKind::ScalerActive { .. }
                | EventKind::ScalerCondition { .. }
        );
        let key = if states && state {
            format!("{} {:?}", e.t_us, e.kind)
        } else {
            format!("{:?}", e.kind)
        };
        *keys.entry(key).or_default() += 1;
    }
    assert!(
        keys.values().all(|n| *n == 1),
        "duplicates: {:?}",
        keys.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

/// Writes the watchers' events as a run's log (header, events in time order, end) and analyses it with the
/// binary; returns summary.json.
fn analyse(mut got: Vec<Event>, origin: u64, streams: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        imagen_load::event::log::EventLogWriter::create(&dir.path().join("events.jsonl")).unwrap();
    let end = got.iter().map(|e| e.t_us).max().unwrap();
    log.append(&Event::new(
        0,
        Source::Harness,
        EventKind::RunStarted {
            log_version: imagen_load::event::EVENT_LOG_VERSION,
            run_id: "w".into(),
            workload: "watch".into(),
            seed: 0,
            target: "kube".into(),
            wall_clock_start_unix_us: origin,
            streams: streams.iter().map(|s| s.to_string()).collect(),
            warmup_us: 0,
            deadline_us: end,
            price_per_gpu_hour_usd: 0.48,
            shard: None,
            pipelines: Vec::new(),
            cluster_observed: Some(true),
            overrides: Vec::new(),
            timer_slack_us: None,
        },
    ))
    .unwrap();
    got.sort_by_key(|e| e.t_us);
    for e in &got {
        log.append(e).unwrap();
    }
    log.append(&Event::new(
        end,
        Source::Harness,
        EventKind::RunFinished {
            interrupted: false,
            reason: None,
        },
    ))
    .unwrap();
    log.finish().unwrap();
    crate::common::bin()
        .arg("analyze")
        .arg(dir.path())
        .arg("--quiet")
        .assert()
        .success();
    serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap()
}

fn secs(v: &Value) -> Option<f64> {
    v.as_u64().map(|us| us as f64 / 1e6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_survive_a_drop_and_a_410_and_give_imports_phases_once() {
    let dump: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::path("fixtures/kube/dump-scaleup.json")).unwrap(),
    )
    .unwrap();
    let items = dump["items"].as_array().unwrap().clone();
    let named = |n: &str| {
        items
            .iter()
            .find(|o| o["metadata"]["name"] == n)
            .unwrap()
            .clone()
    };
    let events: Vec<Value> = items
        .iter()
        .filter(|o| o["kind"] == "Event")
        .cloned()
        .collect();
    let (old_node, new_node) = (
        named("gke-imagen-gpu-pool-3c1a2b-old1"),
        named("gke-imagen-gpu-pool-3c1a2b-x7k2"),
    );
    let (upscale, comic) = (
        named("upscale-worker-7d4b9c-x2k9p"),
        named("comic-worker-5f6d7-aaaaa"),
    );
    let scripts: HashMap<String, Script> = [
        (
            "/api/v1/namespaces/imagen/pods",
            Script::new(
                "PodList",
                "v1",
                vec![vec![], vec![upscale.clone()]],
                vec![
                    lines(&[("ADDED", upscale.clone())]),
                    WatchStep::Gone,
                    lines(&[("ADDED", comic.clone()), ("MODIFIED", upscale.clone())]),
                ],
            ),
        ),
        (
            "/api/v1/nodes",
            Script::new(
                "NodeList",
                "v1",
                vec![
                    vec![old_node.clone()],
                    vec![old_node.clone(), new_node.clone()],
                ],
                vec![lines(&[("ADDED", new_node.clone())]), WatchStep::Gone],
            ),
        ),
        (
            "/api/v1/namespaces/imagen/events",
            Script::new(
                "EventList",
                "v1",
                vec![events[..4].to_vec(), events.clone()],
                vec![
                    lines(
                        &events[4..8]
                            .iter()
                            .map(|e| ("ADDED", e.clone()))
                            .collect::<Vec<_>>(),
                    ),
                    WatchStep::Gone,
                    lines(
                        &events[8..]
                            .iter()
                            .map(|e| ("ADDED", e.clone()))
                            .collect::<Vec<_>>(),
                    ),
                ],
            ),
        ),
        (
            "/api/v1/events",
            Script::new("EventList", "v1", vec![vec![]], vec![]),
        ),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_string(), s))
    .collect();
    let server = FakeKube::start(scripts);
    let client = server.client();
    // Time zero at the dump's first instant, as `import` takes it.
    let origin =
        imagen_load::observe::cluster::import::ts(Some(&json!("2026-11-28T09:00:00Z"))).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watching = imagen_load::observe::cluster::watch::start(
        client,
        &imagen_load::observe::cluster::watch::WatchOptions::default(),
        origin,
        tx,
    );
    // Until every script has been played and nothing new arrives.
    let mut got = collect(&mut rx, || {
        [
            "/api/v1/namespaces/imagen/pods",
            "/api/v1/nodes",
            "/api/v1/namespaces/imagen/events",
        ]
        .iter()
        .all(|p| server.scripts[*p].played())
    })
    .await;
    let counts = watching.stop().await;
    while let Ok(e) = rx.try_recv() {
        got.push(e);
    }
    for (path, s) in server
        .scripts
        .iter()
        .filter(|(p, _)| !p.ends_with("/api/v1/events"))
    {
        assert!(
            s.list_calls.load(Ordering::SeqCst) >= 2,
            "{path}: the 410 made the watcher list again"
        );
    }
    assert_no_duplicates(&got, false);
    assert_eq!(
        counts.unparsed, 1,
        "SomeFutureReason is counted, not a crash"
    );
    assert!(got.iter().all(|e| e.source == Source::Kube));

    // The log the watchers' events make, analysed as any run's.
    let d = analyse(got, origin, &["upscale-worker", "comic-worker"]);
    let pod = |name: &str| crate::common::summary_pod(&d, name);
    let s = secs;
    let ph = pod("upscale-worker-7d4b9c-x2k9p")["phases_us"].clone();
    // The same values as `import` of the dump (tests/cluster.rs), worked out there by hand.
    assert_eq!(s(&ph["pod_creation"]), Some(1.0));
    assert_eq!(
        s(&ph["node_provisioning"]),
        Some(119.25),
        "the Scheduled event's µs time, not the condition's second"
    );
    assert_eq!(
        s(&ph["image_pull"]),
        Some(46.0),
        "the kubelet's Pulling 10:04:31 → pulled 10:05:17"
    );
    assert_eq!(s(&ph["container_start"]), Some(3.0));
    assert_eq!(s(&ph["model_load"]), Some(42.0));
    assert_eq!(s(&ph["total"]), Some(212.0));
    let comic = pod("comic-worker-5f6d7-aaaaa");
    assert_eq!(comic["image_cached"], true);
    assert_eq!(
        s(&comic["phases_us"]["image_pull"]),
        Some(0.0),
        "already present on the node: no pull"
    );
}

#[test]
fn watch_without_a_cluster_says_how_to_point_it_at_one_and_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    crate::common::bin()
        .args(["watch", "--duration", "1s", "--out"])
        .arg(home.path().join("results"))
        .env("KUBECONFIG", home.path().join("nowhere"))
        .env("HOME", home.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "cannot find a Kubernetes configuration",
        ))
        .stderr(predicates::str::contains("fix: set KUBECONFIG"));
    assert!(!home.path().join("results").exists());
}

/// kubectl's habits: `--kubeconfig FILE` (over `KUBECONFIG`), `-n` and `-l`, and without `-n` the namespace of the
/// kubeconfig's context (the default was `imagen` whatever the context said). The API server here is a closed
/// port: what is checked is the namespace the watcher was pointed at.
#[test]
fn kubectl_flags_and_the_contexts_namespace_are_honoured() {
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("kubeconfig");
    let port = crate::pubsub::free_port();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             users:\n- name: u\n  user: {{}}\ncontexts:\n- name: gpu\n  context:\n    cluster: c\n    user: u\n\
             \x20   namespace: gpu-jobs\n- name: bare\n  context:\n    cluster: c\n    user: u\ncurrent-context: gpu\n"
        ),
    )
    .unwrap();
    let watch = |extra: &[&str]| {
        let o = crate::common::bin()
            .args(["watch", "--duration", "1s", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(extra)
            .arg("--out")
            .arg(home.path().join("results"))
            .env("KUBECONFIG", home.path().join("nowhere"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let said = |err: &str| {
        err.lines()
            .find_map(|l| l.strip_prefix("watching namespace "))
            .map(|l| l.split(' ').next().unwrap().to_string())
    };
    let err = watch(&[]);
    assert_eq!(said(&err).as_deref(), Some("gpu-jobs"), "{err}");
    let err = watch(&["-n", "imagen", "-l", "app=worker"]);
    assert_eq!(said(&err).as_deref(), Some("imagen"), "{err}");
    let err = watch(&["--context", "bare"]);
    assert_eq!(said(&err).as_deref(), Some("imagen"), "{err}");
}

/// The fixture of a whole GPU scale cycle, 0 → 2 → 0 (`fixtures/kube/scale-0-2-0.json`, written by its script).
fn scale_cycle() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(crate::common::path("fixtures/kube/scale-0-2-0.json")).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_scale_cycle_0_2_0_watched_through_drops_and_410s_breaks_down_exactly() {
    let fixture = scale_cycle();
    let server = FakeKube::start(crate::fakekube::timeline(
        &fixture,
        |res, n| match res {
            // The pods' deletions fall in the gap: only the re-list shows the pods gone.
            "pods" => (n - 2, n),
            _ => (n / 2, n / 2),
        },
        // The nodes leave after the events that say when they did (a DELETED node carries no time).
        |res| match res {
            "nodes" => Duration::from_millis(1500),
            _ => Duration::ZERO,
        },
    ));
    check_scale_cycle(&fixture, &server, Some(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_drops_every_watch_loses_nothing_and_repeats_nothing() {
    let fixture = scale_cycle();
    let server = FakeKube::start(crate::fakekube::flaky_timeline(&fixture, |res| match res {
        "nodes" => Duration::from_millis(1500),
        _ => Duration::ZERO,
    }));
    check_scale_cycle(&fixture, &server, None).await;
}

/// Watches the 0 → 2 → 0 cycle from `server` and checks every fact and the exact breakdown. `lists`: how many
/// times each resource must have been listed (None: at least twice).
async fn check_scale_cycle(fixture: &Value, server: &FakeKube, lists: Option<usize>) {
    let origin = imagen_load::observe::cluster::import::ts(Some(&fixture["origin"]))
        .expect("the fixture's origin");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = watch::WatchOptions {
        selector: Some("app.kubernetes.io/component=worker".into()),
        ..Default::default()
    };
    let watching = watch::start(server.client(), &opts, origin, tx);
    let mut got = collect(&mut rx, || server.played()).await;
    // Back at zero, GPU nodes included: the state the wait for zero reads.
    watching
        .wait_for_zero(ZeroScope::Nodes, Duration::from_secs(10))
        .await
        .expect("the cluster is back at zero");
    let state: ClusterState = watching.state();
    assert!(state.known());
    assert_eq!(
        state.deployments.get("upscale-worker"),
        Some(&(0, 0)),
        "{state:?}"
    );
    assert!(
        state.pods.is_empty() && state.gpu_nodes.is_empty(),
        "{state:?}"
    );
    let counts = watching.stop().await;
    while let Ok(e) = rx.try_recv() {
        got.push(e);
    }
    for (path, s) in server.scripts.iter() {
        let n = s.list_calls.load(Ordering::SeqCst);
        match lists {
            Some(want) => assert_eq!(n, want, "{path}: listed, then again after the 410"),
            None => assert!(
                n >= s.lists.len().min(2),
                "{path}: listed again after each 410 ({n})"
            ),
        }
    }
    assert_no_duplicates(&got, true);
    assert_eq!(counts.unparsed, 1, "SomeFutureReason is counted");
    let at = |pred: &dyn Fn(&EventKind) -> bool| -> Vec<f64> {
        got.iter()
            .filter(|e| pred(&e.kind))
            .map(|e| e.t_us as f64 / 1e6)
            .collect()
    };
    // Deployment states at their last write (managedFields), the one before the run at time zero.
    let mut replicas: Vec<(f64, u32, u32)> = got
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Replicas {
                deployment,
                desired,
                ready,
            } if deployment == "upscale-worker" => {
                // KEDA's events name only the desired count (ready unknown); the Deployment object has both.
                ready.map(|ready| (e.t_us as f64 / 1e6, *desired, ready))
            }
            _ => None,
        })
        .collect();
    replicas.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        replicas,
        vec![
            (0.0, 0, 0),
            (5.0, 1, 0),
            (35.0, 2, 0),
            (214.0, 2, 1),
            (235.0, 2, 2),
            // The Deployment's own write (KEDA's deactivation event at 600 s names only the desired count).
            (601.0, 0, 0),
        ]
    );
    assert_eq!(
        at(&|k| matches!(k, EventKind::ScalerActive { active: true, .. })),
        vec![5.0],
        "the KEDA event and the ScaledObject's condition say it once"
    );
    assert!(at(&|k| matches!(k, EventKind::ScalerActive { active: false, .. })).contains(&600.0));
    let mut node_gone = at(&|k| matches!(k, EventKind::NodeDeleted { .. }));
    node_gone.sort_by(f64::total_cmp);
    assert_eq!(
        node_gone,
        vec![1280.0, 1305.0],
        "the autoscaler's `node removed` and the node controller's RemovingNode"
    );
    assert_eq!(
        at(&|k| matches!(k, EventKind::PodDeleted { .. })),
        vec![630.0, 630.0]
    );
    assert_eq!(
        at(&|k| matches!(k, EventKind::ScaleUpTriggered { .. })),
        vec![16.0, 46.0]
    );
    assert!(
        got.iter().any(|e| matches!(&e.kind,
            EventKind::NodeCreated { node, preexisting: true, .. } if node.contains("default-pool"))),
        "the CPU node was there before the run"
    );

    let d = analyse(got, origin, &["upscale-worker"]);
    let pod = |name: &str| crate::common::summary_pod(&d, name);
    let expect = [
        (
            "upscale-worker-6f9c8d7b5-k2x9p",
            // The image pull from the kubelet's Pulling, 0.4 s after the scheduling.
            [1.0, 119.6, 44.25, 1.75, 42.0, 209.0],
        ),
        (
            "upscale-worker-6f9c8d7b5-w4m7r",
            // Pulling 0.75 s after the scheduling.
            [1.0, 115.25, 38.5, 1.5, 43.0, 200.0],
        ),
    ];
    for (name, want) in expect {
        let ph = pod(name)["phases_us"].clone();
        let got: Vec<Option<f64>> = [
            "pod_creation",
            "node_provisioning",
            "image_pull",
            "container_start",
            "model_load",
            "total",
        ]
        .iter()
        .map(|k| secs(&ph[*k]))
        .collect();
        assert_eq!(
            got,
            want.iter().map(|v| Some(*v)).collect::<Vec<_>>(),
            "{name}: {ph}"
        );
    }
    let cycle = &d["cycles"][0];
    assert_eq!(cycle["deployment"], "upscale-worker");
    assert_eq!(cycle["peak_replicas"], 2);
    assert_eq!(
        secs(&cycle["to_zero_replicas_us"]),
        Some(595.0),
        "activation at 5 s, back at zero at 600 s: {cycle}"
    );
    let warnings = d["warnings"].to_string();
    assert!(
        warnings.contains("upscale-worker was held at its maximum replica count"),
        "{warnings}"
    );
}

#[test]
fn require_zero_refuses_a_warm_cluster_and_writes_nothing() {
    // One replica up and ready: a "cold start" test would measure a warm pod.
    let (_server, dir, mut run) = run_against(&warm_cluster(1));
    run.args(["--require-zero", "--zero-timeout", "2s", "--out"])
        .arg(dir.path().join("results"))
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "the cluster did not reach zero within 2s",
        ))
        .stderr(predicates::str::contains(
            "deployment upscale-worker (2 desired, 1 ready)",
        ))
        .stderr(predicates::str::contains("fix:"));
    assert!(!dir.path().join("results").exists());
}

/// The cycle fixture's cluster before its start, but with the Deployment at its state of `ready` ready replicas.
fn warm_cluster(ready: u32) -> Value {
    let mut fixture = scale_cycle();
    let warm = fixture["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["resource"] == "deployments" && s["object"]["status"]["readyReplicas"] == ready)
        .unwrap()["object"]
        .clone();
    fixture["initial"]["deployments"] = json!([warm]);
    fixture["initial"].clone()
}

/// A fake cluster standing as `initial`, and `imagen-load run` of [`small_live_workload`] pointed at it by a
/// kubeconfig (the built-in emulator for Pub/Sub).
fn run_against(initial: &Value) -> (FakeKube, tempfile::TempDir, assert_cmd::Command) {
    let (server, dir, run) = run_command(initial);
    (server, dir, assert_cmd::Command::from_std(run))
}

/// The same, as a plain command (to spawn and signal).
fn run_command(initial: &Value) -> (FakeKube, tempfile::TempDir, std::process::Command) {
    let server = FakeKube::start(crate::fakekube::steady(initial));
    let dir = tempfile::tempdir().unwrap();
    let workload = small_live_workload(dir.path());
    std::fs::write(dir.path().join("kubeconfig"), server.kubeconfig()).unwrap();
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_imagen-load"));
    run.arg("run")
        .arg(&workload)
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .env_remove("PUBSUB_EMULATOR_HOST");
    (server, dir, run)
}

/// Three messages into the built-in emulator with no worker (they are lost after 1 s), watching the cluster
/// named by `[cluster]`.
fn small_live_workload(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("cluster-live.toml");
    std::fs::write(
        &path,
        r#"[run]
name = "cluster-live"
deadline = "1s"

[target]
kind = "emulator"

[cluster]
namespace = "imagen"
selector = "app.kubernetes.io/component=worker"
node_selector = "cloud.google.com/gke-nodepool=gpu-pool"

[[stream]]
name = "upscale"
  [[stream.phase]]
  kind = "burst"
  count = 3
"#,
    )
    .unwrap();
    path
}

#[test]
fn a_live_run_watches_the_cluster_of_its_workload_and_waits_for_zero() {
    let fixture = scale_cycle();
    let (_server, dir, mut run) = run_against(&fixture["initial"]);
    run.args([
        "--require-zero=nodes",
        "--wait-for-zero=nodes",
        "--zero-timeout",
        "20s",
        "--run-id",
        "r",
        "--quiet",
        "--out",
    ])
    .arg(dir.path().join("results"))
    .timeout(Duration::from_secs(90))
    .assert()
    .success();
    let log = std::fs::read_to_string(dir.path().join("results/r/events.jsonl")).unwrap();
    let kube: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["source"] == "kube")
        .collect();
    // The cluster as it stood when the run started: the Deployment at zero, the ScaledObject inactive.
    assert!(
        kube.iter().any(|e| e["event"] == "replicas"
            && e["deployment"] == "upscale-worker"
            && e["desired"] == 0
            && e["t_us"] == 0),
        "{kube:?}"
    );
    assert!(
        kube.iter()
            .any(|e| e["event"] == "scaler_active" && e["active"] == false),
        "{kube:?}"
    );
    let mut kinds: Vec<&str> = kube.iter().filter_map(|e| e["event"].as_str()).collect();
    kinds.sort();
    kinds.dedup();
    assert!(kinds.contains(&"scaler_condition"), "{kinds:?}");
    // 3 messages published and lost (no worker): the Pub/Sub side ran as usual beside the watchers.
    assert_eq!(log.matches(r#""event":"lost""#).count(), 3);
}

#[test]
fn cluster_flags_on_the_simulator_are_refused_with_the_fix() {
    crate::common::bin()
        .args(["run", "workloads/burst.toml", "--require-zero", "--quiet"])
        .current_dir(crate::common::root())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("target `sim` simulates one"))
        .stderr(predicates::str::contains("fix: run with --target emulator"));
}

/// Against a real API server: kwok (Kubernetes without kubelets; its controller plays the kubelet of fake nodes)
/// in Docker. A GPU node and a two-replica worker Deployment appear, the watchers see the pods created,
/// scheduled, started and ready on that node, then the Deployment goes to zero and the node away, and the
/// cluster is seen back at zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine (kwok in testcontainers): cargo test -- --ignored real_api_server"]
async fn the_watchers_follow_a_real_api_server_kwok_in_docker() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Namespace, Node};
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
    use testcontainers_modules::kwok::{KWOK_CLUSTER_PORT, KwokCluster};
    use testcontainers_modules::testcontainers::runners::AsyncRunner;

    let cluster = KwokCluster::default()
        .start()
        .await
        .expect("Docker is running");
    let port = cluster.get_host_port_ipv4(KWOK_CLUSTER_PORT).await.unwrap();
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let pp = PostParams::default();
    Api::<Namespace>::all(client.clone())
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "imagen"}})).unwrap(),
        )
        .await
        .unwrap();
    let origin = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = watch::WatchOptions {
        selector: Some("app.kubernetes.io/component=worker".into()),
        node_selector: Some("cloud.google.com/gke-nodepool=gpu-pool".into()),
        ..Default::default()
    };
    let watching = watch::start(client.clone(), &opts, origin, tx);
    let nodes = Api::<Node>::all(client.clone());
    nodes
        .create(
            &pp,
            &serde_json::from_value(json!({
                "metadata": {"name": "gpu-node-1",
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {"cloud.google.com/gke-nodepool": "gpu-pool", "type": "kwok"}},
                "status": {"capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "nvidia.com/gpu": "2"},
                    "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110", "nvidia.com/gpu": "2"}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let deployments = Api::<Deployment>::namespaced(client.clone(), "imagen");
    deployments
        .create(
            &pp,
            &serde_json::from_value(json!({
                "metadata": {"name": "upscale-worker", "labels": {"app.kubernetes.io/component": "worker"}},
                "spec": {"replicas": 2,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": "upscale-worker"}},
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/name": "upscale-worker",
                            "app.kubernetes.io/component": "worker"}},
                        "spec": {"nodeSelector": {"type": "kwok"},
                            "containers": [{"name": "worker", "image": "fake",
                                "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    // Until both pods are ready and the Deployment says so.
    let mut got: Vec<Event> = Vec::new();
    let ready = |got: &[Event]| {
        got.iter()
            .filter(|e| matches!(e.kind, EventKind::PodReady { .. }))
            .count()
            == 2
            && got.iter().any(|e| {
                matches!(
                    e.kind,
                    EventKind::Replicas {
                        desired: 2,
                        ready: Some(2),
                        ..
                    }
                )
            })
    };
    let until = tokio::time::Instant::now() + Duration::from_secs(120);
    while !ready(&got) {
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(e)) => got.push(e),
            _ => panic!("the pods did not become ready: {got:?}"),
        }
    }
    for kind in ["PodCreated", "PodScheduled", "ContainerStarted", "PodReady"] {
        let n = got
            .iter()
            .filter(|e| format!("{:?}", e.kind).starts_with(kind))
            .count();
        assert_eq!(n, 2, "{kind}: {got:?}");
    }
    assert!(got.iter().any(|e| matches!(&e.kind,
        EventKind::PodScheduled { node, .. } if node == "gpu-node-1")));
    assert!(got.iter().any(|e| matches!(&e.kind,
        EventKind::NodeCreated { node, preexisting: false, .. } if node == "gpu-node-1")));
    // Scale-down: the Deployment to zero, the node away.
    deployments
        .patch(
            "upscale-worker",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    watching
        .wait_for_zero(ZeroScope::Replicas, Duration::from_secs(120))
        .await
        .expect("the replicas back at zero");
    nodes
        .delete("gpu-node-1", &DeleteParams::default())
        .await
        .unwrap();
    watching
        .wait_for_zero(ZeroScope::Nodes, Duration::from_secs(60))
        .await
        .expect("the GPU node gone");
    watching.stop().await;
    while let Ok(e) = rx.try_recv() {
        got.push(e);
    }
    assert_no_duplicates(&got, true);
    assert!(
        got.iter().all(|e| e.t_us < 600_000_000),
        "times relative to the run's start"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_the_wait_for_zero_ends_it_at_once_and_writes_nothing() {
    let (_server, dir, mut run) = run_command(&warm_cluster(2));
    let mut run = run
        .args(["--require-zero", "--zero-timeout", "5m", "--out"])
        .arg(dir.path().join("results"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let sent = std::time::Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &run.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = run.wait().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "not the 5 minute wait"
    );
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted before the run started"), "{err}");
    assert!(!dir.path().join("results").exists());
}

/// Before it creates a topic or publishes, a run that watches the cluster asks the API server
/// (`SelfSubjectAccessReview`) for every permission its watchers use; what is denied is listed, with the fix, and
/// the run stops (exit 2) with nothing written. Allowed, the same run asks the same 14 reviews and goes on.
#[test]
fn a_watch_this_identity_may_not_make_is_refused_before_anything_is_published() {
    let fixture = scale_cycle();
    let server = FakeKube::start_denying(
        crate::fakekube::steady(&fixture["initial"]),
        &["list nodes", "watch scaledobjects.keda.sh"],
    );
    let dir = tempfile::tempdir().unwrap();
    let workload = small_live_workload(dir.path());
    std::fs::write(dir.path().join("kubeconfig"), server.kubeconfig()).unwrap();
    let o = assert_cmd::Command::new(env!("CARGO_BIN_EXE_imagen-load"))
        .arg("run")
        .arg(&workload)
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .env_remove("PUBSUB_EMULATOR_HOST")
        .args(["--quiet", "--out"])
        .arg(dir.path().join("results"))
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
    assert!(
        err.contains("      - list nodes (cluster-wide)\n")
            && err.contains("      - watch scaledobjects.keda.sh in namespace imagen\n"),
        "{err}"
    );
    assert_eq!(
        err.matches("      - ").count(),
        2,
        "only what is denied: {err}"
    );
    assert!(err.contains("fix: apply kind-config/rbac.yaml"), "{err}");
    assert!(!dir.path().join("results").exists(), "nothing written");
    // Nothing was listed or watched: the review came first.
    assert!(
        server
            .scripts
            .values()
            .all(|s| s.list_calls.load(std::sync::atomic::Ordering::SeqCst) == 0),
        "a watcher started"
    );
    let asked = server.reviews.lock().unwrap().clone();
    assert_eq!(asked.len(), 14, "{asked:?}");
    for want in [
        "list pods in imagen",
        "watch pods in imagen",
        "list events in imagen",
        "watch deployments.apps in imagen",
        "list horizontalpodautoscalers.autoscaling in imagen",
        "watch scaledobjects.keda.sh in imagen",
        "watch nodes",
        "list events",
    ] {
        assert!(
            asked.iter().any(|a| a == want),
            "{want} not asked: {asked:?}"
        );
    }
}

/// The permissions the review asks for are the ones `kind-config/rbac.yaml` grants the ServiceAccount: every
/// (verb, resource, group) pair is in its Role (namespaced ones) or ClusterRole (cluster-wide ones).
#[test]
fn the_reviewed_permissions_are_the_ones_rbac_yaml_grants() {
    use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
    let text = std::fs::read_to_string(crate::common::path("kind-config/rbac.yaml")).unwrap();
    let (mut role_rules, mut cluster_rules) = (Vec::new(), Vec::new());
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let v: serde_yaml_ng::Value = serde::Deserialize::deserialize(doc).unwrap();
        match v["kind"].as_str() {
            Some("Role") => role_rules.extend(
                serde_yaml_ng::from_value::<Role>(v)
                    .unwrap()
                    .rules
                    .unwrap_or_default(),
            ),
            Some("ClusterRole") => cluster_rules.extend(
                serde_yaml_ng::from_value::<ClusterRole>(v)
                    .unwrap()
                    .rules
                    .unwrap_or_default(),
            ),
            _ => {}
        }
    }
    let grants = |rules: &[k8s_openapi::api::rbac::v1::PolicyRule],
                  p: &imagen_load::observe::cluster::watch::Permission| {
        rules.iter().any(|r| {
            r.verbs.iter().any(|v| v == p.verb)
                && r.api_groups.iter().flatten().any(|g| g == p.group)
                && r.resources.iter().flatten().any(|x| x == p.resource)
        })
    };
    for p in imagen_load::observe::cluster::watch::permissions("imagen") {
        let rules = if p.namespace.is_some() {
            &role_rules
        } else {
            &cluster_rules
        };
        assert!(
            grants(rules, &p),
            "kind-config/rbac.yaml does not grant {p}"
        );
    }
}
