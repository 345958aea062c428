//! `summary.json`: the flat, versioned run record. Units are in field names; `null` means unknown.
//! Its JSON Schema is `docs/summary.schema.json`, and a test checks every output against it.

use crate::analysis::{Cost, Delivery, PodColdStart, RunInfo, RunReport, ScaleCycle, Stats};
use serde::Serialize;

/// Bump on any incompatible change, and update `docs/summary.schema.json`.
pub const SCHEMA_VERSION: u32 = 3;

#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub schema_version: u32,
    pub generator: String,
    pub run: &'a RunInfo,
    pub delivery: &'a Delivery,
    pub series: Vec<SeriesRow>,
    pub pods: &'a [PodColdStart],
    pub cycles: &'a [ScaleCycle],
    pub cost: &'a Cost,
    pub http_calls: u64,
    pub thresholds: &'a [crate::analysis::Outcome],
    pub warnings: &'a [String],
    pub problems: &'a [crate::analysis::Problem],
}

#[derive(Debug, Serialize)]
pub struct SeriesRow {
    /// `e2e_latency{scope:upscale,cold:true}`
    pub label: String,
    pub metric: String,
    /// A stream, a deployment, the node pool, or `all`.
    pub scope: String,
    /// Cold messages only (`true`), warm only (`false`), or both (`null`).
    pub cold: Option<bool>,
    #[serde(flatten)]
    pub stats: Stats,
}

impl<'a> Summary<'a> {
    pub fn from_report(r: &'a RunReport) -> Summary<'a> {
        Summary {
            schema_version: SCHEMA_VERSION,
            generator: format!("imagen-load {}", env!("CARGO_PKG_VERSION")),
            run: &r.run,
            delivery: &r.delivery,
            series: r
                .series
                .iter()
                .map(|(k, h)| SeriesRow {
                    label: k.label(),
                    metric: k.metric.to_string(),
                    scope: k.scope.clone(),
                    cold: k.cold,
                    stats: Stats::of(h),
                })
                .collect(),
            pods: &r.pods,
            cycles: &r.cycles,
            cost: &r.cost,
            http_calls: r.http_calls,
            thresholds: &r.thresholds,
            warnings: &r.warnings,
            problems: &r.problems,
        }
    }
}
