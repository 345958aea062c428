//! `report.md`: [`model::build`]'s sections as GitHub-flavoured Markdown, for `$GITHUB_STEP_SUMMARY` and
//! pull-request comments. The answer is in the first screen (verdict, failed thresholds, latency, where message
//! time went); charts and the per-cycle detail are left to `report.html`.

use super::model::{self, Block, Cell, Table, Tone};
use crate::analysis::RunReport;
use std::fmt::Write as _;

/// A cell's text with what would break a pipe table escaped (`|`, line breaks).
fn cell(c: &Cell) -> String {
    let text = c.text().replace('|', "\\|").replace('\n', " ");
    match c {
        Cell::Code(_) => format!("`{text}`"),
        Cell::UsdTotal(_) => format!("**{text}**"),
        _ if c.bad() => format!("**{text}**"),
        _ => text,
    }
}

fn table(md: &mut String, t: &Table) {
    writeln!(md, "| {} |", t.columns.join(" | ")).unwrap();
    let align: Vec<&str> = (0..t.columns.len())
        .map(|i| if t.numeric(i) { "---:" } else { "---" })
        .collect();
    writeln!(md, "| {} |", align.join(" | ")).unwrap();
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(cell).collect();
        writeln!(md, "| {} |", cells.join(" | ")).unwrap();
    }
    md.push('\n');
}

fn toned(tone: Tone, text: &str) -> String {
    match tone {
        Tone::Plain => text.to_string(),
        Tone::Quiet => format!("_{text}_"),
        Tone::Bad => format!("**{text}**"),
    }
}

pub fn render(r: &RunReport) -> String {
    let doc = model::build(r);
    let h = &doc.head;
    let mut md = String::new();
    let verdict = match h.verdict() {
        None => "no thresholds".to_string(),
        Some(v) if h.failed > 0 => format!("**{v}**"),
        Some(v) => v,
    };
    writeln!(md, "## imagen-load · `{}` · {verdict}\n", h.workload).unwrap();
    writeln!(
        md,
        "Run `{}`, seed {}, target `{}`{}, {} observed{}.\n",
        h.run_id,
        h.seed,
        h.target,
        h.shard
            .as_ref()
            .map(|s| format!(", shard {s}"))
            .unwrap_or_default(),
        crate::units::human_us(h.observed_us),
        if h.interrupted {
            ", **interrupted**"
        } else {
            ""
        }
    )
    .unwrap();
    for s in doc.sections.iter().filter(|s| s.in_text()) {
        writeln!(md, "### {}\n", s.title).unwrap();
        blocks(&mut md, &s.blocks);
    }
    md
}

fn blocks(md: &mut String, blocks: &[Block]) {
    for b in blocks {
        match b {
            Block::Table(t) => table(md, t),
            Block::Note(tone, text) => writeln!(md, "{}\n", toned(*tone, text)).unwrap(),
            Block::List { title, tone, items } => {
                if let Some(t) = title {
                    writeln!(md, "**{t}**:\n").unwrap();
                }
                for (lead, text) in items {
                    let lead = lead.as_ref().map(|l| format!("{l}: ")).unwrap_or_default();
                    writeln!(md, "- {lead}{}", toned(*tone, text)).unwrap();
                }
                md.push('\n');
            }
            Block::Either { text, .. } => self::blocks(md, text),
            Block::Chart(_) => {}
        }
    }
}
