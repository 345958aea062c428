//! The one collector of every run. Each source (the simulator, a live run against Pub/Sub with its tracker,
//! backlog sampler and cluster watchers) hands its events to a [`Collector`], which in one place:
//! - appends each to `events.jsonl` (the writer flushes at least once a second while events come, checking the
//!   clock every 256 of them; [`Collector::collect`] flushes on a one-second tick when none come; and at the end);
//! - feeds the streaming analysis, so the report is ready when the source ends (in time order for a source that
//!   emits in order, through [`analysis::Reordering`] for one that does not);
//! - keeps the live counts ([`Ledger`]: what the progress line shows, what is still open);
//! - feeds the run's metrics (`--metrics-*`, OTLP);
//! - checks the `abort_on_fail` thresholds on the results so far, and asks the run to stop when one fails.
//!
//! So every source gets the same streaming analysis, abort, progress and partial results on a stop.

use crate::analysis::{Analyzer, Reordering, RunReport};
use crate::event::log::{self as eventlog, EventLogWriter};
use crate::event::{Event, EventKind, MsgId};
use crate::outputs::metrics::Recorder;
use crate::plan::thresholds::Threshold;
use crate::run::stop::Stop;
use crate::seqset::SeqSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How the events of a source arrive, which decides how they are analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// In time order (the simulator): analysed as they come.
    InOrder,
    /// Out of time order by up to this many µs (live producers, worker-reported times): analysed through a
    /// [`Reordering`] window, exactly as `analyze` reads a log.
    Reordered { window_us: u64 },
}

/// Whose clock the events' times are on, which decides how often `abort_on_fail` thresholds are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Simulated time: checked at the first event at or after each check instant (the triggering event's time plus
    /// the interval), a function of the events alone, so where a run aborts (and so its `events.jsonl`) stays a pure
    /// function of the workload and seed.
    Simulated,
    /// Wall time: checked at most once a second, and never more often than ten times the last check took, so
    /// the checks cost at most a tenth of the collector's time however large the run. Checks happen as events
    /// arrive; a live run always has some (the pacer's, the backlog samples).
    RealTime,
}

/// The thresholds with `abort_on_fail`, checked on the results so far.
struct AbortOnFail {
    thresholds: Vec<Threshold>,
    every_us: u64,
    next_us: u64,
    clock: Clock,
    stop: Arc<Stop>,
    aborted: Option<String>,
}

impl AbortOnFail {
    /// The shortest spacing of checks, in the events' own time: a minute of simulated time (a check clones the
    /// analysis), a second of wall time.
    fn min_every_us(clock: Clock) -> u64 {
        match clock {
            Clock::Simulated => 60_000_000,
            Clock::RealTime => 1_000_000,
        }
    }
}

enum Analysis {
    InOrder(Analyzer),
    Reordered(Reordering),
}

impl Analysis {
    fn push(&mut self, e: Event) {
        match self {
            Analysis::InOrder(a) => a.push(&e),
            Analysis::Reordered(r) => r.push(e),
        }
    }

    /// The report of the run so far (the analysis goes on).
    fn snapshot(&self) -> RunReport {
        match self {
            Analysis::InOrder(a) => a.clone().finish(),
            Analysis::Reordered(r) => r.clone().finish(),
        }
    }

    fn finish(self) -> RunReport {
        match self {
            Analysis::InOrder(a) => a.finish(),
            Analysis::Reordered(r) => r.finish(),
        }
    }
}

/// What a finished collector hands back.
pub struct Collected {
    /// The report of every event collected (thresholds not yet evaluated).
    pub report: RunReport,
    /// Events written to the log, the header included.
    pub events: u64,
    /// The metrics recorder, to be finished by the caller (the metrics file, the last OTLP push).
    pub recorder: Option<Recorder>,
    /// Why an `abort_on_fail` threshold stopped the run, if one did: "`metric condition` failed at T (…)".
    pub aborted: Option<String>,
}

/// The one collector of a run: see the module's documentation.
pub struct Collector {
    writer: EventLogWriter,
    write_error: Option<eventlog::Error>,
    analysis: Analysis,
    /// Kept only when asked for ([`Collector::counting`]): the simulator's hot path shows no progress line.
    ledger: Option<Arc<Mutex<Ledger>>>,
    recorder: Option<Recorder>,
    abort: Option<AbortOnFail>,
}

impl Collector {
    /// Creates `log` (`events.jsonl`; an existing file is replaced), writes `header` (the `run_started` event) and
    /// puts it on disk at once, so a run killed in its first second still leaves a log that names it. Every event,
    /// the header included, also goes to `recorder` (the run's metrics) when there is one.
    ///
    /// Errors: the log cannot be created or written.
    pub fn create(
        log: &Path,
        header: Event,
        order: Order,
        recorder: Option<Recorder>,
    ) -> eventlog::Result<Collector> {
        let writer = EventLogWriter::create(log)?;
        let mut c = Collector {
            writer,
            write_error: None,
            analysis: match order {
                Order::InOrder => Analysis::InOrder(Analyzer::default()),
                Order::Reordered { window_us } => Analysis::Reordered(Reordering::new(window_us)),
            },
            ledger: None,
            recorder,
            abort: None,
        };
        c.push(header);
        c.flush()?;
        Ok(c)
    }

    /// Keeps the live counts ([`Ledger`]) from the next event on: for a source that shows progress or waits on
    /// what is still open (a live run), and for [`Collector::collect`]'s closing `lost` events.
    pub fn counting(mut self) -> Collector {
        self.ledger.get_or_insert_with(Arc::default);
        self
    }

    /// Checks the thresholds' `abort_on_fail` conditions on the results so far, at most 100 times over
    /// `horizon_us` (the run's planned length: schedule, deadline and drain) and no more often than `clock`
    /// allows; the first that fails asks `stop` to stop the run ("threshold … ; abort_on_fail"). Thresholds
    /// without such a condition are not checked during the run.
    pub fn with_abort(
        mut self,
        thresholds: &[Threshold],
        horizon_us: u64,
        clock: Clock,
        stop: Arc<Stop>,
    ) -> Collector {
        let thresholds = crate::outputs::gates::aborting(thresholds);
        if !thresholds.is_empty() {
            let every_us = (horizon_us / 100).max(AbortOnFail::min_every_us(clock));
            self.abort = Some(AbortOnFail {
                thresholds,
                every_us,
                next_us: every_us,
                clock,
                stop,
                aborted: None,
            });
        }
        self
    }

    /// The live counts, shared with whoever shows or waits on them (the progress line, the completion wait);
    /// `None` unless [`Collector::counting`].
    pub fn ledger(&self) -> Option<Arc<Mutex<Ledger>>> {
        self.ledger.clone()
    }

    /// Writes `e` to the log and shows it to the analysis, the counts, the metrics and the abort check. After a
    /// write fails nothing more is written (the log may end in a part of that line); the error is kept and
    /// returned by the next [`Collector::flush`] and by [`Collector::finish`], and the source decides: the
    /// simulated run finishes its simulation and fails, the live run's [`Collector::collect`] fails at its next
    /// tick.
    pub fn push(&mut self, e: Event) {
        if self.write_error.is_none()
            && let Err(err) = self.writer.append(&e)
        {
            self.write_error = Some(err);
        }
        if let Some(l) = &self.ledger {
            l.lock().unwrap_or_else(|p| p.into_inner()).see(&e);
        }
        if let Some(r) = &mut self.recorder {
            r.see(&e);
        }
        let t_us = e.t_us;
        self.analysis.push(e);
        self.check_abort(t_us);
    }

    fn check_abort(&mut self, t_us: u64) {
        let Some(a) = &mut self.abort else {
            return;
        };
        if a.aborted.is_some() || t_us < a.next_us {
            return;
        }
        let started = Instant::now();
        let partial = self.analysis.snapshot();
        if let Some(why) = crate::outputs::gates::first_abort(&a.thresholds, &partial, t_us) {
            a.stop.request(format!("threshold {why}; abort_on_fail"));
            a.aborted = Some(why);
        }
        let took_us = started.elapsed().as_micros() as u64;
        a.next_us = t_us
            + match a.clock {
                Clock::Simulated => a.every_us,
                Clock::RealTime => a.every_us.max(took_us.saturating_mul(10)),
            };
    }

    /// Puts what was written so far on disk. Errors: a write that failed before (see [`Collector::push`]), or this
    /// flush.
    pub fn flush(&mut self) -> eventlog::Result<()> {
        if let Some(e) = &self.write_error {
            return Err(again(e));
        }
        let flushed = self.writer.flush();
        if let Err(e) = &flushed {
            self.write_error = Some(again(e));
        }
        flushed
    }

    /// Closes the log and finishes the analysis. Errors: the first write that failed (the report is then not
    /// made: a run whose log is incomplete has no report), or the last flush.
    pub fn finish(mut self) -> eventlog::Result<Collected> {
        if let Some(e) = self.write_error.take() {
            return Err(e);
        }
        let events = self.writer.written();
        self.writer.finish()?;
        Ok(Collected {
            report: self.analysis.finish(),
            events,
            recorder: self.recorder,
            aborted: self.abort.and_then(|a| a.aborted),
        })
    }

    /// Collects every event sent on `rx` as it arrives, flushing once a second even when none comes. When every
    /// sender is gone, `last` is given the messages still open (taken out of the [`Ledger`]; none unless
    /// [`Collector::counting`]) and what it returns is
    /// collected too (they are lost; the run is finished), made one at a time as they are written. Then
    /// [`Collector::finish`]. Errors: a write or flush that failed, at the next tick (the channel is then dropped,
    /// so the producers' sends fail and they stop sending).
    pub async fn collect<L: IntoIterator<Item = Event>>(
        mut self,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
        last: impl FnOnce(OpenMessages) -> L + Send,
    ) -> eventlog::Result<Collected> {
        let mut tick = tokio::time::interval(eventlog::FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(e) => self.push(e),
                    None => break,
                },
                _ = tick.tick() => self.flush()?,
            }
        }
        let open = self
            .ledger
            .as_ref()
            .map(|l| std::mem::take(&mut l.lock().unwrap_or_else(|p| p.into_inner()).open))
            .unwrap_or_default();
        for e in last(open) {
            self.push(e);
        }
        self.finish()
    }
}

/// Live counts, kept by the collector from the events it writes: what the progress line shows and what the
/// completion wait of a live run reads.
#[derive(Debug, Default)]
pub struct Ledger {
    /// `scheduled` events.
    pub scheduled: u64,
    /// `published` events (acknowledged publishes).
    pub published: u64,
    /// `publish_failed` events.
    pub publish_failed: u64,
    /// Completions that closed an open message (a second completion of one message is not counted).
    pub completed: u64,
    /// `duplicate` events.
    pub duplicates: u64,
    /// `lost` events.
    pub lost: u64,
    /// Scheduled and not yet completed, failed or lost: what is still in flight.
    pub open: OpenMessages,
}

impl Ledger {
    /// Counts one event.
    pub fn see(&mut self, e: &Event) {
        match &e.kind {
            EventKind::Scheduled { id, .. } => {
                self.scheduled += 1;
                if self.open.open(id) {
                    // Its completion came first (producers race: the pacer's `scheduled` is forwarded by the
                    // answers loop, the completion by the tracker).
                    self.completed += 1;
                }
            }
            EventKind::Published { .. } => self.published += 1,
            EventKind::PublishFailed { id, .. } => {
                self.publish_failed += 1;
                self.open.close(id);
            }
            EventKind::Completed { id, .. } if self.open.complete(id) => self.completed += 1,
            EventKind::Duplicate { .. } => self.duplicates += 1,
            EventKind::Lost { id } => {
                self.lost += 1;
                self.open.close(id);
            }
            _ => {}
        }
    }
}

/// The messages still open (scheduled, not closed by a completion, a publish failure or a loss), per stream as
/// two range sets: its memory grows with the gaps between closed messages, not with how many are open, so a
/// million messages that nobody consumes cost a few bytes, not a hash set of a million ids.
#[derive(Debug, Default)]
pub struct OpenMessages {
    streams: std::collections::HashMap<String, (SeqSet, SeqSet)>,
    count: u64,
}

impl OpenMessages {
    /// Marks a scheduled message open; true if its completion came first ([`OpenMessages::complete`]), so it is
    /// not opened but counts as completed now.
    pub fn open(&mut self, id: &MsgId) -> bool {
        let (scheduled, closed) = self.stream(&id.stream);
        if !scheduled.insert(id.seq) {
            return false;
        }
        if closed.contains(id.seq) {
            return true;
        }
        self.count += 1;
        false
    }

    /// A completion: closes the message if open (true). One that comes before its `scheduled` is kept as closed
    /// (false), so the `scheduled` does not open it ([`OpenMessages::open`] then says so): the producers race,
    /// and a message completed must never be declared lost.
    pub fn complete(&mut self, id: &MsgId) -> bool {
        let (scheduled, closed) = self.stream(&id.stream);
        if scheduled.contains(id.seq) {
            let was_open = closed.insert(id.seq);
            self.count -= u64::from(was_open);
            was_open
        } else {
            closed.insert(id.seq);
            false
        }
    }

    /// Closes an open message; false if it was not open (not scheduled here, or closed already).
    pub fn close(&mut self, id: &MsgId) -> bool {
        let Some((scheduled, closed)) = self.streams.get_mut(&id.stream) else {
            return false;
        };
        let was_open = scheduled.contains(id.seq) && closed.insert(id.seq);
        self.count -= u64::from(was_open);
        was_open
    }

    /// How many are open.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The open messages, by stream name then sequence number, made one at a time.
    pub fn into_ids(self) -> impl Iterator<Item = MsgId> {
        let mut streams: Vec<(String, (SeqSet, SeqSet))> = self.streams.into_iter().collect();
        streams.sort_by(|a, b| a.0.cmp(&b.0));
        streams.into_iter().flat_map(|(name, (scheduled, closed))| {
            closed.into_missing(scheduled).map(move |seq| MsgId {
                stream: name.clone(),
                seq,
            })
        })
    }

    fn stream(&mut self, name: &str) -> &mut (SeqSet, SeqSet) {
        if !self.streams.contains_key(name) {
            self.streams.insert(name.to_string(), Default::default());
        }
        self.streams.get_mut(name).expect("inserted above")
    }
}

/// The same write error again (an I/O error is not `Clone`): kept to be returned at every later flush and at the
/// end.
fn again(e: &eventlog::Error) -> eventlog::Error {
    let copy = |error: &std::io::Error| std::io::Error::new(error.kind(), error.to_string());
    match e {
        eventlog::Error::CreateFailed { path, error } => eventlog::Error::CreateFailed {
            path: path.clone(),
            error: copy(error),
        },
        eventlog::Error::WriteFailed { path, error } => eventlog::Error::WriteFailed {
            path: path.clone(),
            error: copy(error),
        },
        eventlog::Error::ReadFailed { path, error } => eventlog::Error::ReadFailed {
            path: path.clone(),
            error: copy(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;

    fn header() -> Event {
        Event::new(
            0,
            Source::Harness,
            EventKind::RunFinished {
                interrupted: false,
                reason: None,
            },
        )
    }

    /// A disk that fills up mid-run (Linux's `/dev/full` answers every write with ENOSPC): the failure is kept,
    /// every later flush says so again, nothing more is written, and `finish` fails rather than report on a log
    /// that lost events.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_that_fails_is_said_at_every_flush_and_at_the_end() {
        let writer = EventLogWriter::create(Path::new("/dev/full")).unwrap();
        let mut c = Collector {
            writer,
            write_error: None,
            analysis: Analysis::InOrder(Analyzer::default()),
            ledger: None,
            recorder: None,
            abort: None,
        };
        c.push(header());
        let first = c.flush().unwrap_err().to_string();
        assert!(first.contains("/dev/full"), "{first}");
        // Events go on being counted, and the error stays.
        c.push(header());
        assert_eq!(c.flush().unwrap_err().to_string(), first);
        assert_eq!(c.finish().err().map(|e| e.to_string()), Some(first));
    }

    /// With a quiet producer, what was sent is on disk within a second (paused clock: no real waiting).
    #[tokio::test(start_paused = true)]
    async fn the_collector_flushes_every_second() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let c = Collector::create(&p, header(), Order::InOrder, None).unwrap();
        let task = tokio::spawn(c.collect(rx, |_| Vec::new()));
        tx.send(header()).unwrap();
        tx.send(header()).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_eq!(
            eventlog::read(&p).unwrap().0.len(),
            3,
            "flushed by the tick, the run still going"
        );
        drop(tx);
        assert_eq!(task.await.unwrap().unwrap().events, 3);
    }

    /// Producers race: a completion the tracker reports before the pacer's `scheduled` reaches the collector is
    /// still a completion, and the message is neither open nor lost; a second completion is not counted again.
    #[test]
    fn a_completion_that_arrives_before_its_scheduled_event_still_closes_the_message() {
        let id = |seq| MsgId {
            stream: "upscale".into(),
            seq,
        };
        let completed = |seq| {
            Event::new(
                9,
                Source::Worker,
                EventKind::Completed {
                    id: id(seq),
                    pod: "p".into(),
                    received_us: None,
                    processing_start_us: None,
                    processing_end_us: None,
                },
            )
        };
        let scheduled = |seq| {
            Event::new(
                seq,
                Source::Harness,
                EventKind::Scheduled {
                    id: id(seq),
                    intended_us: seq,
                },
            )
        };
        let mut l = Ledger::default();
        for e in [
            scheduled(0),
            completed(1),
            completed(1),
            scheduled(1),
            scheduled(2),
            completed(0),
        ] {
            l.see(&e);
        }
        assert_eq!((l.scheduled, l.completed, l.open.len()), (3, 2, 1));
        assert_eq!(l.open.into_ids().collect::<Vec<_>>(), vec![id(2)]);
    }
}
