//! The reference worker: what the local cluster deploys, and a template for real workers. It follows the worker
//! contract (docs/worker-contract.md): it pulls jobs from its subscription, loads a "model" once (a sampled
//! delay), "processes" each job (another sampled delay), publishes a completion with the job's correlation
//! attributes and its own timestamps to the results topic, and only then acknowledges the job. It reports its
//! own lifecycle (started, model loaded, stopping) on the results topic too, and serves `/healthz`, `/ready`
//! (after the model load) and `POST /warmup` for Kubernetes probes.

use crate::observe::pubsub::contract::{self, ATTR_EVENT, Report, ReportKind};
use crate::observe::pubsub::{Connection, PubsubError};
use crate::units::Dist;
use bytes::Bytes;
use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::model::Message;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// How long a stopping worker waits for the jobs in hand (Kubernetes' default termination grace is 30 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// How long the worker keeps trying to publish one result before it nacks the job (so Pub/Sub redelivers it):
/// the harness's own default `publish_retry_budget`.
pub const RESULT_PUBLISH_RETRY_BUDGET: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Pubsub(#[from] PubsubError),
    #[error(
        "cannot serve probes on {addr}: {source}\n    fix: choose another --http-port, or 0 for none"
    )]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub conn: Connection,
    pub subscription: String,
    pub results_topic: String,
    pub pipeline: String,
    pub pod: String,
    pub model_load: Dist,
    pub processing: Dist,
    /// Jobs processed at once (a GPU worker usually takes one).
    pub concurrency: usize,
    /// Load the model on the first job or `POST /warmup` instead of at start.
    pub lazy_load: bool,
    pub seed: u64,
    pub http: Option<SocketAddr>,
}

/// What a worker did, for its exit line.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub processed: AtomicU64,
    pub publish_failures: AtomicU64,
    /// Served at `/metrics` on the HTTP port.
    pub metrics: crate::outputs::metrics::WorkerMetrics,
}

fn unix_us() -> u64 {
    crate::units::unix_now_us()
}

struct Model {
    started_unix_us: u64,
    ready: watch::Sender<Option<u64>>,
    load: Dist,
    loading: tokio::sync::Mutex<()>,
    seed: u64,
}

impl Model {
    /// Loads once; later callers wait for the first load. Returns the model-ready time.
    async fn ensure_loaded(&self) -> u64 {
        if let Some(t) = *self.ready.borrow() {
            return t;
        }
        let _guard = self.loading.lock().await;
        if let Some(t) = *self.ready.borrow() {
            return t;
        }
        let mut rng = crate::units::SeededRng::seed_from_u64(self.seed);
        let d = self.load.sample(&mut rng);
        tracing::info!("loading the model ({d})");
        tokio::time::sleep(Duration::from_micros(d.0)).await;
        let t = unix_us();
        self.ready.send_replace(Some(t));
        t
    }

    fn ready_at(&self) -> Option<u64> {
        *self.ready.borrow()
    }
}

async fn publish_report(
    results: &Publisher,
    kind: ReportKind,
    attributes: BTreeMap<String, String>,
    report: &Report,
) -> Result<String, String> {
    let mut attributes = attributes;
    if kind != ReportKind::Completed {
        attributes.insert(ATTR_EVENT.to_string(), kind.as_str().to_string());
    }
    let body = serde_json::to_vec(report).map_err(|e| e.to_string())?;
    results
        .publish(Message::new().set_data(body).set_attributes(attributes))
        .await
        .map_err(|e| e.to_string())
}

async fn serve_probes(
    listener: tokio::net::TcpListener,
    model: Arc<Model>,
    stats: Arc<WorkerStats>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (model, stats) = (model.clone(), stats.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (model, stats) = (model.clone(), stats.clone());
                    async move {
                        let mut content_type = "application/json";
                        let (status, body) = match (req.method().as_str(), req.uri().path()) {
                            ("GET", "/metrics") => {
                                let accept = req
                                    .headers()
                                    .get(http::header::ACCEPT)
                                    .and_then(|v| v.to_str().ok());
                                let (body, ctype) = crate::outputs::metrics::exposition(
                                    stats.metrics.encode(),
                                    accept,
                                );
                                content_type = ctype;
                                (200, body)
                            }
                            ("GET", "/healthz") => (200, r#"{"status":"ok"}"#.to_string()),
                            ("GET", "/ready") => match model.ready_at() {
                                Some(_) => (200, r#"{"ready":true}"#.to_string()),
                                None => {
                                    (503, r#"{"ready":false,"why":"model loading"}"#.to_string())
                                }
                            },
                            ("POST", "/warmup") => {
                                let t = model.ensure_loaded().await;
                                (
                                    200,
                                    format!(
                                        r#"{{"ready":true,"model_load_ms":{}}}"#,
                                        t.saturating_sub(model.started_unix_us) / 1000
                                    ),
                                )
                            }
                            _ => (404, r#"{"error":"no such route"}"#.to_string()),
                        };
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .status(status)
                                .header("content-type", content_type)
                                .body(Full::new(Bytes::from(body)))
                                .expect("valid response"),
                        )
                    }
                });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Runs the worker until `stop` resolves; then stops taking jobs, finishes the ones in hand, reports `stopping`.
pub async fn run(
    cfg: WorkerConfig,
    stop: impl Future<Output = ()>,
) -> Result<Arc<WorkerStats>, WorkerError> {
    let started_unix_us = unix_us();
    let stats = Arc::new(WorkerStats::default());
    let model = Arc::new(Model {
        started_unix_us,
        ready: watch::channel(None).0,
        load: cfg.model_load.clone(),
        loading: tokio::sync::Mutex::new(()),
        seed: crate::units::derive_seed(cfg.seed, &[1]),
    });
    let probes = match cfg.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| WorkerError::Http { addr, source })?;
            tracing::info!("probes on http://{}", listener.local_addr().unwrap_or(addr));
            Some(tokio::spawn(serve_probes(
                listener,
                model.clone(),
                stats.clone(),
            )))
        }
        None => None,
    };
    let results = cfg
        .conn
        .publisher(
            &cfg.results_topic,
            Duration::from_millis(1),
            RESULT_PUBLISH_RETRY_BUDGET,
        )
        .await?;
    let me = Report {
        pod: cfg.pod.clone(),
        pipeline: Some(cfg.pipeline.clone()),
        started_unix_us: Some(started_unix_us),
        ..Default::default()
    };
    if let Err(e) = publish_report(&results, ReportKind::Started, BTreeMap::new(), &me).await {
        tracing::warn!("cannot report `started`: {e}");
    }
    let lifecycle = |model_ready: u64| Report {
        model_ready_unix_us: Some(model_ready),
        ..me.clone()
    };
    if !cfg.lazy_load {
        let t = model.ensure_loaded().await;
        stats.metrics.ready(t.saturating_sub(started_unix_us));
        if let Err(e) = publish_report(
            &results,
            ReportKind::ModelLoaded,
            BTreeMap::new(),
            &lifecycle(t),
        )
        .await
        {
            tracing::warn!("cannot report `model_loaded`: {e}");
        }
    }
    let subscriber = cfg.conn.subscriber().await?;
    let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut seq = 0u64;
    let mut pull_errors = 0u64;
    tokio::pin!(stop);
    'outer: loop {
        let mut stream = subscriber
            .subscribe(cfg.conn.subscription_path(&cfg.subscription))
            .set_max_outstanding_messages(cfg.concurrency.max(1) as i64)
            .build();
        loop {
            let next = tokio::select! {
                _ = &mut stop => break 'outer,
                n = stream.next() => n,
            };
            let (m, h) = match next {
                Some(Ok(x)) => x,
                Some(Err(e)) => {
                    // Said once, then every 20th time: a missing subscription is retried twice a second.
                    if pull_errors.is_multiple_of(20) {
                        tracing::warn!("pull failed: {e}; subscribing again every 0.5s");
                    }
                    pull_errors += 1;
                    break;
                }
                None => break,
            };
            pull_errors = 0;
            let received = unix_us();
            // The receipt, at once and without waiting for it: the harness counts redeliveries from receipts.
            {
                let job: BTreeMap<String, String> = m.attributes.clone().into_iter().collect();
                let receipt = Report {
                    received_unix_us: Some(received),
                    ..me.clone()
                };
                let results = results.clone();
                tokio::spawn(async move {
                    let _ = publish_report(
                        &results,
                        ReportKind::Received,
                        contract::correlation(&job),
                        &receipt,
                    )
                    .await;
                });
            }
            let permit = slots.clone().acquire_owned().await.expect("never closed");
            seq += 1;
            let (model, results, stats, processing) = (
                model.clone(),
                results.clone(),
                stats.clone(),
                cfg.processing.clone(),
            );
            let me = me.clone();
            let seed = crate::units::derive_seed(cfg.seed, &[2, seq]);
            tasks.spawn(async move {
                let _permit = permit;
                let was_ready = model.ready_at().is_some();
                let model_ready = model.ensure_loaded().await;
                if !was_ready {
                    stats
                        .metrics
                        .ready(model_ready.saturating_sub(model.started_unix_us));
                    let r = Report {
                        model_ready_unix_us: Some(model_ready),
                        ..me.clone()
                    };
                    let _ = publish_report(&results, ReportKind::ModelLoaded, BTreeMap::new(), &r)
                        .await;
                }
                let start = unix_us();
                let mut rng = crate::units::SeededRng::seed_from_u64(seed);
                let d = processing.sample(&mut rng);
                tokio::time::sleep(Duration::from_micros(d.0)).await;
                let end = unix_us();
                let job: BTreeMap<String, String> = m.attributes.into_iter().collect();
                let report = Report {
                    model_ready_unix_us: Some(model_ready),
                    received_unix_us: Some(received),
                    processing_start_unix_us: Some(start),
                    processing_end_unix_us: Some(end),
                    attempt: h.delivery_attempt().map(|a| a.max(1) as u32),
                    ..me
                };
                match publish_report(
                    &results,
                    ReportKind::Completed,
                    contract::correlation(&job),
                    &report,
                )
                .await
                {
                    Ok(_) => {
                        // Acknowledged only once the completion is safely published.
                        h.ack();
                        stats.processed.fetch_add(1, Ordering::Relaxed);
                        stats.metrics.job(
                            crate::outputs::metrics::JobOutcome::Completed,
                            Some(end.saturating_sub(start)),
                        );
                    }
                    Err(e) => {
                        tracing::warn!(
                            "cannot publish a completion ({e}); the job will be redelivered"
                        );
                        stats.publish_failures.fetch_add(1, Ordering::Relaxed);
                        stats.metrics.job(
                            crate::outputs::metrics::JobOutcome::Failed,
                            Some(end.saturating_sub(start)),
                        );
                        h.nack();
                    }
                }
            });
            while tasks.try_join_next().is_some() {}
        }
        tokio::select! {
            _ = &mut stop => break 'outer,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    // Say at once that this worker takes no more jobs (it is no longer capacity, as Kubernetes marks a deleted
    // pod), then finish what is in hand; bounded, since Pub/Sub may be gone (the publisher retries an unreachable
    // endpoint for as long as it is asked to). Jobs not acknowledged by then are redelivered.
    let bye = Report {
        model_ready_unix_us: model.ready_at(),
        ..me
    };
    let stopping = {
        let (results, bye) = (results.clone(), bye.clone());
        tokio::spawn(async move {
            publish_report(&results, ReportKind::Stopping, BTreeMap::new(), &bye).await
        })
    };
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("jobs still in hand after {SHUTDOWN_GRACE:?}: left for redelivery");
        tasks.abort_all();
    }
    let goodbye = async {
        let _ = stopping.await;
        results.flush().await;
    };
    if tokio::time::timeout(Duration::from_secs(5), goodbye)
        .await
        .is_err()
    {
        tracing::warn!("could not report `stopping` within 5s");
    }
    if let Some(p) = probes {
        p.abort();
    }
    Ok(stats)
}
