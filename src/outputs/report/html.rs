//! `report.html`: one self-contained file (no script, no network, no external assets), charts drawn as inline SVG:
//! a timeline (published/completed, backlog, desired/ready replicas, GPU nodes), a per-pod cold-start waterfall,
//! latency percentile curves per stream (cold and warm apart), delivery accounting, scale cycles, cost and
//! thresholds. Readable on a laptop screen and printable.

use super::chart::{Axis, Line, PALETTE, WIDTH, chart, count_axis, seconds_axis, time_ticks};
use super::model::{self, Block, Cell, Chart, Table, Tone};
use crate::analysis::{POD_PHASES, RunReport};
use crate::outputs::report::junit::escape as esc;
use crate::units::human_us;
use std::fmt::Write as _;

const PHASE_COLORS: [&str; 7] = [
    "#9e9e9e", "#bdbdbd", "#ff7f0e", "#1f77b4", "#17becf", "#9467bd", "#2ca02c",
];

fn time_label(us: f64) -> String {
    human_us(us.max(0.0) as u64)
}

fn time_axis(end_us: u64) -> Axis {
    let max = end_us.max(1) as f64;
    Axis {
        min: 0.0,
        max,
        ticks: time_ticks(max, 10),
    }
}

fn timeline(r: &RunReport) -> String {
    let t = &r.timeline;
    let end = r.run.end_us;
    let x = time_axis(end);
    let mut out = String::new();
    // Messages per minute, published and completed, re-bucketed to at most ~200 points.
    let slots = t.published.len().max(t.completed.len());
    let per = (slots / 200).max(1);
    let slot_us = t.slot_us as f64;
    let per_minute = 60e6 / (slot_us * per as f64);
    // A step line: each bin drawn from its start to its end, the last one too (closed at its end, clipped to the
    // run), so no bin has zero width.
    let bins = slots.div_ceil(per);
    let series = |v: &[u32]| -> Vec<(f64, f64)> {
        let mut pts: Vec<(f64, f64)> = (0..bins)
            .map(|b| {
                let sum: u32 = v.iter().skip(b * per).take(per).sum();
                ((b * per) as f64 * slot_us, sum as f64 * per_minute)
            })
            .collect();
        if let Some(&(_, last)) = pts.last() {
            pts.push((((bins * per) as f64 * slot_us).min(end.max(1) as f64), last));
        }
        pts
    };
    let (p, c) = (series(&t.published), series(&t.completed));
    let ymax = p.iter().chain(&c).map(|q| q.1).fold(0.0, f64::max);
    out.push_str(&chart(
        "Messages per minute",
        170.0,
        &x,
        &count_axis(ymax),
        &[
            Line {
                label: "published".into(),
                color: PALETTE[0],
                dashed: false,
                points: p,
            },
            Line {
                label: "completed".into(),
                color: PALETTE[2],
                dashed: false,
                points: c,
            },
        ],
        true,
    ));
    let backlog: Vec<Line<'_>> = t
        .backlog
        .iter()
        .enumerate()
        .map(|(i, (name, pts))| Line {
            label: name
                .trim_end_matches("-sub")
                .trim_start_matches("imagen-")
                .to_string(),
            color: PALETTE[i % PALETTE.len()],
            dashed: false,
            points: pts
                .iter()
                .map(|&(t, d)| (t as f64, d as f64))
                .chain(std::iter::once((
                    end as f64,
                    pts.last().map_or(0.0, |p| p.1 as f64),
                )))
                .collect(),
        })
        .collect();
    if !backlog.is_empty() {
        let ymax = backlog
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        out.push_str(&chart(
            "Backlog (unacked messages, as sampled)",
            150.0,
            &x,
            &count_axis(ymax),
            &backlog,
            true,
        ));
    }
    let mut replicas = Vec::new();
    for (i, (name, pts)) in t.replicas.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let close = |v: f64| std::iter::once((end as f64, v));
        let ready: Vec<(f64, f64)> = pts.iter().map(|&(t, _, r)| (t as f64, r as f64)).collect();
        let desired: Vec<(f64, f64)> = pts.iter().map(|&(t, d, _)| (t as f64, d as f64)).collect();
        let (lr, ld) = (
            ready.last().map_or(0.0, |p| p.1),
            desired.last().map_or(0.0, |p| p.1),
        );
        replicas.push(Line {
            label: format!("{name} ready"),
            color,
            dashed: false,
            points: ready.into_iter().chain(close(lr)).collect(),
        });
        replicas.push(Line {
            label: format!("{name} desired"),
            color,
            dashed: true,
            points: desired.into_iter().chain(close(ld)).collect(),
        });
    }
    if !replicas.is_empty() {
        let ymax = replicas
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        let height = 150.0_f64.max(40.0 + 16.0 * replicas.len() as f64);
        out.push_str(&chart(
            "Replicas (solid ready, dashed desired)",
            height,
            &x,
            &count_axis(ymax),
            &replicas,
            true,
        ));
    }
    let mut nodes: Vec<(f64, f64)> = vec![(0.0, 0.0)];
    nodes.extend(t.nodes.iter().map(|&(t, n)| (t as f64, n as f64)));
    nodes.push((end as f64, nodes.last().map_or(0.0, |p| p.1)));
    let ymax = nodes.iter().map(|p| p.1).fold(0.0, f64::max);
    out.push_str(&chart(
        "GPU nodes",
        130.0,
        &x,
        &count_axis(ymax),
        &[Line {
            label: "nodes".into(),
            color: PALETTE[4],
            dashed: false,
            points: nodes,
        }],
        true,
    ));
    out
}

/// Stacked horizontal bars, one per pod that cold-started, each phase a colour, on the run's time axis.
fn waterfall(r: &RunReport) -> String {
    const MAX_PODS: usize = 60;
    let pods: Vec<_> = r
        .pods
        .iter()
        .filter(|p| !p.preexisting)
        .take(MAX_PODS)
        .collect();
    if pods.is_empty() {
        return "<p>No pod cold-started during the run.</p>\n".into();
    }
    let shown = &POD_PHASES[..7]; // activation … ready; first_message and total are not segments
    let (left, right, top, row) = (200.0, 20.0, 40.0, 14.0);
    let height = top + row * pods.len() as f64 + 40.0;
    let pw = WIDTH - left - right;
    let mut spans = Vec::new();
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    for p in &pods {
        let phases: Vec<u64> = shown
            .iter()
            .map(|k| p.phases_us.get(k).copied().flatten().unwrap_or(0))
            .collect();
        let lead = phases[0] + phases[1];
        let start = p
            .created_us
            .or(p.scheduled_us)
            .unwrap_or_default()
            .saturating_sub(lead);
        let end = start + phases.iter().sum::<u64>();
        lo = lo.min(start);
        hi = hi.max(end.max(p.ready_us.unwrap_or(end)));
        spans.push((p, start, phases));
    }
    let span = (hi - lo).max(1) as f64;
    let sx = |t: u64| left + (t - lo) as f64 / span * pw;
    let mut s = String::new();
    writeln!(s, r#"<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="cold-start waterfall">"#).unwrap();
    writeln!(s, r#"<text x="{left}" y="16" class="t">Cold starts, phase by phase (time since the first pod started)</text>"#).unwrap();
    for (i, phase) in shown.iter().enumerate() {
        let lx = left + i as f64 * 100.0 - 40.0;
        writeln!(s, r#"<rect x="{lx}" y="24" width="10" height="10" fill="{}"/><text x="{}" y="33" class="a">{}</text>"#, PHASE_COLORS[i], lx + 14.0, phase.replace('_', " ").replace("node provisioning", "node")).unwrap();
    }
    for (row_i, (p, start, phases)) in spans.iter().enumerate() {
        let y = top + row_i as f64 * row;
        writeln!(
            s,
            r#"<text x="{}" y="{:.1}" class="a" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + 10.0,
            esc(&p.pod)
        )
        .unwrap();
        let mut t = *start;
        for (i, d) in phases.iter().enumerate() {
            if *d > 0 {
                let (x0, x1) = (sx(t), sx(t + d));
                writeln!(
                    s,
                    r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{}" fill="{}"><title>{}: {} {}</title></rect>"#,
                    (x1 - x0).max(0.5),
                    row - 3.0,
                    PHASE_COLORS[i],
                    esc(&p.pod),
                    shown[i].replace('_', " "),
                    human_us(*d)
                )
                .unwrap();
            }
            t += d;
        }
    }
    let axis_y = top + row * pods.len() as f64 + 14.0;
    for (v, label) in time_ticks(span, 8) {
        let t = lo + v as u64;
        if t <= hi {
            writeln!(
                s,
                r#"<text x="{:.1}" y="{axis_y}" class="a" text-anchor="middle">+{label}</text>"#,
                sx(t)
            )
            .unwrap();
        }
    }
    writeln!(
        s,
        r#"<text x="{left}" y="{}" class="a">0 = {}</text>"#,
        axis_y + 16.0,
        time_label(lo as f64)
    )
    .unwrap();
    s.push_str("</svg>\n");
    if r.pods.iter().filter(|p| !p.preexisting).count() > MAX_PODS {
        writeln!(
            s,
            "<p class=\"note\">The first {MAX_PODS} pods are shown; summary.json lists all.</p>"
        )
        .unwrap();
    }
    s
}

/// Latency against percentile on HdrHistogram's log scale (1 / (1 − p)), per stream and cold/warm.
fn percentile_curves(r: &RunReport) -> String {
    let mut lines = Vec::new();
    let mut scopes = vec!["all".to_string()];
    scopes.extend(r.run.streams.iter().cloned());
    let mut ymax = 0.0_f64;
    // The percentile axis runs as far as the largest sample supports: n values resolve 1/(1 − p) up to n, so
    // 40 messages stop the axis near p97.5, not at p99.99.
    let mut max_n = 0u64;
    for (i, s) in scopes.iter().enumerate() {
        for (cold, tag, dashed) in [
            (None, "", false),
            (Some(true), " cold", true),
            (Some(false), " warm", true),
        ] {
            if s != "all" && cold.is_some() {
                continue;
            }
            let Some(hist) = r.series.get("e2e_latency", s, cold) else {
                continue;
            };
            if cold.is_some() && r.series.get("e2e_latency", s, cold.map(|c| !c)).is_none() {
                continue; // all cold or all warm: the split adds nothing
            }
            max_n = max_n.max(hist.len());
            let points: Vec<(f64, f64)> = hist
                .iter_quantiles(4)
                .map(|v| {
                    (
                        v.quantile_iterated_to().min(0.9999),
                        v.value_iterated_to() as f64 / 1e6,
                    )
                })
                .map(|(q, y)| ((1.0 / (1.0 - q)).log10(), y))
                .collect();
            ymax = points.iter().map(|p| p.1).fold(ymax, f64::max);
            let color = if cold.is_some() {
                PALETTE[if cold == Some(true) { 1 } else { 2 }]
            } else {
                PALETTE[(i * 3) % PALETTE.len()]
            };
            lines.push(Line {
                label: format!("{s}{tag}"),
                color,
                dashed,
                points,
            });
        }
    }
    if lines.is_empty() {
        return "<p>No completed messages.</p>\n".into();
    }
    let x_max = (max_n.max(2) as f64).log10().clamp(0.3, 4.0);
    for l in &mut lines {
        l.points.retain(|p| p.0 <= x_max + 1e-9);
    }
    let x = Axis {
        min: 0.0,
        max: x_max,
        ticks: [
            (0.0, "0%"),
            (1.0, "90%"),
            (2.0, "99%"),
            (3.0, "99.9%"),
            (4.0, "99.99%"),
        ]
        .into_iter()
        .filter(|(v, _)| *v <= x_max + 1e-9)
        .map(|(v, l)| (v, l.to_string()))
        .collect(),
    };
    let y = seconds_axis(ymax, 5);
    chart(
        "End-to-end latency by percentile (log percentile axis)",
        260.0,
        &x,
        &y,
        &lines,
        false,
    )
}

fn table(t: &Table) -> String {
    let mut s = String::from("<table><thead><tr>");
    for (i, c) in t.columns.iter().enumerate() {
        let class = if t.numeric(i) { " class=\"n\"" } else { "" };
        write!(s, "<th{class}>{}</th>", esc(c)).unwrap();
    }
    s.push_str("</tr></thead><tbody>");
    for row in &t.rows {
        s.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let text = esc(&c.text());
            let inner = match c {
                Cell::Code(_) => format!("<code>{text}</code>"),
                Cell::UsdTotal(_) => format!("<b>{text}</b>"),
                Cell::Pass(true) => format!("<span class=\"ok\">{text}</span>"),
                _ if c.bad() => format!("<span class=\"bad\">{text}</span>"),
                _ => text,
            };
            let class = if t.numeric(i) { " class=\"n\"" } else { "" };
            write!(s, "<td{class}>{inner}</td>").unwrap();
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>\n");
    s
}

fn toned(tone: Tone, text: &str) -> String {
    match tone {
        Tone::Plain => text.to_string(),
        Tone::Quiet => format!("<span class=\"note\">{text}</span>"),
        Tone::Bad => format!("<span class=\"bad\">{text}</span>"),
    }
}

/// `report.html`: [`model::build`]'s sections in order, each chart drawn where its section puts it.
pub fn render(r: &RunReport) -> String {
    let doc = model::build(r);
    let h = &doc.head;
    let mut body = String::new();
    let verdict = match h.verdict() {
        None => String::new(),
        Some(v) if h.failed > 0 => format!(r#" <span class="bad">{v}</span>"#),
        Some(v) => format!(r#" <span class="ok">{v}</span>"#),
    };
    writeln!(body, "<h1>imagen-load · {}{verdict}</h1>", esc(&h.workload)).unwrap();
    writeln!(
        body,
        "<p class=\"meta\">run <code>{}</code> · seed {} · target {}{} · {} observed{}</p>",
        esc(&h.run_id),
        h.seed,
        esc(&h.target),
        h.shard
            .as_ref()
            .map(|s| format!(" · shard {}", esc(s)))
            .unwrap_or_default(),
        human_us(h.observed_us),
        if h.interrupted {
            " · <b class=\"bad\">interrupted</b>"
        } else {
            ""
        }
    )
    .unwrap();
    for s in &doc.sections {
        writeln!(body, "<h2>{}</h2>", esc(&s.title)).unwrap();
        blocks(&mut body, r, &s.blocks);
    }
    page(&h.workload, &body)
}

fn blocks(body: &mut String, r: &RunReport, blocks: &[Block]) {
    for b in blocks {
        match b {
            Block::Table(t) => body.push_str(&table(t)),
            Block::Note(tone, text) => {
                writeln!(body, "<p>{}</p>", toned(*tone, &esc(text))).unwrap()
            }
            Block::List { title, tone, items } => {
                if let Some(t) = title {
                    writeln!(body, "<h3>{}</h3>", esc(t)).unwrap();
                }
                body.push_str("<ul>");
                for (lead, text) in items {
                    let lead = lead
                        .as_ref()
                        .map(|l| format!("<b>{}</b>: ", esc(l)))
                        .unwrap_or_default();
                    write!(body, "<li>{lead}{}</li>", toned(*tone, &esc(text))).unwrap();
                }
                body.push_str("</ul>\n");
            }
            Block::Either { page, .. } => self::blocks(body, r, page),
            Block::Chart(Chart::Timeline) => body.push_str(&timeline(r)),
            Block::Chart(Chart::Waterfall) => body.push_str(&waterfall(r)),
            Block::Chart(Chart::Percentiles) => body.push_str(&percentile_curves(r)),
        }
    }
}

/// The page around a report's body: inline style only.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>imagen-load · {title}</title>
<style>
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; max-width: 980px; color: #222; padding: 0 12px; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }} h2 {{ font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }} h3 {{ font-size: 15px; margin: 20px 0 6px; }}
.meta {{ color: #666; margin: 0; }} .ok {{ color: #1b7f3b; font-size: 15px; }} .bad {{ color: #c62828; }}
table {{ border-collapse: collapse; margin: 8px 0; display: block; max-width: 100%; overflow-x: auto; }} th, td {{ padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }}
th.n, td.n {{ text-align: right; font-variant-numeric: tabular-nums; }} th {{ background: #f6f6f6; }}
svg {{ display: block; margin: 6px 0 14px; }} svg .t {{ font-size: 13px; font-weight: 600; }} svg .a {{ font-size: 11px; fill: #444; }}
code {{ font-size: 12px; }} .note {{ color: #666; font-size: 12px; }}
@media print {{ body {{ margin: 0; max-width: none; }} table {{ display: table; font-size: 11px; }} h2 {{ break-after: avoid; }} svg, table {{ break-inside: avoid; }} }}
</style></head>
<body>
{body}<p class="note">imagen-load {version} · every number here is recomputed by <code>imagen-load analyze</code> from events.jsonl.</p>
</body></html>
"#,
        title = esc(title),
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// Markdown as HTML, for pages that show the same numbers as a Markdown report (the nightly page, `whatif`'s
/// page), rendered by `pulldown-cmark` with GitHub's pipe tables, so emphasis, code spans and escaped `\|` in cells
/// come out as a Markdown viewer shows them. Raw HTML in the text (a stream or reason that holds `<`) is escaped,
/// not passed through: the Markdown is built from user-supplied names.
pub(crate) fn markdown_to_html(md: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser};
    let parser = Parser::new_ext(md, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, parser);
    out
}

#[cfg(test)]
mod markdown_tests {
    use super::markdown_to_html;

    #[test]
    fn markdown_keeps_emphasis_code_and_escaped_pipes_and_escapes_raw_html() {
        let html = markdown_to_html(
            "## Trends\n\n| metric | verdict |\n| --- | --- |\n| `a\\|b` | **REGRESSION** |\n\n<script>x</script>\n",
        );
        assert!(html.contains("<h2>Trends</h2>"), "{html}");
        assert!(html.contains("<td><code>a|b</code></td>"), "{html}");
        assert!(
            html.contains("<td><strong>REGRESSION</strong></td>"),
            "{html}"
        );
        assert!(
            !html.contains("<script>") && html.contains("&lt;script&gt;"),
            "{html}"
        );
    }
}
