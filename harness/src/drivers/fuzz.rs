//! The fuzz loop: seeds, cases, duration and shard bounds; generate -> exec -> oracle -> shrink ->
//! report.
//!
//! Determinism: case `i` uses seed `seed + i` (wrapping); generation, rendering, the oracle and the
//! finding order depend only on it (no hash-map iteration reaches the output). Cases run `jobs`
//! at a time but are judged in case order, so the same seed gives the same findings whatever
//! `jobs` is (on targets that behave the same under load). Each run gets a random run id so that
//! namespaces (`ocidiff<run>c<case>`, shrink attempts `...s<k>`) never collide on a persistent
//! registry; embedded registries forget each namespace once judged (bounded memory).
//!
//! Bounds: no new case starts after `duration`, and the cases and shrinks in flight are cut at
//! it (a hanging target cannot stretch the run); every shrink has its own run / time budget and
//! runs beside the case stream (findings are written unshrunk first, then replaced). A target
//! that stops answering is dropped by the executor and reported once (`target/unresponsive`).

use super::adaptive::{Adaptive, MAX_ADAPTIVE_JOBS};
use super::case::{case_seed, run_checked, run_id, run_rendered, with_reference_first, Fleet};
use super::fuzz_shrink::{shrink_finding, state_cause_of, ShrinkCx, ShrinkJob};
use crate::compare::{rule, Cause, Class, Divergence};
use crate::execute::{ExecOptions, Executor};
use crate::generate::{generate_case, GenConfig};
use crate::ops::Sequence;
use crate::report::baseline::{Baseline, Comparison};
use crate::report::fuzz_html::{self, RunInfo};
use crate::report::repro::strip_credentials;
use crate::report::{FindingsWriter, Progress};
use crate::shrink::state_cause::StateCause;
use crate::shrink::{roots_first, Absorbed, Finding, FindingSet};
use crate::targets::TargetSpec;
use crate::vocab::content::Content;
use crate::vocab::exchange::CaseOutcome;
use crate::vocab::fs::write_atomic;
use anyhow::bail;
use futures::stream::{FuturesUnordered, StreamExt as _};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
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
    /// Cases in flight at once (0: `default_jobs()`).
    pub jobs: usize,
    /// Requests in flight to one target at most (`None`: no limit).
    pub max_inflight: Option<usize>,
    /// Upload sessions held open at once per target at most (`--max-open-sessions`).
    pub max_open_sessions: usize,
    /// The least time between two requests to a target under test (`--rate`).
    pub min_interval: Option<Duration>,
    /// Requests the run may send to each target under test (`--max-requests`): once one is
    /// spent, no more cases start.
    pub max_requests: Option<u64>,
    /// Forget each case's namespace on the embedded registries once it is judged.
    pub cleanup: bool,
    /// Known findings: the run reports new / known / no longer seen (`baseline.json`).
    pub baseline: Option<Baseline>,
    /// Share (0..=1) of the run's cases and time given to concurrent cases (`ocidiff race`'s
    /// engine, same targets): their races go to `races.json` and `races/<id>/`.
    pub race_share: f64,
    /// The spec version targets are judged by unless they claim one (`--spec-version`).
    pub spec_version: crate::vocab::spec_version::SpecVersion,
}

impl FuzzConfig {
    /// A configuration with the defaults of `ocidiff fuzz` for everything but the targets.
    pub fn new(targets: Vec<(String, TargetSpec)>, out: PathBuf) -> FuzzConfig {
        FuzzConfig {
            targets,
            seed: 0,
            duration: Duration::from_secs(60),
            cases: 1000,
            gen: GenConfig::default(),
            out,
            shard: (0, 1),
            shrink: true,
            shrink_variations: false,
            progress: false,
            jobs: 0,
            max_inflight: None,
            max_open_sessions: crate::execute::DEFAULT_MAX_OPEN_SESSIONS,
            min_interval: None,
            max_requests: None,
            cleanup: true,
            baseline: None,
            race_share: 0.0,
            spec_version: Default::default(),
        }
    }
}

/// Cases in flight by default: the engine is latency-bound (one op at a time per case), so a
/// few cases per core keep the cores busy.
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 4).clamp(4, 32)
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
    /// The findings against `FuzzConfig::baseline`.
    pub baseline: Option<Comparison>,
    /// The concurrent part (`race_share` > 0).
    pub races: Option<crate::drivers::race::RaceSummary>,
    /// Per target: throttling and upload sessions.
    pub stats: Vec<crate::execute::TargetRunStats>,
    /// Per URL target: what the run pushed and deleted at its end, and what stayed
    /// (`leftovers.json`).
    pub cleanup: Vec<crate::execute::Cleanup>,
    /// The most cases in flight at once (`--jobs`, or where the adaptive limit climbed).
    pub peak_jobs: usize,
}

impl FuzzSummary {
    /// The run's exit code: 1 when it found violations (with a baseline: new ones) or races,
    /// else 0.
    pub fn exit_code(&self) -> i32 {
        let races = self.races.as_ref().map_or(0, |r| r.violations());
        crate::report::baseline::exit_code(self.violations, self.baseline.as_ref())
            .max(i32::from(races > 0))
    }
}

/// Shrinks running beside the case stream at most.
const SHRINK_SLOTS: usize = 2;

/// The fuzz loop.
pub async fn run_fuzz(cfg: FuzzConfig) -> anyhow::Result<FuzzSummary> {
    let (shard_index, shard_count) = cfg.shard;
    if shard_count == 0 || shard_index >= shard_count {
        bail!("invalid shard {shard_index}/{shard_count}");
    }
    let targets = with_reference_first(cfg.targets.clone())?;
    let opts = ExecOptions {
        max_inflight: cfg.max_inflight,
        max_open_sessions: Some(cfg.max_open_sessions),
        min_interval: cfg.min_interval,
        max_requests: cfg.max_requests,
        spec_version: cfg.spec_version,
        ..ExecOptions::default()
    };
    let fleet = Fleet::launch_with(&targets, opts).await?;
    let share = cfg.race_share.clamp(0.0, 1.0);
    let start = Instant::now();
    let mut seq_cfg = cfg.clone();
    seq_cfg.duration = cfg.duration.mul_f64(1.0 - share);
    seq_cfg.cases = (cfg.cases as f64 * (1.0 - share)).round() as u64;
    let mut result = fuzz_with(&seq_cfg, &fleet).await;
    if let (Ok(summary), true) = (&mut result, share > 0.0) {
        let mut rc = crate::drivers::race::RaceRunConfig::new(Vec::new(), cfg.out.clone());
        // Another stream of cases than the sequential ones, from the same run seed.
        rc.seed = cfg.seed ^ 0x00c0_ffee;
        rc.cases = (cfg.cases as f64 * share).round() as u64;
        rc.duration = cfg.duration.saturating_sub(start.elapsed());
        rc.shrink = cfg.shrink;
        match crate::drivers::race::race_with(&rc, &fleet, "races.json").await {
            Ok(r) => {
                summary.cases_run += r.cases_run;
                summary.elapsed = start.elapsed();
                summary.races = Some(r);
            }
            Err(e) => result = Err(e),
        }
    }
    fleet.shutdown().await;
    result
}

/// A finding not shrunk, whose state cause is to be looked for.
struct StateJob {
    case: u64,
    seq: Sequence,
    d: Divergence,
}

/// A case run and judged, waiting to be counted in case order.
struct CaseRun {
    i: u64,
    seed: u64,
    seq: Sequence,
    outcome: CaseOutcome,
    divs: Vec<Divergence>,
}

/// The bookkeeping of one run: what has been found, where it is written, what the page says.
struct Run<'a> {
    cfg: &'a FuzzConfig,
    id: String,
    deadline: Instant,
    findings: FindingSet,
    /// Findings seen again since they were last written.
    dirty: BTreeSet<Cause>,
    /// Targets already reported unresponsive.
    dropped: BTreeSet<String>,
    /// What the end-of-run cleanup did on each URL target.
    cleanups: Vec<crate::execute::Cleanup>,
    writer: FindingsWriter,
    progress: Progress,
    /// For the page: targets with their URLs (credentials stripped), what ran so far.
    page: RunInfo,
    start: Instant,
    /// New findings waiting for a shrink slot.
    queue: VecDeque<ShrinkJob>,
    /// Findings not shrunk whose state cause is still to be looked for (in the background,
    /// beside the shrinks: the search re-runs the case with probes).
    state_queue: VecDeque<StateJob>,
}

async fn fuzz_with(cfg: &FuzzConfig, fleet: &Fleet) -> anyhow::Result<FuzzSummary> {
    let start = Instant::now();
    let (shard_index, shard_count) = cfg.shard;
    let (index, count) = (shard_index as u64, shard_count as u64);
    let mine = (0..cfg.cases).filter(move |i| i % count == index);
    let my_cases = cfg.cases.saturating_sub(index).div_ceil(count);
    let mut run = Run::new(cfg, fleet, start, my_cases)?;
    let ex = &fleet.executor;
    // Shrinking runs only the reference and the diverging target (the oracle's verdict on a
    // target depends on nothing else).
    let subsets: BTreeMap<String, Executor> = (0..fleet.launched.len())
        .map(|i| {
            let members = if i == 0 { vec![0] } else { vec![0, i] };
            (fleet.launched[i].name.clone(), ex.subset(&members))
        })
        .collect();
    // Cases in flight: `--jobs` fixed, else adapted to the targets (`drivers::adaptive`).
    let adaptive = if cfg.jobs == 0 {
        Adaptive::new(default_jobs(), 2, MAX_ADAPTIVE_JOBS)
    } else {
        Adaptive::new(cfg.jobs, cfg.jobs, cfg.jobs)
    };
    let max_jobs = if cfg.jobs == 0 {
        MAX_ADAPTIVE_JOBS
    } else {
        cfg.jobs
    };
    let adaptive = &adaptive;
    let (deadline, run_id) = (run.deadline, run.id.clone());
    // From the deadline on, only clean-up requests go out (cases in flight end cleanly).
    ex.stop_new_requests_at(Some(deadline));
    let run_id = &run_id;
    // Each case takes a place in flight, is generated and rendered (CPU only, on the blocking
    // pool, while the other cases' requests are in flight), then executed; cases are judged in
    // case order.
    let gen = std::sync::Arc::new(cfg.gen.clone());
    let mut cases = futures::stream::iter(mine)
        // No new case once a target's request budget is spent.
        .take_while(|_| {
            std::future::ready(Instant::now() < deadline && ex.budget_spent().is_empty())
        })
        .map(|i| {
            let gen = gen.clone();
            async move {
                let slot = adaptive.slot().await;
                let started = Instant::now();
                let p = prepare_case(cfg.seed, gen, i).await;
                let c = execute_case(cfg, fleet, run_id, deadline, p).await;
                if let Some(c) = &c {
                    let throttled = ex.stats().iter().map(|t| t.throttled).sum();
                    adaptive.done(c.seq.ops.len() as u64, started.elapsed(), throttled);
                }
                // The case keeps its place in flight until it is judged (so finished cases
                // waiting for the judge stay bounded by the limit).
                (slot, c)
            }
        })
        .buffered(max_jobs);
    // Cases run on their own, beside the judge: a judge that waits (a re-run that confirms a
    // transport error, the search for the op that broke the state) must not hold up the
    // requests of the cases in flight, or they would wait past their timeout for a poll.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let producer = async move {
        while let Some(c) = cases.next().await {
            if done_tx.send(c).is_err() {
                break;
            }
        }
        drop(done_tx);
        // Ends with the judge (the select below), never on its own.
        std::future::pending::<()>().await
    };
    let shrink_cx = ShrinkCx {
        fleet,
        run: run_id,
        seed: cfg.seed,
        cleanup: cfg.cleanup,
        deadline,
    };
    let mut shrinks = FuturesUnordered::new();
    // Queued shrinks take the free slots.
    let refill = |queue: &mut VecDeque<ShrinkJob>, shrinks: &mut FuturesUnordered<_>| {
        while shrinks.len() < SHRINK_SLOTS {
            let Some(job) = queue.pop_front() else {
                break;
            };
            let sx = subsets.get(&job.d.target).unwrap_or(ex);
            shrinks.push(shrink_finding(sx, &shrink_cx, job));
        }
    };
    // The state-cause searches of findings not shrunk, one at a time.
    let mut probes = FuturesUnordered::new();
    let refill_probes = |queue: &mut VecDeque<StateJob>, probes: &mut FuturesUnordered<_>| {
        while probes.is_empty() {
            let Some(job) = queue.pop_front() else {
                break;
            };
            let sx = subsets.get(&job.d.target).unwrap_or(ex);
            let cx = &shrink_cx;
            probes.push(async move {
                let ns = format!("ocidiff{}c{}sc", cx.run, job.case);
                let sc = state_cause_of(sx, cx, &job.seq, &job.d, &ns).await;
                (job.d.cause(), sc)
            });
        }
    };
    let mut completed = true;
    // Ctrl-C ends the run as its deadline would: what it pushed is still deleted and every
    // output written (a second Ctrl-C exits at once).
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    let judge = async {
        loop {
            tokio::select! {
                biased;
                _ = &mut ctrl_c => {
                    interrupted = true;
                    eprintln!("interrupted: cleaning up and writing the results (Ctrl-C again exits at once)");
                    tokio::spawn(async {
                        if tokio::signal::ctrl_c().await.is_ok() {
                            std::process::exit(130);
                        }
                    });
                    break;
                }
                Some((cause, f)) = shrinks.next(), if !shrinks.is_empty() => {
                    run.shrunk(&cause, f)?;
                }
                Some((cause, sc)) = probes.next(), if !probes.is_empty() => {
                    run.state_found(&cause, sc)?;
                }
                next = done_rx.recv() => match next {
                    Some((_slot, Some(c))) => run.judge(c, ex, &subsets).await?,
                    Some((_slot, None)) => completed = false,
                    None => break,
                },
            }
            refill(&mut run.queue, &mut shrinks);
            refill_probes(&mut run.state_queue, &mut probes);
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = judge => r?,
        _ = producer => {}
    }
    // Cases still in flight (cut by Ctrl-C) are dropped with the producer.
    if Instant::now() >= deadline || !ex.budget_spent().is_empty() || interrupted {
        completed = false;
    }
    // The queued shrinks run until the deadline (a run that ran out of cases early still
    // shrinks what it found last); shrinks stop at the deadline (their budget is capped by
    // it), queued ones that never got a slot stay unshrunk (after Ctrl-C, running ones too).
    if interrupted {
        shrinks.clear();
        probes.clear();
    }
    loop {
        if !interrupted && Instant::now() < deadline {
            refill(&mut run.queue, &mut shrinks);
            refill_probes(&mut run.state_queue, &mut probes);
        }
        tokio::select! {
            Some((cause, f)) = shrinks.next(), if !shrinks.is_empty() => run.shrunk(&cause, f)?,
            Some((cause, sc)) = probes.next(), if !probes.is_empty() => run.state_found(&cause, sc)?,
            else => break,
        }
    }
    // Sessions of cases cut at the deadline are cancelled like those of finished cases.
    // (Shrink executors share the targets, and so their sessions.)
    ex.cancel_orphans().await;
    // What the run pushed to registries ocidiff does not own (URL targets) is deleted;
    // what stays is listed in leftovers.json.
    if cfg.cleanup {
        let remote: Vec<String> = fleet
            .launched
            .iter()
            .filter(|t| t.kind == "url")
            .map(|t| t.name.clone())
            .collect();
        if !remote.is_empty() {
            run.cleanups = ex.delete_pushed(&remote).await;
            write_atomic(
                &cfg.out.join("leftovers.json"),
                &serde_json::to_vec_pretty(&run.cleanups)?,
            )?;
        }
    }
    // Requests given up at the deadline count too.
    run.unresponsive(None, ex)?;
    ex.stop_new_requests_at(None);
    let peak = adaptive.peak();
    run.finish(fleet, completed, peak)
}

/// A generated case with its rendered content (`None`: it does not render).
struct PreparedCase {
    i: u64,
    seed: u64,
    seq: Sequence,
    content: Option<Content>,
}

/// How long a case running at the deadline may take to finish its request in flight and
/// cancel its upload sessions before it is cut.
const DEADLINE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Generates and renders case `i` on the blocking pool (CPU work off the async threads).
async fn prepare_case(run_seed: u64, gen: std::sync::Arc<GenConfig>, i: u64) -> PreparedCase {
    let seed = case_seed(run_seed, i);
    let job = move || {
        let (seq, content) = generate_case(seed, &gen);
        PreparedCase {
            i,
            seed,
            seq,
            content,
        }
    };
    match tokio::task::spawn_blocking(job).await {
        Ok(p) => p,
        // The generator panicked: the same panic, on this task (a bug, not an outcome).
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Runs and judges a prepared case, cut at the deadline; `None` when cut (or content won't
/// render).
async fn execute_case(
    cfg: &FuzzConfig,
    fleet: &Fleet,
    run: &str,
    deadline: Instant,
    p: PreparedCase,
) -> Option<CaseRun> {
    let PreparedCase {
        i,
        seed,
        seq,
        content,
    } = p;
    let Some(content) = content else {
        tracing::warn!(case = i, "generated content does not render; skipped");
        return None;
    };
    if Instant::now() >= deadline || !fleet.executor.budget_spent().is_empty() {
        return None;
    }
    let ns = format!("ocidiff{run}c{i}");
    // At the deadline the executor sends no new request (`stop_new_requests_at`): the case
    // ends after its request in flight and cancels its sessions; the hard cut is for a target
    // that does not answer that request either.
    let result = tokio::time::timeout_at(
        tokio::time::Instant::from_std(deadline + DEADLINE_GRACE),
        run_rendered(&fleet.executor, &seq, &content, &ns),
    )
    .await;
    if cfg.cleanup {
        fleet.cleanup(&ns);
    }
    let (outcome, divs) = result.ok()?;
    if Instant::now() >= deadline {
        // Ops past the deadline were not sent: the case is cut, not judged.
        return None;
    }
    Some(CaseRun {
        i,
        seed,
        seq,
        outcome,
        divs,
    })
}

impl<'a> Run<'a> {
    fn new(
        cfg: &'a FuzzConfig,
        fleet: &Fleet,
        start: Instant,
        cases: u64,
    ) -> anyhow::Result<Run<'a>> {
        let urls: BTreeMap<String, String> = fleet
            .launched
            .iter()
            .map(|t| (t.name.clone(), t.base_url.to_string()))
            .collect();
        let id = run_id();
        Ok(Run {
            cfg,
            page: RunInfo {
                run_id: id.clone(),
                seed: cfg.seed,
                targets: fleet
                    .launched
                    .iter()
                    .map(|t| (t.name.clone(), strip_credentials(t.base_url.as_str())))
                    .collect(),
                running: true,
                shard: (cfg.shard.1 > 1).then_some(cfg.shard),
                spec_version: cfg.spec_version,
                ..RunInfo::default()
            },
            id,
            deadline: start + cfg.duration,
            findings: FindingSet::new(),
            dirty: BTreeSet::new(),
            dropped: BTreeSet::new(),
            cleanups: Vec::new(),
            writer: FindingsWriter::new(&cfg.out)?.with_target_urls(urls),
            progress: Progress::new(cases, cfg.progress),
            start,
            queue: VecDeque::new(),
            state_queue: VecDeque::new(),
        })
    }

    /// Counts a finished case: its divergences against the findings, new causes as findings.
    async fn judge(
        &mut self,
        mut c: CaseRun,
        ex: &Executor,
        subsets: &BTreeMap<String, Executor>,
    ) -> anyhow::Result<()> {
        self.page.cases_run += 1;
        self.page.ops_run += c.seq.ops.len() as u64;
        roots_first(&mut c.divs);
        for d in &c.divs {
            match self.findings.absorb(d) {
                Absorbed::New => {
                    let sx = subsets.get(&d.target).unwrap_or(ex);
                    self.new_finding(&c, d, sx).await?;
                }
                Absorbed::Occurrence(_) | Absorbed::Symptom(_) => {
                    if let Some(home) = self.findings.cause_of(d) {
                        self.dirty.insert(home);
                    }
                }
            }
        }
        self.unresponsive(Some(&c), ex)?;
        self.progress.case_done(c.seq.ops.len() as u64);
        // Known findings seen again are rewritten now and then, not after every case.
        if self.page.cases_run.is_multiple_of(16) {
            self.flush()?;
        }
        Ok(())
    }

    /// A divergence of a cause not seen before: confirmed when it could be the network's
    /// doing, written unshrunk, queued for shrinking when it is a violation (or when asked).
    async fn new_finding(
        &mut self,
        c: &CaseRun,
        d: &Divergence,
        sx: &Executor,
    ) -> anyhow::Result<()> {
        // A dropped connection can be the network's doing (or a race: a registry that answers
        // early and closes while the body is still being written): a finding on an exchange
        // that got no response must show again on a re-run, and once more after shrinking,
        // before it counts.
        let transport = got_no_response(d, &c.outcome);
        if transport {
            let ns = format!("ocidiff{}c{}t", self.id, c.i);
            let cause = d.cause();
            let again = run_checked(sx, &c.seq, &ns)
                .await
                .is_some_and(|(_, _, divs)| divs.iter().any(|x| x.cause() == cause));
            if !again {
                tracing::warn!(case = c.i, target = %d.target, "transport error did not reproduce; ignored");
                return Ok(());
            }
        }
        let mut finding = Finding::new(d, &c.seq, self.cfg.seed, c.i, c.seed);
        finding.outcome = Some(c.outcome.clone());
        let shrinks =
            self.cfg.shrink && (d.class == Class::Violation || self.cfg.shrink_variations);
        if !shrinks {
            // Not shrunk: the op that broke the state is looked for in the case as it ran, in
            // the background (the search re-runs the case with probes).
            self.state_queue.push_back(StateJob {
                case: c.i,
                seq: c.seq.clone(),
                d: d.clone(),
            });
        }
        self.progress.message(&format!(
            "new {}: {} {} on {} ({})",
            d.class,
            finding.id,
            d.rule,
            d.target,
            d.summary.chars().take(90).collect::<String>()
        ));
        self.writer.add(&finding)?;
        for folded in self.findings.insert(finding) {
            self.writer.remove(&folded)?;
        }
        self.dirty.insert(d.cause());
        self.fold_state(&d.cause())?;
        self.progress.set_findings(self.findings.len());
        if shrinks {
            self.queue.push_back(ShrinkJob {
                case: c.i,
                case_seed: c.seed,
                seq: c.seq.clone(),
                d: d.clone(),
                outcome: c.outcome.clone(),
                transport,
            });
        }
        Ok(())
    }

    /// A shrink finished: its finding takes the known one's place (or, for a transport error
    /// that did not show again, the finding goes).
    fn shrunk(&mut self, cause: &Cause, f: Option<Finding>) -> anyhow::Result<()> {
        match f {
            // Its control showed another cause: the finding of that cause takes it.
            Some(f) if f.divergence.cause() != *cause => {
                let now = f.divergence.cause();
                for id in self.findings.reattribute(cause, f) {
                    self.writer.remove(&id)?;
                }
                if let Some(f) = self.findings.get(&now) {
                    self.writer.add(f)?;
                }
                self.dirty.remove(cause);
                self.fold_state(&now)?;
            }
            Some(f) => {
                let id = f.id.clone();
                if self.findings.replace_shrunk(cause, f) {
                    if let Some(f) = self.findings.get(cause) {
                        self.writer.add(f)?;
                    }
                    self.dirty.remove(cause);
                    self.fold_state(cause)?;
                } else {
                    tracing::debug!(%id, "shrunk finding was folded meanwhile");
                }
            }
            None => {
                if let Some(gone) = self.findings.remove(cause) {
                    tracing::warn!(id = %gone.id, "transport error did not reproduce after shrinking; dropped");
                    self.writer.remove(&gone.id)?;
                }
            }
        }
        self.progress.set_findings(self.findings.len());
        Ok(())
    }

    /// Folds the finding of `c` with the others its state cause makes one bug; the root is
    /// rewritten, the folded ones removed.
    /// The op that broke the state a finding not shrunk reads, found in the background: the
    /// finding notes it, and the findings it explains fold into it.
    fn state_found(&mut self, c: &Cause, sc: Option<StateCause>) -> anyhow::Result<()> {
        let Some(sc) = sc else {
            return Ok(());
        };
        let Some(f) = self.findings.get_mut(c) else {
            return Ok(());
        };
        f.state_cause = Some(sc);
        self.writer.add(f)?;
        self.fold_state(c)
    }

    fn fold_state(&mut self, c: &Cause) -> anyhow::Result<()> {
        let gone = self.findings.fold_state(c);
        if gone.is_empty() {
            return Ok(());
        }
        for id in &gone {
            self.writer.remove(id)?;
        }
        let roots: Vec<Finding> = self
            .findings
            .iter()
            .filter(|f| f.divergence.target == c.target && f.state_cause.is_some())
            .cloned()
            .collect();
        for f in &roots {
            self.writer.add(f)?;
            self.dirty.remove(&f.divergence.cause());
        }
        Ok(())
    }

    /// Reports, once, each target the executor dropped for not answering (with the case that
    /// showed it, when there is one); stops the run when the reference itself stopped
    /// answering.
    fn unresponsive(&mut self, c: Option<&CaseRun>, ex: &Executor) -> anyhow::Result<()> {
        let reference = ex.target_names().into_iter().next();
        for (name, why) in ex.unresponsive() {
            if !self.dropped.insert(name.clone()) {
                continue;
            }
            if reference.as_ref() == Some(&name) {
                bail!("the reference registry stopped answering: {why}");
            }
            let r = rule("target/unresponsive");
            let d = Divergence {
                class: r.class,
                target: name.clone(),
                op_index: 0,
                label: String::new(),
                endpoint: "any".into(),
                field: "exchange".into(),
                rule: r.id.into(),
                spec: r.spec.into(),
                summary: format!("{why}; dropped from the rest of the run"),
                expected: "answers".into(),
                actual: "no answer".into(),
                reference: None,
                spec_version: ex.spec_version(),
            };
            self.progress
                .message(&format!("target {name} dropped: {why}"));
            tracing::warn!(target = %name, "dropped from the run: {why}");
            let mut f = match c {
                Some(c) => {
                    let mut f = Finding::new(&d, &c.seq, self.cfg.seed, c.i, c.seed);
                    f.outcome = Some(c.outcome.clone());
                    f
                }
                None => Finding::new(&d, &Sequence::default(), self.cfg.seed, 0, 0),
            };
            f.confirmed = true;
            self.writer.add(&f)?;
            self.findings.insert(f);
        }
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
        write_atomic(
            &self.cfg.out.join("run.json"),
            &serde_json::to_vec_pretty(&self.page)?,
        )?;
        fuzz_html::write(&self.cfg.out, &self.page, &all)
    }

    fn finish(
        mut self,
        fleet: &Fleet,
        completed: bool,
        peak_jobs: usize,
    ) -> anyhow::Result<FuzzSummary> {
        self.page.running = false;
        self.page.stats = fleet.executor.stats();
        self.flush()?;
        self.progress.finish();
        let findings = self.findings.into_vec();
        let baseline = match &self.cfg.baseline {
            Some(b) => {
                let c = crate::report::baseline::compare(b, &findings);
                self.writer.mark_baseline(&c)?;
                write_atomic(
                    &self.cfg.out.join("baseline.json"),
                    serde_json::to_string_pretty(&c)?.as_bytes(),
                )?;
                Some(c)
            }
            None => None,
        };
        write_atomic(
            &self.cfg.out.join("junit.xml"),
            crate::report::junit::fuzz(&self.page, &findings, baseline.as_ref())?.as_bytes(),
        )?;
        let count = |c: Class| findings.iter().filter(|f| f.divergence.class == c).count();
        Ok(FuzzSummary {
            run_id: self.id,
            targets: fleet.names(),
            cases_run: self.page.cases_run,
            ops_run: self.page.ops_run,
            violations: count(Class::Violation),
            variations: count(Class::Variation),
            unsupported: count(Class::Unsupported),
            findings,
            elapsed: self.start.elapsed(),
            out: self.cfg.out.clone(),
            completed,
            baseline,
            races: None,
            stats: self.page.stats.clone(),
            cleanup: self.cleanups,
            peak_jobs,
        })
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
            seed: 1,
            cases: 6,
            shrink: false,
            ..FuzzConfig::new(
                vec![
                    reference(),
                    ("twin".into(), TargetSpec::Reference(Box::default())),
                ],
                dir.path().join("out"),
            )
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
                seed: 42,
                duration: Duration::from_secs(120),
                cases: 8,
                ..FuzzConfig::new(
                    vec![
                        reference(),
                        (
                            "twin".into(),
                            TargetSpec::Reference(Box::new(faulty.clone())),
                        ),
                    ],
                    dir.path().join("out"),
                )
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
