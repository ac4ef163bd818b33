//! Running scenario files (`ocidiff run`) and the conformance workflows (`ocidiff conformance`):
//! execution with concurrent groups, per-check results, and the `results.json` / `junit.xml` /
//! `index.html` outputs (HTML in `conformance_html`).
//!
//! Every scenario runs on all targets at once, the reference first (it is the oracle): the
//! scenario's own checks are evaluated per target (`checks`), and `oracle::check_case` compares
//! each target with the model and the reference.

use crate::checks::{evaluate, CheckResult, Counts, Outcome};
use crate::content::Content;
use crate::engine::{run_id, with_reference_first, Fleet};
use crate::exec::{CaseOutcome, Executor};
use crate::oracle::{check_case, Class, Divergence};
use crate::scenario::{Scenario, ScenarioError};
use crate::target::{redact, TargetSpec};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The four workflows of the OCI conformance suite, built into the binary.
pub const BUILTIN_WORKFLOWS: [(&str, &str); 4] = [
    ("pull", include_str!("../../scenarios/pull.toml")),
    ("push", include_str!("../../scenarios/push.toml")),
    (
        "content-discovery",
        include_str!("../../scenarios/content-discovery.toml"),
    ),
    (
        "content-management",
        include_str!("../../scenarios/content-management.toml"),
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
    let outcome = crate::engine::execute_scenario(ex, sc, &content, ns).await;
    let divergences = check_case(&sc.sequence(), &content, &outcome);
    let checks = evaluate(sc, &content, &outcome, ns, &divergences);
    Ok(ScenarioRun {
        namespace: ns.to_string(),
        outcome,
        divergences,
        checks,
    })
}

/// A target as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    pub kind: String,
    /// Base URL, credentials redacted.
    pub url: String,
    /// The reference registry (the oracle).
    pub oracle: bool,
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

/// Runs the workflows on the targets (the reference is added as the oracle when missing).
pub async fn run_conformance(
    targets: Vec<(String, TargetSpec)>,
    workflows: &[Workflow],
) -> anyhow::Result<ConformanceResults> {
    let targets = with_reference_first(targets)?;
    let fleet = Fleet::launch(&targets).await?;
    let result = conformance_with(&fleet, workflows).await;
    fleet.shutdown().await;
    result
}

async fn conformance_with(
    fleet: &Fleet,
    workflows: &[Workflow],
) -> anyhow::Result<ConformanceResults> {
    let run = run_id();
    let targets: Vec<TargetInfo> = fleet
        .launched
        .iter()
        .enumerate()
        .map(|(i, t)| TargetInfo {
            name: t.name.clone(),
            kind: t.kind.to_string(),
            url: redact(t.base_url.as_str()),
            oracle: i == 0,
        })
        .collect();
    let mut results = Vec::new();
    for (w, wf) in workflows.iter().enumerate() {
        let ns = format!("ocidiff{run}w{w}");
        match run_scenario(&fleet.executor, &wf.scenario, &ns).await {
            Ok(r) => {
                for (t, checks) in r.checks.into_iter().enumerate() {
                    results.push(CellResult {
                        target: r.outcome.targets[t].clone(),
                        workflow: wf.id.clone(),
                        counts: Counts::of(&checks),
                        error: None,
                        checks,
                    });
                }
            }
            Err(e) => {
                for t in &targets {
                    results.push(CellResult {
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
    Ok(ConformanceResults {
        tool: "ocidiff".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        generated_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        spec: "OCI Distribution Specification v1.1".into(),
        targets,
        workflows: workflows
            .iter()
            .map(|w| WorkflowInfo {
                id: w.id.clone(),
                title: w.title(),
                description: w.scenario.meta.description.clone(),
                source: w.source.clone(),
            })
            .collect(),
        results,
    })
}

/// Writes `index.html`, `junit.xml` and `results.json` into `out`.
pub fn write_outputs(r: &ConformanceResults, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = serde_json::to_vec_pretty(r)?;
    crate::report::write_atomic(&out.join("results.json"), &json)?;
    crate::report::write_atomic(&out.join("junit.xml"), junit_xml(r).as_bytes())?;
    crate::report::write_atomic(
        &out.join("index.html"),
        crate::conformance_html::render(r).as_bytes(),
    )?;
    // Reports are meant to be published: world-readable like any generated file.
    #[cfg(unix)]
    for f in ["results.json", "junit.xml", "index.html"] {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(out.join(f), std::fs::Permissions::from_mode(0o644));
    }
    Ok(())
}

/// XML text / attribute escaping (control characters other than tab / newline are dropped).
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' => o.push(c),
            c if (c as u32) < 0x20 => {}
            c => o.push(c),
        }
    }
    o
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

/// JUnit XML: one `<testsuite>` per target x workflow; `fail` -> `<failure>` (message: rule and
/// spec sentence), `skip` -> `<skipped>`, `warn` passes with the note in `<system-out>`; `info`
/// (allowed variations) is left out.
pub fn junit_xml(r: &ConformanceResults) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut total = Counts::default();
    for c in &r.results {
        total.merge(&c.counts);
    }
    // Variations (`info`) are observations, not checks: they stay in the HTML and JSON only.
    let tests = |c: &Counts| c.pass + c.fail + c.warn + c.skip;
    o.push_str(&format!(
        "<testsuites name=\"ocidiff conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
        tests(&total),
        total.fail,
        total.skip
    ));
    for cell in &r.results {
        let errors = usize::from(cell.error.is_some());
        o.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\" skipped=\"{}\">\n",
            xml_escape(&format!("{}.{}", cell.target, cell.workflow)),
            tests(&cell.counts) + errors,
            cell.counts.fail,
            cell.counts.skip
        ));
        if let Some(e) = &cell.error {
            o.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"run\"><error message=\"{}\"/></testcase>\n",
                xml_escape(&format!("{}.{}", cell.target, cell.workflow)),
                xml_escape(e)
            ));
        }
        for c in cell.checks.iter().filter(|c| c.outcome != Outcome::Info) {
            let classname = xml_escape(&format!("{}.{}", cell.target, cell.workflow));
            o.push_str(&format!(
                "    <testcase classname=\"{classname}\" name=\"{}\">",
                xml_escape(&format!(
                    "[{}] {}",
                    c.level.to_string().to_uppercase(),
                    c.name
                ))
            ));
            let rule = c.rule.clone().unwrap_or_else(|| c.endpoint.clone());
            let details = format!(
                "{}\nendpoint: {}\nspec: {}\nop #{}: {}\n{}{}",
                c.message,
                c.endpoint,
                c.spec,
                c.op,
                c.op_text,
                exchange_lines(c),
                if c.oracle.is_empty() {
                    String::new()
                } else {
                    format!("\noracle: {}", c.oracle.join("; "))
                }
            );
            match c.outcome {
                Outcome::Fail => o.push_str(&format!(
                    "<failure message=\"{}\" type=\"{}\">{}</failure>",
                    xml_escape(&format!("{rule}: {} — {}", c.spec, c.message)),
                    xml_escape(&c.level.to_string()),
                    xml_escape(&details)
                )),
                Outcome::Skip => o.push_str(&format!(
                    "<skipped message=\"{}\"/>",
                    xml_escape(&c.message)
                )),
                Outcome::Warn => o.push_str(&format!(
                    "<system-out>{}</system-out>",
                    xml_escape(&format!(
                        "{}: {details}",
                        c.outcome.to_string().to_uppercase()
                    ))
                )),
                Outcome::Pass | Outcome::Info => {}
            }
            o.push_str("</testcase>\n");
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

/// Counts of the oracle's divergences by class, for summaries.
pub fn divergence_counts(divs: &[Divergence], target: &str) -> (usize, usize, usize) {
    let n = |c: Class| {
        divs.iter()
            .filter(|d| d.target == target && d.class == c)
            .count()
    };
    (
        n(Class::Violation),
        n(Class::Variation),
        n(Class::Unsupported),
    )
}
