//! The workload language: a TOML file of `[run]`, `[[stream]]` with ordered phases, and `[sim]`, resolved once into
//! a validated [`Plan`]. Nothing downstream reads TOML or clap types.
//!
//! Every problem found is collected with its file, line, column, key and a fix, so `validate` can report them all
//! at once. See `workloads/README.md` for the language.

mod model;
mod template;
mod trace;

pub use crate::plan::diagnostics::{
    Error, MAX_WORKLOAD_FILE_BYTES, Problem, Result, line_col, nearest,
};
use crate::plan::diagnostics::{Val, de};
pub use model::*;
pub use template::{RenderContext, Template};

use crate::limits::MAX_MESSAGES_PER_RUN;
use crate::plan::diagnostics::Diagnostics;
use crate::plan::sim::SimConfig;
use crate::units::{Micros, Rate};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Applies overrides with toml_edit, which keeps the rest of the file (and so its line numbers) intact.
fn apply_overrides(src: &str, overrides: &[Override]) -> Result<String> {
    if overrides.is_empty() {
        return Ok(src.to_string());
    }
    let mut doc: toml_edit::DocumentMut =
        src.parse()
            .map_err(|e: toml_edit::TomlError| Error::BadOverride {
                text: String::new(),
                message: e.to_string(),
            })?;
    for o in overrides {
        let bad = |message: String| Error::BadOverride {
            text: o.text.clone(),
            message,
        };
        // A value is TOML when it parses as one (`1`, `true`, `"x"`, `[1, 2]`), otherwise a plain string (`90s`).
        let value: toml_edit::Value = o
            .value
            .parse()
            .unwrap_or_else(|_| toml_edit::Value::from(o.value.as_str()));
        let (last, parents) = o.path.split_last().expect("non-empty path");
        let mut table = doc.as_table_mut() as &mut dyn toml_edit::TableLike;
        for p in parents {
            let entry = table.entry(p).or_insert(toml_edit::table());
            if entry.is_array_of_tables() {
                return Err(bad(format!(
                    "`{p}` is a list of tables; `--set` only reaches keys of plain tables"
                )));
            }
            table = entry
                .as_table_like_mut()
                .ok_or_else(|| bad(format!("`{p}` is a value, not a table")))?;
        }
        table.insert(last, toml_edit::Item::Value(value));
    }
    Ok(doc.to_string())
}

/// The `name` of every `[[stream]]` table that has one (a string), in file order, whether or not the stream is
/// otherwise valid.
fn declared_stream_names(root: &DeTable<'_>) -> Vec<String> {
    let Some(DeValue::Array(arr)) = root.get("stream").map(|v| v.get_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    for s in arr {
        let name = s
            .get_ref()
            .as_table()
            .and_then(|t| t.get("name"))
            .and_then(|n| n.get_ref().as_str());
        if let Some(n) = name
            && !names.iter().any(|x| x == n)
        {
            names.push(n.to_string());
        }
    }
    names
}

/// Reads, overrides and validates a workload file.
pub fn load(path: &Path, overrides: &[Override]) -> Result<Plan> {
    use std::io::Read;
    let failed = |error| Error::ReadFailed {
        role: "workload file",
        path: path.to_path_buf(),
        error,
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    // Read at most one byte past the limit: a huge (or endless, like /dev/zero) file is refused, not slurped.
    let mut bytes = Vec::new();
    file.take(MAX_WORKLOAD_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_WORKLOAD_FILE_BYTES {
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(Error::TooBig {
            path: path.to_path_buf(),
            bytes: size,
        });
    }
    let src = String::from_utf8(bytes).map_err(|e| {
        failed(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({e})"),
        ))
    })?;
    let src = apply_overrides(&src, overrides)?;
    let mut plan = parse(path, &src).map_err(|e| blame_overrides(e, overrides))?;
    plan.overrides = overrides.iter().map(|o| o.text.clone()).collect();
    Ok(plan)
}

/// A problem at a key that a `--set` wrote is the flag's, not a line of the file: it is named by the flag.
fn blame_overrides(e: Error, overrides: &[Override]) -> Error {
    let Error::Invalid { mut problems } = e else {
        return e;
    };
    for p in &mut problems {
        let set = overrides.iter().rev().find(|o| {
            let key = o.path.join(".");
            p.key == key
                || p.key.starts_with(&format!("{key}."))
                || p.key.starts_with(&format!("{key}["))
        });
        if let Some(o) = set {
            p.file = PathBuf::from(format!("--set {}", o.text));
            p.line = 0;
            p.column = 0;
        }
    }
    Error::Invalid { problems }
}

/// Validates workload text; `path` names it in messages and anchors relative paths (trace files, profiles).
pub fn parse(path: &Path, src: &str) -> Result<Plan> {
    let mut diag = Diagnostics::new(path, src);
    let root = match DeTable::parse(src) {
        Ok(t) => t,
        Err(e) => {
            diag.push(
                e.span(),
                "",
                format!("not valid TOML: {}", e.message().trim()),
                Some("fix the TOML syntax at this place".into()),
            );
            return Err(Error::Invalid {
                problems: diag.problems,
            });
        }
    };
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let plan = resolve(&mut diag, root.get_ref(), &base_dir, path);
    match plan {
        Some(mut plan) if diag.problems.is_empty() => {
            plan.text = src.to_string();
            Ok(plan)
        }
        _ => {
            let mut problems = diag.problems;
            // In reading order: file, then line, then column (problems without a place last).
            problems.sort_by_key(|p| (p.file.clone(), p.line == 0, p.line, p.column));
            Err(Error::Invalid { problems })
        }
    }
}

const TOP_KEYS: [&str; 6] = ["run", "stream", "sim", "target", "cluster", "thresholds"];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunRaw {
    name: Option<String>,
    seed: Option<u64>,
    deadline: Option<Micros>,
    warmup: Option<Micros>,
    drain: Option<Micros>,
    timer_slack: Option<Micros>,
    metrics_addr: Option<std::net::SocketAddr>,
    otlp_endpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetRaw {
    kind: TargetKind,
    project: Option<String>,
    endpoint: Option<String>,
    results_topic: Option<String>,
    results_subscription: Option<String>,
    create_topics: Option<bool>,
    ack_deadline: Option<Micros>,
    publish_batch_delay: Option<Micros>,
    publish_retry_budget: Option<Micros>,
    max_outstanding_messages: Option<u64>,
    max_outstanding_bytes: Option<u64>,
    backlog: Option<BacklogKind>,
    backlog_interval: Option<Micros>,
    prometheus_url: Option<String>,
    prometheus_query: Option<String>,
    prometheus_auth: Option<PrometheusAuth>,
    monitoring_endpoint: Option<String>,
}

impl TargetRaw {
    fn into_plan(self) -> (TargetKind, PubsubPlan) {
        let d = PubsubPlan::default();
        let plan = PubsubPlan {
            project: self.project,
            endpoint: self.endpoint,
            results_topic: self.results_topic.unwrap_or(d.results_topic),
            results_subscription: self.results_subscription.unwrap_or(d.results_subscription),
            create_topics: self.create_topics,
            ack_deadline: self.ack_deadline.unwrap_or(d.ack_deadline),
            publish_batch_delay: self.publish_batch_delay.unwrap_or(d.publish_batch_delay),
            publish_retry_budget: self.publish_retry_budget.unwrap_or(d.publish_retry_budget),
            max_outstanding_messages: self
                .max_outstanding_messages
                .unwrap_or(d.max_outstanding_messages)
                .max(1),
            max_outstanding_bytes: self
                .max_outstanding_bytes
                .unwrap_or(d.max_outstanding_bytes)
                .max(1),
            backlog: self.backlog,
            backlog_interval: self.backlog_interval.unwrap_or(
                if self.backlog == Some(BacklogKind::CloudMonitoring) {
                    CLOUD_MONITORING_INTERVAL
                } else {
                    d.backlog_interval
                },
            ),
            prometheus_url: self.prometheus_url,
            prometheus_query: self.prometheus_query,
            prometheus_auth: self.prometheus_auth,
            monitoring_endpoint: self.monitoring_endpoint,
        };
        (self.kind, plan)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamRaw {
    name: String,
    topic: Option<String>,
    subscription: Option<String>,
    deployment: Option<String>,
    scaled_object: Option<String>,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// Phase kinds, each with its own keys. `kind` is read first and the rest of the table is deserialized into the
/// kind's struct directly, so every error keeps the span of its own key or value.
enum PhaseRaw {
    Idle(IdleRaw),
    Constant(RateRaw),
    Poisson(RateRaw),
    Ramp(RampRaw),
    Burst(BurstRaw),
    Sine(SineRaw),
    Diurnal(DiurnalRaw),
    Trace(TraceRaw),
    Repeat(RepeatRaw),
    Http(HttpStep),
}

const PHASE_KINDS: [&str; 10] = [
    "idle", "constant", "ramp", "burst", "poisson", "sine", "diurnal", "trace", "repeat", "http",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdleRaw {
    duration: Micros,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateRaw {
    rate: Rate,
    duration: Micros,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RampRaw {
    from: Rate,
    to: Rate,
    duration: Micros,
    #[serde(default)]
    arrivals: Arrivals,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BurstRaw {
    count: i64,
    #[serde(default)]
    within: Micros,
    #[serde(default)]
    spread: Spread,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SineRaw {
    base: Rate,
    amplitude: Rate,
    period: Micros,
    duration: Micros,
    #[serde(default)]
    arrivals: Arrivals,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiurnalRaw {
    base: Rate,
    amplitude: Rate,
    #[serde(default = "day")]
    period: Micros,
    /// Offset within the period at which the rate peaks (default 14h: mid-afternoon).
    #[serde(default = "afternoon")]
    peak: Micros,
    duration: Micros,
    #[serde(default)]
    arrivals: Arrivals,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceRaw {
    file: String,
    #[serde(default = "one")]
    time_scale: f64,
    column: Option<String>,
    duration: Option<Micros>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RepeatRaw {
    times: i64,
    /// Resolved phase by phase from the spanned table, for precise diagnostics.
    #[serde(rename = "phases")]
    _phases: toml::Value,
}

fn de_phase(
    diag: &mut Diagnostics<'_>,
    v: &Val<'_>,
    table: &DeTable<'_>,
    key: &str,
) -> Option<PhaseRaw> {
    let kind_v = table.get("kind")?;
    let Some(kind) = kind_v.get_ref().as_str() else {
        diag.push(
            Some(kind_v.span()),
            format!("{key}.kind"),
            "`kind` must be a string",
            Some(format!("one of: {}", PHASE_KINDS.join(", "))),
        );
        return None;
    };
    let mut rest = table.clone();
    rest.remove("kind");
    let r = Spanned::new(v.span(), DeValue::Table(rest));
    match kind {
        "idle" => de(diag, &r, key).map(PhaseRaw::Idle),
        "constant" => de(diag, &r, key).map(PhaseRaw::Constant),
        "poisson" => de(diag, &r, key).map(PhaseRaw::Poisson),
        "ramp" => de(diag, &r, key).map(PhaseRaw::Ramp),
        "burst" => de(diag, &r, key).map(PhaseRaw::Burst),
        "sine" => de(diag, &r, key).map(PhaseRaw::Sine),
        "diurnal" => de(diag, &r, key).map(PhaseRaw::Diurnal),
        "trace" => de(diag, &r, key).map(PhaseRaw::Trace),
        "repeat" => de(diag, &r, key).map(PhaseRaw::Repeat),
        "http" => de(diag, &r, key).map(PhaseRaw::Http),
        other => {
            let fix = match nearest(other, PHASE_KINDS) {
                Some(n) => format!("did you mean `{n}`? (kinds: {})", PHASE_KINDS.join(", ")),
                None => format!("use one of: {}", PHASE_KINDS.join(", ")),
            };
            diag.push(
                Some(kind_v.span()),
                format!("{key}.kind"),
                format!("unknown phase kind `{other}`"),
                Some(fix),
            );
            None
        }
    }
}

fn day() -> Micros {
    Micros::from_secs(86_400)
}
fn afternoon() -> Micros {
    Micros::from_secs(14 * 3600)
}
fn one() -> f64 {
    1.0
}

fn resolve(
    diag: &mut Diagnostics<'_>,
    root: &DeTable<'_>,
    base_dir: &Path,
    path: &Path,
) -> Option<Plan> {
    for (k, v) in root.iter() {
        let key = k.get_ref().as_ref();
        if !TOP_KEYS.contains(&key) {
            let fix = match nearest(key, TOP_KEYS) {
                Some(n) => format!(
                    "did you mean `[{n}]`? (top-level tables: {})",
                    TOP_KEYS.join(", ")
                ),
                None => format!("remove it; top-level tables are {}", TOP_KEYS.join(", ")),
            };
            diag.push(
                Some(k.span()),
                key,
                format!("unknown top-level key `{key}`"),
                Some(fix),
            );
        } else if key != "stream" && v.get_ref().as_table().is_none() {
            diag.push(
                Some(v.span()),
                key,
                format!("`{key}` must be a table"),
                Some(format!("write it as `[{key}]`")),
            );
        }
    }
    let whole = 0..0;
    let run: RunRaw = match root.get("run") {
        Some(v) if v.get_ref().is_table() => de(diag, v, "run").unwrap_or_default(),
        _ => RunRaw::default(),
    };
    let target = match root.get("target") {
        Some(v) if v.get_ref().is_table() => {
            de::<TargetRaw>(diag, v, "target").map(TargetRaw::into_plan)
        }
        _ => None,
    };
    let cluster = match root.get("cluster") {
        Some(v) if v.get_ref().is_table() => de::<ClusterPlan>(diag, v, "cluster"),
        _ => None,
    };
    let streams = match root.get("stream").map(|v| (v.span(), v.get_ref())) {
        Some((_, DeValue::Array(arr))) => arr
            .iter()
            .enumerate()
            .filter_map(|(i, s)| resolve_stream(diag, s, i + 1, base_dir))
            .collect::<Vec<_>>(),
        Some((span, _)) => {
            diag.push(
                Some(span),
                "stream",
                "`stream` must be a list of tables",
                Some("write each stream as `[[stream]]`".into()),
            );
            Vec::new()
        }
        None => {
            diag.push(
                Some(whole.clone()),
                "stream",
                "the workload has no streams",
                Some(
                    "add at least one `[[stream]]` with a `name` and `[[stream.phase]]` entries"
                        .into(),
                ),
            );
            Vec::new()
        }
    };
    let mut seen = BTreeMap::new();
    if let Some(DeValue::Array(arr)) = root.get("stream").map(|v| v.get_ref()) {
        // By position in the file (a stream that failed to parse still counts), so the place named is right.
        for (i, v) in arr.iter().enumerate() {
            let Some(name) = v
                .get_ref()
                .as_table()
                .and_then(|t| t.get("name"))
                .and_then(|n| n.get_ref().as_str())
            else {
                continue;
            };
            if let Some(first) = seen.insert(name.to_string(), i + 1) {
                let span = Some(v.span());
                diag.push(
                    span,
                    format!("stream[{}].name", i + 1),
                    format!("stream name `{name}` is already used by stream {first}"),
                    Some(
                        "give every stream its own name (it names the pipeline and its Deployment)"
                            .into(),
                    ),
                );
            }
        }
    }
    // One identity per pipeline: no two streams may claim one Deployment, ScaledObject or subscription (the
    // analysis ties cluster objects and worker reports to streams through them).
    if let Some(DeValue::Array(arr)) = root.get("stream").map(|v| v.get_ref()) {
        type Claim = fn(&StreamPlan) -> &str;
        let claims: [(&str, &str, Claim); 3] = [
            ("deployment", "Deployment", StreamPlan::deployment_name),
            (
                "scaled_object",
                "ScaledObject",
                StreamPlan::scaled_object_name,
            ),
            ("subscription", "subscription", |s| s.subscription.as_str()),
        ];
        for (field, what, name_of) in claims {
            let mut claimed: BTreeMap<&str, &str> = BTreeMap::new();
            for (i, s) in streams.iter().enumerate() {
                let name = name_of(s);
                let Some(first) = claimed.insert(name, &s.name) else {
                    continue;
                };
                if first == s.name {
                    continue; // the same name twice is reported once, as a stream name used twice
                }
                let place = arr.get(i).and_then(|v| {
                    let t = v.get_ref().as_table()?;
                    Some(t.get(field).map_or(v.span(), |f| f.span()))
                });
                diag.push(
                    place,
                    format!("stream[{}].{field}", i + 1),
                    format!(
                        "streams `{first}` and `{}` both claim the {what} `{name}`",
                        s.name
                    ),
                    Some(format!(
                        "each pipeline has its own {what}: set `{field}` on one of them to the {what} its workers use"
                    )),
                );
            }
        }
    }
    let total: f64 = streams
        .iter()
        .flat_map(|s| &s.phases)
        .map(Phase::expected_messages)
        .sum();
    if total > MAX_MESSAGES_PER_RUN as f64 {
        diag.push(
            None,
            "stream",
            format!("the workload asks for about {total:.0} messages; one run may send at most {MAX_MESSAGES_PER_RUN}"),
            Some("shorten the phases, lower the rates, or split the load across runs".into()),
        );
    }
    // Every stream the file declares by name, including one that failed to parse: a mistake inside a stream is
    // one problem, not also "no stream is named …" wherever the sim or thresholds tables name it.
    let mut stream_names: Vec<String> = declared_stream_names(root);
    for s in &streams {
        if !stream_names.contains(&s.name) {
            stream_names.push(s.name.clone());
        }
    }
    let sim = crate::plan::sim::resolve(diag, root.get("sim"), &stream_names, base_dir);
    let thresholds = root
        .get("thresholds")
        .map(|t| crate::plan::thresholds::parse_table(diag, t, &stream_names))
        .unwrap_or_default();
    let name = run.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "workload".into())
    });
    // Where `[run] key` is written, for a problem with its value.
    let run_span = |key: &str| {
        root.get("run")
            .and_then(|r| r.get_ref().get(key))
            .map(|v| v.span())
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || name.is_empty()
    {
        diag.push(
            run_span("name"),
            "run.name",
            format!("run name `{name}` must be letters, digits, `-` or `_`"),
            Some("it names the results folder; e.g. `burst-nightly`".into()),
        );
    }
    if run.timer_slack.is_some_and(|t| t > MAX_TIMER_SLACK) {
        diag.push(
            run_span("timer_slack"),
            "run.timer_slack",
            format!(
                "timer_slack may be at most {}: it is how late a send may be to share a wake-up",
                crate::units::human_us(MAX_TIMER_SLACK.0)
            ),
            Some(
                "`200us` (the default) costs a half to two thirds of the CPU of `0s` at 50,000/s; shape \
                 bursts with phases"
                    .into(),
            ),
        );
    }
    Some(Plan {
        source: path.to_path_buf(),
        name,
        seed: run.seed.unwrap_or(1),
        deadline: run.deadline.unwrap_or(Micros::from_secs(15 * 60)),
        warmup: run.warmup.unwrap_or_default(),
        drain: run.drain.unwrap_or(Micros::from_secs(30 * 60)),
        timer_slack: run.timer_slack.unwrap_or(DEFAULT_TIMER_SLACK),
        metrics_addr: run.metrics_addr,
        otlp_endpoint: run.otlp_endpoint,
        target: target.as_ref().map_or(TargetKind::Sim, |t| t.0),
        pubsub: target.map(|t| t.1).unwrap_or_default(),
        streams,
        sim: sim?,
        thresholds,
        cluster,
        overrides: Vec::new(),
        text: String::new(),
    })
}

fn resolve_stream(
    diag: &mut Diagnostics<'_>,
    v: &Val<'_>,
    n: usize,
    base_dir: &Path,
) -> Option<StreamPlan> {
    let key = format!("stream[{n}]");
    let Some(table) = v.get_ref().as_table() else {
        diag.push(
            Some(v.span()),
            &key,
            "each stream must be a table",
            Some("write it as `[[stream]]`".into()),
        );
        return None;
    };
    // Deserialize the stream's own keys without its phases, so phase errors are reported phase by phase.
    let mut head = table.clone();
    let phases_val = head.remove("phase");
    let head_val = Spanned::new(v.span(), DeValue::Table(head));
    let raw: Option<StreamRaw> = de(diag, &head_val, &key);
    let phases = match phases_val.as_ref().map(|p| (p.span(), p.get_ref())) {
        Some((_, DeValue::Array(arr))) if !arr.is_empty() => {
            resolve_phases(diag, arr.iter(), &format!("{key}.phase"), base_dir)
        }
        Some((span, _)) => {
            diag.push(
                Some(span),
                format!("{key}.phase"),
                "`phase` must be a non-empty list of tables",
                Some("write each phase as `[[stream.phase]]` with a `kind`".into()),
            );
            None
        }
        None => {
            diag.push(
                Some(v.span()),
                format!("{key}.phase"),
                "the stream has no phases",
                Some(
                    "add `[[stream.phase]]` entries, e.g. `kind = \"burst\"` and `count = 20`"
                        .into(),
                ),
            );
            None
        }
    };
    let raw = raw?;
    let payload_src = raw
        .payload
        .unwrap_or_else(|| r#"{"id":"{{uuid}}","seq":{{seq}}}"#.to_string());
    let mut ok = true;
    if payload_src.len() > MAX_PAYLOAD_TEMPLATE_BYTES {
        let span = table.get("payload").map(|p| p.span());
        diag.push(
            span,
            format!("{key}.payload"),
            format!(
                "the payload template is {} bytes; the limit is {MAX_PAYLOAD_TEMPLATE_BYTES}",
                payload_src.len()
            ),
            Some("send a reference (e.g. a GCS URI) instead of the image bytes".into()),
        );
        ok = false;
    }
    let payload = match Template::parse(&payload_src) {
        Ok(t) => Some(t),
        Err(e) => {
            let span = table.get("payload").map(|p| p.span());
            diag.push(span, format!("{key}.payload"), e, Some("placeholders are written `{{seq}}`, `{{uuid}}`, `{{choice a|b}}`, `{{int 1 9}}`".into()));
            None
        }
    };
    let mut attributes = BTreeMap::new();
    for (k, t) in &raw.attributes {
        match Template::parse(t) {
            Ok(t) => {
                attributes.insert(k.clone(), t);
            }
            Err(e) => {
                let span = table.get("attributes").map(|p| p.span());
                diag.push(span, format!("{key}.attributes.{k}"), e, None);
                ok = false;
            }
        }
        if k.starts_with("imagen_load_") {
            let span = table.get("attributes").map(|p| p.span());
            diag.push(
                span,
                format!("{key}.attributes.{k}"),
                "attributes starting with `imagen_load_` are set by the harness",
                Some(format!("rename `{k}`")),
            );
            ok = false;
        }
    }
    if raw.name.is_empty()
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        let span = table.get("name").map(|p| p.span());
        diag.push(
            span,
            format!("{key}.name"),
            format!(
                "stream name `{}` must be non-empty letters, digits, `-` or `_`",
                raw.name
            ),
            Some("name it after its pipeline, e.g. `upscale`".into()),
        );
        ok = false;
    }
    // Kubernetes object names (RFC 1123 DNS subdomains, as `kubectl` checks them).
    for (field, value) in [
        ("deployment", &raw.deployment),
        ("scaled_object", &raw.scaled_object),
    ] {
        if let Some(v) = value
            && !is_dns_subdomain(v)
        {
            let span = table.get(field).map(|p| p.span());
            diag.push(
                span,
                format!("{key}.{field}"),
                format!("`{v}` is not a Kubernetes object name"),
                Some(
                    "use lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit, as in `kubectl get deployments -n imagen`".into(),
                ),
            );
            ok = false;
        }
    }
    let topic = raw.topic.unwrap_or_else(|| format!("imagen-{}", raw.name));
    let subscription = raw.subscription.unwrap_or_else(|| format!("{topic}-sub"));
    let phases = phases?;
    if !ok {
        return None;
    }
    Some(StreamPlan {
        name: raw.name,
        topic,
        subscription,
        payload: payload?,
        attributes,
        phases,
        deployment: raw.deployment,
        scaled_object: raw.scaled_object,
    })
}

/// A Kubernetes object name: an RFC 1123 DNS subdomain (at most 253 characters of lower-case letters, digits,
/// `-` and `.`, starting and ending with a letter or digit), as the API server checks Deployment names.
fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

fn resolve_phases<'a, 'i: 'a>(
    diag: &mut Diagnostics<'_>,
    items: impl Iterator<Item = &'a Val<'i>>,
    key: &str,
    base_dir: &Path,
) -> Option<Vec<Phase>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, v) in items.enumerate() {
        match resolve_phase(diag, v, &format!("{key}[{}]", i + 1), base_dir) {
            Some(p) => out.push(p),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn resolve_phase(
    diag: &mut Diagnostics<'_>,
    v: &Val<'_>,
    key: &str,
    base_dir: &Path,
) -> Option<Phase> {
    let Some(table) = v.get_ref().as_table() else {
        diag.push(
            Some(v.span()),
            key,
            "a phase must be a table with a `kind`",
            Some("e.g. `{ kind = \"idle\", duration = \"5m\" }`".into()),
        );
        return None;
    };
    if !table.contains_key("kind") {
        diag.push(
            Some(v.span()),
            format!("{key}.kind"),
            "the phase has no `kind`",
            Some("add `kind = ...`: idle, constant, ramp, burst, poisson, sine, diurnal, trace, repeat or http".into()),
        );
        return None;
    }
    let raw = de_phase(diag, v, table, key)?;
    let span_of = |k: &str| table.get(k).map(|x| x.span()).or(Some(v.span()));
    let bad = |diag: &mut Diagnostics<'_>, k: &str, msg: String, fix: &str| {
        diag.push(span_of(k), format!("{key}.{k}"), msg, Some(fix.to_string()));
        None::<Phase>
    };
    let positive = |d: Micros| d.0 > 0;
    match raw {
        PhaseRaw::Idle(IdleRaw { duration }) => {
            if !positive(duration) {
                return bad(
                    diag,
                    "duration",
                    "an idle phase must last longer than zero".into(),
                    "write e.g. `duration = \"5m\"`, or remove the phase",
                );
            }
            Some(Phase::Idle { duration })
        }
        PhaseRaw::Constant(RateRaw { rate, duration })
        | PhaseRaw::Poisson(RateRaw { rate, duration }) => {
            let poisson = table.get("kind").and_then(|k| k.get_ref().as_str()) == Some("poisson");
            if rate.per_sec <= 0.0 {
                return bad(
                    diag,
                    "rate",
                    format!("the rate must be above zero, got {rate}"),
                    "write e.g. `rate = \"10/s\"`, or use an `idle` phase",
                );
            }
            if !positive(duration) {
                return bad(
                    diag,
                    "duration",
                    "the phase must last longer than zero".into(),
                    "write e.g. `duration = \"60s\"`",
                );
            }
            let arrivals = if poisson {
                Arrivals::Poisson
            } else {
                Arrivals::Even
            };
            Some(Phase::Rate {
                shape: RateShape::Constant(rate),
                duration,
                arrivals,
            })
        }
        PhaseRaw::Ramp(RampRaw {
            from,
            to,
            duration,
            arrivals,
        }) => {
            if from.per_sec <= 0.0 && to.per_sec <= 0.0 {
                return bad(
                    diag,
                    "to",
                    "a ramp from zero to zero sends nothing".into(),
                    "give `to` a rate above zero, or use an `idle` phase",
                );
            }
            if !positive(duration) {
                return bad(
                    diag,
                    "duration",
                    "the ramp must last longer than zero".into(),
                    "write e.g. `duration = \"2m\"`",
                );
            }
            Some(Phase::Rate {
                shape: RateShape::Ramp { from, to },
                duration,
                arrivals,
            })
        }
        PhaseRaw::Burst(BurstRaw {
            count,
            within,
            spread,
        }) => {
            if count <= 0 {
                return bad(
                    diag,
                    "count",
                    format!("a burst needs at least one message, got {count}"),
                    "write e.g. `count = 20`",
                );
            }
            Some(Phase::Burst {
                count: count as u64,
                within,
                spread,
            })
        }
        PhaseRaw::Sine(SineRaw {
            base,
            amplitude,
            period,
            duration,
            arrivals,
        }) => sine(
            diag,
            key,
            &span_of,
            base,
            amplitude,
            period,
            Micros::ZERO,
            duration,
            arrivals,
        ),
        PhaseRaw::Diurnal(DiurnalRaw {
            base,
            amplitude,
            period,
            peak,
            duration,
            arrivals,
        }) => {
            // sin peaks at a quarter period; shift so that the peak falls at `peak`.
            let p = period.0.max(1);
            let shift = Micros((p / 4 + p - (peak.0 % p)) % p);
            sine(
                diag, key, &span_of, base, amplitude, period, shift, duration, arrivals,
            )
        }
        PhaseRaw::Trace(TraceRaw {
            file,
            time_scale,
            column,
            duration,
        }) => {
            if !(time_scale.is_finite() && time_scale > 0.0) {
                return bad(
                    diag,
                    "time_scale",
                    format!("time_scale must be above zero, got {time_scale}"),
                    "1.0 replays in real time; 0.5 twice as fast",
                );
            }
            let path = base_dir.join(&file);
            match trace::load(&path, column.as_deref(), time_scale) {
                Ok(offsets) => {
                    let last = offsets.last().copied().unwrap_or_default();
                    let d = match duration {
                        Some(d) if d < last => {
                            return bad(
                                diag,
                                "duration",
                                format!("the trace runs {last} but the phase lasts only {d}"),
                                "remove `duration` or make it longer than the trace",
                            );
                        }
                        Some(d) => d,
                        None => Micros(last.0 + 1),
                    };
                    Some(Phase::Trace {
                        file: path,
                        offsets,
                        duration: d,
                    })
                }
                Err(e) => bad(
                    diag,
                    "file",
                    e,
                    "the path is relative to the workload file; fix the file or the path",
                ),
            }
        }
        PhaseRaw::Repeat(RepeatRaw { times, .. }) => {
            if times <= 0 {
                return bad(
                    diag,
                    "times",
                    format!("`times` must be at least 1, got {times}"),
                    "write e.g. `times = 3`",
                );
            }
            let Some(DeValue::Array(arr)) = table.get("phases").map(|p| p.get_ref()) else {
                return bad(
                    diag,
                    "phases",
                    "`phases` must be a list of phases".into(),
                    "write `phases = [ { kind = \"burst\", count = 10 }, ... ]`",
                );
            };
            if arr.is_empty() {
                return bad(
                    diag,
                    "phases",
                    "`phases` is empty".into(),
                    "list the phases to repeat",
                );
            }
            let phases = resolve_phases(diag, arr.iter(), &format!("{key}.phases"), base_dir)?;
            Some(Phase::Repeat {
                times: times as u32,
                phases,
            })
        }
        PhaseRaw::Http(step) => {
            if !(step.url.starts_with("http://") || step.url.starts_with("https://")) {
                return bad(
                    diag,
                    "url",
                    format!("`{}` is not an http(s) URL", step.url),
                    "write e.g. `url = \"http://127.0.0.1:8080/warmup\"`",
                );
            }
            if step.method.parse::<reqwest::Method>().is_err() {
                return bad(
                    diag,
                    "method",
                    format!("`{}` is not an HTTP method", step.method),
                    "use GET, POST, PUT, ...",
                );
            }
            if step.timeout.0 == 0 {
                return bad(
                    diag,
                    "timeout",
                    "the timeout must be above zero".into(),
                    "write e.g. `timeout = \"10s\"`",
                );
            }
            Some(Phase::Http(step))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn sine(
    diag: &mut Diagnostics<'_>,
    key: &str,
    span_of: &dyn Fn(&str) -> Option<Range<usize>>,
    base: Rate,
    amplitude: Rate,
    period: Micros,
    shift: Micros,
    duration: Micros,
    arrivals: Arrivals,
) -> Option<Phase> {
    let mut push = |k: &str, msg: String, fix: &str| {
        diag.push(span_of(k), format!("{key}.{k}"), msg, Some(fix.into()))
    };
    if base.per_sec <= 0.0 {
        push(
            "base",
            format!("the base rate must be above zero, got {base}"),
            "write e.g. `base = \"5/s\"`",
        );
        return None;
    }
    if amplitude.per_sec > base.per_sec {
        push(
            "amplitude",
            format!("amplitude {amplitude} exceeds base {base}: the rate would go below zero"),
            "make `amplitude` at most `base`",
        );
        return None;
    }
    if period.0 == 0 || duration.0 == 0 {
        push(
            if period.0 == 0 { "period" } else { "duration" },
            "must be longer than zero".into(),
            "write e.g. `\"24h\"`",
        );
        return None;
    }
    Some(Phase::Rate {
        shape: RateShape::Sine {
            base,
            amplitude,
            period,
            shift,
        },
        duration,
        arrivals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(src: &str) -> Vec<Problem> {
        match parse(Path::new("w.toml"), src) {
            Err(Error::Invalid { problems }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn minimal_workload_resolves() {
        let plan = parse(
            Path::new("w.toml"),
            "[[stream]]\nname = \"upscale\"\n[[stream.phase]]\nkind = \"constant\"\nrate = \"10/s\"\nduration = \"60s\"\n",
        )
        .unwrap();
        assert_eq!(plan.name, "w");
        assert_eq!(plan.streams[0].topic, "imagen-upscale");
        assert_eq!(plan.streams[0].phases[0].expected_messages(), 600.0);
    }

    #[test]
    fn unknown_phase_key_has_line_column_and_suggestion() {
        let p = problems(
            "[[stream]]\nname = \"a\"\n[[stream.phase]]\nkind = \"constant\"\nrte = \"10/s\"\nduration = \"60s\"\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].line, p[0].column), (5, 1), "{}", p[0]);
        assert!(p[0].key.ends_with("rte"), "{}", p[0]);
        assert!(p[0].fix.as_deref().unwrap().contains("`rate`"), "{}", p[0]);
    }

    /// `[run] timer_slack`: 200 µs unless set, `0s` for exact instants, and more than 100 ms refused where it is
    /// written.
    #[test]
    fn timer_slack_defaults_to_200us_and_is_bounded() {
        let stream = "[[stream]]\nname = \"a\"\n[[stream.phase]]\nkind = \"constant\"\nrate = \"10/s\"\nduration = \"60s\"\n";
        let slack = |run: &str| {
            parse(Path::new("w.toml"), &format!("{run}{stream}")).map(|p| p.timer_slack)
        };
        assert_eq!(slack("").unwrap(), Micros(200));
        assert_eq!(slack("[run]\ntimer_slack = \"0s\"\n").unwrap(), Micros(0));
        assert_eq!(
            slack("[run]\ntimer_slack = \"100ms\"\n").unwrap(),
            Micros(100_000)
        );
        let p = problems(&format!("[run]\ntimer_slack = \"1s\"\n{stream}"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(
            (p[0].line, p[0].key.as_str()),
            (2, "run.timer_slack"),
            "{}",
            p[0]
        );
        assert!(p[0].fix.as_deref().unwrap().contains("200us"), "{}", p[0]);
    }

    #[test]
    fn reports_all_problems_at_once() {
        let src = "[[stream]]\nname = \"a\"\n[[stream.phase]]\nkind = \"constant\"\nrate = \"0/s\"\nduration = \"60s\"\n\
                   [[stream.phase]]\nkind = \"burts\"\ncount = 3\n[[stream]]\nname = \"b\"\n";
        let p = problems(src);
        assert_eq!(p.len(), 3, "{p:#?}");
    }

    /// The sine's inverse from a hint is the plain bisection's result bit for bit (what every schedule was, and
    /// is, rounded from), whatever the hint: over a day's sine, a trough of rate zero, and many short cycles.
    #[test]
    fn the_sine_inverse_from_a_hint_is_the_plain_bisection_bit_for_bit() {
        use rand::{RngExt, SeedableRng};
        let plain = |s: &RateShape, k: f64, total: f64| {
            let (mut lo, mut hi) = (0.0_f64, total);
            for _ in 0..64 {
                let mid = 0.5 * (lo + hi);
                if s.cumulative(mid, total) < k {
                    lo = mid;
                } else {
                    hi = mid;
                }
                if hi - lo < 1e-7 {
                    break;
                }
            }
            hi
        };
        let sine = |base: f64, amplitude: f64, period_s: u64, shift_s: u64| RateShape::Sine {
            base: Rate { per_sec: base },
            amplitude: Rate { per_sec: amplitude },
            period: Micros::from_secs(period_s),
            shift: Micros::from_secs(shift_s),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (shape, total) in [
            (sine(0.5, 0.4167, 86_400, 50_400), 86_400.0),
            (sine(2.0, 2.0, 3_600, 0), 7_200.0),
            (sine(1000.0, 999.0, 10, 3), 60.0),
            (sine(0.01, 0.01, 600, 450), 1_800.0),
        ] {
            let limit = shape.cumulative(total, total);
            let mut near = 0.0;
            let mut k = 0.0;
            let mut checked = 0;
            while k < limit {
                let want = plain(&shape, k, total);
                assert_eq!(
                    shape.inverse_near(k, total, near).to_bits(),
                    want.to_bits(),
                    "k {k}"
                );
                let anywhere = rng.random_range(0.0..total);
                assert_eq!(
                    shape.inverse_near(k, total, anywhere).to_bits(),
                    want.to_bits()
                );
                near = want;
                k += rng.random_range(0.0..2.0) * limit / 20_000.0;
                checked += 1;
            }
            assert!(checked > 10_000);
        }
    }

    #[test]
    fn ramp_inverse_matches_cumulative() {
        let s = RateShape::Ramp {
            from: Rate { per_sec: 2.0 },
            to: Rate { per_sec: 10.0 },
        };
        for k in [0.0, 1.0, 50.0, 359.0] {
            let t = s.inverse(k, 60.0);
            assert!((s.cumulative(t, 60.0) - k).abs() < 1e-6);
        }
    }

    #[test]
    fn overrides_edit_the_document() {
        let o: Override = "sim.keda.min_replicas=1".parse().unwrap();
        let out = apply_overrides("[run]\nseed = 1\n", &[o]).unwrap();
        assert!(out.contains("min_replicas = 1"), "{out}");
    }
}
