//! Seeing the cluster. For now: parsers for the event messages the Kubernetes watchers (still to come) will turn
//! into the event vocabulary. They are pure functions, tested on the wordings real clusters emit.

pub mod parse;
