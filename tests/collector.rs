//! The one collector: the simulated run and the live run hand their events to the same `run::collector`, and
//! the same events give the same report whichever way they come.

use imagen_load::analysis::REORDER_WINDOW_US;
use imagen_load::event::{Event, EventKind};
use imagen_load::run::collector::{Collector, Order};
use rand::{RngExt, SeedableRng};

/// When a live collector would receive each event: the pacer's own events at once; completions after the
/// tracker's pull (up to 0.2 s); cluster events after the watch's delivery (up to 2 s). Each kind of producer keeps
/// its own order, as one channel sender does; between producers, arrival order is by these lags, so events of one
/// instant from different producers can arrive in any order.
fn live_arrival(events: &[Event], seed: u64) -> Vec<Event> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut last = [0u64; 3];
    let mut arriving: Vec<(u64, usize, Event)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (producer, max_lag_us) = match e.kind {
                EventKind::RunStarted { .. }
                | EventKind::Scheduled { .. }
                | EventKind::Published { .. }
                | EventKind::PublishFailed { .. } => (0, 0),
                EventKind::Completed { .. } | EventKind::Duplicate { .. } => (1, 200_000),
                _ => (2, 2_000_000),
            };
            let at = (e.t_us + rng.random_range(0..=max_lag_us)).max(last[producer]);
            last[producer] = at;
            (at, i, e.clone())
        })
        .collect();
    arriving.sort_by_key(|(at, i, _)| (*at, *i));
    arriving.into_iter().map(|(_, _, e)| e).collect()
}

fn summary(report: &imagen_load::analysis::RunReport, dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    imagen_load::outputs::report::write_all(report, dir).unwrap();
    std::fs::read_to_string(dir.join("summary.json")).unwrap()
}

#[test]
fn the_simulated_and_live_paths_give_one_report_of_the_same_events() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = imagen_load::plan::workload::load(&crate::common::path("workloads/burst.toml"), &[])
        .unwrap();
    let events = imagen_load::run::simulate_events(&plan, "same");
    assert!(events.len() > 1_000, "{} events", events.len());

    // As the simulated run collects: in order, on the caller's thread.
    let sim_dir = tmp.path().join("sim");
    std::fs::create_dir_all(&sim_dir).unwrap();
    let mut c = Collector::create(
        &sim_dir.join("events.jsonl"),
        events[0].clone(),
        Order::InOrder,
        None,
    )
    .unwrap();
    for e in &events[1..] {
        c.push(e.clone());
    }
    let sim = c.finish().unwrap();

    // As the live run collects: out of order, from a channel, on the runtime, with the reordering window.
    let arriving = live_arrival(&events, 7);
    assert_ne!(
        arriving.iter().map(|e| e.t_us).collect::<Vec<_>>(),
        events.iter().map(|e| e.t_us).collect::<Vec<_>>(),
        "the live order must differ from time order, or the test shows nothing"
    );
    let live_dir = tmp.path().join("live");
    std::fs::create_dir_all(&live_dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let live = rt.block_on(async {
        let c = Collector::create(
            &live_dir.join("events.jsonl"),
            arriving[0].clone(),
            Order::Reordered {
                window_us: REORDER_WINDOW_US,
            },
            None,
        )
        .unwrap()
        .counting();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(c.collect(rx, |open| {
            // The simulator closes every message itself (completed or lost): nothing is left for the live run's
            // closing `lost` events.
            assert!(open.is_empty(), "{} still open", open.len());
            Vec::new()
        }));
        for e in arriving[1..].iter().cloned() {
            tx.send(e).unwrap();
        }
        drop(tx);
        task.await.unwrap().unwrap()
    });

    assert_eq!(sim.events, events.len() as u64);
    assert_eq!(live.events, events.len() as u64);
    let sim_summary = summary(&sim.report, &sim_dir);
    assert_eq!(sim_summary, summary(&live.report, &live_dir));
    assert!(sim.report.warnings.is_empty(), "{:?}", sim.report.warnings);

    // And both are what `analyze` makes of either log, read back from disk.
    for dir in [&sim_dir, &live_dir] {
        let (again, _, read) = imagen_load::commands::analyze_results(dir).unwrap();
        assert_eq!(read.lines, events.len() as u64);
        assert_eq!(sim_summary, summary(&again, &tmp.path().join("again")));
    }
    // And what `run` writes for the same workload (the simulated source is this collector).
    let out = tmp.path().join("run");
    crate::common::run_burst(&out, "same", &[]).success();
    let run_summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("same/summary.json")).unwrap())
            .unwrap();
    let ours: serde_json::Value = serde_json::from_str(&sim_summary).unwrap();
    assert_eq!(run_summary["latency"], ours["latency"]);
    assert_eq!(run_summary["delivery"], ours["delivery"]);
}
