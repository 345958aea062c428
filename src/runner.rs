//! The real-time run loop shared by every live target: one pacer, one send path, events to one collector.
//! Each due message is handed to the target on its own task, so a stalled target never holds the schedule back
//! (no coordinated omission); `http` steps are called with reqwest at their point in the schedule.

use crate::event::{Event, EventKind, MsgId, Source};
use crate::pacer::Pacer;
use crate::schedule::{Item, ItemKind};
use crate::workload::{Plan, RenderContext};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A message as handed to a target.
#[derive(Debug, Clone)]
pub struct OutMessage {
    pub id: MsgId,
    pub topic: String,
    pub payload: String,
    pub attributes: BTreeMap<String, String>,
    pub intended_us: u64,
}

/// Something messages are published into. Returns the server's message id, or an error text.
pub trait Target: Send + Sync + 'static {
    fn publish(
        &self,
        msg: OutMessage,
    ) -> impl Future<Output = Result<Option<String>, String>> + Send;
}

/// What the pacer measured: how far each actual send lagged its intended instant.
#[derive(Debug)]
pub struct PacerStats {
    pub sent: u64,
    /// |actual − intended| per send, microseconds (HdrHistogram, 3 significant digits).
    pub lateness_us: hdrhistogram::Histogram<u64>,
}

/// Runs the schedule against `target` in real time, sending every observation to `events`.
/// Returns when every item has been sent and every publish has answered.
pub async fn run<T: Target>(
    plan: &Plan,
    run_id: &str,
    items: &[Item],
    target: Arc<T>,
    events: mpsc::UnboundedSender<Event>,
) -> PacerStats {
    run_from(Instant::now(), None, plan, run_id, items, target, events).await
}

async fn stop_requested(stop: Option<&crate::sim::Stop>) {
    match stop {
        Some(s) => {
            while !s.requested() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        None => std::future::pending().await,
    }
}

/// [`run`] with the run's time zero given (so other producers share it) and an optional stop: once requested,
/// no further message is sent and the sends in flight are awaited.
pub async fn run_from<T: Target>(
    origin: Instant,
    stop: Option<&crate::sim::Stop>,
    plan: &Plan,
    run_id: &str,
    items: &[Item],
    target: Arc<T>,
    events: mpsc::UnboundedSender<Event>,
) -> PacerStats {
    let mut pacer = Pacer::new(origin, items);
    let mut lateness = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 86_400_000_000, 3)
        .expect("valid bounds");
    let mut tasks = tokio::task::JoinSet::new();
    let http = reqwest::Client::new();
    let http_steps: Vec<Vec<crate::workload::HttpStep>> = (0..plan.streams.len())
        .map(|s| {
            crate::schedule::http_steps(plan, s)
                .into_iter()
                .cloned()
                .collect()
        })
        .collect();
    let mut sent = 0;
    // One stop watcher for the whole run (a new timer per message would cost more than the send).
    let stopping = stop_requested(stop);
    tokio::pin!(stopping);
    loop {
        let due = tokio::select! {
            biased;
            _ = &mut stopping => None,
            d = pacer.next() => d,
        };
        let Some(due) = due else { break };
        let late_us = due.lateness.as_micros() as u64;
        lateness.saturating_record(late_us.max(1));
        let stream = &plan.streams[due.item.stream as usize];
        let at_us = move |i: Instant| i.saturating_duration_since(origin).as_micros() as u64;
        match due.item.kind {
            ItemKind::Message { seq } => {
                sent += 1;
                let id = MsgId {
                    stream: stream.name.clone(),
                    seq,
                };
                let seed = crate::units::derive_seed(plan.seed, &[due.item.stream as u64, seq, 2]);
                let ctx = RenderContext {
                    stream: &stream.name,
                    run_id,
                    seq,
                    intended_us: due.item.offset_us,
                    seed,
                };
                let mut attributes: BTreeMap<String, String> = stream
                    .attributes
                    .iter()
                    .map(|(k, t)| (k.clone(), t.render(&ctx)))
                    .collect();
                attributes.insert("imagen_load_run".into(), run_id.into());
                attributes.insert("imagen_load_stream".into(), stream.name.clone());
                attributes.insert("imagen_load_id".into(), seq.to_string());
                attributes.insert(
                    "imagen_load_intended_us".into(),
                    due.item.offset_us.to_string(),
                );
                let msg = OutMessage {
                    id: id.clone(),
                    topic: stream.topic.clone(),
                    payload: stream.payload.render(&ctx),
                    attributes,
                    intended_us: due.item.offset_us,
                };
                let _ = events.send(Event::new(
                    due.item.offset_us,
                    Source::Harness,
                    EventKind::Scheduled {
                        id: id.clone(),
                        intended_us: due.item.offset_us,
                    },
                ));
                let (target, events) = (target.clone(), events.clone());
                tasks.spawn(async move {
                    let kind = match target.publish(msg).await {
                        Ok(server_id) => EventKind::Published {
                            id,
                            lateness_us: late_us,
                            server_id,
                        },
                        Err(error) => EventKind::PublishFailed { id, error },
                    };
                    // Stamped when the server answered: Published.t_us − intended is the publish delay.
                    let _ = events.send(Event::new(at_us(Instant::now()), Source::Harness, kind));
                });
            }
            ItemKind::Http { step } => {
                let spec = http_steps[due.item.stream as usize][step as usize - 1].clone();
                let (client, events, name) = (http.clone(), events.clone(), stream.name.clone());
                let intended_us = due.item.offset_us;
                tasks.spawn(async move {
                    let started = Instant::now();
                    let (status, error) = call(&client, &spec).await;
                    let _ = events.send(Event::new(
                        at_us(started),
                        Source::Harness,
                        EventKind::HttpCalled {
                            stream: name,
                            step,
                            method: spec.method.clone(),
                            url: spec.url.clone(),
                            intended_us,
                            status,
                            error,
                            response_time_us: started.elapsed().as_micros() as u64,
                            simulated: false,
                        },
                    ));
                });
            }
        }
        // Reap finished sends without waiting for the slow ones.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    PacerStats {
        sent,
        lateness_us: lateness,
    }
}

async fn call(
    client: &reqwest::Client,
    spec: &crate::workload::HttpStep,
) -> (Option<u16>, Option<String>) {
    let method = spec.method.parse().unwrap_or(reqwest::Method::POST);
    let mut req = client
        .request(method, &spec.url)
        .timeout(Duration::from_micros(spec.timeout.0))
        .body(spec.body.clone());
    for (k, v) in &spec.headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(resp) => (Some(resp.status().as_u16()), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

/// A target that accepts everything at once: for measuring the harness itself.
pub struct NoopTarget;

impl Target for NoopTarget {
    async fn publish(&self, _msg: OutMessage) -> Result<Option<String>, String> {
        Ok(None)
    }
}
