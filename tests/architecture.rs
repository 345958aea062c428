//! The floor plan, guarded: no import cycle between the top-level modules of `src/` (plan, run, observe,
//! analysis, outputs, commands and the shared leaves), none between files, and no library code that imports the
//! command-line edge (`commands`). Read from the source's own paths: every `crate::a::b…` and `super::…` outside
//! comments, resolved to the file that defines the longest known prefix. `lib.rs` (the crate root, with the
//! `note!`/`say!` macros) and `main.rs` are left out; `mod` declarations and a folder's `pub use` of its own
//! children are the folder's facade, not a dependency, and are not read as one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every library file of `src/` by module path (`run::sim` for `src/run/sim/mod.rs`), with its text.
fn files() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(crate::common::path("src")).unwrap();
                let mut segs: Vec<String> = rel
                    .iter()
                    .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
                    .collect();
                if segs.last().is_some_and(|s| s == "mod") {
                    segs.pop();
                }
                let module = segs.join("::");
                if module == "lib" || module == "main" {
                    continue;
                }
                out.insert(module, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&crate::common::path("src"), &mut out);
    out
}

/// The module paths a file's code names: `crate::x::y::Z` as `[x, y, Z]`, `super::y::Z` resolved against the
/// file's own module. Comments are skipped; inside a `#[cfg(test)]` module `super` is the file itself.
fn references(module: &str, is_folder: bool, text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let own: Vec<&str> = module.split("::").collect();
    let parent: Vec<String> = if is_folder {
        own[..own.len() - 1].iter().map(|s| s.to_string()).collect()
    } else {
        own[..own.len().saturating_sub(1)]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let mut in_tests = false;
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        if code.starts_with("#[cfg(test)]") {
            in_tests = true;
        }
        let code = code.split(" //").next().unwrap_or(code);
        for (anchor, base) in [("crate::", Vec::new()), ("super::", parent.clone())] {
            if anchor == "super::" && in_tests {
                continue;
            }
            let mut rest = code;
            while let Some(at) = rest.find(anchor) {
                let before = rest[..at].chars().last();
                rest = &rest[at + anchor.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                    continue;
                }
                let path: Vec<String> = rest
                    .split("::")
                    .map(|s| {
                        s.chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect::<String>()
                    })
                    .take_while(|s| !s.is_empty())
                    .collect();
                let mut full = base.clone();
                full.extend(path);
                out.push(full);
            }
        }
    }
    out
}

/// File → the files it names.
fn file_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = files();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &files {
        let is_folder = crate::common::path("src")
            .join(module.replace("::", "/"))
            .join("mod.rs")
            .is_file();
        let deps = graph.entry(module.clone()).or_default();
        for path in references(module, is_folder, text) {
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|p| files.contains_key(p));
            if let Some(t) = target
                && &t != module
            {
                deps.insert(t);
            }
        }
    }
    graph
}

/// One cycle of `graph`, as the nodes around it, if there is one (depth-first search, by name order).
fn a_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if !state.contains_key(n)
            && let Some(c) = visit(n, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn top(module: &str) -> String {
    module.split("::").next().unwrap().to_string()
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, deps) in file_graph() {
        let from = top(&file);
        let entry = graph.entry(from.clone()).or_default();
        entry.extend(deps.iter().map(|d| top(d)).filter(|d| *d != from));
    }
    // The folders the flow is laid out in, and the shared leaves: a new top-level module is a decision.
    assert_eq!(
        graph.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "analysis", "commands", "event", "limits", "logs", "observe", "outputs", "plan", "run",
            "seqset", "units"
        ]
    );
    assert_eq!(a_cycle(&graph), None, "top-level modules: {graph:#?}");
}

#[test]
fn no_import_cycle_between_files() {
    let graph = file_graph();
    assert!(graph.len() > 60, "{} files read", graph.len());
    assert_eq!(a_cycle(&graph), None);
}

#[test]
fn library_code_does_not_import_the_command_line_edge() {
    let offenders: Vec<(String, String)> = file_graph()
        .into_iter()
        .filter(|(f, _)| top(f) != "commands")
        .flat_map(|(f, deps)| {
            deps.into_iter()
                .filter(|d| top(d) == "commands")
                .map(move |d| (f.clone(), d))
        })
        .collect();
    assert_eq!(offenders, Vec::<(String, String)>::new());
}

/// The guard sees what it must: a planted cycle and a planted import of the edge are found.
#[test]
fn the_guard_finds_a_cycle_and_an_edge_import() {
    let refs = references(
        "run::live",
        false,
        "use crate::commands::cli::Cli; // x\n// crate::plan::Plan in a comment\nlet a = super::collector::X;",
    );
    assert_eq!(
        refs,
        vec![
            vec!["commands".to_string(), "cli".into(), "Cli".into()],
            vec!["run".to_string(), "collector".into(), "X".into()]
        ]
    );
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(a_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        a_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
