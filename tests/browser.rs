//! The HTML report: self-contained (checked always) and rendering in headless Chromium (needs `chromium`).

use crate::common::{bin, path, run_burst};
use serde_json::Value;
use std::path::Path;

fn run_report() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    run_burst(
        out.path(),
        "h",
        &["--gates", "fixtures/gates/burst-fail.toml"],
    )
    .code(1);
    out
}

#[test]
fn the_html_report_is_one_self_contained_file() {
    let out = run_report();
    let html = std::fs::read_to_string(out.path().join("h/report.html")).unwrap();
    for forbidden in [
        "<script", "src=", "href=", "url(", "@import", "http://", "https://",
    ] {
        assert!(
            !html.contains(forbidden),
            "report.html must not reference `{forbidden}`"
        );
    }
    for wanted in [
        "Messages per minute",
        "Backlog",
        "Replicas",
        "GPU nodes",
        "by percentile",
        "phase by phase",
        "Failed thresholds",
        "<svg",
    ] {
        assert!(html.contains(wanted), "report.html lacks `{wanted}`");
    }
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
}

fn chromium() -> bool {
    let here = std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    crate::peers::peer("Chromium", here, "apt-get install chromium")
}

/// Where each chart of `page` lands once Chromium has laid it out: `{page: [w, h], charts: [{title, x, y, w, h,
/// marks}]}` in CSS pixels, from `tests/browser/probe.js` run on a copy of the page.
fn layout(page: &Path, scratch: &Path) -> Value {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = std::fs::read_to_string(path("tests/browser/probe.js")).unwrap();
    let copy = scratch.join("probed.html");
    std::fs::write(&copy, format!("{html}<script>{probe}</script>")).unwrap();
    let out = std::process::Command::new("timeout")
        .arg("90")
        .arg("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,3000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("profile").display()
        ))
        .arg(format!("file://{}", copy.display()))
        .output()
        .expect("chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.rfind(r#"<pre id="imagen-layout">"#).unwrap_or_else(|| {
        panic!(
            "{}: no layout: {}",
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    }) + r#"<pre id="imagen-layout">"#.len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", page.display()))
}

/// Every chart of a page: as many as the page has `<svg>`s (at least `min`), each with a size, inside the page
/// (nothing cut off at the right or bottom), and drawing marks, not just a frame. Returns the layout.
fn check_charts(page: &Path, min: usize) -> Value {
    let scratch = tempfile::tempdir().unwrap();
    let l = layout(page, scratch.path());
    let name = page.display();
    let (pw, ph) = (
        l["page"][0].as_f64().unwrap(),
        l["page"][1].as_f64().unwrap(),
    );
    let charts = l["charts"].as_array().unwrap();
    let svgs = std::fs::read_to_string(page)
        .unwrap()
        .matches("<svg")
        .count();
    assert_eq!(charts.len(), svgs, "{name}");
    assert!(charts.len() >= min, "{name}: {} charts", charts.len());
    for c in charts {
        let f = |k: &str| c[k].as_f64().unwrap();
        assert!(
            f("w") > 100.0 && f("h") > 50.0,
            "{name}: a chart too small: {c}"
        );
        assert!(
            f("x") >= 0.0 && f("y") >= 0.0,
            "{name}: a chart off the page: {c}"
        );
        assert!(
            f("x") + f("w") <= pw + 0.5,
            "{name}: wider than the page ({pw}): {c}"
        );
        assert!(
            f("y") + f("h") <= ph + 0.5,
            "{name}: below the page ({ph}): {c}"
        );
        assert!(
            c["marks"].as_u64().unwrap() >= 4,
            "{name}: an empty chart: {c}"
        );
    }
    // Rendered without console errors or network requests, to a screenshot that is not blank.
    let shot = scratch.path().join("shot.png");
    let status = std::process::Command::new(path("tests/browser/render.sh"))
        .arg(page)
        .arg(&shot)
        .status()
        .expect("bash");
    assert!(status.success(), "{name}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "{name}");
    l
}

/// The y of a laid-out section or chart whose title starts with `title`.
fn y_of(items: &Value, title: &str) -> f64 {
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"].as_str().unwrap().starts_with(title))
        .unwrap_or_else(|| panic!("no `{title}` in {items}"))["y"]
        .as_f64()
        .unwrap()
}

/// What a newcomer sees first in `report.html` of `workloads/burst.toml`, laid out by Chromium at 1100 px wide:
/// the end-to-end latency and where the time went end above 900 px (the first screen of a laptop), and the charts
/// come in the page's order, each drawn: the cold-start waterfall, the timeline, then the percentile curves.
fn check_first_screen_and_chart_order(l: &Value) {
    let sections = &l["sections"];
    assert!(
        y_of(sections, "End-to-end latency") < y_of(sections, "Where message time went"),
        "{sections}"
    );
    assert!(
        y_of(sections, "Cold starts") < 900.0,
        "where the time went is not on the first screen: {sections}"
    );
    let charts = &l["charts"];
    let order = [
        "cold-start waterfall",
        "Messages per minute",
        "GPU nodes",
        "End-to-end latency by percentile",
    ];
    for w in order.windows(2) {
        assert!(
            y_of(charts, w[0]) < y_of(charts, w[1]),
            "`{}` before `{}`: {charts}",
            w[0],
            w[1]
        );
    }
}

/// The three pages the harness writes, laid out by a real browser: a run's `report.html`, the nightly trend page
/// and the what-if page with a sweep.
#[test]
fn every_page_renders_its_charts_in_headless_chromium() {
    if !chromium() {
        return;
    }
    let out = run_report();
    let l = check_charts(&out.path().join("h/report.html"), 5);
    check_first_screen_and_chart_order(&l);
    run_burst(out.path(), "h2", &[]).success();
    let nightly = out.path().join("nightly.html");
    bin()
        .arg("report")
        .arg(out.path())
        .arg("--out")
        .arg(&nightly)
        .assert()
        .success();
    check_charts(&nightly, 4);
    let whatif = out.path().join("whatif.html");
    bin()
        .args([
            "whatif",
            "workloads/burst.toml",
            "--sweep",
            "cooldownPeriod=60s,300s,900s",
            "--html",
        ])
        .arg(&whatif)
        .assert()
        .success();
    check_charts(&whatif, 1);
}
