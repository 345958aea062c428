//! `junit.xml`: one test case per threshold condition, failures carrying the measured value. The shape is the one
//! GitHub Actions test reporters, GitLab (`artifacts:reports:junit`) and Jenkins' JUnit plugin read:
//! `<testsuites>` → `<testsuite name tests failures errors skipped time>` → `<testcase classname name time>` with
//! an optional `<failure message type>`.

use crate::analysis::RunReport;
use std::fmt::Write as _;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// One test case: a threshold, or a compared series. `failure` is the message when it failed; `out` is text a
/// reporter shows beside a passing case.
#[derive(Debug, Clone, Default)]
pub struct Case {
    pub class: String,
    pub name: String,
    pub failure: Option<String>,
    pub out: Option<String>,
}

/// One `<testsuite>`: a run's thresholds, or a comparison's series.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    pub name: String,
    /// When the run started (UTC); `None` for a simulated run, which has no wall clock.
    pub started_unix_us: Option<u64>,
    pub time_s: f64,
    pub properties: Vec<(String, String)>,
    pub cases: Vec<Case>,
}

/// JUnit's `timestamp`: `xs:dateTime` without a zone (the JUnit XSD's pattern `YYYY-MM-DDTHH:MM:SS`), in UTC.
pub fn timestamp(unix_us: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(unix_us);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .trim_end_matches('Z')
        .to_string()
}

/// A `junit.xml` document with one suite.
pub fn render_suite(suite: &Suite) -> String {
    render_suites(std::slice::from_ref(suite))
}

/// A `junit.xml` document: `<testsuites>` with these suites and their totals.
pub fn render_suites(suites: &[Suite]) -> String {
    let count = |s: &Suite| {
        (
            s.cases.len(),
            s.cases.iter().filter(|c| c.failure.is_some()).count(),
        )
    };
    let tests: usize = suites.iter().map(|s| count(s).0).sum();
    let failures: usize = suites.iter().map(|s| count(s).1).sum();
    let secs: f64 = suites.iter().map(|s| s.time_s).sum();
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    writeln!(x, "<testsuites name=\"imagen-load\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{secs:.3}\">").unwrap();
    for suite in suites {
        let (tests, failures) = count(suite);
        let secs = suite.time_s;
        let name = escape(&suite.name);
        let stamp = suite
            .started_unix_us
            .filter(|&t| t > 0)
            .map(|t| format!(" timestamp=\"{}\"", timestamp(t)))
            .unwrap_or_default();
        writeln!(
            x,
            "  <testsuite name=\"{name}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{secs:.3}\"{stamp}>"
        )
        .unwrap();
        writeln!(x, "    <properties>").unwrap();
        for (k, v) in &suite.properties {
            writeln!(
                x,
                "      <property name=\"{}\" value=\"{}\"/>",
                escape(k),
                escape(v)
            )
            .unwrap();
        }
        writeln!(x, "    </properties>").unwrap();
        for c in &suite.cases {
            let (class, name) = (escape(&c.class), escape(&c.name));
            match (&c.failure, &c.out) {
                (Some(f), _) => {
                    let message = escape(f);
                    writeln!(
                        x,
                        "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\">\n      <failure message=\"{message}\" type=\"threshold\">{message}</failure>\n    </testcase>"
                    )
                    .unwrap();
                }
                (None, Some(out)) => writeln!(
                    x,
                    "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\">\n      <system-out>{}</system-out>\n    </testcase>",
                    escape(out)
                )
                .unwrap(),
                (None, None) => writeln!(
                    x,
                    "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\"/>"
                )
                .unwrap(),
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// A run's `junit.xml`: one case per threshold condition.
pub fn render(r: &RunReport) -> String {
    render_suite(&Suite {
        name: format!("imagen-load.{}", r.run.workload),
        started_unix_us: Some(r.run.wall_clock_start_unix_us),
        time_s: r.run.end_us as f64 / 1e6,
        properties: vec![
            ("run_id".into(), r.run.run_id.clone()),
            ("target".into(), r.run.target.clone()),
            ("seed".into(), r.run.seed.to_string()),
        ],
        cases: r
            .thresholds
            .iter()
            .map(|t| Case {
                class: format!("thresholds.{}", t.metric),
                name: t.condition.clone(),
                failure: (!t.passed).then(|| format!("{}: {}", t.metric, t.describe())),
                out: t.note.clone(),
            })
            .collect(),
    })
}

/// A comparison as a suite (`compare --junit`, `report --junit`): one case per compared series (and one for lost
/// messages), failed when the gate calls it a regression. `gating` is false when the command only reports: then
/// nothing fails and each case says what it found.
pub fn comparison_suite(
    name: &str,
    c: &crate::outputs::compare::Comparison,
    gating: bool,
) -> Suite {
    use crate::outputs::compare::Verdict;
    let mut cases: Vec<Case> = c
        .rows
        .iter()
        .map(|row| {
            let said = format!(
                "p{} {} -> {} ({:+.1}%), {:?}",
                c.percentile,
                crate::units::human_us(row.base_gate_us),
                crate::units::human_us(row.current_gate_us),
                row.change * 100.0,
                row.verdict
            );
            let failed = gating && row.verdict == Verdict::Regression;
            Case {
                class: "compare".into(),
                name: row.metric.clone(),
                failure: failed.then(|| format!("{}: regressed: {said}", row.metric)),
                out: (!failed).then_some(said),
            }
        })
        .collect();
    let lost_failed = gating && c.current_lost > c.base_lost;
    let said = format!("lost {} -> {}", c.base_lost, c.current_lost);
    cases.push(Case {
        class: "compare".into(),
        name: "lost".into(),
        failure: lost_failed.then(|| format!("more messages lost: {said}")),
        out: (!lost_failed).then_some(said),
    });
    Suite {
        name: name.to_string(),
        started_unix_us: None,
        time_s: 0.0,
        properties: vec![
            ("base".into(), c.base.clone()),
            ("current".into(), c.current.clone()),
            ("percentile".into(), c.percentile.to_string()),
            ("tolerance".into(), c.tolerance.to_string()),
        ],
        cases,
    }
}
