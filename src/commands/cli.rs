//! Command-line types (clap derive), in one place. They are resolved once into validated plans by `commands`;
//! nothing else reads them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "imagen-load",
    version,
    about = "Load generator and end-to-end test harness for scale-from-zero GPU workers behind Pub/Sub and KEDA",
    long_about = "Replays scripted bursty workloads into Pub/Sub (or a built-in simulation of Pub/Sub, KEDA, the \
cluster autoscaler, kubelet and GPU workers), follows every message through scale-up and back to zero, and reports \
end-to-end latency from the intended send time and where cold-start time went.\n\n\
Exit codes: 0 ok, 1 a gate failed, 2 error, 130 interrupted (SIGINT), 143 terminated (SIGTERM).",
    after_help = "Start with: imagen-load run workloads/burst.toml"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output on stderr (repeat for more); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How stderr lines are written: `text`, or `json` (one object per line with Cloud Logging's `severity`,
    /// `message` and `time`, for pods on GKE).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "IMAGEN_LOAD_LOG_FORMAT"
    )]
    pub log_format: crate::logs::LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workload and write a results folder (events.jsonl, summary.json, histograms, junit.xml, report.md).
    ///
    /// Exit code 1 when a threshold (`[thresholds]` in the workload, or `--gates FILE`) fails.
    ///
    /// With no target configured the run drives the built-in simulator in virtual time: a day of traffic takes
    /// seconds, and no cloud, Docker or cluster is needed.
    Run(Box<RunArgs>),
    /// Check a workload file and print what it will do; reports every problem at once (exit 2 if any).
    Validate(ValidateArgs),
    /// Print the exact schedule: per message its stream, sequence number and intended offset.
    Plan(PlanArgs),
    /// Recompute every output of a results folder from its events.jsonl.
    Analyze(AnalyzeArgs),
    /// Join the results folders of a workload's shards (`run --shard I/N` on several machines) into one results
    /// folder: the event logs merged by time, every histogram and report recomputed from the merged log.
    Merge(MergeArgs),
    /// Compare two results folders: per-metric deltas, and a regression gate that accounts for noise.
    ///
    /// A series regresses when its percentile is worse by more than the tolerance and a one-sided Mann-Whitney
    /// test on the recorded histograms says it is slower; with too few samples it is not judged.
    Compare(CompareArgs),
    /// A trend report over many results folders (nightly): p50/p95/p99 of every metric across runs, the last run
    /// against the previous one and a baseline, regressions first.
    Report(ReportArgs),
    /// Compare scaling setups on the simulator before changing the cluster: the same workload and seed under
    /// presets (all-cold, always-on, hybrid:<pipeline>) or the team's ScaledObject YAML, with cost per month.
    Whatif(WhatifArgs),
    /// Turn a run's measured phases (node provisioning, image pull, model load, processing, ...) into a simulator
    /// profile, so what-if answers rest on the team's own numbers.
    Calibrate(CalibrateArgs),
    /// Break down a cold start that already happened, from `kubectl get pods,nodes,events -o json` dumps, into a
    /// results folder (what the dump lacks, such as the first message or the model-load signal, stays unknown).
    Import(ImportArgs),
    /// Serve the built-in Pub/Sub emulator (gRPC and REST on one port, plus `GET /backlog/{subscription}` for
    /// KEDA's metrics-api trigger) until Ctrl-C. State is in memory.
    Emulator(EmulatorArgs),
    /// The reference worker: pulls jobs, loads a model once, processes each job, publishes completions per the
    /// worker contract (docs/worker-contract.md); serves /healthz, /ready and POST /warmup.
    Worker(WorkerArgs),
    /// Observe the cluster only (no publishing): pods, GPU nodes and their events, as cold-start events into a
    /// results folder, until Ctrl-C or `--duration`. For production traffic or another tool's load.
    Watch(WatchArgs),
    /// Exit 0 when the emulator or the worker in this container answers /healthz (for Docker's HEALTHCHECK).
    ///
    /// Asks `--url`, else IMAGEN_LOAD_HEALTH_URL, else the worker's and the emulator's default ports on loopback
    /// (8080, 8085): healthy when one of them answers 200.
    Health(HealthArgs),
    /// Print a shell completion script, e.g. `imagen-load completions bash > ~/.local/share/bash-completion/completions/imagen-load`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), or with `--out DIR` write one page per command (`imagen-load.1`, `imagen-load-run.1`, …).
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page into this folder instead of printing the main one.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The kubeconfig context (default: the current one, or the in-cluster service account).
    #[arg(long)]
    pub context: Option<String>,
    /// The kubeconfig file to use, as kubectl's `--kubeconfig` (default: `KUBECONFIG`, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The workers' namespace (default: the kubeconfig context's namespace, as kubectl; else `imagen`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Label selector of the worker pods (default: every pod of the namespace).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Label selector of the GPU nodes, e.g. `cloud.google.com/gke-nodepool=gpu-pool` (default: every node).
    #[arg(long)]
    pub node_selector: Option<String>,
    /// Stop after this long (default: at Ctrl-C or SIGTERM).
    #[arg(long, value_parser = crate::units::parse_duration)]
    pub duration: Option<crate::units::Micros>,
    /// Name of the results folder (default `<time>-watch`).
    #[arg(long)]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub results: ResultsArgs,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The health endpoint to ask.
    #[arg(long, env = "IMAGEN_LOAD_HEALTH_URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Port to listen on (0 picks a free one; the chosen address is printed).
    #[arg(long, default_value_t = 8085)]
    pub port: u16,
    /// Address to bind. Loopback by default; `0.0.0.0` in a container.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The subscription to pull jobs from (short name or projects/P/subscriptions/S).
    #[arg(long, env = "IMAGEN_SUBSCRIPTION")]
    pub subscription: String,
    /// The topic to publish completions to.
    #[arg(
        long,
        env = "IMAGEN_RESULTS_TOPIC",
        default_value = "imagen-load-results"
    )]
    pub results_topic: String,
    /// The GCP project (any name on an emulator).
    #[arg(long, env = "PUBSUB_PROJECT_ID", default_value = "imagen-load")]
    pub project: String,
    /// An emulator's host:port; without it the worker talks to Google Cloud with Application Default Credentials.
    #[arg(long, env = "PUBSUB_EMULATOR_HOST")]
    pub emulator_host: Option<String>,
    /// The pipeline it serves (the stream name in the workload); default: the subscription's name.
    #[arg(long, env = "IMAGEN_PIPELINE")]
    pub pipeline: Option<String>,
    /// Its name in reports (Kubernetes sets HOSTNAME to the pod name).
    #[arg(long, env = "HOSTNAME")]
    pub pod: Option<String>,
    /// Model load time, a distribution as in the simulator, e.g. `uniform(30s, 60s)`.
    #[arg(long, default_value = "2s", value_parser = crate::units::parse_dist)]
    pub model_load: crate::units::Dist,
    /// Processing time per job, e.g. `lognormal(8s, 0.3)`.
    #[arg(long, default_value = "200ms", value_parser = crate::units::parse_dist)]
    pub processing: crate::units::Dist,
    /// Jobs processed at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Load the model on the first job or POST /warmup instead of at start.
    #[arg(long)]
    pub lazy_load: bool,
    /// Seed for the sampled times (default: from the pod name).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Port for /healthz, /ready and POST /warmup (0: none).
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    /// Address for the probe server (`0.0.0.0` in a pod).
    #[arg(long, default_value = "127.0.0.1")]
    pub http_host: std::net::IpAddr,
    /// Create the subscription on this topic if it does not exist.
    #[arg(long, value_name = "TOPIC")]
    pub create_on_topic: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// JSON dumps (a `List`, or single objects), e.g. `kubectl get pods,nodes,events -n imagen -o json > dump.json`.
    #[arg(required = true)]
    pub dumps: Vec<PathBuf>,
    /// Name of the results folder (default `<time>-import`).
    #[arg(long)]
    pub run_id: Option<String>,
    /// GPU price for the cost lines.
    #[arg(long, default_value_t = 0.48)]
    pub price_per_gpu_hour_usd: f64,
    #[command(flatten)]
    pub results: ResultsArgs,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// A results folder (of a real run, or any run).
    pub results: PathBuf,
    /// Where to write the profile (default: `calibrated-profile.toml` in the results folder).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing profile file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhatifFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct WhatifArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// A setup: `baseline`, `all-cold`, `always-on`, `hybrid:<pipeline>[,<pipeline>]`, or a ScaledObject YAML file
    /// (repeatable; default: all-cold, hybrid with the first stream, always-on).
    #[arg(long = "setup", value_name = "SETUP")]
    pub setups: Vec<String>,
    /// Sweep a KEDA setting on top of every `--setup` given (of all-cold when none is):
    /// `cooldownPeriod=60s,300s,900s` (also pollingInterval, minReplicaCount, maxReplicaCount). The simulations
    /// run in parallel.
    #[arg(long, value_name = "FIELD=V1,V2,...")]
    pub sweep: Option<String>,
    /// Count messages slower than this end to end.
    #[arg(long, default_value = "5m", value_parser = crate::units::parse_duration)]
    pub budget: crate::units::Micros,
    /// Hours a day that see this traffic (the rest of the day, only minimum replicas cost money).
    #[arg(long, default_value_t = 24.0)]
    pub traffic_hours_per_day: f64,
    #[arg(long, value_enum, default_value = "table")]
    pub format: WhatifFormat,
    /// Also write an HTML page (with the sweep's latency and cost curves).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results folders, or folders of them (default: results/). Runs are ordered by run id, which starts with the
    /// run's UTC time.
    #[arg(default_value = "results")]
    pub paths: Vec<PathBuf>,
    /// Where to write: `.html` for a page with charts, `.md` for Markdown.
    #[arg(long, default_value = "nightly.html")]
    pub out: PathBuf,
    /// The run id to compare against (default: the first run).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Exit 1 when the last run regressed against the previous run or the baseline.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Also write JUnit XML to this file: the last run against the previous one and against the baseline, a
    /// test case per series, failed on a regression when `--fail-on-regression` is given.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline results folder.
    pub base: PathBuf,
    /// The results folder to judge.
    pub current: PathBuf,
    /// Exit 1 when a series regresses by more than this, e.g. `10%` (without it, compare only reports).
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub fail_on_regression: Option<f64>,
    /// The percentile the gate looks at.
    #[arg(long, default_value_t = 95.0)]
    pub percentile: f64,
    /// Also write the table as Markdown to this file (for a PR comment).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// `text` (the table) or `json` (every row with its counts, percentiles in µs, change, p-value and verdict).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub format: OutputFormat,
    /// Also write JUnit XML to this file: a test case per compared series and one for lost messages, failed
    /// when `--fail-on-regression` calls it a regression (for CI test reporters, as `run` writes junit.xml).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage; write e.g. `10%`"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("`{s}` must be zero or more"));
    }
    Ok(v / 100.0)
}

#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// The workload file (TOML); see workloads/README.md.
    pub workload: PathBuf,
    /// Override the workload's seed (`[run] seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override any workload key, e.g. `--set sim.keda.min_replicas=1` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// `-o/--output`, as kubectl uses it: the format of what a command prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people (the default).
    #[default]
    Text,
    /// For machines: JSON (JSON Lines for a schedule, one object per item).
    Json,
    /// CSV (`plan` only): `stream,seq,kind,phase,intended_offset_us`.
    Csv,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// `text`, or `json`: `{"valid": true, "workload", "seed", "target", "streams": [{"name", "messages"}]}`, or on
    /// problems `{"valid": false, "problems": [{"file", "line", "column", "key", "message", "fix"}]}` (exit 2).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Print CSV (`stream,seq,kind,phase,intended_offset_us`) instead of a summary (the same as `-o csv`).
    #[arg(long)]
    pub csv: bool,
    /// `text` (a summary), `csv`, or `json` (JSON Lines: one object per message or http step, the CSV's columns).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub format: OutputFormat,
    /// Only shard INDEX of COUNT (from 0): each stream's messages round-robin by sequence number. The rows keep
    /// the unsharded plan's columns and values; the shards together are the unsharded plan.
    #[arg(long, value_name = "INDEX/COUNT")]
    pub shard: Option<crate::plan::schedule::Shard>,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub to: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// The built-in simulation of the whole stack (the default).
    Sim,
    /// A Pub/Sub emulator: PUBSUB_EMULATOR_HOST, else the built-in one, started for the run.
    Emulator,
    /// Google Cloud Pub/Sub with Application Default Credentials.
    Gcp,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Name of the run's folder instead of `<time>-<workload name>`.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Where messages go (overrides `[target] kind`).
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// GCP project for the Pub/Sub targets (overrides `[target] project`).
    #[arg(long)]
    pub project: Option<String>,
    /// An emulator's host:port (overrides `[target] endpoint` and PUBSUB_EMULATOR_HOST).
    #[arg(long, value_name = "HOST:PORT")]
    pub emulator_host: Option<String>,
    /// Create missing topics and subscriptions (default on for the emulator, off for gcp).
    #[arg(long, overrides_with = "no_create_topics")]
    pub create_topics: bool,
    /// Never create topics or subscriptions; fail if one is missing.
    #[arg(long)]
    pub no_create_topics: bool,
    /// No live progress line on stderr.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub results: ResultsArgs,
    /// More thresholds from a gates file (its `[thresholds]` table), on top of the workload's own.
    #[arg(long, value_name = "FILE")]
    pub gates: Option<PathBuf>,
    /// Run only shard INDEX of COUNT (from 0) of the workload, for load from several machines; `merge` then
    /// joins the shards' results. Each stream's messages go round-robin by sequence number, as `plan --shard`
    /// shows. The results folder and run id get `-shard-INDEX-of-COUNT`. On the simulator each shard simulates
    /// the whole stack and records its own messages (and the shared cluster events).
    #[arg(long, value_name = "INDEX/COUNT")]
    pub shard: Option<crate::plan::schedule::Shard>,
    /// Live targets: start the schedule at this instant (RFC 3339, e.g. `2026-12-01T02:00:00Z`), after connecting
    /// (and waiting for zero); give every shard the same one so their schedules start together. A run not ready
    /// by then stops with exit 2 before it publishes.
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub start_at: Option<jiff::Timestamp>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// The run's Prometheus metrics (`metrics`): served while it runs, or written as a file.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Metrics")]
pub struct MetricsArgs {
    /// Serve the run's Prometheus metrics at http://HOST:PORT/metrics while it runs (OpenMetrics when the scraper
    /// asks for it, else the Prometheus text format); overrides `[run] metrics_addr`. Loopback only, unless
    /// --metrics-allow-remote.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Allow a --metrics-addr or --otlp-endpoint that is not loopback (either shows what the run is doing).
    #[arg(long)]
    pub metrics_allow_remote: bool,
    /// Keep serving /metrics this long after the run ends, so a last scrape sees the final counts (default 0s).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub metrics_linger: Option<crate::units::Micros>,
    /// Write the run's metrics to FILE as OpenMetrics with a timestamp on every sample, from the run's start (a
    /// simulated run in simulated time), for `promtool tsdb create-blocks-from openmetrics FILE DIR`.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Run time between two samples of --metrics-file (default 15s, Prometheus' default scrape interval; a
    /// simulated run longer than 3 hours gets one sample per 1/720 of it).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration, requires = "metrics_file")]
    pub metrics_interval: Option<crate::units::Micros>,
    /// Push the run's metrics (the same series as /metrics) to an OpenTelemetry collector by OTLP/HTTP
    /// (protobuf), every --otlp-interval and once at the end; `http://HOST:4318` posts to
    /// `http://HOST:4318/v1/metrics`. Headers (e.g. Authorization) come from OTEL_EXPORTER_OTLP_HEADERS; overrides
    /// `[run] otlp_endpoint`. Loopback only, unless --metrics-allow-remote.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Wall-clock time between two OTLP pushes (default 10s, as k6's OpenTelemetry output).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub otlp_interval: Option<crate::units::Micros>,
}

/// Watching the Kubernetes cluster during a live run; each flag overrides `[cluster]`, and any of them turns
/// the watchers on.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Cluster (live targets)")]
pub struct ClusterArgs {
    /// Watch the cluster of this kubeconfig context (default: the current one, or in-cluster).
    #[arg(long)]
    pub context: Option<String>,
    /// The kubeconfig file to use, as kubectl's `--kubeconfig` (default: `KUBECONFIG`, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The workers' namespace (default: the kubeconfig context's namespace, as kubectl; else `imagen`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Label selector of the worker pods and Deployments, e.g. `app.kubernetes.io/component=worker`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Label selector of the GPU nodes, e.g. `cloud.google.com/gke-nodepool=gpu-pool`.
    #[arg(long)]
    pub node_selector: Option<String>,
    /// Before publishing, wait (bounded by --zero-timeout) until the worker replicas are at zero, and with
    /// `nodes` no GPU node is left either; exit 2 if they are not, rather than measure warm pods.
    #[arg(long, value_enum, value_name = "SCOPE", num_args = 0..=1, default_missing_value = "replicas")]
    pub require_zero: Option<crate::plan::workload::ZeroScope>,
    /// After the workload, keep watching (bounded by --zero-timeout) until the replicas, and with `nodes` the
    /// GPU nodes, are back at zero, so the scale-down is in the results.
    #[arg(long, value_enum, value_name = "SCOPE", num_args = 0..=1, default_missing_value = "replicas")]
    pub wait_for_zero: Option<crate::plan::workload::ZeroScope>,
    /// The longest --require-zero or --wait-for-zero waits (default 15m).
    #[arg(long, value_parser = crate::units::parse_duration)]
    pub zero_timeout: Option<crate::units::Micros>,
    /// Do not watch the cluster, even if the workload has `[cluster]`.
    #[arg(long, conflicts_with_all = ["context", "kubeconfig", "namespace", "selector", "node_selector", "require_zero", "wait_for_zero"])]
    pub no_cluster: bool,
}

impl ClusterArgs {
    fn any(&self) -> bool {
        self.context.is_some()
            || self.kubeconfig.is_some()
            || self.namespace.is_some()
            || self.selector.is_some()
            || self.node_selector.is_some()
            || self.require_zero.is_some()
            || self.wait_for_zero.is_some()
            || self.zero_timeout.is_some()
    }

    /// The workload's `[cluster]` with these flags on top (`None`: no watching).
    pub fn resolve(
        &self,
        workload: Option<&crate::plan::workload::ClusterPlan>,
    ) -> Option<crate::plan::workload::ClusterPlan> {
        if self.no_cluster || (workload.is_none() && !self.any()) {
            return None;
        }
        let mut c = workload.cloned().unwrap_or_default();
        let set = |to: &mut Option<String>, from: &Option<String>| {
            if from.is_some() {
                to.clone_from(from);
            }
        };
        set(&mut c.context, &self.context);
        set(&mut c.selector, &self.selector);
        set(&mut c.node_selector, &self.node_selector);
        set(&mut c.namespace, &self.namespace);
        if self.kubeconfig.is_some() {
            c.kubeconfig.clone_from(&self.kubeconfig);
        }
        if self.require_zero.is_some() {
            c.require_zero = self.require_zero;
        }
        if self.wait_for_zero.is_some() {
            c.wait_for_zero = self.wait_for_zero;
        }
        if let Some(t) = self.zero_timeout {
            c.zero_timeout = t;
        }
        Some(c)
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The results folders of the shards (`run --shard I/N`), in any order.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Name of the merged run (default: the shards' run id without its `-shard-I-of-N`).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Merge even if some shards are missing (the report then covers only the shards given).
    #[arg(long)]
    pub partial: bool,
    /// Evaluate the thresholds of this gates file (`[thresholds]`); exit 1 if one fails.
    #[arg(long, value_name = "FILE")]
    pub gates: Option<PathBuf>,
    #[command(flatten)]
    pub results: ResultsArgs,
}

/// Where a command that makes a results folder puts it, and how it reports (`run`, `merge`, `import`, `watch`).
#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Where results folders are created (`<out>/<run-id>/`).
    #[arg(long, default_value = "results", value_parser = results_root)]
    pub out: PathBuf,
    /// Replace an existing results folder of the same run id.
    #[arg(long)]
    pub force: bool,
    /// Do not print the terminal summary.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A results folder (or its events.jsonl).
    pub results: PathBuf,
    /// Evaluate the thresholds of this gates file (`[thresholds]`); exit 1 if one fails.
    #[arg(long, value_name = "FILE")]
    pub gates: Option<PathBuf>,
    /// Do not print the terminal summary.
    #[arg(short, long)]
    pub quiet: bool,
}

/// k6's outputs (`k6 run --out NAME=…`), from k6's docs ("Results output"): a results root that reads like one of
/// them is a k6 habit, not a folder name.
const K6_OUTPUTS: [&str; 12] = [
    "json",
    "csv",
    "cloud",
    "influxdb",
    "statsd",
    "datadog",
    "kafka",
    "timescaledb",
    "dashboard",
    "web-dashboard",
    "opentelemetry",
    "experimental-prometheus-rw",
];

/// `--out`: the folder results folders are created in. k6 users write `--out json=results.json`; that is an
/// output spec, not a folder, and would silently create a folder named `json=results.json`. Refused, with what
/// imagen-load writes instead.
pub fn results_root(text: &str) -> Result<PathBuf, String> {
    let spec = text.split_once('=').map_or(text, |(kind, _)| kind);
    let k6 =
        K6_OUTPUTS.contains(&spec) || spec.starts_with("experimental-") || spec.starts_with("xk6-");
    if k6 && (text.contains('=') || spec != "json" && spec != "csv") {
        return Err(format!(
            "`{text}` is a k6 output spec; imagen-load's --out is the folder results go in (default `results`), \
             and every run writes events.jsonl (one JSON event a line), summary.json, histograms/*.hgrm, \
             junit.xml and report.html under <out>/<run-id>/\n    fix: drop `--out {text}` (or give a folder, \
             e.g. `--out results`), and read <out>/<run-id>/events.jsonl or summary.json"
        ));
    }
    if text.is_empty() {
        return Err("an empty folder name\n    fix: e.g. `--out results`".into());
    }
    Ok(PathBuf::from(text))
}

/// `--metrics-addr`: an IP address and port, or `localhost:PORT` (served on 127.0.0.1).
fn parse_metrics_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    if let Some(port) = s
        .strip_prefix("localhost:")
        .and_then(|p| p.parse::<u16>().ok())
    {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    Err(format!(
        "`{s}` is not HOST:PORT with an IP address (or localhost); write it like 127.0.0.1:9464"
    ))
}

/// `--start-at`: an RFC 3339 instant with its offset.
fn parse_instant(s: &str) -> Result<jiff::Timestamp, String> {
    s.parse::<jiff::Timestamp>().map_err(|e| {
        format!("`{s}` is not an RFC 3339 instant ({e}); write it like `2026-12-01T02:00:00Z`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
