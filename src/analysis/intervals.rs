//! End-to-end latency by completion interval, for the `.hlog` interval log: one histogram for all streams and one
//! per stream, per reporting period. Built as messages complete, so the analysis never holds the messages: a
//! closed interval is kept as its compact V2 encoding (tens to hundreds of bytes), and the period grows with the
//! run so that a run keeps at most [`MAX_INTERVALS`] of them (10 s up to two hours, then 60 s, doubled for runs
//! over a day).

use super::series::new_histogram;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use std::collections::BTreeMap;

/// The reporting period of runs up to [`LONG_RUN_US`].
pub const SHORT_PERIOD_US: u64 = 10_000_000;
/// The reporting period of longer runs, before doubling.
pub const LONG_PERIOD_US: u64 = 60_000_000;
pub const LONG_RUN_US: u64 = 2 * 3600 * 1_000_000;
/// Past this many intervals (a day at 60 s), the period doubles.
pub const MAX_INTERVALS: u64 = 1_440;

/// The reporting period of a run that ends at `end_us`: 10 s up to two hours, else 60 s, doubled until the run
/// fits in [`MAX_INTERVALS`].
pub fn period_for(end_us: u64) -> u64 {
    if end_us <= LONG_RUN_US {
        return SHORT_PERIOD_US;
    }
    let mut p = LONG_PERIOD_US;
    while end_us.div_ceil(p) > MAX_INTERVALS {
        p *= 2;
    }
    p
}

/// One closed interval, V2-encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Start of the interval: `slot × period`.
    pub slot: u64,
    pub all: Vec<u8>,
    /// (stream index, encoding), for the streams that completed messages in it, in stream order.
    pub streams: Vec<(u32, Vec<u8>)>,
}

/// The interval being filled: its slot and histograms (all, then per stream; reused from interval to interval).
#[derive(Debug, Clone)]
struct Open {
    slot: u64,
    all: Histogram<u64>,
    streams: Vec<Option<Histogram<u64>>>,
}

#[derive(Debug, Clone)]
pub struct Intervals {
    pub period_us: u64,
    closed: Vec<Interval>,
    open: Option<Open>,
}

impl Default for Intervals {
    fn default() -> Self {
        Intervals {
            period_us: SHORT_PERIOD_US,
            closed: Vec::new(),
            open: None,
        }
    }
}

fn encode(h: &Histogram<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut out)
        .expect("a histogram encodes into memory");
    out
}

fn decode(bytes: &[u8]) -> Histogram<u64> {
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .expect("an interval decodes as it was encoded");
    h.auto(true);
    h
}

/// Adds `b` into `a`, both encodings.
fn merge_into(a: &mut Vec<u8>, b: &[u8]) {
    let mut h = decode(a);
    h.add(decode(b)).expect("intervals share their bounds");
    *a = encode(&h);
}

impl Intervals {
    /// Records one message's end-to-end latency at its completion time; `now_us` is the latest time the analysis
    /// has seen (the run's length so far, which sets the period).
    pub fn record(&mut self, completed_us: u64, stream: u32, e2e_us: u64, now_us: u64) {
        let period = period_for(now_us.max(completed_us));
        if period != self.period_us {
            self.regroup(period);
        }
        let slot = completed_us / self.period_us;
        match &self.open {
            Some(o) if o.slot == slot => {}
            Some(o) if o.slot > slot => {
                // Completed before the interval being filled (a late event): into its own interval.
                let mut h = new_histogram();
                h.saturating_record(e2e_us);
                let one = Interval {
                    slot,
                    all: encode(&h),
                    streams: vec![(stream, encode(&h))],
                };
                self.insert_closed(one);
                return;
            }
            _ => self.open_slot(slot),
        }
        let o = self.open.as_mut().expect("opened");
        o.all.saturating_record(e2e_us);
        let i = stream as usize;
        if o.streams.len() <= i {
            o.streams.resize(i + 1, None);
        }
        o.streams[i]
            .get_or_insert_with(new_histogram)
            .saturating_record(e2e_us);
    }

    /// Closes the interval being filled (if any) and opens `slot`, reusing the histograms.
    fn open_slot(&mut self, slot: u64) {
        let reuse = self.close();
        self.open = Some(match reuse {
            Some(mut o) => {
                o.slot = slot;
                o.all.reset();
                o.streams
                    .iter_mut()
                    .flatten()
                    .filter(|h| !h.is_empty())
                    .for_each(Histogram::reset);
                o
            }
            None => Open {
                slot,
                all: new_histogram(),
                streams: Vec::new(),
            },
        });
    }

    /// Encodes the open interval into the closed ones; hands back its histograms for reuse.
    fn close(&mut self) -> Option<Open> {
        let o = self.open.take()?;
        if !o.all.is_empty() {
            let streams = o
                .streams
                .iter()
                .enumerate()
                .filter_map(|(i, h)| {
                    h.as_ref()
                        .filter(|h| !h.is_empty())
                        .map(|h| (i as u32, encode(h)))
                })
                .collect();
            self.insert_closed(Interval {
                slot: o.slot,
                all: encode(&o.all),
                streams,
            });
        }
        Some(o)
    }

    /// Adds an interval in slot order, merging it into one already there.
    fn insert_closed(&mut self, iv: Interval) {
        match self.closed.binary_search_by_key(&iv.slot, |c| c.slot) {
            Ok(k) => {
                let c = &mut self.closed[k];
                merge_into(&mut c.all, &iv.all);
                for (s, bytes) in iv.streams {
                    match c.streams.binary_search_by_key(&s, |x| x.0) {
                        Ok(j) => merge_into(&mut c.streams[j].1, &bytes),
                        Err(j) => c.streams.insert(j, (s, bytes)),
                    }
                }
            }
            Err(k) => self.closed.insert(k, iv),
        }
    }

    /// Moves every interval to a longer period (a multiple of the current one). The closed intervals are in slot
    /// order, so each new interval is a run of old ones: each is decoded once, into one sum per tag.
    fn regroup(&mut self, period: u64) {
        let reuse = self.close();
        let old = std::mem::take(&mut self.closed);
        let ratio = period / self.period_us;
        self.period_us = period;
        let mut all = reuse.map_or_else(new_histogram, |o| o.all);
        let mut streams: BTreeMap<u32, Histogram<u64>> = BTreeMap::new();
        let mut i = 0;
        while i < old.len() {
            let slot = old[i].slot / ratio;
            let n = old[i..]
                .iter()
                .take_while(|c| c.slot / ratio == slot)
                .count();
            if n == 1 {
                let mut one = old[i].clone();
                one.slot = slot;
                self.closed.push(one);
                i += 1;
                continue;
            }
            all.reset();
            streams.values_mut().for_each(Histogram::reset);
            for c in &old[i..i + n] {
                all.add(decode(&c.all))
                    .expect("intervals share their bounds");
                for (s, bytes) in &c.streams {
                    streams
                        .entry(*s)
                        .or_insert_with(new_histogram)
                        .add(decode(bytes))
                        .expect("intervals share their bounds");
                }
            }
            self.closed.push(Interval {
                slot,
                all: encode(&all),
                streams: streams
                    .iter()
                    .filter(|(_, h)| !h.is_empty())
                    .map(|(s, h)| (*s, encode(h)))
                    .collect(),
            });
            i += n;
        }
    }

    /// Closes the last interval, with the period of a run that ended at `end_us`.
    pub fn finish(&mut self, end_us: u64) {
        let period = period_for(end_us);
        if period != self.period_us {
            self.regroup(period);
        }
        self.close();
    }

    /// Closed intervals, in time order.
    pub fn closed(&self) -> &[Interval] {
        &self.closed
    }

    /// An interval's histograms, decoded: all streams, then (stream index, histogram) per stream.
    pub fn decode(iv: &Interval) -> (Histogram<u64>, Vec<(u32, Histogram<u64>)>) {
        (
            decode(&iv.all),
            iv.streams.iter().map(|(s, b)| (*s, decode(b))).collect(),
        )
    }

    /// Bytes held by the closed intervals.
    pub fn encoded_bytes(&self) -> usize {
        self.closed
            .iter()
            .map(|c| c.all.len() + c.streams.iter().map(|s| s.1.len()).sum::<usize>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_10_s_then_60_s_then_doubled_to_stay_under_the_cap() {
        assert_eq!(period_for(0), SHORT_PERIOD_US);
        assert_eq!(period_for(LONG_RUN_US), SHORT_PERIOD_US);
        assert_eq!(period_for(LONG_RUN_US + 1), LONG_PERIOD_US);
        assert_eq!(period_for(86_400_000_000), LONG_PERIOD_US);
        assert_eq!(period_for(86_400_000_001), 2 * LONG_PERIOD_US);
        let week = 7 * 86_400_000_000;
        assert_eq!(period_for(week), 8 * LONG_PERIOD_US);
        assert!(week.div_ceil(period_for(week)) <= MAX_INTERVALS);
    }

    #[test]
    fn intervals_regroup_without_losing_a_count() {
        let mut iv = Intervals::default();
        // Two hours of completions every second, stream 0 and 1 alternating, latency = seconds into the run.
        let mut t = 0;
        while t < LONG_RUN_US + 600_000_000 {
            iv.record(t, ((t / 1_000_000) % 2) as u32, t / 1_000_000 + 1, t);
            t += 1_000_000;
        }
        // One late completion, back in the first minute.
        iv.record(5_000_000, 1, 999, t);
        iv.finish(t);
        assert_eq!(iv.period_us, LONG_PERIOD_US);
        let mut total = 0;
        let mut last_slot = None;
        for c in iv.closed() {
            assert!(last_slot < Some(c.slot), "slots in order, once each");
            last_slot = Some(c.slot);
            let (all, per) = Intervals::decode(c);
            assert_eq!(all.len(), per.iter().map(|p| p.1.len()).sum::<u64>());
            total += all.len();
        }
        assert_eq!(total, (LONG_RUN_US + 600_000_000) / 1_000_000 + 1);
        let (first, per) = Intervals::decode(&iv.closed()[0]);
        assert_eq!(first.len(), 61);
        assert_eq!(first.max(), 999);
        assert_eq!(per.len(), 2);
    }
}
