//! The machine the harness runs on: how much CPU the harness used and how busy the whole machine was, as
//! `harness_cpu` events (cumulative from the run's start). A pacer that falls behind on a machine with no CPU to
//! spare is the harness's limit, not the target's; the analysis tells the two apart from these.

use crate::event::{Event, EventKind, Source};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

/// CPU times at the run's start; [`CpuClock::sample`] gives the use since.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    process_us: u64,
    machine: Option<MachineCpu>,
    cores: u32,
}

/// `/proc/stat`'s first line: the whole machine's CPU time, every core, in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MachineCpu {
    busy_us: u64,
    total_us: u64,
}

impl CpuClock {
    /// Reads the CPU times now.
    pub fn start() -> Self {
        CpuClock {
            process_us: process_cpu_us(),
            machine: machine_cpu(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        }
    }

    /// A `harness_cpu` event kind: the CPU used since [`CpuClock::start`].
    pub fn sample(&self) -> EventKind {
        let machine = self.machine.zip(machine_cpu()).map(|(a, b)| MachineCpu {
            busy_us: b.busy_us.saturating_sub(a.busy_us),
            total_us: b.total_us.saturating_sub(a.total_us),
        });
        EventKind::HarnessCpu {
            process_cpu_us: process_cpu_us().saturating_sub(self.process_us),
            machine_busy_us: machine.map(|m| m.busy_us),
            machine_total_us: machine.map(|m| m.total_us),
            cores: self.cores,
        }
    }
}

/// Sends a `harness_cpu` event every `every` (stamped µs since `origin`) until the returned task is aborted.
pub fn start_sampler(
    clock: CpuClock,
    origin: Instant,
    every: Duration,
    events: UnboundedSender<Event>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(origin + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let t_us = origin.elapsed().as_micros() as u64;
            if events
                .send(Event::new(t_us, Source::Harness, clock.sample()))
                .is_err()
            {
                return;
            }
        }
    })
}

/// This process's CPU time, user + system, every thread, µs (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`).
fn process_cpu_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000
}

/// The machine's CPU time from `/proc/stat`; `None` where it cannot be read (not Linux).
fn machine_cpu() -> Option<MachineCpu> {
    parse_proc_stat(
        &std::fs::read_to_string("/proc/stat").ok()?,
        clock_ticks_per_s(),
    )
}

/// `USER_HZ`, the unit of `/proc/stat` (`sysconf(_SC_CLK_TCK)`, 100 on Linux; proc(5)).
fn clock_ticks_per_s() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// The aggregate `cpu` line of `/proc/stat` (proc(5)): `user nice system idle iowait irq softirq steal guest
/// guest_nice`, in `hz` ticks. Busy is everything but idle and iowait (guest time is already inside user and
/// nice, so it is not added again).
fn parse_proc_stat(text: &str, hz: u64) -> Option<MachineCpu> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    let idle = at(3) + at(4);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    let us = |ticks: u64| ticks * 1_000_000 / hz.max(1);
    Some(MachineCpu {
        busy_us: us(busy),
        total_us: us(busy + idle),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// proc(5)'s layout, with a VM's steal time and guest time (inside user, not added twice).
    #[test]
    fn the_machine_line_of_proc_stat_reads_busy_and_total_time() {
        let text =
            "cpu  4705 150 1120 16250 520 20 10 30 200 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2\n";
        let m = parse_proc_stat(text, 100).unwrap();
        // busy: user 4705 + nice 150 + system 1120 + irq 20 + softirq 10 + steal 30 = 6035 ticks
        assert_eq!(m.busy_us, 60_350_000);
        // + idle 16250 + iowait 520
        assert_eq!(m.total_us, 228_050_000);
        // Older kernels have fewer columns.
        let old = parse_proc_stat("cpu 1 0 1 8\n", 100).unwrap();
        assert_eq!((old.busy_us, old.total_us), (20_000, 100_000));
        assert!(parse_proc_stat("intr 1\n", 100).is_none());
    }

    /// This process's user + system ticks from `/proc/self/stat` (fields 14 and 15, proc(5)), µs: the kernel's
    /// accounting read through another door.
    fn proc_self_stat_us() -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        (f[11] + f[12]) * 1_000_000 / clock_ticks_per_s()
    }

    /// The process's CPU time counts from the clock's start, and agrees with what `/proc/self/stat` says of the
    /// same interval (to its 10 ms ticks, two readings, and the other test threads of this process).
    #[test]
    fn a_sample_counts_the_cpu_used_since_the_start() {
        let proc_before = cfg!(target_os = "linux").then(proc_self_stat_us);
        let clock = CpuClock::start();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let EventKind::HarnessCpu {
            process_cpu_us,
            machine_busy_us,
            machine_total_us,
            cores,
        } = clock.sample()
        else {
            unreachable!()
        };
        // At least most of the 300 ms spun (a busy machine can take some of it away).
        assert!(process_cpu_us >= 100_000, "{process_cpu_us}");
        if let Some(before) = proc_before {
            let by_proc = proc_self_stat_us() - before;
            assert!(
                process_cpu_us.abs_diff(by_proc) <= 30_000 + by_proc / 10,
                "clock_gettime {process_cpu_us} µs, /proc/self/stat {by_proc} µs"
            );
        }
        assert!(cores >= 1);
        if cfg!(target_os = "linux") {
            let (b, t) = (machine_busy_us.unwrap(), machine_total_us.unwrap());
            assert!(b <= t && t > 0, "{b} {t}");
        }
    }
}
