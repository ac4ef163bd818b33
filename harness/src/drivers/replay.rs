//! `ocidiff replay`: one scenario file on the targets, its checks and the oracle's divergences,
//! and whether the divergence a reproducer names showed again.

use super::case::{execute_scenario, run_id, with_reference_first, Fleet};
use crate::compare::{check_case, Class, Divergence};
use crate::execute::Executor;
use crate::scenario::Scenario;
use crate::targets::TargetSpec;
use crate::vocab::content::Content;
use crate::vocab::exchange::CaseOutcome;
use anyhow::Context as _;
use std::path::Path;

/// A `must` `[[expect]]` check that did not hold on a target (one per thing that failed).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExpectFailure {
    pub target: String,
    pub op: usize,
    pub label: String,
    /// What was checked: "status", "header", "body", "tags", "exchange", ...
    pub what: String,
    /// The check's name.
    pub expected: String,
    /// What did not hold, as a sentence ("status 201 (expected [202])").
    pub actual: String,
}

/// What `replay` observed.
#[derive(Debug)]
pub struct ReplayReport {
    pub scenario: Scenario,
    pub namespace: String,
    pub outcome: CaseOutcome,
    pub divergences: Vec<Divergence>,
    pub expectation_failures: Vec<ExpectFailure>,
    /// When the scenario names an expected divergence: whether it showed again.
    pub reproduced: Option<bool>,
}

impl ReplayReport {
    /// The exit code of `ocidiff replay`: for a reproducer (a scenario naming a divergence), 1
    /// when it showed again and 0 when not; otherwise 1 when there is a violation or a failed
    /// `must` check. (2, cannot run, is the caller's on error.)
    pub fn exit_code(&self) -> i32 {
        match self.reproduced {
            Some(r) => i32::from(r),
            None => i32::from(self.violations() > 0 || !self.expectation_failures.is_empty()),
        }
    }

    pub fn violations(&self) -> usize {
        self.divergences
            .iter()
            .filter(|d| d.class == Class::Violation)
            .count()
    }
}

/// Runs a scenario file on `targets` (the reference is added first when missing).
pub async fn replay(
    path: impl AsRef<Path>,
    targets: Vec<(String, TargetSpec)>,
    version: crate::vocab::spec_version::SpecVersion,
) -> anyhow::Result<ReplayReport> {
    let scenario = crate::scenario::read(path.as_ref())?;
    let targets = with_reference_first(targets)?;
    if let Some(want) = &scenario.divergence {
        if !targets.iter().any(|(n, _)| *n == want.target) {
            anyhow::bail!(
                "the scenario's divergence is on target {:?}, which is not among the targets; pass --target {}=URL",
                want.target,
                want.target
            );
        }
    }
    let fleet = Fleet::launch(&targets, version).await?;
    let result = replay_on(&fleet.executor, scenario).await;
    fleet.shutdown().await;
    result
}

/// Runs a parsed scenario with an existing executor.
pub async fn replay_on(ex: &Executor, scenario: Scenario) -> anyhow::Result<ReplayReport> {
    let seq = scenario.sequence();
    let content = Content::render(&seq.content).context("rendering the scenario's content")?;
    let namespace = format!("ocidiff{}replay", run_id());
    let outcome = execute_scenario(ex, &scenario, &content, &namespace).await;
    let divergences = check_case(&seq, &content, &outcome);
    // `must` checks that failed (SHOULD / MAY failures are warnings; see `checks`).
    let mut failures = Vec::new();
    let checks = crate::scenario::checks::evaluate(&scenario, &content, &outcome, &namespace, &[]);
    for (t, list) in checks.iter().enumerate() {
        for c in list
            .iter()
            .filter(|c| c.outcome == crate::scenario::checks::Outcome::Fail)
        {
            for f in &c.failures {
                failures.push(ExpectFailure {
                    target: outcome.targets[t].clone(),
                    op: c.op,
                    label: c.label.clone(),
                    what: f.split(' ').next().unwrap_or_default().to_string(),
                    expected: c.name.clone(),
                    actual: f.clone(),
                });
            }
        }
    }
    // The same finding: the same target, class and rule (a minimal sequence may show its cause
    // on another exchange than the one recorded).
    let reproduced = scenario.divergence.as_ref().map(|want| {
        divergences.iter().any(|d| {
            d.target == want.target && d.rule == want.rule && d.class.to_string() == want.class
        })
    });
    Ok(ReplayReport {
        scenario,
        namespace,
        outcome,
        divergences,
        expectation_failures: failures,
        reproduced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replay_runs_a_scenario_with_expectations() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(
            &p,
            r#"
[meta]
title = "push and pull"
[content]
blobs = [{ size = 10, seed = 1 }]
[[ops]]
op = "push_blob"
repo = 0
blob = 0
method = "monolithic"
[[ops]]
op = "get_blob"
repo = 0
blob = 0
[[expect]]
op = 1
status = [200]
present = ["docker-content-digest"]
body = { kind = "content", len = 10 }
[[expect]]
op = 0
label = "put"
status = [202]
"#,
        )
        .unwrap();
        let r = replay(&p, vec![], Default::default()).await.unwrap();
        assert_eq!(r.outcome.targets, ["reference"]);
        assert!(r.divergences.is_empty(), "{:#?}", r.divergences);
        // The deliberately wrong expectation (PUT answers 201) is reported.
        assert_eq!(
            r.expectation_failures.len(),
            1,
            "{:#?}",
            r.expectation_failures
        );
        assert_eq!(r.expectation_failures[0].what, "status");
        assert_eq!(r.violations(), 0);
    }
}
