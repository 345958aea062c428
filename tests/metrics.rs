//! The run's and the worker's Prometheus metrics, read by the real Prometheus server (Debian's `prometheus`, a
//! peer) and checked by its `promtool`: a live run against the built-in emulator is scraped while it runs, and the
//! PromQL answers afterwards are the run's own counts and latency as `summary.json` has them.

use crate::common::bin;
use crate::pubsub::{
    Emulator, free_port, started, summary, wait, wait_for_port, worker_on, workload,
};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_imagen-load");

fn prometheus_here() -> bool {
    let here = ["prometheus", "promtool"].iter().all(|p| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    crate::peers::peer("Prometheus", here, "apt-get install prometheus")
}

/// `GET path` on 127.0.0.1:port with `accept`, by hand (HTTP/1.0): (status line, content type, body).
fn http_get(port: u16, path: &str, accept: &str) -> (String, String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (
        head.lines().next().unwrap().to_string(),
        ctype,
        body.to_string(),
    )
}

/// `promtool check metrics` on an exposition: (passed, what it said).
fn promtool_check(text: &str) -> (bool, String) {
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// A PromQL instant query through Prometheus' HTTP API: the value of each series, by its labels.
fn query(port: u16, promql: &str) -> Vec<(serde_json::Value, f64)> {
    query_at(port, promql, None)
}

/// The same, evaluated at `at` (Unix seconds) rather than now.
fn query_at(port: u16, promql: &str, at: Option<f64>) -> Vec<(serde_json::Value, f64)> {
    let q: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let time = at.map(|t| format!("&time={t:.3}")).unwrap_or_default();
    let (status, _, body) = http_get(port, &format!("/api/v1/query?query={q}{time}"), "*/*");
    assert!(status.contains("200"), "{promql}: {status} {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
            )
        })
        .collect()
}

/// The one value of a query that has one series.
fn scalar(port: u16, promql: &str) -> f64 {
    let r = query(port, promql);
    assert_eq!(r.len(), 1, "{promql}: {r:?}");
    r[0].1
}

fn start_prometheus(dir: &Path, targets: &[(&str, u16)]) -> (Child, u16) {
    let port = free_port();
    let mut cfg =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n");
    for (job, p) in targets {
        cfg.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{p}']\n"
        ));
    }
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, cfg).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(port);
    (child, port)
}

/// The real Prometheus server scrapes a live run (`--metrics-addr`) and a reference worker (its HTTP port) on
/// loopback. After the run, PromQL through Prometheus' HTTP API gives the run's published and completed counts
/// exactly as `summary.json` has them, a median end-to-end latency within the buckets' resolution of the exact
/// one, and the worker's own count of completed jobs.
#[test]
fn prometheus_scrapes_a_live_run_and_gets_its_counts_and_latency() {
    if !prometheus_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let (mut procs, _, host) = started(Emulator::Builtin);
    let worker_port = free_port();
    let metrics_port = free_port();
    let (prom, prom_port) = start_prometheus(
        out,
        &[("imagen-load", metrics_port), ("worker", worker_port)],
    );
    procs.0.push(prom);
    // 30 messages over 6 s (the first wait for the worker's model); the run stays up 4 s after it ends, so the
    // last scrape (every 1 s) sees it all.
    let wl = workload(
        out,
        &host,
        "  kind = \"constant\"\n  rate = \"5/s\"\n  duration = \"6s\"",
        "30s",
    );
    let mut run = Command::new(BIN)
        .arg("run")
        .arg(&wl)
        .arg("--out")
        .arg(out)
        .args([
            "--run-id",
            "prom",
            "--no-progress",
            "--metrics-linger",
            "4s",
        ])
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .env_remove("PUBSUB_EMULATOR_HOST")
        .stdout(std::fs::File::create(out.join("prom.stdout")).unwrap())
        .stderr(std::fs::File::create(out.join("prom.stderr")).unwrap())
        .spawn()
        .unwrap();
    // The worker after the run has created the subscriptions (as in the README's quick start), so its
    // lifecycle reports reach the run.
    procs.0.push(worker_on(
        &host,
        "prom-w0",
        "500ms",
        "100ms",
        worker_port,
        &out.join("w0.log"),
    ));
    assert_eq!(wait(&mut run, Duration::from_secs(90), out, "prom"), 0);
    // The run's endpoint was up (lingering, scraped every second) until it exited: the dashboard's instant
    // queries are evaluated 1.5 s before that, since its series go stale once the target is gone.
    let up_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 1.5;
    let s = summary(out, "prom");
    let d = &s["delivery"];
    assert_eq!(d["completed"], 30, "{d}");
    // The worker's exposition (the text format), while it still runs, passes promtool check metrics.
    let (status, ctype, text) = http_get(worker_port, "/metrics", "text/plain");
    assert!(
        status.contains("200") && ctype.starts_with("text/plain; version=0.0.4"),
        "{status} {ctype}"
    );
    let (ok, said) = promtool_check(&text);
    assert!(
        ok,
        "promtool check metrics on the worker's output: {said}\n{text}"
    );
    // What Prometheus scraped. Counters are read at their last value.
    let last = |m: &str| scalar(prom_port, &format!("sum(last_over_time({m}[5m]))"));
    let until = Instant::now() + Duration::from_secs(20);
    while last("imagen_load_messages_completed_total") < 30.0 {
        assert!(
            Instant::now() < until,
            "Prometheus never saw the 30 completions"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        last("imagen_load_messages_published_total"),
        d["published"].as_f64().unwrap()
    );
    assert_eq!(last("imagen_load_messages_scheduled_total"), 30.0);
    assert_eq!(last("imagen_load_messages_lost_total"), 0.0);
    assert_eq!(
        scalar(
            prom_port,
            "last_over_time(imagen_load_worker_jobs_total{outcome=\"completed\"}[5m])"
        ),
        30.0
    );
    // The median from the histogram's buckets (each 1.5 times the last) against the exact one.
    let p50 = scalar(
        prom_port,
        "histogram_quantile(0.5, sum by (le) (last_over_time(imagen_load_e2e_latency_seconds_bucket[5m])))",
    );
    let exact = s["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == "e2e_latency")
        .map(|r| r["p50_us"].as_f64().unwrap() / 1e6)
        .expect("e2e_latency in summary.json");
    assert!(
        (p50 / exact - 1.0).abs() < 0.3,
        "Prometheus' p50 {p50} s against the exact {exact} s"
    );
    // Every query of the Grafana dashboard that reads imagen-load's series returns data from this run. The
    // dashboard's KEDA/HPA queries read other exporters, and desired replicas need a cluster watch: none here.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::path("ci/grafana/imagen-load.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            if !expr.contains("imagen_load_")
                || expr.contains("keda_")
                || expr.contains("kube_")
                || expr.contains("replicas_desired")
            {
                continue;
            }
            let promql = expr
                .replace("$__rate_interval", "1m")
                .replace("$__range", "5m");
            let got = query_at(prom_port, &promql, Some(up_at));
            assert!(
                got.iter().any(|(_, v)| v.is_finite()),
                "panel `{}`: `{promql}` returned no data: {got:?}",
                panel["title"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} queries checked");
}

/// The harness's exposition passes `promtool check metrics` (the Prometheus text format); OpenMetrics is served
/// when asked for, ends with `# EOF`, and a simulated run's `--metrics-file` is backfilled by
/// `promtool tsdb create-blocks-from openmetrics`.
#[test]
fn promtool_accepts_the_harness_exposition_and_backfills_a_simulated_run() {
    if !prometheus_here() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = tmp.path().join("burst.om");
    let mut run = Command::new(BIN)
        .args([
            "run",
            "workloads/burst.toml",
            "--quiet",
            "--metrics-linger",
            "10s",
        ])
        .arg("--out")
        .arg(tmp.path())
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--metrics-file")
        .arg(&file)
        .spawn()
        .unwrap();
    wait_for_port(port);
    let (status, ctype, text) = http_get(port, "/metrics", "text/plain");
    assert!(status.contains("200") && ctype.starts_with("text/plain; version=0.0.4"));
    let (ok, said) = promtool_check(&text);
    assert!(ok, "promtool check metrics: {said}\n{text}");
    let (_, ctype, om) = http_get(
        port,
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    );
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(om.ends_with("# EOF\n"));
    let _ = run.kill();
    let _ = run.wait();
    // The simulated burst (150 messages) written whole, then read by Prometheus' own backfill.
    let again = tmp.path().join("again");
    bin()
        .args(["run", "workloads/burst.toml", "--quiet", "--out"])
        .arg(&again)
        .arg("--metrics-file")
        .arg(&file)
        .assert()
        .success();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with("# EOF\n"));
    let last_completed: f64 = text
        .lines()
        .filter(|l| l.starts_with("imagen_load_messages_completed_total{"))
        .map(|l| l.split(' ').nth(1).unwrap().parse::<f64>().unwrap())
        .collect::<Vec<_>>()
        .chunks(4)
        .last()
        .unwrap()
        .iter()
        .sum();
    assert_eq!(last_completed, 150.0, "the last sample of each stream");
    let blocks = tmp.path().join("blocks");
    let o = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&blocks)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "promtool backfill: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read_dir(&blocks).unwrap().count() > 0);
}

/// A metrics port already taken is one warning, and the run goes on and writes its results.
#[test]
fn a_taken_metrics_port_is_a_warning_and_the_run_goes_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let o = bin()
        .args(["run", "workloads/burst.toml", "--run-id", "t", "--out"])
        .arg(tmp.path())
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{port}"))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
    assert_eq!(
        err.matches("warning: cannot serve metrics").count(),
        1,
        "{err}"
    );
    assert!(tmp.path().join("t/summary.json").is_file());
}

/// An address that is not loopback is refused before anything runs, unless asked for explicitly.
#[test]
fn a_remote_metrics_address_needs_an_explicit_flag() {
    let tmp = tempfile::tempdir().unwrap();
    for flags in [
        ["--metrics-addr", "0.0.0.0:0"],
        ["--otlp-endpoint", "http://192.0.2.7:4318"],
    ] {
        bin()
            .args(["run", "workloads/burst.toml", "--out"])
            .arg(tmp.path())
            .args(flags)
            .assert()
            .code(2)
            .stderr(predicates::str::contains("--metrics-allow-remote"));
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}

/// Metrics flags that would misbehave are refused before anything runs: a metrics file in a folder that does not
/// exist (not found only after the run), an interval under a second or one giving a simulated run more than
/// 10,000 samples (a file of gigabytes). `localhost:PORT` is accepted as 127.0.0.1.
#[test]
fn metrics_flags_that_would_misbehave_are_refused_before_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let refused = |workload: &str, extra: &[&str], says: &str| {
        bin()
            .args(["run", workload, "--out"])
            .arg(tmp.path().join("out"))
            .args(extra)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says.to_string()))
            .stderr(predicates::str::contains("fix:"));
        assert!(!tmp.path().join("out").exists(), "nothing written");
    };
    let missing = tmp.path().join("nope/x.om");
    refused(
        "workloads/burst.toml",
        &["--metrics-file", missing.to_str().unwrap()],
        "its folder does not exist",
    );
    let file = tmp.path().join("x.om");
    refused(
        "workloads/burst.toml",
        &[
            "--metrics-file",
            file.to_str().unwrap(),
            "--metrics-interval",
            "0s",
        ],
        "under a second",
    );
    // A simulated day sampled every second.
    refused(
        "workloads/diurnal.toml",
        &[
            "--metrics-file",
            file.to_str().unwrap(),
            "--metrics-interval",
            "1s",
        ],
        "more than 10000",
    );
    refused(
        "workloads/burst.toml",
        &["--metrics-linger", "5s"],
        "--metrics-linger keeps /metrics up after the run, and nothing serves it",
    );
    refused(
        "workloads/burst.toml",
        &["--otlp-endpoint", "127.0.0.1:4318"],
        "no scheme; OTLP/HTTP is http:// or https://",
    );
    refused(
        "workloads/burst.toml",
        &[
            "--otlp-endpoint",
            "http://127.0.0.1:4318",
            "--otlp-interval",
            "100ms",
        ],
        "--otlp-interval 100ms: under a second",
    );
    refused(
        "workloads/burst.toml",
        &["--otlp-interval", "5s"],
        "--otlp-interval sets how often the OTLP push goes, and nothing is pushed",
    );
    bin()
        .args(["run", "workloads/burst.toml", "--quiet", "--out"])
        .arg(tmp.path().join("ok"))
        .args(["--metrics-addr", "localhost:0"])
        .assert()
        .success();
}

/// What a stand-in OTLP/HTTP collector received: each request's path, content type and body, in order.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A stand-in OTLP/HTTP collector on loopback: request `i` (from 0) is answered `status(i)`, with an empty
/// `ExportMetricsServiceResponse` on success (OTLP/HTTP, "Full Success"); every request is kept.
fn fake_collector(status: impl Fn(usize) -> u16 + Send + 'static) -> (u16, Received) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Received = Default::default();
    let log = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let Some((head, body)) = crate::common::read_request(&mut conn) else {
                continue;
            };
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let i = {
                let mut l = log.lock().unwrap();
                l.push((path, header("content-type"), body));
                l.len() - 1
            };
            let code = status(i);
            let _ = write!(
                conn,
                "HTTP/1.1 {code} X\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, got)
}

/// The series of one OTLP push as Prometheus names them when it ingests OTLP (Prometheus' OTLP receiver and
/// Google Managed Prometheus, "UnderscoreEscapingWithSuffixes": the unit `s` adds `_seconds`, a `{…}` unit
/// nothing, a monotonic sum `_total`; a histogram gives cumulative `_bucket{le}`, `_sum` and `_count`), each with
/// its labels sorted, and its value. Checks every sum and histogram is cumulative, as Prometheus needs.
fn otlp_series(body: &[u8]) -> std::collections::BTreeMap<String, f64> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};
    use prost::Message as _;
    const CUMULATIVE: i32 = 2;
    let req = ExportMetricsServiceRequest::decode(body).expect("an OTLP protobuf request");
    let mut out = std::collections::BTreeMap::new();
    let labels = |attrs: &[KeyValue], extra: Option<String>| {
        let mut l: Vec<String> = attrs
            .iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    other => panic!("attribute {} is {other:?}", kv.key),
                };
                format!("{}=\"{v}\"", kv.key)
            })
            .chain(extra)
            .collect();
        l.sort();
        l.join(",")
    };
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let unit = if m.unit == "s" { "_seconds" } else { "" };
                assert!(
                    m.unit == "s" || (m.unit.starts_with('{') && m.unit.ends_with('}')),
                    "{}: unit {}",
                    m.name,
                    m.unit
                );
                let base = format!("{}{unit}", m.name);
                let number = |v: &Option<Value>| match v {
                    Some(Value::AsDouble(d)) => *d,
                    Some(Value::AsInt(i)) => *i as f64,
                    None => panic!("{}: a point without a value", m.name),
                };
                match m.data.as_ref().expect("data") {
                    Data::Sum(s) => {
                        assert_eq!(s.aggregation_temporality, CUMULATIVE, "{}", m.name);
                        let name = if s.is_monotonic {
                            format!("{base}_total")
                        } else {
                            base.clone()
                        };
                        for p in &s.data_points {
                            out.insert(
                                format!("{name}{{{}}}", labels(&p.attributes, None)),
                                number(&p.value),
                            );
                        }
                    }
                    Data::Gauge(g) => {
                        for p in &g.data_points {
                            out.insert(
                                format!("{base}{{{}}}", labels(&p.attributes, None)),
                                number(&p.value),
                            );
                        }
                    }
                    Data::Histogram(h) => {
                        assert_eq!(h.aggregation_temporality, CUMULATIVE, "{}", m.name);
                        for p in &h.data_points {
                            let l = labels(&p.attributes, None);
                            out.insert(format!("{base}_count{{{l}}}"), p.count as f64);
                            out.insert(format!("{base}_sum{{{l}}}"), p.sum.unwrap_or(f64::NAN));
                            let mut cumulative = 0;
                            for (i, n) in p.bucket_counts.iter().enumerate() {
                                cumulative += n;
                                let le = p
                                    .explicit_bounds
                                    .get(i)
                                    .map_or("+Inf".to_string(), |b| b.to_string());
                                let l = labels(&p.attributes, Some(format!("le=\"{le}\"")));
                                out.insert(format!("{base}_bucket{{{l}}}"), cumulative as f64);
                            }
                        }
                    }
                    other => panic!("{}: {other:?}", m.name),
                }
            }
        }
    }
    out
}

/// The last snapshot of a `--metrics-file` (the samples with the latest timestamp), keyed as [`otlp_series`]
/// keys its series (labels sorted, `le` as the shortest decimal of its number). A histogram with no observation
/// is left out: OpenTelemetry has no point to send for it.
fn last_snapshot(om: &str) -> std::collections::BTreeMap<String, f64> {
    let samples: Vec<(&str, f64, f64)> = om
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut parts = l.rsplitn(3, ' ');
            let ts: f64 = parts.next().unwrap().parse().unwrap();
            let value: f64 = parts.next().unwrap().parse().unwrap();
            (parts.next().unwrap(), value, ts)
        })
        .collect();
    let last = samples.iter().map(|s| s.2).fold(f64::MIN, f64::max);
    let mut out = std::collections::BTreeMap::new();
    for (series, value, _) in samples.into_iter().filter(|s| s.2 == last) {
        let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
        let mut labels: Vec<String> = rest
            .trim_end_matches('}')
            .split("\",")
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                let v = v.trim_matches('"');
                let v = if k == "le" && v != "+Inf" {
                    v.parse::<f64>().unwrap().to_string()
                } else {
                    v.to_string()
                };
                format!("{k}=\"{v}\"")
            })
            .collect();
        labels.sort();
        out.insert(format!("{name}{{{}}}", labels.join(",")), value);
    }
    let empty: Vec<String> = out
        .iter()
        .filter(|(k, v)| k.contains("_count{") && **v == 0.0)
        .map(|(k, _)| k.replacen("_count{", "{", 1))
        .collect();
    out.retain(|k, _| {
        !empty.iter().any(|e| {
            let (base, l) = e.split_once('{').unwrap();
            let l = l.trim_end_matches('}');
            [format!("{base}_count{{{l}}}"), format!("{base}_sum{{{l}}}")].contains(k)
                || (k.starts_with(&format!("{base}_bucket{{"))
                    && k.split_once('{')
                        .unwrap()
                        .1
                        .trim_end_matches('}')
                        .split(',')
                        .filter(|p| !p.starts_with("le="))
                        .collect::<Vec<_>>()
                        .join(",")
                        == l)
        })
    });
    out
}

/// Two series maps are the same series with the same values (sums to 1e-9 relative).
fn assert_same_series(
    otlp: &std::collections::BTreeMap<String, f64>,
    scraped: &std::collections::BTreeMap<String, f64>,
) {
    let only_otlp: Vec<_> = otlp.keys().filter(|k| !scraped.contains_key(*k)).collect();
    let only_scraped: Vec<_> = scraped.keys().filter(|k| !otlp.contains_key(*k)).collect();
    assert!(
        only_otlp.is_empty() && only_scraped.is_empty(),
        "only pushed: {only_otlp:?}\nonly in the metrics file: {only_scraped:?}"
    );
    for (k, a) in otlp {
        let b = scraped[k];
        assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
            "{k}: pushed {a}, metrics file {b}"
        );
    }
}

/// A simulated burst pushed by OTLP to a stand-in collector: the last push (at the run's end) is OTLP/HTTP
/// protobuf at `/v1/metrics`, names the service and the run, and carries every series of the run's metrics file's
/// last snapshot with the same value — counters, gauges (backlog, replicas, pods, nodes) and every histogram
/// bucket — once named as Prometheus names OTLP it ingests.
#[test]
fn an_otlp_push_carries_every_series_a_scrape_has() {
    let tmp = tempfile::tempdir().unwrap();
    let (port, got) = fake_collector(|_| 200);
    let file = tmp.path().join("burst.om");
    let o = bin()
        .args(["run", "workloads/burst.toml", "--run-id", "otlp", "--out"])
        .arg(tmp.path())
        .arg("--otlp-endpoint")
        .arg(format!("http://localhost:{port}"))
        .arg("--metrics-file")
        .arg(&file)
        .assert()
        .success();
    let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
    assert!(
        err.contains(&format!(
            "metrics pushed to http://localhost:{port}/v1/metrics"
        )),
        "{err}"
    );
    assert!(!err.contains("warning"), "{err}");
    let got = got.lock().unwrap();
    let (path, ctype, body) = got.last().expect("at least the push at the end");
    assert_eq!(path, "/v1/metrics");
    assert_eq!(ctype, "application/x-protobuf");
    {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        use prost::Message as _;
        let req = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap();
        let resource = format!("{:?}", req.resource_metrics[0].resource);
        assert!(
            resource.contains("service.name") && resource.contains("imagen-load"),
            "{resource}"
        );
        assert!(resource.contains("service.instance.id") && resource.contains("otlp"));
    }
    let pushed = otlp_series(body);
    let scraped = last_snapshot(&std::fs::read_to_string(&file).unwrap());
    assert_same_series(&pushed, &scraped);
    // And those are the run's counts.
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("otlp/summary.json")).unwrap(),
    )
    .unwrap();
    let total = |name: &str| {
        pushed
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{name}{{")))
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    assert_eq!(
        total("imagen_load_messages_completed_total"),
        s["delivery"]["completed"].as_f64().unwrap()
    );
    // A simulated run paces nothing: its pacer histogram is empty (so not pushed).
    assert!(scraped.keys().all(|k| !k.contains("pacer_lateness")));
    // Every kind of series is there: the comparison above is not of two empty maps.
    for name in [
        "imagen_load_e2e_latency_seconds_bucket",
        "imagen_load_capacity_wait_seconds_sum",
        "imagen_load_model_load_seconds_count",
        "imagen_load_messages_in_flight",
        "imagen_load_backlog_messages",
        "imagen_load_replicas_desired",
        "imagen_load_replicas_ready",
        "imagen_load_pods",
        "imagen_load_gpu_nodes",
        "imagen_load_run_time_seconds",
    ] {
        assert!(
            pushed.keys().any(|k| k.starts_with(&format!("{name}{{"))),
            "{name} not pushed"
        );
    }
}

/// A collector that is not there is one warning that says why, the run goes on, and its event log is exactly the
/// one of the same run without a push (a simulated run's log is a function of workload and seed).
#[test]
fn an_unreachable_collector_is_one_warning_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let closed = free_port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    let o = crate::common::run_burst(
        &tmp.path().join("a"),
        "same",
        &["--otlp-endpoint", &endpoint],
    )
    .success();
    let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert!(err.contains("the run goes on"), "{err}");
    crate::common::run_burst(&tmp.path().join("b"), "same", &[]).success();
    let log =
        |d: &str| std::fs::read_to_string(tmp.path().join(d).join("same/events.jsonl")).unwrap();
    assert!(log("a") == log("b"), "the push changed the event log");
}

/// A live run against the built-in emulator pushes every second to a collector that goes down mid-run (8
/// requests answered 503: two pushes, each tried 4 times) and comes back: one warning, a note that it works
/// again, the run ends well, and the last push still carries the run's counts and every series of its metrics
/// file.
#[test]
fn a_collector_down_mid_run_is_one_warning_and_the_last_push_has_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let (mut procs, _, host) = started(Emulator::Builtin);
    let (port, got) = fake_collector(|i| if (2..10).contains(&i) { 503 } else { 200 });
    let worker_port = free_port();
    let wl = workload(
        out,
        &host,
        "  kind = \"constant\"\n  rate = \"5/s\"\n  duration = \"8s\"",
        "30s",
    );
    let file = out.join("live.om");
    let mut run = Command::new(BIN)
        .arg("run")
        .arg(&wl)
        .arg("--out")
        .arg(out)
        .args(["--run-id", "otlp", "--no-progress", "--otlp-interval", "1s"])
        .arg("--otlp-endpoint")
        .arg(format!("http://127.0.0.1:{port}/v1/metrics"))
        .arg("--metrics-file")
        .arg(&file)
        .env_remove("PUBSUB_EMULATOR_HOST")
        .stdout(std::fs::File::create(out.join("otlp.stdout")).unwrap())
        .stderr(std::fs::File::create(out.join("otlp.stderr")).unwrap())
        .spawn()
        .unwrap();
    procs.0.push(worker_on(
        &host,
        "otlp-w0",
        "500ms",
        "100ms",
        worker_port,
        &out.join("w0.log"),
    ));
    assert_eq!(wait(&mut run, Duration::from_secs(90), out, "otlp"), 0);
    let err = std::fs::read_to_string(out.join("otlp.stderr")).unwrap();
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(err.contains("status code: 503"), "{err}");
    assert!(err.contains("works again"), "{err}");
    assert!(err.contains("OTLP: 2 of "), "{err}");
    let s = summary(out, "otlp");
    assert_eq!(s["delivery"]["completed"], 40, "{}", s["delivery"]);
    let got = got.lock().unwrap();
    assert!(got.len() >= 12, "{} requests", got.len());
    let pushed = otlp_series(&got.last().unwrap().2);
    assert_same_series(
        &pushed,
        &last_snapshot(&std::fs::read_to_string(&file).unwrap()),
    );
    assert_eq!(
        pushed[r#"imagen_load_messages_published_total{run="otlp",stream="upscale"}"#],
        s["delivery"]["published"].as_f64().unwrap()
    );
}
