//! The operation that broke the state (issue 30): when a finding's op fails because of what an
//! earlier op did to the target (a tag `DELETE` that took the manifest with it), that earlier
//! op is the bug, and every finding it causes (reads by digest, deletes by digest, tag lists)
//! is one finding with the others as symptoms.
//!
//! How: only a finding about state (a status, or a list's contents) is looked at. Its sequence
//! is run again up to its failing op, with *probes* inserted after every mutating op: point
//! reads (`HEAD`) of what the failing op reads or writes, as the model has it there: the
//! manifest, the blob, every tag of a tag list, every manifest of a referrers list. The oracle
//! judges the probes like any op; the first mutating op after which a probe's status diverges
//! is the cause, and the probe's divergence its effect. A read that renders good state wrongly
//! (tags out of order) has no state cause: its probes all pass. Probes also run before the
//! first mutating op: one that diverges there shows the input, not the state, is at fault.

use crate::compare::{Cause, Divergence};
use crate::model::ModelState;
use crate::ops::blob_pull::HeadBlob;
use crate::ops::manifest_pull::HeadManifest;
use crate::ops::{Op, Sequence, Sym};
use crate::vocab::content::Content;
use crate::vocab::plan::{Seg, Url};
use crate::vocab::spec::Reference;
use serde::{Deserialize, Serialize};

/// The mutating op after which the target's state first differed from the model's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCause {
    /// Its index in the finding's sequence.
    pub op_index: usize,
    /// Its requests, in words (`DELETE /v2/<name>/manifests/<tag>`): findings of the same
    /// target whose causes read the same are one finding.
    pub op: String,
    /// What differed right after it (the probe's summary).
    pub effect: String,
    /// The effect in general terms (`manifest answered 404 (expected 200)`): findings of one
    /// target with the same `op` and `effect_kind` are one finding.
    #[serde(default)]
    pub effect_kind: String,
    /// The op's own divergence, when it diverged itself (a rejected input): the findings it
    /// caused are symptoms of that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged: Option<Cause>,
}

/// A sequence with probes, and for each of its ops the index of the original op a probe
/// follows (`None` for the original ops; `Some(None)` for the probes before any op ran).
pub struct Probed {
    pub seq: Sequence,
    pub after: Vec<Option<Option<usize>>>,
}

/// The most probes one symbol expands to (a long tag list).
const MAX_PROBES_PER_SYMBOL: usize = 8;

/// The point reads that show a symbol's state in `st`.
fn probes_of(sym: Sym, st: &ModelState) -> Vec<Op> {
    let head = |repo, reference| Op::HeadManifest(HeadManifest { repo, reference });
    match sym {
        Sym::Manifest(repo, m) => vec![head(repo, Reference::Digest(m))],
        Sym::Blob(repo, blob) => vec![Op::HeadBlob(HeadBlob { repo, blob })],
        Sym::Tags(repo) => st
            .tags(repo)
            .into_iter()
            .take(MAX_PROBES_PER_SYMBOL)
            .map(|t| head(repo, Reference::Tag(t)))
            .collect(),
        Sym::Referrers(repo, _) => st
            .manifests(repo)
            .into_iter()
            .take(MAX_PROBES_PER_SYMBOL)
            .map(|(_, m)| head(repo, Reference::Digest(m)))
            .collect(),
        Sym::BlobAny(_) | Sym::Session(_) | Sym::RepoExists(_) => Vec::new(),
    }
}

/// `seq` up to (not including) op `failing`, with the probes of op `failing`'s symbols first
/// and after every mutating op; `None` when there is nothing to probe or no mutating op.
pub fn probed(seq: &Sequence, failing: usize, content: &Content) -> Option<Probed> {
    let mut st = ModelState::new();
    st.learn(content);
    let mut mutating = Vec::new();
    for op in seq.ops.iter().take(failing) {
        mutating.push(!op.op().footprint(&st, content).writes.is_empty());
        op.op().apply(&mut st, content);
    }
    let target = seq.ops.get(failing)?;
    let fp = target.op().footprint(&st, content);
    let mut probes: Vec<Op> = Vec::new();
    for sym in fp.reads.iter().chain(&fp.writes) {
        for p in probes_of(*sym, &st) {
            if !probes.contains(&p) {
                probes.push(p);
            }
        }
    }
    if probes.is_empty() || !mutating.contains(&true) {
        return None;
    }
    let mut out = Sequence {
        content: seq.content.clone(),
        ops: Vec::new(),
    };
    let mut after = Vec::new();
    let add_probes = |out: &mut Sequence, after: &mut Vec<_>, at: Option<usize>| {
        for p in &probes {
            out.ops.push(p.clone());
            after.push(Some(at));
        }
    };
    add_probes(&mut out, &mut after, None);
    for (i, op) in seq.ops.iter().take(failing).enumerate() {
        out.ops.push(op.clone());
        after.push(None);
        if mutating[i] {
            add_probes(&mut out, &mut after, Some(i));
        }
    }
    Some(Probed { seq: out, after })
}

/// Whether a finding is about state: a status, or a list's contents (not a header, not a
/// body's shape).
pub fn about_state(d: &Divergence) -> bool {
    d.field == "status"
        || (d.field == "body"
            && (d.endpoint.starts_with("end-8") || d.endpoint.starts_with("end-12")))
}

/// The state cause the probed run shows for `target`: the op after which a probe first
/// diverged, unless a probe diverged before any op ran (the input is at fault, not the state).
pub fn state_cause(
    probed: &Probed,
    original: &Sequence,
    content: &Content,
    target: &str,
    divs: &[Divergence],
) -> Option<StateCause> {
    let mut own: Vec<&Divergence> = divs.iter().filter(|d| d.target == target).collect();
    own.sort_by_key(|d| d.op_index);
    let first = own
        .iter()
        .find(|d| matches!(probed.after.get(d.op_index), Some(Some(_))) && d.field == "status")?;
    let at = (*probed.after.get(first.op_index)?)??;
    // The original op `at` itself, in the probed sequence.
    let at_probed = probed
        .after
        .iter()
        .enumerate()
        .filter(|(_, a)| a.is_none())
        .nth(at)?
        .0;
    let diverged = own
        .iter()
        .find(|d| d.op_index == at_probed)
        .map(|d| d.cause());
    Some(StateCause {
        op_index: at,
        op: op_words(original.ops.get(at)?, content),
        effect: first.summary.clone(),
        effect_kind: format!(
            "{} answered {} (expected {})",
            if first.endpoint == "end-2" {
                "blob"
            } else {
                "manifest"
            },
            first.actual,
            first.expected
        ),
        diverged,
    })
}

/// An op's requests as a maintainer reads them: method and path, the repository as
/// `<name>`, tags as `<tag>`, digests as `<digest>`, upload locations as `<upload>`.
pub fn op_words(op: &Op, content: &Content) -> String {
    op.op()
        .plan(content)
        .steps
        .iter()
        .map(|s| {
            let path = match &s.url {
                Url::Path(segs) => segs
                    .iter()
                    .map(|seg| match seg {
                        Seg::Lit(l) => l.clone(),
                        Seg::Repo(_) | Seg::Name(_) => "<name>".to_string(),
                        Seg::Escaped(v) if v.contains(':') => "<digest>".to_string(),
                        Seg::Escaped(_) => "<tag>".to_string(),
                    })
                    .collect::<String>(),
                Url::Location | Url::Session(_) => "<upload>".to_string(),
                Url::Unavailable(_) => "<unavailable>".to_string(),
            };
            format!("{} {path}", s.method.as_str())
        })
        .collect::<Vec<_>>()
        .join(", then ")
}
