//! Every command the README and `docs/` show runs as written. Commands are taken from the Markdown itself:
//! - in fenced `sh` blocks, each `imagen-load …` (or `cargo run --release -- …`) line is parsed by the real command
//!   line, its repository paths must exist, and those that need no cloud, cluster or emulator are run, expecting the
//!   exit code the line's comment states (`# exit 1`), else 0;
//! - `cargo test --test NAME`, `cargo bench --bench NAME`, `make TARGET` and scripts must name things that exist;
//! - inline synopses (`` `imagen-load plan WORKLOAD [-o csv|json]` ``) may hold placeholders, so only their
//!   subcommand and every flag they name are checked against the command line;
//! - the quick start's excerpt of the report is what the quick start prints.

use crate::common::{bin, path, root};
use clap::{CommandFactory, Parser};
use imagen_load::commands::cli::Cli;
use std::path::Path;

/// The Markdown files whose commands are checked.
fn documents() -> Vec<String> {
    let mut docs = vec!["README.md".to_string(), "workloads/README.md".to_string()];
    for dir in ["docs", "fixtures", "ci", "kind-config", "benches"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "md") {
                docs.push(p.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    docs.sort();
    docs
}

/// One shell command from a fenced block: its words, the comment after it, and where it was written.
struct Shown {
    at: String,
    words: Vec<String>,
    comment: String,
}

fn fenced_commands(doc: &str) -> Vec<Shown> {
    let text = std::fs::read_to_string(root().join(doc)).unwrap();
    let mut out = Vec::new();
    let mut in_sh = None::<bool>;
    let mut pending = String::new();
    let mut start = 0;
    for (i, line) in text.lines().enumerate() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            in_sh = match in_sh {
                Some(_) => None,
                None => Some(matches!(lang.trim(), "sh" | "bash" | "shell" | "console")),
            };
            continue;
        }
        if in_sh != Some(true) {
            continue;
        }
        if pending.is_empty() {
            start = i + 1;
        }
        let line = line.trim().trim_start_matches("$ ");
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let whole = std::mem::take(&mut pending);
        let (cmd, comment) = match whole.find(" #") {
            Some(k) => (whole[..k].to_string(), whole[k + 2..].trim().to_string()),
            None => (whole.clone(), String::new()),
        };
        let cmd = cmd.trim().trim_end_matches('&').trim();
        if cmd.is_empty() || cmd.starts_with('#') {
            continue;
        }
        let words =
            shlex::split(cmd).unwrap_or_else(|| panic!("{doc}:{start}: cannot split `{cmd}`"));
        out.push(Shown {
            at: format!("{doc}:{start}"),
            words,
            comment,
        });
    }
    out
}

/// The arguments of an `imagen-load` command, whether written as the binary or through `cargo run`.
fn imagen_load_args(words: &[String]) -> Option<Vec<String>> {
    // Leading environment assignments (`PUBSUB_EMULATOR_HOST=… imagen-load …`) belong to the shell.
    let words: Vec<&String> = words
        .iter()
        .skip_while(|w| w.contains('=') && !w.starts_with('-'))
        .collect();
    match words.first()?.as_str() {
        "imagen-load" => Some(words[1..].iter().map(|s| s.to_string()).collect()),
        "cargo" if words.get(1).is_some_and(|w| *w == "run") => {
            let k = words.iter().position(|w| *w == "--")?;
            Some(words[k + 1..].iter().map(|s| s.to_string()).collect())
        }
        _ => None,
    }
}

/// Paths into this repository that a command names (workloads, fixtures, CI files, scripts).
fn repo_paths(args: &[String]) -> Vec<&String> {
    const TOP: [&str; 6] = [
        "workloads/",
        "fixtures/",
        "ci/",
        "kind-config/",
        "docs/",
        "benches/",
    ];
    args.iter()
        .filter(|a| TOP.iter().any(|t| a.starts_with(t)))
        .collect()
}

/// The simulator's own workloads: what a command may run here without a cloud, a cluster or an emulator.
fn runs_offline(args: &[String]) -> bool {
    let sub = args.first().map(String::as_str);
    if !matches!(sub, Some("run" | "whatif" | "plan" | "validate")) {
        return false;
    }
    if args.iter().any(|a| a.starts_with("--target")) {
        return false;
    }
    let Some(workload) = args.iter().skip(1).find(|a| a.ends_with(".toml")) else {
        return false;
    };
    let text = std::fs::read_to_string(root().join(workload)).unwrap_or_default();
    sub != Some("run") || !text.contains("[target]") || text.contains("kind = \"sim\"")
}

fn expected_exit(comment: &str) -> i32 {
    comment
        .split("exit ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_command_in_the_readme_and_docs_parses_names_real_files_and_runs_offline_as_written() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let cargo_toml = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (mut parsed, mut ran) = (0, 0);
    for doc in documents() {
        for shown in fenced_commands(&doc) {
            let at = &shown.at;
            let w = &shown.words;
            if let Some(args) = imagen_load_args(w) {
                let mut argv = vec!["imagen-load".to_string()];
                argv.extend(args.iter().cloned());
                if let Err(e) = Cli::try_parse_from(&argv) {
                    panic!("{at}: `{}` does not parse:\n{e}", argv.join(" "));
                }
                parsed += 1;
                for p in repo_paths(&args) {
                    assert!(root().join(p).exists(), "{at}: `{p}` does not exist");
                }
                if runs_offline(&args) {
                    let mut cmd = bin();
                    // Files a command writes go to the scratch folder, not into the repository.
                    let mut args = args.clone();
                    if let Some(k) = args.iter().position(|a| a == "--metrics-file") {
                        args[k + 1] = out.path().join(&args[k + 1]).display().to_string();
                    }
                    cmd.args(&args);
                    if args[0] == "run" {
                        cmd.args(["--quiet", "--out"]).arg(out.path());
                    }
                    let got = cmd.output().unwrap();
                    assert_eq!(
                        got.status.code(),
                        Some(expected_exit(&shown.comment)),
                        "{at}: `imagen-load {}`\n{}",
                        args.join(" "),
                        String::from_utf8_lossy(&got.stderr)
                    );
                    ran += 1;
                }
                continue;
            }
            match (w[0].as_str(), w.get(1).map(String::as_str)) {
                ("cargo", Some("test" | "bench")) => {
                    for pair in w.windows(2) {
                        if matches!(pair[0].as_str(), "--test" | "--bench") {
                            let kind = &pair[0][2..];
                            assert!(
                                cargo_toml.contains(&format!("[[{kind}]]\nname = \"{}\"", pair[1])),
                                "{at}: no {kind} target `{}` in Cargo.toml",
                                pair[1]
                            );
                        }
                    }
                }
                ("make", Some(target)) => assert!(
                    makefile
                        .lines()
                        .any(|l| l.starts_with(&format!("{target}:"))),
                    "{at}: the Makefile has no target `{target}`"
                ),
                (script, _) if script.ends_with(".sh") => {
                    assert!(
                        Path::new(&root().join(script)).exists(),
                        "{at}: `{script}` does not exist"
                    )
                }
                _ => {}
            }
        }
    }
    eprintln!("{parsed} documented commands parsed, {ran} run");
    assert!(
        parsed >= 10 && ran >= 5,
        "only {parsed} commands parsed and {ran} ran"
    );
}

#[test]
fn every_inline_synopsis_names_a_real_subcommand_and_real_flags() {
    let cli = Cli::command();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(root().join(&doc)).unwrap();
        for (i, line) in text.lines().enumerate() {
            for span in line.split('`').skip(1).step_by(2) {
                let Some(rest) = span.strip_prefix("imagen-load ") else {
                    continue;
                };
                let at = format!("{doc}:{}", i + 1);
                let mut words = rest.split_whitespace();
                let sub = words.next().unwrap_or("");
                if sub == "…" || sub.starts_with('-') {
                    continue;
                }
                let Some(cmd) = cli.find_subcommand(sub) else {
                    panic!("{at}: `{span}`: there is no subcommand `{sub}`");
                };
                for flag in words.flat_map(|w| w.split(['[', ']', '|', '\\', '='])) {
                    let known = if let Some(long) = flag.strip_prefix("--") {
                        long.is_empty()
                            || cmd.get_arguments().chain(cli.get_arguments()).any(|a| {
                                a.get_long() == Some(long)
                                    || a.get_all_aliases().is_some_and(|v| v.contains(&long))
                            })
                    } else if let Some(short) = flag.strip_prefix('-').filter(|s| s.len() == 1) {
                        let c = short.chars().next().unwrap();
                        cmd.get_arguments()
                            .chain(cli.get_arguments())
                            .any(|a| a.get_short() == Some(c))
                    } else {
                        true
                    };
                    assert!(
                        known,
                        "{at}: `{span}`: `imagen-load {sub}` has no flag `{flag}`"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} synopses found");
}

/// The quick start's excerpt in the README is what `run workloads/burst.toml` prints: each of its lines, in
/// order, is a line of the real output (the excerpt leaves lines out, it never changes one).
#[test]
fn the_readme_excerpt_is_what_the_quick_start_prints() {
    let readme = std::fs::read_to_string(path("README.md")).unwrap();
    let start = readme
        .find("```\nEnd-to-end latency")
        .expect("the README shows the quick start's report")
        + 4;
    let excerpt = &readme[start..start + readme[start..].find("```").unwrap()];
    let out = tempfile::tempdir().unwrap();
    let run = bin()
        .args(["run", "workloads/burst.toml", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let printed = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    let mut lines = printed.lines();
    for want in excerpt.lines() {
        assert!(
            lines.any(|l| l == want),
            "the README's excerpt line `{want}` is not (in this order) in what the quick start prints:\n{printed}"
        );
    }
}
