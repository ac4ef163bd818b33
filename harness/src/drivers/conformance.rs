//! Running scenario files (`ocidiff run`) and the conformance workflows (`ocidiff conformance`):
//! execution with concurrent groups, per-check results, and the `results.json` / `junit.xml` /
//! `index.html` outputs (HTML in `conformance_html`).
//!
//! Every scenario runs on all targets at once, the reference first (it is the oracle): the
//! scenario's own checks are evaluated per target (`checks`), and `oracle::check_case` compares
//! each target with the model and the reference.

use crate::compare::{check_case, Divergence};
use crate::drivers::case::{run_id, with_reference_first, Fleet};
use crate::execute::Executor;
use crate::report::conformance::{CellResult, ConformanceResults, TargetInfo, WorkflowInfo};
use crate::scenario::checks::{evaluate, CheckResult, Counts};
use crate::scenario::{Scenario, ScenarioError};
use crate::targets::TargetSpec;
use crate::vocab::content::Content;
use crate::vocab::exchange::CaseOutcome;
use crate::vocab::redact::redact;
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// The four workflows of the OCI conformance suite, built into the binary.
pub const BUILTIN_WORKFLOWS: [(&str, &str); 4] = [
    ("pull", include_str!("../../../scenarios/pull.toml")),
    ("push", include_str!("../../../scenarios/push.toml")),
    (
        "content-discovery",
        include_str!("../../../scenarios/content-discovery.toml"),
    ),
    (
        "content-management",
        include_str!("../../../scenarios/content-management.toml"),
    ),
];

/// A scenario with the name it is reported under.
#[derive(Clone, Debug)]
pub struct Workflow {
    /// File stem ("pull", ...).
    pub id: String,
    /// Where it came from (a path, or `builtin:<id>`).
    pub source: String,
    pub scenario: Scenario,
}

impl Workflow {
    pub fn title(&self) -> String {
        if self.scenario.meta.title.is_empty() {
            self.id.clone()
        } else {
            self.scenario.meta.title.clone()
        }
    }
}

/// The built-in workflows (parsed; an error here is a bug caught by the tests).
pub fn builtin_workflows() -> Result<Vec<Workflow>, ScenarioError> {
    BUILTIN_WORKFLOWS
        .iter()
        .map(|(id, text)| {
            let file = PathBuf::from(format!("scenarios/{id}.toml"));
            Ok(Workflow {
                id: id.to_string(),
                source: file.display().to_string(),
                scenario: crate::scenario::from_str(text, &file)?,
            })
        })
        .collect()
}

/// The `*.toml` files of `path` (a file, or a directory: sorted, recursively), parsed. Every
/// malformed file is reported (not just the first).
pub fn load(path: &Path) -> Result<Vec<Workflow>, Vec<ScenarioError>> {
    let mut files = Vec::new();
    if path.is_dir() {
        collect_toml(path, &mut files, 0);
        files.sort();
        if files.is_empty() {
            return Err(vec![ScenarioError::Io {
                file: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no *.toml scenario files in this directory",
                ),
            }]);
        }
    } else {
        files.push(path.to_path_buf());
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match crate::scenario::read(&f) {
            Ok(scenario) => out.push(Workflow {
                id: f
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                source: f.display().to_string(),
                scenario,
            }),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    if depth > 8 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_toml(&p, out, depth + 1);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

/// One scenario run on every target.
#[derive(Debug)]
pub struct ScenarioRun {
    pub namespace: String,
    pub outcome: CaseOutcome,
    pub divergences: Vec<Divergence>,
    /// Per target (order of `outcome.targets`).
    pub checks: Vec<Vec<CheckResult>>,
}

/// Runs one scenario with an existing executor (target 0 is the reference).
pub async fn run_scenario(ex: &Executor, sc: &Scenario, ns: &str) -> anyhow::Result<ScenarioRun> {
    let content = Content::render(&sc.content).context("rendering the scenario's content")?;
    let outcome = crate::drivers::case::execute_scenario(ex, sc, &content, ns).await;
    let divergences = check_case(&sc.sequence(), &content, &outcome);
    let checks = evaluate(sc, &content, &outcome, ns, &divergences);
    Ok(ScenarioRun {
        namespace: ns.to_string(),
        outcome,
        divergences,
        checks,
    })
}

/// Runs the workflows on the targets (the reference is added as the oracle when missing).
pub async fn run_conformance(
    targets: Vec<(String, TargetSpec)>,
    workflows: &[Workflow],
    version: crate::vocab::spec_version::SpecVersion,
) -> anyhow::Result<ConformanceResults> {
    let targets = with_reference_first(targets)?;
    let fleet = Fleet::launch(&targets, version).await?;
    let result = conformance_with(&fleet, workflows).await;
    fleet.shutdown().await;
    result
}

/// The fleet's targets as reported (the first is the oracle).
pub fn target_infos(fleet: &Fleet) -> Vec<TargetInfo> {
    let versions = fleet.executor.versions();
    fleet
        .launched
        .iter()
        .enumerate()
        .map(|(i, t)| TargetInfo {
            name: t.name.clone(),
            kind: t.kind.to_string(),
            url: redact(t.base_url.as_str()),
            oracle: i == 0,
            spec_version: versions.get(i).copied().unwrap_or_default(),
        })
        .collect()
}

/// One cell per target of a workflow's per-target checks.
pub fn cells(
    outcome: &CaseOutcome,
    workflow: &str,
    checks: Vec<Vec<CheckResult>>,
) -> Vec<CellResult> {
    checks
        .into_iter()
        .enumerate()
        .map(|(t, checks)| CellResult {
            target: outcome.targets[t].clone(),
            workflow: workflow.to_string(),
            counts: Counts::of(&checks),
            error: None,
            checks,
        })
        .collect()
}

/// `results.json` of a run: the tool, now, the targets, the workflows and their cells.
pub fn results(
    targets: Vec<TargetInfo>,
    workflows: Vec<WorkflowInfo>,
    results: Vec<CellResult>,
    version: crate::vocab::spec_version::SpecVersion,
) -> ConformanceResults {
    ConformanceResults {
        tool: "ocidiff".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        generated_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        spec: format!(
            "OCI Distribution Specification {} (--spec-version {version})",
            version.text()
        ),
        spec_version: version,
        targets,
        workflows,
        results,
    }
}

async fn conformance_with(
    fleet: &Fleet,
    workflows: &[Workflow],
) -> anyhow::Result<ConformanceResults> {
    let run = run_id();
    let targets = target_infos(fleet);
    let mut out = Vec::new();
    for (w, wf) in workflows.iter().enumerate() {
        let ns = format!("ocidiff{run}w{w}");
        match run_scenario(&fleet.executor, &wf.scenario, &ns).await {
            Ok(r) => out.extend(cells(&r.outcome, &wf.id, r.checks)),
            Err(e) => {
                for t in &targets {
                    out.push(CellResult {
                        target: t.name.clone(),
                        workflow: wf.id.clone(),
                        counts: Counts::default(),
                        error: Some(format!("{e:#}")),
                        checks: Vec::new(),
                    });
                }
            }
        }
    }
    let infos = workflows
        .iter()
        .map(|w| WorkflowInfo {
            id: w.id.clone(),
            title: w.title(),
            description: w.scenario.meta.description.clone(),
            source: w.source.clone(),
        })
        .collect();
    Ok(results(targets, infos, out, fleet.executor.spec_version()))
}
