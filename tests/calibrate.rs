//! Calibration round trip: simulate with known distributions, calibrate a profile from the result, simulate again
//! with that profile (another seed): the phases' medians agree within sampling error.

use crate::common::bin;
use imagen_load::analysis::{self, RunReport};
use imagen_load::run::simulate_events;

fn workload(sim: &str, seed: u64) -> String {
    let mut src =
        format!("[run]\nseed = {seed}\ndeadline = \"30m\"\n{sim}\n[sim.keda]\nmax_replicas = 1\n");
    for s in ["upscale", "enhance", "comic", "background-remove"] {
        // Eight cycles from zero each: a burst, then long enough idle for the pod and the node to go.
        src.push_str(&format!(
            "[[stream]]\nname = \"{s}\"\n[[stream.phase]]\nkind = \"repeat\"\ntimes = 8\nphases = [{{ kind = \"burst\", count = 4, within = \"10s\" }}, {{ kind = \"idle\", duration = \"30m\" }}]\n"
        ));
    }
    src
}

fn simulate(src: &str, dir: &std::path::Path) -> RunReport {
    let path = dir.join(format!("w{}.toml", src.len()));
    std::fs::write(&path, src).unwrap();
    let plan = imagen_load::plan::workload::load(&path, &[]).unwrap();
    analysis::analyze(simulate_events(&plan, "calibration"))
}

#[test]
fn a_calibrated_profile_reproduces_the_measured_phases() {
    let dir = tempfile::tempdir().unwrap();
    let truth = "[sim]\nprofile = \"gke-t4\"\n[sim.autoscaler]\nnode_provision = \"uniform(40s, 80s)\"\n[sim.kubelet]\nimage_pull = \"uniform(30s, 60s)\"\n[sim.worker]\nmodel_load = \"uniform(20s, 50s)\"\nprocessing = \"lognormal(5s, 0.3)\"\n";
    let measured = simulate(&workload(truth, 11), dir.path());
    let c = imagen_load::outputs::calibrate::calibrate(&measured, "test");
    let profile = dir.path().join("calibrated.toml");
    std::fs::write(&profile, &c.text).unwrap();
    let again = simulate(
        &workload(&format!("[sim]\nprofile = \"{}\"\n", profile.display()), 12),
        dir.path(),
    );
    for (metric, scope) in [
        ("node.register", "gpu-pool"),
        ("kubelet.image_pull", "all"),
        ("cold_start.model_load", "all"),
        ("processing", "all"),
    ] {
        let a = measured.series.get(metric, scope, None).unwrap();
        let b = again.series.get(metric, scope, None).unwrap();
        assert!(
            a.len() >= 30 && b.len() >= 30,
            "{metric}: {} and {} samples",
            a.len(),
            b.len()
        );
        for q in [0.25, 0.5, 0.75] {
            let (x, y) = (a.value_at_quantile(q) as f64, b.value_at_quantile(q) as f64);
            assert!(
                (x - y).abs() / x < 0.15,
                "{metric} p{}: measured {x} µs, recalibrated {y} µs",
                q * 100.0
            );
        }
    }
    assert!(
        c.text.contains("calibrated by `imagen-load calibrate`")
            && c.text.contains("from run `calibration`")
    );
}

#[test]
fn calibrate_writes_a_profile_a_workload_can_use() {
    let out = tempfile::tempdir().unwrap();
    bin()
        .args([
            "run",
            "workloads/diurnal.toml",
            "--quiet",
            "--run-id",
            "day",
            "--out",
        ])
        .arg(out.path())
        .assert()
        .success();
    // By default the profile goes beside the run, not into the repository's fixtures.
    bin()
        .arg("calibrate")
        .arg(out.path().join("day"))
        .assert()
        .success();
    assert!(
        out.path()
            .join("day")
            .join("calibrated-profile.toml")
            .is_file()
    );
    let profile = out.path().join("p.toml");
    bin()
        .arg("calibrate")
        .arg(out.path().join("day"))
        .arg("--out")
        .arg(&profile)
        .assert()
        .success();
    bin()
        .arg("calibrate")
        .arg(out.path().join("day"))
        .arg("--out")
        .arg(&profile)
        .assert()
        .code(2);
    let w = out.path().join("w.toml");
    std::fs::write(
        &w,
        format!("[sim]\nprofile = \"{}\"\n[[stream]]\nname = \"upscale\"\n[[stream.phase]]\nkind = \"burst\"\ncount = 3\n", profile.display()),
    )
    .unwrap();
    bin()
        .arg("validate")
        .arg(&w)
        .assert()
        .success()
        .stdout(predicates::str::contains("p.toml"));
}
