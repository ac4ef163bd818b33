//! The observe stage: a `reqwest::Response` becomes an `Observation` (status, a fixed set of
//! normalized headers, facts about the body). Normalization removes what legitimately differs
//! between targets (dates, hosts, upload ids) so that what remains can be compared field by
//! field.

use crate::vocab::content::sha256_hex;
use crate::vocab::exchange::{BodyFacts, Observation, ReferrerFacts};
use std::collections::BTreeMap;

// Header normalization (`normalize_headers`), all names lower-case:
// - kept verbatim (trimmed): `docker-content-digest`, `content-length`, `content-range`, `range`,
//   `oci-subject`, `oci-filters-applied`, `oci-chunk-min-length`, `www-authenticate`,
//   `accept-ranges`, `warning`; `oci-tag`: all values joined with ", ".
// - `content-type`: the raw value; plus `content-type-essence`: the media type without
//   parameters, lower-cased (the spec says clients ignore parameters; compare this one).
// - `location`: resolved against the request URL; the scheme/host/port are dropped when they are
//   the request's own; for upload locations (`/blobs/uploads/<id>`) the id segment becomes
//   `<upload>` and every query value becomes `<v>` (registries keep state there). The pseudo
//   header `location-form` says `absolute`, `relative` or `foreign` (another host).
// - `link`: every `<url>` resolved and host-dropped the same way (query values kept: they carry
//   `n` and `last`); `link-form` likewise.
// - `docker-upload-uuid`: `<present>`.
// - `location-session-id` (pseudo header, upload locations only): `uuid` when the raw location
//   holds a UUID (the spec: "MUST contain a UUID representing a unique session ID"), `opaque`
//   when its path names a session by another token (`/blobs/uploads/<token>`), else `none`.
// - `warning`: kept verbatim (its format and size are checked).

/// Headers kept verbatim (trimmed).
const VERBATIM: [&str; 10] = [
    "docker-content-digest",
    "content-length",
    "content-range",
    "range",
    "oci-subject",
    "oci-filters-applied",
    "oci-chunk-min-length",
    "www-authenticate",
    "accept-ranges",
    "warning",
];

fn trimmed(value: &http::HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).trim().to_string()
}

fn header_values(headers: &http::HeaderMap, name: &str) -> Vec<String> {
    headers.get_all(name).iter().map(trimmed).collect()
}

/// Whether `raw` starts with a scheme (RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`).
fn has_scheme(raw: &str) -> bool {
    let Some((scheme, _)) = raw.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Whether two URLs have the same origin (scheme, host, port). The request URL is always
/// `http(s)`, so this is `url::Origin` equality without building the origins.
fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// How a URL in a header relates to the request URL.
fn url_form(raw: &str, request_url: &url::Url, resolved: &url::Url) -> &'static str {
    // Absolute: a scheme (RFC 3986 `absolute-URI`, `url` parses it on its own) or a
    // network-path reference (`//host/...`).
    // (`resolved` came from joining `raw`, so a `raw` with a scheme parsed on its own.)
    let is_absolute = has_scheme(raw) || raw.starts_with("//");
    if !is_absolute {
        "relative"
    } else if same_origin(resolved, request_url) {
        "absolute"
    } else {
        "foreign"
    }
}

/// Resolves `raw` against `request_url` and writes it without the request's own origin.
fn host_dropped(request_url: &url::Url, resolved: &url::Url) -> String {
    host_dropped_parts(request_url, resolved, resolved.path(), resolved.query())
}

/// `resolved` written without the request's own origin, with `path` and `query` in place of
/// its own.
fn host_dropped_parts(
    request_url: &url::Url,
    resolved: &url::Url,
    path: &str,
    query: Option<&str>,
) -> String {
    let mut s = String::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1) + 2);
    if !same_origin(resolved, request_url) {
        s.push_str(resolved.scheme());
        s.push_str("://");
        s.push_str(resolved.host_str().unwrap_or(""));
        if let Some(p) = resolved.port() {
            s.push(':');
            s.push_str(&p.to_string());
        }
    }
    // A same-origin path starting with `//` would read back as a network-path reference
    // (`//host/...`): keep it unambiguous with a `/.` prefix (the same path after dot-segment
    // removal).
    if s.is_empty() && path.starts_with("//") {
        s.push_str("/.");
    }
    s.push_str(path);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s
}

/// The symbolic form of a `Location` value (see the module notes), and its form.
pub fn normalize_location(request_url: &url::Url, raw: &str) -> (String, &'static str) {
    let Ok(resolved) = request_url.join(raw) else {
        return (raw.to_string(), "invalid");
    };
    let form = url_form(raw, request_url, &resolved);
    const UPLOADS: &str = "/blobs/uploads/";
    let path = resolved.path();
    if let Some(pos) = path.find(UPLOADS) {
        let (head, rest) = path.split_at(pos + UPLOADS.len());
        if !rest.is_empty() || resolved.query().is_some() {
            let path = if rest.is_empty() {
                head.to_string()
            } else {
                format!("{head}<upload>")
            };
            // Keys are decoded by `query_pairs`: encode them again so that a key holding `&`,
            // `=` or `#` reads back as the same key.
            let pairs: Vec<String> = resolved
                .query_pairs()
                .map(|(k, _)| {
                    let key: String = url::form_urlencoded::byte_serialize(k.as_bytes()).collect();
                    format!("{key}=<v>")
                })
                .collect();
            let query = (!pairs.is_empty()).then(|| pairs.join("&"));
            return (
                host_dropped_parts(request_url, &resolved, &path, query.as_deref()),
                form,
            );
        }
    }
    (host_dropped(request_url, &resolved), form)
}

/// Whether `s` holds a UUID (8-4-4-4-12 hex digits, any case).
/// How an upload location names its session: `uuid`, `opaque` (a path segment after
/// `/blobs/uploads/` that is no UUID) or `none`.
pub fn session_id_form(location: &str) -> &'static str {
    if has_uuid(location) {
        return "uuid";
    }
    let path = location.split(['?', '#']).next().unwrap_or("");
    let token = path
        .split_once("/uploads/")
        .map(|(_, rest)| rest.trim_matches('/'))
        .unwrap_or("");
    if token.is_empty() {
        "none"
    } else {
        "opaque"
    }
}

pub fn has_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    let groups = [8usize, 4, 4, 4, 12];
    let total = 36;
    (0..b.len().saturating_sub(total - 1)).any(|start| {
        let mut i = start;
        groups.iter().enumerate().all(|(g, n)| {
            let ok = b[i..i + n].iter().all(u8::is_ascii_hexdigit);
            i += n;
            let dash = g == groups.len() - 1 || b.get(i) == Some(&b'-');
            i += 1;
            ok && dash
        })
    })
}

/// The URL targets of a `Link` header value with their `rel`, e.g. `</v2/x/tags/list?n=2>; rel="next"`.
pub fn parse_link(value: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = value;
    // Bounded: each iteration consumes at least one '<'.
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let target = after[..close].to_string();
        let tail = &after[close + 1..];
        let params_end = tail.find('<').unwrap_or(tail.len());
        let params = &tail[..params_end];
        let rel = params.split(';').find_map(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            let v = p.strip_prefix("rel=")?;
            Some(v.trim_matches('"').to_string())
        });
        out.push((target, rel));
        rest = &tail[params_end..];
    }
    out
}

/// The `rel="next"` target of the `Link` headers, resolved against the request URL.
pub fn link_next(request_url: &url::Url, headers: &http::HeaderMap) -> Option<url::Url> {
    header_values(headers, "link")
        .iter()
        .flat_map(|v| parse_link(v))
        .find(|(_, rel)| {
            rel.as_deref()
                .is_some_and(|r| r.split_whitespace().any(|r| r == "next"))
        })
        .and_then(|(t, _)| request_url.join(&t).ok())
}

/// The selected, normalized headers of a response (see the module notes).
pub fn normalize_headers(
    request_url: &url::Url,
    headers: &http::HeaderMap,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // One pass over the response's headers (a few), not one lookup per wanted name; the values
    // of one name come in their order.
    for (name, value) in headers {
        let name = name.as_str();
        if name == "oci-tag" || VERBATIM.contains(&name) {
            let value = trimmed(value);
            out.entry(name.to_string())
                .and_modify(|joined: &mut String| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert(value);
        }
    }
    if let Some(ct) = headers.get("content-type").map(trimmed) {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        out.insert("content-type".into(), ct);
        out.insert("content-type-essence".into(), essence);
    }
    if let Some(loc) = headers.get("location").map(trimmed) {
        let (norm, form) = normalize_location(request_url, &loc);
        out.insert("location".into(), norm);
        out.insert("location-form".into(), form.into());
        // Upload locations: any URL a registry chooses, usually `/v2/<name>/blobs/uploads/<id>`
        // (container-registry: `/v2/<name>/uploads/<id>`).
        if loc.contains("/uploads/") {
            out.insert("location-session-id".into(), session_id_form(&loc).into());
        }
    }
    let links = header_values(headers, "link");
    if !links.is_empty() {
        let mut forms = Vec::new();
        let mut parts = Vec::new();
        for v in &links {
            for (t, rel) in parse_link(v) {
                let (norm, form) = match request_url.join(&t) {
                    Ok(u) => (host_dropped(request_url, &u), url_form(&t, request_url, &u)),
                    Err(_) => (t.clone(), "invalid"),
                };
                forms.push(form);
                match rel {
                    Some(r) => parts.push(format!("<{norm}>; rel=\"{r}\"")),
                    None => parts.push(format!("<{norm}>")),
                }
            }
        }
        if parts.is_empty() {
            out.insert("link".into(), links.join(", "));
        } else {
            out.insert("link".into(), parts.join(", "));
            out.insert("link-form".into(), forms.join(", "));
        }
    }
    if headers.contains_key("docker-upload-uuid") {
        out.insert("docker-upload-uuid".into(), "<present>".into());
    }
    out
}

fn other_facts(body: &[u8]) -> BodyFacts {
    let snippet: String = String::from_utf8_lossy(&body[..body.len().min(200)])
        .chars()
        .take(200)
        .collect();
    BodyFacts::Other {
        len: body.len() as u64,
        sha256: sha256_hex(body),
        snippet,
        json: serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
    }
}

fn json_string(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| x.as_str()).map(str::to_string)
}

/// The spec's error body: `{"errors": [{"code": ..., ...}, ...]}` (an error without a string
/// `code` is not of that shape).
fn parse_errors(body: &[u8]) -> Option<BodyFacts> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let errs = v.get("errors")?.as_array()?;
    let codes = errs
        .iter()
        .map(|e| json_string(e, "code"))
        .collect::<Option<Vec<String>>>()?;
    Some(BodyFacts::Errors { codes })
}

fn parse_tags(body: &[u8]) -> Option<BodyFacts> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let name = json_string(&v, "name")?;
    let tags = match v.get("tags") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(t) => t
            .as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?,
    };
    Some(BodyFacts::Tags { name, tags })
}

fn parse_referrers(body: &[u8]) -> Option<BodyFacts> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let list = match v.get("manifests") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(m) => m.as_array()?.clone(),
    };
    let mut manifests = Vec::with_capacity(list.len());
    for d in &list {
        let annotations = d
            .get("annotations")
            .and_then(|a| a.as_object())
            .map(|a| {
                a.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        manifests.push(ReferrerFacts {
            digest: json_string(d, "digest").unwrap_or_default(),
            media_type: json_string(d, "mediaType").unwrap_or_default(),
            artifact_type: json_string(d, "artifactType"),
            size: d.get("size").and_then(|s| s.as_u64()).unwrap_or(0),
            annotations,
        });
    }
    manifests.sort();
    Some(BodyFacts::Referrers { manifests })
}

fn parse_catalog(body: &[u8]) -> Option<BodyFacts> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let repositories = match v.get("repositories") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(r) => r
            .as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()?,
    };
    Some(BodyFacts::Catalog { repositories })
}

/// Facts about a response body, by endpoint id, method and status.
pub fn body_facts(endpoint: &str, method: &str, status: u16, body: &[u8]) -> BodyFacts {
    body_facts_known(endpoint, method, status, body, &|_| None)
}

/// `body_facts`, where `known(body)` gives the sha256 (hex) of a body the caller already knows
/// byte for byte (a blob or manifest of the case's content), so it is not hashed again.
pub fn body_facts_known(
    endpoint: &str,
    method: &str,
    status: u16,
    body: &[u8],
    known: &dyn Fn(&[u8]) -> Option<String>,
) -> BodyFacts {
    if method.eq_ignore_ascii_case("HEAD") {
        return BodyFacts::Empty;
    }
    if (200..300).contains(&status)
        && (endpoint == "end-2" || endpoint == "end-3")
        && method.eq_ignore_ascii_case("GET")
    {
        return BodyFacts::Content {
            len: body.len() as u64,
            sha256: known(body).unwrap_or_else(|| sha256_hex(body)),
        };
    }
    if body.is_empty() {
        return BodyFacts::Empty;
    }
    let parsed = if status >= 400 {
        parse_errors(body)
    } else if (200..300).contains(&status) {
        match endpoint {
            "end-8a" | "end-8b" => parse_tags(body),
            "end-12a" | "end-12b" => parse_referrers(body),
            "catalog" => parse_catalog(body),
            _ => None,
        }
    } else {
        None
    };
    parsed.unwrap_or_else(|| other_facts(body))
}

/// How a body that broke off after its status (a read error, not ocidiff's own size cap)
/// starts its `transport_error`.
pub const BODY_READ_ERROR: &str = "body read error";

/// Reads at most `max_body` bytes of a response body. `Err` carries what was read and why it stopped.
pub async fn read_body_capped(
    mut resp: reqwest::Response,
    max_body: u64,
) -> Result<bytes::Bytes, (bytes::Bytes, String)> {
    // The chunks as they came; a body of one chunk (most of them, on loopback) is kept as it
    // is, longer ones are joined once at the end.
    fn joined(mut chunks: Vec<bytes::Bytes>) -> bytes::Bytes {
        match chunks.len() {
            0 => bytes::Bytes::new(),
            1 => chunks.remove(0),
            _ => bytes::Bytes::from(chunks.concat()),
        }
    }
    let mut chunks: Vec<bytes::Bytes> = Vec::new();
    let mut have: u64 = 0;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if have + chunk.len() as u64 > max_body {
                    chunks.push(chunk.slice(..(max_body - have) as usize));
                    return Err((joined(chunks), format!("body exceeds {max_body} bytes")));
                }
                have += chunk.len() as u64;
                chunks.push(chunk);
            }
            Ok(None) => return Ok(joined(chunks)),
            Err(e) => return Err((joined(chunks), format!("{BODY_READ_ERROR}: {e}"))),
        }
    }
}

/// Turns a response into an `Observation`: status, normalized headers (relative to the final
/// response URL), and body facts (body read up to `max_body` bytes).
pub async fn observe(
    endpoint: &str,
    method: &reqwest::Method,
    resp: reqwest::Response,
    max_body: u64,
    known: &dyn Fn(&[u8]) -> Option<String>,
) -> Observation {
    let status = resp.status().as_u16();
    let url = resp.url().clone();
    let headers = normalize_headers(&url, resp.headers());
    let (body, transport_error) = match read_body_capped(resp, max_body).await {
        Ok(b) => (b, None),
        Err((b, e)) => (b, Some(e)),
    };
    Observation {
        status,
        transport_error,
        headers,
        body: body_facts_known(endpoint, method.as_str(), status, &body, known),
        redirect: None,
    }
}

/// Headers a registry answers for itself: when a redirect's final answer (a storage service)
/// lacks them, the registry's own redirect answer gives them.
const REGISTRY_OWNED: [&str; 5] = [
    "docker-content-digest",
    "oci-subject",
    "oci-tag",
    "oci-filters-applied",
    "oci-chunk-min-length",
];

/// Copies the registry-owned headers of the registry's redirect answer (`url`, `headers`)
/// into `obs` where the final answer lacks them.
pub fn keep_registry_headers(obs: &mut Observation, url: &url::Url, headers: &http::HeaderMap) {
    let own = normalize_headers(url, headers);
    for name in REGISTRY_OWNED {
        if let (false, Some(v)) = (obs.headers.contains_key(name), own.get(name)) {
            obs.headers.insert(name.to_string(), v.clone());
        }
    }
}

/// An observation of a request that got no response.
pub fn transport_failure(error: impl Into<String>) -> Observation {
    Observation {
        status: 0,
        transport_error: Some(error.into()),
        headers: BTreeMap::new(),
        body: BodyFacts::Empty,
        redirect: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(chunks: &[&'static [u8]]) -> reqwest::Response {
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = chunks
            .iter()
            .map(|c| Ok(bytes::Bytes::from_static(c)))
            .collect();
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        reqwest::Response::from(http::Response::new(body))
    }

    #[tokio::test]
    async fn bodies_are_read_whole_or_cut_at_the_cap() {
        for chunks in [
            &[][..],
            &[&b""[..]][..],
            &[&b"abcdef"[..]][..],
            &[&b"ab"[..], &b"cd"[..], &b"ef"[..]][..],
            &[&b""[..], &b"abc"[..], &b"def"[..]][..],
        ] {
            let whole: Vec<u8> = chunks.concat();
            let got = read_body_capped(response(chunks), 6).await.unwrap();
            assert_eq!(got.as_ref(), whole.as_slice(), "{chunks:?}");
            if whole.len() > 3 {
                let (cut, why) = read_body_capped(response(chunks), 3).await.unwrap_err();
                assert_eq!(cut.as_ref(), &whole[..3], "{chunks:?}");
                assert!(why.contains("exceeds 3 bytes"), "{why}");
            }
        }
    }

    #[test]
    fn known_bodies_give_the_same_facts_as_hashed_ones() {
        let body = b"some blob bytes";
        let right = sha256_hex(body);
        let known = |b: &[u8]| (b == body).then(|| right.clone());
        for endpoint in ["end-2", "end-3", "end-8a", "end-12a"] {
            assert_eq!(
                body_facts_known(endpoint, "GET", 200, body, &known),
                body_facts(endpoint, "GET", 200, body),
                "{endpoint}"
            );
        }
        // A body the lookup does not know is hashed.
        let other = b"other bytes";
        assert_eq!(
            body_facts_known("end-2", "GET", 200, other, &known),
            BodyFacts::Content {
                len: other.len() as u64,
                sha256: sha256_hex(other)
            }
        );
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn locations_are_symbolized() {
        let req = url("http://127.0.0.1:5000/v2/ns/r0/blobs/uploads/");
        let (a, fa) = normalize_location(&req, "/v2/ns/r0/blobs/uploads/abc-123?_state=xyz");
        let (b, fb) = normalize_location(
            &req,
            "http://127.0.0.1:5000/v2/ns/r0/blobs/uploads/def?_state=q",
        );
        assert_eq!(a, "/v2/ns/r0/blobs/uploads/<upload>?_state=<v>");
        assert_eq!(a, b);
        assert_eq!((fa, fb), ("relative", "absolute"));
        let (c, fc) = normalize_location(&req, "http://other:1/v2/ns/r0/blobs/sha256:00");
        assert_eq!(c, "http://other:1/v2/ns/r0/blobs/sha256:00");
        assert_eq!(fc, "foreign");
        let (d, _) = normalize_location(&req, "/v2/ns/r0/blobs/uploads/u1");
        assert_eq!(d, "/v2/ns/r0/blobs/uploads/<upload>");
        let (e, _) = normalize_location(&req, "/v2/ns/r0/blobs/uploads/?uuid=1234");
        assert_eq!(e, "/v2/ns/r0/blobs/uploads/?uuid=<v>");
        let (f, ff) = normalize_location(&req, "/v2/ns/r0/blobs/sha256:ab");
        assert_eq!((f.as_str(), ff), ("/v2/ns/r0/blobs/sha256:ab", "relative"));
        // A colon after a path character is no scheme; `//host` is a network-path reference.
        assert_eq!(normalize_location(&req, "blobs/sha256:ab").1, "relative");
        assert_eq!(
            normalize_location(&req, "//127.0.0.1:5000/v2/").1,
            "absolute"
        );
        assert_eq!(
            normalize_location(&req, "HTTP://127.0.0.1:5000/v2/").1,
            "absolute"
        );
    }

    #[test]
    fn headers_are_normalized() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "Content-Type",
            "application/json; charset=utf-8".parse().unwrap(),
        );
        h.append("OCI-Tag", "a, b".parse().unwrap());
        h.append("OCI-Tag", "c".parse().unwrap());
        h.insert("Docker-Upload-UUID", "1234".parse().unwrap());
        h.insert("Date", "now".parse().unwrap());
        h.insert(
            "Link",
            "<http://127.0.0.1:5000/v2/ns/r0/tags/list?n=2&last=b>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        let req = url("http://127.0.0.1:5000/v2/ns/r0/tags/list?n=2");
        let n = normalize_headers(&req, &h);
        assert_eq!(n["content-type-essence"], "application/json");
        assert_eq!(n["oci-tag"], "a, b, c");
        assert_eq!(n["docker-upload-uuid"], "<present>");
        assert_eq!(n["link"], "</v2/ns/r0/tags/list?n=2&last=b>; rel=\"next\"");
        assert_eq!(n["link-form"], "absolute");
        assert!(!n.contains_key("date"));
        assert_eq!(
            link_next(&req, &h).unwrap().as_str(),
            "http://127.0.0.1:5000/v2/ns/r0/tags/list?n=2&last=b"
        );
    }

    #[test]
    fn bodies_are_classified() {
        assert_eq!(
            body_facts(
                "end-3",
                "GET",
                404,
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"x"}]}"#
            ),
            BodyFacts::Errors {
                codes: vec!["MANIFEST_UNKNOWN".into()]
            }
        );
        assert_eq!(
            body_facts("end-8a", "GET", 200, br#"{"name":"a/b","tags":null}"#),
            BodyFacts::Tags {
                name: "a/b".into(),
                tags: vec![]
            }
        );
        assert!(matches!(
            body_facts("end-2", "GET", 200, b"xyz"),
            BodyFacts::Content { len: 3, .. }
        ));
        assert_eq!(body_facts("end-2", "HEAD", 200, b""), BodyFacts::Empty);
        let r = body_facts(
            "end-12a",
            "GET",
            200,
            br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:b","mediaType":"m","size":3},{"digest":"sha256:a","mediaType":"m","size":1,"artifactType":"t","annotations":{"k":"v"}}]}"#,
        );
        let BodyFacts::Referrers { manifests } = r else {
            panic!()
        };
        assert_eq!(manifests[0].digest, "sha256:a");
        assert_eq!(manifests[0].annotations["k"], "v");
        assert!(matches!(
            body_facts("end-8a", "GET", 200, b"<html>"),
            BodyFacts::Other { len: 6, .. }
        ));
        assert_eq!(
            body_facts("catalog", "GET", 200, br#"{"repositories":["a"]}"#),
            BodyFacts::Catalog {
                repositories: vec!["a".into()]
            }
        );
    }

    #[test]
    fn session_ids_by_form() {
        for (loc, form) in [
            (
                "/v2/a/b/blobs/uploads/01a24e8e-1329-76b6-995b-2b16e4c1734b?_state=x",
                "uuid",
            ),
            ("http://h/v2/a/blobs/uploads/8397321745087303154", "opaque"),
            (
                "/v2/a/blobs/uploads/bWJl-RRuq1s3TXHXSayGdw?state=e30",
                "opaque",
            ),
            ("/v2/a/blobs/uploads/?session=1", "none"),
            ("/v2/a/blobs/uploads/", "none"),
            ("/v2/a/uploads/375164fe-38ea-4d5c-9c1e-0e4d1e9a2b3c", "uuid"),
        ] {
            assert_eq!(session_id_form(loc), form, "{loc}");
        }
    }
}
