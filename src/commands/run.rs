//! `run`: the plan, the results folder, the metrics outputs and the thresholds resolved from the command line, then
//! the run through its source (`run::simulated`, `run::live`) and its outputs.

use super::*;

/// The run id: `--run-id` or `<time>-<workload>`, with `-shard-I-of-N` for a shard.
pub(super) fn run_id_of(plan: &Plan, args: &RunArgs) -> String {
    let id = args.run_id.clone().unwrap_or_else(|| run_id_for(plan));
    match args.shard {
        Some(s) => crate::run::merge::shard_run_id(&id, s),
        None => id,
    }
}

pub(super) fn run_id_for(plan: &Plan) -> String {
    stamped(&plan.name)
}

/// A run id that starts with the UTC time to the millisecond (so run ids sort by time, and runs started one after
/// another in a loop get their own): `20261128T101500.123Z-<name>`.
pub(super) fn stamped(name: &str) -> String {
    let stamp = humantime::format_rfc3339_millis(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    format!("{stamp}-{name}")
}

/// The most schedule items a simulated run holds rather than generating its schedule twice (40 bytes each: 10 MiB).
const MAX_HELD_ITEMS: usize = 262_144;

pub(super) fn run_workload(args: &RunArgs) -> anyhow::Result<ExitStatus> {
    let mut plan = load_plan(&args.workload)?;
    if let Some(t) = args.target {
        plan.target = match t {
            TargetArg::Sim => crate::plan::workload::TargetKind::Sim,
            TargetArg::Emulator => crate::plan::workload::TargetKind::Emulator,
            TargetArg::Gcp => crate::plan::workload::TargetKind::Gcp,
        };
    }
    if plan.target != crate::plan::workload::TargetKind::Sim {
        return run_live(args, &plan);
    }
    if args.start_at.is_some() {
        bail!(
            "--start-at starts a live run's schedule at a wall-clock instant; target `sim` runs in simulated time\n    fix: run with --target emulator (or gcp), or drop --start-at"
        );
    }
    if args.cluster.resolve(None).is_some() {
        bail!(
            "--context, --namespace, --selector, --node-selector, --require-zero and --wait-for-zero watch a real cluster; target `sim` simulates one\n    fix: run with --target emulator (or gcp), or drop those flags"
        );
    }
    if plan.cluster.is_some() && !args.results.quiet {
        crate::note!(
            "note: [cluster] is for live targets; the simulator simulates the cluster, so nothing is watched"
        );
    }
    let thresholds = run_thresholds(&plan, args)?;
    // The schedule's end is needed before the first event (the header's deadline, the metrics' and the abort
    // checks' horizon): one pass here, which holds the items of a schedule of up to MAX_HELD_ITEMS for the
    // simulator; a longer one is generated again as it is sent, never held.
    let ahead = schedule::ahead(&plan, MAX_HELD_ITEMS);
    let last_offset = ahead.last_offset;
    let horizon = last_offset.0 + plan.deadline.0 + plan.drain.0;
    check_metrics(&args.metrics, &plan, horizon)?;
    let (run_id, dir) = run_results_dir(&plan, args)?;
    let recorder = metrics_recorder(&args.metrics, &plan, horizon, &run_id, args.results.quiet);
    // Served from a runtime of its own while the simulator runs on this thread.
    let served = match (&recorder, metrics_addr(&args.metrics, &plan)) {
        (Some(r), Some(addr)) => {
            let rt = runtime()?;
            serve_metrics(&rt, r.metrics.clone(), addr, args.results.quiet).map(|_| rt)
        }
        _ => None,
    };
    let started = Instant::now();
    // Simulated time has no wall clock: 0 keeps the log a pure function of workload and seed.
    let header = crate::run::shard_header(
        crate::run::run_header(&plan, last_offset, &run_id, 0),
        args.shard,
    );
    let stop = crate::run::stop_on_signal();
    let (collected, outcome) = crate::run::simulated(
        &plan,
        header,
        args.shard,
        &dir.join("events.jsonl"),
        recorder,
        &thresholds,
        horizon,
        ahead.items,
        stop.clone(),
    )?;
    let simulated_in = started.elapsed();
    let (events, aborted) = (collected.events, collected.aborted);
    let mut recorder = collected.recorder;
    finish_metrics(recorder.as_mut(), args)?;
    std::fs::write(dir.join("workload.toml"), plan.effective_workload())?;
    let mut report = collected.report;
    report.thresholds = crate::outputs::gates::evaluate(&thresholds, &report);
    write_and_print(&report, &dir, args.results.quiet, |files| {
        format!(
            "simulated {} in {} ({} events) · results in {} ({} files)",
            crate::units::human_us(outcome.end_us),
            crate::units::human_us(simulated_in.as_micros() as u64),
            events,
            dir.display(),
            files + 2
        )
    })?;
    if let Some(rt) = served {
        linger(&rt, &args.metrics);
    }
    if let Some(why) = &aborted {
        crate::note!(
            "aborted: threshold {why}; partial results written to {}",
            dir.display()
        );
        return Ok(ExitStatus::GateFailed);
    }
    if outcome.interrupted {
        crate::note!(
            "interrupted: partial results (marked interrupted) were written to {}",
            dir.display()
        );
        return Ok(interrupted(&stop));
    }
    Ok(gate_status(&report))
}

/// Where the run's metrics are served: `--metrics-addr`, else `[run] metrics_addr`.
pub(super) fn metrics_addr(
    args: &crate::commands::cli::MetricsArgs,
    plan: &Plan,
) -> Option<std::net::SocketAddr> {
    args.metrics_addr.or(plan.metrics_addr)
}

/// Where the run's metrics are pushed by OTLP: `--otlp-endpoint`, else `[run] otlp_endpoint`.
pub(super) fn otlp_endpoint<'a>(
    args: &'a crate::commands::cli::MetricsArgs,
    plan: &'a Plan,
) -> Option<&'a str> {
    args.otlp_endpoint
        .as_deref()
        .or(plan.otlp_endpoint.as_deref())
}

/// The most samples a metrics file of a simulated run may hold: 10,000 snapshots of ~500 series is about 400 MB.
pub(super) const MAX_METRICS_SAMPLES: u64 = 10_000;

/// Checks `--metrics-*` and `[run] metrics_addr` before anything runs (exit 2): a served address that is not
/// loopback needs `--metrics-allow-remote`; a metrics file must be a file in a folder that exists; its interval
/// is at least a second, and a simulated run (`horizon_us`, its planned length; 0 for a live run) gets at most
/// [`MAX_METRICS_SAMPLES`] samples.
pub(super) fn check_metrics(
    args: &crate::commands::cli::MetricsArgs,
    plan: &Plan,
    horizon_us: u64,
) -> anyhow::Result<()> {
    if let Some(a) = metrics_addr(args, plan) {
        crate::outputs::metrics::check_addr(a, args.metrics_allow_remote)?;
    }
    if let Some(path) = &args.metrics_file {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if path.is_dir() || !parent.is_dir() {
            bail!(
                "--metrics-file {}: {}\n    fix: name a file in a folder that exists",
                path.display(),
                if path.is_dir() {
                    "that is a folder"
                } else {
                    "its folder does not exist"
                }
            );
        }
    }
    if args.metrics_linger.is_some() && metrics_addr(args, plan).is_none() {
        bail!(
            "--metrics-linger keeps /metrics up after the run, and nothing serves it\n    fix: add --metrics-addr 127.0.0.1:PORT (or [run] metrics_addr), or drop --metrics-linger"
        );
    }
    if let Some(url) = otlp_endpoint(args, plan) {
        crate::outputs::metrics::otlp::endpoint(url, args.metrics_allow_remote)?;
    } else if args.otlp_interval.is_some() {
        bail!(
            "--otlp-interval sets how often the OTLP push goes, and nothing is pushed\n    fix: add --otlp-endpoint http://127.0.0.1:4318 (or [run] otlp_endpoint), or drop --otlp-interval"
        );
    }
    if let Some(i) = args.otlp_interval
        && i.0 < 1_000_000
    {
        bail!(
            "--otlp-interval {i}: under a second\n    fix: 1s or more (the default is {})",
            crate::units::Micros(crate::outputs::metrics::otlp::DEFAULT_INTERVAL.as_micros() as u64)
        );
    }
    if let Some(i) = args.metrics_interval {
        if i.0 < 1_000_000 {
            bail!(
                "--metrics-interval {i}: under a second\n    fix: 1s or more (Prometheus scrapes every 15s by default)"
            );
        }
        if horizon_us / i.0 > MAX_METRICS_SAMPLES {
            bail!(
                "--metrics-interval {i}: {} samples of a {} simulated run, more than {MAX_METRICS_SAMPLES}\n    fix: --metrics-interval {} or more",
                horizon_us / i.0,
                crate::units::human_us(horizon_us),
                crate::units::Micros(
                    horizon_us.div_ceil(MAX_METRICS_SAMPLES).div_ceil(1_000_000) * 1_000_000
                )
            );
        }
    }
    Ok(())
}

/// The run's metrics as `--metrics-*` and `[run] metrics_addr` ask for them (checked by [`check_metrics`]);
/// `None` when nothing serves or writes them. Every series is labelled with `run_id`. `horizon_us` is a simulated
/// run's planned length (0 for a live run): a metrics file's default spacing is 15 s, Prometheus' default scrape
/// interval, or 1/720 of a simulated run longer than 3 hours; a simulated run's samples end at the moment it ran
/// (time 0 is `now − horizon`), so they can be backfilled beside live data, which Prometheus only takes up to now.
pub(super) fn metrics_recorder(
    args: &crate::commands::cli::MetricsArgs,
    plan: &Plan,
    horizon_us: u64,
    run_id: &str,
    quiet: bool,
) -> Option<crate::outputs::metrics::Recorder> {
    let otlp = otlp_endpoint(args, plan);
    if metrics_addr(args, plan).is_none() && args.metrics_file.is_none() && otlp.is_none() {
        return None;
    }
    // An OTLP push that cannot be set up (a malformed OTEL_EXPORTER_OTLP_* variable) is one warning.
    let push = otlp
        .and_then(|u| crate::outputs::metrics::otlp::endpoint(u, args.metrics_allow_remote).ok())
        .and_then(|url| {
            let interval = args
                .otlp_interval
                .map_or(crate::outputs::metrics::otlp::DEFAULT_INTERVAL, |i| {
                    std::time::Duration::from_micros(i.0)
                });
            crate::outputs::metrics::otlp::Push::start(&url, interval, run_id)
                .inspect_err(|e| {
                    crate::logs::note(
                        &format!("warning: {e}\n    the run goes on without pushing metrics"),
                        "WARNING",
                    )
                })
                .ok()
        });
    let mut metrics = crate::outputs::metrics::RunMetrics::for_run(Some(run_id));
    if let Some(p) = &push {
        metrics = metrics.with_otlp(&p.meter());
    }
    let mut r = crate::outputs::metrics::Recorder::new(std::sync::Arc::new(metrics));
    if let Some(p) = push {
        if !quiet {
            crate::note!(
                "metrics pushed by OTLP to {} every {}",
                p.url(),
                crate::units::Micros(p.interval().as_micros() as u64)
            );
        }
        r = r.with_push(p);
    }
    if let Some(path) = &args.metrics_file {
        let interval = args
            .metrics_interval
            .map_or((horizon_us / 720).max(15_000_000), |i| i.0);
        // A live run's header sets its own wall-clock start.
        let origin = crate::units::unix_now_us().saturating_sub(horizon_us) as f64 / 1e6;
        r = r.with_file(path.clone(), interval, origin);
    }
    Some(r)
}

/// Serves `metrics` at `addr` from `rt`. A port that cannot be had is one warning, and the run goes on.
pub(super) fn serve_metrics(
    rt: &tokio::runtime::Runtime,
    metrics: std::sync::Arc<crate::outputs::metrics::RunMetrics>,
    addr: std::net::SocketAddr,
    quiet: bool,
) -> Option<tokio::task::JoinHandle<()>> {
    match rt.block_on(tokio::net::TcpListener::bind(addr)) {
        Ok(listener) => {
            if !quiet {
                crate::note!(
                    "metrics on http://{}/metrics",
                    listener.local_addr().unwrap_or(addr)
                );
            }
            let render = std::sync::Arc::new(move || metrics.encode());
            Some(rt.spawn(crate::outputs::metrics::serve(listener, render)))
        }
        Err(error) => {
            crate::note!(
                "warning: {}\n    the run goes on without serving metrics",
                crate::outputs::metrics::Error::BindFailed { addr, error }
            );
            None
        }
    }
}

/// Writes `--metrics-file`, if asked for.
pub(super) fn finish_metrics(
    recorder: Option<&mut crate::outputs::metrics::Recorder>,
    args: &RunArgs,
) -> anyhow::Result<()> {
    let Some(r) = recorder else {
        return Ok(());
    };
    if let Some((url, pushed)) = r.finish_push()
        && (pushed.failures > 0 || !args.results.quiet)
    {
        if pushed.failures > 0 {
            crate::note!(
                "OTLP: {} of {} pushes to {url} failed",
                pushed.failures,
                pushed.pushes
            );
        } else {
            crate::note!("metrics pushed to {url} ({} pushes)", pushed.pushes);
        }
    }
    if let Some(path) = r.finish()?
        && !args.results.quiet
    {
        crate::note!("metrics written to {}", path.display());
    }
    Ok(())
}

/// Keeps the metrics endpoint up for `--metrics-linger` after the run, so a last scrape sees the final counts.
pub(super) fn linger(rt: &tokio::runtime::Runtime, args: &crate::commands::cli::MetricsArgs) {
    if let Some(d) = args.metrics_linger.filter(|d| d.0 > 0) {
        let d = std::time::Duration::from_micros(d.0);
        rt.block_on(async move { tokio::time::sleep(d).await });
    }
}

/// The workload's thresholds, plus those of `--gates FILE`.
pub(super) fn run_thresholds(
    plan: &Plan,
    args: &RunArgs,
) -> anyhow::Result<Vec<crate::plan::thresholds::Threshold>> {
    let mut thresholds = plan.thresholds.clone();
    if let Some(gates) = &args.gates {
        let streams: Vec<String> = plan.streams.iter().map(|s| s.name.clone()).collect();
        thresholds.extend(crate::plan::thresholds::load_file(gates, &streams)?);
    }
    Ok(thresholds)
}

/// A real-time run against Pub/Sub (`emulator` or `gcp`): see `live`.
pub(super) fn run_live(args: &RunArgs, plan: &Plan) -> anyhow::Result<ExitStatus> {
    let thresholds = run_thresholds(plan, args)?;
    let items = schedule::Items::Plan(args.shard);
    let opts = crate::run::live::LiveOptions {
        project: args.project.clone(),
        emulator_host: args.emulator_host.clone(),
        create_topics: if args.no_create_topics {
            Some(false)
        } else if args.create_topics {
            Some(true)
        } else {
            None
        },
        progress: !args.no_progress && !args.results.quiet,
        shard: args.shard,
        cluster: args.cluster.resolve(plan.cluster.as_ref()),
        thresholds: thresholds.clone(),
        start_at_unix_us: args.start_at.map(|t| t.as_microsecond().max(0) as u64),
    };
    check_metrics(&args.metrics, plan, 0)?;
    // A start instant already past: refused before anything is created.
    if let Some(at) = args.start_at
        && at < jiff::Timestamp::now()
    {
        bail!(
            "--start-at {at}: that instant has passed\n    fix: give every shard a start time far enough ahead for all of them to connect (and reach zero, with --require-zero)"
        );
    }
    let stop = crate::run::stop_on_signal();
    let rt = live_runtime()?;
    // Connect and set up first: an unreachable Pub/Sub fails here, before the results folder exists. A signal
    // meanwhile (say, during a long --require-zero wait) ends it with nothing written.
    let prepared = rt.block_on(async {
        tokio::select! {
            p = crate::run::live::prepare(plan, &opts) => p.map(Some),
            _ = async {
                while !stop.requested() {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            } => Ok(None),
        }
    })?;
    let Some(prepared) = prepared else {
        crate::note!(
            "interrupted before the run started ({}); nothing was written",
            stop.reason()
        );
        return Ok(interrupted(&stop));
    };
    let (run_id, dir) = run_results_dir(plan, args)?;
    let recorder = metrics_recorder(&args.metrics, plan, 0, &run_id, args.results.quiet);
    let served = match (&recorder, metrics_addr(&args.metrics, plan)) {
        (Some(r), Some(addr)) => serve_metrics(&rt, r.metrics.clone(), addr, args.results.quiet),
        _ => None,
    };
    if !args.results.quiet {
        crate::note!(
            "run {run_id}: {} messages into {} (project {}), live; results in {}",
            items
                .iter(plan)
                .filter(|i| matches!(i.kind, schedule::ItemKind::Message { .. }))
                .count(),
            prepared.describe(),
            prepared.conn.project,
            dir.display()
        );
    }
    let outcome = match rt.block_on(crate::run::live::run(
        plan,
        &items,
        &run_id,
        &dir,
        prepared,
        &opts,
        recorder,
        stop.clone(),
    )) {
        Ok(o) => o,
        Err(e) => {
            // A missed start barrier wrote nothing: the empty folder goes, so the shard can be run again.
            if matches!(e, crate::run::live::LiveError::MissedStart { .. }) {
                let _ = std::fs::remove_dir(&dir);
            }
            return Err(e.into());
        }
    };
    let mut collected = outcome.collected;
    finish_metrics(collected.recorder.as_mut(), args)?;
    if served.is_some() {
        linger(&rt, &args.metrics);
    }
    drop(rt);
    std::fs::write(dir.join("workload.toml"), plan.effective_workload())?;
    let mut report = collected.report;
    report.thresholds = crate::outputs::gates::evaluate(&thresholds, &report);
    write_and_print(&report, &dir, args.results.quiet, |files| {
        format!(
            "ran {} live ({} events, {} lost, pacer p99 lateness {}) · results in {} ({} files)",
            crate::units::human_us(outcome.elapsed.as_micros() as u64),
            collected.events,
            outcome.lost,
            crate::units::human_us(outcome.lateness_p99_us),
            dir.display(),
            files + 2
        )
    })?;
    if let Some(why) = &collected.aborted {
        crate::note!(
            "aborted: threshold {why}; partial results written to {}",
            dir.display()
        );
        return Ok(ExitStatus::GateFailed);
    }
    if outcome.interrupted {
        crate::note!(
            "interrupted ({}): partial results (marked interrupted) were written to {}",
            outcome.reason.unwrap_or_default(),
            dir.display()
        );
        return Ok(interrupted(&stop));
    }
    Ok(gate_status(&report))
}
