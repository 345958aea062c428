//! Trace files for the `trace` phase: timestamps to replay, as CSV (a column, `t` by default, else the first) or
//! JSONL (a field, `t` by default). Values are seconds (a number; Unix time works too), durations (`1.5s`), or
//! wall-clock times: RFC 3339 with its offset (`2023-11-16T18:15:46.68Z`, `...+01:00`) or a civil date and time
//! without one (`2023-11-16 18:15:46.6805900`, as in Azure's public LLM inference traces), read as UTC. Offsets are
//! taken from the first row, must not go backwards, and are multiplied by the time scale. One trace holds one kind
//! of value.

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
    let Raw { rows, column } = raw;
    let Some(&(_, first)) = rows.first() else {
        return Err(format!("trace `{}` has no rows", path.display()));
    };
    let mut out = Vec::with_capacity(rows.len());
    let mut prev = first;
    for (line, t) in rows {
        if t.kind() != first.kind() {
            return Err(format!(
                "trace `{}` line {line}: {} here, but the first row holds {}; fix: write every row's time the \
                 same way",
                path.display(),
                t.kind(),
                first.kind()
            ));
        }
        if t.seconds() < prev.seconds() {
            return Err(format!(
                "trace `{}` line {line}: {} comes before the previous row's {}; rows must be in time order\n    \
                 fix: sort the file by {column}, e.g. {}",
                path.display(),
                t.text(),
                prev.text(),
                sort_command(path, &column, first.kind())
            ));
        }
        prev = t;
        out.push(Micros::from_secs_f64(
            (t.seconds() - first.seconds()) * time_scale,
        ));
    }
    Ok(out)
}

/// A shell command that sorts the trace by its time column, for the fix of an unsorted trace.
fn sort_command(path: &Path, column: &Column, kind: &str) -> String {
    let p = path.display();
    match column {
        Column::Field(f) => format!("`jq -s -c 'sort_by(.{f})[]' {p} > sorted.jsonl`"),
        // Wall-clock times of one format sort as text; numbers and durations need sort's general numeric order.
        Column::Cell { number, header } => {
            let how = if kind == WALL_CLOCK { "" } else { "g" };
            let key = format!("-k{number},{number}{how}");
            if header.is_some() {
                format!("`(head -n 1 {p}; tail -n +2 {p} | sort -t, {key}) > sorted.csv`")
            } else {
                format!("`sort -t, {key} {p} > sorted.csv`")
            }
        }
    }
}

const WALL_CLOCK: &str = "a wall-clock time";

/// One row's time, as written.
#[derive(Debug, Clone, Copy)]
enum Stamp {
    /// Seconds from any origin (a number, Unix time, or a duration such as `1.5s`).
    Seconds(f64),
    /// A wall-clock time as seconds since the Unix epoch (UTC).
    Wall(f64),
}

impl Stamp {
    fn seconds(self) -> f64 {
        match self {
            Stamp::Seconds(s) | Stamp::Wall(s) => s,
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Stamp::Seconds(_) => "a number of seconds or a duration",
            Stamp::Wall(_) => WALL_CLOCK,
        }
    }
    fn text(self) -> String {
        match self {
            Stamp::Seconds(s) => format!("{s}"),
            Stamp::Wall(s) => jiff::Timestamp::from_microsecond((s * 1e6).round() as i64)
                .map_or_else(|_| format!("{s}"), |t| t.to_string()),
        }
    }
}

/// Which column or field holds the time, for messages.
enum Column {
    Field(String),
    /// 1-based, as `sort -k` counts, with the header's name when there is one.
    Cell {
        number: usize,
        header: Option<String>,
    },
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Column::Field(name) => write!(f, "field `{name}`"),
            Column::Cell {
                number,
                header: Some(h),
            } => write!(f, "column {number} (`{h}`)"),
            Column::Cell { number, .. } => write!(f, "column {number}"),
        }
    }
}

struct Raw {
    rows: Vec<(usize, Stamp)>,
    column: Column,
}

fn value_seconds(text: &str) -> Option<Stamp> {
    let t = text.trim();
    if let Some(s) = t.parse::<f64>().ok().filter(|v| v.is_finite()) {
        return Some(Stamp::Seconds(s));
    }
    if let Ok(d) = parse_duration(t) {
        return Some(Stamp::Seconds(d.as_secs_f64()));
    }
    // RFC 3339 with an offset first: a civil parse would accept a numeric offset and drop it.
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Some(Stamp::Wall(ts.as_microsecond() as f64 / 1e6));
    }
    let civil = t.parse::<jiff::civil::DateTime>().ok()?;
    let ts = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(Stamp::Wall(ts.as_microsecond() as f64 / 1e6))
}

fn read_csv(path: &Path, file: std::fs::File, column: Option<&str>) -> Result<Raw, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(crate::limits::LineLimit::new(
            std::io::BufReader::new(file),
            crate::limits::MAX_LINE_BYTES,
        ));
    let mut out = Vec::new();
    let mut col = 0usize;
    let mut header = None;
    for (i, rec) in reader.records().enumerate() {
        let line = i + 1;
        let rec = rec.map_err(|e| format!("trace `{}` line {line}: {e}", path.display()))?;
        if i == 0 {
            // A header row is one whose chosen cell is not a time.
            let wanted = column.unwrap_or("t");
            if let Some(pos) = rec.iter().position(|c| c.trim() == wanted) {
                col = pos;
                header = Some(wanted.to_string());
                continue;
            }
            if column.is_some() {
                return Err(format!(
                    "trace `{}` has no column `{wanted}` in its header",
                    path.display()
                ));
            }
            if rec.get(0).and_then(value_seconds).is_none() {
                // A header without a `t` column: use the first column.
                header = rec.get(0).map(|h| h.trim().to_string());
                continue;
            }
        }
        let cell = rec.get(col).unwrap_or("");
        let t = value_seconds(cell).ok_or_else(|| {
            format!(
                "trace `{}` line {line}: `{cell}` is not a time (seconds, a duration like `1.5s`, or a wall-clock \
                 time like `2023-11-16 18:15:46.68` or `2023-11-16T18:15:46Z`)",
                path.display()
            )
        })?;
        out.push((line, t));
        if out.len() > MAX_TRACE_ROWS {
            return Err(format!(
                "trace `{}` has more than {MAX_TRACE_ROWS} rows",
                path.display()
            ));
        }
    }
    Ok(Raw {
        rows: out,
        column: Column::Cell {
            number: col + 1,
            header,
        },
    })
}

fn read_jsonl(path: &Path, file: std::fs::File, field: &str) -> Result<Raw, String> {
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
            Some(serde_json::Value::Number(x)) => x.as_f64().map(Stamp::Seconds),
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
    Ok(Raw {
        rows: out,
        column: Column::Field(field.to_string()),
    })
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

    /// The first rows of Azure's public LLM inference trace (`AzureLLMInferenceTrace_conv.csv`, Azure Public
    /// Dataset, 2023): a `TIMESTAMP` column of civil times with seven fractional digits.
    #[test]
    fn wall_clock_times_replay_as_offsets_from_the_first_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("azure.csv");
        std::fs::write(
            &p,
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n\
             2023-11-16 18:15:50.9951690,396,109\n2023-11-16 18:16:51.2561410,879,55\n",
        )
        .unwrap();
        let got = load(&p, None, 1.0).unwrap();
        assert_eq!(got, vec![Micros(0), Micros(4_314_579), Micros(64_575_551)]);
        let p = dir.path().join("rfc.jsonl");
        std::fs::write(
            &p,
            "{\"t\": \"2023-11-16T18:15:46Z\"}\n{\"t\": \"2023-11-16T19:15:47.5+01:00\"}\n",
        )
        .unwrap();
        assert_eq!(
            load(&p, None, 1.0).unwrap(),
            vec![Micros(0), Micros(1_500_000)]
        );
    }

    #[test]
    fn an_unsorted_trace_says_which_column_to_sort_and_how() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "id,TIMESTAMP\na,2023-11-16 18:15:50\nb,2023-11-16 18:15:46\n",
        )
        .unwrap();
        let e = load(&p, Some("TIMESTAMP"), 1.0).unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("sort the file by column 2 (`TIMESTAMP`)"), "{e}");
        assert!(e.contains("sort -t, -k2,2)"), "{e}");
        let p = dir.path().join("t.jsonl");
        std::fs::write(&p, "{\"at\": 2}\n{\"at\": 1}\n").unwrap();
        let e = load(&p, Some("at"), 1.0).unwrap_err();
        assert!(
            e.contains("field `at`") && e.contains("sort_by(.at)"),
            "{e}"
        );
    }

    #[test]
    fn one_trace_holds_one_kind_of_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "t\n0\n2023-11-16 18:15:46\n").unwrap();
        let e = load(&p, None, 1.0).unwrap_err();
        assert!(e.contains("line 3") && e.contains("wall-clock"), "{e}");
    }
}
