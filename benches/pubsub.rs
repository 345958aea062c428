//! Raw publish throughput of Google's official publisher into the built-in emulator on loopback, without the
//! pacer, the event log or the tracker: the ceiling a `run` into the emulator can reach on this machine.
//!
//!   cargo bench --bench pubsub -- [MESSAGES] [PAYLOAD_BYTES]
//!
//! With `PUBSUB_EMULATOR_HOST` set, it publishes into that emulator instead of one in its own process, so that
//! the process's CPU time (`/usr/bin/time`) is the official client's alone: the floor of `run`'s CPU per message.

use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::model::Message;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let size: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let external = std::env::var("PUBSUB_EMULATOR_HOST").ok();
        let emu = match external {
            Some(_) => None,
            None => Some(
                imagen_load::observe::emulator::start(([127, 0, 0, 1], 0).into())
                    .await
                    .unwrap(),
            ),
        };
        let endpoint = external.unwrap_or_else(|| emu.as_ref().unwrap().endpoint());
        let conn = imagen_load::observe::pubsub::Connection::emulator(&endpoint, "bench");
        conn.ensure_topic("t").await.unwrap();
        conn.ensure_subscription("s", "t", 60).await.unwrap();
        let publisher: Publisher = conn
            .publisher("t", Duration::from_millis(5), Duration::from_secs(30))
            .await
            .unwrap();
        let payload = bytes::Bytes::from(vec![b'x'; size]);
        let started = Instant::now();
        let mut pending = Vec::with_capacity(n);
        for i in 0..n {
            pending.push(publisher.publish(
                Message::new()
                    .set_data(payload.clone())
                    .set_attributes([("imagen_load_id", i.to_string())]),
            ));
        }
        let queued = started.elapsed();
        for p in pending {
            p.await.unwrap();
        }
        let took = started.elapsed();
        println!(
            "official publisher → {}: {n} messages of {size} B in {:.2}s = {:.0} msg/s (queued in {:.2}s)",
            if emu.is_some() {
                "built-in emulator (this process)".to_string()
            } else {
                endpoint.clone()
            },
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            queued.as_secs_f64()
        );
        // The same, one task per message as the pacer sends them.
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let (publisher, payload) = (publisher.clone(), payload.clone());
            tasks.spawn(async move {
                publisher
                    .publish(
                        Message::new()
                            .set_data(payload)
                            .set_attributes([("imagen_load_id", i.to_string())]),
                    )
                    .await
                    .unwrap();
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
        let took = started.elapsed();
        println!(
            "  one task per message: {:.2}s = {:.0} msg/s",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
        if let Some(emu) = emu {
            emu.stop().await;
        }
    });
}
