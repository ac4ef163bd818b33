//! The HTTP surface: path dispatch (parsed from the end, since names contain
//! slashes), authentication, and one handler per endpoint id of the
//! Distribution Spec (end-1 ... end-14, plus `/v2/_catalog` and `/token`).
//!
//! This file holds the router, route parsing, authentication, end-1 (`GET /v2/`)
//! and the helpers every resource shares (error and response builders, query
//! parsing, body draining). One file per resource holds its handlers:
//!
//! * `blobs.rs`: end-2, end-10 (and the `redirect_blobs` storage);
//! * `uploads.rs`: end-4a, end-4b, end-4c, end-5, end-6, end-11, end-13, end-14;
//! * `manifests.rs`: end-3, end-7a, end-7b, end-9;
//! * `tags.rs`: end-8a, end-8b;
//! * `referrers.rs`: end-12a, end-12b;
//! * `catalog.rs`: `GET /v2/_catalog`.

mod blobs;
mod catalog;
mod manifests;
mod referrers;
mod tags;
mod uploads;

use blobs::{delete_blob, get_blob, storage_blob};
use catalog::catalog;
use manifests::{delete_manifest, get_manifest, put_manifest};
use referrers::referrers;
use tags::tags_list;
use uploads::{start_upload, upload_session};

use crate::auth::{Action, Auth, Scope};
use crate::quirks;
use crate::spec::{self, Digest, ErrorCode, ErrorEntry};
use crate::store::Store;
use crate::Config;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::sync::Arc;

/// Shared state of one registry.
pub struct AppState {
    pub store: Store,
    pub auth: Auth,
    pub config: Config,
}

type St = Arc<AppState>;

/// The router: every request goes through [`dispatch`].
pub fn router(state: St) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const OCI_TAG: HeaderName = HeaderName::from_static("oci-tag");
const OCI_FILTERS: HeaderName = HeaderName::from_static("oci-filters-applied");
const RANGE: HeaderName = HeaderName::from_static("range");
const OCI_CHUNK_MIN: HeaderName = HeaderName::from_static("oci-chunk-min-length");

/// A failed request: status, error entries, extra headers.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    errors: Vec<ErrorEntry>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, detail: Value) -> ApiError {
        ApiError {
            status,
            errors: vec![ErrorEntry { code, detail }],
            headers: Vec::new(),
        }
    }
    fn header(mut self, name: HeaderName, value: &str) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }
    fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {e}");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = spec::error_body(&self.errors);
        let len = body.len();
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(spec::JSON));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        for (k, v) in self.headers {
            h.append(k, v);
        }
        resp
    }
}

type Res = Result<Response, ApiError>;

fn err(status: StatusCode, code: ErrorCode, detail: Value) -> ApiError {
    ApiError::new(status, code, detail)
}

fn digest_invalid(detail: impl std::fmt::Display) -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        ErrorCode::DigestInvalid,
        json!(detail.to_string()),
    )
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| digest_invalid(format!("{s}: {e}")))
}

/// A response with an empty body and explicit `Content-Length: 0`.
fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    if status != StatusCode::NO_CONTENT {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    }
    r
}

fn set(r: &mut Response, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn json_response(value: &Value, content_type: &'static str) -> Response {
    let body = Bytes::from(value.to_string());
    let len = body.len();
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// The parsed path.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Base,
    Catalog,
    Token,
    Tags(&'a str),
    UploadStart(&'a str),
    Upload(&'a str, &'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Referrers(&'a str, &'a str),
    /// `/_storage/blobs/<digest>`: where the `redirect_blobs` quirk sends blob pulls.
    Storage(&'a str),
}

/// Parses a request path from the end. `None` = 404.
fn parse_route(path: &str) -> Option<Route<'_>> {
    if path == "/token" {
        return Some(Route::Token);
    }
    if let Some(d) = path.strip_prefix("/_storage/blobs/") {
        return Some(Route::Storage(d));
    }
    if path == "/v2" || path == "/v2/" {
        return Some(Route::Base);
    }
    let rest = path.strip_prefix("/v2/")?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads/") {
        return Some(Route::UploadStart(name));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads") {
        return Some(Route::UploadStart(name));
    }
    let (before, last) = rest.rsplit_once('/')?;
    if last.is_empty() {
        return None;
    }
    if let Some(name) = before.strip_suffix("/blobs/uploads") {
        return Some(Route::Upload(name, last));
    }
    if let Some(name) = before.strip_suffix("/manifests") {
        return Some(Route::Manifest(name, last));
    }
    if let Some(name) = before.strip_suffix("/blobs") {
        return Some(Route::Blob(name, last));
    }
    if let Some(name) = before.strip_suffix("/referrers") {
        return Some(Route::Referrers(name, last));
    }
    None
}

impl Route<'_> {
    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Base | Route::Storage(_) => &[Method::GET, Method::HEAD],
            Route::Blob(..) => &[Method::GET, Method::HEAD, Method::DELETE],
            Route::Catalog | Route::Token | Route::Tags(_) | Route::Referrers(..) => &[Method::GET],
            Route::UploadStart(_) => &[Method::POST],
            Route::Upload(..) => &[Method::GET, Method::PATCH, Method::PUT, Method::DELETE],
            Route::Manifest(..) => &[Method::GET, Method::HEAD, Method::PUT, Method::DELETE],
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog | Route::Token | Route::Storage(_) => None,
            Route::Tags(n)
            | Route::UploadStart(n)
            | Route::Upload(n, _)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::Referrers(n, _) => Some(n),
        }
    }
}

fn action_for(route: &Route<'_>, method: &Method) -> Action {
    if matches!(route, Route::Upload(..) | Route::UploadStart(_)) {
        // Every use of an upload session is part of a push.
        Action::Push
    } else if method == Method::GET || method == Method::HEAD {
        Action::Pull
    } else if method == Method::DELETE && matches!(route, Route::Manifest(..) | Route::Blob(..)) {
        Action::Delete
    } else {
        Action::Push
    }
}

fn host(headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "127.0.0.1".to_owned())
}

async fn dispatch(State(st): State<St>, req: Request) -> Response {
    let method = req.method().clone();
    if let Some(d) = quirks::latency(&st.config.quirks) {
        tokio::time::sleep(d).await;
    }
    let throttled = quirks::rate_limited(&st.config.quirks);
    let answer = if throttled {
        discard_body(req.into_body()).await;
        Err(err(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            json!({"reason": "rate limit"}),
        )
        .header(header::RETRY_AFTER, "1"))
    } else {
        handle(&st, req).await
    };
    let mut resp = match answer {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(%method, status = resp.status().as_u16(), "request");
    resp.headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}

/// A request body that, dropped before its end (a handler answered without reading it all),
/// is drained in the background: the client is still writing it, and a connection closed under
/// it would cost the client the answer. Bounded by `DRAIN_MAX` bytes and `DRAIN_TIME`.
struct DrainOnDrop(Option<Body>);

const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

impl http_body::Body for DrainOnDrop {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        match self.0.as_mut() {
            Some(b) => std::pin::Pin::new(b).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0
            .as_ref()
            .map(http_body::Body::size_hint)
            .unwrap_or_else(|| http_body::SizeHint::with_exact(0))
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(b) = self.0.take() else { return };
        if http_body::Body::is_end_stream(&b) {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ =
                    tokio::time::timeout(DRAIN_TIME, drain_bounded(b.into_data_stream(), 0)).await;
            });
        }
    }
}

async fn handle(st: &St, req: Request) -> Res {
    let (parts, body) = req.into_parts();
    let body = Body::new(DrainOnDrop(Some(body)));
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let method = &parts.method;
    let Some(route) = parse_route(path) else {
        // Not an API path: 404 with an empty error list (no code applies).
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            errors: Vec::new(),
            headers: Vec::new(),
        });
    };
    let allowed = route.allowed();
    if !allowed.contains(method) {
        let allow = allowed
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Unsupported,
            json!({"method": method.as_str()}),
        )
        .header(header::ALLOW, &allow));
    }
    if route == Route::Token {
        return Ok(st.auth.token_endpoint(&parts.headers, query));
    }
    if let Some(name) = route.name() {
        if !spec::is_valid_name(name) {
            return Err(err(
                StatusCode::BAD_REQUEST,
                ErrorCode::NameInvalid,
                json!({"name": name}),
            ));
        }
    }
    if st.auth.enabled() && !matches!(route, Route::Storage(_)) {
        let scope = match (&route, route.name()) {
            (Route::Catalog, _) => Scope::Catalog,
            (_, Some(n)) => Scope::Repository(n, action_for(&route, method)),
            (_, None) => Scope::Base,
        };
        if let Err(ch) = st
            .auth
            .check(&parts.headers, &host(&parts.headers, &parts.uri), scope)
        {
            return Err(err(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                Value::Null,
            )
            .header(header::WWW_AUTHENTICATE, &ch.0));
        }
    }
    let head = method == Method::HEAD;
    match route {
        Route::Base => Ok(json_response(&json!({}), spec::JSON)),
        Route::Token => Ok(empty(StatusCode::NOT_FOUND)),
        Route::Catalog => catalog(st, query),
        Route::Tags(name) => tags_list(st, name, query),
        Route::Manifest(name, r) => match *method {
            Method::PUT => put_manifest(st, name, r, query, &parts.headers, body).await,
            Method::DELETE => delete_manifest(st, name, r).await,
            _ => get_manifest(st, name, r, head),
        },
        Route::Blob(name, d) => match *method {
            Method::DELETE => delete_blob(st, name, d),
            _ => get_blob(st, name, d, head, &parts.headers).await,
        },
        Route::Storage(d) => storage_blob(st, d, head, &parts.headers).await,
        Route::UploadStart(name) => {
            let host = host(&parts.headers, &parts.uri);
            start_upload(st, name, query, &parts.headers, body, &host).await
        }
        Route::Upload(name, id) => {
            upload_session(st, name, id, method, query, &parts.headers, body).await
        }
        Route::Referrers(name, d) => referrers(st, name, d, query),
    }
}

/// Query pairs, percent-decoded.
fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    url::form_urlencoded::parse(query.as_bytes())
}

fn query_get<'a>(query: &'a str, key: &str) -> Option<Cow<'a, str>> {
    query_pairs(query).find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Whether deletes are enabled (config, and quirk `no_delete`).
fn deletes(st: &St) -> bool {
    if st.config.quirks.no_delete {
        st.config.quirks.hit("no_delete");
    }
    st.config.delete_enabled && !st.config.quirks.no_delete
}

fn delete_disabled() -> ApiError {
    err(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Unsupported,
        json!("deletes are disabled"),
    )
}

/// end-4a / end-4b / end-4c / end-11.
/// A digest naming an algorithm the registry declines (quirk `no_sha512`).
fn declined(st: &St, digest: &Digest) -> Result<(), ApiError> {
    let algo = digest.as_str().split(':').next().unwrap_or("");
    if quirks::declines_algorithm(&st.config.quirks, algo) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            ErrorCode::DigestInvalid,
            json!({"reason": "unsupported digest algorithm", "algorithm": algo}),
        ));
    }
    Ok(())
}

/// Reads and discards a request body (bounded), so that the client can read the answer.
async fn discard_body(body: Body) {
    drain_bounded(body.into_data_stream(), 0).await;
}

/// How much of an oversized request body is read and discarded before answering: enough for the
/// client to finish sending and read the 413 on a healthy connection (answering without reading
/// makes the server close the connection while the client is still writing, and the client sees
/// a reset instead of the status). Beyond this the connection is closed.
const DRAIN_MAX: u64 = 64 << 20;

/// Reads and discards the rest of a request body, up to `DRAIN_MAX` bytes in all (`already`
/// counts what was read before).
async fn drain_bounded(mut stream: axum::body::BodyDataStream, already: u64) {
    let mut seen = already;
    while seen <= DRAIN_MAX {
        match stream.next().await {
            Some(Ok(chunk)) => seen += chunk.len() as u64,
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests;
