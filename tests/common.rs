//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn path(rel: &str) -> PathBuf {
    root().join(rel)
}

pub fn plan_from(src: &str) -> imagen_load::workload::Plan {
    imagen_load::workload::parse(Path::new("test.toml"), src).unwrap_or_else(|e| panic!("{e}"))
}

pub fn bin() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("imagen-load").unwrap();
    c.current_dir(root());
    c
}

/// `imagen-load run workloads/burst.toml --quiet --run-id ID --out OUT EXTRA...`, for tests that need a run.
pub fn run_burst(out: &Path, id: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    bin()
        .args([
            "run",
            "workloads/burst.toml",
            "--quiet",
            "--run-id",
            id,
            "--out",
        ])
        .arg(out)
        .args(extra)
        .assert()
}

/// One pod's entry in a summary.json's `pods`.
pub fn summary_pod(summary: &serde_json::Value, name: &str) -> serde_json::Value {
    summary["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pod"] == name)
        .unwrap_or_else(|| panic!("no pod {name} in the summary"))
        .clone()
}
