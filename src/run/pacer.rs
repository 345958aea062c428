//! The real-time pacer: hands out the schedule's *intended* instants on an absolute clock (open loop). It never
//! waits for the target; a slow target makes sends late, never the schedule, and each send's lateness is recorded.
//!
//! It waits on a thread of its own ([`Pacer::next_blocking`]): it sleeps with the OS's high-resolution timer to
//! within [`SLEEP_MARGIN`] of an instant and spins only that. (tokio's timer ticks in milliseconds, and spinning
//! the rest on a runtime worker took a whole core from the publisher at tens of thousands of sends a second.)

use crate::plan::schedule::Item;
use std::time::Duration;
use tokio::time::Instant;

/// An item this close to its instant is released at once (at most this early).
pub const EARLY_RELEASE: Duration = Duration::from_micros(25);
/// A blocking pacer sleeps until this long before an instant and spins the rest (the thread's timer slack is set
/// to 1 ns, so an OS sleep overshoots only by the wake-up latency, a few microseconds).
pub const SLEEP_MARGIN: Duration = Duration::from_micros(40);
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

    /// Blocks until the next item's instant (released at most [`EARLY_RELEASE`] early) and returns it. Returns
    /// `None` when the schedule is done or `cancelled()` turns true while waiting.
    pub fn next_blocking(&mut self, cancelled: impl Fn() -> bool) -> Option<Due> {
        let item = self.next.take().or_else(|| self.items.next())?;
        let intended = self.origin + Duration::from_micros(item.offset_us);
        let at = intended.into_std();
        loop {
            let left = at.saturating_duration_since(std::time::Instant::now());
            if left <= EARLY_RELEASE {
                break;
            }
            if left > SLEEP_MARGIN {
                if cancelled() {
                    self.next = Some(item);
                    return None;
                }
                std::thread::sleep((left - SLEEP_MARGIN).min(SLEEP_CHUNK));
            } else {
                std::hint::spin_loop();
            }
        }
        let lateness = Instant::now().saturating_duration_since(intended);
        Some(Due {
            item,
            intended,
            lateness,
        })
    }
}
