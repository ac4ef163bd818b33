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
use crate::compare::{symptom_of, Cause, Class, Divergence};
use crate::execute::{ExecOptions, Executor};
use crate::generate::{generate_sequence, GenConfig};
use crate::ops::Sequence;
use crate::report::fuzz_html::{self, RunInfo};
use crate::report::repro::strip_credentials;
use crate::report::{FindingsWriter, Progress};
use crate::shrink::{
    finding_id, roots_first, shrink_counted, Absorbed, Finding, FindingSet, ShrinkBudget,
};
use crate::targets::TargetSpec;
use crate::vocab::exchange::CaseOutcome;
use anyhow::bail;
use std::collections::{BTreeMap, BTreeSet};
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
    /// Shrink variations and unsupported findings too (by default only violations are: run
    /// time goes to exploring).
    pub shrink_variations: bool,
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

/// The state of one run: what has been found, where it is written, who runs shrinks.
struct Run<'a> {
    cfg: &'a FuzzConfig,
    id: String,
    deadline: Instant,
    ex: &'a Executor,
    /// Shrinking runs only the reference and the diverging target (the oracle's verdict on a
    /// target depends on nothing else).
    subsets: BTreeMap<String, Executor>,
    findings: FindingSet,
    /// Findings seen again since they were last written.
    dirty: BTreeSet<Cause>,
    writer: FindingsWriter,
    progress: Progress,
    /// For the page: targets with their URLs (credentials stripped), what ran so far.
    page: RunInfo,
    start: Instant,
}

async fn fuzz_with(cfg: &FuzzConfig, fleet: &Fleet) -> anyhow::Result<FuzzSummary> {
    let start = Instant::now();
    let urls: BTreeMap<String, String> = fleet
        .launched
        .iter()
        .map(|t| (t.name.clone(), t.base_url.to_string()))
        .collect();
    let (shard_index, shard_count) = cfg.shard;
    let mine = |i: &u64| i % shard_count as u64 == shard_index as u64;
    let mut subsets = BTreeMap::new();
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
    let mut run = Run {
        cfg,
        id: run_id(),
        deadline: start + cfg.duration,
        ex: &fleet.executor,
        subsets,
        findings: FindingSet::new(),
        dirty: BTreeSet::new(),
        page: RunInfo {
            seed: cfg.seed,
            targets: fleet
                .launched
                .iter()
                .map(|t| (t.name.clone(), strip_credentials(t.base_url.as_str())))
                .collect(),
            running: true,
            ..RunInfo::default()
        },
        writer: FindingsWriter::new(&cfg.out)?.with_target_urls(urls),
        progress: Progress::new((0..cfg.cases).filter(mine).count() as u64, cfg.progress),
        start,
    };
    run.page.run_id = run.id.clone();
    let mut completed = true;
    for i in (0..cfg.cases).filter(mine) {
        if Instant::now() >= run.deadline {
            completed = false;
            break;
        }
        if let Some(ops) = run.case(i).await? {
            run.page.cases_run += 1;
            run.page.ops_run += ops;
        }
    }
    run.page.running = false;
    run.flush()?;
    run.progress.finish();
    let (cases_run, ops_run) = (run.page.cases_run, run.page.ops_run);
    let findings = run.findings.into_vec();
    let count = |c: Class| findings.iter().filter(|f| f.divergence.class == c).count();
    Ok(FuzzSummary {
        run_id: run.id,
        targets: fleet.names(),
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

impl Run<'_> {
    /// Generates, runs and judges case `i`; `None` when its content does not render.
    async fn case(&mut self, i: u64) -> anyhow::Result<Option<u64>> {
        let cs = case_seed(self.cfg.seed, i);
        let seq = generate_sequence(cs, &self.cfg.gen);
        let ns = format!("ocidiff{}c{i}", self.id);
        let Some((_content, outcome, mut divs)) = run_checked(self.ex, &seq, &ns).await else {
            tracing::warn!(case = i, "generated content does not render; skipped");
            return Ok(None);
        };
        roots_first(&mut divs);
        for d in &divs {
            match self.findings.absorb(d) {
                Absorbed::New => self.new_finding(i, cs, &seq, d, &outcome).await?,
                Absorbed::Occurrence(_) | Absorbed::Symptom(_) => {
                    if let Some(root) = self.root_cause(d) {
                        self.dirty.insert(root);
                    }
                }
            }
        }
        self.progress.case_done(seq.ops.len() as u64);
        // Known findings seen again are rewritten now and then, not after every case.
        if i % 16 == 15 {
            self.flush()?;
        }
        Ok(Some(seq.ops.len() as u64))
    }

    /// The cause of the finding `d` was counted against.
    fn root_cause(&self, d: &Divergence) -> Option<Cause> {
        let own = d.cause();
        if self.findings.contains(&own) {
            return Some(own);
        }
        let roots = symptom_of(&d.rule, &d.endpoint);
        self.findings
            .iter()
            .map(|f| f.divergence.cause())
            .find(|c| c.target == d.target && roots.contains(&c.rule()))
    }

    /// A divergence of a cause not seen before: confirmed when it could be the network's
    /// doing, shrunk when it is a violation (or when asked), written.
    async fn new_finding(
        &mut self,
        i: u64,
        cs: u64,
        seq: &Sequence,
        d: &Divergence,
        outcome: &CaseOutcome,
    ) -> anyhow::Result<()> {
        let cause = d.cause();
        let sx = self.subsets.get(&d.target).unwrap_or(self.ex);
        // A dropped connection can be the network's doing (or a race: a registry that answers
        // early and closes while the body is still being written): a finding on an exchange
        // that got no response must show again on a re-run, and once more after shrinking,
        // before it counts.
        let transport = got_no_response(d, outcome);
        if transport {
            let ns = format!("ocidiff{}c{i}t", self.id);
            let again = run_checked(sx, seq, &ns)
                .await
                .is_some_and(|(_, _, divs)| divs.iter().any(|x| x.cause() == cause));
            if !again {
                tracing::warn!(case = i, target = %d.target, "transport error did not reproduce; ignored");
                return Ok(());
            }
        }
        let shrink = self.cfg.shrink
            && (d.class == Class::Violation || self.cfg.shrink_variations)
            && Instant::now() < self.deadline;
        let mut finding = if shrink {
            shrink_finding(
                sx,
                &self.id,
                i,
                cs,
                self.cfg.seed,
                seq,
                d,
                outcome,
                self.deadline,
            )
            .await
        } else {
            let mut f = Finding::new(d, seq, self.cfg.seed, i, cs);
            f.outcome = Some(outcome.clone());
            f
        };
        if transport && !finding.confirmed {
            tracing::warn!(case = i, target = %d.target, "transport error did not reproduce; ignored");
            return Ok(());
        }
        // The minimal sequence may show the cause on another op than the case did.
        finding.seen_at = vec![format!("{} {}", d.endpoint, d.field)];
        self.progress.message(&format!(
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
        self.writer.add(&finding)?;
        for folded in self.findings.insert(finding) {
            self.writer.remove(&folded)?;
        }
        self.dirty.insert(cause);
        self.progress.set_findings(self.findings.len());
        Ok(())
    }

    /// Rewrites the findings seen again since the last flush, and the run's page.
    fn flush(&mut self) -> anyhow::Result<()> {
        for c in std::mem::take(&mut self.dirty) {
            if let Some(f) = self.findings.get(&c) {
                self.writer.update(f)?;
            }
        }
        self.page.seconds = self.start.elapsed().as_secs_f64();
        let all: Vec<Finding> = self.findings.iter().cloned().collect();
        fuzz_html::write(&self.cfg.out, &self.page, &all)
    }
}

/// Whether the target got no response at all on the exchange `d` is about.
fn got_no_response(d: &Divergence, outcome: &CaseOutcome) -> bool {
    let Some(t) = outcome.targets.iter().position(|n| *n == d.target) else {
        return false;
    };
    outcome
        .ops
        .get(d.op_index)
        .and_then(|op| op.per_target.get(t))
        .and_then(|exs| exs.iter().find(|x| x.label == d.label))
        .is_some_and(|x| x.observation.status == 0 && !x.observation.is_skipped())
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
    let cause = d.cause();
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
    let id = finding_id(&cause);
    let shrunk = shrink_counted(
        seq,
        |cand: Sequence| {
            attempt += 1;
            let ns = format!("ocidiff{run}c{case}s{}{attempt}", &id[..4]);
            let cause = cause.clone();
            async move {
                match run_checked(ex, &cand, &ns).await {
                    Some((_, _, divs)) => divs.iter().any(|x| x.cause() == cause),
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
                .find(|x| x.cause() == cause)
                .map(|x| (x, o))
        });
    let mut f = match confirmed {
        Some((div, o)) => {
            let mut f = Finding::new(&div, &shrunk.seq, seed, case, case_seed);
            f.original_ops_len = seq.ops.len();
            f.outcome = Some(o);
            f
        }
        None => {
            // Flaky or budget-limited: keep the original case, flagged.
            let mut f = Finding::new(d, seq, seed, case, case_seed);
            f.outcome = Some(outcome.clone());
            f.confirmed = false;
            f
        }
    };
    f.shrink_runs = shrunk.runs;
    f.shrink_skipped = shrunk.skipped;
    f
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
            shrink_variations: false,
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
                shrink_variations: false,
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
