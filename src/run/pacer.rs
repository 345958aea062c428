//! The real-time pacer: hands out the schedule's *intended* instants on an absolute clock (open loop). It never
//! waits for the target; a slow target makes sends late, never the schedule, and each send's lateness is recorded.
//!
//! It waits on a thread of its own ([`Pacer::next_blocking`]) with the OS's high-resolution timer (the thread's
//! timer slack set to 1 ns), and never spins. (tokio's timer ticks in milliseconds. Spinning the last 40 µs before
//! each instant, as this pacer once did, bought microseconds nobody needs and cost 0.46 of a core at 50,000
//! sends a second, 31 % of the harness's CPU by `perf record`; an OS sleep costs 6–9 µs of CPU and wakes 6–8 µs
//! late at the median, 20–36 µs at p99, measured on a 2-core VM by `clock_nanosleep` at 10,000 and 50,000 a
//! second.)

use crate::plan::schedule::Item;
use std::time::Duration;
use tokio::time::Instant;

/// An item this close to its instant is released at once (at most this early).
pub const EARLY_RELEASE: Duration = Duration::from_micros(25);
/// A blocking pacer sleeps until this long before an instant: about the OS's median wake-up latency, so the
/// median send is on time rather than that much late.
pub const WAKE_AHEAD: Duration = Duration::from_micros(10);
/// Longest single OS sleep, so a cancelled run is noticed during long idle phases.
const SLEEP_CHUNK: Duration = Duration::from_millis(20);

/// Hands out `items` (in time order) at their instants; reads them as they are due.
pub struct Pacer<I: Iterator<Item = Item>> {
    origin: Instant,
    items: I,
    /// The item being waited for, if the wait was cancelled.
    next: Option<Item>,
}

/// An item due now: its intended instant and how late the pacer released it.
#[derive(Debug, Clone, Copy)]
pub struct Due {
    pub item: Item,
    pub intended: Instant,
    pub lateness: Duration,
}

impl<I: Iterator<Item = Item>> Pacer<I> {
    pub fn new(origin: Instant, items: impl IntoIterator<IntoIter = I>) -> Self {
        Pacer {
            origin,
            items: items.into_iter(),
            next: None,
        }
    }

    /// Blocks (sleeping, not spinning) until the next item's instant, releases it at most [`EARLY_RELEASE`]
    /// early, and returns it. Returns `None` when the schedule is done or `cancelled()` turns true while waiting.
    pub fn next_blocking(&mut self, cancelled: impl Fn() -> bool) -> Option<Due> {
        let item = self.next.take().or_else(|| self.items.next())?;
        let intended = self.origin + Duration::from_micros(item.offset_us);
        let at = intended.into_std();
        loop {
            let left = at.saturating_duration_since(std::time::Instant::now());
            if left <= EARLY_RELEASE {
                break;
            }
            if cancelled() {
                self.next = Some(item);
                return None;
            }
            std::thread::sleep((left - WAKE_AHEAD).min(SLEEP_CHUNK));
        }
        let lateness = Instant::now().saturating_duration_since(intended);
        Some(Due {
            item,
            intended,
            lateness,
        })
    }
}
