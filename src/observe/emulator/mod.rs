//! The built-in Pub/Sub emulator: an in-memory Pub/Sub that Google's official clients talk to.
//!
//! One port serves
//! - gRPC (`google.pubsub.v1.Publisher` and `.Subscriber`): topic and subscription admin, `Publish`, `Pull`,
//!   `StreamingPull`, `Acknowledge`, `ModifyAckDeadline` — what the official publisher and subscriber use;
//! - REST (`/v1/projects/...`): the same admin calls, as the official Rust admin clients make them over HTTP/JSON,
//!   plus `:publish`, so `curl` can feed it;
//! - `GET /backlog/{subscription}`: the number of undelivered messages as JSON, for KEDA's `metrics-api` trigger
//!   (Google's emulator has no Cloud Monitoring metric to scale on);
//! - `GET /healthz`.
//!
//! Ack deadlines expire and leases are redelivered with the next delivery attempt; a closed `StreamingPull`
//! stream gives its leases back at once. State lives in memory and is gone when the emulator stops, as with
//! Google's emulator.

mod server;
pub mod state;

pub use state::{BacklogCounts, PubsubError, State};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The shared emulator: its state behind one lock (each operation is short).
#[derive(Default)]
pub struct Emulator {
    state: Mutex<State>,
}

impl Emulator {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Runs `f` on the state. Never held across an await.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(
        "cannot listen on {addr}: {source}\n    fix: choose another --port, or stop what is using it"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running emulator. Dropping the handle leaves it running; [`Handle::stop`] ends it.
pub struct Handle {
    pub addr: SocketAddr,
    pub emulator: Arc<Emulator>,
    task: JoinHandle<()>,
    expiry: JoinHandle<()>,
}

impl Handle {
    /// `http://ADDR`, what the official clients take as their endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops at once, closing every connection (as a killed process would). The state is dropped with it.
    pub async fn stop(self) {
        self.task.abort();
        self.expiry.abort();
        let _ = self.task.await;
        let _ = self.expiry.await;
    }
}

/// Starts an emulator on `addr` (port 0 picks a free port) in the current tokio runtime.
pub async fn start(addr: SocketAddr) -> Result<Handle, EmulatorError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind { addr, source })?;
    let emulator = Emulator::new();
    let expiry = {
        let emulator = emulator.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = tokio::time::Instant::now();
                emulator.with(|s| s.expire_all(now));
            }
        })
    };
    let task = tokio::spawn(server::serve(listener, emulator.clone()));
    tracing::info!("Pub/Sub emulator listening on {addr}");
    Ok(Handle {
        addr,
        emulator,
        task,
        expiry,
    })
}
