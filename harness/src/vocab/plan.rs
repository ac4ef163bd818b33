//! Request plans: what an operation sends, as data.
//!
//! An operation renders to a [`Plan`]: steps with a method, a URL template, query pairs,
//! headers, a body source, a condition on the previous step and effects on the target's upload
//! sessions. The executor (`execute`) runs a plan with reqwest against each target; the
//! reproducer (`report::repro`) renders the same plan as bash + curl. Nothing else writes HTTP.
//!
//! Semantics every renderer follows:
//! - Steps run in order. A step whose [`When`] does not hold is not sent (and records nothing);
//!   each later step's condition is judged against the last step that was sent. A step whose
//!   URL cannot be formed (no `Location` yet, an unopened session, an unknown symbol) is
//!   recorded as *skipped* and ends the plan.
//! - [`Url::Location`] is the latest `Location` answered within the op, resolved against the
//!   URL of the response that carried it.
//! - `Content-Length` is sent for every body and for every `POST` / `PUT` / `PATCH` (0 when
//!   empty); a [`Body::SessionRest`] that is not empty adds `Content-Type:
//!   application/octet-stream` and `Content-Range: <sent>-<size-1>`.
//! - A paged step ([`Step::page_size`]) is repeated with labels `<label>#1`, `#2`, ... while
//!   the answer is `200`, up to the executor's page limit: to the `rel="next"` target of its
//!   `Link` header when there is one (used as given: registries may put opaque tokens there);
//!   without one, when the page is full (exactly `n` tags), to the same path with `n` and
//!   `last=<the page's last tag>`, as a client does; it stops when the next URL is the page just
//!   fetched.

use super::ids::{BlobId, ManifestId, Repo, Session};
use super::spec::DigestChoice;
use bytes::Bytes;

/// An HTTP method ocidiff sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Methods that always carry a `Content-Length` (0 without a body).
    pub fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

/// One piece of a request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// Written verbatim.
    Lit(String),
    /// The target's name for a repository: `[<prefix>/]<namespace>/r<N>`.
    Repo(Repo),
    /// A value escaped as one path segment (tags, digests, raw references).
    Escaped(String),
    /// A repository name as given, each `/`-separated segment escaped (invalid names).
    Name(String),
}

/// Where a step is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Url {
    /// A path under the target's base URL.
    Path(Vec<Seg>),
    /// The latest `Location` answered within this op.
    Location,
    /// The current location of an upload session slot.
    Session(Session),
    /// Nothing can be sent (an unknown symbol): the step is recorded as skipped.
    Unavailable(&'static str),
}

impl Url {
    /// `/v2/<repo>/<rest>`.
    pub fn repo(repo: Repo, rest: impl Into<String>) -> Url {
        Url::Path(vec![
            Seg::Lit("/v2/".into()),
            Seg::Repo(repo),
            Seg::Lit(format!("/{}", rest.into())),
        ])
    }

    /// `/v2/<repo>/<rest><escaped value>`.
    pub fn repo_escaped(repo: Repo, rest: &str, value: &str) -> Url {
        Url::Path(vec![
            Seg::Lit("/v2/".into()),
            Seg::Repo(repo),
            Seg::Lit(format!("/{rest}")),
            Seg::Escaped(value.into()),
        ])
    }

    /// A path with no repository in it.
    pub fn path(p: impl Into<String>) -> Url {
        Url::Path(vec![Seg::Lit(p.into())])
    }
}

/// A query or header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    Lit(String),
    /// The target's name for a repository.
    Repo(Repo),
    /// The digest a closing `PUT` names for the session's blob.
    SessionDigest(Session, DigestChoice),
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Lit(s.to_string())
    }
}

impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Lit(s)
    }
}

/// Where a step's body comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Empty,
    /// Bytes `[start, end)` of a blob, clamped to its size (`end: None`: to the end).
    Blob {
        blob: BlobId,
        start: u32,
        end: Option<u32>,
    },
    /// A rendered manifest.
    Manifest(ManifestId),
    /// Fixed bytes (deliberately malformed manifests).
    Bytes(Bytes),
    /// Bytes `[start, end)` of the session's blob, clamped to its size.
    SessionSlice {
        session: Session,
        start: u32,
        end: u32,
    },
    /// The bytes of the session's blob the target has not accepted yet.
    SessionRest(Session),
    /// The same, but starting one byte later: a final chunk out of order (a gap), with its
    /// `Content-Range`.
    SessionRestAfterGap(Session),
}

/// When a step is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only when the last step sent in the op answered this status.
    PrevStatus(u16),
    /// Only when the last step sent in the op answered with a 2xx status.
    PrevSuccess,
}

impl When {
    /// Whether the step is sent after `prev` (the last sent step's status).
    pub fn holds(self, prev: Option<u16>) -> bool {
        match self {
            When::Always => true,
            When::PrevStatus(s) => prev == Some(s),
            When::PrevSuccess => prev.is_some_and(|s| (200..300).contains(&s)),
        }
    }
}

/// What a step's answer does to the target's upload sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The slot is (re)opened for `blob`, at the answer's `Location` when the status is 202
    /// (else it has no location), with nothing accepted.
    OpenSession { session: Session, blob: BlobId },
    /// On a 2xx answer with a `Location`, the slot moves there.
    FollowSession(Session),
    /// On a 2xx answer, the slot has accepted bytes up to `end`.
    SessionSentTo { session: Session, end: u32 },
    /// On a 2xx answer, the slot has accepted the step's body as well.
    SessionSentAdd(Session),
}

/// One request of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Names the step within the op ("post", "patch#2", "put", "page"); exchanges of different
    /// targets align by label.
    pub label: String,
    /// Endpoint id of the spec's table ("end-1" ... "end-14", "catalog").
    pub endpoint: &'static str,
    pub method: Method,
    pub url: Url,
    pub query: Vec<(&'static str, Val)>,
    pub headers: Vec<(&'static str, Val)>,
    pub body: Body,
    pub when: When,
    pub effects: Vec<Effect>,
    /// Repeated page by page, `n` tags a page (see the module docs).
    pub page_size: Option<u32>,
    /// Stands for the PATCHes of a whole blob in chunks of the target's advertised
    /// `OCI-Chunk-Min-Length` plus `delta` bytes (see [`Step::chunks_at_min`]).
    pub chunks_at_min: Option<ChunksAtMin>,
}

/// A blob sent in chunks sized by what the target advertised on the POST before
/// (`OCI-Chunk-Min-Length`, plus `delta`; without the header, two halves): each chunk is a
/// PATCH `patch#<i>` with `Content-Range`, sent while the previous one answered 202.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunksAtMin {
    pub blob: BlobId,
    pub delta: i32,
}

impl ChunksAtMin {
    /// The chunks of a `len`-byte blob as (start, end) when the target advertised `min`.
    pub fn pieces(&self, len: usize, min: Option<u64>) -> Vec<(usize, usize)> {
        let size = match min {
            Some(m) => (m as i64 + i64::from(self.delta)).max(1) as usize,
            None => len.div_ceil(2).max(1),
        };
        // At most 64 chunks: a large blob and a tiny minimum would be thousands of requests.
        let size = size.max(len.div_ceil(64));
        (0..len)
            .step_by(size.max(1))
            .map(|s| (s, (s + size).min(len)))
            .collect()
    }
}

impl Step {
    pub fn new(label: impl Into<String>, endpoint: &'static str, method: Method, url: Url) -> Step {
        Step {
            label: label.into(),
            endpoint,
            method,
            url,
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
            when: When::Always,
            effects: Vec::new(),
            page_size: None,
            chunks_at_min: None,
        }
    }

    /// PATCHes of `blob` in chunks of the advertised minimum plus `delta` (see
    /// [`ChunksAtMin`]); the step's own label, body and headers are replaced per chunk.
    pub fn chunks_at_min(mut self, blob: BlobId, delta: i32) -> Step {
        self.chunks_at_min = Some(ChunksAtMin { blob, delta });
        self
    }

    pub fn query(mut self, key: &'static str, value: impl Into<Val>) -> Step {
        self.query.push((key, value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<Val>) -> Step {
        self.headers.push((name, value.into()));
        self
    }

    /// `Content-Type: application/octet-stream` and the body.
    pub fn octets(self, body: Body) -> Step {
        self.header("content-type", OCTET_STREAM).body(body)
    }

    pub fn body(mut self, body: Body) -> Step {
        self.body = body;
        self
    }

    pub fn when(mut self, when: When) -> Step {
        self.when = when;
        self
    }

    pub fn effect(mut self, e: Effect) -> Step {
        self.effects.push(e);
        self
    }

    /// Pages of `n` tags (see the module docs).
    pub fn paged(mut self, n: u32) -> Step {
        self.page_size = Some(n);
        self
    }
}

/// `application/octet-stream`.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Everything an operation sends, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn one(step: Step) -> Plan {
        Plan { steps: vec![step] }
    }

    pub fn then(mut self, step: Step) -> Plan {
        self.steps.push(step);
        self
    }
}

/// Percent-encodes what cannot appear verbatim in a path segment.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-._~:@!$&'()*+,;=".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// A name with each `/`-separated segment escaped.
pub fn name_segments(name: &str) -> String {
    name.split('/')
        .map(path_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// Splits `len` bytes into at most `chunks` non-empty, contiguous `[start, end)` ranges.
pub fn split_chunks(len: usize, chunks: u8) -> Vec<(usize, usize)> {
    let n = (chunks.max(1) as usize).min(len);
    if n == 0 {
        return Vec::new();
    }
    let base = len / n;
    let extra = len % n;
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let size = base + usize::from(i < extra);
        out.push((start, start + size));
        start += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_evenly() {
        assert_eq!(split_chunks(10, 3), vec![(0, 4), (4, 7), (7, 10)]);
        assert_eq!(split_chunks(2, 5), vec![(0, 1), (1, 2)]);
        assert!(split_chunks(0, 3).is_empty());
        assert_eq!(split_chunks(5, 0), vec![(0, 5)]);
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("a:b"), "a:b");
        assert_eq!(path_segment("a/b?c#"), "a%2Fb%3Fc%23");
        assert_eq!(name_segments("A b/c"), "A%20b/c");
    }
}

#[cfg(test)]
mod chunks_at_min_tests {
    use super::*;

    #[test]
    fn pieces_follow_the_minimum_and_cover_the_blob() {
        let at = |delta| ChunksAtMin {
            blob: BlobId(0),
            delta,
        };
        assert_eq!(at(0).pieces(10, Some(4)), vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(
            at(-1).pieces(10, Some(4)),
            vec![(0, 3), (3, 6), (6, 9), (9, 10)]
        );
        assert_eq!(at(1).pieces(10, Some(4)), vec![(0, 5), (5, 10)]);
        // No header: two halves; tiny minimums are capped at 64 chunks.
        assert_eq!(at(0).pieces(10, None), vec![(0, 5), (5, 10)]);
        assert_eq!(at(0).pieces(6400, Some(1)).len(), 64);
        assert!(at(-5).pieces(3, Some(1)).iter().all(|(s, e)| e > s));
        assert!(at(0).pieces(0, Some(4)).is_empty());
    }
}
