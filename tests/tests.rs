//! The one integration-test binary. Each module covers one area; none needs Docker, a cluster or a cloud.

// The command line: help, exit codes, validate/plan/run/analyze end to end.
mod cli;
// Workload files: shipped ones validate, each broken fixture fails with its line, column and key.
mod workloads;
// The schedule: determinism and, by property tests, counts and instants that match the phase definitions.
mod schedule;
// The real-time pacer: open loop under a stalling target.
mod pacer;
// The simulator: hand-computed cases, determinism, the seed scenario's ordering.
mod sim;
// Thresholds: exit codes, junit.xml, report.md.
mod gates;
// Baseline comparison: noise-aware regression gate.
mod compare;
// The HTML pages: self-contained; report, nightly and what-if laid out in headless Chromium (a peer).
mod browser;
// What-if: setups, ScaledObject YAML, sweeps.
mod whatif;
// Calibration: measured phases → a profile → the same phases again.
mod calibrate;
// Seeing the cluster: a kubectl dump imported into the per-pod breakdown.
mod cluster;
// The floor plan: no module or file cycle, no library import of the command-line edge.
mod architecture;
// The one collector: the simulated and the live run's paths give one report of the same events.
mod collector;
// Analysis: hand-built event logs with hand-computed answers, ground truth, outputs and their formats.
mod analysis;
// Real Pub/Sub on loopback: the built-in emulator, reference workers and `run`, in real time, with faults.
mod pubsub;
// Prometheus metrics of a run and a worker, scraped by the real Prometheus server and checked by promtool.
mod metrics;
// Deployment files: kind-config/ manifests into their Kubernetes and KEDA types, the CI workflows and gates.
mod deploy;
// The Kubernetes watchers through the real kube client against a local fake API server (drop, 410, re-list).
mod watch;
// The simulator as the oracle: every shipped workload observed as each real producer would see it, analysed,
// and checked against the simulator's ground truth.
mod observe;
// Reliability: kill -9 and signals mid-run, clock skew, duplicates and strangers, hostile input, secrets.
mod reliability;
// Real peers as referees: Java's HdrHistogram, Chromium, Google's Pub/Sub emulator and Python client.
mod peers;
// The README and docs: every command they show parses, names real files, and runs offline as written.
mod docs;
// A fake Kubernetes API server (list, watch, drops, 410) for the watch tests and benches/watch.rs.
mod fakekube;

mod common;
