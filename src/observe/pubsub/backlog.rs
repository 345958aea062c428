//! The backlog as the autoscaler sees it. KEDA scales on `num_undelivered_messages`, read from Cloud Monitoring
//! (legacy `gcp-pubsub` trigger), Managed Prometheus (`prometheus` trigger) or, in a local cluster, the built-in
//! emulator's backlog endpoint (`metrics-api` trigger). Those views lag the truth; sampling them during the run as
//! `Backlog` events with a `view` puts them beside the true backlog (published − completed) that the analysis
//! counts from the log, so the report shows how far behind the autoscaler was.

use crate::event::{Event, EventKind, Source};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Which view to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BacklogView {
    /// `GET {base}/backlog/{subscription}` on the built-in emulator.
    Emulator { base_url: String },
    /// Prometheus' HTTP API: `GET {url}/api/v1/query?query=...`, `{subscription}` in the query replaced by the
    /// subscription's short name; with `adc`, each request carries a bearer token from Application Default
    /// Credentials (Google Managed Prometheus' query frontend wants one).
    Prometheus {
        url: String,
        query: String,
        adc: bool,
    },
    /// Cloud Monitoring's `pubsub.googleapis.com/subscription/num_undelivered_messages`, at Cloud Monitoring's
    /// endpoint or `endpoint` (`[target] monitoring_endpoint`; a loopback `http://` one is a local stand-in and
    /// is called without credentials).
    CloudMonitoring {
        project: String,
        endpoint: Option<String>,
    },
}

/// Google Managed Prometheus' name for the Cloud Monitoring metric (what KEDA's `prometheus` trigger reads on GKE).
pub const DEFAULT_PROMETHEUS_QUERY: &str = r#"sum(pubsub_googleapis_com:subscription_num_undelivered_messages{subscription_id="{subscription}"})"#;

impl BacklogView {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Emulator { .. } => "emulator",
            Self::Prometheus { .. } => "prometheus",
            Self::CloudMonitoring { .. } => "cloud-monitoring",
        }
    }
}

fn short(sub: &str) -> &str {
    sub.rsplit('/').next().unwrap_or(sub)
}

/// Reads a Prometheus instant-query answer: the first sample's value, `None` for an empty result.
pub fn parse_prometheus(body: &serde_json::Value) -> Result<Option<f64>, String> {
    if body.get("status").and_then(|s| s.as_str()) != Some("success") {
        return Err(format!(
            "Prometheus answered {}",
            body.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("without status success")
        ));
    }
    let result = body
        .pointer("/data/result")
        .and_then(|r| r.as_array())
        .ok_or("no data.result in the answer")?;
    let Some(first) = result.first() else {
        return Ok(None);
    };
    let v = first
        .pointer("/value/1")
        .and_then(|v| v.as_str())
        .ok_or("the sample has no value")?;
    v.parse::<f64>()
        .map(Some)
        .map_err(|_| format!("the sample value `{v}` is not a number"))
}

struct Sampler {
    http: reqwest::Client,
    monitoring: Option<google_cloud_monitoring_v3::client::MetricService>,
    adc: Option<google_cloud_auth::credentials::Credentials>,
}

/// A loopback `http://` endpoint: a local stand-in for a Google API, called without credentials.
fn is_local(endpoint: &str) -> bool {
    ["http://127.", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| endpoint.starts_with(p))
}

/// One reading of a view: the backlog, and the time of the point it comes from where the view says.
type Reading = (u64, Option<std::time::SystemTime>);

impl Sampler {
    /// The `Authorization` header from Application Default Credentials (built once; the library caches and
    /// refreshes the token).
    async fn adc_headers(&mut self) -> Result<http::HeaderMap, String> {
        if self.adc.is_none() {
            self.adc = Some(
                google_cloud_auth::credentials::Builder::default()
                    .build()
                    .map_err(|e| format!("no Application Default Credentials: {e}"))?,
            );
        }
        let creds = self.adc.as_ref().expect("set above");
        match creds.headers(http::Extensions::new()).await {
            Ok(google_cloud_auth::credentials::CacheableResource::New { data, .. }) => Ok(data),
            Ok(google_cloud_auth::credentials::CacheableResource::NotModified) => {
                Err("Application Default Credentials gave no headers".into())
            }
            Err(e) => Err(format!(
                "Application Default Credentials gave no access token: {e}"
            )),
        }
    }

    async fn read(&mut self, view: &BacklogView, sub: &str) -> Result<Option<Reading>, String> {
        match view {
            BacklogView::Emulator { base_url } => {
                let url = format!("{base_url}/backlog/{sub}");
                let resp = self
                    .http
                    .get(&url)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                // Google's emulator has no backlog endpoint (only this project's does).
                if matches!(resp.status().as_u16(), 404 | 405 | 501) {
                    return Err(format!("{NO_ENDPOINT}: {url} answered {}", resp.status()));
                }
                let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
                match v.get("undelivered") {
                    Some(u) => Ok(u.as_u64().map(|d| (d, None))),
                    None => Err(format!(
                        "{NO_ENDPOINT}: {url} answered without `undelivered`"
                    )),
                }
            }
            BacklogView::Prometheus { url, query, adc } => {
                let q = query.replace("{subscription}", short(sub));
                let mut req = self
                    .http
                    .get(format!("{}/api/v1/query", url.trim_end_matches('/')))
                    .query(&[("query", q)])
                    .timeout(Duration::from_secs(10));
                if *adc {
                    req = req.headers(self.adc_headers().await?);
                }
                let resp = req.send().await.map_err(|e| e.to_string())?;
                if matches!(resp.status().as_u16(), 401 | 403) {
                    return Err(format!(
                        "{DENIED}{url} refused the query ({}){}",
                        resp.status(),
                        if *adc {
                            "; the account needs roles/monitoring.viewer on the project"
                        } else {
                            "; for Managed Prometheus set `[target] prometheus_auth = \"adc\"`"
                        }
                    ));
                }
                let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
                // An instant query's timestamp is when it was evaluated, not the sample's: no point time.
                Ok(parse_prometheus(&v)?.map(|f| (f.max(0.0).round() as u64, None)))
            }
            BacklogView::CloudMonitoring { project, endpoint } => {
                if self.monitoring.is_none() {
                    let mut b = google_cloud_monitoring_v3::client::MetricService::builder();
                    if let Some(e) = endpoint {
                        b = b.with_endpoint(e.clone());
                        if is_local(e) {
                            b = b.with_credentials(super::anonymous());
                        }
                    }
                    self.monitoring = Some(b.build().await.map_err(|e| e.to_string())?);
                }
                let client = self.monitoring.as_ref().expect("set above");
                let now = std::time::SystemTime::now();
                let from = now - Duration::from_secs(600);
                let ts = |t: std::time::SystemTime| {
                    google_cloud_wkt::Timestamp::try_from(t).map_err(|e| e.to_string())
                };
                let interval = google_cloud_monitoring_v3::model::TimeInterval::new()
                    .set_start_time(ts(from)?)
                    .set_end_time(ts(now)?);
                let resp = client
                    .list_time_series()
                    .set_name(format!("projects/{project}"))
                    .set_filter(format!(
                        r#"metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages" AND resource.labels.subscription_id="{}""#,
                        short(sub)
                    ))
                    .set_interval(interval)
                    .send()
                    .await
                    .map_err(|e| {
                        let denied = e.http_status_code() == Some(403)
                            || e.status().is_some_and(|s| {
                                s.code == google_cloud_gax::error::rpc::Code::PermissionDenied
                            });
                        if denied {
                            format!(
                                "{DENIED}monitoring.timeSeries.list on projects/{project} (Cloud Monitoring: {e}); the role roles/monitoring.viewer has it"
                            )
                        } else {
                            e.to_string()
                        }
                    })?;
                // Points come newest first; each carries its own interval, whose end is the instant it describes.
                let Some(point) = resp.time_series.first().and_then(|s| s.points.first()) else {
                    return Ok(None);
                };
                let at = point
                    .interval
                    .as_ref()
                    .and_then(|i| i.end_time)
                    .and_then(|t| std::time::SystemTime::try_from(t).ok());
                Ok(point
                    .value
                    .as_ref()
                    .and_then(|v| v.int64_value().copied())
                    .map(|v| (v.max(0) as u64, at)))
            }
        }
    }
}

/// What a sampler says when the emulator has no backlog endpoint.
const NO_ENDPOINT: &str = "no backlog endpoint";

/// How a reading refused for want of a permission begins (what follows names the permission).
const DENIED: &str = "permission denied: ";

/// What the preflight read of a view found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Read (a value or none yet).
    Readable,
    /// This identity may not read it: the permission, and where.
    Denied(String),
    /// It could not be read for another reason (unreachable, no endpoint): the sampler tries again during the
    /// run and says so.
    Failed(String),
}

/// The preflight of a backlog view: one reading of `subscription`, as the run's sampler makes it (same client,
/// same credentials), before anything is published.
pub async fn check(view: &BacklogView, subscription: &str) -> Checked {
    let mut sampler = Sampler {
        http: reqwest::Client::new(),
        monitoring: None,
        adc: None,
    };
    match sampler.read(view, subscription).await {
        Ok(_) => Checked::Readable,
        Err(e) => match e.strip_prefix(DENIED) {
            Some(what) => Checked::Denied(what.to_string()),
            None => Checked::Failed(e),
        },
    }
}

/// A running sampler.
pub struct BacklogSampler {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl BacklogSampler {
    /// Samples `view` for every subscription each `every`, stamping events against `origin`.
    pub fn start(
        view: BacklogView,
        subscriptions: Vec<String>,
        every: Duration,
        origin: Instant,
        events: mpsc::UnboundedSender<Event>,
    ) -> BacklogSampler {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut sampler = Sampler {
                http: reqwest::Client::new(),
                monitoring: None,
                adc: None,
            };
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failures = 0u64;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                for sub in &subscriptions {
                    let t_us = origin.elapsed().as_micros() as u64;
                    let asked = std::time::SystemTime::now();
                    match sampler.read(&view, sub).await {
                        Ok(Some((depth, at))) => {
                            // A point stamped after the question (clocks apart) is as fresh as it gets: age 0.
                            let point_age_us = at.map(|at| {
                                asked.duration_since(at).map_or(0, |d| d.as_micros() as u64)
                            });
                            let _ = events.send(Event::new(
                                t_us,
                                Source::Pubsub,
                                EventKind::Backlog {
                                    subscription: short(sub).to_string(),
                                    depth,
                                    view: Some(view.name().to_string()),
                                    point_age_us,
                                },
                            ));
                        }
                        Ok(None) => {}
                        Err(e) if e.starts_with(NO_ENDPOINT) => {
                            // Said once; asking again every few seconds would only repeat it.
                            tracing::warn!(
                                "{e}: the emulator has no backlog endpoint (Google's has none), so the autoscaler's view of the backlog is not sampled in this run\n    fix: set `[target] backlog = \"none\"` for this emulator"
                            );
                            return;
                        }
                        Err(e) => {
                            failures += 1;
                            if failures <= 3 {
                                tracing::warn!("backlog ({}) of {sub}: {e}", view.name());
                            }
                        }
                    }
                }
            }
        });
        BacklogSampler { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_answers() {
        let ok: serde_json::Value = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"42"]}]}}"#,
        )
        .unwrap();
        assert_eq!(parse_prometheus(&ok), Ok(Some(42.0)));
        let empty: serde_json::Value = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
        .unwrap();
        assert_eq!(parse_prometheus(&empty), Ok(None));
        let err: serde_json::Value = serde_json::from_str(
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        )
        .unwrap();
        assert!(parse_prometheus(&err).unwrap_err().contains("parse error"));
    }
}
