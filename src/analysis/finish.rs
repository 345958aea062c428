//! The end of analysis: [`Analyzer::finish`] folds the state machine's per-message, per-pod and per-pipeline state
//! into the [`RunReport`] (series, delivery, cold starts, scale cycles, cost, timeline, warnings).

use super::*;

impl Analyzer {
    pub fn finish(mut self) -> RunReport {
        let end = self.last_t;
        if self.out_of_range > 0 {
            self.warnings.push(format!(
                "{} events named messages no run can have (sequence number ≥ {}); they were ignored (a damaged log?)",
                self.out_of_range,
                crate::limits::MAX_MESSAGES_PER_RUN
            ));
        }
        let mut skewed: Vec<(&String, &(u64, u64, u64))> = self.clock_skew.iter().collect();
        skewed.sort();
        for (pod, (behind, ahead, n)) in skewed {
            let mut how = Vec::new();
            if *behind > CLOCK_SKEW_TOLERANCE_US {
                how.push(format!(
                    "up to {} behind (jobs received before they were sent)",
                    crate::units::human_us(*behind)
                ));
            }
            if *ahead > CLOCK_SKEW_TOLERANCE_US {
                how.push(format!(
                    "up to {} ahead (processing ended after the harness saw the completion)",
                    crate::units::human_us(*ahead)
                ));
            }
            self.warnings.push(format!(
                "clock skew: worker {pod}'s clock is {} in {n} completions; its queueing and processing times are clamped at zero where they would be negative (sync the clocks, e.g. with chrony)",
                how.join(" and ")
            ));
        }
        let mut info = self.info.take().unwrap_or_else(|| {
            self.warnings
                .push("the event log has no run_started header; run details are unknown".into());
            RunInfo {
                run_id: "unknown".into(),
                workload: "unknown".into(),
                seed: 0,
                target: "unknown".into(),
                wall_clock_start_unix_us: 0,
                streams: self.streams.clone(),
                warmup_us: 0,
                deadline_us: u64::MAX,
                end_us: 0,
                interrupted: false,
                finished: false,
                price_per_gpu_hour_usd: 0.0,
                shard: None,
                overrides: Vec::new(),
            }
        });
        info.end_us = end;
        info.finished = self.finished;
        info.interrupted = self.interrupted;
        if !self.finished {
            self.warnings.push(
                "the run did not finish (no run_finished event): results cover what was logged"
                    .into(),
            );
        }
        let mut delivery = std::mem::take(&mut self.delivery);
        delivery.duplicates += self.duplicates_by_completion;
        // What never completed: lost (a finished run's deadline has passed for everything), or still open (an
        // interrupted run's has not).
        let mut lost_seqs: Vec<(String, Vec<u64>)> = Vec::new();
        for (s, st) in self.msgs.iter().enumerate() {
            let mut lost_here = Vec::new();
            for (seq, m) in st.open.iter() {
                if !m.intended.is_some() && !m.published.is_some() && !m.lost {
                    continue; // only heard of (a delivery), never scheduled in this log
                }
                if m.publish_failed && !m.published.is_some() {
                    continue; // counted as a publish failure, never reached Pub/Sub
                }
                if m.lost || (self.finished && !self.interrupted) {
                    delivery.lost += 1;
                    lost_here.push(seq);
                } else {
                    delivery.open_at_end += 1;
                }
            }
            if !lost_here.is_empty() {
                if !st.reached_worker && st.done.ranges() == 0 && !self.streams[s].is_empty() {
                    self.warnings.push(nothing_pulled(
                        &self.streams[s],
                        lost_here.len(),
                        self.identity.subscription_of(&self.streams[s]),
                    ));
                }
                lost_seqs.push((self.streams[s].clone(), lost_here));
            }
        }
        delivery.lost_ranges = SeqRange::from_seqs(lost_seqs);
        self.publishing_rates(&mut delivery);
        self.harness_cpu(&mut delivery);
        if self.no_intended > 0 {
            self.warnings.push(format!(
                "{} completions had no scheduled event: counted, but without a latency",
                self.no_intended
            ));
        }
        let mut messages = self.kept.take().unwrap_or_default();
        messages.sort_by_key(|m| (m.completed_us, m.stream, m.seq));
        let mut series = std::mem::take(&mut self.series);
        let mut intervals = std::mem::take(&mut self.intervals);
        intervals.finish(end);

        let mut pods = self.pod_phases(&mut series);
        let problems = self.problems(&mut pods);
        let observed = self.cluster_observed.unwrap_or(self.nodes_seen);
        let mut cost = self.cost(end, info.price_per_gpu_hour_usd, observed, &mut series);
        cost.observed = observed;
        if !cost.observed {
            self.warnings.push(if info.target == "kubectl-dump" {
                "the dump has no Node objects (Events name nodes, not their GPUs): GPU nodes and cost are unknown\n    fix: save the nodes too, while they exist (`kubectl get pods,nodes,events -o json`)".into()
            } else {
                "the run did not observe the cluster: GPU nodes and cost are unknown\n    fix: watch it during the run (`[cluster]`, or --context/--namespace), or import its events afterwards (`imagen-load import`)".into()
            });
        }
        self.warnings.extend(self.identity.warnings());
        for c in &self.cycles {
            let scope = c.pipeline.as_deref().unwrap_or(&c.deployment);
            if let Some(v) = c.time_to_first_ready_us {
                series.record("scale.time_to_first_ready", scope, None, v);
            }
            if let Some(v) = c.to_zero_replicas_us {
                series.record("scale.to_zero_replicas", scope, None, v);
            }
            if let Some(v) = c.to_zero_nodes_us {
                series.record("scale.to_zero_nodes", scope, None, v);
            }
        }
        RunReport {
            run: info,
            delivery,
            series,
            pods,
            cycles: self.cycles,
            cost,
            http_calls: self.http_calls,
            problems,
            warnings: self.warnings,
            messages,
            intervals,
            thresholds: Vec::new(),
            timeline: self.timeline,
        }
    }

    fn pod_phases(&mut self, series: &mut SeriesSet) -> Vec<PodColdStart> {
        // Only a pod ready by the first send is pre-existing: one that starts while the run sets up (its producer
        // saw it before time zero) is the run's own cold start.
        let first_send = self.first_send.unwrap_or(0);
        for p in self.pods.values_mut() {
            if p.preexisting && at(p.ready).is_some_and(|r| r > first_send) {
                p.preexisting = false;
            }
        }
        // Pods whose creation no producer reported: their Deployment from their name (`<deployment>-<hash>-<x>`,
        // as the ReplicaSet controller names them), their creation unknown.
        let unannounced: Vec<String> = self
            .pod_order
            .iter()
            .filter(|n| !self.pods[*n].announced)
            .cloned()
            .collect();
        for name in unannounced {
            let deployment = name.rsplitn(3, '-').last().unwrap_or(&name).to_string();
            let key = self.pipeline_key(&deployment);
            let p = self.pods.get_mut(&name).expect("a pod");
            p.deployment = deployment;
            p.pipeline = key;
        }
        // The first pod created in each cycle carries the cycle's activation.
        let mut first_of_cycle: HashMap<usize, (u64, &str)> = HashMap::default();
        for name in &self.pod_order {
            let p = &self.pods[name];
            if let Some(c) = p.cycle.filter(|_| p.announced) {
                let e = first_of_cycle.entry(c).or_insert((p.created.t, name));
                if p.created.t < e.0 {
                    *e = (p.created.t, name);
                }
            }
        }
        let mut out = Vec::new();
        for name in &self.pod_order {
            let p = &self.pods[name];
            let created = p.announced.then_some(p.created.t);
            let triggers = self
                .deployments
                .get(&p.pipeline)
                .map(|d| d.triggers.as_slice())
                .unwrap_or(&[]);
            let trigger = created.and_then(|c| {
                triggers[..triggers.partition_point(|&x| x <= c)]
                    .last()
                    .copied()
            });
            let activation = p
                .cycle
                .filter(|c| first_of_cycle.get(c).is_some_and(|f| f.1 == name.as_str()))
                .and_then(|c| {
                    self.cycles[c]
                        .first_message_us
                        .map(|m| self.cycles[c].start_us.saturating_sub(m))
                });
            let diff = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (Some(a), Some(b)) if b >= a => Some(b - a),
                _ => None,
            };
            let (scheduled, pulled, started, loaded, ready) = (
                at(p.scheduled),
                at(p.pulled),
                at(p.started),
                at(p.loaded),
                at(p.ready),
            );
            let mut phases = PodPhases::default();
            if let Some(pull) = p.pull_us {
                series.record("kubelet.image_pull", &p.pipeline, None, pull);
            }
            if !p.preexisting {
                let model_end = loaded.or(ready);
                let origin = match (activation, trigger) {
                    (Some(act), Some(trig)) => Some(trig.saturating_sub(act)),
                    (None, trig) => trig,
                    (Some(_), None) => None,
                };
                // The worker's own measure of its model load is the sharpest, and the only one when the
                // container started before the run's time zero.
                let model_load = match (loaded, p.load_duration) {
                    (Some(_), Some(d)) => Some(d),
                    _ => diff(started, model_end),
                };
                let values = [
                    ("activation", activation),
                    ("pod_creation", diff(trigger, created)),
                    ("node_provisioning", diff(created, scheduled)),
                    // From the kubelet's first pull attempt (failed attempts and back-off included); a cached
                    // image took none. Without a `Pulling` signal, from the scheduling.
                    (
                        "image_pull",
                        diff(
                            at(p.pulling).or(if p.cached == Some(true) {
                                pulled
                            } else {
                                scheduled
                            }),
                            pulled,
                        ),
                    ),
                    ("container_start", diff(pulled, started)),
                    ("model_load", model_load),
                    (
                        "ready",
                        if loaded.is_some() {
                            diff(loaded, ready)
                        } else {
                            None
                        },
                    ),
                    ("first_message", diff(ready, p.first_done)),
                    ("total", diff(origin, ready)),
                ];
                for (i, (k, v)) in values.into_iter().enumerate() {
                    if let Some(v) = v {
                        series.record(COLD_START_METRICS[i], &p.pipeline, None, v);
                    }
                    debug_assert_eq!(POD_PHASES[i], k);
                    phases.values[i] = v;
                    phases.known = true;
                }
            }
            out.push(PodColdStart {
                pod: name.clone(),
                deployment: p.deployment.clone(),
                pipeline: self
                    .identity
                    .knows_deployment(&p.pipeline)
                    .map(|i| self.identity.stream_name(i).to_string()),
                sources: SOURCES
                    .into_iter()
                    .filter(|s| p.sources & source_bit(*s) != 0)
                    .collect(),
                node: p.node.clone(),
                preexisting: p.preexisting,
                created_us: created,
                ready_us: ready,
                image_cached: p.cached,
                scheduled_us: scheduled,
                deleted_us: at(p.deleted),
                restarts: p.restarts,
                problems: Vec::new(),
                scale_up_group: p.node.as_deref().and_then(|n| {
                    self.scale_up_groups
                        .iter()
                        .find(|g| group_of(g, n))
                        .cloned()
                }),
                phases_us: phases,
            });
        }
        out
    }

    /// The reported problems, per pod and for the run (phase order, then most frequent first).
    fn problems(&self, pods: &mut [PodColdStart]) -> Vec<Problem> {
        let order = |phase: &str| POD_PHASES.iter().position(|p| *p == phase).unwrap_or(99);
        let mut by_pod: HashMap<&str, BTreeMap<(usize, &str), u32>> = HashMap::default();
        let mut run: ProblemTally = BTreeMap::new();
        for (pod, phase, reason, group, count) in self.problems.values() {
            let r = run
                .entry((order(phase), reason, group.as_deref()))
                .or_default();
            r.0 += count;
            if let Some(p) = pod {
                r.1.insert(p);
                *by_pod
                    .entry(p)
                    .or_default()
                    .entry((order(phase), reason))
                    .or_default() += count;
            }
        }
        for p in pods.iter_mut() {
            if let Some(found) = by_pod.get(p.pod.as_str()) {
                p.problems = found
                    .iter()
                    .map(|((o, reason), count)| Problem {
                        phase: POD_PHASES.get(*o).unwrap_or(&"other").to_string(),
                        reason: reason.to_string(),
                        node_group: None,
                        count: *count,
                        pods: 1,
                    })
                    .collect();
            }
        }
        run.into_iter()
            .map(|((o, reason, group), (count, pods))| Problem {
                phase: POD_PHASES.get(o).unwrap_or(&"other").to_string(),
                reason: reason.to_string(),
                node_group: group.map(str::to_string),
                count,
                pods: pods.len() as u32,
            })
            .collect()
    }

    fn cost(&mut self, end: u64, price: f64, observed: bool, series: &mut SeriesSet) -> Cost {
        let mut c = Cost::default();
        let mut timeline: Vec<(u64, i32)> = Vec::new();
        for name in &self.node_order {
            let n = &self.nodes[name];
            let until = n.deleted.unwrap_or(end);
            let secs = until.saturating_sub(n.created) as f64 / 1e6;
            c.node_seconds += secs;
            c.gpu_seconds += secs * n.gpus as f64;
            timeline.push((n.created, 1));
            timeline.push((until, -1));
            if !n.preexisting {
                c.nodes_created += 1;
                if let (Some(trig), Some(ready)) = (n.trigger, n.ready) {
                    series.record("node.boot", "gpu-pool", None, ready.saturating_sub(trig));
                    series.record(
                        "node.register",
                        "gpu-pool",
                        None,
                        n.created.saturating_sub(trig),
                    );
                    series.record(
                        "node.ready",
                        "gpu-pool",
                        None,
                        ready.saturating_sub(n.created),
                    );
                }
                if let (Some(ready), Some(gpu)) = (n.ready, n.gpu) {
                    series.record(
                        "node.gpu_driver",
                        "gpu-pool",
                        None,
                        gpu.saturating_sub(ready),
                    );
                }
            }
        }
        timeline.sort();
        let mut live = 0i32;
        for (_, d) in timeline {
            live += d;
            c.peak_nodes = c.peak_nodes.max(live as u32);
        }
        c.gpu_busy_seconds = self.gpu_busy_us as f64 / 1e6;
        c.gpu_idle_seconds = (c.gpu_seconds - c.gpu_busy_seconds).max(0.0);
        c.cost_usd = c.gpu_seconds / 3600.0 * price;
        for (i, cy) in self.cycles.iter_mut().enumerate() {
            let spans = &self.cycle_nodes[i];
            let mut all_left = !spans.is_empty();
            let mut last_left = 0;
            let (mut gpu_seconds, mut node_seconds) = (0.0, 0.0);
            // A node the run never saw has an unknown GPU count: the cycle's cost is unknown, not guessed.
            let mut known = observed;
            for (name, from, until) in spans {
                let secs = until.unwrap_or(end).saturating_sub(*from) as f64 / 1e6;
                node_seconds += secs;
                match self.nodes.get(name) {
                    Some(n) => gpu_seconds += secs * n.gpus as f64,
                    None => known = false,
                }
                match until {
                    Some(u) => last_left = last_left.max(*u),
                    None => all_left = false,
                }
            }
            if known {
                cy.node_seconds = Some(node_seconds);
                cy.cost_usd = Some(gpu_seconds / 3600.0 * price);
                cy.gpu_idle_seconds = Some((gpu_seconds - cy.gpu_busy_seconds).max(0.0));
            }
            if all_left && let Some(last) = cy.last_completion_us {
                cy.to_zero_nodes_us = Some(last_left.saturating_sub(last));
            }
        }
        c
    }
}
