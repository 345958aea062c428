//! Payload and attribute templates: literal text with `{{...}}` placeholders, rendered per message from a seed.
//!
//! Placeholders: `{{seq}}` (the message's sequence number in its stream), `{{uuid}}` (a seeded UUID v4),
//! `{{stream}}`, `{{run}}` (the run id), `{{intended_us}}` (intended offset from run start, µs),
//! `{{choice a|b|c}}` (one of the options, seeded), `{{int LO HI}}` (an integer in LO..=HI, seeded).

use crate::units::SeededRng;
use rand::{RngExt, SeedableRng};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Seq,
    Uuid,
    Stream,
    Run,
    IntendedUs,
    Choice(Vec<String>),
    Int(i64, i64),
}

/// A parsed template. Rendering is a pure function of (template, context, seed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    parts: Vec<Part>,
    source: String,
}

/// What a template is rendered against.
pub struct RenderContext<'a> {
    pub stream: &'a str,
    pub run_id: &'a str,
    pub seq: u64,
    pub intended_us: u64,
    /// Seed for this message's random choices (derived from the run seed, stream and sequence number).
    pub seed: u64,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!(
                    "`{{{{` at byte {} is never closed with `}}}}`",
                    text.len() - rest.len() + open
                )
            })?;
            parts.push(parse_placeholder(after[..close].trim())?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            parts,
            source: text.to_string(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn render(&self, ctx: &RenderContext<'_>) -> String {
        let mut rng = SeededRng::seed_from_u64(ctx.seed);
        let mut out = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Seq => write!(out, "{}", ctx.seq).expect("write to String"),
                Part::Uuid => {
                    let bytes: [u8; 16] = rng.random();
                    write!(
                        out,
                        "{}",
                        uuid::Builder::from_random_bytes(bytes).into_uuid()
                    )
                    .expect("write to String")
                }
                Part::Stream => out.push_str(ctx.stream),
                Part::Run => out.push_str(ctx.run_id),
                Part::IntendedUs => write!(out, "{}", ctx.intended_us).expect("write to String"),
                Part::Choice(options) => out.push_str(&options[rng.random_range(0..options.len())]),
                Part::Int(lo, hi) => {
                    write!(out, "{}", rng.random_range(*lo..=*hi)).expect("write to String")
                }
            }
        }
        out
    }
}

const PLACEHOLDERS: [&str; 7] = [
    "seq",
    "uuid",
    "stream",
    "run",
    "intended_us",
    "choice",
    "int",
];

fn parse_placeholder(inner: &str) -> Result<Part, String> {
    let (name, args) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
    let args = args.trim();
    let no_args = |p: Part| {
        if args.is_empty() {
            Ok(p)
        } else {
            Err(format!("`{{{{{name}}}}}` takes no arguments"))
        }
    };
    match name {
        "seq" => no_args(Part::Seq),
        "uuid" => no_args(Part::Uuid),
        "stream" => no_args(Part::Stream),
        "run" => no_args(Part::Run),
        "intended_us" => no_args(Part::IntendedUs),
        "choice" => {
            let options: Vec<String> = args.split('|').map(|s| s.trim().to_string()).collect();
            if args.is_empty() || options.iter().any(String::is_empty) {
                return Err("`{{choice ...}}` needs options separated by `|`, e.g. `{{choice 512|1024|2048}}`".into());
            }
            Ok(Part::Choice(options))
        }
        "int" => {
            let nums: Vec<&str> = args.split_whitespace().collect();
            let parsed: Option<Vec<i64>> = nums.iter().map(|n| n.parse().ok()).collect();
            match parsed.as_deref() {
                Some([lo, hi]) if lo <= hi => Ok(Part::Int(*lo, *hi)),
                _ => Err(format!(
                    "`{{{{int {args}}}}}`: write `{{{{int LO HI}}}}` with LO <= HI, e.g. `{{{{int 1 100}}}}`"
                )),
            }
        }
        other => {
            let hint = crate::plan::diagnostics::nearest(other, PLACEHOLDERS)
                .map(|n| format!(" (did you mean `{{{{{n}}}}}`?)"))
                .unwrap_or_default();
            Err(format!(
                "unknown placeholder `{{{{{other}}}}}`{hint}; placeholders are seq, uuid, stream, run, intended_us, choice, int"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(seq: u64, seed: u64) -> RenderContext<'static> {
        RenderContext {
            stream: "upscale",
            run_id: "r1",
            seq,
            intended_us: 5,
            seed,
        }
    }

    #[test]
    fn renders_placeholders() {
        let t = Template::parse(
            r#"{"seq": {{seq}}, "s": "{{stream}}", "size": {{choice 512|1024}}, "n": {{int 3 3}}}"#,
        )
        .unwrap();
        let out = t.render(&ctx(7, 1));
        assert!(
            out.starts_with(r#"{"seq": 7, "s": "upscale", "size": "#),
            "{out}"
        );
        assert!(out.ends_with(r#""n": 3}"#), "{out}");
    }

    #[test]
    fn same_seed_same_payload_other_seed_other_uuid() {
        let t = Template::parse("{{uuid}}").unwrap();
        assert_eq!(t.render(&ctx(1, 9)), t.render(&ctx(1, 9)));
        assert_ne!(t.render(&ctx(1, 9)), t.render(&ctx(1, 10)));
        assert_eq!(t.render(&ctx(1, 9)).len(), 36);
    }

    #[test]
    fn bad_placeholders_explain_themselves() {
        assert!(
            Template::parse("{{sequ}}")
                .unwrap_err()
                .contains("did you mean `{{seq}}`")
        );
        assert!(
            Template::parse("{{seq")
                .unwrap_err()
                .contains("never closed")
        );
        assert!(Template::parse("{{int 5 1}}").is_err());
        assert!(Template::parse("{{choice}}").is_err());
    }
}
