//! Seeing the cluster. For now: parsers for the event messages the Kubernetes watchers (still to come) will turn
//! into the event vocabulary (pure functions, tested on the wordings real clusters emit), and `import`, which does
//! the same from a saved `kubectl get -o json` dump.

pub mod import;
pub mod parse;
