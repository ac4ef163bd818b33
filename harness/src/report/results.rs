//! What `ocidiff conformance` found, as written to `results.json`.

use crate::scenario::checks::{CheckResult, Counts};
use serde::{Deserialize, Serialize};

/// A target as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    pub kind: String,
    /// Base URL, credentials redacted.
    pub url: String,
    /// The reference registry (the oracle).
    pub oracle: bool,
    /// The spec version its checks were judged by.
    #[serde(default)]
    pub spec_version: crate::vocab::spec_version::SpecVersion,
}

/// A workflow as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowInfo {
    pub id: String,
    pub title: String,
    pub description: String,
    pub source: String,
}

/// One cell of the matrix: a target x a workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellResult {
    pub target: String,
    pub workflow: String,
    pub counts: Counts,
    /// Could not run at all (content did not render, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub checks: Vec<CheckResult>,
}

/// Everything `ocidiff conformance` found (`results.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConformanceResults {
    pub tool: String,
    pub version: String,
    /// Seconds since the Unix epoch.
    pub generated_at: u64,
    pub spec: String,
    /// The spec version the run judged by (`--spec-version`; a target's own claim is in its
    /// `TargetInfo`).
    #[serde(default)]
    pub spec_version: crate::vocab::spec_version::SpecVersion,
    pub targets: Vec<TargetInfo>,
    pub workflows: Vec<WorkflowInfo>,
    pub results: Vec<CellResult>,
}

impl ConformanceResults {
    pub fn cell(&self, target: &str, workflow: &str) -> Option<&CellResult> {
        self.results
            .iter()
            .find(|c| c.target == target && c.workflow == workflow)
    }

    /// Totals per target.
    pub fn target_counts(&self, target: &str) -> Counts {
        let mut c = Counts::default();
        for cell in self.results.iter().filter(|c| c.target == target) {
            c.merge(&cell.counts);
        }
        c
    }

    /// A target failed a MUST check (or could not run a workflow).
    pub fn target_failed(&self, target: &str) -> bool {
        self.results
            .iter()
            .filter(|c| c.target == target)
            .any(|c| c.counts.fail > 0 || c.error.is_some())
    }

    pub fn any_failed(&self) -> bool {
        self.targets.iter().any(|t| self.target_failed(&t.name))
    }
}

/// One line per exchange: `label METHOD url -> status`.
pub fn exchange_lines(c: &CheckResult) -> String {
    c.exchanges
        .iter()
        .map(|x| {
            format!(
                "{} {} {} -> {}{}",
                x.label,
                x.request.method,
                x.request.url,
                x.observation.status,
                x.observation
                    .transport_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
