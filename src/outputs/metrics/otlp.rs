//! OTLP push of a run's metrics (`run --otlp-endpoint URL`): the same series as `/metrics`, sent to an
//! OpenTelemetry collector (or any OTLP/HTTP receiver: Google's telemetry API, Grafana Alloy, Prometheus ≥ 2.47
//! with its OTLP receiver) by OpenTelemetry's own SDK and OTLP/HTTP exporter (protobuf), every interval and once at
//! the end.
//!
//! "The same series": counters and gauges are observable instruments whose callbacks read the very atomics the
//! Prometheus registry encodes, so a push and a scrape at the same instant agree; histograms (end-to-end latency,
//! the message split, pacer lateness, model load) are recorded into OpenTelemetry histograms at the same call,
//! with the registry's bucket bounds. Names are the Prometheus ones without their suffixes, with the unit
//! beside them (`imagen_load_e2e_latency`, unit `s`), so a receiver that translates OTLP into Prometheus
//! (Prometheus' OTLP receiver, Google Managed Prometheus) gives back `imagen_load_e2e_latency_seconds_bucket`
//! and `imagen_load_messages_published_total`, and the Grafana dashboard's queries work on either path.
//!
//! Temporality is cumulative (what Prometheus ingests). Headers (say, an `Authorization` for a hosted collector),
//! timeout and compression come from the standard variables the exporter reads (`OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, …); the resource from `OTEL_RESOURCE_ATTRIBUTES`, with `service.name`
//! `imagen-load` unless `OTEL_SERVICE_NAME` says otherwise, and `service.instance.id` the run id.
//!
//! A push that fails is one warning (the first), and the run goes on: the push sits beside the event log, never
//! in front of it. The end of the run counts what failed.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Time between two pushes unless `--otlp-interval` says otherwise: k6's OpenTelemetry output exports every 10 s
/// (`K6_OTEL_EXPORT_INTERVAL`); the SDK's own default (60 s) would show a 10-minute run in ten points.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The path an OTLP/HTTP receiver takes metrics on (OTLP specification, "OTLP/HTTP Request": `/v1/metrics`).
pub const METRICS_PATH: &str = "/v1/metrics";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "OTLP endpoint {url} (--otlp-endpoint or [run] otlp_endpoint): {why}\n    fix: give the collector's OTLP/HTTP address, e.g. --otlp-endpoint http://127.0.0.1:4318 (the push goes to /v1/metrics unless the URL has a path)"
    )]
    BadEndpoint { url: String, why: String },
    #[error(
        "OTLP endpoint {url} (--otlp-endpoint or [run] otlp_endpoint): {host} is not a loopback host; the push shows what the run is doing\n    fix: push to a collector on 127.0.0.1 or localhost, or add --metrics-allow-remote to push to {host}"
    )]
    NotLoopback { url: String, host: String },
    #[error(
        "cannot set up the OTLP push to {url}: {why}\n    fix: check the OTEL_EXPORTER_OTLP_* variables (headers, timeout, compression)"
    )]
    SetUp { url: String, why: String },
}

/// Checks an `--otlp-endpoint` before the run (exit 2 on an error) and gives the URL the push posts to: an
/// `http` or `https` URL; with no path, or `/`, the OTLP/HTTP metrics path [`METRICS_PATH`] is added (as the SDK
/// does to `OTEL_EXPORTER_OTLP_ENDPOINT`), any other path is kept as given. A host that is not loopback
/// (`localhost`, `127.0.0.0/8`, `::1`) needs `allow_remote`.
pub fn endpoint(raw: &str, allow_remote: bool) -> Result<String, Error> {
    let bad = |why: &str| Error::BadEndpoint {
        url: raw.to_string(),
        why: why.to_string(),
    };
    let uri: http::Uri = raw
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(bad(&format!(
                "scheme `{other}`; OTLP/HTTP is http or https"
            )));
        }
        None => return Err(bad("no scheme; OTLP/HTTP is http:// or https://")),
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback && !allow_remote {
        return Err(Error::NotLoopback {
            url: raw.to_string(),
            host: host.to_string(),
        });
    }
    let path = uri.path();
    if path.is_empty() || path == "/" {
        let base = raw.trim_end_matches('/');
        // A query string with no path is kept after the path.
        return Ok(match base.split_once('?') {
            Some((b, q)) => format!("{}{METRICS_PATH}?{q}", b.trim_end_matches('/')),
            None => format!("{base}{METRICS_PATH}"),
        });
    }
    Ok(raw.to_string())
}

/// What the pushes did, for the run's last lines.
#[derive(Debug, Default)]
struct Tally {
    pushes: AtomicU64,
    failures: AtomicU64,
    /// A failure has been warned of, and no push has worked since.
    failing: AtomicBool,
    warned: AtomicBool,
}

/// The OTLP exporter, counting its pushes and warning once of the first that fails.
#[derive(Debug)]
struct Warned {
    inner: opentelemetry_otlp::MetricExporter,
    url: String,
    interval: Duration,
    tally: Arc<Tally>,
}

impl PushMetricExporter for Warned {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let r = self.inner.export(metrics).await;
        self.tally.pushes.fetch_add(1, Ordering::Relaxed);
        match &r {
            Ok(()) => {
                if self.tally.failing.swap(false, Ordering::Relaxed) {
                    crate::logs::note(&format!("OTLP push to {} works again", self.url), "NOTICE");
                }
            }
            Err(e) => {
                self.tally.failures.fetch_add(1, Ordering::Relaxed);
                self.tally.failing.store(true, Ordering::Relaxed);
                if !self.tally.warned.swap(true, Ordering::Relaxed) {
                    // The exporter says only "network error" when it cannot connect: a connect of our own says
                    // why (refused, no route, a name that does not resolve).
                    let why = match unreachable(&self.url) {
                        Some(detail) => format!("{e} ({detail})"),
                        None => e.to_string(),
                    };
                    crate::logs::note(
                        &format!(
                            "warning: OTLP push to {} failed: {why}\n    the run goes on (every event is in events.jsonl); while it runs, the push is tried again every {}",
                            self.url,
                            crate::units::Micros(self.interval.as_micros() as u64)
                        ),
                        "WARNING",
                    );
                }
            }
        }
        r
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// Why `url`'s host and port cannot be connected to (within 2 s), or `None` if they can.
fn unreachable(url: &str) -> Option<String> {
    use std::net::ToSocketAddrs as _;
    let uri: http::Uri = url.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let addrs = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => return Some(format!("{host}: {e}")),
    };
    let mut last = None;
    for a in &addrs {
        match std::net::TcpStream::connect_timeout(a, Duration::from_secs(2)) {
            Ok(_) => return None,
            Err(e) => last = Some(format!("{a}: {e}")),
        }
    }
    last
}

/// A running OTLP push: the SDK's meter provider with a periodic reader on a thread of its own.
pub struct Push {
    provider: SdkMeterProvider,
    url: String,
    interval: Duration,
    tally: Arc<Tally>,
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Push").field("url", &self.url).finish()
    }
}

/// How a push ended: pushes tried and how many failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    pub pushes: u64,
    pub failures: u64,
}

impl Push {
    /// Starts pushing to `url` (as [`endpoint`] gave it) every `interval`, as run `run_id`. Nothing is sent
    /// before the first interval has passed; [`Push::finish`] sends the last values. Errors: the exporter's
    /// set-up (a malformed `OTEL_EXPORTER_OTLP_*` variable), [`Error::SetUp`].
    pub fn start(url: &str, interval: Duration, run_id: &str) -> Result<Push, Error> {
        use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
        let inner = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(url)
            .with_headers(HashMap::new())
            .with_temporality(Temporality::Cumulative)
            .build()
            .map_err(|e| Error::SetUp {
                url: url.to_string(),
                why: e.to_string(),
            })?;
        let tally = Arc::new(Tally::default());
        let exporter = Warned {
            inner,
            url: url.to_string(),
            interval,
            tally: tally.clone(),
        };
        let reader = PeriodicReader::builder(exporter)
            .with_interval(interval)
            .build();
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("imagen-load");
        }
        let resource = resource
            .with_attribute(KeyValue::new("service.instance.id", run_id.to_string()))
            .build();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(resource)
            .build();
        Ok(Push {
            provider,
            url: url.to_string(),
            interval,
            tally,
        })
    }

    /// The meter the run's instruments are made on.
    pub fn meter(&self) -> Meter {
        self.provider.meter("imagen-load")
    }

    /// Time between two pushes.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Where the pushes go.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Pushes the last values and stops (blocking, at most about 5 s more than one push's timeout).
    pub fn finish(self) -> Pushed {
        // The last collection and its export happen in `shutdown`; its error, if any, is the exporter's, and
        // was counted (and warned of) there.
        let _ = self.provider.shutdown();
        Pushed {
            pushes: self.tally.pushes.load(Ordering::Relaxed),
            failures: self.tally.failures.load(Ordering::Relaxed),
        }
    }
}

/// An observable series: the attributes of one of the registry's label sets, and its handle (the same atomic).
enum Handle {
    Counter(Counter),
    Gauge(Gauge),
    Seconds(Gauge<f64, AtomicU64>),
}

/// The registry's counters and gauges, by metric, as the callbacks read them.
#[derive(Default)]
struct Observed {
    series: HashMap<&'static str, Vec<(Vec<KeyValue>, Handle)>>,
    seen: HashSet<(&'static str, Vec<String>)>,
}

/// The OpenTelemetry side of [`super::RunMetrics`]: observable counters and gauges over the registry's own
/// handles, and histograms recorded beside the registry's.
pub(super) struct Instruments {
    run: Option<KeyValue>,
    /// `run` alone, the attributes of a series without labels.
    run_attrs: Vec<KeyValue>,
    observed: Arc<Mutex<Observed>>,
    histograms: HashMap<&'static str, Histogram<f64>>,
}

/// How a counter or gauge of the registry is exported.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// A monotonic sum (Prometheus: a counter, `_total`).
    Counter,
    /// A sum that goes up and down (in flight, pods, nodes; Prometheus: a gauge).
    UpDown,
    /// A last value (backlog, replicas; Prometheus: a gauge).
    Gauge,
    /// A last value in seconds (the run time).
    Seconds,
}

impl Instruments {
    /// Makes the instruments on `meter`: `observables` are the registry's counters and gauges (name without the
    /// `imagen_load_` prefix, unit, kind), `histograms` its histograms (name, unit, bucket bounds); `help` gives
    /// each one's description.
    /// Every point carries `run` as an attribute, as every scraped series carries it as a label.
    pub(super) fn new(
        meter: &Meter,
        run: Option<&str>,
        observables: &[(&'static str, &'static str, Kind)],
        histograms: &[(&'static str, &'static str, Vec<f64>)],
        help: fn(&str) -> &'static str,
    ) -> Instruments {
        let observed = Arc::new(Mutex::new(Observed::default()));
        for &(name, unit, kind) in observables {
            let help = help(name);
            let full = format!("imagen_load_{name}");
            let o = observed.clone();
            let read = move || {
                let o = o.lock().unwrap_or_else(|p| p.into_inner());
                o.series
                    .get(name)
                    .map(|v| {
                        v.iter()
                            .map(|(attrs, h)| {
                                let value = match h {
                                    Handle::Counter(c) => c.get() as f64,
                                    Handle::Gauge(g) => g.get() as f64,
                                    Handle::Seconds(g) => g.get(),
                                };
                                (attrs.clone(), value)
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            };
            // One observable instrument of the SDK's kind `$make`, each value `$v` converted by `$to`.
            macro_rules! observable {
                ($make:ident, |$v:ident| $to:expr) => {{
                    meter
                        .$make(full)
                        .with_description(help)
                        .with_unit(unit)
                        .with_callback(move |i| {
                            for (attrs, $v) in read() {
                                i.observe($to, &attrs);
                            }
                        })
                        .build();
                }};
            }
            match kind {
                Kind::Counter => observable!(u64_observable_counter, |v| v.max(0.0) as u64),
                Kind::UpDown => observable!(i64_observable_up_down_counter, |v| v as i64),
                Kind::Gauge => observable!(i64_observable_gauge, |v| v as i64),
                Kind::Seconds => observable!(f64_observable_gauge, |v| v),
            }
        }
        let histograms = histograms
            .iter()
            .map(|(name, unit, bounds)| {
                let h = meter
                    .f64_histogram(format!("imagen_load_{name}"))
                    .with_description(help(name))
                    .with_unit(*unit)
                    .with_boundaries(bounds.clone())
                    .build();
                (*name, h)
            })
            .collect();
        let run = run.map(|r| KeyValue::new("run", r.to_string()));
        Instruments {
            run_attrs: run.iter().cloned().collect(),
            run,
            observed,
            histograms,
        }
    }

    /// The attributes of a label set: `run`, then the labels in order.
    fn attrs(&self, labels: &[(&'static str, &str)]) -> Vec<KeyValue> {
        self.run
            .iter()
            .cloned()
            .chain(labels.iter().map(|(k, v)| KeyValue::new(*k, v.to_string())))
            .collect()
    }

    /// Exports a counter of the registry (its label set, once; later calls with the same labels do nothing).
    pub(super) fn counter(&self, name: &'static str, labels: &[(&'static str, &str)], c: &Counter) {
        self.add(name, labels, || Handle::Counter(c.clone()));
    }

    /// Exports a gauge of the registry (its label set, once).
    pub(super) fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)], g: &Gauge) {
        self.add(name, labels, || Handle::Gauge(g.clone()));
    }

    /// Exports a gauge of seconds of the registry (once).
    pub(super) fn seconds(&self, name: &'static str, g: &Gauge<f64, AtomicU64>) {
        self.add(name, &[], || Handle::Seconds(g.clone()));
    }

    fn add(&self, name: &'static str, labels: &[(&'static str, &str)], h: impl FnOnce() -> Handle) {
        let key = (name, labels.iter().map(|(_, v)| v.to_string()).collect());
        let mut o = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        if o.seen.insert(key) {
            let attrs = self.attrs(labels);
            o.series.entry(name).or_default().push((attrs, h()));
        }
    }

    /// Records one observation of a histogram (seconds).
    pub(super) fn record(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        if let Some(h) = self.histograms.get(name) {
            // The pacer's lateness is recorded per publish: its attributes (the run alone) are made once.
            if labels.is_empty() {
                h.record(v, &self.run_attrs);
            } else {
                h.record(v, &self.attrs(labels));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_without_a_path_gets_the_metrics_path() {
        let e = |s| endpoint(s, false).unwrap();
        assert_eq!(
            e("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(
            e("http://localhost:4318/"),
            "http://localhost:4318/v1/metrics"
        );
        assert_eq!(e("http://[::1]:4318"), "http://[::1]:4318/v1/metrics");
        assert_eq!(
            e("https://127.0.0.1:4318/otlp/v1/metrics"),
            "https://127.0.0.1:4318/otlp/v1/metrics"
        );
    }

    #[test]
    fn an_endpoint_elsewhere_needs_the_flag_and_a_bad_one_says_why() {
        let err = endpoint("http://192.0.2.7:4318", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("192.0.2.7 is not a loopback host"), "{err}");
        assert!(err.contains("--metrics-allow-remote"), "{err}");
        assert_eq!(
            endpoint("https://telemetry.googleapis.com", true).unwrap(),
            "https://telemetry.googleapis.com/v1/metrics"
        );
        for bad in ["127.0.0.1:4318", "grpc://127.0.0.1:4317", "http://"] {
            let err = endpoint(bad, true).unwrap_err().to_string();
            assert!(
                err.contains("fix: give the collector's OTLP/HTTP address"),
                "{bad}: {err}"
            );
        }
    }
}
