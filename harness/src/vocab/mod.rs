//! The shared vocabulary at the bottom of the harness: symbolic ids, content specs and their
//! rendering, request plans, exchanges and observations, redaction and file helpers. Nothing
//! here imports any other module of the crate.

pub mod content;
pub mod digest;
pub mod exchange;
pub mod fs;
pub mod ids;
pub mod plan;
pub mod redact;
pub mod serde_util;
pub mod spec;
pub mod spec_version;

pub use ids::{BlobId, DigestAlgo, ManifestId, Repo, Session};
pub use spec::{BlobSpec, ContentSpec, DigestChoice, Flavor, ManifestSpec, Reference};
