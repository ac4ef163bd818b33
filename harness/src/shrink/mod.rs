//! The shrink stage: the minimal failing sequence for a divergence signature.
//!
//! `shrink` is delta debugging driven by a caller-supplied predicate (`still_fails`, which in the
//! engine re-runs the candidate in a fresh namespace and checks the signature still shows):
//! 1. ops: remove chunks (halves, quarters, ...) then single ops, until a pass removes nothing;
//! 2. content: drop blobs / manifests no op (transitively) uses, renumbering ids consistently in
//!    the content and the ops;
//! 3. simplify: simpler variants of ops (`Operation::simpler`), then halve blob sizes.
//!
//! **Preconditions.** Before a candidate is run, the model walks it: every op must still be the
//! same kind of transition it was (`Operation::kind`; a valid push must not have become one
//! with missing blobs, an in-order chunk must not have become out of order). Candidates that
//! fail this are dropped without a run (`Shrunk::skipped` counts them). A sequence whose ops
//! are not all offered by their states (hand-written) is shrunk without this filter.
//!
//! Every step is bounded by `ShrinkBudget` (predicate runs and wall time); when the budget is
//! exhausted the best sequence so far is returned.

pub mod finding;
pub mod state_cause;

pub use finding::{finding_id, roots_first, Absorbed, Finding, FindingSet, Symptom};

use crate::ops::{Renumber, Sequence};
use crate::vocab::content::Content;
use crate::vocab::{ContentSpec, ManifestSpec};
use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

/// Bounds on one shrink.
#[derive(Clone, Copy, Debug)]
pub struct ShrinkBudget {
    pub max_runs: u32,
    pub max_time: Duration,
}

impl Default for ShrinkBudget {
    fn default() -> Self {
        ShrinkBudget {
            max_runs: 200,
            max_time: Duration::from_secs(60),
        }
    }
}

/// The result of a shrink.
#[derive(Clone, Debug)]
pub struct Shrunk {
    pub seq: Sequence,
    /// Predicate runs.
    pub runs: u32,
    /// Candidates dropped by the preconditions without a run.
    pub skipped: u32,
}

type Kinds = Vec<&'static str>;

/// The kinds of every op, or `None` when some op is not offered where it stands.
fn kinds_of(seq: &Sequence) -> Option<Kinds> {
    let content = Content::render(&seq.content).ok()?;
    seq.kinds(&content).into_iter().collect()
}

struct Runner<F> {
    pred: F,
    runs: u32,
    skipped: u32,
    start: Instant,
    budget: ShrinkBudget,
    /// Whether preconditions filter candidates.
    filter: bool,
}

impl<F, Fut> Runner<F>
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    fn exhausted(&self) -> bool {
        self.runs >= self.budget.max_runs || self.start.elapsed() >= self.budget.max_time
    }

    /// Runs the predicate unless the budget is spent or the candidate breaks a precondition
    /// (then: "does not fail"). `kinds` are what the candidate's ops must be.
    async fn fails(&mut self, cand: &Sequence, kinds: &[&'static str]) -> bool {
        if self.exhausted() {
            return false;
        }
        if self.filter && kinds_of(cand).as_deref() != Some(kinds) {
            self.skipped += 1;
            return false;
        }
        self.runs += 1;
        (self.pred)(cand.clone()).await
    }
}

/// The best sequence so far and the kinds of its ops.
struct Best {
    seq: Sequence,
    kinds: Kinds,
}

impl Best {
    fn without(&self, range: std::ops::Range<usize>) -> (Sequence, Kinds) {
        let mut seq = self.seq.clone();
        seq.ops.drain(range.clone());
        let mut kinds = self.kinds.clone();
        if range.end <= kinds.len() {
            kinds.drain(range);
        }
        (seq, kinds)
    }
}

/// Shrinks `seq` while `still_fails` holds. `seq` itself is assumed to fail.
pub async fn shrink<F, Fut>(seq: &Sequence, still_fails: F, budget: ShrinkBudget) -> Sequence
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    shrink_counted(seq, still_fails, budget).await.seq
}

/// `shrink`, also reporting how many predicate runs it took and how many candidates the
/// preconditions dropped.
pub async fn shrink_counted<F, Fut>(seq: &Sequence, still_fails: F, budget: ShrinkBudget) -> Shrunk
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    let kinds = kinds_of(seq);
    let mut r = Runner {
        pred: still_fails,
        runs: 0,
        skipped: 0,
        start: Instant::now(),
        budget,
        filter: kinds.is_some(),
    };
    let mut best = Best {
        seq: seq.clone(),
        kinds: kinds.unwrap_or_default(),
    };

    // 1. Delta debugging over ops.
    ddmin_ops(&mut best, &mut r).await;

    // 2. Drop unused content.
    compact(&mut best, &mut r).await;

    // 3. Simplify: simpler ops, smaller blobs.
    simplify(&mut best, &mut r).await;

    // Simplification may have made more ops removable: one more cheap single-op pass.
    if !r.exhausted() {
        remove_single_ops(&mut best, &mut r).await;
        compact(&mut best, &mut r).await;
    }
    Shrunk {
        seq: best.seq,
        runs: r.runs,
        skipped: r.skipped,
    }
}

async fn compact<F, Fut>(best: &mut Best, r: &mut Runner<F>)
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    let compact = drop_unused_content(&best.seq);
    if compact != best.seq && r.fails(&compact, &best.kinds.clone()).await {
        best.seq = compact;
    }
}

async fn ddmin_ops<F, Fut>(best: &mut Best, r: &mut Runner<F>)
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut chunk = (best.seq.ops.len() / 2).max(1);
    // Each pass either shrinks the sequence or halves the chunk size: bounded.
    while chunk >= 1 && !best.seq.ops.is_empty() && !r.exhausted() {
        let mut removed_any = false;
        let mut i = 0;
        while i < best.seq.ops.len() && !r.exhausted() {
            let end = (i + chunk).min(best.seq.ops.len());
            let (cand, kinds) = best.without(i..end);
            if r.fails(&cand, &kinds).await {
                *best = Best { seq: cand, kinds };
                removed_any = true;
            } else {
                i = end;
            }
        }
        if chunk == 1 && !removed_any {
            break;
        }
        if !removed_any || chunk > 1 {
            chunk = (chunk / 2).max(1);
        }
    }
}

async fn remove_single_ops<F, Fut>(best: &mut Best, r: &mut Runner<F>)
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut i = 0;
    while i < best.seq.ops.len() && !r.exhausted() {
        let (cand, kinds) = best.without(i..i + 1);
        if r.fails(&cand, &kinds).await {
            *best = Best { seq: cand, kinds };
        } else {
            i += 1;
        }
    }
}

async fn simplify<F, Fut>(best: &mut Best, r: &mut Runner<F>)
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    for i in 0..best.seq.ops.len() {
        if r.exhausted() {
            break;
        }
        for simpler in best.seq.ops[i].op().simpler() {
            let mut cand = best.seq.clone();
            cand.ops[i] = simpler;
            if r.fails(&cand, &best.kinds.clone()).await {
                best.seq = cand;
                break;
            }
        }
    }
    // Smaller blobs: halve each size while the failure holds (at most 32 halvings per blob).
    for b in 0..best.seq.content.blobs.len() {
        let mut steps = 0;
        while best.seq.content.blobs[b].size > 0 && steps < 32 && !r.exhausted() {
            steps += 1;
            let mut cand = best.seq.clone();
            cand.content.blobs[b].size /= 2;
            if r.fails(&cand, &best.kinds.clone()).await {
                best.seq = cand;
            } else {
                break;
            }
        }
    }
}

/// Blobs and manifests reachable from the ops (through manifests' configs, layers, children
/// and subjects), and the sequence rewritten to only those, ids renumbered in order.
pub fn drop_unused_content(seq: &Sequence) -> Sequence {
    let nb = seq.content.blobs.len();
    let nm = seq.content.manifests.len();
    let mut blobs: BTreeSet<u16> = BTreeSet::new();
    let mut manifests: BTreeSet<u16> = BTreeSet::new();
    for op in &seq.ops {
        let ids = op.op().ids();
        blobs.extend(ids.blobs.iter().map(|b| b.0));
        manifests.extend(ids.manifests.iter().map(|m| m.0));
    }
    // Manifests only reference lower ids: walk downwards once.
    for m in (0..nm).rev() {
        if manifests.contains(&(m as u16)) {
            let (b, ms) = seq.content.manifests[m].references();
            blobs.extend(b.iter().map(|x| x.0));
            manifests.extend(ms.iter().map(|x| x.0));
        }
    }
    let mut map = Renumber::default();
    for (new, old) in blobs.iter().filter(|b| (**b as usize) < nb).enumerate() {
        map.blobs.insert(*old, new as u16);
    }
    for (new, old) in manifests.iter().filter(|m| (**m as usize) < nm).enumerate() {
        map.manifests.insert(*old, new as u16);
    }
    let content = ContentSpec {
        blobs: map
            .blobs
            .keys()
            .map(|old| seq.content.blobs[*old as usize].clone())
            .collect(),
        manifests: map
            .manifests
            .keys()
            .map(|old| {
                let mut m: ManifestSpec = seq.content.manifests[*old as usize].clone();
                m.renumber(|b| map.blob(b), |x| map.manifest(x));
                m
            })
            .collect(),
    };
    let ops = seq
        .ops
        .iter()
        .map(|op| {
            let mut op = op.clone();
            op.op_mut().renumber(&map);
            op
        })
        .collect();
    Sequence { content, ops }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Op;
    use crate::vocab::BlobId;

    fn big_seq() -> Sequence {
        let mut t = String::from("[content]\nblobs = [\n");
        for i in 0..5 {
            t.push_str(&format!(
                "  {{ size = {}, seed = {} }},\n",
                1000 + i,
                30 + i
            ));
        }
        t.push_str(
            "]\nmanifests = [\n  { kind = \"image\", config = 0, layers = [1] },\n  { kind = \"image\", config = 2, layers = [4] },\n]\n",
        );
        for i in 0..5 {
            t.push_str(&format!(
                "[[ops]]\nop = \"push_blob\"\nrepo = 0\nblob = {i}\nmethod = \"chunked\"\nchunks = 4\nlast_in_put = false\n[[ops]]\nop = \"list_tags\"\nrepo = 1\n"
            ));
        }
        t.push_str("[[ops]]\nop = \"push_manifest\"\nrepo = 0\nmanifest = 0\nreference = { tag = \"x\" }\n");
        for i in 0..5 {
            t.push_str(&format!(
                "[[ops]]\nop = \"get_blob\"\nrepo = 0\nblob = {i}\n[[ops]]\nop = \"check_api\"\n"
            ));
        }
        Sequence::from_toml(&t).unwrap()
    }

    /// Fails iff a PushBlob of the blob with seed 33 is followed by a GetBlob of it.
    fn fails(s: &Sequence) -> bool {
        let is33 = |b: &BlobId| s.content.blobs.get(b.0 as usize).map(|x| x.seed) == Some(33);
        let pushed = s
            .ops
            .iter()
            .position(|op| matches!(op, Op::PushBlob(p) if is33(&p.blob)));
        match pushed {
            Some(p) => s.ops[p + 1..]
                .iter()
                .any(|op| matches!(op, Op::GetBlob(g) if is33(&g.blob))),
            None => false,
        }
    }

    #[tokio::test]
    async fn shrinks_to_push_then_get() {
        let seq = big_seq();
        assert!(fails(&seq));
        let out = shrink_counted(
            &seq,
            |s| async move { fails(&s) },
            ShrinkBudget {
                max_runs: 1000,
                max_time: Duration::from_secs(30),
            },
        )
        .await;
        let s = out.seq;
        assert_eq!(s.ops.len(), 2, "{:#?}", s.ops);
        assert!(matches!(
            &s.ops[0],
            Op::PushBlob(p) if p.blob == BlobId(0) && p.method == crate::ops::blob_push::PushMethod::Monolithic
        ));
        assert!(matches!(&s.ops[1], Op::GetBlob(g) if g.blob == BlobId(0)));
        assert_eq!(s.content.blobs.len(), 1);
        assert_eq!(s.content.blobs[0].seed, 33);
        assert_eq!(s.content.blobs[0].size, 0);
        assert!(s.content.manifests.is_empty());
        assert!(out.runs < 1000);
        // A get of a blob whose push was dropped is another kind of op: never run.
        assert!(out.skipped > 0, "{}", out.skipped);
    }

    #[tokio::test]
    async fn budget_is_respected() {
        let seq = big_seq();
        let mut calls = 0u32;
        let out = shrink_counted(
            &seq,
            |s| {
                calls += 1;
                async move { fails(&s) }
            },
            ShrinkBudget {
                max_runs: 5,
                max_time: Duration::from_secs(30),
            },
        )
        .await;
        assert!(calls <= 5);
        assert!(fails(&out.seq));
    }

    #[test]
    fn drop_unused_renumbers_consistently() {
        let mut seq = big_seq();
        seq.ops = Sequence::from_toml(
            "[[ops]]\nop = \"push_manifest\"\nrepo = 0\nmanifest = 1\nreference = { digest = 1 }\n",
        )
        .unwrap()
        .ops;
        let out = drop_unused_content(&seq);
        assert_eq!(out.content.manifests.len(), 1);
        assert_eq!(out.content.blobs.len(), 2);
        assert_eq!(out.content.blobs[0].seed, 32);
        assert_eq!(out.content.blobs[1].seed, 34);
        match &out.content.manifests[0] {
            ManifestSpec::Image { config, layers, .. } => {
                assert_eq!(*config, BlobId(0));
                assert_eq!(layers, &vec![BlobId(1)]);
            }
            other => panic!("{other:?}"),
        }
        let Op::PushManifest(p) = &out.ops[0] else {
            panic!("{:?}", out.ops)
        };
        assert_eq!(p.manifest.0, 0);
        assert_eq!(
            p.reference,
            crate::vocab::Reference::Digest(crate::vocab::ManifestId(0))
        );
        // Same bytes: the rendered manifest is unchanged by renumbering.
        let a = Content::render(&seq.content).unwrap();
        let b = Content::render(&out.content).unwrap();
        assert_eq!(
            a.manifest(crate::vocab::ManifestId(1)),
            b.manifest(crate::vocab::ManifestId(0))
        );
    }
}
