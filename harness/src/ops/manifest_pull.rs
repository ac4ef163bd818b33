//! end-3: manifest `HEAD` and `GET`, by tag or digest (and by references no registry should
//! resolve: invalid tags; a sha512 manifest named by its sha256 digest, which a registry may
//! serve as the same content or not know).

use super::expect::{digest_check, Check, Exp, ExpectCx, Found};
use super::gen::{Draw, Transition};
use super::manifest_push::PushManifest;
use super::refs::{bad_digests, bad_tags, is_sha512, manifest_accept, reads};
use super::{delete, Footprint, Ids, Op, Operation, Renumber};
use crate::model::{classify_reference, reference_text, ModelState, RefKind};
use crate::vocab::content::{sha256_hex, Content};
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::{Method, Plan, Step, Url};
use crate::vocab::{ManifestId, Reference, Repo};
use serde::{Deserialize, Serialize};

/// end-3 HEAD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadManifest {
    pub repo: Repo,
    pub reference: Reference,
}

/// end-3 GET (with an `Accept` header listing every manifest media type).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetManifest {
    pub repo: Repo,
    pub reference: Reference,
}

pub const TRANSITIONS: &[Transition] = &[
    Transition {
        name: "pull_manifest",
        invalid: false,
        offer: pull,
    },
    Transition {
        name: "bad_tag_reference",
        invalid: true,
        offer: |d| {
            // A manifest PUT by a digest its bytes do not hash to, then a read of that digest:
            // a registry that stored it would serve content that does not match its digest
            // (cloudflare/serverless-registry#134).
            if d.content.manifest_count() > 1 && d.chance(1, 4) && d.budget >= 2 {
                let manifest = d.manifest().unwrap_or(ManifestId(0));
                let other = d.manifest().unwrap_or(ManifestId(1));
                let wrong = d
                    .content
                    .manifest_sha256(other)
                    .filter(|w| Some(*w) != d.content.manifest_sha256(manifest))
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        crate::vocab::content::digest_of(
                            crate::vocab::DigestAlgo::Sha256,
                            b"ocidiff: not this manifest",
                        )
                    });
                let repo = d.repo();
                let reference = Reference::Raw(wrong);
                return vec![
                    Op::PushManifest(PushManifest::new(repo, manifest, reference.clone())),
                    pull_op(d, repo, reference),
                ];
            }
            let pool = if d.chance(1, 2) {
                bad_tags()
            } else {
                bad_digests()
            };
            let tag = d.pick(&pool).unwrap_or_default();
            let repo = d.repo();
            let reference = Reference::Raw(tag);
            vec![match d.below(4) {
                0 => Op::HeadManifest(HeadManifest { repo, reference }),
                1 => Op::GetManifest(GetManifest { repo, reference }),
                2 if d.content.manifest_count() > 0 => {
                    let manifest = d.manifest().unwrap_or(ManifestId(0));
                    Op::PushManifest(PushManifest::new(repo, manifest, reference))
                }
                _ => Op::DeleteManifest(delete::DeleteManifest { repo, reference }),
            }]
        },
    },
    Transition {
        name: "sha512_by_sha256",
        invalid: true,
        offer: |d| {
            let candidates: Vec<(Repo, ManifestId)> = d
                .stored_manifests()
                .into_iter()
                .filter(|(_, r, m)| {
                    matches!(r, Reference::Digest(_))
                        && d.content
                            .manifest_digest(*m)
                            .is_some_and(|x| x.starts_with("sha512:"))
                })
                .map(|(r, _, m)| (r, m))
                .collect();
            let Some((repo, m)) = d.pick(&candidates) else {
                return Vec::new();
            };
            let reference =
                Reference::Raw(d.content.manifest_sha256(m).unwrap_or_default().to_string());
            vec![pull_op(d, repo, reference)]
        },
    },
];

fn pull_op(d: &mut Draw<'_>, repo: Repo, reference: Reference) -> Op {
    if d.chance(1, 3) {
        Op::HeadManifest(HeadManifest { repo, reference })
    } else {
        Op::GetManifest(GetManifest { repo, reference })
    }
}

/// Mostly what is stored (by tag or as stored), sometimes what is not.
fn pull(d: &mut Draw<'_>) -> Vec<Op> {
    let tagged = d.tagged();
    let stored = d.stored_manifests();
    if tagged.is_empty() && stored.is_empty() && !d.chance(1, 4) {
        return Vec::new();
    }
    let (repo, reference) = if d.chance(1, 10) {
        (d.repo(), Reference::Tag(d.tag()))
    } else if !tagged.is_empty() && d.chance(1, 2) {
        let (r, t) = d.pick(&tagged).unwrap_or((Repo(0), String::new()));
        (r, Reference::Tag(t))
    } else if let Some((r, reference, _)) = d.pick(&stored) {
        (r, reference)
    } else if d.content.manifest_count() > 0 && d.chance(1, 3) {
        let m = d.manifest().unwrap_or(ManifestId(0));
        (d.repo(), Reference::Digest(m))
    } else {
        (d.repo(), Reference::Tag(d.tag()))
    };
    vec![pull_op(d, repo, reference)]
}

fn kind(st: &ModelState, content: &Content, repo: Repo, reference: &Reference) -> &'static str {
    if matches!(classify_reference(reference, content), RefKind::Invalid(_)) {
        "bad_tag_reference"
    } else if st.resolve(repo, reference).is_some() {
        "pull_manifest"
    } else {
        "pull_missing_manifest"
    }
}

fn plan(repo: Repo, reference: &Reference, content: &Content, head: bool) -> Plan {
    let (label, method) = if head {
        ("head", Method::Head)
    } else {
        ("get", Method::Get)
    };
    let url = Url::repo_escaped(repo, "manifests/", &reference_text(reference, content));
    Plan::one(Step::new(label, "end-3", method, url).header("accept", manifest_accept()))
}

/// A manifest `repo` holds whose bytes the (otherwise unknown) `reference` names by their digest
/// under the other algorithm (a sha512 manifest named by its sha256 digest): a registry may
/// serve the same content by either digest.
fn same_bytes_held(
    st: &ModelState,
    content: &Content,
    repo: Repo,
    reference: &Reference,
) -> Option<ManifestId> {
    let RefKind::Digest(wanted) = classify_reference(reference, content) else {
        return None;
    };
    let wanted = Some(wanted.as_str());
    st.manifests(repo).into_iter().find_map(|(_, m)| {
        (content.manifest_digest(m) != wanted && content.manifest_sha256(m) == wanted).then_some(m)
    })
}

fn expect(cx: &ExpectCx<'_>, repo: Repo, reference: &Reference, head: bool) -> Exp {
    let (st, content) = (cx.st, cx.content);
    let sha512 = is_sha512(reference, content);
    let Some(m) = st.resolve(repo, reference) else {
        let e = match classify_reference(reference, content) {
            // "The `<tag-or-digest>` MUST NOT be in any other format": a client MUST.
            RefKind::Invalid(_) => Exp::client_error(),
            // A tag whose manifest was deleted and pushed again: kept (200) or gone (404).
            RefKind::Tag(t) if st.dangling_revived(repo, &t) => Exp::new(&[404, 200], "end-3/404"),
            _ => match same_bytes_held(st, content, repo, reference) {
                Some(held) => served(
                    Exp::new(&[404], "end-3/404").alt(&[200], "end-3/same-content"),
                    content,
                    held,
                    head,
                ),
                None => Exp::new(&[404], "end-3/404"),
            },
        };
        return e.sha512_declinable(sha512);
    };
    let digest = st.resolve_digest(repo, reference).unwrap_or_default();
    let bytes = content.manifest(m).cloned().unwrap_or_default();
    let e = Exp::new(
        &[200],
        if head {
            "end-3/head-200"
        } else {
            "end-3/get-200"
        },
    )
    .check(
        200,
        digest_check(&digest, bytes, "end-3/digest", "end-3/digest-algorithm"),
    );
    served(e, content, m, head).sha512_declinable(sha512)
}

/// The checks of a 200 serving manifest `m`: its media type, and its length (HEAD) or bytes.
fn served(e: Exp, content: &Content, m: ManifestId, head: bool) -> Exp {
    let bytes = content.manifest(m).cloned().unwrap_or_default();
    let e = e.header_eq(
        200,
        "content-type",
        content.manifest_media_type(m).unwrap_or_default(),
        "end-3/content-type",
    );
    if head {
        e.header_eq(
            200,
            "content-length",
            bytes.len().to_string(),
            "end-3/head-length",
        )
    } else {
        e.check(
            200,
            Check::Content {
                len: bytes.len() as u64,
                sha256: sha256_hex(&bytes),
                rule: "end-3/get-body",
            },
        )
    }
}

macro_rules! manifest_pull {
    ($ty:ty, $head:expr) => {
        impl Operation for $ty {
            fn kind(&self, st: &ModelState, content: &Content) -> Option<&'static str> {
                Some(kind(st, content, self.repo, &self.reference))
            }

            fn apply(&self, _: &mut ModelState, _: &Content) {}

            fn plan(&self, content: &Content) -> Plan {
                plan(self.repo, &self.reference, content, $head)
            }

            fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
                Some(expect(cx, self.repo, &self.reference, $head))
            }

            fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
                Vec::new()
            }

            fn footprint(&self, st: &ModelState, _: &Content) -> Footprint {
                reads(st, self.repo, &self.reference)
            }

            fn ids(&self) -> Ids {
                Ids::manifests(self.reference.manifest())
            }

            fn renumber(&mut self, r: &Renumber) {
                self.reference = self.reference.renumbered(|m| r.manifest(m));
            }
        }
    };
}

manifest_pull!(HeadManifest, true);
manifest_pull!(GetManifest, false);
