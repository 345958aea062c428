//! `report.md`: for `$GITHUB_STEP_SUMMARY` and pull-request comments. The answer first: the verdict and failed
//! thresholds, end-to-end latency and where message time went, the cold-start breakdown, GPU cost; then the detail
//! (delivery counts, every threshold, warnings).

use crate::analysis::{COLD_START_METRICS, POD_PHASES, RunReport};
use crate::report::human_duration as h;
use std::fmt::Write as _;

pub fn render(r: &RunReport) -> String {
    let mut md = String::new();
    let failed = r.failed_thresholds();
    let verdict = match (r.thresholds.len(), failed) {
        (0, _) => "no thresholds".to_string(),
        (n, 0) => format!("all {n} thresholds passed"),
        (n, f) => format!("**{f} of {n} thresholds failed**"),
    };
    writeln!(md, "## imagen-load · `{}` · {verdict}\n", r.run.workload).unwrap();
    writeln!(
        md,
        "Run `{}`, seed {}, target `{}`{}, {} observed{}.\n",
        r.run.run_id,
        r.run.seed,
        r.run.target,
        r.run
            .shard
            .as_ref()
            .map(|s| format!(", shard {s}"))
            .unwrap_or_default(),
        h(r.run.end_us),
        if r.run.interrupted {
            ", **interrupted**"
        } else {
            ""
        }
    )
    .unwrap();
    if failed > 0 {
        writeln!(
            md,
            "### Failed thresholds\n\n| metric | condition | measured |\n| --- | --- | --- |"
        )
        .unwrap();
        for t in r.thresholds.iter().filter(|t| !t.passed) {
            writeln!(
                md,
                "| `{}` | `{}` | {} |",
                t.metric,
                t.condition,
                t.measured.as_deref().unwrap_or("no samples")
            )
            .unwrap();
        }
        md.push('\n');
    }
    writeln!(md, "### End-to-end latency (from intended send)\n\n| stream | messages | p50 | p90 | p95 | p99 | max |").unwrap();
    writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |").unwrap();
    let stat_row = |md: &mut String, label: &str, st: &crate::analysis::Stats| {
        writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} | {} |",
            st.count,
            h(st.p50_us),
            h(st.p90_us),
            h(st.p95_us),
            h(st.p99_us),
            h(st.max_us)
        )
        .unwrap();
    };
    for (label, st) in super::latency_rows(r) {
        stat_row(&mut md, &label, &st);
    }
    md.push('\n');
    let split = super::time_split_rows(r);
    if !split.is_empty() {
        writeln!(md, "### Where message time went (all streams)\n\n| part | messages | p50 | p90 | p95 | p99 | max |").unwrap();
        writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |").unwrap();
        for (label, st) in split {
            stat_row(&mut md, label, &st);
        }
        md.push('\n');
    }
    if r.pods.iter().any(|p| !p.preexisting) {
        writeln!(md, "### Cold starts\n\n| phase | pods | p50 | p95 | p99 | max |\n| --- | ---: | ---: | ---: | ---: | ---: |").unwrap();
        for (i, phase) in POD_PHASES.iter().enumerate() {
            if let Some(st) = r.series.stats(COLD_START_METRICS[i], "all", None) {
                writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    phase.replace('_', " "),
                    st.count,
                    h(st.p50_us),
                    h(st.p95_us),
                    h(st.p99_us),
                    h(st.max_us)
                )
                .unwrap();
            }
        }
        md.push('\n');
        let why = super::problem_lines(r);
        if !why.is_empty() {
            writeln!(md, "**Why they were slow** (as the cluster reported):\n").unwrap();
            for (phase, text) in why {
                writeln!(md, "- {phase}: {text}").unwrap();
            }
            md.push('\n');
        }
    }
    let c = &r.cost;
    if let Some(why) = c.unknown_why() {
        writeln!(
            md,
            "### GPU cost\n\n{:.2} GPU-hours busy processing; nodes and cost {why}.\n",
            c.gpu_busy_seconds / 3600.0
        )
        .unwrap();
    } else {
        writeln!(
        md,
        "### GPU cost\n\n{:.2} GPU-hours ({:.2} busy, {:.2} idle), peak {} nodes: **${:.2}** at ${}/GPU-hour.\n",
        c.gpu_seconds / 3600.0,
        c.gpu_busy_seconds / 3600.0,
        c.gpu_idle_seconds / 3600.0,
        c.peak_nodes,
        c.cost_usd,
        r.run.price_per_gpu_hour_usd
    )
        .unwrap();
    }
    // The detail after the answer: counts, then every threshold, then warnings.
    let cols = r.delivery.columns();
    writeln!(md, "### Delivery\n").unwrap();
    writeln!(md, "| {} |", cols.map(|c| c.0).join(" | ")).unwrap();
    writeln!(md, "|{}", " ---: |".repeat(cols.len())).unwrap();
    writeln!(md, "| {} |\n", cols.map(|c| c.1.to_string()).join(" | ")).unwrap();
    if !r.thresholds.is_empty() {
        writeln!(
            md,
            "### Thresholds\n\n| | metric | condition | measured |\n| --- | --- | --- | --- |"
        )
        .unwrap();
        for t in &r.thresholds {
            let mark = if t.passed { "pass" } else { "**FAIL**" };
            let measured = t
                .measured
                .clone()
                .or_else(|| t.note.clone())
                .unwrap_or_default();
            writeln!(
                md,
                "| {mark} | `{}` | `{}` | {measured} |",
                t.metric, t.condition
            )
            .unwrap();
        }
        md.push('\n');
    }
    if !r.warnings.is_empty() {
        writeln!(md, "### Warnings\n").unwrap();
        for w in &r.warnings {
            writeln!(md, "- {w}").unwrap();
        }
    }
    md
}
