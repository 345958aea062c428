//! Commands on results that exist: `analyze`, `merge`, `compare`, `report` (nightly trends), `whatif`, `import`,
//! `calibrate`.

use super::*;

/// Analyses a results folder (or an events.jsonl) from its log; the log's own warnings come first.
pub fn analyze_results(path: &Path) -> anyhow::Result<(RunReport, PathBuf, eventlog::ReadReport)> {
    let (dir, log): (PathBuf, PathBuf) = if path.is_dir() {
        (path.to_path_buf(), path.join("events.jsonl"))
    } else {
        (
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
            path.to_path_buf(),
        )
    };
    let mut stream = analysis::Reordering::new(analysis::REORDER_WINDOW_US);
    let read = eventlog::read_with(&log, |e| stream.push(e))?;
    let mut report = stream.finish();
    let mut warnings = read.warnings();
    warnings.append(&mut report.warnings);
    report.warnings = warnings;
    Ok((report, dir, read))
}

pub(super) fn compare(args: &CompareArgs) -> anyhow::Result<ExitStatus> {
    let (base, _, _) = analyze_results(&args.base)?;
    let (current, _, _) = analyze_results(&args.current)?;
    if !(args.percentile > 0.0 && args.percentile <= 100.0) {
        bail!(
            "--percentile {} must be above 0 and at most 100",
            args.percentile
        );
    }
    let tolerance = args.fail_on_regression.unwrap_or(0.10);
    let c = crate::outputs::compare::compare(&base, &current, args.percentile, tolerance);
    let table = crate::outputs::compare::render(&c);
    match args.format {
        crate::commands::cli::OutputFormat::Json => crate::say!("{}", serde_json::to_string(&c)?)?,
        crate::commands::cli::OutputFormat::Text => {
            crate::unless_closed(write!(std::io::stdout().lock(), "{table}"))?
        }
        crate::commands::cli::OutputFormat::Csv => {
            bail!("compare prints text or json\n    fix: `-o json`")
        }
    }
    if let Some(md) = &args.markdown {
        std::fs::write(md, &table).with_context(|| format!("cannot write {}", md.display()))?;
    }
    if let Some(path) = &args.junit {
        let suite = crate::outputs::report::junit::comparison_suite(
            "imagen-load.compare",
            &c,
            args.fail_on_regression.is_some(),
        );
        std::fs::write(path, crate::outputs::report::junit::render_suite(&suite))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(
        if args.fail_on_regression.is_some() && c.regressions() > 0 {
            ExitStatus::GateFailed
        } else {
            ExitStatus::Ok
        },
    )
}

pub(super) fn whatif(args: &WhatifArgs) -> anyhow::Result<ExitStatus> {
    use crate::run::whatif;
    let plan = load_plan(&args.workload)?;
    let streams: Vec<String> = plan.streams.iter().map(|s| s.name.clone()).collect();
    let pipelines: Vec<crate::event::PipelineNames> =
        plan.streams.iter().map(|s| s.names()).collect();
    if !(0.0..=24.0).contains(&args.traffic_hours_per_day) {
        bail!(
            "--traffic-hours-per-day {} must be between 0 and 24",
            args.traffic_hours_per_day
        );
    }
    let specs: Vec<String> = if args.setups.is_empty() {
        vec![
            "all-cold".into(),
            format!("hybrid:{}", streams[0]),
            "always-on".into(),
        ]
    } else {
        args.setups.clone()
    };
    let mut setups = specs
        .iter()
        .map(|s| whatif::setup(s, &pipelines))
        .collect::<Result<Vec<_>, _>>()?;
    // A sweep goes on top of every setup given (3 setups × 5 values are 15 simulations, run in parallel), or of
    // all-cold when none is.
    if let Some(sweep) = &args.sweep {
        let bases = if args.setups.is_empty() {
            vec![setups.swap_remove(0)]
        } else {
            setups
        };
        let named = bases.len() > 1;
        setups = Vec::new();
        for base in &bases {
            for mut s in whatif::sweep(sweep, base, &streams)? {
                if named {
                    s.name = format!("{} · {}", base.name, s.name);
                }
                setups.push(s);
            }
        }
    }
    let mut base: Vec<Override> = args
        .workload
        .overrides
        .iter()
        .map(|o| o.parse::<Override>().map_err(|m| anyhow::anyhow!(m)))
        .collect::<anyhow::Result<_>>()?;
    if let Some(seed) = args.workload.seed {
        base.push(
            format!("run.seed={seed}")
                .parse()
                .map_err(|m: String| anyhow::anyhow!(m))?,
        );
    }
    let w = whatif::run(
        &args.workload.workload,
        &base,
        &setups,
        args.budget.0,
        args.traffic_hours_per_day,
    )?;
    match args.format {
        crate::commands::cli::WhatifFormat::Table => {
            crate::unless_closed(write!(std::io::stdout().lock(), "{}", whatif::markdown(&w)))?
        }
        crate::commands::cli::WhatifFormat::Json => {
            for n in &w.notes {
                crate::note!("{n}");
            }
            crate::say!("{}", serde_json::to_string_pretty(&w.rows)?)?;
        }
    }
    if let Some(path) = &args.html {
        std::fs::write(path, whatif::html(&w, args.sweep.is_some()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitStatus::Ok)
}

pub(super) fn import(args: &ImportArgs) -> anyhow::Result<ExitStatus> {
    let inputs = args
        .dumps
        .iter()
        .map(|p| {
            std::fs::File::open(p)
                .map(|f| crate::observe::cluster::import::Input {
                    name: p.display().to_string(),
                    reader: Box::new(f),
                })
                .with_context(|| format!("cannot read {}", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let imported = crate::observe::cluster::import::import(inputs, args.price_per_gpu_hour_usd)?;
    let (run_id, dir) = stamped_results_dir(
        &args.results.out,
        &args.run_id,
        "import",
        args.results.force,
    )?;
    let mut writer = EventLogWriter::create(&dir.join("events.jsonl"))?;
    let mut analyzer = analysis::Analyzer::default();
    for e in &imported.events {
        writer.append(e)?;
        analyzer.push(e);
    }
    writer.finish()?;
    let mut report = analyzer.finish();
    report.run.run_id = run_id;
    if !imported.unparsed.is_empty() {
        let total: u64 = imported.unparsed.values().sum();
        let by_reason: Vec<String> = imported
            .unparsed
            .iter()
            .map(|(r, n)| format!("{r} ({n})"))
            .collect();
        report.warnings.push(format!(
            "{total} event messages were not recognised and are kept raw in the dump: {}",
            by_reason.join(", ")
        ));
    }
    write_and_print(&report, &dir, args.results.quiet, |files| {
        format!(
            "imported {} events from the dump ({} deployments) · results in {} ({} files)",
            imported.events.len(),
            imported.deployments.len(),
            dir.display(),
            files + 1
        )
    })?;
    Ok(ExitStatus::Ok)
}

pub(super) fn calibrate(args: &CalibrateArgs) -> anyhow::Result<ExitStatus> {
    let (report, dir, _) = analyze_results(&args.results)?;
    let today = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let c = crate::outputs::calibrate::calibrate(&report, &today);
    // By default beside the run it came from, not into the repository's fixtures.
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| dir.join("calibrated-profile.toml"));
    if out.exists() && !args.force {
        bail!(
            "{} already exists\n    fix: pass --force to replace it, or --out to write elsewhere",
            out.display()
        );
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&out, &c.text).with_context(|| format!("cannot write {}", out.display()))?;
    crate::say!(
        "calibrated {} parameters from run `{}`:",
        c.used.len(),
        report.run.run_id
    )?;
    for u in &c.used {
        crate::say!("  {u}")?;
    }
    if !c.skipped.is_empty() {
        crate::say!("kept as in the base profile:")?;
        for s in &c.skipped {
            crate::say!("  {s}")?;
        }
    }
    crate::say!(
        "wrote {} (use it with `[sim] profile = \"{}\"`)",
        out.display(),
        out.display()
    )?;
    Ok(ExitStatus::Ok)
}

pub(super) fn trend_report(args: &ReportArgs) -> anyhow::Result<ExitStatus> {
    use crate::outputs::report::trends;
    let (runs, skipped) = trends::collect(&args.paths);
    for s in &skipped {
        crate::note!("skipped {s}");
    }
    // Only like runs make a trend: the newest complete run's workload and target; the rest are listed apart.
    let found = runs.len();
    let (runs, set_apart) = trends::comparable(runs);
    for a in &set_apart {
        crate::note!("set apart {a}");
    }
    if runs.is_empty() && found > 0 {
        bail!(
            "every run found was interrupted: no night to report\n    fix: pass folders of complete runs"
        );
    }
    if runs.is_empty() {
        bail!(
            "no results folder with a summary.json under {}\n    fix: pass results folders, or the folder that holds them",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let baseline = match &args.baseline {
        Some(id) => runs
            .iter()
            .position(|r| &r.run.run_id == id)
            .with_context(|| match set_apart.iter().find(|a| a.starts_with(&format!("`{id}`"))) {
                Some(why) => format!("run {why}, so it cannot be the baseline\n    fix: choose a complete run of the same workload and target"),
                None => format!("no run `{id}` among the {} comparable runs", runs.len()),
            })?,
        None => 0,
    };
    let n = runs.len();
    let analyze = |p: &Path| {
        analyze_results(p)
            .ok()
            .filter(|(r, _, _)| {
                r.series.get("e2e_latency", "all", None).is_some() || !r.pods.is_empty()
            })
            .map(|(r, _, _)| r)
    };
    let last = &runs[n - 1].dir;
    let vs_previous = (n >= 2)
        .then(|| trends::compare_runs(&runs[n - 2].dir, last, &analyze))
        .flatten();
    let vs_baseline = (baseline != n - 1)
        .then(|| trends::compare_runs(&runs[baseline].dir, last, &analyze))
        .flatten();
    let t = trends::Trends {
        runs: &runs,
        set_apart: &set_apart,
        baseline,
        vs_previous,
        vs_baseline,
    };
    let text = if args.out.extension().is_some_and(|e| e == "md") {
        trends::markdown(&t)
    } else {
        trends::html(&t)
    };
    std::fs::write(&args.out, text)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let regressions = t.vs_previous.as_ref().map_or(0, |c| c.regressions())
        + t.vs_baseline.as_ref().map_or(0, |c| c.regressions());
    if let Some(path) = &args.junit {
        use crate::outputs::report::junit;
        let suites: Vec<junit::Suite> = [
            ("imagen-load.report.vs_previous", &t.vs_previous),
            ("imagen-load.report.vs_baseline", &t.vs_baseline),
        ]
        .into_iter()
        .filter_map(|(name, c)| {
            c.as_ref()
                .map(|c| junit::comparison_suite(name, c, args.fail_on_regression))
        })
        .collect();
        std::fs::write(path, junit::render_suites(&suites))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    crate::say!(
        "{} runs · {regressions} regression(s) in the last run · wrote {}",
        n,
        args.out.display()
    )?;
    Ok(if args.fail_on_regression && regressions > 0 {
        ExitStatus::GateFailed
    } else {
        ExitStatus::Ok
    })
}

pub(super) fn merge(args: &MergeArgs) -> anyhow::Result<ExitStatus> {
    let shards = crate::run::merge::inspect(&args.shards, args.partial)?;
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| crate::run::merge::base_run_id(&shards[0].run_id).to_string());
    let (run_id, dir) = create_results_dir(&args.results.out, run_id, None, args.results.force)?;
    let merged = crate::run::merge::merge(&shards, &run_id, &dir.join("events.jsonl"))?;
    if let Ok(workload) = std::fs::read(shards[0].dir.join("workload.toml")) {
        std::fs::write(dir.join("workload.toml"), workload)?;
    }
    let (mut report, _, _) = analyze_results(&dir)?;
    if shards.len() < shards[0].shard.count as usize {
        report.warnings.push(format!(
            "merged {} of {} shards (--partial): the report covers only their messages",
            shards.len(),
            shards[0].shard.count
        ));
    }
    if let Some(gates) = &args.gates {
        let thresholds = crate::plan::thresholds::load_file(gates, &report.run.streams)?;
        report.thresholds = crate::outputs::gates::evaluate(&thresholds, &report);
    }
    write_and_print(&report, &dir, args.results.quiet, |files| {
        format!(
            "merged {} shards ({} events; {} duplicate or foreign events left out) · results in {} ({} files)",
            shards.len(),
            merged.events,
            merged.left_out,
            dir.display(),
            files + 2
        )
    })?;
    Ok(gate_status(&report))
}

pub(super) fn analyze(args: &AnalyzeArgs) -> anyhow::Result<ExitStatus> {
    let (mut report, dir, read) = analyze_results(&args.results)?;
    let log = if args.results.is_dir() {
        args.results.join("events.jsonl")
    } else {
        args.results.clone()
    };
    if let Some(gates) = &args.gates {
        let thresholds = crate::plan::thresholds::load_file(gates, &report.run.streams)?;
        report.thresholds = crate::outputs::gates::evaluate(&thresholds, &report);
    }
    write_and_print(&report, &dir, args.quiet, |files| {
        format!(
            "re-analysed {} ({} lines) · wrote {files} files in {}",
            log.display(),
            read.lines,
            dir.display()
        )
    })?;
    Ok(gate_status(&report))
}
