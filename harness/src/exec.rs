//! Renders each Op into HTTP requests for one target (following its own Locations) and runs a sequence on all targets at once.
//!
//! Ops run in order; for each op every target runs concurrently. Each target keeps its own upload
//! `Location` per `Session` (resolved against the URL of the response that gave it, query string
//! kept; `digest=` appended as a query pair). `Repo(n)` renders as `{namespace}/r{n}`.
//! Composite ops produce several exchanges, labelled "post", "patch#1", "put", "put-fallback",
//! "page#2", ...; a `PushBlob` stops at the first failed step. Nothing here panics on what a
//! registry sends: transport failures become `status: 0` observations with `transport_error`.
//!
//! Auth (see `auth`): HTTP basic when a username is set. Once a target has sent a
//! `WWW-Authenticate: Bearer realm=...` challenge, every request first gets a token for its own
//! scope (`repository:<name>:pull` / `pull,push` / `delete`, cached per scope until it expires);
//! a 401 with a bearer challenge fetches a token for the challenge's scope and retries once.
//! Credentials and tokens never reach the recorded exchanges.

use crate::content::{Content, ALL_MANIFEST_TYPES, OCI_MANIFEST};
use crate::model::{
    BadManifest, BadNameEndpoint, ContentTypeChoice, DigestAlgo, DigestChoice, Op, PushMethod,
    Reference, Repo, Session,
};
use crate::observe::{self, Exchange, Observation, RequestRecord};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use url::Url;

/// One registry to run sequences against.
#[derive(Clone, PartialEq, Eq)]
pub struct ExecTarget {
    pub name: String,
    pub base_url: url::Url,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Per-target tuning: repository name prefix, TLS.
    pub options: TargetOptions,
}

impl std::fmt::Debug for ExecTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecTarget")
            .field("name", &self.name)
            .field("base_url", &crate::target::redact(self.base_url.as_str()))
            .field("username", &self.username.as_ref().map(|_| "***"))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("options", &self.options)
            .finish()
    }
}

/// What differs per target beyond its URL and credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetOptions {
    /// Prepended to every repository name (`<prefix>/<namespace>/r<n>`), e.g. a Harbor project.
    /// Empty: none. Stripped again from repository names in observed bodies.
    pub repo_prefix: String,
    /// Accept any TLS certificate (`--insecure` / `insecure = true`).
    pub insecure: bool,
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

/// Bounds on every request.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// Whole-request timeout (connect, send, read body).
    pub request_timeout: Duration,
    /// Response bodies are read up to this many bytes.
    pub max_body_bytes: u64,
    /// `ListTagsPaged` follows at most this many pages.
    pub max_pages: u32,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            request_timeout: Duration::from_secs(15),
            max_body_bytes: 16 << 20,
            max_pages: 50,
        }
    }
}

/// All exchanges of one op, per target (index = target index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpOutcome {
    pub per_target: Vec<Vec<Exchange>>,
}

/// The result of running a sequence: target names and one `OpOutcome` per op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseOutcome {
    pub targets: Vec<String>,
    pub ops: Vec<OpOutcome>,
}

struct TargetClient {
    target: ExecTarget,
    client: reqwest::Client,
    creds: Option<crate::auth::Credentials>,
    bearer: crate::auth::BearerState,
}

/// Runs sequences against a fixed set of targets.
pub struct Executor {
    targets: Vec<TargetClient>,
    opts: ExecOptions,
}

/// The `Accept` header of manifest requests.
pub fn manifest_accept() -> String {
    ALL_MANIFEST_TYPES.join(", ")
}

impl Executor {
    pub fn new(targets: Vec<ExecTarget>, opts: ExecOptions) -> anyhow::Result<Executor> {
        let mut out = Vec::with_capacity(targets.len());
        for target in targets {
            let mut builder = reqwest::Client::builder()
                .timeout(opts.request_timeout)
                .connect_timeout(opts.request_timeout)
                .redirect(reqwest::redirect::Policy::limited(10))
                .pool_max_idle_per_host(8);
            if target.options.insecure {
                builder = builder.danger_accept_invalid_certs(true);
            }
            if let Some(pem) = &target.options.ca_pem {
                for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                    anyhow::anyhow!("target `{}`: bad CA certificate: {e}", target.name)
                })? {
                    builder = builder.add_root_certificate(cert);
                }
            }
            let client = builder.build()?;
            let creds = target.username.as_ref().map(|u| crate::auth::Credentials {
                username: u.clone(),
                password: target.password.clone().unwrap_or_default(),
            });
            out.push(TargetClient {
                target,
                client,
                creds,
                bearer: crate::auth::BearerState::default(),
            });
        }
        Ok(Executor { targets: out, opts })
    }

    pub fn target_names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.target.name.clone()).collect()
    }

    /// Runs `seq` on every target; op by op, all targets concurrently.
    pub async fn run(
        &self,
        seq: &crate::model::Sequence,
        content: &Content,
        namespace: &str,
    ) -> CaseOutcome {
        let mut runs: Vec<TargetRun<'_>> = self
            .targets
            .iter()
            .map(|t| TargetRun {
                tc: t,
                opts: &self.opts,
                namespace: namespace.to_string(),
                sessions: HashMap::new(),
            })
            .collect();
        let mut ops = Vec::with_capacity(seq.ops.len());
        for op in &seq.ops {
            let per_target =
                futures::future::join_all(runs.iter_mut().map(|r| r.run_op(op, content))).await;
            ops.push(OpOutcome { per_target });
        }
        CaseOutcome {
            targets: self.target_names(),
            ops,
        }
    }
}

/// A target's view of one upload session.
struct SessionSlot {
    location: Option<Url>,
    blob: crate::model::BlobId,
    /// Bytes the target accepted so far (advanced on 2xx PATCH).
    sent: u32,
}

struct TargetRun<'a> {
    tc: &'a TargetClient,
    opts: &'a ExecOptions,
    namespace: String,
    sessions: HashMap<Session, SessionSlot>,
}

/// One request to send.
struct Req {
    label: String,
    endpoint: &'static str,
    method: reqwest::Method,
    url: Url,
    headers: Vec<(&'static str, String)>,
    body: Option<Bytes>,
}

/// What a sent request gave back: the exchange plus the raw values exec follows.
struct Sent {
    exchange: Exchange,
    location: Option<Url>,
    link_next: Option<Url>,
}

impl Sent {
    fn status(&self) -> u16 {
        self.exchange.observation.status
    }
}

fn octet(len: usize) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/octet-stream".to_string()),
        ("content-length", len.to_string()),
    ]
}

fn wrong_digest(algo: DigestAlgo, bytes: &[u8]) -> String {
    let mut other = bytes.to_vec();
    other.extend_from_slice(b"\0ocidiff-wrong");
    crate::content::digest_of(algo, &other)
}

fn choose_digest(choice: DigestChoice, algo: DigestAlgo, bytes: &[u8]) -> String {
    match choice {
        DigestChoice::Correct => crate::content::digest_of(algo, bytes),
        DigestChoice::Wrong => wrong_digest(algo, bytes),
        DigestChoice::Malformed => match algo {
            DigestAlgo::Sha256 => "sha256:NOT-A-HEX-DIGEST".to_string(),
            DigestAlgo::Sha512 => "sha512:xyz".to_string(),
        },
    }
}

/// Percent-encodes what cannot appear verbatim in a path segment.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-._~:@!$&'()*+,;=".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn with_query(mut url: Url, pairs: &[(&str, &str)]) -> Url {
    if !pairs.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    url
}

/// Bodies of deliberately malformed manifests.
pub fn bad_manifest_body(kind: &BadManifest) -> Bytes {
    let empty = crate::content::digest_of(DigestAlgo::Sha256, b"");
    let base = |layer_digest: &str, version: serde_json::Value, extra: Option<String>| {
        let mut m = serde_json::json!({
            "schemaVersion": version,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": crate::content::OCI_CONFIG, "digest": empty, "size": 0},
            "layers": [{"mediaType": crate::content::OCI_LAYER, "digest": layer_digest, "size": 0}],
        });
        if let (Some(x), Some(o)) = (extra, m.as_object_mut()) {
            o.insert(
                "annotations".into(),
                serde_json::json!({"io.ocidiff.padding": x}),
            );
        }
        Bytes::from(serde_json::to_vec(&m).unwrap_or_default())
    };
    match kind {
        BadManifest::NotJson => Bytes::from_static(b"this is { not json"),
        BadManifest::WrongSchemaVersion => base(&empty, serde_json::json!(1), None),
        BadManifest::BadDescriptorDigest => base("sha256:xyz", serde_json::json!(2), None),
        BadManifest::Oversized => base(
            &empty,
            serde_json::json!(2),
            Some("a".repeat((4 << 20) + 1024)),
        ),
    }
}

/// Parses the first `Bearer` challenge of a `WWW-Authenticate` value (see
/// [`crate::auth::parse_challenges`]): its parameters, names lowercased; `None` without one that
/// has a `realm`.
pub use crate::auth::parse_bearer;

/// Removes a target's repository prefix from what is compared (repository names in bodies,
/// `Location` / `Link` paths), so that prefixed targets compare like the others.
fn strip_repo_prefix(obs: &mut Observation, prefix: &str) {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return;
    }
    let with_slash = format!("{prefix}/");
    let in_path = format!("/v2/{prefix}/");
    for v in obs.headers.values_mut() {
        if v.contains(&in_path) {
            *v = v.replace(&in_path, "/v2/");
        }
    }
    match &mut obs.body {
        observe::BodyFacts::Tags { name, .. } => {
            if let Some(rest) = name.strip_prefix(&with_slash) {
                *name = rest.to_string();
            }
        }
        observe::BodyFacts::Catalog { repositories } => {
            // Only the prefixed repositories are ocidiff's; others are not compared.
            *repositories = repositories
                .iter()
                .filter_map(|r| r.strip_prefix(&with_slash).map(str::to_string))
                .collect();
        }
        _ => {}
    }
}

impl TargetRun<'_> {
    fn repo_name(&self, repo: Repo) -> String {
        let prefix = self.tc.target.options.repo_prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("{}/r{}", self.namespace, repo.0)
        } else {
            format!("{prefix}/{}/r{}", self.namespace, repo.0)
        }
    }

    fn url(&self, path: &str) -> Url {
        let base = self.tc.target.base_url.as_str().trim_end_matches('/');
        match Url::parse(&format!("{base}{path}")) {
            Ok(u) => u,
            Err(_) => self.tc.target.base_url.clone(),
        }
    }

    fn repo_url(&self, repo: Repo, rest: &str) -> Url {
        self.url(&format!("/v2/{}/{}", self.repo_name(repo), rest))
    }

    /// A bearer token for the request's own scope, once the target is known to use tokens.
    async fn proactive_token(&self, req: &Req) -> Option<String> {
        let realm = self.tc.bearer.realm()?;
        let scope = crate::auth::scope_for(req.method.as_str(), req.url.path());
        self.tc
            .bearer
            .token(&self.tc.client, &realm, &scope, self.tc.creds.as_ref())
            .await
            .ok()
    }

    fn build(&self, req: &Req, token: Option<&str>) -> reqwest::RequestBuilder {
        let mut b = self.tc.client.request(req.method.clone(), req.url.clone());
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        if let Some(t) = token {
            b = b.bearer_auth(t);
        } else if let Some(u) = &self.tc.target.username {
            b = b.basic_auth(u, self.tc.target.password.as_ref());
        }
        if let Some(body) = &req.body {
            b = b.body(body.clone());
        } else if matches!(
            req.method,
            reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
        ) {
            if !req.headers.iter().any(|(k, _)| *k == "content-length") {
                b = b.header("content-length", "0");
            }
            b = b.body(Bytes::new());
        }
        b
    }

    /// Answers a bearer challenge: learns the realm, fetches a fresh token for the challenge's
    /// scope (or the request's own) and caches it.
    async fn answer_challenge(&self, req: &Req, challenge: &str) -> Option<String> {
        let params = crate::auth::parse_bearer(challenge)?;
        let realm = self.tc.bearer.learn(&params)?;
        let own = crate::auth::scope_for(req.method.as_str(), req.url.path());
        let scope = params.get("scope").cloned().unwrap_or(own);
        self.tc.bearer.forget(&scope);
        self.tc
            .bearer
            .token(&self.tc.client, &realm, &scope, self.tc.creds.as_ref())
            .await
            .ok()
    }

    async fn send(&self, req: Req) -> Sent {
        let mut headers: BTreeMap<String, String> = req
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let body_len = req.body.as_ref().map(|b| b.len() as u64).unwrap_or(0);
        if req.body.is_some()
            || matches!(
                req.method,
                reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
            )
        {
            headers.insert("content-length".into(), body_len.to_string());
        }
        let request = RequestRecord {
            method: req.method.as_str().to_string(),
            url: req.url.to_string(),
            headers,
            body_len,
            body_sha256: req
                .body
                .as_ref()
                .filter(|b| !b.is_empty())
                .map(|b| crate::content::sha256_hex(b)),
        };
        let token = self.proactive_token(&req).await;
        let mut result = self.build(&req, token.as_deref()).send().await;
        if let Ok(resp) = &result {
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                let challenge = resp
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer"))
                    .map(str::to_string);
                if let Some(ch) = challenge {
                    if let Some(tok) = self.answer_challenge(&req, &ch).await {
                        result = self.build(&req, Some(&tok)).send().await;
                    }
                }
            }
        }
        let (observation, location, link_next) = match result {
            Ok(resp) => {
                let final_url = resp.url().clone();
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| final_url.join(l.trim()).ok());
                let link_next = observe::link_next(&final_url, resp.headers());
                let mut obs =
                    observe::observe(req.endpoint, &req.method, resp, self.opts.max_body_bytes)
                        .await;
                strip_repo_prefix(&mut obs, &self.tc.target.options.repo_prefix);
                (obs, location, link_next)
            }
            Err(e) => (observe::transport_failure(describe_error(&e)), None, None),
        };
        Sent {
            exchange: Exchange {
                label: req.label,
                endpoint: req.endpoint.to_string(),
                request,
                observation,
            },
            location,
            link_next,
        }
    }

    fn skipped(label: &str, endpoint: &str, method: &str, why: &str) -> Exchange {
        Exchange {
            label: label.to_string(),
            endpoint: endpoint.to_string(),
            request: RequestRecord {
                method: method.to_string(),
                url: String::new(),
                headers: BTreeMap::new(),
                body_len: 0,
                body_sha256: None,
            },
            observation: Observation {
                status: 0,
                transport_error: Some(format!("skipped: {why}")),
                headers: BTreeMap::new(),
                body: observe::BodyFacts::Empty,
            },
        }
    }

    fn session_location(&self, session: Session) -> Option<Url> {
        self.sessions.get(&session).and_then(|s| s.location.clone())
    }

    async fn run_op(&mut self, op: &Op, content: &Content) -> Vec<Exchange> {
        use reqwest::Method;
        match op {
            Op::CheckApi => {
                let url = self.url("/v2/");
                vec![
                    self.simple("get", "end-1", Method::GET, url, vec![], None)
                        .await,
                ]
            }
            Op::PushBlob {
                repo,
                blob,
                method,
                digest,
            } => {
                let Some(bytes) = content.blob(*blob).cloned() else {
                    return vec![Self::skipped("post", "end-4a", "POST", "unknown blob")];
                };
                let algo = content.blob_algo(*blob).unwrap_or_default();
                let d = choose_digest(*digest, algo, &bytes);
                self.push_blob(*repo, bytes, algo, d, method).await
            }
            Op::StartUpload {
                repo,
                session,
                blob,
                digest_algorithm,
            } => {
                let (endpoint, pairs): (&'static str, Vec<(&str, &str)>) = match digest_algorithm {
                    Some(DigestAlgo::Sha256) => ("end-4c", vec![("digest-algorithm", "sha256")]),
                    Some(DigestAlgo::Sha512) => ("end-4c", vec![("digest-algorithm", "sha512")]),
                    None => ("end-4a", vec![]),
                };
                let url = with_query(self.repo_url(*repo, "blobs/uploads/"), &pairs);
                let sent = self
                    .send(Req {
                        label: "post".into(),
                        endpoint,
                        method: Method::POST,
                        url,
                        headers: vec![],
                        body: None,
                    })
                    .await;
                let location = (sent.status() == 202).then_some(sent.location).flatten();
                self.sessions.insert(
                    *session,
                    SessionSlot {
                        location,
                        blob: *blob,
                        sent: 0,
                    },
                );
                vec![sent.exchange]
            }
            Op::PatchChunk {
                session,
                start,
                end,
                streamed,
            } => {
                let Some(loc) = self.session_location(*session) else {
                    return vec![Self::skipped(
                        "patch",
                        "end-5",
                        "PATCH",
                        "no upload location",
                    )];
                };
                let blob = self.sessions.get(session).map(|s| s.blob);
                let bytes = blob
                    .and_then(|b| content.blob(b))
                    .cloned()
                    .unwrap_or_default();
                let s = (*start as usize).min(bytes.len());
                let e = (*end as usize).clamp(s, bytes.len());
                let chunk = bytes.slice(s..e);
                let mut headers = octet(chunk.len());
                if !*streamed {
                    headers.push((
                        "content-range",
                        format!("{}-{}", start, end.saturating_sub(1)),
                    ));
                }
                let n = chunk.len() as u32;
                let sent = self
                    .send(Req {
                        label: "patch".into(),
                        endpoint: "end-5",
                        method: Method::PATCH,
                        url: loc,
                        headers,
                        body: Some(chunk),
                    })
                    .await;
                if (200..300).contains(&sent.status()) {
                    if let Some(slot) = self.sessions.get_mut(session) {
                        slot.sent = if *streamed {
                            slot.sent.saturating_add(n)
                        } else {
                            *end
                        };
                        if let Some(l) = sent.location {
                            slot.location = Some(l);
                        }
                    }
                }
                vec![sent.exchange]
            }
            Op::CompleteUpload {
                session,
                rest_in_body,
                digest,
            } => {
                let Some(loc) = self.session_location(*session) else {
                    return vec![Self::skipped("put", "end-6", "PUT", "no upload location")];
                };
                let (blob, sent_bytes) = match self.sessions.get(session) {
                    Some(s) => (s.blob, s.sent),
                    None => {
                        return vec![Self::skipped("put", "end-6", "PUT", "no upload location")]
                    }
                };
                let bytes = content.blob(blob).cloned().unwrap_or_default();
                let algo = content.blob_algo(blob).unwrap_or_default();
                let d = choose_digest(*digest, algo, &bytes);
                let from = (sent_bytes as usize).min(bytes.len());
                let rest = bytes.slice(from..);
                let url = with_query(loc, &[("digest", &d)]);
                let (headers, body) = if *rest_in_body && !rest.is_empty() {
                    let mut h = octet(rest.len());
                    h.push(("content-range", format!("{}-{}", from, bytes.len() - 1)));
                    (h, Some(rest))
                } else {
                    (vec![], None)
                };
                let sent = self
                    .send(Req {
                        label: "put".into(),
                        endpoint: "end-6",
                        method: Method::PUT,
                        url,
                        headers,
                        body,
                    })
                    .await;
                vec![sent.exchange]
            }
            Op::UploadStatus { session } => {
                let Some(loc) = self.session_location(*session) else {
                    return vec![Self::skipped("get", "end-13", "GET", "no upload location")];
                };
                let sent = self
                    .send(Req {
                        label: "get".into(),
                        endpoint: "end-13",
                        method: Method::GET,
                        url: loc,
                        headers: vec![],
                        body: None,
                    })
                    .await;
                if (200..300).contains(&sent.status()) {
                    if let (Some(slot), Some(l)) = (self.sessions.get_mut(session), sent.location) {
                        slot.location = Some(l);
                    }
                }
                vec![sent.exchange]
            }
            Op::CancelUpload { session } => {
                let Some(loc) = self.session_location(*session) else {
                    return vec![Self::skipped(
                        "delete",
                        "end-14",
                        "DELETE",
                        "no upload location",
                    )];
                };
                vec![
                    self.simple(
                        "delete",
                        "end-14",
                        Method::DELETE,
                        loc,
                        vec![("content-length", "0".into())],
                        None,
                    )
                    .await,
                ]
            }
            Op::MountBlob { repo, blob, from } => {
                let d = content
                    .blob_digest(*blob)
                    .unwrap_or("sha256:unknown")
                    .to_string();
                let from_name = from.map(|f| self.repo_name(f));
                let mut pairs = vec![("mount", d.as_str())];
                if let Some(f) = &from_name {
                    pairs.push(("from", f.as_str()));
                }
                let url = with_query(self.repo_url(*repo, "blobs/uploads/"), &pairs);
                vec![
                    self.simple("post", "end-11", Method::POST, url, vec![], None)
                        .await,
                ]
            }
            Op::HeadBlob { repo, blob } => {
                let d = content
                    .blob_digest(*blob)
                    .unwrap_or("sha256:unknown")
                    .to_string();
                let url = self.repo_url(*repo, &format!("blobs/{d}"));
                vec![
                    self.simple("head", "end-2", Method::HEAD, url, vec![], None)
                        .await,
                ]
            }
            Op::GetBlob { repo, blob, range } => {
                let d = content
                    .blob_digest(*blob)
                    .unwrap_or("sha256:unknown")
                    .to_string();
                let url = self.repo_url(*repo, &format!("blobs/{d}"));
                let headers = match range {
                    Some((s, Some(e))) => vec![("range", format!("bytes={s}-{e}"))],
                    Some((s, None)) => vec![("range", format!("bytes={s}-"))],
                    None => vec![],
                };
                vec![
                    self.simple("get", "end-2", Method::GET, url, headers, None)
                        .await,
                ]
            }
            Op::HeadManifest { repo, reference } | Op::GetManifest { repo, reference } => {
                let (label, method) = if matches!(op, Op::HeadManifest { .. }) {
                    ("head", Method::HEAD)
                } else {
                    ("get", Method::GET)
                };
                let r = self.reference(reference, content);
                let url = self.repo_url(*repo, &format!("manifests/{}", path_segment(&r)));
                vec![
                    self.simple(
                        label,
                        "end-3",
                        method,
                        url,
                        vec![("accept", manifest_accept())],
                        None,
                    )
                    .await,
                ]
            }
            Op::PushManifest {
                repo,
                manifest,
                reference,
                tags,
                content_type,
            } => {
                let Some(bytes) = content.manifest(*manifest).cloned() else {
                    return vec![Self::skipped("put", "end-7a", "PUT", "unknown manifest")];
                };
                let r = self.reference(reference, content);
                let url = self.repo_url(*repo, &format!("manifests/{}", path_segment(&r)));
                let pairs: Vec<(&str, &str)> = tags.iter().map(|t| ("tag", t.as_str())).collect();
                let url = with_query(url, &pairs);
                let mut headers = vec![];
                match content_type {
                    ContentTypeChoice::Matching => headers.push((
                        "content-type",
                        content
                            .manifest_media_type(*manifest)
                            .unwrap_or(OCI_MANIFEST)
                            .to_string(),
                    )),
                    ContentTypeChoice::Missing => {}
                    ContentTypeChoice::Other(o) => headers.push(("content-type", o.clone())),
                }
                let endpoint = if tags.is_empty() { "end-7a" } else { "end-7b" };
                vec![
                    self.simple("put", endpoint, Method::PUT, url, headers, Some(bytes))
                        .await,
                ]
            }
            Op::PushBadManifest {
                repo,
                reference,
                body,
            } => {
                let r = self.reference(reference, content);
                let url = self.repo_url(*repo, &format!("manifests/{}", path_segment(&r)));
                let headers = vec![("content-type", OCI_MANIFEST.to_string())];
                vec![
                    self.simple(
                        "put",
                        "end-7a",
                        Method::PUT,
                        url,
                        headers,
                        Some(bad_manifest_body(body)),
                    )
                    .await,
                ]
            }
            Op::ListTags { repo, n, last } => {
                let n_s = n.map(|n| n.to_string());
                let mut pairs = vec![];
                if let Some(n) = &n_s {
                    pairs.push(("n", n.as_str()));
                }
                if let Some(l) = last {
                    pairs.push(("last", l.as_str()));
                }
                let endpoint = if pairs.is_empty() { "end-8a" } else { "end-8b" };
                let url = with_query(self.repo_url(*repo, "tags/list"), &pairs);
                vec![
                    self.simple("get", endpoint, Method::GET, url, vec![], None)
                        .await,
                ]
            }
            Op::ListTagsPaged { repo, n } => {
                let n_s = n.to_string();
                let mut url = with_query(self.repo_url(*repo, "tags/list"), &[("n", &n_s)]);
                let mut out = Vec::new();
                for page in 1..=self.opts.max_pages.max(1) {
                    let sent = self
                        .send(Req {
                            label: format!("page#{page}"),
                            endpoint: "end-8b",
                            method: Method::GET,
                            url: url.clone(),
                            headers: vec![],
                            body: None,
                        })
                        .await;
                    let ok = sent.status() == 200;
                    let next = sent.link_next.clone();
                    out.push(sent.exchange);
                    match next {
                        Some(n) if ok && n != url => url = n,
                        _ => break,
                    }
                }
                out
            }
            Op::ListReferrers {
                repo,
                subject,
                artifact_type,
            } => {
                let r = self.reference(subject, content);
                let url = self.repo_url(*repo, &format!("referrers/{}", path_segment(&r)));
                let (endpoint, url) = match artifact_type {
                    Some(a) => ("end-12b", with_query(url, &[("artifactType", a)])),
                    None => ("end-12a", url),
                };
                vec![
                    self.simple("get", endpoint, Method::GET, url, vec![], None)
                        .await,
                ]
            }
            Op::Catalog { n } => {
                let n_s = n.map(|n| n.to_string());
                let pairs: Vec<(&str, &str)> = n_s.iter().map(|n| ("n", n.as_str())).collect();
                let url = with_query(self.url("/v2/_catalog"), &pairs);
                vec![
                    self.simple("get", "catalog", Method::GET, url, vec![], None)
                        .await,
                ]
            }
            Op::DeleteManifest { repo, reference } => {
                let r = self.reference(reference, content);
                let url = self.repo_url(*repo, &format!("manifests/{}", path_segment(&r)));
                vec![
                    self.simple("delete", "end-9", Method::DELETE, url, vec![], None)
                        .await,
                ]
            }
            Op::DeleteBlob { repo, blob } => {
                let d = content
                    .blob_digest(*blob)
                    .unwrap_or("sha256:unknown")
                    .to_string();
                let url = self.repo_url(*repo, &format!("blobs/{d}"));
                vec![
                    self.simple("delete", "end-10", Method::DELETE, url, vec![], None)
                        .await,
                ]
            }
            Op::BadName { name, endpoint } => {
                let (label, ep, method, rest) = match endpoint {
                    BadNameEndpoint::TagList => ("get", "end-8a", Method::GET, "tags/list"),
                    BadNameEndpoint::ManifestGet => {
                        ("get", "end-3", Method::GET, "manifests/latest")
                    }
                    BadNameEndpoint::BlobUpload => {
                        ("post", "end-4a", Method::POST, "blobs/uploads/")
                    }
                };
                let name: String = name
                    .split('/')
                    .map(path_segment)
                    .collect::<Vec<_>>()
                    .join("/");
                let url = self.url(&format!("/v2/{name}/{rest}"));
                let headers = if matches!(endpoint, BadNameEndpoint::ManifestGet) {
                    vec![("accept", manifest_accept())]
                } else {
                    vec![]
                };
                vec![self.simple(label, ep, method, url, headers, None).await]
            }
            Op::GetBlobRaw { repo, digest } => {
                let url = self.repo_url(*repo, &format!("blobs/{}", path_segment(digest)));
                vec![
                    self.simple("get", "end-2", Method::GET, url, vec![], None)
                        .await,
                ]
            }
        }
    }

    fn reference(&self, reference: &Reference, content: &Content) -> String {
        crate::state::reference_string(reference, content)
            .unwrap_or_else(|| "sha256:unknown-manifest".into())
    }

    async fn simple(
        &self,
        label: &str,
        endpoint: &'static str,
        method: reqwest::Method,
        url: Url,
        headers: Vec<(&'static str, String)>,
        body: Option<Bytes>,
    ) -> Exchange {
        self.send(Req {
            label: label.to_string(),
            endpoint,
            method,
            url,
            headers,
            body,
        })
        .await
        .exchange
    }

    /// The composite blob push; stops at the first failed step.
    async fn push_blob(
        &self,
        repo: Repo,
        bytes: Bytes,
        algo: DigestAlgo,
        digest: String,
        method: &PushMethod,
    ) -> Vec<Exchange> {
        use reqwest::Method;
        let uploads = self.repo_url(repo, "blobs/uploads/");
        let mut out = Vec::new();
        let put = |loc: Url,
                   label: &str,
                   headers: Vec<(&'static str, String)>,
                   body: Option<Bytes>| Req {
            label: label.to_string(),
            endpoint: "end-6",
            method: Method::PUT,
            url: with_query(loc, &[("digest", &digest)]),
            headers,
            body,
        };
        match method {
            PushMethod::SinglePost => {
                let sent = self
                    .send(Req {
                        label: "post".into(),
                        endpoint: "end-4b",
                        method: Method::POST,
                        url: with_query(uploads, &[("digest", &digest)]),
                        headers: octet(bytes.len()),
                        body: Some(bytes.clone()),
                    })
                    .await;
                let status = sent.status();
                let loc = sent.location.clone();
                out.push(sent.exchange);
                if status == 202 {
                    match loc {
                        Some(loc) => out.push(
                            self.send(put(loc, "put-fallback", octet(bytes.len()), Some(bytes)))
                                .await
                                .exchange,
                        ),
                        None => out.push(Self::skipped(
                            "put-fallback",
                            "end-6",
                            "PUT",
                            "no upload location",
                        )),
                    }
                }
            }
            PushMethod::Monolithic | PushMethod::Chunked { .. } | PushMethod::Streamed => {
                let (endpoint, url) = match (method, algo) {
                    (PushMethod::Monolithic, _) | (_, DigestAlgo::Sha256) => ("end-4a", uploads),
                    (_, DigestAlgo::Sha512) => (
                        "end-4c",
                        with_query(uploads, &[("digest-algorithm", "sha512")]),
                    ),
                };
                let sent = self
                    .send(Req {
                        label: "post".into(),
                        endpoint,
                        method: Method::POST,
                        url,
                        headers: vec![],
                        body: None,
                    })
                    .await;
                let status = sent.status();
                let mut loc = sent.location.clone();
                out.push(sent.exchange);
                if status != 202 {
                    return out;
                }
                let Some(mut location) = loc.take() else {
                    out.push(Self::skipped("put", "end-6", "PUT", "no upload location"));
                    return out;
                };
                match method {
                    PushMethod::Monolithic => {
                        out.push(
                            self.send(put(location, "put", octet(bytes.len()), Some(bytes)))
                                .await
                                .exchange,
                        );
                    }
                    PushMethod::Streamed => {
                        let sent = self
                            .send(Req {
                                label: "patch#1".into(),
                                endpoint: "end-5",
                                method: Method::PATCH,
                                url: location.clone(),
                                headers: octet(bytes.len()),
                                body: Some(bytes.clone()),
                            })
                            .await;
                        let ok = sent.status() == 202;
                        if let Some(l) = sent.location.clone() {
                            location = l;
                        }
                        out.push(sent.exchange);
                        if ok {
                            out.push(self.send(put(location, "put", vec![], None)).await.exchange);
                        }
                    }
                    PushMethod::Chunked {
                        chunks,
                        last_in_put,
                    } => {
                        let pieces = split_chunks(bytes.len(), *chunks);
                        let patched = if *last_in_put && !pieces.is_empty() {
                            pieces.len() - 1
                        } else {
                            pieces.len()
                        };
                        for (i, (s, e)) in pieces[..patched].iter().enumerate() {
                            let mut headers = octet(e - s);
                            headers.push(("content-range", format!("{}-{}", s, e - 1)));
                            let sent = self
                                .send(Req {
                                    label: format!("patch#{}", i + 1),
                                    endpoint: "end-5",
                                    method: Method::PATCH,
                                    url: location.clone(),
                                    headers,
                                    body: Some(bytes.slice(*s..*e)),
                                })
                                .await;
                            let ok = sent.status() == 202;
                            if let Some(l) = sent.location.clone() {
                                location = l;
                            }
                            out.push(sent.exchange);
                            if !ok {
                                return out;
                            }
                        }
                        let req = match pieces.get(patched) {
                            Some((s, e)) => {
                                let mut headers = octet(e - s);
                                headers.push(("content-range", format!("{}-{}", s, e - 1)));
                                put(location, "put", headers, Some(bytes.slice(*s..*e)))
                            }
                            None => put(location, "put", vec![], None),
                        };
                        out.push(self.send(req).await.exchange);
                    }
                    PushMethod::SinglePost => {}
                }
            }
        }
        out
    }
}

/// Splits `len` bytes into at most `chunks` non-empty, contiguous `[start, end)` ranges.
pub fn split_chunks(len: usize, chunks: u8) -> Vec<(usize, usize)> {
    let n = (chunks.max(1) as usize).min(len);
    if n == 0 {
        return Vec::new();
    }
    let base = len / n;
    let extra = len % n;
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let size = base + usize::from(i < extra);
        out.push((start, start + size));
        start += size;
    }
    out
}

fn describe_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_redirect() {
        "redirect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(e);
    // Bounded walk of the error chain.
    for _ in 0..8 {
        let Some(s) = src else { break };
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_evenly() {
        assert_eq!(split_chunks(10, 3), vec![(0, 4), (4, 7), (7, 10)]);
        assert_eq!(split_chunks(2, 5), vec![(0, 1), (1, 2)]);
        assert!(split_chunks(0, 3).is_empty());
        assert_eq!(split_chunks(5, 0), vec![(0, 5)]);
    }

    #[test]
    fn bearer_challenges_parse() {
        let p = parse_bearer(r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push""#).unwrap();
        assert_eq!(p["realm"], "http://127.0.0.1:1/token");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        assert!(parse_bearer("Basic realm=x").is_none());
    }

    #[test]
    fn bad_manifests_render() {
        assert!(bad_manifest_body(&BadManifest::Oversized).len() > 4 << 20);
        let v: serde_json::Value =
            serde_json::from_slice(&bad_manifest_body(&BadManifest::WrongSchemaVersion)).unwrap();
        assert_eq!(v["schemaVersion"], 1);
        assert!(
            serde_json::from_slice::<serde_json::Value>(&bad_manifest_body(&BadManifest::NotJson))
                .is_err()
        );
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("a:b"), "a:b");
        assert_eq!(path_segment("a/b?c#"), "a%2Fb%3Fc%23");
    }

    #[tokio::test]
    async fn unreachable_target_gives_transport_errors() {
        let ex = Executor::new(
            vec![ExecTarget {
                name: "dead".into(),
                base_url: Url::parse("http://127.0.0.1:9/").unwrap(),
                username: None,
                password: None,
                options: TargetOptions::default(),
            }],
            ExecOptions {
                request_timeout: Duration::from_secs(2),
                ..ExecOptions::default()
            },
        )
        .unwrap();
        let seq = crate::model::Sequence {
            content: crate::model::ContentSpec {
                blobs: vec![crate::model::BlobSpec {
                    size: 4,
                    seed: 1,
                    algo: DigestAlgo::Sha256,
                }],
                manifests: vec![],
            },
            ops: vec![
                Op::CheckApi,
                Op::PushBlob {
                    repo: Repo(0),
                    blob: crate::model::BlobId(0),
                    method: PushMethod::Monolithic,
                    digest: DigestChoice::Correct,
                },
                Op::PatchChunk {
                    session: Session(0),
                    start: 0,
                    end: 2,
                    streamed: false,
                },
            ],
        };
        let content = Content::render(&seq.content).unwrap();
        let out = ex.run(&seq, &content, "t").await;
        assert_eq!(out.ops.len(), 3);
        assert_eq!(out.ops[0].per_target[0][0].observation.status, 0);
        assert_eq!(out.ops[1].per_target[0].len(), 1);
        assert_eq!(
            out.ops[2].per_target[0][0]
                .observation
                .transport_error
                .as_deref(),
            Some("skipped: no upload location")
        );
    }

    fn statuses(out: &CaseOutcome, op: usize) -> Vec<(String, u16)> {
        out.ops[op].per_target[0]
            .iter()
            .map(|e| (e.label.clone(), e.observation.status))
            .collect()
    }

    async fn reference_executor() -> (reference_registry::RunningRegistry, Executor) {
        let reg = reference_registry::spawn(reference_registry::Config::default())
            .await
            .unwrap();
        let ex = Executor::new(
            vec![ExecTarget {
                name: "reference".into(),
                base_url: Url::parse(&reg.url()).unwrap(),
                username: None,
                password: None,
                options: TargetOptions::default(),
            }],
            ExecOptions::default(),
        )
        .unwrap();
        (reg, ex)
    }

    #[tokio::test]
    async fn hand_written_sequence_against_reference() {
        use crate::model::{
            BlobId, BlobSpec, ContentSpec, Flavor, ManifestId, ManifestSpec, Sequence,
        };
        let (_reg, ex) = reference_executor().await;
        let blob = |size, seed| BlobSpec {
            size,
            seed,
            algo: DigestAlgo::Sha256,
        };
        let seq = Sequence {
            content: ContentSpec {
                blobs: vec![blob(100, 1), blob(5000, 2), blob(3000, 3)],
                manifests: vec![ManifestSpec::Image {
                    flavor: Flavor::Oci,
                    config: BlobId(0),
                    config_media_type: None,
                    layers: vec![BlobId(1), BlobId(2)],
                    subject: None,
                    artifact_type: None,
                    annotations: Default::default(),
                    data_field: false,
                    custom_fields: true,
                    algo: DigestAlgo::Sha256,
                }],
            },
            ops: vec![
                Op::CheckApi,
                Op::PushBlob {
                    repo: Repo(0),
                    blob: BlobId(0),
                    method: PushMethod::Monolithic,
                    digest: DigestChoice::Correct,
                },
                Op::PushBlob {
                    repo: Repo(0),
                    blob: BlobId(1),
                    method: PushMethod::Chunked {
                        chunks: 3,
                        last_in_put: true,
                    },
                    digest: DigestChoice::Correct,
                },
                Op::StartUpload {
                    repo: Repo(0),
                    session: Session(0),
                    blob: BlobId(2),
                    digest_algorithm: None,
                },
                Op::PatchChunk {
                    session: Session(0),
                    start: 0,
                    end: 1000,
                    streamed: false,
                },
                Op::PatchChunk {
                    session: Session(0),
                    start: 500,
                    end: 1500,
                    streamed: false,
                },
                Op::UploadStatus {
                    session: Session(0),
                },
                Op::CompleteUpload {
                    session: Session(0),
                    rest_in_body: true,
                    digest: DigestChoice::Correct,
                },
                Op::PushManifest {
                    repo: Repo(0),
                    manifest: ManifestId(0),
                    reference: Reference::Tag("v1".into()),
                    tags: vec![],
                    content_type: ContentTypeChoice::Matching,
                },
                Op::GetManifest {
                    repo: Repo(0),
                    reference: Reference::Digest(ManifestId(0)),
                },
                Op::ListTags {
                    repo: Repo(0),
                    n: None,
                    last: None,
                },
                Op::PushBlob {
                    repo: Repo(1),
                    blob: BlobId(0),
                    method: PushMethod::SinglePost,
                    digest: DigestChoice::Wrong,
                },
                Op::GetBlob {
                    repo: Repo(0),
                    blob: BlobId(1),
                    range: Some((10, Some(19))),
                },
                Op::ListTagsPaged {
                    repo: Repo(0),
                    n: 1,
                },
                Op::PatchChunk {
                    session: Session(0),
                    start: 0,
                    end: 10,
                    streamed: false,
                },
            ],
        };
        let content = Content::render(&seq.content).unwrap();
        let out = ex.run(&seq, &content, "ns1").await;
        assert_eq!(out.targets, vec!["reference"]);
        let s = |l: &str, c: u16| (l.to_string(), c);
        assert_eq!(statuses(&out, 0), vec![s("get", 200)]);
        assert_eq!(statuses(&out, 1), vec![s("post", 202), s("put", 201)]);
        assert_eq!(
            statuses(&out, 2),
            vec![
                s("post", 202),
                s("patch#1", 202),
                s("patch#2", 202),
                s("put", 201)
            ]
        );
        assert_eq!(statuses(&out, 3), vec![s("post", 202)]);
        assert_eq!(statuses(&out, 4), vec![s("patch", 202)]);
        assert_eq!(statuses(&out, 5), vec![s("patch", 416)]);
        assert_eq!(statuses(&out, 6), vec![s("get", 204)]);
        let status_headers = &out.ops[6].per_target[0][0].observation.headers;
        assert_eq!(
            status_headers.get("range").map(String::as_str),
            Some("0-999")
        );
        assert!(
            status_headers["location"].contains("/blobs/uploads/<upload>"),
            "{status_headers:?}"
        );
        assert_eq!(statuses(&out, 7), vec![s("put", 201)]);
        assert_eq!(statuses(&out, 8), vec![s("put", 201)]);
        let get = &out.ops[9].per_target[0][0];
        assert_eq!(get.observation.status, 200);
        assert_eq!(
            get.observation.body,
            crate::observe::BodyFacts::Content {
                len: content.manifest(ManifestId(0)).unwrap().len() as u64,
                sha256: crate::content::sha256_hex(content.manifest(ManifestId(0)).unwrap()),
            }
        );
        assert_eq!(
            get.observation
                .headers
                .get("docker-content-digest")
                .map(String::as_str),
            content.manifest_digest(ManifestId(0))
        );
        assert_eq!(
            out.ops[10].per_target[0][0].observation.body,
            crate::observe::BodyFacts::Tags {
                name: "ns1/r0".into(),
                tags: vec!["v1".into()]
            }
        );
        assert_eq!(statuses(&out, 11)[0].1, 400);
        assert!(matches!(
            &out.ops[11].per_target[0][0].observation.body,
            crate::observe::BodyFacts::Errors { codes } if codes == &vec!["DIGEST_INVALID".to_string()]
        ));
        assert_eq!(statuses(&out, 12), vec![s("get", 206)]);
        assert_eq!(statuses(&out, 13), vec![s("page#1", 200)]);
        // The session was completed: its old location is gone.
        assert_eq!(statuses(&out, 14)[0].1, 404);
        let rec = &out.ops[1].per_target[0][1].request;
        assert_eq!(rec.method, "PUT");
        assert!(
            rec.url.contains("digest=sha256%3A") || rec.url.contains("digest=sha256:"),
            "{}",
            rec.url
        );
        assert_eq!(rec.body_len, 100);
        assert_eq!(rec.headers["content-type"], "application/octet-stream");
    }

    #[tokio::test]
    async fn generated_sequences_run_against_reference() {
        let (_reg, ex) = reference_executor().await;
        let cfg = crate::generate::GenConfig::default();
        for seed in 0..20u64 {
            let seq = crate::generate::generate_sequence(seed, &cfg);
            let content = Content::render(&seq.content).unwrap();
            let out = ex.run(&seq, &content, &format!("gen{seed}")).await;
            assert_eq!(out.ops.len(), seq.ops.len());
            for (op, o) in seq.ops.iter().zip(&out.ops) {
                for e in &o.per_target[0] {
                    let err = e.observation.transport_error.as_deref().unwrap_or("");
                    assert!(
                        err.is_empty() || err.starts_with("skipped"),
                        "seed {seed} {op:?}: {err}"
                    );
                }
            }
        }
    }

    /// The model's predictions for the simple cases match the reference registry.
    #[tokio::test]
    async fn model_agrees_with_reference() {
        use crate::observe::BodyFacts;
        use crate::state::ModelState;
        let (_reg, ex) = reference_executor().await;
        let cfg = crate::generate::GenConfig {
            max_blob_size: 4096,
            max_ops: 40,
            invalid_share: 0.2,
            ..Default::default()
        };
        let mut mismatches = Vec::new();
        for seed in 0..100u64 {
            let seq = crate::generate::generate_sequence(seed, &cfg);
            let content = Content::render(&seq.content).unwrap();
            let ns = format!("agree{seed}");
            let out = ex.run(&seq, &content, &ns).await;
            let mut state = ModelState::new();
            for (i, (op, o)) in seq.ops.iter().zip(&out.ops).enumerate() {
                let ex = &o.per_target[0];
                let Some(last) = ex.last() else { continue };
                let status = last.observation.status;
                let expect: Option<bool> = match op {
                    Op::GetManifest { repo, reference } | Op::HeadManifest { repo, reference } => {
                        Some(state.resolve(*repo, reference).is_some())
                    }
                    Op::GetBlob { repo, blob, .. } | Op::HeadBlob { repo, blob } => {
                        Some(state.has_blob(*repo, *blob))
                    }
                    Op::PushManifest {
                        repo,
                        manifest,
                        reference,
                        tags,
                        content_type,
                    } => Some(state.manifest_push_valid(
                        *repo,
                        *manifest,
                        reference,
                        tags,
                        content_type,
                        &content,
                    )),
                    Op::PushBlob { digest, .. } => Some(*digest == DigestChoice::Correct),
                    Op::CompleteUpload {
                        session,
                        rest_in_body,
                        digest,
                    } => Some(state.completes(*session, *rest_in_body, *digest, &content)),
                    Op::MountBlob { repo, blob, from } => {
                        Some(state.mount_succeeds(*repo, *blob, *from))
                    }
                    Op::DeleteBlob { repo, blob } => Some(state.has_blob(*repo, *blob)),
                    Op::DeleteManifest { repo, reference } => {
                        Some(state.resolve(*repo, reference).is_some())
                    }
                    _ => None,
                };
                if let Some(ok) = expect {
                    let got = (200..300).contains(&status) && status != 202
                        || matches!(op, Op::DeleteBlob { .. } | Op::DeleteManifest { .. })
                            && status == 202;
                    if ok != got {
                        mismatches.push(format!(
                            "seed {seed} op {i} {op:?}: model {ok}, status {status} {:?}",
                            last.observation.body
                        ));
                    }
                }
                if let Op::ListTags {
                    repo,
                    n: None,
                    last: None,
                } = op
                {
                    if let BodyFacts::Tags { tags, .. } = &last.observation.body {
                        if *tags != state.tags(*repo) {
                            mismatches.push(format!(
                                "seed {seed} op {i}: tags {tags:?} vs model {:?}",
                                state.tags(*repo)
                            ));
                        }
                    }
                }
                if let Op::ListReferrers {
                    repo,
                    subject: Reference::Digest(m),
                    artifact_type,
                } = op
                {
                    if let BodyFacts::Referrers { manifests } = &last.observation.body {
                        let model = state.referrers(*repo, *m, artifact_type.as_deref(), &content);
                        if *manifests != model {
                            mismatches.push(format!(
                                "seed {seed} op {i}: referrers {manifests:?} vs model {model:?}"
                            ));
                        }
                    }
                }
                state.apply(op, &content);
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[tokio::test]
    async fn basic_and_bearer_auth() {
        use reference_registry::{AuthMode, Config};
        for auth in [
            AuthMode::Basic {
                username: "u".into(),
                password: "p".into(),
            },
            AuthMode::Token {
                username: Some("u".into()),
                password: Some("p".into()),
            },
        ] {
            let reg = reference_registry::spawn(Config {
                auth: auth.clone(),
                ..Config::default()
            })
            .await
            .unwrap();
            let target = |user: Option<&str>| ExecTarget {
                name: "r".into(),
                base_url: Url::parse(&reg.url()).unwrap(),
                username: user.map(str::to_string),
                password: Some("p".into()),
                options: TargetOptions::default(),
            };
            let ex = Executor::new(
                vec![target(Some("u")), target(None)],
                ExecOptions::default(),
            )
            .unwrap();
            let seq = crate::model::Sequence {
                content: crate::model::ContentSpec {
                    blobs: vec![crate::model::BlobSpec {
                        size: 10,
                        seed: 1,
                        algo: DigestAlgo::Sha256,
                    }],
                    manifests: vec![],
                },
                ops: vec![
                    Op::CheckApi,
                    Op::PushBlob {
                        repo: Repo(0),
                        blob: crate::model::BlobId(0),
                        method: PushMethod::Chunked {
                            chunks: 2,
                            last_in_put: false,
                        },
                        digest: DigestChoice::Correct,
                    },
                    Op::HeadBlob {
                        repo: Repo(0),
                        blob: crate::model::BlobId(0),
                    },
                ],
            };
            let content = Content::render(&seq.content).unwrap();
            let out = ex.run(&seq, &content, "auth").await;
            let codes = |t: usize| -> Vec<u16> {
                out.ops
                    .iter()
                    .flat_map(|o| o.per_target[t].iter().map(|e| e.observation.status))
                    .collect()
            };
            assert_eq!(codes(0), vec![200, 202, 202, 202, 201, 200], "{auth:?}");
            assert_eq!(codes(1), vec![401, 401, 401], "{auth:?}");
            assert!(!out.ops[0].per_target[0][0]
                .request
                .headers
                .contains_key("authorization"));
        }
    }
}
