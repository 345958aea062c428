//! A threshold condition's outcome, as a report carries it: computed by `outputs::gates::evaluate` from the
//! plan's thresholds and the report.

use serde::Serialize;

/// One condition's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub metric: String,
    pub condition: String,
    pub passed: bool,
    /// The measured value, rendered with its unit; `None` when the series has no samples.
    pub measured: Option<String>,
    pub measured_raw: Option<f64>,
    pub note: Option<String>,
}

impl Outcome {
    /// `p(95) = 6m33s, wanted p(95) < 5m`
    pub fn describe(&self) -> String {
        match &self.measured {
            Some(m) => format!(
                "{} = {m}; wanted {}",
                agg_text(&self.condition),
                self.condition
            ),
            None => format!("no samples; wanted {}", self.condition),
        }
    }
}

fn agg_text(condition: &str) -> &str {
    condition
        .split([' ', '<', '>', '=', '!'])
        .next()
        .unwrap_or(condition)
}
