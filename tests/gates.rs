//! Thresholds end to end: exit codes on fixture runs, junit.xml in the shape CI tools read, report.md.

use crate::common::{bin, path, run_burst};
use imagen_load::analysis;
use imagen_load::event::log as eventlog;
use predicates::str::contains;
use quick_xml::Reader;
use quick_xml::events::Event as Xml;

fn run_with(gates: &str, out: &tempfile::TempDir) -> std::process::Output {
    run_burst(out.path(), "g", &["--gates", gates])
        .get_output()
        .clone()
}

/// The elements and attributes of a JUnit file, checked the way CI reporters read them.
struct Junit {
    /// The last suite's counts and timestamp; `cases` are every suite's.
    tests: usize,
    failures: usize,
    timestamp: Option<String>,
    suites: usize,
    cases: Vec<(String, String, Option<String>)>,
}

fn read_junit(xml: &str) -> Junit {
    let mut reader = Reader::from_str(xml);
    let (mut tests, mut failures, mut cases) = (None, None, Vec::new());
    let (mut timestamp, mut suites) = (None, 0);
    let mut stack: Vec<String> = Vec::new();
    let attr = |e: &quick_xml::events::BytesStart, name: &str| {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == name)
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .unwrap()
                    .to_string()
            })
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Xml::Start(e) | Xml::Empty(e)
                if e.name().as_ref() == "testsuites" || e.name().as_ref() == "testsuite" =>
            {
                if e.name().as_ref() == "testsuite" {
                    assert_eq!(
                        stack.last().map(String::as_str),
                        Some("testsuites"),
                        "testsuite inside testsuites"
                    );
                    suites += 1;
                    timestamp = attr(&e, "timestamp");
                    tests = attr(&e, "tests").map(|v| v.parse::<usize>().unwrap());
                    failures = attr(&e, "failures").map(|v| v.parse::<usize>().unwrap());
                    for required in ["name", "errors", "skipped", "time"] {
                        assert!(attr(&e, required).is_some(), "testsuite needs `{required}`");
                    }
                }
                stack.push(e.name().as_ref().to_string());
            }
            Xml::Start(e) if e.name().as_ref() == "testcase" => {
                assert_eq!(stack.last().map(String::as_str), Some("testsuite"));
                cases.push((
                    attr(&e, "classname").unwrap(),
                    attr(&e, "name").unwrap(),
                    None,
                ));
                stack.push("testcase".into());
            }
            Xml::Empty(e) if e.name().as_ref() == "testcase" => {
                cases.push((
                    attr(&e, "classname").unwrap(),
                    attr(&e, "name").unwrap(),
                    None,
                ));
            }
            Xml::Start(e) if e.name().as_ref() == "failure" => {
                assert_eq!(
                    stack.last().map(String::as_str),
                    Some("testcase"),
                    "failure inside a testcase"
                );
                assert_eq!(attr(&e, "type").as_deref(), Some("threshold"));
                cases.last_mut().unwrap().2 = attr(&e, "message");
                stack.push("failure".into());
            }
            Xml::Start(e) => stack.push(e.name().as_ref().to_string()),
            Xml::End(_) => {
                stack.pop();
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "every element closed");
    Junit {
        tests: tests.expect("testsuite tests="),
        failures: failures.expect("testsuite failures="),
        timestamp,
        suites,
        cases,
    }
}

#[test]
fn thresholds_that_hold_exit_0() {
    let out = tempfile::tempdir().unwrap();
    let o = run_with("fixtures/gates/burst-pass.toml", &out);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j = read_junit(&std::fs::read_to_string(out.path().join("g/junit.xml")).unwrap());
    assert_eq!((j.tests, j.failures), (8, 0));
    assert!(j.cases.iter().all(|c| c.2.is_none()));
}

#[test]
fn a_failed_threshold_exits_1_and_says_what_was_measured() {
    let out = tempfile::tempdir().unwrap();
    let o = run_with("fixtures/gates/burst-fail.toml", &out);
    assert_eq!(o.status.code(), Some(1));
    let j = read_junit(&std::fs::read_to_string(out.path().join("g/junit.xml")).unwrap());
    assert_eq!((j.tests, j.failures), (4, 2));
    let failed: Vec<&(String, String, Option<String>)> =
        j.cases.iter().filter(|c| c.2.is_some()).collect();
    let msg = failed
        .iter()
        .find(|c| c.0 == "thresholds.cold_start.total")
        .unwrap()
        .2
        .as_ref()
        .unwrap();
    assert!(
        msg.contains("max = 5m") && msg.contains("wanted max < 1m"),
        "{msg}"
    );
    let md = std::fs::read_to_string(out.path().join("g/report.md")).unwrap();
    assert!(
        md.starts_with("## imagen-load · `burst` · **2 of 4 thresholds failed**"),
        "{md}"
    );
    assert!(
        md.find("### Failed thresholds").unwrap() < md.find("### Delivery").unwrap(),
        "failures first"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("g/summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["passed"] == false)
            .count(),
        2
    );
}

#[test]
fn an_unknown_metric_is_a_configuration_error() {
    let out = tempfile::tempdir().unwrap();
    let o = run_with("fixtures/gates/unknown-metric.toml", &out);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown-metric.toml:2:1") && err.contains("did you mean `e2e_latency`"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn workload_thresholds_are_checked_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.toml");
    std::fs::write(
        &p,
        "[[stream]]\nname = \"upscale\"\n  [[stream.phase]]\n  kind = \"burst\"\n  count = 1\n[thresholds]\n\"e2e_latency{stream:upscal}\" = [\"p(95) < 5m\"]\n\"lost\" = [\"p(95) < 1\"]\n",
    )
    .unwrap();
    bin()
        .arg("validate")
        .arg(&p)
        .assert()
        .code(2)
        .stderr(contains("w.toml:7:1"))
        .stderr(contains("no stream is named `upscal`"))
        .stderr(contains("w.toml:8:"))
        .stderr(contains("does not apply to the run total `lost`"));
}

#[test]
fn analyze_evaluates_a_gates_file_on_an_old_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        path("fixtures/events/hand-built.jsonl"),
        dir.path().join("events.jsonl"),
    )
    .unwrap();
    let gates = dir.path().join("gates.toml");
    std::fs::write(
        &gates,
        "[thresholds]\n\"lost\" = [\"count == 0\"]\n\"duplicates\" = [\"count <= 1\"]\n",
    )
    .unwrap();
    bin()
        .arg("analyze")
        .arg(dir.path())
        .arg("--gates")
        .arg(&gates)
        .assert()
        .code(1)
        .stdout(contains("FAIL  lost"));
}

#[test]
fn report_md_snapshot() {
    let (events, _) = eventlog::read(&path("fixtures/events/hand-built.jsonl")).unwrap();
    let mut r = analysis::analyze(events);
    let streams = r.run.streams.clone();
    let mut thresholds = Vec::new();
    for (key, cond) in [
        ("e2e_latency{stream:upscale}", "p(95) < 3m"),
        ("lost", "count == 0"),
        ("cold_start.image_pull", "max < 1m"),
    ] {
        let metric = imagen_load::plan::thresholds::parse_key(key, &streams).unwrap();
        let c = imagen_load::plan::thresholds::parse_condition(cond, &metric).unwrap();
        thresholds.push(imagen_load::plan::thresholds::Threshold {
            key: key.into(),
            metric,
            conditions: vec![c],
        });
    }
    r.thresholds = imagen_load::outputs::gates::evaluate(&thresholds, &r);
    insta::assert_snapshot!(imagen_load::outputs::report::markdown::render(&r));
}

#[test]
fn abort_on_fail_stops_the_run_early_and_still_writes_results() {
    let out = tempfile::tempdir().unwrap();
    let o = run_with("fixtures/gates/burst-abort.toml", &out);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("aborted: threshold `e2e_latency p(95) < 3m` failed at")
    );
    let (events, _) = eventlog::read(&out.path().join("g/events.jsonl")).unwrap();
    let last = events.last().unwrap();
    match &last.kind {
        imagen_load::event::EventKind::RunFinished {
            interrupted: true,
            reason: Some(r),
        } => assert!(r.contains("abort_on_fail"), "{r}"),
        other => panic!("expected an interrupted run_finished, got {other:?}"),
    }
    // Stopped after the 12-minute delay, long before the 73-minute window ends.
    assert!(
        (12 * 60_000_000..30 * 60_000_000).contains(&last.t_us),
        "{}",
        last.t_us
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("g/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["run"]["interrupted"], true);
    assert!(out.path().join("g/report.html").is_file() && out.path().join("g/junit.xml").is_file());
}

#[test]
fn an_aborting_condition_is_a_table_with_known_keys() {
    let dir = tempfile::tempdir().unwrap();
    let gates = dir.path().join("g.toml");
    std::fs::write(
        &gates,
        "[thresholds]\n\"lost\" = [{ threshold = \"count == 0\", abort_on_failure = true }]\n",
    )
    .unwrap();
    bin()
        .args(["validate", "workloads/burst.toml"])
        .assert()
        .success();
    let out = tempfile::tempdir().unwrap();
    bin()
        .args(["run", "workloads/burst.toml", "--quiet", "--gates"])
        .arg(&gates)
        .arg("--out")
        .arg(out.path())
        .assert()
        .code(2)
        .stderr(contains("g.toml:2:"))
        .stderr(contains("did you mean `abort_on_fail`"));
}

/// `junit.xml` once had no `timestamp` on its `testsuite`; a live run's says when it started, in the JUnit
/// XSD's form (`YYYY-MM-DDTHH:MM:SS`, no zone). A simulated run has no wall clock, so it has none.
#[test]
fn a_live_runs_junit_has_the_start_timestamp_and_a_simulated_one_none() {
    let out = tempfile::tempdir().unwrap();
    run_with("fixtures/gates/burst-pass.toml", &out);
    let j = read_junit(&std::fs::read_to_string(out.path().join("g/junit.xml")).unwrap());
    assert_eq!(j.timestamp, None);
    let suite = imagen_load::outputs::report::junit::Suite {
        name: "x".into(),
        started_unix_us: Some(1_795_864_600_123_456),
        ..Default::default()
    };
    let j = read_junit(&imagen_load::outputs::report::junit::render_suite(&suite));
    // 1,795,864,600 s after the epoch: 2026-11-28 11:16:40 UTC (Python's datetime.utcfromtimestamp).
    assert_eq!(j.timestamp.as_deref(), Some("2026-11-28T11:16:40"));
}

/// `compare` and `report --fail-on-regression` are gates too, and once wrote no JUnit: now `--junit FILE` has a
/// case per compared series (and lost messages), failed exactly where the gate found a regression.
#[test]
fn compare_and_report_write_junit_with_the_regressions_failed() {
    let out = tempfile::tempdir().unwrap();
    run_burst(out.path(), "a-base", &[]).success();
    run_burst(
        out.path(),
        "b-slow",
        &["--set", "sim.worker.model_load=uniform(120s, 150s)"],
    )
    .success();
    let xml = out.path().join("compare.xml");
    bin()
        .arg("compare")
        .arg(out.path().join("a-base"))
        .arg(out.path().join("b-slow"))
        .args(["--fail-on-regression", "10%", "--junit"])
        .arg(&xml)
        .assert()
        .code(1);
    let table = String::from_utf8(
        bin()
            .arg("compare")
            .arg(out.path().join("a-base"))
            .arg(out.path().join("b-slow"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let j = read_junit(&std::fs::read_to_string(&xml).unwrap());
    assert!(j.failures > 0, "{table}");
    assert_eq!(
        j.failures,
        table.matches("REGRESSION").count(),
        "a failed case per regression row: {table}"
    );
    assert!(j.cases.iter().any(|c| c.1 == "lost"));
    // The same, as the nightly's report: last vs previous (the baseline is the previous here).
    let xml = out.path().join("report.xml");
    bin()
        .arg("report")
        .arg(out.path())
        .arg("--out")
        .arg(out.path().join("nightly.md"))
        .args(["--fail-on-regression", "--junit"])
        .arg(&xml)
        .assert()
        .code(1);
    let j = read_junit(&std::fs::read_to_string(&xml).unwrap());
    assert_eq!(
        j.suites, 2,
        "vs previous and vs baseline (here the same run)"
    );
    assert!(j.failures > 0);
}

/// k6's habits on a real run: bare milliseconds, `p(0)`, `===`, and rate metrics as fractions; one bad condition is
/// one problem, with no spurious "no conditions" beside it.
#[test]
fn k6_thresholds_keep_their_meaning_and_one_mistake_is_one_problem() {
    let out = tempfile::tempdir().unwrap();
    let gates = out.path().join("k6.toml");
    std::fs::write(
        &gates,
        "[thresholds]\n\"e2e_latency\" = [\"p(95)<3600000\", \"p(0) > 0\"]\n\"messages_lost\" = [\"rate<0.01\"]\n\"publishes_failed\" = [\"count===0\"]\n",
    )
    .unwrap();
    let o = run_with(gates.to_str().unwrap(), &out);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("g/summary.json")).unwrap()).unwrap();
    let shown = summary["thresholds"].to_string();
    assert!(
        shown.contains("messages_lost") && shown.contains("p(95)<3600000"),
        "{shown}"
    );
    // An hour in milliseconds holds; a millisecond would not.
    std::fs::write(&gates, "[thresholds]\n\"e2e_latency\" = [\"p(95)<1\"]\n").unwrap();
    let again = tempfile::tempdir().unwrap();
    assert_eq!(
        run_with(gates.to_str().unwrap(), &again).status.code(),
        Some(1)
    );
    let workload = out.path().join("w.toml");
    std::fs::write(
        &workload,
        std::fs::read_to_string(path("workloads/burst.toml")).unwrap()
            + "\n[thresholds]\n\"e2e_latency\" = [\"p(95) < 5 minutes\"]\n",
    )
    .unwrap();
    let bad = bin()
        .arg("validate")
        .arg(&workload)
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let problems: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let list = problems["problems"]
        .as_array()
        .or(problems.as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(list.len(), 1, "{problems}");
    assert!(
        !problems.to_string().contains("no conditions"),
        "{problems}"
    );
}

/// `abort_on_fail` on a live target: the run's collector checks the thresholds as the events arrive, and the
/// first that fails stops the pacer, as a signal would; the partial results are written and the exit status is the
/// gate's. Built-in emulator, one reference worker taking 2 s per message, so p95 < 500ms fails with the first
/// completions, seconds into a planned minute.
#[test]
fn abort_on_fail_stops_a_live_run_early_and_still_writes_results() {
    use crate::pubsub::{
        Emulator, free_port, start_run, started, summary, wait, worker_on, workload,
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let (mut procs, _, host) = started(Emulator::Builtin);
    let wl = workload(
        out,
        &host,
        "  kind = \"constant\"\n  rate = \"5/s\"\n  duration = \"60s\"",
        "30s",
    );
    let mut text = std::fs::read_to_string(&wl).unwrap();
    text.push_str(
        "\n[thresholds]\n\"e2e_latency\" = [{ threshold = \"p(95) < 500ms\", abort_on_fail = true }]\n",
    );
    std::fs::write(&wl, text).unwrap();
    let started_at = std::time::Instant::now();
    let mut run = start_run(&wl, out, "abort");
    procs.0.push(worker_on(
        &host,
        "abort-w0",
        "100ms",
        "2s",
        free_port(),
        &out.join("w0.log"),
    ));
    let code = wait(&mut run, std::time::Duration::from_secs(90), out, "abort");
    let err = std::fs::read_to_string(out.join("abort.stderr")).unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("aborted: threshold `e2e_latency p(95) < 500ms` failed at"),
        "{err}"
    );
    // Stopped long before the planned minute of sending (plus its 30 s deadline) was over: the check, then at
    // most the 10 s grace for messages in flight.
    assert!(
        started_at.elapsed() < std::time::Duration::from_secs(50),
        "{:?}",
        started_at.elapsed()
    );
    let (events, _) = eventlog::read(&out.join("abort/events.jsonl")).unwrap();
    match &events.last().unwrap().kind {
        imagen_load::event::EventKind::RunFinished {
            interrupted: true,
            reason: Some(r),
        } => assert!(r.contains("abort_on_fail"), "{r}"),
        other => panic!("expected an interrupted run_finished, got {other:?}"),
    }
    let s = summary(out, "abort");
    assert_eq!(s["run"]["interrupted"], true);
    let scheduled = s["delivery"]["scheduled"].as_u64().unwrap();
    assert!(
        (1..150).contains(&scheduled),
        "{scheduled} of 300 scheduled"
    );
    assert!(s["delivery"]["completed"].as_u64().unwrap() >= 1);
    assert!(out.join("abort/report.html").is_file() && out.join("abort/junit.xml").is_file());
    // The report the collector made as the run went is the one `analyze` makes of its log (given the same
    // threshold, which `analyze` takes from --gates).
    let before = std::fs::read_to_string(out.join("abort/summary.json")).unwrap();
    let gates = out.join("gates.toml");
    std::fs::write(
        &gates,
        "[thresholds]\n\"e2e_latency\" = [\"p(95) < 500ms\"]\n",
    )
    .unwrap();
    bin()
        .args(["analyze", "--quiet", "--gates"])
        .arg(&gates)
        .arg(out.join("abort"))
        .assert()
        .code(1);
    assert_eq!(
        before,
        std::fs::read_to_string(out.join("abort/summary.json")).unwrap()
    );
}
