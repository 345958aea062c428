//! The terminal summary: [`model::build`]'s sections as aligned text, charts left out. Colour only when asked
//! (the caller passes `color = stdout is a terminal`).

use super::model::{self, Block, Doc, Table, Tone};
use crate::analysis::RunReport;
use std::fmt::Write as _;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn head(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn bad(&self, s: &str) -> String {
        self.paint("31", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    fn tone(&self, tone: Tone, s: &str) -> String {
        match tone {
            Tone::Plain => s.to_string(),
            Tone::Quiet => self.dim(s),
            Tone::Bad => self.bad(s),
        }
    }
}

/// A table as aligned columns, indented two spaces: labels left, numbers right, the header dimmed.
fn table(out: &mut String, style: &Style, t: &Table) {
    let widths: Vec<usize> = (0..t.columns.len())
        .map(|i| {
            t.rows
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.text().chars().count()))
                .chain(std::iter::once(t.columns[i].chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |s: &str, i: usize| {
        let w = widths[i];
        if t.numeric(i) {
            format!("{s:>w$}")
        } else {
            format!("{s:<w$}")
        }
    };
    let line = |cells: Vec<String>| format!("  {}", cells.join("  ").trim_end());
    let head: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| pad(c, i))
        .collect();
    writeln!(out, "{}", style.dim(&line(head))).unwrap();
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let text = pad(&c.text(), i);
                if c.bad() { style.bad(&text) } else { text }
            })
            .collect();
        writeln!(out, "{}", line(cells)).unwrap();
    }
}

pub fn render(r: &RunReport, color: bool) -> String {
    render_doc(&model::build(r), color)
}

fn render_doc(doc: &Doc, color: bool) -> String {
    let style = Style { color };
    let mut out = String::new();
    let h = &doc.head;
    writeln!(
        out,
        "{}",
        style.head(&format!(
            "imagen-load · run {} · workload {} (seed {}) · target {}{}",
            h.run_id,
            h.workload,
            h.seed,
            h.target,
            h.shard
                .as_ref()
                .map(|s| format!(" · shard {s}"))
                .unwrap_or_default()
        ))
    )
    .unwrap();
    let verdict = h.verdict().map(|v| {
        let v = format!(" · {v}");
        if h.failed > 0 { style.bad(&v) } else { v }
    });
    writeln!(
        out,
        "observed {} of run time{}{}",
        crate::units::human_us(h.observed_us),
        if h.interrupted {
            style.bad(" · INTERRUPTED")
        } else {
            String::new()
        },
        verdict.unwrap_or_default()
    )
    .unwrap();
    for s in &doc.sections {
        if !s.in_text() {
            continue;
        }
        out.push('\n');
        writeln!(out, "{}", style.head(&s.title)).unwrap();
        blocks(&mut out, &style, &s.blocks);
    }
    out
}

fn blocks(out: &mut String, style: &Style, blocks: &[Block]) {
    for b in blocks {
        match b {
            Block::Table(t) => table(out, style, t),
            Block::Note(tone, text) => writeln!(out, "  {}", style.tone(*tone, text)).unwrap(),
            Block::List { title, tone, items } => {
                let indent = if let Some(t) = title {
                    writeln!(out, "  {}", style.head(t)).unwrap();
                    "    "
                } else {
                    "  "
                };
                for (lead, text) in items {
                    let lead = lead.as_ref().map(|l| format!("{l}: ")).unwrap_or_default();
                    let bullet = if title.is_some() { "" } else { "- " };
                    writeln!(out, "{indent}{bullet}{lead}{}", style.tone(*tone, text)).unwrap();
                }
            }
            Block::Either { text, .. } => self::blocks(out, style, text),
            Block::Chart(_) => {}
        }
    }
}
