//! The long-running services: `emulator` (the built-in Pub/Sub), `worker` (the reference worker), `watch` (the
//! cluster, as events), `health`.

use super::*;

pub(super) fn serve_emulator(args: &EmulatorArgs) -> anyhow::Result<ExitStatus> {
    // Its threads yield to a pacer on the same machine, as the live run's own do: a run's pacer at 10,000/s was
    // late by 1.2 ms at p99 beside this emulator at the same priority, 0.36–0.56 ms with it lowered.
    live_runtime()?.block_on(async {
        let handle = crate::observe::emulator::start((args.host, args.port).into()).await?;
        crate::say!(
            "Pub/Sub emulator on {} (gRPC + REST); backlog at http://{}/backlog/SUBSCRIPTION\n\
             export PUBSUB_EMULATOR_HOST={}",
            handle.addr,
            handle.addr,
            handle.addr
        )?;
        crate::run::shutdown_signal().await;
        handle.stop().await;
        Ok(ExitStatus::Ok)
    })
}

pub(super) fn worker(args: WorkerArgs) -> anyhow::Result<ExitStatus> {
    let conn = match &args.emulator_host {
        Some(h) if !h.is_empty() => crate::observe::pubsub::Connection::emulator(h, &args.project),
        _ => {
            crate::observe::pubsub::check_credentials().map_err(|e| anyhow::anyhow!(e))?;
            crate::observe::pubsub::Connection::gcp(&args.project)
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
    let cfg = crate::observe::worker::WorkerConfig {
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
        let stats = crate::observe::worker::run(cfg, crate::run::shutdown_signal()).await?;
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

pub(super) fn watch(args: &WatchArgs) -> anyhow::Result<ExitStatus> {
    use crate::observe::cluster::watch;
    let rt = runtime()?;
    let (client, kube_namespace) = rt.block_on(watch::client(
        args.context.as_deref(),
        args.kubeconfig.as_deref(),
    ))?;
    let namespace = watch::namespace_of(args.namespace.as_deref(), kube_namespace.as_deref());
    rt.block_on(watch::check_permissions(&client, &namespace))?;
    let (run_id, dir) =
        stamped_results_dir(&args.results.out, &args.run_id, "watch", args.results.force)?;
    let stop = crate::run::stop_on_signal();
    let origin_unix_us = crate::units::unix_now_us();
    let started = std::time::Instant::now();
    let header = Event::new(
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
            timer_slack_us: None,
        },
    );
    // The watchers report out of time order: the collector analyses through analyze's reordering window.
    let collector = crate::run::collector::Collector::create(
        &dir.join("events.jsonl"),
        header,
        crate::run::collector::Order::Reordered {
            window_us: crate::analysis::REORDER_WINDOW_US,
        },
        None,
    )?;
    if !args.results.quiet {
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
    let (counts, mut report) = rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let finish = move |_| {
            vec![Event::new(
                started.elapsed().as_micros() as u64,
                Source::Harness,
                EventKind::RunFinished {
                    interrupted: false,
                    reason: None,
                },
            )]
        };
        let collector = tokio::spawn(collector.collect(rx, finish));
        let watching = watch::start(client, &opts, origin_unix_us, tx);
        while !stop.requested()
            && args
                .duration
                .is_none_or(|d| started.elapsed() < std::time::Duration::from_micros(d.0))
        {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let counts = watching.stop().await;
        let collected = collector.await.expect("collector task")?;
        anyhow::Ok((counts, collected.report))
    })?;
    if counts.unparsed > 0 {
        report.warnings.push(format!(
            "{} event messages were not recognised (kept raw in the cluster)",
            counts.unparsed
        ));
    }
    write_and_print(&report, &dir, args.results.quiet, |files| {
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

pub(super) fn health(args: &HealthArgs) -> anyhow::Result<ExitStatus> {
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
