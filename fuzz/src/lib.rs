//! Fuzz-target bodies for ocidiff (issue 6). Every target is a plain `pub fn` here so that
//! the same check runs three ways:
//!
//! * under libFuzzer (`fuzz_targets/<name>.rs`, thin `fuzz_target!` wrappers, built with
//!   `cargo fuzz build --features libfuzzer`, see `README.md`);
//! * as an ordinary `cargo test` over `corpora/fuzz/<name>/*` on stable (`tests/corpus.rs`);
//! * from the ClusterFuzzLite / OSS-Fuzz build (`.clusterfuzzlite/build.sh`).
//!
//! A target "finds something" by panicking (an `assert!` of its property, or a panic inside
//! the code under test). Every target is bounded: inputs are truncated, loops capped.
//!
//! | target | code under test | property |
//! |---|---|---|
//! | `digest` | `spec::Digest::parse`, `state::is_valid_digest` | round trip; registry vs harness vs OCI-grammar regex |
//! | `digest_verify` | `spec::Algorithm::digest`, `spec::Hasher`, `content::digest_of` | one-shot = chunked = harness |
//! | `reference` | `spec::is_valid_name` / `is_valid_tag`, `state::is_valid_tag`, `state::classify_reference` | registry vs harness vs spec regex |
//! | `range` | `spec::parse_range` + `resolve`, `parse_content_range`, `parse_count` | print -> parse; bounds |
//! | `link` | `observe::parse_link`, `link_next`, `normalize_location` | render -> parse; idempotence |
//! | `www_authenticate` | the registry's challenges, `auth::parse_challenges` / `parse_bearer` | challenge -> parse; render -> parse; no 5xx |
//! | `scenario` | `scenario::from_str` / `to_string` | parse -> write -> parse equal |
//! | `observe` | `observe::body_facts` | no panic; facts agree with the body |
//! | `manifest` | the registry's manifest PUT (JSON parsing and validation) | no 5xx; 201 => readable, byte-identical, digest right |
//! | `registry` | the whole reference registry, in process | acknowledged => readable; deleted => gone; tag lists sorted, honour `n` |

pub mod registry;

use reference_registry::spec;
use std::sync::OnceLock;

/// Longest input a string target looks at (keeps every execution fast).
pub const MAX_INPUT: usize = 4096;

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&data[..data.len().min(MAX_INPUT)])
}

fn regex(cell: &'static OnceLock<regex::Regex>, pattern: &str) -> &'static regex::Regex {
    cell.get_or_init(|| regex::Regex::new(pattern).expect("static regex"))
}

// ------------------------------------------------------------------------------------ digest

/// The OCI image-spec digest grammar, literally:
/// `algorithm ":" encoded`, `algorithm ::= component (separator component)*`,
/// `component ::= [a-z0-9]+`, `separator ::= [+._-]`, `encoded ::= [a-zA-Z0-9=_-]+`.
fn oci_digest_grammar(s: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    regex(&RE, r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$").is_match(s)
}

/// The registry's classification of a digest string, recomputed from the spec's regexes.
fn expected_digest_class(s: &str) -> Result<spec::Algorithm, spec::DigestError> {
    static SHA256: OnceLock<regex::Regex> = OnceLock::new();
    static SHA512: OnceLock<regex::Regex> = OnceLock::new();
    if !oci_digest_grammar(s) {
        return Err(spec::DigestError::Malformed);
    }
    let (alg, enc) = s.split_once(':').expect("grammar has a colon");
    let (alg, re) = match alg {
        "sha256" => (spec::Algorithm::Sha256, regex(&SHA256, r"^[a-f0-9]{64}$")),
        "sha512" => (spec::Algorithm::Sha512, regex(&SHA512, r"^[a-f0-9]{128}$")),
        _ => return Err(spec::DigestError::UnsupportedAlgorithm),
    };
    if re.is_match(enc) {
        Ok(alg)
    } else {
        Err(spec::DigestError::BadEncoding)
    }
}

/// `digest`: `Digest::parse` against the OCI grammar (regex), the harness's
/// `state::is_valid_digest`, and its own printed form.
pub fn digest(data: &[u8]) {
    let s = text(data);
    let s = s.as_ref();
    let parsed = spec::Digest::parse(s);
    // differential: registry vs the image-spec regexes
    assert_eq!(
        parsed.as_ref().map(|d| d.algorithm()).map_err(|e| *e),
        expected_digest_class(s),
        "Digest::parse disagrees with the OCI digest grammar on {s:?}"
    );
    // differential: registry vs harness
    assert_eq!(
        parsed.is_ok(),
        ocidiff::model::is_valid_digest(s),
        "registry Digest::parse and harness state::is_valid_digest disagree on {s:?}"
    );
    if let Ok(d) = parsed {
        // round trip: parse -> print -> parse
        assert_eq!(d.as_str(), s);
        assert_eq!(d.to_string(), s);
        assert_eq!(spec::Digest::parse(d.as_str()).as_ref(), Ok(&d));
        assert_eq!(
            format!("{}:{}", d.algorithm().as_str(), d.hex()),
            s,
            "algorithm + hex reassemble the digest"
        );
        assert_eq!(
            spec::Algorithm::parse(d.algorithm().as_str()),
            Some(d.algorithm())
        );
    }
    // the algorithm parser alone
    if let Some(a) = spec::Algorithm::parse(s) {
        assert_eq!(a.as_str(), s);
    }
}

/// `digest_verify`: the registry's one-shot digest, its incremental `Hasher` fed in the
/// chunks the input describes, and the harness's `content::digest_of` agree; every
/// computed digest parses.
pub fn digest_verify(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let body = &rest[..rest.len().min(1 << 16)];
    let (alg, halg) = if ctl & 1 == 0 {
        (spec::Algorithm::Sha256, ocidiff::vocab::DigestAlgo::Sha256)
    } else {
        (spec::Algorithm::Sha512, ocidiff::vocab::DigestAlgo::Sha512)
    };
    let one_shot = alg.digest(body);
    // chunked: split points derived from the control byte
    let step = usize::from(ctl >> 1).max(1);
    let mut h = alg.hasher();
    assert_eq!(h.algorithm(), alg);
    for chunk in body.chunks(step) {
        // a rolled-back chunk (Clone) must not influence the result
        let mut scratch = h.clone();
        scratch.update(b"rolled back");
        h.update(chunk);
    }
    let chunked = h.finish();
    assert_eq!(one_shot, chunked, "one-shot and chunked digests differ");
    assert_eq!(
        one_shot.as_str(),
        ocidiff::vocab::content::digest_of(halg, body),
        "registry and harness digests differ"
    );
    if alg == spec::Algorithm::Sha256 {
        assert_eq!(one_shot.hex(), ocidiff::vocab::content::sha256_hex(body));
    }
    let reparsed = spec::Digest::parse(one_shot.as_str()).expect("computed digests parse");
    assert_eq!(reparsed, one_shot);
    assert!(ocidiff::model::is_valid_digest(one_shot.as_str()));
}

// --------------------------------------------------------------------------------- reference

/// The Distribution Spec's repository name regex (and its 255-byte limit in this registry).
fn name_regex(s: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    s.len() <= spec::NAME_MAX_LEN
        && regex(
            &RE,
            r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$",
        )
        .is_match(s)
}

/// The Distribution Spec's tag regex.
fn tag_regex(s: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    regex(&RE, r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").is_match(s)
}

/// `reference`: repository name, tag and manifest-reference grammars. Registry vs harness vs
/// the spec's regexes, on the whole input and on each `/`- and `:`-separated part.
pub fn reference(data: &[u8]) {
    let s = text(data);
    let s = s.as_ref();
    let mut candidates: Vec<&str> = vec![s];
    candidates.extend(s.split('\n').take(16));
    if let Some((name, r)) = s.rsplit_once(':') {
        candidates.push(name);
        candidates.push(r);
    }
    if let Some((name, r)) = s.split_once('@') {
        candidates.push(name);
        candidates.push(r);
    }
    for c in candidates {
        check_reference(c);
    }
}

fn check_reference(s: &str) {
    let name_ok = spec::is_valid_name(s);
    assert_eq!(
        name_ok,
        name_regex(s),
        "is_valid_name vs spec regex on {s:?}"
    );
    if name_ok {
        // every component of a valid name is itself a valid (one-component) name
        for comp in s.split('/') {
            assert!(spec::is_valid_name(comp), "component {comp:?} of {s:?}");
        }
    }
    let reg_tag = spec::is_valid_tag(s);
    assert_eq!(
        reg_tag,
        ocidiff::model::is_valid_tag(s),
        "registry spec::is_valid_tag vs harness state::is_valid_tag on {s:?}"
    );
    assert_eq!(reg_tag, tag_regex(s), "is_valid_tag vs spec regex on {s:?}");

    // A manifest reference: how the harness model classifies it must match how the registry
    // routes it (contains ':' => digest, else tag).
    let content = ocidiff::vocab::content::Content::default();
    let kind =
        ocidiff::model::classify_reference(&ocidiff::vocab::Reference::Raw(s.to_owned()), &content);
    let registry_kind = if s.contains(':') {
        match spec::Digest::parse(s) {
            Ok(_) => "digest",
            Err(_) => "invalid",
        }
    } else if reg_tag {
        "tag"
    } else {
        "invalid"
    };
    let harness_kind = match &kind {
        ocidiff::model::RefKind::Tag(t) => {
            assert_eq!(t, s);
            "tag"
        }
        ocidiff::model::RefKind::Digest(d) => {
            assert_eq!(d, s);
            "digest"
        }
        ocidiff::model::RefKind::Invalid(_) => "invalid",
    };
    assert_eq!(
        harness_kind, registry_kind,
        "harness classify_reference vs registry on {s:?}"
    );
}

// ------------------------------------------------------------------------------------- range

/// `range`: `Range` / `Content-Range` / `n=` parsers. Canonical printing parses back to the
/// same value; resolving against any length stays inside the representation.
pub fn range(data: &[u8]) {
    let (total, s) = if data.len() >= 8 {
        let mut t = [0u8; 8];
        t.copy_from_slice(&data[..8]);
        (u64::from_le_bytes(t), text(&data[8..]))
    } else {
        (data.len() as u64, text(data))
    };
    let s = s.as_ref();
    // small totals matter most; use the raw value every other time
    let total = if total & 1 == 0 { total % 4096 } else { total };
    for line in std::iter::once(s).chain(s.lines().take(8)) {
        check_range(line, total);
        check_content_range(line);
        check_count(line);
    }
}

fn check_range(header: &str, total: u64) {
    let Some(r) = spec::parse_range(header) else {
        return;
    };
    let printed = match r {
        spec::RangeSpec::FromTo(a, b) => {
            assert!(a <= b, "FromTo({a}, {b}) from {header:?}");
            format!("bytes={a}-{b}")
        }
        spec::RangeSpec::From(a) => format!("bytes={a}-"),
        spec::RangeSpec::Suffix(n) => format!("bytes=-{n}"),
    };
    assert_eq!(
        spec::parse_range(&printed),
        Some(r),
        "print -> parse of {printed:?}"
    );
    for t in [total, 0, 1, u64::MAX] {
        match r.resolve(t) {
            spec::RangeOutcome::Partial(a, b) => {
                assert!(a <= b && b < t, "{r:?}.resolve({t}) = ({a}, {b})");
                match r {
                    spec::RangeSpec::FromTo(x, y) => {
                        assert_eq!(a, x);
                        assert_eq!(b, y.min(t - 1));
                    }
                    spec::RangeSpec::From(x) => assert_eq!((a, b), (x, t - 1)),
                    spec::RangeSpec::Suffix(n) => {
                        assert_eq!(b, t - 1);
                        assert_eq!(b - a + 1, n.min(t));
                    }
                }
            }
            spec::RangeOutcome::Unsatisfiable => match r {
                spec::RangeSpec::FromTo(x, _) | spec::RangeSpec::From(x) => assert!(x >= t),
                spec::RangeSpec::Suffix(n) => assert!(n == 0 || t == 0),
            },
        }
    }
}

fn check_content_range(header: &str) {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let parsed = spec::parse_content_range(header);
    let re = regex(&RE, r"^([0-9]+)-([0-9]+)$");
    let expected = re
        .captures(header)
        .and_then(|c| Some((c[1].parse::<u64>().ok()?, c[2].parse::<u64>().ok()?)));
    assert_eq!(parsed, expected, "parse_content_range on {header:?}");
    if let Some((a, b)) = parsed {
        assert_eq!(spec::parse_content_range(&format!("{a}-{b}")), Some((a, b)));
    }
}

fn check_count(s: &str) {
    let parsed = spec::parse_count(s);
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    assert_eq!(parsed.is_some(), digits, "parse_count on {s:?}");
    if let Some(n) = parsed {
        match s.parse::<usize>() {
            Ok(exact) => assert_eq!(n, exact),
            Err(_) => assert_eq!(n, usize::MAX, "saturates"),
        }
        assert_eq!(spec::parse_count(&n.to_string()), Some(n));
    }
    // media type essence: a prefix of the input, trimmed, without ';'
    let e = spec::media_type_essence(s);
    assert!(!e.contains(';') && e.trim() == e && s.contains(e));
}

// -------------------------------------------------------------------------------------- link

/// `link`: `observe::parse_link` on arbitrary text (no panic), then the round trip of links
/// rendered from the input, `link_next` on them, and `normalize_location` idempotence.
pub fn link(data: &[u8]) {
    let s = text(data);
    let s = s.as_ref();
    let parsed = ocidiff::observe::parse_link(s);
    assert!(parsed.len() <= s.matches('<').count());

    // Round trip: targets are the input's lines without '<' and '>', rels are [a-z ]+.
    let links: Vec<(String, String)> = s
        .lines()
        .take(8)
        .map(|l| {
            let (target, rel) = l.split_once('|').unwrap_or((l, "next"));
            let target: String = target.chars().filter(|c| !matches!(c, '<' | '>')).collect();
            let rel: String = rel
                .chars()
                .filter(|c| c.is_ascii_lowercase() || *c == ' ')
                .collect();
            (target, rel)
        })
        .collect();
    let rendered = links
        .iter()
        .map(|(t, r)| format!("<{t}>; rel=\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let back = ocidiff::observe::parse_link(&rendered);
    let expected: Vec<(String, Option<String>)> = links
        .iter()
        .map(|(t, r)| (t.clone(), Some(r.clone())))
        .collect();
    assert_eq!(back, expected, "render -> parse of {rendered:?}");

    let base = url::Url::parse("http://127.0.0.1:5000/v2/fz/r0/tags/list?n=2").expect("base");
    if let Ok(v) = http::HeaderValue::from_str(&rendered) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::LINK, v);
        let next = ocidiff::observe::link_next(&base, &headers);
        let trimmed = ocidiff::observe::parse_link(rendered.trim());
        let want = trimmed
            .iter()
            .find(|(_, r)| {
                r.as_deref()
                    .is_some_and(|r| r.split_whitespace().any(|w| w == "next"))
            })
            .and_then(|(t, _)| base.join(t).ok());
        assert_eq!(next, want, "link_next of {rendered:?}");
    }

    // Location normalization: never panics; normalizing its own output changes nothing for
    // http(s) URLs (other schemes have opaque paths the URL parser re-encodes).
    for raw in std::iter::once(s).chain(s.lines().take(4)) {
        let (norm, form) = ocidiff::observe::normalize_location(&base, raw);
        assert!(matches!(
            form,
            "absolute" | "relative" | "foreign" | "invalid"
        ));
        let http = base
            .join(raw)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        // Checked on printable ASCII locations (the URL parser re-encodes other bytes).
        let plain = raw.bytes().all(|b| b.is_ascii_graphic());
        if http && plain && (form == "relative" || form == "absolute") {
            let (again, _) = ocidiff::observe::normalize_location(&base, &norm);
            assert_eq!(again, norm, "normalize_location not idempotent on {raw:?}");
        }
    }
}

// ---------------------------------------------------------------------------- observe bodies

/// `observe`: `observe::body_facts` for every endpoint kind; the facts agree with the body.
pub fn observe(data: &[u8]) {
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    const ENDPOINTS: [&str; 8] = [
        "end-2", "end-3", "end-8a", "end-8b", "end-12a", "end-12b", "catalog", "end-1",
    ];
    const STATUSES: [u16; 8] = [200, 201, 202, 206, 400, 404, 416, 500];
    let endpoint = ENDPOINTS[usize::from(ctl & 7)];
    let status = STATUSES[usize::from((ctl >> 3) & 7)];
    let method = if ctl & 0x40 != 0 { "HEAD" } else { "GET" };
    let body = &body[..body.len().min(1 << 16)];
    let facts = ocidiff::observe::body_facts(endpoint, method, status, body);
    use ocidiff::vocab::exchange::BodyFacts;
    match &facts {
        BodyFacts::Empty => assert!(method == "HEAD" || body.is_empty()),
        BodyFacts::Content { len, sha256 } => {
            assert_eq!(*len, body.len() as u64);
            assert_eq!(sha256, &ocidiff::vocab::content::sha256_hex(body));
        }
        BodyFacts::Other { len, .. } => assert_eq!(*len, body.len() as u64),
        BodyFacts::Errors { .. } => assert!(status >= 400),
        BodyFacts::Tags { .. } | BodyFacts::Referrers { .. } | BodyFacts::Catalog { .. } => {
            assert!((200..300).contains(&status))
        }
    }
    // facts serialize (they end up in findings.json)
    let json = serde_json::to_string(&facts).expect("facts serialize");
    let back: BodyFacts = serde_json::from_str(&json).expect("facts deserialize");
    assert_eq!(back, facts);
}

// ---------------------------------------------------------------------------------- scenario

/// `scenario`: `scenario::from_str` never panics; an accepted scenario survives
/// `to_string` -> `from_str` unchanged.
pub fn scenario(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(&data[..data.len().min(1 << 15)]) else {
        return;
    };
    let file = std::path::Path::new("fuzz.toml");
    let Ok(sc) = ocidiff::scenario::from_str(s, file) else {
        return;
    };
    let written = ocidiff::scenario::to_string(&sc).expect("an accepted scenario serializes");
    let back = ocidiff::scenario::from_str(&written, file)
        .unwrap_or_else(|e| panic!("written scenario does not parse: {e}\n{written}"));
    assert_eq!(
        back, sc,
        "scenario parse -> write -> parse changed it:\n{written}"
    );
    assert_eq!(
        ocidiff::scenario::to_string(&back).expect("serializes"),
        written,
        "writing is deterministic"
    );
}

// ------------------------------------------------------------------------- www-authenticate

/// `www_authenticate`: the registry's `WWW-Authenticate` challenges (token and basic modes,
/// arbitrary `Host` and `Authorization` headers, arbitrary token-endpoint queries) are
/// well-formed and never come with a 5xx; with feature `parse-bearer` the harness's challenge
/// parser is fuzzed directly and must read the registry's challenges back.
pub fn www_authenticate(data: &[u8]) {
    registry::www_authenticate(data);
    #[cfg(feature = "parse-bearer")]
    parse_bearer(data);
}

/// Quotes `v` as an RFC 7230 quoted-string.
#[cfg(feature = "parse-bearer")]
fn quoted_string(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The harness's challenge parsers (`auth::parse_challenges`, `auth::parse_bearer`) on raw
/// input (never panic, bounded), and the round trip of challenges rendered from the input:
/// `Basic realm=.., Bearer realm=..,service=..,scope=..` with quoted-string escaping reads back
/// exactly.
#[cfg(feature = "parse-bearer")]
pub fn parse_bearer(data: &[u8]) {
    use ocidiff::execute::auth::{parse_bearer, parse_challenges};
    let s = text(data);
    let s = s.as_ref();
    let all = parse_challenges(s);
    assert!(all.len() <= 64, "unbounded challenge list");
    for c in &all {
        assert!(!c.scheme.is_empty());
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
    }
    if let Some(params) = parse_bearer(s) {
        assert!(params.contains_key("realm"));
        assert!(all
            .iter()
            .any(|c| c.scheme == "bearer" && c.params == params));
    }
    // round trip
    let vals: Vec<&str> = s.split('\n').chain(std::iter::repeat("")).take(4).collect();
    let challenge = format!(
        "Basic realm={}, Bearer realm={},service={},scope={}",
        quoted_string(vals[0]),
        quoted_string(vals[1]),
        quoted_string(vals[2]),
        quoted_string(vals[3]),
    );
    // The parser reads at most 8 KiB of a header value (harness auth::MAX_CHALLENGE_LEN).
    if challenge.len() > 8 * 1024 {
        return;
    }
    let parsed = parse_challenges(&challenge);
    assert_eq!(parsed.len(), 2, "{challenge:?} -> {parsed:?}");
    assert_eq!(parsed[0].scheme, "basic");
    assert_eq!(
        parsed[0].params.get("realm").map(String::as_str),
        Some(vals[0])
    );
    let p = parse_bearer(&challenge)
        .unwrap_or_else(|| panic!("rendered challenge not parsed: {challenge:?}"));
    assert_eq!(
        p.get("realm").map(String::as_str),
        Some(vals[1]),
        "{challenge:?}"
    );
    assert_eq!(
        p.get("service").map(String::as_str),
        Some(vals[2]),
        "{challenge:?}"
    );
    assert_eq!(
        p.get("scope").map(String::as_str),
        Some(vals[3]),
        "{challenge:?}"
    );
}

/// A parsed challenge: scheme and auth-params in order.
pub type Challenge = (String, Vec<(String, String)>);

/// Parses a `WWW-Authenticate` challenge strictly per RFC 7235 (scheme, then `k="v"` /
/// `k=token` auth-params separated by commas). Used to check the registry's challenges.
pub fn parse_challenge_strict(s: &str) -> Option<Challenge> {
    let (scheme, mut rest) = match s.split_once(' ') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let mut params = Vec::new();
    while !rest.is_empty() {
        let (k, v) = rest.split_once('=')?;
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        let (val, tail) = if let Some(q) = v.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = v.find(',').unwrap_or(v.len());
            (&v[..end], &v[end..])
        };
        params.push((k.to_owned(), val.to_owned()));
        rest = match tail.strip_prefix(',') {
            Some(t) => t,
            None if tail.is_empty() => tail,
            None => return None,
        };
    }
    Some((scheme.to_owned(), params))
}

/// A target: its name (= `fuzz_targets/<name>.rs`, `corpora/fuzz/<name>/`) and its check.
pub type Target = (&'static str, fn(&[u8]));

/// All target names with their entry points (used by the corpus replay test).
pub const TARGETS: &[Target] = &[
    ("digest", digest),
    ("digest_verify", digest_verify),
    ("reference", reference),
    ("range", range),
    ("link", link),
    ("observe", observe),
    ("scenario", scenario),
    ("www_authenticate", www_authenticate),
    ("manifest", registry::manifest),
    ("registry", registry::registry_bytes),
];
