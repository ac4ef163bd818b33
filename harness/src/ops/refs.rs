//! Manifest references, shared by the manifest families: what a read by reference depends on,
//! sha512 references, invalid tags and the `Accept` header of manifest requests.

use super::{Footprint, Sym};
use crate::model::{classify_reference, ModelState, RefKind};
use crate::vocab::content::{Content, ALL_MANIFEST_TYPES};
use crate::vocab::{Reference, Repo};

/// The symbols a read by `reference` depends on.
pub fn reads(st: &ModelState, repo: Repo, reference: &Reference) -> Footprint {
    match reference {
        Reference::Digest(m) => Footprint::default().read(Sym::Manifest(repo, *m)),
        Reference::Tag(_) | Reference::Raw(_) => {
            let mut f = Footprint::default().read(Sym::Tags(repo));
            if let Some(m) = st.resolve(repo, reference) {
                f = f.read(Sym::Manifest(repo, m));
            }
            f
        }
    }
}

/// A sha512 digest reference (a registry may not know the algorithm).
pub fn is_sha512(reference: &Reference, content: &Content) -> bool {
    matches!(classify_reference(reference, content), RefKind::Digest(d) if d.starts_with("sha512:"))
}

/// Tag strings that do not match the tag grammar.
pub fn bad_tags() -> Vec<String> {
    vec!["-x".into(), "a".repeat(129), "a:b".into(), ".dot".into()]
}

/// Malformed digests as manifest references (distribution <= 3.1.1 answered some with 500,
/// distribution/distribution#4945): too short, upper-case hex, an unknown algorithm, no
/// encoded part, one character too many.
pub fn bad_digests() -> Vec<String> {
    vec![
        "sha256:xyz".into(),
        format!("sha256:{}", "A".repeat(64)),
        "md5:d41d8cd98f00b204e9800998ecf8427e".into(),
        "sha256:".into(),
        format!("sha256:{}", "a".repeat(65)),
        format!("sha512:{}", "0".repeat(64)),
    ]
}

/// The `Accept` header of manifest requests.
pub fn manifest_accept() -> String {
    ALL_MANIFEST_TYPES.join(", ")
}
