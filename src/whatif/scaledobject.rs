//! KEDA ScaledObject YAML (`keda.sh/v1alpha1`, the files a team applies with kubectl) → simulator overrides.
//!
//! Modelled: `minReplicaCount`, `maxReplicaCount`, `idleReplicaCount`, `pollingInterval`, `cooldownPeriod`, the
//! first trigger's target and activation values for `gcp-pubsub` (`value`, `activationValue`), `prometheus`
//! (`threshold`, `activationThreshold`) and `metrics-api` (`targetValue`, `activationTargetValue`), the trigger type
//! (which decides the metric lag), and the HPA's scale-down `stabilizationWindowSeconds`. Fields that only name
//! things (subscription, query, server, credentials) have no effect on scaling and are accepted. Every other field
//! is reported as not modelled, never silently ignored.

use crate::analysis::identity::Identity;
use crate::cluster::import::trigger_subscription;
use crate::event::PipelineNames;
use crate::workload::Override;
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

const IDENTITY: [&str; 5] = [
    "apiVersion",
    "kind",
    "metadata.",
    "spec.scaleTargetRef.",
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
        if v.get("kind").and_then(|k| k.as_str()) != Some("ScaledObject") {
            let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("(none)");
            return Err(invalid(
                format!("kind is `{kind}`, not `ScaledObject`"),
                "give only KEDA ScaledObjects (keda.sh/v1alpha1)",
            ));
        }
        let spec = v
            .get("spec")
            .ok_or_else(|| invalid("no `spec`".into(), "a ScaledObject needs a spec"))?;
        let target = spec
            .pointer("/scaleTargetRef/name")
            .and_then(|x| x.as_str())
            .unwrap_or("");
        let own = v
            .pointer("/metadata/name")
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
        let int = |name: &str| spec.get(name).and_then(number);
        for (field, sim, is_secs) in [
            ("minReplicaCount", "min_replicas", false),
            ("maxReplicaCount", "max_replicas", false),
            ("idleReplicaCount", "idle_replicas", false),
            ("pollingInterval", "polling_interval", true),
            ("cooldownPeriod", "cooldown_period", true),
        ] {
            if let Some(x) = int(field) {
                if x < 0.0 || x.fract() != 0.0 {
                    return Err(invalid(
                        format!("`spec.{field}` is {x}; it must be a whole number of zero or more"),
                        "fix the value",
                    ));
                }
                let value = if is_secs {
                    format!("\"{}s\"", x as u64)
                } else {
                    format!("{}", x as u64)
                };
                out.overrides.push(over(key(sim), value));
                modelled.push(field);
            }
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
        let meta = |k: &str| t.pointer(&format!("/metadata/{k}")).and_then(number);
        if let Some(v) = meta(target_key) {
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
        // Everything else the document sets: accepted when it only names things, reported otherwise.
        let mut all = Vec::new();
        leaves(&v, String::new(), &mut all);
        for leaf in all {
            let trig_rel = leaf.strip_prefix("spec.triggers.0.");
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
                })
                || leaf.starts_with("spec.triggers.") && !leaf.starts_with("spec.triggers.0.");
            if !fine {
                out.not_modelled.push(format!("{p} doc {n}: {leaf}"));
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
        assert!(e("kind: Deployment\n").contains("not `ScaledObject`"));
        assert!(e("kind: ScaledObject\nspec:\n  scaleTargetRef: {name: nope}\n  triggers: [{type: gcp-pubsub}]\n").contains("matches no stream"));
        assert!(e("kind: ScaledObject\nspec:\n  scaleTargetRef: {name: comic}\n  triggers: [{type: kafka}]\n").contains("`kafka` is not modelled"));
        assert!(e("kind: [unclosed\n").contains("not valid YAML"));
    }
}
