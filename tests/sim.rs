//! The simulator against hand-computed answers (fixed times, no randomness), its determinism, and the seed
//! scenario: all scale-to-zero vs hybrid vs always-on on `workloads/burst.toml`.

use crate::common::{path, plan_from};
use imagen_load::analysis::{self, RunReport};
use imagen_load::event::{Event, EventKind};
use imagen_load::plan::workload::{self, Override};
use imagen_load::run::simulate_events;

const S: u64 = 1_000_000;

/// Every time fixed: polling 30 s, metric lag 0, node 90 s, pull 45 s, model 45 s, processing as given.
fn fixed(processing: &str, extra_sim: &str, phases: &str) -> String {
    format!(
        r#"
[run]
seed = 1
deadline = "30m"
drain = "30m"
[sim.metrics]
source = "metrics-api"
[sim.pubsub]
publish_latency = "0s"
delivery_latency = "0s"
[sim.keda]
polling_interval = "30s"
cooldown_period = "300s"
max_replicas = 1
target_value = 10
[sim.autoscaler]
node_provision = "90s"
node_ready = "0s"
gpu_driver = "0s"
scale_down_unneeded = "10m"
scale_down_delay_after_add = "10m"
{extra_sim}
[sim.kubelet]
image_pull = "45s"
container_start = "0s"
[sim.worker]
model_load = "45s"
processing = "{processing}"
[[stream]]
name = "upscale"
{phases}
"#
    )
}

fn first_time(events: &[Event], f: impl Fn(&EventKind) -> bool) -> u64 {
    events
        .iter()
        .find(|e| f(&e.kind))
        .map(|e| e.t_us)
        .expect("event present")
}

fn phase(r: &RunReport, pod: usize, name: &str) -> Option<u64> {
    r.pods[pod].phases_us.get(name).copied().flatten()
}

#[test]
fn one_message_from_zero_completes_at_the_formula() {
    let plan = plan_from(&fixed(
        "2s",
        "",
        "[[stream.phase]]\nkind = \"burst\"\ncount = 1\n",
    ));
    let events = simulate_events(&plan, "t");
    // KEDA's first poll that sees the message (30 s), the autoscaler's scan (same instant), node 90 s,
    // pull 45 s, model 45 s, processing 2 s.
    let done = first_time(&events, |k| matches!(k, EventKind::Completed { .. }));
    assert_eq!(done, (30 + 90 + 45 + 45 + 2) * S);
    // The last poll that saw a backlog was at 210 s; cooldown 300 s later the deployment goes to zero.
    let zero = first_time(&events, |k| {
        matches!(
            k,
            EventKind::Replicas {
                desired: 0,
                ready: Some(0),
                ..
            }
        )
    });
    let zero_after_start = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Replicas {
                    desired: 0,
                    ready: Some(0),
                    ..
                }
            )
        })
        .map(|e| e.t_us)
        .find(|&t| t > 0)
        .unwrap();
    assert_eq!(zero, 0, "the deployment starts at zero");
    assert_eq!(zero_after_start, (210 + 300) * S);
    // Empty from 510 s, the node goes after the scale-down-unneeded time (10 min).
    let gone = first_time(&events, |k| matches!(k, EventKind::NodeDeleted { .. }));
    assert_eq!(gone, (510 + 600) * S);

    let r = analysis::analyze(events);
    assert_eq!(r.delivery.completed, 1);
    let m = r.messages[0];
    assert_eq!(m.e2e_us(), 212 * S);
    assert_eq!(
        (
            m.publish_delay_us,
            m.capacity_wait_us,
            m.queueing_us,
            m.processing_us
        ),
        (Some(0), Some(210 * S), Some(0), Some(2 * S))
    );
    assert!(m.cold);
    assert_eq!(r.pods.len(), 1);
    for (name, secs) in [
        ("activation", 30),
        ("pod_creation", 0),
        ("node_provisioning", 90),
        ("image_pull", 45),
        ("container_start", 0),
        ("model_load", 45),
        ("ready", 0),
        ("first_message", 2),
        ("total", 210),
    ] {
        assert_eq!(phase(&r, 0, name), Some(secs * S), "phase {name}");
    }
    let c = &r.cycles[0];
    assert_eq!(c.time_to_first_ready_us, Some(210 * S));
    assert_eq!(c.to_zero_replicas_us, Some((510 - 212) * S));
    assert_eq!(c.to_zero_nodes_us, Some((1110 - 212) * S));
    // Billed from the node's registration (120 s) to its deletion (1110 s) at $0.48 per GPU-hour.
    assert!((r.cost.cost_usd - 990.0 / 3600.0 * 0.48).abs() < 1e-9);
}

#[test]
fn a_second_pod_on_the_same_node_skips_the_pull() {
    // Two GPUs per node, up to two replicas, one message per replica: a burst at 217 s makes the HPA add a
    // second pod at its 225 s sync, which lands on the first pod's node, where the image already is.
    let src = fixed(
        "10s",
        "gpus_per_node = 2",
        "[[stream.phase]]\nkind = \"burst\"\ncount = 1\n[[stream.phase]]\nkind = \"idle\"\nduration = \"217s\"\n[[stream.phase]]\nkind = \"burst\"\ncount = 5\n",
    )
    .replace("max_replicas = 1\ntarget_value = 10", "max_replicas = 2\ntarget_value = 1");
    let r = analysis::analyze(simulate_events(&plan_from(&src), "t"));
    assert_eq!(r.pods.len(), 2);
    assert_eq!(r.pods[0].image_cached, Some(false));
    assert_eq!(phase(&r, 0, "image_pull"), Some(45 * S));
    assert_eq!(r.pods[1].created_us, Some(225 * S));
    assert_eq!(r.pods[1].node, r.pods[0].node);
    assert_eq!(r.pods[1].image_cached, Some(true));
    assert_eq!(phase(&r, 1, "node_provisioning"), Some(0));
    assert_eq!(phase(&r, 1, "image_pull"), Some(0));
    assert_eq!(phase(&r, 1, "model_load"), Some(45 * S));
    assert_eq!(
        phase(&r, 1, "activation"),
        None,
        "only the first pod of a cycle has an activation phase"
    );
    assert_eq!(r.cost.nodes_created, 1);
}

#[test]
fn a_hot_pipeline_has_no_cold_start() {
    let src = fixed("2s", "", "[[stream.phase]]\nkind = \"burst\"\ncount = 1\n")
        .replace("max_replicas = 1", "max_replicas = 1\nmin_replicas = 1");
    let r = analysis::analyze(simulate_events(&plan_from(&src), "t"));
    assert_eq!(r.messages[0].e2e_us(), 2 * S);
    assert!(!r.messages[0].cold);
    assert!(r.pods.iter().all(|p| p.preexisting));
    assert!(
        r.series.stats("e2e_latency", "all", Some(true)).is_none(),
        "no cold message"
    );
    assert_eq!(r.cost.nodes_created, 0);
}

#[test]
fn same_workload_and_seed_give_identical_event_logs() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [&a, &b] {
        crate::common::run_burst(dir.path(), "same", &[]).success();
    }
    let read = |d: &tempfile::TempDir| std::fs::read(d.path().join("same/events.jsonl")).unwrap();
    assert_eq!(read(&a), read(&b));
    let c = tempfile::tempdir().unwrap();
    crate::common::bin()
        .args([
            "run",
            "workloads/burst.toml",
            "--quiet",
            "--run-id",
            "same",
            "--seed",
            "43",
            "--out",
        ])
        .arg(c.path())
        .assert()
        .success();
    assert_ne!(
        read(&a),
        read(&c),
        "another seed draws other provisioning, pull and load times"
    );
}

#[test]
fn analysed_phases_equal_the_simulators_ground_truth() {
    let plan = workload::load(&path("workloads/burst.toml"), &[]).unwrap();
    let events = simulate_events(&plan, "t");
    let truth: Vec<(String, imagen_load::event::PodPhaseTruth)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SimPodTruth { pod, phases } => Some((pod.clone(), phases.clone())),
            _ => None,
        })
        .collect();
    assert!(truth.len() >= 4);
    let r = analysis::analyze(events);
    for (pod, t) in truth {
        let p = r.pods.iter().find(|p| p.pod == pod).unwrap();
        let get = |k: &str| p.phases_us[k].unwrap_or_else(|| panic!("{pod}: {k} unknown"));
        assert_eq!(get("node_provisioning"), t.node_provisioning_us, "{pod}");
        assert_eq!(get("image_pull"), t.image_pull_us, "{pod}");
        assert_eq!(get("container_start"), t.container_start_us, "{pod}");
        assert_eq!(get("model_load"), t.model_load_us, "{pod}");
        assert_eq!(get("ready"), t.ready_us, "{pod}");
    }
}

/// The seed scenario: burst.toml under all scale-to-zero, hybrid (upscale hot) and always-on.
#[test]
fn seed_scenario_orders_cold_starts_latency_and_cost() {
    let run = |sets: &[&str]| {
        let overrides: Vec<Override> = sets.iter().map(|s| s.parse().unwrap()).collect();
        let plan = workload::load(&path("workloads/burst.toml"), &overrides).unwrap();
        analysis::analyze(simulate_events(&plan, "t"))
    };
    let cold = run(&[]);
    let hybrid = run(&["sim.pipeline.upscale.keda.min_replicas=1"]);
    let always = run(&["sim.keda.min_replicas=1"]);
    let starts = |r: &RunReport| r.pods.iter().filter(|p| !p.preexisting).count();
    let p95 = |r: &RunReport| r.series.stats("e2e_latency", "all", None).unwrap().p95_us;
    assert!(
        starts(&cold) > starts(&hybrid) && starts(&hybrid) > starts(&always),
        "cold starts"
    );
    assert_eq!(starts(&always), 0);
    assert!(
        p95(&cold) > p95(&hybrid) && p95(&hybrid) > p95(&always),
        "p95 latency"
    );
    assert!(
        always.cost.cost_usd > hybrid.cost.cost_usd && hybrid.cost.cost_usd > cold.cost.cost_usd,
        "cost"
    );
    // Always-on is four GPUs for the whole window at $0.48 per GPU-hour.
    let hours = always.run.end_us as f64 / 3.6e9;
    assert!(
        (always.cost.cost_usd - 4.0 * hours * 0.48).abs() < 0.01,
        "{} vs {}",
        always.cost.cost_usd,
        4.0 * hours * 0.48
    );
    for r in [&cold, &hybrid, &always] {
        assert_eq!(r.delivery.completed, 150);
        assert_eq!(r.delivery.lost, 0);
    }
}

#[test]
fn a_stopped_simulation_says_so_and_loses_nothing() {
    let plan = plan_from(
        "[[stream]]\nname = \"s\"\n[[stream.phase]]\nkind = \"constant\"\nrate = \"20/s\"\nduration = \"1h\"\n",
    );
    let last = imagen_load::plan::schedule::last_offset_of(&plan);
    let mut events = vec![imagen_load::run::run_header(&plan, last, "t", 0)];
    let stop = imagen_load::run::Stop::default();
    stop.request("test");
    let outcome = imagen_load::run::sim::simulate_until(&plan, &stop, |e| events.push(e));
    assert!(outcome.interrupted);
    assert!(matches!(
        events.last().unwrap().kind,
        EventKind::RunFinished {
            interrupted: true,
            ..
        }
    ));
    let r = analysis::analyze(events);
    assert!(r.run.interrupted);
    assert_eq!(r.delivery.lost, 0, "in flight when stopped is not lost");
    assert_eq!(
        r.delivery.scheduled,
        r.delivery.completed + r.delivery.open_at_end,
        "every message accounted for"
    );
}

#[test]
fn a_lapsed_lease_delivers_again_and_completes_twice() {
    // Two hot pods, processing 90 s, ack deadline 60 s, nobody extends the lease: Pub/Sub hands the message to
    // the second pod at 60 s while the first still works on it. The first completes at 90 s, the second at 150 s.
    let src = fixed("90s", "", "[[stream.phase]]\nkind = \"burst\"\ncount = 1\n")
        .replace("max_replicas = 1", "max_replicas = 2\nmin_replicas = 2")
        .replace(
            "processing = \"90s\"",
            "processing = \"90s\"\nlease_extension = false",
        );
    let events = simulate_events(&plan_from(&src), "t");
    let completed = first_time(&events, |k| matches!(k, EventKind::Completed { .. }));
    let duplicate = first_time(&events, |k| matches!(k, EventKind::Duplicate { .. }));
    assert_eq!((completed, duplicate), (90 * S, 150 * S));
    let r = analysis::analyze(events);
    assert_eq!(
        (
            r.delivery.completed,
            r.delivery.duplicates,
            r.delivery.redelivered
        ),
        (1, 1, 1)
    );
    assert_eq!(
        r.messages[0].e2e_us(),
        90 * S,
        "latency counts the first completion"
    );
}

#[test]
fn a_crashing_worker_restarts_and_its_message_comes_back_after_the_ack_deadline() {
    // Every processing attempt crashes the worker: the message is redelivered 60 s (the ack deadline) after each
    // crash, the container restarts (10 s back-off, model load 45 s), and the message is lost at the deadline.
    let src = fixed("10s", "", "[[stream.phase]]\nkind = \"burst\"\ncount = 1\n").replace(
        "processing = \"10s\"",
        "processing = \"10s\"\ncrash_probability = 1.0",
    );
    let events = simulate_events(&plan_from(&src), "t");
    let crash = first_time(&events, |k| matches!(k, EventKind::PodNotReady { .. }));
    let second = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::Delivered { attempt: 2, .. }))
        .unwrap()
        .t_us;
    assert!(
        (210 * S..220 * S).contains(&crash),
        "crashes during the first 10 s of processing: {crash}"
    );
    // Redelivered when the lease lapses (crash + 60 s), once the pod is ready again (crash + 10 + 0 + 45 s).
    assert_eq!(second, crash + 60 * S);
    let r = analysis::analyze(events);
    assert_eq!(r.delivery.completed, 0);
    assert_eq!(r.delivery.lost, 1);
    assert!(r.delivery.redelivered >= 2);
    assert!(r.pods[0].restarts >= 2);
    // The cold start is the first start's; restarts do not change its phases.
    assert_eq!(r.pods[0].phases_us["model_load"], Some(45 * S));
}
