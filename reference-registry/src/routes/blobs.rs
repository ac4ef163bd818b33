//! Blobs: end-2 (`GET` / `HEAD /v2/<name>/blobs/<digest>`, with `Range`) and end-10
//! (`DELETE /v2/<name>/blobs/<digest>`), plus `/_storage/blobs/<digest>`, where the
//! `redirect_blobs` quirk sends blob pulls.

use super::{
    delete_disabled, deletes, empty, err, parse_digest, set, ApiError, Res, St, CONTENT_DIGEST,
};
use crate::faults;
use crate::spec::{self, Digest, ErrorCode};
use crate::store::BlobContent;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use serde_json::json;

fn blob_unknown(d: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        ErrorCode::BlobUnknown,
        json!({"digest": d}),
    )
}

pub(super) async fn get_blob(st: &St, name: &str, d: &str, head: bool, headers: &HeaderMap) -> Res {
    let digest = parse_digest(d)?;
    let linked = st
        .store
        .read()
        .repos
        .get(name)
        .is_some_and(|r| r.blobs.contains(digest.as_str()));
    let visible = faults::blob_visible(&st.config.faults, linked);
    let content = visible
        .then(|| st.store.blob(digest.as_str()))
        .flatten()
        .ok_or_else(|| blob_unknown(d))?;
    if st.config.quirks.redirect_blobs {
        st.config.quirks.hit("redirect_blobs");
        // The registry's own answer carries the digest; the storage's does not.
        let mut r = empty(StatusCode::TEMPORARY_REDIRECT);
        set(
            &mut r,
            header::LOCATION,
            &format!("/_storage/blobs/{}?expires=3600", digest.as_str()),
        );
        set(&mut r, CONTENT_DIGEST, digest.as_str());
        return Ok(r);
    }
    serve_blob(st, &digest, content, head, headers, true).await
}

/// The storage behind `redirect_blobs`: the bytes, without `Docker-Content-Digest`.
pub(super) async fn storage_blob(st: &St, d: &str, head: bool, headers: &HeaderMap) -> Res {
    let digest = parse_digest(d)?;
    let content = st
        .store
        .blob(digest.as_str())
        .ok_or_else(|| blob_unknown(d))?;
    serve_blob(st, &digest, content, head, headers, false).await
}

/// A blob's bytes (or the `Range` asked for), with `Docker-Content-Digest` when `with_digest`.
async fn serve_blob(
    st: &St,
    digest: &Digest,
    content: BlobContent,
    head: bool,
    headers: &HeaderMap,
    with_digest: bool,
) -> Res {
    let total = content.len();
    let mut range = None;
    if !head && faults::honours_range(&st.config.faults) {
        if let Some(spec_) = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(spec::parse_range)
        {
            match spec_.resolve(total) {
                spec::RangeOutcome::Partial(a, b) => range = Some((a, b)),
                spec::RangeOutcome::Unsatisfiable => {
                    let mut r = empty(StatusCode::RANGE_NOT_SATISFIABLE);
                    set(&mut r, header::CONTENT_RANGE, &format!("bytes */{total}"));
                    if with_digest {
                        set(&mut r, CONTENT_DIGEST, digest.as_str());
                    }
                    return Ok(r);
                }
            }
        }
    }
    let (start, len, status) = match range {
        Some((a, b)) => (a, b - a + 1, StatusCode::PARTIAL_CONTENT),
        None => (0, total, StatusCode::OK),
    };
    let corrupt = faults::corrupts_blobs(&st.config.faults);
    let body = if head {
        Body::empty()
    } else {
        match content {
            BlobContent::Bytes(b) => {
                let slice = b.slice(start as usize..(start + len) as usize);
                Body::from(if corrupt {
                    faults::corrupt(slice)
                } else {
                    slice
                })
            }
            BlobContent::File { path, .. } => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let mut f = tokio::fs::File::open(&path)
                    .await
                    .map_err(ApiError::internal)?;
                if start > 0 {
                    f.seek(std::io::SeekFrom::Start(start))
                        .await
                        .map_err(ApiError::internal)?;
                }
                let stream = tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 * 1024);
                if corrupt {
                    let mut first = true;
                    Body::from_stream(stream.map(move |c| {
                        c.map(|c| {
                            if std::mem::take(&mut first) {
                                faults::corrupt(c)
                            } else {
                                c
                            }
                        })
                    }))
                } else {
                    Body::from_stream(stream)
                }
            }
        }
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(spec::OCTET_STREAM),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let (true, Ok(v)) = (with_digest, HeaderValue::from_str(digest.as_str())) {
        h.insert(CONTENT_DIGEST, v);
    }
    if range.is_some() {
        set(
            &mut r,
            header::CONTENT_RANGE,
            &format!("bytes {}-{}/{}", start, start + len - 1, total),
        );
    }
    Ok(r)
}

pub(super) fn delete_blob(st: &St, name: &str, d: &str) -> Res {
    if !deletes(st) {
        return Err(delete_disabled());
    }
    let digest = parse_digest(d)?;
    let outcome = st
        .store
        .update(name, false, |r| {
            if crate::quirks::keeps_referenced_blob(
                &st.config.quirks,
                digest.as_str(),
                r.manifests.values().map(|m| m.bytes.as_ref()),
            ) {
                return (None, false);
            }
            let removed = r.blobs.remove(digest.as_str());
            (Some(removed), removed)
        })
        .map_err(ApiError::internal)?;
    match outcome {
        Some(None) => {
            return Err(err(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::Denied,
                json!({"digest": d, "reason": "a manifest of the repository references this blob"}),
            ))
        }
        Some(Some(true)) => {}
        _ => {
            return Err(err(
                StatusCode::NOT_FOUND,
                ErrorCode::BlobUnknown,
                json!({"digest": d}),
            ))
        }
    }
    Ok(empty(StatusCode::ACCEPTED))
}
