//! Everything under kind-config/ and ci/ parses: Kubernetes objects into their k8s-openapi types (unknown fields
//! refused, so a typo fails here rather than in `kubectl apply`), ScaledObjects against the fields KEDA defines,
//! the kind cluster and the workflows as YAML with what the scripts rely on. The stack itself needs Docker and is
//! not run here (see docs/kind.md).

use crate::common::{path, root};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use predicates::prelude::*;
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;

/// The YAML documents of a file (empty documents skipped).
fn documents(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// A field-for-field check: deserialize strictly into `T` by serializing back and comparing, so a key `T` does
/// not know (a typo such as `containerport`) is caught even though k8s-openapi ignores unknown fields.
fn strict<T: serde::de::DeserializeOwned + serde::Serialize>(rel: &str, doc: &Value) -> T {
    let typed: T = serde_yaml_ng::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{rel}: not a valid {}: {e}", std::any::type_name::<T>()));
    let back = serde_json::to_value(&typed).unwrap();
    let original = serde_json::to_value(doc).unwrap();
    assert_subset(rel, &original, &back, "");
    typed
}

/// Every key of `original` is in `typed` (values compared leaf by leaf, numbers and strings loosely).
fn assert_subset(rel: &str, original: &serde_json::Value, typed: &serde_json::Value, at: &str) {
    use serde_json::Value as J;
    match (original, typed) {
        (J::Object(a), J::Object(b)) => {
            for (k, v) in a {
                let Some(w) = b.get(k) else {
                    panic!("{rel}: `{at}.{k}` is not a field of this kind (typo?)")
                };
                assert_subset(rel, v, w, &format!("{at}.{k}"));
            }
        }
        (J::Array(a), J::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{rel}: {at}");
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                assert_subset(rel, v, w, &format!("{at}[{i}]"));
            }
        }
        (a, b) => assert_eq!(
            a.to_string().trim_matches('"'),
            b.to_string().trim_matches('"'),
            "{rel}: {at}"
        ),
    }
}

fn kind_of(doc: &Value) -> String {
    doc["kind"].as_str().unwrap_or("?").to_string()
}

#[test]
fn every_kubernetes_object_parses_into_its_type() {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for rel in [
        "kind-config/namespace.yaml",
        "kind-config/emulator.yaml",
        "kind-config/workers.yaml",
        "kind-config/rbac.yaml",
        "kind-config/shard-job.yaml",
        "kind-config/gke-shard-job.yaml",
        "kind-config/gke-serviceaccount.yaml",
    ] {
        for doc in documents(rel) {
            let kind = kind_of(&doc);
            match kind.as_str() {
                "Namespace" => drop(strict::<Namespace>(rel, &doc)),
                "Service" => drop(strict::<Service>(rel, &doc)),
                "ServiceAccount" => drop(strict::<ServiceAccount>(rel, &doc)),
                "Role" => drop(strict::<Role>(rel, &doc)),
                "RoleBinding" => drop(strict::<RoleBinding>(rel, &doc)),
                "ClusterRole" => drop(strict::<ClusterRole>(rel, &doc)),
                "ClusterRoleBinding" => drop(strict::<ClusterRoleBinding>(rel, &doc)),
                "Deployment" => drop(strict::<Deployment>(rel, &doc)),
                "Job" => drop(strict::<Job>(rel, &doc)),
                other => panic!("{rel}: unexpected kind {other}"),
            }
            *seen.entry(kind).or_default() += 1;
        }
    }
    assert_eq!(seen["Deployment"], 5, "the emulator and four workers");
    assert_eq!(seen["Job"], 2, "the kind and the GKE shard Jobs");
}

/// Each shard Job's command, as its shell runs it in pod 0 and in pod 1 (the Job's env, its completion index, a
/// start instant), is a `run` that the command line accepts: the shard of its index, the start barrier, and
/// only shard 0 watching the cluster (the others `--no-cluster`), so `merge` has the cluster once.
#[test]
fn shard_jobs_run_one_shard_per_pod_and_only_shard_0_watches_the_cluster() {
    use clap::Parser as _;
    use imagen_load::commands::cli::{Cli, Command};
    for rel in [
        "kind-config/shard-job.yaml",
        "kind-config/gke-shard-job.yaml",
    ] {
        let job: Job = strict(rel, &documents(rel)[0]);
        let spec = job.spec.unwrap();
        let pod = spec.template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(
            c.command.as_deref(),
            Some(&["/bin/sh".to_string(), "-c".to_string()][..])
        );
        let script = &c.args.as_ref().unwrap()[0];
        // An `imagen-load` on the PATH that prints the arguments it was given, one per line.
        let bin = tempfile::tempdir().unwrap();
        let fake = bin.path().join("imagen-load");
        std::fs::write(&fake, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        for index in [0, 1] {
            let mut sh = std::process::Command::new("sh");
            sh.arg("-c")
                .arg(script)
                .env_clear()
                .env(
                    "PATH",
                    format!(
                        "{}:{}",
                        bin.path().display(),
                        std::env::var("PATH").unwrap()
                    ),
                )
                .env("JOB_COMPLETION_INDEX", index.to_string());
            for e in c.env.iter().flatten() {
                let v = match e.name.as_str() {
                    "START_AT" => "2026-12-01T02:00:00Z".to_string(),
                    _ => e.value.clone().unwrap_or_default(),
                };
                sh.env(&e.name, v);
            }
            let out = sh.output().unwrap();
            assert!(out.status.success(), "{rel}: {out:?}");
            let argv: Vec<String> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            let cli =
                Cli::try_parse_from(std::iter::once("imagen-load".to_string()).chain(argv.clone()))
                    .unwrap_or_else(|e| panic!("{rel}, pod {index}: {argv:?}: {e}"));
            let Command::Run(run) = cli.command else {
                panic!("{rel}: not a run: {argv:?}")
            };
            assert_eq!(
                run.shard.map(|s| (s.index, s.count)),
                Some((index, 4)),
                "{rel}"
            );
            assert!(run.start_at.is_some(), "{rel}: the start barrier");
            assert_eq!(
                run.cluster.no_cluster,
                index != 0,
                "{rel}, pod {index}: only shard 0 watches the cluster"
            );
        }
    }
    // On GKE the results outlive the node: a Cloud Storage bucket through the CSI driver, not a hostPath, and a
    // ServiceAccount that is a Google one through Workload Identity.
    let rel = "kind-config/gke-shard-job.yaml";
    let job: Job = strict(rel, &documents(rel)[0]);
    let template = job.spec.unwrap().template;
    let volumes = template.spec.unwrap().volumes.unwrap();
    let results = volumes.iter().find(|v| v.name == "results").unwrap();
    assert!(results.host_path.is_none());
    assert_eq!(
        results.csi.as_ref().unwrap().driver,
        "gcsfuse.csi.storage.gke.io"
    );
    assert_eq!(
        template.metadata.unwrap().annotations.unwrap()["gke-gcsfuse/volumes"],
        "true"
    );
    let rel = "kind-config/gke-serviceaccount.yaml";
    let sa: ServiceAccount = strict(rel, &documents(rel)[0]);
    assert!(
        sa.metadata.annotations.unwrap()["iam.gke.io/gcp-service-account"]
            .ends_with(".iam.gserviceaccount.com")
    );
}

#[test]
fn workers_wait_for_their_model_and_reach_the_emulator() {
    let rel = "kind-config/workers.yaml";
    let mut pipelines = Vec::new();
    for doc in documents(rel) {
        let d: Deployment = strict(rel, &doc);
        let name = d.metadata.name.clone().unwrap();
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(0), "{name}: KEDA scales it from zero");
        let pod = spec.template.spec.unwrap();
        let c = &pod.containers[0];
        let args = c.args.clone().unwrap();
        assert_eq!(args[0], "worker");
        let pipeline = name.strip_suffix("-worker").unwrap().to_string();
        assert!(args.contains(&format!("--subscription=imagen-{pipeline}-sub")));
        assert!(args.contains(&"--http-host=0.0.0.0".to_string()));
        let ready = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(
            ready.path.as_deref(),
            Some("/ready"),
            "readiness is the model load"
        );
        let env: BTreeMap<_, _> = c
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            env["PUBSUB_EMULATOR_HOST"],
            "pubsub-emulator.imagen.svc.cluster.local:8085"
        );
        assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
        pipelines.push(pipeline);
    }
    assert_eq!(
        pipelines,
        ["upscale", "enhance", "comic", "background-remove"]
    );
}

/// The fields of KEDA's ScaledObject (keda.sh/v1alpha1) that a file may use; anything else is a typo.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct ScaledObject {
    api_version: String,
    kind: String,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: ScaledObjectSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct ScaledObjectSpec {
    scale_target_ref: ScaleTargetRef,
    polling_interval: Option<u32>,
    cooldown_period: Option<u32>,
    initial_cooldown_period: Option<u32>,
    idle_replica_count: Option<u32>,
    min_replica_count: Option<u32>,
    max_replica_count: Option<u32>,
    fallback: Option<serde_yaml_ng::Value>,
    advanced: Option<serde_yaml_ng::Value>,
    triggers: Vec<Trigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct ScaleTargetRef {
    name: String,
    api_version: Option<String>,
    kind: Option<String>,
    env_source_container_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Trigger {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    metric_type: Option<String>,
    use_cached_metrics: Option<bool>,
    authentication_ref: Option<serde_yaml_ng::Value>,
    metadata: BTreeMap<String, String>,
}

/// The metadata keys KEDA's metrics-api scaler reads.
const METRICS_API_KEYS: &[&str] = &[
    "url",
    "valueLocation",
    "targetValue",
    "activationTargetValue",
    "format",
    "authMode",
    "method",
    "unsafeSsl",
];

#[test]
fn scaledobjects_use_only_kedas_fields_and_read_the_emulators_backlog() {
    for (rel, hot) in [
        ("kind-config/scaledobjects-all-cold.yaml", None),
        (
            "kind-config/scaledobjects-hybrid.yaml",
            Some("upscale-worker"),
        ),
    ] {
        let docs = documents(rel);
        assert_eq!(docs.len(), 4, "{rel}: one per pipeline");
        for doc in docs {
            let so: ScaledObject = serde_yaml_ng::from_value(doc)
                .unwrap_or_else(|e| panic!("{rel}: not a KEDA ScaledObject: {e}"));
            assert_eq!(so.api_version, "keda.sh/v1alpha1");
            assert_eq!(so.kind, "ScaledObject");
            let target = &so.spec.scale_target_ref.name;
            let min = so.spec.min_replica_count.unwrap_or(0);
            assert_eq!(
                min,
                u32::from(hot == Some(target.as_str())),
                "{rel}: {target}"
            );
            for t in &so.spec.triggers {
                assert_eq!(t.kind, "metrics-api", "{rel}");
                for k in t.metadata.keys() {
                    assert!(
                        METRICS_API_KEYS.contains(&k.as_str()),
                        "{rel}: metrics-api has no `{k}`"
                    );
                }
                let pipeline = target.strip_suffix("-worker").unwrap();
                assert_eq!(
                    t.metadata["url"],
                    format!(
                        "http://pubsub-emulator.imagen.svc.cluster.local:8085/backlog/imagen-{pipeline}-sub"
                    )
                );
                assert_eq!(
                    t.metadata["valueLocation"], "undelivered",
                    "a field the emulator returns"
                );
            }
        }
        // The simulator reads them too: the what-if of the setup that the cluster runs.
        crate::common::bin()
            .args(["whatif", "workloads/kind-burst.toml", "--setup", rel])
            .assert()
            .success()
            .stdout(predicates::str::contains("not modelled").not());
    }
}

/// The kind workload names each stream's Deployment and ScaledObject; those exist in kind-config/, each
/// ScaledObject scales its stream's Deployment, and its trigger reads its stream's subscription, as the analysis
/// reads a watched ScaledObject (`trigger_subscription`).
#[test]
fn the_kind_workload_and_manifests_agree_on_every_pipelines_names() {
    let plan = imagen_load::plan::workload::load(&path("workloads/kind-burst.toml"), &[]).unwrap();
    let deployments: Vec<String> = documents("kind-config/workers.yaml")
        .iter()
        .filter(|d| kind_of(d) == "Deployment")
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    for rel in [
        "kind-config/scaledobjects-all-cold.yaml",
        "kind-config/scaledobjects-hybrid.yaml",
    ] {
        let objects: Vec<serde_json::Value> = documents(rel)
            .iter()
            .map(|d| serde_json::to_value(d).unwrap())
            .collect();
        for s in &plan.streams {
            let (Some(dep), Some(so)) = (&s.deployment, &s.scaled_object) else {
                panic!("stream {} names no deployment or scaled_object", s.name)
            };
            assert!(deployments.contains(dep), "{}: no Deployment {dep}", s.name);
            let obj = objects
                .iter()
                .find(|o| o["metadata"]["name"] == so.as_str())
                .unwrap_or_else(|| panic!("{rel}: no ScaledObject {so}"));
            assert_eq!(
                obj["spec"]["scaleTargetRef"]["name"],
                dep.as_str(),
                "{rel}: {so}"
            );
            assert_eq!(
                imagen_load::observe::cluster::import::trigger_subscription(obj).as_deref(),
                Some(s.subscription.as_str()),
                "{rel}: {so} reads {}'s subscription",
                s.name
            );
        }
        assert_eq!(objects.len(), plan.streams.len(), "{rel}: one per stream");
    }
}

#[test]
fn the_kind_cluster_maps_the_emulator_and_mounts_results() {
    let docs = documents("kind-config/cluster.yaml");
    let c = &docs[0];
    assert_eq!(c["kind"].as_str(), Some("Cluster"));
    assert_eq!(c["apiVersion"].as_str(), Some("kind.x-k8s.io/v1alpha4"));
    let nodes = c["nodes"].as_sequence().unwrap();
    let port = &nodes[0]["extraPortMappings"][0];
    assert_eq!(
        port["containerPort"].as_u64(),
        Some(30085),
        "the emulator's NodePort"
    );
    assert_eq!(
        port["hostPort"].as_u64(),
        Some(8085),
        "workloads/kind-burst.toml's endpoint"
    );
    for n in nodes {
        assert_eq!(
            n["extraMounts"][0]["hostPath"].as_str(),
            Some("./results"),
            "up.sh rewrites this"
        );
    }
    let up = std::fs::read_to_string(path("kind-config/up.sh")).unwrap();
    assert!(up.contains("hostPath: ./results#hostPath: $PWD/results#"));
    let emulator: Vec<Service> = documents("kind-config/emulator.yaml")
        .iter()
        .filter(|d| kind_of(d) == "Service")
        .map(|d| strict("kind-config/emulator.yaml", d))
        .collect();
    let ports = emulator[0].spec.as_ref().unwrap().ports.clone().unwrap();
    assert_eq!(ports[0].node_port, Some(30085));
}

#[test]
fn workflows_have_their_jobs_and_pin_every_action() {
    let pr = &documents("ci/pr.yml")[0];
    let nightly = &documents("ci/nightly.yml")[0];
    let jobs = |w: &Value| -> Vec<String> {
        w["jobs"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(jobs(pr), ["checks", "kind-e2e"]);
    assert_eq!(jobs(nightly), ["staging"]);
    assert!(pr["on"]["pull_request"].is_null() || pr["on"].get("pull_request").is_some());
    assert!(nightly["on"]["schedule"][0]["cron"].is_string());
    for (name, w) in [("ci/pr.yml", pr), ("ci/nightly.yml", nightly)] {
        for (_, job) in w["jobs"].as_mapping().unwrap() {
            for step in job["steps"].as_sequence().unwrap() {
                if let Some(uses) = step["uses"].as_str() {
                    let (_, rev) = uses.split_once('@').unwrap();
                    assert!(
                        rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()),
                        "{name}: `{uses}` is not pinned to a commit"
                    );
                }
            }
        }
    }
    let pr_text = std::fs::read_to_string(root().join("ci/pr.yml")).unwrap();
    assert!(pr_text.contains("--gates ci/gates.toml"));
    assert!(pr_text.contains("junit.xml") && pr_text.contains("report.md"));
    // The nightly runs the GKE workload, gated.
    let night = std::fs::read_to_string(root().join("ci/nightly.yml")).unwrap();
    assert!(
        night.contains("workloads/gke-burst.toml") && night.contains("--gates ci/gke-gates.toml")
    );
}

/// The GKE nightly's workload measures everything: the cluster watched from zero back to zero, the backlog as
/// KEDA reads it at the metric's own granularity, each stream's cluster names; and its gates load against it.
#[test]
fn the_gke_workload_watches_the_cluster_and_its_gates_are_valid() {
    let plan = crate::common::plan_from(
        &std::fs::read_to_string(path("workloads/gke-burst.toml")).unwrap(),
    );
    assert_eq!(plan.target, imagen_load::plan::workload::TargetKind::Gcp);
    assert_eq!(
        plan.pubsub.backlog,
        Some(imagen_load::plan::workload::BacklogKind::CloudMonitoring)
    );
    assert_eq!(plan.pubsub.backlog_interval.0, 60_000_000);
    let c = plan.cluster.as_ref().expect("[cluster]");
    assert!(c.require_zero.is_some() && c.wait_for_zero.is_some());
    for s in &plan.streams {
        assert!(
            s.deployment.is_some() && s.scaled_object.is_some(),
            "{}",
            s.name
        );
    }
    let streams: Vec<String> = plan.streams.iter().map(|s| s.name.clone()).collect();
    let gates =
        imagen_load::plan::thresholds::load_file(&path("ci/gke-gates.toml"), &streams).unwrap();
    assert!(gates.len() >= 5);
}

#[test]
fn the_gates_file_and_the_kind_workload_are_valid() {
    crate::common::bin()
        .args(["validate", "workloads/kind-burst.toml"])
        .assert()
        .success();
    let streams: Vec<String> = ["upscale", "enhance", "comic", "background-remove"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let gates = imagen_load::plan::thresholds::load_file(&path("ci/gates.toml"), &streams).unwrap();
    assert!(gates.len() >= 4);
}
