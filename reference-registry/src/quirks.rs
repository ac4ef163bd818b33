//! Quirks: behaviours the spec allows and real registries have, which the reference can take
//! on (`reference-registry --quirk NAME` or `--profile NAME`). They are the counterpart of the
//! test-only [`crate::Faults`]: a fault is a bug, a quirk is allowed. ocidiff's false-alarm suite
//! fuzzes the reference against the reference with each quirk (and all of them) and requires
//! zero violations; client authors can test against behaviours of registries they cannot run.
//!
//! Every check lives here as a small function; handlers call these instead of reading fields.

/// Which spec-allowed behaviours are on. `Quirks::default()` is the reference's own choice
/// for every alternative (see README "Spec choices").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Manifests whose blobs or child manifests are missing are rejected with
    /// `MANIFEST_BLOB_UNKNOWN` ("A registry MAY reject ..."). Default: accepted.
    pub reject_missing_refs: bool,
    /// Tags in lexical (case-insensitive) order, ties lowercase first; `last` in that order.
    pub tags_lexical: bool,
    /// Full tag pages without a `Link` header (clients continue with `last`).
    pub tags_no_link: bool,
    /// `Link` with an opaque `next_page` token instead of `last`.
    pub link_opaque: bool,
    /// Blob `GET` / `HEAD` answered with a 307 to a storage URL whose answer has no
    /// `Docker-Content-Digest` (S3-backed registries).
    pub redirect_blobs: bool,
    /// sha512 is not supported: uploads and manifests naming it are declined with 400.
    pub no_sha512: bool,
    /// Single-POST uploads are declined with 202 and an upload session (the body is ignored).
    pub single_post_202: bool,
    /// Cross-repository mounts are declined with 202 and an upload session.
    pub mount_202: bool,
    /// Deletes of manifests, tags and blobs are disabled (405).
    pub no_delete: bool,
    /// No referrers API (404) and no `OCI-Subject` header.
    pub no_referrers: bool,
    /// Upload `Location`s are absolute and carry opaque state (`?_state=`) that later requests
    /// must send back.
    pub absolute_location: bool,
    /// `?tag=` on manifest pushes by digest is ignored (no `OCI-Tag`).
    pub no_tag_param: bool,
    /// `OCI-Chunk-Min-Length` is advertised; an upload with a non-final chunk below it is
    /// rejected when closed (400 `BLOB_UPLOAD_INVALID`).
    pub chunk_min: Option<u64>,
    /// Tags outlive the manifest they point to when it is deleted by digest (still listed;
    /// pulls by them answer 404).
    pub dangling_tags: bool,
    /// A manifest push without `Content-Type` is rejected (400 `MANIFEST_INVALID`).
    pub require_content_type: bool,
    /// `PATCH` without `Content-Range` (a streamed upload, not defined by the spec) is rejected
    /// (400 `BLOB_UPLOAD_INVALID`).
    pub no_streamed_patch: bool,
    /// Referrers answered in pages of one descriptor, each but the last with a `Link` to the
    /// next (`?after=<digest>`, the registry's own cursor): "A `Link` header MUST be included
    /// in the response when the descriptor list cannot be returned in a single manifest."
    pub referrers_paged: bool,
    /// A blob `DELETE` is refused (405 `DENIED`) while a manifest of the repository names it
    /// (zot, olareg and others keep what a stored manifest needs; "If blob deletion is
    /// disabled, the registry MUST respond with either a `400 Bad Request` or a `405 Method
    /// Not Allowed`"). The blob stays pullable.
    pub keep_referenced_blobs: bool,
    /// A manifest pushed by a sha512 digest, or naming sha512 content anywhere (its blobs,
    /// children, `subject`), is rejected with 400 `MANIFEST_INVALID` (distribution 3, which
    /// does not support sha512: "if the client provided digest is invalid or uses an
    /// unsupported algorithm, the registry SHOULD respond with a response code `400 Bad
    /// Request`", no code required), whatever else is wrong with it.
    pub sha512_manifest_invalid: bool,
    /// At most this many upload sessions open at once; a `POST` beyond answers `429
    /// TOOMANYREQUESTS` with `Retry-After: 1` (a registry protecting itself, as nora-registry
    /// does with 100; hosted registries have quotas too).
    pub max_open_sessions: Option<usize>,
    /// At most this many requests a second (all clients together); beyond, `429
    /// TOOMANYREQUESTS` with `Retry-After: 1`: a hosted registry's rate limit ("Throttling
    /// is the service protecting itself").
    pub rate_limit: Option<u32>,
    /// Every answer delayed by this many milliseconds (a registry across a network).
    pub latency_ms: Option<u64>,
    /// The rate limit's window (shared by clones, not part of equality).
    pub window: RateWindow,
    /// How often each quirk changed an answer (shared by clones; not part of equality).
    pub hits: QuirkHits,
}

/// Counts of answers each quirk changed, shared by every clone of a [`Quirks`]: a test can
/// check that a quirk was exercised at all.
#[derive(Clone, Debug, Default)]
pub struct QuirkHits(
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>>,
);

impl PartialEq for QuirkHits {
    fn eq(&self, _: &QuirkHits) -> bool {
        true
    }
}
impl Eq for QuirkHits {}

impl QuirkHits {
    /// Answers quirk `name` changed so far.
    pub fn get(&self, name: &str) -> u64 {
        let base = name.split(':').next().unwrap_or(name);
        self.0
            .lock()
            .map(|m| m.get(base).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// The current second's request count of quirk `rate_limit`, shared by every clone.
#[derive(Clone, Debug, Default)]
pub struct RateWindow(std::sync::Arc<std::sync::Mutex<Option<(std::time::Instant, u32)>>>);

impl PartialEq for RateWindow {
    fn eq(&self, _: &RateWindow) -> bool {
        true
    }
}
impl Eq for RateWindow {}

/// One quirk: its name, what it does and where real registries do it.
pub struct QuirkInfo {
    pub name: &'static str,
    pub what: &'static str,
}

/// A named set of quirks modelled on a real registry, with the public sources.
pub struct Profile {
    pub name: &'static str,
    pub quirks: &'static [&'static str],
    pub sources: &'static [&'static str],
}

impl Quirks {
    /// Every quirk (`chunk_min` is named `chunk_min:<bytes>`; `chunk_min` alone means 1 MiB).
    pub const ALL: &'static [QuirkInfo] = &[
        QuirkInfo { name: "reject_missing_refs", what: "manifests with missing blobs / children rejected with MANIFEST_BLOB_UNKNOWN" },
        QuirkInfo { name: "tags_lexical", what: "tags in case-insensitive order (ties lowercase first), `last` in that order" },
        QuirkInfo { name: "tags_no_link", what: "full tag pages without Link" },
        QuirkInfo { name: "link_opaque", what: "tag Link with an opaque next_page token" },
        QuirkInfo { name: "redirect_blobs", what: "blob GET/HEAD redirected (307) to storage without Docker-Content-Digest" },
        QuirkInfo { name: "no_sha512", what: "sha512 declined with 400" },
        QuirkInfo { name: "single_post_202", what: "single-POST uploads declined with 202 + session" },
        QuirkInfo { name: "mount_202", what: "mounts declined with 202 + session" },
        QuirkInfo { name: "no_delete", what: "deletes disabled (405)" },
        QuirkInfo { name: "no_referrers", what: "no referrers API (404), no OCI-Subject" },
        QuirkInfo { name: "absolute_location", what: "absolute upload Locations with opaque ?_state=" },
        QuirkInfo { name: "no_tag_param", what: "?tag= ignored on pushes by digest" },
        QuirkInfo { name: "chunk_min", what: "OCI-Chunk-Min-Length advertised (chunk_min:<bytes>, default 1 MiB); smaller non-final chunks fail the close" },
        QuirkInfo { name: "dangling_tags", what: "tags outlive their manifest's deletion" },
        QuirkInfo { name: "require_content_type", what: "manifest push without Content-Type rejected" },
        QuirkInfo { name: "no_streamed_patch", what: "PATCH without Content-Range rejected" },
        QuirkInfo { name: "referrers_paged", what: "referrers in pages of one descriptor with Link rel=\"next\" (?after= cursor)" },
        QuirkInfo { name: "rate_limit", what: "at most rate_limit:<n> requests a second (default 200); beyond, 429 TOOMANYREQUESTS with Retry-After: 1" },
        QuirkInfo { name: "latency", what: "every answer delayed by latency:<ms> milliseconds (default 50)" },
        QuirkInfo { name: "max_open_sessions", what: "at most max_open_sessions:<n> (default 50) upload sessions open; the next POST gets 429 TOOMANYREQUESTS with Retry-After: 1" },
        QuirkInfo { name: "sha512_manifest_invalid", what: "manifests pushed by or naming a sha512 digest rejected with 400 MANIFEST_INVALID (distribution 3)" },
        QuirkInfo { name: "keep_referenced_blobs", what: "blob DELETE refused (405 DENIED) while a manifest of the repository names the blob; it stays pullable" },
    ];

    /// Profiles of real registries.
    pub const PROFILES: &'static [Profile] = &[
        Profile {
            name: "distribution-2.8",
            quirks: &[
                "reject_missing_refs",
                "single_post_202",
                "absolute_location",
                "no_referrers",
                "no_tag_param",
                "require_content_type",
                "no_delete",
            ],
            sources: &[
                "CNCF distribution 2.8.2 (Debian docker-registry), observed by ocidiff's tests: single POST ?digest= answered 202 with a session, Location absolute with ?_state=, manifest PUT without Content-Type 400 MANIFEST_INVALID, missing blobs 400 MANIFEST_BLOB_UNKNOWN, /referrers 404",
                "distribution/distribution#3859: the referrers API is not part of distribution 2.x",
                "distribution docs, storage.delete.enabled: deletes are off unless configured",
            ],
        },
        Profile {
            name: "ghcr",
            quirks: &["no_referrers"],
            sources: &[
                "rtvkiz/minimal#7 (2026): GHCR answers 404 to the referrers API",
                "actions/attest-build-provenance#71: GHCR does not support the referrers API; clients use the tag schema",
            ],
        },
        Profile {
            name: "ecr",
            quirks: &["chunk_min:5242880"],
            sources: &[
                "Amazon ECR API, UploadLayerPart / InitiateLayerUpload: layers are uploaded in parts, non-final parts at least 5 MiB (partSize)",
            ],
        },
        Profile {
            name: "quay",
            quirks: &["link_opaque", "tags_lexical"],
            sources: &[
                "deitch/docker_registry2#56, TritonDataCenter/node-docker-registry-client#12: quay.io's tag Link carries an opaque next_page token",
                "quay/quay#2884 (PROJQUAY-6931): tags are returned in lexical order",
            ],
        },
    ];

    /// Turns one quirk on by name; `Err` names the unknown quirk.
    pub fn enable(&mut self, name: &str) -> Result<(), String> {
        let (base, arg) = match name.split_once(':') {
            Some((b, a)) => (b, Some(a)),
            None => (name, None),
        };
        let flag = match base {
            "reject_missing_refs" => &mut self.reject_missing_refs,
            "tags_lexical" => &mut self.tags_lexical,
            "tags_no_link" => &mut self.tags_no_link,
            "link_opaque" => &mut self.link_opaque,
            "redirect_blobs" => &mut self.redirect_blobs,
            "no_sha512" => &mut self.no_sha512,
            "single_post_202" => &mut self.single_post_202,
            "mount_202" => &mut self.mount_202,
            "no_delete" => &mut self.no_delete,
            "no_referrers" => &mut self.no_referrers,
            "absolute_location" => &mut self.absolute_location,
            "no_tag_param" => &mut self.no_tag_param,
            "dangling_tags" => &mut self.dangling_tags,
            "require_content_type" => &mut self.require_content_type,
            "no_streamed_patch" => &mut self.no_streamed_patch,
            "referrers_paged" => &mut self.referrers_paged,
            "keep_referenced_blobs" => &mut self.keep_referenced_blobs,
            "sha512_manifest_invalid" => &mut self.sha512_manifest_invalid,
            "rate_limit" => {
                self.rate_limit = Some(number(
                    arg,
                    200,
                    1..=u32::MAX,
                    "rate_limit",
                    "requests a second",
                )?);
                return Ok(());
            }
            "latency" => {
                self.latency_ms = Some(number(arg, 50, 0..=10_000, "latency", "milliseconds")?);
                return Ok(());
            }
            "max_open_sessions" => {
                self.max_open_sessions = Some(number(
                    arg,
                    50,
                    1..=usize::MAX,
                    "max_open_sessions",
                    "sessions",
                )?);
                return Ok(());
            }
            "chunk_min" => {
                self.chunk_min = Some(number(arg, 1 << 20, 1..=u64::MAX, "chunk_min", "bytes")?);
                return Ok(());
            }
            _ => {
                let known: Vec<&str> = Quirks::ALL.iter().map(|q| q.name).collect();
                return Err(format!(
                    "unknown quirk {name:?} (known: {})",
                    known.join(", ")
                ));
            }
        };
        if arg.is_some() {
            return Err(format!("quirk {base} takes no argument"));
        }
        *flag = true;
        Ok(())
    }

    /// The quirks of a named profile.
    pub fn profile(name: &str) -> Result<Quirks, String> {
        let p = Quirks::PROFILES
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Quirks::PROFILES.iter().map(|p| p.name).collect();
                format!("unknown profile {name:?} (known: {})", known.join(", "))
            })?;
        let mut q = Quirks::default();
        for n in p.quirks {
            q.enable(n)?;
        }
        Ok(q)
    }

    /// Every quirk at once.
    pub fn all() -> Quirks {
        let mut q = Quirks::default();
        for info in Quirks::ALL {
            let _ = q.enable(info.name);
        }
        q
    }

    /// Whether any quirk is on.
    pub fn any(&self) -> bool {
        *self != Quirks::default()
    }

    /// Records that quirk `name` changed an answer.
    pub(crate) fn hit(&self, name: &'static str) {
        if let Ok(mut m) = self.hits.0.lock() {
            *m.entry(name).or_default() += 1;
        }
    }
}

/// A quirk's numeric argument (`NAME:<n>`): `default` without one, else a number in `range`.
fn number<T>(
    arg: Option<&str>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    name: &str,
    unit: &str,
) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let Some(a) = arg else {
        return Ok(default);
    };
    a.parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "{name} needs {}..={} {unit}, got {a:?}",
                range.start(),
                range.end()
            )
        })
}

// ---- checks the handlers call ----

/// Whether a blob DELETE is refused because `manifests` (a repository's) name `digest`: a
/// manifest names a blob when its JSON holds the digest string (a descriptor, a config).
pub(crate) fn keeps_referenced_blob<'a>(
    q: &Quirks,
    digest: &str,
    mut manifests: impl Iterator<Item = &'a [u8]>,
) -> bool {
    if !q.keep_referenced_blobs {
        return false;
    }
    let needle = format!("\"{digest}\"");
    let kept = manifests.any(|m| m.windows(needle.len()).any(|w| w == needle.as_bytes()));
    if kept {
        q.hit("keep_referenced_blobs");
    }
    kept
}

/// Whether this request is over the rate limit (a fixed one-second window).
pub(crate) fn rate_limited(q: &Quirks) -> bool {
    let Some(limit) = q.rate_limit else {
        return false;
    };
    let now = std::time::Instant::now();
    let mut w = q.window.0.lock().unwrap_or_else(|e| e.into_inner());
    let (start, count) = match *w {
        Some((start, count)) if now.duration_since(start) < std::time::Duration::from_secs(1) => {
            (start, count + 1)
        }
        _ => (now, 1),
    };
    *w = Some((start, count));
    drop(w);
    let over = count > limit;
    if over {
        q.hit("rate_limit");
    }
    over
}

/// The delay every answer gets (quirk `latency`).
pub(crate) fn latency(q: &Quirks) -> Option<std::time::Duration> {
    let ms = q.latency_ms?;
    q.hit("latency");
    Some(std::time::Duration::from_millis(ms))
}

/// Whether a new upload session would pass the cap on open ones (`open`: sessions open now).
pub(crate) fn session_cap_reached(q: &Quirks, open: usize) -> bool {
    let reached = q.max_open_sessions.is_some_and(|cap| open >= cap);
    if reached {
        q.hit("max_open_sessions");
    }
    reached
}

/// Whether a manifest push is refused for naming sha512 (`by_sha512`: pushed by a sha512
/// digest; else its bytes mention a sha512 digest).
pub(crate) fn sha512_manifest_invalid(q: &Quirks, by_sha512: bool, bytes: &[u8]) -> bool {
    if !q.sha512_manifest_invalid {
        return false;
    }
    let names = by_sha512 || bytes.windows(7).any(|w| w == b"sha512:");
    if names {
        q.hit("sha512_manifest_invalid");
    }
    names
}

/// Whether manifests with missing references are rejected.
pub(crate) fn rejects_missing_refs(q: &Quirks) -> bool {
    if q.reject_missing_refs {
        q.hit("reject_missing_refs");
    }
    q.reject_missing_refs
}

/// Whether the algorithm (`sha256`, `sha512`) is declined.
pub(crate) fn declines_algorithm(q: &Quirks, algorithm: &str) -> bool {
    let declined = q.no_sha512 && algorithm == "sha512";
    if declined {
        q.hit("no_sha512");
    }
    declined
}

/// Sort key of a tag in the registry's order.
pub(crate) fn tag_key(q: &Quirks, t: &str) -> (String, std::cmp::Reverse<String>) {
    if q.tags_lexical {
        if t.to_lowercase() != t {
            q.hit("tags_lexical");
        }
        (t.to_lowercase(), std::cmp::Reverse(t.to_string()))
    } else {
        (t.to_string(), std::cmp::Reverse(String::new()))
    }
}

/// The `Link` of a full tag page, if one is sent: `last=` or an opaque token.
pub(crate) fn tags_link(q: &Quirks, path: &str, n: usize, last: &str) -> Option<String> {
    if q.tags_no_link {
        q.hit("tags_no_link");
        return None;
    }
    if q.link_opaque {
        q.hit("link_opaque");
        let token = token_of(last);
        return Some(format!("<{path}?next_page={token}&n={n}>; rel=\"next\""));
    }
    let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
    Some(format!("<{path}?n={n}&last={last}>; rel=\"next\""))
}

/// An opaque token for a tag (hex of its bytes, reversed, so it does not read as the tag).
pub(crate) fn token_of(last: &str) -> String {
    let mut h: String = last.bytes().map(|b| format!("{b:02x}")).collect();
    h = h.chars().rev().collect();
    format!("t{h}")
}

/// The tag a `next_page` token stands for.
pub(crate) fn tag_of_token(token: &str) -> Option<String> {
    let h: String = token.strip_prefix('t')?.chars().rev().collect();
    if !h.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The opaque `_state` of an upload session's absolute Location.
pub(crate) fn upload_state(id: &str) -> String {
    token_of(&format!("state:{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_profiles_and_tokens() {
        for q in Quirks::ALL {
            let mut x = Quirks::default();
            x.enable(q.name).unwrap();
            assert!(x.any(), "{}", q.name);
        }
        assert!(Quirks::default().enable("nope").is_err());
        assert!(Quirks::default().enable("chunk_min:0").is_err());
        assert!(Quirks::default().enable("no_delete:3").is_err());
        for p in Quirks::PROFILES {
            assert!(Quirks::profile(p.name).unwrap().any(), "{}", p.name);
            assert!(!p.sources.is_empty());
        }
        assert_eq!(Quirks::profile("ecr").unwrap().chunk_min, Some(5 << 20));
        assert!(Quirks::profile("nope").is_err());
        for t in ["v1", "a_b", "Z9", "1.2.3"] {
            assert_eq!(tag_of_token(&token_of(t)).as_deref(), Some(t));
        }
        let q = Quirks {
            tags_lexical: true,
            ..Quirks::default()
        };
        let mut tags = vec!["V1", "a_b", "v1", "Z9"];
        tags.sort_by_key(|t| tag_key(&q, t));
        assert_eq!(tags, ["a_b", "v1", "V1", "Z9"]);
    }
}
