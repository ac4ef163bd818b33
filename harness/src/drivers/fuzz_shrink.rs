//! Shrinking a fuzz finding beside the case stream: a bounded delta-debugging run on the
//! reference and the diverging target only, each candidate in its own namespace (forgotten
//! afterwards on embedded registries), cut at the run's deadline.
//!
//! Then the isolation check: the minimal sequence is run on a fresh reference and a fresh copy
//! of the target (for targets ocidiff starts itself), where nothing of the run is. A registry
//! that shares content between repositories can show a divergence only because another case
//! pushed the same content (an empty blob, say) elsewhere: then the case's content is pushed
//! to a repository of its own first, and that sequence is shrunk on fresh copies, so the
//! reproducer shows the bug by itself. When neither shows it, the finding says so.

use super::case::{run_checked, Fleet};
use crate::compare::{Cause, Class, Divergence};
use crate::execute::Executor;
use crate::ops::blob_push::{PushBlob, PushMethod};
use crate::ops::manifest_push::PushManifest;
use crate::ops::{Op, Sequence};
use crate::shrink::state_cause::{about_state, probed, state_cause, StateCause};
use crate::shrink::{finding_id, shrink_counted, Finding, ShrinkBudget};
use crate::vocab::content::Content;
use crate::vocab::exchange::CaseOutcome;
use crate::vocab::{BlobId, ManifestId, ManifestSpec, Reference, Repo};
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
            judge(run, &cause)
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
    let (mut f, mut isolation) = match confirmed {
        Candidate::Shows(found) => {
            let (div, o) = *found;
            let mut f = Finding::new(&div, &shrunk.seq, cx.seed, case, job.case_seed);
            f.original_ops_len = job.seq.ops.len();
            f.outcome = Some(o);
            let isolation = isolate(cx, &cause, &job.d.target, &shrunk.seq, true).await;
            (f, isolation)
        }
        Candidate::Absent if job.transport => return (cause, None),
        other => {
            // Cut by the deadline: the original case, as observed. Did not show again: the
            // original case, flagged as flaky.
            let mut f = Finding::new(&job.d, &job.seq, cx.seed, case, job.case_seed);
            f.outcome = Some(job.outcome.clone());
            f.confirmed = matches!(other, Candidate::Cut) && !job.transport;
            (f, Isolation::Fails)
        }
    };
    // What shows only after other runs (earlier cases, or the shrink's own candidates) left
    // content on a shared store is not shrunk right there: start again from the whole case.
    if matches!(isolation, Isolation::Fails) && !job.transport {
        isolation = isolate(cx, &cause, &job.d.target, &job.seq, false).await;
    }
    match isolation {
        Isolation::Unchecked => {}
        Isolation::Holds => f.isolated = Some(true),
        Isolation::Fresh(found) => {
            let (seq, div, o) = *found;
            f.ops = seq;
            f.divergence = div;
            f.outcome = Some(o);
            f.confirmed = true;
            f.isolated = Some(true);
        }
        Isolation::Fails => f.isolated = Some(false),
    }
    if f.confirmed {
        if let Some((seq, div, o)) = control(ex, cx, &f).await {
            f.ops = seq;
            f.id = finding_id(&div.cause());
            f.divergence = div;
            f.outcome = Some(o);
        }
    }
    f.shrink_runs = shrunk.runs;
    f.shrink_skipped = shrunk.skipped;
    if f.confirmed {
        let ns = format!("ocidiff{run}c{case}s{}sc", &id[..4]);
        f.state_cause = state_cause_of(ex, cx, &f.ops, &f.divergence, &ns).await;
    }
    (cause, Some(f))
}

/// The op of `seq` that broke the state `d`'s op reads, if one did (`shrink::state_cause`):
/// one run of `seq` up to `d`'s op with probes, on `ex`, cut at the deadline.
pub async fn state_cause_of(
    ex: &Executor,
    cx: &ShrinkCx<'_>,
    seq: &Sequence,
    d: &Divergence,
    ns: &str,
) -> Option<StateCause> {
    if !about_state(d) {
        return None;
    }
    let content = Content::render(&seq.content).ok()?;
    let p = probed(seq, d.op_index, &content)?;
    let run = tokio::time::timeout_at(
        tokio::time::Instant::from_std(cx.deadline),
        run_checked(ex, &p.seq, ns),
    )
    .await;
    if cx.cleanup {
        cx.fleet.cleanup(ns);
    }
    let (_, _, divs) = run.ok()??;
    state_cause(&p, seq, &content, &d.target, &divs)
}

type Checked = Option<(Content, CaseOutcome, Vec<Divergence>)>;

/// What a run (cut at the deadline, or not) showed of `cause`.
fn judge(run: Result<Checked, tokio::time::error::Elapsed>, cause: &Cause) -> Candidate {
    match run {
        Ok(Some((_, o, divs))) => match divs.into_iter().find(|x| x.cause() == *cause) {
            Some(x) => Candidate::Shows(Box::new((x, o))),
            None => Candidate::Absent,
        },
        Ok(None) => Candidate::Absent,
        Err(_) => Candidate::Cut,
    }
}

/// How a sequence fared on fresh instances.
enum Isolation {
    /// Not checked: a target ocidiff does not start itself, or the deadline came first.
    Unchecked,
    /// The minimal sequence shows as it is.
    Holds,
    /// A sequence shrunk on fresh instances (from the one given, or from it with the case's
    /// content pushed to another repository first), and what it showed.
    Fresh(Box<(Sequence, Divergence, CaseOutcome)>),
    /// It does not show: it depended on what other runs left on the target.
    Fails,
}

/// Runs `seq` on a fresh reference and a fresh copy of `target` (`None`: the target cannot be
/// started afresh, or did not start).
async fn run_fresh(
    cx: &ShrinkCx<'_>,
    target: &str,
    seq: &Sequence,
) -> Option<Result<Checked, tokio::time::error::Elapsed>> {
    let fleet = match cx.fleet.fresh_pair(target).await? {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(%target, "cannot start a fresh copy for the isolation check: {e:#}");
            return None;
        }
    };
    let ns = format!("ocidiff{}iso", cx.run);
    let run = tokio::time::timeout_at(
        tokio::time::Instant::from_std(cx.deadline),
        run_checked(&fleet.executor, seq, &ns),
    )
    .await;
    fleet.shutdown().await;
    Some(run)
}

/// [`run_fresh`], judged for `cause`.
async fn on_fresh(
    cx: &ShrinkCx<'_>,
    target: &str,
    cause: &Cause,
    seq: &Sequence,
) -> Option<Candidate> {
    Some(judge(run_fresh(cx, target, seq).await?, cause))
}

/// The isolation check of `seq` (see the module notes); `minimal`: `seq` is already shrunk,
/// so a sequence that shows as it is needs no shrinking on fresh instances.
async fn isolate(
    cx: &ShrinkCx<'_>,
    cause: &Cause,
    target: &str,
    seq: &Sequence,
    minimal: bool,
) -> Isolation {
    let start = match on_fresh(cx, target, cause, seq).await {
        Some(Candidate::Shows(_)) if minimal => return Isolation::Holds,
        Some(Candidate::Shows(_)) => seq.clone(),
        Some(Candidate::Absent) => {
            let primed = with_content_elsewhere(seq);
            match on_fresh(cx, target, cause, &primed).await {
                Some(Candidate::Shows(_)) => primed,
                Some(Candidate::Absent) => return Isolation::Fails,
                Some(Candidate::Cut) | None => return Isolation::Unchecked,
            }
        }
        Some(Candidate::Cut) | None => return Isolation::Unchecked,
    };
    let budget = ShrinkBudget {
        max_runs: SHRINK_MAX_RUNS,
        max_time: SHRINK_MAX_TIME.min(cx.deadline.saturating_duration_since(Instant::now())),
    };
    let shrunk = shrink_counted(
        &start,
        |cand: Sequence| async move {
            matches!(
                on_fresh(cx, target, cause, &cand).await,
                Some(Candidate::Shows(_))
            )
        },
        budget,
    )
    .await;
    match on_fresh(cx, target, cause, &shrunk.seq).await {
        Some(Candidate::Shows(found)) => {
            let (div, o) = *found;
            Isolation::Fresh(Box::new((shrunk.seq, div, o)))
        }
        Some(Candidate::Absent) => Isolation::Fails,
        Some(Candidate::Cut) | None => Isolation::Unchecked,
    }
}

/// Rules that name a condition of what is pushed (a subject that does not exist), with the rules
/// the same failure falls under without it. The control is the finding's sequence with the
/// condition dropped; when the same op still fails with the same status under a plain rule,
/// the condition was not the cause (a registry that rejects every push by digest rejects one
/// with a missing subject too), and the finding becomes the control's.
const CONTROLS: &[(&str, &[&str])] = &[(
    "end-7/missing-subject",
    &["end-7/put-201", "end-7/push-unsupported"],
)];

/// The control sequence of `f` (see [`CONTROLS`]) and the rules it may show.
fn control_of(f: &Finding) -> Option<(Sequence, &'static [&'static str])> {
    let d = &f.divergence;
    let (_, plain) = CONTROLS.iter().find(|(rule, _)| *rule == d.rule)?;
    let Some(Op::PushManifest(p)) = f.ops.ops.get(d.op_index) else {
        return None;
    };
    let mut seq = f.ops.clone();
    match seq.content.manifests.get_mut(usize::from(p.manifest.0))? {
        ManifestSpec::Image { subject, .. } | ManifestSpec::Index { subject, .. } => {
            subject.take()?;
        }
    }
    Some((seq, plain))
}

/// Runs the control of `f`, if it has one (on fresh instances when the target allows it, else
/// on the run's targets), and returns what it showed when it shows the same failure under the
/// plain rule.
async fn control(
    ex: &Executor,
    cx: &ShrinkCx<'_>,
    f: &Finding,
) -> Option<(Sequence, Divergence, CaseOutcome)> {
    let (seq, plain) = control_of(f)?;
    let d = &f.divergence;
    let run = match run_fresh(cx, &d.target, &seq).await {
        Some(run) => run,
        None => {
            let ns = format!("ocidiff{}c{}ctl", cx.run, f.first_seen_case);
            let run = tokio::time::timeout_at(
                tokio::time::Instant::from_std(cx.deadline),
                run_checked(ex, &seq, &ns),
            )
            .await;
            if cx.cleanup {
                cx.fleet.cleanup(&ns);
            }
            run
        }
    };
    let (_, outcome, divs) = run.ok()??;
    let same = divs.into_iter().find(|x| {
        x.target == d.target
            && x.op_index == d.op_index
            && x.field == d.field
            && x.actual == d.actual
            && plain.contains(&x.rule.as_str())
    })?;
    Some((seq, same, outcome))
}

/// A repository no generated sequence uses (they use `r0` .. `r<repos - 1>`, at most 254).
const ELSEWHERE: Repo = Repo(u8::MAX);

/// `seq` after every blob and manifest of its content is pushed to another repository
/// ([`ELSEWHERE`]): blobs monolithically, manifests by digest, in content order (a manifest's
/// references come before it).
pub fn with_content_elsewhere(seq: &Sequence) -> Sequence {
    let blobs = (0..seq.content.blobs.len()).map(|b| {
        Op::PushBlob(PushBlob {
            repo: ELSEWHERE,
            blob: BlobId(b as u16),
            method: PushMethod::Monolithic,
            digest: Default::default(),
        })
    });
    let manifests = (0..seq.content.manifests.len()).map(|m| {
        let id = ManifestId(m as u16);
        Op::PushManifest(PushManifest {
            repo: ELSEWHERE,
            manifest: id,
            reference: Reference::Digest(id),
            tags: Vec::new(),
            content_type: Default::default(),
        })
    });
    let mut out = seq.clone();
    out.ops = blobs
        .chain(manifests)
        .chain(seq.ops.iter().cloned())
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::blob_pull::GetBlob;
    use crate::targets::TargetSpec;
    use crate::vocab::{BlobSpec, ContentSpec};

    fn empty_blob() -> ContentSpec {
        ContentSpec {
            blobs: vec![BlobSpec {
                size: 0,
                seed: 1,
                algo: Default::default(),
            }],
            manifests: Vec::new(),
        }
    }

    fn push(repo: Repo) -> Op {
        Op::PushBlob(PushBlob {
            repo,
            blob: BlobId(0),
            method: PushMethod::Monolithic,
            digest: Default::default(),
        })
    }

    fn pull(repo: Repo) -> Op {
        Op::GetBlob(GetBlob {
            repo,
            blob: BlobId(0),
            range: None,
        })
    }

    /// The reference and, as `name`, a reference with `fault`.
    async fn with_fault(name: &str, fault: &str) -> Fleet {
        let faulty = reference_registry::Config {
            faults: reference_registry::Faults::only(fault).unwrap(),
            ..Default::default()
        };
        Fleet::launch(
            &[
                ("reference".into(), TargetSpec::Reference(Box::default())),
                (name.into(), TargetSpec::Reference(Box::new(faulty))),
            ],
            crate::compare::SpecVersion::V1_1Dev,
        )
        .await
        .unwrap()
    }

    /// Shrinks (and checks the isolation of) the first violation `seq` shows on `target` in
    /// namespace `ns`.
    async fn finding_on(fleet: &Fleet, target: &str, seq: Sequence, ns: &str) -> Finding {
        let (_, outcome, divs) = run_checked(&fleet.executor, &seq, ns).await.unwrap();
        // Forgotten as after a case; an embedded registry drops content one cleanup after the
        // one following its arrival (pushes in flight keep theirs), hence two.
        fleet.cleanup(ns);
        fleet.cleanup(ns);
        let d = divs
            .into_iter()
            .find(|d| d.target == target && d.class == Class::Violation)
            .expect("the fault shows");
        let cx = ShrinkCx {
            fleet,
            run: "t",
            seed: 1,
            cleanup: true,
            deadline: Instant::now() + Duration::from_secs(60),
        };
        let job = ShrinkJob {
            case: 0,
            case_seed: 1,
            seq,
            d,
            outcome,
            transport: false,
        };
        shrink_finding(&fleet.executor, &cx, job).await.1.unwrap()
    }

    /// A registry that serves blobs from one store whatever the repository: a pull of a blob
    /// this case never pushed shows only because another case pushed the same (empty) blob.
    /// The reproducer gets that push, to a repository of its own, and then holds on a fresh
    /// registry; a finding the case shows by itself needs nothing added.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reproducers_hold_on_fresh_registries() {
        let fleet = with_fault("shared", "blobs_shared_across_repos").await;
        // Shown by the case itself (pushed to r1, pulled from r0): as it is.
        let f = finding_on(
            &fleet,
            "shared",
            Sequence {
                content: empty_blob(),
                ops: vec![push(Repo(1)), pull(Repo(0))],
            },
            "case2",
        )
        .await;
        assert_eq!(f.isolated, Some(true), "{f:#?}");
        assert_eq!(f.ops.ops, vec![push(Repo(1)), pull(Repo(0))]);
        // Another case pushes the empty blob (and keeps it: no cleanup of its namespace).
        let other = Sequence {
            content: empty_blob(),
            ops: vec![push(Repo(0))],
        };
        let (_, _, divs) = run_checked(&fleet.executor, &other, "other").await.unwrap();
        assert!(divs.is_empty(), "{divs:#?}");

        let f = finding_on(
            &fleet,
            "shared",
            Sequence {
                content: empty_blob(),
                ops: vec![pull(Repo(0))],
            },
            "case",
        )
        .await;
        assert_eq!(f.isolated, Some(true), "{f:#?}");
        assert_eq!(f.ops.ops, vec![push(ELSEWHERE), pull(Repo(0))]);

        fleet.shutdown().await;
    }

    fn image(subject: Option<ManifestId>) -> ManifestSpec {
        ManifestSpec::Image {
            flavor: Default::default(),
            config: BlobId(0),
            config_media_type: None,
            layers: Vec::new(),
            subject,
            artifact_type: None,
            annotations: Default::default(),
            data_field: false,
            custom_fields: false,
            nondistributable: false,
            algo: Default::default(),
        }
    }

    /// An image with the same references as `image(None)` and other bytes.
    fn other_image() -> ManifestSpec {
        let mut other = image(None);
        if let ManifestSpec::Image { custom_fields, .. } = &mut other {
            *custom_fields = true;
        }
        other
    }

    fn push_by_tag(m: u16) -> Op {
        Op::PushManifest(PushManifest {
            reference: Reference::Tag("t".into()),
            ..PushManifest::new(Repo(0), ManifestId(m), Reference::Digest(ManifestId(m)))
        })
    }

    fn push_manifest(m: u16) -> Op {
        Op::PushManifest(PushManifest {
            repo: Repo(0),
            manifest: ManifestId(m),
            reference: Reference::Digest(ManifestId(m)),
            tags: Vec::new(),
            content_type: Default::default(),
        })
    }

    /// A registry that rejects every manifest push by digest (and accepts them by tag) rejects
    /// one whose subject is missing too: the control (the same push without the subject) fails
    /// the same way, so the finding is the plain push rule's, not the missing subject's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_condition_that_is_not_the_cause_is_dropped() {
        let fleet = with_fault("bytag", "manifest_put_by_digest_rejected").await;
        let mut content = empty_blob();
        content.manifests = vec![image(None), image(Some(ManifestId(0))), other_image()];
        let seq = Sequence {
            content,
            ops: vec![push(Repo(0)), push_by_tag(2), push_manifest(1)],
        };
        let (_, _, divs) = run_checked(&fleet.executor, &seq, "first").await.unwrap();
        assert!(
            divs.iter().any(|d| d.rule == "end-7/missing-subject"),
            "{divs:#?}"
        );
        let f = finding_on(&fleet, "bytag", seq, "case").await;
        assert_eq!(f.divergence.rule, "end-7/put-201", "{f:#?}");
        assert_eq!(f.id, finding_id(&f.divergence.cause()));
        let Some(Op::PushManifest(p)) = f.ops.ops.get(f.divergence.op_index) else {
            panic!("{f:#?}");
        };
        assert!(f.ops.content.manifests[usize::from(p.manifest.0)]
            .references()
            .1
            .is_empty());
        fleet.shutdown().await;
    }

    /// "Registries SHOULD also support the Push ... categories": a registry that accepted no
    /// manifest push of the case declines pushing (unsupported), it does not break the MUST of
    /// a category it implements; one that accepted another push does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rejected_push_is_a_violation_only_where_pushes_work() {
        let fleet = with_fault("bytag", "manifest_put_by_digest_rejected").await;
        let mut content = empty_blob();
        content.manifests = vec![image(None), other_image()];
        let alone = Sequence {
            content: content.clone(),
            ops: vec![push(Repo(0)), push_manifest(0)],
        };
        let (_, _, divs) = run_checked(&fleet.executor, &alone, "alone").await.unwrap();
        let rules: Vec<(&str, Class)> = divs.iter().map(|d| (d.rule.as_str(), d.class)).collect();
        assert_eq!(
            rules,
            vec![("end-7/push-unsupported", Class::Unsupported)],
            "{divs:#?}"
        );
        let claimed = Sequence {
            content,
            ops: vec![push(Repo(0)), push_by_tag(1), push_manifest(0)],
        };
        let (_, _, divs) = run_checked(&fleet.executor, &claimed, "claimed")
            .await
            .unwrap();
        let rules: Vec<(&str, Class)> = divs.iter().map(|d| (d.rule.as_str(), d.class)).collect();
        assert_eq!(
            rules,
            vec![("end-7/put-201", Class::Violation)],
            "{divs:#?}"
        );
        fleet.shutdown().await;
    }

    #[test]
    fn content_elsewhere_comes_first_in_content_order() {
        let seq = Sequence {
            content: empty_blob(),
            ops: vec![pull(Repo(0))],
        };
        let primed = with_content_elsewhere(&seq);
        assert_eq!(primed.ops, vec![push(ELSEWHERE), pull(Repo(0))]);
        assert_eq!(primed.content, seq.content);
    }
}
