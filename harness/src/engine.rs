//! The fuzz loop: seeds, cases, duration and shard bounds; generate -> exec -> oracle -> shrink ->
//! report. Also `replay` of one scenario file.
//!
//! Determinism: case `i` uses seed `seed + i` (wrapping); generation, rendering, the oracle and the
//! finding order depend only on it (no hash-map iteration reaches the output). Each run gets a
//! random run id so that namespaces (`ocidiff<run>c<case>`, shrink attempts `...s<k>`) never
//! collide on a persistent registry.
//!
//! Bounds: no new case starts after `duration`; every shrink has its own run / time budget and no
//! shrink starts after the deadline (findings found late are written unshrunk).

use crate::content::Content;
use crate::exec::{CaseOutcome, ExecOptions, Executor};
use crate::generate::{generate_sequence, GenConfig};
use crate::model::Sequence;
use crate::oracle::{check_case, Class, Divergence, Signature};
use crate::report::{FindingsWriter, Progress};
use crate::scenario::Scenario;
use crate::shrink::{finding_id, shrink_counted, Finding, FindingSet, ShrinkBudget};
use crate::target::{launch, LaunchedTarget, TargetSpec};
use anyhow::{bail, Context as _};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Everything `run_fuzz` needs.
#[derive(Clone)]
pub struct FuzzConfig {
    /// Targets to compare; the reference is moved (or added) to index 0.
    pub targets: Vec<(String, TargetSpec)>,
    pub seed: u64,
    pub duration: Duration,
    pub cases: u64,
    pub gen: GenConfig,
    pub out: PathBuf,
    /// (index, count): this process runs the cases `i` with `i % count == index`.
    pub shard: (u32, u32),
    pub shrink: bool,
    pub progress: bool,
}

/// What a fuzz run did.
#[derive(Debug)]
pub struct FuzzSummary {
    pub run_id: String,
    pub targets: Vec<String>,
    pub cases_run: u64,
    pub ops_run: u64,
    pub findings: Vec<Finding>,
    pub violations: usize,
    pub variations: usize,
    pub unsupported: usize,
    pub elapsed: Duration,
    pub out: PathBuf,
    /// The case limit was reached before the deadline (false: stopped by time).
    pub completed: bool,
}

/// Per-shrink bounds: violations get the full budget, variations / unsupported a smaller one.
const SHRINK_MAX_RUNS: u32 = 120;
const SHRINK_MAX_TIME: Duration = Duration::from_secs(30);
const SHRINK_MINOR_RUNS: u32 = 40;
const SHRINK_MINOR_TIME: Duration = Duration::from_secs(10);

/// The reference target first (added when not named), then the others in the given order.
pub fn with_reference_first(
    mut targets: Vec<(String, TargetSpec)>,
) -> anyhow::Result<Vec<(String, TargetSpec)>> {
    match targets
        .iter()
        .position(|(_, s)| matches!(s, TargetSpec::Reference(_)))
    {
        Some(0) => {}
        Some(i) => {
            let r = targets.remove(i);
            targets.insert(0, r);
        }
        None => {
            if targets.iter().any(|(n, _)| n == "reference") {
                bail!("a target named \"reference\" must be the reference registry");
            }
            targets.insert(
                0,
                (
                    "reference".to_string(),
                    TargetSpec::Reference(Box::default()),
                ),
            );
        }
    }
    let mut names: Vec<&String> = targets.iter().map(|(n, _)| n).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        bail!("target names must be unique");
    }
    Ok(targets)
}

/// Launched targets plus the executor talking to them; shuts the targets down when done.
pub struct Fleet {
    pub launched: Vec<LaunchedTarget>,
    pub executor: Executor,
}

impl Fleet {
    pub async fn launch(targets: &[(String, TargetSpec)]) -> anyhow::Result<Fleet> {
        let mut launched: Vec<LaunchedTarget> = Vec::new();
        for (name, spec) in targets {
            match launch(name, spec).await {
                Ok(t) => launched.push(t),
                Err(e) => {
                    for t in launched {
                        t.shutdown().await;
                    }
                    return Err(e).with_context(|| format!("launching target {name}"));
                }
            }
        }
        let executor = Executor::new(
            launched.iter().map(|t| t.exec_target()).collect(),
            ExecOptions::default(),
        )?;
        Ok(Fleet { launched, executor })
    }

    pub fn names(&self) -> Vec<String> {
        self.launched.iter().map(|t| t.name.clone()).collect()
    }

    pub async fn shutdown(self) {
        for t in self.launched {
            t.shutdown().await;
        }
    }
}

/// A random lowercase run id (8 characters).
pub fn run_id() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The seed of case `i`.
pub fn case_seed(seed: u64, i: u64) -> u64 {
    seed.wrapping_add(i)
}

/// Runs a (candidate) sequence in namespace `ns` and checks it. `None` when content won't render.
async fn run_checked(
    ex: &Executor,
    seq: &Sequence,
    ns: &str,
) -> Option<(Content, CaseOutcome, Vec<Divergence>)> {
    let content = Content::render(&seq.content).ok()?;
    let outcome = ex.run(seq, &content, ns).await;
    let divs = check_case(seq, &content, &outcome);
    Some((content, outcome, divs))
}

/// The fuzz loop.
pub async fn run_fuzz(cfg: FuzzConfig) -> anyhow::Result<FuzzSummary> {
    let (shard_index, shard_count) = cfg.shard;
    if shard_count == 0 || shard_index >= shard_count {
        bail!("invalid shard {shard_index}/{shard_count}");
    }
    let targets = with_reference_first(cfg.targets.clone())?;
    let fleet = Fleet::launch(&targets).await?;
    let result = fuzz_with(&cfg, &fleet).await;
    fleet.shutdown().await;
    result
}

async fn fuzz_with(cfg: &FuzzConfig, fleet: &Fleet) -> anyhow::Result<FuzzSummary> {
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let run = run_id();
    let names = fleet.names();
    let urls: BTreeMap<String, String> = fleet
        .launched
        .iter()
        .map(|t| (t.name.clone(), t.base_url.to_string()))
        .collect();
    let mut writer = FindingsWriter::new(&cfg.out)?.with_target_urls(urls);
    let (shard_index, shard_count) = cfg.shard;
    let my_cases = (0..cfg.cases)
        .filter(|i| i % shard_count as u64 == shard_index as u64)
        .count() as u64;
    let mut progress = Progress::new(my_cases, cfg.progress);
    let mut findings = FindingSet::new();
    let mut cases_run = 0u64;
    let mut ops_run = 0u64;
    let mut completed = true;
    let ex = &fleet.executor;
    // Shrinking runs only the reference and the diverging target (the oracle's verdict on a
    // target depends on nothing else).
    let mut subsets: BTreeMap<String, Executor> = BTreeMap::new();
    for (i, t) in fleet.launched.iter().enumerate() {
        let mut members = vec![fleet.launched[0].exec_target()];
        if i > 0 {
            members.push(t.exec_target());
        }
        subsets.insert(
            t.name.clone(),
            Executor::new(members, ExecOptions::default())?,
        );
    }

    for i in 0..cfg.cases {
        if i % shard_count as u64 != shard_index as u64 {
            continue;
        }
        if Instant::now() >= deadline {
            completed = false;
            break;
        }
        let cs = case_seed(cfg.seed, i);
        let seq = generate_sequence(cs, &cfg.gen);
        let ns = format!("ocidiff{run}c{i}");
        let Some((_content, outcome, divs)) = run_checked(ex, &seq, &ns).await else {
            tracing::warn!(case = i, "generated content does not render; skipped");
            continue;
        };
        cases_run += 1;
        ops_run += seq.ops.len() as u64;

        for d in &divs {
            let sig = d.signature();
            if findings.contains(&sig) {
                continue;
            }
            let sx = subsets.get(&d.target).unwrap_or(ex);
            // A dropped connection can be the network's doing: a transport-level finding must
            // show again on a re-run before it counts.
            if d.rule == "http/transport" {
                let ns = format!("ocidiff{run}c{i}t");
                let again = run_checked(sx, &seq, &ns)
                    .await
                    .is_some_and(|(_, _, divs)| divs.iter().any(|x| x.signature() == sig));
                if !again {
                    tracing::warn!(case = i, target = %d.target, "transport error did not reproduce; ignored");
                    continue;
                }
            }
            let finding = if cfg.shrink && Instant::now() < deadline {
                shrink_finding(sx, &run, i, cs, cfg.seed, &seq, d, &outcome, deadline).await
            } else {
                unshrunk(i, cs, cfg.seed, &seq, d, &outcome)
            };
            if d.rule == "http/transport" && !finding.confirmed {
                tracing::warn!(case = i, target = %d.target, "transport error did not reproduce; ignored");
                continue;
            }
            writer.add(&finding)?;
            progress.message(&format!(
                "new {}: {} {} on {} ({})",
                finding.divergence.class,
                finding.id,
                finding.divergence.rule,
                finding.divergence.target,
                finding
                    .divergence
                    .summary
                    .chars()
                    .take(90)
                    .collect::<String>()
            ));
            findings.insert(finding);
            progress.set_findings(findings.len());
        }
        progress.case_done(seq.ops.len() as u64);
    }
    progress.finish();
    let findings = findings.into_vec();
    let count = |c: Class| findings.iter().filter(|f| f.divergence.class == c).count();
    Ok(FuzzSummary {
        run_id: run,
        targets: names,
        cases_run,
        ops_run,
        violations: count(Class::Violation),
        variations: count(Class::Variation),
        unsupported: count(Class::Unsupported),
        findings,
        elapsed: start.elapsed(),
        out: cfg.out.clone(),
        completed,
    })
}

fn unshrunk(
    case: u64,
    case_seed: u64,
    seed: u64,
    seq: &Sequence,
    d: &Divergence,
    outcome: &CaseOutcome,
) -> Finding {
    Finding {
        id: finding_id(&d.signature()),
        divergence: d.clone(),
        ops: seq.clone(),
        original_ops_len: seq.ops.len(),
        seed,
        first_seen_case: case,
        case_seed,
        shrink_runs: 0,
        confirmed: true,
        outcome: Some(outcome.clone()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn shrink_finding(
    ex: &Executor,
    run: &str,
    case: u64,
    case_seed: u64,
    seed: u64,
    seq: &Sequence,
    d: &Divergence,
    outcome: &CaseOutcome,
    deadline: Instant,
) -> Finding {
    let sig: Signature = d.signature();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let (runs, time) = if d.class == Class::Violation {
        (SHRINK_MAX_RUNS, SHRINK_MAX_TIME)
    } else {
        (SHRINK_MINOR_RUNS, SHRINK_MINOR_TIME)
    };
    let budget = ShrinkBudget {
        max_runs: runs,
        // Never past the run's deadline: `--duration` bounds the whole run, shrinking included
        // (the shrinker checks its budget between runs, so one run at most goes over).
        max_time: time.min(remaining),
    };
    let mut attempt = 0u32;
    let id = finding_id(&sig);
    let shrunk = shrink_counted(
        seq,
        |cand: Sequence| {
            attempt += 1;
            let ns = format!("ocidiff{run}c{case}s{}{attempt}", &id[..4]);
            let sig = sig.clone();
            async move {
                match run_checked(ex, &cand, &ns).await {
                    Some((_, _, divs)) => divs.iter().any(|x| x.signature() == sig),
                    None => false,
                }
            }
        },
        budget,
    )
    .await;
    // Confirm the minimal sequence once more and keep its observations for the report.
    let ns = format!("ocidiff{run}c{case}s{}final", &id[..4]);
    let confirmed = run_checked(ex, &shrunk.seq, &ns)
        .await
        .and_then(|(_, o, divs)| {
            divs.into_iter()
                .find(|x| x.signature() == sig)
                .map(|x| (x, o))
        });
    match confirmed {
        Some((div, o)) => Finding {
            id,
            divergence: div,
            ops: shrunk.seq,
            original_ops_len: seq.ops.len(),
            seed,
            first_seen_case: case,
            case_seed,
            shrink_runs: shrunk.runs,
            confirmed: true,
            outcome: Some(o),
        },
        None => {
            // Flaky or budget-limited: keep the original case, flagged.
            let mut f = unshrunk(case, case_seed, seed, seq, d, outcome);
            f.shrink_runs = shrunk.runs;
            f.confirmed = false;
            f
        }
    }
}

// ------------------------------------------------------------------------------------------
// Replay
// ------------------------------------------------------------------------------------------

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
) -> anyhow::Result<ReplayReport> {
    let scenario = crate::scenario::read(path.as_ref())?;
    let targets = with_reference_first(targets)?;
    let fleet = Fleet::launch(&targets).await?;
    let result = replay_on(&fleet.executor, scenario).await;
    fleet.shutdown().await;
    result
}

/// Runs a scenario's ops on every target of `ex`: consecutive ops as one sequence, each
/// `[[concurrent]]` group's ops at the same time (each as its own one-op sequence in the same
/// namespace, so they hit the same repositories). Without groups this is `ex.run`.
pub async fn execute_scenario(
    ex: &Executor,
    sc: &Scenario,
    content: &Content,
    ns: &str,
) -> CaseOutcome {
    let n = sc.ops.len();
    let group_at = |i: usize| sc.concurrent.iter().find(|g| g.ops.first() == Some(&i));
    let seq = |ops: Vec<crate::model::Op>| Sequence {
        content: sc.content.clone(),
        ops,
    };
    let mut out: Vec<crate::exec::OpOutcome> = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        if let Some(g) = group_at(i) {
            let seqs: Vec<Sequence> = g
                .ops
                .iter()
                .filter_map(|k| sc.ops.get(*k).cloned())
                .map(|op| seq(vec![op]))
                .collect();
            let runs = futures::future::join_all(seqs.iter().map(|s| ex.run(s, content, ns))).await;
            for r in runs {
                out.extend(r.ops);
            }
            i += g.ops.len().max(1);
        } else {
            let end = (i + 1..n).find(|k| group_at(*k).is_some()).unwrap_or(n);
            let r = ex.run(&seq(sc.ops[i..end].to_vec()), content, ns).await;
            out.extend(r.ops);
            i = end;
        }
    }
    CaseOutcome {
        targets: ex.target_names(),
        ops: out,
    }
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
    let checks = crate::checks::evaluate(&scenario, &content, &outcome, &namespace, &[]);
    for (t, list) in checks.iter().enumerate() {
        for c in list
            .iter()
            .filter(|c| c.outcome == crate::checks::Outcome::Fail)
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
    let reproduced = scenario.divergence.as_ref().map(|want| {
        divergences.iter().any(|d| {
            d.target == want.target
                && d.endpoint == want.endpoint
                && d.field == want.field
                && d.rule == want.rule
                && d.class.to_string() == want.class
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

    fn reference() -> (String, TargetSpec) {
        ("reference".into(), TargetSpec::Reference(Box::default()))
    }

    #[test]
    fn reference_is_first_and_added() {
        let t = with_reference_first(vec![("cr".into(), TargetSpec::ContainerRegistry)]).unwrap();
        assert_eq!(t[0].0, "reference");
        assert_eq!(t[1].0, "cr");
        let t = with_reference_first(vec![
            ("cr".into(), TargetSpec::ContainerRegistry),
            reference(),
        ])
        .unwrap();
        assert_eq!(t[0].0, "reference");
        assert_eq!(t.len(), 2);
        assert!(with_reference_first(vec![
            ("x".into(), TargetSpec::ContainerRegistry),
            ("x".into(), TargetSpec::ContainerRegistry)
        ])
        .is_err());
        let id = run_id();
        assert_eq!(id.len(), 8);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    /// The reference against itself: the model and the reference agree on generated cases.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reference_agrees_with_model() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FuzzConfig {
            targets: vec![
                reference(),
                ("twin".into(), TargetSpec::Reference(Box::default())),
            ],
            seed: 1,
            duration: Duration::from_secs(60),
            cases: 6,
            gen: GenConfig::default(),
            out: dir.path().join("out"),
            shard: (0, 1),
            shrink: false,
            progress: false,
        };
        let s = run_fuzz(cfg).await.unwrap();
        assert_eq!(s.cases_run, 6);
        let text: Vec<String> = s
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} {}",
                    f.divergence.target,
                    f.divergence.rule,
                    f.divergence.summary,
                    f.divergence.actual
                )
            })
            .collect();
        assert!(s.findings.is_empty(), "{text:#?}");
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("out/findings.json")).unwrap(),
        )
        .unwrap();
        assert!(v.as_array().unwrap().is_empty());
    }

    /// A faulty twin is caught, shrunk, and the run is deterministic for a seed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn faulty_twin_is_found_deterministically() {
        let faulty = reference_registry::Config {
            faults: reference_registry::Faults {
                blob_corrupt_byte: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut runs = Vec::new();
        for _ in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let cfg = FuzzConfig {
                targets: vec![
                    reference(),
                    (
                        "twin".into(),
                        TargetSpec::Reference(Box::new(faulty.clone())),
                    ),
                ],
                seed: 42,
                duration: Duration::from_secs(120),
                cases: 8,
                gen: GenConfig::default(),
                out: dir.path().join("out"),
                shard: (0, 1),
                shrink: true,
                progress: false,
            };
            let s = run_fuzz(cfg).await.unwrap();
            let body = s
                .findings
                .iter()
                .find(|f| f.divergence.rule == "end-2/get-body")
                .unwrap_or_else(|| panic!("{:#?}", s.findings));
            assert_eq!(body.divergence.target, "twin");
            assert_eq!(body.divergence.class, Class::Violation);
            assert!(body.confirmed);
            assert!(body.ops.ops.len() <= 3, "{:#?}", body.ops.ops);
            assert!(dir
                .path()
                .join("out/findings")
                .join(&body.id)
                .join("repro.sh")
                .exists());
            runs.push(
                s.findings
                    .iter()
                    .map(|f| (f.id.clone(), f.first_seen_case))
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(runs[0], runs[1]);
    }

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
        let r = replay(&p, vec![]).await.unwrap();
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
