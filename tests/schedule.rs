use crate::common::plan_from;
use imagen_load::plan::schedule::{self, ItemKind};
use proptest::prelude::*;

fn offsets(src: &str) -> Vec<u64> {
    schedule::build(&plan_from(src))
        .iter()
        .filter(|i| matches!(i.kind, ItemKind::Message { .. }))
        .map(|i| i.offset_us)
        .collect()
}

fn stream(phases: &str) -> String {
    format!("[run]\nseed = 5\n[[stream]]\nname = \"s\"\n{phases}")
}

#[test]
fn constant_10_per_second_for_60s_is_600_evenly_spaced() {
    let o = offsets(&stream(
        "[[stream.phase]]\nkind = \"constant\"\nrate = \"10/s\"\nduration = \"60s\"\n",
    ));
    assert_eq!(o.len(), 600);
    assert_eq!(o[0], 0);
    assert!(o.windows(2).all(|w| w[1] - w[0] == 100_000));
}

#[test]
fn burst_100_within_10s_stays_inside_the_window() {
    let o = offsets(&stream(
        "[[stream.phase]]\nkind = \"burst\"\ncount = 100\nwithin = \"10s\"\nspread = \"random\"\n",
    ));
    assert_eq!(o.len(), 100);
    assert!(o.iter().all(|&t| t < 10_000_000));
}

#[test]
fn http_steps_sit_at_their_point_in_the_schedule() {
    let p = plan_from(&stream(
        "[[stream.phase]]\nkind = \"idle\"\nduration = \"1m\"\n[[stream.phase]]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/warmup\"\n[[stream.phase]]\nkind = \"burst\"\ncount = 1\n",
    ));
    let items = schedule::build(&p);
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0].offset_us, items[0].kind),
        (60_000_000, ItemKind::Http { step: 1 })
    );
    assert_eq!(items[1].offset_us, 60_000_000);
}

fn rate_phase() -> impl Strategy<Value = (String, f64, u64)> {
    // (phase TOML, expected message count as Λ(T), duration in µs)
    let constant = (1u32..50, 1u64..120).prop_map(|(r, d)| {
        (
            format!("kind = \"constant\"\nrate = \"{r}/s\"\nduration = \"{d}s\"\n"),
            r as f64 * d as f64,
            d * 1_000_000,
        )
    });
    let ramp = (0u32..40, 1u32..40, 1u64..120).prop_map(|(a, b, d)| {
        (
            format!("kind = \"ramp\"\nfrom = \"{a}/s\"\nto = \"{b}/s\"\nduration = \"{d}s\"\n"),
            (a + b) as f64 / 2.0 * d as f64,
            d * 1_000_000,
        )
    });
    let burst = (1u64..500, 1u64..30).prop_map(|(n, w)| {
        (
            format!("kind = \"burst\"\ncount = {n}\nwithin = \"{w}s\"\n"),
            n as f64,
            w * 1_000_000,
        )
    });
    let sine = (5u32..40, 0u32..5, 10u64..300, 1u64..600).prop_map(|(b, a, p, d)| {
        let (base, amp, period, dur) = (b as f64, a as f64, p as f64, d as f64);
        let w = std::f64::consts::TAU / period;
        let expect = base * dur + amp / w * (1.0 - (w * dur).cos());
        (format!("kind = \"sine\"\nbase = \"{b}/s\"\namplitude = \"{a}/s\"\nperiod = \"{p}s\"\nduration = \"{d}s\"\n"), expect, d * 1_000_000)
    });
    prop_oneof![constant, ramp, burst, sine]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Counts match the integral of the rate (within one message) and every instant lies inside its phase.
    #[test]
    fn phases_produce_what_they_define(phases in proptest::collection::vec(rate_phase(), 1..4)) {
        let mut src = String::new();
        for (p, _, _) in &phases {
            src.push_str("[[stream.phase]]\n");
            src.push_str(p);
        }
        let o = offsets(&stream(&src));
        let mut start = 0u64;
        let mut cursor = 0usize;
        for (text, expect, dur) in &phases {
            let end = start + dur;
            let n = o[cursor..].iter().take_while(|&&t| t < end || (*dur == 0 && t == start)).count();
            prop_assert!((n as f64 - expect).abs() < 1.0 + 1e-6, "{text}: {n} messages, expected {expect}");
            prop_assert!(o[cursor..cursor + n].iter().all(|&t| t >= start));
            cursor += n;
            start = end;
        }
        prop_assert_eq!(cursor, o.len());
        prop_assert!(o.windows(2).all(|w| w[0] <= w[1]), "instants in order");
    }

    /// The same plan and seed always give the same schedule.
    #[test]
    fn schedule_is_a_pure_function_of_plan_and_seed(seed in 0u64..1000, rate in 1u32..20) {
        let src = format!("[run]\nseed = {seed}\n[[stream]]\nname = \"s\"\n[[stream.phase]]\nkind = \"poisson\"\nrate = \"{rate}/s\"\nduration = \"30s\"\n");
        prop_assert_eq!(offsets(&src), offsets(&src));
    }
}

#[test]
fn shards_together_are_exactly_the_unsharded_plan() {
    use std::collections::BTreeSet;
    let csv = |extra: &[&str]| -> Vec<String> {
        let out = crate::common::bin()
            .args(["plan", "--csv", "workloads/spike-train.toml"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let whole = csv(&[]);
    let header = whole[0].clone();
    let rows: BTreeSet<String> = whole[1..].iter().cloned().collect();
    assert_eq!(rows.len(), whole.len() - 1, "rows are distinct");
    for n in [1u32, 2, 7] {
        let mut union = BTreeSet::new();
        let mut total = 0;
        for i in 0..n {
            let part = csv(&["--shard", &format!("{i}/{n}")]);
            assert_eq!(part[0], header, "same columns");
            total += part.len() - 1;
            for r in &part[1..] {
                assert!(rows.contains(r), "shard {i}/{n} row {r} is not in the plan");
                union.insert(r.clone());
            }
            if n > 1 {
                assert!(part.len() - 1 < rows.len(), "shard {i}/{n} is a part");
            }
        }
        assert_eq!(total, rows.len(), "{n} shards overlap or miss rows");
        assert_eq!(union, rows, "{n} shards");
    }
    let bad = crate::common::bin()
        .args([
            "plan",
            "--csv",
            "workloads/spike-train.toml",
            "--shard",
            "3/3",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("INDEX/COUNT"));
}

/// `run --shard I/N` on the simulator, then `merge`: the merged results are the unsharded run's, histogram for
/// histogram (and the summary, down to the last counter).
#[test]
fn merged_shards_give_the_unsharded_runs_histograms() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let run = |extra: &[&str]| {
        crate::common::bin()
            .args([
                "run",
                "workloads/burst.toml",
                "--quiet",
                "--run-id",
                "whole",
            ])
            .arg("--out")
            .arg(out)
            .args(extra)
            .assert()
            .success();
    };
    run(&[]);
    let read_dir = |dir: &std::path::Path| -> std::collections::BTreeMap<String, String> {
        let mut files: std::collections::BTreeMap<String, String> =
            std::fs::read_dir(dir.join("histograms"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .map(|p| {
                    (
                        p.file_name().unwrap().to_string_lossy().to_string(),
                        std::fs::read_to_string(&p).unwrap(),
                    )
                })
                .collect();
        files.insert(
            "summary.json".into(),
            std::fs::read_to_string(dir.join("summary.json")).unwrap(),
        );
        files
    };
    let whole = read_dir(&out.join("whole"));
    assert!(
        whole.len() > 3,
        "histograms were written: {:?}",
        whole.keys()
    );
    for n in [1u32, 2, 7] {
        let mut dirs = Vec::new();
        for i in 0..n {
            run(&["--shard", &format!("{i}/{n}")]);
            dirs.push(out.join(format!("whole-shard-{i}-of-{n}")));
        }
        // A shard alone has only its share of the messages.
        let one = std::fs::read_to_string(dirs[0].join("summary.json")).unwrap();
        assert!(
            one.contains(&format!("\"shard\": \"0/{n}\"")),
            "{}",
            &one[..300]
        );
        let merged_out = out.join(format!("merged-{n}"));
        let mut merge = crate::common::bin();
        merge
            .arg("merge")
            .arg("--quiet")
            .arg("--out")
            .arg(&merged_out);
        // Given in reverse order: the merge orders them itself.
        for d in dirs.iter().rev() {
            merge.arg(d);
        }
        merge.assert().success();
        let merged = read_dir(&merged_out.join("whole"));
        assert_eq!(
            merged.keys().collect::<Vec<_>>(),
            whole.keys().collect::<Vec<_>>()
        );
        for (name, text) in &whole {
            assert!(
                &merged[name] == text,
                "{n} shards: {name} differs from the unsharded run"
            );
        }
        for d in &dirs {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}

/// One recording shard is enough: shards 1.. of a sharded live run do not watch the cluster (`--no-cluster`), so
/// they have none of what every shard sees alike (the cluster, the queue). With every such event taken out of
/// them, as they would write their logs, and their headers saying the cluster was not observed, `merge` still
/// gives the unsharded run, cluster breakdown included: shard 0 records it for all.
#[test]
fn one_recording_shard_gives_the_merged_run_its_cluster_breakdown() {
    use imagen_load::event::{Event, EventKind};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let run = |extra: &[&str]| {
        crate::common::run_burst(out, "rec", extra).success();
    };
    run(&[]);
    let n = 3u32;
    let mut dirs = Vec::new();
    for i in 0..n {
        run(&["--shard", &format!("{i}/{n}")]);
        let dir = out.join(format!("rec-shard-{i}-of-{n}"));
        if i > 0 {
            let log = dir.join("events.jsonl");
            let shard: imagen_load::plan::schedule::Shard = format!("{i}/{n}").parse().unwrap();
            let mut kept = Vec::new();
            let mut dropped = 0;
            for line in std::fs::read_to_string(&log).unwrap().lines() {
                let mut e: Event = serde_json::from_str(line).unwrap();
                match &mut e.kind {
                    EventKind::RunStarted {
                        cluster_observed, ..
                    } => *cluster_observed = Some(false),
                    EventKind::RunFinished { .. } => {}
                    k if shard.owns_event(k).is_none() => {
                        dropped += 1;
                        continue;
                    }
                    _ => {}
                }
                kept.push(serde_json::to_string(&e).unwrap());
            }
            assert!(dropped > 100, "shard {i} had the cluster in its log");
            std::fs::write(&log, kept.join("\n") + "\n").unwrap();
        }
        dirs.push(dir);
    }
    let merged_out = out.join("merged");
    crate::common::bin()
        .args(["merge", "--quiet", "--out"])
        .arg(&merged_out)
        .args(&dirs)
        .assert()
        .success();
    let summary = |d: &std::path::Path| std::fs::read_to_string(d.join("summary.json")).unwrap();
    let whole = summary(&out.join("rec"));
    assert!(
        whole.contains("\"pods\""),
        "the run has a cluster breakdown"
    );
    assert!(
        summary(&merged_out.join("rec")) == whole,
        "the merge of one recording shard and {} others differs from the unsharded run",
        n - 1
    );
}

#[test]
fn merge_refuses_what_is_not_one_whole_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    for (id, extra) in [
        ("a", vec!["--shard", "0/3"]),
        ("a", vec!["--shard", "2/3"]),
        ("b", vec![]),
    ] {
        crate::common::bin()
            .args(["run", "workloads/burst.toml", "--quiet", "--run-id", id])
            .arg("--out")
            .arg(out)
            .args(&extra)
            .assert()
            .success();
    }
    let merge = |dirs: &[&str], extra: &[&str]| {
        let mut cmd = crate::common::bin();
        cmd.arg("merge")
            .arg("--out")
            .arg(out.join("merged"))
            .args(extra);
        for d in dirs {
            cmd.arg(out.join(d));
        }
        cmd.assert()
    };
    merge(&["a-shard-0-of-3", "a-shard-2-of-3"], &[])
        .code(2)
        .stderr(predicates::str::contains("shard(s) 1 of 3 are missing"))
        .stderr(predicates::str::contains("--partial"));
    merge(&["a-shard-0-of-3", "b"], &[])
        .code(2)
        .stderr(predicates::str::contains("was not a shard"));
    merge(&["a-shard-0-of-3", "a-shard-0-of-3"], &[])
        .code(2)
        .stderr(predicates::str::contains("appears twice"));
    merge(
        &["a-shard-0-of-3", "a-shard-2-of-3"],
        &["--partial", "--quiet"],
    )
    .success();
    let summary = std::fs::read_to_string(out.join("merged/a/summary.json")).unwrap();
    assert!(
        summary.contains("merged 2 of 3 shards (--partial)"),
        "{summary}"
    );
}
