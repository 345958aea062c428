//! What-if: setups from presets and ScaledObject files, JSON rows, sweeps, and the seed scenario's ordering.

use crate::common::bin;
use predicates::str::contains;

fn rows(args: &[&str]) -> Vec<serde_json::Value> {
    let o = bin()
        .args(["whatif", "workloads/burst.toml", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).unwrap()
}

fn total<'a>(rows: &'a [serde_json::Value], setup: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["setup"] == setup && r["pipeline"] == "all")
        .unwrap_or_else(|| panic!("no total for {setup}"))
}

#[test]
fn the_three_options_of_the_original_design_from_the_teams_yaml() {
    let r = rows(&[
        "--setup",
        "fixtures/scaledobjects/all-cold.yaml",
        "--setup",
        "fixtures/scaledobjects/hybrid.yaml",
        "--setup",
        "fixtures/scaledobjects/always-on.yaml",
    ]);
    let (cold, hybrid, on) = (
        total(&r, "all-cold"),
        total(&r, "hybrid"),
        total(&r, "always-on"),
    );
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    assert!(f(cold, "cost_usd_per_month") < f(hybrid, "cost_usd_per_month"));
    assert!(f(hybrid, "cost_usd_per_month") < f(on, "cost_usd_per_month"));
    assert!(f(cold, "cold_starts") > f(hybrid, "cold_starts") && f(on, "cold_starts") == 0.0);
    assert!(f(cold, "e2e_p95_us") > f(on, "e2e_p95_us"));
    // Always-on: four GPUs around the clock at $0.48 an hour.
    assert!(
        (f(on, "cost_usd_per_month") - 4.0 * 0.48 * 730.5).abs() < 5.0,
        "{}",
        f(on, "cost_usd_per_month")
    );
    // Every row says what it assumed.
    assert!(
        r.iter()
            .all(|row| row["profile"].as_str().unwrap().contains("gke-t4")
                && row["price_per_gpu_hour_usd"] == 0.48)
    );
    // The presets give the same answer as the YAML.
    let p = rows(&[
        "--setup",
        "all-cold",
        "--setup",
        "hybrid:upscale",
        "--setup",
        "always-on",
    ]);
    assert_eq!(
        total(&p, "always-on")["cost_usd_per_month"],
        on["cost_usd_per_month"]
    );
    assert_eq!(
        total(&p, "hybrid:upscale")["e2e_p95_us"],
        hybrid["e2e_p95_us"]
    );
}

#[test]
fn fewer_hours_of_traffic_cost_less_only_for_what_scales_to_zero() {
    let day = rows(&["--setup", "all-cold", "--setup", "always-on"]);
    let office = rows(&[
        "--setup",
        "all-cold",
        "--setup",
        "always-on",
        "--traffic-hours-per-day",
        "8",
    ]);
    let m = |r: &[serde_json::Value], s: &str| total(r, s)["cost_usd_per_month"].as_f64().unwrap();
    assert!(m(&office, "all-cold") < m(&day, "all-cold") / 2.0);
    assert!(
        (m(&office, "always-on") - m(&day, "always-on")).abs() < 1.0,
        "hot pipelines cost the same all day"
    );
}

#[test]
fn a_sweep_draws_its_curve() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("sweep.html");
    bin()
        .args([
            "whatif",
            "workloads/burst.toml",
            "--sweep",
            "cooldownPeriod=60s,300s,900s",
            "--html",
        ])
        .arg(&html)
        .assert()
        .success()
        .stdout(contains("cooldownPeriod=60s"))
        .stdout(contains("cooldownPeriod=900s"));
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 2, "latency and cost curves");
    assert!(!page.contains("<script"));
}

#[test]
fn unsupported_fields_are_reported_and_bad_setups_refused() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("so.yaml");
    std::fs::write(
        &yaml,
        "kind: ScaledObject\nspec:\n  scaleTargetRef: {name: comic-worker}\n  fallback: {failureThreshold: 3, replicas: 1}\n  triggers:\n    - type: gcp-pubsub\n      metadata: {subscriptionName: imagen-comic-sub, value: '5'}\n",
    )
    .unwrap();
    bin()
        .args(["whatif", "workloads/burst.toml", "--setup"])
        .arg(&yaml)
        .assert()
        .success()
        .stdout(contains("not modelled: "))
        .stdout(contains("spec.fallback.failureThreshold"));
    bin()
        .args(["whatif", "workloads/burst.toml", "--setup", "hybrid:upscal"])
        .assert()
        .code(2)
        .stderr(contains("no pipeline `upscal`"));
    bin()
        .args(["whatif", "workloads/burst.toml", "--sweep", "replicas=1,2"])
        .assert()
        .code(2)
        .stderr(contains("cannot be swept"));
}
