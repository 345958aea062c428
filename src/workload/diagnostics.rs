//! Problems found in a workload file, each pinned to a file, line, column and key, with a fix.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One thing wrong with a workload, as the user will read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line and column of the offending key or value; 0 when the problem has no place in a file.
    pub line: usize,
    pub column: usize,
    /// The key, as a path: `stream[2].phase[3].rate` (streams and phases count from 1).
    pub key: String,
    pub message: String,
    pub fix: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        } else {
            write!(f, "{}: ", self.file.display())?;
        }
        if !self.key.is_empty() {
            write!(f, "`{}`: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n    fix: {fix}")?;
        }
        Ok(())
    }
}

/// Collects problems against one source text, turning byte spans into line and column.
pub(crate) struct Diagnostics<'s> {
    pub file: PathBuf,
    src: &'s str,
    pub problems: Vec<Problem>,
}

impl<'s> Diagnostics<'s> {
    pub fn new(file: &Path, src: &'s str) -> Self {
        Diagnostics {
            file: file.to_path_buf(),
            src,
            problems: Vec::new(),
        }
    }

    pub fn push(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        let (line, column) = span.map(|s| line_col(self.src, s.start)).unwrap_or((0, 0));
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            column,
            key: key.into(),
            message: message.into(),
            fix,
        });
    }

    /// Records a serde/TOML error, turning "unknown field `x`, expected one of ..." into a nearest-match fix.
    pub fn push_de(&mut self, err: &toml::de::Error, fallback: Range<usize>, key_prefix: &str) {
        let full = err.message().trim().to_string();
        let span = err.span().or(Some(fallback));
        let (key, fix) = explain_serde_message(&full, key_prefix);
        // When the fix came from the message itself (`what; how`), print only the `what` part as the message.
        let message = match (&fix, full.split_once("; ")) {
            (Some(f), Some((what, how))) if f == how => what.to_string(),
            _ => full,
        };
        self.push(span, key, message, fix);
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    // A shortened or lengthened name (`cooldown` for `cooldown_period`) is a likely mistake too.
    if word.len() >= 4
        && let Some(c) = candidates
            .iter()
            .find(|c| c.starts_with(word) || word.starts_with(**c))
    {
        return Some(c);
    }
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

fn explain_serde_message(message: &str, key_prefix: &str) -> (String, Option<String>) {
    let join = |k: &str| {
        if key_prefix == k || key_prefix.ends_with(&format!(".{k}")) {
            key_prefix.to_string()
        } else if key_prefix.is_empty() {
            k.to_string()
        } else {
            format!("{key_prefix}.{k}")
        }
    };
    for (what, label) in [("unknown field", "key"), ("unknown variant", "kind")] {
        if let Some(rest) = message.strip_prefix(what) {
            let names = backticked(rest);
            let Some((bad, valid)) = names.split_first() else {
                break;
            };
            // An unknown variant is reported at the key that holds it (`kind`, `require_zero`, ...).
            let key = match label {
                "key" => join(bad),
                _ if key_prefix.is_empty() => "kind".to_string(),
                _ => key_prefix.to_string(),
            };
            let label = match label {
                "kind" if !key.ends_with("kind") => "value",
                l => l,
            };
            let fix = match nearest(bad, valid.iter().copied()) {
                Some(near) => format!(
                    "did you mean `{near}`? (valid {label}s: {})",
                    valid.join(", ")
                ),
                None if valid.is_empty() => format!("remove `{bad}`; this table takes no keys"),
                None => format!("remove `{bad}` or use one of: {}", valid.join(", ")),
            };
            return (key, Some(fix));
        }
    }
    if let Some(rest) = message.strip_prefix("missing field")
        && let Some(field) = backticked(rest).first()
    {
        return (
            join(field),
            Some(format!(
                "add `{field} = ...` to this table (see workloads/README.md)"
            )),
        );
    }
    // Our own value parsers say what is wrong, then `; ` and how to write it.
    if let Some((_, how)) = message.split_once("; ") {
        return (key_prefix.to_string(), Some(how.to_string()));
    }
    let fix = if message.contains("invalid value: integer") {
        Some("write a whole number of zero or more".to_string())
    } else if message.contains("expected i64")
        || message.contains("expected u64")
        || message.contains("expected u32")
    {
        Some("write a whole number, without quotes".to_string())
    } else if message.contains("expected f64") {
        Some("write a number, without quotes".to_string())
    } else if message.contains("expected a string") || message.contains("expected string") {
        Some("write the value in quotes".to_string())
    } else {
        None
    };
    (key_prefix.to_string(), fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_from_one() {
        let src = "a = 1\nbb = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 11), (2, 6));
    }

    #[test]
    fn unknown_field_suggests_nearest() {
        let (key, fix) = explain_serde_message(
            "unknown field `rte`, expected `rate` or `duration`",
            "stream[1].phase[2]",
        );
        assert_eq!(key, "stream[1].phase[2].rte");
        assert!(fix.unwrap().contains("did you mean `rate`"));
    }
}
