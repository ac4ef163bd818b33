//! A whole blob push (end-4a / end-4b / end-4c, end-5, end-6) by one of the spec's methods:
//! POST then PUT, a single POST, chunked PATCHes (the last chunk optionally in the PUT), or one
//! streamed PATCH.

use super::expect::{chunk_is_defined, patch_exp, Exp, ExpectCx, Found, TargetMemo};
use super::gen::{Draw, Transition};
use super::{Footprint, Ids, Op, Operation, Renumber, Sym};
use crate::model::ModelState;
use crate::vocab::content::Content;
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::{split_chunks, Body, Method, Plan, Step, Url, When};
use crate::vocab::serde_util::is_default;
use crate::vocab::{BlobId, DigestAlgo, DigestChoice, Repo};
use serde::{Deserialize, Serialize};

/// How a blob is pushed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum PushMethod {
    /// POST (end-4a) then PUT with the whole body (end-6).
    Monolithic,
    /// A single POST with `?digest=` and the body (end-4b); falls back to PUT on a 202.
    SinglePost,
    /// POST, then the blob in `chunks` PATCHes with `Content-Range` (end-5), then PUT (end-6).
    /// With `last_in_put` the final chunk travels in the closing PUT.
    Chunked { chunks: u8, last_in_put: bool },
    /// POST, then one PATCH without `Content-Range` (streamed), then PUT.
    Streamed,
    /// POST, then PATCHes of the target's advertised `OCI-Chunk-Min-Length` plus `delta`
    /// bytes each (the last one shorter; without the header, two halves), then PUT. A `delta`
    /// below 0 sends non-final chunks the spec tells clients not to send.
    ChunkedAtMin { delta: i8 },
}

/// Pushes `blob` into `repo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushBlob {
    pub repo: Repo,
    pub blob: BlobId,
    #[serde(flatten)]
    pub method: PushMethod,
    #[serde(default, skip_serializing_if = "is_default")]
    pub digest: DigestChoice,
}

pub const TRANSITIONS: &[Transition] = &[
    Transition {
        name: "push_blob",
        invalid: false,
        offer: |d| {
            let blob = d.blob();
            let repo = d.repo();
            vec![push(d, repo, blob, DigestChoice::Correct)]
        },
    },
    Transition {
        name: "push_blob_bad_digest",
        invalid: true,
        offer: |d| {
            let blob = d.blob();
            let repo = d.repo();
            let digest = if d.chance(1, 2) {
                DigestChoice::Wrong
            } else {
                DigestChoice::Malformed
            };
            vec![push(d, repo, blob, digest)]
        },
    },
];

/// A push of `blob` with a method drawn for its size.
pub fn push(d: &mut Draw<'_>, repo: Repo, blob: BlobId, digest: DigestChoice) -> Op {
    Op::PushBlob(PushBlob {
        repo,
        blob,
        method: draw_method(d, blob),
        digest,
    })
}

/// Empty blobs go monolithic or single-POST; others by every method.
pub fn draw_method(d: &mut Draw<'_>, blob: BlobId) -> PushMethod {
    let size = d.blob_size(blob);
    let c = d.u32();
    if size == 0 {
        return if c.is_multiple_of(2) {
            PushMethod::Monolithic
        } else {
            PushMethod::SinglePost
        };
    }
    match c % 10 {
        0..=3 => PushMethod::Monolithic,
        4..=5 => PushMethod::SinglePost,
        6..=7 => PushMethod::Chunked {
            chunks: 2 + ((c / 10) % 3) as u8,
            last_in_put: (c / 30) % 2 == 1,
        },
        // Around the advertised minimum: one below (not to be sent), at it, one above.
        8 => PushMethod::ChunkedAtMin {
            delta: ((c / 10) % 3) as i8 - 1,
        },
        _ => PushMethod::Streamed,
    }
}

impl PushBlob {
    fn sha512(&self, content: &Content) -> bool {
        content.blob_algo(self.blob) == Some(DigestAlgo::Sha512)
    }

    fn correct(&self) -> bool {
        self.digest == DigestChoice::Correct
    }

    /// A single POST: 201, or declined with 202 (the fallback PUT follows); a wrong or malformed
    /// digest is a request clients must not send: 400 (SHOULD), any 4xx, or accepted.
    fn single_post_expect(&self, content: &Content) -> Exp {
        let e = if self.correct() {
            Exp::new(&[201], "end-4b/decline-202").location(201, "end-4b/location")
        } else {
            bad_digest_expect().alt(&[201], "blob/bad-digest-accepted")
        };
        e.alt_first(&[202], "end-4b/single-post-unsupported")
            .continuing(202)
            .session_location(202)
            .sha512_declinable(self.sha512(content) && self.correct())
    }

    fn post_expect(&self, content: &Content) -> Exp {
        Exp::new(&[202], "end-4a/post-202")
            .session_location(202)
            .sha512_declinable(self.sha512(content))
    }

    fn put_expect(&self, content: &Content) -> Exp {
        if self.correct() {
            Exp::new(&[201], "end-6/put-201")
                .location(201, "end-6/location")
                .sha512_declinable(self.sha512(content))
        } else {
            bad_digest_expect()
        }
    }
}

/// The close of an upload with a wrong or malformed digest (a client MUST broken): the
/// registry SHOULD answer 400; another 4xx or an acceptance is a SHOULD-level variation (what
/// it then serves under that digest is checked by the `verify` step); a 5xx is a finding.
pub fn bad_digest_expect() -> Exp {
    Exp::new(&[400], "http/server-error")
        .alt_range(401, 499, "blob/bad-digest-400")
        .alt_range(200, 299, "blob/bad-digest-accepted")
}

/// What a blob URL serves after a push with a wrong digest was accepted: not the pushed bytes
/// under a digest they do not have.
fn verify_expect() -> Exp {
    Exp::new(&[404], "http/server-error")
        .alt(&[200], "blob/wrong-content")
        .tolerating_client_error()
}

impl Operation for PushBlob {
    fn kind(&self, _: &ModelState, content: &Content) -> Option<&'static str> {
        content.blob(self.blob)?;
        Some(if self.correct() {
            "push_blob"
        } else {
            "push_blob_bad_digest"
        })
    }

    fn apply(&self, st: &mut ModelState, content: &Content) {
        if self.correct() {
            if let Some(d) = content.blob_digest(self.blob) {
                st.link_blob(self.repo, d);
            }
        }
    }

    fn plan(&self, content: &Content) -> Plan {
        let Some(bytes) = content.blob(self.blob) else {
            return Plan::one(Step::new(
                "post",
                "end-4a",
                Method::Post,
                Url::Unavailable("unknown blob"),
            ));
        };
        let algo = content.blob_algo(self.blob).unwrap_or_default();
        let digest = content.blob_digest_choice(self.blob, self.digest, algo);
        let whole = Body::Blob {
            blob: self.blob,
            start: 0,
            end: None,
        };
        let uploads = Url::repo(self.repo, "blobs/uploads/");
        let put = |label: &str| {
            Step::new(label, "end-6", Method::Put, Url::Location)
                .query("digest", digest.clone())
                .when(When::PrevStatus(202))
        };
        // After an accepted wrong digest: what the registry serves under it.
        let verify = (self.digest == DigestChoice::Wrong).then(|| {
            Step::new(
                "verify",
                "end-2",
                Method::Get,
                Url::repo(self.repo, format!("blobs/{digest}")),
            )
            .when(When::PrevSuccess)
        });
        if let PushMethod::SinglePost = self.method {
            let plan = Plan::one(
                Step::new("post", "end-4b", Method::Post, uploads)
                    .query("digest", digest.clone())
                    .octets(whole.clone()),
            )
            .then(put("put-fallback").octets(whole));
            return match verify {
                Some(v) => plan.then(v),
                None => plan,
            };
        }
        let post = match (&self.method, algo) {
            (PushMethod::Monolithic, _) | (_, DigestAlgo::Sha256) => {
                Step::new("post", "end-4a", Method::Post, uploads)
            }
            (_, DigestAlgo::Sha512) => Step::new("post", "end-4c", Method::Post, uploads)
                .query("digest-algorithm", "sha512"),
        };
        let mut plan = Plan::one(post);
        match &self.method {
            PushMethod::Monolithic => plan = plan.then(put("put").octets(whole)),
            PushMethod::Streamed => {
                plan = plan
                    .then(
                        Step::new("patch#1", "end-5", Method::Patch, Url::Location)
                            .octets(whole)
                            .when(When::PrevStatus(202)),
                    )
                    .then(put("put"))
            }
            PushMethod::Chunked {
                chunks,
                last_in_put,
            } => {
                let pieces = split_chunks(bytes.len(), *chunks);
                let patched = if *last_in_put && !pieces.is_empty() {
                    pieces.len() - 1
                } else {
                    pieces.len()
                };
                let slice = |s: usize, e: usize| Body::Blob {
                    blob: self.blob,
                    start: s as u32,
                    end: Some(e as u32),
                };
                for (i, (s, e)) in pieces[..patched].iter().enumerate() {
                    plan = plan.then(
                        Step::new(
                            format!("patch#{}", i + 1),
                            "end-5",
                            Method::Patch,
                            Url::Location,
                        )
                        .octets(slice(*s, *e))
                        .header("content-range", format!("{}-{}", s, e - 1))
                        .when(When::PrevStatus(202)),
                    );
                }
                plan = plan.then(match pieces.get(patched) {
                    Some((s, e)) => put("put")
                        .octets(slice(*s, *e))
                        .header("content-range", format!("{}-{}", s, e - 1)),
                    None => put("put"),
                });
            }
            PushMethod::ChunkedAtMin { delta } => {
                plan = plan
                    .then(
                        Step::new("patch", "end-5", Method::Patch, Url::Location)
                            .octets(Body::Empty)
                            .chunks_at_min(self.blob, i32::from(*delta))
                            .when(When::PrevStatus(202)),
                    )
                    .then(put("put").when(When::PrevStatus(202)));
            }
            PushMethod::SinglePost => {}
        }
        match verify {
            Some(v) => plan.then(v),
            None => plan,
        }
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, ex: &Exchange) -> Option<Exp> {
        if ex.label == "verify" {
            return Some(verify_expect());
        }
        match ex.request.method.as_str() {
            "POST" if matches!(self.method, PushMethod::SinglePost) => {
                Some(self.single_post_expect(cx.content))
            }
            "POST" => {
                cx.memo.op_chunk_min = TargetMemo::advertised_min(ex);
                Some(self.post_expect(cx.content))
            }
            "PATCH" => {
                let defined = chunk_is_defined(ex, cx.blob_len(self.blob), cx.memo.op_chunk_min);
                Some(patch_exp(ex, cx, defined))
            }
            // After a chunk the spec does not define, neither is the close.
            "PUT" if cx.memo.op_undefined => {
                Some(self.put_expect(cx.content).tolerating_client_error())
            }
            "PUT" => Some(self.put_expect(cx.content)),
            _ => None,
        }
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, st: &ModelState, _: &Content) -> Footprint {
        Footprint::default()
            .write(Sym::Blob(self.repo, self.blob))
            .creates(st, self.repo)
    }

    fn ids(&self) -> Ids {
        Ids::blob(self.blob)
    }

    fn renumber(&mut self, r: &Renumber) {
        self.blob = r.blob(self.blob);
    }

    /// Fewer chunks: monolithic first, then halving the chunk count.
    fn simpler(&self) -> Vec<Op> {
        let with = |method| {
            Op::PushBlob(PushBlob {
                method,
                ..self.clone()
            })
        };
        let mut out = Vec::new();
        match &self.method {
            PushMethod::Chunked {
                chunks,
                last_in_put,
            } => {
                out.push(with(PushMethod::Monolithic));
                let mut c = *chunks / 2;
                while c >= 1 {
                    out.push(with(PushMethod::Chunked {
                        chunks: c,
                        last_in_put: *last_in_put,
                    }));
                    c /= 2;
                }
            }
            PushMethod::Streamed | PushMethod::SinglePost => out.push(with(PushMethod::Monolithic)),
            PushMethod::ChunkedAtMin { delta } => {
                out.push(with(PushMethod::Monolithic));
                if *delta != 0 {
                    out.push(with(PushMethod::ChunkedAtMin { delta: 0 }));
                }
            }
            PushMethod::Monolithic => {}
        }
        out
    }
}
