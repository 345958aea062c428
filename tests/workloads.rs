use crate::common::{bin, path};

#[test]
fn every_shipped_workload_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir(path("workloads")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            bin().arg("validate").arg(&p).assert().success();
            n += 1;
        }
    }
    assert!(n >= 5, "expected the five shipped workloads, found {n}");
}

/// Each broken fixture marks its offending line with `# <- error`; the message must name that line (with a
/// column), the key, and give a fix.
#[test]
fn every_broken_workload_fails_with_its_place_and_key() {
    let expected_keys = [
        ("unknown-key.toml", "stream[1].phase[1].rte"),
        ("wrong-type.toml", "stream[1].phase[1].count"),
        ("negative-rate.toml", "stream[1].phase[1].rate"),
        ("zero-rate.toml", "stream[1].phase[1].rate"),
        ("zero-duration.toml", "stream[1].phase[1].duration"),
        ("no-unit.toml", "stream[1].phase[1].duration"),
        ("empty-stream.toml", "stream[1].phase"),
        ("missing-trace.toml", "stream[1].phase[1].file"),
        ("trace-out-of-order.toml", "stream[1].phase[1].file"),
        ("unknown-kind.toml", "stream[1].phase[1].kind"),
        ("duplicate-stream.toml", "stream[2].name"),
        ("bad-placeholder.toml", "stream[1].payload"),
        ("unknown-pipeline.toml", "sim.pipeline.upscal"),
        ("amplitude-too-big.toml", "stream[1].phase[1].amplitude"),
        ("unknown-table.toml", "streams"),
        ("zero-count.toml", "stream[1].phase[1].count"),
        ("bad-sim-key.toml", "sim.keda.cooldown"),
        ("bad-cluster-scope.toml", "cluster.require_zero"),
        ("shared-deployment.toml", "stream[2].deployment"),
        ("bad-deployment-name.toml", "stream[1].deployment"),
        ("unit-case.toml", "stream[1].phase[1].duration"),
    ];
    let dir = path("fixtures/bad-workloads");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&p).unwrap();
        let line = text
            .lines()
            .position(|l| l.contains("# <- error"))
            .unwrap_or_else(|| panic!("{name} has no marker"))
            + 1;
        let out = bin().arg("validate").arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: exit code");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        let err = String::from_utf8(out.stderr).unwrap();
        let place = format!("{name}:{line}:");
        assert!(
            err.contains(&place),
            "{name}: expected `{place}<col>` in\n{err}"
        );
        let after = &err[err.find(&place).unwrap() + place.len()..];
        assert!(
            after.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "{name}: no column after the line in\n{err}"
        );
        if name != "syntax-error.toml" {
            let (_, key) = expected_keys
                .iter()
                .find(|(f, _)| *f == name)
                .unwrap_or_else(|| panic!("add {name} to the table"));
            assert!(
                err.contains(&format!("`{key}`")),
                "{name}: expected key `{key}` in\n{err}"
            );
        }
        assert!(err.contains("fix:"), "{name}: no fix in\n{err}");
        seen += 1;
    }
    assert!(seen >= 10, "at least ten broken fixtures, found {seen}");
}

/// A mistake inside a `[[stream]]` (`witin` for `within`) once added a second, false problem wherever the file
/// named that stream ("sim.pipeline.upscale: no stream is named upscale"). One mistake is one problem.
#[test]
fn a_mistake_inside_a_stream_is_one_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("one.toml");
    std::fs::write(
        &p,
        "[[stream]]\nname = \"upscale\"\n  [[stream.phase]]\n  kind = \"burst\"\n  count = 5\n  witin = \"30s\"\n\
         [[stream]]\nname = \"upscale\"\n  [[stream.phase]]\n  kind = \"burst\"\n  count = 1\n\
         [sim.pipeline.upscale.worker]\nmodel_load = \"10s\"\n\
         [thresholds]\n\"e2e_latency{stream:upscale}\" = [\"p(95)<10m\"]\n",
    )
    .unwrap();
    let out = bin().arg("validate").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("no stream is named"), "{err}");
    assert!(err.contains("witin"), "{err}");
    // The second stream reuses the name: that is a real problem, placed at the second stream (line 7).
    assert!(
        err.contains("one.toml:7:") && err.contains("already used by stream 1"),
        "{err}"
    );
    assert!(err.contains("2 problems"), "{err}");
}

#[test]
fn validate_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("many.toml");
    std::fs::write(
        &p,
        "[run]\nseed = -1\n[[stream]]\nname = \"a\"\n  [[stream.phase]]\n  kind = \"constant\"\n  rate = \"0/s\"\n  duration = \"1m\"\n  [[stream.phase]]\n  kind = \"burts\"\n[[stream]]\nname = \"b\"\n",
    )
    .unwrap();
    let out = bin().arg("validate").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("4 problems"), "{err}");
    for place in [
        "many.toml:2:",
        "many.toml:7:",
        "many.toml:10:",
        "many.toml:11:",
    ] {
        assert!(err.contains(place), "missing {place} in\n{err}");
    }
}

#[test]
fn refused_workload_writes_nothing() {
    let out_dir = tempfile::tempdir().unwrap();
    bin()
        .args(["run", "fixtures/bad-workloads/unknown-key.toml", "--out"])
        .arg(out_dir.path())
        .assert()
        .code(2);
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0);
}

#[test]
fn huge_workload_is_refused_with_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.toml");
    std::fs::write(&p, "[[stream]]\nname = \"a\"\n  [[stream.phase]]\n  kind = \"burst\"\n  count = 1000000000000\n").unwrap();
    let out = bin().arg("validate").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 50000000"));
}

/// Managed Prometheus' query frontend gets an ADC bearer token unless told otherwise; any other Prometheus URL
/// gets none unless told.
#[test]
fn prometheus_auth_defaults_to_adc_on_managed_prometheus_only() {
    let plan = |url: &str, auth: &str| {
        crate::common::plan_from(&format!(
            "[target]\nkind = \"gcp\"\nbacklog = \"prometheus\"\nprometheus_url = \"{url}\"\n{auth}\n[[stream]]\nname = \"s\"\n[[stream.phase]]\nkind = \"burst\"\ncount = 1\n"
        ))
        .pubsub
        .prometheus_uses_adc()
    };
    let gmp = "https://monitoring.googleapis.com/v1/projects/p/location/global/prometheus";
    assert!(plan(gmp, ""));
    assert!(!plan(gmp, "prometheus_auth = \"none\""));
    assert!(!plan("http://localhost:9090", ""));
    assert!(plan("http://localhost:9090", "prometheus_auth = \"adc\""));
}
