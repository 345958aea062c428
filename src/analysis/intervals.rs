//! End-to-end latency by completion interval, for the `.hlog` interval log: one histogram for all streams and one
//! per stream, per reporting period. Built as messages complete, so the analysis never holds the messages: a
//! closed interval is kept as sparse runs of (bucket, count) ([`Runs`]: tens to hundreds of bytes, merged without
//! decoding when the period grows), and the period grows with the run so that a run keeps at most
//! [`MAX_INTERVALS`] of them (10 s up to two hours, then 60 s, doubled for runs over a day). The histograms are
//! made only when the log is written ([`Intervals::decode`]).

use super::series::new_histogram;
use hdrhistogram::Histogram;

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

/// Recorded values as runs of (the value's bucket, as the bucket's highest equivalent value; count), in value
/// order: the histogram of [`new_histogram`]'s bounds and precision, without its fixed-size counts array (a few
/// hundred KiB whatever it holds). Packed: per run, the value's increase over the previous run's value, then the
/// count, each an unsigned LEB128 varint (a few bytes a run, about what hdrhistogram's V2 encoding takes).
/// [`Intervals::decode`] gives the histogram back, bucket for bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runs(Vec<u8>);

impl Runs {
    /// Packs runs given in increasing value order.
    pub fn from_sorted(runs: impl IntoIterator<Item = (u64, u64)>) -> Runs {
        fn put(out: &mut Vec<u8>, mut v: u64) {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }
        let mut out = Vec::new();
        let mut previous = 0;
        for (value, count) in runs {
            put(&mut out, value - previous);
            put(&mut out, count);
            previous = value;
        }
        Runs(out)
    }

    /// The runs, in value order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut bytes = self.0.iter();
        let mut get = move || {
            let (mut v, mut shift) = (0u64, 0);
            for &b in bytes.by_ref() {
                v |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    return Some(v);
                }
                shift += 7;
            }
            None
        };
        let mut value = 0;
        std::iter::from_fn(move || {
            let delta = get()?;
            let count = get()?;
            value += delta;
            Some((value, count))
        })
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.0.len()
    }
}

/// One closed interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Start of the interval: `slot × period`.
    pub slot: u64,
    pub all: Runs,
    /// (stream index, runs), for the streams that completed messages in it, in stream order.
    pub streams: Vec<(u32, Runs)>,
}

/// The interval being filled: its slot, the values recorded since the last compaction (stream, bucket value), and
/// the compacted runs (stream, bucket value, count), sorted.
#[derive(Debug, Clone, Default)]
struct Open {
    slot: u64,
    samples: Vec<(u32, u64)>,
    runs: Vec<(u32, u64, u64)>,
}

/// Past this many values an open interval is compacted into runs, so its memory is bounded by the buckets it
/// touched, not by the messages that completed in it.
const COMPACT_AT: usize = 1 << 13;

/// The bucket arithmetic of the analysis's histograms (one instance, never recorded into), and the largest value
/// its counts array holds. hdrhistogram's `saturating_record` counts a value at its own bucket while the array
/// holds it (the array reaches past the highest trackable value, to the end of that value's sub-bucket range), and
/// at the highest trackable value's bucket past that.
static BUCKETS: std::sync::LazyLock<(Histogram<u64>, u64)> = std::sync::LazyLock::new(|| {
    let mut probe = new_histogram();
    let (mut held, mut past) = (probe.high(), u64::MAX);
    while past - held > 1 {
        let mid = held + (past - held) / 2;
        if probe.record(mid).is_ok() {
            held = mid;
        } else {
            past = mid;
        }
    }
    (new_histogram(), held)
});

/// The bucket `v` is counted in, by its highest equivalent value, as `saturating_record` counts it.
fn bucket(v: u64) -> u64 {
    let (h, held) = &*BUCKETS;
    h.highest_equivalent(if v > *held { h.high() } else { v })
}

impl Open {
    fn compact(&mut self) {
        if self.samples.is_empty() {
            return;
        }
        self.samples.sort_unstable();
        let mut fresh: Vec<(u32, u64, u64)> = Vec::new();
        for &(s, v) in &self.samples {
            match fresh.last_mut() {
                Some(last) if last.0 == s && last.1 == v => last.2 += 1,
                _ => fresh.push((s, v, 1)),
            }
        }
        self.samples.clear();
        let old = std::mem::take(&mut self.runs);
        self.runs = merge_by(old, fresh, |r| (r.0, r.1), |a, b| a.2 += b.2);
    }

    /// The closed interval, or `None` if nothing completed in it.
    fn close(mut self) -> Option<Interval> {
        self.compact();
        if self.runs.is_empty() {
            return None;
        }
        let mut per: Vec<(u32, Vec<(u64, u64)>)> = Vec::new();
        for &(s, v, n) in &self.runs {
            match per.last_mut() {
                Some(last) if last.0 == s => last.1.push((v, n)),
                _ => per.push((s, vec![(v, n)])),
            }
        }
        let all = per.iter().fold(Vec::new(), |acc, (_, r)| {
            merge_by(acc, r.clone(), |x| x.0, |x, y| x.1 += y.1)
        });
        let all = Runs::from_sorted(all);
        let streams = per
            .into_iter()
            .map(|(s, r)| (s, Runs::from_sorted(r)))
            .collect();
        Some(Interval {
            slot: self.slot,
            all,
            streams,
        })
    }
}

/// Two sorted sequences merged into one, keyed by `key`; equal keys are combined by `add`.
fn merge_by<T, K: Ord>(
    a: Vec<T>,
    b: Vec<T>,
    key: impl Fn(&T) -> K,
    add: impl Fn(&mut T, T),
) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match key(x).cmp(&key(y)) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => {
                    let mut x = a.next().expect("peeked");
                    add(&mut x, b.next().expect("peeked"));
                    out.push(x);
                    continue;
                }
            },
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.push(if take_a { a.next() } else { b.next() }.expect("peeked"));
    }
}

/// The counts of two runs added, bucket by bucket.
fn merge_runs(a: Runs, b: Runs) -> Runs {
    Runs::from_sorted(merge_by(
        a.iter().collect(),
        b.iter().collect(),
        |r| r.0,
        |x, y| x.1 += y.1,
    ))
}

/// `b`'s per-stream runs added into `a`'s.
fn merge_streams(a: Vec<(u32, Runs)>, b: Vec<(u32, Runs)>) -> Vec<(u32, Runs)> {
    merge_by(
        a,
        b,
        |r| r.0,
        |x, y| x.1 = merge_runs(std::mem::take(&mut x.1), y.1),
    )
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

impl Intervals {
    /// Records one message's end-to-end latency at its completion time; `now_us` is the latest time the analysis
    /// has seen (the run's length so far, which sets the period).
    pub fn record(&mut self, completed_us: u64, stream: u32, e2e_us: u64, now_us: u64) {
        let period = period_for(now_us.max(completed_us));
        if period != self.period_us {
            self.regroup(period);
        }
        let slot = completed_us / self.period_us;
        let v = bucket(e2e_us);
        match &self.open {
            Some(o) if o.slot == slot => {}
            Some(o) if o.slot > slot => {
                // Completed before the interval being filled (a late event): into its own interval.
                self.insert_closed(Interval {
                    slot,
                    all: Runs::from_sorted([(v, 1)]),
                    streams: vec![(stream, Runs::from_sorted([(v, 1)]))],
                });
                return;
            }
            _ => {
                self.close();
                self.open = Some(Open {
                    slot,
                    ..Open::default()
                });
            }
        }
        let o = self.open.as_mut().expect("opened");
        o.samples.push((stream, v));
        if o.samples.len() >= COMPACT_AT {
            o.compact();
        }
    }

    /// Closes the interval being filled, if any.
    fn close(&mut self) {
        if let Some(iv) = self.open.take().and_then(Open::close) {
            self.insert_closed(iv);
        }
    }

    /// Adds an interval in slot order, merging it into one already there.
    fn insert_closed(&mut self, iv: Interval) {
        match self.closed.binary_search_by_key(&iv.slot, |c| c.slot) {
            Ok(k) => {
                let c = &mut self.closed[k];
                c.all = merge_runs(std::mem::take(&mut c.all), iv.all);
                c.streams = merge_streams(std::mem::take(&mut c.streams), iv.streams);
            }
            Err(k) => self.closed.insert(k, iv),
        }
    }

    /// Moves every interval to a longer period (a multiple of the current one). The closed intervals are in slot
    /// order, so each new interval is a run of old ones, merged.
    fn regroup(&mut self, period: u64) {
        self.close();
        let old = std::mem::take(&mut self.closed);
        let ratio = period / self.period_us;
        self.period_us = period;
        for mut iv in old {
            iv.slot /= ratio;
            match self.closed.last_mut() {
                Some(last) if last.slot == iv.slot => {
                    last.all = merge_runs(std::mem::take(&mut last.all), iv.all);
                    last.streams = merge_streams(std::mem::take(&mut last.streams), iv.streams);
                }
                _ => self.closed.push(iv),
            }
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

    /// An interval's histograms: all streams, then (stream index, histogram) per stream.
    pub fn decode(iv: &Interval) -> (Histogram<u64>, Vec<(u32, Histogram<u64>)>) {
        (
            histogram(&iv.all),
            iv.streams.iter().map(|(s, r)| (*s, histogram(r))).collect(),
        )
    }

    /// Bytes held by the closed intervals' runs.
    pub fn encoded_bytes(&self) -> usize {
        self.closed
            .iter()
            .map(|c| c.all.bytes() + c.streams.iter().map(|s| s.1.bytes()).sum::<usize>())
            .sum()
    }
}

/// The histogram of some runs: each run's count recorded at its bucket's value, so the counts array (and the V2
/// encoding, and every percentile) is the one of the values recorded.
fn histogram(runs: &Runs) -> Histogram<u64> {
    let mut h = new_histogram();
    for (v, n) in runs.iter() {
        h.saturating_record_n(v, n);
    }
    h
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

    /// The runs give back, byte for byte in V2, the histogram hdrhistogram itself makes of the same values:
    /// recorded directly per interval and stream, against recorded through runs, compaction and two regroups.
    #[test]
    fn runs_give_the_histograms_hdrhistogram_makes_of_the_same_values() {
        use hdrhistogram::serialization::{Serializer, V2Serializer};
        let v2 = |h: &Histogram<u64>| {
            let mut out = Vec::new();
            V2Serializer::new().serialize(h, &mut out).unwrap();
            out
        };
        let mut iv = Intervals::default();
        let end = 30 * 3_600_000_000u64;
        let mut samples: Vec<(u64, u32, u64)> = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut t = 0;
        // 200,000 completions over 30 h (past both regroups), latencies from 0 to past the top of the range.
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t = (t + x % 1_080_000).min(end);
            let (stream, value) = ((x % 3) as u32, (x >> 20) % (1 << (x % 40)));
            iv.record(t, stream, value, t);
            samples.push((t, stream, value));
        }
        iv.finish(end);
        let period = iv.period_us;
        assert_eq!(period, period_for(end));
        let mut seen = 0;
        for c in iv.closed() {
            let (all, per) = Intervals::decode(c);
            let here: Vec<&(u64, u32, u64)> =
                samples.iter().filter(|s| s.0 / period == c.slot).collect();
            let mut want = new_histogram();
            here.iter().for_each(|s| want.saturating_record(s.2));
            assert_eq!(v2(&all), v2(&want), "slot {}", c.slot);
            assert_eq!(all.max(), want.max());
            for (stream, h) in per {
                let mut want = new_histogram();
                here.iter()
                    .filter(|s| s.1 == stream)
                    .for_each(|s| want.saturating_record(s.2));
                assert_eq!(v2(&h), v2(&want), "slot {} stream {stream}", c.slot);
            }
            seen += here.len();
        }
        assert_eq!(seen, samples.len());
    }
}
