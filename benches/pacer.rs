//! Pacer accuracy: the real-time run loop against a no-op target at 10,000 messages/s for 10 s. Prints the
//! distribution of |actual − intended| release time. Not a criterion bench: it is one long real-time run.
use std::path::Path;
use std::sync::Arc;

fn main() {
    let rate = std::env::var("PACER_RATE").unwrap_or_else(|_| "10000".into());
    let secs = std::env::var("PACER_SECS").unwrap_or_else(|_| "10".into());
    let plan = imagen_load::plan::workload::parse(
        Path::new("pacer.toml"),
        &format!("[[stream]]\nname = \"s\"\n[[stream.phase]]\nkind = \"constant\"\nrate = \"{rate}/s\"\nduration = \"{secs}s\"\n"),
    )
    .unwrap();
    let items = imagen_load::plan::schedule::build(&plan);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let drain = std::thread::spawn(move || {
        let mut n = 0u64;
        while rx.blocking_recv().is_some() {
            n += 1;
        }
        n
    });
    let stats = rt.block_on(imagen_load::run::runner::run(
        &plan,
        "bench",
        imagen_load::plan::schedule::Items::List(items.clone()),
        Arc::new(imagen_load::run::runner::NoopTarget),
        tx,
    ));
    let events = drain.join().unwrap();
    let h = &stats.lateness_us;
    println!(
        "pacer: {} messages at {rate}/s for {secs}s, {events} events; |actual - intended| µs: p50 {} p90 {} p99 {} p99.9 {} max {}",
        stats.sent,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
    println!(
        "pacer: p99 under 1 ms: {}",
        h.value_at_quantile(0.99) < 1_000
    );
}
