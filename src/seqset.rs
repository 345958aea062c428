//! A set of sequence numbers kept as ranges, for "which messages have completed": the analysis and the
//! completion tracker ask it of every completion, and it costs what is still open, not what is done.

use std::collections::BTreeMap;

/// Sequence numbers, as sorted disjoint ranges `[start, end)`: a stream's completed messages, in memory that
/// grows with the gaps (messages not completed: in flight or lost), not with the count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    ranges: BTreeMap<u64, u64>,
}

impl SeqSet {
    pub fn contains(&self, x: u64) -> bool {
        self.ranges
            .range(..=x)
            .next_back()
            .is_some_and(|(_, &end)| x < end)
    }

    /// Adds `x`; false if it was there.
    pub fn insert(&mut self, x: u64) -> bool {
        // The common case: the next number after the last range (completions come roughly in order).
        if let Some(mut last) = self.ranges.last_entry()
            && *last.get() == x
        {
            *last.get_mut() = x.saturating_add(1);
            return true;
        }
        let before = self.ranges.range(..=x).next_back().map(|(&s, &e)| (s, e));
        let start = match before {
            Some((_, e)) if x < e => return false,
            Some((s, e)) if e == x => s,
            _ => x,
        };
        // (Callers bound sequence numbers far below u64::MAX; at it, the range would be empty.)
        let next = x.saturating_add(1);
        let end = self.ranges.remove(&next).unwrap_or(next);
        self.ranges.insert(start, end);
        true
    }

    /// How many ranges: what the set costs (16 bytes and a tree node each).
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }

    /// Every number in the set, in order.
    pub fn into_values(self) -> impl Iterator<Item = u64> {
        self.ranges.into_iter().flat_map(|(start, end)| start..end)
    }

    /// The numbers of `of` that are not in this set, in order, made one at a time and jumping over this set's
    /// ranges (so a million numbers present cost one step, not a million). Owns both sets, so the numbers can be
    /// streamed after their owner is gone.
    pub fn into_missing(self, of: SeqSet) -> impl Iterator<Item = u64> {
        let mut wanted = of.ranges.into_iter();
        let (mut x, mut end) = (0, 0);
        std::iter::from_fn(move || {
            loop {
                if x >= end {
                    (x, end) = wanted.next()?;
                    continue;
                }
                match self.ranges.range(..=x).next_back() {
                    Some((_, &covered)) if x < covered => x = covered,
                    _ => {
                        x += 1;
                        return Some(x - 1);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_sequence_numbers_are_kept_as_ranges() {
        let mut s = SeqSet::default();
        for x in [5, 3, 4, 10, 6, 0] {
            assert!(s.insert(x));
        }
        assert!(!s.insert(4));
        assert_eq!(s.ranges(), 3); // [0], [3, 6], [10]
        assert!(s.insert(1) && s.insert(2));
        assert_eq!(s.ranges(), 2); // [0, 6], [10]
        for x in 0..=6 {
            assert!(s.contains(x));
        }
        assert!(!s.contains(7) && s.contains(10) && !s.contains(11));
    }

    #[test]
    fn missing_numbers_are_the_gaps_of_one_set_within_another() {
        let mut all = SeqSet::default();
        for x in (0..8).chain(20..23) {
            all.insert(x);
        }
        let mut done = SeqSet::default();
        for x in [0, 1, 2, 5, 6, 21, 30] {
            done.insert(x);
        }
        assert_eq!(
            done.into_missing(all.clone()).collect::<Vec<_>>(),
            [3, 4, 7, 20, 22]
        );
        assert_eq!(all.clone().into_missing(all.clone()).count(), 0);
        assert_eq!(SeqSet::default().into_missing(all).count(), 11);
    }
}
