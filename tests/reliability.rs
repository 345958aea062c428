//! Reliability: nothing lost under faults, bad input handled, hostile input harmless (docs/reliability.md lists
//! each guarantee and its test). Live runs here use the built-in emulator on loopback, as separate processes.

use crate::common::{bin, path};
use imagen_load::event::{Event, EventKind, MsgId, Source};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_imagen-load");

/// A live run into the built-in emulator (no worker: every job stays open) of `rate` jobs a second for `secs`.
fn live_workload(dir: &Path, rate: u32, secs: u32) -> std::path::PathBuf {
    let p = dir.join("live.toml");
    std::fs::write(
        &p,
        format!(
            r#"[run]
name = "live"
deadline = "2s"
drain = "0s"
[target]
kind = "emulator"
backlog = "none"
[[stream]]
name = "upscale"
  [[stream.phase]]
  kind = "constant"
  rate = "{rate}/s"
  duration = "{secs}s"
"#
        ),
    )
    .unwrap();
    p
}

fn start(workload: &Path, out: &Path, id: &str) -> Child {
    Command::new(BIN)
        .arg("run")
        .arg(workload)
        .args(["--run-id", id, "--no-progress", "--out"])
        .arg(out)
        .env_remove("PUBSUB_EMULATOR_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn lines_of(log: &Path, event: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(&format!(r#""event":"{event}""#))
        .count()
}

/// Waits until the run's log holds `n` published jobs.
fn wait_published(log: &Path, n: usize) {
    let until = Instant::now() + Duration::from_secs(60);
    while lines_of(log, "published") < n {
        assert!(Instant::now() < until, "the run did not publish {n} jobs");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kill_9_at_any_moment_leaves_a_log_that_analyses() {
    let dir = tempfile::tempdir().unwrap();
    let wl = live_workload(dir.path(), 200, 30);
    // Early (before the first periodic flush), and twice mid-run.
    for (i, after) in [
        Duration::from_millis(400),
        Duration::from_millis(1700),
        Duration::from_millis(3300),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("k{i}");
        let mut run = start(&wl, dir.path(), &id);
        let log = dir.path().join(&id).join("events.jsonl");
        let until = Instant::now() + Duration::from_secs(30);
        while !log.exists() {
            assert!(Instant::now() < until, "the run never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        std::thread::sleep(after);
        run.kill().unwrap(); // SIGKILL
        run.wait().unwrap();
        let alive = started.elapsed();
        let out = bin()
            .arg("analyze")
            .arg(dir.path().join(&id))
            .arg("--quiet")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{id}: {out:?}");
        let s: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(&id).join("summary.json")).unwrap(),
        )
        .unwrap();
        assert!(
            s["warnings"].to_string().contains("did not finish"),
            "{id}: {}",
            s["warnings"]
        );
        // At most about a second lost: what was scheduled more than ~1.5 s before the kill is on disk.
        let scheduled = s["delivery"]["scheduled"].as_u64().unwrap();
        let lower = (alive.as_secs_f64() - 1.5).max(0.0) * 200.0 * 0.8;
        assert!(
            scheduled as f64 >= lower,
            "{id}: killed after {alive:?}, {scheduled} scheduled on disk (expected ≥ {lower:.0})"
        );
    }
}

#[cfg(unix)]
fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_stop_publishing_and_write_everything_marked_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let wl = live_workload(dir.path(), 100, 60);
    for (id, sig, code) in [("term", "-TERM", 143), ("int", "-INT", 130)] {
        let mut run = start(&wl, dir.path(), id);
        let log = dir.path().join(id).join("events.jsonl");
        wait_published(&log, 50);
        let signalled = Instant::now();
        signal(&run, sig);
        let status = run.wait().unwrap();
        let took = signalled.elapsed();
        let mut stderr = String::new();
        std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        // The shell's code for the signal (128 + its number), not the code of an error.
        assert_eq!(status.code(), Some(code), "{id}: {stderr}");
        assert!(stderr.contains("interrupted"), "{id}: {stderr}");
        // Bounded: the grace period for completions in flight (10 s), not the minute of the workload.
        assert!(took < Duration::from_secs(30), "{id}: took {took:?}");
        let folder = dir.path().join(id);
        for f in ["summary.json", "report.md", "junit.xml", "report.html"] {
            assert!(folder.join(f).exists(), "{id}: {f}");
        }
        let s: Value =
            serde_json::from_slice(&std::fs::read(folder.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s["run"]["interrupted"], true, "{id}");
        // Publishing stopped: far fewer than the 6,000 jobs of the workload, and the open ones reported lost.
        let scheduled = s["delivery"]["scheduled"].as_u64().unwrap();
        assert!(scheduled < 6000, "{id}: {scheduled}");
        assert_eq!(lines_of(&log, "run_finished"), 1);
        assert!(lines_of(&log, "lost") > 0, "{id}: open jobs are named lost");
    }
}

/// Writes a log from events (a header first) and analyses it; returns summary.json.
fn analyse_log(dir: &Path, lines: &[String]) -> Value {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    bin()
        .arg("analyze")
        .arg(dir)
        .arg("--quiet")
        .assert()
        .success();
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

fn header(streams: &[&str]) -> String {
    serde_json::to_string(&Event::new(
        0,
        Source::Harness,
        crate::common::live_header(streams, 1_000_000_000, 60_000_000),
    ))
    .unwrap()
}

fn line(t_us: u64, source: Source, kind: EventKind) -> String {
    serde_json::to_string(&Event::new(t_us, source, kind)).unwrap()
}

fn id(seq: u64) -> MsgId {
    MsgId {
        stream: "upscale".into(),
        seq,
    }
}

/// The run prints "press Ctrl-C again to abort at once": a second SIGINT ends the process within a second, even
/// while it waits for completions in flight.
#[cfg(unix)]
#[test]
fn a_second_ctrl_c_ends_the_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let wl = live_workload(dir.path(), 100, 60);
    let mut run = start(&wl, dir.path(), "twice");
    let log = dir.path().join("twice").join("events.jsonl");
    wait_published(&log, 50);
    signal(&run, "-INT");
    std::thread::sleep(Duration::from_millis(300));
    let second = Instant::now();
    signal(&run, "-INT");
    let status = run.wait().unwrap();
    assert!(
        second.elapsed() < Duration::from_secs(1),
        "took {:?} after the second signal",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    // What was logged is there, and analyses.
    assert!(lines_of(&log, "published") >= 50);
}
#[test]
fn worker_clock_skew_is_reported_and_never_makes_a_negative_duration() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec![header(&["upscale"])];
    // Job 0: a worker whose clock is behind says it got the job (sent at 1 s) at 0.1 s: 0.9 s before it was sent.
    // Job 1: a worker whose clock is ahead says it finished at 5.5 s; the harness saw the completion at 2.5 s.
    for (seq, pod, at, received, end) in [
        (0, "slow-clock", 1_000_000, 100_000, 1_200_000),
        (1, "fast-clock", 2_000_000, 2_100_000, 5_500_000),
    ] {
        lines.push(line(
            at,
            Source::Harness,
            EventKind::Scheduled {
                id: id(seq),
                intended_us: at,
            },
        ));
        lines.push(line(
            at + 5_000,
            Source::Pubsub,
            EventKind::Published {
                id: id(seq),
                lateness_us: 0,
                server_id: Some(format!("m{seq}")),
            },
        ));
        lines.push(line(
            at + 500_000,
            Source::Pubsub,
            EventKind::Completed {
                id: id(seq),
                pod: pod.into(),
                received_us: Some(received),
                processing_start_us: Some(received),
                processing_end_us: Some(end),
            },
        ));
    }
    lines.push(line(
        3_000_000,
        Source::Harness,
        EventKind::RunFinished {
            interrupted: false,
            reason: None,
        },
    ));
    let s = analyse_log(dir.path(), &lines);
    let warnings = s["warnings"].to_string();
    assert!(
        warnings.contains("worker slow-clock's clock is up to 900ms behind"),
        "{warnings}"
    );
    assert!(
        warnings.contains("worker fast-clock's clock is up to 3.00s ahead"),
        "{warnings}"
    );
    // Every duration in the summary is a non-negative number (clamped, never wrapped around).
    fn walk(v: &Value, path: &str) {
        match v {
            Value::Number(n) => assert!(
                n.as_f64().is_some_and(|x| (0.0..1e15).contains(&x)),
                "{path} = {n}"
            ),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            Value::Object(o) => o.iter().for_each(|(k, x)| walk(x, &format!("{path}.{k}"))),
            _ => {}
        }
    }
    walk(&s["messages"], "messages");
    walk(&s["latency"], "latency");
}

#[test]
fn a_completion_twice_and_strangers_in_the_log_are_counted_not_believed() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec![header(&["upscale"])];
    lines.push(line(
        0,
        Source::Harness,
        EventKind::Scheduled {
            id: id(0),
            intended_us: 0,
        },
    ));
    lines.push(line(
        1_000,
        Source::Pubsub,
        EventKind::Published {
            id: id(0),
            lateness_us: 0,
            server_id: Some("m0".into()),
        },
    ));
    let done = |t| {
        line(
            t,
            Source::Pubsub,
            EventKind::Completed {
                id: id(0),
                pod: "w".into(),
                received_us: None,
                processing_start_us: None,
                processing_end_us: None,
            },
        )
    };
    lines.push(done(500_000));
    lines.push(done(700_000));
    // A hostile sequence number, and a line far longer than any event.
    lines.push(line(
        800_000,
        Source::Pubsub,
        EventKind::Completed {
            id: id(u64::MAX - 1),
            pod: "w".into(),
            received_us: None,
            processing_start_us: None,
            processing_end_us: None,
        },
    ));
    lines.push("x".repeat(3 * imagen_load::event::log::MAX_LINE_BYTES));
    lines.push(line(
        900_000,
        Source::Harness,
        EventKind::RunFinished {
            interrupted: false,
            reason: None,
        },
    ));
    let s = analyse_log(dir.path(), &lines);
    assert_eq!(s["delivery"]["completed"], 1, "{}", s["delivery"]);
    let warnings = s["warnings"].to_string();
    assert!(warnings.contains("no run can have"), "{warnings}");
    assert!(warnings.contains("longer than"), "{warnings}");
}

#[test]
fn a_huge_or_endless_workload_file_is_refused_without_being_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.toml");
    // 1 GB (sparse): refused by size, with the limit.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    bin()
        .arg("validate")
        .arg(&huge)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "is 1073741824 bytes; the limit is",
        ));
    // An endless one: read up to the limit, then refused.
    if Path::new("/dev/zero").exists() {
        bin()
            .args(["validate", "/dev/zero"])
            .timeout(Duration::from_secs(30))
            .assert()
            .code(2)
            .stderr(predicates::str::contains("the limit is"));
    }
    // A payload template over its limit (inline, 11 MiB).
    let big = dir.path().join("payload.toml");
    std::fs::write(
        &big,
        format!(
            "[[stream]]\nname = \"a\"\npayload = \"{}\"\n  [[stream.phase]]\n  kind = \"burst\"\n  count = 1\n",
            "x".repeat(11 << 20)
        ),
    )
    .unwrap();
    bin()
        .arg("validate")
        .arg(&big)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("the limit is 10485760"));
}

/// A token planted in the environment and in the kubeconfig must not reach any output: the results folder,
/// stdout or stderr (with debug logging on).
#[test]
fn planted_credentials_never_reach_the_results_or_the_logs() {
    const TOKEN: &str = "imagen-fake-secret-7f3c9a1e5d2b";
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(path("fixtures/kube/scale-0-2-0.json")).unwrap(),
    )
    .unwrap();
    let server = crate::fakekube::FakeKube::start(crate::fakekube::steady(&fixture["initial"]));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server
        .kubeconfig()
        .replace("user: {}", &format!("user:\n    token: {TOKEN}"));
    assert!(kubeconfig.contains(TOKEN));
    std::fs::write(dir.path().join("kubeconfig"), kubeconfig).unwrap();
    let wl = live_workload(dir.path(), 20, 1);
    let out = Command::new(BIN)
        .arg("run")
        .arg(&wl)
        .args([
            "--namespace",
            "imagen",
            "--run-id",
            "s",
            "--no-progress",
            "-vv",
            "--out",
        ])
        .arg(dir.path().join("results"))
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .env("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
        .env("IMAGEN_API_KEY", TOKEN)
        .env("RUST_LOG", "debug")
        .env_remove("PUBSUB_EMULATOR_HOST")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    assert!(
        stderr.len() > 200,
        "debug logging was on, so the check means something"
    );
    let mut files = 0;
    let mut stack = vec![dir.path().join("results")];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap().path();
            if e.is_dir() {
                stack.push(e);
            } else {
                files += 1;
                let bytes = std::fs::read(&e).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(TOKEN),
                    "{} holds the token",
                    e.display()
                );
            }
        }
    }
    assert!(files >= 6, "the results folder was written ({files} files)");
    // The watchers did reach the (fake) cluster with it: the token was used, only not written down.
    let log = std::fs::read_to_string(dir.path().join("results/s/events.jsonl")).unwrap();
    assert!(log.contains(r#""source":"kube""#));
}

#[cfg(target_os = "linux")]
#[test]
fn the_emulator_binds_loopback_unless_told_otherwise() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut emu = Command::new(BIN)
        .args(["emulator", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "the emulator did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The kernel's table of listening sockets: local address 127.0.0.1 (0100007F), not 0.0.0.0.
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap()
        + &std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    let _ = emu.kill();
    let _ = emu.wait();
    let listening: Vec<&str> = table
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[3] == "0A" && f[1].ends_with(&format!(":{port:04X}"))
        })
        .collect();
    assert!(!listening.is_empty(), "no listening socket on {port}");
    for l in listening {
        let local = l.split_whitespace().nth(1).unwrap();
        assert!(
            local.starts_with("0100007F:")
                || local.starts_with("00000000000000000000000001000000:"),
            "the emulator listens on {local}"
        );
    }
}

/// With every message lost, `summary.json` once listed each id (66 MB for a million). Lost messages are ranges
/// per stream: 100,000 lost in a row, and a gap where one completed, are two ranges and a small file.
#[test]
fn lost_messages_are_listed_as_ranges_not_one_by_one() {
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec![header(&["upscale"])];
    for seq in 0..N {
        let t = seq * 10;
        lines.push(line(
            t,
            Source::Harness,
            EventKind::Scheduled {
                id: id(seq),
                intended_us: t,
            },
        ));
        lines.push(line(
            t + 5,
            Source::Pubsub,
            EventKind::Published {
                id: id(seq),
                lateness_us: 0,
                server_id: None,
            },
        ));
    }
    lines.push(line(
        N * 10,
        Source::Pubsub,
        EventKind::Completed {
            id: id(500),
            pod: "w".into(),
            received_us: None,
            processing_start_us: None,
            processing_end_us: None,
        },
    ));
    lines.push(line(
        70_000_000,
        Source::Harness,
        EventKind::RunFinished {
            interrupted: false,
            reason: None,
        },
    ));
    let s = analyse_log(dir.path(), &lines);
    let d = &s["delivery"];
    assert_eq!(d["lost"], N - 1, "{d}");
    assert_eq!(
        d["lost_ranges"],
        serde_json::json!([
            {"stream": "upscale", "first": 0, "last": 499},
            {"stream": "upscale", "first": 501, "last": N - 1}
        ])
    );
    let bytes = std::fs::metadata(dir.path().join("summary.json"))
        .unwrap()
        .len();
    assert!(bytes < 200_000, "summary.json is {bytes} bytes");
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap_or_default();
    assert!(!md.contains("upscale#2,"), "reports name ranges, not ids");
}
