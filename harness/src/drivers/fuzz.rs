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

use super::case::{case_seed, run_checked, run_id, with_reference_first, Fleet};
use crate::compare::{Class, Divergence, Signature};
use crate::execute::{ExecOptions, Executor};
use crate::generate::{generate_sequence, GenConfig};
use crate::ops::Sequence;
use crate::report::{FindingsWriter, Progress};
use crate::shrink::{finding_id, shrink_counted, Finding, FindingSet, ShrinkBudget};
use crate::targets::TargetSpec;
use crate::vocab::exchange::CaseOutcome;
use anyhow::bail;
use std::collections::BTreeMap;
use std::path::PathBuf;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> (String, TargetSpec) {
        ("reference".into(), TargetSpec::Reference(Box::default()))
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
}
