//! The terminal summary: counts first, then aligned percentile tables per stream and phase. Colour only when
//! asked (the caller passes `color = stdout is a terminal`).

use crate::analysis::{COLD_START_METRICS, POD_PHASES, RunReport, Stats};
use std::fmt::Write as _;

use crate::units::human_us;

struct Style {
    color: bool,
}

impl Style {
    fn head(&self, s: &str) -> String {
        if self.color {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bad(&self, s: &str) -> String {
        if self.color {
            format!("\x1b[31m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn dim(&self, s: &str) -> String {
        if self.color {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

const COLS: [&str; 7] = ["n", "p50", "p90", "p95", "p99", "p99.9", "max"];

fn row(out: &mut String, label: &str, st: &Stats) {
    let cells = [
        st.p50_us, st.p90_us, st.p95_us, st.p99_us, st.p999_us, st.max_us,
    ]
    .map(human_us);
    write!(out, "  {label:<40}{:>7}", st.count).unwrap();
    for c in cells {
        write!(out, "{c:>9}").unwrap();
    }
    out.push('\n');
}

fn header(out: &mut String, style: &Style, title: &str) {
    let mut h = format!("{title:<42}");
    for (i, c) in COLS.iter().enumerate() {
        let w = if i == 0 { 7 } else { 9 };
        h.push_str(&format!("{c:>w$}"));
    }
    writeln!(out, "{}", style.head(&h)).unwrap();
}

pub fn render(r: &RunReport, color: bool) -> String {
    let style = Style { color };
    let mut out = String::new();
    let run = &r.run;
    writeln!(
        out,
        "{}",
        style.head(&format!(
            "imagen-load · run {} · workload {} (seed {}) · target {}{}",
            run.run_id,
            run.workload,
            run.seed,
            run.target,
            run.shard
                .as_ref()
                .map(|s| format!(" · shard {s}"))
                .unwrap_or_default()
        ))
    )
    .unwrap();
    writeln!(
        out,
        "observed {} of run time{}",
        human_us(run.end_us),
        if run.interrupted {
            " · INTERRUPTED"
        } else {
            ""
        }
    )
    .unwrap();
    out.push('\n');

    let d = &r.delivery;
    writeln!(out, "{}", style.head("Delivery")).unwrap();
    let lost = format!("lost {}", d.lost);
    writeln!(
        out,
        "  scheduled {}  published {}  completed {}  {}  late {}  duplicates {}  publish failures {}{}",
        d.scheduled,
        d.published,
        d.completed,
        if d.lost > 0 { style.bad(&lost) } else { lost },
        d.late,
        d.duplicates,
        d.publish_failed,
        if d.open_at_end > 0 { format!("  open at end {}", d.open_at_end) } else { String::new() },
    )
    .unwrap();
    if d.redelivered > 0 {
        writeln!(
            out,
            "  {} redeliveries (a worker died or a lease lapsed)",
            d.redelivered
        )
        .unwrap();
    }
    if d.warmup_excluded > 0 {
        writeln!(
            out,
            "  {} completed during warm-up, left out of the latency statistics",
            d.warmup_excluded
        )
        .unwrap();
    }
    if !d.lost_ranges.is_empty() {
        writeln!(
            out,
            "  {}",
            style.bad(&format!(
                "lost: {}",
                crate::analysis::describe_ranges(&d.lost_ranges, 8)
            ))
        )
        .unwrap();
    }
    out.push('\n');

    header(&mut out, &style, "End-to-end latency (from intended send)");
    for (label, st) in super::latency_rows(r) {
        row(&mut out, &label, &st);
    }
    if d.lost > 0 {
        writeln!(
            out,
            "  {}",
            style.dim(&format!(
                "({} lost messages are not in these percentiles)",
                d.lost
            ))
        )
        .unwrap();
    }
    out.push('\n');

    header(&mut out, &style, "Where message time went (all streams)");
    for (label, st) in super::time_split_rows(r) {
        row(&mut out, label, &st);
    }
    out.push('\n');

    let cold_pods = r.pods.iter().filter(|p| !p.preexisting).count();
    if cold_pods > 0 {
        header(&mut out, &style, &format!("Cold starts ({cold_pods} pods)"));
        for (i, phase) in POD_PHASES.iter().enumerate() {
            if let Some(st) = r.series.stats(COLD_START_METRICS[i], "all", None) {
                row(&mut out, &phase.replace('_', " "), &st);
            }
        }
        if run.streams.len() > 1 {
            for s in &run.streams {
                if let Some(st) = r.series.stats("cold_start.total", s, None) {
                    row(&mut out, &format!("total · {s}"), &st);
                }
            }
        }
        let restarts: u32 = r.pods.iter().map(|p| p.restarts).sum();
        if restarts > 0 {
            writeln!(
                out,
                "  {}",
                style.bad(&format!(
                    "{restarts} worker restarts after a crash (pods[].restarts in summary.json)"
                ))
            )
            .unwrap();
        }
        for m in ["node.boot", "node.gpu_driver"] {
            if let Some(st) = r.series.stats(m, "gpu-pool", None) {
                row(&mut out, &format!("  {}", m.replace(['.', '_'], " ")), &st);
            }
        }
        let why = super::problem_lines(r);
        if !why.is_empty() {
            writeln!(
                out,
                "  {}",
                style.head("Why they were slow (as the cluster reported)")
            )
            .unwrap();
            for (phase, text) in why {
                writeln!(out, "    {phase}: {}", style.bad(&text)).unwrap();
            }
        }
        out.push('\n');
    } else {
        writeln!(
            out,
            "{}\n  no pod started during the run\n",
            style.head("Cold starts")
        )
        .unwrap();
    }

    if !r.cycles.is_empty() {
        writeln!(out, "{}", style.head("Scale cycles (0 → N → 0)")).unwrap();
        writeln!(
            out,
            "  {:<20}{:>7}{:>14}{:>8}{:>16}{:>14}{:>10}",
            "deployment", "cycles", "first ready", "peak", "to 0 replicas", "to 0 nodes", "cost"
        )
        .unwrap();
        // The streams first, then Deployments that matched no stream (named in the warnings).
        let mut scopes: Vec<&str> = run.streams.iter().map(String::as_str).collect();
        for c in &r.cycles {
            if !scopes.contains(&c.scope()) {
                scopes.push(c.scope());
            }
        }
        for s in scopes {
            let cs: Vec<_> = r.cycles.iter().filter(|c| c.scope() == s).collect();
            if cs.is_empty() {
                continue;
            }
            let med = |f: &dyn Fn(&crate::analysis::ScaleCycle) -> Option<u64>| {
                let mut v: Vec<u64> = cs.iter().filter_map(|c| f(c)).collect();
                v.sort();
                v.get(v.len().saturating_sub(1) / 2)
                    .map(|x| human_us(*x))
                    .unwrap_or_else(|| "-".into())
            };
            writeln!(
                out,
                "  {:<20}{:>7}{:>14}{:>8}{:>16}{:>14}{:>10}",
                s,
                cs.len(),
                med(&|c| c.time_to_first_ready_us),
                cs.iter().map(|c| c.peak_replicas).max().unwrap_or(0),
                med(&|c| c.to_zero_replicas_us),
                med(&|c| c.to_zero_nodes_us),
                cs.iter()
                    .map(|c| c.cost_usd)
                    .sum::<Option<f64>>()
                    .map_or_else(|| "unknown".into(), |c| format!("${c:.2}")),
            )
            .unwrap();
        }
        writeln!(
            out,
            "  {}",
            style.dim("(medians over cycles; first ready counts from the first message at zero)")
        )
        .unwrap();
        out.push('\n');
    }

    let c = &r.cost;
    writeln!(out, "{}", style.head("GPU cost")).unwrap();
    if let Some(why) = c.unknown_why() {
        writeln!(
            out,
            "  {:.2} GPU-hours busy processing · nodes and cost {why}",
            c.gpu_busy_seconds / 3600.0
        )
        .unwrap();
    } else {
        writeln!(
        out,
        "  {:.2} GPU-hours ({:.2} busy, {:.2} idle) · peak {} nodes · {} nodes created · ${:.2} at ${}/GPU-hour",
        c.gpu_seconds / 3600.0,
        c.gpu_busy_seconds / 3600.0,
        c.gpu_idle_seconds / 3600.0,
        c.peak_nodes,
        c.nodes_created,
        c.cost_usd,
        run.price_per_gpu_hour_usd
    )
        .unwrap();
    }
    if !r.thresholds.is_empty() {
        out.push('\n');
        let failed = r.failed_thresholds();
        let head = if failed == 0 {
            format!("Thresholds: all {} passed", r.thresholds.len())
        } else {
            format!("Thresholds: {failed} of {} FAILED", r.thresholds.len())
        };
        writeln!(
            out,
            "{}",
            if failed == 0 {
                style.head(&head)
            } else {
                style.bad(&head)
            }
        )
        .unwrap();
        for t in &r.thresholds {
            let line = format!(
                "{} {} {}: {}",
                if t.passed { "  ok  " } else { "  FAIL" },
                t.metric,
                t.condition,
                t.describe()
            );
            writeln!(out, "{}", if t.passed { line } else { style.bad(&line) }).unwrap();
        }
    }
    if !r.warnings.is_empty() {
        out.push('\n');
        writeln!(out, "{}", style.bad("Warnings")).unwrap();
        for w in &r.warnings {
            writeln!(out, "  - {w}").unwrap();
        }
    }
    out
}
