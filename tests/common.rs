//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn path(rel: &str) -> PathBuf {
    root().join(rel)
}

pub fn plan_from(src: &str) -> imagen_load::plan::workload::Plan {
    imagen_load::plan::workload::parse(Path::new("test.toml"), src)
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn bin() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("imagen-load").unwrap();
    c.current_dir(root());
    c
}

/// `imagen-load run workloads/burst.toml --quiet --run-id ID --out OUT EXTRA...`, for tests that need a run.
pub fn run_burst(out: &Path, id: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    bin()
        .args([
            "run",
            "workloads/burst.toml",
            "--quiet",
            "--run-id",
            id,
            "--out",
        ])
        .arg(out)
        .args(extra)
        .assert()
}

/// One pod's entry in a summary.json's `pods`.
pub fn summary_pod(summary: &serde_json::Value, name: &str) -> serde_json::Value {
    summary["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pod"] == name)
        .unwrap_or_else(|| panic!("no pod {name} in the summary"))
        .clone()
}

/// Reads one HTTP/1.1 request from `conn`: its head (lower-cased) and its body (by `content-length`), read whole
/// so that closing the connection does not reset it under the client. `None` when the connection ends first.
pub fn read_request(conn: &mut std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let end = buf.len().min(head_end + length);
    Some((head, buf[head_end..end].to_vec()))
}

/// A live run's `run_started` for hand-written logs: target `emulator`, seed 1, no warm-up, GPU at $0.48/h, the
/// given streams, wall-clock start and deadline; no pipelines named, the cluster not said to be observed.
pub fn live_header(
    streams: &[&str],
    wall_clock_start_unix_us: u64,
    deadline_us: u64,
) -> imagen_load::event::EventKind {
    imagen_load::event::EventKind::RunStarted {
        log_version: imagen_load::event::EVENT_LOG_VERSION,
        run_id: "r".into(),
        workload: "w".into(),
        seed: 1,
        target: "emulator".into(),
        wall_clock_start_unix_us,
        streams: streams.iter().map(|s| s.to_string()).collect(),
        warmup_us: 0,
        deadline_us,
        price_per_gpu_hour_usd: 0.48,
        shard: None,
        pipelines: Vec::new(),
        cluster_observed: None,
        overrides: Vec::new(),
        timer_slack_us: None,
    }
}
