//! Schedule generation rate: how fast a plan becomes its list of intended instants.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("schedule");
    let diurnal =
        imagen_load::plan::workload::load(Path::new("workloads/diurnal.toml"), &[]).unwrap();
    let n = imagen_load::plan::schedule::build(&diurnal).len() as u64;
    g.throughput(Throughput::Elements(n));
    g.bench_function("diurnal_day_poisson_sine", |b| {
        b.iter(|| imagen_load::plan::schedule::build(&diurnal))
    });
    let constant = imagen_load::plan::workload::parse(
        Path::new("bench.toml"),
        "[[stream]]\nname = \"s\"\n[[stream.phase]]\nkind = \"constant\"\nrate = \"10000/s\"\nduration = \"60s\"\n",
    )
    .unwrap();
    g.throughput(Throughput::Elements(600_000));
    g.bench_function("constant_10k_per_s_for_60s", |b| {
        b.iter(|| imagen_load::plan::schedule::build(&constant))
    });
    g.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(20); targets = bench }
criterion_main!(benches);
