//! Stopping a run early: [`Stop`] (a flag with its reason, set by a signal or a failed `abort_on_fail`
//! threshold) and the process's signals ([`Signals`], [`stop_on_signal`] for runs, [`shutdown_signal`] for the
//! services).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// SIGINT's number: a run stopped by Ctrl-C exits with 128 + 2.
pub const SIGINT: i32 = 2;
/// SIGTERM's number: a run stopped by `kill` (or Kubernetes ending its pod) exits with 128 + 15.
pub const SIGTERM: i32 = 15;

/// A request to stop a run early, with its reason (a signal, or the threshold that aborted it). Shared between the
/// run loop and whoever may ask it to stop.
#[derive(Debug, Default)]
pub struct Stop {
    flag: AtomicBool,
    reason: Mutex<Option<String>>,
    /// The signal that asked for the stop (2 for SIGINT, 15 for SIGTERM), 0 for none.
    signal: std::sync::atomic::AtomicI32,
}

impl Stop {
    pub fn request(&self, reason: impl Into<String>) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        r.get_or_insert_with(|| reason.into());
        self.flag.store(true, Ordering::Relaxed);
    }
    /// A stop asked for by a signal (its number): the run ends with the shell's code for it, 128 + number.
    pub fn request_signal(&self, signal: i32, reason: impl Into<String>) {
        let _ = self
            .signal
            .compare_exchange(0, signal, Ordering::Relaxed, Ordering::Relaxed);
        self.request(reason);
    }
    /// The signal that stopped the run, if one did.
    pub fn signal(&self) -> Option<i32> {
        let s = self.signal.load(Ordering::Relaxed);
        (s != 0).then_some(s)
    }
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
    pub fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "stopped".into())
    }
}

/// The process's SIGINT (Ctrl-C) and SIGTERM (`kill`, Kubernetes ending a pod) as one stream of signal numbers;
/// off unix, Ctrl-C alone. Every command that stops on a signal listens through this.
pub struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening (needs a tokio runtime with I/O). Errors: the handlers cannot be installed.
    pub fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal's number ([`SIGINT`] or [`SIGTERM`]).
    pub async fn next(&mut self) -> i32 {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => SIGINT,
                _ = self.term.recv() => SIGTERM,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            SIGINT
        }
    }
}

/// Resolves on the first Ctrl-C or SIGTERM (for the services: the emulator, the worker, `watch`). If no handler
/// can be installed, it never resolves and the signal's default action ends the process.
pub async fn shutdown_signal() {
    match Signals::new() {
        Ok(mut s) => {
            s.next().await;
        }
        Err(e) => {
            tracing::warn!("no signal handling: {e}");
            std::future::pending::<()>().await;
        }
    }
}

/// A flag set by the first Ctrl-C (SIGINT) or SIGTERM, so a run can stop cleanly and still write its results.
/// A second signal is left to its default action (terminate at once); `events.jsonl` is then still readable.
pub fn stop_on_signal() -> Arc<Stop> {
    let stop = Arc::new(Stop::default());
    let flag = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                // Once tokio handles a signal it keeps handling it, so the second one must be acted on here: it
                // ends the process at once, with the shell's code for it (the log is flushed every second).
                let Ok(mut signals) = Signals::new() else {
                    return;
                };
                let first = signals.next().await;
                crate::note!(
                    "stopping: writing partial results (press Ctrl-C again to abort at once)"
                );
                flag.request_signal(first, "interrupted by a signal (Ctrl-C or SIGTERM)");
                let second = signals.next().await;
                crate::note!(
                    "aborted by a second signal; the results folder holds what was logged"
                );
                std::process::exit(128 + second);
            });
        });
    if let Err(e) = spawned {
        tracing::warn!("no signal handling for this run: {e}");
    }
    stop
}
