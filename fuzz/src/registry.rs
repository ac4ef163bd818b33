//! Targets that drive the reference registry in process (`reference_registry::router`, no
//! sockets) through `tower::ServiceExt::oneshot` on one tokio current-thread runtime.
//!
//! * [`manifest`]: arbitrary bytes PUT as a manifest (manifest / index JSON parsing and
//!   validation); never a 5xx; an acknowledged manifest reads back byte-identical under the
//!   digest of its bytes; anything `serde_json` cannot read as an object is rejected.
//! * [`registry`]: an `arbitrary` sequence of [`Op`]s checked against a small model of what a
//!   spec-exact registry holds (see [`Model`]).
//! * [`www_authenticate`]: challenges of the token and basic auth modes.

use arbitrary::{Arbitrary, Unstructured};
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use reference_registry::spec::{self, Algorithm};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use tower::ServiceExt;

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(f))
}

fn new_registry(config: reference_registry::Config) -> axum::Router {
    reference_registry::router(config).expect("in-process registry")
}

/// One response: status, headers, body.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn header_bytes(&self, name: &str) -> &[u8] {
        self.headers.get(name).map_or(&[], |v| v.as_bytes())
    }
}

thread_local! {
    static REQUESTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Requests this thread has sent to in-process registries (the rate bench reports it per
/// execution).
pub fn requests_sent() -> u64 {
    REQUESTS.with(std::cell::Cell::get)
}

/// Sends one request to the in-process router. Panics on a 5xx (the registry must never
/// answer a client's request with a server error).
async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Option<Resp> {
    let mut b = Request::builder().method(method.clone()).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    // Inputs can make URIs or header values the HTTP library refuses: not our property.
    let req = b.body(Body::from(body)).ok()?;
    REQUESTS.with(|n| n.set(n.get() + 1));
    let resp = app.clone().oneshot(req).await.expect("infallible router");
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .expect("in-memory body reads")
        .to_bytes();
    assert!(
        !parts.status.is_server_error(),
        "{method} {uri} -> {} {:?}",
        parts.status,
        String::from_utf8_lossy(&body)
    );
    Some(Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

async fn must(
    app: &axum::Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Resp {
    call(app, method.clone(), uri, headers, body)
        .await
        .unwrap_or_else(|| panic!("request {method} {uri} could not be built"))
}

fn sha256(data: &[u8]) -> String {
    Algorithm::Sha256.digest(data).as_str().to_owned()
}

// ------------------------------------------------------------------------------- manifest

const MANIFEST_REPO: &str = "fz/manifest";
/// `{}`: the config blob every seed manifest references.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// The layer blob seed manifests reference.
pub const LAYER: &[u8] = b"ocidiff fuzz layer\n";

struct ManifestRegistry {
    app: axum::Router,
    uses: u32,
}

thread_local! {
    static MANIFEST_APP: RefCell<Option<ManifestRegistry>> = const { RefCell::new(None) };
}

async fn push_blob(app: &axum::Router, repo: &str, data: &[u8]) {
    let d = sha256(data);
    let r = must(
        app,
        Method::POST,
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        &[],
        data.to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "seed blob push");
}

/// `manifest`: the first byte picks the `Content-Type` and the reference (tag, sha256 or
/// sha512 digest of the body); the rest is the manifest body.
pub fn manifest(data: &[u8]) {
    manifest_status(data);
}

/// [`manifest`], returning the status of the PUT (`None` for an empty input).
pub fn manifest_status(data: &[u8]) -> Option<u16> {
    let (&ctl, body) = data.split_first()?;
    let body = body[..body.len().min(1 << 16)].to_vec();
    // A registry lives for 1000 executions (its store grows with accepted manifests).
    let app = MANIFEST_APP.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|r| r.uses >= 1000) {
            let app = new_registry(reference_registry::Config::default());
            block_on(async {
                push_blob(&app, MANIFEST_REPO, EMPTY_CONFIG).await;
                push_blob(&app, MANIFEST_REPO, LAYER).await;
            });
            *cell = Some(ManifestRegistry { app, uses: 0 });
        }
        let r = cell.as_mut().expect("just set");
        r.uses += 1;
        r.app.clone()
    });
    Some(block_on(manifest_case(&app, ctl, body)))
}

const MEDIA_TYPES: [&str; 8] = [
    spec::OCI_MANIFEST,
    spec::OCI_INDEX,
    spec::DOCKER_MANIFEST,
    spec::DOCKER_MANIFEST_LIST,
    "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
    "application/json",
    "",
    "text/plain",
];

async fn manifest_case(app: &axum::Router, ctl: u8, body: Vec<u8>) -> u16 {
    let ct = MEDIA_TYPES[usize::from(ctl & 7)];
    let reference = match (ctl >> 3) & 3 {
        0 | 1 => "fuzz".to_owned(),
        2 => sha256(&body),
        _ => Algorithm::Sha512.digest(&body).as_str().to_owned(),
    };
    let headers: Vec<(&str, &str)> = if ct.is_empty() {
        Vec::new()
    } else {
        vec![("content-type", ct)]
    };
    let uri = format!("/v2/{MANIFEST_REPO}/manifests/{reference}");
    let r = must(app, Method::PUT, &uri, &headers, body.clone()).await;
    assert!(
        matches!(r.status.as_u16(), 201 | 400 | 413),
        "manifest PUT -> {}",
        r.status
    );
    let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let object = json.as_ref().and_then(|v| v.as_object());
    if r.status != StatusCode::CREATED {
        return r.status.as_u16();
    }
    // Accepted: it was a JSON object with schemaVersion 2 ...
    let obj = object.unwrap_or_else(|| panic!("accepted a non-object manifest"));
    assert_eq!(obj.get("schemaVersion").and_then(|v| v.as_u64()), Some(2));
    // ... named by the digest of its bytes ...
    let digest = if reference.contains(':') {
        reference.clone()
    } else {
        sha256(&body)
    };
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/{MANIFEST_REPO}/manifests/{digest}").as_str())
    );
    // ... and reads back byte-identical, by digest and by the reference used.
    for rf in [digest.as_str(), reference.as_str()] {
        let g = must(
            app,
            Method::GET,
            &format!("/v2/{MANIFEST_REPO}/manifests/{rf}"),
            &[],
            Vec::new(),
        )
        .await;
        assert_eq!(g.status, StatusCode::OK, "GET {rf} after 201");
        assert_eq!(g.body.as_ref(), body.as_slice(), "GET {rf}: bytes differ");
        let got_ct = g.header_bytes("content-type");
        let field = obj.get("mediaType").and_then(|v| v.as_str());
        let want = match spec::media_type_essence(ct) {
            "" => field.unwrap_or(if obj.contains_key("manifests") {
                spec::OCI_INDEX
            } else {
                spec::OCI_MANIFEST
            }),
            e => e,
        };
        assert_eq!(
            got_ct,
            want.as_bytes(),
            "content-type of the stored manifest"
        );
    }
    201
}

// ------------------------------------------------------------------------ www-authenticate

thread_local! {
    static AUTH_APPS: RefCell<Option<(axum::Router, axum::Router)>> = const { RefCell::new(None) };
}

/// See [`crate::www_authenticate`]. Input lines: host, repository name, Authorization value,
/// token query.
pub fn www_authenticate(data: &[u8]) {
    let (token_app, basic_app) = AUTH_APPS.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                let token = new_registry(reference_registry::Config {
                    auth: reference_registry::AuthMode::Token {
                        username: Some("u".into()),
                        password: Some("p".into()),
                    },
                    ..Default::default()
                });
                let basic = new_registry(reference_registry::Config {
                    auth: reference_registry::AuthMode::Basic {
                        username: "u".into(),
                        password: "p".into(),
                    },
                    ..Default::default()
                });
                (token, basic)
            })
            .clone()
    });
    let s = crate::text(data);
    let mut lines = s.split('\n');
    let host = lines.next().unwrap_or("");
    let name = lines.next().unwrap_or("a/b");
    let authz = lines.next();
    let query = lines.next().unwrap_or("");
    block_on(async {
        let plain_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-'));
        for (app, scheme) in [(&token_app, "Bearer"), (&basic_app, "Basic")] {
            let mut headers = vec![("host", host)];
            if let Some(a) = authz {
                headers.push(("authorization", a));
            }
            for path in [
                "/v2/".to_owned(),
                format!("/v2/{name}/tags/list"),
                "/v2/_catalog".to_owned(),
            ] {
                for method in [Method::GET, Method::DELETE] {
                    let Some(r) = call(app, method, &path, &headers, Vec::new()).await else {
                        continue;
                    };
                    if r.status != StatusCode::UNAUTHORIZED {
                        continue;
                    }
                    let ch = r
                        .header("www-authenticate")
                        .unwrap_or_else(|| panic!("401 without a challenge on {path}"));
                    if !plain_host && scheme == "Bearer" {
                        continue; // the realm carries the Host header verbatim
                    }
                    let (sch, params) = crate::parse_challenge_strict(ch)
                        .unwrap_or_else(|| panic!("malformed challenge {ch:?}"));
                    assert_eq!(sch, scheme, "{ch:?}");
                    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v);
                    assert!(get("realm").is_some(), "challenge without realm: {ch:?}");
                    if scheme == "Bearer" {
                        assert_eq!(get("realm"), Some(&format!("http://{host}/token")));
                        assert!(get("service").is_some());
                    }
                    #[cfg(feature = "parse-bearer")]
                    if scheme == "Bearer" {
                        let p = ocidiff::execute::auth::parse_bearer(ch)
                            .unwrap_or_else(|| panic!("harness cannot parse {ch:?}"));
                        for (k, v) in &params {
                            assert_eq!(p.get(k), Some(v), "{ch:?}");
                        }
                    }
                }
            }
        }
        // the token endpoint with arbitrary credentials and query
        let mut headers = vec![];
        if let Some(a) = authz {
            headers.push(("authorization", a));
        }
        let _ = call(
            &token_app,
            Method::GET,
            &format!("/token?{query}"),
            &headers,
            Vec::new(),
        )
        .await;
    });
}

// ------------------------------------------------------------------------------- registry

/// A tag drawn from a small set so that tags collide, sort and paginate interestingly.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Tag(u8);

const TAGS: [&str; 12] = [
    "latest", "v1", "v1.0", "v2", "a", "B", "_x", "z-9", "0", "t.t", "a_b", "Z",
];

impl Tag {
    fn name(self) -> &'static str {
        TAGS[usize::from(self.0) % TAGS.len()]
    }
}

/// How a blob is pushed.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum PushHow {
    /// POST, then PUT with the body.
    Monolithic,
    /// One POST with `?digest=`.
    SinglePost,
    /// POST, PATCHes with `Content-Range`, PUT.
    Chunked(u8),
    /// POST, one PATCH without `Content-Range`, PUT.
    Streamed,
}

/// One client action. Indexes (`blob`, `manifest`, `session`) pick from what the sequence has
/// made so far (modulo its length).
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    PushBlob {
        repo: u8,
        data: Vec<u8>,
        how: PushHow,
        wrong_digest: bool,
        sha512: bool,
    },
    Open {
        repo: u8,
    },
    Patch {
        session: u8,
        range: Option<(u16, u16)>,
        data: Vec<u8>,
    },
    Close {
        session: u8,
        data: Vec<u8>,
        wrong_digest: bool,
    },
    Status {
        session: u8,
    },
    Cancel {
        session: u8,
    },
    Mount {
        repo: u8,
        blob: u8,
        from: u8,
    },
    PutManifest {
        repo: u8,
        config: u8,
        layers: Vec<u8>,
        subject: Option<u8>,
        tag: Option<Tag>,
        docker: bool,
        artifact_type: bool,
    },
    PutIndex {
        repo: u8,
        children: Vec<u8>,
        subject: Option<u8>,
        tag: Option<Tag>,
    },
    /// Re-PUT an existing manifest under a tag.
    TagManifest {
        repo: u8,
        manifest: u8,
        tag: Tag,
    },
    DeleteManifest {
        repo: u8,
        manifest: u8,
    },
    DeleteTag {
        repo: u8,
        tag: Tag,
    },
    DeleteBlob {
        repo: u8,
        blob: u8,
    },
    GetBlob {
        repo: u8,
        blob: u8,
        head: bool,
        range: Option<(u16, u16)>,
    },
    GetManifest {
        repo: u8,
        manifest: u8,
        head: bool,
        tag: Option<Tag>,
    },
    Tags {
        repo: u8,
        n: Option<u8>,
        last: Option<Tag>,
    },
    Referrers {
        repo: u8,
        manifest: u8,
    },
    /// Any request (to a second registry, so the model stays exact): never a 5xx.
    Raw {
        method: u8,
        path: String,
        query: String,
        content_type: Option<String>,
        content_range: Option<String>,
        range: Option<String>,
        body: Vec<u8>,
    },
}

/// The whole input of the `registry` target.
#[derive(Arbitrary, Debug, Clone)]
pub struct RegistryInput {
    pub ops: Vec<Op>,
}

/// Most ops per case and bytes per blob / chunk.
pub const MAX_OPS: usize = 48;
const MAX_BLOB: usize = 2048;

/// `registry` from raw bytes (libFuzzer input and corpus files).
pub fn registry_bytes(data: &[u8]) {
    let u = Unstructured::new(data);
    if let Ok(input) = RegistryInput::arbitrary_take_rest(u) {
        registry(&input);
    }
}

/// `registry`: runs the ops on a fresh registry and checks every response against the model.
pub fn registry(input: &RegistryInput) {
    if std::env::var_os("OCIDIFF_FUZZ_DEBUG").is_some() {
        eprintln!("{input:#?}");
    }
    block_on(async {
        let mut h = Harness {
            app: new_registry(reference_registry::Config::default()),
            raw_app: None,
            m: Model::default(),
        };
        for op in input.ops.iter().take(MAX_OPS) {
            h.op(op).await;
        }
        h.check_all().await;
    });
}

fn repo_name(r: u8) -> String {
    format!("fz/r{}", r % 3)
}

/// A manifest the sequence has tried to push.
#[derive(Clone, Debug)]
struct ManifestRec {
    digest: String,
    bytes: Vec<u8>,
    media_type: &'static str,
    subject: Option<String>,
}

#[derive(Default, Debug)]
struct RepoModel {
    blobs: BTreeSet<String>,
    manifests: BTreeMap<String, usize>,
    tags: BTreeMap<String, String>,
    /// Blobs deleted from this repository (checked at the end: gone unless pushed again).
    gone_blobs: BTreeSet<String>,
    /// Manifest digests and tags deleted (idem).
    gone_refs: BTreeSet<String>,
}

#[derive(Debug)]
enum SessionState {
    /// Open; its bytes so far (`None` once a failed request made them uncertain).
    Open(Option<Vec<u8>>),
    /// Closed, cancelled or failed for sure: 404 from now on.
    Gone,
    /// Can't say (after an uncertain close).
    Unknown,
}

#[derive(Debug)]
struct SessionModel {
    location: String,
    repo: String,
    state: SessionState,
}

/// What a spec-exact registry holds after the sequence so far.
#[derive(Default, Debug)]
struct Model {
    /// Every blob content the sequence has used: (digest, bytes).
    blobs: Vec<(String, Vec<u8>)>,
    manifests: Vec<ManifestRec>,
    repos: BTreeMap<String, RepoModel>,
    sessions: Vec<SessionModel>,
}

impl Model {
    fn repo(&mut self, name: &str) -> &mut RepoModel {
        self.repos.entry(name.to_owned()).or_default()
    }
    fn blob(&self, i: u8) -> (String, Vec<u8>) {
        if self.blobs.is_empty() {
            (sha256(b"never pushed"), b"never pushed".to_vec())
        } else {
            self.blobs[usize::from(i) % self.blobs.len()].clone()
        }
    }
    fn manifest(&self, i: u8) -> Option<&ManifestRec> {
        if self.manifests.is_empty() {
            None
        } else {
            Some(&self.manifests[usize::from(i) % self.manifests.len()])
        }
    }
    fn remember_blob(&mut self, digest: &str, data: &[u8]) {
        if !self.blobs.iter().any(|(d, _)| d == digest) {
            self.blobs.push((digest.to_owned(), data.to_vec()));
        }
    }
    fn blob_bytes(&self, digest: &str) -> Option<&[u8]> {
        self.blobs
            .iter()
            .find(|(d, _)| d == digest)
            .map(|(_, b)| b.as_slice())
    }
}

struct Harness {
    app: axum::Router,
    raw_app: Option<axum::Router>,
    m: Model,
}

fn clip(mut v: Vec<u8>) -> Vec<u8> {
    v.truncate(MAX_BLOB);
    v
}

impl Harness {
    async fn req(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        must(&self.app, method, uri, headers, body).await
    }

    async fn op(&mut self, op: &Op) {
        match op.clone() {
            Op::PushBlob {
                repo,
                data,
                how,
                wrong_digest,
                sha512,
            } => {
                self.push_blob(&repo_name(repo), clip(data), how, wrong_digest, sha512)
                    .await
            }
            Op::Open { repo } => {
                self.open(&repo_name(repo)).await;
            }
            Op::Patch {
                session,
                range,
                data,
            } => self.patch(session, range, clip(data)).await,
            Op::Close {
                session,
                data,
                wrong_digest,
            } => self.close(session, clip(data), wrong_digest).await,
            Op::Status { session } => self.status(session).await,
            Op::Cancel { session } => self.cancel(session).await,
            Op::Mount { repo, blob, from } => {
                self.mount(&repo_name(repo), blob, &repo_name(from)).await
            }
            Op::PutManifest {
                repo,
                config,
                layers,
                subject,
                tag,
                docker,
                artifact_type,
            } => {
                let (cd, cb) = self.m.blob(config);
                let mut layer_descs = Vec::new();
                for l in layers.iter().take(4) {
                    let (d, b) = self.m.blob(*l);
                    layer_descs.push(serde_json::json!({
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": d, "size": b.len(),
                    }));
                }
                let mt = if docker {
                    spec::DOCKER_MANIFEST
                } else {
                    spec::OCI_MANIFEST
                };
                let mut v = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": mt,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": cd, "size": cb.len(),
                    },
                    "layers": layer_descs,
                });
                if artifact_type {
                    v["artifactType"] = serde_json::json!("application/vnd.ocidiff.fuzz");
                }
                let subject = self.subject(&mut v, subject);
                self.put_manifest(&repo_name(repo), v, mt, subject, tag)
                    .await;
            }
            Op::PutIndex {
                repo,
                children,
                subject,
                tag,
            } => {
                let mut descs = Vec::new();
                for c in children.iter().take(4) {
                    if let Some(m) = self.m.manifest(*c) {
                        descs.push(serde_json::json!({
                            "mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len(),
                        }));
                    }
                }
                let mut v = serde_json::json!({
                    "schemaVersion": 2, "mediaType": spec::OCI_INDEX, "manifests": descs,
                });
                let subject = self.subject(&mut v, subject);
                self.put_manifest(&repo_name(repo), v, spec::OCI_INDEX, subject, tag)
                    .await;
            }
            Op::TagManifest {
                repo,
                manifest,
                tag,
            } => {
                if let Some(m) = self.m.manifest(manifest).cloned() {
                    self.put_bytes(&repo_name(repo), m, Some(tag)).await;
                }
            }
            Op::DeleteManifest { repo, manifest } => {
                let name = repo_name(repo);
                let Some(d) = self.m.manifest(manifest).map(|m| m.digest.clone()) else {
                    return;
                };
                let present = self.m.repo(&name).manifests.contains_key(&d);
                let r = self
                    .req(
                        Method::DELETE,
                        &format!("/v2/{name}/manifests/{d}"),
                        &[],
                        Vec::new(),
                    )
                    .await;
                if present {
                    assert_eq!(r.status, StatusCode::ACCEPTED, "delete manifest {d}");
                    let rm = self.m.repo(&name);
                    rm.manifests.remove(&d);
                    let gone: Vec<String> = rm
                        .tags
                        .iter()
                        .filter(|(_, v)| **v == d)
                        .map(|(t, _)| t.clone())
                        .collect();
                    for t in gone {
                        rm.tags.remove(&t);
                        rm.gone_refs.insert(t);
                    }
                    rm.gone_refs.insert(d);
                } else {
                    assert_eq!(
                        r.status,
                        StatusCode::NOT_FOUND,
                        "delete unknown manifest {d}"
                    );
                }
            }
            Op::DeleteTag { repo, tag } => {
                let name = repo_name(repo);
                let t = tag.name();
                let present = self.m.repo(&name).tags.contains_key(t);
                let r = self
                    .req(
                        Method::DELETE,
                        &format!("/v2/{name}/manifests/{t}"),
                        &[],
                        Vec::new(),
                    )
                    .await;
                if present {
                    assert_eq!(r.status, StatusCode::ACCEPTED, "delete tag {t}");
                    let rm = self.m.repo(&name);
                    rm.tags.remove(t);
                    rm.gone_refs.insert(t.to_owned());
                } else {
                    assert_eq!(r.status, StatusCode::NOT_FOUND, "delete unknown tag {t}");
                }
            }
            Op::DeleteBlob { repo, blob } => {
                let name = repo_name(repo);
                let (d, _) = self.m.blob(blob);
                let present = self.m.repo(&name).blobs.contains(&d);
                let r = self
                    .req(
                        Method::DELETE,
                        &format!("/v2/{name}/blobs/{d}"),
                        &[],
                        Vec::new(),
                    )
                    .await;
                if present {
                    assert_eq!(r.status, StatusCode::ACCEPTED, "delete blob {d}");
                    let rm = self.m.repo(&name);
                    rm.blobs.remove(&d);
                    rm.gone_blobs.insert(d);
                } else {
                    assert_eq!(r.status, StatusCode::NOT_FOUND, "delete unknown blob {d}");
                }
            }
            Op::GetBlob {
                repo,
                blob,
                head,
                range,
            } => {
                let name = repo_name(repo);
                let (d, _) = self.m.blob(blob);
                if head {
                    let r = self
                        .req(
                            Method::HEAD,
                            &format!("/v2/{name}/blobs/{d}"),
                            &[],
                            Vec::new(),
                        )
                        .await;
                    match self.m.repo(&name).blobs.contains(&d) {
                        true => {
                            assert_eq!(r.status, StatusCode::OK);
                            assert!(r.body.is_empty(), "HEAD with a body");
                            let len = self.m.blob_bytes(&d).map(<[u8]>::len).unwrap_or(0);
                            assert_eq!(r.header("content-length"), Some(len.to_string().as_str()));
                        }
                        false => assert_eq!(r.status, StatusCode::NOT_FOUND),
                    }
                } else {
                    let range = range.map(|(a, b)| (u64::from(a.min(b)), u64::from(a.max(b))));
                    self.expect_blob(&name, &d, range).await;
                }
            }
            Op::GetManifest {
                repo,
                manifest,
                head,
                tag,
            } => {
                let name = repo_name(repo);
                let reference = match (tag, self.m.manifest(manifest)) {
                    (Some(t), _) => t.name().to_owned(),
                    (None, Some(m)) => m.digest.clone(),
                    (None, None) => return,
                };
                if head {
                    let r = self
                        .req(
                            Method::HEAD,
                            &format!("/v2/{name}/manifests/{reference}"),
                            &[],
                            Vec::new(),
                        )
                        .await;
                    let known = self.resolve(&name, &reference).is_some();
                    let want = if known {
                        StatusCode::OK
                    } else {
                        StatusCode::NOT_FOUND
                    };
                    assert_eq!(r.status, want, "HEAD manifest {reference}");
                    if known {
                        assert!(r.body.is_empty(), "HEAD manifest with a body");
                    }
                } else {
                    self.expect_manifest(&name, &reference).await;
                }
            }
            Op::Tags { repo, n, last } => {
                self.expect_tags(&repo_name(repo), n.map(|n| n % 16), last.map(Tag::name))
                    .await
            }
            Op::Referrers { repo, manifest } => {
                if let Some(d) = self.m.manifest(manifest).map(|m| m.digest.clone()) {
                    self.expect_referrers(&repo_name(repo), &d).await;
                }
            }
            Op::Raw {
                method,
                path,
                query,
                content_type,
                content_range,
                range,
                body,
            } => {
                let app = self
                    .raw_app
                    .get_or_insert_with(|| new_registry(reference_registry::Config::default()))
                    .clone();
                const METHODS: [Method; 7] = [
                    Method::GET,
                    Method::HEAD,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                    Method::OPTIONS,
                ];
                let m = METHODS[usize::from(method) % METHODS.len()].clone();
                let mut headers = Vec::new();
                if let Some(v) = &content_type {
                    headers.push(("content-type", v.as_str()));
                }
                if let Some(v) = &content_range {
                    headers.push(("content-range", v.as_str()));
                }
                if let Some(v) = &range {
                    headers.push(("range", v.as_str()));
                }
                let uri = if query.is_empty() {
                    format!("/v2/{path}")
                } else {
                    format!("/v2/{path}?{query}")
                };
                let _ = call(&app, m, &uri, &headers, clip(body)).await;
            }
        }
    }

    fn subject(&self, v: &mut serde_json::Value, subject: Option<u8>) -> Option<String> {
        let m = self.m.manifest(subject?)?;
        v["subject"] = serde_json::json!({
            "mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len(),
        });
        Some(m.digest.clone())
    }

    async fn put_manifest(
        &mut self,
        name: &str,
        v: serde_json::Value,
        media_type: &'static str,
        subject: Option<String>,
        tag: Option<Tag>,
    ) {
        let bytes = serde_json::to_vec(&v).expect("json");
        let rec = ManifestRec {
            digest: sha256(&bytes),
            bytes,
            media_type,
            subject,
        };
        if !self.m.manifests.iter().any(|m| m.digest == rec.digest) {
            self.m.manifests.push(rec.clone());
        }
        self.put_bytes(name, rec, tag).await;
    }

    async fn put_bytes(&mut self, name: &str, rec: ManifestRec, tag: Option<Tag>) {
        let reference = tag.map_or(rec.digest.clone(), |t| t.name().to_owned());
        let r = self
            .req(
                Method::PUT,
                &format!("/v2/{name}/manifests/{reference}"),
                &[("content-type", rec.media_type)],
                rec.bytes.clone(),
            )
            .await;
        // Missing references are accepted (the reference does not take the spec's "MAY
        // reject"; the quirk `reject_missing_refs` does).
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "manifest PUT {reference}: {:?}",
            r.body
        );
        assert_eq!(r.header("docker-content-digest"), Some(rec.digest.as_str()));
        if let Some(s) = &rec.subject {
            assert_eq!(r.header("oci-subject"), Some(s.as_str()));
        }
        let idx = self
            .m
            .manifests
            .iter()
            .position(|m| m.digest == rec.digest)
            .expect("remembered");
        let repo = self.m.repo(name);
        repo.manifests.insert(rec.digest.clone(), idx);
        if let Some(t) = tag {
            repo.tags.insert(t.name().to_owned(), rec.digest.clone());
        }
    }

    /// The manifest digest `reference` names in `name`, per the model.
    fn resolve(&mut self, name: &str, reference: &str) -> Option<String> {
        let repo = self.m.repo(name);
        let d = if reference.contains(':') {
            reference.to_owned()
        } else {
            repo.tags.get(reference)?.clone()
        };
        repo.manifests.contains_key(&d).then_some(d)
    }

    async fn expect_manifest(&mut self, name: &str, reference: &str) {
        let r = self
            .req(
                Method::GET,
                &format!("/v2/{name}/manifests/{reference}"),
                &[],
                Vec::new(),
            )
            .await;
        match self.resolve(name, reference) {
            Some(d) => {
                let idx = self.m.repo(name).manifests[&d];
                let rec = &self.m.manifests[idx];
                assert_eq!(r.status, StatusCode::OK, "GET manifest {name}:{reference}");
                assert_eq!(
                    r.body.as_ref(),
                    rec.bytes.as_slice(),
                    "manifest bytes differ"
                );
                assert_eq!(r.header("content-type"), Some(rec.media_type));
            }
            None => assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "GET manifest {name}:{reference} should be gone"
            ),
        }
    }

    async fn expect_blob(&mut self, name: &str, d: &str, range: Option<(u64, u64)>) {
        let rh = range.map(|(a, b)| format!("bytes={a}-{b}"));
        let headers: Vec<(&str, &str)> = rh.iter().map(|v| ("range", v.as_str())).collect();
        let r = self
            .req(
                Method::GET,
                &format!("/v2/{name}/blobs/{d}"),
                &headers,
                Vec::new(),
            )
            .await;
        if !self.m.repo(name).blobs.contains(d) {
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "GET blob {name}@{d} should be 404"
            );
            return;
        }
        let data = self.m.blob_bytes(d).expect("known content").to_vec();
        match range.map(|(a, b)| spec::RangeSpec::FromTo(a, b).resolve(data.len() as u64)) {
            None => {
                assert_eq!(r.status, StatusCode::OK, "GET blob {name}@{d}");
                assert_eq!(r.body.as_ref(), data.as_slice(), "blob bytes differ");
                assert_eq!(r.header("docker-content-digest"), Some(d));
            }
            Some(spec::RangeOutcome::Partial(a, b)) => {
                assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
                assert_eq!(r.body.as_ref(), &data[a as usize..=b as usize]);
                let want = format!("bytes {a}-{b}/{}", data.len());
                assert_eq!(r.header("content-range"), Some(want.as_str()));
            }
            Some(spec::RangeOutcome::Unsatisfiable) => {
                assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
            }
        }
    }

    async fn expect_tags(&mut self, name: &str, n: Option<u8>, last: Option<&str>) {
        let mut q = Vec::new();
        if let Some(n) = n {
            q.push(format!("n={n}"));
        }
        if let Some(l) = last {
            q.push(format!("last={l}"));
        }
        let r = self
            .req(
                Method::GET,
                &format!("/v2/{name}/tags/list?{}", q.join("&")),
                &[],
                Vec::new(),
            )
            .await;
        let model: Vec<String> = self
            .m
            .repo(name)
            .tags
            .keys()
            .filter(|t| last.is_none_or(|l| t.as_str() > l))
            .take(n.map_or(usize::MAX, usize::from))
            .cloned()
            .collect();
        if r.status == StatusCode::NOT_FOUND {
            assert!(self.m.repo(name).tags.is_empty(), "tag list 404 with tags");
            return;
        }
        assert_eq!(r.status, StatusCode::OK, "tags list");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("tag list is JSON");
        assert_eq!(v["name"], name);
        let tags: Vec<String> = v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            tags.windows(2).all(|w| w[0] < w[1]),
            "tag list not sorted: {tags:?}"
        );
        if let Some(n) = n {
            assert!(
                tags.len() <= usize::from(n),
                "tag list ignores n={n}: {tags:?}"
            );
        }
        assert_eq!(tags, model, "tag list (n={n:?}, last={last:?})");
        // a Link to the next page exactly when more tags follow
        let more = n.is_some_and(|n| n > 0)
            && self
                .m
                .repo(name)
                .tags
                .keys()
                .filter(|t| last.is_none_or(|l| t.as_str() > l))
                .count()
                > tags.len();
        assert_eq!(r.header("link").is_some(), more, "Link header presence");
        if let Some(l) = r.header("link") {
            let links = ocidiff::observe::parse_link(l);
            assert_eq!(links.len(), 1);
            assert_eq!(links[0].1.as_deref(), Some("next"));
        }
    }

    async fn expect_referrers(&mut self, name: &str, d: &str) {
        let r = self
            .req(
                Method::GET,
                &format!("/v2/{name}/referrers/{d}"),
                &[],
                Vec::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "referrers");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("referrers JSON");
        let got: BTreeSet<String> = v["manifests"]
            .as_array()
            .expect("manifests array")
            .iter()
            .filter_map(|m| m["digest"].as_str().map(str::to_owned))
            .collect();
        let manifests = &self.m.manifests;
        let want: BTreeSet<String> = self
            .m
            .repos
            .get(name)
            .map(|repo| {
                repo.manifests
                    .values()
                    .map(|&i| &manifests[i])
                    .filter(|m| m.subject.as_deref() == Some(d))
                    .map(|m| m.digest.clone())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, want, "referrers of {d}");
    }

    async fn push_blob(
        &mut self,
        name: &str,
        data: Vec<u8>,
        how: PushHow,
        wrong: bool,
        sha512: bool,
    ) {
        let alg = if sha512 {
            Algorithm::Sha512
        } else {
            Algorithm::Sha256
        };
        let real = alg.digest(&data).as_str().to_owned();
        let sent = if wrong {
            alg.digest(b"something else").as_str().to_owned()
        } else {
            real.clone()
        };
        let final_status = match how {
            PushHow::SinglePost => {
                self.req(
                    Method::POST,
                    &format!("/v2/{name}/blobs/uploads/?digest={sent}"),
                    &[],
                    data.clone(),
                )
                .await
                .status
            }
            _ => {
                let q = if sha512 {
                    "?digest-algorithm=sha512"
                } else {
                    ""
                };
                let r = self
                    .req(
                        Method::POST,
                        &format!("/v2/{name}/blobs/uploads/{q}"),
                        &[],
                        Vec::new(),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::ACCEPTED, "POST upload");
                let mut loc = r.header("location").expect("upload Location").to_owned();
                let rest = match how {
                    PushHow::Monolithic | PushHow::SinglePost => data.clone(),
                    PushHow::Streamed => {
                        let r = self.req(Method::PATCH, &loc, &[], data.clone()).await;
                        assert_eq!(r.status, StatusCode::ACCEPTED, "streamed PATCH");
                        loc = r.header("location").expect("PATCH Location").to_owned();
                        Vec::new()
                    }
                    PushHow::Chunked(k) => {
                        let size = data.len().div_ceil(usize::from(k % 4) + 1).max(1);
                        let mut off = 0;
                        for chunk in data.chunks(size) {
                            let cr = format!("{}-{}", off, off + chunk.len() - 1);
                            let r = self
                                .req(
                                    Method::PATCH,
                                    &loc,
                                    &[("content-range", &cr)],
                                    chunk.to_vec(),
                                )
                                .await;
                            assert_eq!(r.status, StatusCode::ACCEPTED, "chunk {cr}");
                            assert_eq!(
                                r.header("range"),
                                Some(format!("0-{}", off + chunk.len() - 1).as_str())
                            );
                            loc = r.header("location").expect("PATCH Location").to_owned();
                            off += chunk.len();
                        }
                        Vec::new()
                    }
                };
                let sep = if loc.contains('?') { '&' } else { '?' };
                self.req(Method::PUT, &format!("{loc}{sep}digest={sent}"), &[], rest)
                    .await
                    .status
            }
        };
        if wrong && sent != real {
            assert_eq!(
                final_status,
                StatusCode::BAD_REQUEST,
                "wrong digest accepted"
            );
            return;
        }
        assert_eq!(final_status, StatusCode::CREATED, "blob push {how:?}");
        self.m.remember_blob(&real, &data);
        self.m.repo(name).blobs.insert(real);
    }

    async fn open(&mut self, name: &str) {
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{name}/blobs/uploads/"),
                &[],
                Vec::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "POST upload");
        let loc = r.header("location").expect("upload Location").to_owned();
        self.m.sessions.push(SessionModel {
            location: loc,
            repo: name.to_owned(),
            state: SessionState::Open(Some(Vec::new())),
        });
    }

    fn session(&mut self, i: u8) -> Option<&mut SessionModel> {
        let n = self.m.sessions.len();
        if n == 0 {
            None
        } else {
            self.m.sessions.get_mut(usize::from(i) % n)
        }
    }

    async fn patch(&mut self, i: u8, range: Option<(u16, u16)>, data: Vec<u8>) {
        let Some(s) = self.session(i) else { return };
        let loc = s.location.clone();
        let cr = range.map(|(a, b)| format!("{a}-{b}"));
        let headers: Vec<(&str, &str)> = cr.iter().map(|v| ("content-range", v.as_str())).collect();
        let r = self.req(Method::PATCH, &loc, &headers, data.clone()).await;
        let s = self.session(i).expect("exists");
        match &mut s.state {
            SessionState::Gone => {
                assert_eq!(r.status, StatusCode::NOT_FOUND, "PATCH closed session")
            }
            SessionState::Unknown | SessionState::Open(None) => {}
            SessionState::Open(Some(have)) => {
                let size = have.len() as u64;
                let want = match range {
                    None => StatusCode::ACCEPTED,
                    Some((a, b)) if u64::from(a) != size || a > b => {
                        StatusCode::RANGE_NOT_SATISFIABLE
                    }
                    Some((a, b)) if usize::from(b - a) + 1 != data.len() => StatusCode::BAD_REQUEST,
                    Some(_) => StatusCode::ACCEPTED,
                };
                assert_eq!(
                    r.status,
                    want,
                    "PATCH {cr:?} at {size} with {} bytes",
                    data.len()
                );
                // (a failed chunk is rolled back: the session is unchanged)
                if want == StatusCode::ACCEPTED {
                    have.extend_from_slice(&data);
                    let want_range = format!("0-{}", (have.len() as u64).saturating_sub(1));
                    assert_eq!(r.header("range"), Some(want_range.as_str()));
                    if let Some(l) = r.header("location") {
                        s.location = l.to_owned();
                    }
                }
            }
        }
    }

    async fn close(&mut self, i: u8, data: Vec<u8>, wrong: bool) {
        let Some(s) = self.session(i) else { return };
        let loc = s.location.clone();
        let repo = s.repo.clone();
        let known = match &s.state {
            SessionState::Open(Some(have)) => {
                let mut all = have.clone();
                all.extend_from_slice(&data);
                Some(all)
            }
            _ => None,
        };
        let digest = match (&known, wrong) {
            (Some(all), false) => sha256(all),
            _ => sha256(b"something else"),
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = self
            .req(
                Method::PUT,
                &format!("{loc}{sep}digest={digest}"),
                &[],
                data,
            )
            .await;
        let s = self.session(i).expect("exists");
        match (&s.state, known) {
            (SessionState::Gone, _) => assert_eq!(r.status, StatusCode::NOT_FOUND),
            (SessionState::Open(Some(_)), Some(all)) => {
                if wrong && sha256(&all) != digest {
                    assert_eq!(
                        r.status,
                        StatusCode::BAD_REQUEST,
                        "close with a wrong digest"
                    );
                    // a failed completion changes nothing: the final chunk is rolled back
                    // and the session stays open
                } else {
                    assert_eq!(r.status, StatusCode::CREATED, "close");
                    s.state = SessionState::Gone;
                    self.m.remember_blob(&digest, &all);
                    self.m.repo(&repo).blobs.insert(digest);
                }
            }
            _ => s.state = SessionState::Unknown,
        }
    }

    async fn status(&mut self, i: u8) {
        let Some(s) = self.session(i) else { return };
        let loc = s.location.clone();
        let r = self.req(Method::GET, &loc, &[], Vec::new()).await;
        let s = self.session(i).expect("exists");
        match &s.state {
            SessionState::Gone => assert_eq!(r.status, StatusCode::NOT_FOUND),
            SessionState::Open(Some(have)) => {
                assert_eq!(r.status, StatusCode::NO_CONTENT, "upload status");
                let want = format!("0-{}", (have.len() as u64).saturating_sub(1));
                assert_eq!(r.header("range"), Some(want.as_str()));
            }
            _ => {}
        }
    }

    async fn cancel(&mut self, i: u8) {
        let Some(s) = self.session(i) else { return };
        let loc = s.location.clone();
        let r = self.req(Method::DELETE, &loc, &[], Vec::new()).await;
        let s = self.session(i).expect("exists");
        match &s.state {
            SessionState::Gone => assert_eq!(r.status, StatusCode::NOT_FOUND),
            SessionState::Open(_) => assert_eq!(r.status, StatusCode::NO_CONTENT, "cancel"),
            SessionState::Unknown => {}
        }
        s.state = SessionState::Gone;
    }

    async fn mount(&mut self, name: &str, blob: u8, from: &str) {
        let (d, _) = self.m.blob(blob);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{name}/blobs/uploads/?mount={d}&from={from}"),
                &[],
                Vec::new(),
            )
            .await;
        if self.m.repo(from).blobs.contains(&d) {
            assert_eq!(r.status, StatusCode::CREATED, "mount of {d} from {from}");
            self.m.repo(name).blobs.insert(d);
        } else {
            assert_eq!(
                r.status,
                StatusCode::ACCEPTED,
                "failed mount opens a session"
            );
            let loc = r.header("location").expect("upload Location").to_owned();
            self.m.sessions.push(SessionModel {
                location: loc,
                repo: name.to_owned(),
                state: SessionState::Open(Some(Vec::new())),
            });
        }
    }

    /// End of the sequence: everything the model holds reads back, everything deleted (and
    /// not pushed again) is gone. Writes are not read back one by one: reads are ops the
    /// input chooses (`GetBlob`, `GetManifest`, `Tags`, `Referrers`), and this final pass sees
    /// every state a write left (a write whose effect a later op overwrote shows in the
    /// shorter input without that op).
    async fn check_all(&mut self) {
        let names: Vec<String> = self.m.repos.keys().cloned().collect();
        for name in names {
            let repo = &self.m.repos[&name];
            let blobs: Vec<String> = repo.blobs.union(&repo.gone_blobs).cloned().collect();
            let mut refs: BTreeSet<String> = repo.gone_refs.clone();
            refs.extend(repo.manifests.keys().cloned());
            refs.extend(repo.tags.keys().cloned());
            for d in blobs {
                self.expect_blob(&name, &d, None).await;
            }
            for r in refs {
                self.expect_manifest(&name, &r).await;
            }
            self.expect_tags(&name, None, None).await;
        }
    }
}
