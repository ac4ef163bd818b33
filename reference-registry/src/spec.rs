//! Grammars and vocabulary of the OCI Distribution Spec: repository names,
//! tags, digests (OCI image-spec), `Range` / `Content-Range` parsing, the
//! manifest media types, the error codes and the JSON error body.
//!
//! Every parser here is hand-written, exact, allocation-free where possible
//! and never panics on any input.

use bytes::Bytes;
use sha2::Digest as _;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Media type of blob bodies.
pub const OCTET_STREAM: &str = "application/octet-stream";
/// Media type of JSON bodies (errors, tag lists, catalog).
pub const JSON: &str = "application/json";

/// Whether `mt` is an image manifest type (has `config` + `layers`).
pub fn is_image_manifest_type(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

/// Whether `mt` is an index type (has `manifests`).
pub fn is_index_type(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
}

/// The media type of a `Content-Type` header value without parameters, trimmed.
pub fn media_type_essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component of a repository name:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_valid_name_component(c: &[u8]) -> bool {
    let mut i = 0;
    let n = c.len();
    loop {
        // an alphanumeric run is required here
        let start = i;
        while i < n && is_lower_alnum(c[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == n {
            return true;
        }
        // a separator
        match c[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < n && c[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < n && c[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// Longest accepted repository name (the spec's client limit of 255
/// characters for `host/name`; distribution enforces 255 on the name).
pub const NAME_MAX_LEN: usize = 255;

/// Repository name grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
/// at most [`NAME_MAX_LEN`] bytes.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX_LEN
        && name
            .as_bytes()
            .split(|&b| b == b'/')
            .all(is_valid_name_component)
}

/// Tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    if b.is_empty() || b.len() > 128 {
        return false;
    }
    (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
}

/// Supported digest algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The algorithm identifier as it appears in digests.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Parses a supported algorithm identifier.
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// A fresh incremental hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// The digest of `data` under this algorithm.
    pub fn digest(self, data: &[u8]) -> Digest {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }
}

/// Why a digest string was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestError {
    /// Does not match the OCI digest grammar.
    Malformed,
    /// Well-formed, but the algorithm is not sha256 or sha512.
    UnsupportedAlgorithm,
    /// Known algorithm, but the encoded part is not lowercase hex of the right length.
    BadEncoding,
}

impl std::fmt::Display for DigestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DigestError::Malformed => "digest does not match the OCI digest grammar",
            DigestError::UnsupportedAlgorithm => "unsupported digest algorithm",
            DigestError::BadEncoding => "digest encoding is not lowercase hex of the right length",
        })
    }
}

/// A validated digest of a supported algorithm. Cheap to compare and hash:
/// the canonical string form is kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    full: String,
    alg: Algorithm,
}

impl Digest {
    /// Parses `algorithm ":" encoded` per the OCI image-spec and checks that
    /// the algorithm is supported with its exact encoding.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (alg, enc) = s.split_once(':').ok_or(DigestError::Malformed)?;
        let lower_hex = |enc: &str| enc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        // Fast path (every digest a client sends): a known algorithm and its exact
        // encoding satisfy the grammar too.
        if let Some(algorithm) = Algorithm::parse(alg) {
            if enc.len() == algorithm.hex_len() && lower_hex(enc) {
                return Ok(Digest {
                    full: s.to_owned(),
                    alg: algorithm,
                });
            }
        }
        if !is_valid_algorithm(alg) || !is_valid_encoded(enc) {
            return Err(DigestError::Malformed);
        }
        let algorithm = Algorithm::parse(alg).ok_or(DigestError::UnsupportedAlgorithm)?;
        debug_assert!(enc.len() != algorithm.hex_len() || !lower_hex(enc));
        Err(DigestError::BadEncoding)
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The hex-encoded part.
    pub fn hex(&self) -> &str {
        &self.full[self.alg.as_str().len() + 1..]
    }

    /// The canonical `alg:hex` form.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.full)
    }
}

/// `algorithm ::= [a-z0-9]+ ([+._-] [a-z0-9]+)*`.
fn is_valid_algorithm(s: &str) -> bool {
    !s.is_empty()
        && s.as_bytes()
            .split(|&b| matches!(b, b'+' | b'.' | b'_' | b'-'))
            .all(|c| !c.is_empty() && c.iter().all(|&b| is_lower_alnum(b)))
}

/// `encoded ::= [a-zA-Z0-9=_-]+`.
fn is_valid_encoded(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

/// An incremental hasher (sha256 or sha512). `Clone` so that a chunk can be
/// rolled back.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The algorithm of this hasher.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// The final digest.
    pub fn finish(self) -> Digest {
        fn canonical(alg: Algorithm, sum: &[u8]) -> Digest {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut full = String::with_capacity(alg.as_str().len() + 1 + 2 * sum.len());
            full.push_str(alg.as_str());
            full.push(':');
            for b in sum {
                full.push(char::from(HEX[usize::from(b >> 4)]));
                full.push(char::from(HEX[usize::from(b & 15)]));
            }
            Digest { full, alg }
        }
        match self {
            Hasher::Sha256(h) => canonical(Algorithm::Sha256, &h.finalize()),
            Hasher::Sha512(h) => canonical(Algorithm::Sha512, &h.finalize()),
        }
    }
}

/// A parsed `Range` request header (RFC 9110 §14.2), single range only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=a-b` (a <= b).
    FromTo(u64, u64),
    /// `bytes=a-`.
    From(u64),
    /// `bytes=-n`.
    Suffix(u64),
}

/// The outcome of applying a `Range` to a representation of a known length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Inclusive byte positions to send with 206.
    Partial(u64, u64),
    /// 416 with `Content-Range: bytes */total`.
    Unsatisfiable,
}

/// Parses a run of ASCII digits, saturating on overflow. None if empty or not all digits.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Parses a `Range` header. Returns `None` for anything this registry ignores
/// (malformed, unknown unit, multiple ranges, `a > b`): the caller then
/// serves the full representation with 200, as RFC 9110 allows.
pub fn parse_range(header: &str) -> Option<RangeSpec> {
    let header = header.trim();
    let (unit, set) = header.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let set = set.trim();
    if set.contains(',') {
        return None;
    }
    let (a, b) = set.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return Some(RangeSpec::Suffix(parse_digits(b)?));
    }
    let first = parse_digits(a)?;
    if b.is_empty() {
        return Some(RangeSpec::From(first));
    }
    let last = parse_digits(b)?;
    if first > last {
        return None;
    }
    Some(RangeSpec::FromTo(first, last))
}

impl RangeSpec {
    /// Applies the range to a representation of `total` bytes.
    pub fn resolve(self, total: u64) -> RangeOutcome {
        match self {
            RangeSpec::FromTo(a, b) if a < total => RangeOutcome::Partial(a, b.min(total - 1)),
            RangeSpec::From(a) if a < total => RangeOutcome::Partial(a, total - 1),
            RangeSpec::Suffix(n) if n > 0 && total > 0 => {
                RangeOutcome::Partial(total.saturating_sub(n), total - 1)
            }
            _ => RangeOutcome::Unsatisfiable,
        }
    }
}

/// Parses an upload chunk's `Content-Range` header: `^[0-9]+-[0-9]+$`,
/// inclusive on both ends. `None` if malformed (or a number overflows u64).
pub fn parse_content_range(header: &str) -> Option<(u64, u64)> {
    let (a, b) = header.split_once('-')?;
    let strict = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    Some((strict(a)?, strict(b)?))
}

/// Parses a non-negative decimal integer (digits only, no sign), saturating.
pub fn parse_count(s: &str) -> Option<usize> {
    parse_digits(s).map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

/// The error codes of the Distribution Spec (code-1 ... code-14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
}

impl ErrorCode {
    /// The `code` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
        }
    }

    /// The spec's description, used as `message`.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "blob unknown to registry",
            ErrorCode::BlobUploadInvalid => "blob upload invalid",
            ErrorCode::BlobUploadUnknown => "blob upload unknown to registry",
            ErrorCode::DigestInvalid => "provided digest did not match uploaded content",
            ErrorCode::ManifestBlobUnknown => {
                "manifest references a manifest or blob unknown to registry"
            }
            ErrorCode::ManifestInvalid => "manifest invalid",
            ErrorCode::ManifestUnknown => "manifest unknown to registry",
            ErrorCode::NameInvalid => "invalid repository name",
            ErrorCode::NameUnknown => "repository name not known to registry",
            ErrorCode::SizeInvalid => "provided length did not match content length",
            ErrorCode::Unauthorized => "authentication required",
            ErrorCode::Denied => "requested access to the resource is denied",
            ErrorCode::Unsupported => "the operation is unsupported",
            ErrorCode::TooManyRequests => "too many requests",
        }
    }
}

/// One entry of an error body.
#[derive(Clone, Debug)]
pub struct ErrorEntry {
    pub code: ErrorCode,
    pub detail: serde_json::Value,
}

/// Serializes `{"errors":[{"code","detail","message"}, ...]}` (keys in the order `json!`
/// gave them, byte for byte), straight from the entries: no intermediate `Value` tree, one
/// buffer (error answers are the commonest answer a fuzzer gets).
pub fn error_body(entries: &[ErrorEntry]) -> Bytes {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        code: &'static str,
        detail: &'a serde_json::Value,
        message: &'static str,
    }
    #[derive(serde::Serialize)]
    struct Body<'a> {
        errors: Vec<Entry<'a>>,
    }
    let body = Body {
        errors: entries
            .iter()
            .map(|e| Entry {
                code: e.code.as_str(),
                detail: &e.detail,
                message: e.code.message(),
            })
            .collect(),
    };
    let mut out = Vec::with_capacity(96 * entries.len().max(1));
    serde_json::to_writer(&mut out, &body).expect("serializing to a Vec cannot fail");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "0",
            "library/ubuntu",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a/b/c",
            "a1-b2.c3__d4/e",
            "x/y.z",
            &"a".repeat(255),
        ] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "a..b",
            "a___b",
            "a_-b",
            "-a",
            "a-",
            "a.",
            "_a",
            "a b",
            "a:b",
            "a/B",
            "ä",
            "a/.b",
            "a/-",
            &"a".repeat(256),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn tags() {
        let long_ok = "a".repeat(128);
        let long_bad = "a".repeat(129);
        for ok in ["a", "_", "latest", "v1.2.3", "A_b-c.d", "_x", "9", &long_ok] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in ["", ".a", "-a", "a:b", "a/b", "a+b", "é", &long_bad, "a b"] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn digests() {
        let h256 = "a".repeat(64);
        let h512 = "0".repeat(128);
        let d = Digest::parse(&format!("sha256:{h256}")).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex(), h256);
        assert!(Digest::parse(&format!("sha512:{h512}")).is_ok());
        assert_eq!(
            Digest::parse(&format!("sha256:{}", "A".repeat(64))),
            Err(DigestError::BadEncoding)
        );
        assert_eq!(
            Digest::parse(&format!("sha256:{}", "a".repeat(63))),
            Err(DigestError::BadEncoding)
        );
        assert_eq!(
            Digest::parse(&format!("sha512:{h256}")),
            Err(DigestError::BadEncoding)
        );
        assert_eq!(
            Digest::parse("md5:abc"),
            Err(DigestError::UnsupportedAlgorithm)
        );
        assert_eq!(
            Digest::parse("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"),
            Err(DigestError::UnsupportedAlgorithm)
        );
        for bad in [
            "",
            ":",
            "sha256",
            "sha256:",
            ":abc",
            "SHA256:abc",
            "sha256::abc",
            "sha+:abc",
            "+sha:abc",
            "sha256:ab/c",
            "sha256:ab c",
            "sha256:ab+c",
        ] {
            assert_eq!(Digest::parse(bad), Err(DigestError::Malformed), "{bad}");
        }
        assert_eq!(
            Algorithm::Sha256.digest(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(Algorithm::Sha512
            .digest(b"")
            .as_str()
            .starts_with("sha512:cf83e1357eefb8bd"));
    }

    #[test]
    fn ranges() {
        use RangeOutcome::*;
        assert_eq!(parse_range("bytes=0-9"), Some(RangeSpec::FromTo(0, 9)));
        assert_eq!(parse_range("bytes=5-"), Some(RangeSpec::From(5)));
        assert_eq!(parse_range("bytes=-3"), Some(RangeSpec::Suffix(3)));
        assert_eq!(parse_range("Bytes = 1-2"), Some(RangeSpec::FromTo(1, 2)));
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=5-4",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=+1-2",
            "bytes 0-1",
            "bytes=1--2",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
        assert_eq!(RangeSpec::FromTo(0, 9).resolve(5), Partial(0, 4));
        assert_eq!(RangeSpec::FromTo(5, 9).resolve(5), Unsatisfiable);
        assert_eq!(RangeSpec::From(4).resolve(5), Partial(4, 4));
        assert_eq!(RangeSpec::From(0).resolve(0), Unsatisfiable);
        assert_eq!(RangeSpec::Suffix(3).resolve(5), Partial(2, 4));
        assert_eq!(RangeSpec::Suffix(30).resolve(5), Partial(0, 4));
        assert_eq!(RangeSpec::Suffix(0).resolve(5), Unsatisfiable);
        assert_eq!(RangeSpec::Suffix(1).resolve(0), Unsatisfiable);
        assert_eq!(
            parse_range("bytes=99999999999999999999999-"),
            Some(RangeSpec::From(u64::MAX))
        );
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-0"), Some((0, 0)));
        assert_eq!(parse_content_range("10-19"), Some((10, 19)));
        for bad in [
            "",
            "-",
            "0-",
            "-1",
            "bytes 0-1/2",
            "bytes=0-1",
            " 0-1",
            "0-1 ",
            "+0-1",
            "0-1-2",
            "99999999999999999999999-1",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn counts_and_media() {
        assert_eq!(parse_count("0"), Some(0));
        assert_eq!(parse_count("12"), Some(12));
        assert_eq!(parse_count("+1"), None);
        assert_eq!(parse_count("-1"), None);
        assert_eq!(parse_count(""), None);
        assert_eq!(parse_count("99999999999999999999999"), Some(usize::MAX));
        assert_eq!(media_type_essence("a/b ; charset=x"), "a/b");
        assert_eq!(media_type_essence(""), "");
    }

    #[test]
    fn error_bodies() {
        let b = error_body(&[ErrorEntry {
            code: ErrorCode::BlobUnknown,
            detail: serde_json::json!({"digest": "x"}),
        }]);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        // The same bytes as the `Value` tree the registry used to build.
        let tree = serde_json::json!({"errors": [{
            "code": "BLOB_UNKNOWN", "message": ErrorCode::BlobUnknown.message(),
            "detail": {"digest": "x"},
        }]});
        assert_eq!(b, tree.to_string().as_bytes());
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(v["errors"][0]["detail"]["digest"], "x");
    }
}
