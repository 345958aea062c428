//! Events out of time order, analysed in order: [`analyze`] (a whole log in memory, sorted) and [`Reordering`]
//! (a stream through a bounded window, as `analyze DIR` and a live run's collector read).

use super::*;
use std::collections::{BinaryHeap, VecDeque};

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
    /// Held events, released by time and then arrival.
    buf: Held2,
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
    /// Boxed: a held entry is 24 bytes, where an `Event` is hundreds (its largest kind); the runs and the heap
    /// grow by doubling, and inline events doubled `analyze`'s peak memory.
    event: Box<Event>,
}

/// How many sorted runs [`Held2`] keeps before it puts events on its heap.
const MAX_RUNS: usize = 8;

/// The held events, released in (time, arrival) order: as sorted runs (each event appended to the run whose last
/// event is the latest not after it) and, when no run takes it and [`MAX_RUNS`] exist, a min-heap. A live log is
/// a few producers' streams interleaved, each in its own time order (the pacer's `scheduled` at their intended
/// instants, `published` at the answers, completions as workers report them): a handful of runs take nearly every
/// event in O(1), where a heap of 262,144 events took 28 % of `analyze`'s time on a million-message log
/// (`perf record`). The release order is the heap's exactly: (time, arrival) is unique and every run is sorted by
/// it.
#[derive(Clone, Default)]
struct Held2 {
    runs: Vec<VecDeque<Held>>,
    heap: BinaryHeap<Held>,
    len: usize,
}

impl Held2 {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, h: Held) {
        self.len += 1;
        // The run whose last event is the latest not after this one (arrival only grows, so it sorts after it).
        let best = self
            .runs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.back().map(|b| (i, b.t_us)))
            .filter(|&(_, t)| t <= h.t_us)
            .max_by_key(|&(_, t)| t);
        match best {
            Some((i, _)) => self.runs[i].push_back(h),
            None if self.runs.len() < MAX_RUNS => self.runs.push(VecDeque::from([h])),
            None => self.heap.push(h),
        }
    }

    /// Where the first held event is: a run's index, or `None` for the heap; and its time.
    fn first(&self) -> Option<(Option<usize>, u64)> {
        let mut first: Option<(Option<usize>, (u64, u64))> =
            self.heap.peek().map(|h| (None, (h.t_us, h.arrival)));
        for (i, r) in self.runs.iter().enumerate() {
            if let Some(f) = r.front()
                && first.is_none_or(|(_, key)| (f.t_us, f.arrival) < key)
            {
                first = Some((Some(i), (f.t_us, f.arrival)));
            }
        }
        first.map(|(at, (t, _))| (at, t))
    }

    fn pop(&mut self, at: Option<usize>) -> Option<Held> {
        let h = match at {
            None => self.heap.pop(),
            Some(i) => {
                let h = self.runs[i].pop_front();
                if self.runs[i].is_empty() {
                    self.runs.swap_remove(i);
                }
                h
            }
        }?;
        self.len -= 1;
        Some(h)
    }

    fn pop_first(&mut self) -> Option<Held> {
        let (at, _) = self.first()?;
        self.pop(at)
    }
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
            buf: Held2::default(),
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
        while let Some((at, t_us)) = self.buf.first()
            && (t_us + self.window_us <= self.max_t || self.buf.len() > self.max_held)
        {
            let h = self.buf.pop(at).expect("non-empty");
            self.released_t = h.t_us;
            self.analyzer.push(&h.event);
        }
    }

    pub fn finish(mut self) -> RunReport {
        while let Some(h) = self.buf.pop_first() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use std::cmp::Reverse;

    fn held(t_us: u64, arrival: u64) -> Held {
        Held {
            t_us,
            arrival,
            event: Box::new(Event::new(
                t_us,
                Source::Harness,
                EventKind::Lost {
                    id: MsgId {
                        stream: "s".into(),
                        seq: arrival,
                    },
                },
            )),
        }
    }

    /// The runs release exactly what a min-heap of (time, arrival) releases, pop for pop, on interleaved sorted
    /// streams (a live log's shape, with ties), on more streams than runs (the heap takes the rest), and on
    /// shuffled input.
    #[test]
    fn the_runs_release_in_the_order_of_a_heap_of_time_and_arrival() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for (streams, jitter) in [(1, 0), (2, 0), (3, 5), (12, 0), (1, 1_000_000)] {
            let mut clocks = vec![0u64; streams];
            let (mut runs, mut heap) = (Held2::default(), BinaryHeap::new());
            for arrival in 0..50_000u64 {
                let s = rng.random_range(0..streams);
                clocks[s] += rng.random_range(0..3);
                let t = clocks[s] * 10 + rng.random_range(0..=jitter);
                runs.push(held(t, arrival));
                heap.push(Reverse((t, arrival)));
                assert_eq!(runs.len(), heap.len());
                // Release some now and then, as the window does.
                while rng.random_range(0..3) == 0 && !heap.is_empty() {
                    let Reverse(want) = heap.pop().unwrap();
                    let (_, t_first) = runs.first().unwrap();
                    assert_eq!(t_first, want.0);
                    let got = runs.pop_first().unwrap();
                    assert_eq!((got.t_us, got.arrival), want);
                }
            }
            while let Some(Reverse(want)) = heap.pop() {
                let got = runs.pop_first().unwrap();
                assert_eq!((got.t_us, got.arrival), want);
            }
            assert!(runs.pop_first().is_none());
            assert_eq!(runs.len(), 0);
        }
    }
}
