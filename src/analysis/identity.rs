//! One identity per pipeline: which stream a Deployment, a ScaledObject, a pod's owner or a worker's
//! `--pipeline` belongs to. Real clusters rarely name their objects like the streams (`upscale-worker` and
//! `upscale-scaler` for stream `upscale`), and two producers may name one pipeline differently (the watchers by
//! the pod's owner Deployment, the reference worker by its `--pipeline`).
//!
//! The rule, in order:
//! 1. the names the workload gives (`[[stream]] deployment`, `scaled_object`), from the run header;
//! 2. what a watched cluster says: a ScaledObject's `scaleTargetRef` and its trigger's subscription
//!    ([`EventKind::ScaleTarget`](crate::event::EventKind::ScaleTarget)) tie a Deployment to the stream that
//!    feeds that subscription (short name, or `projects/P/subscriptions/S`); failing the subscription, a
//!    ScaledObject the workload names;
//! 3. a name equal to a stream's name (the simulator's default names, a worker's `--pipeline`).
//!
//! A name that matches no stream keeps its own name as its pipeline and is reported once, by name, with the fix.

use crate::event::PipelineNames;
use std::collections::{BTreeMap, HashMap};

/// What a name is the name of, for the report of names that matched no stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NameKind {
    Deployment,
    ScaledObject,
}

/// The names of every stream, and what was learned of the cluster's.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    streams: Vec<PipelineNames>,
    /// Deployment name → stream index: named by the workload, or learned from a ScaledObject.
    deployments: HashMap<String, u32>,
    /// ScaledObject name → stream index.
    scalers: HashMap<String, u32>,
    /// Subscription short name → stream index.
    subscriptions: HashMap<String, u32>,
    /// Names seen that matched no stream, with how often they were seen.
    unmatched: BTreeMap<(NameKind, String), u64>,
    /// ScaledObjects whose mapping contradicted the workload's names: (object, what it said, what was kept).
    conflicts: Vec<String>,
}

/// The last segment of `projects/P/subscriptions/S` (or `S` itself).
pub fn short_subscription(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

impl Identity {
    /// The streams' names as the run header gives them (stream order).
    pub fn new(pipelines: &[PipelineNames]) -> Self {
        let mut id = Identity::default();
        for p in pipelines {
            id.add_stream(p.clone());
        }
        id
    }

    /// The workers' subscription of a stream, when the run header named it.
    pub fn subscription_of(&self, stream: &str) -> Option<&str> {
        self.streams
            .iter()
            .find(|p| p.stream == stream)
            .map(|p| p.subscription.as_str())
            .filter(|s| !s.is_empty())
    }

    /// A stream the header did not describe (an older log): only its own name is known.
    pub fn add_stream(&mut self, p: PipelineNames) -> u32 {
        if let Some(i) = self.streams.iter().position(|s| s.stream == p.stream) {
            return i as u32;
        }
        let i = self.streams.len() as u32;
        if let Some(d) = &p.deployment {
            self.deployments.insert(d.clone(), i);
        }
        if let Some(o) = &p.scaled_object {
            self.scalers.insert(o.clone(), i);
        }
        if !p.subscription.is_empty() {
            self.subscriptions
                .insert(short_subscription(&p.subscription).to_string(), i);
        }
        self.streams.push(p);
        i
    }

    /// The stream whose workers read `subscription` (a full path or its last segment), if the header or a
    /// watched ScaledObject named it.
    pub fn subscription(&self, subscription: &str) -> Option<u32> {
        self.subscriptions
            .get(short_subscription(subscription))
            .copied()
    }

    fn by_stream_name(&self, name: &str) -> Option<u32> {
        self.streams
            .iter()
            .position(|s| s.stream == name)
            .map(|i| i as u32)
    }

    /// The stream a Deployment (or a worker's `--pipeline`) belongs to; `None` (and remembered, for the report)
    /// when it matches none.
    pub fn deployment(&mut self, name: &str) -> Option<u32> {
        let found = self
            .deployments
            .get(name)
            .copied()
            .or_else(|| self.by_stream_name(name));
        if found.is_none() {
            *self
                .unmatched
                .entry((NameKind::Deployment, name.to_string()))
                .or_default() += 1;
        }
        found
    }

    /// The stream a ScaledObject scales; `None` (remembered) when it matches none.
    pub fn scaled_object(&mut self, name: &str) -> Option<u32> {
        let found = self
            .scalers
            .get(name)
            .copied()
            .or_else(|| self.by_stream_name(name));
        if found.is_none() {
            *self
                .unmatched
                .entry((NameKind::ScaledObject, name.to_string()))
                .or_default() += 1;
        }
        found
    }

    /// A watched cluster's ScaledObject: it scales `deployment` on `subscription`. Returns the stream it ties
    /// them to, if any. The workload's own names win over what the cluster says; a contradiction is reported.
    pub fn learn(
        &mut self,
        scaled_object: &str,
        deployment: &str,
        subscription: Option<&str>,
    ) -> Option<u32> {
        let by_sub =
            subscription.and_then(|s| self.subscriptions.get(short_subscription(s)).copied());
        let stream = by_sub
            .or_else(|| self.scalers.get(scaled_object).copied())
            .or_else(|| self.deployments.get(deployment).copied())
            .or_else(|| self.by_stream_name(deployment))
            .or_else(|| self.by_stream_name(scaled_object))?;
        let (stream_name, own_d, own_o) = {
            let n = &self.streams[stream as usize];
            (
                n.stream.clone(),
                n.deployment.clone(),
                n.scaled_object.clone(),
            )
        };
        for (name, what, own) in [
            (deployment, NameKind::Deployment, own_d),
            (scaled_object, NameKind::ScaledObject, own_o),
        ] {
            let label = match what {
                NameKind::Deployment => "Deployment",
                NameKind::ScaledObject => "ScaledObject",
            };
            if let Some(own) = own.filter(|own| own != name) {
                self.conflicts.push(format!(
                    "ScaledObject {scaled_object} says stream {stream_name}'s {label} is `{name}`, but the workload names `{own}` (the workload's name is kept)"
                ));
                continue;
            }
            let map = match what {
                NameKind::Deployment => &mut self.deployments,
                NameKind::ScaledObject => &mut self.scalers,
            };
            match map.get(name).copied() {
                Some(other) if other != stream => {
                    let other = self.streams[other as usize].stream.clone();
                    self.conflicts.push(format!(
                        "the {label} `{name}` is claimed by streams {other} and {stream_name} (the first is kept)"
                    ));
                }
                _ => {
                    map.insert(name.to_string(), stream);
                    self.unmatched.remove(&(what, name.to_string()));
                }
            }
        }
        Some(stream)
    }

    /// Whether `name` is known to belong to a stream now (without remembering it as unmatched).
    pub fn knows_deployment(&self, name: &str) -> Option<u32> {
        self.deployments
            .get(name)
            .copied()
            .or_else(|| self.by_stream_name(name))
    }

    /// The stream's name.
    pub fn stream_name(&self, i: u32) -> &str {
        &self.streams[i as usize].stream
    }

    /// Warnings for the report: every name that matched no stream, once, with the fix; and contradictions.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.conflicts.clone();
        let streams: Vec<&str> = self.streams.iter().map(|s| s.stream.as_str()).collect();
        for kind in [NameKind::Deployment, NameKind::ScaledObject] {
            let names: Vec<&str> = self
                .unmatched
                .keys()
                .filter(|(k, _)| *k == kind)
                .map(|(_, n)| n.as_str())
                .collect();
            if names.is_empty() {
                continue;
            }
            let (what, key) = match kind {
                NameKind::Deployment => ("Deployments", "deployment"),
                NameKind::ScaledObject => ("ScaledObjects", "scaled_object"),
            };
            out.push(format!(
                "{} {what} matched no stream ({}): they are reported under their own names, apart from the streams' messages\n    fix: name each stream's {key} in the workload (`[[stream]] {key} = \"{}\"`), or watch the cluster so its ScaledObjects tie Deployments to subscriptions; the streams are {}",
                names.len(),
                names.join(", "),
                names[0],
                streams.join(", ")
            ));
        }
        out
    }

    /// The names that matched no stream, by kind (for `summary.json`).
    pub fn unmatched(&self) -> Vec<(NameKind, String)> {
        self.unmatched.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(stream: &str, deployment: Option<&str>) -> PipelineNames {
        PipelineNames {
            stream: stream.into(),
            topic: format!("imagen-{stream}"),
            subscription: format!("imagen-{stream}-sub"),
            deployment: deployment.map(Into::into),
            scaled_object: None,
        }
    }

    #[test]
    fn named_learned_and_default_names_resolve_in_that_order() {
        let mut id = Identity::new(&[names("upscale", Some("upscale-worker")), names("ocr", None)]);
        assert_eq!(id.deployment("upscale-worker"), Some(0));
        // A worker's --pipeline is the stream's name.
        assert_eq!(id.deployment("upscale"), Some(0));
        assert_eq!(id.deployment("python-worker"), None);
        // The team's ScaledObject for python-worker reads ocr's subscription, by its full path.
        assert_eq!(
            id.learn(
                "ocr-scaler",
                "python-worker",
                Some("projects/p/subscriptions/imagen-ocr-sub")
            ),
            Some(1)
        );
        assert_eq!(id.deployment("python-worker"), Some(1));
        assert_eq!(id.scaled_object("ocr-scaler"), Some(1));
        // Learned, so no longer unmatched.
        assert!(id.warnings().is_empty(), "{:?}", id.warnings());
        // The workload's name wins over a contradicting cluster.
        assert_eq!(
            id.learn("x", "other-worker", Some("imagen-upscale-sub")),
            Some(0)
        );
        assert_eq!(id.deployment("other-worker"), None);
        let w = id.warnings().join("\n");
        assert!(w.contains("the workload's name is kept"), "{w}");
        assert!(w.contains("other-worker") && w.contains("fix:"), "{w}");
    }
}
