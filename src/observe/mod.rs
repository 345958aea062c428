//! The outside world, as the run sees and drives it: `pubsub` (the official clients: connection, completion
//! tracker, backlog view, IAM preflight, the worker contract), `cluster` (the Kubernetes watchers and the import of
//! dumps and Cloud Logging exports), `emulator` (the built-in Pub/Sub), `worker` (the reference worker), `host`
//! (the machine the harness runs on: its CPU use).

pub mod cluster;
pub mod emulator;
pub mod host;
pub mod pubsub;
pub mod worker;
