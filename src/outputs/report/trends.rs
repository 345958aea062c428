//! Nightly trends over many run folders: per metric, p50/p95/p99 across runs, the last run compared with the
//! previous one and with a baseline, and regressions at the top. Verdicts come from [`crate::outputs::compare`], so a trend
//! report flags what the regression gate would, not every wiggle.

use crate::outputs::compare::{Comparison, Verdict};
use crate::outputs::report::junit::escape as esc;
use crate::units::human_us as h;
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The parts of a `summary.json` a trend report reads.
#[derive(Debug, Clone, Deserialize)]
pub struct RunSummary {
    pub run: RunHead,
    pub series: Vec<SeriesRow>,
    pub cost: CostRow,
    pub delivery: DeliveryRow,
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RunHead {
    pub run_id: String,
    pub workload: String,
    /// `sim`, `emulator`, `gcp`, … (absent in very old summaries).
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub interrupted: bool,
}

/// Splits runs (sorted by run id) into the ones a trend may compare, and the rest with why. The group is the
/// newest complete run's workload and target: a simulated burst is no baseline for an emulator run, and an
/// interrupted run is no night. Returns (comparable runs, "`RUN`: why" for each set apart).
pub fn comparable(runs: Vec<RunSummary>) -> (Vec<RunSummary>, Vec<String>) {
    let Some(newest) = runs.iter().rev().find(|r| !r.run.interrupted) else {
        let apart = runs
            .iter()
            .map(|r| format!("`{}`: interrupted", r.run.run_id))
            .collect();
        return (Vec::new(), apart);
    };
    let (workload, target) = (newest.run.workload.clone(), newest.run.target.clone());
    let (mut keep, mut apart) = (Vec::new(), Vec::new());
    for r in runs {
        let why = if r.run.interrupted {
            Some("interrupted".to_string())
        } else if r.run.workload != workload {
            Some(format!("workload `{}`, not `{workload}`", r.run.workload))
        } else if r.run.target != target {
            Some(format!("target `{}`, not `{target}`", r.run.target))
        } else {
            None
        };
        match why {
            Some(why) => apart.push(format!("`{}`: {why}", r.run.run_id)),
            None => keep.push(r),
        }
    }
    (keep, apart)
}

#[derive(Debug, Clone, Deserialize)]
pub struct SeriesRow {
    pub label: String,
    pub count: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CostRow {
    /// `None` when the run did not observe the cluster (unknown, not zero).
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryRow {
    pub completed: u64,
    pub lost: u64,
}

/// Run folders under `paths` (each a run folder, or a folder of run folders), sorted by run id. Folders without a
/// readable `summary.json` are skipped and named in the second list.
pub fn collect(paths: &[PathBuf]) -> (Vec<RunSummary>, Vec<String>) {
    let mut dirs = Vec::new();
    for p in paths {
        if p.join("summary.json").is_file() {
            dirs.push(p.clone());
        } else if let Ok(entries) = std::fs::read_dir(p) {
            let mut sub: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|d| d.join("summary.json").is_file())
                .collect();
            sub.sort();
            dirs.extend(sub);
        }
    }
    let (mut runs, mut skipped) = (Vec::new(), Vec::new());
    for d in dirs {
        match std::fs::read(d.join("summary.json"))
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<RunSummary>(&b).map_err(|e| e.to_string()))
        {
            Ok(mut s) => {
                s.dir = d;
                runs.push(s);
            }
            Err(e) => skipped.push(format!("{}: {e}", d.display())),
        }
    }
    runs.sort_by(|a, b| a.run.run_id.cmp(&b.run.run_id));
    (runs, skipped)
}

/// The metrics a trend report follows: every `all`-scope series, plus end-to-end latency per stream, in the
/// order the tables and charts show them ([`chart_rank`]).
fn followed(runs: &[RunSummary]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for r in runs {
        for s in &r.series {
            let keep = !s.label.contains('{')
                || (s.label.starts_with("e2e_latency{scope:") && !s.label.contains("cold:"));
            if keep && !labels.contains(&s.label) {
                labels.push(s.label.clone());
            }
        }
    }
    labels.sort_by_key(|l| chart_rank(l));
    labels
}

pub struct Trends<'a> {
    /// Comparable runs only ([`comparable`]), oldest first.
    pub runs: &'a [RunSummary],
    /// Runs left out of the trend, each with why.
    pub set_apart: &'a [String],
    pub baseline: usize,
    /// Last vs previous, last vs baseline (when the runs have event logs to compare).
    pub vs_previous: Option<Comparison>,
    pub vs_baseline: Option<Comparison>,
}

fn regressions(c: &Option<Comparison>) -> Vec<(String, f64)> {
    c.iter()
        .flat_map(|c| {
            c.rows
                .iter()
                .filter(|r| r.verdict == Verdict::Regression)
                .map(|r| (r.metric.clone(), r.change))
        })
        .collect()
}

fn headline(t: &Trends<'_>) -> (String, Vec<String>) {
    let last = &t.runs[t.runs.len() - 1];
    let mut calls = Vec::new();
    for (what, c) in [
        ("the previous run", &t.vs_previous),
        ("the baseline", &t.vs_baseline),
    ] {
        for (m, change) in regressions(c) {
            calls.push(format!("`{m}` p95 {:+.0}% vs {what}", change * 100.0));
        }
        if let Some(c) = c
            && c.current_lost > c.base_lost
        {
            calls.push(format!(
                "{} lost messages (vs {} in {what})",
                c.current_lost, c.base_lost
            ));
        }
    }
    let title = if calls.is_empty() {
        format!(
            "`{}`: no regression in the last run ({})",
            last.run.workload, last.run.run_id
        )
    } else {
        format!(
            "`{}`: {} regression(s) in the last run ({})",
            last.run.workload,
            calls.len(),
            last.run.run_id
        )
    };
    (title, calls)
}

fn value<'a>(r: &'a RunSummary, label: &str) -> Option<&'a SeriesRow> {
    r.series.iter().find(|s| s.label == label)
}

pub fn markdown(t: &Trends<'_>) -> String {
    let mut md = String::new();
    let (title, calls) = headline(t);
    writeln!(md, "## imagen-load nightly · {title}\n").unwrap();
    for c in &calls {
        writeln!(md, "- **REGRESSION** {c}").unwrap();
    }
    if !calls.is_empty() {
        md.push('\n');
    }
    let n = t.runs.len();
    let (last, base) = (&t.runs[n - 1], &t.runs[t.baseline]);
    let prev = (n >= 2).then(|| &t.runs[n - 2]);
    writeln!(
        md,
        "{} runs, baseline `{}`, previous `{}`, last `{}`.\n",
        n,
        base.run.run_id,
        prev.map_or("–", |p| p.run.run_id.as_str()),
        last.run.run_id
    )
    .unwrap();
    writeln!(md, "| metric | baseline p95 | previous p95 | last p50 | last p95 | last p99 | p95 vs previous | p95 vs baseline |").unwrap();
    writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    .unwrap();
    let pct = |a: Option<&SeriesRow>, b: Option<&SeriesRow>| match (a, b) {
        (Some(a), Some(b)) if a.p95_us > 0 => {
            format!("{:+.1}%", (b.p95_us as f64 / a.p95_us as f64 - 1.0) * 100.0)
        }
        _ => "–".into(),
    };
    for label in followed(t.runs) {
        let l = value(last, &label);
        let Some(lv) = l else { continue };
        let p = prev.and_then(|p| value(p, &label));
        let b = value(base, &label);
        writeln!(
            md,
            "| `{label}` | {} | {} | {} | {} | {} | {} | {} |",
            b.map_or("–".into(), |x| h(x.p95_us)),
            p.map_or("–".into(), |x| h(x.p95_us)),
            h(lv.p50_us),
            h(lv.p95_us),
            h(lv.p99_us),
            pct(p, l),
            pct(b, l)
        )
        .unwrap();
    }
    if !t.set_apart.is_empty() {
        writeln!(md, "\nSet apart (neither baseline nor trend point):\n").unwrap();
        for a in t.set_apart {
            writeln!(md, "- {a}").unwrap();
        }
    }
    writeln!(
        md,
        "\n| run | completed | lost | cost |\n| --- | ---: | ---: | ---: |"
    )
    .unwrap();
    for r in t.runs {
        writeln!(
            md,
            "| `{}` | {} | {} | {} |",
            r.run.run_id,
            r.delivery.completed,
            r.delivery.lost,
            r.cost
                .cost_usd
                .map_or_else(|| "unknown".to_string(), |c| format!("${c:.2}"))
        )
        .unwrap();
    }
    md
}

pub fn html(t: &Trends<'_>) -> String {
    let (title, calls) = headline(t);
    let mut body = String::new();
    writeln!(
        body,
        "<h1>imagen-load nightly</h1><p class=\"meta\">{}</p>",
        esc(&title.replace('`', ""))
    )
    .unwrap();
    if !calls.is_empty() {
        body.push_str("<ul class=\"bad\">");
        for c in &calls {
            write!(
                body,
                "<li><b>REGRESSION</b> {}</li>",
                esc(&c.replace('`', ""))
            )
            .unwrap();
        }
        body.push_str("</ul>");
    }
    // The verdict tables first, then the charts: end-to-end latency, where the time went, then the rest.
    body.push_str("<h2>Last run against the previous one and the baseline</h2>");
    let md = markdown(t);
    // The tables of the Markdown report (its heading and call-outs are already at the top of the page).
    let tables: String = md
        .lines()
        .filter(|l| l.starts_with('|') || l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    body.push_str(&super::html::markdown_to_html(&tables));
    if !t.set_apart.is_empty() {
        body.push_str("<p>Set apart (neither baseline nor trend point):</p><ul>");
        for a in t.set_apart {
            write!(body, "<li>{}</li>", esc(&a.replace('`', ""))).unwrap();
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Trends</h2>");
    let runs = t.runs;
    let n = runs.len();
    let labels = followed(runs);
    let names = run_labels(runs);
    for label in labels {
        let mut lines = Vec::new();
        let mut ymax = 0.0_f64;
        for (i, (name, pick)) in [("p50", 0), ("p95", 1), ("p99", 2)].into_iter().enumerate() {
            let points: Vec<(f64, f64)> = runs
                .iter()
                .enumerate()
                .filter_map(|(x, r)| {
                    value(r, &label)
                        .map(|s| (x as f64, [s.p50_us, s.p95_us, s.p99_us][pick] as f64 / 1e6))
                })
                .collect();
            ymax = points.iter().map(|p| p.1).fold(ymax, f64::max);
            lines.push(super::chart::Line {
                label: name.into(),
                color: super::chart::PALETTE[i],
                // p95 dashed: where it meets p99 (few samples), both stay visible.
                dashed: name == "p95",
                points,
            });
        }
        let ticks = runs
            .iter()
            .enumerate()
            .filter(|(i, _)| n <= 8 || i % n.div_ceil(8) == 0 || *i == n - 1)
            .map(|(i, _)| (i as f64, names[i].clone()))
            .collect();
        let x = super::chart::Axis {
            min: 0.0,
            max: (n.max(2) - 1) as f64,
            ticks,
        };
        let y = super::chart::seconds_axis(ymax, 4);
        body.push_str(&super::chart::chart(&label, 170.0, &x, &y, &lines, false));
    }
    super::html::page("nightly", &body)
}

/// The order of the nightly's tables and charts: end-to-end latency, per stream, where message time went in the
/// order a message lives it, then everything else as it came.
fn chart_rank(label: &str) -> usize {
    if label == "e2e_latency" {
        return 0;
    }
    if label.starts_with("e2e_latency{") {
        return 1;
    }
    super::TIME_SPLIT
        .iter()
        .position(|(m, _)| *m == label)
        .map_or(10, |i| 2 + i)
}

/// One x-axis label per run: its date and minute (`11-28 09:50`), or the whole id where two runs share a minute,
/// so no label repeats.
fn run_labels(runs: &[RunSummary]) -> Vec<String> {
    let short: Vec<String> = runs.iter().map(|r| short_id(&r.run.run_id)).collect();
    short
        .iter()
        .zip(runs)
        .map(|(s, r)| {
            if short.iter().filter(|o| *o == s).count() > 1 {
                r.run.run_id.clone()
            } else {
                s.clone()
            }
        })
        .collect()
}

fn short_id(id: &str) -> String {
    // `20261128T095011Z-burst` → `11-28 09:50`
    let b = id.as_bytes();
    if id.len() >= 16 && b[8] == b'T' && id[..8].chars().all(|c| c.is_ascii_digit()) {
        format!("{}-{} {}:{}", &id[4..6], &id[6..8], &id[9..11], &id[11..13])
    } else {
        id.chars().take(14).collect()
    }
}

/// Compares two runs from their event logs, when both have one.
pub fn compare_runs(
    base: &Path,
    current: &Path,
    analyze: &dyn Fn(&Path) -> Option<crate::analysis::RunReport>,
) -> Option<Comparison> {
    let (b, c) = (analyze(base)?, analyze(current)?);
    Some(crate::outputs::compare::compare(&b, &c, 95.0, 0.10))
}

#[cfg(test)]
mod label_tests {
    use super::*;

    fn run(id: &str) -> RunSummary {
        serde_json::from_value(serde_json::json!({
            "run": {"run_id": id, "workload": "burst"},
            "series": [], "cost": {"cost_usd": null}, "delivery": {"completed": 0, "lost": 0}
        }))
        .unwrap()
    }

    /// One label a run, short where the minute is its own, whole where two runs share it.
    #[test]
    fn every_run_has_its_own_axis_label() {
        let runs = [
            run("20261128T095011Z-burst"),
            run("20261129T020000.100Z-burst"),
            run("20261129T020000.900Z-burst"),
        ];
        assert_eq!(
            run_labels(&runs),
            [
                "11-28 09:50",
                "20261129T020000.100Z-burst",
                "20261129T020000.900Z-burst"
            ]
        );
    }
}
