//! Seeing the cluster: parsers for the messages of kubelet, cluster-autoscaler and KEDA events (pure functions,
//! tested on the wordings real clusters emit); `import`, which turns a saved `kubectl get -o json` dump into the
//! event vocabulary; and `watch`, the kube-runtime watchers that do the same live, through the same translation.

pub mod import;
pub mod parse;
pub mod watch;
