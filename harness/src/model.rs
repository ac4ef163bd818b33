//! The symbolic vocabulary of ocidiff: operations (`Op`), the content they carry (`ContentSpec`),
//! and a whole test case (`Sequence`). Everything here is pure data: it names repositories, blobs,
//! manifests and upload sessions symbolically so that one sequence means the same thing on every
//! target. Rendering symbols into concrete bytes lives in `content`; into HTTP requests, in `exec`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A symbolic repository: rendered per target as `<case namespace>/r<N>` (see `exec`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Repo(pub u8);

/// A symbolic blob: index into `ContentSpec::blobs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlobId(pub u16);

/// A symbolic manifest: index into `ContentSpec::manifests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ManifestId(pub u16);

/// A symbolic upload session slot; each target remembers its own `Location` for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Session(pub u8);

/// Digest algorithms of the OCI image spec that registries are expected to know.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlgo {
    #[default]
    Sha256,
    Sha512,
}

/// A blob's content: `size` bytes drawn deterministically from `seed` (see `content`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobSpec {
    pub size: u32,
    /// Serialized as an integer when it fits in `i64` (TOML's integer range), else as a string.
    #[serde(with = "serde_u64")]
    pub seed: u64,
    /// Which digest algorithm names this blob (in manifests, pushes and pulls).
    #[serde(default, skip_serializing_if = "is_default")]
    pub algo: DigestAlgo,
}

/// Media type family used when rendering a manifest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// `application/vnd.oci.image.manifest.v1+json` / `application/vnd.oci.image.index.v1+json`
    #[default]
    Oci,
    /// `application/vnd.docker.distribution.manifest.v2+json` / `...manifest.list.v2+json`
    Docker,
}

/// A manifest, described by the symbols it references. Referenced manifests must have a lower
/// index than the manifest itself (content is acyclic and renders in index order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ManifestSpec {
    /// An image manifest (or an artifact manifest when `artifact_type` is set).
    Image {
        #[serde(default, skip_serializing_if = "is_default")]
        flavor: Flavor,
        config: BlobId,
        /// Config descriptor media type; `None` = the flavor's default config type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config_media_type: Option<String>,
        #[serde(default)]
        layers: Vec<BlobId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<ManifestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artifact_type: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        annotations: BTreeMap<String, String>,
        /// Inline the first layer's bytes as a descriptor `data` field (base64).
        #[serde(default, skip_serializing_if = "is_default")]
        data_field: bool,
        /// Add unknown top-level fields, which registries must store and return verbatim.
        #[serde(default, skip_serializing_if = "is_default")]
        custom_fields: bool,
        /// Digest algorithm naming this manifest (sha512 manifests exercise non-default digests).
        #[serde(default, skip_serializing_if = "is_default")]
        algo: DigestAlgo,
    },
    /// An image index (or Docker manifest list), possibly nested.
    Index {
        #[serde(default, skip_serializing_if = "is_default")]
        flavor: Flavor,
        manifests: Vec<ManifestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<ManifestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artifact_type: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        annotations: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "is_default")]
        algo: DigestAlgo,
    },
}

/// All content a sequence can refer to. Rendering is deterministic: same spec, same bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentSpec {
    #[serde(default)]
    pub blobs: Vec<BlobSpec>,
    #[serde(default)]
    pub manifests: Vec<ManifestSpec>,
}

/// How a manifest reference is written in a URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    Tag(String),
    Digest(ManifestId),
    /// A literal string used verbatim (invalid tags, malformed or unknown digests).
    Raw(String),
}

/// How a blob is pushed by the composite `PushBlob` operation.
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
}

/// What digest a blob upload is closed with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestChoice {
    /// The digest of the bytes actually sent.
    #[default]
    Correct,
    /// A well-formed digest of other bytes (expect 400 DIGEST_INVALID).
    Wrong,
    /// A syntactically invalid digest (expect 400 DIGEST_INVALID).
    Malformed,
}

/// What `Content-Type` accompanies a manifest push.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentTypeChoice {
    /// The manifest's own media type.
    #[default]
    Matching,
    /// Omit the header.
    Missing,
    /// A different, explicit value.
    Other(String),
}

/// A deliberately malformed manifest body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadManifest {
    /// Not JSON at all.
    NotJson,
    /// JSON, but `schemaVersion` is missing or not 2.
    WrongSchemaVersion,
    /// A layer descriptor with a malformed digest.
    BadDescriptorDigest,
    /// A syntactically valid manifest above the 4 MiB limit (expect 413 or 400).
    Oversized,
}

/// One symbolic operation. Each maps to one or more HTTP exchanges against one endpoint id
/// (end-1 ... end-14) or the catalog; `exec` renders it per target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// end-1: `GET /v2/`.
    CheckApi,

    // ---- blob push ----
    /// A whole blob upload by one of the methods (end-4a/4b/5/6).
    PushBlob {
        repo: Repo,
        blob: BlobId,
        #[serde(flatten)]
        method: PushMethod,
        #[serde(default, skip_serializing_if = "is_default")]
        digest: DigestChoice,
    },
    /// end-4a / end-4c: open an upload session for `blob` (bytes come from it in later ops).
    StartUpload {
        repo: Repo,
        session: Session,
        blob: BlobId,
        /// `?digest-algorithm=` parameter (end-4c).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest_algorithm: Option<DigestAlgo>,
    },
    /// end-5: PATCH bytes `[start, end)` of the session's blob with `Content-Range: start-(end-1)`
    /// (or without `Content-Range` when `streamed`). Out-of-order ranges expect 416.
    PatchChunk {
        session: Session,
        start: u32,
        end: u32,
        #[serde(default, skip_serializing_if = "is_default")]
        streamed: bool,
    },
    /// end-6: close the session with PUT `?digest=`; with `rest_in_body`, the bytes not yet sent
    /// travel in the PUT body.
    CompleteUpload {
        session: Session,
        #[serde(default, skip_serializing_if = "is_default")]
        rest_in_body: bool,
        #[serde(default, skip_serializing_if = "is_default")]
        digest: DigestChoice,
    },
    /// end-13: GET the upload location.
    UploadStatus { session: Session },
    /// end-14: DELETE the upload location.
    CancelUpload { session: Session },
    /// end-11: mount `blob` into `repo` from `from` (or without `from` when `None`).
    MountBlob {
        repo: Repo,
        blob: BlobId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Repo>,
    },

    // ---- pull ----
    /// end-2 HEAD.
    HeadBlob { repo: Repo, blob: BlobId },
    /// end-2 GET, optionally with `Range: bytes=start-end` (end inclusive; `None` = open-ended).
    GetBlob {
        repo: Repo,
        blob: BlobId,
        /// Serialized as `[start]` or `[start, end]` (TOML has no null inside arrays).
        #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_range")]
        range: Option<(u32, Option<u32>)>,
    },
    /// end-3 HEAD.
    HeadManifest { repo: Repo, reference: Reference },
    /// end-3 GET (with an `Accept` header listing every manifest media type).
    GetManifest { repo: Repo, reference: Reference },

    // ---- manifest push ----
    /// end-7a / end-7b: PUT `manifest` by tag or by digest, with extra `?tag=` parameters.
    PushManifest {
        repo: Repo,
        manifest: ManifestId,
        reference: Reference,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
        #[serde(default, skip_serializing_if = "is_default")]
        content_type: ContentTypeChoice,
    },
    /// end-7a with a malformed body.
    PushBadManifest {
        repo: Repo,
        reference: Reference,
        body: BadManifest,
    },

    // ---- content discovery ----
    /// end-8a / end-8b.
    ListTags {
        repo: Repo,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        n: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last: Option<String>,
    },
    /// end-8b: page through the whole list with `n`, following `Link` (bounded page count).
    ListTagsPaged { repo: Repo, n: u32 },
    /// end-12a / end-12b.
    ListReferrers {
        repo: Repo,
        subject: Reference,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artifact_type: Option<String>,
    },
    /// `GET /v2/_catalog` (not in the spec; observed, never a violation).
    Catalog {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        n: Option<u32>,
    },

    // ---- content management ----
    /// end-9 by tag or digest.
    DeleteManifest { repo: Repo, reference: Reference },
    /// end-10.
    DeleteBlob { repo: Repo, blob: BlobId },

    // ---- deliberately invalid requests ----
    /// A request with an invalid repository name (expect NAME_INVALID or 404).
    BadName {
        name: String,
        endpoint: BadNameEndpoint,
    },
    /// end-2 with a malformed or unknown digest string.
    GetBlobRaw { repo: Repo, digest: String },
}

/// Which endpoint a `BadName` request targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadNameEndpoint {
    TagList,
    ManifestGet,
    BlobUpload,
}

/// A complete test case: content plus the operations that use it. This is exactly what a
/// scenario / reproducer file stores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    #[serde(default)]
    pub content: ContentSpec,
    #[serde(default)]
    pub ops: Vec<Op>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `u64` as a TOML-safe value: an integer when it fits in `i64`, otherwise a decimal string.
/// Deserializes from either form.
pub mod serde_u64 {
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        match i64::try_from(*v) {
            Ok(i) => s.serialize_i64(i),
            Err(_) => s.serialize_str(&v.to_string()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Int(u64),
            Str(String),
        }
        match Repr::deserialize(d)? {
            Repr::Int(v) => Ok(v),
            Repr::Str(s) => s
                .parse()
                .map_err(|_| de::Error::custom(format!("invalid u64 {s:?}"))),
        }
    }
}

/// `Option<(u32, Option<u32>)>` as `[start]` / `[start, end]` (TOML cannot hold a null).
pub mod serde_range {
    use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        v: &Option<(u32, Option<u32>)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some((a, None)) => vec![*a].serialize(s),
            Some((a, Some(b))) => vec![*a, *b].serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<(u32, Option<u32>)>, D::Error> {
        let v: Option<Vec<Option<u32>>> = Option::deserialize(d)?;
        match v.as_deref() {
            None => Ok(None),
            Some([Some(a)]) | Some([Some(a), None]) => Ok(Some((*a, None))),
            Some([Some(a), Some(b)]) => Ok(Some((*a, Some(*b)))),
            Some(other) => Err(de::Error::custom(format!(
                "range must be [start] or [start, end], got {other:?}"
            ))),
        }
    }
}
