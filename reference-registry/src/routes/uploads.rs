//! Upload sessions: end-4a / end-4b / end-4c (`POST /v2/<name>/blobs/uploads/`: a session,
//! a monolithic upload with `?digest=`, a session for `?digest-algorithm=`), end-11 (the same
//! `POST` with `?mount=&from=`), end-5 (`PATCH`, a chunk), end-6 (`PUT ?digest=`, closing),
//! end-13 (`GET`, the session's status) and end-14 (`DELETE`, cancelling) of
//! `/v2/<name>/blobs/uploads/<id>`.

use super::{
    declined, digest_invalid, discard_body, empty, err, parse_digest, query_get, set, ApiError,
    Res, St, CONTENT_DIGEST, OCI_CHUNK_MIN, RANGE, UPLOAD_UUID,
};
use crate::auth::Action;
use crate::faults;
use crate::quirks;
use crate::spec::{self, Algorithm, Digest, ErrorCode};
use crate::store::{AppendError, Upload};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::json;

fn upload_unknown(id: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        ErrorCode::BlobUploadUnknown,
        json!({"uuid": id}),
    )
}

/// An upload session's `Location`: relative, or (quirk `absolute_location`) absolute with
/// opaque state.
fn upload_location(up: &Upload) -> String {
    session_location(up.public_base.as_deref(), &up.repo, &up.id)
}

fn session_location(base: Option<&str>, name: &str, id: &str) -> String {
    match base {
        Some(b) => format!(
            "{b}/v2/{name}/blobs/uploads/{id}?_state={}",
            quirks::upload_state(id)
        ),
        None => format!("/v2/{name}/blobs/uploads/{id}"),
    }
}

/// `0-<last byte>`; an empty upload reports `0-0` (as distribution does).
fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn upload_status(up: &Upload, status: StatusCode) -> Response {
    let mut r = empty(status);
    set(&mut r, header::LOCATION, &upload_location(up));
    set(&mut r, RANGE, &upload_range(up.size()));
    set(&mut r, UPLOAD_UUID, &up.id);
    r
}

fn blob_created(name: &str, digest: &Digest, status: StatusCode) -> Response {
    let mut r = empty(status);
    set(
        &mut r,
        header::LOCATION,
        &format!("/v2/{name}/blobs/{}", digest.as_str()),
    );
    set(&mut r, CONTENT_DIGEST, digest.as_str());
    r
}

async fn new_session(st: &St, name: &str, alg: Algorithm, host: &str) -> Res {
    if quirks::session_cap_reached(&st.config.quirks, st.store.open_uploads()) {
        return Err(err(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            json!({"reason": "too many open upload sessions"}),
        )
        .header(header::RETRY_AFTER, "1"));
    }
    let id = st
        .store
        .start_upload(name, alg)
        .map_err(ApiError::internal)?;
    let base = st
        .config
        .quirks
        .absolute_location
        .then(|| format!("http://{host}"));
    if let (Some(b), Some(handle)) = (&base, st.store.upload(&id)) {
        handle.lock().await.public_base = Some(b.clone());
    }
    let mut r = empty(StatusCode::ACCEPTED);
    set(
        &mut r,
        header::LOCATION,
        &session_location(base.as_deref(), name, &id),
    );
    if let Some(min) = st.config.quirks.chunk_min {
        st.config.quirks.hit("chunk_min");
        set(&mut r, OCI_CHUNK_MIN, &min.to_string());
    }
    set(&mut r, RANGE, "0-0");
    set(&mut r, UPLOAD_UUID, &id);
    Ok(r)
}

/// end-4a / end-4b / end-4c / end-11.
pub(super) async fn start_upload(
    st: &St,
    name: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
    host: &str,
) -> Res {
    let q = &st.config.quirks;
    if let Some(mount) = query_get(query, "mount") {
        let digest = parse_digest(&mount)?;
        declined(st, &digest)?;
        let from = query_get(query, "from");
        if q.mount_202 {
            q.hit("mount_202");
        }
        let mountable = !q.mount_202 && {
            let meta = st.store.read();
            let has = |repo: &str| {
                meta.repos
                    .get(repo)
                    .is_some_and(|r| r.blobs.contains(digest.as_str()))
            };
            match &from {
                Some(from) => {
                    spec::is_valid_name(from)
                        && has(from)
                        && (!st.auth.enabled() || st.auth.allows(headers, from, Action::Pull))
                }
                None => meta
                    .repos
                    .values()
                    .any(|r| r.blobs.contains(digest.as_str())),
            }
        };
        if mountable {
            st.store
                .link_blob(name, &digest)
                .map_err(ApiError::internal)?;
            return Ok(blob_created(name, &digest, StatusCode::CREATED));
        }
        return new_session(st, name, Algorithm::Sha256, host).await;
    }
    if let Some(d) = query_get(query, "digest") {
        let digest = parse_digest(&d)?;
        declined(st, &digest)?;
        if q.single_post_202 {
            q.hit("single_post_202");
            discard_body(body).await;
            return new_session(st, name, digest.algorithm(), host).await;
        }
        let mut up = st
            .store
            .temp_upload(name, digest.algorithm())
            .map_err(ApiError::internal)?;
        append(&mut up, body, None).await?;
        verify_and_commit(st, &mut up, &digest).await?;
        return Ok(blob_created(name, &digest, StatusCode::CREATED));
    }
    let alg = match query_get(query, "digest-algorithm") {
        Some(a) if quirks::declines_algorithm(q, &a) => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                ErrorCode::Unsupported,
                json!({"reason": "unsupported digest algorithm", "algorithm": a.as_ref()}),
            ))
        }
        Some(a) if !a.is_empty() => Algorithm::parse(&a)
            .ok_or_else(|| digest_invalid(format!("unsupported digest algorithm {a}")))?,
        _ => Algorithm::Sha256,
    };
    new_session(st, name, alg, host).await
}

async fn append(up: &mut Upload, body: Body, expected: Option<u64>) -> Result<u64, ApiError> {
    up.append(body, expected).await.map_err(|e| match e {
        AppendError::Body => err(
            StatusCode::BAD_REQUEST,
            ErrorCode::BlobUploadInvalid,
            json!("error reading request body"),
        ),
        AppendError::Length { expected, got } => err(
            StatusCode::BAD_REQUEST,
            ErrorCode::SizeInvalid,
            json!({"expected": expected, "received": got}),
        ),
        AppendError::Io(e) => ApiError::internal(e),
    })
}

/// Verifies the content against `digest` (with its algorithm) and commits it.
/// On mismatch nothing is committed (the caller decides about the upload).
async fn verify_and_commit(st: &St, up: &mut Upload, digest: &Digest) -> Result<(), ApiError> {
    let actual = up.digest(digest.algorithm()).map_err(ApiError::internal)?;
    if &actual != digest {
        return Err(digest_invalid(format!(
            "provided {digest}, computed {actual}"
        )));
    }
    if st.config.faults.blob_commit_early {
        return st
            .store
            .commit_upload_early(up, digest)
            .await
            .map_err(ApiError::internal);
    }
    st.store
        .commit_upload(up, digest)
        .map_err(ApiError::internal)
}

/// Checks an optional chunk `Content-Range` against the upload; returns the
/// expected chunk length.
fn check_content_range(up: &Upload, headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    check_content_range_at(up, headers, true)
}

/// `check_content_range`, with the check that the range starts at the session's offset
/// optional (fault `final_chunk_order_ignored`).
fn check_content_range_at(
    up: &Upload,
    headers: &HeaderMap,
    check_offset: bool,
) -> Result<Option<u64>, ApiError> {
    let Some(cr) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let Some((a, b)) = cr.to_str().ok().and_then(spec::parse_content_range) else {
        return Err(err(
            StatusCode::BAD_REQUEST,
            ErrorCode::BlobUploadInvalid,
            json!("malformed Content-Range"),
        ));
    };
    if (check_offset && a != up.size()) || a > b {
        return Err(err(
            StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::BlobUploadInvalid,
            json!({"offset": up.size(), "range": format!("{a}-{b}")}),
        )
        .header(header::LOCATION, &upload_location(up))
        .header(RANGE, &upload_range(up.size()))
        .header(UPLOAD_UUID, &up.id));
    }
    let expected = (b - a).saturating_add(1);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(cl) = declared {
        if cl != expected {
            return Err(err(
                StatusCode::BAD_REQUEST,
                ErrorCode::SizeInvalid,
                json!({"content_range_length": expected, "content_length": cl}),
            ));
        }
    }
    Ok(Some(expected))
}

/// end-5.
async fn patch_upload(st: &St, up: &mut Upload, headers: &HeaderMap, body: Body) -> Res {
    if st.config.quirks.no_streamed_patch && !headers.contains_key(header::CONTENT_RANGE) {
        st.config.quirks.hit("no_streamed_patch");
        discard_body(body).await;
        return Err(err(
            StatusCode::BAD_REQUEST,
            ErrorCode::BlobUploadInvalid,
            json!("Content-Range is required"),
        ));
    }
    let expected = check_content_range(up, headers)?;
    let len = append(up, body, expected).await?;
    track_chunk(st, up, len);
    Ok(upload_status(up, StatusCode::ACCEPTED))
}

/// Quirk `chunk_min`: a chunk below the minimum that is followed by more data breaks it.
fn track_chunk(st: &St, up: &mut Upload, len: u64) {
    if let Some(min) = st.config.quirks.chunk_min {
        if up.last_chunk_small && len > 0 {
            up.min_violated = true;
        }
        if len > 0 {
            up.last_chunk_small = len < min;
        }
    }
}

/// end-6.
async fn put_upload(st: &St, up: &mut Upload, query: &str, headers: &HeaderMap, body: Body) -> Res {
    let Some(d) = query_get(query, "digest") else {
        return Err(digest_invalid("missing digest query parameter"));
    };
    let digest = parse_digest(&d)?;
    declined(st, &digest)?;
    let expected = check_content_range_at(
        up,
        headers,
        faults::checks_final_chunk_order(&st.config.faults),
    )?;
    let before = up.checkpoint();
    let len = append(up, body, expected).await?;
    let (small, violated) = (up.last_chunk_small, up.min_violated);
    track_chunk(st, up, len);
    if up.min_violated {
        up.restore(before);
        (up.last_chunk_small, up.min_violated) = (small, violated);
        return Err(err(
            StatusCode::BAD_REQUEST,
            ErrorCode::BlobUploadInvalid,
            json!({"reason": "a chunk other than the last is below OCI-Chunk-Min-Length"}),
        ));
    }
    if let Err(e) = verify_and_commit(st, up, &digest).await {
        // A failed completion changes nothing: the final chunk is rolled
        // back and the session stays open.
        up.restore(before);
        return Err(e);
    }
    Ok(blob_created(
        &up.repo,
        &digest,
        faults::blob_put_status(&st.config.faults),
    ))
}

/// end-5 / end-6 / end-13 / end-14: a request to the upload session `id` of `name`.
pub(super) async fn upload_session(
    st: &St,
    name: &str,
    id: &str,
    method: &Method,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Res {
    let handle = st.store.upload(id).ok_or_else(|| upload_unknown(id))?;
    let mut up = handle.lock().await;
    if up.closed || up.repo != name {
        return Err(upload_unknown(id));
    }
    if st.config.quirks.absolute_location {
        st.config.quirks.hit("absolute_location");
    }
    if st.config.quirks.absolute_location
        && query_get(query, "_state").as_deref() != Some(quirks::upload_state(id).as_str())
    {
        // Opaque state the client must send back, as the Location carried it.
        return Err(err(
            StatusCode::BAD_REQUEST,
            ErrorCode::BlobUploadInvalid,
            json!("missing or stale _state"),
        ));
    }
    match *method {
        Method::GET => Ok(upload_status(&up, StatusCode::NO_CONTENT)),
        Method::PATCH => patch_upload(st, &mut up, headers, body).await,
        Method::PUT => put_upload(st, &mut up, query, headers, body).await,
        _ => {
            st.store.cancel_upload(&mut up);
            Ok(empty(StatusCode::NO_CONTENT))
        }
    }
}
