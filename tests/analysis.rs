//! Analysis on a hand-built event log (`fixtures/events/hand-built.jsonl`) with every answer computed by hand,
//! plus the output formats: summary.json against its schema, the .hlog read back, snapshots of the terminal
//! summary and the .hgrm text, and a damaged log.

use crate::common::{bin, path, run_burst};
use imagen_load::analysis::{self, RunReport};
use imagen_load::event::log as eventlog;

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
    assert_eq!(d.lost_ranges.len(), 1);
    assert_eq!(
        (
            d.lost_ranges[0].stream.as_str(),
            d.lost_ranges[0].first,
            d.lost_ranges[0].last
        ),
        ("upscale", 3, 3)
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
        Some(45 * S),
        "the kubelet's Pulling 121.2 s, pulled 166.2 s"
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
    insta::assert_snapshot!(imagen_load::outputs::report::render_terminal(
        &fixture(),
        false
    ));
}

#[test]
fn hgrm_snapshot() {
    let r = fixture();
    let h = r.series.get("cold_start.total", "all", None).unwrap();
    insta::assert_snapshot!(imagen_load::outputs::report::hgrm_text(h));
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
        serde_json::to_value(imagen_load::outputs::report::Summary::from_report(
            &fixture(),
        ))
        .unwrap(),
    ] {
        let errors: Vec<String> = validator
            .iter_errors(&summary)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(
            summary["schema_version"],
            imagen_load::outputs::report::SCHEMA_VERSION
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

/// The reordering buffer once held a whole high-rate run (a 60 s window at 300,000 events/s: 937 MiB for
/// `analyze` of 1,000,000 messages). It now holds at most so many events: a log in order analyses exactly the same
/// with a bound of 2, and an event that arrives further out of order than the bound allows is counted and said.
#[test]
fn the_reordering_buffer_is_bounded_and_an_ordered_log_analyses_the_same() {
    let (events, _) = eventlog::read(&path("fixtures/events/hand-built.jsonl")).unwrap();
    let run = |max_held: usize, events: Vec<imagen_load::event::Event>| {
        let mut stream = analysis::Reordering::new(imagen_load::analysis::REORDER_WINDOW_US)
            .with_max_held(max_held)
            .keeping_messages();
        for e in events {
            stream.push(e);
        }
        stream.finish()
    };
    let (a, b) = (run(2, events.clone()), analysis::analyze(events.clone()));
    assert!(!b.messages.is_empty());
    assert_eq!(a.messages, b.messages);
    assert_eq!(a.delivery.completed, b.delivery.completed);
    assert!(!a.warnings.iter().any(|w| w.contains("out of time order")));
    // An event moved five places later: with 2 held, later events were released before it arrives.
    let mut moved = events.clone();
    let at = (1..moved.len() - 6)
        .find(|&i| (1..=5).all(|k| moved[i + k].t_us > moved[i].t_us))
        .expect("an event with five later ones after it");
    let e = moved.remove(at);
    moved.insert(at + 5, e);
    let r = run(2, moved);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("out of time order") && w.contains("or 2 events")),
        "{:?}",
        r.warnings
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
        analysis::Reordering::new(imagen_load::analysis::REORDER_WINDOW_US).keeping_messages();
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
    a.push(&imagen_load::run::run_header(
        &imagen_load::plan::workload::parse(
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
    assert_eq!(
        r.delivery.lost_ranges,
        vec![imagen_load::analysis::SeqRange {
            stream: id(LOST).stream,
            first: LOST,
            last: LOST
        }]
    );
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

/// A run whose cluster names its objects unlike the streams (`upscale-worker`, `upscale-scaler`), as
/// kind-config/ and most real clusters do. Renamed in its log, it must give the original breakdown to the
/// microsecond when the workload names the objects, and when a watched cluster's ScaledObjects supply the mapping;
/// with neither, the analysis says which objects matched no stream, and how to fix it.
#[test]
fn renamed_deployments_give_the_same_breakdown_when_named_or_learned_and_are_named_otherwise() {
    use imagen_load::event::{Event, EventKind, Source};
    let plan = imagen_load::plan::workload::load(&path("workloads/burst.toml"), &[]).unwrap();
    let original = imagen_load::run::simulate_events(&plan, "names");
    let renamed: Vec<Event> = original
        .iter()
        .cloned()
        .map(|mut e| {
            match &mut e.kind {
                EventKind::Replicas { deployment, .. }
                | EventKind::PodCreated { deployment, .. } => {
                    *deployment = format!("{deployment}-worker")
                }
                EventKind::MetricRead { scaled_object, .. }
                | EventKind::ScalerActive { scaled_object, .. }
                | EventKind::ScalerCondition { scaled_object, .. } => {
                    *scaled_object = format!("{scaled_object}-scaler")
                }
                _ => {}
            }
            e
        })
        .collect();
    // Named in the workload (the run header).
    let mut named = renamed.clone();
    if let EventKind::RunStarted { pipelines, .. } = &mut named[0].kind {
        for p in pipelines.iter_mut() {
            p.deployment = Some(format!("{}-worker", p.stream));
            p.scaled_object = Some(format!("{}-scaler", p.stream));
        }
    }
    // Learned from the watched cluster: each ScaledObject, its scaleTargetRef and its trigger's subscription
    // (the full path, as a gcp-pubsub trigger may write it).
    let mut learned = vec![renamed[0].clone()];
    for s in &plan.streams {
        learned.push(Event::new(
            0,
            Source::Kube,
            EventKind::ScaleTarget {
                scaled_object: format!("{}-scaler", s.name),
                deployment: format!("{}-worker", s.name),
                subscription: Some(format!("projects/p/subscriptions/{}", s.subscription)),
            },
        ));
    }
    learned.extend(renamed[1..].iter().cloned());
    let want = analysis::analyze(original);
    assert!(want.pods.len() == 4 && want.cycles.len() == 4);
    for (how, log) in [("named", named), ("learned", learned)] {
        let got = analysis::analyze(log);
        assert!(got.warnings.is_empty(), "{how}: {:?}", got.warnings);
        let rows = |r: &RunReport| {
            r.series
                .iter()
                .map(|(k, h)| (k.label(), analysis::Stats::of(h)))
                .map(|(l, s)| format!("{l} {}", serde_json::to_string(&s).unwrap()))
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(&got), rows(&want), "{how}: every series");
        for (g, w) in got.pods.iter().zip(&want.pods) {
            assert_eq!(g.phases_us, w.phases_us, "{how}: {}", w.pod);
            assert_eq!(g.pipeline.as_deref(), Some(w.deployment.as_str()), "{how}");
            assert_eq!(g.deployment, format!("{}-worker", w.deployment), "{how}");
        }
        for (g, w) in got.cycles.iter().zip(&want.cycles) {
            let key = |c: &analysis::ScaleCycle| {
                (
                    c.start_us,
                    c.time_to_first_ready_us,
                    c.to_zero_nodes_us,
                    c.messages,
                )
            };
            assert_eq!(key(g), key(w), "{how}: cycle of {}", w.deployment);
            assert_eq!(g.pipeline, w.pipeline, "{how}");
        }
        assert_eq!(got.cost.cost_usd, want.cost.cost_usd, "{how}");
    }
    // Neither: every unmatched object is named once, with the fix.
    let got = analysis::analyze(renamed);
    let text = got.warnings.join("\n");
    for name in [
        "upscale-worker",
        "background-remove-worker",
        "upscale-scaler",
    ] {
        assert!(text.contains(name), "{name} in {text}");
    }
    assert!(
        text.contains("fix: name each stream's deployment"),
        "{text}"
    );
    assert!(
        got.pods.iter().all(|p| p.pipeline.is_none()),
        "nothing is guessed"
    );
}

/// The watcher and the reference worker describe one pod, under different Deployment names (its owner, and the
/// worker's `--pipeline`): one pod, in one pipeline, each instant its sharpest, both sources kept.
#[test]
fn one_pod_seen_by_the_watcher_and_by_its_worker_is_merged() {
    use imagen_load::event::{Event, EventKind, PipelineNames, Source};
    let s = 1_000_000;
    let pod = "upscale-worker-7d9f8b6c5d-q4x8z";
    // A whole second: kube stamps at whole seconds of the wall clock are whole seconds of the run.
    let mut header = crate::common::live_header(&["upscale"], 1_767_225_600_000_000, 600 * s);
    if let EventKind::RunStarted {
        pipelines,
        cluster_observed,
        ..
    } = &mut header
    {
        *pipelines = vec![PipelineNames {
            stream: "upscale".into(),
            topic: "imagen-upscale".into(),
            subscription: "imagen-upscale-sub".into(),
            deployment: Some("upscale-worker".into()),
            scaled_object: None,
        }];
        *cluster_observed = Some(true);
    }
    let created = |t, source, deployment: &str| {
        Event::new(
            t,
            source,
            EventKind::PodCreated {
                pod: pod.into(),
                deployment: deployment.into(),
                preexisting: false,
            },
        )
    };
    let started =
        |t, source| Event::new(t, source, EventKind::ContainerStarted { pod: pod.into() });
    let ready = |t, source| Event::new(t, source, EventKind::PodReady { pod: pod.into() });
    let log = vec![
        Event::new(0, Source::Harness, header),
        // The cluster: created at 10 s, container running at 95 s (whole seconds), Ready at 140 s.
        created(10 * s, Source::Kube, "upscale-worker"),
        started(95 * s, Source::Kube),
        // The worker: its process started at 95.4 s (inside the kube second: sharper), model ready at 139.2 s.
        created(95 * s + 400_000, Source::Worker, "upscale"),
        started(95 * s + 400_000, Source::Worker),
        Event::new(
            139 * s + 200_000,
            Source::Worker,
            EventKind::ModelLoaded {
                pod: pod.into(),
                duration_us: Some(43_800_000),
            },
        ),
        ready(139 * s + 200_000, Source::Worker),
        ready(140 * s, Source::Kube),
        Event::new(
            600 * s,
            Source::Harness,
            EventKind::RunFinished {
                interrupted: false,
                reason: None,
            },
        ),
    ];
    let r = analysis::analyze(log);
    assert_eq!(r.pods.len(), 1, "{:?}", r.pods);
    let p = &r.pods[0];
    assert_eq!(p.pipeline.as_deref(), Some("upscale"));
    assert_eq!(
        p.deployment, "upscale-worker",
        "the owner, as the cluster says"
    );
    assert_eq!(p.sources, vec![Source::Kube, Source::Worker]);
    assert_eq!(
        p.created_us,
        Some(10 * s),
        "the earliest report of its creation"
    );
    assert_eq!(
        p.ready_us,
        Some(139 * s + 200_000),
        "the worker's, before the probe saw it"
    );
    assert_eq!(
        p.phases_us["model_load"],
        Some(43_800_000),
        "as the worker measured it"
    );
    assert!(!p.preexisting);
}

/// A live-shaped log: a 20-second run of 40 messages through one warm worker.
fn short_live_log(dir: &std::path::Path) {
    let mut lines = vec![
        r#"{"t_us":0,"source":"harness","event":"run_started","log_version":1,"run_id":"short","workload":"short","seed":1,"target":"emulator","wall_clock_start_unix_us":1764500000000000,"streams":["upscale"],"warmup_us":0,"deadline_us":20000000,"price_per_gpu_hour_usd":0.48}"#.to_string(),
        r#"{"t_us":0,"source":"kube","event":"replicas","deployment":"upscale","desired":1,"ready":1}"#.to_string(),
    ];
    for seq in 0..40u64 {
        let t = seq * 450_000;
        lines.push(format!(r#"{{"t_us":{t},"source":"harness","event":"scheduled","stream":"upscale","seq":{seq},"intended_us":{t}}}"#));
        lines.push(format!(r#"{{"t_us":{},"source":"harness","event":"published","stream":"upscale","seq":{seq},"lateness_us":100,"server_id":"m{seq}"}}"#, t + 5_000));
        lines.push(format!(r#"{{"t_us":{},"source":"worker","event":"completed","stream":"upscale","seq":{seq},"pod":"upscale-a","received_us":{},"processing_start_us":{},"processing_end_us":{}}}"#, t + 400_000 + seq * 1_000, t + 20_000, t + 20_000, t + 390_000));
    }
    lines.push(
        r#"{"t_us":20000000,"source":"harness","event":"run_finished","interrupted":false}"#
            .to_string(),
    );
    std::fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
}

/// The three reports of the short live-shaped log: (report.html, report.md, the terminal summary).
fn short_live_reports() -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    short_live_log(dir.path());
    let out = bin()
        .arg("analyze")
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .assert()
        .success();
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    (
        read("report.html"),
        read("report.md"),
        String::from_utf8_lossy(&out.get_output().stdout).into_owned(),
    )
}

/// The `<h2>` titles of a page, in order.
fn page_sections(page: &str) -> Vec<String> {
    page.split("<h2>")
        .skip(1)
        .map(|s| s[..s.find("</h2>").unwrap()].to_string())
        .collect()
}

/// Every report puts the answer first, in one order, from one model: the end-to-end latency and where message
/// time went, then cold starts and cost, then the detail. The terminal and Markdown sections are the page's, less
/// the chart-only ones.
#[test]
fn every_report_answers_first_in_the_same_order() {
    let (page, md, term) = short_live_reports();
    let html = page_sections(&page);
    // (section, drawn as a chart only)
    let want = [
        ("End-to-end latency (from intended send)", false),
        ("Where message time went (all streams)", false),
        ("Cold starts", false),
        ("GPU cost", false),
        ("Scale cycles (0 → N → 0)", false),
        ("Delivery", false),
        ("Timeline", true),
        ("Latency by percentile", true),
        ("Warnings", false),
    ];
    assert_eq!(html, want.map(|w| w.0), "{page}");
    let text: Vec<&str> = want.iter().filter(|w| !w.1).map(|w| w.0).collect();
    let md_sections: Vec<&str> = md.lines().filter_map(|l| l.strip_prefix("### ")).collect();
    assert_eq!(md_sections, text, "{md}");
    let term_sections: Vec<&str> = term.lines().filter(|l| text.contains(l)).collect();
    assert_eq!(term_sections, text, "{term}");
}

/// The fault "the headline answer is missing": report.md and report.html had no "where message time went".
#[test]
fn report_md_and_html_say_where_message_time_went() {
    let (page, md, _) = short_live_reports();
    for text in [&page, &md] {
        for part in ["publish delay", "queueing", "processing"] {
            assert!(text.contains(part), "no `{part}`:\n{text}");
        }
    }
}

/// The fault "four duration styles on one page": every duration cell of every table is in the one display form
/// (`25.1ms`, `11.0s`, `5m03s`, `1h13m`), never `400s`, `7m7.556s`, `0us` or `1m60s`.
#[test]
fn one_duration_style_on_every_report() {
    fn human(cell: &str) -> bool {
        let num = |s: &str| s.parse::<f64>().is_ok();
        let two = |s: &str, max: u32| s.len() == 2 && s.parse::<u32>().is_ok_and(|v| v < max);
        if cell == "0s" {
            return true;
        }
        if let Some(v) = cell.strip_suffix("ms").or_else(|| cell.strip_suffix("us")) {
            return num(v) && !cell.starts_with("0");
        }
        if let Some((m, s)) = cell.strip_suffix('s').and_then(|c| c.split_once('m')) {
            return m.parse::<u32>().is_ok() && two(s, 60);
        }
        if let Some((h, m)) = cell.strip_suffix('m').and_then(|c| c.split_once('h')) {
            return h.parse::<u32>().is_ok() && two(m, 60);
        }
        if let Some(v) = cell.strip_suffix('s') {
            return v.parse::<f64>().is_ok_and(|v| v < 60.0);
        }
        false
    }
    let looks_like_duration = |c: &str| {
        c.starts_with(|ch: char| ch.is_ascii_digit())
            && c.ends_with(['s', 'm'])
            && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.')
    };
    let out = tempfile::tempdir().unwrap();
    run_burst(out.path(), "b", &[]).success();
    let (page, md, term) = short_live_reports();
    let burst_page = std::fs::read_to_string(out.path().join("b/report.html")).unwrap();
    let burst_md = std::fs::read_to_string(out.path().join("b/report.md")).unwrap();
    for (name, cells) in [
        ("live report.html", html_cells(&page)),
        ("burst report.html", html_cells(&burst_page)),
        ("live report.md", md_cells(&md)),
        ("burst report.md", md_cells(&burst_md)),
        (
            "live terminal",
            term.split_whitespace().map(str::to_string).collect(),
        ),
    ] {
        let durations: Vec<&String> = cells.iter().filter(|c| looks_like_duration(c)).collect();
        assert!(durations.len() > 10, "{name}: {durations:?}");
        let odd: Vec<&&String> = durations.iter().filter(|c| !human(c)).collect();
        assert!(
            odd.is_empty(),
            "{name}: not in the one duration form: {odd:?}"
        );
    }
    assert!(!burst_page.contains("1m60s") && !burst_page.contains("0us"));
}

fn html_cells(page: &str) -> Vec<String> {
    page.split("<td")
        .skip(1)
        .map(|c| {
            let inner = &c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()];
            let mut text = String::new();
            let mut tag = false;
            for ch in inner.chars() {
                match ch {
                    '<' => tag = true,
                    '>' => tag = false,
                    _ if !tag => text.push(ch),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

fn md_cells(md: &str) -> Vec<String> {
    md.lines()
        .filter(|l| l.starts_with('|'))
        .flat_map(|l| l.split('|').map(|c| c.trim().trim_matches('*').to_string()))
        .collect()
}

/// The x-axis tick labels of a page's charts.
fn x_ticks(page: &str) -> Vec<&str> {
    page.split(r#"text-anchor="middle">"#)
        .skip(1)
        .map(|t| &t[..t.find('<').unwrap()])
        .collect()
}

/// The fault "axes for the wrong scale": a 20-second run was ticked in minutes (`0.15000000000000002m`).
#[test]
fn a_short_run_is_ticked_in_seconds_with_tidy_labels() {
    let (page, _, _) = short_live_reports();
    let ticks = x_ticks(&page);
    assert!(
        ticks.iter().any(|t| *t == "10s" || *t == "20s"),
        "{ticks:?}"
    );
    assert!(
        !ticks.iter().any(|t| t.ends_with('m') && t.contains('.')),
        "{ticks:?}"
    );
    assert!(
        !page
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .any(|n| n.len() > 12 && n.contains('.')),
        "a float printed whole"
    );
}

/// The fault "completions that are not drawn": the last bin of "Messages per minute" had zero width. The step
/// line now reaches the right edge of the plot (70 + 920 − 70 − 210 = 710).
#[test]
fn the_last_bin_of_messages_per_minute_is_drawn_with_its_width() {
    let (page, _, _) = short_live_reports();
    let chart = &page[page.find("Messages per minute").unwrap()..];
    let path = &chart[chart.find(r#"<path d=""#).unwrap() + 9..];
    let d = &path[..path.find('"').unwrap()];
    let last_x: f64 = d
        .rsplit(['L', 'M'])
        .next()
        .unwrap()
        .trim()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (last_x - 710.0).abs() < 0.5,
        "the last bin ends at {last_x}: {d}"
    );
}

/// The fault "a percentile axis beyond the data": it ran to 99.99% with n = 40. 40 messages resolve past 90%,
/// not to 99%.
#[test]
fn the_percentile_axis_stops_at_what_the_sample_size_supports() {
    let (page, _, _) = short_live_reports();
    assert!(
        page.contains(">90%<") && !page.contains(">99%<"),
        "the percentile axis runs past the data"
    );
}

/// The fault "every latency row repeated as a · cold copy, even when all messages were cold": one kind of
/// traffic gets no cold/warm copy, in any report.
#[test]
fn a_scope_of_one_kind_of_traffic_has_no_cold_or_warm_copy() {
    let (page, md, term) = short_live_reports();
    for text in [&page, &md, &term] {
        assert!(
            text.contains("all (all warm)") && !text.contains("all · warm"),
            "rows repeated:\n{text}"
        );
    }
}

/// The fault "columns that invite a wrong sum": the scale-cycle columns say what they count from, in every
/// report.
#[test]
fn scale_cycle_columns_say_what_they_count_from() {
    let out = tempfile::tempdir().unwrap();
    run_burst(out.path(), "b", &[]).success();
    let dir = out.path().join("b");
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let term = bin().arg("analyze").arg(&dir).assert().success();
    let term = String::from_utf8_lossy(&term.get_output().stdout).into_owned();
    for text in [&page, &md, &term] {
        assert!(
            text.contains("first ready, after the first message"),
            "{text}"
        );
    }
    assert!(
        page.contains("started at (run time)"),
        "the page's per-cycle table"
    );
}

/// Snapshots of report.md and the terminal summary of a real live run's log (the README's live quick start:
/// the built-in emulator and two reference workers, no cluster), kept in `fixtures/events/live-quickstart.jsonl`.
#[test]
fn live_run_report_snapshots() {
    let (events, read) = eventlog::read(&path("fixtures/events/live-quickstart.jsonl")).unwrap();
    assert_eq!(read.corrupt_lines, 0);
    let r = analysis::analyze(events);
    insta::assert_snapshot!(
        "live_run_terminal",
        imagen_load::outputs::report::render_terminal(&r, false)
    );
    insta::assert_snapshot!(
        "live_run_report_md",
        imagen_load::outputs::report::markdown::render(&r)
    );
}

/// Snapshots of report.md and the terminal summary of the simulated burst (`workloads/burst.toml`, seed 42).
#[test]
fn simulated_burst_report_snapshots() {
    let out = tempfile::tempdir().unwrap();
    run_burst(out.path(), "burst-snapshot", &[]).success();
    let (events, _) = eventlog::read(&out.path().join("burst-snapshot/events.jsonl")).unwrap();
    let r = analysis::analyze(events);
    insta::assert_snapshot!(
        "simulated_burst_terminal",
        imagen_load::outputs::report::render_terminal(&r, false)
    );
    insta::assert_snapshot!(
        "simulated_burst_report_md",
        imagen_load::outputs::report::markdown::render(&r)
    );
}

/// A live log of 1,000 messages over 10 s (100/s, each `lateness_us` late, answered 1 ms later) with the harness's
/// CPU sampled every second to 11 s: the process used `own` CPU-seconds per second, the machine (2 cores) was
/// `busy` busy (`None`: unreadable).
fn harness_log(lateness_us: u64, own: f64, busy: Option<f64>) -> Vec<imagen_load::event::Event> {
    use imagen_load::event::{Event, EventKind, MsgId, Source};
    let s = 1_000_000u64;
    let mut log = vec![Event::new(
        0,
        Source::Harness,
        crate::common::live_header(&["upscale"], 1_767_225_600_000_000, 20 * s),
    )];
    for seq in 0..1000u64 {
        let id = MsgId {
            stream: "upscale".into(),
            seq,
        };
        let at = seq * 10_000;
        log.push(Event::new(
            at,
            Source::Harness,
            EventKind::Scheduled {
                id: id.clone(),
                intended_us: at,
            },
        ));
        log.push(Event::new(
            at + lateness_us + 1_000,
            Source::Harness,
            EventKind::Published {
                id,
                lateness_us,
                server_id: Some(seq.to_string()),
            },
        ));
    }
    for k in 1..=11u64 {
        log.push(Event::new(
            k * s,
            Source::Harness,
            EventKind::HarnessCpu {
                process_cpu_us: (own * (k * s) as f64) as u64,
                machine_busy_us: busy.map(|b| (b * (2 * k * s) as f64) as u64),
                machine_total_us: busy.map(|_| 2 * k * s),
                cores: 2,
            },
        ));
    }
    log
}

/// A pacer that fell behind is told apart by whether the machine had CPU to spare, from the `harness_cpu`
/// samples: the numbers below are the log's by hand (5.5 CPU-seconds over 11 s for 1,000 messages).
#[test]
fn a_late_pacer_is_said_to_be_saturated_only_when_the_machine_had_no_cpu_to_spare() {
    let harness = |r: &RunReport| r.delivery.harness.clone().expect("harness CPU");
    let pacer_warning = |r: &RunReport| {
        r.warnings
            .iter()
            .find(|w| w.starts_with("the pacer fell behind"))
            .cloned()
    };
    // 5 ms late on a machine 95 % busy: saturated in all 10 seconds of sending.
    let r = analysis::analyze(harness_log(5_000, 0.5, Some(0.95)));
    let h = harness(&r);
    assert!((h.cpu_s - 5.5).abs() < 1e-9, "{h:?}");
    assert!(
        (h.cpu_per_message_us.unwrap() - 5_500.0).abs() < 1e-6,
        "{h:?}"
    );
    assert!((h.cores_used - 0.5).abs() < 1e-9, "{h:?}");
    assert!((h.machine_busy.unwrap() - 0.95).abs() < 1e-9, "{h:?}");
    assert_eq!((h.cores, h.sending_s, h.saturated_s), (2, 10, 10), "{h:?}");
    assert!(h.pacer_saturated);
    let w = pacer_warning(&r).expect("a warning");
    assert!(
        w.contains("on a saturated machine") && w.contains("in 10 of 10 seconds of sending"),
        "{w}"
    );
    // Its summary.json follows the schema, with the harness section.
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("docs/summary.schema.json")).unwrap())
            .unwrap();
    let summary =
        serde_json::to_value(imagen_load::outputs::report::Summary::from_report(&r)).unwrap();
    assert_eq!(summary["delivery"]["harness"]["pacer_saturated"], true);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&summary)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // As late, the machine 30 % busy: not the harness's limit, and the warning says where else to look.
    let r = analysis::analyze(harness_log(5_000, 0.5, Some(0.3)));
    let h = harness(&r);
    assert_eq!((h.saturated_s, h.pacer_saturated), (0, false), "{h:?}");
    let w = pacer_warning(&r).expect("a warning");
    assert!(
        w.contains("though the machine had CPU to spare (its busiest second of sending 30% busy")
            && w.contains("max_outstanding_messages"),
        "{w}"
    );

    // On time (p99 200 µs) on a saturated machine: saturated seconds counted, nothing said of the pacer.
    let r = analysis::analyze(harness_log(200, 0.5, Some(0.95)));
    let h = harness(&r);
    assert_eq!((h.saturated_s, h.pacer_saturated), (10, false), "{h:?}");
    assert_eq!(pacer_warning(&r), None);

    // The machine's time unreadable, the harness itself on 1.9 of its 2 cores: saturated by its own use.
    let r = analysis::analyze(harness_log(5_000, 1.9, None));
    let h = harness(&r);
    assert_eq!(h.machine_busy, None);
    assert_eq!((h.saturated_s, h.pacer_saturated), (10, true), "{h:?}");

    // The same 5 ms with the header's timer slack of 50 ms: lateness the pacer has by design, not falling behind;
    // 52 ms is (over 1 ms beyond the slack), and the warning says so.
    let with_slack = |lateness_us: u64| {
        let mut log = harness_log(lateness_us, 0.5, Some(0.3));
        if let imagen_load::event::EventKind::RunStarted { timer_slack_us, .. } = &mut log[0].kind {
            *timer_slack_us = Some(50_000);
        }
        analysis::analyze(log)
    };
    assert_eq!(pacer_warning(&with_slack(5_000)), None);
    assert_eq!(pacer_warning(&with_slack(50_900)), None);
    let w = pacer_warning(&with_slack(52_000)).expect("a warning");
    assert!(w.contains("over 1 ms beyond the timer slack of 50"), "{w}");

    // No samples (the simulator, older logs): no harness section.
    let mut old = harness_log(5_000, 0.5, Some(0.95));
    old.retain(|e| !matches!(e.kind, imagen_load::event::EventKind::HarnessCpu { .. }));
    assert!(analysis::analyze(old).delivery.harness.is_none());
}
