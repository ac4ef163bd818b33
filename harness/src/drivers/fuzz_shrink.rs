//! Shrinking a fuzz finding beside the case stream: a bounded delta-debugging run on the
//! reference and the diverging target only, each candidate in its own namespace (forgotten
//! afterwards on embedded registries), cut at the run's deadline.

use super::case::{run_checked, Fleet};
use crate::compare::{Cause, Class, Divergence};
use crate::execute::Executor;
use crate::ops::Sequence;
use crate::shrink::{finding_id, shrink_counted, Finding, ShrinkBudget};
use crate::vocab::exchange::CaseOutcome;
use std::time::{Duration, Instant};

/// Per-shrink bounds: violations get the full budget, variations / unsupported a smaller one.
const SHRINK_MAX_RUNS: u32 = 120;
const SHRINK_MAX_TIME: Duration = Duration::from_secs(30);
const SHRINK_MINOR_RUNS: u32 = 40;
const SHRINK_MINOR_TIME: Duration = Duration::from_secs(10);

/// What every shrink of a run shares.
pub struct ShrinkCx<'a> {
    pub fleet: &'a Fleet,
    /// The run id (namespaces) and seed (findings).
    pub run: &'a str,
    pub seed: u64,
    /// Forget each candidate's namespace on the embedded registries.
    pub cleanup: bool,
    pub deadline: Instant,
}

/// What a candidate run showed.
enum Candidate {
    Shows(Box<(Divergence, CaseOutcome)>),
    Absent,
    /// The run's deadline came first.
    Cut,
}

/// A new finding to shrink: the case it showed in and its divergence.
pub struct ShrinkJob {
    pub case: u64,
    pub case_seed: u64,
    pub seq: Sequence,
    pub d: Divergence,
    pub outcome: CaseOutcome,
    /// The target got no answer: the minimal sequence must show it again, or it is dropped.
    pub transport: bool,
}

/// Shrinks `job`; returns its cause and the shrunk finding (`None`: a transport error that did
/// not show again). A minimal sequence that does not confirm leaves the original case, flagged.
pub async fn shrink_finding(
    ex: &Executor,
    cx: &ShrinkCx<'_>,
    job: ShrinkJob,
) -> (Cause, Option<Finding>) {
    let (run, deadline) = (cx.run, cx.deadline);
    let cause = job.d.cause();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let (runs, time) = if job.d.class == Class::Violation {
        (SHRINK_MAX_RUNS, SHRINK_MAX_TIME)
    } else {
        (SHRINK_MINOR_RUNS, SHRINK_MINOR_TIME)
    };
    let budget = ShrinkBudget {
        max_runs: runs,
        // Never past the run's deadline: `--duration` bounds the whole run, shrinking included.
        max_time: time.min(remaining),
    };
    let id = finding_id(&cause);
    let case = job.case;
    let candidate = |ns: String, cand: Sequence| {
        let cause = cause.clone();
        async move {
            let run = tokio::time::timeout_at(
                tokio::time::Instant::from_std(deadline),
                run_checked(ex, &cand, &ns),
            )
            .await;
            if cx.cleanup {
                cx.fleet.cleanup(&ns);
            }
            match run {
                Ok(Some((_, o, divs))) => match divs.into_iter().find(|x| x.cause() == cause) {
                    Some(x) => Candidate::Shows(Box::new((x, o))),
                    None => Candidate::Absent,
                },
                Ok(None) => Candidate::Absent,
                Err(_) => Candidate::Cut,
            }
        }
    };
    let mut attempt = 0u32;
    let shrunk = shrink_counted(
        &job.seq,
        |cand: Sequence| {
            attempt += 1;
            let ns = format!("ocidiff{run}c{case}s{}{attempt}", &id[..4]);
            let fut = candidate(ns, cand);
            async move { matches!(fut.await, Candidate::Shows(_)) }
        },
        budget,
    )
    .await;
    // Confirm the minimal sequence once more and keep its observations for the report.
    let ns = format!("ocidiff{run}c{case}s{}final", &id[..4]);
    let confirmed = candidate(ns, shrunk.seq.clone()).await;
    let mut f = match confirmed {
        Candidate::Shows(found) => {
            let (div, o) = *found;
            let mut f = Finding::new(&div, &shrunk.seq, cx.seed, case, job.case_seed);
            f.original_ops_len = job.seq.ops.len();
            f.outcome = Some(o);
            f
        }
        Candidate::Absent if job.transport => return (cause, None),
        other => {
            // Cut by the deadline: the original case, as observed. Did not show again: the
            // original case, flagged as flaky.
            let mut f = Finding::new(&job.d, &job.seq, cx.seed, case, job.case_seed);
            f.outcome = Some(job.outcome);
            f.confirmed = matches!(other, Candidate::Cut) && !job.transport;
            f
        }
    };
    f.shrink_runs = shrunk.runs;
    f.shrink_skipped = shrunk.skipped;
    (cause, Some(f))
}
