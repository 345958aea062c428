//! Analysis on a hand-built event log (`fixtures/events/hand-built.jsonl`) with every answer computed by hand,
//! plus the output formats: summary.json against its schema, the .hlog read back, snapshots of the terminal
//! summary and the .hgrm text, and a damaged log.

use crate::common::{bin, path, run_burst};
use imagen_load::analysis::{self, RunReport};
use imagen_load::eventlog;

const S: u64 = 1_000_000;
const MS: u64 = 1_000;

fn fixture() -> RunReport {
    let (events, read) = eventlog::read(&path("fixtures/events/hand-built.jsonl")).unwrap();
    assert_eq!(read.corrupt_lines, 0);
    analysis::analyze(events)
}

fn phase(r: &RunReport, pod: &str, name: &str) -> Option<u64> {
    r.pods.iter().find(|p| p.pod == pod).unwrap().phases_us[name]
}

#[test]
fn delivery_accounting() {
    let d = fixture().delivery;
    assert_eq!(
        (d.scheduled, d.published, d.publish_failed, d.completed),
        (4, 3, 1, 2)
    );
    assert_eq!(d.duplicates, 1, "the second completion of seq 1");
    assert_eq!(
        d.lost, 1,
        "seq 3 was published and never completed; seq 2 never reached Pub/Sub"
    );
    assert_eq!(d.lost_ids.len(), 1);
    assert_eq!(
        (d.lost_ids[0].stream.as_str(), d.lost_ids[0].seq),
        ("upscale", 3)
    );
    assert_eq!(d.late, 0);
    assert_eq!(
        d.publish_errors.get("UNAVAILABLE: connection refused"),
        Some(&1)
    );
}

#[test]
fn message_latencies_are_exact() {
    let r = fixture();
    let m0 = r.messages.iter().find(|m| m.seq == 0).unwrap();
    // Intended 1 s, published 1.02 s, first replica ready 209 s, delivered 209.01 s, done 215.01 s.
    assert!(m0.cold);
    assert_eq!(m0.e2e_us(), 214_010 * MS);
    assert_eq!(m0.publish_delay_us, Some(20 * MS));
    assert_eq!(m0.capacity_wait_us, Some(207_980 * MS));
    assert_eq!(m0.queueing_us, Some(10 * MS));
    assert_eq!(m0.processing_us, Some(6 * S));
    let m1 = r.messages.iter().find(|m| m.seq == 1).unwrap();
    // Intended 210 s, published 210.015 s with a replica ready: warm; waits for the busy pod until 215.02 s.
    assert!(!m1.cold);
    assert_eq!(m1.e2e_us(), 11_020 * MS);
    assert_eq!(m1.publish_delay_us, Some(15 * MS));
    assert_eq!(m1.capacity_wait_us, Some(0));
    assert_eq!(m1.queueing_us, Some(5_005 * MS));
    assert_eq!(m1.processing_us, Some(6 * S));
    assert_eq!(r.messages.len(), 2);
    let e2e = r.series.stats("e2e_latency", "all", None).unwrap();
    assert_eq!(e2e.count, 2, "percentiles say how many samples they hold");
}

#[test]
fn cold_start_phases_are_exact() {
    let r = fixture();
    let a = |k| phase(&r, "upscale-a", k);
    assert_eq!(
        a("activation"),
        Some(29_980 * MS),
        "first message published 1.02 s, replicas 0→1 at 31 s"
    );
    assert_eq!(a("pod_creation"), Some(0));
    assert_eq!(
        a("node_provisioning"),
        Some(90_100 * MS),
        "created 31 s, scheduled 121.1 s"
    );
    assert_eq!(
        a("image_pull"),
        Some(45_100 * MS),
        "scheduled 121.1 s, pulled 166.2 s"
    );
    assert_eq!(a("container_start"), Some(2 * S));
    assert_eq!(a("model_load"), Some(40 * S));
    assert_eq!(a("ready"), Some(800 * MS));
    assert_eq!(a("first_message"), Some(6_010 * MS));
    assert_eq!(
        a("total"),
        Some(207_980 * MS),
        "first message 1.02 s → ready 209 s"
    );
    // The second pod: on a node that was there, image cached, and no model_loaded signal.
    let b = |k| phase(&r, "upscale-b", k);
    assert_eq!(b("activation"), None, "not the first pod of its cycle");
    assert_eq!(b("pod_creation"), Some(0));
    assert_eq!(b("node_provisioning"), Some(500 * MS));
    assert_eq!(b("image_pull"), Some(0));
    assert_eq!(b("container_start"), Some(2 * S));
    assert_eq!(
        b("model_load"),
        Some(37_500 * MS),
        "container start → ready, the worker did not report"
    );
    assert_eq!(
        b("ready"),
        None,
        "unknown without a model_loaded signal, never made up"
    );
    assert_eq!(b("first_message"), None, "it never completed a message");
    assert_eq!(
        b("total"),
        Some(40 * S),
        "HPA asked at 220 s, ready at 260 s"
    );
}

#[test]
fn scale_cycle_and_cost_are_exact() {
    let r = fixture();
    assert_eq!(r.cycles.len(), 1);
    let c = &r.cycles[0];
    assert_eq!(c.start_us, 31 * S);
    assert_eq!(c.first_message_us, Some(1_020 * MS));
    assert_eq!(c.time_to_first_ready_us, Some(207_980 * MS));
    assert_eq!(c.peak_replicas, 2);
    assert_eq!(c.last_completion_us, Some(221_020 * MS));
    assert_eq!(c.to_zero_replicas_us, Some(278_980 * MS));
    assert_eq!(c.to_zero_nodes_us, Some(878_980 * MS));
    assert_eq!(c.messages, 2);
    // One 1-GPU node from 101 s to 1100 s.
    assert!((r.cost.node_seconds - 999.0).abs() < 1e-9);
    assert!((r.cost.cost_usd - 999.0 / 3600.0 * 0.48).abs() < 1e-12);
    assert!((r.cost.gpu_busy_seconds - 12.0).abs() < 1e-9);
    assert_eq!(r.cost.peak_nodes, 1);
    // Histograms keep 3 significant digits: scale-up at 41 s, node ready at 106 s.
    let boot = r.series.get("node.boot", "gpu-pool", None).unwrap();
    assert_eq!(boot.len(), 1);
    assert!(boot.equivalent(boot.min(), 65 * S), "{}", boot.min());
}

#[test]
fn terminal_summary_snapshot() {
    insta::assert_snapshot!(imagen_load::report::render_terminal(&fixture(), false));
}

#[test]
fn hgrm_snapshot() {
    let r = fixture();
    let h = r.series.get("cold_start.total", "all", None).unwrap();
    insta::assert_snapshot!(imagen_load::report::hgrm_text(h));
}

#[test]
fn summary_json_matches_its_schema() {
    let out = tempfile::tempdir().unwrap();
    run_burst(out.path(), "s", &[]).success();
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("docs/summary.schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    for summary in [
        serde_json::from_slice::<serde_json::Value>(
            &std::fs::read(out.path().join("s/summary.json")).unwrap(),
        )
        .unwrap(),
        serde_json::to_value(imagen_load::report::Summary::from_report(&fixture())).unwrap(),
    ] {
        let errors: Vec<String> = validator
            .iter_errors(&summary)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(
            summary["schema_version"],
            imagen_load::report::SCHEMA_VERSION
        );
    }
}

#[test]
fn hlog_reads_back_to_the_same_counts_and_percentiles() {
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let out = tempfile::tempdir().unwrap();
    run_burst(out.path(), "h", &[]).success();
    let bytes = std::fs::read(out.path().join("h/e2e_latency.hlog")).unwrap();
    let (events, _) = eventlog::read(&out.path().join("h/events.jsonl")).unwrap();
    let report = analysis::analyze(events);
    let mut all = imagen_load::analysis::series::new_histogram();
    let mut tagged = std::collections::BTreeMap::<String, hdrhistogram::Histogram<u64>>::new();
    let mut d = Deserializer::new();
    let mut intervals = 0;
    for entry in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(i) = entry.expect("a well-formed log line") {
            let raw = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                i.encoded_histogram(),
            )
            .unwrap();
            let h: hdrhistogram::Histogram<u64> = d.deserialize(&mut raw.as_slice()).unwrap();
            match i.tag() {
                None => {
                    all.add(&h).unwrap();
                    intervals += 1;
                }
                Some(tag) => tagged
                    .entry(tag.as_str().to_string())
                    .or_insert_with(imagen_load::analysis::series::new_histogram)
                    .add(&h)
                    .unwrap(),
            }
        }
    }
    assert!(
        intervals > 1,
        "one interval per reporting period with completions"
    );
    let whole = report.series.get("e2e_latency", "all", None).unwrap();
    assert_eq!(all.len(), whole.len());
    for q in [0.5, 0.9, 0.99, 1.0] {
        assert_eq!(
            all.value_at_quantile(q),
            whole.value_at_quantile(q),
            "quantile {q}"
        );
    }
    for s in &report.run.streams {
        let h = &tagged[&format!("e2e_latency.{s}")];
        assert_eq!(
            h.len(),
            report.series.get("e2e_latency", s, None).unwrap().len(),
            "{s}"
        );
    }
}

#[test]
fn a_cut_and_damaged_log_still_analyses_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = std::fs::read_to_string(path("fixtures/events/hand-built.jsonl")).unwrap();
    // Drop the tail mid-line (as a crash would) and corrupt one line in the middle.
    let cut = text.rfind("{\"t_us\":600000000").unwrap() + 20;
    text.truncate(cut);
    text = text.replacen("\"event\":\"node_ready\"", "\"event\":\"no_such_event\"", 1);
    std::fs::write(dir.path().join("events.jsonl"), text).unwrap();
    bin()
        .arg("analyze")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicates::str::contains("ends mid-line"))
        .stdout(predicates::str::contains("1 corrupt line(s)"))
        .stdout(predicates::str::contains("the run did not finish"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["delivery"]["completed"], 2);
    assert_eq!(
        summary["delivery"]["open_at_end"], 1,
        "seq 3 had not been declared lost when the log was cut"
    );
}

#[test]
fn events_out_of_order_within_the_window_analyse_the_same() {
    let (events, _) = eventlog::read(&path("fixtures/events/hand-built.jsonl")).unwrap();
    // Swap neighbours: every event arrives up to one place (at most tens of seconds) out of order.
    let mut shuffled = events.clone();
    for i in (1..shuffled.len() - 1).step_by(2) {
        shuffled.swap(i, i + 1);
    }
    let mut stream =
        analysis::Reordering::new(imagen_load::app::REORDER_WINDOW_US).keeping_messages();
    for e in shuffled {
        stream.push(e);
    }
    let a = stream.finish();
    let b = analysis::analyze(events);
    assert!(!b.messages.is_empty());
    assert_eq!(a.messages, b.messages);
    let stats = |r: &analysis::RunReport| {
        r.series
            .iter()
            .map(|(k, h)| (k.label(), analysis::Stats::of(h)))
            .collect::<Vec<_>>()
    };
    assert_eq!(stats(&a), stats(&b));
    assert_eq!(a.intervals.closed(), b.intervals.closed());
    assert_eq!(a.delivery.completed, b.delivery.completed);
    assert_eq!(
        a.pods.iter().map(|p| p.phases_us).collect::<Vec<_>>(),
        b.pods.iter().map(|p| p.phases_us).collect::<Vec<_>>()
    );
    assert!(a.warnings.iter().all(|w| !w.contains("out of time order")));
}

#[test]
fn each_new_node_is_timed_from_the_scale_up_of_its_own_node_group() {
    use imagen_load::event::{Event, EventKind, Source};
    let ev = |t: u64, kind| Event::new(t * S, Source::Kube, kind);
    let up = |t, group: &str| {
        ev(
            t,
            EventKind::ScaleUpTriggered {
                node_group: group.into(),
                from: 0,
                to: 1,
            },
        )
    };
    let created = |t, node: &str| {
        ev(
            t,
            EventKind::NodeCreated {
                node: node.into(),
                pool: String::new(),
                gpus: 1,
                preexisting: false,
            },
        )
    };
    let ready = |t, node: &str| ev(t, EventKind::NodeReady { node: node.into() });
    // The L4 pool's scale-up came first, but the T4 pool's node registered first.
    let r = analysis::analyze(vec![
        up(0, "gke-imagen-l4-pool-111aaa-grp"),
        up(10, "gke-imagen-t4-pool-222bbb-grp"),
        created(50, "gke-imagen-t4-pool-222bbb-x1"),
        ready(60, "gke-imagen-t4-pool-222bbb-x1"),
        created(70, "gke-imagen-l4-pool-111aaa-y2"),
        ready(80, "gke-imagen-l4-pool-111aaa-y2"),
    ]);
    let boot = r.series.get("node.boot", "gpu-pool", None).unwrap();
    assert_eq!(boot.len(), 2);
    // T4: 60 - 10 = 50 s; L4: 80 - 0 = 80 s (first come, first served would say 60 s and 70 s).
    assert!(boot.equivalent(boot.min(), 50 * S), "{}", boot.min());
    assert!(boot.equivalent(boot.max(), 80 * S), "{}", boot.max());
}

/// The analysis holds what is in flight, not what has been: 200,000 messages, at most 64 open at a time, one of
/// them never completed. Its state stays at the messages in flight (plus the one lost), and the report still counts
/// and measures every message.
#[test]
fn analysis_state_is_bounded_by_the_messages_in_flight() {
    use imagen_load::event::{Event, EventKind, MsgId, Source};
    const N: u64 = 200_000;
    const IN_FLIGHT: u64 = 64;
    const LOST: u64 = 1_234;
    let id = |seq| MsgId {
        stream: "s".into(),
        seq,
    };
    let mut a = analysis::Analyzer::default();
    a.push(&imagen_load::app::run_header(
        &imagen_load::workload::parse(
            std::path::Path::new("w.toml"),
            "[[stream]]\nname = \"s\"\n[[stream.phase]]\nkind = \"burst\"\ncount = 1\n",
        )
        .unwrap(),
        imagen_load::units::Micros(N * 1_000),
        "bounded",
        0,
    ));
    let mut most_open = 0;
    let mut most_ranges = 0;
    // Message k is scheduled and published at k ms and completed at (k + 64) ms, 64 ms after it was intended.
    for t in 0..N + IN_FLIGHT {
        let t_us = t * 1_000;
        if t < N {
            a.push(&Event::new(
                t_us,
                Source::Harness,
                EventKind::Scheduled {
                    id: id(t),
                    intended_us: t_us,
                },
            ));
            a.push(&Event::new(
                t_us,
                Source::Harness,
                EventKind::Published {
                    id: id(t),
                    lateness_us: 0,
                    server_id: None,
                },
            ));
        }
        if let Some(done) = t.checked_sub(IN_FLIGHT).filter(|&d| d != LOST) {
            a.push(&Event::new(
                t_us,
                Source::Worker,
                EventKind::Completed {
                    id: id(done),
                    pod: "w".into(),
                    received_us: None,
                    processing_start_us: Some(t_us - 10_000),
                    processing_end_us: Some(t_us),
                },
            ));
        }
        let (open, ranges) = a.held_messages();
        most_open = most_open.max(open);
        most_ranges = most_ranges.max(ranges);
    }
    a.push(&Event::new(
        (N + IN_FLIGHT) * 1_000,
        Source::Harness,
        EventKind::RunFinished {
            interrupted: false,
            reason: None,
        },
    ));
    assert!(
        most_open as u64 <= IN_FLIGHT + 2,
        "{most_open} messages held"
    );
    assert!(
        most_ranges <= 2,
        "{most_ranges} ranges of completed messages"
    );
    let r = a.finish();
    assert!(r.messages.is_empty(), "no per-message records unless asked");
    assert_eq!(r.delivery.completed, N - 1);
    assert_eq!(r.delivery.lost, 1);
    assert_eq!(r.delivery.lost_ids, vec![id(LOST)]);
    let e2e = r.series.get("e2e_latency", "all", None).unwrap();
    assert_eq!(e2e.len(), N - 1);
    assert!(e2e.equivalent(e2e.min(), 64_000) && e2e.equivalent(e2e.max(), 64_000));
    let processing = r.series.moments("processing", "s", None).unwrap();
    assert_eq!(processing.sum_us(), u128::from(N - 1) * 10_000);
    // Every completion is in the interval log, once.
    let logged: u64 = r
        .intervals
        .closed()
        .iter()
        .map(|iv| analysis::Intervals::decode(iv).0.len())
        .sum();
    assert_eq!(logged, N - 1);
}
