//! Rule quotes per spec version: how each rule reads in v1.1.1 and v1.0.1 where its
//! main-branch quote (`rules.rs`) is not verbatim in that version's text. Each quote is
//! verbatim in that version (whitespace collapsed; several sentences joined with ` … `), and
//! its level is the quote's strongest registry keyword, as `harness/tests/spec_rules.rs`
//! computes it.

use super::rules::{rule, Class, Level, Rule, SpecVersion};

/// A rule as one version of the spec reads it.
#[derive(Clone, Copy, Debug)]
pub struct VersionedRule {
    pub rule: &'static Rule,
    pub version: SpecVersion,
    /// The class under this version: a violation only where this version's sentence is a
    /// registry MUST.
    pub class: Class,
    pub level: Level,
    /// This version's sentence; empty when the version does not define the behaviour.
    pub spec: &'static str,
    /// Whether this version defines the behaviour at all.
    pub defined: bool,
}

impl VersionedRule {
    /// The quote as reports print it: the sentence, or why there is none.
    pub fn quote(&self) -> String {
        if self.defined {
            self.spec.to_string()
        } else {
            format!(
                "(not in the Distribution Spec {}: the behaviour is defined from a later version on)",
                self.version.text()
            )
        }
    }
}

/// Rule `id` as `version` reads it: its main-branch row where that quote is in the version's
/// text, else the version's own sentence (`rule_versions::OLDER`), with the class that
/// sentence's keyword supports (a MUST keeps a violation; a SHOULD, MAY or none makes it a
/// variation; a version that does not define the behaviour makes it a variation with no
/// keyword; unsupported stays unsupported).
pub fn rule_in(id: &str, version: SpecVersion) -> VersionedRule {
    let r = rule(id);
    let older = (version != SpecVersion::V1_1Dev)
        .then(|| OLDER.iter().find(|(i, v, _)| *i == r.id && *v == version))
        .flatten();
    let (level, spec, defined) = match older {
        None => (r.level, r.spec, true),
        Some((_, _, Some((level, spec)))) => (*level, *spec, true),
        Some((_, _, None)) => (Level::None, "", false),
    };
    let class = match r.class {
        Class::Violation if level != Level::Must => Class::Variation,
        c => c,
    };
    VersionedRule {
        rule: r,
        version,
        class,
        level,
        spec,
        defined,
    }
}

/// (rule id, version, the version's sentence and its keyword, or `None`).
pub type Older = (&'static str, SpecVersion, Option<(Level, &'static str)>);

/// How a rule reads in an older version of the spec, where its main-branch quote is not
/// verbatim in that version's text. `None`: the behaviour is not defined by that version.
pub static OLDER: &[Older] = &[
    ("blob/bad-digest-400", SpecVersion::V1_0, None),
    ("blob/bad-digest-400", SpecVersion::V1_1, None),
    ("blob/bad-digest-accepted", SpecVersion::V1_0, None),
    ("blob/bad-digest-accepted", SpecVersion::V1_1, None),
    ("diff/status", SpecVersion::V1_0, Some((Level::None, "The API operates over HTTP."))),
    ("diff/status", SpecVersion::V1_1, Some((Level::None, "The API operates over HTTP."))),
    ("end-10/202", SpecVersion::V1_0, Some((Level::Must, "Upon success, the registry MUST respond with code `202 Accepted`."))),
    ("end-11/cross-mount", SpecVersion::V1_0, None),
    ("end-12a/200", SpecVersion::V1_0, None),
    ("end-12a/annotations", SpecVersion::V1_0, None),
    ("end-12a/artifact-type", SpecVersion::V1_0, None),
    ("end-12a/content-type", SpecVersion::V1_0, None),
    ("end-12a/descriptor", SpecVersion::V1_0, None),
    ("end-12a/extra", SpecVersion::V1_0, None),
    ("end-12a/invalid-400", SpecVersion::V1_0, None),
    ("end-12a/json", SpecVersion::V1_0, None),
    ("end-12a/link-format", SpecVersion::V1_0, None),
    ("end-12a/link-format", SpecVersion::V1_1, Some((Level::Must, "The `Link` header MUST be set according to [RFC5988](https://www.rfc-editor.org/rfc/rfc5988.html) with the Relation Type `rel=\"next\"`."))),
    ("end-12a/missing", SpecVersion::V1_0, None),
    ("end-12a/missing-index", SpecVersion::V1_0, None),
    ("end-12a/not-404", SpecVersion::V1_0, None),
    ("end-12a/unsupported", SpecVersion::V1_0, None),
    ("end-12b/filter-not-applied", SpecVersion::V1_0, None),
    ("end-12b/filters-applied-header", SpecVersion::V1_0, None),
    ("end-13/204", SpecVersion::V1_0, None),
    ("end-13/204", SpecVersion::V1_1, Some((Level::Must, "The response to an active upload `<location>` MUST be a `204 No Content` response code, and MUST have the following headers:"))),
    ("end-13/location", SpecVersion::V1_0, None),
    ("end-13/location", SpecVersion::V1_1, Some((Level::Must, "The response to an active upload `<location>` MUST be a `204 No Content` response code, and MUST have the following headers:"))),
    ("end-13/range", SpecVersion::V1_0, None),
    ("end-13/range", SpecVersion::V1_1, Some((Level::Must, "The response to an active upload `<location>` MUST be a `204 No Content` response code, and MUST have the following headers: … The `<end-of-range>` value is the position of the last uploaded byte."))),
    ("end-14/204", SpecVersion::V1_0, None),
    ("end-14/204", SpecVersion::V1_1, None),
    ("end-14/failed", SpecVersion::V1_0, None),
    ("end-14/failed", SpecVersion::V1_1, None),
    ("end-2/404", SpecVersion::V1_0, Some((Level::Must, "If the blob is not found in the registry, the response code MUST be `404 Not Found`. … If the blob or manifest is not found in the registry, the response code MUST be `404 Not Found`."))),
    ("end-2/get-digest", SpecVersion::V1_0, Some((Level::Should, "A successful response SHOULD contain the digest of the uploaded blob in the header `Docker-Content-Digest`."))),
    ("end-2/get-digest", SpecVersion::V1_1, Some((Level::Should, "A successful response SHOULD contain the digest of the uploaded blob in the header `Docker-Content-Digest`."))),
    ("end-2/get-length", SpecVersion::V1_0, Some((Level::None, "The API operates over HTTP."))),
    ("end-2/get-length", SpecVersion::V1_1, Some((Level::None, "The API operates over HTTP."))),
    ("end-2/head-digest", SpecVersion::V1_0, Some((Level::Should, "A successful response SHOULD contain the digest of the uploaded blob in the header `Docker-Content-Digest`."))),
    ("end-2/head-digest", SpecVersion::V1_1, Some((Level::Should, "A successful response SHOULD contain the digest of the uploaded blob in the header `Docker-Content-Digest`."))),
    ("end-2/head-length", SpecVersion::V1_0, None),
    ("end-2/head-length", SpecVersion::V1_1, Some((Level::Should, "A successful response SHOULD contain the size in bytes of the uploaded blob in the header `Content-Length`."))),
    ("end-2/range-ignored", SpecVersion::V1_0, None),
    ("end-2/range-ignored", SpecVersion::V1_1, Some((Level::Should, "A registry SHOULD support the `Range` request header in accordance with [RFC 9110](https://www.rfc-editor.org/rfc/rfc9110.html#name-range-requests)."))),
    ("end-2/manifest-as-blob", SpecVersion::V1_0, Some((Level::None, "**Blob**: the binary form of content that is stored by a Registry, addressable by a Digest"))),
    ("end-2/same-content", SpecVersion::V1_0, Some((Level::None, "**Blob**: the binary form of content that is stored by a Registry, addressable by a Digest"))),
    ("end-3/404", SpecVersion::V1_0, Some((Level::Must, "If the manifest is not found in the registry, the response code MUST be `404 Not Found`. … An attempt to pull a nonexistent repository MUST return response code `404 Not Found`"))),
    ("end-3/digest", SpecVersion::V1_0, Some((Level::Should, "A successful response SHOULD contain the digest of the uploaded blob in the header `Docker-Content-Digest`."))),
    ("end-3/digest", SpecVersion::V1_1, Some((Level::Should, "A successful response SHOULD contain the digest of the uploaded blob in the header `Docker-Content-Digest`."))),
    ("end-3/head-length", SpecVersion::V1_0, None),
    ("end-3/head-length", SpecVersion::V1_1, Some((Level::Should, "A successful response SHOULD contain the size in bytes of the uploaded blob in the header `Content-Length`."))),
    ("end-3/same-content", SpecVersion::V1_0, Some((Level::None, "**Blob**: the binary form of content that is stored by a Registry, addressable by a Digest … **Manifest**: a JSON document which defines an Artifact."))),
    ("end-4a/session-id", SpecVersion::V1_0, Some((Level::Must, "The `<location>` MUST contain a UUID representing a unique session ID for the upload to follow."))),
    ("end-4a/session-id", SpecVersion::V1_1, Some((Level::Must, "The `<location>` MUST contain a UUID representing a unique session ID for the upload to follow."))),
    ("end-4c/algo-unsupported", SpecVersion::V1_0, None),
    ("end-4c/algo-unsupported", SpecVersion::V1_1, None),
    ("end-5/location", SpecVersion::V1_0, Some((Level::Must, "Each successful chunk upload MUST have a `202 Accepted` response code, and MUST have the following header:"))),
    ("end-5/location", SpecVersion::V1_1, Some((Level::Must, "Each successful chunk upload MUST have a `202 Accepted` response code, and MUST have the following headers:"))),
    ("end-5/patch-202", SpecVersion::V1_0, Some((Level::Must, "Each successful chunk upload MUST have a `202 Accepted` response code, and MUST have the following header:"))),
    ("end-5/patch-202", SpecVersion::V1_1, Some((Level::Must, "Each successful chunk upload MUST have a `202 Accepted` response code, and MUST have the following headers:"))),
    ("end-5/range", SpecVersion::V1_0, None),
    ("end-5/range", SpecVersion::V1_1, Some((Level::Must, "Each successful chunk upload MUST have a `202 Accepted` response code, and MUST have the following headers: … The `<end-of-range>` value is the position of the last uploaded byte."))),
    ("end-6/out-of-order-416", SpecVersion::V1_0, None),
    ("end-6/out-of-order-416", SpecVersion::V1_1, None),
    ("end-7/algo-unsupported", SpecVersion::V1_0, None),
    ("end-7/algo-unsupported", SpecVersion::V1_1, None),
    ("end-7/digest", SpecVersion::V1_0, None),
    ("end-7/digest", SpecVersion::V1_1, Some((Level::Must, "The Docker-Content-Digest header returns the canonical digest of the uploaded blob, and MUST be equal to the client provided digest."))),
    ("end-7/exact-bytes", SpecVersion::V1_0, None),
    ("end-7/manifest-blob-unknown", SpecVersion::V1_0, Some((Level::May, "Strictly speaking, content can be uploaded to the registry in any order, but a registry MAY reject a manifest if it references blobs that are not yet uploaded, resulting in a `BLOB_UNKNOWN` error <sup>[code-1](#error-codes)</sup>."))),
    ("end-7/missing-refs-rejected", SpecVersion::V1_0, Some((Level::May, "Strictly speaking, content can be uploaded to the registry in any order, but a registry MAY reject a manifest if it references blobs that are not yet uploaded, resulting in a `BLOB_UNKNOWN` error <sup>[code-1](#error-codes)</sup>."))),
    ("end-7/missing-subject", SpecVersion::V1_0, None),
    ("end-7/oci-subject", SpecVersion::V1_0, None),
    ("end-7/oci-subject-unsupported", SpecVersion::V1_0, None),
    ("end-7/oversized-413", SpecVersion::V1_0, None),
    ("end-7b/oci-tag", SpecVersion::V1_0, None),
    ("end-7b/oci-tag", SpecVersion::V1_1, None),
    ("end-7b/tags-rejected", SpecVersion::V1_0, None),
    ("end-7b/tags-rejected", SpecVersion::V1_1, None),
    ("end-7b/tags-unsupported", SpecVersion::V1_0, None),
    ("end-7b/tags-unsupported", SpecVersion::V1_1, None),
    ("end-8a/order", SpecVersion::V1_0, Some((Level::Must, "If the list is not empty, the tags MUST be in lexical order (i.e. case-insensitive alphanumeric order). … As above, the tags MUST be in lexical order. … The tags MUST be in lexical order."))),
    ("end-8a/order", SpecVersion::V1_1, Some((Level::Must, "If the list is not empty, the tags MUST be in lexical order (i.e. case-insensitive alphanumeric order). … As above, the tags MUST be in lexical order. … The tags MUST be in lexical order."))),
    ("end-8b/link-format", SpecVersion::V1_0, None),
    ("end-8b/link-format", SpecVersion::V1_1, Some((Level::Must, "If included, the `Link` header MUST be set according to [RFC5988](https://www.rfc-editor.org/rfc/rfc5988.html) with the Relation Type `rel=\"next\"`."))),
    ("end-8b/n-fewer", SpecVersion::V1_0, Some((Level::Must, "The response to such a request MAY return fewer than `<int>` results, but only when the total number of tags attached to the repository is less than `<int>`. … Otherwise, the response MUST include `<int>` results."))),
    ("end-8b/pagination", SpecVersion::V1_0, None),
    ("end-9/202", SpecVersion::V1_0, Some((Level::Must, "Upon success, the registry MUST respond with a `202 Accepted` code."))),
    ("end-9/unknown", SpecVersion::V1_0, Some((Level::None, "| end-9 | `DELETE` | `/v2/<name>/manifests/<reference>` | `202` | `404`/`400`/`405` |"))),
    ("end-9/unknown", SpecVersion::V1_1, Some((Level::None, "| end-9 | `DELETE` | `/v2/<name>/manifests/<reference>` | `202` | `404`/`400`/`405` |"))),
    ("http/server-error", SpecVersion::V1_0, Some((Level::None, "The API operates over HTTP."))),
    ("http/server-error", SpecVersion::V1_1, Some((Level::None, "The API operates over HTTP."))),
    ("http/transport", SpecVersion::V1_0, Some((Level::None, "The API operates over HTTP."))),
    ("http/transport", SpecVersion::V1_1, Some((Level::None, "The API operates over HTTP."))),
    ("race/end-12", SpecVersion::V1_0, None),
    ("target/unresponsive", SpecVersion::V1_0, Some((Level::None, "The API operates over HTTP."))),
    ("target/unresponsive", SpecVersion::V1_1, Some((Level::None, "The API operates over HTTP."))),
    ("upload/unknown-session", SpecVersion::V1_0, Some((Level::None, "The `<location>` refers to the URL obtained from the preceding `POST` request."))),
    ("upload/unknown-session", SpecVersion::V1_1, Some((Level::None, "The `<location>` refers to the URL obtained from the preceding `POST` request."))),
    ("warning/format", SpecVersion::V1_0, None),
    ("warning/size", SpecVersion::V1_0, None),
];
