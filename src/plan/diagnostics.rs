//! The TOML toolkit every configuration file shares (the workload, a gates file, `[sim]` and its profiles):
//! problems found in a file, each pinned to a file, line, column and key, with a fix ([`Diagnostics`],
//! [`Problem`], [`Error`]); spanned values ([`Val`]) deserialized with their place ([`de`]); the nearest known
//! name for a misspelt one ([`nearest`]).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::DeValue;

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
pub struct Diagnostics<'s> {
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

/// The largest workload file read (it is read whole: a payload template at its limit, and room for the rest).
pub const MAX_WORKLOAD_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "workload file {path} is {bytes} bytes; the limit is {MAX_WORKLOAD_FILE_BYTES}\n    fix: a workload describes the load; put long arrival lists in a `trace` file (streamed) and keep payload templates small"
    )]
    TooBig { path: PathBuf, bytes: u64 },
    /// A file could not be read; `role` names it as the user gave it (workload file, gates file), and the fix
    /// says where such files live. The OS error is part of the message, not a `source`, so it prints once.
    #[error("cannot read {role} {path}: {error}\n    fix: {}", role_fix(.role))]
    ReadFailed {
        role: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}", render_problems(.problems))]
    Invalid { problems: Vec<Problem> },
    #[error(
        "`--set {text}`: {message}\n    fix: write `--set section.key=value`, e.g. `--set sim.keda.min_replicas=1`"
    )]
    BadOverride { text: String, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Where a file of this role is found, for [`Error::ReadFailed`].
fn role_fix(role: &str) -> &'static str {
    match role {
        "gates file" => {
            "check the path given to --gates; the pipelines' gates are in ci/gates.toml"
        }
        _ => "check the path; workloads ship under workloads/",
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = format!(
        "the workload has {} problem{}:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(&p.to_string().replace('\n', "\n  "));
    }
    out
}

pub type Val<'a> = Spanned<DeValue<'a>>;

/// Deserializes one spanned value, recording any error with its place and the key it belongs to.
pub fn de<T: serde::de::DeserializeOwned>(
    diag: &mut Diagnostics<'_>,
    v: &Val<'_>,
    key: &str,
) -> Option<T> {
    match T::deserialize(toml::de::ValueDeserializer::from(v.clone())) {
        Ok(t) => Some(t),
        Err(e) => {
            let inner = e.span().and_then(|s| key_at(v, s.start));
            let key = match inner {
                Some(k) if key.is_empty() => k,
                Some(k) => format!("{key}.{k}"),
                None => key.to_string(),
            };
            diag.push_de(&e, v.span(), &key);
            None
        }
    }
}

/// The dotted key, below `v`, whose key or value holds byte `offset` (the deepest one). Sub-tables are searched
/// whatever their span, since a `[table]` header's span does not cover its keys.
fn key_at(v: &Val<'_>, offset: usize) -> Option<String> {
    let table = v.get_ref().as_table()?;
    for (k, child) in table.iter() {
        let name = k.get_ref().to_string();
        if k.span().contains(&offset) {
            return Some(name);
        }
        if let Some(deeper) = key_at(child, offset) {
            return Some(format!("{name}.{deeper}"));
        }
        let span = child.span();
        if span.start <= offset && offset < span.end.max(span.start + 1) {
            return Some(name);
        }
    }
    None
}
