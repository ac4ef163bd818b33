//! What ocidiff keeps of one HTTP exchange: an `Observation` (status, a fixed set of normalized
//! headers, and facts about the body). Normalization removes what legitimately differs between
//! targets (dates, hosts, upload ids) so that what remains can be compared field by field.
//! Turning a `reqwest::Response` into an `Observation` lives here too.

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
    /// sha256 of the request body (hex), to name it in reproducers.
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
