//! The rule table: every check of the oracle names one of these rows (endpoint id, class, and
//! the quoted spec sentence it rests on).

use serde::{Deserialize, Serialize};

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
