//! `events.jsonl`: the run's append-only log. The writer flushes at least once a second and on finish (and its
//! `Drop` flushes too, so an unwinding panic keeps what was written); the reader accepts a log cut mid-line by a
//! crash, skips corrupt lines, and says how much it dropped.

use crate::event::Event;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create event log {path}: {error}")]
    CreateFailed { path: PathBuf, error: io::Error },
    #[error("cannot write event log {path}: {error}")]
    WriteFailed { path: PathBuf, error: io::Error },
    #[error(
        "cannot read event log {path}: {error}\n    fix: point at a results folder that has events.jsonl"
    )]
    ReadFailed { path: PathBuf, error: io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub struct EventLogWriter {
    path: PathBuf,
    out: BufWriter<File>,
    last_flush: Instant,
    written: u64,
    line: Vec<u8>,
}

impl EventLogWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|error| Error::CreateFailed {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(EventLogWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, file),
            last_flush: Instant::now(),
            written: 0,
            line: Vec::with_capacity(256),
        })
    }

    pub fn append(&mut self, event: &Event) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, event).expect("events serialize");
        self.line.push(b'\n');
        self.out
            .write_all(&self.line)
            .map_err(|error| Error::WriteFailed {
                path: self.path.clone(),
                error,
            })?;
        self.written += 1;
        // Checking the clock on every event is cheap next to serialising it, but not free: look every 256.
        if self.written.is_multiple_of(256) && self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Flushes if a second has passed since the last flush; for producers that go quiet between events.
    pub fn tick(&mut self) -> Result<()> {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()
        } else {
            Ok(())
        }
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|error| Error::WriteFailed {
            path: self.path.clone(),
            error,
        })?;
        self.last_flush = Instant::now();
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|error| Error::WriteFailed {
                path: self.path.clone(),
                error,
            })
    }
}

impl Drop for EventLogWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// What reading a log found besides the events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadReport {
    pub lines: u64,
    /// Lines that were not valid events (with the first few line numbers and reasons).
    pub corrupt_lines: u64,
    pub corrupt_examples: Vec<(u64, String)>,
    /// The last line had no newline and did not parse: the log was cut mid-write.
    pub truncated_tail: bool,
}

impl ReadReport {
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.truncated_tail {
            w.push("the event log ends mid-line (the run was cut short); the partial last line was skipped".to_string());
        }
        if self.corrupt_lines > 0 {
            let ex: Vec<String> = self
                .corrupt_examples
                .iter()
                .map(|(n, e)| format!("line {n}: {e}"))
                .collect();
            w.push(format!(
                "{} corrupt line(s) in the event log were skipped ({})",
                self.corrupt_lines,
                ex.join("; ")
            ));
        }
        w
    }
}

/// The longest line read as an event; a longer one is skipped (and counted) without being held in memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Reads a log one event at a time (bad lines are skipped and counted in [`Reader::report`]). Memory is one line
/// (at most [`MAX_LINE_BYTES`]), whatever the log's size.
pub struct Reader<R = BufReader<File>> {
    path: std::path::PathBuf,
    reader: R,
    report: ReadReport,
    buf: Vec<u8>,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|error| Error::ReadFailed {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(Reader::from_reader(
            path,
            BufReader::with_capacity(1 << 16, file),
        ))
    }
}

impl<R: BufRead> Reader<R> {
    /// Reads events from any buffered source; `path` names it in errors.
    pub fn from_reader(path: &Path, reader: R) -> Self {
        Reader {
            path: path.to_path_buf(),
            reader,
            report: ReadReport::default(),
            buf: Vec::with_capacity(512),
        }
    }

    /// The next valid event; `None` at the end of the log.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        loop {
            self.buf.clear();
            let failed = |error| Error::ReadFailed {
                path: self.path.clone(),
                error,
            };
            let n = io::Read::take(&mut self.reader, MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(failed)?;
            if n == 0 {
                return Ok(None);
            }
            self.report.lines += 1;
            if self.buf.len() > MAX_LINE_BYTES && self.buf.last() != Some(&b'\n') {
                // Too long to be an event: skip to the end of the line, a buffer at a time.
                loop {
                    let chunk = self.reader.fill_buf().map_err(failed)?;
                    if chunk.is_empty() {
                        break;
                    }
                    match chunk.iter().position(|b| *b == b'\n') {
                        Some(i) => {
                            self.reader.consume(i + 1);
                            break;
                        }
                        None => {
                            let len = chunk.len();
                            self.reader.consume(len);
                        }
                    }
                }
                self.report.corrupt_lines += 1;
                if self.report.corrupt_examples.len() < 3 {
                    self.report.corrupt_examples.push((
                        self.report.lines,
                        format!("longer than {MAX_LINE_BYTES} bytes"),
                    ));
                }
                continue;
            }
            let complete = self.buf.last() == Some(&b'\n');
            let text = trim_line(&self.buf);
            if text.is_empty() {
                continue;
            }
            match crate::event::wire::parse_line(text) {
                Ok(e) => return Ok(Some(e)),
                Err(_) if !complete => self.report.truncated_tail = true,
                Err(e) => {
                    self.report.corrupt_lines += 1;
                    if self.report.corrupt_examples.len() < 3 {
                        self.report
                            .corrupt_examples
                            .push((self.report.lines, e.to_string()));
                    }
                }
            }
        }
    }

    /// What was skipped so far.
    pub fn report(&self) -> &ReadReport {
        &self.report
    }
}

/// Events per hand-off from [`read_with`]'s parsing thread to the caller's.
const BATCH_EVENTS: usize = 1024;
/// Hand-offs in flight between the two threads: with [`BATCH_EVENTS`], bounds what reading holds beyond the
/// caller's own state to a few thousand events, whatever the log's size.
const BATCHES_IN_FLIGHT: usize = 4;

/// Streams events from a log, calling `f` for each valid one, in the log's order.
///
/// Parsing (about half of `analyze`'s CPU on a large log) runs on a thread of its own while `f` runs on the
/// caller's, so the two overlap on a machine with a second core; they meet through a bounded channel of batches
/// of [`BATCH_EVENTS`] events (at most [`BATCHES_IN_FLIGHT`] waiting). Where no thread can be started, it reads on
/// the caller's. Errors: the log cannot be opened or read (`f` has seen every event before the failure).
pub fn read_with(path: &Path, mut f: impl FnMut(Event)) -> Result<ReadReport> {
    let mut reader = Reader::open(path)?;
    let threaded = std::thread::scope(|scope| -> Option<Result<()>> {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<Event>>(BATCHES_IN_FLIGHT);
        // Drained batches go back to the parser, so their buffers are allocated once.
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<Event>>();
        let reader = &mut reader;
        let parser = std::thread::Builder::new()
            .name("imagen-load-log-reader".into())
            .spawn_scoped(scope, move || -> Result<()> {
                loop {
                    let mut batch = empty_rx
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(BATCH_EVENTS));
                    let mut failed = None;
                    while batch.len() < BATCH_EVENTS {
                        match reader.next_event() {
                            Ok(Some(e)) => batch.push(e),
                            Ok(None) => break,
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    let last = failed.is_some() || batch.len() < BATCH_EVENTS;
                    // What was read before a failure still reaches the caller. The receiver is gone only if the
                    // caller's side unwound; its panic is what matters.
                    if (!batch.is_empty() && full_tx.send(batch).is_err()) || last {
                        return failed.map_or(Ok(()), Err);
                    }
                }
            })
            .ok()?;
        for mut batch in full_rx {
            batch.drain(..).for_each(&mut f);
            let _ = empty_tx.send(batch);
        }
        Some(
            parser
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    });
    match threaded {
        Some(read) => read?,
        None => {
            while let Some(e) = reader.next_event()? {
                f(e);
            }
        }
    }
    Ok(reader.report)
}

fn trim_line(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r' | b' ') {
        end -= 1;
    }
    &buf[..end]
}

/// Reads a whole log into memory.
pub fn read(path: &Path) -> Result<(Vec<Event>, ReadReport)> {
    let mut events = Vec::new();
    let report = read_with(path, |e| events.push(e))?;
    Ok((events, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Source};

    fn ev(t: u64) -> Event {
        Event::new(
            t,
            Source::Harness,
            EventKind::RunFinished {
                interrupted: false,
                reason: None,
            },
        )
    }

    #[test]
    fn round_trip_and_cut_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        let mut w = EventLogWriter::create(&p).unwrap();
        for t in 0..3 {
            w.append(&ev(t)).unwrap();
        }
        w.finish().unwrap();
        // Simulate a crash mid-write: half a line at the end, and one garbage line in the middle.
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.insert_str(0, "not json\n");
        text.push_str("{\"t_us\":9,\"sou");
        std::fs::write(&p, text).unwrap();
        let (events, report) = read(&p).unwrap();
        assert_eq!(events.len(), 3);
        assert!(report.truncated_tail);
        assert_eq!(report.corrupt_lines, 1);
        assert_eq!(report.warnings().len(), 2);
    }

    /// Many batches through the reading thread: every event once, in the log's order, with what was skipped
    /// counted wherever it fell.
    #[test]
    fn a_long_log_is_read_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        let n = (BATCH_EVENTS * (BATCHES_IN_FLIGHT + 3) + 17) as u64;
        let mut w = EventLogWriter::create(&p).unwrap();
        for t in 0..n {
            w.append(&ev(t)).unwrap();
        }
        w.finish().unwrap();
        let mut text = std::fs::read_to_string(&p).unwrap();
        let at = text.len() / 2;
        let at = at + text[at..].find('\n').unwrap() + 1;
        text.insert_str(at, "{\"t_us\":\n");
        std::fs::write(&p, text).unwrap();
        let mut seen = Vec::new();
        let report = read_with(&p, |e| seen.push(e.t_us)).unwrap();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        assert_eq!((report.lines, report.corrupt_lines), (n + 1, 1));
    }

    #[test]
    fn drop_flushes_what_was_appended() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        {
            let mut w = EventLogWriter::create(&p).unwrap();
            w.append(&ev(1)).unwrap();
        }
        assert_eq!(read(&p).unwrap().0.len(), 1);
    }
}
