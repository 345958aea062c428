//! The report's content, built once from a [`RunReport`] by [`build`] and walked by every renderer (terminal,
//! `report.md`, `report.html`): sections in the order a reader needs them, each a list of blocks (tables of typed
//! cells, notes, lists, charts). A renderer decides how a block looks, never which rows it has or in what order.
//!
//! The order (issue 21): the verdict (failed thresholds), end-to-end latency, where message time went, the cold
//! starts with their waterfall, GPU cost; then the detail: scale cycles, delivery counts, the timeline, the
//! percentile curves, every threshold, warnings.

use crate::analysis::{COLD_START_METRICS, POD_PHASES, RunReport, Stats};
use crate::units::human_us;

/// Where a message's time went, in the order it lives it: (series, label). Every report shows these rows, under
/// the end-to-end latency.
pub const TIME_SPLIT: [(&str, &str); 4] = [
    ("publish_delay", "publish delay"),
    ("capacity_wait", "waiting for capacity"),
    ("queueing", "queueing"),
    ("processing", "processing"),
];

/// One report: its heading facts and its sections, in reading order.
#[derive(Debug, Clone)]
pub struct Doc {
    pub head: Head,
    pub sections: Vec<Section>,
}

/// What the title line says: the run, how long it was observed, and the threshold verdict.
#[derive(Debug, Clone)]
pub struct Head {
    pub workload: String,
    pub run_id: String,
    pub seed: u64,
    pub target: String,
    pub shard: Option<String>,
    /// Run time observed, µs.
    pub observed_us: u64,
    pub interrupted: bool,
    /// Thresholds evaluated, and how many of them failed.
    pub thresholds: usize,
    pub failed: usize,
}

impl Head {
    /// `all 3 thresholds passed`, `1 of 3 thresholds failed`, or `None` without thresholds.
    pub fn verdict(&self) -> Option<String> {
        match (self.thresholds, self.failed) {
            (0, _) => None,
            (n, 0) => Some(format!("all {n} thresholds passed")),
            (n, f) => Some(format!("{f} of {n} thresholds failed")),
        }
    }
}

/// A titled part of the report.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Section {
    /// Whether the text reports show it: not when it is charts only.
    pub fn in_text(&self) -> bool {
        self.blocks.iter().any(Block::in_text)
    }
}

/// The pieces a section is made of.
#[derive(Debug, Clone)]
pub enum Block {
    /// A table every renderer shows.
    Table(Table),
    /// One content in two forms: the text reports (terminal, Markdown) show `text`, the page shows `page` (e.g.
    /// the scale cycles: medians per deployment in text, every cycle on the page).
    Either { text: Vec<Block>, page: Vec<Block> },
    /// A sentence.
    Note(Tone, String),
    /// A list, with an optional heading; each item an optional lead (`node provisioning`) and its text.
    List {
        title: Option<String>,
        tone: Tone,
        items: Vec<(Option<String>, String)>,
    },
    /// A chart the page draws (text renderers leave it out).
    Chart(Chart),
}

impl Block {
    /// Whether the text reports show anything of it.
    pub fn in_text(&self) -> bool {
        match self {
            Block::Chart(_) => false,
            Block::Either { text, .. } => text.iter().any(Block::in_text),
            _ => true,
        }
    }
}

/// How a note or list reads: plain, quiet (an aside), or bad (a failure, a loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Quiet,
    Bad,
}

/// The charts of `report.html`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// Published/completed per minute, backlog, replicas and GPU nodes against run time.
    Timeline,
    /// Each cold-started pod's phases on the run's time axis.
    Waterfall,
    /// End-to-end latency against percentile, per stream.
    Percentiles,
}

/// Column names and rows of cells; the first column is the row's label.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    fn new(columns: &[&str]) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// A column is numeric (right-aligned) when every cell in it is.
    pub fn numeric(&self, col: usize) -> bool {
        !self.rows.is_empty()
            && self
                .rows
                .iter()
                .all(|r| r.get(col).is_some_and(Cell::numeric))
    }
}

/// One value with its kind, so each renderer formats and aligns it the same way, and unknown stays distinct from
/// zero.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A name or expression, shown as code.
    Code(String),
    Count(u64),
    /// A count that is bad when above zero (lost messages).
    Alarm(u64),
    /// A duration in µs, in the one display form ([`human_us`]); `None` is unknown.
    Duration(Option<u64>),
    /// Hours to two decimals (GPU-hours).
    Hours(f64),
    /// US dollars to the cent.
    Usd(f64),
    /// Bold US dollars (the run's total cost).
    UsdTotal(f64),
    /// A threshold's verdict.
    Pass(bool),
    /// Not measured (the run could not see it).
    Unknown,
}

impl Cell {
    /// The cell as plain text.
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Code(s) => s.clone(),
            Cell::Count(n) | Cell::Alarm(n) => n.to_string(),
            Cell::Duration(Some(us)) => human_us(*us),
            Cell::Duration(None) | Cell::Unknown => "unknown".into(),
            Cell::Hours(h) => format!("{h:.2}"),
            Cell::Usd(d) | Cell::UsdTotal(d) => format!("${d:.2}"),
            Cell::Pass(true) => "pass".into(),
            Cell::Pass(false) => "FAIL".into(),
        }
    }

    /// Whether a renderer should show it as a failure.
    pub fn bad(&self) -> bool {
        matches!(self, Cell::Pass(false)) || matches!(self, Cell::Alarm(n) if *n > 0)
    }

    fn numeric(&self) -> bool {
        matches!(
            self,
            Cell::Count(_)
                | Cell::Alarm(_)
                | Cell::Duration(_)
                | Cell::Hours(_)
                | Cell::Usd(_)
                | Cell::UsdTotal(_)
                | Cell::Unknown
        )
    }
}

/// The end-to-end latency rows every report shows, for `all` and each stream: the scope (labelled "(all cold)"
/// or "(all warm)" when its messages were of one kind), then its cold and warm rows only when it had both, since
/// a split of one kind repeats the row.
pub fn latency_rows(r: &RunReport) -> Vec<(String, Stats)> {
    let mut out = Vec::new();
    let scopes = std::iter::once("all").chain(r.run.streams.iter().map(String::as_str));
    for s in scopes {
        let Some(both) = r.series.stats("e2e_latency", s, None) else {
            continue;
        };
        let cold = r.series.stats("e2e_latency", s, Some(true));
        let warm = r.series.stats("e2e_latency", s, Some(false));
        let tag = match (&cold, &warm) {
            (Some(_), None) => " (all cold)",
            (None, Some(_)) => " (all warm)",
            _ => "",
        };
        out.push((format!("{s}{tag}"), both));
        if let (Some(c), Some(w)) = (cold, warm) {
            out.push((format!("{s} · cold"), c));
            out.push((format!("{s} · warm"), w));
        }
    }
    out
}

/// The rows of [`TIME_SPLIT`] that have samples, over all streams.
pub fn time_split_rows(r: &RunReport) -> Vec<(&'static str, Stats)> {
    TIME_SPLIT
        .iter()
        .filter_map(|(m, label)| r.series.stats(m, "all", None).map(|st| (*label, st)))
        .collect()
}

/// Why cold starts were slow, one line per phase the problems lengthened, for every report: e.g.
/// ("node provisioning", "2 failed scale-ups: GCE out of resources ×1 (us-central1-a), IP space exhausted ×1
/// (us-central1-b); no scale-up: in backoff after failed scale-up ×1").
pub fn problem_lines(r: &RunReport) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for phase in POD_PHASES {
        let here: Vec<&crate::analysis::Problem> =
            r.problems.iter().filter(|p| p.phase == phase).collect();
        if here.is_empty() {
            continue;
        }
        let failed: u32 = here
            .iter()
            .filter(|p| p.is_failed_scale_up())
            .map(|p| p.count)
            .sum();
        let items: Vec<String> = here
            .iter()
            .map(|p| {
                let place = p
                    .node_group
                    .as_ref()
                    .map(|g| format!(" ({g})"))
                    .unwrap_or_default();
                format!("{} ×{}{place}", p.reason, p.count)
            })
            .collect();
        let lead = if failed > 0 {
            format!(
                "{failed} failed scale-up{}: ",
                if failed == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        out.push((
            phase.replace('_', " "),
            format!("{lead}{}", items.join(", ")),
        ));
    }
    out
}

/// The percentile columns every statistics table has, after its label and count.
const STAT_COLUMNS: [&str; 6] = ["p50", "p90", "p95", "p99", "p99.9", "max"];

fn stats_table(label: &str, count: &str, rows: Vec<(String, Stats)>) -> Table {
    let mut t = Table::new(&[label, count]);
    t.columns.extend(STAT_COLUMNS.iter().map(|c| c.to_string()));
    for (name, st) in rows {
        let mut row = vec![Cell::Text(name), Cell::Count(st.count)];
        row.extend(
            [
                st.p50_us, st.p90_us, st.p95_us, st.p99_us, st.p999_us, st.max_us,
            ]
            .map(|v| Cell::Duration(Some(v))),
        );
        t.rows.push(row);
    }
    t
}

fn section(title: impl Into<String>, blocks: Vec<Block>) -> Section {
    Section {
        title: title.into(),
        blocks,
    }
}

/// The report's content, in reading order.
pub fn build(r: &RunReport) -> Doc {
    let run = &r.run;
    let head = Head {
        workload: run.workload.clone(),
        run_id: run.run_id.clone(),
        seed: run.seed,
        target: run.target.clone(),
        shard: run.shard.clone(),
        observed_us: run.end_us,
        interrupted: run.interrupted,
        thresholds: r.thresholds.len(),
        failed: r.failed_thresholds(),
    };
    let mut sections = Vec::new();
    if head.failed > 0 {
        let mut t = Table::new(&["metric", "condition", "measured"]);
        for o in r.thresholds.iter().filter(|t| !t.passed) {
            t.rows.push(vec![
                Cell::Code(o.metric.clone()),
                Cell::Code(o.condition.clone()),
                Cell::Text(o.measured.clone().unwrap_or_else(|| "no samples".into())),
            ]);
        }
        sections.push(section("Failed thresholds", vec![Block::Table(t)]));
    }
    sections.push(latency(r));
    let split = time_split_rows(r);
    if !split.is_empty() {
        sections.push(section(
            "Where message time went (all streams)",
            vec![Block::Table(stats_table(
                "part",
                "n",
                split.into_iter().map(|(l, s)| (l.to_string(), s)).collect(),
            ))],
        ));
    }
    sections.push(cold_starts(r));
    sections.push(cost(r));
    if !r.cycles.is_empty() {
        sections.push(cycles(r));
    }
    sections.push(delivery(r));
    sections.push(section("Timeline", vec![Block::Chart(Chart::Timeline)]));
    sections.push(section(
        "Latency by percentile",
        vec![Block::Chart(Chart::Percentiles)],
    ));
    if !r.thresholds.is_empty() {
        let mut t = Table::new(&["", "metric", "condition", "measured"]);
        for o in &r.thresholds {
            t.rows.push(vec![
                Cell::Pass(o.passed),
                Cell::Code(o.metric.clone()),
                Cell::Code(o.condition.clone()),
                Cell::Text(
                    o.measured
                        .clone()
                        .or_else(|| o.note.clone())
                        .unwrap_or_else(|| "no samples".into()),
                ),
            ]);
        }
        sections.push(section("Thresholds", vec![Block::Table(t)]));
    }
    if !r.warnings.is_empty() {
        sections.push(section(
            "Warnings",
            vec![Block::List {
                title: None,
                tone: Tone::Plain,
                items: r.warnings.iter().map(|w| (None, w.clone())).collect(),
            }],
        ));
    }
    Doc { head, sections }
}

fn latency(r: &RunReport) -> Section {
    let rows = latency_rows(r);
    let mut blocks = Vec::new();
    if rows.is_empty() {
        blocks.push(Block::Note(Tone::Bad, "no message completed".into()));
    } else {
        blocks.push(Block::Table(stats_table("stream", "n", rows)));
    }
    if r.delivery.lost > 0 {
        blocks.push(Block::Note(
            Tone::Quiet,
            match r.delivery.lost {
                1 => "1 lost message is not in these percentiles".to_string(),
                n => format!("{n} lost messages are not in these percentiles"),
            },
        ));
    }
    section("End-to-end latency (from intended send)", blocks)
}

fn cold_starts(r: &RunReport) -> Section {
    let cold_pods = r.pods.iter().filter(|p| !p.preexisting).count();
    if cold_pods == 0 {
        return section(
            "Cold starts",
            vec![Block::Note(
                Tone::Plain,
                "no pod started during the run".into(),
            )],
        );
    }
    let mut rows: Vec<(String, Stats)> = POD_PHASES
        .iter()
        .zip(COLD_START_METRICS)
        .filter_map(|(phase, m)| {
            r.series
                .stats(m, "all", None)
                .map(|st| (phase.replace('_', " "), st))
        })
        .collect();
    if r.run.streams.len() > 1 {
        for s in &r.run.streams {
            if let Some(st) = r.series.stats("cold_start.total", s, None) {
                rows.push((format!("total · {s}"), st));
            }
        }
    }
    for m in ["node.boot", "node.gpu_driver"] {
        if let Some(st) = r.series.stats(m, crate::plan::sim::NODE_POOL, None) {
            rows.push((m.replace(['.', '_'], " "), st));
        }
    }
    let mut blocks = vec![
        Block::Chart(Chart::Waterfall),
        Block::Table(stats_table("phase", "pods", rows)),
    ];
    let restarts: u32 = r.pods.iter().map(|p| p.restarts).sum();
    if restarts > 0 {
        blocks.push(Block::Note(
            Tone::Bad,
            format!("{restarts} worker restarts after a crash (pods[].restarts in summary.json)"),
        ));
    }
    let why = problem_lines(r);
    if !why.is_empty() {
        blocks.push(Block::List {
            title: Some("Why they were slow (as the cluster reported)".into()),
            tone: Tone::Bad,
            items: why.into_iter().map(|(p, t)| (Some(p), t)).collect(),
        });
    }
    section(format!("Cold starts ({cold_pods} pods)"), blocks)
}

fn cost(r: &RunReport) -> Section {
    let c = &r.cost;
    let mut t = Table::new(&[
        "GPU-hours",
        "busy",
        "idle",
        "peak nodes",
        "nodes created",
        "cost",
        "price per GPU-hour",
    ]);
    let price = Cell::Usd(r.run.price_per_gpu_hour_usd);
    let mut blocks = Vec::new();
    if let Some(why) = c.unknown_why() {
        t.rows.push(vec![
            Cell::Unknown,
            Cell::Hours(c.gpu_busy_seconds / 3600.0),
            Cell::Unknown,
            Cell::Unknown,
            Cell::Unknown,
            Cell::Unknown,
            price,
        ]);
        blocks.push(Block::Table(t));
        blocks.push(Block::Note(
            Tone::Quiet,
            format!("GPU nodes and cost are {why}"),
        ));
    } else {
        t.rows.push(vec![
            Cell::Hours(c.gpu_seconds / 3600.0),
            Cell::Hours(c.gpu_busy_seconds / 3600.0),
            Cell::Hours(c.gpu_idle_seconds / 3600.0),
            Cell::Count(c.peak_nodes.into()),
            Cell::Count(c.nodes_created.into()),
            Cell::UsdTotal(c.cost_usd),
            price,
        ]);
        blocks.push(Block::Table(t));
    }
    section("GPU cost", blocks)
}

fn cycles(r: &RunReport) -> Section {
    // The streams first, then Deployments that matched no stream (named in the warnings).
    let mut scopes: Vec<&str> = r.run.streams.iter().map(String::as_str).collect();
    for c in &r.cycles {
        if !scopes.contains(&c.scope()) {
            scopes.push(c.scope());
        }
    }
    let mut summary = Table::new(&[
        "deployment",
        "cycles",
        "first ready, after the first message",
        "peak replicas",
        "to 0 replicas",
        "to 0 nodes",
        "cost",
    ]);
    for s in scopes {
        let cs: Vec<_> = r.cycles.iter().filter(|c| c.scope() == s).collect();
        if cs.is_empty() {
            continue;
        }
        let median = |f: &dyn Fn(&crate::analysis::ScaleCycle) -> Option<u64>| {
            let mut v: Vec<u64> = cs.iter().filter_map(|c| f(c)).collect();
            v.sort_unstable();
            Cell::Duration(v.get(v.len().saturating_sub(1) / 2).copied())
        };
        summary.rows.push(vec![
            Cell::Text(s.to_string()),
            Cell::Count(cs.len() as u64),
            median(&|c| c.time_to_first_ready_us),
            Cell::Count(cs.iter().map(|c| c.peak_replicas).max().unwrap_or(0).into()),
            median(&|c| c.to_zero_replicas_us),
            median(&|c| c.to_zero_nodes_us),
            cs.iter()
                .map(|c| c.cost_usd)
                .sum::<Option<f64>>()
                .map_or(Cell::Unknown, Cell::Usd),
        ]);
    }
    let mut each = Table::new(&[
        "deployment",
        "started at (run time)",
        "first ready, after the first message",
        "peak replicas",
        "to 0 replicas",
        "to 0 nodes",
        "GPU busy",
        "GPU idle",
        "cost",
    ]);
    for c in &r.cycles {
        let secs = |s: f64| Cell::Duration(Some(crate::units::Micros::from_secs_f64(s).0));
        each.rows.push(vec![
            Cell::Text(c.scope().to_string()),
            Cell::Duration(Some(c.start_us)),
            Cell::Duration(c.time_to_first_ready_us),
            Cell::Count(c.peak_replicas.into()),
            Cell::Duration(c.to_zero_replicas_us),
            Cell::Duration(c.to_zero_nodes_us),
            secs(c.gpu_busy_seconds),
            c.gpu_idle_seconds.map_or(Cell::Unknown, secs),
            c.cost_usd.map_or(Cell::Unknown, Cell::Usd),
        ]);
    }
    section(
        "Scale cycles (0 → N → 0)",
        vec![Block::Either {
            text: vec![
                Block::Table(summary),
                Block::Note(
                    Tone::Quiet,
                    "medians over each deployment's cycles; cost is their sum".into(),
                ),
            ],
            page: vec![Block::Table(each)],
        }],
    )
}

fn delivery(r: &RunReport) -> Section {
    let d = &r.delivery;
    let mut t = Table::new(&[]);
    let mut row = Vec::new();
    for (name, n) in d.columns() {
        t.columns.push(name.to_string());
        row.push(if name == "lost" {
            Cell::Alarm(n)
        } else {
            Cell::Count(n)
        });
    }
    if d.open_at_end > 0 {
        t.columns.push("open at end".into());
        row.push(Cell::Count(d.open_at_end));
    }
    t.rows.push(row);
    let mut blocks = vec![Block::Table(t)];
    let notes = [
        (
            d.redelivered > 0,
            Tone::Plain,
            format!(
                "{} redeliveries (a worker died or a lease lapsed)",
                d.redelivered
            ),
        ),
        (
            d.warmup_excluded > 0,
            Tone::Plain,
            format!(
                "{} completed during warm-up, left out of the latency statistics",
                d.warmup_excluded
            ),
        ),
        (
            !d.lost_ranges.is_empty(),
            Tone::Bad,
            format!(
                "lost: {}",
                crate::analysis::describe_ranges(&d.lost_ranges, 50)
            ),
        ),
    ];
    blocks.extend(
        notes
            .into_iter()
            .filter(|n| n.0)
            .map(|(_, tone, text)| Block::Note(tone, text)),
    );
    if let Some(h) = &d.harness {
        blocks.push(Block::Note(
            if h.pacer_saturated {
                Tone::Bad
            } else {
                Tone::Quiet
            },
            format!(
                "the harness: {}; saturated (≥ {:.0}% busy) in {} of {} seconds of sending{}",
                h.usage(),
                crate::analysis::SATURATED_BUSY * 100.0,
                h.saturated_s,
                h.sending_s,
                if h.pacer_saturated {
                    ": the pacer fell behind for want of CPU"
                } else {
                    ""
                },
            ),
        ));
    }
    section("Delivery", blocks)
}
