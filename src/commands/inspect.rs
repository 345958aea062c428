//! Reading a workload without running it: `validate` (every problem, with its file, line and fix), `plan`
//! (what the run will do, phase by phase).

use super::*;

/// Resolves the workload arguments into a validated plan: the one place clap and the workload meet.
pub(super) fn load_plan(args: &WorkloadArgs) -> anyhow::Result<Plan> {
    let overrides = args
        .overrides
        .iter()
        .map(|o| {
            o.parse::<Override>()
                .map_err(|m| workload::Error::BadOverride {
                    text: o.clone(),
                    message: m,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut plan = workload::load(&args.workload, &overrides)?;
    if let Some(seed) = args.seed {
        plan.seed = seed;
    }
    Ok(plan)
}

pub(super) fn validate(args: &crate::commands::cli::ValidateArgs) -> anyhow::Result<ExitStatus> {
    use crate::commands::cli::OutputFormat;
    if args.format == OutputFormat::Csv {
        bail!(
            "validate prints text or json\n    fix: `-o json` (or `plan -o csv` for the schedule)"
        );
    }
    let plan = match load_plan(&args.workload) {
        Ok(plan) => plan,
        Err(e) if args.format == OutputFormat::Json => {
            // For machines the problems are data on stdout; the exit code still says it failed.
            let problems = match e.downcast_ref::<workload::Error>() {
                Some(workload::Error::Invalid { problems }) => serde_json::to_value(problems)?,
                _ => serde_json::json!([{"message": format!("{e:#}")}]),
            };
            crate::say!(
                "{}",
                serde_json::json!({"valid": false, "problems": problems})
            )?;
            return Ok(ExitStatus::Invalid);
        }
        Err(e) => return Err(e),
    };
    let items = schedule::build(&plan);
    if args.format == OutputFormat::Json {
        let streams: Vec<serde_json::Value> = plan
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let n = items
                    .iter()
                    .filter(|it| {
                        it.stream as usize == i
                            && matches!(it.kind, schedule::ItemKind::Message { .. })
                    })
                    .count();
                serde_json::json!({"name": s.name, "topic": s.topic, "messages": n})
            })
            .collect();
        crate::say!(
            "{}",
            serde_json::json!({
                "valid": true, "workload": plan.name, "seed": plan.seed, "target": plan.target.as_str(),
                "streams": streams, "overrides": plan.overrides,
            })
        )?;
        return Ok(ExitStatus::Ok);
    }
    crate::unless_closed(write!(
        std::io::stdout().lock(),
        "{}",
        describe(&plan, &items)
    ))?;
    Ok(ExitStatus::Ok)
}

pub(super) fn plan(args: &PlanArgs) -> anyhow::Result<ExitStatus> {
    let plan = load_plan(&args.workload)?;
    let mut items = schedule::build(&plan);
    if let Some(s) = args.shard {
        items = schedule::shard(&items, s);
    }
    let mut sink: Box<dyn Write> = match &args.to {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    if args.csv || args.format == crate::commands::cli::OutputFormat::Csv {
        schedule::write_csv(&plan, &items, &mut sink)?;
    } else if args.format == crate::commands::cli::OutputFormat::Json {
        schedule::write_json_lines(&plan, &items, &mut sink)?;
    } else {
        sink.write_all(describe(&plan, &items).as_bytes())?;
    }
    Ok(ExitStatus::Ok)
}

pub(super) fn phase_text(p: &Phase) -> String {
    match p {
        Phase::Idle { duration } => format!("idle {duration}"),
        Phase::Rate {
            shape,
            duration,
            arrivals,
        } => {
            let a = if *arrivals == workload::Arrivals::Poisson {
                " (poisson arrivals)"
            } else {
                ""
            };
            match shape {
                RateShape::Constant(r) => format!("constant {r} for {duration}{a}"),
                RateShape::Ramp { from, to } => format!("ramp {from} → {to} over {duration}{a}"),
                RateShape::Sine {
                    base,
                    amplitude,
                    period,
                    ..
                } => format!("sine {base} ± {amplitude}, period {period}, for {duration}{a}"),
            }
        }
        Phase::Burst {
            count,
            within,
            spread,
        } => {
            if within.0 == 0 {
                format!("burst of {count} at once")
            } else {
                format!(
                    "burst of {count} within {within} ({})",
                    if *spread == workload::Spread::Random {
                        "random"
                    } else {
                        "evenly spread"
                    }
                )
            }
        }
        Phase::Trace {
            file,
            offsets,
            duration,
        } => format!(
            "trace {} ({} rows over {duration})",
            file.display(),
            offsets.len()
        ),
        Phase::Repeat { times, phases } => {
            let inner: Vec<String> = phases.iter().map(phase_text).collect();
            format!("repeat {times}× [{}]", inner.join(", "))
        }
        Phase::Http(h) => format!(
            "http {} {}{}",
            h.method,
            h.url,
            if h.sim_effect == workload::HttpSimEffect::Warm {
                " (warms the deployment in sim)"
            } else {
                ""
            }
        ),
    }
}

/// What a plan will do, for `validate` and `plan`.
pub(super) fn describe(plan: &Plan, items: &[schedule::Item]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let msgs = items
        .iter()
        .filter(|i| matches!(i.kind, schedule::ItemKind::Message { .. }))
        .count();
    writeln!(out, "{}: ok", plan.source.display()).unwrap();
    writeln!(
        out,
        "  run `{}` · seed {} · deadline {} · warm-up {} · drain {} · target {}",
        plan.name,
        plan.seed,
        plan.deadline,
        plan.warmup,
        plan.drain,
        match plan.target {
            crate::plan::workload::TargetKind::Sim => format!("sim ({})", plan.sim.profile),
            t => t.as_str().to_string(),
        }
    )
    .unwrap();
    writeln!(
        out,
        "  {} stream(s), {} messages, last send at {}",
        plan.streams.len(),
        msgs,
        schedule::last_offset(items)
    )
    .unwrap();
    for (s, stream) in plan.streams.iter().enumerate() {
        let mine: Vec<&schedule::Item> = items.iter().filter(|i| i.stream as usize == s).collect();
        let n = mine
            .iter()
            .filter(|i| matches!(i.kind, schedule::ItemKind::Message { .. }))
            .count();
        let span = match (mine.first(), mine.last()) {
            (Some(a), Some(b)) => format!(
                "{} → {}",
                crate::units::Micros(a.offset_us),
                crate::units::Micros(b.offset_us)
            ),
            _ => "nothing scheduled".into(),
        };
        writeln!(
            out,
            "  stream `{}` → topic `{}`: {n} messages ({span})",
            stream.name, stream.topic
        )
        .unwrap();
        for (i, p) in stream.phases.iter().enumerate() {
            writeln!(out, "    {}. {}", i + 1, phase_text(p)).unwrap();
        }
        let k = &plan.sim.pipelines[s].keda;
        if plan.target == crate::plan::workload::TargetKind::Sim {
            writeln!(
                out,
                "    sim: replicas {}..{}, target {} msgs/replica, polling {}, cooldown {}",
                k.min_replicas,
                k.max_replicas,
                k.target_value,
                k.polling_interval,
                k.cooldown_period
            )
            .unwrap();
        } else {
            writeln!(
                out,
                "    workers pull from subscription `{}`",
                plan.streams[s].subscription
            )
            .unwrap();
        }
    }
    out
}
