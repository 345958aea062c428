//! What-if: the same workload and seed through the simulator under several scaling setups, side by side: cold
//! starts, latency, messages over a budget, GPU hours (busy and idle), and cost per run and per month.
//!
//! A setup is a named list of workload overrides, built from a preset (`baseline`, `all-cold`, `always-on`,
//! `hybrid:<pipeline>`) or from the team's KEDA ScaledObject YAML, so every setup goes through the same validated
//! workload path as `run --set`.

pub mod scaledobject;

use crate::analysis::RunReport;
use crate::plan::workload::{self, Override, Plan};
use crate::units::human_us as h;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// Hours in an average month (365.25 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Workload(#[from] workload::Error),
    #[error(transparent)]
    ScaledObject(#[from] scaledobject::Error),
    #[error("setup `{spec}`: {message}\n    fix: {fix}")]
    BadSetup {
        spec: String,
        message: String,
        fix: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    pub name: String,
    pub overrides: Vec<Override>,
    /// What the setup's source held that the simulator does not model (`not modelled: …`) or skipped
    /// (`skipped: …`).
    pub notes: Vec<String>,
}

fn set(key: String, value: &str) -> Override {
    let text = format!("{key}={value}");
    Override {
        path: key.split('.').map(String::from).collect(),
        value: value.into(),
        text,
    }
}

fn min_replicas(streams: &[String], hot: &[&str]) -> Vec<Override> {
    streams
        .iter()
        .map(|s| {
            set(
                format!("sim.pipeline.{s}.keda.min_replicas"),
                if hot.contains(&s.as_str()) { "1" } else { "0" },
            )
        })
        .collect()
}

/// A setup from its name: a preset, or a path to a ScaledObject YAML file.
pub fn setup(spec: &str, pipelines: &[crate::event::PipelineNames]) -> Result<Setup> {
    let streams: Vec<String> = pipelines.iter().map(|p| p.stream.clone()).collect();
    let streams = &streams[..];
    let named = |overrides| {
        Ok(Setup {
            name: spec.to_string(),
            overrides,
            notes: Vec::new(),
        })
    };
    match spec {
        "baseline" => named(Vec::new()),
        "all-cold" => named(min_replicas(streams, &[])),
        "always-on" => named(min_replicas(streams, &streams.iter().map(String::as_str).collect::<Vec<_>>())),
        _ if spec.starts_with("hybrid:") => {
            let hot: Vec<&str> = spec["hybrid:".len()..].split(',').map(str::trim).collect();
            if let Some(bad) = hot.iter().find(|p| !streams.iter().any(|s| s == *p)) {
                return Err(Error::BadSetup {
                    spec: spec.into(),
                    message: format!("no pipeline `{bad}`"),
                    fix: format!("pipelines are {}", streams.join(", ")),
                });
            }
            named(min_replicas(streams, &hot))
        }
        _ if spec.ends_with(".yaml") || spec.ends_with(".yml") || Path::new(spec).is_file() => {
            let parsed = scaledobject::load(Path::new(spec), pipelines)?;
            let name = Path::new(spec).file_stem().map_or(spec.to_string(), |s| s.to_string_lossy().into_owned());
            let notes = parsed.not_modelled.iter().map(|n| format!("not modelled: {n}"))
                .chain(parsed.skipped.iter().map(|n| format!("skipped: {n}")))
                .collect();
            Ok(Setup { name, overrides: parsed.overrides, notes })
        }
        _ => Err(Error::BadSetup {
            spec: spec.into(),
            message: "not a preset or a ScaledObject file".into(),
            fix: "use baseline, all-cold, always-on, hybrid:<pipeline>, or a path to a .yaml of ScaledObjects".into(),
        }),
    }
}

/// `cooldownPeriod=60s,300s,900s` → one setup per value, each on top of `base`, for every pipeline.
pub fn sweep(spec: &str, base: &Setup, streams: &[String]) -> Result<Vec<Setup>> {
    let bad = |message: String| {
        Error::BadSetup {
        spec: spec.into(),
        message,
        fix: "write e.g. `cooldownPeriod=60s,300s,900s` (cooldownPeriod, pollingInterval, minReplicaCount, maxReplicaCount)".into(),
    }
    };
    let (field, values) = spec.split_once('=').ok_or_else(|| bad("no `=`".into()))?;
    let (key, duration) = match field.trim() {
        "cooldownPeriod" => ("cooldown_period", true),
        "pollingInterval" => ("polling_interval", true),
        "minReplicaCount" => ("min_replicas", false),
        "maxReplicaCount" => ("max_replicas", false),
        other => return Err(bad(format!("`{other}` cannot be swept"))),
    };
    let values: Vec<&str> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if values.len() < 2 {
        return Err(bad("a sweep needs at least two values".into()));
    }
    values
        .iter()
        .map(|v| {
            if duration {
                crate::units::parse_duration(v).map_err(&bad)?;
            } else if v.parse::<u32>().is_err() {
                return Err(bad(format!("`{v}` is not a whole number")));
            }
            let value = if duration {
                format!("\"{v}\"")
            } else {
                v.to_string()
            };
            let mut overrides = base.overrides.clone();
            overrides.extend(
                streams
                    .iter()
                    .map(|s| set(format!("sim.pipeline.{s}.keda.{key}"), &value)),
            );
            Ok(Setup {
                name: format!("{}={v}", field.trim()),
                overrides,
                notes: base.notes.clone(),
            })
        })
        .collect()
}

/// One line of the what-if table: a pipeline under a setup, or the setup's total (`pipeline = "all"`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub setup: String,
    pub pipeline: String,
    pub cold_starts: u64,
    pub messages: u64,
    pub e2e_p50_us: Option<u64>,
    pub e2e_p95_us: Option<u64>,
    pub e2e_p99_us: Option<u64>,
    pub e2e_cold_p95_us: Option<u64>,
    pub e2e_warm_p95_us: Option<u64>,
    pub over_budget: u64,
    pub gpu_hours: f64,
    pub idle_gpu_hours: f64,
    pub cost_usd_per_run: f64,
    pub cost_usd_per_month: f64,
    /// The assumptions behind the numbers, on every row.
    pub profile: String,
    pub price_per_gpu_hour_usd: f64,
    pub traffic_hours_per_day: f64,
    pub latency_budget_us: u64,
}

#[derive(Debug, Clone)]
pub struct WhatIf {
    pub workload: String,
    pub seed: u64,
    pub window_us: u64,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

/// Runs every setup (two at a time: the machines this runs on have two cores) and builds the table.
pub fn run(
    path: &Path,
    base: &[Override],
    setups: &[Setup],
    budget_us: u64,
    traffic_hours_per_day: f64,
) -> Result<WhatIf> {
    let plans: Vec<Plan> = setups
        .iter()
        .map(|s| {
            workload::load(path, &[base, s.overrides.as_slice()].concat()).map_err(Error::from)
        })
        .collect::<Result<_>>()?;
    let mut reports: Vec<Option<RunReport>> = vec![None; plans.len()];
    // As many simulations at once as the machine has cores.
    let width = std::thread::available_parallelism().map_or(2, |n| n.get());
    for (chunk_plans, chunk_out) in plans.chunks(width).zip(reports.chunks_mut(width)) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunk_plans
                .iter()
                .map(|p| scope.spawn(move || simulate(p)))
                .collect();
            for (slot, h) in chunk_out.iter_mut().zip(handles) {
                *slot = Some(h.join().expect("a simulation thread panicked"));
            }
        });
    }
    let mut rows = Vec::new();
    let mut window_us = 0;
    for ((setup, plan), report) in setups.iter().zip(&plans).zip(reports) {
        let report = report.expect("every setup simulated");
        window_us = window_us.max(report.run.end_us);
        rows.extend(rows_for(
            setup,
            plan,
            &report,
            budget_us,
            traffic_hours_per_day,
        ));
    }
    let notes = setups
        .iter()
        .flat_map(|s| s.notes.iter().map(move |n| format!("{}: {n}", s.name)))
        .collect();
    Ok(WhatIf {
        workload: plans[0].name.clone(),
        seed: plans[0].seed,
        window_us,
        rows,
        notes,
    })
}

fn simulate(plan: &Plan) -> RunReport {
    crate::run::simulate_report(plan, "whatif")
}

fn rows_for(setup: &Setup, plan: &Plan, r: &RunReport, budget_us: u64, traffic: f64) -> Vec<Row> {
    let price = plan.sim.autoscaler.price_per_gpu_hour_usd;
    let end = r.run.end_us;
    let window_h = (end as f64 / 3.6e9).max(1e-9);
    // Outside the hours of traffic, scale-to-zero pipelines cost nothing and hot ones their minimum replicas.
    let month = |run_cost: f64, hot_gpus: f64| {
        let days = HOURS_PER_MONTH / 24.0;
        run_cost / window_h * traffic * days + hot_gpus * price * (24.0 - traffic) * days
    };
    let base = Row {
        setup: setup.name.clone(),
        pipeline: String::new(),
        cold_starts: 0,
        messages: 0,
        e2e_p50_us: None,
        e2e_p95_us: None,
        e2e_p99_us: None,
        e2e_cold_p95_us: None,
        e2e_warm_p95_us: None,
        over_budget: 0,
        gpu_hours: 0.0,
        idle_gpu_hours: 0.0,
        cost_usd_per_run: 0.0,
        cost_usd_per_month: 0.0,
        profile: plan.sim.profile.clone(),
        price_per_gpu_hour_usd: price,
        traffic_hours_per_day: traffic,
        latency_budget_us: budget_us,
    };
    let latency = |row: &mut Row, scope: &str| {
        if let Some(st) = r.series.stats("e2e_latency", scope, None) {
            (row.e2e_p50_us, row.e2e_p95_us, row.e2e_p99_us) =
                (Some(st.p50_us), Some(st.p95_us), Some(st.p99_us));
        }
        row.e2e_cold_p95_us = r
            .series
            .stats("e2e_latency", scope, Some(true))
            .map(|s| s.p95_us);
        row.e2e_warm_p95_us = r
            .series
            .stats("e2e_latency", scope, Some(false))
            .map(|s| s.p95_us);
    };
    let mut rows = Vec::new();
    let mut hot_total = 0.0;
    for (i, stream) in plan.streams.iter().enumerate() {
        let mut row = Row {
            pipeline: stream.name.clone(),
            ..base.clone()
        };
        latency(&mut row, &stream.name);
        let e2e = r.series.get("e2e_latency", &stream.name, None);
        row.messages = e2e.map_or(0, |h| h.len());
        // To the histogram's precision (3 significant digits): a latency within 0.1% of the budget may land on
        // either side.
        row.over_budget = e2e.map_or(0, |h| {
            h.iter_recorded()
                .filter(|v| h.median_equivalent(v.value_iterated_to()) > budget_us)
                .map(|v| v.count_at_value())
                .sum()
        });
        let busy_h = r
            .series
            .moments("processing", &stream.name, None)
            .map_or(0, |m| m.sum_us()) as f64
            / 3.6e9;
        let pods = r
            .pods
            .iter()
            .filter(|p| p.pipeline.as_deref() == Some(stream.name.as_str()));
        row.cold_starts = pods.clone().filter(|p| !p.preexisting).count() as u64;
        // Each pod holds one GPU from being bound to a node until it is deleted (or the run ends).
        row.gpu_hours = pods
            .filter_map(|p| {
                p.scheduled_us
                    .map(|s| p.deleted_us.unwrap_or(end).saturating_sub(s))
            })
            .sum::<u64>() as f64
            / 3.6e9;
        row.idle_gpu_hours = (row.gpu_hours - busy_h).max(0.0);
        row.cost_usd_per_run = row.gpu_hours * price;
        let hot = plan.sim.pipelines[i].keda.min_replicas as f64;
        hot_total += hot;
        row.cost_usd_per_month = month(row.cost_usd_per_run, hot);
        rows.push(row);
    }
    let mut total = Row {
        pipeline: "all".into(),
        ..base
    };
    latency(&mut total, "all");
    total.cold_starts = rows.iter().map(|r| r.cold_starts).sum();
    total.messages = rows.iter().map(|r| r.messages).sum();
    total.over_budget = rows.iter().map(|r| r.over_budget).sum();
    // The total counts node time too, including empty nodes waiting to be scaled down.
    total.gpu_hours = r.cost.gpu_seconds / 3600.0;
    total.idle_gpu_hours = r.cost.gpu_idle_seconds / 3600.0;
    total.cost_usd_per_run = r.cost.cost_usd;
    total.cost_usd_per_month = month(total.cost_usd_per_run, hot_total);
    rows.push(total);
    rows
}

fn opt(v: Option<u64>) -> String {
    v.map(h).unwrap_or_else(|| "–".into())
}

/// The table as Markdown (also readable in a terminal), with the assumptions spelled out.
pub fn markdown(w: &WhatIf) -> String {
    let mut s = String::new();
    let first = &w.rows[0];
    writeln!(
        s,
        "## imagen-load what-if · `{}` (seed {})\n",
        w.workload, w.seed
    )
    .unwrap();
    writeln!(
        s,
        "Simulated with **{}** over the same {} window for every setup; ${} per GPU-hour; latency budget {}. \
         Per month assumes {} hours of this traffic a day, and outside them only the pipelines' minimum replicas. \
         Pipeline GPU-hours are pods holding a GPU; the `all` row adds empty nodes waiting to be removed.\n",
        first.profile,
        h(w.window_us),
        first.price_per_gpu_hour_usd,
        h(first.latency_budget_us),
        first.traffic_hours_per_day
    )
    .unwrap();
    writeln!(s, "| setup | pipeline | cold starts | p50 | p95 | p99 | p95 cold | p95 warm | over budget | GPU-h | idle GPU-h | $/run | $/month |").unwrap();
    writeln!(
        s,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    .unwrap();
    for r in &w.rows {
        let (b, e) = if r.pipeline == "all" {
            ("**", "**")
        } else {
            ("", "")
        };
        writeln!(
            s,
            "| {b}{}{e} | {b}{}{e} | {} | {} | {} | {} | {} | {} | {} / {} | {:.2} | {:.2} | {b}${:.2}{e} | {b}${:.0}{e} |",
            r.setup,
            r.pipeline,
            r.cold_starts,
            opt(r.e2e_p50_us),
            opt(r.e2e_p95_us),
            opt(r.e2e_p99_us),
            opt(r.e2e_cold_p95_us),
            opt(r.e2e_warm_p95_us),
            r.over_budget,
            r.messages,
            r.gpu_hours,
            r.idle_gpu_hours,
            r.cost_usd_per_run,
            r.cost_usd_per_month
        )
        .unwrap();
    }
    if !w.notes.is_empty() {
        writeln!(s, "\nNot modelled or skipped (reported, not ignored):").unwrap();
        for n in &w.notes {
            writeln!(s, "- {n}").unwrap();
        }
    }
    s
}

/// An HTML page: the table, and for a sweep the latency and cost curves.
pub fn html(w: &WhatIf, swept: bool) -> String {
    use crate::outputs::report::chart::{Axis, Line, PALETTE, chart, nice_ticks, seconds_axis};
    use crate::outputs::report::html::page;
    // The title and the assumptions first, then the sweep's curves, then the table.
    let table = crate::outputs::report::html::markdown_to_html(&markdown(w));
    let split = table.find("</p>").map_or(0, |i| i + "</p>".len());
    let mut body = table[..split].to_string();
    let totals: Vec<&Row> = w.rows.iter().filter(|r| r.pipeline == "all").collect();
    if swept && totals.len() >= 2 {
        let x = Axis {
            min: 0.0,
            max: (totals.len() - 1) as f64,
            ticks: totals
                .iter()
                .enumerate()
                .map(|(i, r)| (i as f64, r.setup.clone()))
                .collect(),
        };
        let p95: Vec<(f64, f64)> = totals
            .iter()
            .enumerate()
            .map(|(i, r)| (i as f64, r.e2e_p95_us.unwrap_or(0) as f64 / 1e6))
            .collect();
        let p50: Vec<(f64, f64)> = totals
            .iter()
            .enumerate()
            .map(|(i, r)| (i as f64, r.e2e_p50_us.unwrap_or(0) as f64 / 1e6))
            .collect();
        let ymax = p95.iter().map(|p| p.1).fold(0.0, f64::max);
        let y = seconds_axis(ymax, 4);
        body.push_str(&chart(
            "End-to-end latency across the sweep",
            220.0,
            &x,
            &y,
            &[
                Line {
                    label: "p95".into(),
                    color: PALETTE[1],
                    dashed: false,
                    points: p95,
                },
                Line {
                    label: "p50".into(),
                    color: PALETTE[0],
                    dashed: false,
                    points: p50,
                },
            ],
            false,
        ));
        let cost: Vec<(f64, f64)> = totals
            .iter()
            .enumerate()
            .map(|(i, r)| (i as f64, r.cost_usd_per_month))
            .collect();
        let ymax = cost.iter().map(|p| p.1).fold(0.0, f64::max);
        let y = Axis {
            min: 0.0,
            max: ymax,
            ticks: nice_ticks(ymax, 4, &|v| format!("${v}")),
        };
        body.push_str(&chart(
            "Projected GPU cost per month",
            200.0,
            &x,
            &y,
            &[Line {
                label: "$/month".into(),
                color: PALETTE[2],
                dashed: false,
                points: cost,
            }],
            false,
        ));
    }
    body.push_str(&table[split..]);
    page("what-if", &body)
}
