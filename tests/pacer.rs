//! The pacer is open loop: a target that stalls never moves the schedule, and the stall shows up as publish
//! delay measured from the intended instant. The tolerances are deliberately loose (hundreds of ms): this test
//! checks the behaviour, the benchmark measures the accuracy.

use crate::common::plan_from;
use imagen_load::event::EventKind;
use imagen_load::plan::schedule;
use imagen_load::run::runner::{OutMessage, Target};
use std::sync::Arc;
use std::time::Duration;

struct StallOnce;

impl Target for StallOnce {
    // Not `async fn`: the answer must not borrow the target (it is awaited after the pacer moved on).
    #[allow(clippy::manual_async_fn)]
    fn send(
        _this: &Arc<Self>,
        msg: OutMessage,
    ) -> impl std::future::Future<Output = Result<Option<String>, String>> + Send + 'static {
        async move {
            if msg.id.seq == 2 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(Some(format!("srv-{}", msg.id.seq)))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalling_target_does_not_move_the_schedule() {
    // 20 messages, 50 ms apart: a closed-loop sender would push everything after message 2 back by a second.
    let plan = plan_from(
        "[[stream]]\nname = \"s\"\npayload = '{\"n\": {{seq}}}'\n[[stream.phase]]\nkind = \"constant\"\nrate = \"20/s\"\nduration = \"1s\"\n",
    );
    // The schedule generated as it is sent, as a live run does.
    let items = schedule::Items::Plan(None);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stats =
        imagen_load::run::runner::run(&plan, "test-run", items, Arc::new(StallOnce), tx).await;
    assert_eq!(stats.sent, 20);
    let mut published = Vec::new();
    let mut intended = std::collections::HashMap::new();
    while let Ok(e) = rx.try_recv() {
        match e.kind {
            EventKind::Scheduled { id, intended_us } => {
                intended.insert(id.seq, intended_us);
            }
            EventKind::Published {
                id,
                lateness_us,
                server_id,
            } => published.push((id.seq, e.t_us, lateness_us, server_id)),
            _ => {}
        }
    }
    assert_eq!(published.len(), 20);
    for (seq, t, lateness, server_id) in &published {
        let want = intended[seq];
        assert_eq!(
            want,
            seq * 50_000,
            "intended instants come from the schedule"
        );
        assert!(
            *lateness < 300_000,
            "message {seq} was released {lateness} µs late"
        );
        assert_eq!(server_id.as_deref(), Some(format!("srv-{seq}").as_str()));
        if *seq == 2 {
            assert!(
                t - want >= 1_000_000,
                "the stall is recorded as publish delay: {} µs",
                t - want
            );
        } else {
            assert!(
                t - want < 300_000,
                "message {seq} published {} µs after its instant",
                t - want
            );
        }
    }
    // Messages after the stalled one were published before it finished.
    let stalled_done = published.iter().find(|p| p.0 == 2).unwrap().1;
    assert!(
        published
            .iter()
            .filter(|p| p.0 > 2 && p.1 < stalled_done)
            .count()
            >= 10
    );
}

#[tokio::test]
async fn http_steps_are_called_and_recorded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = sock.read(&mut buf).await.unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        sock.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        request
    });
    let plan = plan_from(&format!(
        "[[stream]]\nname = \"s\"\n[[stream.phase]]\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/warmup\"\nbody = \"go\"\n[stream.phase.headers]\nx-test = \"1\"\n"
    ));
    let items = schedule::Items::List(schedule::build(&plan));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    imagen_load::run::runner::run(
        &plan,
        "r",
        items,
        Arc::new(imagen_load::run::runner::NoopTarget),
        tx,
    )
    .await;
    let request = server.await.unwrap();
    assert!(request.starts_with("POST /warmup"), "{request}");
    assert!(request.to_lowercase().contains("x-test: 1"));
    let mut calls = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let EventKind::HttpCalled {
            status, simulated, ..
        } = e.kind
        {
            calls.push((status, simulated));
        }
    }
    assert_eq!(calls, vec![(Some(202), false)]);
}

/// Records the nice value and the scheduling policy of the thread that hands it each message: the pacer's.
struct NiceOfSender(std::sync::Mutex<Vec<(i32, String)>>);

impl Target for NiceOfSender {
    fn send(
        this: &Arc<Self>,
        _msg: OutMessage,
    ) -> impl std::future::Future<Output = Result<Option<String>, String>> + Send + 'static {
        this.0.lock().unwrap().push((
            imagen_load::run::runner::current_nice(),
            policy_of_this_thread(),
        ));
        std::future::ready(Ok(None))
    }
}

#[cfg(target_os = "linux")]
fn policy_of_this_thread() -> String {
    format!(
        "{:?}",
        thread_priority::unix::thread_schedule_policy().unwrap()
    )
}
#[cfg(not(target_os = "linux"))]
fn policy_of_this_thread() -> String {
    String::new()
}

/// A live run's runtime threads are lowered by RUNTIME_NICE, once (a thread they start is not lowered again), and
/// the pacer, started by the thread that blocks on the runtime, keeps that thread's priority: a thread inherits
/// its creator's nice value, so a pacer started from a runtime thread would be as low as they are.
#[cfg(target_os = "linux")]
#[test]
fn the_pacer_keeps_its_priority_above_the_lowered_runtime_threads() {
    use imagen_load::run::runner::{RUNTIME_NICE, current_nice, run_from, yield_to_the_pacer};
    let base = current_nice();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || yield_to_the_pacer(base))
        .build()
        .unwrap();
    let plan = plan_from(
        "[[stream]]\nname = \"s\"\n[[stream.phase]]\nkind = \"constant\"\nrate = \"100/s\"\nduration = \"100ms\"\n",
    );
    let target = Arc::new(NiceOfSender(Default::default()));
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let pacing = {
        let _context = rt.enter();
        run_from(
            tokio::time::Instant::now(),
            None,
            &plan,
            "r",
            schedule::Items::Plan(None),
            target.clone(),
            tx,
        )
    };
    // Awaited on a runtime thread, as a live run does: the pacer's thread was started already, by this one.
    let stats = rt.block_on(async { tokio::spawn(pacing).await.unwrap() });
    assert_eq!(stats.sent, 10);
    let want_low = (base + RUNTIME_NICE).min(19);
    let (worker, blocking) = rt.block_on(async {
        let worker = tokio::spawn(async { current_nice() }).await.unwrap();
        // A blocking-pool thread is started by a lowered worker: lowered once, not twice.
        let blocking = tokio::task::spawn_blocking(current_nice).await.unwrap();
        (worker, blocking)
    });
    assert_eq!((worker, blocking), (want_low, want_low));
    let seen = target.0.lock().unwrap().clone();
    let nice: Vec<i32> = seen.iter().map(|(n, _)| *n).collect();
    assert_eq!(nice, vec![base; 10], "the pacer's nice value at each send");
    // Real-time where this process may make a thread so (a scratch thread asks the kernel the same), else normal.
    let may = std::thread::spawn(imagen_load::run::runner::pacer_realtime)
        .join()
        .unwrap()
        .is_ok();
    let policies: Vec<&str> = seen.iter().map(|(_, p)| p.as_str()).collect();
    let want = if may {
        "Realtime(Fifo)"
    } else {
        "Normal(Other)"
    };
    assert_eq!(policies, vec![want; 10], "the pacer's policy at each send");
}
