//! The completion tracker: the official `Subscriber` on the results subscription. Every message is acknowledged
//! and turned into events: a completion of this run becomes `Delivered` + `Completed` (or `Duplicate`), a worker's
//! lifecycle report becomes pod events. Completions of other runs and malformed messages are counted and logged,
//! never fatal. Completed messages are kept as ranges of sequence numbers per stream ([`SeqSet`]), so memory grows
//! with the messages still open, not with the run.

use super::Connection;
use super::contract::{self, Parsed, Report, ReportKind};
use crate::event::{Event, EventKind, MsgId, Source};
use crate::seqset::SeqSet;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Where the tracker's clock stands: the run's origin and its wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    pub origin: Instant,
    pub wall_start_unix_us: u64,
}

impl RunClock {
    pub fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }
    fn worker_us(&self, unix_us: Option<u64>) -> Option<u64> {
        unix_us.map(|u| contract::to_run_us(u, self.wall_start_unix_us))
    }
}

/// The tracker's pure part: a results message in, events out.
pub struct Matcher {
    run_id: String,
    clock: RunClock,
    done: HashMap<String, SeqSet>,
    pods: HashMap<String, PodSeen>,
    pub completed: u64,
    pub duplicates: u64,
    pub other_runs: u64,
    /// Completions of the other shards of a sharded run (expected, so not reported).
    pub sibling_shards: u64,
    siblings: Option<String>,
    pub malformed: u64,
    first_malformed: Option<String>,
    /// Messages per stream of this run's plan (sequence numbers below it); `None`: not checked.
    plan: Option<HashMap<String, u64>>,
    /// Open jobs with receipts, and how many: memory follows the jobs in flight.
    receipts: HashMap<(String, u64), u32>,
}

#[derive(Default)]
struct PodSeen {
    created: bool,
    loaded: bool,
    deleted: bool,
}

impl Matcher {
    pub fn new(run_id: &str, clock: RunClock) -> Self {
        Matcher {
            run_id: run_id.to_string(),
            clock,
            done: HashMap::new(),
            pods: HashMap::new(),
            completed: 0,
            duplicates: 0,
            other_runs: 0,
            sibling_shards: 0,
            siblings: None,
            malformed: 0,
            first_malformed: None,
            plan: None,
            receipts: HashMap::new(),
        }
    }

    /// The plan's messages per stream: a completion naming any other message is counted as malformed (never
    /// a `completed`, and never a table grown to a stranger's sequence number).
    pub fn with_plan(mut self, plan: HashMap<String, u64>) -> Self {
        self.plan = Some(plan);
        self
    }

    /// Completions of runs whose id starts with `prefix` are the sibling shards' own: skipped without a warning.
    pub fn with_siblings(mut self, prefix: &str) -> Self {
        self.siblings = Some(prefix.to_string());
        self
    }

    fn mark_done(&mut self, stream: &str, seq: u64) -> bool {
        match self.done.get_mut(stream) {
            Some(done) => done.insert(seq),
            None => self.done.entry(stream.to_string()).or_default().insert(seq),
        }
    }

    /// Pod events from what a worker said about itself, each at most once per pod.
    fn lifecycle(
        &mut self,
        kind: ReportKind,
        r: &Report,
        deployment: Option<&str>,
        now_us: u64,
        out: &mut Vec<Event>,
    ) {
        let clock = self.clock;
        let seen = self.pods.entry(r.pod.clone()).or_default();
        let started = clock.worker_us(r.started_unix_us);
        if !seen.created && (kind == ReportKind::Started || r.started_unix_us.is_some()) {
            seen.created = true;
            let at = started.unwrap_or(now_us);
            let preexisting = r
                .started_unix_us
                .is_some_and(|s| s < clock.wall_start_unix_us);
            let deployment = r
                .pipeline
                .clone()
                .or(deployment.map(str::to_string))
                .unwrap_or_else(|| "unknown".into());
            out.push(Event::new(
                at,
                Source::Worker,
                EventKind::PodCreated {
                    pod: r.pod.clone(),
                    deployment,
                    preexisting,
                },
            ));
            out.push(Event::new(
                at,
                Source::Worker,
                EventKind::ContainerStarted { pod: r.pod.clone() },
            ));
        }
        if !seen.loaded
            && let Some(ready) = clock.worker_us(r.model_ready_unix_us)
        {
            seen.loaded = true;
            let duration_us = match (r.started_unix_us, r.model_ready_unix_us) {
                (Some(s), Some(m)) => Some(m.saturating_sub(s)),
                _ => None,
            };
            out.push(Event::new(
                ready,
                Source::Worker,
                EventKind::ModelLoaded {
                    pod: r.pod.clone(),
                    duration_us,
                },
            ));
            out.push(Event::new(
                ready,
                Source::Worker,
                EventKind::PodReady { pod: r.pod.clone() },
            ));
        }
        if kind == ReportKind::Stopping && !seen.deleted {
            seen.deleted = true;
            out.push(Event::new(
                now_us,
                Source::Worker,
                EventKind::PodDeleted { pod: r.pod.clone() },
            ));
        }
    }

    /// Whether a job-level report belongs to this run's plan; counts it otherwise.
    fn ours(&mut self, run: &str, stream: &str, seq: u64, what: &str) -> bool {
        if run != self.run_id {
            if self.siblings.as_deref().is_some_and(|p| run.starts_with(p)) {
                self.sibling_shards += 1;
            } else {
                self.other_runs += 1;
                if self.other_runs <= 3 {
                    tracing::info!("{what} of another run ({run}) ignored");
                }
            }
            return false;
        }
        let known = match &self.plan {
            Some(plan) => plan.get(stream).is_some_and(|n| seq < *n),
            None => seq < crate::limits::MAX_MESSAGES_PER_RUN,
        };
        if !known {
            self.malformed += 1;
            self.first_malformed.get_or_insert_with(|| {
                format!("{what} for message {stream}#{seq}, which this run did not send")
            });
        }
        known
    }

    /// Turns one results message into events.
    pub fn handle(&mut self, attributes: &BTreeMap<String, String>, data: &[u8]) -> Vec<Event> {
        self.handle_at(self.clock.now_us(), attributes, data)
    }

    /// As [`Matcher::handle`], for a message received at `now_us` (µs since the run started): the tracker's
    /// clock in real time, the simulator's in simulated time.
    pub fn handle_at(
        &mut self,
        now_us: u64,
        attributes: &BTreeMap<String, String>,
        data: &[u8],
    ) -> Vec<Event> {
        let mut out = Vec::new();
        match contract::parse(attributes, data) {
            Err(e) => {
                self.malformed += 1;
                if self.malformed <= 5 {
                    tracing::warn!("results message ignored: {e}");
                }
                self.first_malformed.get_or_insert_with(|| e.to_string());
            }
            Ok(Parsed::Lifecycle { kind, report }) => {
                self.lifecycle(kind, &report, None, now_us, &mut out)
            }
            Ok(Parsed::Receipt {
                run,
                stream,
                seq,
                report,
            }) => {
                if !self.ours(&run, &stream, seq, "a receipt") {
                    return out;
                }
                self.lifecycle(
                    ReportKind::Received,
                    &report,
                    Some(&stream),
                    now_us,
                    &mut out,
                );
                // The harness counts the deliveries itself: a second receipt of a job is a redelivery, whatever
                // Pub/Sub says of the attempt (it says nothing without a dead-letter policy).
                let done = self.done.get(&stream).is_some_and(|d| d.contains(seq));
                let key = (stream.clone(), seq);
                let n = self.receipts.entry(key).or_default();
                *n += 1;
                let attempt = if done { (*n).max(2) } else { *n };
                if done {
                    self.receipts.remove(&(stream.clone(), seq));
                }
                let at = self
                    .clock
                    .worker_us(report.received_unix_us)
                    .unwrap_or(now_us);
                out.push(Event::new(
                    at,
                    Source::Worker,
                    EventKind::Delivered {
                        id: MsgId { stream, seq },
                        pod: if report.pod.is_empty() {
                            "unknown".into()
                        } else {
                            report.pod
                        },
                        attempt,
                    },
                ));
            }
            Ok(Parsed::Completion {
                run,
                stream,
                seq,
                report,
            }) => {
                if !self.ours(&run, &stream, seq, "a completion") {
                    return out;
                }
                self.lifecycle(
                    ReportKind::Completed,
                    &report,
                    Some(&stream),
                    now_us,
                    &mut out,
                );
                let id = MsgId { stream, seq };
                let now = now_us;
                let pod = if report.pod.is_empty() {
                    "unknown".to_string()
                } else {
                    report.pod.clone()
                };
                if !self.mark_done(&id.stream, id.seq) {
                    self.duplicates += 1;
                    out.push(Event::new(
                        now,
                        Source::Worker,
                        EventKind::Duplicate { id, pod },
                    ));
                    return out;
                }
                self.completed += 1;
                let received_us = self.clock.worker_us(report.received_unix_us);
                // A worker that sent a receipt has reported this delivery already.
                let receipted = self.receipts.remove(&(id.stream.clone(), id.seq)).is_some();
                if let Some(at) = received_us.filter(|_| !receipted) {
                    out.push(Event::new(
                        at,
                        Source::Worker,
                        EventKind::Delivered {
                            id: id.clone(),
                            pod: pod.clone(),
                            attempt: report.attempt.unwrap_or(1),
                        },
                    ));
                }
                out.push(Event::new(
                    now,
                    Source::Pubsub,
                    EventKind::Completed {
                        id,
                        pod,
                        received_us,
                        processing_start_us: self.clock.worker_us(report.processing_start_unix_us),
                        processing_end_us: self.clock.worker_us(report.processing_end_unix_us),
                    },
                ));
            }
        }
        out
    }

    /// The closing count of what was ignored, if anything was.
    pub fn summary(&self) -> Option<Event> {
        let (other_runs, malformed) = (self.other_runs, self.malformed);
        (other_runs + malformed > 0).then(|| {
            Event::new(
                self.clock.now_us(),
                Source::Pubsub,
                EventKind::ResultsIgnored {
                    other_runs,
                    malformed,
                    example: self.first_malformed.clone(),
                },
            )
        })
    }
}

/// A running tracker.
pub struct Tracker {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Tracker {
    /// Subscribes to `subscription` and sends every event to `events` until stopped.
    pub fn start(
        conn: Connection,
        subscription: String,
        matcher: Matcher,
        events: mpsc::UnboundedSender<Event>,
    ) -> Tracker {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut matcher = matcher;
            let mut backoff = Duration::from_millis(200);
            'outer: loop {
                let client = match conn.subscriber().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("completion tracker: {e}");
                        tokio::select! {
                            _ = &mut stopped => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                let mut stream = client
                    .subscribe(&subscription)
                    .set_max_outstanding_messages(10_000i64)
                    .build();
                loop {
                    let next = tokio::select! {
                        _ = &mut stopped => break 'outer,
                        n = stream.next() => n,
                    };
                    match next {
                        Some(Ok((m, h))) => {
                            h.ack();
                            backoff = Duration::from_millis(200);
                            let attrs: BTreeMap<String, String> =
                                m.attributes.into_iter().collect();
                            for e in matcher.handle(&attrs, &m.data) {
                                let _ = events.send(e);
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!("completion tracker: {e}; subscribing again");
                            break;
                        }
                        None => break,
                    }
                }
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            if let Some(e) = matcher.summary() {
                let _ = events.send(e);
            }
        });
        Tracker { stop, task }
    }

    /// Stops; the closing count of ignored results has been sent when this returns.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::pubsub::contract::*;

    fn clock() -> RunClock {
        RunClock {
            origin: Instant::now(),
            wall_start_unix_us: 1_000_000_000,
        }
    }

    fn completion(run: &str, seq: u64, body: &Report) -> (BTreeMap<String, String>, Vec<u8>) {
        let attrs = [
            (ATTR_RUN, run.to_string()),
            (ATTR_STREAM, "upscale".to_string()),
            (ATTR_ID, seq.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        (attrs, serde_json::to_vec(body).unwrap())
    }

    #[test]
    fn completions_duplicates_and_strangers() {
        let mut m = Matcher::new("r1", clock());
        let report = Report {
            pod: "w-1".into(),
            pipeline: Some("upscale".into()),
            started_unix_us: Some(1_000_000_000 + 5_000_000),
            model_ready_unix_us: Some(1_000_000_000 + 35_000_000),
            received_unix_us: Some(1_000_000_000 + 36_000_000),
            processing_start_unix_us: Some(1_000_000_000 + 36_000_000),
            processing_end_unix_us: Some(1_000_000_000 + 44_000_000),
            attempt: Some(1),
            error: None,
        };
        let (a, d) = completion("r1", 3, &report);
        let evs = m.handle(&a, &d);
        let names: Vec<String> = evs
            .iter()
            .map(|e| {
                serde_json::to_value(&e.kind).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "pod_created",
                "container_started",
                "model_loaded",
                "pod_ready",
                "delivered",
                "completed"
            ]
        );
        assert_eq!(evs[0].t_us, 5_000_000);
        assert_eq!(evs[2].t_us, 35_000_000);
        assert!(matches!(
            evs[2].kind,
            EventKind::ModelLoaded {
                duration_us: Some(30_000_000),
                ..
            }
        ));
        match &evs[5].kind {
            EventKind::Completed {
                processing_end_us, ..
            } => assert_eq!(*processing_end_us, Some(44_000_000)),
            other => panic!("{other:?}"),
        }
        // The same completion again: a duplicate, and no pod events twice.
        let evs = m.handle(&a, &d);
        assert_eq!(evs.len(), 1);
        assert!(matches!(evs[0].kind, EventKind::Duplicate { .. }));
        // Another run's completion and a malformed message are counted, not fatal.
        let (a, d) = completion("r0", 3, &report);
        assert!(m.handle(&a, &d).is_empty());
        assert!(m.handle(&BTreeMap::new(), b"{").is_empty());
        // Completions for messages the run never sent: counted as malformed, never completed.
        let mut planned =
            Matcher::new("r1", clock()).with_plan([("upscale".to_string(), 10)].into());
        for (run, seq) in [("r1", 10), ("r1", u64::MAX)] {
            let (a, d) = completion(run, seq, &report);
            assert!(planned.handle(&a, &d).is_empty(), "seq {seq}");
        }
        assert_eq!((planned.malformed, planned.completed), (2, 0));
        let (a, d) = completion("r1", 9, &report);
        assert!(!planned.handle(&a, &d).is_empty());
        assert_eq!(planned.completed, 1);
        let summary = m.summary().unwrap();
        assert!(matches!(
            summary.kind,
            EventKind::ResultsIgnored {
                other_runs: 1,
                malformed: 1,
                ..
            }
        ));
        assert_eq!(m.completed, 1);
    }

    #[test]
    fn a_worker_that_started_before_the_run_is_preexisting() {
        let mut m = Matcher::new("r1", clock());
        let attrs: BTreeMap<String, String> =
            [(ATTR_EVENT.to_string(), "started".to_string())].into();
        let body = serde_json::to_vec(&Report {
            pod: "w-0".into(),
            started_unix_us: Some(999_000_000),
            ..Default::default()
        })
        .unwrap();
        let evs = m.handle(&attrs, &body);
        assert!(matches!(
            evs[0].kind,
            EventKind::PodCreated {
                preexisting: true,
                ..
            }
        ));
        assert_eq!(evs[0].t_us, 0, "clamped to the run's start");
    }
}
