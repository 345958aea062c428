//! A live run against Pub/Sub (the `emulator` and `gcp` targets): connect, set up topics and subscriptions, start
//! the completion tracker and the backlog sampler, pace the workload into the official publisher, wait until every
//! message is completed or the deadline passes, report the rest as lost by id, and close the log. Every
//! observation goes through the run's one collector (`run::collector`): into `events.jsonl`, and into the
//! streaming analysis through the reordering window `analyze` uses, so the report is the one `analyze` gives of
//! the log; `abort_on_fail` thresholds are checked there as the run goes.

use crate::event::log as eventlog;
use crate::event::{Event, EventKind, Source};
use crate::observe::cluster::watch::{self, ZeroError};
use crate::observe::emulator;
use crate::observe::pubsub::backlog::{BacklogSampler, BacklogView, DEFAULT_PROMETHEUS_QUERY};
use crate::observe::pubsub::tracker::{Matcher, RunClock, Tracker};
use crate::observe::pubsub::{Connection, check_credentials};
use crate::plan::schedule;
use crate::plan::workload::{BacklogKind, ClusterPlan, Plan, TargetKind};
use crate::run::collector::{Clock, Collected, Collector, Order};
use crate::run::publisher::{PubsubTarget, Resources};
use crate::run::stop::Stop;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long an interrupted run still waits for the completions of messages in flight.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "target `gcp` needs a project\n    fix: set `project` in [target], pass --project, or set GOOGLE_CLOUD_PROJECT"
    )]
    NoProject,
    #[error("{0}")]
    Credentials(String),
    #[error(transparent)]
    Pubsub(#[from] crate::observe::pubsub::PubsubError),
    #[error(transparent)]
    Emulator(#[from] emulator::EmulatorError),
    #[error("cannot write the event log: {0}")]
    Log(#[from] eventlog::Error),
    #[error(transparent)]
    Watch(#[from] watch::WatchError),
    #[error("--require-zero: {0}")]
    NotAtZero(ZeroError),
    #[error(
        "--start-at {at}: that instant passed {late} before this run was ready to start, so its schedule cannot start with the others'\n    fix: give every shard a start time far enough ahead for all of them to connect (and reach zero, with --require-zero)"
    )]
    MissedStart { at: String, late: String },
    #[error(
        "the run is missing what it needs (checked before anything was created or published):\n{}\n{}",
        missing.iter().map(|m| format!("      - {m}")).collect::<Vec<_>>().join("\n"),
        fixes.iter().map(|f| format!("    fix: {f}")).collect::<Vec<_>>().join("\n")
    )]
    Preflight {
        missing: Vec<String>,
        fixes: Vec<String>,
    },
}

/// Flags that override `[target]`.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    pub project: Option<String>,
    pub emulator_host: Option<String>,
    pub create_topics: Option<bool>,
    /// Show the live progress line (or periodic lines when stderr is not a terminal).
    pub progress: bool,
    /// This run is one shard of the workload (`run --shard`).
    pub shard: Option<crate::plan::schedule::Shard>,
    /// Watch this Kubernetes cluster during the run (`[cluster]` with the flags on top).
    pub cluster: Option<ClusterPlan>,
    /// `run --start-at`: start the schedule at this wall-clock instant (Unix µs), so the shards of one run start
    /// theirs together.
    pub start_at_unix_us: Option<u64>,
    /// The run's thresholds: those with `abort_on_fail` are checked while it runs.
    pub thresholds: Vec<crate::plan::thresholds::Threshold>,
}

impl LiveOptions {
    /// The harness's subscription on the results topic. A shard has its own (`<name>-shard-I`): shards on
    /// one subscription would split the completions between them instead of each seeing its own.
    pub fn results_subscription(&self, plan: &Plan) -> String {
        let name = &plan.pubsub.results_subscription;
        match self.shard {
            Some(s) => format!("{name}-shard-{}", s.index),
            None => name.clone(),
        }
    }
}

/// Where a live run will go, resolved before anything is written.
pub struct Prepared {
    pub conn: Connection,
    pub create: bool,
    /// The built-in emulator, when the run started one.
    pub builtin: Option<emulator::Handle>,
    resources: Resources,
    /// The cluster's client and `[cluster]` with its namespace settled (flag, workload, kubeconfig, `imagen`).
    kube: Option<(kube::Client, ClusterPlan)>,
}

impl Prepared {
    pub fn describe(&self) -> String {
        match &self.builtin {
            Some(h) => format!("built-in emulator on {}", h.addr),
            None => self.conn.describe(),
        }
    }
}

/// Resolves the connection and sets up (or checks) topics and subscriptions. Fails before the results folder is
/// created, so an unreachable emulator leaves nothing half written.
pub async fn prepare(plan: &Plan, opts: &LiveOptions) -> Result<Prepared, LiveError> {
    let p = &plan.pubsub;
    let (conn, builtin) = match plan.target {
        TargetKind::Gcp => {
            let project = opts
                .project
                .clone()
                .or_else(|| p.project.clone())
                .or_else(|| std::env::var("GOOGLE_CLOUD_PROJECT").ok())
                .ok_or(LiveError::NoProject)?;
            check_credentials().map_err(LiveError::Credentials)?;
            crate::observe::pubsub::check_token()
                .await
                .map_err(LiveError::Credentials)?;
            (Connection::gcp(&project), None)
        }
        _ => {
            let project = opts
                .project
                .clone()
                .or_else(|| p.project.clone())
                .unwrap_or_else(|| "imagen-load".into());
            let host = opts
                .emulator_host
                .clone()
                .or_else(|| p.endpoint.clone())
                .or_else(|| {
                    std::env::var("PUBSUB_EMULATOR_HOST")
                        .ok()
                        .filter(|h| !h.is_empty())
                });
            match host {
                Some(h) => (Connection::emulator(&h, &project), None),
                None => {
                    let handle = emulator::start(([127, 0, 0, 1], 0).into()).await?;
                    (
                        Connection::emulator(&handle.endpoint(), &project),
                        Some(handle),
                    )
                }
            }
        }
    };
    let create = opts
        .create_topics
        .or(p.create_topics)
        .unwrap_or(plan.target != TargetKind::Gcp);
    let mut pairs: Vec<(String, String)> = plan
        .streams
        .iter()
        .map(|s| (s.topic.clone(), s.subscription.clone()))
        .collect();
    pairs.push((p.results_topic.clone(), opts.results_subscription(plan)));
    let resources = Resources {
        pairs,
        ack_deadline_s: (p.ack_deadline.0 / 1_000_000).clamp(10, 600) as i32,
    };
    // The cluster first: a watch this identity may not make fails in the preflight, before any topic is created.
    let kube = match &opts.cluster {
        Some(c) => {
            let (client, kube_namespace) =
                watch::client(c.context.as_deref(), c.kubeconfig.as_deref()).await?;
            // The namespace as kubectl would choose it, fixed once for the whole run.
            let mut c = c.clone();
            c.namespace = Some(watch::namespace_of(
                c.namespace.as_deref(),
                kube_namespace.as_deref(),
            ));
            Some((client, c))
        }
        None => None,
    };
    preflight(
        plan,
        &conn,
        kube.as_ref(),
        &opts.results_subscription(plan),
        create,
    )
    .await?;
    if create {
        let created = resources.ensure(&conn).await?;
        if !created.is_empty() {
            tracing::info!("created {}", created.join(", "));
        }
    } else {
        for (topic, _) in &resources.pairs {
            conn.check_topic(topic).await?;
        }
    }
    if let Some((client, c)) = &kube
        && let Some(scope) = c.require_zero
    {
        require_zero(client.clone(), c, scope, opts.progress).await?;
    }
    Ok(Prepared {
        conn,
        create,
        builtin,
        resources,
        kube,
    })
}

/// The autoscaler's view of the backlog the run samples: `[target] backlog`, by default the emulator's endpoint on
/// an emulator and none on `gcp`.
fn backlog_view(plan: &Plan, conn: &Connection) -> Option<BacklogView> {
    let p = &plan.pubsub;
    match p.backlog.unwrap_or(match plan.target {
        TargetKind::Gcp => BacklogKind::None,
        _ => BacklogKind::Emulator,
    }) {
        BacklogKind::None => None,
        BacklogKind::Emulator => match &conn.endpoint {
            crate::observe::pubsub::Endpoint::Emulator(url) => Some(BacklogView::Emulator {
                base_url: url.clone(),
            }),
            crate::observe::pubsub::Endpoint::Gcp => None,
        },
        BacklogKind::Prometheus => p.prometheus_url.clone().map(|url| BacklogView::Prometheus {
            url,
            query: p
                .prometheus_query
                .clone()
                .unwrap_or_else(|| DEFAULT_PROMETHEUS_QUERY.into()),
            adc: p.prometheus_uses_adc(),
        }),
        BacklogKind::CloudMonitoring => Some(BacklogView::CloudMonitoring {
            project: conn.project.clone(),
            endpoint: p.monitoring_endpoint.clone(),
        }),
    }
}

/// Before anything is created or published: may this identity publish to the topics and consume its results
/// `subscription` (on `gcp`: Pub/Sub's `testIamPermissions`), read the backlog view (one reading, as the sampler
/// makes it) and make the cluster watch (one `SelfSubjectAccessReview` per permission)? Everything missing is one
/// error ([`LiveError::Preflight`]); a check that could not be made is a warning, and the run goes on (the
/// clients, the sampler and the watchers report their own failures).
async fn preflight(
    plan: &Plan,
    conn: &Connection,
    kube: Option<&(kube::Client, ClusterPlan)>,
    subscription: &str,
    create: bool,
) -> Result<(), LiveError> {
    let mut missing = Vec::new();
    let mut fixes = Vec::new();
    if conn.endpoint == crate::observe::pubsub::Endpoint::Gcp {
        let topics: Vec<String> = plan.streams.iter().map(|s| s.topic.clone()).collect();
        let needs = crate::observe::pubsub::iam::needs(
            &conn.project,
            &topics,
            &plan.pubsub.results_topic,
            subscription,
            !create,
        );
        let mut denied = crate::observe::pubsub::iam::missing(&needs, None).await;
        if create && let Ok(d) = &mut denied {
            match crate::observe::pubsub::iam::missing_on_project(
                &conn.project,
                &crate::observe::pubsub::iam::CREATE,
                None,
            )
            .await
            {
                Ok(more) => d.extend(more),
                Err(e) => denied = Err(e),
            }
        }
        match denied {
            Ok(denied) if denied.is_empty() => {}
            Ok(denied) => {
                missing.extend(denied);
                fixes.push(format!(
                    "grant this identity roles/pubsub.publisher on the topics, roles/pubsub.subscriber on {subscription}{} (project {}; docs/gke.md, \"Workload Identity\"), and create what does not exist",
                    if create {
                        ", and roles/pubsub.editor to create them"
                    } else {
                        ", roles/pubsub.viewer to check they exist"
                    },
                    conn.project
                ));
            }
            Err(e) => crate::logs::note(
                &format!("warning: cannot check the Pub/Sub permissions ({e}); going on"),
                "WARNING",
            ),
        }
    }
    let first = plan
        .streams
        .first()
        .map(|s| conn.subscription_path(&s.subscription));
    if let (Some(view), Some(sub)) = (backlog_view(plan, conn), first)
        && !matches!(view, BacklogView::Emulator { .. })
    {
        match crate::observe::pubsub::backlog::check(&view, &sub).await {
            crate::observe::pubsub::backlog::Checked::Readable => {}
            crate::observe::pubsub::backlog::Checked::Denied(what) => {
                missing.push(format!("{what} (the backlog view, `{}`)", view.name()));
                fixes.push(match &view {
                    BacklogView::Prometheus { adc: false, .. } => "give the query API what it asks for (for Managed Prometheus, `[target] prometheus_auth = \"adc\"`), or set `[target] backlog = \"none\"`".to_string(),
                    _ => format!(
                        "grant roles/monitoring.viewer on project {} to this identity (gcloud projects add-iam-policy-binding {} --member=… --role=roles/monitoring.viewer), or set `[target] backlog = \"none\"`",
                        conn.project, conn.project
                    ),
                });
            }
            crate::observe::pubsub::backlog::Checked::Failed(why) => crate::logs::note(
                &format!(
                    "warning: the backlog view (`{}`) could not be read before the run: {why}\n    the run goes on and samples it",
                    view.name()
                ),
                "WARNING",
            ),
        }
    }
    if let Some((client, c)) = kube {
        let ns = c.namespace.as_deref().unwrap_or_default();
        let denied = watch::denied(client, ns).await;
        if !denied.is_empty() {
            missing.extend(denied.iter().map(ToString::to_string));
            fixes.push(watch::RBAC_FIX.into());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LiveError::Preflight { missing, fixes })
    }
}

/// The watch options of `[cluster]`.
pub fn watch_options(c: &ClusterPlan) -> watch::WatchOptions {
    watch::WatchOptions {
        namespace: watch::namespace_of(c.namespace.as_deref(), None),
        selector: c.selector.clone(),
        node_selector: c.node_selector.clone(),
    }
}

/// Waits until the cluster is at zero before anything is published (the watchers' events are not kept: the run
/// has not started).
async fn require_zero(
    client: kube::Client,
    c: &ClusterPlan,
    scope: watch::ZeroScope,
    say: bool,
) -> Result<(), LiveError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let now_us = crate::units::unix_now_us();
    let watching = watch::start(client, &watch_options(c), now_us, tx);
    let timeout = Duration::from_micros(c.zero_timeout.0);
    if say {
        crate::note!(
            "--require-zero: waiting up to {} for namespace {} to be at zero",
            humantime::format_duration(timeout),
            watch::namespace_of(c.namespace.as_deref(), None)
        );
    }
    let result = watching.wait_for_zero(scope, timeout).await;
    watching.stop().await;
    let _ = drain.await;
    result.map_err(LiveError::NotAtZero)
}

/// What the live run did: its collected events (the report, the metrics recorder, an abort) and the rest.
pub struct LiveOutcome {
    pub collected: Collected,
    pub interrupted: bool,
    pub reason: Option<String>,
    pub elapsed: Duration,
    pub lost: u64,
    pub lateness_p99_us: u64,
}

/// Runs the plan in real time against the prepared Pub/Sub; writes `dir/events.jsonl`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    plan: &Plan,
    items: &schedule::Items,
    run_id: &str,
    dir: &Path,
    prepared: Prepared,
    opts: &LiveOptions,
    recorder: Option<crate::outputs::metrics::Recorder>,
    stop: Arc<Stop>,
) -> Result<LiveOutcome, LiveError> {
    let p = &plan.pubsub;
    let conn = prepared.conn.clone();
    let topics: Vec<String> = plan.streams.iter().map(|s| s.topic.clone()).collect();
    let target = Arc::new(
        PubsubTarget::new(
            &conn,
            run_id,
            &topics,
            Duration::from_micros(p.publish_batch_delay.0),
            Duration::from_micros(p.publish_retry_budget.0),
            prepared.create.then(|| prepared.resources.clone()),
        )
        .await?,
    );
    // The start barrier: every shard given the same instant starts its schedule at it. One that is ready only
    // after it has passed would start apart from the others, so it stops, before anything is published.
    if let Some(at) = opts.start_at_unix_us {
        let now = crate::units::unix_now_us();
        if now > at {
            return Err(LiveError::MissedStart {
                at: crate::units::unix_us_rfc3339(at),
                late: crate::units::human_us(now - at),
            });
        }
        // Waited in steps, so a signal meanwhile ends the wait (and the run, with nothing published) at once.
        let until = Instant::now() + Duration::from_micros(at - now);
        while !stop.requested() && Instant::now() < until {
            tokio::time::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            )
            .await;
        }
    }
    // The schedule is read in passes (its end here, its messages per stream below, then as it is sent), never
    // held: an hour-long run at 50,000 messages a second would hold 180,000,000 items.
    let last_offset = items.last_offset(plan);
    // The messages each stream can complete (a shard's are a subset of the stream's sequence numbers). Counted
    // before the run's time zero: a pass over the schedule after it makes the first sends late. Measured at
    // 50,000/s for 10 s: the first send 34–53 ms late with this pass after time zero and an HTTP client always
    // built by the pacer, 1–2 ms with neither.
    let mut planned: std::collections::HashMap<String, u64> = Default::default();
    for item in items.iter(plan) {
        if let schedule::ItemKind::Message { seq } = item.kind {
            let n = planned
                .entry(plan.streams[item.stream as usize].name.clone())
                .or_default();
            *n = (*n).max(seq + 1);
        }
    }
    let wall_start_unix_us = crate::units::unix_now_us();
    let origin = Instant::now();
    let header = crate::run::shard_header(
        crate::run::run_header(plan, last_offset, run_id, wall_start_unix_us),
        opts.shard,
    );
    let deadline_us = match &header.kind {
        EventKind::RunStarted { deadline_us, .. } => *deadline_us,
        _ => unreachable!("a header"),
    };
    // Live producers report out of time order (worker-reported times, watch latency): analysed through the
    // window `analyze` uses, so the report is the one `analyze` gives of the same log.
    let collector = Collector::create(
        &dir.join("events.jsonl"),
        header,
        Order::Reordered {
            window_us: crate::analysis::REORDER_WINDOW_US,
        },
        recorder,
    )?
    .counting()
    .with_abort(
        &opts.thresholds,
        deadline_us + plan.drain.0,
        Clock::RealTime,
        stop.clone(),
    );
    let ledger = collector.ledger().expect("counting");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    // The harness's CPU use, once a second and at the end: whether a late pacer had CPU to spare.
    let cpu = crate::observe::host::CpuClock::start();
    let cpu_sampler =
        crate::observe::host::start_sampler(cpu, origin, Duration::from_secs(1), tx.clone());
    let collector = {
        let stop = stop.clone();
        // After every producer is done and its events are written: what is still open is lost.
        tokio::spawn(collector.collect(rx, move |open| {
            let now_us = origin.elapsed().as_micros() as u64;
            let used = Event::new(now_us, Source::Harness, cpu.sample());
            let interrupted = stop.requested();
            let finished = Event::new(
                now_us,
                Source::Harness,
                EventKind::RunFinished {
                    interrupted,
                    reason: interrupted.then(|| stop.reason()),
                },
            );
            // Made as they are written: a million lost messages are not a million events held at once.
            open.into_ids()
                .map(move |id| Event::new(now_us, Source::Harness, EventKind::Lost { id }))
                .chain([used, finished])
        }))
    };
    let clock = RunClock {
        origin,
        wall_start_unix_us,
    };
    let tracker = Tracker::start(
        conn.clone(),
        conn.subscription_path(&opts.results_subscription(plan)),
        match opts.shard {
            // The other shards' completions arrive too (each shard's subscription sees every result).
            Some(_) => Matcher::new(run_id, clock).with_siblings(&format!(
                "{}-shard-",
                crate::run::merge::base_run_id(run_id)
            )),
            None => Matcher::new(run_id, clock),
        }
        .with_plan(planned),
        tx.clone(),
    );
    let view = backlog_view(plan, &conn);
    let sampler = view.map(|v| {
        BacklogSampler::start(
            v,
            plan.streams
                .iter()
                .map(|s| conn.subscription_path(&s.subscription))
                .collect(),
            Duration::from_micros(p.backlog_interval.0.max(100_000)),
            origin,
            tx.clone(),
        )
    });
    let watching = prepared.kube.as_ref().map(|(client, c)| {
        watch::start(
            client.clone(),
            &watch_options(c),
            wall_start_unix_us,
            tx.clone(),
        )
    });
    let progress = opts.progress.then(|| {
        crate::run::progress::Progress::start(
            ledger.clone(),
            origin,
            Duration::from_micros(last_offset.0),
        )
    });
    // The pacer has a thread of its own, started here by the thread that blocks on the runtime (so at its
    // priority, above the runtime's threads); the answers are awaited on a task on the runtime's workers, next to
    // the publisher, the tracker and the collector.
    let stats = {
        let pacing = crate::run::runner::run_from(
            origin,
            Some(stop.clone()),
            plan,
            run_id,
            items.clone(),
            target.clone(),
            tx.clone(),
        );
        tokio::spawn(pacing).await.expect("the pacer task")
    };
    target.flush().await;
    // Wait for the completions: until nothing is open, the deadline, or (after a stop) the grace period.
    let deadline = origin + Duration::from_micros(deadline_us);
    let mut grace_until: Option<Instant> = None;
    loop {
        let open = ledger.lock().unwrap_or_else(|p| p.into_inner()).open.len();
        if open == 0 || Instant::now() >= deadline {
            break;
        }
        if stop.requested() {
            let until = *grace_until.get_or_insert_with(|| Instant::now() + INTERRUPT_GRACE);
            if Instant::now() >= until {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The scale-down half of the cycle: keep watching until the cluster is back at zero (bounded), unless stopped.
    if let (Some(w), Some(scope), Some(c)) = (
        &watching,
        opts.cluster.as_ref().and_then(|c| c.wait_for_zero),
        &opts.cluster,
    ) && !stop.requested()
    {
        let timeout = Duration::from_micros(c.zero_timeout.0);
        if opts.progress {
            crate::note!(
                "workload done; watching the scale-down until {} at zero (at most {})",
                match scope {
                    watch::ZeroScope::Replicas => "the replicas are",
                    watch::ZeroScope::Nodes => "the replicas and GPU nodes are",
                },
                humantime::format_duration(timeout)
            );
        }
        let stopped = async {
            while !stop.requested() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            r = w.wait_for_zero(scope, timeout) => if let Err(e) = r {
                tracing::warn!("--wait-for-zero: {e}");
            },
            _ = stopped => {}
        }
    }
    if let Some(w) = watching {
        let counts = w.stop().await;
        if counts.unparsed > 0 {
            tracing::info!(
                "{} Kubernetes event messages were not recognised (kept raw in the cluster)",
                counts.unparsed
            );
        }
    }
    // Stopping the tracker sends its closing count of ignored results.
    tracker.stop().await;
    if let Some(s) = sampler {
        s.stop().await;
    }
    cpu_sampler.abort();
    drop(target);
    drop(tx);
    let collected = collector.await.expect("collector task")?;
    if let Some(p) = progress {
        p.finish();
    }
    if let Some(h) = prepared.builtin {
        h.stop().await;
    }
    let lost = ledger.lock().unwrap_or_else(|p| p.into_inner()).lost;
    let interrupted = stop.requested();
    Ok(LiveOutcome {
        collected,
        interrupted,
        reason: interrupted.then(|| stop.reason()),
        elapsed: origin.elapsed(),
        lost,
        lateness_p99_us: stats.lateness_us.value_at_quantile(0.99),
    })
}
