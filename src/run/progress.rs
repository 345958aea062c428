//! The live progress of a real-time run: one updating line on a terminal (indicatif), plain lines every ten
//! seconds otherwise (CI logs), both on stderr so stdout keeps only the report.

use crate::run::collector::Ledger;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    bar: Option<ProgressBar>,
    ledger: Arc<Mutex<Ledger>>,
    origin: Instant,
    planned: Duration,
}

/// One line of counts.
pub fn line(l: &Ledger, elapsed: Duration, planned: Duration) -> String {
    format!(
        "{} / {} · scheduled {} · published {} · completed {} · in flight {} · failed {} · lost {}{}",
        crate::units::human_us(elapsed.as_micros() as u64),
        crate::units::human_us(planned.as_micros() as u64),
        l.scheduled,
        l.published,
        l.completed,
        l.open.len(),
        l.publish_failed,
        l.lost,
        if l.duplicates > 0 {
            format!(" · duplicates {}", l.duplicates)
        } else {
            String::new()
        }
    )
}

impl Progress {
    pub fn start(ledger: Arc<Mutex<Ledger>>, origin: Instant, planned: Duration) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let b = ProgressBar::with_draw_target(
                Some(planned.as_millis().max(1) as u64),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            b.set_style(
                ProgressStyle::with_template("{spinner} [{bar:20}] {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b
        });
        let (l, b) = (ledger.clone(), bar.clone());
        let task = tokio::spawn(async move {
            let every = if tty {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(10)
            };
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let text = line(
                    &l.lock().unwrap_or_else(|p| p.into_inner()),
                    origin.elapsed(),
                    planned,
                );
                match &b {
                    Some(b) => {
                        b.set_position(origin.elapsed().as_millis() as u64);
                        b.set_message(text);
                    }
                    None => crate::note!("{text}"),
                }
            }
        });
        Progress {
            task,
            bar,
            ledger,
            origin,
            planned,
        }
    }

    /// Stops updating and leaves the final counts on screen.
    pub fn finish(self) {
        self.task.abort();
        let text = line(
            &self.ledger.lock().unwrap_or_else(|p| p.into_inner()),
            self.origin.elapsed(),
            self.planned,
        );
        match self.bar {
            Some(b) => b.finish_with_message(text),
            None => crate::note!("{text}"),
        }
    }
}
