//! Shared helpers for the reference registry's integration tests.
//!
//! Every test spawns its own registry on an ephemeral loopback port, so tests
//! are independent and can run in parallel. All requests are bounded by a
//! client timeout.
#![allow(dead_code)]

use std::time::Duration;

use reference_registry::{spawn, Config, RunningRegistry};
use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Upper bound on any single test's network activity.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn sha512(data: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(data)))
}

/// Deterministic pseudo-random bytes (xorshift), so failures are reproducible.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every manifest type these tests push, so registries that negotiate on
/// `Accept` (distribution) serve them.
pub const ACCEPT_ALL: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, */*";

pub fn client() -> Client {
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT,
        reqwest::header::HeaderValue::from_static(ACCEPT_ALL),
    );
    Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .expect("reqwest client")
}

/// A running registry plus a client pointed at it.
pub struct Reg {
    /// `None` when the tests target an external registry (`OCIDIFF_TEST_URL`).
    pub running: Option<RunningRegistry>,
    pub base: String,
    pub http: Client,
}

pub async fn start() -> Reg {
    start_with(Config::default()).await
}

/// `OCIDIFF_TEST_FAULT=<name>` runs the suite against a registry with that
/// fault injected (see `Faults::NAMES`): a mutation check that the tests
/// detect each misbehaviour.
///
/// `OCIDIFF_TEST_URL=http://HOST:PORT` points the default-config tests at an
/// external registry instead (informational: e.g. to list where Debian's
/// distribution differs); tests that need a special `Config` then panic
/// with `SKIP-EXTERNAL`.
pub async fn start_with(mut config: Config) -> Reg {
    if let Ok(url) = std::env::var("OCIDIFF_TEST_URL") {
        let default = matches!(config.auth, reference_registry::AuthMode::None)
            && config.delete_enabled
            && config.max_manifest_bytes == Config::default().max_manifest_bytes
            && !config.quirks.any();
        assert!(default, "SKIP-EXTERNAL: needs a configured registry");
        return Reg {
            running: None,
            base: url.trim_end_matches('/').to_string(),
            http: client(),
        };
    }
    if let Ok(name) = std::env::var("OCIDIFF_TEST_FAULT") {
        config.faults = reference_registry::Faults::only(&name)
            .unwrap_or_else(|| panic!("unknown fault {name:?}"));
    }
    let running = spawn(config).await.expect("spawn reference registry");
    let base = running.url().to_string().trim_end_matches('/').to_string();
    Reg {
        running: Some(running),
        base,
        http: client(),
    }
}

impl Reg {
    /// Absolute URL for a path starting with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Resolve a `Location` value (absolute or relative) against the registry.
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            self.url(location)
        } else {
            format!("{}/{}", self.base, location)
        }
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.expect("GET")
    }

    pub async fn head(&self, path: &str) -> Response {
        self.req(Method::HEAD, path).send().await.expect("HEAD")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.req(Method::DELETE, path).send().await.expect("DELETE")
    }

    /// `POST /v2/<repo>/blobs/uploads/` -> absolute upload URL (asserts 202 + Location).
    pub async fn start_upload(&self, repo: &str) -> String {
        let r = self
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .header(CONTENT_LENGTH, "0")
            .send()
            .await
            .expect("POST upload");
        assert_eq!(r.status(), StatusCode::ACCEPTED, "POST uploads/ status");
        self.resolve(&location(&r))
    }

    /// POST + PUT monolithic upload; returns the sha256 digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let upload = self.start_upload(repo).await;
        let r = self
            .http
            .put(with_query(&upload, &format!("digest={digest}")))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .expect("PUT blob");
        assert_eq!(r.status(), StatusCode::CREATED, "PUT blob status");
        digest
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the given content type.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header(CONTENT_TYPE, media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("PUT manifest")
    }

    /// Push a manifest, asserting 201; returns its digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let r = self.put_manifest(repo, reference, media_type, body).await;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "PUT manifest {repo}:{reference}: {text}"
        );
        sha256(body)
    }

    /// Push a config and `layers` random layers plus an OCI image manifest
    /// tagged `tag`. Returns (manifest bytes, manifest digest).
    pub async fn push_image(&self, repo: &str, tag: &str, seed: u64) -> (Vec<u8>, String) {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":{seed}}}");
        let config = config.into_bytes();
        let layer = bytes(seed, 1000 + seed as usize % 97);
        self.push_blob(repo, &config).await;
        self.push_blob(repo, &layer).await;
        let manifest = image_manifest(&config, &[&layer], None, None);
        let digest = self.push_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
        (manifest, digest)
    }
}

/// The `Location` header, asserting it is present.
pub fn location(r: &Response) -> String {
    r.headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("missing Location header (status {})", r.status()))
        .to_str()
        .expect("Location is ASCII")
        .to_string()
}

pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.to_str().expect("ASCII header"))
}

pub fn header_req<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    header(h, name).unwrap_or_else(|| panic!("missing header {name}: {h:?}"))
}

/// Content-Length as sent on the wire (not reqwest's body-size hint).
pub fn content_length(h: &HeaderMap) -> u64 {
    header_req(h, "content-length")
        .parse()
        .expect("numeric Content-Length")
}

/// Content-Type without parameters.
pub fn content_type(h: &HeaderMap) -> String {
    header_req(h, "content-type")
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_string()
}

/// Append a query string to a URL that may already have one.
pub fn with_query(url: &str, q: &str) -> String {
    if url.contains('?') {
        format!("{url}&{q}")
    } else {
        format!("{url}?{q}")
    }
}

/// Error codes from an OCI JSON error body (empty if the body isn't one).
pub async fn error_codes(r: Response) -> Vec<String> {
    let text = r.text().await.unwrap_or_default();
    codes_of(&text)
}

pub fn codes_of(text: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return vec![];
    };
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Assert the status and that the JSON error body carries `code`.
pub async fn assert_error(r: Response, status: u16, code: &str) {
    let got = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(got, status, "status; body: {text}");
    let codes = codes_of(&text);
    assert!(
        codes.iter().any(|c| c == code),
        "expected error code {code}, got {codes:?} (body {text})"
    );
}

pub fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(data), "size": data.len()})
}

/// An OCI image manifest (compact JSON) over a config and layers.
pub fn image_manifest(
    config: &[u8],
    layers: &[&[u8]],
    subject: Option<(&str, &[u8])>,
    artifact_type: Option<&str>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect::<Vec<_>>(),
    });
    if let Some((mt, body)) = subject {
        m["subject"] = descriptor(mt, body);
    }
    if let Some(at) = artifact_type {
        m["artifactType"] = json!(at);
    }
    serde_json::to_vec(&m).unwrap()
}

/// An OCI image index over `(media type, manifest bytes)` children.
pub fn image_index(children: &[(&str, &[u8])]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children.iter().map(|(mt, b)| descriptor(mt, b)).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// Run a future with the test-wide time bound.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test exceeded its time bound")
}
