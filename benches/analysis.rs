//! Analysis of a log of about 1,000,000 events (a busier simulated day), from events in memory.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;

pub fn busy_day() -> imagen_load::plan::workload::Plan {
    let mut src = String::from(
        "[run]\nseed = 9\n[sim.keda]\nmax_replicas = 8\n[sim.autoscaler]\nmax_nodes = 40\n",
    );
    for s in ["upscale", "enhance", "comic", "background-remove"] {
        src.push_str(&format!(
            "[[stream]]\nname = \"{s}\"\n[[stream.phase]]\nkind = \"diurnal\"\nbase = \"44/m\"\namplitude = \"30/m\"\nduration = \"24h\"\narrivals = \"poisson\"\n"
        ));
    }
    imagen_load::plan::workload::parse(Path::new("busy-day.toml"), &src).unwrap()
}

fn bench(c: &mut Criterion) {
    let plan = busy_day();
    let events = imagen_load::run::simulate_events(&plan, "bench");
    let n = events.len() as u64;
    let mut g = c.benchmark_group("analysis");
    g.throughput(Throughput::Elements(n));
    g.bench_function(format!("analyze_{n}_events"), |b| {
        b.iter(|| imagen_load::analysis::analyze(events.clone()))
    });
    g.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(10); targets = bench }
criterion_main!(benches);
