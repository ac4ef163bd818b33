//! Minimal failing sequence for a divergence signature; dedup into `Finding`s.
//!
//! `shrink` is delta debugging driven by a caller-supplied predicate (`still_fails`, which in the
//! engine re-runs the candidate in a fresh namespace and checks the signature still shows):
//! 1. ops: remove chunks (halves, quarters, ...) then single ops, until a pass removes nothing;
//! 2. content: drop blobs / manifests no op (transitively) uses, renumbering ids consistently in
//!    the content and the ops;
//! 3. simplify: halve blob sizes, use fewer chunks (down to a monolithic push).
//!
//! Every step is bounded by `ShrinkBudget` (predicate runs and wall time); when the budget is
//! exhausted the best sequence so far is returned.

use crate::model::{
    BlobId, ContentSpec, ManifestId, ManifestSpec, Op, PushMethod, Reference, Sequence,
};
use crate::oracle::{Divergence, Signature};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
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

struct Runner<F> {
    pred: F,
    runs: u32,
    start: Instant,
    budget: ShrinkBudget,
}

impl<F, Fut> Runner<F>
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    fn exhausted(&self) -> bool {
        self.runs >= self.budget.max_runs || self.start.elapsed() >= self.budget.max_time
    }

    /// Runs the predicate unless the budget is spent (then: "does not fail").
    async fn fails(&mut self, cand: &Sequence) -> bool {
        if self.exhausted() {
            return false;
        }
        self.runs += 1;
        (self.pred)(cand.clone()).await
    }
}

/// The result of a shrink.
#[derive(Clone, Debug)]
pub struct Shrunk {
    pub seq: Sequence,
    pub runs: u32,
}

/// Shrinks `seq` while `still_fails` holds. `seq` itself is assumed to fail.
pub async fn shrink<F, Fut>(seq: &Sequence, still_fails: F, budget: ShrinkBudget) -> Sequence
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    shrink_counted(seq, still_fails, budget).await.seq
}

/// `shrink`, also reporting how many predicate runs it took.
pub async fn shrink_counted<F, Fut>(seq: &Sequence, still_fails: F, budget: ShrinkBudget) -> Shrunk
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut r = Runner {
        pred: still_fails,
        runs: 0,
        start: Instant::now(),
        budget,
    };
    let mut best = seq.clone();

    // 1. Delta debugging over ops.
    best = ddmin_ops(best, &mut r).await;

    // 2. Drop unused content.
    let compact = drop_unused_content(&best);
    if compact != best && r.fails(&compact).await {
        best = compact;
    }

    // 3. Simplify: fewer chunks, smaller blobs.
    best = simplify(best, &mut r).await;

    // Simplification may have made more ops removable: one more cheap single-op pass.
    if !r.exhausted() {
        best = remove_single_ops(best, &mut r).await;
        let compact = drop_unused_content(&best);
        if compact != best && r.fails(&compact).await {
            best = compact;
        }
    }
    Shrunk {
        seq: best,
        runs: r.runs,
    }
}

async fn ddmin_ops<F, Fut>(mut best: Sequence, r: &mut Runner<F>) -> Sequence
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut chunk = (best.ops.len() / 2).max(1);
    // Each pass either shrinks the sequence or halves the chunk size: bounded.
    while chunk >= 1 && !best.ops.is_empty() && !r.exhausted() {
        let mut removed_any = false;
        let mut i = 0;
        while i < best.ops.len() && !r.exhausted() {
            let end = (i + chunk).min(best.ops.len());
            let mut cand = best.clone();
            cand.ops.drain(i..end);
            if r.fails(&cand).await {
                best = cand;
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
    best
}

async fn remove_single_ops<F, Fut>(mut best: Sequence, r: &mut Runner<F>) -> Sequence
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut i = 0;
    while i < best.ops.len() && !r.exhausted() {
        let mut cand = best.clone();
        cand.ops.remove(i);
        if r.fails(&cand).await {
            best = cand;
        } else {
            i += 1;
        }
    }
    best
}

async fn simplify<F, Fut>(mut best: Sequence, r: &mut Runner<F>) -> Sequence
where
    F: FnMut(Sequence) -> Fut,
    Fut: Future<Output = bool>,
{
    // Fewer chunks: monolithic first, then halve the chunk count.
    for i in 0..best.ops.len() {
        if r.exhausted() {
            break;
        }
        let Op::PushBlob { method, .. } = &best.ops[i] else {
            continue;
        };
        let mut tries = Vec::new();
        match method {
            PushMethod::Chunked {
                chunks,
                last_in_put,
            } => {
                tries.push(PushMethod::Monolithic);
                let mut c = *chunks / 2;
                while c >= 1 {
                    tries.push(PushMethod::Chunked {
                        chunks: c,
                        last_in_put: *last_in_put,
                    });
                    c /= 2;
                }
            }
            PushMethod::Streamed | PushMethod::SinglePost => tries.push(PushMethod::Monolithic),
            PushMethod::Monolithic => {}
        }
        for m in tries {
            let mut cand = best.clone();
            if let Op::PushBlob { method, .. } = &mut cand.ops[i] {
                *method = m;
            }
            if r.fails(&cand).await {
                best = cand;
                break;
            }
        }
    }
    // Smaller blobs: halve each size while the failure holds (at most 32 halvings per blob).
    for b in 0..best.content.blobs.len() {
        let mut steps = 0;
        while best.content.blobs[b].size > 0 && steps < 32 && !r.exhausted() {
            steps += 1;
            let mut cand = best.clone();
            cand.content.blobs[b].size /= 2;
            if r.fails(&cand).await {
                best = cand;
            } else {
                break;
            }
        }
    }
    best
}

/// Blobs and manifests reachable from the ops (through manifests' configs, layers, children
/// and subjects), and the sequence rewritten to only those, ids renumbered in order.
pub fn drop_unused_content(seq: &Sequence) -> Sequence {
    let nb = seq.content.blobs.len();
    let nm = seq.content.manifests.len();
    let mut blobs: BTreeSet<u16> = BTreeSet::new();
    let mut manifests: BTreeSet<u16> = BTreeSet::new();
    for op in &seq.ops {
        for b in crate::scenario::op_blobs(op) {
            blobs.insert(b.0);
        }
        for m in crate::scenario::op_manifests(op) {
            manifests.insert(m.0);
        }
    }
    // Manifests only reference lower ids: walk downwards once.
    for m in (0..nm).rev() {
        if !manifests.contains(&(m as u16)) {
            continue;
        }
        match &seq.content.manifests[m] {
            ManifestSpec::Image {
                config,
                layers,
                subject,
                ..
            } => {
                blobs.insert(config.0);
                blobs.extend(layers.iter().map(|l| l.0));
                if let Some(s) = subject {
                    manifests.insert(s.0);
                }
            }
            ManifestSpec::Index {
                manifests: children,
                subject,
                ..
            } => {
                manifests.extend(children.iter().map(|c| c.0));
                if let Some(s) = subject {
                    manifests.insert(s.0);
                }
            }
        }
    }
    let bmap: BTreeMap<u16, u16> = blobs
        .iter()
        .filter(|b| (**b as usize) < nb)
        .enumerate()
        .map(|(new, old)| (*old, new as u16))
        .collect();
    let mmap: BTreeMap<u16, u16> = manifests
        .iter()
        .filter(|m| (**m as usize) < nm)
        .enumerate()
        .map(|(new, old)| (*old, new as u16))
        .collect();
    let rb = |b: BlobId| BlobId(bmap.get(&b.0).copied().unwrap_or(b.0));
    let rm = |m: ManifestId| ManifestId(mmap.get(&m.0).copied().unwrap_or(m.0));
    let content = ContentSpec {
        blobs: bmap
            .keys()
            .map(|old| seq.content.blobs[*old as usize].clone())
            .collect(),
        manifests: mmap
            .keys()
            .map(|old| {
                let mut m = seq.content.manifests[*old as usize].clone();
                match &mut m {
                    ManifestSpec::Image {
                        config,
                        layers,
                        subject,
                        ..
                    } => {
                        *config = rb(*config);
                        for l in layers.iter_mut() {
                            *l = rb(*l);
                        }
                        *subject = subject.map(rm);
                    }
                    ManifestSpec::Index {
                        manifests, subject, ..
                    } => {
                        for c in manifests.iter_mut() {
                            *c = rm(*c);
                        }
                        *subject = subject.map(rm);
                    }
                }
                m
            })
            .collect(),
    };
    let rr = |r: &Reference| match r {
        Reference::Digest(m) => Reference::Digest(rm(*m)),
        other => other.clone(),
    };
    let ops = seq
        .ops
        .iter()
        .map(|op| {
            let mut op = op.clone();
            match &mut op {
                Op::PushBlob { blob, .. }
                | Op::StartUpload { blob, .. }
                | Op::MountBlob { blob, .. }
                | Op::HeadBlob { blob, .. }
                | Op::GetBlob { blob, .. }
                | Op::DeleteBlob { blob, .. } => *blob = rb(*blob),
                Op::PushManifest {
                    manifest,
                    reference,
                    ..
                } => {
                    *manifest = rm(*manifest);
                    *reference = rr(reference);
                }
                Op::HeadManifest { reference, .. }
                | Op::GetManifest { reference, .. }
                | Op::DeleteManifest { reference, .. }
                | Op::PushBadManifest { reference, .. } => *reference = rr(reference),
                Op::ListReferrers { subject, .. } => *subject = rr(subject),
                _ => {}
            }
            op
        })
        .collect();
    Sequence { content, ops }
}

/// A deduplicated divergence with its minimal reproducer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// Short stable hash of the signature.
    pub id: String,
    pub divergence: Divergence,
    /// The minimal sequence.
    pub ops: Sequence,
    pub original_ops_len: usize,
    /// The fuzz run's seed and the case index / case seed the divergence first showed in.
    pub seed: u64,
    pub first_seen_case: u64,
    pub case_seed: u64,
    /// Predicate runs spent shrinking (0 when not shrunk).
    pub shrink_runs: u32,
    /// Whether the minimal sequence was confirmed to still show the signature.
    pub confirmed: bool,
    /// The minimal sequence's run (for reports: target vs reference side by side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::exec::CaseOutcome>,
}

/// Short stable id of a signature: the first 12 hex digits of its sha256.
pub fn finding_id(sig: &Signature) -> String {
    use sha2::Digest as _;
    let text = format!("{}|{}|{}|{}|{}", sig.0, sig.1, sig.2, sig.3, sig.4);
    hex::encode(sha2::Sha256::digest(text.as_bytes()))[..12].to_string()
}

/// Findings deduplicated by signature, in signature order.
#[derive(Clone, Debug, Default)]
pub struct FindingSet {
    by_sig: BTreeMap<Signature, Finding>,
}

impl FindingSet {
    pub fn new() -> FindingSet {
        FindingSet::default()
    }

    pub fn contains(&self, sig: &Signature) -> bool {
        self.by_sig.contains_key(sig)
    }

    /// Adds a finding; `false` (and nothing changes) when its signature is already known.
    pub fn insert(&mut self, f: Finding) -> bool {
        let sig = f.divergence.signature();
        if self.by_sig.contains_key(&sig) {
            return false;
        }
        self.by_sig.insert(sig, f);
        true
    }

    pub fn len(&self) -> usize {
        self.by_sig.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sig.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Finding> {
        self.by_sig.values()
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.by_sig.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn blob(size: u32, seed: u64) -> BlobSpec {
        BlobSpec {
            size,
            seed,
            algo: DigestAlgo::Sha256,
        }
    }

    fn big_seq() -> Sequence {
        let img = |config: u16, layer: u16| ManifestSpec::Image {
            flavor: Flavor::Oci,
            config: BlobId(config),
            config_media_type: None,
            layers: vec![BlobId(layer)],
            subject: None,
            artifact_type: None,
            annotations: Default::default(),
            data_field: false,
            custom_fields: false,
            algo: DigestAlgo::Sha256,
        };
        let mut ops = Vec::new();
        for i in 0..5u16 {
            ops.push(Op::PushBlob {
                repo: Repo(0),
                blob: BlobId(i),
                method: PushMethod::Chunked {
                    chunks: 4,
                    last_in_put: false,
                },
                digest: DigestChoice::Correct,
            });
            ops.push(Op::ListTags {
                repo: Repo(1),
                n: None,
                last: None,
            });
        }
        ops.push(Op::PushManifest {
            repo: Repo(0),
            manifest: ManifestId(0),
            reference: Reference::Tag("x".into()),
            tags: vec![],
            content_type: ContentTypeChoice::Matching,
        });
        for i in 0..5u16 {
            ops.push(Op::GetBlob {
                repo: Repo(0),
                blob: BlobId(i),
                range: None,
            });
            ops.push(Op::CheckApi);
        }
        Sequence {
            content: ContentSpec {
                blobs: (0..5).map(|i| blob(1000 + i as u32, 30 + i)).collect(),
                manifests: vec![img(0, 1), img(2, 4)],
            },
            ops,
        }
    }

    /// Fails iff a PushBlob of the blob with seed 33 is followed by a GetBlob of it.
    fn fails(s: &Sequence) -> bool {
        let is33 = |b: &BlobId| s.content.blobs.get(b.0 as usize).map(|x| x.seed) == Some(33);
        let pushed = s
            .ops
            .iter()
            .position(|op| matches!(op, Op::PushBlob { blob, .. } if is33(blob)));
        match pushed {
            Some(p) => s.ops[p + 1..]
                .iter()
                .any(|op| matches!(op, Op::GetBlob { blob, .. } if is33(blob))),
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
            s.ops[0],
            Op::PushBlob {
                blob: BlobId(0),
                method: PushMethod::Monolithic,
                ..
            }
        ));
        assert!(matches!(
            s.ops[1],
            Op::GetBlob {
                blob: BlobId(0),
                ..
            }
        ));
        assert_eq!(s.content.blobs.len(), 1);
        assert_eq!(s.content.blobs[0].seed, 33);
        assert_eq!(s.content.blobs[0].size, 0);
        assert!(s.content.manifests.is_empty());
        assert!(out.runs < 1000);
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
        seq.ops = vec![Op::PushManifest {
            repo: Repo(0),
            manifest: ManifestId(1),
            reference: Reference::Digest(ManifestId(1)),
            tags: vec![],
            content_type: ContentTypeChoice::Matching,
        }];
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
        assert_eq!(
            out.ops[0],
            Op::PushManifest {
                repo: Repo(0),
                manifest: ManifestId(0),
                reference: Reference::Digest(ManifestId(0)),
                tags: vec![],
                content_type: ContentTypeChoice::Matching,
            }
        );
        // Same bytes: the rendered manifest is unchanged by renumbering.
        let a = crate::content::Content::render(&seq.content).unwrap();
        let b = crate::content::Content::render(&out.content).unwrap();
        assert_eq!(a.manifest(ManifestId(1)), b.manifest(ManifestId(0)));
    }

    #[test]
    fn finding_ids_are_stable_and_dedup_works() {
        let sig: Signature = (
            "t".into(),
            "end-2".into(),
            "status".into(),
            crate::oracle::Class::Violation,
            "end-2/get-200".into(),
        );
        assert_eq!(finding_id(&sig), finding_id(&sig.clone()));
        assert_eq!(finding_id(&sig).len(), 12);
        let d = Divergence {
            class: crate::oracle::Class::Violation,
            target: "t".into(),
            op_index: 0,
            label: "get".into(),
            endpoint: "end-2".into(),
            field: "status".into(),
            rule: "end-2/get-200".into(),
            spec: String::new(),
            summary: String::new(),
            expected: "200".into(),
            actual: "500".into(),
            reference: None,
        };
        let f = Finding {
            id: finding_id(&d.signature()),
            divergence: d,
            ops: Sequence::default(),
            original_ops_len: 3,
            seed: 1,
            first_seen_case: 0,
            case_seed: 1,
            shrink_runs: 0,
            confirmed: true,
            outcome: None,
        };
        let mut set = FindingSet::new();
        assert!(set.insert(f.clone()));
        assert!(!set.insert(f));
        assert_eq!(set.len(), 1);
    }
}
