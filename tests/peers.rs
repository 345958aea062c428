//! Real peers as referees: Java's HdrHistogram (Debian's `libhdrhistogram-java`) for the `.hgrm` and `.hlog`
//! files, headless Chromium for the HTML pages, Google's Pub/Sub emulator and Google's Python client for the Pub/Sub
//! path. `.ci/run` installs them; on a machine without one, its test says it was skipped (and fails instead when
//! `IMAGEN_LOAD_REQUIRE_PEERS=1`, as CI sets it).

use crate::common::{path, root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `libhdrhistogram-java` puts its jar.
const HDR_JAR: &str = "/usr/share/java/hdrhistogram.jar";

/// Whether a peer is here; when it is not, says so (or fails, when CI requires the peers).
pub fn peer(what: &str, present: bool, install: &str) -> bool {
    if !present {
        assert!(
            std::env::var_os("IMAGEN_LOAD_REQUIRE_PEERS").is_none(),
            "{what} is required (IMAGEN_LOAD_REQUIRE_PEERS) but missing: {install}"
        );
        eprintln!("SKIPPED: {what} is not installed here ({install})");
    }
    present
}

fn java_hdr() -> bool {
    let java = Command::new("java").arg("-version").output().is_ok();
    peer(
        "Java's HdrHistogram",
        java && Path::new(HDR_JAR).is_file(),
        "apt-get install default-jre-headless libhdrhistogram-java",
    )
}

/// Java's `outputPercentileDistribution` of one tag of an interval log (`tests/interop/HdrReferee.java`).
fn java_hgrm(hlog: &Path, tag: Option<&str>) -> String {
    let out = Command::new("java")
        .args(["-cp", HDR_JAR])
        .arg(path("tests/interop/HdrReferee.java"))
        .arg("hgrm")
        .arg(hlog)
        .args(tag)
        .output()
        .expect("java");
    assert!(
        out.status.success(),
        "HdrReferee: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run(workload: &str, out: &Path, id: &str) -> PathBuf {
    crate::common::bin()
        .args(["run", workload, "--quiet", "--run-id", id, "--out"])
        .arg(out)
        .assert()
        .success();
    out.join(id)
}

/// Our `.hgrm` files claim to be what Java's HdrHistogram prints for the same histogram: they are, byte for byte,
/// for every stream's end-to-end latency and for all of them, read back from our `.hlog` by Java's
/// `HistogramLogReader`. Two workloads: a burst, and a busy hour and a half with enough messages (about 6,000;
/// over 4,096) for the 99.98% rows, where the languages' rounding differs.
#[test]
fn our_hgrm_is_javas_percentile_distribution_byte_for_byte() {
    if !java_hdr() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let busy = out.path().join("busy.toml");
    std::fs::write(
        &busy,
        "[run]\nname = \"busy\"\ndrain = \"0s\"\n[sim.keda]\nmin_replicas = 2\nmax_replicas = 6\n\
         [[stream]]\nname = \"upscale\"\n  [[stream.phase]]\n  kind = \"poisson\"\n  rate = \"1/s\"\n  duration = \"100m\"\n",
    )
    .unwrap();
    let busy = busy.to_str().unwrap().to_string();
    for (workload, id) in [("workloads/burst.toml", "burst"), (busy.as_str(), "busy")] {
        let dir = run(workload, out.path(), id);
        let hlog = dir.join("e2e_latency.hlog");
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
        let mut tags = vec![(None, "e2e_latency.hgrm".to_string())];
        for s in summary["run"]["streams"].as_array().unwrap() {
            let s = s.as_str().unwrap();
            tags.push((
                Some(format!("e2e_latency.{s}")),
                format!("e2e_latency.{s}.hgrm"),
            ));
        }
        for (tag, file) in tags {
            let ours = std::fs::read_to_string(dir.join("histograms").join(&file)).unwrap();
            let java = java_hgrm(&hlog, tag.as_deref());
            assert_eq!(ours, java, "{workload}: {file} differs from Java's");
        }
    }
}

/// The docs' reader command works on our `.hlog`: Java's `HistogramLogProcessor`, per tag, microseconds printed
/// as milliseconds (`-outputValueUnitRatio 1000`), gives the count and the maximum `summary.json` has.
#[test]
fn javas_histogram_log_processor_reads_our_hlog_per_tag() {
    if !java_hdr() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let dir = run("workloads/burst.toml", out.path(), "hlp");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let row = |label: &str| {
        summary["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["label"] == label)
            .cloned()
            .unwrap()
    };
    for (tag, label) in [
        (None, "e2e_latency"),
        (Some("e2e_latency.upscale"), "e2e_latency{scope:upscale}"),
    ] {
        let mut cmd = Command::new("java");
        cmd.args([
            "-cp",
            HDR_JAR,
            "org.HdrHistogram.HistogramLogProcessor",
            "-i",
        ])
        .arg(dir.join("e2e_latency.hlog"))
        .args(["-outputValueUnitRatio", "1000"]);
        if let Some(t) = tag {
            cmd.args(["-tag", t]);
        }
        let done = cmd.current_dir(root()).output().expect("java");
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        let text = String::from_utf8(done.stdout).unwrap();
        let want = row(label);
        let count = want["count"].as_u64().unwrap();
        assert!(
            text.contains(&format!("Total count    = {count:12}")),
            "{label}: {text}"
        );
        let max_ms = want["max_us"].as_u64().unwrap() as f64 / 1000.0;
        assert!(
            text.contains(&format!("#[Max     = {max_ms:12.3}")),
            "{label}: max {max_ms} in {text}"
        );
    }
}

/// Whether Google's Python Pub/Sub client is importable.
fn python_pubsub() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import google.cloud.pubsub_v1"])
        .output()
        .is_ok_and(|o| o.status.success());
    peer(
        "Google's Python Pub/Sub client",
        ok,
        "pip install google-cloud-pubsub",
    )
}

/// Google's own client finds the built-in emulator as it finds Google's: `tests/interop/pubsub_conformance.py`
/// (admin, publish with attributes, unary and streaming pull, ack, lease extension, nack, the deadline of an
/// empty pull, `max_messages = 0`, missing topics, deletion) passes against each, with the same checks.
/// The one difference the script allows, an ack deadline under 10 s, is named in its output and in
/// `docs/emulators.md`.
#[test]
fn googles_python_client_passes_the_same_checks_on_both_emulators() {
    if !python_pubsub() {
        return;
    }
    let mut passed: Vec<(crate::pubsub::Emulator, Vec<String>)> = Vec::new();
    for emu in crate::pubsub::Emulator::available() {
        let port = crate::pubsub::free_port();
        let mut child = emu.start(port);
        let out = Command::new("python3")
            .arg(path("tests/interop/pubsub_conformance.py"))
            .env("PUBSUB_EMULATOR_HOST", format!("127.0.0.1:{port}"))
            .output()
            .expect("python3");
        child.kill().ok();
        child.wait().ok();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{emu:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Check names only: the notes in parentheses say what each emulator did.
        let checks: Vec<String> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("ok "))
            .map(|l| l.split(' ').next().unwrap_or(l).to_string())
            .collect();
        assert!(checks.len() >= 19, "{emu:?}: {stdout}");
        passed.push((emu, checks));
    }
    for pair in passed.windows(2) {
        assert_eq!(pair[0].1, pair[1].1, "{:?} vs {:?}", pair[0].0, pair[1].0);
    }
}
