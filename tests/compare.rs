//! `compare`: a known regression fails the gate; runs drawn from the same distribution pass it (at least 95 of
//! 100 seeded trials); the table is snapshotted.

use crate::common::{bin, plan_from, run_burst};
use imagen_load::analysis::{self, RunReport};
use imagen_load::outputs::compare::{Verdict, compare};
use imagen_load::run::simulate_events;

fn steady(seed: u64, processing: &str) -> RunReport {
    let src = format!(
        r#"
[run]
seed = {seed}
[sim.keda]
min_replicas = 1
max_replicas = 3
[sim.worker]
processing = "{processing}"
[[stream]]
name = "upscale"
  [[stream.phase]]
  kind = "poisson"
  rate = "12/m"
  duration = "30m"
[[stream]]
name = "enhance"
  [[stream.phase]]
  kind = "poisson"
  rate = "6/m"
  duration = "30m"
"#
    );
    analysis::analyze(simulate_events(&plan_from(&src), &format!("seed-{seed}")))
}

#[test]
fn runs_from_the_same_distribution_pass_in_at_least_95_of_100_trials() {
    let mut passed = 0;
    let mut judged = 0;
    for trial in 0..100u64 {
        let base = steady(1000 + 2 * trial, "lognormal(6s, 0.3)");
        let current = steady(1001 + 2 * trial, "lognormal(6s, 0.3)");
        let c = compare(&base, &current, 95.0, 0.10);
        judged += c
            .rows
            .iter()
            .filter(|r| r.verdict != Verdict::TooFewSamples)
            .count();
        if c.regressions() == 0 {
            passed += 1;
        }
    }
    eprintln!("same-distribution trials passed: {passed} of 100 ({judged} series judged)");
    assert!(
        passed >= 95,
        "only {passed} of 100 same-distribution trials passed"
    );
    assert!(
        judged >= 100 * 5,
        "the trials must judge series, not skip them: {judged}"
    );
}

#[test]
fn a_real_slowdown_is_a_regression() {
    let base = steady(7, "lognormal(6s, 0.3)");
    let slower = steady(8, "lognormal(9s, 0.3)");
    let c = compare(&base, &slower, 95.0, 0.10);
    let row = |m: &str| {
        c.rows
            .iter()
            .find(|r| r.metric == m)
            .unwrap_or_else(|| panic!("no row {m}"))
    };
    assert_eq!(row("processing").verdict, Verdict::Regression);
    assert_eq!(row("e2e_latency").verdict, Verdict::Regression);
    assert!(c.regressions() >= 2);
    // And the other way round it is an improvement, not a regression.
    let back = compare(&slower, &base, 95.0, 0.10);
    assert_eq!(back.regressions(), 0);
    assert_eq!(
        back.rows
            .iter()
            .find(|r| r.metric == "processing")
            .unwrap()
            .verdict,
        Verdict::Improvement
    );
}

#[test]
fn compare_fails_on_fixture_runs_with_a_known_regression() {
    let out = tempfile::tempdir().unwrap();
    let run = |id: &str, extra: &[&str]| {
        run_burst(out.path(), id, extra).success();
    };
    run("base", &[]);
    run(
        "slow-model",
        &["--set", "sim.worker.model_load=uniform(120s, 150s)"],
    );
    let o = bin()
        .arg("compare")
        .arg(out.path().join("base"))
        .arg(out.path().join("slow-model"))
        .args(["--fail-on-regression", "10%", "--markdown"])
        .arg(out.path().join("compare.md"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(table.contains("REGRESSION"), "{table}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("compare.md")).unwrap(),
        table
    );
    // Without --fail-on-regression compare only reports.
    bin()
        .arg("compare")
        .arg(out.path().join("base"))
        .arg(out.path().join("slow-model"))
        .assert()
        .success();
    // The same run against itself: nothing changes.
    bin()
        .arg("compare")
        .arg(out.path().join("base"))
        .arg(out.path().join("base"))
        .args(["--fail-on-regression", "10%"])
        .assert()
        .success();
}

#[test]
fn compare_table_snapshot() {
    let c = compare(
        &steady(7, "lognormal(6s, 0.3)"),
        &steady(8, "lognormal(9s, 0.3)"),
        95.0,
        0.10,
    );
    insta::assert_snapshot!(imagen_load::outputs::compare::render(&c));
}

#[test]
fn the_nightly_report_calls_out_a_regression_in_the_last_run() {
    let out = tempfile::tempdir().unwrap();
    let run = |id: &str, seed: &str, extra: &[&str]| night(out.path(), id, seed, extra);
    run("20261121T020000Z-burst", "41", &[]);
    run("20261122T020000Z-burst", "42", &[]);
    // Two ordinary nights: no regression, exit 0 even with --fail-on-regression.
    let md = out.path().join("n.md");
    bin()
        .arg("report")
        .arg(out.path())
        .arg("--out")
        .arg(&md)
        .arg("--fail-on-regression")
        .assert()
        .success();
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .contains("no regression in the last run")
    );
    // A night whose model loads take twice as long.
    run(
        "20261123T020000Z-burst",
        "43",
        &["--set", "sim.worker.model_load=uniform(120s, 150s)"],
    );
    bin()
        .arg("report")
        .arg(out.path())
        .arg("--out")
        .arg(&md)
        .arg("--fail-on-regression")
        .assert()
        .code(1);
    let text = std::fs::read_to_string(&md).unwrap();
    let first_table = text.find("| metric |").unwrap();
    // Slower model loads show as a longer wait for the first ready replica.
    let call = text
        .find("**REGRESSION** `capacity_wait")
        .expect("the regression is called out");
    assert!(
        call < first_table,
        "regressions come before the tables:\n{text}"
    );
    assert!(
        text.contains(
            "3 runs, baseline `20261121T020000Z-burst`, previous `20261122T020000Z-burst`"
        )
    );
    let html = out.path().join("n.html");
    let page = report_to(out.path(), &html);
    assert!(page.contains("<svg") && page.contains("REGRESSION") && !page.contains("<script"));
    // The Markdown tables keep their code spans on the page, as a Markdown viewer shows them (emphasis too:
    // `report::html`'s own test), and no Markdown syntax is left showing.
    assert!(
        page.contains("<td><code>capacity_wait</code></td>"),
        "{page}"
    );
    assert!(
        !page.contains("**") && !page.contains("`capacity_wait"),
        "{page}"
    );
}

/// A folder of unlike runs: the nightly compares the newest complete run only with runs of its workload and
/// target. An emulator run and an interrupted run (here, copies of a simulated night with their summaries changed,
/// as a mixed results folder would hold them) are set apart with why, never a baseline or a trend point; naming
/// one as the baseline says why it cannot be.
#[test]
fn the_nightly_sets_apart_runs_of_another_target_and_interrupted_runs() {
    let out = tempfile::tempdir().unwrap();
    for (id, seed) in [
        ("20261121T020000Z-burst", "41"),
        ("20261122T020000Z-burst", "42"),
    ] {
        night(out.path(), id, seed, &[]);
    }
    let copy_as = |id: &str, change: &dyn Fn(&mut serde_json::Value)| {
        let from = out.path().join("20261121T020000Z-burst");
        let to = out.path().join(id);
        std::fs::create_dir(&to).unwrap();
        for f in ["summary.json", "events.jsonl"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
        let mut s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(to.join("summary.json")).unwrap()).unwrap();
        s["run"]["run_id"] = id.into();
        change(&mut s);
        std::fs::write(to.join("summary.json"), serde_json::to_vec(&s).unwrap()).unwrap();
    };
    copy_as("20261120T020000Z-burst", &|s| {
        s["run"]["target"] = "emulator".into()
    });
    copy_as("20261121T120000Z-burst", &|s| {
        s["run"]["interrupted"] = true.into()
    });
    let md = out.path().join("n.md");
    let text = report_to(out.path(), &md);
    assert!(
        text.contains("2 runs, baseline `20261121T020000Z-burst`"),
        "the oldest like run is the baseline:\n{text}"
    );
    assert!(
        text.contains("`20261120T020000Z-burst`: target `emulator`, not `sim`"),
        "{text}"
    );
    assert!(
        text.contains("`20261121T120000Z-burst`: interrupted"),
        "{text}"
    );
    // The whole nightly Markdown of the mixed folder (simulated nights: the same numbers on every machine).
    insta::assert_snapshot!("nightly_mixed_folder_md", text);
    bin()
        .arg("report")
        .arg(out.path())
        .arg("--out")
        .arg(&md)
        .args(["--baseline", "20261120T020000Z-burst"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "target `emulator`, not `sim`, so it cannot be the baseline",
        ));
    // The page puts the verdict tables before the charts, and end-to-end latency first among the charts.
    let html = out.path().join("n.html");
    let page = report_to(out.path(), &html);
    let (tables, trends) = (
        page.find("<h2>Last run against").unwrap(),
        page.find("<h2>Trends</h2>").unwrap(),
    );
    assert!(tables < trends, "verdict tables first");
    let first_chart = &page[trends..];
    let first_title = &first_chart[first_chart.find(r#"class="t">"#).unwrap() + 10..];
    assert!(
        first_title.starts_with("e2e_latency<"),
        "{}",
        &first_title[..40]
    );
}

/// One simulated night of `workloads/burst.toml` into `out/ID`.
fn night(out: &std::path::Path, id: &str, seed: &str, extra: &[&str]) {
    bin()
        .args(["run", "workloads/burst.toml", "--quiet", "--seed", seed])
        .args(["--run-id", id, "--out"])
        .arg(out)
        .args(extra)
        .assert()
        .success();
}

/// `imagen-load report DIR --out FILE`, which must succeed; the file written.
fn report_to(dir: &std::path::Path, file: &std::path::Path) -> String {
    bin()
        .arg("report")
        .arg(dir)
        .arg("--out")
        .arg(file)
        .assert()
        .success();
    std::fs::read_to_string(file).unwrap()
}
