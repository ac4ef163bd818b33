//! end-2: blob `HEAD` and `GET` (whole, or a `Range`), and `GET` by a raw digest string.

use super::expect::{digest_check, digest_check_value, Check, Exp, ExpectCx, Found};
use super::gen::{Draw, Transition};
use super::{Footprint, Ids, Op, Operation, Renumber, Sym};
use crate::model::{is_valid_digest, ModelState};
use crate::vocab::content::{digest_of, sha256_hex, Content};
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::{Method, Plan, Step, Url};
use crate::vocab::serde_util::serde_range;
use crate::vocab::{BlobId, DigestAlgo, Repo};
use serde::{Deserialize, Serialize};

/// end-2 HEAD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadBlob {
    pub repo: Repo,
    pub blob: BlobId,
}

/// end-2 GET, optionally with `Range: bytes=start-end` (end inclusive; `None` = open-ended).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetBlob {
    pub repo: Repo,
    pub blob: BlobId,
    /// Serialized as `[start]` or `[start, end]` (TOML has no null inside arrays).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_range")]
    pub range: Option<(u32, Option<u32>)>,
}

/// end-2 with a malformed or unknown digest string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetBlobRaw {
    pub repo: Repo,
    pub digest: String,
}

pub const TRANSITIONS: &[Transition] = &[
    Transition {
        name: "pull_blob",
        invalid: false,
        offer: pull,
    },
    Transition {
        name: "get_blob_raw",
        invalid: true,
        offer: |d| {
            // A blob GET by the digest of a manifest the repository holds (distribution serves
            // it as a blob: distribution/distribution#4812).
            let stored = d.stored_manifests();
            if !stored.is_empty() && d.chance(1, 3) {
                if let Some((repo, _, m)) = d.pick(&stored) {
                    if let Some(digest) = d.content.manifest_digest(m).map(str::to_string) {
                        return vec![Op::GetBlobRaw(GetBlobRaw { repo, digest })];
                    }
                }
            }
            let unknown = digest_of(DigestAlgo::Sha256, b"ocidiff: no such blob");
            let digests = [
                "sha256:xyz".to_string(),
                "md5:abc".to_string(),
                unknown.clone(),
                unknown.to_ascii_uppercase().replace("SHA256", "sha256"),
            ];
            let digest = d.pick(&digests).unwrap_or_default();
            let repo = d.repo();
            vec![Op::GetBlobRaw(GetBlobRaw { repo, digest })]
        },
    },
];

/// A HEAD or GET (sometimes ranged) of a present blob, sometimes of any blob.
fn pull(d: &mut Draw<'_>) -> Vec<Op> {
    let linked = d.linked_blobs();
    let (repo, blob) = match d.pick(&linked) {
        Some(x) if !d.chance(1, 5) => x,
        _ => (d.repo(), d.blob()),
    };
    if d.chance(1, 3) {
        return vec![Op::HeadBlob(HeadBlob { repo, blob })];
    }
    let size = d.blob_size(blob);
    let range = match d.below(5) {
        1 if size > 0 => {
            let s = d.below(size);
            let e = s + d.below(size - s);
            Some((s, Some(e)))
        }
        2 if size > 0 => Some((d.below(size), None)),
        _ => None,
    };
    vec![Op::GetBlob(GetBlob { repo, blob, range })]
}

fn blob_url(repo: Repo, blob: BlobId, content: &Content) -> Url {
    Url::repo(
        repo,
        format!(
            "blobs/{}",
            content.blob_digest(blob).unwrap_or("sha256:unknown")
        ),
    )
}

fn sha512(content: &Content, blob: BlobId) -> bool {
    content.blob_algo(blob) == Some(DigestAlgo::Sha512)
}

/// `repo` holds the very bytes of `blob` under the other digest algorithm (another blob of the
/// case with the same content): a registry may serve them by either digest.
fn same_bytes_held(st: &ModelState, content: &Content, repo: Repo, blob: BlobId) -> bool {
    let (Some(bytes), Some(algo)) = (content.blob(blob), content.blob_algo(blob)) else {
        return false;
    };
    (0..content.blob_count()).any(|i| {
        let other = BlobId(i as u16);
        content.blob_algo(other) != Some(algo)
            && content.blob(other) == Some(bytes)
            && st.has_blob(repo, other)
    })
}

/// A pull of a blob `repo` does not hold: 404, or (when the repository holds the same bytes
/// under the other algorithm) the blob.
fn missing(st: &ModelState, content: &Content, repo: Repo, blob: BlobId) -> Exp {
    let e = Exp::new(&[404], "end-2/404");
    if same_bytes_held(st, content, repo, blob) {
        e.alt(&[200, 206], "end-2/same-content")
    } else {
        e
    }
}

fn pull_kind(st: &ModelState, content: &Content, repo: Repo, blob: BlobId) -> Option<&'static str> {
    content.blob(blob)?;
    Some(if st.has_blob(repo, blob) {
        "pull_blob"
    } else {
        "pull_missing_blob"
    })
}

impl Operation for HeadBlob {
    fn kind(&self, st: &ModelState, content: &Content) -> Option<&'static str> {
        pull_kind(st, content, self.repo, self.blob)
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, content: &Content) -> Plan {
        Plan::one(Step::new(
            "head",
            "end-2",
            Method::Head,
            blob_url(self.repo, self.blob, content),
        ))
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        let c = cx.content;
        let e = if cx.st.has_blob(self.repo, self.blob) {
            Exp::new(&[200], "end-2/head-200")
                .check(
                    200,
                    digest_check(
                        c.blob_digest(self.blob).unwrap_or_default(),
                        c.blob(self.blob).cloned().unwrap_or_default(),
                        "end-2/head-digest",
                        "end-2/digest-algorithm",
                    ),
                )
                .header_eq(
                    200,
                    "content-length",
                    cx.blob_len(self.blob).to_string(),
                    "end-2/head-length",
                )
        } else {
            missing(cx.st, c, self.repo, self.blob).header_eq(
                200,
                "content-length",
                cx.blob_len(self.blob).to_string(),
                "end-2/head-length",
            )
        };
        Some(e.sha512_declinable(sha512(c, self.blob)))
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        Footprint::default().read(Sym::Blob(self.repo, self.blob))
    }

    fn ids(&self) -> Ids {
        Ids::blob(self.blob)
    }

    fn renumber(&mut self, r: &Renumber) {
        self.blob = r.blob(self.blob);
    }
}

impl GetBlob {
    /// Digest, body and (if present) length checks of a full `200`.
    fn full(&self, cx: &ExpectCx<'_>, e: Exp) -> Exp {
        let c = cx.content;
        let len = cx.blob_len(self.blob);
        e.check(
            200,
            digest_check_value(
                c.blob_digest(self.blob).unwrap_or_default(),
                c.blob(self.blob).cloned().unwrap_or_default(),
                "end-2/get-digest",
                "end-2/digest-algorithm",
                "end-2/get-digest-value",
            ),
        )
        .check(
            200,
            Check::Content {
                len,
                sha256: cx.blob_sha(self.blob),
                rule: "end-2/get-body",
            },
        )
        .check(
            200,
            Check::HeaderEqIfPresent {
                name: "content-length",
                value: len.to_string(),
                rule: "end-2/get-length",
            },
        )
    }
}

impl Operation for GetBlob {
    fn kind(&self, st: &ModelState, content: &Content) -> Option<&'static str> {
        pull_kind(st, content, self.repo, self.blob)
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, content: &Content) -> Plan {
        let step = Step::new(
            "get",
            "end-2",
            Method::Get,
            blob_url(self.repo, self.blob, content),
        );
        Plan::one(match self.range {
            Some((s, Some(e))) => step.header("range", format!("bytes={s}-{e}")),
            Some((s, None)) => step.header("range", format!("bytes={s}-")),
            None => step,
        })
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        let sha512 = sha512(cx.content, self.blob);
        if !cx.st.has_blob(self.repo, self.blob) {
            let e = missing(cx.st, cx.content, self.repo, self.blob);
            return Some(self.full(cx, e).sha512_declinable(sha512));
        }
        let len = cx.blob_len(self.blob);
        let e = match self.range {
            None => self.full(cx, Exp::new(&[200], "end-2/get-200")),
            Some((a, b)) => {
                let (a, b) = (a as u64, b.map(|b| b as u64));
                if b.is_some_and(|b| b < a) {
                    // Syntactically invalid range: ignored per RFC 9110.
                    self.full(
                        cx,
                        Exp::new(&[200], "end-2/get-200").alt(&[416], "end-2/range-ignored"),
                    )
                } else if a >= len {
                    self.full(
                        cx,
                        Exp::new(&[416], "end-2/get-200").alt(&[200], "end-2/range-ignored"),
                    )
                } else {
                    let last = b.unwrap_or(len - 1).min(len - 1);
                    let slice = cx
                        .content
                        .blob(self.blob)
                        .map(|x| x.slice(a as usize..=last as usize))
                        .unwrap_or_default();
                    self.full(
                        cx,
                        Exp::new(&[206], "end-2/get-200")
                            .alt(&[200], "end-2/range-ignored")
                            .check(
                                206,
                                Check::Content {
                                    len: slice.len() as u64,
                                    sha256: sha256_hex(&slice),
                                    rule: "end-2/get-body",
                                },
                            ),
                    )
                }
            }
        };
        Some(e.sha512_declinable(sha512))
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        Footprint::default().read(Sym::Blob(self.repo, self.blob))
    }

    fn ids(&self) -> Ids {
        Ids::blob(self.blob)
    }

    fn renumber(&mut self, r: &Renumber) {
        self.blob = r.blob(self.blob);
    }
}

impl Operation for GetBlobRaw {
    fn kind(&self, _: &ModelState, _: &Content) -> Option<&'static str> {
        Some("get_blob_raw")
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, _: &Content) -> Plan {
        Plan::one(Step::new(
            "get",
            "end-2",
            Method::Get,
            Url::repo_escaped(self.repo, "blobs/", &self.digest),
        ))
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        let found = cx
            .content
            .blob_by_digest(&self.digest)
            .filter(|b| cx.st.has_blob(self.repo, *b));
        // The digest of a manifest the repository holds: no blob was pushed under it, but the
        // manifest's bytes are content the registry stores under that digest (the spec's
        // "Blob: the binary form of content that is stored by a registry, addressable by a
        // digest"), so serving exactly those bytes is allowed; other bytes are wrong content.
        let manifest = cx.st.manifest_by_digest(self.repo, &self.digest);
        Some(match (found, manifest) {
            (Some(b), _) => Exp::new(&[200], "end-2/get-200").check(
                200,
                Check::Content {
                    len: cx.blob_len(b),
                    sha256: cx.blob_sha(b),
                    rule: "end-2/get-body",
                },
            ),
            (None, Some(m)) => Exp::new(&[404], "end-2/404")
                .alt(&[200], "end-2/manifest-as-blob")
                .check(
                    200,
                    Check::Content {
                        len: cx.content.manifest(m).map_or(0, |b| b.len() as u64),
                        sha256: cx
                            .content
                            .manifest_sha256(m)
                            .map(|d| d.trim_start_matches("sha256:").to_string())
                            .unwrap_or_default(),
                        rule: "blob/wrong-content",
                    },
                ),
            (None, None) if is_valid_digest(&self.digest) => Exp::new(&[404], "end-2/404"),
            // Not a digest: a request the spec does not define.
            (None, None) => Exp::client_error(),
        })
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        Footprint::default()
    }

    fn ids(&self) -> Ids {
        Ids::default()
    }

    fn renumber(&mut self, _: &Renumber) {}
}
