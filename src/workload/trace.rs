//! Trace files for the `trace` phase: timestamps to replay, as CSV (a column, `t` by default, else the first) or
//! JSONL (a field, `t` by default). Values are seconds (a number; Unix time works too) or durations (`1.5s`).
//! Offsets are taken from the first row, must not go backwards, and are multiplied by the time scale.

use crate::units::{Micros, parse_duration};
use std::path::Path;

/// The most rows one trace may hold.
pub const MAX_TRACE_ROWS: usize = 50_000_000;

pub fn load(path: &Path, column: Option<&str>, time_scale: f64) -> Result<Vec<Micros>, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot open trace `{}`: {e}", path.display()))?;
    let is_jsonl = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "ndjson" | "json")
    );
    let raw = if is_jsonl {
        read_jsonl(path, file, column.unwrap_or("t"))?
    } else {
        read_csv(path, file, column)?
    };
    if raw.is_empty() {
        return Err(format!("trace `{}` has no rows", path.display()));
    }
    let first = raw[0].1;
    let mut out = Vec::with_capacity(raw.len());
    let mut prev = first;
    for (line, t) in raw {
        if t < prev {
            return Err(format!(
                "trace `{}` line {line}: {t} comes before the previous row's {prev}; rows must be in time order",
                path.display()
            ));
        }
        prev = t;
        out.push(Micros::from_secs_f64((t - first) * time_scale));
    }
    Ok(out)
}

fn value_seconds(text: &str) -> Option<f64> {
    let t = text.trim();
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .or_else(|| parse_duration(t).ok().map(Micros::as_secs_f64))
}

fn read_csv(
    path: &Path,
    file: std::fs::File,
    column: Option<&str>,
) -> Result<Vec<(usize, f64)>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(crate::limits::LineLimit::new(
            std::io::BufReader::new(file),
            crate::limits::MAX_LINE_BYTES,
        ));
    let mut out = Vec::new();
    let mut col = 0usize;
    for (i, rec) in reader.records().enumerate() {
        let line = i + 1;
        let rec = rec.map_err(|e| format!("trace `{}` line {line}: {e}", path.display()))?;
        if i == 0 {
            // A header row is one whose chosen cell is not a time.
            let wanted = column.unwrap_or("t");
            if let Some(pos) = rec.iter().position(|c| c.trim() == wanted) {
                col = pos;
                continue;
            }
            if column.is_some() {
                return Err(format!(
                    "trace `{}` has no column `{wanted}` in its header",
                    path.display()
                ));
            }
            if rec.get(0).and_then(value_seconds).is_none() {
                continue; // a header without a `t` column: use the first column
            }
        }
        let cell = rec.get(col).unwrap_or("");
        let t = value_seconds(cell).ok_or_else(|| format!("trace `{}` line {line}: `{cell}` is not a time (seconds or a duration like `1.5s`)", path.display()))?;
        out.push((line, t));
        if out.len() > MAX_TRACE_ROWS {
            return Err(format!(
                "trace `{}` has more than {MAX_TRACE_ROWS} rows",
                path.display()
            ));
        }
    }
    Ok(out)
}

fn read_jsonl(path: &Path, file: std::fs::File, field: &str) -> Result<Vec<(usize, f64)>, String> {
    use std::io::BufRead;
    let mut out = Vec::new();
    let reader =
        crate::limits::LineLimit::new(std::io::BufReader::new(file), crate::limits::MAX_LINE_BYTES);
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| format!("trace `{}` line {n}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| format!("trace `{}` line {n}: not JSON ({e})", path.display()))?;
        let t = match v.get(field) {
            Some(serde_json::Value::Number(x)) => x.as_f64(),
            Some(serde_json::Value::String(s)) => value_seconds(s),
            _ => None,
        }
        .ok_or_else(|| {
            format!(
                "trace `{}` line {n}: no time in field `{field}`",
                path.display()
            )
        })?;
        out.push((n, t));
        if out.len() > MAX_TRACE_ROWS {
            return Err(format!(
                "trace `{}` has more than {MAX_TRACE_ROWS} rows",
                path.display()
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_header_and_scale() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "id,t\na,100\nb,100.5\nc,102\n").unwrap();
        let got = load(&p, None, 0.5).unwrap();
        assert_eq!(got, vec![Micros(0), Micros(250_000), Micros(1_000_000)]);
    }

    #[test]
    fn out_of_order_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        std::fs::write(&p, "{\"t\": 1}\n{\"t\": 3}\n{\"t\": 2}\n").unwrap();
        let e = load(&p, None, 1.0).unwrap_err();
        assert!(e.contains("line 3"), "{e}");
    }
}
