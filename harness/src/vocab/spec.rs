//! What a test case's content is, symbolically: blobs (size + seed) and manifests described by
//! the symbols they reference. Rendering to bytes lives in `content`.

use super::ids::{BlobId, DigestAlgo, ManifestId};
use super::serde_util::{is_default, serde_u64};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
        /// Render the last layer as a non-distributable layer (OCI
        /// `...layer.nondistributable.v1.tar+gzip`, Docker `...rootfs.foreign.diff.tar.gzip`)
        /// with `urls` outside the registry: a client does not push such a layer, and "A
        /// registry MAY reject a manifest ... that reference[s] a manifest or blob that does
        /// not exist in the registry".
        #[serde(default, skip_serializing_if = "is_default")]
        nondistributable: bool,
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

impl ManifestSpec {
    /// Every blob and manifest id the spec references (config, layers, children, subject).
    pub fn references(&self) -> (Vec<BlobId>, Vec<ManifestId>) {
        match self {
            ManifestSpec::Image {
                config,
                layers,
                subject,
                ..
            } => {
                let mut b = vec![*config];
                b.extend(layers.iter().copied());
                (b, subject.iter().copied().collect())
            }
            ManifestSpec::Index {
                manifests, subject, ..
            } => {
                let mut m = manifests.clone();
                m.extend(subject.iter().copied());
                (Vec::new(), m)
            }
        }
    }

    /// Rewrites every referenced id.
    pub fn renumber(
        &mut self,
        blob: impl Fn(BlobId) -> BlobId,
        manifest: impl Fn(ManifestId) -> ManifestId,
    ) {
        match self {
            ManifestSpec::Image {
                config,
                layers,
                subject,
                ..
            } => {
                *config = blob(*config);
                for l in layers.iter_mut() {
                    *l = blob(*l);
                }
                *subject = subject.map(&manifest);
            }
            ManifestSpec::Index {
                manifests, subject, ..
            } => {
                for c in manifests.iter_mut() {
                    *c = manifest(*c);
                }
                *subject = subject.map(&manifest);
            }
        }
    }
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

impl Reference {
    /// The manifest id a `Digest` reference names.
    pub fn manifest(&self) -> Option<ManifestId> {
        match self {
            Reference::Digest(m) => Some(*m),
            _ => None,
        }
    }

    /// The reference with its manifest id rewritten.
    pub fn renumbered(&self, f: impl Fn(ManifestId) -> ManifestId) -> Reference {
        match self {
            Reference::Digest(m) => Reference::Digest(f(*m)),
            other => other.clone(),
        }
    }
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

impl DigestChoice {
    /// The digest string a client sends for bytes whose digest (with `algo`) is `correct`:
    /// itself, a well-formed digest of something else, or a malformed one.
    pub fn digest_from(self, algo: DigestAlgo, correct: &str) -> String {
        match self {
            DigestChoice::Correct => correct.to_string(),
            DigestChoice::Wrong => {
                super::digest::digest_of(algo, format!("{correct}\0ocidiff-wrong").as_bytes())
            }
            DigestChoice::Malformed => match algo {
                DigestAlgo::Sha256 => "sha256:NOT-A-HEX-DIGEST".to_string(),
                DigestAlgo::Sha512 => "sha512:xyz".to_string(),
            },
        }
    }
}
