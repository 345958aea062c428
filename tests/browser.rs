//! The HTML report: self-contained (checked always) and rendering in headless Chromium (needs `chromium`).

use crate::common::{path, run_burst};

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

#[test]
#[ignore = "needs Debian's chromium package (apt-get install chromium); run with --ignored"]
fn report_renders_in_headless_chromium() {
    let out = run_report();
    let status = std::process::Command::new(path("tests/browser/render.sh"))
        .arg(out.path().join("h"))
        .arg(out.path().join("shot.png"))
        .status()
        .expect("bash");
    assert!(status.success());
    assert!(
        std::fs::metadata(out.path().join("shot.png"))
            .unwrap()
            .len()
            > 10_000
    );
}
