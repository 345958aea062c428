use crate::common::bin;
use predicates::str::contains;

#[test]
fn every_subcommand_explains_itself() {
    for sub in ["run", "validate", "plan", "analyze"] {
        bin()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(contains("Usage: imagen-load"));
    }
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Exit codes: 0 ok, 1 a gate failed, 2 error"));
}

#[test]
fn usage_errors_exit_2() {
    bin().args(["run"]).assert().code(2);
    bin()
        .args(["validate", "no/such/file.toml"])
        .assert()
        .code(2)
        .stderr(contains("cannot read workload file"));
}

#[test]
fn plan_csv_is_byte_identical_for_the_same_seed() {
    let a = bin()
        .args(["plan", "--csv", "workloads/steady.toml"])
        .output()
        .unwrap();
    let b = bin()
        .args(["plan", "--csv", "workloads/steady.toml"])
        .output()
        .unwrap();
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8(a.stdout).unwrap();
    assert!(text.starts_with("stream,seq,kind,phase,intended_offset_us\n"));
    let c = bin()
        .args(["plan", "--csv", "workloads/steady.toml", "--seed", "8"])
        .output()
        .unwrap();
    assert_ne!(
        text.as_bytes(),
        &c.stdout[..],
        "the Poisson stream changes with the seed"
    );
    // The deterministic stream (ramp/constant/ramp) does not.
    let only = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| l.starts_with("upscale,"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(only(text.as_bytes()), only(&c.stdout));
}

#[test]
fn run_writes_a_results_folder_and_never_overwrites_it_silently() {
    let out = tempfile::tempdir().unwrap();
    let run = || {
        bin()
            .args([
                "run",
                "workloads/burst.toml",
                "--run-id",
                "t",
                "--quiet",
                "--out",
            ])
            .arg(out.path())
            .assert()
    };
    run().success();
    let dir = out.path().join("t");
    for f in [
        "events.jsonl",
        "summary.json",
        "e2e_latency.hlog",
        "workload.toml",
        "histograms/e2e_latency.hgrm",
    ] {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
    run()
        .code(2)
        .stderr(contains("already exists"))
        .stderr(contains("--force"));
    bin()
        .args([
            "run",
            "workloads/burst.toml",
            "--run-id",
            "t",
            "--quiet",
            "--force",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success();
}

#[test]
fn analyze_recomputes_the_same_summary_from_the_log() {
    let out = tempfile::tempdir().unwrap();
    bin()
        .args([
            "run",
            "workloads/spike-train.toml",
            "--run-id",
            "r",
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success();
    let dir = out.path().join("r");
    let first = std::fs::read(dir.join("summary.json")).unwrap();
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    bin()
        .arg("analyze")
        .arg(&dir)
        .assert()
        .success()
        .stdout(contains("End-to-end latency"));
    assert_eq!(first, std::fs::read(dir.join("summary.json")).unwrap());
}

#[test]
fn run_prints_the_breakdown() {
    let out = tempfile::tempdir().unwrap();
    bin()
        .args(["run", "workloads/burst.toml", "--out"])
        .arg(out.path())
        .assert()
        .success()
        .stdout(contains("Cold starts (4 pods)"))
        .stdout(contains("image pull"))
        .stdout(contains("GPU cost"));
}

#[test]
fn overrides_change_the_model() {
    bin()
        .args([
            "validate",
            "workloads/burst.toml",
            "--set",
            "sim.keda.min_replicas=1",
        ])
        .assert()
        .success()
        .stdout(contains("replicas 1..1"));
    bin()
        .args(["validate", "workloads/burst.toml", "--set", "nonsense"])
        .assert()
        .code(2)
        .stderr(contains("KEY=VALUE"));
}
