//! The application edge: resolves the command line into a plan once, runs the command, and maps the outcome to an
//! exit status. `anyhow` context is added here and nowhere deeper.

use crate::analysis::{self, RunReport};
use crate::cli::{
    AnalyzeArgs, CalibrateArgs, Cli, Command, CompareArgs, EmulatorArgs, HealthArgs, ImportArgs,
    MergeArgs, PlanArgs, ReportArgs, RunArgs, TargetArg, WatchArgs, WhatifArgs, WorkerArgs,
    WorkloadArgs,
};
use crate::event::{EVENT_LOG_VERSION, Event, EventKind, Source};
use crate::eventlog::{self, EventLogWriter};
use crate::report;
use crate::schedule;
use crate::workload::{self, Override, Phase, Plan, RateShape};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Ok,
    /// A threshold or regression gate failed (exit code 1).
    GateFailed,
    /// A signal stopped the run; its partial results were written. Exit code 128 + the signal's number, the
    /// shell's convention: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.
    Interrupted(i32),
    /// Bad input already reported on stdout in the format asked for (`validate -o json`): exit code 2, nothing
    /// more said on stderr.
    Invalid,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        match s {
            ExitStatus::Ok => ExitCode::SUCCESS,
            ExitStatus::GateFailed => ExitCode::from(1),
            ExitStatus::Interrupted(sig) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
            ExitStatus::Invalid => ExitCode::from(2),
        }
    }
}

/// The exit status of a run a signal stopped (SIGINT's when the stop had another cause).
fn interrupted(stop: &crate::sim::Stop) -> ExitStatus {
    ExitStatus::Interrupted(stop.signal().unwrap_or(SIGINT))
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    crate::logs::init(cli.verbose, cli.log_format);
    match cli.command {
        Command::Validate(args) => validate(&args),
        Command::Plan(args) => plan(&args),
        Command::Run(args) => run_workload(&args),
        Command::Analyze(args) => analyze(&args),
        Command::Merge(args) => merge(&args),
        Command::Compare(args) => compare(&args),
        Command::Report(args) => trend_report(&args),
        Command::Whatif(args) => whatif(&args),
        Command::Calibrate(args) => calibrate(&args),
        Command::Import(args) => import(&args),
        Command::Emulator(args) => serve_emulator(&args),
        Command::Worker(args) => worker(args),
        Command::Health(args) => health(&args),
        Command::Watch(args) => watch(&args),
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut cmd, "imagen-load", &mut out);
            crate::unless_closed(std::io::stdout().lock().write_all(&out))?;
            Ok(ExitStatus::Ok)
        }
        Command::Man(args) => man(&args),
    }
}

/// `man`: the main page on stdout, or every command's page into a folder (clap_mangen).
fn man(args: &crate::cli::ManArgs) -> anyhow::Result<ExitStatus> {
    let cmd = <Cli as clap::CommandFactory>::command();
    match &args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            crate::unless_closed(std::io::stdout().lock().write_all(&page))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            crate::say!("wrote the man pages into {}", dir.display())?;
        }
    }
    Ok(ExitStatus::Ok)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves on the first Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn serve_emulator(args: &EmulatorArgs) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(async {
        let handle = crate::emulator::start((args.host, args.port).into()).await?;
        crate::say!(
            "Pub/Sub emulator on {} (gRPC + REST); backlog at http://{}/backlog/SUBSCRIPTION\n\
             export PUBSUB_EMULATOR_HOST={}",
            handle.addr,
            handle.addr,
            handle.addr
        )?;
        shutdown_signal().await;
        handle.stop().await;
        Ok(ExitStatus::Ok)
    })
}

fn worker(args: WorkerArgs) -> anyhow::Result<ExitStatus> {
    let conn = match &args.emulator_host {
        Some(h) if !h.is_empty() => crate::pubsub::Connection::emulator(h, &args.project),
        _ => {
            crate::pubsub::check_credentials().map_err(|e| anyhow::anyhow!(e))?;
            crate::pubsub::Connection::gcp(&args.project)
        }
    };
    let short = args
        .subscription
        .rsplit('/')
        .next()
        .unwrap_or(&args.subscription)
        .to_string();
    let pod = args
        .pod
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let seed = args.seed.unwrap_or_else(|| {
        pod.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        })
    });
    let cfg = crate::worker::WorkerConfig {
        conn: conn.clone(),
        subscription: args.subscription.clone(),
        results_topic: args.results_topic.clone(),
        pipeline: args.pipeline.clone().unwrap_or(short),
        pod: pod.clone(),
        model_load: args.model_load.clone(),
        processing: args.processing.clone(),
        concurrency: args.concurrency,
        lazy_load: args.lazy_load,
        seed,
        http: (args.http_port != 0).then(|| (args.http_host, args.http_port).into()),
    };
    runtime()?.block_on(async move {
        if let Some(topic) = &args.create_on_topic {
            conn.ensure_topic(topic).await?;
            conn.ensure_topic(&args.results_topic).await?;
            conn.ensure_subscription(&args.subscription, topic, 60)
                .await?;
        }
        crate::note!(
            "worker {pod}: pulling {} on {}, completions to {}",
            conn.subscription_path(&args.subscription),
            conn.describe(),
            conn.topic_path(&args.results_topic)
        );
        let stats = crate::worker::run(cfg, shutdown_signal()).await?;
        crate::note!(
            "worker {pod}: stopped after {} jobs ({} completions could not be published)",
            stats.processed.load(std::sync::atomic::Ordering::Relaxed),
            stats
                .publish_failures
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        Ok(ExitStatus::Ok)
    })
}

fn watch(args: &WatchArgs) -> anyhow::Result<ExitStatus> {
    use crate::cluster::watch;
    let rt = runtime()?;
    let (client, kube_namespace) = rt.block_on(watch::client(
        args.context.as_deref(),
        args.kubeconfig.as_deref(),
    ))?;
    let namespace = watch::namespace_of(args.namespace.as_deref(), kube_namespace.as_deref());
    rt.block_on(watch::check_permissions(&client, &namespace))?;
    let (run_id, dir) = stamped_results_dir(&args.out, &args.run_id, "watch", args.force)?;
    let stop = stop_on_signal();
    let origin_unix_us = crate::units::unix_now_us();
    let started = std::time::Instant::now();
    let mut writer = EventLogWriter::create(&dir.join("events.jsonl"))?;
    writer.append(&Event::new(
        0,
        Source::Harness,
        EventKind::RunStarted {
            log_version: EVENT_LOG_VERSION,
            run_id: run_id.clone(),
            workload: "watch".into(),
            seed: 0,
            target: "kube-watch".into(),
            wall_clock_start_unix_us: origin_unix_us,
            streams: Vec::new(),
            warmup_us: 0,
            deadline_us: args.duration.map_or(u64::MAX, |d| d.0),
            price_per_gpu_hour_usd: 0.48,
            shard: None,
            pipelines: Vec::new(),
            cluster_observed: Some(true),
            overrides: Vec::new(),
        },
    ))?;
    if !args.quiet {
        crate::note!(
            "watching namespace {} and its nodes{}; results in {} (Ctrl-C to stop)",
            namespace,
            args.duration
                .map(|d| format!(" for {d}"))
                .unwrap_or_default(),
            dir.display()
        );
    }
    let opts = watch::WatchOptions {
        namespace,
        selector: args.selector.clone(),
        node_selector: args.node_selector.clone(),
    };
    let counts = rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let finish = move || {
            vec![Event::new(
                started.elapsed().as_micros() as u64,
                Source::Harness,
                EventKind::RunFinished {
                    interrupted: false,
                    reason: None,
                },
            )]
        };
        let collector = tokio::spawn(eventlog::collect_with(writer, rx, |_| {}, finish));
        let watching = watch::start(client, &opts, origin_unix_us, tx);
        while !stop.requested()
            && args
                .duration
                .is_none_or(|d| started.elapsed() < std::time::Duration::from_micros(d.0))
        {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let counts = watching.stop().await;
        collector.await.expect("collector task")?;
        anyhow::Ok(counts)
    })?;
    let (mut report, _, _) = analyze_results(&dir)?;
    if counts.unparsed > 0 {
        report.warnings.push(format!(
            "{} event messages were not recognised (kept raw in the cluster)",
            counts.unparsed
        ));
    }
    write_and_print(&report, &dir, args.quiet, |files| {
        format!(
            "watched {} ({} objects seen, {} events) · results in {} ({} files)",
            crate::units::human_us(started.elapsed().as_micros() as u64),
            counts.objects,
            counts.emitted,
            dir.display(),
            files + 1
        )
    })?;
    Ok(ExitStatus::Ok)
}

fn health(args: &HealthArgs) -> anyhow::Result<ExitStatus> {
    let urls = match &args.url {
        Some(u) => vec![u.clone()],
        None => vec![
            "http://127.0.0.1:8080/healthz".to_string(),
            "http://127.0.0.1:8085/healthz".to_string(),
        ],
    };
    let rt = runtime()?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .no_proxy()
        .build()?;
    let mut failures = Vec::new();
    for url in &urls {
        match rt.block_on(client.get(url).send()) {
            Ok(r) if r.status().is_success() => {
                crate::say!("healthy: {url} answered {}", r.status())?;
                return Ok(ExitStatus::Ok);
            }
            Ok(r) => failures.push(format!("{url} answered {}", r.status())),
            Err(e) => failures.push(format!("{url}: {e}")),
        }
    }
    crate::note!("unhealthy: {}", failures.join("; "));
    Ok(ExitStatus::GateFailed)
}

/// Resolves the workload arguments into a validated plan: the one place clap and the workload meet.
pub fn load_plan(args: &WorkloadArgs) -> anyhow::Result<Plan> {
    let overrides = args
        .overrides
        .iter()
        .map(|o| {
            o.parse::<Override>()
                .map_err(|m| workload::Error::BadOverride {
                    text: o.clone(),
                    message: m,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut plan = workload::load(&args.workload, &overrides)?;
    if let Some(seed) = args.seed {
        plan.seed = seed;
    }
    Ok(plan)
}

fn validate(args: &crate::cli::ValidateArgs) -> anyhow::Result<ExitStatus> {
    use crate::cli::OutputFormat;
    if args.format == OutputFormat::Csv {
        bail!(
            "validate prints text or json\n    fix: `-o json` (or `plan -o csv` for the schedule)"
        );
    }
    let plan = match load_plan(&args.workload) {
        Ok(plan) => plan,
        Err(e) if args.format == OutputFormat::Json => {
            // For machines the problems are data on stdout; the exit code still says it failed.
            let problems = match e.downcast_ref::<workload::Error>() {
                Some(workload::Error::Invalid { problems }) => serde_json::to_value(problems)?,
                _ => serde_json::json!([{"message": format!("{e:#}")}]),
            };
            crate::say!(
                "{}",
                serde_json::json!({"valid": false, "problems": problems})
            )?;
            return Ok(ExitStatus::Invalid);
        }
        Err(e) => return Err(e),
    };
    let items = schedule::build(&plan);
    if args.format == OutputFormat::Json {
        let streams: Vec<serde_json::Value> = plan
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let n = items
                    .iter()
                    .filter(|it| {
                        it.stream as usize == i
                            && matches!(it.kind, schedule::ItemKind::Message { .. })
                    })
                    .count();
                serde_json::json!({"name": s.name, "topic": s.topic, "messages": n})
            })
            .collect();
        crate::say!(
            "{}",
            serde_json::json!({
                "valid": true, "workload": plan.name, "seed": plan.seed, "target": plan.target.as_str(),
                "streams": streams, "overrides": plan.overrides,
            })
        )?;
        return Ok(ExitStatus::Ok);
    }
    crate::unless_closed(write!(
        std::io::stdout().lock(),
        "{}",
        describe(&plan, &items)
    ))?;
    Ok(ExitStatus::Ok)
}

fn plan(args: &PlanArgs) -> anyhow::Result<ExitStatus> {
    let plan = load_plan(&args.workload)?;
    let mut items = schedule::build(&plan);
    if let Some(s) = args.shard {
        items = schedule::shard(&items, s);
    }
    let mut sink: Box<dyn Write> = match &args.to {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    if args.csv || args.format == crate::cli::OutputFormat::Csv {
        schedule::write_csv(&plan, &items, &mut sink)?;
    } else if args.format == crate::cli::OutputFormat::Json {
        schedule::write_json_lines(&plan, &items, &mut sink)?;
    } else {
        sink.write_all(describe(&plan, &items).as_bytes())?;
    }
    Ok(ExitStatus::Ok)
}

fn phase_text(p: &Phase) -> String {
    match p {
        Phase::Idle { duration } => format!("idle {duration}"),
        Phase::Rate {
            shape,
            duration,
            arrivals,
        } => {
            let a = if *arrivals == workload::Arrivals::Poisson {
                " (poisson arrivals)"
            } else {
                ""
            };
            match shape {
                RateShape::Constant(r) => format!("constant {r} for {duration}{a}"),
                RateShape::Ramp { from, to } => format!("ramp {from} → {to} over {duration}{a}"),
                RateShape::Sine {
                    base,
                    amplitude,
                    period,
                    ..
                } => format!("sine {base} ± {amplitude}, period {period}, for {duration}{a}"),
            }
        }
        Phase::Burst {
            count,
            within,
            spread,
        } => {
            if within.0 == 0 {
                format!("burst of {count} at once")
            } else {
                format!(
                    "burst of {count} within {within} ({})",
                    if *spread == workload::Spread::Random {
                        "random"
                    } else {
                        "evenly spread"
                    }
                )
            }
        }
        Phase::Trace {
            file,
            offsets,
            duration,
        } => format!(
            "trace {} ({} rows over {duration})",
            file.display(),
            offsets.len()
        ),
        Phase::Repeat { times, phases } => {
            let inner: Vec<String> = phases.iter().map(phase_text).collect();
            format!("repeat {times}× [{}]", inner.join(", "))
        }
        Phase::Http(h) => format!(
            "http {} {}{}",
            h.method,
            h.url,
            if h.sim_effect == workload::HttpSimEffect::Warm {
                " (warms the deployment in sim)"
            } else {
                ""
            }
        ),
    }
}

/// What a plan will do, for `validate` and `plan`.
pub fn describe(plan: &Plan, items: &[schedule::Item]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let msgs = items
        .iter()
        .filter(|i| matches!(i.kind, schedule::ItemKind::Message { .. }))
        .count();
    writeln!(out, "{}: ok", plan.source.display()).unwrap();
    writeln!(
        out,
        "  run `{}` · seed {} · deadline {} · warm-up {} · drain {} · target {}",
        plan.name,
        plan.seed,
        plan.deadline,
        plan.warmup,
        plan.drain,
        match plan.target {
            crate::workload::TargetKind::Sim => format!("sim ({})", plan.sim.profile),
            t => t.as_str().to_string(),
        }
    )
    .unwrap();
    writeln!(
        out,
        "  {} stream(s), {} messages, last send at {}",
        plan.streams.len(),
        msgs,
        schedule::last_offset(items)
    )
    .unwrap();
    for (s, stream) in plan.streams.iter().enumerate() {
        let mine: Vec<&schedule::Item> = items.iter().filter(|i| i.stream as usize == s).collect();
        let n = mine
            .iter()
            .filter(|i| matches!(i.kind, schedule::ItemKind::Message { .. }))
            .count();
        let span = match (mine.first(), mine.last()) {
            (Some(a), Some(b)) => format!(
                "{} → {}",
                crate::units::Micros(a.offset_us),
                crate::units::Micros(b.offset_us)
            ),
            _ => "nothing scheduled".into(),
        };
        writeln!(
            out,
            "  stream `{}` → topic `{}`: {n} messages ({span})",
            stream.name, stream.topic
        )
        .unwrap();
        for (i, p) in stream.phases.iter().enumerate() {
            writeln!(out, "    {}. {}", i + 1, phase_text(p)).unwrap();
        }
        let k = &plan.sim.pipelines[s].keda;
        if plan.target == crate::workload::TargetKind::Sim {
            writeln!(
                out,
                "    sim: replicas {}..{}, target {} msgs/replica, polling {}, cooldown {}",
                k.min_replicas,
                k.max_replicas,
                k.target_value,
                k.polling_interval,
                k.cooldown_period
            )
            .unwrap();
        } else {
            writeln!(
                out,
                "    workers pull from subscription `{}`",
                plan.streams[s].subscription
            )
            .unwrap();
        }
    }
    out
}

/// The run id: `--run-id` or `<time>-<workload>`, with `-shard-I-of-N` for a shard.
fn run_id_of(plan: &Plan, args: &RunArgs) -> String {
    let id = args.run_id.clone().unwrap_or_else(|| run_id_for(plan));
    match args.shard {
        Some(s) => crate::merge::shard_run_id(&id, s),
        None => id,
    }
}

/// Marks a run's header with its shard.
pub fn shard_header(mut header: Event, shard: Option<schedule::Shard>) -> Event {
    if let EventKind::RunStarted { shard: s, .. } = &mut header.kind {
        *s = shard.map(|s| s.to_string());
    }
    header
}

fn run_id_for(plan: &Plan) -> String {
    stamped(&plan.name)
}

/// A run id that starts with the UTC time to the millisecond (so run ids sort by time, and runs started one after
/// another in a loop get their own): `20261128T101500.123Z-<name>`.
fn stamped(name: &str) -> String {
    let stamp = humantime::format_rfc3339_millis(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "");
    format!("{stamp}-{name}")
}

fn run_workload(args: &RunArgs) -> anyhow::Result<ExitStatus> {
    let mut plan = load_plan(&args.workload)?;
    if let Some(t) = args.target {
        plan.target = match t {
            TargetArg::Sim => crate::workload::TargetKind::Sim,
            TargetArg::Emulator => crate::workload::TargetKind::Emulator,
            TargetArg::Gcp => crate::workload::TargetKind::Gcp,
        };
    }
    if plan.target != crate::workload::TargetKind::Sim {
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
    if plan.cluster.is_some() && !args.quiet {
        crate::note!(
            "note: [cluster] is for live targets; the simulator simulates the cluster, so nothing is watched"
        );
    }
    let thresholds = run_thresholds(&plan, args)?;
    // The schedule is never held: one pass for its end here, one as the simulator sends it.
    let last_offset = schedule::last_offset_of(&plan);
    let horizon = last_offset.0 + plan.deadline.0 + plan.drain.0;
    check_metrics(&args.metrics, &plan, horizon)?;
    let (run_id, dir) = run_results_dir(&plan, args)?;
    let mut recorder = metrics_recorder(&args.metrics, &plan, horizon, &run_id, args.quiet);
    // Served from a runtime of its own while the simulator runs on this thread.
    let served = match (&recorder, metrics_addr(&args.metrics, &plan)) {
        (Some(r), Some(addr)) => {
            let rt = runtime()?;
            serve_metrics(&rt, r.metrics.clone(), addr, args.quiet).map(|_| rt)
        }
        _ => None,
    };
    let started = Instant::now();
    let log_path = dir.join("events.jsonl");
    let mut writer = EventLogWriter::create(&log_path)?;
    // Simulated time has no wall clock: 0 keeps the log a pure function of workload and seed.
    let header = shard_header(run_header(&plan, last_offset, &run_id, 0), args.shard);
    writer.append(&header)?;
    // On disk at once: a run killed in its first second still leaves a log that names it.
    writer.flush()?;
    // The simulator emits in time order, so events go straight to the log and the analyzer: nothing is held.
    let mut analyzer = analysis::Analyzer::default();
    analyzer.push(&header);
    if let Some(r) = &mut recorder {
        r.see(&header);
    }
    let mut write_error = None;
    let stop = stop_on_signal();
    // Thresholds with `abort_on_fail` are checked on the results so far, at most 100 times in the run.
    let aborting = crate::gates::aborting(&thresholds);
    let check_every = (horizon / 100).max(60_000_000);
    let mut next_check = check_every;
    let mut aborted: Option<String> = None;
    // A shard simulates the whole stack (the cluster answers to all the load) and keeps its own messages' events
    // and the shared ones.
    let shard = args.shard;
    let outcome = crate::sim::simulate_until(&plan, &stop, |e| {
        if shard.is_some_and(|s| s.owns_event(&e.kind) == Some(false)) {
            return;
        }
        if write_error.is_none()
            && let Err(err) = writer.append(&e)
        {
            write_error = Some(err);
        }
        analyzer.push(&e);
        if let Some(r) = &mut recorder {
            r.see(&e);
        }
        if !aborting.is_empty() && aborted.is_none() && e.t_us >= next_check {
            next_check = e.t_us + check_every;
            if let Some(why) =
                crate::gates::first_abort(&aborting, &analyzer.clone().finish(), e.t_us)
            {
                stop.request(format!("threshold {why}; abort_on_fail"));
                aborted = Some(why);
            }
        }
    });
    if let Some(e) = write_error {
        return Err(e.into());
    }
    writer.finish()?;
    let simulated_in = started.elapsed();
    finish_metrics(recorder.as_mut(), args)?;
    std::fs::write(dir.join("workload.toml"), plan.effective_workload())?;
    let mut report = analyzer.finish();
    report.thresholds = crate::gates::evaluate(&thresholds, &report);
    write_and_print(&report, &dir, args.quiet, |files| {
        format!(
            "simulated {} in {} ({} events) · results in {} ({} files)",
            crate::report::human_duration(outcome.end_us),
            crate::units::human_us(simulated_in.as_micros() as u64),
            outcome.events + 1,
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
fn metrics_addr(args: &crate::cli::MetricsArgs, plan: &Plan) -> Option<std::net::SocketAddr> {
    args.metrics_addr.or(plan.metrics_addr)
}

/// Where the run's metrics are pushed by OTLP: `--otlp-endpoint`, else `[run] otlp_endpoint`.
fn otlp_endpoint<'a>(args: &'a crate::cli::MetricsArgs, plan: &'a Plan) -> Option<&'a str> {
    args.otlp_endpoint
        .as_deref()
        .or(plan.otlp_endpoint.as_deref())
}

/// The most samples a metrics file of a simulated run may hold: 10,000 snapshots of ~500 series is about 400 MB.
const MAX_METRICS_SAMPLES: u64 = 10_000;

/// Checks `--metrics-*` and `[run] metrics_addr` before anything runs (exit 2): a served address that is not
/// loopback needs `--metrics-allow-remote`; a metrics file must be a file in a folder that exists; its interval
/// is at least a second, and a simulated run (`horizon_us`, its planned length; 0 for a live run) gets at most
/// [`MAX_METRICS_SAMPLES`] samples.
fn check_metrics(
    args: &crate::cli::MetricsArgs,
    plan: &Plan,
    horizon_us: u64,
) -> anyhow::Result<()> {
    if let Some(a) = metrics_addr(args, plan) {
        crate::metrics::check_addr(a, args.metrics_allow_remote)?;
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
        crate::metrics::otlp::endpoint(url, args.metrics_allow_remote)?;
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
            crate::units::Micros(crate::metrics::otlp::DEFAULT_INTERVAL.as_micros() as u64)
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
fn metrics_recorder(
    args: &crate::cli::MetricsArgs,
    plan: &Plan,
    horizon_us: u64,
    run_id: &str,
    quiet: bool,
) -> Option<crate::metrics::Recorder> {
    let otlp = otlp_endpoint(args, plan);
    if metrics_addr(args, plan).is_none() && args.metrics_file.is_none() && otlp.is_none() {
        return None;
    }
    // An OTLP push that cannot be set up (a malformed OTEL_EXPORTER_OTLP_* variable) is one warning.
    let push = otlp
        .and_then(|u| crate::metrics::otlp::endpoint(u, args.metrics_allow_remote).ok())
        .and_then(|url| {
            let interval = args
                .otlp_interval
                .map_or(crate::metrics::otlp::DEFAULT_INTERVAL, |i| {
                    std::time::Duration::from_micros(i.0)
                });
            crate::metrics::otlp::Push::start(&url, interval, run_id)
                .inspect_err(|e| {
                    crate::logs::note(
                        &format!("warning: {e}\n    the run goes on without pushing metrics"),
                        "WARNING",
                    )
                })
                .ok()
        });
    let mut metrics = crate::metrics::RunMetrics::for_run(Some(run_id));
    if let Some(p) = &push {
        metrics = metrics.with_otlp(&p.meter());
    }
    let mut r = crate::metrics::Recorder::new(std::sync::Arc::new(metrics));
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
fn serve_metrics(
    rt: &tokio::runtime::Runtime,
    metrics: std::sync::Arc<crate::metrics::RunMetrics>,
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
            Some(rt.spawn(crate::metrics::serve(listener, render)))
        }
        Err(error) => {
            crate::note!(
                "warning: {}\n    the run goes on without serving metrics",
                crate::metrics::Error::BindFailed { addr, error }
            );
            None
        }
    }
}

/// Writes `--metrics-file`, if asked for.
fn finish_metrics(
    recorder: Option<&mut crate::metrics::Recorder>,
    args: &RunArgs,
) -> anyhow::Result<()> {
    let Some(r) = recorder else {
        return Ok(());
    };
    if let Some((url, pushed)) = r.finish_push()
        && (pushed.failures > 0 || !args.quiet)
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
        && !args.quiet
    {
        crate::note!("metrics written to {}", path.display());
    }
    Ok(())
}

/// Keeps the metrics endpoint up for `--metrics-linger` after the run, so a last scrape sees the final counts.
fn linger(rt: &tokio::runtime::Runtime, args: &crate::cli::MetricsArgs) {
    if let Some(d) = args.metrics_linger.filter(|d| d.0 > 0) {
        let d = std::time::Duration::from_micros(d.0);
        rt.block_on(async move { tokio::time::sleep(d).await });
    }
}

/// The workload's thresholds, plus those of `--gates FILE`.
fn run_thresholds(plan: &Plan, args: &RunArgs) -> anyhow::Result<Vec<crate::gates::Threshold>> {
    let mut thresholds = plan.thresholds.clone();
    if let Some(gates) = &args.gates {
        let streams: Vec<String> = plan.streams.iter().map(|s| s.name.clone()).collect();
        thresholds.extend(crate::gates::load_file(gates, &streams)?);
    }
    Ok(thresholds)
}

/// A real-time run against Pub/Sub (`emulator` or `gcp`): see `live`.
fn run_live(args: &RunArgs, plan: &Plan) -> anyhow::Result<ExitStatus> {
    let thresholds = run_thresholds(plan, args)?;
    let items = schedule::Items::Plan(args.shard);
    let mut opts = crate::live::LiveOptions {
        project: args.project.clone(),
        emulator_host: args.emulator_host.clone(),
        create_topics: if args.no_create_topics {
            Some(false)
        } else if args.create_topics {
            Some(true)
        } else {
            None
        },
        progress: !args.no_progress && !args.quiet,
        shard: args.shard,
        cluster: args.cluster.resolve(plan.cluster.as_ref()),
        metrics: None,
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
    let stop = stop_on_signal();
    let rt = runtime()?;
    // Connect and set up first: an unreachable Pub/Sub fails here, before the results folder exists. A signal
    // meanwhile (say, during a long --require-zero wait) ends it with nothing written.
    let prepared = rt.block_on(async {
        tokio::select! {
            p = crate::live::prepare(plan, &opts) => p.map(Some),
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
    let recorder = metrics_recorder(&args.metrics, plan, 0, &run_id, args.quiet);
    let served = match (&recorder, metrics_addr(&args.metrics, plan)) {
        (Some(r), Some(addr)) => serve_metrics(&rt, r.metrics.clone(), addr, args.quiet),
        _ => None,
    };
    let recorder = recorder.map(|r| std::sync::Arc::new(std::sync::Mutex::new(r)));
    opts.metrics = recorder.clone();
    if !args.quiet {
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
    let outcome = match rt.block_on(crate::live::run(
        plan,
        &items,
        &run_id,
        &dir,
        prepared,
        &opts,
        stop.clone(),
    )) {
        Ok(o) => o,
        Err(e) => {
            // A missed start barrier wrote nothing: the empty folder goes, so the shard can be run again.
            if matches!(e, crate::live::LiveError::MissedStart { .. }) {
                let _ = std::fs::remove_dir(&dir);
            }
            return Err(e.into());
        }
    };
    if let Some(r) = &recorder {
        finish_metrics(Some(&mut r.lock().unwrap_or_else(|p| p.into_inner())), args)?;
    }
    if served.is_some() {
        linger(&rt, &args.metrics);
    }
    drop(rt);
    std::fs::write(dir.join("workload.toml"), plan.effective_workload())?;
    let (mut report, _, _) = analyze_results(&dir)?;
    report.thresholds = crate::gates::evaluate(&thresholds, &report);
    write_and_print(&report, &dir, args.quiet, |files| {
        format!(
            "ran {} live ({} events, {} lost, pacer p99 lateness {}) · results in {} ({} files)",
            crate::units::human_us(outcome.elapsed.as_micros() as u64),
            outcome.events,
            outcome.lost,
            crate::units::human_us(outcome.lateness_p99_us),
            dir.display(),
            files + 2
        )
    })?;
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

fn gate_status(report: &RunReport) -> ExitStatus {
    if report.failed_thresholds() > 0 {
        ExitStatus::GateFailed
    } else {
        ExitStatus::Ok
    }
}

/// A flag set by the first Ctrl-C (SIGINT) or SIGTERM, so a run can stop cleanly and still write its results.
/// A second signal is left to its default action (terminate at once); `events.jsonl` is then still readable.
fn stop_on_signal() -> std::sync::Arc<crate::sim::Stop> {
    let stop = std::sync::Arc::new(crate::sim::Stop::default());
    let flag = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                // Once tokio handles a signal it keeps handling it, so the second one must be acted on here: it
                // ends the process at once, with the shell's code for it (the log is flushed every second).
                #[cfg(unix)]
                {
                    use tokio::signal::unix::{SignalKind, signal};
                    let (Ok(mut int), Ok(mut term)) = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                    ) else {
                        return;
                    };
                    let first = tokio::select! {
                        _ = int.recv() => SIGINT,
                        _ = term.recv() => SIGTERM,
                    };
                    crate::note!(
                        "stopping: writing partial results (press Ctrl-C again to abort at once)"
                    );
                    flag.request_signal(first, "interrupted by a signal (Ctrl-C or SIGTERM)");
                    let second = tokio::select! {
                        _ = int.recv() => SIGINT,
                        _ = term.recv() => SIGTERM,
                    };
                    crate::note!(
                        "aborted by a second signal; the results folder holds what was logged"
                    );
                    std::process::exit(128 + second);
                }
                #[cfg(not(unix))]
                {
                    let _ = tokio::signal::ctrl_c().await;
                    crate::note!("stopping: writing partial results");
                    flag.request_signal(SIGINT, "interrupted by a signal (Ctrl-C)");
                    let _ = tokio::signal::ctrl_c().await;
                    std::process::exit(128 + SIGINT);
                }
            });
        });
    if let Err(e) = spawned {
        tracing::warn!("no signal handling for this run: {e}");
    }
    stop
}

/// Writes every output of `report` into `dir` and, unless quiet, prints the summary with a closing line built from
/// the number of files written.
fn write_and_print(
    report: &RunReport,
    dir: &Path,
    quiet: bool,
    closing: impl FnOnce(usize) -> String,
) -> anyhow::Result<()> {
    let files = report::write_all(report, dir)?;
    if !quiet {
        print_report(report, &closing(files.len()))?;
    }
    Ok(())
}

/// The terminal summary, then one closing line. Coloured as the conventions say (anstream, as clap does):
/// `NO_COLOR` set turns colour off, `CLICOLOR_FORCE` on, `CLICOLOR=0` off; otherwise only on a terminal.
fn print_report(report: &RunReport, closing: &str) -> std::io::Result<()> {
    let color = anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
    let mut stdout = std::io::stdout().lock();
    crate::unless_closed(
        write!(stdout, "{}", report::render_terminal(report, color))
            .and_then(|()| writeln!(stdout, "\n{closing}")),
    )
}

/// The `run_started` event that opens every event log.
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
        },
    )
}

/// Runs a plan through the simulator in memory: the header, then every simulated event.
pub fn simulate_events(plan: &Plan, run_id: &str) -> Vec<Event> {
    let mut events = vec![run_header(plan, schedule::last_offset_of(plan), run_id, 0)];
    crate::sim::simulate(plan, |e| events.push(e));
    events
}

/// The results folder of `run`: `--run-id` (with a shard's suffix), else `<time>-<workload>` made again if taken.
fn run_results_dir(plan: &Plan, args: &RunArgs) -> anyhow::Result<(String, PathBuf)> {
    let generate = || run_id_of(plan, args);
    create_results_dir(
        &args.out,
        generate(),
        args.run_id.is_none().then_some(&generate),
        args.force,
    )
}

/// The results folder of a command whose generated run id is `<time>-<name>` (`watch`, `import`), or `--run-id`.
fn stamped_results_dir(
    out: &Path,
    chosen: &Option<String>,
    name: &str,
    force: bool,
) -> anyhow::Result<(String, PathBuf)> {
    match chosen {
        Some(id) => create_results_dir(out, id.clone(), None, force),
        None => create_results_dir(out, stamped(name), Some(&|| stamped(name)), force),
    }
}

/// Creates the results folder `<out>/<run_id>` atomically (`mkdir`, which fails when the folder exists), so that
/// of two runs racing for one folder exactly one gets it. When the folder exists: `--force` replaces it; a
/// generated id (`regenerate` given) is made again, a millisecond later; a chosen id is an error with the fix.
/// Returns the run id and the folder used.
fn create_results_dir(
    out: &Path,
    mut run_id: String,
    regenerate: Option<&dyn Fn() -> String>,
    force: bool,
) -> anyhow::Result<(String, PathBuf)> {
    for _ in 0..1_000 {
        let dir = out.join(&run_id);
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create results folder {}", parent.display()))?;
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((run_id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if force {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("cannot replace {}", dir.display()))?;
                } else if let Some(next) = regenerate {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    run_id = next();
                } else {
                    bail!(
                        "results folder {} already exists\n    fix: pass --force to replace it, or --run-id to name another",
                        dir.display()
                    );
                }
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create results folder {}", dir.display()));
            }
        }
    }
    bail!(
        "could not create a results folder under {} for run {run_id}\n    fix: pass --run-id to name one",
        out.display()
    )
}

/// Analyses a results folder (or an events.jsonl) from its log; the log's own warnings come first.
pub fn analyze_results(path: &Path) -> anyhow::Result<(RunReport, PathBuf, eventlog::ReadReport)> {
    let (dir, log): (PathBuf, PathBuf) = if path.is_dir() {
        (path.to_path_buf(), path.join("events.jsonl"))
    } else {
        (
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
            path.to_path_buf(),
        )
    };
    let mut stream = analysis::Reordering::new(REORDER_WINDOW_US);
    let read = eventlog::read_with(&log, |e| stream.push(e))?;
    let mut report = stream.finish();
    let mut warnings = read.warnings();
    warnings.append(&mut report.warnings);
    report.warnings = warnings;
    Ok((report, dir, read))
}

fn compare(args: &CompareArgs) -> anyhow::Result<ExitStatus> {
    let (base, _, _) = analyze_results(&args.base)?;
    let (current, _, _) = analyze_results(&args.current)?;
    if !(args.percentile > 0.0 && args.percentile <= 100.0) {
        bail!(
            "--percentile {} must be above 0 and at most 100",
            args.percentile
        );
    }
    let tolerance = args.fail_on_regression.unwrap_or(0.10);
    let c = crate::compare::compare(&base, &current, args.percentile, tolerance);
    let table = crate::compare::render(&c);
    match args.format {
        crate::cli::OutputFormat::Json => crate::say!("{}", serde_json::to_string(&c)?)?,
        crate::cli::OutputFormat::Text => {
            crate::unless_closed(write!(std::io::stdout().lock(), "{table}"))?
        }
        crate::cli::OutputFormat::Csv => {
            bail!("compare prints text or json\n    fix: `-o json`")
        }
    }
    if let Some(md) = &args.markdown {
        std::fs::write(md, &table).with_context(|| format!("cannot write {}", md.display()))?;
    }
    if let Some(path) = &args.junit {
        let suite = crate::report::junit::comparison_suite(
            "imagen-load.compare",
            &c,
            args.fail_on_regression.is_some(),
        );
        std::fs::write(path, crate::report::junit::render_suite(&suite))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(
        if args.fail_on_regression.is_some() && c.regressions() > 0 {
            ExitStatus::GateFailed
        } else {
            ExitStatus::Ok
        },
    )
}

fn whatif(args: &WhatifArgs) -> anyhow::Result<ExitStatus> {
    use crate::whatif;
    let plan = load_plan(&args.workload)?;
    let streams: Vec<String> = plan.streams.iter().map(|s| s.name.clone()).collect();
    let pipelines: Vec<crate::event::PipelineNames> =
        plan.streams.iter().map(|s| s.names()).collect();
    if !(0.0..=24.0).contains(&args.traffic_hours_per_day) {
        bail!(
            "--traffic-hours-per-day {} must be between 0 and 24",
            args.traffic_hours_per_day
        );
    }
    let specs: Vec<String> = if args.setups.is_empty() {
        vec![
            "all-cold".into(),
            format!("hybrid:{}", streams[0]),
            "always-on".into(),
        ]
    } else {
        args.setups.clone()
    };
    let mut setups = specs
        .iter()
        .map(|s| whatif::setup(s, &pipelines))
        .collect::<Result<Vec<_>, _>>()?;
    // A sweep goes on top of every setup given (3 setups × 5 values are 15 simulations, run in parallel), or of
    // all-cold when none is.
    if let Some(sweep) = &args.sweep {
        let bases = if args.setups.is_empty() {
            vec![setups.swap_remove(0)]
        } else {
            setups
        };
        let named = bases.len() > 1;
        setups = Vec::new();
        for base in &bases {
            for mut s in whatif::sweep(sweep, base, &streams)? {
                if named {
                    s.name = format!("{} · {}", base.name, s.name);
                }
                setups.push(s);
            }
        }
    }
    let mut base: Vec<Override> = args
        .workload
        .overrides
        .iter()
        .map(|o| o.parse::<Override>().map_err(|m| anyhow::anyhow!(m)))
        .collect::<anyhow::Result<_>>()?;
    if let Some(seed) = args.workload.seed {
        base.push(
            format!("run.seed={seed}")
                .parse()
                .map_err(|m: String| anyhow::anyhow!(m))?,
        );
    }
    let w = whatif::run(
        &args.workload.workload,
        &base,
        &setups,
        args.budget.0,
        args.traffic_hours_per_day,
    )?;
    match args.format {
        crate::cli::WhatifFormat::Table => {
            crate::unless_closed(write!(std::io::stdout().lock(), "{}", whatif::markdown(&w)))?
        }
        crate::cli::WhatifFormat::Json => {
            for n in &w.notes {
                crate::note!("{n}");
            }
            crate::say!("{}", serde_json::to_string_pretty(&w.rows)?)?;
        }
    }
    if let Some(path) = &args.html {
        std::fs::write(path, whatif::html(&w, args.sweep.is_some()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitStatus::Ok)
}

fn import(args: &ImportArgs) -> anyhow::Result<ExitStatus> {
    let inputs = args
        .dumps
        .iter()
        .map(|p| {
            std::fs::File::open(p)
                .map(|f| crate::cluster::import::Input {
                    name: p.display().to_string(),
                    reader: Box::new(f),
                })
                .with_context(|| format!("cannot read {}", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let imported = crate::cluster::import::import(inputs, args.price_per_gpu_hour_usd)?;
    let (run_id, dir) = stamped_results_dir(&args.out, &args.run_id, "import", args.force)?;
    let mut writer = EventLogWriter::create(&dir.join("events.jsonl"))?;
    let mut analyzer = analysis::Analyzer::default();
    for e in &imported.events {
        writer.append(e)?;
        analyzer.push(e);
    }
    writer.finish()?;
    let mut report = analyzer.finish();
    report.run.run_id = run_id;
    if !imported.unparsed.is_empty() {
        let total: u64 = imported.unparsed.values().sum();
        let by_reason: Vec<String> = imported
            .unparsed
            .iter()
            .map(|(r, n)| format!("{r} ({n})"))
            .collect();
        report.warnings.push(format!(
            "{total} event messages were not recognised and are kept raw in the dump: {}",
            by_reason.join(", ")
        ));
    }
    write_and_print(&report, &dir, args.quiet, |files| {
        format!(
            "imported {} events from the dump ({} deployments) · results in {} ({} files)",
            imported.events.len(),
            imported.deployments.len(),
            dir.display(),
            files + 1
        )
    })?;
    Ok(ExitStatus::Ok)
}

fn calibrate(args: &CalibrateArgs) -> anyhow::Result<ExitStatus> {
    let (report, dir, _) = analyze_results(&args.results)?;
    let today = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let c = crate::calibrate::calibrate(&report, &today);
    // By default beside the run it came from, not into the repository's fixtures.
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| dir.join("calibrated-profile.toml"));
    if out.exists() && !args.force {
        bail!(
            "{} already exists\n    fix: pass --force to replace it, or --out to write elsewhere",
            out.display()
        );
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&out, &c.text).with_context(|| format!("cannot write {}", out.display()))?;
    crate::say!(
        "calibrated {} parameters from run `{}`:",
        c.used.len(),
        report.run.run_id
    )?;
    for u in &c.used {
        crate::say!("  {u}")?;
    }
    if !c.skipped.is_empty() {
        crate::say!("kept as in the base profile:")?;
        for s in &c.skipped {
            crate::say!("  {s}")?;
        }
    }
    crate::say!(
        "wrote {} (use it with `[sim] profile = \"{}\"`)",
        out.display(),
        out.display()
    )?;
    Ok(ExitStatus::Ok)
}

fn trend_report(args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    use crate::report::trends;
    let (runs, skipped) = trends::collect(&args.paths);
    for s in &skipped {
        crate::note!("skipped {s}");
    }
    // Only like runs make a trend: the newest complete run's workload and target; the rest are listed apart.
    let found = runs.len();
    let (runs, set_apart) = trends::comparable(runs);
    for a in &set_apart {
        crate::note!("set apart {a}");
    }
    if runs.is_empty() && found > 0 {
        bail!(
            "every run found was interrupted: no night to report\n    fix: pass folders of complete runs"
        );
    }
    if runs.is_empty() {
        bail!(
            "no results folder with a summary.json under {}\n    fix: pass results folders, or the folder that holds them",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let baseline = match &args.baseline {
        Some(id) => runs
            .iter()
            .position(|r| &r.run.run_id == id)
            .with_context(|| match set_apart.iter().find(|a| a.starts_with(&format!("`{id}`"))) {
                Some(why) => format!("run {why}, so it cannot be the baseline\n    fix: choose a complete run of the same workload and target"),
                None => format!("no run `{id}` among the {} comparable runs", runs.len()),
            })?,
        None => 0,
    };
    let n = runs.len();
    let analyze = |p: &Path| {
        analyze_results(p)
            .ok()
            .filter(|(r, _, _)| {
                r.series.get("e2e_latency", "all", None).is_some() || !r.pods.is_empty()
            })
            .map(|(r, _, _)| r)
    };
    let last = &runs[n - 1].dir;
    let vs_previous = (n >= 2)
        .then(|| trends::compare_runs(&runs[n - 2].dir, last, &analyze))
        .flatten();
    let vs_baseline = (baseline != n - 1)
        .then(|| trends::compare_runs(&runs[baseline].dir, last, &analyze))
        .flatten();
    let t = trends::Trends {
        runs: &runs,
        set_apart: &set_apart,
        baseline,
        vs_previous,
        vs_baseline,
    };
    let text = if args.out.extension().is_some_and(|e| e == "md") {
        trends::markdown(&t)
    } else {
        trends::html(&t)
    };
    std::fs::write(&args.out, text)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let regressions = t.vs_previous.as_ref().map_or(0, |c| c.regressions())
        + t.vs_baseline.as_ref().map_or(0, |c| c.regressions());
    if let Some(path) = &args.junit {
        use crate::report::junit;
        let suites: Vec<junit::Suite> = [
            ("imagen-load.report.vs_previous", &t.vs_previous),
            ("imagen-load.report.vs_baseline", &t.vs_baseline),
        ]
        .into_iter()
        .filter_map(|(name, c)| {
            c.as_ref()
                .map(|c| junit::comparison_suite(name, c, args.fail_on_regression))
        })
        .collect();
        std::fs::write(path, junit::render_suites(&suites))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    crate::say!(
        "{} runs · {regressions} regression(s) in the last run · wrote {}",
        n,
        args.out.display()
    )?;
    Ok(if args.fail_on_regression && regressions > 0 {
        ExitStatus::GateFailed
    } else {
        ExitStatus::Ok
    })
}

/// How far out of time order a log's events may be and still be analysed in order.
pub const REORDER_WINDOW_US: u64 = 60_000_000;

fn merge(args: &MergeArgs) -> anyhow::Result<ExitStatus> {
    let shards = crate::merge::inspect(&args.shards, args.partial)?;
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| crate::merge::base_run_id(&shards[0].run_id).to_string());
    let (run_id, dir) = create_results_dir(&args.out, run_id, None, args.force)?;
    let merged = crate::merge::merge(&shards, &run_id, &dir.join("events.jsonl"))?;
    if let Ok(workload) = std::fs::read(shards[0].dir.join("workload.toml")) {
        std::fs::write(dir.join("workload.toml"), workload)?;
    }
    let (mut report, _, _) = analyze_results(&dir)?;
    if shards.len() < shards[0].shard.count as usize {
        report.warnings.push(format!(
            "merged {} of {} shards (--partial): the report covers only their messages",
            shards.len(),
            shards[0].shard.count
        ));
    }
    if let Some(gates) = &args.gates {
        let thresholds = crate::gates::load_file(gates, &report.run.streams)?;
        report.thresholds = crate::gates::evaluate(&thresholds, &report);
    }
    write_and_print(&report, &dir, args.quiet, |files| {
        format!(
            "merged {} shards ({} events; {} duplicate or foreign events left out) · results in {} ({} files)",
            shards.len(),
            merged.events,
            merged.left_out,
            dir.display(),
            files + 2
        )
    })?;
    Ok(gate_status(&report))
}

fn analyze(args: &AnalyzeArgs) -> anyhow::Result<ExitStatus> {
    let (mut report, dir, read) = analyze_results(&args.results)?;
    let log = if args.results.is_dir() {
        args.results.join("events.jsonl")
    } else {
        args.results.clone()
    };
    if let Some(gates) = &args.gates {
        let thresholds = crate::gates::load_file(gates, &report.run.streams)?;
        report.thresholds = crate::gates::evaluate(&thresholds, &report);
    }
    write_and_print(&report, &dir, args.quiet, |files| {
        format!(
            "re-analysed {} ({} lines) · wrote {files} files in {}",
            log.display(),
            read.lines,
            dir.display()
        )
    })?;
    Ok(gate_status(&report))
}
