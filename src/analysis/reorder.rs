//! Events out of time order, analysed in order: [`analyze`] (a whole log in memory, sorted) and [`Reordering`]
//! (a stream through a bounded window, as `analyze DIR` and a live run's collector read).

use super::*;
use std::collections::BinaryHeap;

/// Analyses a run's events (any order; they are sorted by time, stably).
pub fn analyze(mut events: Vec<Event>) -> RunReport {
    events.sort_by_key(|e| e.t_us);
    let mut a = Analyzer::default().keeping_messages();
    for e in &events {
        a.push(e);
    }
    a.finish()
}

/// Streams events into an [`Analyzer`] through a reorder window: events may arrive up to `window_us` out of
/// time order (watchers and subscribers report with different delays) and are still analysed in order.
/// Memory stays bounded by the window, not by the log.
#[derive(Clone)]
pub struct Reordering {
    analyzer: Analyzer,
    /// Held events, ordered by time and then arrival (a min-heap: a live log is out of order by milliseconds at
    /// tens of thousands of events a second, and inserting into a sorted queue moved megabytes per event).
    buf: BinaryHeap<Held>,
    arrivals: u64,
    max_t: u64,
    released_t: u64,
    late: u64,
    window_us: u64,
    /// The most events held at once: past it the earliest is released even inside the window, so memory stays
    /// bounded at high rates (a 60 s window at 300,000 events/s would otherwise hold a whole run).
    max_held: usize,
}

/// The most events [`Reordering`] holds by default: about 0.9 s of a run at 300,000 events a second, minutes of a
/// run at the rates where cluster events arrive seconds late. Tens of MiB.
pub const MAX_HELD_EVENTS: usize = 262_144;

#[derive(Clone)]
struct Held {
    t_us: u64,
    arrival: u64,
    /// Boxed: the heap moves its entries on every push and pop.
    event: Box<Event>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.t_us, self.arrival) == (other.t_us, other.arrival)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed, so the max-heap pops the earliest (time, arrival) first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.t_us, other.arrival).cmp(&(self.t_us, self.arrival))
    }
}

impl Reordering {
    pub fn new(window_us: u64) -> Self {
        Reordering {
            analyzer: Analyzer::default(),
            buf: BinaryHeap::new(),
            arrivals: 0,
            max_t: 0,
            released_t: 0,
            late: 0,
            window_us,
            max_held: MAX_HELD_EVENTS,
        }
    }

    /// The same with at most `max_held` events held at once (at least 1).
    pub fn with_max_held(mut self, max_held: usize) -> Self {
        self.max_held = max_held.max(1);
        self
    }

    /// Keeps every completed message's exact record, as [`Analyzer::keeping_messages`].
    pub fn keeping_messages(mut self) -> Self {
        self.analyzer = self.analyzer.keeping_messages();
        self
    }

    pub fn push(&mut self, e: Event) {
        if e.t_us < self.released_t {
            // Too late to be put in its place: analysed now, and counted.
            self.late += 1;
            self.analyzer.push(&e);
            return;
        }
        self.max_t = self.max_t.max(e.t_us);
        self.arrivals += 1;
        self.buf.push(Held {
            t_us: e.t_us,
            arrival: self.arrivals,
            event: Box::new(e),
        });
        while self.buf.peek().is_some_and(|f| {
            f.t_us + self.window_us <= self.max_t || self.buf.len() > self.max_held
        }) {
            let h = self.buf.pop().expect("non-empty");
            self.released_t = h.t_us;
            self.analyzer.push(&h.event);
        }
    }

    pub fn finish(mut self) -> RunReport {
        while let Some(h) = self.buf.pop() {
            self.analyzer.push(&h.event);
        }
        let late = self.late;
        let mut report = self.analyzer.finish();
        if late > 0 {
            report.warnings.push(format!(
                "{late} events arrived more than {} (or {} events) out of time order and were analysed where they \
                 arrived",
                crate::units::human_us(self.window_us),
                self.max_held
            ));
        }
        report
    }
}

/// How far out of time order a log's events may be and still be analysed in order (`analyze`, and the collector
/// of a live run).
pub const REORDER_WINDOW_US: u64 = 60_000_000;
