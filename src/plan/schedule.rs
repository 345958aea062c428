//! The schedule: a pure function of the plan and its seed that lists every message (and `http` step) with its
//! *intended* offset from the run start. The pacer hands these instants out at run time; every latency is measured
//! from them. Same plan and seed → identical schedule; another seed changes only the random parts (Poisson
//! arrivals, random burst spread).

use crate::plan::workload::{Arrivals, Phase, Plan, Spread};
use crate::units::SeededRng;
use crate::units::{Micros, US_PER_S, derive_seed};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp1};
use std::io::Write;

/// One scheduled item. 16 bytes plus the kind, so a schedule of millions stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub offset_us: u64,
    pub stream: u32,
    pub kind: ItemKind,
    /// Top-level phase of the stream that produced the item (counting from 1).
    pub phase: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ItemKind {
    Message {
        seq: u64,
    },
    /// The n-th http step of the stream (counting from 1), in schedule order.
    Http {
        step: u32,
    },
}

/// An `http` phase as it sits in the schedule, for the runner to execute.
pub fn http_steps(plan: &Plan, stream: usize) -> Vec<&crate::plan::workload::HttpStep> {
    fn walk<'a>(
        phases: &'a [Phase],
        out: &mut Vec<&'a crate::plan::workload::HttpStep>,
        times: u32,
    ) {
        for _ in 0..times {
            for p in phases {
                match p {
                    Phase::Http(h) => out.push(h),
                    Phase::Repeat { times, phases } => walk(phases, out, *times),
                    _ => {}
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&plan.streams[stream].phases, &mut out, 1);
    out
}

/// The whole run's schedule, all streams merged in time order (ties: stream order, then the stream's own order).
/// It holds every item; [`iter`] gives the same items one at a time, in memory that does not grow with the run.
pub fn build(plan: &Plan) -> Vec<Item> {
    iter(plan).collect()
}

/// The schedule, generated as it is read: all streams merged in time order (ties: stream order, then the
/// stream's own order), exactly the items of [`build`]. Memory is per stream and phase, not per item (a random
/// burst's offsets are drawn, and sorted, when it starts).
pub fn iter(plan: &Plan) -> Schedule<'_> {
    let mut streams: Vec<StreamGen<'_>> = (0..plan.streams.len())
        .map(|s| StreamGen::new(plan, s))
        .collect();
    let heads = streams.iter_mut().map(Iterator::next).collect();
    Schedule { streams, heads }
}

/// The offset of the last item of `plan`'s schedule (zero for an empty one), by a pass that holds nothing.
pub fn last_offset_of(plan: &Plan) -> Micros {
    Micros(iter(plan).last().map_or(0, |i| i.offset_us))
}

/// The schedule read once ahead of a run: the offset of its last item (zero for an empty one), and its items when
/// there are at most `max_held` of them, so a simulated run can send those instead of generating the schedule a
/// second time. Memory: at most `max_held` items (40 bytes each), whatever the schedule's length.
pub struct Ahead {
    pub last_offset: Micros,
    /// Every item, in order, or `None` when there were more than `max_held`.
    pub items: Option<Vec<Item>>,
}

/// See [`Ahead`].
pub fn ahead(plan: &Plan, max_held: usize) -> Ahead {
    let mut items = Some(Vec::new());
    let mut last = 0;
    for item in iter(plan) {
        last = item.offset_us;
        if let Some(held) = &mut items {
            if held.len() < max_held {
                held.push(item);
            } else {
                items = None;
            }
        }
    }
    Ahead {
        last_offset: Micros(last),
        items,
    }
}

/// See [`iter`].
pub struct Schedule<'a> {
    streams: Vec<StreamGen<'a>>,
    /// Each stream's next item.
    heads: Vec<Option<Item>>,
}

impl Iterator for Schedule<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        // A handful of streams: a scan beats a heap. The first stream wins a tie.
        let (s, _) = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(s, h)| h.map(|h| (s, h.offset_us)))
            .min_by_key(|&(s, t)| (t, s))?;
        let item = self.heads[s].take();
        self.heads[s] = self.streams[s].next();
        item
    }
}

/// One stream's schedule, in time order.
pub fn build_stream(plan: &Plan, stream: usize) -> Vec<Item> {
    StreamGen::new(plan, stream).collect()
}

/// A list of phases being walked: the next one, and how many more passes (a `repeat`).
struct Frame<'a> {
    phases: &'a [Phase],
    next: usize,
    passes_left: u32,
}

/// The phase emitting now, as offsets from the run start.
enum Leaf<'a> {
    Done,
    Rate {
        start: u64,
        shape: &'a crate::plan::workload::RateShape,
        duration_us: u64,
        total_s: f64,
        limit: f64,
        k: f64,
        arrivals: Arrivals,
        /// The last arrival's instant (seconds into the phase): where the next one is looked for from.
        near: f64,
    },
    Even {
        start: u64,
        within_us: u64,
        count: u64,
        i: u64,
    },
    /// A random burst, drawn and sorted when it starts.
    Drawn(std::vec::IntoIter<u64>),
    Trace {
        start: u64,
        offsets: std::slice::Iter<'a, Micros>,
    },
}

/// One stream's items, generated in time order: phases are laid end to end and each emits in order, so the
/// stream is in order without sorting; sequence numbers are given in that order (a message's rank in its
/// stream).
struct StreamGen<'a> {
    stream: u32,
    rng: SeededRng,
    stack: Vec<Frame<'a>>,
    leaf: Leaf<'a>,
    /// Where the next phase starts.
    cursor: u64,
    seq: u64,
    http: u32,
    /// Top-level phase of the current leaf (counting from 1).
    phase: u32,
}

impl<'a> StreamGen<'a> {
    fn new(plan: &'a Plan, stream: usize) -> Self {
        StreamGen {
            stream: stream as u32,
            rng: SeededRng::seed_from_u64(derive_seed(plan.seed, &[stream as u64, 0x5c4e_d01e])),
            stack: vec![Frame {
                phases: &plan.streams[stream].phases,
                next: 0,
                passes_left: 0,
            }],
            leaf: Leaf::Done,
            cursor: 0,
            seq: 0,
            http: 0,
            phase: 0,
        }
    }

    /// The current leaf's next offset.
    fn leaf_next(&mut self) -> Option<u64> {
        match &mut self.leaf {
            Leaf::Done => None,
            Leaf::Rate {
                start,
                shape,
                duration_us,
                total_s,
                limit,
                k,
                arrivals,
                near,
            } => {
                if *k >= *limit {
                    return None;
                }
                let t = shape.inverse_near(*k, *total_s, *near);
                *near = t;
                let off = (t * US_PER_S as f64).round() as u64;
                if off >= *duration_us {
                    *k = f64::INFINITY;
                    return None;
                }
                *k += match arrivals {
                    Arrivals::Even => 1.0,
                    Arrivals::Poisson => Exp1.sample(&mut self.rng),
                };
                Some(*start + off)
            }
            Leaf::Even {
                start,
                within_us,
                count,
                i,
            } => {
                if *i >= *count {
                    return None;
                }
                let off = (*i as u128 * *within_us as u128 / *count as u128) as u64;
                *i += 1;
                Some(*start + off)
            }
            Leaf::Drawn(offsets) => offsets.next(),
            Leaf::Trace { start, offsets } => offsets.next().map(|o| *start + o.0),
        }
    }

    /// Moves to the next phase that emits: a new leaf (`None`), an `http` item (`Some`), or the end of the stream
    /// (`Err`).
    fn advance(&mut self) -> Result<Option<Item>, ()> {
        loop {
            let depth = self.stack.len();
            let Some(frame) = self.stack.last_mut() else {
                return Err(());
            };
            if frame.next == frame.phases.len() {
                if frame.passes_left > 0 {
                    frame.passes_left -= 1;
                    frame.next = 0;
                } else {
                    self.stack.pop();
                }
                continue;
            }
            let phase = &frame.phases[frame.next];
            frame.next += 1;
            if depth == 1 {
                self.phase = frame.next as u32;
            }
            let start = self.cursor;
            match phase {
                Phase::Idle { duration } => self.cursor += duration.0,
                Phase::Rate {
                    shape,
                    duration,
                    arrivals,
                } => {
                    let total_s = duration.as_secs_f64();
                    let k = match arrivals {
                        Arrivals::Poisson => Exp1.sample(&mut self.rng),
                        Arrivals::Even => 0.0,
                    };
                    self.leaf = Leaf::Rate {
                        start,
                        shape,
                        duration_us: duration.0,
                        total_s,
                        limit: shape.cumulative(total_s, total_s),
                        k,
                        arrivals: *arrivals,
                        near: 0.0,
                    };
                    self.cursor += duration.0;
                    return Ok(None);
                }
                Phase::Burst {
                    count,
                    within,
                    spread,
                } => {
                    self.cursor += within.0;
                    self.leaf = match (spread, within.0) {
                        (Spread::Random, w) if w > 0 => {
                            let mut drawn: Vec<u64> = (0..*count)
                                .map(|_| start + self.rng.random_range(0..w))
                                .collect();
                            drawn.sort_unstable();
                            Leaf::Drawn(drawn.into_iter())
                        }
                        (_, w) => Leaf::Even {
                            start,
                            within_us: w,
                            count: *count,
                            i: 0,
                        },
                    };
                    return Ok(None);
                }
                Phase::Trace {
                    offsets, duration, ..
                } => {
                    self.cursor += duration.0;
                    self.leaf = Leaf::Trace {
                        start,
                        offsets: offsets.iter(),
                    };
                    return Ok(None);
                }
                Phase::Repeat { times, phases } => {
                    if *times > 0 {
                        self.stack.push(Frame {
                            phases,
                            next: 0,
                            passes_left: times - 1,
                        });
                    }
                }
                Phase::Http(_) => {
                    self.http += 1;
                    return Ok(Some(Item {
                        offset_us: start,
                        stream: self.stream,
                        kind: ItemKind::Http { step: self.http },
                        phase: self.phase,
                    }));
                }
            }
        }
    }
}

impl Iterator for StreamGen<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(offset_us) = self.leaf_next() {
                let item = Item {
                    offset_us,
                    stream: self.stream,
                    kind: ItemKind::Message { seq: self.seq },
                    phase: self.phase,
                };
                self.seq += 1;
                return Some(item);
            }
            self.leaf = Leaf::Done;
            match self.advance() {
                Ok(Some(http)) => return Some(http),
                Ok(None) => {}
                Err(()) => return None,
            }
        }
    }
}

/// What a real-time run sends: given items, or the plan's schedule (or one shard of it) generated as it is due,
/// so a long run does not hold its schedule.
#[derive(Debug, Clone)]
pub enum Items {
    List(Vec<Item>),
    Plan(Option<Shard>),
}

impl Items {
    pub fn iter<'a>(&'a self, plan: &'a Plan) -> Box<dyn Iterator<Item = Item> + 'a> {
        match self {
            Items::List(items) => Box::new(items.iter().copied()),
            Items::Plan(None) => Box::new(iter(plan)),
            Items::Plan(Some(shard)) => {
                let shard = *shard;
                Box::new(iter(plan).filter(move |it| shard.owns_item(it)))
            }
        }
    }

    /// The last item's offset (zero for none), by a pass that holds nothing.
    pub fn last_offset(&self, plan: &Plan) -> Micros {
        Micros(self.iter(plan).last().map_or(0, |i| i.offset_us))
    }
}

/// Writes the schedule as CSV: `stream,seq,kind,phase,intended_offset_us`.
pub fn write_csv(plan: &Plan, items: &[Item], out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(out);
    writeln!(w, "stream,seq,kind,phase,intended_offset_us")?;
    for it in items {
        let name = &plan.streams[it.stream as usize].name;
        match it.kind {
            ItemKind::Message { seq } => {
                writeln!(w, "{name},{seq},message,{},{}", it.phase, it.offset_us)?
            }
            ItemKind::Http { step } => {
                writeln!(w, "{name},{step},http,{},{}", it.phase, it.offset_us)?
            }
        }
    }
    w.flush()
}

/// The schedule as JSON Lines: one object per item with the CSV's columns (`stream`, `seq`, `kind`, `phase`,
/// `intended_offset_us`; an http step's `seq` is its step number).
pub fn write_json_lines(plan: &Plan, items: &[Item], out: &mut dyn Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(out);
    for it in items {
        let (seq, kind) = match it.kind {
            ItemKind::Message { seq } => (seq, "message"),
            ItemKind::Http { step } => (u64::from(step), "http"),
        };
        let line = serde_json::json!({
            "stream": plan.streams[it.stream as usize].name,
            "seq": seq,
            "kind": kind,
            "phase": it.phase,
            "intended_offset_us": it.offset_us,
        });
        writeln!(w, "{line}")?;
    }
    w.flush()
}

/// One part of a schedule split across machines: shard `index` of `count`, counting from 0 (as a Kubernetes
/// Indexed Job numbers its pods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("`{s}` is not a shard: write INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    pub fn owns_seq(&self, seq: u64) -> bool {
        seq % u64::from(self.count) == u64::from(self.index)
    }

    /// Whether a scheduled item is this shard's: messages by sequence number, `http` steps by step number.
    pub fn owns_item(&self, item: &Item) -> bool {
        match item.kind {
            ItemKind::Message { seq } => self.owns_seq(seq),
            ItemKind::Http { step } => self.owns_seq(u64::from(step)),
        }
    }

    /// Whether an event belongs to this shard: `Some` for the events of one message or `http` step (by the same
    /// rule as [`shard`]), `None` for what every shard sees alike (the cluster, the queue, the run itself).
    pub fn owns_event(&self, kind: &crate::event::EventKind) -> Option<bool> {
        match kind {
            crate::event::EventKind::HttpCalled { step, .. } => {
                Some(self.owns_seq(u64::from(*step)))
            }
            k => k.msg_id().map(|id| self.owns_seq(id.seq)),
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The items of one shard, in schedule order: each stream's messages go round-robin by sequence number, so every
/// shard carries an even share of every phase, and `http` steps go by step number. The shards of a schedule,
/// together, are exactly the schedule.
pub fn shard(items: &[Item], shard: Shard) -> Vec<Item> {
    items
        .iter()
        .filter(|it| shard.owns_item(it))
        .copied()
        .collect()
}

/// Offset of the last scheduled item (zero for an empty schedule).
pub fn last_offset(items: &[Item]) -> Micros {
    Micros(items.iter().map(|i| i.offset_us).max().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan(phases: &str) -> Plan {
        let src = format!("[run]\nseed = 3\n[[stream]]\nname = \"s\"\n{phases}");
        crate::plan::workload::parse(Path::new("w.toml"), &src).unwrap()
    }

    // The schedule as it was first built, eagerly (every item, then one sort): the lazy generator must give
    // exactly these items.
    /// One stream's schedule, in time order.
    fn eager_stream(plan: &Plan, stream: usize) -> Vec<Item> {
        let mut g = Gen {
            stream: stream as u32,
            rng: SeededRng::seed_from_u64(derive_seed(plan.seed, &[stream as u64, 0x5c4e_d01e])),
            out: Vec::new(),
            seq: 0,
            http: 0,
            phase: 0,
        };
        let mut cursor = 0u64;
        for (i, p) in plan.streams[stream].phases.iter().enumerate() {
            g.phase = i as u32 + 1;
            cursor = g.phase_items(p, cursor);
        }
        // Phases are laid end to end and each emits in order, except a random burst spread, which is sorted here.
        g.out.sort_by_key(|i| i.offset_us);
        // Sequence numbers follow time order, so `seq` is the message's rank in its stream.
        let mut seq = 0;
        for item in &mut g.out {
            if let ItemKind::Message { seq: s } = &mut item.kind {
                *s = seq;
                seq += 1;
            }
        }
        g.out
    }

    struct Gen {
        stream: u32,
        rng: SeededRng,
        out: Vec<Item>,
        seq: u64,
        http: u32,
        phase: u32,
    }

    impl Gen {
        fn msg(&mut self, offset_us: u64) {
            self.out.push(Item {
                offset_us,
                stream: self.stream,
                kind: ItemKind::Message { seq: self.seq },
                phase: self.phase,
            });
            self.seq += 1;
        }

        /// Emits a phase starting at `start`; returns where the next phase starts.
        fn phase_items(&mut self, phase: &Phase, start: u64) -> u64 {
            match phase {
                Phase::Idle { duration } => start + duration.0,
                Phase::Rate {
                    shape,
                    duration,
                    arrivals,
                } => {
                    let total = duration.as_secs_f64();
                    let limit = shape.cumulative(total, total);
                    let mut k = 0.0_f64;
                    if *arrivals == Arrivals::Poisson {
                        k = Exp1.sample(&mut self.rng);
                    }
                    let mut near = 0.0;
                    while k < limit {
                        let t = shape.inverse_near(k, total, near);
                        near = t;
                        let off = (t * US_PER_S as f64).round() as u64;
                        if off >= duration.0 {
                            break;
                        }
                        self.msg(start + off);
                        k += match arrivals {
                            Arrivals::Even => 1.0,
                            Arrivals::Poisson => Exp1.sample(&mut self.rng),
                        };
                    }
                    start + duration.0
                }
                Phase::Burst {
                    count,
                    within,
                    spread,
                } => {
                    for i in 0..*count {
                        let off = match (spread, within.0) {
                            (_, 0) => 0,
                            (Spread::Even, w) => (i as u128 * w as u128 / *count as u128) as u64,
                            (Spread::Random, w) => self.rng.random_range(0..w),
                        };
                        self.msg(start + off);
                    }
                    start + within.0
                }
                Phase::Trace {
                    offsets, duration, ..
                } => {
                    for o in offsets {
                        self.msg(start + o.0);
                    }
                    start + duration.0
                }
                Phase::Repeat { times, phases } => {
                    let mut cursor = start;
                    for _ in 0..*times {
                        for p in phases {
                            cursor = self.phase_items(p, cursor);
                        }
                    }
                    cursor
                }
                Phase::Http(_) => {
                    self.http += 1;
                    self.out.push(Item {
                        offset_us: start,
                        stream: self.stream,
                        kind: ItemKind::Http { step: self.http },
                        phase: self.phase,
                    });
                    start
                }
            }
        }
    }

    fn offsets(p: &Plan) -> Vec<u64> {
        build(p).iter().map(|i| i.offset_us).collect()
    }

    fn eager(plan: &Plan) -> Vec<Item> {
        let mut all: Vec<Item> = Vec::new();
        for s in 0..plan.streams.len() {
            all.extend(eager_stream(plan, s));
        }
        all.sort_by_key(|i| (i.offset_us, i.stream));
        all
    }

    #[test]
    fn the_generator_gives_exactly_the_eager_schedule() {
        let mut plans = Vec::new();
        for entry in
            std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads")).unwrap()
        {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                plans.push(crate::plan::workload::load(&path, &[]).unwrap());
            }
        }
        assert!(plans.len() >= 5, "the repository's workloads");
        plans.push(plan(
            "[[stream.phase]]\nkind = \"burst\"\ncount = 500\nwithin = \"10s\"\nspread = \"random\"\n\
             [[stream.phase]]\nkind = \"poisson\"\nrate = \"40/s\"\nduration = \"30s\"\n\
             [[stream.phase]]\nkind = \"repeat\"\ntimes = 4\nphases = [{ kind = \"burst\", count = 7, within = \"3s\", spread = \"random\" }, { kind = \"idle\", duration = \"1s\" }, { kind = \"ramp\", from = \"1/s\", to = \"20/s\", duration = \"9s\" }]\n",
        ));
        for seed in [1, 2, 3] {
            let mut p = plans.last().unwrap().clone();
            p.seed = seed;
            plans.push(p);
        }
        for p in &plans {
            let lazy = build(p);
            assert!(!lazy.is_empty(), "{}", p.name);
            assert_eq!(lazy, eager(p), "{}", p.name);
            assert_eq!(last_offset_of(p), last_offset(&lazy));
            // Read ahead: the same end, and the same items when they fit; none held when they do not.
            let held = ahead(p, lazy.len());
            assert_eq!(held.last_offset, last_offset(&lazy));
            assert_eq!(held.items.as_ref(), Some(&lazy), "{}", p.name);
            let over = ahead(p, lazy.len() - 1);
            assert_eq!((over.last_offset, over.items), (last_offset(&lazy), None));
        }
    }

    #[test]
    fn a_generated_shard_is_the_shard_of_the_built_schedule() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/burst.toml");
        let p = crate::plan::workload::load(&path, &[]).unwrap();
        let all = build(&p);
        let mut together = 0;
        for index in 0..3 {
            let s = Shard { index, count: 3 };
            let lazy: Vec<Item> = Items::Plan(Some(s)).iter(&p).collect();
            assert_eq!(lazy, shard(&all, s));
            assert_eq!(Items::Plan(Some(s)).last_offset(&p), last_offset(&lazy));
            together += lazy.len();
        }
        assert_eq!(together, all.len());
        assert_eq!(Items::Plan(None).iter(&p).collect::<Vec<_>>(), all);
        assert_eq!(Items::List(all.clone()).iter(&p).collect::<Vec<_>>(), all);
    }

    #[test]
    fn constant_is_evenly_spaced() {
        let o = offsets(&plan(
            "[[stream.phase]]\nkind = \"constant\"\nrate = \"10/s\"\nduration = \"60s\"\n",
        ));
        assert_eq!(o.len(), 600);
        assert!(o.windows(2).all(|w| w[1] - w[0] == 100_000));
    }

    #[test]
    fn phases_are_laid_end_to_end() {
        let o = offsets(&plan(
            "[[stream.phase]]\nkind = \"idle\"\nduration = \"10m\"\n[[stream.phase]]\nkind = \"burst\"\ncount = 3\n",
        ));
        assert_eq!(o, vec![600_000_000; 3]);
    }

    #[test]
    fn repeat_makes_bursts_of_bursts() {
        let o = offsets(&plan(
            "[[stream.phase]]\nkind = \"repeat\"\ntimes = 3\nphases = [{ kind = \"burst\", count = 2 }, { kind = \"idle\", duration = \"1m\" }]\n",
        ));
        assert_eq!(
            o,
            vec![0, 0, 60_000_000, 60_000_000, 120_000_000, 120_000_000]
        );
    }

    #[test]
    fn seed_changes_only_random_parts() {
        let even = "[[stream.phase]]\nkind = \"constant\"\nrate = \"5/s\"\nduration = \"10s\"\n";
        let poisson = "[[stream.phase]]\nkind = \"poisson\"\nrate = \"5/s\"\nduration = \"10s\"\n";
        let mut a = plan(even);
        let b = a.clone();
        a.seed = 99;
        assert_eq!(offsets(&a), offsets(&b));
        let mut c = plan(poisson);
        let d = c.clone();
        c.seed = 99;
        assert_ne!(offsets(&c), offsets(&d));
    }
}
