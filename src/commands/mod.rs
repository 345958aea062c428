//! The application edge: resolves the command line into a plan once, runs the command, and maps the outcome to an
//! exit status. `anyhow` context is added here and nowhere deeper.

pub mod cli;
mod inspect;
mod results;
mod run;
mod serve;

use inspect::*;
pub use results::analyze_results;
use results::*;
use run::*;
use serve::*;

use crate::analysis::{self, RunReport};
use crate::commands::cli::{
    AnalyzeArgs, CalibrateArgs, Cli, Command, CompareArgs, EmulatorArgs, HealthArgs, ImportArgs,
    MergeArgs, PlanArgs, ReportArgs, RunArgs, TargetArg, WatchArgs, WhatifArgs, WorkerArgs,
    WorkloadArgs,
};
use crate::event::log::{self as eventlog, EventLogWriter};
use crate::event::{EVENT_LOG_VERSION, Event, EventKind, Source};
use crate::outputs::report;
use crate::plan::schedule;
use crate::plan::workload::{self, Override, Phase, Plan, RateShape};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Ok,
    /// A threshold or regression gate failed (exit code 1).
    GateFailed,
    /// A signal stopped the run; its partial results were written. Exit code 128 + the signal's number, the
    /// shell's convention: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.
    Interrupted(i32),
    /// Bad input already reported on stdout in the format asked for (`validate -o json`): exit code 2, nothing
    /// more said on stderr.
    Invalid,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        match s {
            ExitStatus::Ok => ExitCode::SUCCESS,
            ExitStatus::GateFailed => ExitCode::from(1),
            ExitStatus::Interrupted(sig) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
            ExitStatus::Invalid => ExitCode::from(2),
        }
    }
}

/// The exit status of a run a signal stopped (SIGINT's when the stop had another cause).
fn interrupted(stop: &crate::run::Stop) -> ExitStatus {
    ExitStatus::Interrupted(stop.signal().unwrap_or(crate::run::SIGINT))
}

pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    crate::logs::init(cli.verbose, cli.log_format);
    match cli.command {
        Command::Validate(args) => validate(&args),
        Command::Plan(args) => plan(&args),
        Command::Run(args) => run_workload(&args),
        Command::Analyze(args) => analyze(&args),
        Command::Merge(args) => merge(&args),
        Command::Compare(args) => compare(&args),
        Command::Report(args) => trend_report(&args),
        Command::Whatif(args) => whatif(&args),
        Command::Calibrate(args) => calibrate(&args),
        Command::Import(args) => import(&args),
        Command::Emulator(args) => serve_emulator(&args),
        Command::Worker(args) => worker(args),
        Command::Health(args) => health(&args),
        Command::Watch(args) => watch(&args),
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut cmd, "imagen-load", &mut out);
            crate::unless_closed(std::io::stdout().lock().write_all(&out))?;
            Ok(ExitStatus::Ok)
        }
        Command::Man(args) => man(&args),
    }
}

/// `man`: the main page on stdout, or every command's page into a folder (clap_mangen).
fn man(args: &crate::commands::cli::ManArgs) -> anyhow::Result<ExitStatus> {
    let cmd = <Cli as clap::CommandFactory>::command();
    match &args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            crate::unless_closed(std::io::stdout().lock().write_all(&page))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            crate::say!("wrote the man pages into {}", dir.display())?;
        }
    }
    Ok(ExitStatus::Ok)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The live run's runtime, and the built-in emulator's: their threads yield to the pacer's
/// ([`crate::run::runner::yield_to_the_pacer`]).
fn live_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start({
            let base = crate::run::runner::current_nice();
            move || crate::run::runner::yield_to_the_pacer(base)
        })
        .build()
        .context("cannot start the async runtime")
}

fn gate_status(report: &RunReport) -> ExitStatus {
    if report.failed_thresholds() > 0 {
        ExitStatus::GateFailed
    } else {
        ExitStatus::Ok
    }
}

/// Writes every output of `report` into `dir` and, unless quiet, prints the summary with a closing line built from
/// the number of files written.
fn write_and_print(
    report: &RunReport,
    dir: &Path,
    quiet: bool,
    closing: impl FnOnce(usize) -> String,
) -> anyhow::Result<()> {
    let files = report::write_all(report, dir)?;
    if !quiet {
        print_report(report, &closing(files.len()))?;
    }
    Ok(())
}

/// The terminal summary, then one closing line. Coloured as the conventions say (anstream, as clap does):
/// `NO_COLOR` set turns colour off, `CLICOLOR_FORCE` on, `CLICOLOR=0` off; otherwise only on a terminal.
fn print_report(report: &RunReport, closing: &str) -> std::io::Result<()> {
    let color = anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
    let mut stdout = std::io::stdout().lock();
    crate::unless_closed(
        write!(stdout, "{}", report::render_terminal(report, color))
            .and_then(|()| writeln!(stdout, "\n{closing}")),
    )
}

/// The results folder of `run`: `--run-id` (with a shard's suffix), else `<time>-<workload>` made again if taken.
fn run_results_dir(plan: &Plan, args: &RunArgs) -> anyhow::Result<(String, PathBuf)> {
    let generate = || run_id_of(plan, args);
    create_results_dir(
        &args.results.out,
        generate(),
        args.run_id.is_none().then_some(&generate),
        args.results.force,
    )
}

/// The results folder of a command whose generated run id is `<time>-<name>` (`watch`, `import`), or `--run-id`.
fn stamped_results_dir(
    out: &Path,
    chosen: &Option<String>,
    name: &str,
    force: bool,
) -> anyhow::Result<(String, PathBuf)> {
    match chosen {
        Some(id) => create_results_dir(out, id.clone(), None, force),
        None => create_results_dir(out, stamped(name), Some(&|| stamped(name)), force),
    }
}

/// Creates the results folder `<out>/<run_id>` atomically (`mkdir`, which fails when the folder exists), so that
/// of two runs racing for one folder exactly one gets it. When the folder exists: `--force` replaces it; a
/// generated id (`regenerate` given) is made again, a millisecond later; a chosen id is an error with the fix.
/// Returns the run id and the folder used.
fn create_results_dir(
    out: &Path,
    mut run_id: String,
    regenerate: Option<&dyn Fn() -> String>,
    force: bool,
) -> anyhow::Result<(String, PathBuf)> {
    for _ in 0..1_000 {
        let dir = out.join(&run_id);
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create results folder {}", parent.display()))?;
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((run_id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if force {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("cannot replace {}", dir.display()))?;
                } else if let Some(next) = regenerate {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    run_id = next();
                } else {
                    bail!(
                        "results folder {} already exists\n    fix: pass --force to replace it, or --run-id to name another",
                        dir.display()
                    );
                }
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create results folder {}", dir.display()));
            }
        }
    }
    bail!(
        "could not create a results folder under {} for run {run_id}\n    fix: pass --run-id to name one",
        out.display()
    )
}
