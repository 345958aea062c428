//! A fake Kubernetes API server on loopback for the real `kube` client: each resource's endpoint answers list and
//! watch calls from a script (list bodies, watch bodies that end, i.e. a dropped watch, and `410 Gone`). It runs
//! on a thread of its own, so synchronous tests (a spawned `imagen-load`) can use it too. Also used by
//! `benches/watch.rs`.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// One watch call's answer.
pub enum WatchStep {
    /// These (type, object) lines after `delay`, then the body ends (the watch "drops" and is resumed).
    Lines {
        delay: Duration,
        lines: Vec<(String, Value)>,
    },
    /// `410 Gone`: the watcher has to list again.
    Gone,
}

/// What one resource's endpoint answers, call by call.
pub struct Script {
    /// The list kind (`PodList`, ...) and its apiVersion.
    pub list_kind: String,
    pub api_version: String,
    /// The items of each list call (the last one repeats).
    pub lists: Vec<Vec<Value>>,
    /// Each watch call's answer; after them, empty watches that end after 300 ms.
    pub watches: Vec<WatchStep>,
    pub list_calls: AtomicUsize,
    pub watch_calls: AtomicUsize,
}

impl Script {
    pub fn new(
        list_kind: &str,
        api_version: &str,
        lists: Vec<Vec<Value>>,
        watches: Vec<WatchStep>,
    ) -> Script {
        Script {
            list_kind: list_kind.into(),
            api_version: api_version.into(),
            lists,
            watches,
            list_calls: AtomicUsize::new(0),
            watch_calls: AtomicUsize::new(0),
        }
    }

    /// Every scripted watch was played.
    pub fn played(&self) -> bool {
        self.watch_calls.load(Ordering::SeqCst) > self.watches.len()
    }
}

/// The API paths of the resources the harness watches (namespace `imagen`).
pub const PATHS: [(&str, &str, &str, &str); 7] = [
    ("pods", "/api/v1/namespaces/imagen/pods", "PodList", "v1"),
    ("nodes", "/api/v1/nodes", "NodeList", "v1"),
    (
        "deployments",
        "/apis/apps/v1/namespaces/imagen/deployments",
        "DeploymentList",
        "apps/v1",
    ),
    (
        "scaledobjects",
        "/apis/keda.sh/v1alpha1/namespaces/imagen/scaledobjects",
        "ScaledObjectList",
        "keda.sh/v1alpha1",
    ),
    (
        "hpas",
        "/apis/autoscaling/v2/namespaces/imagen/horizontalpodautoscalers",
        "HorizontalPodAutoscalerList",
        "autoscaling/v2",
    ),
    (
        "events",
        "/api/v1/namespaces/imagen/events",
        "EventList",
        "v1",
    ),
    ("node_events", "/api/v1/events", "EventList", "v1"),
];

pub struct FakeKube {
    pub addr: SocketAddr,
    pub scripts: Arc<HashMap<String, Script>>,
    /// The access reviews asked, in order (`verb resource[.group][ in NAMESPACE]`).
    pub reviews: Arc<std::sync::Mutex<Vec<String>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn with_rv(mut o: Value, rv: usize) -> Value {
    o["metadata"]["resourceVersion"] = json!(rv.to_string());
    o
}

/// The `k=v,k2=v2` terms of a `labelSelector` query parameter (all the harness sends).
fn label_selector(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("labelSelector="))
        .flat_map(|s| {
            let s = s
                .replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/");
            s.split(',')
                .filter_map(|t| t.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The path of `SelfSubjectAccessReview` (authorization.k8s.io/v1), which the harness asks before it watches.
const SSAR_PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

/// Answers a `SelfSubjectAccessReview` as the API server does (`201 Created`, the review back with its
/// `status.allowed`): denied when `verb resource[.group]` is one of `denied`, else allowed "by RBAC". Each review
/// asked is kept in `asked`, as that string with ` in NAMESPACE` when it has one.
async fn review(
    denied: &[String],
    asked: &std::sync::Mutex<Vec<String>>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    use http_body_util::BodyExt as _;
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut review: Value = serde_json::from_slice(&body).unwrap();
    let a = &review["spec"]["resourceAttributes"];
    let group = a["group"].as_str().unwrap_or("");
    let what = format!(
        "{} {}{}",
        a["verb"].as_str().unwrap_or(""),
        a["resource"].as_str().unwrap_or(""),
        if group.is_empty() {
            String::new()
        } else {
            format!(".{group}")
        }
    );
    let allowed = !denied.contains(&what);
    asked.lock().unwrap().push(match a["namespace"].as_str() {
        Some(ns) if !ns.is_empty() => format!("{what} in {ns}"),
        _ => what,
    });
    review["status"] = if allowed {
        json!({"allowed": true, "reason": "RBAC: allowed by ClusterRoleBinding \"fake\""})
    } else {
        json!({"allowed": false})
    };
    review["metadata"] = json!({"creationTimestamp": null});
    Response::builder()
        .status(201)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(review.to_string())))
        .unwrap()
}

async fn answer(
    scripts: Arc<HashMap<String, Script>>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("");
    let watch = query.contains("watch=true");
    let selector = label_selector(query);
    let selected = |o: &Value| {
        selector
            .iter()
            .all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v.as_str()))
    };
    let Some(s) = scripts.get(&path) else {
        return Response::builder()
            .status(404)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404})
                .to_string(),
            )))
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
        let items: Vec<Value> = items
            .iter()
            .filter(|o| selected(o))
            .map(|o| with_rv(o.clone(), rv))
            .collect();
        return ok(json!({"kind": s.list_kind, "apiVersion": s.api_version,
            "metadata": {"resourceVersion": rv.to_string()}, "items": items})
        .to_string());
    }
    let n = s.watch_calls.fetch_add(1, Ordering::SeqCst);
    match s.watches.get(n) {
        Some(WatchStep::Lines { delay, lines }) => {
            tokio::time::sleep(*delay).await;
            let body: Vec<String> = lines
                .iter()
                .filter(|(_, o)| selected(o))
                .enumerate()
                .map(|(i, (t, o))| {
                    json!({"type": t, "object": with_rv(o.clone(), 1000 * (n + 1) + i)}).to_string()
                })
                .collect();
            ok(body.join("\n") + "\n")
        }
        Some(WatchStep::Gone) => ok(
            json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
            "metadata": {}, "status": "Failure", "message": "too old resource version: 1 (2)",
            "reason": "Expired", "code": 410}})
            .to_string()
                + "\n",
        ),
        None => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            ok(String::new())
        }
    }
}

impl FakeKube {
    /// Serves `scripts` (by API path) on 127.0.0.1, on a thread of its own; every access review is allowed.
    pub fn start(scripts: HashMap<String, Script>) -> FakeKube {
        Self::start_denying(scripts, &[])
    }

    /// As [`FakeKube::start`], with the access reviews of `denied` (`verb resource[.group]`, e.g. `watch
    /// scaledobjects.keda.sh`) answered "not allowed".
    pub fn start_denying(scripts: HashMap<String, Script>, denied: &[&str]) -> FakeKube {
        let denied: Arc<Vec<String>> = Arc::new(denied.iter().map(|d| d.to_string()).collect());
        let asked: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let reviews = asked.clone();
        let scripts = Arc::new(scripts);
        let served = scripts.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let sock = tokio::select! {
                        s = listener.accept() => s.unwrap().0,
                        _ = &mut shutdown_rx => break,
                    };
                    let scripts = served.clone();
                    let (denied, asked) = (denied.clone(), asked.clone());
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            let scripts = scripts.clone();
                            let (denied, asked) = (denied.clone(), asked.clone());
                            async move {
                                Ok::<_, std::convert::Infallible>(
                                    if req.uri().path() == SSAR_PATH {
                                        review(&denied, &asked, req).await
                                    } else {
                                        answer(scripts, req).await
                                    },
                                )
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                            .await;
                    });
                }
            });
        });
        FakeKube {
            addr: addr_rx.recv().unwrap(),
            scripts,
            reviews,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// A client of this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// A kubeconfig naming this server (for a spawned `imagen-load`).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\nusers:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: imagen\ncurrent-context: fake\n",
            self.addr
        )
    }

    /// Every script's watches were played.
    pub fn played(&self) -> bool {
        self.scripts.values().all(Script::played)
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A cluster that stays as `initial` is: every resource lists its objects and its watches stay empty.
pub fn steady(initial: &Value) -> HashMap<String, Script> {
    PATHS
        .iter()
        .map(|(res, path, list_kind, api)| {
            let items = initial[*res].as_array().cloned().unwrap_or_default();
            (
                path.to_string(),
                Script::new(list_kind, api, vec![items], Vec::new()),
            )
        })
        .collect()
}

/// The scripts that play a fixture's timeline (`fixtures/kube/scale-0-2-0.json`): each resource lists its
/// initial objects, plays its steps up to `cut` on one watch, answers the next watch with `410 Gone`, lists the
/// state after step `resume` (the steps between were missed in the gap: only the re-list shows them), and plays
/// the rest on a later watch. `split(resource, steps) -> (cut, resume)`; `late` delays a resource's last watch
/// (so its deliveries come after the others').
pub fn timeline(
    fixture: &Value,
    split: impl Fn(&str, usize) -> (usize, usize),
    late: impl Fn(&str) -> Duration,
) -> HashMap<String, Script> {
    let mut out = HashMap::new();
    for (res, path, list_kind, api) in PATHS {
        let initial: Vec<Value> = fixture["initial"][res]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let steps: Vec<(String, Value)> = fixture["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["resource"] == res)
            .map(|s| (s["type"].as_str().unwrap().to_string(), s["object"].clone()))
            .collect();
        let (cut, resume) = split(res, steps.len());
        let resume = resume.clamp(cut, steps.len());
        // The state after the missed steps: what the re-list returns.
        let mut state: Vec<Value> = initial.clone();
        for (t, o) in &steps[..resume] {
            let name = &o["metadata"]["name"];
            state.retain(|x| &x["metadata"]["name"] != name);
            if t != "DELETED" {
                state.push(o.clone());
            }
        }
        let watches = vec![
            WatchStep::Lines {
                delay: Duration::ZERO,
                lines: steps[..cut].to_vec(),
            },
            WatchStep::Gone,
            WatchStep::Lines {
                delay: late(res),
                lines: steps[resume..].to_vec(),
            },
        ];
        out.insert(
            path.to_string(),
            Script::new(list_kind, api, vec![initial, state], watches),
        );
    }
    out
}

/// A fixture's timeline through an API server that drops every watch after one delivery and answers every
/// fourth watch with `410 Gone` (the watcher lists again, and the list holds the state at that point).
pub fn flaky_timeline(fixture: &Value, late: impl Fn(&str) -> Duration) -> HashMap<String, Script> {
    let mut out = HashMap::new();
    for (res, path, list_kind, api) in PATHS {
        let mut state: Vec<Value> = fixture["initial"][res]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut lists = vec![state.clone()];
        let mut watches = Vec::new();
        let steps = fixture["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["resource"] == res);
        for (i, s) in steps.enumerate() {
            let (t, o) = (s["type"].as_str().unwrap().to_string(), s["object"].clone());
            let name = o["metadata"]["name"].clone();
            state.retain(|x| x["metadata"]["name"] != name);
            if t != "DELETED" {
                state.push(o.clone());
            }
            if i % 4 == 3 {
                // This change is missed: the watch expires, and the re-list shows it.
                watches.push(WatchStep::Gone);
                lists.push(state.clone());
            } else {
                watches.push(WatchStep::Lines {
                    delay: if t == "DELETED" {
                        late(res)
                    } else {
                        Duration::ZERO
                    },
                    lines: vec![(t, o)],
                });
            }
        }
        out.insert(
            path.to_string(),
            Script::new(list_kind, api, lists, watches),
        );
    }
    out
}
