//! `imagen-load merge DIR...`: one run's results from the results folders of its shards (`run --shard I/N`).
//!
//! Lossless because the analysis is a function of the event log: the shards' logs are merged by time into one
//! log, and everything (histograms included) is recomputed from it. Each message's events come from the shard
//! that owns the message; what every shard sees alike (pods, nodes, replicas, the queue) is taken from one shard
//! only, the lowest index, so nothing is counted twice. Shards that started at different wall-clock instants are
//! put on one time axis by their headers' wall clock (simulated shards all start at 0).

use crate::event::log::{self as eventlog, EventLogWriter, Reader};
use crate::event::{Event, EventKind, Source};
use crate::plan::schedule::Shard;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(
        "{0}: no events.jsonl in this folder\n    fix: pass the results folders that `run --shard I/N` wrote"
    )]
    NoLog(PathBuf),
    #[error(
        "{0}: the log does not start with a run_started header\n    fix: pass results folders written by `imagen-load run`"
    )]
    NoHeader(PathBuf),
    #[error(
        "{0}: this run was not a shard (its header has no `shard`)\n    fix: merge the folders of `run --shard I/N` runs; an unsharded run is already whole"
    )]
    NotShard(PathBuf),
    #[error(
        "the folders are not shards of one run: {first} has {what} `{a}`, {other} has `{b}`\n    fix: pass the shards of one workload, seed and shard count"
    )]
    Mismatch {
        what: &'static str,
        first: PathBuf,
        a: String,
        other: PathBuf,
        b: String,
    },
    #[error("shard {shard} appears twice: {a} and {b}\n    fix: pass each shard's folder once")]
    Duplicate {
        shard: String,
        a: PathBuf,
        b: PathBuf,
    },
    #[error(
        "shard(s) {missing} of {count} are missing\n    fix: pass every shard's results folder, or --partial to merge the ones there are (the report then covers only their messages)"
    )]
    Missing { missing: String, count: u32 },
    #[error("nothing to merge\n    fix: pass the results folders of the shards")]
    Empty,
    #[error(transparent)]
    Log(#[from] eventlog::Error),
}

/// One shard's results folder, as its header describes it.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub dir: PathBuf,
    pub shard: Shard,
    pub header: Event,
    pub run_id: String,
    pub workload: String,
    pub seed: u64,
    pub target: String,
    pub wall_clock_start_unix_us: u64,
}

/// The run id the shards share: a shard's run id without its `-shard-I-of-N` suffix.
pub fn base_run_id(run_id: &str) -> &str {
    match run_id.rfind("-shard-") {
        Some(i) => &run_id[..i],
        None => run_id,
    }
}

/// The run id and folder name of one shard of `run_id`.
pub fn shard_run_id(run_id: &str, shard: Shard) -> String {
    format!("{run_id}-shard-{}-of-{}", shard.index, shard.count)
}

/// Reads the shards' headers and checks they are the shards of one run (all of them, unless `partial`).
/// Returned in shard order.
pub fn inspect(dirs: &[PathBuf], partial: bool) -> Result<Vec<ShardRun>, MergeError> {
    let mut runs = Vec::new();
    for dir in dirs {
        let log = dir.join("events.jsonl");
        if !log.is_file() {
            return Err(MergeError::NoLog(dir.clone()));
        }
        let Some(header) = Reader::open(&log)?.next_event()? else {
            return Err(MergeError::NoHeader(dir.clone()));
        };
        let EventKind::RunStarted {
            run_id,
            workload,
            seed,
            target,
            wall_clock_start_unix_us,
            shard,
            ..
        } = &header.kind
        else {
            return Err(MergeError::NoHeader(dir.clone()));
        };
        let Some(shard) = shard.as_deref().and_then(|s| s.parse::<Shard>().ok()) else {
            return Err(MergeError::NotShard(dir.clone()));
        };
        runs.push(ShardRun {
            dir: dir.clone(),
            shard,
            run_id: run_id.clone(),
            workload: workload.clone(),
            seed: *seed,
            target: target.clone(),
            wall_clock_start_unix_us: *wall_clock_start_unix_us,
            header: header.clone(),
        });
    }
    runs.sort_by_key(|r| r.shard.index);
    let first = runs.first().ok_or(MergeError::Empty)?.clone();
    for r in &runs[1..] {
        let checks: [(&'static str, String, String); 4] = [
            ("workload", first.workload.clone(), r.workload.clone()),
            ("seed", first.seed.to_string(), r.seed.to_string()),
            ("target", first.target.clone(), r.target.clone()),
            (
                "shard count",
                first.shard.count.to_string(),
                r.shard.count.to_string(),
            ),
        ];
        for (what, a, b) in checks {
            if a != b {
                return Err(MergeError::Mismatch {
                    what,
                    first: first.dir.clone(),
                    a,
                    other: r.dir.clone(),
                    b,
                });
            }
        }
    }
    for w in runs.windows(2) {
        if w[0].shard.index == w[1].shard.index {
            return Err(MergeError::Duplicate {
                shard: w[0].shard.to_string(),
                a: w[0].dir.clone(),
                b: w[1].dir.clone(),
            });
        }
    }
    let count = first.shard.count;
    let missing: Vec<String> = (0..count)
        .filter(|i| !runs.iter().any(|r| r.shard.index == *i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() && !partial {
        return Err(MergeError::Missing {
            missing: missing.join(", "),
            count,
        });
    }
    Ok(runs)
}

/// What a merge wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub events: u64,
    /// Events left out: another shard's messages found in a log, and every shard's copy of the shared events but
    /// one.
    pub left_out: u64,
    pub corrupt_lines: u64,
}

/// Merges the shards' logs by time into `out` (an events.jsonl) under one header with `run_id`.
pub fn merge(shards: &[ShardRun], run_id: &str, out: &Path) -> Result<Merged, MergeError> {
    let base = shards
        .iter()
        .map(|s| s.wall_clock_start_unix_us)
        .min()
        .ok_or(MergeError::Empty)?;
    let deltas: Vec<u64> = shards
        .iter()
        .map(|s| s.wall_clock_start_unix_us - base)
        .collect();
    let mut header = shards[0].header.clone();
    if let EventKind::RunStarted {
        run_id: id,
        wall_clock_start_unix_us,
        deadline_us,
        shard,
        ..
    } = &mut header.kind
    {
        *id = run_id.to_string();
        *wall_clock_start_unix_us = base;
        *shard = None;
        *deadline_us = shards
            .iter()
            .zip(&deltas)
            .map(|(s, d)| match &s.header.kind {
                EventKind::RunStarted { deadline_us, .. } => deadline_us + d,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
    }
    let mut writer = EventLogWriter::create(out)?;
    writer.append(&header)?;
    let mut readers = shards
        .iter()
        .map(|s| Reader::open(&s.dir.join("events.jsonl")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut merged = Merged {
        events: 1,
        left_out: 0,
        corrupt_lines: 0,
    };
    let mut finished: Option<(u64, bool, Vec<String>)> = None;
    // The next event of each shard, ordered by (time, shard).
    let mut heads: Vec<Option<Event>> = Vec::with_capacity(shards.len());
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        let next = next_kept(r, &shards[i], deltas[i], i == 0, &mut merged, &mut finished)?;
        if let Some(e) = &next {
            heap.push(Reverse((e.t_us + deltas[i], i)));
        }
        heads.push(next);
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let e = heads[i].take().expect("a head for every heap entry");
        writer.append(&e.shifted(deltas[i]))?;
        merged.events += 1;
        let next = next_kept(
            &mut readers[i],
            &shards[i],
            deltas[i],
            i == 0,
            &mut merged,
            &mut finished,
        )?;
        if let Some(e) = &next {
            heap.push(Reverse((e.t_us + deltas[i], i)));
        }
        heads[i] = next;
    }
    // One closing event: interrupted if any shard was; absent if no shard finished (a crashed run stays so).
    if let Some((t_us, interrupted, reasons)) = finished {
        writer.append(&Event::new(
            t_us,
            Source::Harness,
            EventKind::RunFinished {
                interrupted,
                reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            },
        ))?;
        merged.events += 1;
    }
    for r in &readers {
        merged.corrupt_lines += r.report().corrupt_lines;
    }
    writer.finish()?;
    Ok(merged)
}

/// The shard's next event that goes into the merged log; headers and closing events are folded into the merged
/// ones as they pass.
fn next_kept(
    reader: &mut Reader,
    run: &ShardRun,
    delta: u64,
    keeps_shared: bool,
    merged: &mut Merged,
    finished: &mut Option<(u64, bool, Vec<String>)>,
) -> Result<Option<Event>, MergeError> {
    while let Some(e) = reader.next_event()? {
        match &e.kind {
            EventKind::RunStarted { .. } => continue,
            EventKind::RunFinished {
                interrupted,
                reason,
            } => {
                let f = finished.get_or_insert((0, false, Vec::new()));
                f.0 = f.0.max(e.t_us + delta);
                f.1 |= *interrupted;
                if let Some(r) = reason {
                    f.2.push(format!("shard {}: {r}", run.shard));
                }
                continue;
            }
            EventKind::ResultsIgnored { .. } => return Ok(Some(e)),
            // Each shard's CPU is its own machine's, cumulative per shard: it stays in that shard's report, and a
            // merged run has no one harness to describe (no `delivery.harness`).
            EventKind::HarnessCpu { .. } => continue,
            kind => match run.shard.owns_event(kind) {
                Some(true) => return Ok(Some(e)),
                None if keeps_shared => return Ok(Some(e)),
                _ => merged.left_out += 1,
            },
        }
    }
    Ok(None)
}
