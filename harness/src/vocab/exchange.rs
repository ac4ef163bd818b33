//! What ocidiff keeps of HTTP: one request as sent (`RequestRecord`), one normalized response
//! (`Observation`: status, a fixed set of normalized headers, facts about the body), the pair
//! (`Exchange`, labelled by its step in the op), and a whole case's exchanges per op and target
//! (`CaseOutcome`). Pure data; producing observations from responses is the `observe` stage.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
/// One HTTP request as sent (for reports and curl reproducers). Bodies are summarized, not kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    /// Full URL as sent to this target.
    pub url: String,
    /// Request headers that matter (Content-Type, Content-Range, Range, Accept, Content-Length).
    pub headers: BTreeMap<String, String>,
    pub body_len: u64,
    /// sha256 of the request body (hex), to name it in reports: the content's own digest for a
    /// whole blob or manifest, else hashed when the body is at most 64 KiB (bigger chunks are
    /// named by `body_len` only; reproducers rebuild bodies from the plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
}

/// Facts about a response body, parsed according to the endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BodyFacts {
    /// No body (or a HEAD response).
    Empty,
    /// Raw content (blobs, manifests): its length and sha256.
    Content { len: u64, sha256: String },
    /// An OCI error body: the `code` of each error, in order.
    Errors { codes: Vec<String> },
    /// A tag list (end-8).
    Tags { name: String, tags: Vec<String> },
    /// A referrers index (end-12): descriptors as (digest, mediaType, artifactType, annotations).
    Referrers { manifests: Vec<ReferrerFacts> },
    /// A catalog response.
    Catalog { repositories: Vec<String> },
    /// Anything else, including invalid JSON where JSON was expected.
    Other {
        len: u64,
        sha256: String,
        /// First bytes (lossy UTF-8), for humans.
        snippet: String,
        /// The body is JSON (of another shape than the endpoint's).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        json: bool,
    },
}

/// One descriptor of a referrers response.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReferrerFacts {
    pub digest: String,
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A normalized response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// HTTP status; 0 when no response was received (see `transport_error`).
    pub status: u16,
    /// Connection reset, timeout, oversized body, ... (the target misbehaved at transport level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_error: Option<String>,
    /// Selected headers, lower-case names, normalized values (see module docs).
    pub headers: BTreeMap<String, String>,
    pub body: BodyFacts,
    /// The registry answered with a redirect, followed to here: `<status> -> <location>`
    /// (the status and body above are the final ones; the registry's own headers are kept
    /// where the final answer lacks them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
}

/// One request/response pair within an operation. `label` names the step within the op
/// ("post", "patch#2", "put", "page#3", ...), so steps of different targets align by label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub label: String,
    /// Endpoint id from the spec's table ("end-1" ... "end-14", or "catalog").
    pub endpoint: String,
    pub request: RequestRecord,
    pub observation: Observation,
}

/// All exchanges of one op, per target (index = target index).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpOutcome {
    pub per_target: Vec<Vec<Exchange>>,
}

/// The result of running a sequence: target names and one `OpOutcome` per op.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseOutcome {
    pub targets: Vec<String>,
    pub ops: Vec<OpOutcome>,
    /// The spec version each target is judged by (same order as `targets`; a target without
    /// one is judged by the default, `1.1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<crate::vocab::spec_version::SpecVersion>,
}

impl CaseOutcome {
    /// The spec version target `t` is judged by.
    pub fn version_of(&self, t: usize) -> crate::vocab::spec_version::SpecVersion {
        self.versions.get(t).copied().unwrap_or_default()
    }
}

impl Observation {
    /// A header's normalized value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// An exchange the executor did not send (no upload location, unknown symbol, ...).
    pub fn is_skipped(&self) -> bool {
        self.status == 0
            && self
                .transport_error
                .as_deref()
                .is_some_and(|e| e.starts_with("skipped"))
    }
}

impl Exchange {
    /// A step the executor did not send, and why.
    pub fn skipped(label: &str, endpoint: &str, method: &str, why: &str) -> Exchange {
        Exchange {
            label: label.to_string(),
            endpoint: endpoint.to_string(),
            request: RequestRecord {
                method: method.to_string(),
                url: String::new(),
                headers: BTreeMap::new(),
                body_len: 0,
                body_sha256: None,
            },
            observation: Observation {
                status: 0,
                transport_error: Some(format!("skipped: {why}")),
                headers: BTreeMap::new(),
                body: BodyFacts::Empty,
                redirect: None,
            },
        }
    }
}

impl BodyFacts {
    /// A one-line description for reports.
    pub fn describe(&self) -> String {
        match self {
            BodyFacts::Empty => "empty".into(),
            BodyFacts::Content { len, sha256 } => format!("content len={len} sha256={sha256}"),
            BodyFacts::Errors { codes } => format!("errors {codes:?}"),
            BodyFacts::Tags { name, tags } => format!("tags name={name} {tags:?}"),
            BodyFacts::Referrers { manifests } => format!(
                "referrers {:?}",
                manifests
                    .iter()
                    .map(|m| format!(
                        "{}({})",
                        m.digest,
                        m.artifact_type.as_deref().unwrap_or("-")
                    ))
                    .collect::<Vec<_>>()
            ),
            BodyFacts::Catalog { repositories } => format!("catalog {repositories:?}"),
            BodyFacts::Other { len, snippet, .. } => format!("other len={len} {snippet:?}"),
        }
    }

    /// The kind name used in scenario files ("empty", "content", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            BodyFacts::Empty => "empty",
            BodyFacts::Content { .. } => "content",
            BodyFacts::Errors { .. } => "errors",
            BodyFacts::Tags { .. } => "tags",
            BodyFacts::Referrers { .. } => "referrers",
            BodyFacts::Catalog { .. } => "catalog",
            BodyFacts::Other { .. } => "other",
        }
    }
}

impl Observation {
    /// The value of a compared field ("status", "header:<name>", "body") for reports.
    pub fn field_value(&self, field: &str) -> String {
        if field == "status" {
            return match &self.transport_error {
                Some(e) if self.status == 0 => format!("no response ({e})"),
                _ => self.status.to_string(),
            };
        }
        if let Some(h) = field.strip_prefix("header:") {
            return self.header(h).unwrap_or("<absent>").to_string();
        }
        if field == "body" {
            return self.body.describe();
        }
        String::new()
    }
}

/// One op of a concurrent history on one target: which client sent it, when it was invoked
/// and when its last answer arrived (microseconds since the segment's barrier released the
/// clients), and its exchanges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedOp {
    pub client: usize,
    /// Index of the op in its client's list.
    pub index: usize,
    pub start_us: u64,
    pub end_us: u64,
    pub exchanges: Vec<Exchange>,
}

/// A concurrent segment's history: per target, every op of every client (in completion order
/// within a client; clients interleave freely).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub targets: Vec<String>,
    pub per_target: Vec<Vec<TimedOp>>,
}
