//! The Kubernetes watchers against a local fake API server, through the real `kube` client: list and watch, a
//! watch that drops, a `410 Gone` that forces a re-list. The objects are those of `fixtures/kube/dump-scaleup.json`
//! delivered over time; the events the watchers produce must break down into exactly the per-pod phases that
//! `import` finds in the dump (tests/cluster.rs), with nothing counted twice.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use imagen_load::event::{Event, EventKind, Source};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What one resource's endpoint answers, call by call.
struct Script {
    kind: &'static str,
    /// The items of each list call (the last one repeats).
    lists: Vec<Vec<Value>>,
    /// The objects of each watch call, as (type, object); `None` answers `410 Gone`. Then empty watches.
    watches: Vec<Option<Vec<(&'static str, Value)>>>,
    list_calls: AtomicUsize,
    watch_calls: AtomicUsize,
}

fn list_body(kind: &str, items: &[Value], rv: usize) -> String {
    json!({"kind": format!("{kind}List"), "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}, "items": items})
        .to_string()
}

fn with_rv(mut o: Value, rv: usize) -> Value {
    o["metadata"]["resourceVersion"] = json!(rv.to_string());
    o
}

async fn answer(
    scripts: Arc<HashMap<String, Script>>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let watch = req.uri().query().unwrap_or("").contains("watch=true");
    let Some(s) = scripts.get(&path) else {
        return Response::builder()
            .status(404)
            .body(Full::new(Bytes::from("{}")))
            .unwrap();
    };
    let ok = |body: String| {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if !watch {
        let n = s.list_calls.fetch_add(1, Ordering::SeqCst);
        let items = &s.lists[n.min(s.lists.len() - 1)];
        let rv = 100 * (n + 1);
        let items: Vec<Value> = items.iter().map(|o| with_rv(o.clone(), rv)).collect();
        return ok(list_body(s.kind, &items, rv));
    }
    let n = s.watch_calls.fetch_add(1, Ordering::SeqCst);
    match s.watches.get(n) {
        // The body ends after these: the watch "drops", and the watcher resumes from the last version.
        Some(Some(events)) => {
            let lines: Vec<String> = events
                .iter()
                .enumerate()
                .map(|(i, (t, o))| json!({"type": t, "object": with_rv(o.clone(), 1000 * (n + 1) + i)}).to_string())
                .collect();
            ok(lines.join("\n") + "\n")
        }
        Some(None) => ok(json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "too old resource version: 1 (2)", "reason": "Expired", "code": 410}})
            .to_string()
            + "\n"),
        None => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            ok(String::new())
        }
    }
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
    let script = |kind, lists, watches| Script {
        kind,
        lists,
        watches,
        list_calls: AtomicUsize::new(0),
        watch_calls: AtomicUsize::new(0),
    };
    let scripts: HashMap<String, Script> = [
        (
            "/api/v1/namespaces/imagen/pods",
            script(
                "Pod",
                vec![vec![], vec![upscale.clone()]],
                vec![
                    Some(vec![("ADDED", upscale.clone())]),
                    None,
                    Some(vec![
                        ("ADDED", comic.clone()),
                        ("MODIFIED", upscale.clone()),
                    ]),
                ],
            ),
        ),
        (
            "/api/v1/nodes",
            script(
                "Node",
                vec![
                    vec![old_node.clone()],
                    vec![old_node.clone(), new_node.clone()],
                ],
                vec![Some(vec![("ADDED", new_node.clone())]), None],
            ),
        ),
        (
            "/api/v1/namespaces/imagen/events",
            script(
                "Event",
                vec![events[..4].to_vec(), events.clone()],
                vec![
                    Some(events[4..8].iter().map(|e| ("ADDED", e.clone())).collect()),
                    None,
                    Some(events[8..].iter().map(|e| ("ADDED", e.clone())).collect()),
                ],
            ),
        ),
        ("/api/v1/events", script("Event", vec![vec![]], vec![])),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_string(), s))
    .collect();
    let scripts = Arc::new(scripts);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = scripts.clone();
    let server = tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let scripts = served.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let scripts = scripts.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(scripts, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                    .await;
            });
        }
    });

    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    // Time zero at the dump's first instant, as `import` takes it.
    let origin = imagen_load::cluster::import::ts(Some(&json!("2026-11-28T09:00:00Z"))).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watching = imagen_load::cluster::watch::start(
        client,
        &imagen_load::cluster::watch::WatchOptions::default(),
        origin,
        tx,
    );
    // Until every script has been played and nothing new arrives.
    let mut got: Vec<Event> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout(Duration::from_millis(1500), rx.recv()).await {
            Ok(Some(e)) => got.push(e),
            Ok(None) => break,
            Err(_)
                if scripts
                    .values()
                    .all(|s| s.watch_calls.load(Ordering::SeqCst) > s.watches.len()) =>
            {
                break;
            }
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "the watchers did not play the script: {got:?}"
            ),
        }
    }
    let counts = watching.stop().await;
    while let Ok(e) = rx.try_recv() {
        got.push(e);
    }
    server.abort();
    for (path, s) in scripts
        .iter()
        .filter(|(p, _)| !p.ends_with("/api/v1/events"))
    {
        assert!(
            s.list_calls.load(Ordering::SeqCst) >= 2,
            "{path}: the 410 made the watcher list again"
        );
    }
    // Nothing twice, though the re-list delivered every object again.
    let mut keys: HashMap<String, usize> = HashMap::new();
    for e in &got {
        *keys.entry(format!("{:?}", e.kind)).or_default() += 1;
    }
    assert!(
        keys.values().all(|n| *n == 1),
        "duplicates: {:?}",
        keys.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert_eq!(
        counts.unparsed, 1,
        "SomeFutureReason is counted, not a crash"
    );
    assert!(got.iter().all(|e| e.source == Source::Kube));

    // The log the watchers' events make, analysed as any run's.
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        imagen_load::eventlog::EventLogWriter::create(&dir.path().join("events.jsonl")).unwrap();
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
            streams: vec!["upscale-worker".into(), "comic-worker".into()],
            warmup_us: 0,
            deadline_us: end,
            price_per_gpu_hour_usd: 0.48,
            shard: None,
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
    let d: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    let pod = |name: &str| crate::common::summary_pod(&d, name);
    let s = |v: &Value| v.as_u64().map(|us| us as f64 / 1e6);
    let ph = pod("upscale-worker-7d4b9c-x2k9p")["phases_us"].clone();
    // The same values as `import` of the dump (tests/cluster.rs), worked out there by hand.
    assert_eq!(s(&ph["pod_creation"]), Some(1.0));
    assert_eq!(
        s(&ph["node_provisioning"]),
        Some(119.25),
        "the Scheduled event's µs time, not the condition's second"
    );
    assert_eq!(s(&ph["image_pull"]), Some(46.75));
    assert_eq!(s(&ph["container_start"]), Some(3.0));
    assert_eq!(s(&ph["model_load"]), Some(42.0));
    assert_eq!(s(&ph["total"]), Some(212.0));
    let comic = pod("comic-worker-5f6d7-aaaaa");
    assert_eq!(comic["image_cached"], true);
    assert_eq!(s(&comic["phases_us"]["image_pull"]), Some(1.0));
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
