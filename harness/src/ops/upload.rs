//! Upload sessions step by step: open (end-4a / end-4c), chunks (end-5), close (end-6), status
//! (end-13) and cancel (end-14). Each target keeps its own `Location` per session slot.

use super::blob_push::bad_digest_expect;
use super::expect::{
    chunk_is_defined, patch_exp, unknown_session, Exp, ExpectCx, Found, TargetMemo,
};
use super::gen::{Draw, Transition, SESSIONS};
use super::{Footprint, Ids, Op, Operation, Renumber, Sym};
use crate::model::{ModelState, SessionState};
use crate::vocab::content::Content;
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::{Body, Effect, Method, Plan, Step, Url, Val};
use crate::vocab::serde_util::is_default;
use crate::vocab::{BlobId, DigestAlgo, DigestChoice, Repo, Session};
use serde::{Deserialize, Serialize};

/// end-4a / end-4c: open an upload session for `blob` (bytes come from it in later ops).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartUpload {
    pub repo: Repo,
    pub session: Session,
    pub blob: BlobId,
    /// `?digest-algorithm=` parameter (end-4c).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_algorithm: Option<DigestAlgo>,
}

/// end-5: PATCH bytes `[start, end)` of the session's blob with `Content-Range: start-(end-1)`
/// (or without `Content-Range` when `streamed`). Out-of-order ranges expect 416.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchChunk {
    pub session: Session,
    pub start: u32,
    pub end: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub streamed: bool,
}

/// end-6: close the session with PUT `?digest=`; with `rest_in_body`, the bytes not yet sent
/// travel in the PUT body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteUpload {
    pub session: Session,
    #[serde(default, skip_serializing_if = "is_default")]
    pub rest_in_body: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub digest: DigestChoice,
    /// The rest goes in the body one byte too late: a final chunk out of order (the registry
    /// MUST answer 416).
    #[serde(default, skip_serializing_if = "is_default")]
    pub gap: bool,
}

/// end-13: GET the upload location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStatus {
    pub session: Session,
}

/// end-14: DELETE the upload location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelUpload {
    pub session: Session,
}

pub const TRANSITIONS: &[Transition] = &[
    Transition {
        name: "start_upload",
        invalid: false,
        offer: |d| vec![start(d)],
    },
    Transition {
        name: "patch_chunk",
        invalid: false,
        offer: patch_in_order,
    },
    Transition {
        name: "complete_upload",
        invalid: false,
        offer: |d| {
            let Some((session, s)) = d.pick(&d.usable_sessions()) else {
                return Vec::new();
            };
            let rest_in_body = s.offset < d.blob_size(s.blob) || d.chance(1, 2);
            vec![Op::CompleteUpload(CompleteUpload {
                session,
                rest_in_body,
                digest: DigestChoice::Correct,
                gap: false,
            })]
        },
    },
    Transition {
        name: "complete_out_of_order",
        invalid: true,
        offer: |d| {
            let candidates: Vec<_> = d
                .usable_sessions()
                .into_iter()
                .filter(|(_, s)| d.blob_size(s.blob) >= s.offset + 2)
                .collect();
            let Some((session, _)) = d.pick(&candidates) else {
                return Vec::new();
            };
            vec![Op::CompleteUpload(CompleteUpload {
                session,
                rest_in_body: true,
                digest: DigestChoice::Correct,
                gap: true,
            })]
        },
    },
    Transition {
        name: "upload_status",
        invalid: false,
        offer: |d| match d.pick(&d.usable_sessions()) {
            Some((session, _)) => vec![Op::UploadStatus(UploadStatus { session })],
            None => Vec::new(),
        },
    },
    Transition {
        name: "cancel_upload",
        invalid: false,
        offer: |d| match d.pick(&d.usable_sessions()) {
            Some((session, _)) => vec![Op::CancelUpload(CancelUpload { session })],
            None => Vec::new(),
        },
    },
    Transition {
        name: "complete_bad_digest",
        invalid: true,
        offer: |d| {
            let Some((session, _)) = d.pick(&d.usable_sessions()) else {
                return Vec::new();
            };
            let digest = if d.chance(1, 2) {
                DigestChoice::Wrong
            } else {
                DigestChoice::Malformed
            };
            vec![Op::CompleteUpload(CompleteUpload {
                session,
                rest_in_body: true,
                digest,
                gap: false,
            })]
        },
    },
    Transition {
        name: "patch_out_of_order",
        invalid: true,
        offer: |d| {
            let candidates: Vec<_> = d
                .usable_sessions()
                .into_iter()
                .filter(|(_, s)| s.offset > 0 || d.blob_size(s.blob) >= 2)
                .collect();
            let Some((session, s)) = d.pick(&candidates) else {
                return Vec::new();
            };
            let (start, end) = if s.offset > 0 { (0, s.offset) } else { (1, 2) };
            vec![Op::PatchChunk(PatchChunk {
                session,
                start,
                end,
                streamed: false,
            })]
        },
    },
    Transition {
        name: "closed_session",
        invalid: true,
        offer: |d| {
            let closed: Vec<Session> = (0..SESSIONS)
                .map(Session)
                .filter(|s| d.st.session_closed(*s))
                .collect();
            let Some(session) = d.pick(&closed) else {
                return Vec::new();
            };
            vec![match d.below(4) {
                0 => Op::UploadStatus(UploadStatus { session }),
                1 => Op::PatchChunk(PatchChunk {
                    session,
                    start: 0,
                    end: 1,
                    streamed: false,
                }),
                2 => Op::CompleteUpload(CompleteUpload {
                    session,
                    rest_in_body: false,
                    digest: DigestChoice::Correct,
                    gap: false,
                }),
                _ => Op::CancelUpload(CancelUpload { session }),
            }]
        },
    },
];

/// Opens the first free slot (or reuses one) for a drawn blob.
fn start(d: &mut Draw<'_>) -> Op {
    let open: Vec<Session> = d.st.open_sessions().into_iter().map(|(s, _)| s).collect();
    let reuse = Session(d.below(SESSIONS as u32) as u8);
    let session = (0..SESSIONS)
        .map(Session)
        .find(|s| !open.contains(s))
        .unwrap_or(reuse);
    let blob = d.blob();
    let digest_algorithm = match d.content.blob_algo(blob) {
        Some(DigestAlgo::Sha512) => Some(DigestAlgo::Sha512),
        _ if d.chance(1, 4) => Some(DigestAlgo::Sha256),
        _ => None,
    };
    let repo = d.repo();
    Op::StartUpload(StartUpload {
        repo,
        session,
        blob,
        digest_algorithm,
    })
}

/// The next chunk of an open session (or a new session when none has bytes left).
fn patch_in_order(d: &mut Draw<'_>) -> Vec<Op> {
    let candidates: Vec<_> = d
        .usable_sessions()
        .into_iter()
        .filter(|(_, s)| s.offset < d.blob_size(s.blob))
        .collect();
    let Some((session, s)) = d.pick(&candidates) else {
        return vec![start(d)];
    };
    let remaining = d.blob_size(s.blob) - s.offset;
    let len = if d.chance(1, 3) {
        remaining
    } else {
        1 + d.below(remaining)
    };
    let streamed = d.chance(1, 7);
    vec![Op::PatchChunk(PatchChunk {
        session,
        start: s.offset,
        end: s.offset + len,
        streamed,
    })]
}

fn blob_size(content: &Content, s: &SessionState) -> u32 {
    content.blob(s.blob).map(|b| b.len() as u32).unwrap_or(0)
}

/// The kind of an op on a session slot that is not open and certain.
fn slot_kind(st: &ModelState, session: Session) -> Option<&'static str> {
    (st.session(session).is_none() && st.session_closed(session)).then_some("closed_session")
}

/// The open session the model knows in this slot.
fn certain(st: &ModelState, session: Session) -> Option<&SessionState> {
    st.session(session)
        .filter(|_| !st.session_uncertain(session))
}

/// Whether `CompleteUpload` with these parameters would store the blob.
/// Whether a final chunk with a gap can be sent: at least two bytes of the blob are left.
fn gap_possible(st: &ModelState, session: Session, content: &Content) -> bool {
    st.session(session)
        .is_some_and(|s| blob_size(content, s) >= s.offset + 2)
}

pub fn completes(st: &ModelState, c: &CompleteUpload, content: &Content) -> bool {
    let Some(s) = st.session(c.session) else {
        return false;
    };
    if c.digest != DigestChoice::Correct || (c.gap && gap_possible(st, c.session, content)) {
        return false;
    }
    // The session's digest-algorithm must agree with the blob's digest.
    if let (Some(a), Some(b)) = (s.algo, content.blob_algo(s.blob)) {
        if a != b {
            return false;
        }
    }
    c.rest_in_body || s.offset == blob_size(content, s)
}

fn session_footprint(session: Session) -> Footprint {
    Footprint::default()
        .read(Sym::Session(session))
        .write(Sym::Session(session))
}

impl Operation for StartUpload {
    fn kind(&self, _: &ModelState, content: &Content) -> Option<&'static str> {
        content.blob(self.blob).map(|_| "start_upload")
    }

    fn apply(&self, st: &mut ModelState, _: &Content) {
        st.open_session(
            self.session,
            SessionState {
                repo: self.repo,
                blob: self.blob,
                offset: 0,
                algo: self.digest_algorithm,
            },
        );
    }

    fn plan(&self, _: &Content) -> Plan {
        let url = Url::repo(self.repo, "blobs/uploads/");
        let step = match self.digest_algorithm {
            Some(a) => {
                Step::new("post", "end-4c", Method::Post, url).query("digest-algorithm", a.name())
            }
            None => Step::new("post", "end-4a", Method::Post, url),
        };
        Plan::one(step.effect(Effect::OpenSession {
            session: self.session,
            blob: self.blob,
        }))
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, ex: &Exchange) -> Option<Exp> {
        if ex.request.method != "POST" {
            return None;
        }
        match TargetMemo::advertised_min(ex) {
            Some(m) => cx.memo.chunk_min.insert(self.session, m),
            None => cx.memo.chunk_min.remove(&self.session),
        };
        Some(
            Exp::new(&[202], "end-4a/post-202")
                .session_location(202)
                .sha512_declinable(self.digest_algorithm == Some(DigestAlgo::Sha512)),
        )
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        Footprint::default().write(Sym::Session(self.session))
    }

    fn ids(&self) -> Ids {
        Ids {
            blobs: vec![self.blob],
            sessions: vec![self.session],
            ..Ids::default()
        }
    }

    fn renumber(&mut self, r: &Renumber) {
        self.blob = r.blob(self.blob);
    }
}

impl PatchChunk {
    /// Whether the model accepts the chunk (and so advances the session).
    fn accepted(&self, s: &SessionState, size: u32) -> bool {
        if self.streamed {
            let len = self.end.saturating_sub(self.start);
            len > 0 && s.offset.saturating_add(len) <= size
        } else {
            self.start == s.offset && self.end > self.start && self.end <= size
        }
    }
}

impl Operation for PatchChunk {
    fn kind(&self, st: &ModelState, content: &Content) -> Option<&'static str> {
        let Some(s) = certain(st, self.session) else {
            return slot_kind(st, self.session);
        };
        let size = blob_size(content, s);
        if self.accepted(s, size) {
            Some("patch_chunk")
        } else if !self.streamed
            && self.start != s.offset
            && self.end > self.start
            && self.end <= size
        {
            Some("patch_out_of_order")
        } else {
            None
        }
    }

    fn apply(&self, st: &mut ModelState, content: &Content) {
        let size = st.session(self.session).map(|s| blob_size(content, s));
        if let (Some(size), Some(s)) = (size, st.session(self.session).cloned()) {
            if self.accepted(&s, size) {
                let offset = if self.streamed {
                    s.offset + (self.end - self.start)
                } else {
                    self.end
                };
                if let Some(s) = st.session_mut(self.session) {
                    s.offset = offset;
                }
            }
        }
    }

    fn plan(&self, _: &Content) -> Plan {
        let mut step = Step::new("patch", "end-5", Method::Patch, Url::Session(self.session))
            .octets(Body::SessionSlice {
                session: self.session,
                start: self.start,
                end: self.end,
            });
        step = if self.streamed {
            step.effect(Effect::SessionSentAdd(self.session))
        } else {
            step.header(
                "content-range",
                format!("{}-{}", self.start, self.end.saturating_sub(1)),
            )
            .effect(Effect::SessionSentTo {
                session: self.session,
                end: self.end,
            })
        };
        Plan::one(step.effect(Effect::FollowSession(self.session)))
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, ex: &Exchange) -> Option<Exp> {
        let Some(s) = cx.st.session(self.session) else {
            return Some(unknown_session());
        };
        let size = blob_size(cx.content, s);
        cx.sent = s.offset as u64;
        if self.streamed {
            // Without `Content-Range`: not a request the spec defines.
            cx.memo.undefined.insert(self.session);
            self.accepted(s, size).then(|| patch_exp(ex, cx, false))
        } else if self.end <= self.start || self.end > size {
            // Degenerate (empty or beyond the blob): the executor clamps the body, so the
            // request is inconsistent; the spec says nothing about it.
            None
        } else if self.start != s.offset {
            Some(Exp::new(&[416], "end-5/out-of-order-416"))
        } else {
            let min = cx.memo.chunk_min.get(&self.session).copied();
            let defined = chunk_is_defined(ex, size as u64, min);
            if !defined {
                cx.memo.undefined.insert(self.session);
            }
            Some(patch_exp(ex, cx, defined))
        }
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        session_footprint(self.session)
    }

    fn ids(&self) -> Ids {
        Ids::session(self.session)
    }

    fn renumber(&mut self, _: &Renumber) {}
}

impl Operation for CompleteUpload {
    fn kind(&self, st: &ModelState, content: &Content) -> Option<&'static str> {
        if certain(st, self.session).is_none() {
            return slot_kind(st, self.session);
        }
        Some(if self.gap {
            // A gap needs two bytes left: one skipped, one sent.
            if !gap_possible(st, self.session, content) {
                return None;
            }
            "complete_out_of_order"
        } else if completes(st, self, content) {
            "complete_upload"
        } else {
            "complete_bad_digest"
        })
    }

    fn apply(&self, st: &mut ModelState, content: &Content) {
        if self.gap && gap_possible(st, self.session, content) {
            // Answered 416, the session stays where it was ("To get the current status after
            // a 416 error, issue a GET request").
        } else if completes(st, self, content) {
            if let Some(s) = st.close_session(self.session) {
                if let Some(d) = content.blob_digest(s.blob) {
                    st.link_blob(s.repo, d);
                }
            }
        } else if st.session(self.session).is_some() {
            // A failed completion leaves the session in a state the spec does not define.
            st.mark_uncertain(self.session);
        }
    }

    fn plan(&self, _: &Content) -> Plan {
        let step = Step::new("put", "end-6", Method::Put, Url::Session(self.session))
            .query("digest", Val::SessionDigest(self.session, self.digest));
        Plan::one(if self.gap {
            step.body(Body::SessionRestAfterGap(self.session))
        } else if self.rest_in_body {
            step.body(Body::SessionRest(self.session))
        } else {
            step
        })
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        let Some(s) = cx.st.session(self.session) else {
            return Some(unknown_session());
        };
        let sha512 = cx.content.blob_algo(s.blob) == Some(DigestAlgo::Sha512)
            || s.algo == Some(DigestAlgo::Sha512);
        let algo_mismatch = matches!(
            (s.algo, cx.content.blob_algo(s.blob)),
            (Some(a), Some(b)) if a != b
        );
        if self.gap && gap_possible(cx.st, self.session, cx.content) {
            return Some(Exp::new(&[416], "end-6/out-of-order-416"));
        }
        let undefined = cx.memo.undefined.contains(&self.session);
        Some(if completes(cx.st, self, cx.content) && undefined {
            // After a request the spec does not define, neither is the close.
            Exp::new(&[201], "end-6/put-201")
                .location(201, "end-6/location")
                .sha512_declinable(sha512)
                .tolerating_client_error()
        } else if completes(cx.st, self, cx.content) {
            Exp::new(&[201], "end-6/put-201")
                .location(201, "end-6/location")
                .sha512_declinable(sha512)
        } else if self.digest == DigestChoice::Correct && algo_mismatch {
            // A correct digest of another algorithm than the session's `digest-algorithm`: the
            // spec does not say what a registry does with it.
            Exp::client_error()
        } else {
            // A wrong digest, or one that does not match the bytes sent.
            bad_digest_expect()
        })
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, st: &ModelState, _: &Content) -> Footprint {
        let mut f = session_footprint(self.session);
        if let Some(s) = st.session(self.session) {
            f = f.write(Sym::Blob(s.repo, s.blob)).creates(st, s.repo);
        }
        f
    }

    fn ids(&self) -> Ids {
        Ids::session(self.session)
    }

    fn renumber(&mut self, _: &Renumber) {}
}

impl Operation for UploadStatus {
    fn kind(&self, st: &ModelState, _: &Content) -> Option<&'static str> {
        match certain(st, self.session) {
            Some(_) => Some("upload_status"),
            None => slot_kind(st, self.session),
        }
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, _: &Content) -> Plan {
        Plan::one(
            Step::new("get", "end-13", Method::Get, Url::Session(self.session))
                .effect(Effect::FollowSession(self.session)),
        )
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        let Some(s) = cx.st.session(self.session) else {
            return Some(unknown_session());
        };
        let e = Exp::new(&[204], "end-13/204").location(204, "end-13/location");
        Some(if s.offset > 0 {
            e.header_eq(204, "range", format!("0-{}", s.offset - 1), "end-13/range")
        } else {
            e
        })
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        session_footprint(self.session)
    }

    fn ids(&self) -> Ids {
        Ids::session(self.session)
    }

    fn renumber(&mut self, _: &Renumber) {}
}

impl Operation for CancelUpload {
    fn kind(&self, st: &ModelState, _: &Content) -> Option<&'static str> {
        match certain(st, self.session) {
            Some(_) => Some("cancel_upload"),
            None => slot_kind(st, self.session),
        }
    }

    fn apply(&self, st: &mut ModelState, _: &Content) {
        st.close_session(self.session);
    }

    fn plan(&self, _: &Content) -> Plan {
        Plan::one(
            Step::new(
                "delete",
                "end-14",
                Method::Delete,
                Url::Session(self.session),
            )
            .header("content-length", "0"),
        )
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, ex: &Exchange) -> Option<Exp> {
        if ex.request.method != "DELETE" {
            return None;
        }
        Some(if cx.st.session(self.session).is_some() {
            Exp::new(&[204], "http/server-error")
                .alt_range(200, 299, "end-14/204")
                .alt_range(300, 499, "end-14/failed")
        } else {
            unknown_session()
        })
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        session_footprint(self.session)
    }

    fn ids(&self) -> Ids {
        Ids::session(self.session)
    }

    fn renumber(&mut self, _: &Renumber) {}
}
