//! The spec's rules (per endpoint id) and the model's expectation; compares observations and
//! classifies divergences as violation / variation / unsupported.
//!
//! This is the one place spec knowledge lives. Two oracles run over a `CaseOutcome`:
//!
//! 1. **Model expectation.** The ops are walked with a `ModelState`; before each op is applied,
//!    the oracle derives what a spec-exact registry must answer to each of the op's exchanges
//!    (allowed statuses, required headers, body facts) and checks it on *every* target, the
//!    reference (target 0) included. A reference that disagrees with the model means the harness
//!    or the reference is wrong: it is reported as a violation on the reference, never hidden.
//! 2. **Differential.** Each target is compared with the reference exchange by exchange (aligned
//!    by label): status, normalized headers, body facts. Anything the model accepted on both
//!    sides but that still differs is a `Variation`.
//!
//! Every divergence names a rule of [`RULES`]: endpoint id, rule id, class, and the quoted spec
//! sentence. Classes: `Violation` (status outside the spec's allowed set, wrong content, missing
//! MUST header), `Variation` (allowed differences), `Unsupported` (an optional feature declined).
//!
//! **Cascade suppression (taint).** Once a target diverged on an op that changes state (a failed
//! push, a declined mount, ...), its state no longer matches the model, so later ops touching the
//! same symbols would diverge too. After any divergence on a state-changing op, the symbols the
//! op writes (`Blob(repo, blob)`, `Manifest(repo, m)`, `Tags(repo)`, `Referrers(repo, subject)`,
//! `Session(s)`, `RepoExists(repo)`) are tainted *for that target*; later ops that read a tainted
//! symbol are not checked on that target, and their writes are tainted as well. A tainted
//! reference suppresses the differential comparison (not the model check) of every target.
//! Where the spec is silent about the state an op leaves (a failed upload completion), the
//! affected symbols become *uncertain* for all targets: no model check, differential only.
//!
//! The catalog is not in the spec: it is never a violation; only that our repositories are listed
//! is compared.

use crate::content::{sha256_hex, Content, OCI_INDEX};
use crate::model::{
    BadManifest, BlobId, ContentTypeChoice, DigestAlgo, DigestChoice, ManifestId, Op, PushMethod,
    Reference, Repo, Sequence, Session,
};
use crate::observe::{BodyFacts, Exchange, Observation, ReferrerFacts};
use crate::state::{classify_reference, is_valid_digest, is_valid_tag, ModelState, RefKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub use crate::exec::CaseOutcome;

/// How serious a divergence is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// The spec is broken: a status outside the allowed set, wrong content, a missing MUST header.
    Violation,
    /// An allowed difference between registries.
    Variation,
    /// An optional feature the target declines.
    Unsupported,
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Class::Violation => "violation",
            Class::Variation => "variation",
            Class::Unsupported => "unsupported",
        })
    }
}

/// One classified difference between a target and the model or the reference.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub class: Class,
    pub target: String,
    pub op_index: usize,
    /// Exchange label within the op ("post", "put", "patch#2", ...).
    pub label: String,
    /// Endpoint id ("end-2", ..., "catalog").
    pub endpoint: String,
    /// "status", "header:<name>", "body", "exchange:<label>".
    pub field: String,
    /// Rule id from [`RULES`].
    pub rule: String,
    /// The quoted spec sentence.
    pub spec: String,
    pub summary: String,
    pub expected: String,
    pub actual: String,
    /// The reference's value for the same field, when the target is not the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// What makes two divergences "the same finding".
pub type Signature = (String, String, String, Class, String);

impl Divergence {
    /// (target, endpoint, field, class, rule).
    pub fn signature(&self) -> Signature {
        (
            self.target.clone(),
            self.endpoint.clone(),
            self.field.clone(),
            self.class,
            self.rule.clone(),
        )
    }
}

/// One row of the rule table.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub id: &'static str,
    pub endpoint: &'static str,
    pub class: Class,
    pub spec: &'static str,
}

use Class::{Unsupported as U, Variation as V, Violation as X};

macro_rules! rules {
    ($($id:literal, $ep:literal, $class:expr, $spec:literal;)*) => {
        /// The rule table: every check of the oracle names one of these.
        pub static RULES: &[Rule] = &[$(Rule { id: $id, endpoint: $ep, class: $class, spec: $spec }),*];
    };
}

rules! {
    // ---- generic ----
    "http/transport", "any", X, "The API operates over HTTP.";
    "errors/code", "any", X, "The `code` field MUST be one of the following:";
    // ---- end-1 ----
    "end-1/200", "end-1", X, "If the response is `200 OK`, then the registry implements this specification.";
    // ---- end-2 ----
    "end-2/get-200", "end-2", X, "A GET request to an existing blob URL MUST provide the expected blob, with a response code that MUST be `200 OK`.";
    "end-2/get-body", "end-2", X, "A GET request to an existing blob URL MUST provide the expected blob, with a response code that MUST be `200 OK`.";
    "end-2/get-digest", "end-2", X, "A successful response MUST contain the digest of the uploaded blob in the header `Docker-Content-Digest`.";
    "end-2/get-length", "end-2", X, "A successful response MUST contain the size in bytes of the uploaded blob or manifest in the header `Content-Length`.";
    "end-2/head-200", "end-2", X, "A HEAD request to an existing blob or manifest URL MUST return `200 OK`.";
    "end-2/head-digest", "end-2", X, "A successful response MUST contain the digest of the uploaded blob or manifest in the header `Docker-Content-Digest`.";
    "end-2/head-length", "end-2", X, "A successful response MUST contain the size in bytes of the uploaded blob or manifest in the header `Content-Length`.";
    "end-2/digest-algorithm", "end-2", V, "If present, the value of this header MUST be a digest matching that of the response body.";
    "end-2/404", "end-2", X, "If the blob is not found in the repository, the response code MUST be `404 Not Found`.";
    "end-2/range-206", "end-2", X, "A registry SHOULD support the `Range` request header in accordance with [RFC 9110 (section 14)](https://www.rfc-editor.org/rfc/rfc9110#section-14).";
    "end-2/range-ignored", "end-2", V, "A registry SHOULD support the `Range` request header in accordance with [RFC 9110 (section 14)](https://www.rfc-editor.org/rfc/rfc9110#section-14).";
    "end-2/invalid-digest", "end-2", V, "If the blob is not found in the repository, the response code MUST be `404 Not Found`.";
    // ---- end-3 ----
    "end-3/get-200", "end-3", X, "A GET request to an existing manifest URL MUST provide the expected manifest, with a response code that MUST be `200 OK`.";
    "end-3/get-body", "end-3", X, "A GET request to an existing manifest URL MUST provide the expected manifest, with a response code that MUST be `200 OK`.";
    "end-3/digest", "end-3", X, "A successful response MUST contain the digest of the uploaded blob in the header `Docker-Content-Digest`.";
    "end-3/digest-algorithm", "end-3", V, "If the digest does differ, it MAY be the case that the hashing algorithms used do not match.";
    "end-3/head-200", "end-3", X, "A HEAD request to an existing blob or manifest URL MUST return `200 OK`.";
    "end-3/head-length", "end-3", X, "A successful response MUST contain the size in bytes of the uploaded blob or manifest in the header `Content-Length`.";
    "end-3/content-type", "end-3", V, "The `Content-Type` header SHOULD match what the client [pushed as the manifest's `Content-Type`](#pushing-manifests).";
    "end-3/404", "end-3", X, "If the manifest is not found in the repository, the response code MUST be `404 Not Found`.";
    "end-3/invalid-reference", "end-3", V, "The `<tag-or-digest>` MUST NOT be in any other format.";
    // ---- end-4 ----
    "end-4a/post-202", "end-4a", X, "Upon success, the response MUST have a code of `202 Accepted`, and MUST include the following header:";
    "end-4a/location", "end-4a", X, "Upon success, the response MUST have a code of `202 Accepted`, and MUST include the following header:";
    "end-4b/single-post-201", "end-4b", X, "Successful completion of the request MUST return a `201 Created` and MUST include the following header:";
    "end-4b/single-post-unsupported", "end-4b", U, "Registries that do not support single request monolithic uploads SHOULD return a `202 Accepted` status code and `Location` header and clients SHOULD proceed with a subsequent PUT request, as described by the [POST then PUT upload method](#post-then-put).";
    "end-4b/location", "end-4b", X, "Successful completion of the request MUST return a `201 Created` and MUST include the following header:";
    "end-4c/algo-unsupported", "end-4c", U, "In each implementation, if the client provided digest is invalid or uses an unsupported algorithm, the registry SHOULD respond with a response code `400 Bad Request`.";
    "blob/bad-digest-400", "end-6", V, "In each implementation, if the client provided digest is invalid or uses an unsupported algorithm, the registry SHOULD respond with a response code `400 Bad Request`.";
    "blob/bad-digest-accepted", "end-6", X, "The closing `PUT` request MUST include the `<digest>` of the whole blob (not the final chunk) as a query parameter.";
    // ---- end-5 ----
    "end-5/patch-202", "end-5", X, "The response for each successful chunk upload MUST be `202 Accepted`, and MUST have the following headers:";
    "end-5/location", "end-5", X, "The response for each successful chunk upload MUST be `202 Accepted`, and MUST have the following headers:";
    "end-5/range", "end-5", X, "The `<end-of-range>` value is the position of the last uploaded byte of the blob, matching the end value of the `Content-Range` in the request.";
    "end-5/out-of-order-416", "end-5", X, "If a chunk is uploaded out of order, the registry MUST respond with a `416 Requested Range Not Satisfiable` code.";
    "upload/unknown-session", "end-5", V, "The `<blob-push-location>` refers to the URL obtained from the preceding `POST` request.";
    // ---- end-6 ----
    "end-6/put-201", "end-6", X, "The response to a successful closing of the session MUST be `201 Created`, and MUST contain the following header:";
    "end-6/location", "end-6", X, "Upon successful completion of the request, the response MUST have code `201 Created` and MUST have the following header:";
    // ---- end-7 ----
    "end-7/put-201", "end-7a", X, "Upon a successful upload, the registry MUST return response code `201 Created`, and MUST have the following header:";
    "end-7/location", "end-7a", X, "Upon a successful upload, the registry MUST return response code `201 Created`, and MUST have the following header:";
    "end-7/digest", "end-7a", X, "The Docker-Content-Digest header returns the digest of the uploaded blob, and MUST be equal to the client provided digest.";
    "end-7/oci-subject", "end-7a", X, "When processing a request for an image manifest with the `subject` field, a registry implementation that supports the [referrers API](#listing-referrers) MUST respond with the response header `OCI-Subject: <subject digest>` to indicate to the client that the registry processed the request's `subject`.";
    "end-7/oci-subject-unsupported", "end-7a", U, "When processing a request for an image manifest with the `subject` field, a registry implementation that supports the [referrers API](#listing-referrers) MUST respond with the response header `OCI-Subject: <subject digest>` to indicate to the client that the registry processed the request's `subject`.";
    "end-7b/oci-tag", "end-7b", X, "MUST include an `OCI-Tag` response header, in accordance with [RFC 9110 (section 5)](https://www.rfc-editor.org/rfc/rfc9110#section-5) semantics, for each accepted tag.";
    "end-7b/tags-unsupported", "end-7b", U, "When pushing a manifest by digest, the registry MAY support the pushing of tags specified by addition of `tag` query parameters.";
    "end-7/algo-unsupported", "end-7a", U, "In each implementation, if the client provided digest is invalid or uses an unsupported algorithm, the registry SHOULD respond with a response code `400 Bad Request`.";
    "end-7/bad-reference-accepted", "end-7a", X, "`<name>` is the namespace of the repository, and the `<tag-or-digest>` MUST be either a) a digest or b) a tag.";
    "end-7/reject-status", "end-7a", V, "A registry MAY reject a manifest uploaded to the manifest endpoint with descriptors in other fields that reference a manifest or blob that does not exist in the registry.";
    "end-7/content-type-ignored", "end-7a", V, "If a manifest includes a `mediaType` field, clients MUST set the `Content-Type` header to the value specified by the `mediaType` field.";
    "end-7/missing-refs-accepted", "end-7a", V, "A registry MAY reject a manifest uploaded to the manifest endpoint with descriptors in other fields that reference a manifest or blob that does not exist in the registry.";
    "end-7/manifest-blob-unknown", "end-7a", X, "When a manifest is rejected for this reason, it MUST result in one or more `MANIFEST_BLOB_UNKNOWN` errors <sup>[code-1](#error-codes)</sup>.";
    "end-7/invalid-rejected", "end-7a", X, "| code-6  | `MANIFEST_INVALID`      | manifest invalid                                           |";
    "end-7/invalid-accepted", "end-7a", V, "| code-6  | `MANIFEST_INVALID`      | manifest invalid                                           |";
    "end-7/oversized-413", "end-7a", V, "A registry that enforces this limit SHOULD respond to a request to push a manifest over this limit with a response code `413 Payload Too Large`.";
    // ---- end-8 ----
    "end-8a/200", "end-8a", X, "Assuming a repository is found, this request MUST return a `200 OK` response code.";
    "end-8a/unknown-repo", "end-8a", V, "Assuming a repository is found, this request MUST return a `200 OK` response code.";
    "end-7b/tags-rejected", "end-7b", U, "When pushing a manifest by digest, the registry MAY support the pushing of tags specified by addition of `tag` query parameters.";
    "end-8a/json", "end-8a", X, "Upon success, the response MUST be a json body in the following format:";
    "end-8a/name", "end-8a", X, "`<name>` is the namespace of the repository, and `<tag1>`, `<tag2>`, and `<tag3>` are each tags on the repository.";
    "end-8a/order", "end-8a", X, "If the list is not empty, the tags MUST be in lexical (i.e. case-insensitive alphanumeric order) or \"ASCIIbetical\" ([Go's `sort.Strings`](https://pkg.go.dev/sort#Strings)) order.";
    "end-8a/tags", "end-8a", X, "`<name>` is the namespace of the repository, and `<tag1>`, `<tag2>`, and `<tag3>` are each tags on the repository.";
    "end-8b/n-zero", "end-8b", X, "When `n` is zero, this endpoint MUST return an empty list, and MUST NOT include a `Link` header.";
    "end-8b/n-max", "end-8b", X, "A request of this sort will return up to `<int>` tags, beginning non-inclusively with `<tagname>`.";
    "end-8b/n-fewer", "end-8b", X, "The response to such a request MAY return fewer than `<int>` results, but only when the total number of tags attached to the repository is less than `<int>` or a `Link` header is provided.";
    "end-8b/content", "end-8b", X, "That is to say, `<tagname>` will not be included in the results, but up to `<int>` tags *after* `<tagname>` will be returned.";
    "end-8b/pagination", "end-8b", X, "A `Link` header MAY be included in the response when additional tags are available.";
    // ---- end-9 / end-10 ----
    "end-9/202", "end-9", X, "Upon success, the registry MUST respond with a `202 Accepted` code.";
    "end-9/404", "end-9", X, "Once deleted, a `GET` to `/v2/<name>/manifests/<digest>` and any tag pointing to that digest will return a 404.";
    "end-9/delete-disabled", "end-9", U, "If manifest deletion is disabled, the registry MUST respond with either a `400 Bad Request` or a `405 Method Not Allowed`.";
    "end-9/tag-delete-unsupported", "end-9", U, "Similarly, a registry MAY implement tag deletion, while others MAY allow deletion only by manifest.";
    "end-10/202", "end-10", X, "Upon success, the registry MUST respond with code `202 Accepted`.";
    "end-10/404", "end-10", X, "If the blob is not found, a `404 Not Found` code MUST be returned.";
    "end-10/delete-disabled", "end-10", U, "If blob deletion is disabled, the registry MUST respond with either a `400 Bad Request` or a `405 Method Not Allowed`.";
    // ---- end-11 ----
    "end-11/mount-201", "end-11", X, "The response to a successful mount MUST be `201 Created`, and MUST contain the following header:";
    "end-11/location", "end-11", X, "The response to a successful mount MUST be `201 Created`, and MUST contain the following header:";
    "end-11/mount-202", "end-11", V, "Alternatively, if a registry does not support cross-repository mounting or is unable to mount the requested blob, it SHOULD return a `202`.";
    "end-11/cross-mount", "end-11", V, "The registry MAY treat the `from` parameter as optional, and it MAY cross-mount the blob if it can be found.";
    "end-11/mount-404", "end-11", V, "Alternatively, if a registry does not support cross-repository mounting or is unable to mount the requested blob, it SHOULD return a `202`.";
    "end-11/phantom-mount", "end-11", X, "If a necessary blob exists already in another repository within the same registry, it can be mounted into a different repository via a `POST`";
    // ---- end-12 ----
    "end-12a/200", "end-12a", X, "Assuming a repository is found, this request MUST return a `200 OK` response code.";
    "end-12a/unsupported", "end-12a", U, "If the registry supports the referrers API, the registry MUST NOT return a `404 Not Found` to a referrers API requests.";
    "end-12a/invalid-400", "end-12a", X, "If the request is invalid, such as a `<digest>` with an invalid syntax, a `400 Bad Request` MUST be returned.";
    "end-12a/content-type", "end-12a", X, "The `Content-Type` header MUST be set to `application/vnd.oci.image.index.v1+json`.";
    "end-12a/content", "end-12a", X, "Each descriptor is of an image manifest or index in the same `<name>` namespace with a `subject` field that specifies the value of `<digest>`.";
    "end-12b/filter-not-applied", "end-12b", V, "The registry SHOULD support filtering on `artifactType`.";
    "end-12b/filters-applied-header", "end-12b", X, "If filtering is requested and applied, the response MUST include a header `OCI-Filters-Applied: artifactType` denoting that an `artifactType` filter was applied.";
    // ---- end-13 / end-14 ----
    "end-13/204", "end-13", X, "The response to an active upload `<blob-push-location>` MUST be a `204 No Content` response code, and MUST have the following headers:";
    "end-13/location", "end-13", X, "The response to an active upload `<blob-push-location>` MUST be a `204 No Content` response code, and MUST have the following headers:";
    "end-13/range", "end-13", X, "The `<end-of-range>` value is the position of the last uploaded byte of the blob.";
    "end-14/204", "end-14", V, "If successful, the response SHOULD be a `204 No Content` response code.";
    "end-14/status", "end-14", X, "If successful, the response SHOULD be a `204 No Content` response code.";
    // ---- names ----
    "name/invalid", "any", X, "Throughout this document, `<name>` MUST match the following regular expression:";
    "name/invalid-status", "any", V, "Throughout this document, `<name>` MUST match the following regular expression:";
    // ---- catalog (not in the spec: never a violation) ----
    "catalog/unsupported", "catalog", U, "(not in the distribution spec) `GET /v2/_catalog` is a common extension.";
    "catalog/status", "catalog", V, "(not in the distribution spec) `GET /v2/_catalog` is a common extension.";
    "catalog/missing-repo", "catalog", V, "(not in the distribution spec) `GET /v2/_catalog` is a common extension.";
    // ---- differential (both sides accepted by the model) ----
    "diff/status", "any", V, "The status codes documented in this specification are those returned after any redirects have been followed.";
    "diff/header", "any", V, "Where this specification does not define specific behavior, implementations SHOULD follow the HTTP semantics defined in [RFC 9110](https://www.rfc-editor.org/rfc/rfc9110).";
    "diff/location", "any", V, "Optionally, the location MAY be absolute (containing the protocol and/or hostname), or it MAY be relative (containing just the URL path).";
    "diff/error-code", "any", V, "The `code` field MUST be a unique identifier, containing only uppercase alphabetic characters and underscores.";
    "diff/error-body", "any", V, "A `4XX` response code from the registry MAY return a body in any format.";
    "diff/body", "any", V, "Where this specification does not define specific behavior, implementations SHOULD follow the HTTP semantics defined in [RFC 9110](https://www.rfc-editor.org/rfc/rfc9110).";
    "diff/exchange", "any", V, "Registries that do not support single request monolithic uploads SHOULD return a `202 Accepted` status code and `Location` header and clients SHOULD proceed with a subsequent PUT request, as described by the [POST then PUT upload method](#post-then-put).";
}

static FALLBACK_RULE: Rule = Rule {
    id: "unknown",
    endpoint: "any",
    class: Class::Variation,
    spec: "",
};

/// Looks a rule up by id (a fallback `Variation` for an unknown id; a unit test keeps the table
/// complete).
pub fn rule(id: &str) -> &'static Rule {
    RULES.iter().find(|r| r.id == id).unwrap_or(&FALLBACK_RULE)
}

/// The error codes of the spec's table (code-1 ... code-14).
pub const SPEC_ERROR_CODES: [&str; 14] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

// ------------------------------------------------------------------------------------------
// Expectations
// ------------------------------------------------------------------------------------------

/// A check applied when the observed status equals a given code.
#[derive(Clone, Debug)]
enum Check {
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
    /// algorithm) is reported under `alt_rule`.
    Digest {
        value: String,
        same_bytes: Vec<String>,
        rule: &'static str,
        alt_rule: &'static str,
    },
    /// The response body is exactly these bytes (len + sha256 hex).
    Content {
        len: u64,
        sha256: String,
        rule: &'static str,
    },
    /// A tag list response.
    Tags(TagsCheck),
    /// A referrers response.
    Referrers {
        expected: Vec<ReferrerFacts>,
        unfiltered: Vec<ReferrerFacts>,
        filtered: bool,
    },
    /// Error body contains this code.
    ErrorCode {
        code: &'static str,
        rule: &'static str,
    },
    /// The catalog lists these repositories.
    Catalog { repos: Vec<String> },
}

#[derive(Clone, Debug)]
struct TagsCheck {
    repo: Repo,
    /// The model's tags (ASCII order); narrowed to those after `last` when checking.
    remaining: Vec<String>,
    last: Option<String>,
    /// Whether the whole list is expected (no `n`, no `last`).
    whole: bool,
    n: Option<u32>,
    /// One page of a paged listing: only order and size are checked here.
    page_only: bool,
}

/// What one exchange must look like.
#[derive(Clone, Debug)]
struct Exp {
    /// Status ranges (inclusive) that fully conform.
    ok: Vec<(u16, u16)>,
    /// Rule named when the status is neither ok nor an alternative.
    fail: &'static str,
    /// Tolerated status ranges, each with the rule (and so the class) it is reported under.
    alts: Vec<(u16, u16, &'static str)>,
    /// Checks, each applied when the observed status equals its code.
    checks: Vec<(u16, Check)>,
    /// A dropped connection is acceptable (a server may answer 413 and close the connection
    /// before reading an oversized body).
    tolerate_transport: bool,
}

impl Exp {
    fn new(ok: &[u16], fail: &'static str) -> Exp {
        Exp {
            ok: ok.iter().map(|s| (*s, *s)).collect(),
            fail,
            alts: Vec::new(),
            checks: Vec::new(),
            tolerate_transport: false,
        }
    }
    fn range(lo: u16, hi: u16, fail: &'static str) -> Exp {
        Exp {
            ok: vec![(lo, hi)],
            fail,
            alts: Vec::new(),
            checks: Vec::new(),
            tolerate_transport: false,
        }
    }
    fn alt(mut self, codes: &[u16], rule: &'static str) -> Exp {
        for c in codes {
            self.alts.push((*c, *c, rule));
        }
        self
    }
    fn alt_range(mut self, lo: u16, hi: u16, rule: &'static str) -> Exp {
        self.alts.push((lo, hi, rule));
        self
    }
    fn check(mut self, status: u16, c: Check) -> Exp {
        self.checks.push((status, c));
        self
    }
    fn location(self, status: u16, rule: &'static str) -> Exp {
        self.check(
            status,
            Check::HeaderPresent {
                name: "location",
                rule,
            },
        )
    }
    fn is_ok(&self, s: u16) -> bool {
        self.ok.iter().any(|(lo, hi)| (*lo..=*hi).contains(&s))
    }
    fn ok_text(&self) -> String {
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
}

/// A symbol whose state on a target may no longer match the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Sym {
    Blob(Repo, BlobId),
    /// Read-only: any repository's copy of the blob.
    BlobAny(BlobId),
    Manifest(Repo, ManifestId),
    Tags(Repo),
    Referrers(Repo, ManifestId),
    Session(Session),
    RepoExists(Repo),
}

fn tainted(set: &BTreeSet<Sym>, reads: &[Sym]) -> bool {
    reads.iter().any(|r| match r {
        Sym::BlobAny(b) => set.iter().any(|s| matches!(s, Sym::Blob(_, b2) if b2 == b)),
        other => set.contains(other),
    })
}

/// Symbols an op reads and writes, given the model state before it.
fn footprint(op: &Op, st: &ModelState, content: &Content) -> (Vec<Sym>, Vec<Sym>) {
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    let creates = |r: Repo, w: &mut Vec<Sym>| {
        if !st.repo_exists(r) {
            w.push(Sym::RepoExists(r));
        }
    };
    let manifest_reads = |r: Repo, reference: &Reference, reads: &mut Vec<Sym>| match reference {
        Reference::Digest(m) => reads.push(Sym::Manifest(r, *m)),
        Reference::Tag(_) | Reference::Raw(_) => {
            reads.push(Sym::Tags(r));
            if let Some(m) = st.resolve(r, reference) {
                reads.push(Sym::Manifest(r, m));
            }
        }
    };
    match op {
        Op::CheckApi | Op::Catalog { .. } | Op::BadName { .. } | Op::GetBlobRaw { .. } => {}
        Op::PushBlob { repo, blob, .. } => {
            writes.push(Sym::Blob(*repo, *blob));
            creates(*repo, &mut writes);
        }
        Op::StartUpload { session, .. } => writes.push(Sym::Session(*session)),
        Op::PatchChunk { session, .. }
        | Op::UploadStatus { session }
        | Op::CancelUpload { session } => {
            reads.push(Sym::Session(*session));
            writes.push(Sym::Session(*session));
        }
        Op::CompleteUpload { session, .. } => {
            reads.push(Sym::Session(*session));
            writes.push(Sym::Session(*session));
            if let Some(s) = st.session(*session) {
                writes.push(Sym::Blob(s.repo, s.blob));
                creates(s.repo, &mut writes);
            }
        }
        Op::MountBlob { repo, blob, from } => {
            match from {
                Some(f) => reads.push(Sym::Blob(*f, *blob)),
                None => reads.push(Sym::BlobAny(*blob)),
            }
            writes.push(Sym::Blob(*repo, *blob));
            creates(*repo, &mut writes);
        }
        Op::HeadBlob { repo, blob } | Op::GetBlob { repo, blob, .. } => {
            reads.push(Sym::Blob(*repo, *blob))
        }
        Op::DeleteBlob { repo, blob } => {
            reads.push(Sym::Blob(*repo, *blob));
            writes.push(Sym::Blob(*repo, *blob));
        }
        Op::HeadManifest { repo, reference } | Op::GetManifest { repo, reference } => {
            manifest_reads(*repo, reference, &mut reads)
        }
        Op::PushManifest {
            repo,
            manifest,
            reference,
            tags,
            ..
        } => {
            for b in content.manifest_blobs(*manifest) {
                reads.push(Sym::Blob(*repo, *b));
            }
            for c in content.manifest_children(*manifest) {
                reads.push(Sym::Manifest(*repo, *c));
            }
            writes.push(Sym::Manifest(*repo, *manifest));
            if !matches!(reference, Reference::Digest(_)) || !tags.is_empty() {
                writes.push(Sym::Tags(*repo));
            }
            if let Some(s) = content.manifest_subject(*manifest) {
                writes.push(Sym::Referrers(*repo, s));
            }
            creates(*repo, &mut writes);
        }
        Op::PushBadManifest {
            repo, reference, ..
        } => {
            if !matches!(reference, Reference::Digest(_)) {
                writes.push(Sym::Tags(*repo));
            }
        }
        Op::ListTags { repo, .. } | Op::ListTagsPaged { repo, .. } => {
            reads.push(Sym::Tags(*repo));
            reads.push(Sym::RepoExists(*repo));
        }
        Op::ListReferrers { repo, subject, .. } => {
            reads.push(Sym::RepoExists(*repo));
            if let Reference::Digest(m) = subject {
                reads.push(Sym::Referrers(*repo, *m));
            }
        }
        Op::DeleteManifest { repo, reference } => {
            manifest_reads(*repo, reference, &mut reads);
            writes.push(Sym::Tags(*repo));
            if let Some(m) = st.resolve(*repo, reference) {
                writes.push(Sym::Manifest(*repo, m));
                if let Some(s) = content.manifest_subject(m) {
                    writes.push(Sym::Referrers(*repo, s));
                }
            }
        }
    }
    (reads, writes)
}

fn is_mutating(op: &Op) -> bool {
    !matches!(
        op,
        Op::CheckApi
            | Op::Catalog { .. }
            | Op::BadName { .. }
            | Op::GetBlobRaw { .. }
            | Op::HeadBlob { .. }
            | Op::GetBlob { .. }
            | Op::HeadManifest { .. }
            | Op::GetManifest { .. }
            | Op::ListTags { .. }
            | Op::ListTagsPaged { .. }
            | Op::ListReferrers { .. }
            | Op::UploadStatus { .. }
    )
}

/// Whether a divergence in this field means the target's state may differ from the model's
/// (a different status or a missing step; an `OCI-Tag` mismatch means other tags were created).
fn changes_state(field: &str) -> bool {
    field == "status" || field.starts_with("exchange:") || field == "header:oci-tag"
}

/// Per-target facts gathered from the whole case before checking.
#[derive(Clone, Debug, Default)]
struct TargetFacts {
    /// `Some(true)` when any referrers request answered 200, `Some(false)` when one answered 404.
    referrers: Option<bool>,
    /// The case namespace, from the first request URL (`/v2/<ns>/r<k>/...`).
    namespace: Option<String>,
}

fn target_facts(outcome: &CaseOutcome, t: usize) -> TargetFacts {
    let mut f = TargetFacts::default();
    for op in &outcome.ops {
        for ex in op.per_target.get(t).into_iter().flatten() {
            if ex.endpoint.starts_with("end-12") {
                match ex.observation.status {
                    200 => f.referrers = Some(true),
                    404 if f.referrers.is_none() => f.referrers = Some(false),
                    _ => {}
                }
            }
            if f.namespace.is_none() {
                f.namespace = namespace_of(&ex.request.url);
            }
        }
    }
    f
}

/// `<ns>` of a URL whose path is `/v2/<ns>/r<k>/...`.
fn namespace_of(url: &str) -> Option<String> {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| url.to_string());
    let rest = path.split("/v2/").nth(1)?;
    let mut parts = rest.split('/');
    let ns = parts.next()?;
    let repo = parts.next()?;
    (repo.starts_with('r') && repo[1..].chars().all(|c| c.is_ascii_digit()) && repo.len() > 1)
        .then(|| ns.to_string())
}

fn header<'a>(o: &'a Observation, name: &str) -> Option<&'a str> {
    o.headers.get(name).map(String::as_str)
}

fn strip_sha(s: &str) -> &str {
    s.strip_prefix("sha256:").unwrap_or(s)
}

fn media_type_base(s: &str) -> &str {
    s.split(';').next().unwrap_or("").trim()
}

fn body_text(b: &BodyFacts) -> String {
    match b {
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

fn field_value(o: &Observation, field: &str) -> String {
    if field == "status" {
        return match &o.transport_error {
            Some(e) if o.status == 0 => format!("no response ({e})"),
            _ => o.status.to_string(),
        };
    }
    if let Some(h) = field.strip_prefix("header:") {
        return header(o, h).unwrap_or("<absent>").to_string();
    }
    if field == "body" {
        return body_text(&o.body);
    }
    String::new()
}

fn blob_len(content: &Content, b: BlobId) -> u64 {
    content.blob(b).map(|x| x.len() as u64).unwrap_or(0)
}

fn blob_sha(content: &Content, b: BlobId) -> String {
    content.blob(b).map(|x| sha256_hex(x)).unwrap_or_default()
}

/// The expectation for one exchange of an op, or `None` when the model has no opinion.
struct OpCtx {
    /// Bytes acknowledged so far in a composite push (for the PATCH `Range`).
    sent: u64,
}

/// `expect_inner`, plus: an op naming sha512 content may be answered 400 by a registry that
/// does not know the algorithm (reported as unsupported).
fn expect_exchange(
    op: &Op,
    st: &ModelState,
    content: &Content,
    ex: &Exchange,
    ctx: &mut OpCtx,
    facts: &TargetFacts,
    is_reference: bool,
) -> Option<Exp> {
    let e = expect_inner(op, st, content, ex, ctx, facts, is_reference)?;
    let sha512_blob = |b: &BlobId| content.blob_algo(*b) == Some(DigestAlgo::Sha512);
    let sha512_ref = |r: &Reference| matches!(classify_reference(r, content), RefKind::Digest(d) if d.starts_with("sha512:"));
    let sha512 = match op {
        Op::HeadBlob { blob, .. }
        | Op::GetBlob { blob, .. }
        | Op::DeleteBlob { blob, .. }
        | Op::MountBlob { blob, .. } => sha512_blob(blob),
        Op::HeadManifest { reference, .. }
        | Op::GetManifest { reference, .. }
        | Op::DeleteManifest { reference, .. } => sha512_ref(reference),
        Op::ListReferrers { subject, .. } => sha512_ref(subject),
        _ => false,
    };
    Some(if sha512 && !e.is_ok(400) {
        Exp {
            alts: std::iter::once((400, 400, "end-4c/algo-unsupported"))
                .chain(e.alts.iter().copied())
                .collect(),
            ..e
        }
    } else {
        e
    })
}

fn expect_inner(
    op: &Op,
    st: &ModelState,
    content: &Content,
    ex: &Exchange,
    ctx: &mut OpCtx,
    facts: &TargetFacts,
    is_reference: bool,
) -> Option<Exp> {
    let method = ex.request.method.to_ascii_uppercase();
    match op {
        Op::CheckApi => Some(Exp::new(&[200], "end-1/200")),
        Op::PushBlob {
            repo: _,
            blob,
            method: pm,
            digest,
        } => {
            let sha512 = content.blob_algo(*blob) == Some(DigestAlgo::Sha512);
            let correct = *digest == DigestChoice::Correct;
            match method.as_str() {
                "POST" => {
                    if matches!(pm, PushMethod::SinglePost) {
                        let mut e = if correct {
                            Exp::new(&[201], "end-4b/single-post-201")
                                .location(201, "end-4b/location")
                        } else {
                            Exp::new(&[400], "blob/bad-digest-400")
                                .alt_range(200, 201, "blob/bad-digest-accepted")
                                .alt_range(401, 499, "blob/bad-digest-400")
                        };
                        e = e
                            .alt(&[202], "end-4b/single-post-unsupported")
                            .location(202, "end-4a/location");
                        if sha512 && correct {
                            e = e.alt(&[400], "end-4c/algo-unsupported");
                        }
                        Some(e)
                    } else {
                        let mut e =
                            Exp::new(&[202], "end-4a/post-202").location(202, "end-4a/location");
                        if sha512 {
                            e = e.alt(&[400], "end-4c/algo-unsupported");
                        }
                        Some(e)
                    }
                }
                "PATCH" => Some(patch_exp(ex, ctx)),
                "PUT" => {
                    let mut e = if correct {
                        Exp::new(&[201], "end-6/put-201").location(201, "end-6/location")
                    } else {
                        Exp::new(&[400], "blob/bad-digest-400")
                            .alt_range(200, 299, "blob/bad-digest-accepted")
                            .alt_range(401, 499, "blob/bad-digest-400")
                    };
                    if sha512 && correct {
                        e = e.alt(&[400], "end-4c/algo-unsupported");
                    }
                    Some(e)
                }
                _ => None,
            }
        }
        Op::StartUpload {
            digest_algorithm, ..
        } => {
            if method != "POST" {
                return None;
            }
            let mut e = Exp::new(&[202], "end-4a/post-202").location(202, "end-4a/location");
            if *digest_algorithm == Some(DigestAlgo::Sha512) {
                e = e.alt(&[400], "end-4c/algo-unsupported");
            }
            Some(e)
        }
        Op::PatchChunk {
            session,
            start,
            end,
            streamed,
        } => {
            let Some(s) = st.session(*session) else {
                return Some(unknown_session());
            };
            let size = blob_len(content, s.blob) as u32;
            ctx.sent = s.offset as u64;
            if *streamed {
                let len = end.saturating_sub(*start);
                (len > 0 && s.offset.saturating_add(len) <= size).then(|| patch_exp(ex, ctx))
            } else if *end <= *start || *end > size {
                // Degenerate (empty or beyond the blob): the executor clamps the body, so the
                // request is inconsistent; the spec says nothing about it.
                None
            } else if *start != s.offset {
                Some(Exp::new(&[416], "end-5/out-of-order-416"))
            } else {
                Some(patch_exp(ex, ctx))
            }
        }
        Op::CompleteUpload {
            session,
            rest_in_body,
            digest,
        } => {
            let Some(s) = st.session(*session) else {
                return Some(unknown_session());
            };
            let sha512 = content.blob_algo(s.blob) == Some(DigestAlgo::Sha512)
                || s.algo == Some(DigestAlgo::Sha512);
            if st.completes(*session, *rest_in_body, *digest, content) {
                let mut e = Exp::new(&[201], "end-6/put-201").location(201, "end-6/location");
                if sha512 {
                    e = e.alt(&[400], "end-4c/algo-unsupported");
                }
                Some(e)
            } else {
                Some(
                    Exp::new(&[400], "blob/bad-digest-400")
                        .alt_range(200, 299, "blob/bad-digest-accepted")
                        .alt_range(401, 499, "blob/bad-digest-400"),
                )
            }
        }
        Op::UploadStatus { session } => {
            let Some(s) = st.session(*session) else {
                return Some(unknown_session());
            };
            let mut e = Exp::new(&[204], "end-13/204").location(204, "end-13/location");
            if s.offset > 0 {
                e = e.check(
                    204,
                    Check::HeaderEq {
                        name: "range",
                        value: format!("0-{}", s.offset - 1),
                        rule: "end-13/range",
                    },
                );
            }
            Some(e)
        }
        Op::CancelUpload { session } => {
            if method != "DELETE" {
                return None;
            }
            if st.session(*session).is_some() {
                Some(Exp::new(&[204], "end-14/status").alt_range(200, 499, "end-14/204"))
            } else {
                Some(unknown_session())
            }
        }
        Op::MountBlob { repo, blob, from } => {
            if method != "POST" {
                return None;
            }
            let succeeds = st.mount_succeeds(*repo, *blob, *from);
            let e = if succeeds && from.is_some() {
                Exp::new(&[201], "end-11/mount-201").alt(&[202], "end-11/mount-202")
            } else if succeeds {
                Exp::new(&[201, 202], "end-11/mount-201")
            } else if st.has_blob_anywhere(*blob) {
                Exp::new(&[202], "end-11/mount-201")
                    .alt(&[201], "end-11/cross-mount")
                    .alt(&[404], "end-11/mount-404")
            } else {
                Exp::new(&[202], "end-11/phantom-mount").alt(&[404], "end-11/mount-404")
            };
            Some(
                e.location(201, "end-11/location")
                    .location(202, "end-4a/location"),
            )
        }
        Op::HeadBlob { repo, blob } => Some(if st.has_blob(*repo, *blob) {
            Exp::new(&[200], "end-2/head-200")
                .check(
                    200,
                    digest_check(
                        content.blob_digest(*blob).unwrap_or_default(),
                        content.blob(*blob).map(|b| &b[..]).unwrap_or_default(),
                        "end-2/head-digest",
                        "end-2/digest-algorithm",
                    ),
                )
                .check(
                    200,
                    Check::HeaderEq {
                        name: "content-length",
                        value: blob_len(content, *blob).to_string(),
                        rule: "end-2/head-length",
                    },
                )
        } else {
            Exp::new(&[404], "end-2/404")
        }),
        Op::GetBlob { repo, blob, range } => {
            if !st.has_blob(*repo, *blob) {
                return Some(Exp::new(&[404], "end-2/404"));
            }
            let digest = content.blob_digest(*blob).unwrap_or_default().to_string();
            let len = blob_len(content, *blob);
            let full = |e: Exp| {
                e.check(
                    200,
                    digest_check(
                        &digest,
                        content.blob(*blob).map(|b| &b[..]).unwrap_or_default(),
                        "end-2/get-digest",
                        "end-2/digest-algorithm",
                    ),
                )
                .check(
                    200,
                    Check::Content {
                        len,
                        sha256: blob_sha(content, *blob),
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
            };
            Some(match range {
                None => full(Exp::new(&[200], "end-2/get-200")),
                Some((a, b)) => {
                    let (a, b) = (*a as u64, b.map(|b| b as u64));
                    if b.is_some_and(|b| b < a) {
                        // Syntactically invalid range: ignored per RFC 9110.
                        full(Exp::new(&[200], "end-2/get-200").alt(&[416], "end-2/range-ignored"))
                    } else if a >= len {
                        full(Exp::new(&[416], "end-2/range-206").alt(&[200], "end-2/range-ignored"))
                    } else {
                        let last = b.unwrap_or(len - 1).min(len - 1);
                        let slice = content
                            .blob(*blob)
                            .map(|x| x.slice(a as usize..=last as usize))
                            .unwrap_or_default();
                        full(
                            Exp::new(&[206], "end-2/range-206")
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
            })
        }
        Op::GetBlobRaw { repo, digest } => {
            let found = content
                .blob_by_digest(digest)
                .filter(|b| st.has_blob(*repo, *b));
            Some(match found {
                Some(b) => Exp::new(&[200], "end-2/get-200").check(
                    200,
                    Check::Content {
                        len: blob_len(content, b),
                        sha256: blob_sha(content, b),
                        rule: "end-2/get-body",
                    },
                ),
                None if is_valid_digest(digest) => {
                    Exp::new(&[404], "end-2/404").alt(&[400], "end-2/invalid-digest")
                }
                None => Exp::new(&[400, 404], "end-2/404"),
            })
        }
        Op::HeadManifest { repo, reference } | Op::GetManifest { repo, reference } => {
            let head = matches!(op, Op::HeadManifest { .. });
            let Some(m) = st.resolve(*repo, reference) else {
                return Some(match classify_reference(reference, content) {
                    RefKind::Invalid(_) => Exp::new(&[400, 404], "end-3/404").alt_range(
                        401,
                        499,
                        "end-3/invalid-reference",
                    ),
                    _ => Exp::new(&[404], "end-3/404"),
                });
            };
            let digest = st.resolve_digest(*repo, reference).unwrap_or_default();
            let bytes = content.manifest(m).cloned().unwrap_or_default();
            let mut e = Exp::new(
                &[200],
                if head {
                    "end-3/head-200"
                } else {
                    "end-3/get-200"
                },
            )
            .check(
                200,
                digest_check(&digest, &bytes, "end-3/digest", "end-3/digest-algorithm"),
            )
            .check(
                200,
                Check::HeaderEq {
                    name: "content-type",
                    value: content
                        .manifest_media_type(m)
                        .unwrap_or_default()
                        .to_string(),
                    rule: "end-3/content-type",
                },
            );
            e = if head {
                e.check(
                    200,
                    Check::HeaderEq {
                        name: "content-length",
                        value: bytes.len().to_string(),
                        rule: "end-3/head-length",
                    },
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
            };
            Some(e)
        }
        Op::PushManifest {
            repo,
            manifest,
            reference,
            tags,
            content_type,
        } => {
            if method != "PUT" {
                return None;
            }
            let m = *manifest;
            let valid = st.manifest_push_valid(*repo, m, reference, tags, content_type, content);
            let kind = classify_reference(reference, content);
            if valid {
                let stored = match &kind {
                    RefKind::Digest(d) => d.clone(),
                    _ => content.manifest_sha256(m).unwrap_or_default().to_string(),
                };
                let mut e = Exp::new(&[201], "end-7/put-201")
                    .location(201, "end-7/location")
                    .check(
                        201,
                        Check::HeaderEqIfPresent {
                            name: "docker-content-digest",
                            value: stored.clone(),
                            rule: "end-7/digest",
                        },
                    );
                if stored.starts_with("sha512:") {
                    e = e.alt(&[400], "end-7/algo-unsupported");
                }
                if matches!(kind, RefKind::Digest(_)) && !tags.is_empty() {
                    e = e.alt_range(400, 499, "end-7b/tags-rejected");
                }
                let is_image = matches!(
                    content.manifest_media_type(m),
                    Some(crate::content::OCI_MANIFEST) | Some(crate::content::DOCKER_MANIFEST)
                );
                if let (true, Some(s)) = (is_image, content.manifest_subject(m)) {
                    let rule = if is_reference || facts.referrers == Some(true) {
                        "end-7/oci-subject"
                    } else {
                        "end-7/oci-subject-unsupported"
                    };
                    e = e.check(
                        201,
                        Check::HeaderEq {
                            name: "oci-subject",
                            value: content.manifest_digest(s).unwrap_or_default().to_string(),
                            rule,
                        },
                    );
                }
                if matches!(kind, RefKind::Digest(_)) && !tags.is_empty() {
                    let mut want: Vec<String> = tags.clone();
                    want.sort();
                    want.dedup();
                    let present = header(&ex.observation, "oci-tag").is_some();
                    e = e.check(
                        201,
                        if present || is_reference {
                            Check::HeaderEq {
                                name: "oci-tag",
                                value: want.join(", "),
                                rule: "end-7b/oci-tag",
                            }
                        } else {
                            Check::HeaderPresent {
                                name: "oci-tag",
                                rule: "end-7b/tags-unsupported",
                            }
                        },
                    );
                }
                return Some(e);
            }
            let ref_bad = match &kind {
                RefKind::Invalid(_) => true,
                RefKind::Digest(d) => {
                    content.manifest_digest(m) != Some(d.as_str())
                        && content.manifest_sha256(m) != Some(d.as_str())
                }
                RefKind::Tag(_) => false,
            } || tags.iter().any(|t| !is_valid_tag(t));
            Some(if ref_bad {
                Exp::range(400, 499, "end-7/bad-reference-accepted")
            } else if *content_type != ContentTypeChoice::Matching {
                Exp::range(400, 499, "end-7/put-201").alt(&[201], "end-7/content-type-ignored")
            } else {
                Exp::new(&[400], "end-7/reject-status")
                    .alt_range(401, 499, "end-7/reject-status")
                    .alt(&[201], "end-7/missing-refs-accepted")
                    .check(
                        400,
                        Check::ErrorCode {
                            code: "MANIFEST_BLOB_UNKNOWN",
                            rule: "end-7/manifest-blob-unknown",
                        },
                    )
            })
        }
        Op::PushBadManifest { body, .. } => Some(match body {
            BadManifest::Oversized => Exp {
                tolerate_transport: true,
                ..Exp::new(&[413], "end-7/invalid-rejected")
                    .alt_range(400, 499, "end-7/oversized-413")
                    .alt_range(200, 299, "end-7/invalid-accepted")
            },
            _ => Exp::range(400, 499, "end-7/invalid-rejected").alt_range(
                200,
                299,
                "end-7/invalid-accepted",
            ),
        }),
        Op::ListTags { repo, n, last } => {
            if !st.repo_exists(*repo) {
                return Some(Exp::new(&[404], "end-8a/200").alt(&[200], "end-8a/unknown-repo"));
            }
            Some(tags_exp(st, *repo).check(
                200,
                Check::Tags(TagsCheck {
                    repo: *repo,
                    remaining: st.tags(*repo),
                    last: last.clone(),
                    whole: n.is_none() && last.is_none(),
                    n: *n,
                    page_only: false,
                }),
            ))
        }
        Op::ListTagsPaged { repo, n } => {
            if !st.repo_exists(*repo) {
                return Some(Exp::new(&[404], "end-8a/200").alt(&[200], "end-8a/unknown-repo"));
            }
            // Per page: sorted, at most n, only known tags (the concatenation is checked per op).
            Some(tags_exp(st, *repo).check(
                200,
                Check::Tags(TagsCheck {
                    repo: *repo,
                    remaining: st.tags(*repo),
                    last: None,
                    whole: false,
                    n: Some(*n).filter(|n| *n > 0),
                    page_only: true,
                }),
            ))
        }
        Op::ListReferrers {
            repo,
            subject,
            artifact_type,
        } => {
            let unsupported_404 = if facts.referrers == Some(true) || is_reference {
                "end-12a/200"
            } else {
                "end-12a/unsupported"
            };
            match classify_reference(subject, content) {
                RefKind::Digest(d) => {
                    let expected =
                        st.referrers_by_digest(*repo, &d, artifact_type.as_deref(), content);
                    let unfiltered = st.referrers_by_digest(*repo, &d, None, content);
                    let e = if st.repo_exists(*repo) {
                        Exp::new(&[200], "end-12a/200").alt(&[404], unsupported_404)
                    } else {
                        Exp::new(&[200, 404], "end-12a/200")
                    };
                    Some(
                        e.check(
                            200,
                            Check::HeaderEq {
                                name: "content-type",
                                value: OCI_INDEX.to_string(),
                                rule: "end-12a/content-type",
                            },
                        )
                        .check(
                            200,
                            Check::Referrers {
                                expected,
                                unfiltered,
                                filtered: artifact_type.is_some(),
                            },
                        ),
                    )
                }
                _ => Some(Exp::new(&[400], "end-12a/invalid-400").alt(&[404], unsupported_404)),
            }
        }
        Op::Catalog { n } => {
            let mut e = Exp::new(&[200], "catalog/status")
                .alt(&[401, 403, 404, 405], "catalog/unsupported");
            if let (None, Some(ns)) = (n, &facts.namespace) {
                let repos = st
                    .repos()
                    .iter()
                    .map(|r| format!("{ns}/r{}", r.0))
                    .collect();
                e = e.check(200, Check::Catalog { repos });
            }
            Some(e)
        }
        Op::DeleteManifest { repo, reference } => {
            Some(match classify_reference(reference, content) {
                RefKind::Digest(_) => {
                    let code = if st.resolve(*repo, reference).is_some() {
                        202
                    } else {
                        404
                    };
                    Exp::new(
                        &[code],
                        if code == 202 {
                            "end-9/202"
                        } else {
                            "end-9/404"
                        },
                    )
                    .alt(&[400, 405], "end-9/delete-disabled")
                }
                RefKind::Tag(t) => {
                    let exists = st.tags(*repo).contains(&t);
                    let code = if exists { 202 } else { 404 };
                    Exp::new(&[code], if exists { "end-9/202" } else { "end-9/404" })
                        .alt(&[400, 405], "end-9/tag-delete-unsupported")
                }
                RefKind::Invalid(_) => {
                    Exp::new(&[400, 404], "end-9/404").alt(&[405], "end-9/delete-disabled")
                }
            })
        }
        Op::DeleteBlob { repo, blob } => {
            let exists = st.has_blob(*repo, *blob);
            Some(
                Exp::new(
                    &[if exists { 202 } else { 404 }],
                    if exists { "end-10/202" } else { "end-10/404" },
                )
                .alt(&[400, 405], "end-10/delete-disabled"),
            )
        }
        Op::BadName { .. } => {
            Some(Exp::new(&[400, 404], "name/invalid").alt_range(401, 499, "name/invalid-status"))
        }
    }
}

/// 200 for an existing repository; a repository without any tag may be "not found" for the tag
/// list (the spec does not define when a repository exists; registries key it on tags).
fn tags_exp(st: &ModelState, repo: Repo) -> Exp {
    let e = Exp::new(&[200], "end-8a/200");
    if st.tags(repo).is_empty() {
        e.alt(&[404], "end-8a/unknown-repo")
    } else {
        e
    }
}

/// The `Docker-Content-Digest` check of content whose bytes are `bytes`.
fn digest_check(value: &str, bytes: &[u8], rule: &'static str, alt_rule: &'static str) -> Check {
    Check::Digest {
        value: value.to_string(),
        same_bytes: vec![
            crate::content::digest_of(DigestAlgo::Sha256, bytes),
            crate::content::digest_of(DigestAlgo::Sha512, bytes),
        ],
        rule,
        alt_rule,
    }
}

fn unknown_session() -> Exp {
    Exp::new(&[404], "upload/unknown-session").alt_range(400, 499, "upload/unknown-session")
}

/// A PATCH of a composite or single chunk op: 202, Location, `Range: 0-<end>`.
fn patch_exp(ex: &Exchange, ctx: &mut OpCtx) -> Exp {
    let req_end = ex
        .request
        .headers
        .get("content-range")
        .and_then(|r| r.rsplit('-').next())
        .and_then(|e| e.trim().parse::<u64>().ok());
    let end = match req_end {
        Some(e) => e,
        None => (ctx.sent + ex.request.body_len).saturating_sub(1),
    };
    if ex.observation.status == 202 {
        ctx.sent = end + 1;
    }
    let mut e = Exp::new(&[202], "end-5/patch-202").location(202, "end-5/location");
    if end + 1 > 0 && (req_end.is_some() || ex.request.body_len > 0) {
        e = e.check(
            202,
            Check::HeaderEq {
                name: "range",
                value: format!("0-{end}"),
                rule: "end-5/range",
            },
        );
    }
    e
}

/// A divergence before the target / endpoint / op fields are filled in.
struct Found {
    field: String,
    rule: &'static str,
    summary: String,
    expected: String,
    actual: String,
}

fn eval(exp: &Exp, ex: &Exchange, is_reference: bool) -> Vec<Found> {
    let o = &ex.observation;
    let s = o.status;
    let mut out = Vec::new();
    if is_skipped(o) {
        // The executor did not send it (an earlier step failed): a consequence, not a finding.
        return out;
    }
    if s == 0 && exp.tolerate_transport {
        return out;
    }
    if s == 0 {
        out.push(Found {
            field: "status".into(),
            rule: "http/transport",
            summary: "no HTTP response".into(),
            expected: exp.ok_text(),
            actual: field_value(o, "status"),
        });
        return out;
    }
    if !exp.is_ok(s) {
        let rule = exp
            .alts
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&s))
            .map(|(_, _, r)| *r)
            .unwrap_or(exp.fail);
        out.push(Found {
            field: "status".into(),
            rule,
            summary: format!(
                "{} {} answered {s}, expected {}",
                ex.request.method,
                ex.endpoint,
                exp.ok_text()
            ),
            expected: exp.ok_text(),
            actual: s.to_string(),
        });
    }
    for (code, check) in &exp.checks {
        if *code != s {
            continue;
        }
        check_one(check, o, is_reference, &mut out);
    }
    if (400..500).contains(&s) {
        if let BodyFacts::Errors { codes } = &o.body {
            if let Some(bad) = codes
                .iter()
                .find(|c| !SPEC_ERROR_CODES.contains(&c.as_str()))
            {
                out.push(Found {
                    field: "body".into(),
                    rule: "errors/code",
                    summary: format!("error code {bad} is not one of the spec's codes"),
                    expected: "one of code-1 ... code-14".into(),
                    actual: bad.clone(),
                });
            }
        }
    }
    out
}

/// An exchange the executor did not send (no upload location, unknown symbol, ...).
fn is_skipped(o: &Observation) -> bool {
    o.status == 0
        && o.transport_error
            .as_deref()
            .is_some_and(|e| e.starts_with("skipped"))
}

fn check_one(check: &Check, o: &Observation, is_reference: bool, out: &mut Vec<Found>) {
    let _ = is_reference;
    match check {
        Check::HeaderEq { name, value, rule } | Check::HeaderEqIfPresent { name, value, rule } => {
            let got = header(o, name);
            if got.is_none() && matches!(check, Check::HeaderEqIfPresent { .. }) {
                return;
            }
            let ok = match got {
                None => false,
                Some(g) if *name == "content-type" => media_type_base(g) == value.as_str(),
                Some(g) if *name == "oci-tag" => {
                    let mut a: Vec<&str> = g.split(',').map(str::trim).collect();
                    a.sort_unstable();
                    a.dedup();
                    a.join(", ") == *value
                }
                Some(g) => g == value,
            };
            if !ok {
                out.push(Found {
                    field: format!("header:{name}"),
                    rule,
                    summary: match got {
                        None => format!("header {name} missing (expected {value:?})"),
                        Some(g) => format!("header {name} is {g:?}, expected {value:?}"),
                    },
                    expected: value.clone(),
                    actual: got.unwrap_or("<absent>").to_string(),
                });
            }
        }
        Check::Digest {
            value,
            same_bytes,
            rule,
            alt_rule,
        } => {
            let got = header(o, "docker-content-digest");
            if got == Some(value.as_str()) {
                return;
            }
            let other_algo = got.is_some_and(|g| same_bytes.iter().any(|d| d == g));
            out.push(Found {
                field: "header:docker-content-digest".into(),
                rule: if other_algo { alt_rule } else { rule },
                summary: match got {
                    None => format!("header docker-content-digest missing (expected {value:?})"),
                    Some(g) if other_algo => {
                        format!("docker-content-digest {g:?} uses another algorithm than {value:?}")
                    }
                    Some(g) => format!("docker-content-digest is {g:?}, expected {value:?}"),
                },
                expected: value.clone(),
                actual: got.unwrap_or("<absent>").to_string(),
            });
        }
        Check::HeaderPresent { name, rule } => {
            if header(o, name).is_none() {
                out.push(Found {
                    field: format!("header:{name}"),
                    rule,
                    summary: format!("header {name} missing"),
                    expected: "<present>".into(),
                    actual: "<absent>".into(),
                });
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
                out.push(Found {
                    field: "body".into(),
                    rule,
                    summary: "response body differs from the stored content".into(),
                    expected: format!("content len={len} sha256={sha256}"),
                    actual: body_text(&o.body),
                });
            }
        }
        Check::ErrorCode { code, rule } => {
            if let BodyFacts::Errors { codes } = &o.body {
                if !codes.iter().any(|c| c == code) {
                    out.push(Found {
                        field: "body".into(),
                        rule,
                        summary: format!("error body lacks {code}"),
                        expected: format!("errors containing {code}"),
                        actual: body_text(&o.body),
                    });
                }
            }
        }
        Check::Tags(tc) => check_tags(tc, o, out),
        Check::Referrers {
            expected,
            unfiltered,
            filtered,
        } => {
            let BodyFacts::Referrers { manifests } = &o.body else {
                out.push(Found {
                    field: "body".into(),
                    rule: "end-12a/content",
                    summary: "referrers response is not an image index".into(),
                    expected: "referrers index".into(),
                    actual: body_text(&o.body),
                });
                return;
            };
            let mut got = manifests.clone();
            got.sort();
            let applied = header(o, "oci-filters-applied")
                .is_some_and(|h| h.split(',').any(|f| f.trim() == "artifactType"));
            let fmt = |v: &[ReferrerFacts]| {
                body_text(&BodyFacts::Referrers {
                    manifests: v.to_vec(),
                })
            };
            if *filtered && !applied {
                if got == *unfiltered && unfiltered != expected {
                    out.push(Found {
                        field: "header:oci-filters-applied".into(),
                        rule: "end-12b/filter-not-applied",
                        summary: "artifactType filter not applied".into(),
                        expected: "artifactType".into(),
                        actual: "<absent>".into(),
                    });
                    return;
                }
                if got == *expected && unfiltered != expected {
                    out.push(Found {
                        field: "header:oci-filters-applied".into(),
                        rule: "end-12b/filters-applied-header",
                        summary: "filtered response without OCI-Filters-Applied".into(),
                        expected: "artifactType".into(),
                        actual: "<absent>".into(),
                    });
                    return;
                }
            }
            if got != *expected {
                out.push(Found {
                    field: "body".into(),
                    rule: "end-12a/content",
                    summary: "referrers list differs from the model".into(),
                    expected: fmt(expected),
                    actual: fmt(&got),
                });
            }
        }
        Check::Catalog { repos } => {
            if let BodyFacts::Catalog { repositories } = &o.body {
                let missing: Vec<&String> =
                    repos.iter().filter(|r| !repositories.contains(r)).collect();
                if !missing.is_empty() {
                    out.push(Found {
                        field: "body".into(),
                        rule: "catalog/missing-repo",
                        summary: format!("catalog does not list {missing:?}"),
                        expected: format!("{repos:?} listed"),
                        actual: body_text(&o.body),
                    });
                }
            }
        }
    }
}

fn is_sorted_either(tags: &[String]) -> bool {
    tags.windows(2).all(|w| w[0] <= w[1])
        || tags
            .windows(2)
            .all(|w| w[0].to_lowercase() <= w[1].to_lowercase())
}

fn check_tags(tc: &TagsCheck, o: &Observation, out: &mut Vec<Found>) {
    let BodyFacts::Tags { name, tags } = &o.body else {
        out.push(Found {
            field: "body".into(),
            rule: "end-8a/json",
            summary: "tag list body is not the spec's JSON".into(),
            expected: "{\"name\": ..., \"tags\": [...]}".into(),
            actual: body_text(&o.body),
        });
        return;
    };
    let suffix = format!("/r{}", tc.repo.0);
    if !name.ends_with(&suffix) {
        out.push(Found {
            field: "body".into(),
            rule: "end-8a/name",
            summary: format!("tag list names repository {name:?}"),
            expected: format!("<namespace>{suffix}"),
            actual: name.clone(),
        });
    }
    let link = header(o, "link").is_some();
    let mut f = |rule: &'static str, summary: String, expected: String| {
        out.push(Found {
            field: "body".into(),
            rule,
            summary,
            expected,
            actual: format!("{tags:?}{}", if link { " + Link" } else { "" }),
        })
    };
    if !is_sorted_either(tags) {
        f(
            "end-8a/order",
            "tags are not sorted".into(),
            "sorted tags".into(),
        );
        return;
    }
    // The spec allows ASCIIbetical or case-insensitive order: use the one the target used.
    let ascii = tags.windows(2).all(|w| w[0] <= w[1]);
    let key = |t: &str| {
        if ascii {
            t.to_string()
        } else {
            t.to_lowercase()
        }
    };
    let mut ordered = tc.remaining.clone();
    if !ascii {
        ordered.sort_by_key(|t| (t.to_lowercase(), t.clone()));
    }
    let remaining: Vec<String> = match &tc.last {
        Some(l) => ordered.into_iter().filter(|t| key(t) > key(l)).collect(),
        None => ordered,
    };
    let tc = &TagsCheck {
        remaining,
        ..tc.clone()
    };
    if tc.whole {
        if *tags != tc.remaining {
            f(
                "end-8a/tags",
                "tag list differs from the model".into(),
                format!("{:?}", tc.remaining),
            );
        }
        return;
    }
    match tc.n {
        Some(0) => {
            if !tags.is_empty() || link {
                out.push(Found {
                    field: if link {
                        "header:link".into()
                    } else {
                        "body".into()
                    },
                    rule: "end-8b/n-zero",
                    summary: "n=0 must give an empty list without Link".into(),
                    expected: "[] without Link".into(),
                    actual: format!("{tags:?}{}", if link { " + Link" } else { "" }),
                });
            }
            return;
        }
        Some(n) if tags.len() > n as usize => {
            f(
                "end-8b/n-max",
                format!("{} tags returned for n={n}", tags.len()),
                format!("at most {n}"),
            );
            return;
        }
        _ => {}
    }
    if tc.page_only {
        return;
    }
    // The tags must be a prefix of the remaining (ASCII order) list; accept any sorted order
    // by comparing as sets first.
    let prefix: Vec<String> = tc.remaining.iter().take(tags.len()).cloned().collect();
    if *tags != prefix {
        f(
            "end-8b/content",
            "tags differ from the model's list after `last`".into(),
            format!(
                "{:?}",
                tc.remaining
                    .iter()
                    .take(tags.len().max(1))
                    .collect::<Vec<_>>()
            ),
        );
        return;
    }
    let want = tc.n.map(|n| n as usize).unwrap_or(usize::MAX);
    if tags.len() < want && tags.len() < tc.remaining.len() && !link {
        f(
            "end-8b/n-fewer",
            format!(
                "{} tags returned without Link though {} remain",
                tags.len(),
                tc.remaining.len()
            ),
            format!("{:?}", tc.remaining.iter().take(want).collect::<Vec<_>>()),
        );
    }
}

/// Op-level check of `ListTagsPaged`: the pages concatenate to the model's list.
fn check_paged(repo: Repo, n: u32, st: &ModelState, exs: &[Exchange]) -> Vec<Found> {
    let all = st.tags(repo);
    let mut got = Vec::new();
    let mut last_link = false;
    for ex in exs {
        if ex.observation.status != 200 {
            return Vec::new();
        }
        if let BodyFacts::Tags { tags, .. } = &ex.observation.body {
            got.extend(tags.iter().cloned());
        }
        last_link = header(&ex.observation, "link").is_some();
    }
    if exs.is_empty() || !st.repo_exists(repo) {
        return Vec::new();
    }
    let complete = !last_link;
    let mut ci = all.clone();
    ci.sort_by_key(|t| (t.to_lowercase(), t.clone()));
    let matches = |want: &Vec<String>| {
        if complete {
            got == *want
        } else {
            got.len() <= want.len() && got[..] == want[..got.len()]
        }
    };
    let bad = !matches(&all) && !matches(&ci);
    if bad {
        vec![Found {
            field: "body".into(),
            rule: "end-8b/pagination",
            summary: format!(
                "paging with n={n} gave {} tags, model has {}",
                got.len(),
                all.len()
            ),
            expected: format!("{all:?}"),
            actual: format!("{got:?}"),
        }]
    } else {
        Vec::new()
    }
}

/// Runs both oracles over one case. Output order is deterministic (op, target, label order).
pub fn check_case(seq: &Sequence, content: &Content, outcome: &CaseOutcome) -> Vec<Divergence> {
    let nt = outcome.targets.len();
    let facts: Vec<TargetFacts> = (0..nt).map(|t| target_facts(outcome, t)).collect();
    let mut taint: Vec<BTreeSet<Sym>> = vec![BTreeSet::new(); nt];
    let mut uncertain: BTreeSet<Sym> = BTreeSet::new();
    // Per target: the previous op may have left a dropped connection behind (an oversized
    // manifest answered early), so a transport error on this op is not the target's fault.
    let mut after_drop = vec![false; nt];
    let mut st = ModelState::new();
    let mut out = Vec::new();
    let empty: Vec<Exchange> = Vec::new();

    for (i, op) in seq.ops.iter().enumerate() {
        let (reads, writes) = footprint(op, &st, content);
        let exs_of = |t: usize| -> &Vec<Exchange> {
            outcome
                .ops
                .get(i)
                .and_then(|o| o.per_target.get(t))
                .unwrap_or(&empty)
        };
        let model_silent = tainted(&uncertain, &reads);
        let oversized = matches!(
            op,
            Op::PushBadManifest {
                body: BadManifest::Oversized,
                ..
            }
        );
        let mut diverged = vec![false; nt];
        let mut skipped = vec![false; nt];
        let mut state_diverged = vec![false; nt];
        for t in 0..nt {
            if tainted(&taint[t], &reads) {
                skipped[t] = true;
                continue;
            }
            if model_silent {
                continue;
            }
            let is_ref = t == 0;
            let mut ctx = OpCtx { sent: 0 };
            let exs = exs_of(t);
            for ex in exs {
                if after_drop[t] && ex.observation.status == 0 {
                    continue;
                }
                let Some(exp) = expect_exchange(op, &st, content, ex, &mut ctx, &facts[t], is_ref)
                else {
                    continue;
                };
                for f in eval(&exp, ex, is_ref) {
                    diverged[t] = true;
                    state_diverged[t] |= changes_state(&f.field);
                    out.push(make(outcome, t, i, ex, f, exs_of(0)));
                }
            }
            if let Op::ListTagsPaged { repo, n } = op {
                for f in check_paged(*repo, *n, &st, exs) {
                    diverged[t] = true;
                    if let Some(ex) = exs.last() {
                        out.push(make(outcome, t, i, ex, f, exs_of(0)));
                    }
                }
            }
        }
        // Differential: each target against the reference.
        if nt > 1 && !skipped[0] && !diverged[0] {
            for t in 1..nt {
                if skipped[t] || diverged[t] {
                    continue;
                }
                let tolerate = oversized || after_drop[0] || after_drop[t];
                for f in differential(exs_of(0), exs_of(t), tolerate) {
                    diverged[t] = true;
                    state_diverged[t] |= changes_state(&f.1.field);
                    let ex = exs_of(t)
                        .iter()
                        .find(|e| e.label == f.0)
                        .or_else(|| exs_of(0).iter().find(|e| e.label == f.0));
                    if let Some(ex) = ex {
                        out.push(make(outcome, t, i, ex, f.1, exs_of(0)));
                    }
                }
            }
        }
        if is_mutating(op) {
            for t in 0..nt {
                if state_diverged[t] || skipped[t] {
                    taint[t].extend(writes.iter().copied());
                }
            }
        }
        // Spec-silent aftermath: a failed completion leaves the session in an unspecified state.
        if let Op::CompleteUpload {
            session,
            rest_in_body,
            digest,
        } = op
        {
            if st.session(*session).is_some()
                && !st.completes(*session, *rest_in_body, *digest, content)
            {
                uncertain.insert(Sym::Session(*session));
            }
        }
        if let Op::StartUpload { session, .. } = op {
            uncertain.remove(&Sym::Session(*session));
        }
        after_drop = vec![oversized; nt];
        st.apply(op, content);
    }
    out
}

fn make(
    outcome: &CaseOutcome,
    t: usize,
    op_index: usize,
    ex: &Exchange,
    f: Found,
    ref_exs: &[Exchange],
) -> Divergence {
    let r = rule(f.rule);
    let target = outcome
        .targets
        .get(t)
        .cloned()
        .unwrap_or_else(|| format!("target{t}"));
    // The catalog is not in the spec: never a violation, not even on the reference.
    let (class, summary) = if t == 0 && r.endpoint == "catalog" {
        (r.class, format!("reference: {}", f.summary))
    } else if t == 0 && r.class != Class::Violation {
        (
            Class::Violation,
            format!(
                "reference disagrees with the model ({} rule {}): {}",
                r.class, r.id, f.summary
            ),
        )
    } else if t == 0 {
        (
            Class::Violation,
            format!("reference disagrees with the model: {}", f.summary),
        )
    } else {
        (r.class, f.summary)
    };
    let reference = (t != 0)
        .then(|| {
            ref_exs
                .iter()
                .find(|e| e.label == ex.label)
                .map(|e| field_value(&e.observation, &f.field))
        })
        .flatten();
    Divergence {
        class,
        target,
        op_index,
        label: ex.label.clone(),
        endpoint: ex.endpoint.clone(),
        field: f.field,
        rule: r.id.to_string(),
        spec: r.spec.to_string(),
        summary,
        expected: f.expected,
        actual: f.actual,
        reference,
    }
}

/// Headers never compared between targets (they differ by nature).
const IGNORED_HEADERS: [&str; 8] = [
    "date",
    "server",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "vary",
    "www-authenticate",
    "x-content-type-options",
];

/// Target vs reference, exchange by exchange (aligned by label). Returns (label, finding).
/// With `tolerate_transport`, exchanges where either side got no response are not compared.
fn differential(
    reference: &[Exchange],
    target: &[Exchange],
    tolerate_transport: bool,
) -> Vec<(String, Found)> {
    let mut out = Vec::new();
    let mut labels: Vec<&str> = reference.iter().map(|e| e.label.as_str()).collect();
    for e in target {
        if !labels.contains(&e.label.as_str()) {
            labels.push(e.label.as_str());
        }
    }
    for label in labels {
        let r = reference.iter().find(|e| e.label == label);
        let t = target.iter().find(|e| e.label == label);
        let (r, t) = match (r, t) {
            (Some(r), Some(t)) => (r, t),
            (r, t) => {
                out.push((
                    label.to_string(),
                    Found {
                        field: format!("exchange:{label}"),
                        rule: "diff/exchange",
                        summary: format!("exchange {label} only on one side"),
                        expected: if r.is_some() { "sent" } else { "absent" }.into(),
                        actual: if t.is_some() { "sent" } else { "absent" }.into(),
                    },
                ));
                continue;
            }
        };
        let (ro, to) = (&r.observation, &t.observation);
        if tolerate_transport && (ro.status == 0 || to.status == 0) {
            continue;
        }
        if ro.status != to.status {
            out.push((
                label.to_string(),
                Found {
                    field: "status".into(),
                    rule: "diff/status",
                    summary: format!("status {} vs reference {}", to.status, ro.status),
                    expected: ro.status.to_string(),
                    actual: to.status.to_string(),
                },
            ));
            // Headers and bodies of different statuses are not comparable.
            continue;
        }
        let names: BTreeSet<&String> = ro.headers.keys().chain(to.headers.keys()).collect();
        for name in names {
            // Content-Length follows the body (compared below); error bodies MAY be any format.
            if IGNORED_HEADERS.contains(&name.as_str())
                || name == "content-type"
                || name == "content-length"
                || (name == "content-type-essence" && ro.status >= 400)
            {
                continue;
            }
            let (a, b) = (ro.headers.get(name), to.headers.get(name));
            if a == b {
                continue;
            }
            let rule = if name == "location" || name == "location-form" {
                "diff/location"
            } else {
                "diff/header"
            };
            out.push((
                label.to_string(),
                Found {
                    field: format!("header:{name}"),
                    rule,
                    summary: format!("header {name}: {b:?} vs reference {a:?}"),
                    expected: a.cloned().unwrap_or_else(|| "<absent>".into()),
                    actual: b.cloned().unwrap_or_else(|| "<absent>".into()),
                },
            ));
        }
        if !body_equivalent(&ro.body, &to.body) {
            let rule = match (&ro.body, &to.body) {
                (BodyFacts::Errors { .. }, BodyFacts::Errors { .. }) => "diff/error-code",
                _ if ro.status >= 400 => "diff/error-body",
                _ => "diff/body",
            };
            out.push((
                label.to_string(),
                Found {
                    field: "body".into(),
                    rule,
                    summary: format!(
                        "body {} vs reference {}",
                        body_text(&to.body),
                        body_text(&ro.body)
                    ),
                    expected: body_text(&ro.body),
                    actual: body_text(&to.body),
                },
            ));
        }
    }
    out
}

fn body_equivalent(a: &BodyFacts, b: &BodyFacts) -> bool {
    match (a, b) {
        (BodyFacts::Tags { tags: x, .. }, BodyFacts::Tags { tags: y, .. }) => x == y,
        (BodyFacts::Referrers { manifests: x }, BodyFacts::Referrers { manifests: y }) => {
            let (mut x, mut y) = (x.clone(), y.clone());
            x.sort();
            y.sort();
            x == y
        }
        // Catalogs hold other runs' repositories: only the model check applies.
        (BodyFacts::Catalog { .. }, BodyFacts::Catalog { .. }) => true,
        (
            BodyFacts::Content {
                len: l1,
                sha256: s1,
            },
            BodyFacts::Content {
                len: l2,
                sha256: s2,
            },
        ) => l1 == l2 && strip_sha(s1) == strip_sha(s2),
        (
            BodyFacts::Other {
                len: l1,
                sha256: s1,
                ..
            },
            BodyFacts::Other {
                len: l2,
                sha256: s2,
                ..
            },
        ) => l1 == l2 && s1 == s2,
        (x, y) => x == y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::OpOutcome;
    use crate::model::*;
    use crate::observe::RequestRecord;
    use std::collections::BTreeMap;

    fn ex(label: &str, endpoint: &str, method: &str, status: u16) -> Exchange {
        Exchange {
            label: label.into(),
            endpoint: endpoint.into(),
            request: RequestRecord {
                method: method.into(),
                url: "http://127.0.0.1:1/v2/ns/r0/x".into(),
                headers: BTreeMap::new(),
                body_len: 0,
                body_sha256: None,
            },
            observation: Observation {
                status,
                transport_error: None,
                headers: BTreeMap::new(),
                body: BodyFacts::Empty,
            },
        }
    }

    fn h(mut e: Exchange, k: &str, v: &str) -> Exchange {
        e.observation.headers.insert(k.into(), v.into());
        e
    }

    fn body(mut e: Exchange, b: BodyFacts) -> Exchange {
        e.observation.body = b;
        e
    }

    /// blob0 (layer), blob1 (config), m0 = image(b1; b0), m1 = image(b1; subject m0).
    fn seq() -> Sequence {
        let img = |subject| ManifestSpec::Image {
            flavor: Flavor::Oci,
            config: BlobId(1),
            config_media_type: None,
            layers: vec![BlobId(0)],
            subject,
            artifact_type: Some("application/x-sig".into()),
            annotations: BTreeMap::new(),
            data_field: false,
            custom_fields: false,
            algo: DigestAlgo::Sha256,
        };
        Sequence {
            content: ContentSpec {
                blobs: vec![
                    BlobSpec {
                        size: 10,
                        seed: 1,
                        algo: DigestAlgo::Sha256,
                    },
                    BlobSpec {
                        size: 5,
                        seed: 2,
                        algo: DigestAlgo::Sha256,
                    },
                ],
                manifests: vec![img(None), img(Some(ManifestId(0)))],
            },
            ops: vec![
                // 0
                Op::PushBlob {
                    repo: Repo(0),
                    blob: BlobId(0),
                    method: PushMethod::Monolithic,
                    digest: DigestChoice::Correct,
                },
                // 1
                Op::PushBlob {
                    repo: Repo(0),
                    blob: BlobId(1),
                    method: PushMethod::Monolithic,
                    digest: DigestChoice::Correct,
                },
                // 2
                Op::GetBlob {
                    repo: Repo(0),
                    blob: BlobId(0),
                    range: None,
                },
                // 3
                Op::PushManifest {
                    repo: Repo(0),
                    manifest: ManifestId(0),
                    reference: Reference::Tag("b".into()),
                    tags: vec![],
                    content_type: ContentTypeChoice::Matching,
                },
                // 4
                Op::PushManifest {
                    repo: Repo(0),
                    manifest: ManifestId(1),
                    reference: Reference::Tag("a".into()),
                    tags: vec![],
                    content_type: ContentTypeChoice::Matching,
                },
                // 5
                Op::ListTags {
                    repo: Repo(0),
                    n: None,
                    last: None,
                },
                // 6
                Op::MountBlob {
                    repo: Repo(1),
                    blob: BlobId(0),
                    from: Some(Repo(0)),
                },
                // 7
                Op::ListReferrers {
                    repo: Repo(0),
                    subject: Reference::Digest(ManifestId(0)),
                    artifact_type: None,
                },
                // 8
                Op::HeadBlob {
                    repo: Repo(1),
                    blob: BlobId(0),
                },
            ],
        }
    }

    /// What a spec-exact registry answers to `seq()`.
    fn good(c: &Content) -> Vec<Vec<Exchange>> {
        let b0 = c.blob(BlobId(0)).unwrap().clone();
        let post = || {
            h(
                ex("post", "end-4a", "POST", 202),
                "location",
                "/v2/ns/r0/blobs/uploads/<upload>",
            )
        };
        let put = || {
            h(
                ex("put", "end-6", "PUT", 201),
                "location",
                "/v2/ns/r0/blobs/x",
            )
        };
        let d0 = c.blob_digest(BlobId(0)).unwrap().to_string();
        let m0 = c.manifest_digest(ManifestId(0)).unwrap().to_string();
        let mut referrer = c.referrer_descriptor(ManifestId(1)).unwrap();
        referrer.digest = c.manifest_sha256(ManifestId(1)).unwrap().to_string();
        vec![
            vec![post(), put()],
            vec![post(), put()],
            vec![body(
                h(
                    h(ex("get", "end-2", "GET", 200), "docker-content-digest", &d0),
                    "content-length",
                    "10",
                ),
                BodyFacts::Content {
                    len: 10,
                    sha256: sha256_hex(&b0),
                },
            )],
            vec![h(
                ex("put", "end-7a", "PUT", 201),
                "location",
                "/v2/ns/r0/manifests/b",
            )],
            vec![h(
                h(
                    ex("put", "end-7a", "PUT", 201),
                    "location",
                    "/v2/ns/r0/manifests/a",
                ),
                "oci-subject",
                &m0,
            )],
            vec![body(
                ex("get", "end-8a", "GET", 200),
                BodyFacts::Tags {
                    name: "ns/r0".into(),
                    tags: vec!["a".into(), "b".into()],
                },
            )],
            vec![h(
                ex("post", "end-11", "POST", 201),
                "location",
                "/v2/ns/r1/blobs/x",
            )],
            vec![body(
                h(ex("get", "end-12a", "GET", 200), "content-type", OCI_INDEX),
                BodyFacts::Referrers {
                    manifests: vec![referrer],
                },
            )],
            vec![h(
                h(
                    ex("head", "end-2", "HEAD", 200),
                    "docker-content-digest",
                    &d0,
                ),
                "content-length",
                "10",
            )],
        ]
    }

    fn outcome(reference: Vec<Vec<Exchange>>, other: Vec<Vec<Exchange>>) -> CaseOutcome {
        CaseOutcome {
            targets: vec!["reference".into(), "other".into()],
            ops: reference
                .into_iter()
                .zip(other)
                .map(|(r, o)| OpOutcome {
                    per_target: vec![r, o],
                })
                .collect(),
        }
    }

    fn run(mutate: impl FnOnce(&mut Vec<Vec<Exchange>>)) -> Vec<Divergence> {
        let s = seq();
        let c = Content::render(&s.content).unwrap();
        let mut other = good(&c);
        mutate(&mut other);
        check_case(&s, &c, &outcome(good(&c), other))
    }

    #[test]
    fn correct_responses_pass() {
        let d = run(|_| {});
        assert!(d.is_empty(), "{d:#?}");
    }

    #[test]
    fn wrong_status_is_violation() {
        let d = run(|o| o[2][0].observation.status = 500);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].class, Class::Violation);
        assert_eq!(d[0].target, "other");
        assert_eq!(d[0].endpoint, "end-2");
        assert_eq!(d[0].rule, "end-2/get-200");
        assert_eq!(d[0].field, "status");
        assert_eq!(d[0].reference.as_deref(), Some("200"));
        assert!(d[0].spec.contains("MUST be `200 OK`"));
    }

    #[test]
    fn wrong_body_and_header_are_violations() {
        let d = run(|o| {
            o[2][0].observation.body = BodyFacts::Content {
                len: 10,
                sha256: "00".into(),
            };
            o[8][0].observation.headers.remove("content-length");
        });
        let rules: Vec<&str> = d.iter().map(|d| d.rule.as_str()).collect();
        assert_eq!(rules, ["end-2/get-body", "end-2/head-length"], "{d:#?}");
        assert!(d.iter().all(|d| d.class == Class::Violation));
    }

    #[test]
    fn mount_202_is_variation() {
        let d = run(|o| {
            o[6][0].observation.status = 202;
            o[6][0]
                .observation
                .headers
                .insert("location".into(), "/v2/ns/r1/blobs/uploads/<upload>".into());
        });
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].class, Class::Variation);
        assert_eq!(d[0].rule, "end-11/mount-202");
        assert_eq!(d[0].endpoint, "end-11");
        // The HEAD of the (unmounted) blob in r1 (op 8) is suppressed: r1/b0 is tainted.
        assert!(d.iter().all(|d| d.op_index == 6));
    }

    #[test]
    fn referrers_404_is_unsupported() {
        let d = run(|o| {
            o[7][0] = ex("get", "end-12a", "GET", 404);
            o[4][0].observation.headers.remove("oci-subject");
        });
        let got: Vec<(&str, Class)> = d.iter().map(|d| (d.rule.as_str(), d.class)).collect();
        assert_eq!(
            got,
            [
                ("end-7/oci-subject-unsupported", Class::Unsupported),
                ("end-12a/unsupported", Class::Unsupported)
            ],
            "{d:#?}"
        );
    }

    #[test]
    fn missing_oci_subject_with_referrers_api_is_violation() {
        let d = run(|o| {
            o[4][0].observation.headers.remove("oci-subject");
        });
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].rule, "end-7/oci-subject");
        assert_eq!(d[0].class, Class::Violation);
    }

    #[test]
    fn digest_of_another_algorithm_is_variation() {
        let s = seq();
        let c = Content::render(&s.content).unwrap();
        let other = crate::content::digest_of(DigestAlgo::Sha512, c.blob(BlobId(0)).unwrap());
        let d = run(|o| {
            o[2][0]
                .observation
                .headers
                .insert("docker-content-digest".into(), other.clone());
        });
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(
            (d[0].rule.as_str(), d[0].class),
            ("end-2/digest-algorithm", Class::Variation)
        );
        let d = run(|o| {
            o[2][0]
                .observation
                .headers
                .insert("docker-content-digest".into(), "sha256:00".into());
        });
        assert_eq!(
            (d[0].rule.as_str(), d[0].class),
            ("end-2/get-digest", Class::Violation)
        );
    }

    #[test]
    fn unsorted_tags_are_violation() {
        let d = run(|o| {
            o[5][0].observation.body = BodyFacts::Tags {
                name: "ns/r0".into(),
                tags: vec!["b".into(), "a".into()],
            }
        });
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].rule, "end-8a/order");
        assert_eq!(d[0].class, Class::Violation);
        assert_eq!(d[0].endpoint, "end-8a");
    }

    #[test]
    fn failed_push_does_not_cascade() {
        let d = run(|o| {
            o[0][1].observation.status = 500;
            o[2][0] = ex("get", "end-2", "GET", 404);
            o[3][0] = ex("put", "end-7a", "PUT", 400);
            o[5][0].observation.body = BodyFacts::Tags {
                name: "ns/r0".into(),
                tags: vec!["a".into()],
            };
        });
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!((d[0].op_index, d[0].rule.as_str()), (0, "end-6/put-201"));
    }

    #[test]
    fn reference_divergence_is_reported_on_reference() {
        let s = seq();
        let c = Content::render(&s.content).unwrap();
        let mut r = good(&c);
        r[6][0].observation.status = 202; // a Variation rule, but the reference must match the model
        let d = check_case(&s, &c, &outcome(r, good(&c)));
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].target, "reference");
        assert_eq!(d[0].class, Class::Violation);
        assert!(d[0].summary.contains("reference disagrees"));
    }

    #[test]
    fn differential_header_difference_is_variation() {
        let d = run(|o| {
            o[0][0]
                .observation
                .headers
                .insert("location-form".into(), "absolute".into());
        });
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].class, Class::Variation);
        assert_eq!(d[0].rule, "diff/location");
        assert_eq!(d[0].field, "header:location-form");
    }

    #[test]
    fn transport_error_and_skipped() {
        let d = run(|o| {
            o[2][0].observation = crate::observe::Observation {
                status: 0,
                transport_error: Some("connection reset".into()),
                headers: BTreeMap::new(),
                body: BodyFacts::Empty,
            };
        });
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].rule, "http/transport");
    }

    #[test]
    fn every_rule_id_in_the_code_exists() {
        let src = include_str!("oracle.rs");
        let table_start = src.find("rules! {").unwrap();
        let table_end = src.find("static FALLBACK_RULE").unwrap();
        let code = format!("{}{}", &src[..table_start], &src[table_end..]);
        let mut n = 0;
        for part in code.split('"').skip(1).step_by(2) {
            let looks_like_rule = !part.contains(' ')
                && !part.contains('{')
                && part.contains('/')
                && [
                    "end-", "blob/", "upload/", "name/", "catalog/", "diff/", "errors/", "http/",
                ]
                .iter()
                .any(|p| part.starts_with(p));
            if looks_like_rule {
                n += 1;
                assert_ne!(rule(part).id, "unknown", "rule {part:?} is not in RULES");
            }
        }
        assert!(n > 50, "{n}");
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let len = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), len, "duplicate rule ids");
        // Every quoted sentence (except the catalog's) is in the spec text.
        for r in RULES {
            assert!(!r.spec.is_empty());
        }
    }

    #[test]
    fn signature_and_class_serde() {
        assert_eq!(
            serde_json::to_string(&Class::Unsupported).unwrap(),
            "\"unsupported\""
        );
        let d = run(|o| o[2][0].observation.status = 500);
        assert_eq!(
            d[0].signature(),
            (
                "other".to_string(),
                "end-2".to_string(),
                "status".to_string(),
                Class::Violation,
                "end-2/get-200".to_string()
            )
        );
    }
}
