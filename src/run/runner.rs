//! The real-time run loop shared by every live target: one pacer, one send path, events to one collector.
//!
//! The pacer runs on a thread of its own ([`PACER_THREAD`]): it sleeps to each intended instant, renders
//! the message and hands it to the target without waiting (the official publisher queues it at once). What the
//! target returns resolves when the server answers; those answers are awaited together on the runtime and become
//! `published` / `publish_failed` events. A stalled target never holds the schedule back (no coordinated
//! omission), and no runtime worker spends its time spinning. `http` steps are called with reqwest at their point
//! in the schedule.

use crate::event::{Event, EventKind, MsgId, Source};
use crate::plan::schedule::{ItemKind, Items};
use crate::plan::workload::{Plan, RenderContext};
use crate::run::pacer::Pacer;
use crate::run::stop::Stop;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A message as handed to a target.
#[derive(Debug, Clone)]
pub struct OutMessage {
    pub id: MsgId,
    pub topic: String,
    pub payload: String,
    /// The stream's own attributes and the worker contract's
    /// ([`add_job_attributes`](crate::observe::pubsub::contract::add_job_attributes)), in the map type of the
    /// official client's `Message` (moved into it, not rebuilt).
    pub attributes: HashMap<String, String>,
    pub intended_us: u64,
}

impl OutMessage {
    /// Its size as Pub/Sub counts it against quotas and flow control: the data and every attribute's key and
    /// value, in bytes.
    pub fn size_bytes(&self) -> usize {
        self.payload.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// Something messages are published into.
pub trait Target: Send + Sync + 'static {
    /// Hands the message over without blocking (it is called on the pacer's thread, inside the runtime's context)
    /// and returns what resolves to the server's message id, or an error text, once the server has answered.
    fn send(
        this: &Arc<Self>,
        msg: OutMessage,
    ) -> impl Future<Output = Result<Option<String>, String>> + Send + 'static;
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
    items: Items,
    target: Arc<T>,
    events: mpsc::UnboundedSender<Event>,
) -> PacerStats {
    run_from(Instant::now(), None, plan, run_id, items, target, events).await
}

/// An answer still to come, already wrapped into the event it will become.
type Answer = Pin<Box<dyn Future<Output = Event> + Send>>;

/// What the pacer hands over per item, in one channel message: the item's `scheduled` event (a message's; none for
/// an `http` step) and its answer to come. One hand-off per item, not one per event: each hand-off from the pacer's
/// thread can wake a parked runtime worker (a futex call), and at 10,000 items a second those wake-ups were 8 % of
/// the harness's CPU (`perf record`).
type HandOff = (Option<Event>, Answer);

/// Sets `cancelled` when dropped: the pacer thread stops if the run is abandoned.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// [`run`] with the run's time zero given (so other producers share it) and an optional stop: once requested,
/// no further message is sent but what the pacer's timer slack held back of what was already due (the group in
/// hand's items intended before the pacer saw the stop), and the sends in flight are awaited.
///
/// The pacer's thread is started here, by the calling thread, not when the returned future is first polled: a
/// thread inherits its creator's nice value, and the live runtime's threads are lowered
/// ([`yield_to_the_pacer`]), so a live run calls this from the thread that blocks on the runtime, which is not,
/// and awaits the returned future wherever it likes. Must be called inside a runtime's context.
pub fn run_from<T: Target>(
    origin: Instant,
    stop: Option<Arc<Stop>>,
    plan: &Plan,
    run_id: &str,
    items: Items,
    target: Arc<T>,
    events: mpsc::UnboundedSender<Event>,
) -> impl Future<Output = PacerStats> + Send + 'static {
    let cancelled = Arc::new(AtomicBool::new(false));
    let guard = CancelOnDrop(cancelled.clone());
    // At most this many publishes and bytes in flight: at a limit the pacer waits for an answer (its lateness
    // shows it).
    let in_flight = FlowControl::new(
        plan.pubsub.max_outstanding_messages,
        plan.pubsub.max_outstanding_bytes,
    );
    let (answers_tx, mut answers_rx) = mpsc::unbounded_channel::<HandOff>();
    let (stats_tx, stats_rx) = tokio::sync::oneshot::channel();
    {
        let (plan, run_id) = (plan.clone(), run_id.to_string());
        let handle = tokio::runtime::Handle::current();
        // A thread of its own, not one of tokio's: the runtime's threads may be made to yield to it
        // ([`yield_to_the_pacer`]), and this one keeps the priority it was started with.
        std::thread::Builder::new()
            .name(PACER_THREAD.into())
            .spawn(move || {
                match pacer_realtime() {
                    Ok(()) => tracing::debug!("the pacer runs SCHED_FIFO at priority 1"),
                    Err(e) => tracing::debug!(
                        "the pacer runs at the normal policy (SCHED_FIFO refused: {e}); with \
                         CAP_SYS_NICE or an RLIMIT_RTPRIO above 0 its p99 lateness beside a busy emulator is \
                         tens of microseconds rather than about a millisecond"
                    ),
                }
                // The runtime's context, as the target's publisher and the `http` steps spawn on it.
                let _runtime = handle.enter();
                let stats = pace(
                    origin,
                    stop,
                    cancelled,
                    &plan,
                    &run_id,
                    items,
                    target,
                    answers_tx,
                    (&handle, &in_flight),
                );
                let _ = stats_tx.send(stats);
            })
            .expect("a thread for the pacer");
    }
    // Await the answers as they come; done when the pacer has finished and every answer is in.
    async move {
        let _guard = guard;
        let mut pending = FuturesUnordered::new();
        let mut batch = Vec::with_capacity(256);
        let mut open = true;
        loop {
            tokio::select! {
                n = answers_rx.recv_many(&mut batch, 256), if open => {
                    if n == 0 {
                        open = false;
                    }
                    for (scheduled, answer) in batch.drain(..) {
                        if let Some(e) = scheduled {
                            let _ = events.send(e);
                        }
                        pending.push(answer);
                    }
                }
                Some(event) = pending.next(), if !pending.is_empty() => {
                    let _ = events.send(event);
                }
                else => break,
            }
        }
        stats_rx.await.expect("the pacer thread")
    }
}

/// The pacer thread's name.
pub const PACER_THREAD: &str = "imagen-load-pacer";

/// How much lower than the pacer the live runtime's threads run (a nice value this much higher), so a pacer woken
/// for an instant gets a core from them sooner. Measured: with the built-in emulator beside it lowered so, the
/// pacer's p99 lateness at 10,000 sends a second went from 1.2 ms to 0.36–0.56 ms (`perf sched` had shown it
/// runnable for 1–4.5 ms behind the emulator's threads). It does not help a pacer that never sleeps (50,000 a
/// second on 2 cores): a running thread keeps its time slice. Raising one's own nice value needs no privilege
/// (lowering it does, so the pacer is not raised instead).
pub const RUNTIME_NICE: i32 = 5;

/// Makes the calling thread (the pacer's) real-time: SCHED_FIFO at the lowest real-time priority, 1, where the
/// process may (root, `CAP_SYS_NICE`, or `RLIMIT_RTPRIO` ≥ 1; sched(7)); else it stays at the normal policy and the
/// refusal is returned. Why: a nice value does not get a woken thread a core at once (the kernel's EEVDF scheduler
/// lets the running thread finish its slice), and `perf sched` showed the pacer at 10,000 sends a second waiting
/// behind the built-in emulator's threads (a nice value 5 higher) for 0.3–3.2 ms about 100 times in 10 s: its p99
/// lateness was 0.6–1.4 ms. Made real-time (`chrt -f -p 1` on its thread, the same binary): p99 8–10 µs at
/// 10,000/s, the same CPU per message, and the ceiling unchanged (100,872/s); by this function, from the start of
/// the run, 55–70 µs against 0.43–0.90 ms without the privilege, in alternating pairs. The pacer
/// sleeps between sends and blocks on the in-flight bound when the server falls behind, and the kernel keeps 5 %
/// of every second for other threads (`sched_rt_runtime_us`), so it cannot take a machine.
pub fn pacer_realtime() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            RealtimeThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
        )
        .map_err(|e| format!("{e:?}"))
    }
    #[cfg(not(target_os = "linux"))]
    Err("real-time threads are set on Linux only".to_string())
}

/// The calling thread's nice value (0 where it cannot be read): what [`yield_to_the_pacer`] counts from.
pub fn current_nice() -> i32 {
    #[cfg(target_os = "linux")]
    return rustix::process::getpriority_process(None).unwrap_or(0);
    #[cfg(not(target_os = "linux"))]
    0
}

/// Sets the calling thread's nice value to `base` + [`RUNTIME_NICE`] (absolute, so a thread created by an
/// already lowered one is not lowered twice): for the live runtime's threads (`on_thread_start`), with `base` read
/// by [`current_nice`] on the thread that builds the runtime. On Linux the nice value is per thread
/// (setpriority(2), "BUGS"); elsewhere it is the process's, so there nothing is changed. A refusal is ignored: the
/// run is only less punctual.
pub fn yield_to_the_pacer(base: i32) {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::setpriority_process(None, (base + RUNTIME_NICE).min(19));
    #[cfg(not(target_os = "linux"))]
    let _ = base;
}

/// The pacer thread: waits for each item's instant, prepares it and hands it over.
#[allow(clippy::too_many_arguments)]
fn pace<T: Target>(
    origin: Instant,
    stop: Option<Arc<Stop>>,
    cancelled: Arc<AtomicBool>,
    plan: &Plan,
    run_id: &str,
    items: Items,
    target: Arc<T>,
    answers: mpsc::UnboundedSender<HandOff>,
    (runtime, in_flight): (&tokio::runtime::Handle, &FlowControl),
) -> PacerStats {
    // This thread's timer slack to 1 ns, so its sleeps wake on time (the default lets them overshoot by 50 µs).
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
    // The schedule is generated as it is sent, never held.
    let mut pacer = Pacer::new(
        origin,
        items.iter(plan),
        Duration::from_micros(plan.timer_slack.0),
    );
    let mut lateness = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 86_400_000_000, 3)
        .expect("valid bounds");
    let http_steps: Vec<Vec<crate::plan::workload::HttpStep>> = (0..plan.streams.len())
        .map(|s| {
            crate::plan::schedule::http_steps(plan, s)
                .into_iter()
                .cloned()
                .collect()
        })
        .collect();
    // Only for a schedule with `http` steps: building a client (its TLS roots) takes milliseconds, counted in the
    // first sends' lateness.
    let http = http_steps
        .iter()
        .any(|s| !s.is_empty())
        .then(reqwest::Client::new);
    let stopped =
        || cancelled.load(Ordering::Relaxed) || stop.as_ref().is_some_and(|s| s.requested());
    let mut sent = 0;
    // After a stop the pacer hands out only what its slack held back of what was due.
    while let Some(due) = pacer.next_blocking(stopped) {
        let stream = &plan.streams[due.item.stream as usize];
        let handoff: HandOff = match due.item.kind {
            ItemKind::Message { seq } => {
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
                let mut attributes = HashMap::with_capacity(stream.attributes.len() + 4);
                attributes.extend(
                    stream
                        .attributes
                        .iter()
                        .map(|(k, t)| (k.clone(), t.render(&ctx))),
                );
                crate::observe::pubsub::contract::add_job_attributes(
                    &mut attributes,
                    run_id,
                    &id,
                    due.item.offset_us,
                );
                let msg = OutMessage {
                    id: id.clone(),
                    topic: stream.topic.clone(),
                    payload: stream.payload.render(&ctx),
                    attributes,
                    intended_us: due.item.offset_us,
                };
                // A slot among the publishes in flight; waiting for one delays this send (and counts in its
                // lateness), it never drops it. Given back when the server answers.
                let Some((permit, waited)) = in_flight.acquire(runtime, msg.size_bytes()) else {
                    break;
                };
                // A stop while this waited for a slot: the target is slow, and nothing more is sent.
                if waited && stopped() {
                    break;
                }
                let late_us = if waited {
                    since(origin, Instant::now()).saturating_sub(due.item.offset_us)
                } else {
                    due.lateness.as_micros() as u64
                };
                lateness.saturating_record(late_us.max(1));
                sent += 1;
                let scheduled = Event::new(
                    due.item.offset_us,
                    Source::Harness,
                    EventKind::Scheduled {
                        id: id.clone(),
                        intended_us: due.item.offset_us,
                    },
                );
                let answer = T::send(&target, msg);
                let answer: Answer = Box::pin(async move {
                    let answered = answer.await;
                    drop(permit);
                    let kind = match answered {
                        Ok(server_id) => EventKind::Published {
                            id,
                            lateness_us: late_us,
                            server_id,
                        },
                        Err(error) => EventKind::PublishFailed { id, error },
                    };
                    // Stamped when the server answered: Published.t_us − intended is the publish delay.
                    Event::new(since(origin, Instant::now()), Source::Harness, kind)
                });
                (Some(scheduled), answer)
            }
            ItemKind::Http { step } => {
                lateness.saturating_record((due.lateness.as_micros() as u64).max(1));
                let spec = http_steps[due.item.stream as usize][step as usize - 1].clone();
                let client = http.clone().expect("a client where there are http steps");
                let name = stream.name.clone();
                let intended_us = due.item.offset_us;
                // Spawned, so the call starts now rather than when the answers are next polled.
                let call = tokio::spawn(async move {
                    let started = Instant::now();
                    let (status, error) = call(&client, &spec).await;
                    Event::new(
                        since(origin, started),
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
                    )
                });
                (
                    None,
                    Box::pin(async move { call.await.expect("an http step task") }),
                )
            }
        };
        if answers.send(handoff).is_err() {
            break;
        }
    }
    PacerStats {
        sent,
        lateness_us: lateness,
    }
}

/// The pacer's bound on publishes in flight, by count and by bytes, as the Pub/Sub clients' publisher flow control
/// (`max_outstanding_messages`, `max_outstanding_bytes`) with its "block" behaviour.
pub struct FlowControl {
    messages: Arc<tokio::sync::Semaphore>,
    bytes: Arc<tokio::sync::Semaphore>,
    max_bytes: u32,
}

/// What one publish holds of the bounds until it is answered.
pub struct Slot {
    _message: tokio::sync::OwnedSemaphorePermit,
    _bytes: tokio::sync::OwnedSemaphorePermit,
}

impl FlowControl {
    pub fn new(max_messages: u64, max_bytes: u64) -> Self {
        let cap = |n: u64| n.clamp(1, tokio::sync::Semaphore::MAX_PERMITS as u64);
        let max_bytes = cap(max_bytes).min(u32::MAX as u64) as u32;
        FlowControl {
            messages: Arc::new(tokio::sync::Semaphore::new(cap(max_messages) as usize)),
            bytes: Arc::new(tokio::sync::Semaphore::new(max_bytes as usize)),
            max_bytes,
        }
    }

    /// A slot for a message of `size_bytes`, waiting (on the pacer's thread) while either bound is reached; also
    /// whether it had to wait. A message larger than the byte bound takes all of it, so it goes alone. `None` if
    /// the bounds were closed.
    pub fn acquire(
        &self,
        runtime: &tokio::runtime::Handle,
        size_bytes: usize,
    ) -> Option<(Slot, bool)> {
        let need = size_bytes.clamp(1, self.max_bytes as usize) as u32;
        let mut waited = false;
        let message = match self.messages.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                waited = true;
                runtime
                    .block_on(self.messages.clone().acquire_owned())
                    .ok()?
            }
        };
        let bytes = match self.bytes.clone().try_acquire_many_owned(need) {
            Ok(p) => p,
            Err(_) => {
                waited = true;
                runtime
                    .block_on(self.bytes.clone().acquire_many_owned(need))
                    .ok()?
            }
        };
        Some((
            Slot {
                _message: message,
                _bytes: bytes,
            },
            waited,
        ))
    }
}

fn since(origin: Instant, i: Instant) -> u64 {
    i.saturating_duration_since(origin).as_micros() as u64
}

async fn call(
    client: &reqwest::Client,
    spec: &crate::plan::workload::HttpStep,
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
    fn send(
        _this: &Arc<Self>,
        _msg: OutMessage,
    ) -> impl Future<Output = Result<Option<String>, String>> + Send + 'static {
        std::future::ready(Ok(None))
    }
}

#[cfg(test)]
mod flow_control_tests {
    use super::FlowControl;

    /// Both bounds hold: a second message waits while the first holds the bytes, a message larger than the byte
    /// bound takes all of it (and so goes alone), and answers give the slots back.
    #[test]
    fn the_bounds_on_publishes_in_flight_hold_by_count_and_by_bytes() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let fc = FlowControl::new(2, 100);
        let (a, waited) = fc.acquire(rt.handle(), 60).unwrap();
        assert!(!waited);
        assert_eq!(fc.bytes.available_permits(), 40);
        // 60 more bytes do not fit: acquiring waits until `a` is answered.
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(a);
        });
        let (b, waited) = fc.acquire(rt.handle(), 60).unwrap();
        assert!(waited);
        release.join().unwrap();
        drop(b);
        let (big, _) = fc.acquire(rt.handle(), 10_000).unwrap();
        assert_eq!(fc.bytes.available_permits(), 0);
        drop(big);
        // The count bound: two small ones fit, a third would wait.
        let (x, _) = fc.acquire(rt.handle(), 1).unwrap();
        let (y, _) = fc.acquire(rt.handle(), 1).unwrap();
        assert_eq!(fc.messages.available_permits(), 0);
        drop((x, y));
        assert_eq!(fc.messages.available_permits(), 2);
    }
}
