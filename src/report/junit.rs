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

pub fn render(r: &RunReport) -> String {
    let tests = r.thresholds.len();
    let failures = r.failed_thresholds();
    let secs = r.run.end_us as f64 / 1e6;
    let suite = escape(&format!("imagen-load.{}", r.run.workload));
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    writeln!(x, "<testsuites name=\"imagen-load\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{secs:.3}\">").unwrap();
    writeln!(
        x,
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{secs:.3}\">"
    )
    .unwrap();
    writeln!(x, "    <properties>").unwrap();
    for (k, v) in [
        ("run_id", r.run.run_id.as_str()),
        ("target", r.run.target.as_str()),
    ] {
        writeln!(x, "      <property name=\"{k}\" value=\"{}\"/>", escape(v)).unwrap();
    }
    writeln!(
        x,
        "      <property name=\"seed\" value=\"{}\"/>",
        r.run.seed
    )
    .unwrap();
    writeln!(x, "    </properties>").unwrap();
    for t in &r.thresholds {
        let (class, name) = (
            escape(&format!("thresholds.{}", t.metric)),
            escape(&t.condition),
        );
        if t.passed {
            match &t.note {
                Some(note) => writeln!(
                    x,
                    "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\">\n      <system-out>{}</system-out>\n    </testcase>",
                    escape(note)
                )
                .unwrap(),
                None => writeln!(x, "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\"/>").unwrap(),
            }
        } else {
            let message = escape(&format!("{}: {}", t.metric, t.describe()));
            writeln!(
                x,
                "    <testcase classname=\"{class}\" name=\"{name}\" time=\"0\">\n      <failure message=\"{message}\" type=\"threshold\">{message}</failure>\n    </testcase>"
            )
            .unwrap();
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}
