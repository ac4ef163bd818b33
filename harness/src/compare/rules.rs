//! The rule table: every check of the oracle names one of these rows: the endpoint id, the
//! class, the level of the spec's keyword, and the quoted sentence the rule rests on.
//!
//! A rule's class follows the keyword of its sentence (`harness/tests/spec_rules.rs` checks
//! each quote against `harness/spec/distribution-spec.md`):
//! - `violation` only for a registry MUST / MUST NOT (level `must`);
//! - a SHOULD gives at most a `variation` marked `should`;
//! - a MAY, or no keyword at all, is never a violation (allowed differences, declined optional
//!   features).
//!
//! A quote of several sentences separates them with ` … `; each is in the spec verbatim
//! (whitespace collapsed).

use serde::{Deserialize, Serialize};

/// How serious a divergence is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// A registry MUST / MUST NOT is broken (or content is wrong).
    Violation,
    /// An allowed difference between registries, or a SHOULD not followed.
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

/// The keyword of the quoted sentence (RFC 2119).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Must,
    Should,
    May,
    /// No keyword: behaviour the spec describes or leaves open.
    None,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
            Level::None => "-",
        })
    }
}

pub use crate::vocab::spec_version::SpecVersion;

/// One row of the rule table.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub id: &'static str,
    pub endpoint: &'static str,
    pub class: Class,
    pub level: Level,
    pub spec: &'static str,
}

use Class::{Unsupported as U, Variation as V, Violation as X};
use Level::{May as Y, Must as M, None as N, Should as S};

macro_rules! rules {
    ($($id:literal, $ep:literal, $class:expr, $level:expr, $spec:expr;)*) => {
        /// The rule table: every check of the oracle names one of these.
        pub static RULES: &[Rule] = &[$(Rule { id: $id, endpoint: $ep, class: $class, level: $level, spec: $spec }),*];
    };
}

const HTTP_SEMANTICS: &str = "Where this specification does not define specific behavior, implementations SHOULD follow the HTTP semantics defined in [RFC 9110](https://www.rfc-editor.org/rfc/rfc9110).";
const BLOB_GET: &str = "A GET request to an existing blob URL MUST provide the expected blob, with a response code that MUST be `200 OK`.";
const MANIFEST_GET: &str = "A GET request to an existing manifest URL MUST provide the expected manifest, with a response code that MUST be `200 OK`.";
const HEAD_200: &str = "A HEAD request to an existing blob or manifest URL MUST return `200 OK`.";
const BAD_DIGEST_400: &str = "In each implementation, if the client provided digest is invalid or uses an unsupported algorithm, the registry SHOULD respond with a response code `400 Bad Request`.";
const MOUNT_202: &str = "Alternatively, if a registry does not support cross-repository mounting or is unable to mount the requested blob, it SHOULD return a `202`.";
const DELETE_MAY: &str = "Registries MAY implement deletion or they MAY disable it.";
const TAGS_FORMAT: &str = "Upon success, the response MUST be a json body in the following format: … `<name>` is the namespace of the repository, and `<tag1>`, `<tag2>`, and `<tag3>` are each tags on the repository.";
const REFERRERS_INDEX: &str = "Upon success, the response MUST be a JSON body with an image index containing a list of descriptors.";
const REFERRER_DESCRIPTOR: &str = "Each descriptor is of an image manifest or index in the same `<name>` namespace with a `subject` field that specifies the value of `<digest>`.";
const TAG_PARAM_MAY: &str = "When pushing a manifest by digest, the registry MAY support the pushing of tags specified by addition of `tag` query parameters.";
const BOTH_ACCEPTED: &str =
    "(ocidiff: both answers are within what the spec allows, and they differ)";
const CATALOG: &str = "(not in the distribution spec) `GET /v2/_catalog` is a common extension.";

rules! {
    // ---- generic ----
    "http/server-error", "any", V, S, HTTP_SEMANTICS;
    "http/transport", "any", V, S, HTTP_SEMANTICS;
    "target/unresponsive", "any", V, S, HTTP_SEMANTICS;
    "errors/code", "any", X, M, "The `code` field MUST be one of the following:";
    "errors/json-format", "any", X, M, "A `4XX` response code from the registry MAY return a body in any format. … If the response body is in JSON format, it MUST have the following format:";
    "warning/format", "any", X, M, "If included, `Warning` headers MUST specify a `warn-code` of `299` and a `warn-agent` of `-`, and MUST NOT specify a `warn-date` value.";
    "warning/size", "any", X, M, "A registry MUST NOT send more than 4096 bytes of warning data from all headers combined.";
    "model/reference", "any", V, N, "(ocidiff's model of a spec-exact registry)";
    // ---- races: a concurrent history no order of its ops explains (compare::race). Each
    // row quotes the MUST on the state the blocking answer showed.
    "race/end-2", "end-2", X, M, BLOB_GET;
    "race/end-3", "end-3", X, M, MANIFEST_GET;
    "race/end-6", "end-6", X, M, "The response to a successful closing of the session MUST be `201 Created`, and MUST contain the following header:";
    "race/end-7", "end-7a", X, M, "Upon a successful upload, the registry MUST return response code `201 Created`, and MUST have the following header:";
    "race/end-8", "end-8a", X, M, TAGS_FORMAT;
    "race/end-9", "end-9", X, M, "Upon success, the registry MUST respond with a `202 Accepted` code.";
    "race/end-10", "end-10", X, M, "Upon success, the registry MUST respond with code `202 Accepted`.";
    "race/end-12", "end-12a", X, M, "After the referrers API is enabled, Registries MUST include all newly pushed image manifests with a valid `subject` field in the referrers API response.";
    // ---- end-1 ----
    "end-1/200", "end-1", V, N, "If the response is `200 OK`, then the registry implements this specification.";
    // ---- end-2 ----
    "end-2/get-200", "end-2", X, M, BLOB_GET;
    "end-2/get-body", "end-2", X, M, BLOB_GET;
    "end-2/get-digest", "end-2", X, M, "A successful response MUST contain the digest of the uploaded blob in the header `Docker-Content-Digest`.";
    "end-2/get-digest-value", "end-2", X, M, "If present, the value of this header MUST be a digest matching that of the response body.";
    "end-2/get-length", "end-2", V, S, HTTP_SEMANTICS;
    "end-2/head-200", "end-2", X, M, HEAD_200;
    "end-2/head-digest", "end-2", X, M, "A successful response MUST contain the digest of the uploaded blob or manifest in the header `Docker-Content-Digest`.";
    "end-2/head-length", "end-2", X, M, "A successful response MUST contain the size in bytes of the uploaded blob or manifest in the header `Content-Length`.";
    "end-2/digest-algorithm", "end-2", V, M, "If present, the value of this header MUST be a digest matching that of the response body.";
    "end-2/manifest-as-blob", "end-2", V, N, "**Blob**: the binary form of content that is stored by a registry, addressable by a digest";
    "end-2/same-content", "end-2", V, N, "**Blob**: the binary form of content that is stored by a registry, addressable by a digest";
    "end-2/404", "end-2", X, M, "If the blob is not found in the repository, the response code MUST be `404 Not Found`. … If the blob or manifest is not found in the repository, the response code MUST be `404 Not Found`.";
    "end-2/range-ignored", "end-2", V, S, "A registry SHOULD support the `Range` request header in accordance with [RFC 9110 (section 14)](https://www.rfc-editor.org/rfc/rfc9110#section-14).";
    // ---- end-3 ----
    "end-3/get-200", "end-3", X, M, MANIFEST_GET;
    "end-3/get-body", "end-3", X, M, MANIFEST_GET;
    "end-3/digest", "end-3", X, M, "A successful response MUST contain the digest of the uploaded blob in the header `Docker-Content-Digest`.";
    "end-3/digest-algorithm", "end-3", V, Y, "If the digest does differ, it MAY be the case that the hashing algorithms used do not match.";
    "end-3/head-200", "end-3", X, M, HEAD_200;
    "end-3/head-length", "end-3", X, M, "A successful response MUST contain the size in bytes of the uploaded blob or manifest in the header `Content-Length`.";
    "end-3/content-type", "end-3", V, S, "The `Content-Type` header SHOULD match what the client [pushed as the manifest's `Content-Type`](#pushing-manifests).";
    "end-3/same-content", "end-3", V, N, "**Blob**: the binary form of content that is stored by a registry, addressable by a digest … **Manifest**: a JSON document uploaded via the manifests endpoint.";
    "end-3/404", "end-3", X, M, "If the manifest is not found in the repository, the response code MUST be `404 Not Found`. … An attempt to pull a nonexistent repository MUST return response code `404 Not Found`.";
    // ---- end-4 ----
    "end-4a/post-202", "end-4a", X, M, "Upon success, the response MUST have a code of `202 Accepted`, and MUST include the following header:";
    "end-4a/location", "end-4a", X, M, "Upon success, the response MUST have a code of `202 Accepted`, and MUST include the following header:";
    "end-4a/session-id-form", "end-4a", V, N, "(ocidiff: the upload location names its session by a token that is not in UUID text form, e.g. a counter or random base64; the sentence's purpose, a unique session ID for the upload to follow, is met, so the form alone is a variation)";
    "end-4a/session-id", "end-4a", X, M, "The `<blob-push-location>` MUST contain a UUID representing a unique session ID for the upload to follow.";
    "end-4b/decline-202", "end-4b", V, S, "Registries that do not support single request monolithic uploads SHOULD return a `202 Accepted` status code and `Location` header and clients SHOULD proceed with a subsequent PUT request, as described by the [POST then PUT upload method](#post-then-put).";
    "end-4b/single-post-unsupported", "end-4b", U, Y, "Registries MAY support pushing blobs using a single POST request.";
    "end-4b/location", "end-4b", X, M, "Successful completion of the request MUST return a `201 Created` and MUST include the following header:";
    "end-4c/algo-unsupported", "end-4c", U, S, BAD_DIGEST_400;
    "blob/bad-digest-400", "end-6", V, S, BAD_DIGEST_400;
    "blob/bad-digest-accepted", "end-6", V, S, BAD_DIGEST_400;
    "blob/wrong-content", "end-2", X, M, "A GET request to an existing blob URL MUST provide the expected blob, with a response code that MUST be `200 OK`. … If present, the value of this header MUST be a digest matching that of the response body.";
    // ---- end-5 ----
    "end-5/patch-202", "end-5", X, M, "The response for each successful chunk upload MUST be `202 Accepted`, and MUST have the following headers:";
    "end-5/location", "end-5", X, M, "The response for each successful chunk upload MUST be `202 Accepted`, and MUST have the following headers:";
    "end-5/range", "end-5", X, M, "The response for each successful chunk upload MUST be `202 Accepted`, and MUST have the following headers: … The `<end-of-range>` value is the position of the last uploaded byte of the blob, matching the end value of the `Content-Range` in the request.";
    "end-5/out-of-order-416", "end-5", X, M, "If a chunk is uploaded out of order, the registry MUST respond with a `416 Requested Range Not Satisfiable` code.";
    "upload/unknown-session", "end-5", V, N, "The `<blob-push-location>` refers to the URL obtained from the preceding `POST` request.";
    // ---- end-6 ----
    "end-6/put-201", "end-6", X, M, "The response to a successful closing of the session MUST be `201 Created`, and MUST contain the following header: … A registry claiming conformance with one of these specification categories MUST implement all APIs in the claimed category.";
    "end-6/out-of-order-416", "end-6", X, M, "If the final chunk is uploaded out of order, the registry MUST respond with a `416 Requested Range Not Satisfiable` code.";
    "end-6/location-pullable", "end-6", X, M, "The response to a successful closing of the session MUST be `201 Created`, and MUST contain the following header: … Here, `<blob-location>` is a pullable blob URL.";
    "end-6/location", "end-6", X, M, "Upon successful completion of the request, the response MUST have code `201 Created` and MUST have the following header:";
    // ---- end-7 ----
    "end-7/put-201", "end-7a", X, M, "Upon a successful upload, the registry MUST return response code `201 Created`, and MUST have the following header: … A registry claiming conformance with one of these specification categories MUST implement all APIs in the claimed category.";
    "end-7/push-unsupported", "end-7a", U, S, "Registries SHOULD also support the **Push**, **Content Discovery**, and **Content Management** categories.";
    "end-7/location", "end-7a", X, M, "Upon a successful upload, the registry MUST return response code `201 Created`, and MUST have the following header:";
    "end-7/digest", "end-7a", X, M, "The Docker-Content-Digest header returns the digest of the uploaded blob, and MUST be equal to the client provided digest.";
    "end-7/missing-subject", "end-7a", X, M, "A registry MUST initially accept an otherwise valid manifest with a `subject` field that references a manifest that does not exist in the repository, allowing clients to push a manifest and referrers to that manifest in either order.";
    "end-7/oci-subject", "end-7a", X, M, "When processing a request for an image manifest with the `subject` field, a registry implementation that supports the [referrers API](#listing-referrers) MUST respond with the response header `OCI-Subject: <subject digest>` to indicate to the client that the registry processed the request's `subject`.";
    "end-7/oci-subject-unsupported", "end-7a", U, N, "When pushing a manifest with the `subject` field and the `OCI-Subject` header was not set, the client MUST:";
    "end-7b/oci-tag", "end-7b", X, M, "MUST include an `OCI-Tag` response header, in accordance with [RFC 9110 (section 5)](https://www.rfc-editor.org/rfc/rfc9110#section-5) semantics, for each accepted tag.";
    "end-7b/tags-unsupported", "end-7b", U, Y, TAG_PARAM_MAY;
    "end-7b/tags-rejected", "end-7b", U, Y, TAG_PARAM_MAY;
    "end-7/algo-unsupported", "end-7a", U, S, BAD_DIGEST_400;
    "end-7/missing-refs-rejected", "end-7a", V, Y, "A registry MAY reject a manifest uploaded to the manifest endpoint with descriptors in other fields that reference a manifest or blob that does not exist in the registry.";
    "end-7/manifest-blob-unknown", "end-7a", X, M, "When a manifest is rejected for this reason, it MUST result in one or more `MANIFEST_BLOB_UNKNOWN` errors <sup>[code-1](#error-codes)</sup>.";
    "end-7/oversized-413", "end-7a", V, S, "A registry that enforces this limit SHOULD respond to a request to push a manifest over this limit with a response code `413 Payload Too Large`.";
    "end-7/exact-bytes", "end-7a", X, M, "The registry MUST store the manifest in the exact byte representation provided by the client.";
    // ---- end-8 ----
    "end-8a/200", "end-8a", X, M, "Assuming a repository is found, this request MUST return a `200 OK` response code.";
    "end-8a/unsupported", "end-8a", U, S, "Registries SHOULD also support the **Push**, **Content Discovery**, and **Content Management** categories.";
    "end-8a/unknown-repo", "end-8a", V, Y, "The list of tags MAY be empty if there are no tags on the repository.";
    "end-8a/json", "end-8a", X, M, "Upon success, the response MUST be a json body in the following format:";
    "end-8a/name", "end-8a", X, M, TAGS_FORMAT;
    "end-8a/order", "end-8a", X, M, "If the list is not empty, the tags MUST be in lexical (i.e. case-insensitive alphanumeric order) or \"ASCIIbetical\" ([Go's `sort.Strings`](https://pkg.go.dev/sort#Strings)) order. … As above, the tags MUST be in lexical or \"ASCIIbetical\" order. … The tags MUST be in lexical or \"ASCIIbetical\" order.";
    "end-8a/tags", "end-8a", X, M, TAGS_FORMAT;
    "end-8b/n-zero", "end-8b", X, M, "When `n` is zero, this endpoint MUST return an empty list, and MUST NOT include a `Link` header.";
    "end-8b/n-max", "end-8b", X, M, "Otherwise, the response MUST include `<int>` results.";
    "end-8b/n-more-with-link", "end-8b", V, N, "A request of this sort will return up to `<int>` tags, beginning non-inclusively with `<tagname>`.";
    "end-8b/n-fewer", "end-8b", X, M, "The response to such a request MAY return fewer than `<int>` results, but only when the total number of tags attached to the repository is less than `<int>` or a `Link` header is provided. … Otherwise, the response MUST include `<int>` results.";
    "end-8b/content", "end-8b", V, N, "That is to say, `<tagname>` will not be included in the results, but up to `<int>` tags *after* `<tagname>` will be returned.";
    "end-8b/pagination", "end-8b", V, Y, "A `Link` header MAY be included in the response when additional tags are available.";
    "end-8b/link-format", "end-8b", X, M, "If included, the `Link` header MUST be set according to [RFC 5988](https://www.rfc-editor.org/rfc/rfc5988) with the Relation Type `rel=\"next\"`.";
    // ---- end-9 / end-10 ----
    "end-9/202", "end-9", X, M, "Upon success, the registry MUST respond with a `202 Accepted` code. … If manifest deletion is disabled, the registry MUST respond with either a `400 Bad Request` or a `405 Method Not Allowed`.";
    "end-9/tag-202", "end-9", X, M, "Upon success, the registry MUST respond with a `202 Accepted` code. … If tag deletion is disabled, the registry MUST respond with either a `400 Bad Request` or a `405 Method Not Allowed`.";
    "end-9/repo-404", "end-9", X, M, "If the repository does not exist, the response MUST return `404 Not Found`.";
    "end-9/unknown", "end-9", V, N, "| end-9 | `DELETE` | `/v2/<name>/manifests/<tag-or-digest>` | `202` | `404`/`400`/`405` |";
    "end-9/delete-disabled", "end-9", U, Y, DELETE_MAY;
    "end-9/tag-delete-unsupported", "end-9", U, Y, "Similarly, a registry MAY implement tag deletion, while others MAY allow deletion only by manifest.";
    "end-10/202", "end-10", X, M, "Upon success, the registry MUST respond with code `202 Accepted`. … If blob deletion is disabled, the registry MUST respond with either a `400 Bad Request` or a `405 Method Not Allowed`.";
    "end-10/404", "end-10", X, M, "If the blob is not found, a `404 Not Found` code MUST be returned.";
    "end-10/delete-disabled", "end-10", U, Y, DELETE_MAY;
    // ---- end-11 ----
    "end-11/location", "end-11", X, M, "The response to a successful mount MUST be `201 Created`, and MUST contain the following header: … The Location header will contain the registry URL to access the accepted layer file.";
    "end-11/mounted-head-200", "end-11", X, M, "The Location header will contain the registry URL to access the accepted layer file. … A HEAD request to an existing blob or manifest URL MUST return `200 OK`.";
    "end-11/mount-202", "end-11", U, S, MOUNT_202;
    "end-11/decline-202", "end-11", V, S, MOUNT_202;
    "end-11/cross-mount", "end-11", V, Y, "The registry MAY treat the `from` parameter as optional, and it MAY cross-mount the blob if it can be found.";
    // ---- end-12 ----
    "end-12a/200", "end-12a", X, M, "Assuming a repository is found, this request MUST return a `200 OK` response code.";
    "end-12a/not-404", "end-12a", X, M, "If the registry supports the referrers API, the registry MUST NOT return a `404 Not Found` to a referrers API requests. … If a query results in no matching referrers, an empty manifest list MUST be returned.";
    "end-12a/unsupported", "end-12a", U, N, "If the [referrers API](#listing-referrers) returns a 404, the client MUST fallback to pulling the [referrers tag schema](#referrers-tag-schema).";
    "end-12a/invalid-400", "end-12a", X, M, "If the request is invalid, such as a `<digest>` with an invalid syntax, a `400 Bad Request` MUST be returned.";
    "end-12a/content-type", "end-12a", X, M, "The `Content-Type` header MUST be set to `application/vnd.oci.image.index.v1+json`.";
    "end-12a/json", "end-12a", X, M, REFERRERS_INDEX;
    "end-12a/descriptor", "end-12a", X, M, REFERRERS_INDEX;
    "end-12a/missing", "end-12a", X, M, "After the referrers API is enabled, Registries MUST include all newly pushed image manifests with a valid `subject` field in the referrers API response. … A `Link` header MUST be included in the response when the descriptor list cannot be returned in a single manifest.";
    "end-12a/missing-index", "end-12a", V, N, REFERRER_DESCRIPTOR;
    "end-12a/extra", "end-12a", V, N, REFERRER_DESCRIPTOR;
    "end-12a/artifact-type", "end-12a", X, M, "The descriptors MUST include an `artifactType` field that is set to the value of the `artifactType` in the image manifest or index, if present. … If the `artifactType` is empty or missing in the image manifest, the value of `artifactType` MUST be set to the config descriptor `mediaType` value. … If the `artifactType` is empty or missing in an index, the `artifactType` MUST be omitted.";
    "end-12a/annotations", "end-12a", X, M, "The descriptors MUST include annotations from the image manifest or index.";
    "end-12a/link-format", "end-12a", X, M, "The `Link` header MUST be set according to [RFC 5988](https://www.rfc-editor.org/rfc/rfc5988) with the Relation Type `rel=\"next\"`.";
    "end-12b/filter-not-applied", "end-12b", V, S, "The registry SHOULD support filtering on `artifactType`.";
    "end-12b/filters-applied-header", "end-12b", X, M, "If filtering is requested and applied, the response MUST include a header `OCI-Filters-Applied: artifactType` denoting that an `artifactType` filter was applied.";
    // ---- end-13 / end-14 ----
    "end-13/204", "end-13", X, M, "The response to an active upload `<blob-push-location>` MUST be a `204 No Content` response code, and MUST have the following headers:";
    "end-13/location", "end-13", X, M, "The response to an active upload `<blob-push-location>` MUST be a `204 No Content` response code, and MUST have the following headers:";
    "end-13/range", "end-13", X, M, "The response to an active upload `<blob-push-location>` MUST be a `204 No Content` response code, and MUST have the following headers: … The `<end-of-range>` value is the position of the last uploaded byte of the blob.";
    "end-14/204", "end-14", V, S, "If successful, the response SHOULD be a `204 No Content` response code.";
    "end-14/failed", "end-14", V, S, "If this request fails or is not called, the server SHOULD eventually timeout unfinished uploads.";
    // ---- catalog (not in the spec: never a violation) ----
    "catalog/unsupported", "catalog", U, N, CATALOG;
    "catalog/status", "catalog", V, N, CATALOG;
    "catalog/missing-repo", "catalog", V, N, CATALOG;
    // ---- differential (both sides accepted by the model) ----
    "diff/status", "any", V, N, "The status codes documented in this specification are those returned after any redirects have been followed.";
    "diff/header", "any", V, N, BOTH_ACCEPTED;
    "diff/location", "any", V, Y, "Optionally, the location MAY be absolute (containing the protocol and/or hostname), or it MAY be relative (containing just the URL path).";
    "diff/error-code", "any", V, M, "The `code` field MUST be a unique identifier, containing only uppercase alphabetic characters and underscores.";
    "diff/error-body", "any", V, Y, "A `4XX` response code from the registry MAY return a body in any format.";
    "diff/body", "any", V, N, BOTH_ACCEPTED;
}

static FALLBACK_RULE: Rule = Rule {
    id: "unknown",
    endpoint: "any",
    class: Class::Variation,
    level: Level::None,
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

/// Legacy codes the spec says clients may meet ("error codes targeting Docker schema1
/// manifests, such as `TAG_INVALID`, or `MANIFEST_UNVERIFIED`").
pub const LEGACY_ERROR_CODES: [&str; 2] = ["TAG_INVALID", "MANIFEST_UNVERIFIED"];
