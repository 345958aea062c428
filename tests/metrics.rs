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
    bin()
        .args(["run", "workloads/burst.toml", "--out"])
        .arg(tmp.path())
        .args(["--metrics-addr", "0.0.0.0:0"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--metrics-allow-remote"));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
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
    bin()
        .args(["run", "workloads/burst.toml", "--quiet", "--out"])
        .arg(tmp.path().join("ok"))
        .args(["--metrics-addr", "localhost:0"])
        .assert()
        .success();
}
