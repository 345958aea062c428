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

/// Every command that prints, into a reader that has gone away (`imagen-load import dump.json | head`): it stops
/// quietly, as ripgrep and kubectl do: nothing on stderr, no panic, and its own exit status.
#[test]
fn a_reader_that_closes_early_ends_every_printing_command_quietly() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap().to_string();
    crate::common::run_burst(out.path(), "piped", &[]).success();
    let runs = format!("{o}/piped");
    let commands: Vec<Vec<String>> = vec![
        vec!["plan".into(), "workloads/burst.toml".into()],
        vec!["validate".into(), "workloads/burst.toml".into()],
        vec![
            "import".into(),
            "fixtures/kube/events/failed-scale-up.json".into(),
            "--out".into(),
            o.clone(),
        ],
        vec!["analyze".into(), runs.clone()],
        vec!["compare".into(), runs.clone(), runs.clone()],
        vec!["whatif".into(), "workloads/burst.toml".into()],
        vec![
            "run".into(),
            "workloads/burst.toml".into(),
            "--out".into(),
            o.clone(),
        ],
    ];
    let failing_gate: Vec<String> = [
        "run",
        "workloads/burst.toml",
        "--gates",
        "fixtures/gates/burst-fail.toml",
        "--out",
        &o,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cases = commands
        .into_iter()
        .map(|c| (c, 0))
        .chain([(failing_gate, 1)]);
    for (args, code) in cases {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imagen-load"))
            .args(&args)
            .current_dir(crate::common::root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before anything is written.
        drop(child.stdout.take());
        let done = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr);
        // Its own exit status all the same: a failed gate still fails the job.
        assert_eq!(done.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("Error") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}
