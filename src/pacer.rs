//! The real-time pacer: hands out the schedule's *intended* instants on an absolute clock (open loop). It never
//! waits for the target; a slow target makes sends late, never the schedule, and each send's lateness is recorded.
//!
//! Two ways to wait: [`Pacer::next`] on the async runtime (tokio's timer ticks in milliseconds, so it sleeps to
//! within a millisecond and spins the rest), and [`Pacer::next_blocking`] on a thread of its own, which sleeps
//! with the OS's high-resolution timer to within [`SLEEP_MARGIN`] and spins only that. The runner uses the
//! blocking one: at tens of thousands of sends a second, spinning on a runtime worker took a whole core from the
//! publisher.

use crate::schedule::Item;
use std::time::Duration;
use tokio::time::Instant;

/// Sleeping is coarse (1 ms timer wheel); the last stretch before an instant is waited out by yielding.
const SPIN_WINDOW: Duration = Duration::from_micros(1_500);
/// Within this of an instant the pacer busy-waits (at high rates the gaps between sends are this short).
const BUSY_WINDOW: Duration = Duration::from_micros(60);
/// An item this close to its instant is released at once (at most this early).
pub const EARLY_RELEASE: Duration = Duration::from_micros(25);
/// A blocking pacer sleeps until this long before an instant and spins the rest (the thread's timer slack is set
/// to 1 µs, so an OS sleep overshoots by a few microseconds of wake-up latency).
pub const SLEEP_MARGIN: Duration = Duration::from_micros(40);
/// Longest single OS sleep, so a cancelled run is noticed during long idle phases.
const SLEEP_CHUNK: Duration = Duration::from_millis(20);

pub struct Pacer<'a> {
    origin: Instant,
    items: &'a [Item],
    next: usize,
}

/// An item due now: its intended instant and how late the pacer released it.
#[derive(Debug, Clone, Copy)]
pub struct Due {
    pub item: Item,
    pub intended: Instant,
    pub lateness: Duration,
}

impl<'a> Pacer<'a> {
    pub fn new(origin: Instant, items: &'a [Item]) -> Self {
        Pacer {
            origin,
            items,
            next: 0,
        }
    }

    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Waits until the next item's intended instant and returns it; `None` when the schedule is done.
    /// Cancel-safe: an item is consumed only when it is returned.
    pub async fn next(&mut self) -> Option<Due> {
        let item = *self.items.get(self.next)?;
        let intended = self.origin + Duration::from_micros(item.offset_us);
        let now = Instant::now();
        if intended > now {
            if intended - now > SPIN_WINDOW {
                tokio::time::sleep_until(intended - SPIN_WINDOW).await;
            }
            // Yielding lets other tasks run, but each yield also polls the runtime's I/O driver (a system call):
            // the last stretch, shorter than a yield round-trip, is spun on the CPU instead.
            while intended.saturating_duration_since(Instant::now()) > BUSY_WINDOW {
                tokio::task::yield_now().await;
            }
            // At the very end the item is released a little early rather than spun for: above ~40,000 sends a
            // second the gaps are shorter than this, and spinning through every gap took a whole core from the
            // publisher. `lateness` is then 0; the send is never more than `EARLY_RELEASE` early.
            while intended.saturating_duration_since(Instant::now()) > EARLY_RELEASE {
                std::hint::spin_loop();
            }
        }
        let lateness = Instant::now().saturating_duration_since(intended);
        self.next += 1;
        Some(Due {
            item,
            intended,
            lateness,
        })
    }

    /// [`next`](Self::next) for a thread of its own: blocks until the next item's instant (released at most
    /// [`EARLY_RELEASE`] early). Returns `None` when the schedule is done or `cancelled()` turns true while waiting.
    pub fn next_blocking(&mut self, cancelled: impl Fn() -> bool) -> Option<Due> {
        let item = *self.items.get(self.next)?;
        let intended = self.origin + Duration::from_micros(item.offset_us);
        let at = intended.into_std();
        loop {
            let left = at.saturating_duration_since(std::time::Instant::now());
            if left <= EARLY_RELEASE {
                break;
            }
            if left > SLEEP_MARGIN {
                if cancelled() {
                    return None;
                }
                std::thread::sleep((left - SLEEP_MARGIN).min(SLEEP_CHUNK));
            } else {
                std::hint::spin_loop();
            }
        }
        let lateness = Instant::now().saturating_duration_since(intended);
        self.next += 1;
        Some(Due {
            item,
            intended,
            lateness,
        })
    }

    pub fn remaining(&self) -> usize {
        self.items.len() - self.next
    }
}
