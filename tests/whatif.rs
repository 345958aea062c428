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

/// One ScaledObject for `upscale`, with `extra` lines under `spec` and `annotations` under its metadata.
fn upscale_object(annotations: &str, extra: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: upscale\n  annotations: {{{annotations}}}\nspec:\n  scaleTargetRef: {{name: upscale}}\n  maxReplicaCount: 4\n{extra}  triggers:\n    - type: gcp-pubsub\n      authenticationRef: {{name: keda-auth}}\n      metadata: {{subscriptionName: projects/p/subscriptions/imagen-upscale-sub, value: \"10\"}}\n"
    )
}

fn upscale_row(dir: &std::path::Path, name: &str, yaml: &str) -> serde_json::Value {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    let rows = rows(&["--setup", path.to_str().unwrap()]);
    rows.into_iter()
        .find(|r| r["pipeline"] == "upscale")
        .expect("an upscale row")
}

/// `idleReplicaCount: 0` with `minReplicaCount: 2`: KEDA holds the Deployment at 0 while idle and activates it to 2,
/// so it has a cold start per activation and costs between the min-0 and the min-2 setups. A file that also holds
/// the TriggerAuthentication (as KEDA's docs write it) is read, the other kinds skipped with a note.
#[test]
fn idle_zero_below_min_two_is_a_cold_start_per_activation_priced_between_min_zero_and_min_two() {
    let dir = tempfile::tempdir().unwrap();
    let auth = "---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: keda-auth}\nspec:\n  podIdentity: {provider: gcp}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n";
    let min0 = upscale_row(
        dir.path(),
        "min0",
        &upscale_object("", "  minReplicaCount: 0\n"),
    );
    let min2 = upscale_row(
        dir.path(),
        "min2",
        &upscale_object("", "  minReplicaCount: 2\n"),
    );
    let idle = upscale_row(
        dir.path(),
        "idle",
        &format!(
            "{}{auth}",
            upscale_object("", "  minReplicaCount: 2\n  idleReplicaCount: 0\n")
        ),
    );
    // Kept at 2, no message waits for a first replica (the burst's scale-up past 2 is another matter); at 0 while
    // idle, the activation is a cold start that messages wait for.
    assert!(min2["e2e_cold_p95_us"].is_null(), "{min2}");
    assert!(idle["e2e_cold_p95_us"].is_u64(), "{idle}");
    assert!(
        idle["cold_starts"].as_u64() > min2["cold_starts"].as_u64(),
        "{idle}\n{min2}"
    );
    let cost = |r: &serde_json::Value| r["cost_usd_per_month"].as_f64().unwrap();
    assert!(
        cost(&min0) <= cost(&idle) && cost(&idle) < cost(&min2),
        "min 0 ${}, idle 0 / min 2 ${}, min 2 ${}",
        cost(&min0),
        cost(&idle),
        cost(&min2)
    );
    let path = dir.path().join("idle.yaml");
    bin()
        .args(["whatif", "workloads/burst.toml", "--setup"])
        .arg(&path)
        .assert()
        .success()
        .stdout(contains("skipped: "))
        .stdout(contains(
            "TriggerAuthentication `keda-auth` (credentials do not change scaling)",
        ))
        .stdout(contains("Secret `creds`"));
}

/// Paused objects are held where KEDA holds them: at 0 every message of the pipeline is lost and no pod starts;
/// at 2 the two replicas serve it all with no cold start and no scaling.
#[test]
fn a_paused_scaled_object_is_held_at_its_paused_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let at0 = upscale_row(
        dir.path(),
        "p0",
        &upscale_object("autoscaling.keda.sh/paused-replicas: \"0\"", ""),
    );
    assert_eq!(at0["cold_starts"], 0, "{at0}");
    assert!(at0["e2e_p50_us"].is_null(), "nothing completes: {at0}");
    assert_eq!(at0["gpu_hours"], 0.0, "{at0}");
    let at2 = upscale_row(
        dir.path(),
        "p2",
        &upscale_object(
            "autoscaling.keda.sh/paused: \"true\"",
            "  minReplicaCount: 2\n",
        ),
    );
    assert_eq!(at2["cold_starts"], 0, "{at2}");
    assert!(at2["e2e_p50_us"].is_u64(), "{at2}");
    let unpaused = upscale_row(dir.path(), "u", &upscale_object("", ""));
    assert!(unpaused["cold_starts"].as_u64().unwrap() >= 1, "{unpaused}");
}

/// What the API server or KEDA would refuse is refused, with the file, the document and the fix; a ScaledJob is
/// refused with the reason.
#[test]
fn objects_kubernetes_or_keda_would_refuse_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (name, yaml, says) in [
        (
            "minmax",
            upscale_object("", "  minReplicaCount: 5\n"),
            "MinReplicaCount=5 must be less than MaxReplicaCount=4",
        ),
        (
            "idle",
            upscale_object("", "  minReplicaCount: 1\n  idleReplicaCount: 1\n"),
            "IdleReplicaCount=1 must be less than MinReplicaCount=1",
        ),
        (
            "type",
            upscale_object("", "  minReplicaCount: \"2\"\n"),
            "must be a whole number",
        ),
        (
            "paused",
            upscale_object("autoscaling.keda.sh/paused-replicas: \"two\"", ""),
            "not a replica count",
        ),
        (
            "unquoted",
            upscale_object("", "").replace("value: \"10\"", "value: 10"),
            "quote it",
        ),
        (
            "job",
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {name: upscale}\nspec: {}\n"
                .to_string(),
            "one Job per message",
        ),
    ] {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &yaml).unwrap();
        bin()
            .args(["whatif", "workloads/burst.toml", "--setup"])
            .arg(&path)
            .assert()
            .code(2)
            .stderr(contains(format!("{name}.yaml: document 1")))
            .stderr(contains(says))
            .stderr(contains("fix:"));
    }
}
