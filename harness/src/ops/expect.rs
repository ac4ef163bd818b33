//! What the spec expects of an answer: the vocabulary every operation family uses to state its
//! expectations (`Exp`: allowed statuses and the rule each other status is reported under;
//! `Check`: header, digest, body and error-code checks per status), and what a check found
//! (`Found`). Rule ids name rows of the rule table (`compare::rules`).

use crate::model::ModelState;
use crate::vocab::content::{algo_of, digest_matches, Content};
use crate::vocab::exchange::{BodyFacts, Exchange, Observation};
use crate::vocab::Session;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;

/// The rule of an expectation's alternative that is allowed and not reported (a request the
/// spec tells clients not to send, answered with any 2xx or 4xx).
pub const QUIET: &str = "quiet";

/// A divergence before the target / endpoint / op fields are filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// "status", "header:<name>", "body", "exchange:<label>".
    pub field: String,
    /// Rule id.
    pub rule: &'static str,
    pub summary: String,
    pub expected: String,
    pub actual: String,
}

impl Found {
    pub fn new(
        field: impl Into<String>,
        rule: &'static str,
        summary: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Found {
        Found {
            field: field.into(),
            rule,
            summary: summary.into(),
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    /// A body finding.
    pub fn body(
        rule: &'static str,
        summary: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Found {
        Found::new("body", rule, summary, expected, actual)
    }
}

/// A check of a response body that an operation family defines itself (tag lists, referrers).
pub trait BodyCheck: Debug + Send + Sync {
    fn check(&self, o: &Observation, out: &mut Vec<Found>);
}

/// A check applied when the observed status equals a given code.
#[derive(Clone, Debug)]
pub enum Check {
    HeaderEq {
        name: &'static str,
        value: String,
        rule: &'static str,
    },
    /// Only checked when the header is present.
    HeaderEqIfPresent {
        name: &'static str,
        value: String,
        rule: &'static str,
    },
    HeaderPresent {
        name: &'static str,
        rule: &'static str,
    },
    /// `Docker-Content-Digest` must be `value`; another digest of the same bytes (another
    /// algorithm) is reported under `alt_rule`. `bytes` (a shared handle, not a copy) are only
    /// hashed when the answer is not `value`.
    Digest {
        value: String,
        bytes: bytes::Bytes,
        rule: &'static str,
        alt_rule: &'static str,
        /// A present header of the same algorithm with another value (`rule` when the spec
        /// has no sentence of its own for a wrong value).
        wrong_rule: &'static str,
    },
    /// The response body is exactly these bytes (len + sha256 hex).
    Content {
        len: u64,
        sha256: String,
        rule: &'static str,
    },
    /// A JSON error body contains one of these codes (the first is the one expected; the others
    /// are reasons a registry may report first).
    ErrorCode {
        codes: Vec<&'static str>,
        rule: &'static str,
    },
    /// A family's own body check.
    Body(Arc<dyn BodyCheck>),
}

/// What one exchange must look like.
#[derive(Clone, Debug)]
pub struct Exp {
    /// Status ranges (inclusive) that fully conform.
    pub ok: Vec<(u16, u16)>,
    /// Rule named when the status is neither ok nor an alternative.
    pub fail: &'static str,
    /// Tolerated status ranges, each with the rule (and so the class) it is reported under.
    pub alts: Vec<(u16, u16, &'static str)>,
    /// Checks, each applied when the observed status is in its range (inclusive).
    pub checks: Vec<(u16, u16, Check)>,
    /// A dropped connection is acceptable (a server may answer 413 and close the connection
    /// before reading an oversized body).
    pub tolerate_transport: bool,
    /// Statuses outside `ok` after which the plan goes on to a step that still achieves the
    /// op (a single POST or a mount declined with 202, then the PUT): no state divergence by
    /// themselves.
    pub continues: Vec<u16>,
}

impl Exp {
    pub fn new(ok: &[u16], fail: &'static str) -> Exp {
        Exp {
            ok: ok.iter().map(|s| (*s, *s)).collect(),
            fail,
            alts: Vec::new(),
            checks: Vec::new(),
            tolerate_transport: false,
            continues: Vec::new(),
        }
    }

    pub fn range(lo: u16, hi: u16, fail: &'static str) -> Exp {
        Exp {
            ok: vec![(lo, hi)],
            ..Exp::new(&[], fail)
        }
    }

    pub fn alt(mut self, codes: &[u16], rule: &'static str) -> Exp {
        for c in codes {
            self.alts.push((*c, *c, rule));
        }
        self
    }

    pub fn alt_range(mut self, lo: u16, hi: u16, rule: &'static str) -> Exp {
        self.alts.push((lo, hi, rule));
        self
    }

    /// An alternative tried before the ones already listed.
    pub fn alt_first(mut self, codes: &[u16], rule: &'static str) -> Exp {
        for c in codes.iter().rev() {
            self.alts.insert(0, (*c, *c, rule));
        }
        self
    }

    pub fn check(mut self, status: u16, c: Check) -> Exp {
        self.checks.push((status, status, c));
        self
    }

    /// A check applied to every status in `lo..=hi`.
    pub fn check_range(mut self, lo: u16, hi: u16, c: Check) -> Exp {
        self.checks.push((lo, hi, c));
        self
    }

    pub fn location(self, status: u16, rule: &'static str) -> Exp {
        self.check(
            status,
            Check::HeaderPresent {
                name: "location",
                rule,
            },
        )
    }

    /// An upload session's `Location` (end-4a): present, and holding a UUID.
    pub fn session_location(self, status: u16) -> Exp {
        self.location(status, "end-4a/location").check(
            status,
            Check::HeaderEqIfPresent {
                name: "location-session-id",
                value: "uuid".into(),
                rule: "end-4a/session-id",
            },
        )
    }

    pub fn header_eq(
        self,
        status: u16,
        name: &'static str,
        value: impl Into<String>,
        rule: &'static str,
    ) -> Exp {
        self.check(
            status,
            Check::HeaderEq {
                name,
                value: value.into(),
                rule,
            },
        )
    }

    /// A request the spec tells clients not to send (or leaves undefined): any 2xx or 4xx
    /// answer other than the listed ones is allowed and not reported (the state may differ
    /// afterwards); only a 5xx or no answer is a finding.
    pub fn tolerating_client_error(mut self) -> Exp {
        self.alts.push((200, 499, QUIET));
        self.fail = "http/server-error";
        self
    }

    /// The answer to a request the spec tells clients not to send: rejected (4xx) as the model
    /// assumes, or anything but a 5xx.
    pub fn client_error() -> Exp {
        Exp::range(400, 499, "http/server-error").tolerating_client_error()
    }

    /// After `status`, the plan goes on to a step that achieves the op.
    pub fn continuing(mut self, status: u16) -> Exp {
        self.continues.push(status);
        self
    }

    pub fn tolerating_transport(mut self) -> Exp {
        self.tolerate_transport = true;
        self
    }

    pub fn is_ok(&self, s: u16) -> bool {
        self.ok.iter().any(|(lo, hi)| (*lo..=*hi).contains(&s))
    }

    /// The rule an answer outside `ok` is reported under.
    pub fn rule_for(&self, s: u16) -> &'static str {
        self.alts
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&s))
            .map(|(_, _, r)| *r)
            .unwrap_or(self.fail)
    }

    pub fn ok_text(&self) -> String {
        self.ok
            .iter()
            .map(|(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// For an op naming sha512 content: a registry that does not know the algorithm may decline
    /// it with any 4xx (an unsupported feature).
    /// (After the op's own alternatives: a 404 of an API the target does not have, a 405 of a
    /// disabled delete, keep their meaning.)
    pub fn sha512_declinable(mut self, sha512: bool) -> Exp {
        if sha512 {
            let at = self
                .alts
                .iter()
                .position(|a| a.2 == QUIET)
                .unwrap_or(self.alts.len());
            self.alts.insert(at, (400, 499, "end-4c/algo-unsupported"));
        }
        self
    }
}

/// Per-target facts gathered from the whole case before checking.
#[derive(Clone, Debug, Default)]
pub struct TargetFacts {
    /// `Some(true)` when any referrers request answered 200, `Some(false)` when one answered 404.
    pub referrers: Option<bool>,
    /// The same for tag lists (end-8a / end-8b).
    pub tags: Option<bool>,
    /// Some manifest push (end-7a / end-7b) answered 201: the registry implements pushing
    /// manifests, so it "MUST implement all APIs in the claimed category".
    pub pushes: bool,
    /// The case namespace, from the first request URL (`/v2/<ns>/r<k>/...`).
    pub namespace: Option<String>,
}

/// What the checks of earlier ops learned about a target, for later ops of the same case.
#[derive(Clone, Debug, Default)]
pub struct TargetMemo {
    /// `OCI-Chunk-Min-Length` advertised when each upload session was opened.
    pub chunk_min: BTreeMap<Session, u64>,
    /// The same, for the session of the composite push being checked.
    pub op_chunk_min: Option<u64>,
    /// Sessions that were sent a request the spec does not define (a chunk below the minimum,
    /// a PATCH without `Content-Range`): what they do after it is not defined either.
    pub undefined: BTreeSet<Session>,
    /// The same, for the composite push being checked.
    pub op_undefined: bool,
}

impl TargetMemo {
    /// Reads `OCI-Chunk-Min-Length` from a session-opening answer.
    pub fn advertised_min(ex: &Exchange) -> Option<u64> {
        ex.observation
            .header("oci-chunk-min-length")
            .and_then(|v| v.trim().parse().ok())
    }
}

/// Everything an expectation may look at.
pub struct ExpectCx<'a> {
    /// The model state before the op.
    pub st: &'a ModelState,
    pub content: &'a Content,
    pub facts: &'a TargetFacts,
    /// The target is the reference (index 0).
    pub is_reference: bool,
    /// Bytes acknowledged so far in a composite push (for the PATCH `Range`).
    pub sent: u64,
    pub memo: &'a mut TargetMemo,
}

impl ExpectCx<'_> {
    pub fn blob_len(&self, b: crate::vocab::BlobId) -> u64 {
        self.content.blob(b).map(|x| x.len() as u64).unwrap_or(0)
    }

    pub fn blob_sha(&self, b: crate::vocab::BlobId) -> String {
        self.content
            .blob_sha256_hex(b)
            .unwrap_or_default()
            .to_string()
    }
}

/// The `Docker-Content-Digest` check of `bytes`, whose digest under the algorithm asked for is
/// `value`.
pub fn digest_check(
    value: &str,
    bytes: bytes::Bytes,
    rule: &'static str,
    alt_rule: &'static str,
) -> Check {
    digest_check_value(value, bytes, rule, alt_rule, rule)
}

/// [`digest_check`] with a rule of its own for a present header of the wrong value (a blob
/// GET: "If present, the value of this header MUST be a digest matching that of the response
/// body", a MUST in every version, where the header itself is a SHOULD before 1.1+dev).
pub fn digest_check_value(
    value: &str,
    bytes: bytes::Bytes,
    rule: &'static str,
    alt_rule: &'static str,
    wrong_rule: &'static str,
) -> Check {
    Check::Digest {
        value: value.to_string(),
        bytes,
        rule,
        alt_rule,
        wrong_rule,
    }
}

/// Whether `got` is a digest of `bytes` with another algorithm than `value`'s.
fn other_algo_digest(got: &str, value: &str, bytes: &[u8]) -> bool {
    algo_of(got) != algo_of(value) && digest_matches(got, bytes)
}

/// An op on an upload session the model does not know (closed or never opened).
pub fn unknown_session() -> Exp {
    Exp::new(&[404], "upload/unknown-session")
        .alt_range(200, 499, "upload/unknown-session")
        .alt_range(500, 599, "http/server-error")
}

/// How a chunk relates to what the spec defines: a `Content-Range` chunk of at least the
/// advertised minimum (or the final one) is defined; one without `Content-Range` (streamed) or
/// below an advertised `OCI-Chunk-Min-Length` is a request the spec tells clients not to send.
pub fn chunk_is_defined(ex: &Exchange, blob_size: u64, min: Option<u64>) -> bool {
    let Some(end) = ex
        .request
        .headers
        .get("content-range")
        .and_then(|r| r.rsplit('-').next())
        .and_then(|e| e.trim().parse::<u64>().ok())
    else {
        return false;
    };
    let final_chunk = end + 1 >= blob_size;
    final_chunk || min.is_none_or(|m| ex.request.body_len >= m)
}

/// A PATCH of a composite or single chunk op: 202, Location, `Range: 0-<end>`; a chunk the spec
/// does not define (see `chunk_is_defined`) may be answered with any 2xx or 4xx.
pub fn patch_exp(ex: &Exchange, cx: &mut ExpectCx<'_>, defined: bool) -> Exp {
    let req_end = ex
        .request
        .headers
        .get("content-range")
        .and_then(|r| r.rsplit('-').next())
        .and_then(|e| e.trim().parse::<u64>().ok());
    let end = match req_end {
        Some(e) => e,
        None => (cx.sent + ex.request.body_len).saturating_sub(1),
    };
    if ex.observation.status == 202 {
        cx.sent = end + 1;
    }
    let mut e = Exp::new(&[202], "end-5/patch-202").location(202, "end-5/location");
    if !defined {
        cx.memo.op_undefined = true;
        return e.tolerating_client_error();
    }
    if end + 1 > 0 && (req_end.is_some() || ex.request.body_len > 0) {
        e = e.header_eq(202, "range", format!("0-{end}"), "end-5/range");
    }
    e
}

fn strip_sha(s: &str) -> &str {
    s.strip_prefix("sha256:").unwrap_or(s)
}

impl Check {
    /// Appends what does not hold in `o`.
    pub fn eval(&self, o: &Observation, out: &mut Vec<Found>) {
        match self {
            Check::HeaderEq { name, value, rule }
            | Check::HeaderEqIfPresent { name, value, rule } => {
                let got = o.header(name);
                if got.is_none() && matches!(self, Check::HeaderEqIfPresent { .. }) {
                    return;
                }
                let ok = match got {
                    None => false,
                    Some(g) if *name == "content-type" => {
                        reference_registry::spec::media_type_essence(g) == value.as_str()
                    }
                    Some(g) if *name == "oci-tag" => {
                        let mut a: Vec<&str> = g.split(',').map(str::trim).collect();
                        a.sort_unstable();
                        a.dedup();
                        a.join(", ") == *value
                    }
                    Some(g) => g == value,
                };
                if !ok {
                    // A session id that is not in UUID text form (an opaque random token, a
                    // counter) meets the sentence's purpose, a unique session per upload:
                    // a variation; no session id at all is the violation.
                    let rule = match got {
                        Some("opaque") if *name == "location-session-id" => {
                            "end-4a/session-id-form"
                        }
                        _ => rule,
                    };
                    out.push(Found::new(
                        format!("header:{name}"),
                        rule,
                        match got {
                            None => format!("header {name} missing (expected {value:?})"),
                            Some(g) => format!("header {name} is {g:?}, expected {value:?}"),
                        },
                        value.clone(),
                        got.unwrap_or("<absent>"),
                    ));
                }
            }
            Check::Digest {
                value,
                bytes,
                rule,
                alt_rule,
                wrong_rule,
            } => {
                let got = o.header("docker-content-digest");
                if got == Some(value.as_str()) {
                    return;
                }
                let other_algo = got.is_some_and(|g| other_algo_digest(g, value, bytes));
                out.push(Found::new(
                    "header:docker-content-digest",
                    match got {
                        _ if other_algo => alt_rule,
                        Some(_) => wrong_rule,
                        None => rule,
                    },
                    match got {
                        None => {
                            format!("header docker-content-digest missing (expected {value:?})")
                        }
                        Some(g) if other_algo => {
                            format!(
                                "docker-content-digest {g:?} uses another algorithm than {value:?}"
                            )
                        }
                        Some(g) => format!("docker-content-digest is {g:?}, expected {value:?}"),
                    },
                    value.clone(),
                    got.unwrap_or("<absent>"),
                ));
            }
            Check::HeaderPresent { name, rule } => {
                if o.header(name).is_none() {
                    out.push(Found::new(
                        format!("header:{name}"),
                        rule,
                        format!("header {name} missing"),
                        "<present>",
                        "<absent>",
                    ));
                }
            }
            Check::Content { len, sha256, rule } => {
                let ok = match &o.body {
                    BodyFacts::Content { len: l, sha256: s }
                    | BodyFacts::Other {
                        len: l, sha256: s, ..
                    } => l == len && strip_sha(s) == strip_sha(sha256),
                    BodyFacts::Empty => *len == 0,
                    _ => false,
                };
                if !ok {
                    out.push(Found::body(
                        rule,
                        "response body differs from the stored content",
                        format!("content len={len} sha256={sha256}"),
                        o.body.describe(),
                    ));
                }
            }
            Check::ErrorCode { codes: want, rule } => {
                if let BodyFacts::Errors { codes } = &o.body {
                    if !codes.iter().any(|c| want.contains(&c.as_str())) {
                        let first = want.first().copied().unwrap_or_default();
                        out.push(Found::body(
                            rule,
                            format!("error body lacks {first}"),
                            format!("errors containing {}", want.join(" or ")),
                            o.body.describe(),
                        ));
                    }
                }
            }
            Check::Body(b) => b.check(o, out),
        }
    }
}
