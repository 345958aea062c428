//! The analysis's messages in flight, by sequence number: the one piece of its state that grows with the load.
//!
//! A stream's sequence numbers are dense (0, 1, 2, … as scheduled) and close roughly in order, so most open
//! messages sit in a sliding window indexed by `seq − base`: a slot a message, no hashing, no per-entry overhead.
//! The window is made of fixed blocks, so growing it never copies it (a doubling vector would hold the old and the
//! new copy at once) and the blocks behind it are freed as it slides. What does not fit the window (a sequence
//! number far ahead of it, a straggler far behind it, a hostile log's scattered numbers) goes to a hash map, and the
//! window never holds more than four slots per open message past [`MIN_WINDOW`], so no input can make it large.

use std::collections::{HashMap, VecDeque};

/// The smallest window that is never thinned: below it, empty slots cost less than moving entries.
const MIN_WINDOW: usize = 4096;
/// Slots per block of the window.
const BLOCK: usize = 4096;

/// Open entries by sequence number: a dense window plus a hash map for the rest.
#[derive(Debug, Clone)]
pub(crate) struct OpenSeqs<T> {
    /// The sequence number of the window's first slot.
    base: u64,
    /// The window's first slot is `blocks[0][head]`; slot `i` is at `head + i` counting across blocks.
    head: usize,
    blocks: VecDeque<Box<[Option<T>]>>,
    /// The window's length in slots (from `base`).
    len: usize,
    /// How many of the window's slots hold an entry.
    in_window: usize,
    overflow: HashMap<u64, T, foldhash::fast::RandomState>,
}

impl<T> Default for OpenSeqs<T> {
    fn default() -> Self {
        OpenSeqs {
            base: 0,
            head: 0,
            blocks: VecDeque::new(),
            len: 0,
            in_window: 0,
            overflow: HashMap::default(),
        }
    }
}

impl<T> OpenSeqs<T> {
    pub fn len(&self) -> usize {
        self.in_window + self.overflow.len()
    }

    /// The window index of `seq`, if the window covers it.
    fn slot(&self, seq: u64) -> Option<usize> {
        seq.checked_sub(self.base)
            .and_then(|d| usize::try_from(d).ok())
            .filter(|&d| d < self.len)
    }

    fn at(&self, i: usize) -> &Option<T> {
        let p = self.head + i;
        &self.blocks[p / BLOCK][p % BLOCK]
    }

    fn at_mut(&mut self, i: usize) -> &mut Option<T> {
        let p = self.head + i;
        &mut self.blocks[p / BLOCK][p % BLOCK]
    }

    pub fn contains(&self, seq: u64) -> bool {
        match self.slot(seq) {
            Some(i) => self.at(i).is_some(),
            None => self.overflow.contains_key(&seq),
        }
    }

    pub fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        match self.slot(seq) {
            Some(i) => self.at_mut(i).as_mut(),
            None => self.overflow.get_mut(&seq),
        }
    }

    /// The entry of `seq`, made by `make` if there is none.
    pub fn get_or_insert_with(&mut self, seq: u64, make: impl FnOnce() -> T) -> &mut T {
        if self.len == 0 && !self.overflow.contains_key(&seq) {
            self.base = seq;
            self.head = 0;
            self.blocks.clear();
        }
        if self.slot(seq).is_none() {
            // Grow the window to reach `seq` only while it stays at least a quarter full.
            let reach = seq
                .checked_sub(self.base)
                .and_then(|d| usize::try_from(d).ok())
                .and_then(|d| d.checked_add(1))
                .filter(|&len| len <= (4 * (self.in_window + 1)).max(MIN_WINDOW));
            let Some(len) = reach else {
                return self.overflow.entry(seq).or_insert_with(make);
            };
            self.grow(len);
        }
        let i = self.slot(seq).expect("the window covers it");
        if self.at(i).is_none() {
            *self.at_mut(i) = Some(make());
            self.in_window += 1;
        }
        self.at_mut(i).as_mut().expect("filled above")
    }

    /// Lengthens the window to `len` slots; numbers it now covers that were kept in the map move in, so each
    /// number has one home.
    fn grow(&mut self, len: usize) {
        while self.blocks.len() * BLOCK < self.head + len {
            self.blocks
                .push_back(std::iter::repeat_with(|| None).take(BLOCK).collect());
        }
        let old = self.len;
        self.len = len;
        if !self.overflow.is_empty() {
            for i in old..len {
                if let Some(v) = self.overflow.remove(&(self.base + i as u64)) {
                    *self.at_mut(i) = Some(v);
                    self.in_window += 1;
                }
            }
        }
    }

    pub fn remove(&mut self, seq: u64) -> Option<T> {
        match self.slot(seq) {
            Some(i) => {
                let v = self.at_mut(i).take();
                if v.is_some() {
                    self.in_window -= 1;
                    self.slide();
                }
                v
            }
            None => self.overflow.remove(&seq),
        }
    }

    /// Drops the empty slots at the front (freeing each block as it empties), and moves old entries that pin a
    /// sparse window (a lost message at its front while thousands behind it completed) to the hash map, so the
    /// window stays dense.
    fn slide(&mut self) {
        while self.len > 0 {
            let sparse = self.len > MIN_WINDOW && 4 * self.in_window < self.len;
            match self.at_mut(0).take() {
                None => {}
                Some(v) if sparse => {
                    self.in_window -= 1;
                    self.overflow.insert(self.base, v);
                }
                Some(v) => {
                    *self.at_mut(0) = Some(v);
                    return;
                }
            }
            self.base += 1;
            self.len -= 1;
            self.head += 1;
            if self.head == BLOCK {
                self.blocks.pop_front();
                self.head = 0;
            }
        }
    }

    /// Every entry with its sequence number: the window's in order, then the rest in no order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        (0..self.len)
            .filter_map(move |i| self.at(i).as_ref().map(|v| (self.base + i as u64, v)))
            .chain(self.overflow.iter().map(|(&s, v)| (s, v)))
    }

    /// Slots the window holds: at most four per entry in it, past the minimum.
    #[cfg(test)]
    fn window_slots(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use std::collections::BTreeMap;

    /// The store against a `BTreeMap` under random mixes of the shapes real logs have (in order, out of order,
    /// stragglers, far jumps, re-inserts), checking every answer and the window's bound.
    #[test]
    fn open_seqs_answer_as_a_map_does_and_the_window_stays_dense() {
        for seed in 0..40u64 {
            let mut rng = crate::units::SeededRng::seed_from_u64(seed);
            let mut got = OpenSeqs::<u64>::default();
            let mut want = BTreeMap::<u64, u64>::new();
            let mut next = rng.random_range(0..1_000u64);
            for step in 0..20_000u64 {
                match rng.random_range(0..100) {
                    // Schedule the next message; sometimes far ahead, or a hostile scattered number.
                    0..=49 => {
                        let seq = match rng.random_range(0..100) {
                            0 => next + rng.random_range(1_000..1_000_000),
                            1 => rng.random_range(0..u64::MAX / 2),
                            _ => next,
                        };
                        next = next.max(seq) + 1;
                        *got.get_or_insert_with(seq, || step) += 1;
                        *want.entry(seq).or_insert(step) += 1;
                    }
                    // Close one of the oldest, or any.
                    50..=89 => {
                        let pick = if rng.random_range(0..4) > 0 {
                            want.keys().next().copied()
                        } else {
                            want.keys()
                                .nth(rng.random_range(0..want.len().max(1)))
                                .copied()
                        };
                        if let Some(seq) = pick {
                            assert_eq!(
                                got.remove(seq),
                                want.remove(&seq),
                                "seed {seed} step {step}"
                            );
                        }
                    }
                    // Ask about a number near the front.
                    _ => {
                        let seq = next.saturating_sub(rng.random_range(0..50));
                        assert_eq!(got.contains(seq), want.contains_key(&seq));
                        assert_eq!(got.get_mut(seq).copied(), want.get(&seq).copied());
                    }
                }
                assert_eq!(got.len(), want.len());
                assert!(
                    got.window_slots() <= MIN_WINDOW.max(4 * got.in_window + 4)
                        && got.blocks.len() <= got.window_slots().div_ceil(BLOCK) + 1,
                    "seed {seed} step {step}: {} slots for {} entries",
                    got.window_slots(),
                    got.in_window
                );
            }
            let mut all: Vec<(u64, u64)> = got.iter().map(|(s, v)| (s, *v)).collect();
            all.sort();
            assert_eq!(all, want.into_iter().collect::<Vec<_>>(), "seed {seed}");
        }
    }

    #[test]
    fn a_million_messages_in_order_stay_in_the_window() {
        let mut open = OpenSeqs::<u64>::default();
        for seq in 0..1_000_000 {
            open.get_or_insert_with(seq, || seq);
        }
        assert_eq!((open.in_window, open.overflow.len()), (1_000_000, 0));
        // A lost message at the front does not pin the window as the rest complete.
        for seq in 1..1_000_000 {
            open.remove(seq);
        }
        assert_eq!(open.len(), 1);
        assert!(open.window_slots() <= MIN_WINDOW);
        assert_eq!(open.iter().map(|(s, _)| s).collect::<Vec<_>>(), [0]);
    }
}
