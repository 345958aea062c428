//! The simulator as the oracle for real observations. Each shipped simulated workload (and variants with workers
//! that lease many messages, crash, and are slow to turn ready) is observed as each real producer would observe it
//! (`[sim] observe`: the Kubernetes watchers, the reference workers, both, or Events alone), analysed, and
//! checked against what the simulator knows and never shows the analysis: each pod's true phases
//! (`sim_pod_truth`) and each message's true split ([`Truth`]).
//!
//! - Counts are exact: messages scheduled, published, completed, lost and duplicated; cold starts; scale cycles.
//! - Phases and per-message splits agree within the mode's tolerance ([`tolerance_us`]): its resolution (whole
//!   seconds for the API's object stamps) plus its delivery delay (a watch delivers up to 300 ms late).
//! - What a mode cannot see is unknown (`None`), never a number: the model load in Events alone, the node and
//!   image phases in the workers' reports.
//!
//! Redeliveries are compared where the workers report receipts (the reference worker does): the harness counts
//! them itself, since Pub/Sub says which delivery attempt a message is only with a dead-letter policy.

use crate::common::path;
use imagen_load::analysis::{self, RunReport};
use imagen_load::event::{Event, EventKind, MsgId, PodPhaseTruth};
use imagen_load::plan::sim::Observe;
use imagen_load::plan::workload::{self, Override, Plan};
use imagen_load::run::Stop;
use imagen_load::run::sim::Truth;
use std::collections::HashMap;

/// The largest error allowed, per mode, on a phase or a message's split (µs).
fn tolerance_us(mode: Observe) -> u64 {
    match mode {
        // The simulator's own log: exact.
        Observe::Sim => 0,
        // Object stamps are whole seconds (sharpened by the delivery when it falls in that second) and a watch
        // delivers up to 300 ms late: 1 s + 0.3 s, and 0.2 s of margin.
        Observe::Kube | Observe::KubeWorker => 1_500_000,
        // The workers' own clock, read back exactly.
        Observe::Worker => 0,
        // Event stamps with their name's UnixNano (µs); the first delivery stands in for readiness (up to the
        // Pub/Sub delivery latency after it, 50 ms).
        Observe::EventsOnly => 60_000,
    }
}

fn observed(plan: &Plan, mode: Observe) -> (Vec<Event>, Truth) {
    let mut plan = plan.clone();
    plan.sim.observe = mode;
    if mode == Observe::EventsOnly {
        // Events alone do not say which Deployment serves which subscription: the workload names them, as a
        // user importing Events must.
        for s in &mut plan.streams {
            s.deployment = Some(format!("{}-worker", s.name));
        }
    }
    let mut events = vec![imagen_load::run::run_header(
        &plan,
        imagen_load::plan::schedule::last_offset_of(&plan),
        "oracle",
        0,
    )];
    let mut truth = Truth::default();
    imagen_load::run::sim::simulate_observed(
        &plan,
        &Stop::default(),
        |e| events.push(e),
        Some(&mut truth),
    );
    (events, truth)
}

/// What the analysis found against what the simulator knows, for one mode; returns the largest errors seen
/// (phase, split) in µs.
/// `readiness_us`: the plan's longest readiness delay (model loaded → Kubernetes Ready). The workers report
/// their model ready, not Kubernetes' readiness, so their view of capacity is that much early by design.
fn check(
    label: &str,
    mode: Observe,
    plan: &Plan,
    readiness_us: u64,
    reference: &RunReport,
) -> (u64, u64) {
    let (events, truth) = observed(plan, mode);
    let in_order = events.windows(2).all(|w| w[0].t_us <= w[1].t_us);
    assert!(in_order, "{label}: the observed log is in time order");
    let pod_truth: HashMap<String, PodPhaseTruth> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SimPodTruth { pod, phases } => Some((pod.clone(), phases.clone())),
            _ => None,
        })
        .collect();
    let r = analysis::analyze(events);
    let tol = tolerance_us(mode);
    let split_tol = match mode {
        Observe::Worker | Observe::KubeWorker => tol + readiness_us,
        _ => tol,
    };

    // Counts: exact.
    let (d, t) = (&r.delivery, &reference.delivery);
    for (what, got, want) in [
        ("scheduled", d.scheduled, t.scheduled),
        ("published", d.published, t.published),
        ("completed", d.completed, t.completed),
        ("lost", d.lost, t.lost),
        ("duplicates", d.duplicates, t.duplicates),
    ] {
        assert_eq!(got, want, "{label}: {what}");
    }
    let completed = truth
        .messages
        .values()
        .filter(|m| m.completed_us.is_some())
        .count() as u64;
    assert_eq!(
        d.completed, completed,
        "{label}: completed against the truth"
    );
    // Redeliveries, counted by the harness from the reference workers' receipts (a worker that reports none, as
    // in `kube` and Events alone, leaves them uncounted).
    if matches!(mode, Observe::Sim | Observe::Worker | Observe::KubeWorker) {
        assert_eq!(d.redelivered, t.redelivered, "{label}: redelivered");
    }
    let cold = |r: &RunReport| r.pods.iter().filter(|p| !p.preexisting).count();
    let expected_cold = match mode {
        // A worker reports itself once its process runs: pods deleted before they started are not seen.
        Observe::Worker => reference
            .pods
            .iter()
            .filter(|p| !p.preexisting && truth.started_pods.contains(&p.pod))
            .count(),
        _ => cold(reference),
    };
    assert_eq!(cold(&r), expected_cold, "{label}: cold starts");
    if mode != Observe::Worker {
        assert_eq!(
            r.cycles.len(),
            reference.cycles.len(),
            "{label}: scale cycles"
        );
    }
    assert!(
        !r.warnings.iter().any(|w| w.contains("matched no stream")),
        "{label}: every cluster object matched a stream: {:?}",
        r.warnings
    );

    // Phases: within the tolerance, and unknown where the mode cannot see them.
    let mut phase_err = 0;
    for p in r.pods.iter().filter(|p| !p.preexisting) {
        let Some(truth) = pod_truth.get(&p.pod) else {
            continue; // never ready in the run: no truth recorded
        };
        let ph = &p.phases_us;
        let model_and_ready = truth.model_load_us + truth.ready_us;
        let expect: Vec<(&str, Option<u64>)> = match mode {
            Observe::Sim => vec![
                ("node_provisioning", Some(truth.node_provisioning_us)),
                ("image_pull", Some(truth.image_pull_us)),
                ("container_start", Some(truth.container_start_us)),
                ("model_load", Some(truth.model_load_us)),
                ("ready", Some(truth.ready_us)),
            ],
            // The cluster does not see the model load: started → Ready holds it and the readiness delay.
            Observe::Kube => vec![
                ("node_provisioning", Some(truth.node_provisioning_us)),
                ("image_pull", Some(truth.image_pull_us)),
                ("container_start", Some(truth.container_start_us)),
                ("model_load", Some(model_and_ready)),
                ("ready", None),
            ],
            // The worker measures its model load; it knows nothing of nodes and images.
            Observe::Worker => vec![
                ("node_provisioning", None),
                ("image_pull", None),
                ("container_start", None),
                ("model_load", Some(truth.model_load_us)),
            ],
            Observe::KubeWorker => vec![
                ("node_provisioning", Some(truth.node_provisioning_us)),
                ("image_pull", Some(truth.image_pull_us)),
                ("container_start", Some(truth.container_start_us)),
                ("model_load", Some(truth.model_load_us)),
            ],
            // Events alone: no readiness, so no model load.
            Observe::EventsOnly => vec![
                ("node_provisioning", Some(truth.node_provisioning_us)),
                ("image_pull", Some(truth.image_pull_us)),
                ("container_start", Some(truth.container_start_us)),
                ("model_load", None),
                ("ready", None),
                ("total", None),
            ],
        };
        for (phase, want) in expect {
            let got = ph[phase];
            match want {
                None => assert_eq!(got, None, "{label}: {} {phase} is unknown", p.pod),
                Some(w) => {
                    let g = got.unwrap_or_else(|| panic!("{label}: {} has no {phase}", p.pod));
                    let err = g.abs_diff(w);
                    phase_err = phase_err.max(err);
                    assert!(
                        err <= tol,
                        "{label}: {} {phase} {g} µs, truth {w} µs",
                        p.pod
                    );
                }
            }
        }
    }

    // Each message's split against the truth.
    let names = &r.run.streams;
    let mut split_err = 0;
    for m in &r.messages {
        let id = MsgId {
            stream: names[m.stream as usize].clone(),
            seq: m.seq,
        };
        let t = truth.messages[&id];
        assert_eq!(m.intended_us, t.intended_us, "{label}: {id:?} intended");
        assert_eq!(
            m.publish_delay_us,
            Some(t.published_us - t.intended_us),
            "{label}: {id:?} publish delay"
        );
        let (Some(cap), Some(start), Some(done)) =
            (t.capacity_us, t.processing_start_us, t.completed_us)
        else {
            continue;
        };
        let want = [
            ("capacity wait", cap - t.published_us, m.capacity_wait_us),
            ("queueing", start - cap, m.queueing_us),
            ("processing", done - start, m.processing_us),
        ];
        for (what, w, got) in want {
            let g = got.unwrap_or_else(|| panic!("{label}: {id:?} has no {what}"));
            let err = g.abs_diff(w);
            split_err = split_err.max(err);
            assert!(
                err <= split_tol,
                "{label}: {id:?} {what} {g} µs, truth {w} µs"
            );
        }
    }
    (phase_err, split_err)
}

/// The shipped simulated workloads, and a variant with real workers' habits; with each, its readiness delay.
fn shipped() -> Vec<(String, Plan, u64)> {
    let mut out = Vec::new();
    for name in ["burst", "steady", "spike-train", "trace-replay", "diurnal"] {
        let file = path(&format!("workloads/{name}.toml"));
        let mut text = std::fs::read_to_string(&file).unwrap();
        if name == "diurnal" {
            // A day of traffic cut to its first six hours: the same shapes, in a test's time.
            text = text.replace("duration = \"24h\"", "duration = \"6h\"");
        }
        let plan = workload::parse(&file, &text).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name.to_string(), plan, 0));
    }
    // Real workers: several jobs leased at once, crashes (redelivered), and a readiness probe after the load.
    let burst = path("workloads/burst.toml");
    let worker = [
        "sim.worker.concurrency=2",
        "sim.worker.max_outstanding_messages=6",
        "sim.worker.crash_probability=0.03",
        "sim.worker.readiness_delay=\"3s\"",
    ]
    .iter()
    .map(|s| s.parse::<Override>().unwrap())
    .collect::<Vec<_>>();
    out.push((
        "burst, leasing and crashing workers".into(),
        workload::load(&burst, &worker).unwrap(),
        3_000_000,
    ));
    out
}

#[test]
fn every_mode_of_every_shipped_workload_agrees_with_the_simulators_truth() {
    let mut worst: HashMap<&str, (u64, u64)> = HashMap::new();
    for (name, plan, readiness_us) in shipped() {
        let (reference_events, _) = observed(&plan, Observe::Sim);
        let reference = analysis::analyze(reference_events);
        for mode in Observe::ALL {
            let label = format!("{name} observed as {}", mode.as_str());
            let (phase, split) = check(&label, mode, &plan, readiness_us, &reference);
            let w = worst.entry(mode.as_str()).or_default();
            *w = (w.0.max(phase), w.1.max(split));
        }
    }
    // The largest errors seen, for the record (`cargo test observe -- --nocapture`).
    let mut rows: Vec<_> = worst.into_iter().collect();
    rows.sort();
    for (mode, (phase, split)) in rows {
        println!("{mode:>12}: largest phase error {phase} µs, largest split error {split} µs");
    }
}
