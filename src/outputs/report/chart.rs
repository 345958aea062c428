//! SVG line charts for the HTML pages (a run's `report.html`, the nightly page, `whatif`'s page): axes with nice
//! tick values, time axes in the unit that fits the span, step or straight lines, a legend, and a marker shape per
//! line so series that overlap stay apart (each line's markers sit at its own offsets along the x axis).

use crate::outputs::report::junit::escape as esc;
use std::fmt::Write as _;

pub(crate) const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
pub(crate) const WIDTH: f64 = 920.0;

/// A line on a chart: label, colour, dashed, points (x, y).
pub(crate) struct Line<'a> {
    pub label: String,
    pub color: &'a str,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

pub(crate) struct Axis {
    pub min: f64,
    pub max: f64,
    pub ticks: Vec<(f64, String)>,
}

pub(crate) fn nice_ticks(max: f64, n: usize, fmt: &dyn Fn(f64) -> String) -> Vec<(f64, String)> {
    if max <= 0.0 {
        return vec![(0.0, fmt(0.0))];
    }
    let raw = max / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    (0..=((max / step).ceil() as usize))
        // Rounded to the step's precision, so a tick reads `0.15`, never `0.15000000000000002`.
        .map(|i| (i as f64 * step * 1e9).round() / 1e9)
        .map(|v| (v, fmt(v)))
        .collect()
}

/// Ticks for a span of `span_us` microseconds in the unit that fits it (milliseconds under 2 seconds, seconds
/// under 2 minutes, minutes under 2 hours, else hours), at µs positions from 0.
pub(crate) fn time_ticks(span_us: f64, n: usize) -> Vec<(f64, String)> {
    let (unit_us, suffix) = if span_us < 2e6 {
        (1e3, "ms")
    } else if span_us < 120e6 {
        (1e6, "s")
    } else if span_us < 7_200e6 {
        (60e6, "m")
    } else {
        (3_600e6, "h")
    };
    nice_ticks(span_us / unit_us, n, &|v| format!("{v}{suffix}"))
        .into_iter()
        .map(|(v, l)| (v * unit_us, l))
        .collect()
}

/// A y axis for durations plotted in seconds, ticked in the unit that fits its largest value ([`time_ticks`]):
/// `0s 2m 4m 6m`, never `360s`.
pub(crate) fn seconds_axis(max_s: f64, n: usize) -> Axis {
    Axis {
        min: 0.0,
        max: max_s,
        ticks: time_ticks(max_s * 1e6, n)
            .into_iter()
            .map(|(v, l)| (v / 1e6, l))
            .collect(),
    }
}

/// A y axis for counts (messages, replicas, nodes): whole-number ticks only, from 0 to at least 1.
pub(crate) fn count_axis(max: f64) -> Axis {
    let max = max.max(1.0);
    Axis {
        min: 0.0,
        max,
        ticks: nice_ticks(max, 4, &|v| format!("{v}"))
            .into_iter()
            .filter(|(v, _)| v.fract() == 0.0)
            .collect(),
    }
}

/// A line chart with a legend; `x` and `y` give the ranges and ticks.
pub(crate) fn chart(
    title: &str,
    height: f64,
    x: &Axis,
    y: &Axis,
    lines: &[Line<'_>],
    step: bool,
) -> String {
    let (left, right, top, bottom) = (70.0, 210.0, 26.0, 28.0);
    let (pw, ph) = (WIDTH - left - right, height - top - bottom);
    let sx = |v: f64| left + (v - x.min) / (x.max - x.min).max(1e-12) * pw;
    let y_max = y.max.max(y.ticks.last().map_or(0.0, |t| t.0)).max(1e-12);
    let sy = |v: f64| top + ph - (v - y.min) / (y_max - y.min) * ph;
    let mut s = String::new();
    writeln!(
        s,
        r#"<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{}">"#,
        esc(title)
    )
    .unwrap();
    writeln!(
        s,
        r#"<text x="{left}" y="16" class="t">{}</text>"#,
        esc(title)
    )
    .unwrap();
    for (v, label) in &y.ticks {
        let yy = sy(*v);
        writeln!(s, r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" class="a" text-anchor="end">{}</text>"##, left + pw, left - 6.0, yy + 4.0, esc(label)).unwrap();
    }
    for (v, label) in x.ticks.iter().filter(|(v, _)| *v >= x.min && *v <= x.max) {
        let xx = sx(*v);
        writeln!(s, r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{top}" y2="{}" stroke="#f0f0f0"/><text x="{xx:.1}" y="{}" class="a" text-anchor="middle">{}</text>"##, top + ph, top + ph + 16.0, esc(label)).unwrap();
    }
    writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    )
    .unwrap();
    for (i, l) in lines.iter().enumerate() {
        let mut d = String::new();
        let mut prev: Option<(f64, f64)> = None;
        for &(px, py) in &l.points {
            let (cx, cy) = (sx(px), sy(py));
            match prev {
                None => write!(d, "M{cx:.1},{cy:.1}").unwrap(),
                Some((_, py0)) if step => write!(d, " L{cx:.1},{py0:.1} L{cx:.1},{cy:.1}").unwrap(),
                Some(_) => write!(d, " L{cx:.1},{cy:.1}").unwrap(),
            }
            prev = Some((cx, cy));
        }
        let dash = if l.dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        writeln!(
            s,
            r#"<path d="{d}" fill="none" stroke="{}" stroke-width="1.6"{dash}/>"#,
            l.color
        )
        .unwrap();
        // Markers, when there is more than one line: each line its own shape, at its own offsets along x, so
        // lines drawn on top of each other stay apart.
        let marked = lines.len() > 1;
        if marked {
            let offset = (i + 1) as f64 / (lines.len() + 1) as f64;
            for k in 0..MARKERS_PER_LINE {
                let at = x.min + (k as f64 + offset) / MARKERS_PER_LINE as f64 * (x.max - x.min);
                if let Some(v) = y_at(&l.points, at, step) {
                    s.push_str(&marker(i, sx(at), sy(v), l.color));
                }
            }
        }
        let ly = top + 12.0 + i as f64 * 16.0;
        writeln!(
            s,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}" class="a">{}</text>"#,
            left + pw + 10.0,
            left + pw + 28.0,
            l.color,
            left + pw + 32.0,
            ly + 4.0,
            esc(&l.label)
        )
        .unwrap();
        if marked {
            s.push_str(&marker(i, left + pw + 19.0, ly, l.color));
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Markers drawn along each line of a chart with several lines.
const MARKERS_PER_LINE: usize = 6;

/// Where a line is at `x`: for a step line the last point's y at or before `x`, else interpolated between the
/// points around it; `None` outside the line's x range.
pub(crate) fn y_at(points: &[(f64, f64)], x: f64, step: bool) -> Option<f64> {
    let after = points.iter().position(|p| p.0 > x)?;
    let (x1, y1) = points[after];
    let (x0, y0) = *points.get(after.checked_sub(1)?)?;
    if step || x1 <= x0 {
        Some(y0)
    } else {
        Some(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    }
}

/// The marker of the `i`-th line at (cx, cy): a filled circle, an open square, a filled triangle, an open
/// diamond, then again.
fn marker(i: usize, cx: f64, cy: f64, color: &str) -> String {
    match i % 4 {
        0 => format!(r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="3.2" fill="{color}"/>"#),
        1 => format!(
            r##"<rect x="{:.1}" y="{:.1}" width="6" height="6" fill="#fff" stroke="{color}" stroke-width="1.4"/>"##,
            cx - 3.0,
            cy - 3.0
        ),
        2 => format!(
            r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{color}"/>"#,
            cx,
            cy - 4.0,
            cx - 3.8,
            cy + 3.0,
            cx + 3.8,
            cy + 3.0
        ),
        _ => format!(
            r##"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="#fff" stroke="{color}" stroke-width="1.4"/>"##,
            cx,
            cy - 4.2,
            cx + 4.2,
            cy,
            cx,
            cy + 4.2,
            cx - 4.2,
            cy
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_axes_tick_in_the_unit_that_fits_and_count_axes_in_whole_numbers() {
        let labels = |a: Axis| a.ticks.into_iter().map(|t| t.1).collect::<Vec<_>>();
        assert_eq!(labels(seconds_axis(650.0, 4)), ["0m", "5m", "10m", "15m"]);
        assert_eq!(
            labels(seconds_axis(0.04, 4)),
            ["0ms", "10ms", "20ms", "30ms", "40ms"]
        );
        assert_eq!(labels(count_axis(1.0)), ["0", "1"]);
        assert_eq!(labels(count_axis(150.0)), ["0", "50", "100", "150"]);
    }

    #[test]
    fn a_step_line_holds_its_value_until_the_next_point_and_a_straight_one_interpolates() {
        let pts = [(0.0, 1.0), (10.0, 3.0), (20.0, 3.0)];
        assert_eq!(y_at(&pts, 5.0, true), Some(1.0));
        assert_eq!(y_at(&pts, 5.0, false), Some(2.0));
        assert_eq!(y_at(&pts, 25.0, true), None, "beyond the line");
        assert_eq!(y_at(&pts, -1.0, true), None, "before the line");
    }

    /// Two lines that coincide (published and completed of a steady run) still show as two: each gets its own
    /// marker shape, at x positions the other does not use, and the legend shows the shape.
    #[test]
    fn series_that_overlap_are_distinguishable() {
        let pts = vec![(0.0, 5.0), (100.0, 5.0)];
        let axis = Axis {
            min: 0.0,
            max: 100.0,
            ticks: nice_ticks(100.0, 4, &|v| format!("{v}")),
        };
        let lines = [
            Line {
                label: "published".into(),
                color: PALETTE[0],
                dashed: false,
                points: pts.clone(),
            },
            Line {
                label: "completed".into(),
                color: PALETTE[2],
                dashed: false,
                points: pts,
            },
        ];
        let svg = chart("t", 150.0, &axis, &axis, &lines, true);
        let circles: Vec<&str> = svg.split("<circle cx=\"").skip(1).collect();
        let squares: Vec<&str> = svg.split("<rect x=\"").skip(2).collect();
        assert_eq!(circles.len(), MARKERS_PER_LINE + 1, "{svg}");
        assert_eq!(squares.len(), MARKERS_PER_LINE + 1, "{svg}");
        // Centres: a circle's cx, a square's x + 3 (its half width).
        let xs = |v: &[&str], half: f64| -> Vec<f64> {
            v.iter()
                .map(|s| s[..s.find('"').unwrap()].parse::<f64>().unwrap() + half)
                .collect()
        };
        let (c, q) = (xs(&circles, 0.0), xs(&squares, 3.0));
        // In the plot (the legend's are the last of each), no two markers of the two lines closer than 20 px.
        for a in &c[..MARKERS_PER_LINE] {
            for b in &q[..MARKERS_PER_LINE] {
                assert!(
                    (a - b).abs() > 20.0,
                    "markers on top of each other: {c:?} {q:?}"
                );
            }
        }
        let one = chart("t", 150.0, &axis, &axis, &lines[..1], true);
        assert!(!one.contains("<circle"), "a lone line needs no marker");
    }
}
