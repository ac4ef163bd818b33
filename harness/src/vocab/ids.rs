//! Symbolic names: one sequence means the same thing on every target because it names
//! repositories, blobs, manifests and upload sessions by these ids, never by URLs.

use serde::{Deserialize, Serialize};

/// A symbolic repository: rendered per target as `<case namespace>/r<N>` (see `execute`).
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

impl DigestAlgo {
    /// The algorithm's name in digests and `digest-algorithm=` parameters.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgo::Sha256 => "sha256",
            DigestAlgo::Sha512 => "sha512",
        }
    }
}
