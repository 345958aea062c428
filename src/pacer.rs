//! The real-time pacer: hands out the schedule's *intended* instants on an absolute clock (open loop). It never
//! waits for the target; a slow target makes sends late, never the schedule, and each send's lateness is recorded.
//! tokio's timer ticks in milliseconds, so the pacer sleeps to within a millisecond and spins the rest.

use crate::schedule::Item;
use std::time::Duration;
use tokio::time::Instant;

/// Sleeping is coarse (1 ms timer wheel); the last stretch before an instant is waited out by yielding.
const SPIN_WINDOW: Duration = Duration::from_micros(1_500);

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
    pub async fn next(&mut self) -> Option<Due> {
        let item = *self.items.get(self.next)?;
        self.next += 1;
        let intended = self.origin + Duration::from_micros(item.offset_us);
        let now = Instant::now();
        if intended > now {
            if intended - now > SPIN_WINDOW {
                tokio::time::sleep_until(intended - SPIN_WINDOW).await;
            }
            while Instant::now() < intended {
                tokio::task::yield_now().await;
            }
        }
        let lateness = Instant::now().saturating_duration_since(intended);
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
