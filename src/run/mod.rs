//! A run, from its header to its collected events, whatever the source: [`collector`] is the one place every
//! event goes; [`stop`] ([`Stop`], the signals) is how a signal or a failed `abort_on_fail` threshold ends a run
//! early; [`run_header`] opens every event log. The sources: [`simulated`] (the model in [`sim`]) and [`live`]
//! (the [`pacer`] and [`runner`] sending through the [`publisher`], with the observers of `observe`), whose
//! [`progress`] line reads the collector's counts. Around them: [`merge`] (shards' logs into one) and [`whatif`]
//! (setups compared through the simulator).

pub mod collector;
pub mod live;
pub mod merge;
pub mod pacer;
pub mod progress;
pub mod publisher;
pub mod runner;
pub mod sim;
pub mod stop;
pub mod whatif;

pub use stop::{SIGINT, SIGTERM, Signals, Stop, shutdown_signal, stop_on_signal};

use collector::{Clock, Collected, Collector, Order};

use crate::event::{EVENT_LOG_VERSION, Event, EventKind, Source};
use crate::plan::schedule;
use crate::plan::workload::Plan;
use std::sync::Arc;

/// The `run_started` event that opens every event log. `last_offset` is the schedule's last intended offset: the
/// header's `deadline_us` is it plus the plan's deadline. Its `shard` is `None`; [`shard_header`] sets it.
pub fn run_header(
    plan: &Plan,
    last_offset: crate::units::Micros,
    run_id: &str,
    wall_clock_start_unix_us: u64,
) -> Event {
    Event::new(
        0,
        Source::Harness,
        EventKind::RunStarted {
            log_version: EVENT_LOG_VERSION,
            run_id: run_id.to_string(),
            workload: plan.name.clone(),
            seed: plan.seed,
            target: plan.target.as_str().into(),
            wall_clock_start_unix_us,
            streams: plan.streams.iter().map(|s| s.name.clone()).collect(),
            warmup_us: plan.warmup.0,
            deadline_us: last_offset.0 + plan.deadline.0,
            price_per_gpu_hour_usd: plan.sim.autoscaler.price_per_gpu_hour_usd,
            shard: None,
            pipelines: plan.streams.iter().map(|s| s.names()).collect(),
            cluster_observed: Some(plan.observes_cluster()),
            overrides: plan.overrides.clone(),
            timer_slack_us: (plan.target != crate::plan::workload::TargetKind::Sim)
                .then_some(plan.timer_slack.0),
        },
    )
}

/// Marks a run's header with its shard.
pub fn shard_header(mut header: Event, shard: Option<schedule::Shard>) -> Event {
    if let EventKind::RunStarted { shard: s, .. } = &mut header.kind {
        *s = shard.map(|s| s.to_string());
    }
    header
}

/// A simulated run through the collector: `header` first, then every event the simulator emits (for a shard, its
/// own messages' events and the shared ones: each shard simulates the whole stack, since the cluster answers to all
/// the load), into `log`. `horizon_us` is the run's planned length (last send + deadline + drain); thresholds
/// with `abort_on_fail` are checked on simulated time, and one that fails stops the run through `stop`, as a
/// signal does. `header` carries the same shard as `shard` ([`shard_header`]). `held` is the schedule, when it was
/// held by [`schedule::ahead`] (else the simulator generates it). Errors: the log cannot be created or
/// written (a write that fails is returned once the simulation ends).
#[allow(clippy::too_many_arguments)]
pub fn simulated(
    plan: &Plan,
    header: Event,
    shard: Option<schedule::Shard>,
    log: &std::path::Path,
    recorder: Option<crate::outputs::metrics::Recorder>,
    thresholds: &[crate::plan::thresholds::Threshold],
    horizon_us: u64,
    held: Option<Vec<schedule::Item>>,
    stop: Arc<Stop>,
) -> crate::event::log::Result<(Collected, crate::run::sim::SimOutcome)> {
    // The simulator emits in time order, so events go straight to the log and the analysis: nothing is held.
    let mut c = Collector::create(log, header, Order::InOrder, recorder)?.with_abort(
        thresholds,
        horizon_us,
        Clock::Simulated,
        stop.clone(),
    );
    let outcome = sim::simulate_from(
        plan,
        held,
        &stop,
        |e| {
            if shard.is_some_and(|s| s.owns_event(&e.kind) == Some(false)) {
                return;
            }
            c.push(e);
        },
        None,
    );
    Ok((c.finish()?, outcome))
}

/// A plan through the simulator straight into the analysis, in memory: no log, no metrics, no abort (the what-if
/// sweeps, which compare setups by their reports).
pub fn simulate_report(plan: &Plan, run_id: &str) -> crate::analysis::RunReport {
    let mut a = crate::analysis::Analyzer::default();
    a.push(&run_header(plan, schedule::last_offset_of(plan), run_id, 0));
    sim::simulate(plan, |e| a.push(&e));
    a.finish()
}

/// Runs a plan through the simulator in memory: the header, then every simulated event.
pub fn simulate_events(plan: &Plan, run_id: &str) -> Vec<Event> {
    let mut events = vec![run_header(plan, schedule::last_offset_of(plan), run_id, 0)];
    crate::run::sim::simulate(plan, |e| events.push(e));
    events
}
