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

/// `for s in 1 2 3 4; do imagen-load run workloads/burst.toml --seed $s; done` once failed from seed 2 on: run ids
/// had one-second resolution. Runs one after another each get their own folder.
#[test]
fn runs_started_in_the_same_second_each_get_their_own_folder() {
    let out = tempfile::tempdir().unwrap();
    for seed in ["1", "2", "3", "4"] {
        bin()
            .args([
                "run",
                "workloads/burst.toml",
                "--quiet",
                "--seed",
                seed,
                "--out",
            ])
            .arg(out.path())
            .assert()
            .success();
    }
    let mut ids: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 4, "{ids:?}");
    for id in &ids {
        // `<UTC time to the millisecond>-<workload name>`, sortable by time.
        assert!(id.ends_with("Z-burst") && id.as_bytes()[8] == b'T', "{id}");
        assert!(out.path().join(id).join("summary.json").is_file(), "{id}");
    }
}

/// Two runs racing for one folder (`--run-id` the same, started together): exactly one gets it, the other fails
/// cleanly with the fix, and the winner's log is whole. Creating the folder is one atomic `mkdir`.
#[test]
fn two_runs_racing_for_one_folder_leave_one_whole_result() {
    let out = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let id = format!("race{round}");
        let start = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_imagen-load"))
                .current_dir(crate::common::root())
                .args([
                    "run",
                    "workloads/burst.toml",
                    "--quiet",
                    "--run-id",
                    &id,
                    "--out",
                ])
                .arg(out.path())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (start(), start());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let codes = [a.status.code(), b.status.code()];
        assert!(
            codes.contains(&Some(0)) && codes.contains(&Some(2)),
            "{round}: {codes:?} {} {}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        );
        let loser = if a.status.code() == Some(2) { &a } else { &b };
        let err = String::from_utf8_lossy(&loser.stderr);
        assert!(
            err.contains("already exists") && err.contains("fix:"),
            "{err}"
        );
        bin()
            .arg("analyze")
            .arg(out.path().join(&id))
            .arg("--quiet")
            .assert()
            .success();
        let s: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.path().join(&id).join("summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(s["run"]["run_id"], id.as_str());
        assert_eq!(s["delivery"]["scheduled"], 150);
    }
}

/// k6 users write `--out json=results.json`; it once created a folder named `json=results.json`. Refused, with
/// what imagen-load writes and where, and nothing created.
#[test]
fn a_k6_output_spec_given_as_out_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for spec in [
        "json=results.json",
        "csv=x.csv",
        "experimental-prometheus-rw",
        "cloud",
    ] {
        bin()
            .args(["run", "workloads/burst.toml", "--quiet", "--out", spec])
            .current_dir(dir.path())
            .assert()
            .code(2)
            .stderr(contains("k6 output spec"))
            .stderr(contains("events.jsonl"))
            .stderr(contains("fix:"));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `--gates nope.toml` once said "cannot read workload file" with advice about `workloads/`, and printed the OS
/// error twice. A file is named by its role, with its own fix, and the OS error once.
#[test]
fn an_unreadable_file_is_named_by_its_role_and_its_error_said_once() {
    let out = tempfile::tempdir().unwrap();
    let o = bin()
        .args([
            "run",
            "workloads/burst.toml",
            "--quiet",
            "--gates",
            "nope.toml",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot read gates file nope.toml"), "{err}");
    assert!(
        err.contains("--gates") && err.contains("ci/gates.toml"),
        "{err}"
    );
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    let o = bin().args(["validate", "nope.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot read workload file nope.toml"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// `--set` once left no trace: the results folder's `workload.toml` was the source file byte for byte, and a typo
/// in a `--set` was blamed on a line of the file. Now the overrides are in the log's header and `summary.json`
/// (also after re-analysis), `workload.toml` is what ran, and a mistake in a `--set` names the flag.
#[test]
fn a_set_override_is_recorded_and_a_mistake_in_it_is_blamed_on_the_flag() {
    let out = tempfile::tempdir().unwrap();
    let set = "sim.keda.min_replicas=1";
    crate::common::run_burst(out.path(), "o", &["--set", set]).success();
    let dir = out.path().join("o");
    let summary = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
    };
    assert_eq!(summary(&dir)["run"]["overrides"], serde_json::json!([set]));
    let header = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let header = header.lines().next().unwrap();
    assert!(
        header.contains(r#""overrides":["sim.keda.min_replicas=1"]"#),
        "{header}"
    );
    let effective = std::fs::read_to_string(dir.join("workload.toml")).unwrap();
    assert!(
        effective.starts_with(
            "# imagen-load: workloads/burst.toml with --set sim.keda.min_replicas=1 applied\n"
        ),
        "{effective}"
    );
    // What ran validates to what ran: the recorded workload has the override in it.
    bin()
        .arg("validate")
        .arg(dir.join("workload.toml"))
        .assert()
        .success()
        .stdout(contains("replicas 1..1"));
    bin()
        .arg("analyze")
        .arg(&dir)
        .arg("--quiet")
        .assert()
        .success();
    assert_eq!(summary(&dir)["run"]["overrides"], serde_json::json!([set]));
    // Without overrides the record is the file as written, and summary.json has no `overrides`.
    crate::common::run_burst(out.path(), "plain", &[]).success();
    assert_eq!(
        std::fs::read(out.path().join("plain").join("workload.toml")).unwrap(),
        std::fs::read(crate::common::path("workloads/burst.toml")).unwrap()
    );
    assert!(
        summary(&out.path().join("plain"))["run"]
            .get("overrides")
            .is_none()
    );
    // A typo in a `--set` is the flag's mistake, not a line of burst.toml.
    let o = bin()
        .args([
            "validate",
            "workloads/burst.toml",
            "--set",
            "sim.keda.min_replica=1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--set sim.keda.min_replica=1: `sim.keda.min_replica`"),
        "{err}"
    );
    assert!(!err.contains("burst.toml:"), "{err}");
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

/// Pods on GKE want one JSON object per line so that Cloud Logging sees severities: with `--log-format json`
/// (or `IMAGEN_LOAD_LOG_FORMAT=json`) every stderr line, the harness's notes and errors and `tracing`'s events,
/// is an object with Cloud Logging's `severity`, `message` and `time`.
#[test]
fn log_format_json_writes_one_cloud_logging_object_per_line() {
    let o = bin()
        .args(["validate", "nope.toml", "--log-format", "json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert_eq!(lines[0]["severity"], "ERROR");
    assert!(
        lines[0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot read workload file nope.toml")
    );
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    // A long-running server's first words, through the environment variable.
    let mut emulator = std::process::Command::new(env!("CARGO_BIN_EXE_imagen-load"))
        .args(["emulator", "--port", "0", "-v"])
        .env("IMAGEN_LOAD_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let stderr = emulator.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(stderr);
        std::io::BufRead::read_line(&mut r, &mut first).unwrap();
        first
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    emulator.kill().unwrap();
    emulator.wait().unwrap();
    let first = reader.join().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(
        ["INFO", "NOTICE"].contains(&v["severity"].as_str().unwrap()),
        "{first}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("127.0.0.1"),
        "{first}"
    );
}

/// Colour follows the conventions every terminal tool reads (via anstream, as clap does): `CLICOLOR_FORCE` turns it
/// on even into a pipe, `NO_COLOR` off whatever else is set; plain into a pipe by default.
#[test]
fn colour_follows_no_color_and_clicolor_force() {
    let out = tempfile::tempdir().unwrap();
    let run = |id: &str, env: &[(&str, &str)]| {
        let mut c = bin();
        c.args(["run", "workloads/burst.toml", "--run-id", id, "--out"])
            .arg(out.path())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            c.env(k, v);
        }
        String::from_utf8(c.output().unwrap().stdout).unwrap()
    };
    assert!(!run("plain", &[]).contains('\x1b'));
    assert!(run("forced", &[("CLICOLOR_FORCE", "1")]).contains("\x1b["));
    assert!(!run("none", &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\x1b'));
}

/// Shell completions (clap_complete) and man pages (clap_mangen), generated from the same clap types as `--help`.
#[test]
fn completions_and_man_pages_are_generated_from_the_command_line() {
    for shell in ["bash", "zsh", "fish"] {
        let o = bin().args(["completions", shell]).output().unwrap();
        assert!(o.status.success(), "{shell}");
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(
            text.contains("imagen-load") && text.contains("--kubeconfig"),
            "{shell}"
        );
    }
    let o = bin().arg("man").output().unwrap();
    let page = String::from_utf8(o.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH imagen-load"),
        "{page}"
    );
    let dir = tempfile::tempdir().unwrap();
    bin()
        .args(["man", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    assert!(dir.path().join("imagen-load.1").is_file());
    assert!(dir.path().join("imagen-load-run.1").is_file());
}

/// `-o`/`--output` is a format, as kubectl users expect (in `plan` it once meant a file: that is `--to FILE` now):
/// `plan -o csv|json`, `validate -o json` (problems as data, exit 2), `compare -o json`.
#[test]
fn output_formats_for_machines_as_kubectl_spells_them() {
    let out = |args: &[&str]| bin().args(args).output().unwrap();
    let csv = out(&["plan", "workloads/steady.toml", "--csv"]).stdout;
    assert_eq!(
        out(&["plan", "workloads/steady.toml", "-o", "csv"]).stdout,
        csv
    );
    let json =
        String::from_utf8(out(&["plan", "workloads/steady.toml", "-o", "json"]).stdout).unwrap();
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows.len() + 1,
        String::from_utf8(csv).unwrap().lines().count()
    );
    assert_eq!(rows[0]["kind"], "message");
    assert!(rows[0]["intended_offset_us"].is_u64() && rows[0]["stream"].is_string());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.csv");
    bin()
        .args(["plan", "workloads/steady.toml", "--csv", "--to"])
        .arg(&file)
        .assert()
        .success();
    assert!(std::fs::metadata(&file).unwrap().len() > 100);
    let v: serde_json::Value =
        serde_json::from_slice(&out(&["validate", "workloads/burst.toml", "-o", "json"]).stdout)
            .unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["streams"][0]["name"], "upscale");
    let bad = out(&[
        "validate",
        "fixtures/bad-workloads/unit-case.toml",
        "-o",
        "json",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"][0]["line"], 7);
    assert_eq!(v["problems"][0]["key"], "stream[1].phase[1].duration");
    crate::common::run_burst(dir.path(), "a", &[]).success();
    let cmp = bin()
        .arg("compare")
        .arg(dir.path().join("a"))
        .arg(dir.path().join("a"))
        .args(["-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&cmp.stdout).unwrap();
    assert!(!v["rows"].as_array().unwrap().is_empty());
    assert_eq!(v["rows"][0]["verdict"], "no_change");
}
