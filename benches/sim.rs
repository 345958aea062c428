//! The simulator on a simulated day of the four pipelines (~100,000 messages, workloads/diurnal.toml):
//! wall time for the whole day, and simulated events per second.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;

fn bench(c: &mut Criterion) {
    let plan = imagen_load::plan::workload::load(Path::new("workloads/diurnal.toml"), &[]).unwrap();
    let items = imagen_load::plan::schedule::iter(&plan).count();
    let events = imagen_load::run::sim::simulate(&plan, |_| {}).events;
    let mut g = c.benchmark_group("sim");
    g.throughput(Throughput::Elements(events));
    g.bench_function(format!("diurnal_day_{items}_items_{events}_events"), |b| {
        b.iter(|| imagen_load::run::sim::simulate(&plan, |e| drop(std::hint::black_box(e))))
    });
    g.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(10); targets = bench }
criterion_main!(benches);
