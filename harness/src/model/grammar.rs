//! The spec's grammars for tags and digests, and how a `Reference` reads once rendered.

use crate::vocab::content::Content;
use crate::vocab::Reference;

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
pub fn is_valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A digest of a known algorithm with a well-formed lowercase hex encoding.
pub fn is_valid_digest(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let len = match algo {
        "sha256" => 64,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// How a `Reference` names a manifest, once rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefKind {
    Tag(String),
    Digest(String),
    Invalid(String),
}

/// Renders a reference to the string used in URLs (`None` for an unknown manifest symbol).
pub fn reference_string(reference: &Reference, content: &Content) -> Option<String> {
    match reference {
        Reference::Tag(t) => Some(t.clone()),
        Reference::Digest(m) => content.manifest_digest(*m).map(str::to_string),
        Reference::Raw(s) => Some(s.clone()),
    }
}

/// The reference as sent in a URL (an unknown manifest symbol becomes a digest nothing has).
pub fn reference_text(reference: &Reference, content: &Content) -> String {
    reference_string(reference, content).unwrap_or_else(|| "sha256:unknown-manifest".into())
}

/// Classifies a reference as a valid tag, a valid digest, or neither.
pub fn classify_reference(reference: &Reference, content: &Content) -> RefKind {
    match reference_string(reference, content) {
        None => RefKind::Invalid(String::new()),
        Some(s) if s.contains(':') => {
            if is_valid_digest(&s) {
                RefKind::Digest(s)
            } else {
                RefKind::Invalid(s)
            }
        }
        Some(s) if is_valid_tag(&s) => RefKind::Tag(s),
        Some(s) => RefKind::Invalid(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammars() {
        assert!(is_valid_tag("latest") && is_valid_tag("_x") && is_valid_tag(&"a".repeat(128)));
        assert!(
            !is_valid_tag("-x")
                && !is_valid_tag(&"a".repeat(129))
                && !is_valid_tag("a:b")
                && !is_valid_tag("")
        );
        assert!(is_valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_valid_digest("sha256:xyz") && !is_valid_digest("md5:abc"));
        assert!(!is_valid_digest(&format!("sha256:{}", "A".repeat(64))));
    }
}
