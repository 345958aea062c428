//! KEDA ScaledObject YAML (`keda.sh/v1alpha1`, the files a team applies with kubectl) → simulator overrides.
//!
//! Modelled: `minReplicaCount`, `maxReplicaCount`, `idleReplicaCount`, `pollingInterval`, `cooldownPeriod`, the
//! first trigger's target and activation values for `gcp-pubsub` (`value`, `activationValue`), `prometheus`
//! (`threshold`, `activationThreshold`) and `metrics-api` (`targetValue`, `activationTargetValue`), the trigger type
//! (which decides the metric lag), and the HPA's scale-down `stabilizationWindowSeconds`. Fields that only name
//! things (subscription, query, server, credentials) have no effect on scaling and are accepted. Every other field
//! is reported as not modelled, never silently ignored.

use crate::analysis::identity::Identity;
use crate::event::PipelineNames;
use crate::observe::cluster::import::trigger_subscription;
use crate::plan::workload::Override;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {error}")]
    ReadFailed { path: String, error: std::io::Error },
    #[error("{path}: document {doc}: not valid YAML: {message}")]
    BadYaml {
        path: String,
        doc: usize,
        message: String,
    },
    #[error("{path}: document {doc}: {message}\n    fix: {fix}")]
    Invalid {
        path: String,
        doc: usize,
        message: String,
        fix: String,
    },
}

/// What one file becomes: overrides for the workload, and what it held that the simulator does not model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub overrides: Vec<Override>,
    /// `path.in.document: why` for each field not modelled.
    pub not_modelled: Vec<String>,
    /// `path doc N: Kind `name` (why)` for each document of another kind, skipped.
    pub skipped: Vec<String>,
    /// Pipelines the file configures.
    pub pipelines: Vec<String>,
}

fn over(key: String, value: String) -> Override {
    let text = format!("{key}={value}");
    Override {
        path: key.split('.').map(String::from).collect(),
        value,
        text,
    }
}

fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Every leaf of a document as a dotted path (`spec.triggers.0.metadata.value`).
fn leaves(v: &serde_json::Value, prefix: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                leaves(
                    x,
                    if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    },
                    out,
                );
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, format!("{prefix}.{i}"), out);
            }
        }
        _ => out.push(prefix),
    }
}

const IDENTITY: [&str; 6] = [
    "apiVersion",
    "kind",
    "metadata.",
    "spec.scaleTargetRef.",
    "spec.advanced.horizontalPodAutoscalerConfig.name",
    "status.",
];
const TRIGGER_IDENTITY: [&str; 13] = [
    "type",
    "name",
    "authenticationRef.",
    "metadata.subscriptionName",
    "metadata.subscriptionNameFromEnv",
    "metadata.credentialsFromEnv",
    "metadata.credentialsFromEnvFile",
    "metadata.serverAddress",
    "metadata.query",
    "metadata.url",
    "metadata.valueLocation",
    "metadata.format",
    "metadata.namespace",
];

/// Why a ScaledObject field is not modelled, for the report (the same reasons as `docs/simulator.md`'s table).
fn why_not_modelled(leaf: &str) -> &'static str {
    const WHY: [(&str, &str); 16] = [
        (
            "spec.fallback.",
            "fallback replaces a metric that cannot be read; the simulated metric always can",
        ),
        (
            "spec.initialCooldownPeriod",
            "the objects exist before the run starts, so their initial cooldown has passed",
        ),
        (
            "spec.advanced.restoreToOriginalReplicaCount",
            "applies when the ScaledObject is deleted",
        ),
        (
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies",
            "HPA scale-down policies are not modelled; only the stabilisation window is",
        ),
        (
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.selectPolicy",
            "HPA scale-down policies are not modelled; only the stabilisation window is",
        ),
        (
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.",
            "the HPA's scale-up behaviour is its default (no stabilisation, doubling)",
        ),
        (
            "spec.advanced.scalingModifiers.",
            "a formula over several triggers; only the first trigger is modelled",
        ),
        (
            "spec.triggers.0.metadata.aggregation",
            "Cloud Monitoring's aggregation is not modelled: the metric is the backlog, sampled with its delay",
        ),
        (
            "spec.triggers.0.metadata.timeHorizon",
            "Cloud Monitoring's aggregation is not modelled: the metric is the backlog, sampled with its delay",
        ),
        (
            "spec.triggers.0.metadata.valueIfNull",
            "the simulated metric is never null",
        ),
        (
            "spec.triggers.0.metadata.topicName",
            "the simulated backlog is the subscription's; a topic metric is not modelled",
        ),
        (
            "spec.triggers.0.metricType",
            "only AverageValue (the default: the target is per replica) is modelled",
        ),
        (
            "spec.triggers.0.useCachedMetrics",
            "the scaler's cache changes how often the metric source is asked, not the value",
        ),
        (
            "metadata.annotations.autoscaling.keda.sh/",
            "a KEDA annotation other than paused and paused-replicas",
        ),
        ("status.", "status is the cluster's, not configuration"),
        (
            "spec.triggers.0.metadata.",
            "a trigger setting the simulator does not use",
        ),
    ];
    WHY.iter()
        .find(|(prefix, _)| leaf.starts_with(prefix))
        .map_or("not modelled", |(_, why)| why)
}

/// Parses a file of one or more ScaledObjects (YAML documents separated by `---`). Each is matched to a stream
/// by the rule the analysis uses ([`crate::analysis::identity`]): the subscription its trigger reads, then its
/// `scaleTargetRef` (a Deployment the workload names, or one named like the stream).
pub fn load(path: &Path, streams: &[PipelineNames]) -> Result<Parsed, Error> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| Error::ReadFailed {
        path: p.clone(),
        error,
    })?;
    parse(&p, &text, streams)
}

pub fn parse(p: &str, text: &str, streams: &[PipelineNames]) -> Result<Parsed, Error> {
    let mut identity = Identity::new(streams);
    let names: Vec<&str> = streams.iter().map(|s| s.stream.as_str()).collect();
    let mut out = Parsed::default();
    let mut sources = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let n = i + 1;
        let v = serde_json::Value::deserialize(doc).map_err(|e| Error::BadYaml {
            path: p.into(),
            doc: n,
            message: e.to_string(),
        })?;
        if v.is_null() {
            continue; // an empty document (a trailing `---`)
        }
        let invalid = |message: String, fix: &str| Error::Invalid {
            path: p.into(),
            doc: n,
            message,
            fix: fix.into(),
        };
        let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("(none)");
        let own = v
            .pointer("/metadata/name")
            .and_then(|x| x.as_str())
            .unwrap_or("");
        // A file is read as `kubectl apply` reads it: every ScaledObject is taken, other kinds are skipped with a
        // note each, and a ScaledJob (a Job per message, not a Deployment scaled 0 → N) is refused.
        if kind == "ScaledJob" {
            return Err(invalid(
                format!(
                    "ScaledJob `{own}`: a ScaledJob runs one Job per message, which is not modelled"
                ),
                "give the ScaledObject of a Deployment; the simulator models workers that stay up and take many jobs",
            ));
        }
        if kind != "ScaledObject" {
            let why = match kind {
                "TriggerAuthentication" | "ClusterTriggerAuthentication" | "Secret" => {
                    "credentials do not change scaling"
                }
                "Deployment" => "the simulator's worker model stands for it",
                _ => "not a KEDA ScaledObject",
            };
            out.skipped
                .push(format!("{p} doc {n}: {kind} `{own}` ({why})"));
            continue;
        }
        let spec = v
            .get("spec")
            .ok_or_else(|| invalid("no `spec`".into(), "a ScaledObject needs a spec"))?;
        let target = spec
            .pointer("/scaleTargetRef/name")
            .and_then(|x| x.as_str())
            .unwrap_or("");
        let subscription = trigger_subscription(&v);
        let stream = identity
            .learn(own, target, subscription.as_deref())
            .map(|i| identity.stream_name(i).to_string())
            .ok_or_else(|| {
                invalid(
                    format!(
                        "{} scales `{target}`{}, which matches no stream",
                        if own.is_empty() {
                            "a ScaledObject with no name".to_string()
                        } else {
                            format!("ScaledObject `{own}`")
                        },
                        subscription
                            .as_deref()
                            .map(|s| format!(" on subscription `{s}`"))
                            .unwrap_or_default()
                    ),
                    &format!(
                        "point its trigger at a stream's subscription, or name the Deployment in the workload (`[[stream]] deployment = \"{target}\"`); the streams are {}",
                        names.join(", ")
                    ),
                )
            })?;
        let key = |k: &str| format!("sim.pipeline.{stream}.keda.{k}");
        let mut modelled: Vec<&str> = Vec::new();
        // The API server's types: these fields are int32, so `"2"` or `2.5` is refused before KEDA sees it.
        let int = |name: &str| -> Result<Option<u64>, Error> {
            match spec.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(x) => x.as_u64().filter(|&x| x <= i32::MAX as u64).map(Some).ok_or_else(|| {
                    invalid(
                        format!("`spec.{name}` is {x}; the API server refuses it: it must be a whole number of zero or more (int32)"),
                        &format!("write it unquoted, e.g. `{name}: 2`"),
                    )
                }),
            }
        };
        // An absent field is KEDA's default (its ScaledObject spec), not the workload's: the file is priced as
        // KEDA would run it.
        let mut counts = std::collections::HashMap::new();
        for (field, sim, is_secs, default) in [
            ("minReplicaCount", "min_replicas", false, Some(0)),
            ("maxReplicaCount", "max_replicas", false, Some(100)),
            ("idleReplicaCount", "idle_replicas", false, None),
            ("pollingInterval", "polling_interval", true, Some(30)),
            ("cooldownPeriod", "cooldown_period", true, Some(300)),
        ] {
            if let Some(x) = int(field)?.or(default) {
                counts.insert(field, x);
                let value = if is_secs {
                    format!("\"{x}s\"")
                } else {
                    format!("{x}")
                };
                out.overrides.push(over(key(sim), value));
                modelled.push(field);
            }
        }
        // KEDA's own bounds check (`checkReplicaCountBoundsAreValid`), with its defaults (min 0, max 100).
        let min = counts.get("minReplicaCount").copied().unwrap_or(0);
        let max = counts.get("maxReplicaCount").copied().unwrap_or(100);
        if min > max {
            return Err(invalid(
                format!(
                    "spec.minReplicaCount: MinReplicaCount={min} must be less than MaxReplicaCount={max} (KEDA refuses the object)"
                ),
                "raise maxReplicaCount or lower minReplicaCount",
            ));
        }
        let idle = counts.get("idleReplicaCount").copied();
        if let Some(idle) = idle
            && (idle >= min || idle != 0)
        {
            return Err(invalid(
                format!(
                    "spec.idleReplicaCount: IdleReplicaCount={idle} must be less than MinReplicaCount={min}, and KEDA supports only 0"
                ),
                "set `idleReplicaCount: 0` with `minReplicaCount` of 1 or more, or remove idleReplicaCount",
            ));
        }
        // Paused: KEDA holds the target at `paused-replicas`, or (`paused: "true"`) at the replicas it has,
        // which for a quiet pipeline is its idle count, else its minimum. `paused-replicas` is read first.
        let annotation = |a: &str| {
            v.pointer("/metadata/annotations")
                .and_then(|m| m.get(a))
                .and_then(|x| x.as_str())
        };
        let paused = match (
            annotation("autoscaling.keda.sh/paused-replicas"),
            annotation("autoscaling.keda.sh/paused"),
        ) {
            (Some(r), _) => Some(r.trim().parse::<u32>().map_err(|_| {
                invalid(
                    format!("metadata.annotations.autoscaling.keda.sh/paused-replicas: `{r}` is not a replica count"),
                    "write a whole number as a string, e.g. `autoscaling.keda.sh/paused-replicas: \"0\"`",
                )
            })?),
            (None, Some(t)) if matches!(t.trim(), "true" | "True" | "TRUE" | "1" | "t" | "T") => {
                Some(idle.unwrap_or(min) as u32)
            }
            _ => None,
        };
        if let Some(r) = paused {
            out.overrides
                .push(over(key("paused_replicas"), r.to_string()));
        }
        let triggers = spec
            .get("triggers")
            .and_then(|t| t.as_array())
            .cloned()
            .unwrap_or_default();
        if triggers.is_empty() {
            return Err(invalid(
                "no triggers".into(),
                "a ScaledObject needs a trigger (gcp-pubsub, prometheus or metrics-api)",
            ));
        }
        if triggers.len() > 1 {
            out.not_modelled.push(format!(
                "{p} doc {n}: spec.triggers.1..: only the first trigger is modelled"
            ));
        }
        let t = &triggers[0];
        let kind = t.get("type").and_then(|x| x.as_str()).unwrap_or("");
        let (target_key, activation_key, source) = match kind {
            "gcp-pubsub" => ("value", "activationValue", "gcp-monitoring"),
            "prometheus" => ("threshold", "activationThreshold", "gcp-monitoring"),
            "metrics-api" => ("targetValue", "activationTargetValue", "metrics-api"),
            other => {
                return Err(invalid(
                    format!("trigger type `{other}` is not modelled"),
                    "the simulator models gcp-pubsub, prometheus (on the backlog) and metrics-api triggers",
                ));
            }
        };
        sources.push(source);
        // A trigger's metadata is a map of strings in KEDA's API (`map[string]string`): an unquoted number is
        // refused by the API server.
        if let Some(m) = t.get("metadata").and_then(|m| m.as_object()) {
            for (k, x) in m {
                if !x.is_string() {
                    return Err(invalid(
                        format!(
                            "`spec.triggers.0.metadata.{k}` is {x}; trigger metadata values are strings, and the API server refuses anything else"
                        ),
                        &format!("quote it: `{k}: \"{}\"`", x.to_string().trim_matches('"')),
                    ));
                }
            }
        }
        let meta = |k: &str| t.pointer(&format!("/metadata/{k}")).and_then(number);
        // `subscriptionSize` is the deprecated name of a gcp-pubsub trigger's `value`.
        let target = meta(target_key).or_else(|| {
            (kind == "gcp-pubsub")
                .then(|| meta("subscriptionSize"))
                .flatten()
        });
        if let Some(v) = target {
            out.overrides
                .push(over(key("target_value"), format!("{v}")));
        }
        if let Some(v) = meta(activation_key) {
            out.overrides
                .push(over(key("activation_value"), format!("{v}")));
        }
        if kind == "gcp-pubsub"
            && let Some(mode) = t.pointer("/metadata/mode").and_then(|x| x.as_str())
            && mode != "SubscriptionSize"
        {
            out.not_modelled.push(format!("{p} doc {n}: spec.triggers.0.metadata.mode: `{mode}` (only SubscriptionSize, the backlog, is modelled)"));
        }
        let stab =
            "/advanced/horizontalPodAutoscalerConfig/behavior/scaleDown/stabilizationWindowSeconds";
        if let Some(s) = spec.pointer(stab).and_then(number) {
            out.overrides.push(over(
                "sim.hpa.scale_down_stabilization".into(),
                format!("\"{}s\"", s as u64),
            ));
        }
        if let Some(k) = spec
            .pointer("/scaleTargetRef/kind")
            .and_then(|x| x.as_str())
            && k != "Deployment"
        {
            out.not_modelled.push(format!(
                "{p} doc {n}: spec.scaleTargetRef.kind: `{k}` is simulated as a Deployment (same scaling, pods started the same way)"
            ));
        }
        // Everything else the document sets: accepted when it only names things, reported otherwise.
        let mut all = Vec::new();
        leaves(&v, String::new(), &mut all);
        for leaf in all {
            let trig_rel = leaf.strip_prefix("spec.triggers.0.");
            let keda_annotation = leaf
                .strip_prefix("metadata.annotations.")
                .filter(|a| a.starts_with("autoscaling.keda.sh/"));
            if keda_annotation.is_some_and(|a| {
                !matches!(
                    a,
                    "autoscaling.keda.sh/paused-replicas" | "autoscaling.keda.sh/paused"
                )
            }) {
                out.not_modelled
                    .push(format!("{p} doc {n}: {leaf} ({})", why_not_modelled(&leaf)));
                continue;
            }
            let fine = IDENTITY.iter().any(|i| leaf == *i || leaf.starts_with(i))
                || modelled.iter().any(|m| leaf == format!("spec.{m}"))
                || leaf == format!("spec{}", stab.replace('/', "."))
                || trig_rel.is_some_and(|r| {
                    TRIGGER_IDENTITY
                        .iter()
                        .any(|i| r == *i || (i.ends_with('.') && r.starts_with(i)))
                        || r == format!("metadata.{target_key}")
                        || r == format!("metadata.{activation_key}")
                        || (kind == "gcp-pubsub" && r == "metadata.mode")
                        || (kind == "gcp-pubsub" && r == "metadata.subscriptionSize")
                        || (r == "metricType" && t["metricType"] == "AverageValue")
                })
                || leaf.starts_with("spec.triggers.") && !leaf.starts_with("spec.triggers.0.");
            if !fine {
                out.not_modelled
                    .push(format!("{p} doc {n}: {leaf} ({})", why_not_modelled(&leaf)));
            }
        }
        if !out.pipelines.contains(&stream) {
            out.pipelines.push(stream.clone());
        }
    }
    if out.pipelines.is_empty() {
        return Err(Error::Invalid {
            path: p.into(),
            doc: 0,
            message: "no ScaledObject in the file".into(),
            fix: "give a file of KEDA ScaledObjects".into(),
        });
    }
    sources.dedup();
    match sources.as_slice() {
        [one] => out
            .overrides
            .push(over("sim.metrics.source".into(), format!("\"{one}\""))),
        _ => out.not_modelled.push(format!(
            "{p}: triggers mix metric sources ({}); the workload's `[sim.metrics]` is kept",
            sources.join(", ")
        )),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> Vec<PipelineNames> {
        ["upscale", "enhance", "comic"]
            .iter()
            .map(|s| PipelineNames {
                stream: s.to_string(),
                topic: format!("imagen-{s}"),
                subscription: format!("imagen-{s}-sub"),
                ..PipelineNames::default()
            })
            .collect()
    }

    /// A team's ScaledObject for Deployment `python-worker`, reading a full subscription path: matched by the
    /// subscription, whatever the names.
    #[test]
    fn a_trigger_subscription_matches_its_stream_whatever_the_names() {
        let yaml = "kind: ScaledObject\nmetadata: {name: ocr}\nspec:\n  scaleTargetRef: {name: python-worker}\n  triggers:\n    - type: gcp-pubsub\n      metadata: {subscriptionName: projects/p/subscriptions/imagen-comic-sub, value: '3'}\n";
        let p = parse("team.yaml", yaml, &streams()).unwrap();
        assert_eq!(p.pipelines, vec!["comic".to_string()]);
        assert!(
            p.overrides
                .iter()
                .any(|o| o.text == "sim.pipeline.comic.keda.target_value=3")
        );
    }

    #[test]
    fn every_supported_field_becomes_an_override_and_the_rest_is_reported() {
        let yaml = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: upscale-scaler
  namespace: imagen
spec:
  scaleTargetRef:
    name: upscale-worker
  minReplicaCount: 1
  maxReplicaCount: 3
  idleReplicaCount: 0
  pollingInterval: 15
  cooldownPeriod: 600
  fallback:
    failureThreshold: 3
    replicas: 2
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 120
          policies:
            - type: Percent
              value: 50
              periodSeconds: 60
  triggers:
    - type: gcp-pubsub
      authenticationRef:
        name: keda-auth
      metadata:
        subscriptionName: imagen-upscale-sub
        mode: SubscriptionSize
        value: "5"
        activationValue: "2"
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: comic
spec:
  scaleTargetRef:
    name: comic
  triggers:
    - type: gcp-pubsub
      metadata:
        subscriptionName: imagen-comic-sub
        value: "10"
"#;
        let p = parse("so.yaml", yaml, &streams()).unwrap();
        let texts: Vec<&str> = p.overrides.iter().map(|o| o.text.as_str()).collect();
        for want in [
            "sim.pipeline.upscale.keda.min_replicas=1",
            "sim.pipeline.upscale.keda.max_replicas=3",
            "sim.pipeline.upscale.keda.idle_replicas=0",
            "sim.pipeline.upscale.keda.polling_interval=\"15s\"",
            "sim.pipeline.upscale.keda.cooldown_period=\"600s\"",
            "sim.pipeline.upscale.keda.target_value=5",
            "sim.pipeline.upscale.keda.activation_value=2",
            "sim.hpa.scale_down_stabilization=\"120s\"",
            "sim.pipeline.comic.keda.target_value=10",
            "sim.metrics.source=\"gcp-monitoring\"",
        ] {
            assert!(texts.contains(&want), "missing {want} in {texts:#?}");
        }
        assert_eq!(
            p.pipelines,
            vec!["upscale".to_string(), "comic".to_string()]
        );
        let reported = p.not_modelled.join("\n");
        assert!(
            reported.contains("spec.fallback.failureThreshold"),
            "{reported}"
        );
        assert!(reported.contains("spec.fallback.replicas"), "{reported}");
        assert!(
            reported.contains("behavior.scaleDown.policies.0.type"),
            "{reported}"
        );
        assert!(
            !reported.contains("subscriptionName") && !reported.contains("metadata.namespace"),
            "{reported}"
        );
        assert!(
            !reported.contains("minReplicaCount") && !reported.contains("activationValue"),
            "{reported}"
        );
    }

    #[test]
    fn prometheus_and_metrics_api_map_their_own_keys() {
        let yaml = "kind: ScaledObject\nspec:\n  scaleTargetRef: {name: enhance}\n  triggers:\n    - type: metrics-api\n      metadata: {url: 'http://emulator/backlog', valueLocation: backlog, targetValue: '4', activationTargetValue: '1'}\n";
        let p = parse("m.yaml", yaml, &streams()).unwrap();
        let texts: Vec<&str> = p.overrides.iter().map(|o| o.text.as_str()).collect();
        assert!(texts.contains(&"sim.pipeline.enhance.keda.target_value=4"));
        assert!(texts.contains(&"sim.metrics.source=\"metrics-api\""));
        assert!(p.not_modelled.is_empty(), "{:?}", p.not_modelled);
        let prom = "kind: ScaledObject\nspec:\n  scaleTargetRef: {name: comic}\n  triggers:\n    - type: prometheus\n      metadata: {serverAddress: 'http://gmp', query: 'sum(x)', threshold: '8', activationThreshold: '0'}\n";
        let p = parse("p.yaml", prom, &streams()).unwrap();
        assert!(
            p.overrides
                .iter()
                .any(|o| o.text == "sim.pipeline.comic.keda.target_value=8")
        );
    }

    #[test]
    fn bad_files_say_what_and_how() {
        let e = |y: &str| parse("x.yaml", y, &streams()).unwrap_err().to_string();
        assert!(e("kind: Deployment\n").contains("no ScaledObject in the file"));
        assert!(e("kind: ScaledObject\nspec:\n  scaleTargetRef: {name: nope}\n  triggers: [{type: gcp-pubsub}]\n").contains("matches no stream"));
        assert!(e("kind: ScaledObject\nspec:\n  scaleTargetRef: {name: comic}\n  triggers: [{type: kafka}]\n").contains("`kafka` is not modelled"));
        assert!(e("kind: [unclosed\n").contains("not valid YAML"));
    }

    /// Every field of KEDA's ScaledObject spec (keda.sh/docs/2.x/reference/scaledobject-spec, and the gcp-pubsub
    /// scaler's metadata): each is either modelled (an override, checked here by hand), a name that does not change
    /// scaling, or listed as not modelled with a reason. Nothing is dropped in silence.
    #[test]
    fn a_manifest_that_uses_every_field_drops_nothing_in_silence() {
        let yaml = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: upscale
  namespace: imagen
  annotations:
    scaledobject.keda.sh/transfer-hpa-ownership: "true"
    validations.keda.sh/hpa-ownership: "true"
    autoscaling.keda.sh/paused-scale-in: "true"
    kubectl.kubernetes.io/last-applied-configuration: "{}"
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: StatefulSet
    name: upscale
    envSourceContainerName: worker
  pollingInterval: 15
  cooldownPeriod: 120
  initialCooldownPeriod: 60
  idleReplicaCount: 0
  minReplicaCount: 1
  maxReplicaCount: 6
  fallback:
    failureThreshold: 3
    replicas: 2
    behavior: currentReplicasIfHigher
  advanced:
    restoreToOriginalReplicaCount: true
    horizontalPodAutoscalerConfig:
      name: keda-hpa-upscale
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 60
          selectPolicy: Min
          policies:
            - {type: Pods, value: 1, periodSeconds: 60}
        scaleUp:
          stabilizationWindowSeconds: 0
    scalingModifiers:
      formula: "a + b"
      target: "5"
      activationTarget: "1"
      metricType: AverageValue
  triggers:
    - type: gcp-pubsub
      name: a
      metricType: Value
      useCachedMetrics: true
      authenticationRef: {name: keda-auth, kind: TriggerAuthentication}
      metadata:
        subscriptionName: imagen-upscale-sub
        subscriptionNameFromEnv: SUB
        topicName: imagen-upscale
        mode: OldestUnackedMessageAge
        value: "5"
        activationValue: "1"
        aggregation: sum
        timeHorizon: 2m
        valueIfNull: "0"
        credentialsFromEnv: GOOGLE_APPLICATION_CREDENTIALS_JSON
    - type: gcp-pubsub
      name: b
      metadata: {subscriptionName: imagen-upscale-sub, value: "7"}
"#;
        let p = parse("every.yaml", yaml, &streams()).unwrap();
        let texts: Vec<&str> = p.overrides.iter().map(|o| o.text.as_str()).collect();
        for want in [
            "sim.pipeline.upscale.keda.polling_interval=\"15s\"",
            "sim.pipeline.upscale.keda.cooldown_period=\"120s\"",
            "sim.pipeline.upscale.keda.idle_replicas=0",
            "sim.pipeline.upscale.keda.min_replicas=1",
            "sim.pipeline.upscale.keda.max_replicas=6",
            "sim.pipeline.upscale.keda.target_value=5",
            "sim.pipeline.upscale.keda.activation_value=1",
            "sim.hpa.scale_down_stabilization=\"60s\"",
        ] {
            assert!(texts.contains(&want), "missing {want} in {texts:#?}");
        }
        // Names and identities (metadata, scaleTargetRef.name, authenticationRef, subscription, credentials,
        // the HPA's name) change nothing; everything else is reported with its path and a reason.
        let reported = p.not_modelled.join("\n");
        for path in [
            "metadata.annotations.autoscaling.keda.sh/paused-scale-in",
            "spec.scaleTargetRef.kind: `StatefulSet`",
            "spec.initialCooldownPeriod (the objects exist before the run",
            "spec.fallback.failureThreshold (fallback",
            "spec.fallback.replicas",
            "spec.fallback.behavior",
            "spec.advanced.restoreToOriginalReplicaCount (applies when",
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.selectPolicy",
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies.0.type",
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.stabilizationWindowSeconds",
            "spec.advanced.scalingModifiers.formula",
            "spec.advanced.scalingModifiers.target",
            "spec.advanced.scalingModifiers.activationTarget",
            "spec.advanced.scalingModifiers.metricType",
            "spec.triggers.0.metricType (only AverageValue",
            "spec.triggers.0.useCachedMetrics",
            "spec.triggers.0.metadata.topicName",
            "spec.triggers.0.metadata.mode: `OldestUnackedMessageAge`",
            "spec.triggers.0.metadata.aggregation",
            "spec.triggers.0.metadata.timeHorizon",
            "spec.triggers.0.metadata.valueIfNull",
            "spec.triggers.1..: only the first trigger is modelled",
        ] {
            assert!(
                reported.contains(path),
                "{path} is not reported:\n{reported}"
            );
        }
        for quiet in [
            "subscriptionName",
            "credentialsFromEnv",
            "authenticationRef",
            "envSourceContainerName",
            "horizontalPodAutoscalerConfig.name",
            "last-applied-configuration",
            "minReplicaCount",
            "idleReplicaCount",
        ] {
            assert!(
                !reported.contains(quiet),
                "{quiet} is reported:\n{reported}"
            );
        }
    }
}
