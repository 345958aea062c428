//! Reading untrusted input without trusting its size: text files read whole only up to a limit (a huge or
//! endless file is refused after at most `limit + 1` bytes), and line-oriented files streamed with a cap on
//! the length of one line, so no single record can take unbounded memory.

use std::io::{self, BufRead, Read};
use std::path::Path;

/// The largest text file (workload, gates file, simulator profile) read whole.
pub const MAX_TEXT_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The longest line of a streamed file (trace rows).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Reads a UTF-8 text file of at most `limit` bytes. A larger (or endless) one is an `InvalidData` error saying
/// so, after reading at most `limit + 1` bytes.
pub fn read_text(path: &Path, limit: u64) -> io::Result<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the limit of {limit} bytes"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text ({e})")))
}

/// A reader that fails once a line runs longer than `max` bytes (the csv and line readers would otherwise buffer
/// a newline-free file whole).
pub struct LineLimit<R> {
    inner: R,
    max: usize,
    line: usize,
}

impl<R> LineLimit<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineLimit {
            inner,
            max,
            line: 0,
        }
    }

    fn count(&mut self, bytes: &[u8]) -> io::Result<()> {
        match bytes.iter().rposition(|b| *b == b'\n') {
            Some(i) => self.line = bytes.len() - i - 1,
            None => self.line += bytes.len(),
        }
        if self.line > self.max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line is longer than {} bytes", self.max),
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count(&buf[..n])?;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineLimit<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.line > self.max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line is longer than {} bytes", self.max),
            ));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // Counted here, where bytes are taken; an overlong line shows at the next fill.
        if let Ok(buf) = self.inner.fill_buf() {
            let taken = buf[..amt.min(buf.len())].to_vec();
            let _ = self.count(&taken);
        }
        self.inner.consume(amt)
    }
}

/// The most messages one run may ask for; larger workloads are refused before anything is generated.
pub const MAX_MESSAGES_PER_RUN: u64 = 50_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold() {
        let dir = std::env::temp_dir().join(format!("imagen-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t.txt");
        std::fs::write(&f, "x".repeat(100)).unwrap();
        assert_eq!(read_text(&f, 100).unwrap().len(), 100);
        assert!(
            read_text(&f, 99)
                .unwrap_err()
                .to_string()
                .contains("limit of 99")
        );
        let mut r = LineLimit::new(io::Cursor::new("ab\ncd\n".repeat(10)), 3);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        let mut long = LineLimit::new(io::Cursor::new("a".repeat(100)), 10);
        assert!(long.read_to_string(&mut String::new()).is_err());
        // Through BufRead too (line readers), with a buffer smaller than the line.
        let long = LineLimit::new(
            io::BufReader::with_capacity(4, io::Cursor::new("a".repeat(100) + "\n")),
            10,
        );
        assert!(long.lines().next().unwrap().is_err());
        let ok = LineLimit::new(
            io::BufReader::with_capacity(4, io::Cursor::new("abc\nde\n")),
            10,
        );
        assert_eq!(ok.lines().count(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
