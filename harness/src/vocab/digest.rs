//! Content digests: `algo:hex` strings of the OCI image spec.

use super::ids::DigestAlgo;
use sha2::{Digest as _, Sha256, Sha512};

/// `algo:hex` digest of `bytes`.
pub fn digest_of(algo: DigestAlgo, bytes: &[u8]) -> String {
    match algo {
        DigestAlgo::Sha256 => format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
        DigestAlgo::Sha512 => format!("sha512:{}", hex::encode(Sha512::digest(bytes))),
    }
}

/// Hex sha256 of `bytes` (no algorithm prefix).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The algorithm a `algo:hex` digest names (anything but `sha512:` reads as sha256).
pub fn algo_of(digest: &str) -> DigestAlgo {
    if digest.starts_with("sha512:") {
        DigestAlgo::Sha512
    } else {
        DigestAlgo::Sha256
    }
}

/// Whether `bytes` have the digest `digest` (under the algorithm it names).
pub fn digest_matches(digest: &str, bytes: &[u8]) -> bool {
    digest_of(algo_of(digest), bytes) == digest
}
