//! The real-time pacer: hands out the schedule's *intended* instants on an absolute clock (open loop). It never
//! waits for the target; a slow target makes sends late, never the schedule, and each send's lateness is recorded.
//!
//! It waits on a thread of its own ([`Pacer::next_blocking`]) with the OS's high-resolution timer (the thread's
//! timer slack set to 1 ns), and never spins. (tokio's timer ticks in milliseconds. Spinning the last 40 µs before
//! each instant, as this pacer once did, bought microseconds nobody needs and cost 0.46 of a core at 50,000
//! sends a second, 31 % of the harness's CPU by `perf record`; an OS sleep costs 6–9 µs of CPU and wakes 6–8 µs
//! late at the median, 20–36 µs at p99, measured on a 2-core VM by `clock_nanosleep` at 10,000 and 50,000 a
//! second.)
//!
//! Each wake-up costs more than the work of a send, so items close together share one: the first item not yet
//! out and every later one intended within `[run] timer_slack` of it form a group, released at its last item's
//! instant (no item before its own instant, none later than the slack), so one sleep of this thread and one
//! wake-up of the runtime serve the group. Each item's lateness still counts from its own instant. At 50,000
//! sends a second the default 200 µs halved the harness's CPU per message (22–24 µs to 10.7–11.0 µs) for a p99
//! lateness of 0.23 ms ([`DEFAULT_TIMER_SLACK`](crate::plan::workload::DEFAULT_TIMER_SLACK)).

use crate::plan::schedule::Item;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// An item this close to its instant is released at once (at most this early).
pub const EARLY_RELEASE: Duration = Duration::from_micros(25);
/// A blocking pacer sleeps until this long before an instant: about the OS's median wake-up latency, so the
/// median send is on time rather than that much late.
pub const WAKE_AHEAD: Duration = Duration::from_micros(10);
/// Longest single OS sleep, so a cancelled run is noticed during long idle phases.
const SLEEP_CHUNK: Duration = Duration::from_millis(20);

/// The most items in one group: an instant burst is released in groups of this many, back to back.
const GROUP_MAX: usize = 1024;

/// Hands out `items` (in time order) at their instants; reads them as they are due.
pub struct Pacer<I: Iterator<Item = Item>> {
    origin: Instant,
    items: std::iter::Peekable<I>,
    /// `[run] timer_slack`: how late an item may be released to share its group's wake-up.
    slack: Duration,
    /// The group being waited for or released, in time order.
    group: VecDeque<Item>,
    /// When the group is released (the instant of its last item); `None` once it has been.
    release: Option<Instant>,
    /// When the pacer first saw the stop: from then on it hands out only the items of the group in hand intended
    /// before it.
    stopped_at: Option<Instant>,
}

/// An item due now: its intended instant and how late the pacer released it.
#[derive(Debug, Clone, Copy)]
pub struct Due {
    pub item: Item,
    pub intended: Instant,
    pub lateness: Duration,
}

impl<I: Iterator<Item = Item>> Pacer<I> {
    /// A pacer of `items` from `origin`, grouping items within `slack` of a group's first (see the module's
    /// documentation; zero releases every item at its own instant).
    pub fn new(origin: Instant, items: impl IntoIterator<IntoIter = I>, slack: Duration) -> Self {
        Pacer {
            origin,
            items: items.into_iter().peekable(),
            slack,
            group: VecDeque::new(),
            release: None,
            stopped_at: None,
        }
    }

    fn instant(origin: Instant, item: &Item) -> Instant {
        origin + Duration::from_micros(item.offset_us)
    }

    /// Takes the next group from the schedule when the last one is out: its first item and every later one
    /// intended within the slack of it (at most [`GROUP_MAX`]); it is released at its last item's instant, so no
    /// item is released before its own instant (beyond [`EARLY_RELEASE`]) and none later than the slack. False
    /// when the schedule is done.
    fn gather(&mut self) -> bool {
        if !self.group.is_empty() {
            return true;
        }
        let Some(first) = self.items.next() else {
            return false;
        };
        let mut release = Self::instant(self.origin, &first);
        let until = release + self.slack;
        self.group.push_back(first);
        while self.group.len() < GROUP_MAX
            && let Some(next) = self
                .items
                .next_if(|i| Self::instant(self.origin, i) <= until)
        {
            release = Self::instant(self.origin, &next);
            self.group.push_back(next);
        }
        self.release = Some(release);
        true
    }

    /// Blocks (sleeping, not spinning) until the next item's group is due, releases it at most [`EARLY_RELEASE`]
    /// early, and returns its items one at a time, each with its own lateness. Returns `None` when the schedule is
    /// done. Once `cancelled()` turns true it returns only the items of the group in hand intended before it
    /// noticed (held back by the slack, they were due: without a slack they would have been sent), then `None`
    /// (the rest of the group is kept).
    pub fn next_blocking(&mut self, cancelled: impl Fn() -> bool) -> Option<Due> {
        if self.stopped_at.is_none() && cancelled() {
            self.stopped_at = Some(Instant::now());
        }
        if let Some(stop) = self.stopped_at {
            return self.due_before(stop);
        }
        if !self.gather() {
            return None;
        }
        if let Some(at) = self.release {
            let at = at.into_std();
            loop {
                let left = at.saturating_duration_since(std::time::Instant::now());
                if left <= EARLY_RELEASE {
                    break;
                }
                if cancelled() {
                    let stop = Instant::now();
                    self.stopped_at = Some(stop);
                    return self.due_before(stop);
                }
                std::thread::sleep((left - WAKE_AHEAD).min(SLEEP_CHUNK));
            }
            self.release = None;
        }
        self.pop()
    }

    /// After a stop at `stop`: the next item of the group in hand if it was intended before it.
    fn due_before(&mut self, stop: Instant) -> Option<Due> {
        let front = self.group.front()?;
        if Self::instant(self.origin, front) > stop {
            return None;
        }
        self.pop()
    }

    fn pop(&mut self) -> Option<Due> {
        let item = self.group.pop_front()?;
        let intended = Self::instant(self.origin, &item);
        Some(Due {
            item,
            intended,
            lateness: Instant::now().saturating_duration_since(intended),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::schedule::ItemKind;

    fn items(offsets_us: &[u64]) -> Vec<Item> {
        offsets_us
            .iter()
            .enumerate()
            .map(|(seq, &offset_us)| Item {
                offset_us,
                stream: 0,
                kind: ItemKind::Message { seq: seq as u64 },
                phase: 1,
            })
            .collect()
    }

    /// The groups a slack makes, as (release offset µs, offsets in the group).
    fn groups(offsets_us: &[u64], slack_us: u64) -> Vec<(u64, Vec<u64>)> {
        let origin = Instant::now();
        let mut p = Pacer::new(origin, items(offsets_us), Duration::from_micros(slack_us));
        let mut out = Vec::new();
        while p.gather() {
            let release = p.release.take().unwrap().duration_since(origin).as_micros() as u64;
            out.push((release, p.group.drain(..).map(|i| i.offset_us).collect()));
        }
        out
    }

    /// Items within the slack of a group's first share its release, at the last one's instant: none goes before
    /// its own instant, none later than the slack; items farther apart than the slack each go at their own.
    #[test]
    fn items_within_the_slack_of_a_groups_first_are_released_together_at_the_last_ones_instant() {
        // 50,000/s: 20 µs apart, a 200 µs slack groups 11 (the first and the ten within 200 µs of it).
        let fast: Vec<u64> = (0..25).map(|i| i * 20).collect();
        assert_eq!(
            groups(&fast, 200),
            vec![
                (200, (0..=10).map(|i| i * 20).collect()),
                (420, (11..=21).map(|i| i * 20).collect()),
                (480, vec![440, 460, 480]),
            ]
        );
        // 1,000/s: nothing to group.
        assert_eq!(
            groups(&[0, 1_000, 2_000], 200),
            vec![(0, vec![0]), (1_000, vec![1_000]), (2_000, vec![2_000])]
        );
        // No slack: each item at its own instant, even 20 µs apart; equal instants still go together.
        assert_eq!(
            groups(&[0, 20, 20, 40], 0),
            vec![(0, vec![0]), (20, vec![20, 20]), (40, vec![40])]
        );
    }

    /// An instant burst larger than a group goes in full groups back to back, in order.
    #[test]
    fn an_instant_burst_is_released_in_bounded_groups_in_order() {
        let g = groups(&vec![5; GROUP_MAX * 2 + 3], 200);
        assert_eq!(
            g.iter().map(|(r, i)| (*r, i.len())).collect::<Vec<_>>(),
            vec![(5, GROUP_MAX), (5, GROUP_MAX), (5, 3)]
        );
    }

    /// Released for real: every item in order, none before its instant by more than [`EARLY_RELEASE`], and the
    /// lateness each reports is its release time less its own instant (so the slack's delay is counted).
    #[test]
    fn released_items_come_in_order_and_report_their_own_lateness() {
        let origin = Instant::now() + Duration::from_millis(5);
        let offsets: Vec<u64> = (0..30).map(|i| i * 20).collect();
        let mut p = Pacer::new(origin, items(&offsets), Duration::from_micros(200));
        let mut seen = Vec::new();
        while let Some(due) = p.next_blocking(|| false) {
            let now = Instant::now();
            assert!(now + EARLY_RELEASE >= due.intended, "released too early");
            // Items released with a group's last are late by the distance to it.
            let release_us = [200, 420, 580][seen.len() / 11];
            let floor = Duration::from_micros(release_us - due.item.offset_us)
                .saturating_sub(EARLY_RELEASE);
            assert!(
                due.lateness >= floor,
                "{:?} < {floor:?} at {}",
                due.lateness,
                due.item.offset_us
            );
            seen.push(due.item.offset_us);
        }
        assert_eq!(seen, offsets);
    }

    /// A stop while a group is held back: the items intended before it are still handed out (without a slack
    /// they would have gone already), the later ones are not, and nothing more after that.
    #[test]
    fn a_stop_hands_out_what_the_slack_held_back_of_what_was_due() {
        let origin = Instant::now();
        let stop = origin + Duration::from_millis(15);
        let mut p = Pacer::new(
            origin,
            items(&[0, 10_000, 150_000, 160_000]),
            Duration::from_millis(200),
        );
        let stopped = || Instant::now() >= stop;
        let mut out = Vec::new();
        while let Some(due) = p.next_blocking(stopped) {
            out.push(due.item.offset_us);
        }
        assert_eq!(out, vec![0, 10_000]);
        assert!(p.next_blocking(|| false).is_none(), "stopped for good");
        // A stop before anything was due hands out nothing.
        let mut p = Pacer::new(
            Instant::now() + Duration::from_secs(3600),
            items(&[0, 10]),
            Duration::from_micros(200),
        );
        assert!(p.next_blocking(|| true).is_none());
        assert!(p.next_blocking(|| false).is_none(), "stopped for good");
    }
}
