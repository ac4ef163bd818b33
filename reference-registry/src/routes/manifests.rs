//! Manifests: end-3 (`GET` / `HEAD /v2/<name>/manifests/<reference>`), end-7a / end-7b
//! (`PUT /v2/<name>/manifests/<reference>`, by tag or by digest, with `?tag=`) and end-9
//! (`DELETE /v2/<name>/manifests/<reference>`).

use super::{
    declined, delete_disabled, deletes, digest_invalid, discard_body, drain_bounded, empty, err,
    parse_digest, query_pairs, set, ApiError, Res, St, CONTENT_DIGEST, OCI_SUBJECT, OCI_TAG,
};
use crate::faults;
use crate::quirks::{self, Quirks};
use crate::spec::{self, Algorithm, Digest, ErrorCode, ErrorEntry};
use crate::store::{ManifestRec, Repo};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

enum Reference<'a> {
    Tag(&'a str),
    Digest(Digest),
}

/// A reference that is not a tag: `Ok(None)` (an invalid tag).
fn parse_reference(r: &str) -> Result<Option<Reference<'_>>, ApiError> {
    if r.contains(':') {
        return Ok(Some(Reference::Digest(parse_digest(r)?)));
    }
    Ok(spec::is_valid_tag(r).then_some(Reference::Tag(r)))
}

fn manifest_unknown(r: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        ErrorCode::ManifestUnknown,
        json!({"reference": r}),
    )
}

/// end-3.
pub(super) fn get_manifest(st: &St, name: &str, r: &str, head: bool) -> Res {
    let reference = parse_reference(r)?.ok_or_else(|| manifest_unknown(r))?;
    let rec: Arc<ManifestRec> = {
        let meta = st.store.read();
        let repo = meta.repos.get(name).ok_or_else(|| manifest_unknown(r))?;
        let d = match &reference {
            Reference::Tag(t) => repo.tags.get(*t).map(String::as_str),
            Reference::Digest(d) => Some(d.as_str()),
        };
        d.and_then(|d| repo.manifests.get(d))
            .cloned()
            .ok_or_else(|| manifest_unknown(r))?
    };
    let len = rec.bytes.len();
    let mut resp = Response::new(if head {
        Body::empty()
    } else {
        Body::from(rec.bytes.clone())
    });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, rec.media_type_hv.clone());
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if faults::manifest_sends_digest(&st.config.faults) {
        h.insert(CONTENT_DIGEST, rec.digest_hv.clone());
    }
    Ok(resp)
}

fn manifest_invalid(detail: impl Into<Value>) -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        ErrorCode::ManifestInvalid,
        detail.into(),
    )
}

/// A descriptor's digest, validated (`mediaType` string, `digest`, `size` >= 0).
fn descriptor_digest(v: &Value, field: &str) -> Result<Digest, ApiError> {
    let bad = |why: &str| manifest_invalid(json!({"field": field, "reason": why}));
    let o = v
        .as_object()
        .ok_or_else(|| bad("descriptor is not an object"))?;
    if !o.get("mediaType").is_some_and(Value::is_string) {
        return Err(bad("descriptor mediaType missing or not a string"));
    }
    if o.get("size").and_then(Value::as_u64).is_none() {
        return Err(bad("descriptor size missing or not a non-negative integer"));
    }
    let d = o
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("descriptor digest missing or not a string"))?;
    Digest::parse(d).map_err(|e| bad(&format!("descriptor digest {d}: {e}")))
}

fn descriptor_list(v: Option<&Value>, field: &str) -> Result<Vec<Digest>, ApiError> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|d| descriptor_digest(d, field)).collect(),
        Some(_) => Err(manifest_invalid(
            json!({"field": field, "reason": "not an array"}),
        )),
    }
}

/// Reads a body of at most `limit` bytes; `None` if larger.
async fn read_limited(body: Body, limit: usize) -> Result<Option<Bytes>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| manifest_invalid(json!("error reading request body")))?;
        if buf.len() + chunk.len() > limit {
            drain_bounded(stream, (buf.len() + chunk.len()) as u64).await;
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

/// end-7a / end-7b.
pub(super) async fn put_manifest(
    st: &St,
    name: &str,
    r: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Res {
    let q = &st.config.quirks;
    let reference = parse_reference(r)?
        .ok_or_else(|| manifest_invalid(json!({"reason": "invalid tag", "tag": r})))?;
    if let Reference::Digest(d) = &reference {
        declined(st, d)?;
        if faults::refuses_put_by_digest(&st.config.faults) {
            discard_body(body).await;
            return Err(manifest_invalid(json!({"reason": "push by tag"})));
        }
    }
    if q.require_content_type && !headers.contains_key(header::CONTENT_TYPE) {
        q.hit("require_content_type");
        discard_body(body).await;
        return Err(manifest_invalid(
            json!({"reason": "Content-Type is required"}),
        ));
    }
    let extra_tags = tag_params(st, &reference, query)?;
    let bytes = read_manifest_body(st, headers, body).await?;
    if quirks::sha512_manifest_invalid(
        q,
        matches!(&reference, Reference::Digest(d) if d.as_str().starts_with("sha512:")),
        &bytes,
    ) {
        return Err(manifest_invalid(
            json!({"reason": "Given digest does not match (sha512 is not supported)"}),
        ));
    }

    let json: Value = serde_json::from_slice(&bytes)
        .map_err(|e| manifest_invalid(json!({"reason": format!("not JSON: {e}")})))?;
    let parsed = parse_manifest(&json, headers)?;

    let digest = match &reference {
        Reference::Digest(d) => {
            let actual = d.algorithm().digest(&bytes);
            if &actual != d {
                return Err(digest_invalid(format!("provided {d}, computed {actual}")));
            }
            actual
        }
        Reference::Tag(_) => Algorithm::Sha256.digest(&bytes),
    };
    st.store
        .put_manifest_content(&digest, &bytes)
        .map_err(ApiError::internal)?;
    let rec = Arc::new(ManifestRec::from_parsed(
        bytes,
        &json,
        &parsed.media_type,
        &digest,
    ));
    let mut tags = extra_tags.clone();
    if let Reference::Tag(t) = reference {
        tags.push(t.to_owned());
    }
    let (stale_tags, stale_referrers) =
        race_snapshots(st, name, &tags, parsed.subject.as_ref()).await;
    let write = ManifestWrite {
        rec,
        tags,
        stale_tags,
        stale_referrers,
    };
    let outcome = st
        .store
        .update(name, true, |repo| {
            record_manifest(repo, q, &parsed, &digest, write)
        })
        .map_err(ApiError::internal)?;
    if let Some(Err(missing)) = outcome {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            errors: missing,
            headers: Vec::new(),
        });
    }
    Ok(manifest_created(
        st,
        name,
        &digest,
        parsed.subject,
        &extra_tags,
    ))
}

/// What a manifest PUT writes into its repository, besides the manifest's digest.
struct ManifestWrite {
    rec: Arc<ManifestRec>,
    /// The tags to point at the manifest: the reference's and the `?tag=` parameters.
    tags: Vec<String>,
    /// Fault `tag_update_lost`: the repository's tags read before the pause, written back.
    stale_tags: Option<BTreeMap<String, String>>,
    /// Fault `referrers_lost_update`: the subject's referrers read before the pause.
    stale_referrers: Option<HashSet<String>>,
}

/// Stores a manifest in `repo` (inside `Store::update`), unless it names blobs or manifests
/// the repository lacks and the registry rejects those: then the `MANIFEST_BLOB_UNKNOWN`
/// entries, and nothing changed.
fn record_manifest(
    repo: &mut Repo,
    q: &Quirks,
    parsed: &ParsedManifest,
    digest: &Digest,
    write: ManifestWrite,
) -> (Result<(), Vec<ErrorEntry>>, bool) {
    let mut missing: Vec<ErrorEntry> = parsed
        .blob_refs
        .iter()
        .filter(|d| !repo.blobs.contains(d.as_str()))
        .chain(
            parsed
                .manifest_refs
                .iter()
                .filter(|d| !repo.manifests.contains_key(d.as_str())),
        )
        .map(|d| ErrorEntry {
            code: ErrorCode::ManifestBlobUnknown,
            detail: json!({"digest": d.as_str()}),
        })
        .collect();
    if !missing.is_empty() && quirks::rejects_missing_refs(q) {
        missing.dedup_by(|a, b| a.detail == b.detail);
        return (Err(missing), false);
    }
    repo.manifests.insert(digest.as_str().to_owned(), write.rec);
    repo.hidden_referrers.remove(digest.as_str());
    if let (Some(seen), Some(s)) = (write.stale_referrers, parsed.subject.as_ref()) {
        let lost: Vec<String> = repo
            .manifests
            .iter()
            .filter(|(d, m)| {
                m.subject.as_deref() == Some(s.as_str())
                    && !seen.contains(*d)
                    && d.as_str() != digest.as_str()
            })
            .map(|(d, _)| d.clone())
            .collect();
        repo.hidden_referrers.extend(lost);
    }
    if let Some(snap) = write.stale_tags {
        repo.tags = snap;
    }
    for t in write.tags {
        repo.tags.insert(t, digest.as_str().to_owned());
    }
    (Ok(()), true)
}

/// The `?tag=` parameters of a manifest PUT by digest (end-7b), validated, without
/// duplicates, in order (none under the quirk `no_tag_param`).
fn tag_params(st: &St, reference: &Reference<'_>, query: &str) -> Result<Vec<String>, ApiError> {
    let q = &st.config.quirks;
    let mut extra_tags: Vec<String> = Vec::new();
    if matches!(reference, Reference::Digest(_))
        && q.no_tag_param
        && query_pairs(query).any(|(k, _)| k == "tag")
    {
        q.hit("no_tag_param");
    }
    if let (Reference::Digest(_), false) = (reference, q.no_tag_param) {
        for (k, v) in query_pairs(query) {
            if k == "tag" {
                if !spec::is_valid_tag(&v) {
                    return Err(manifest_invalid(
                        json!({"reason": "invalid tag", "tag": v.as_ref()}),
                    ));
                }
                if !extra_tags.iter().any(|t| *t == v) {
                    extra_tags.push(v.into_owned());
                }
            }
        }
    }
    Ok(extra_tags)
}

/// A manifest PUT's body, at most `max_manifest_bytes` (413 `MANIFEST_INVALID` beyond, the
/// body drained first).
async fn read_manifest_body(st: &St, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = st.config.max_manifest_bytes;
    let too_big = || {
        err(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ManifestInvalid,
            json!({"reason": "manifest too large", "limit": limit}),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|l| l > limit as u64) {
        drain_bounded(body.into_data_stream(), 0).await;
        return Err(too_big());
    }
    read_limited(body, limit).await?.ok_or_else(too_big)
}

/// What a manifest PUT keeps of a valid manifest: its media type and the digests it names.
struct ParsedManifest {
    media_type: String,
    /// `config` and `layers`: blobs of the repository.
    blob_refs: Vec<Digest>,
    /// `manifests` (of an index): manifests of the repository.
    manifest_refs: Vec<Digest>,
    subject: Option<Digest>,
}

/// Validates a manifest's JSON: an object, `schemaVersion` 2, a media type (see
/// [`manifest_media_type`]), the fields its type requires, well-formed descriptors.
fn parse_manifest(json: &Value, headers: &HeaderMap) -> Result<ParsedManifest, ApiError> {
    let Some(obj) = json.as_object() else {
        return Err(manifest_invalid(json!({"reason": "not a JSON object"})));
    };
    if obj.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(manifest_invalid(
            json!({"reason": "schemaVersion must be 2"}),
        ));
    }
    let media_type = manifest_media_type(obj, headers)?;
    if spec::is_image_manifest_type(&media_type) {
        if !obj.contains_key("config") {
            return Err(manifest_invalid(json!({"reason": "config missing"})));
        }
        if !obj.get("layers").is_some_and(Value::is_array) {
            return Err(manifest_invalid(json!({"reason": "layers missing"})));
        }
    }
    if spec::is_index_type(&media_type) && !obj.get("manifests").is_some_and(Value::is_array) {
        return Err(manifest_invalid(json!({"reason": "manifests missing"})));
    }
    let mut blob_refs = Vec::new();
    if let Some(c) = obj.get("config") {
        blob_refs.push(descriptor_digest(c, "config")?);
    }
    blob_refs.extend(descriptor_list(obj.get("layers"), "layers")?);
    let manifest_refs = descriptor_list(obj.get("manifests"), "manifests")?;
    let subject = match obj.get("subject") {
        Some(s) => Some(descriptor_digest(s, "subject")?),
        None => None,
    };
    Ok(ParsedManifest {
        media_type,
        blob_refs,
        manifest_refs,
        subject,
    })
}

/// A manifest's media type: the `Content-Type` (which a `mediaType` field must match), else
/// the `mediaType` field, else inferred from the fields (`manifests`: an index; `config` and
/// `layers`: an image manifest).
fn manifest_media_type(
    obj: &serde_json::Map<String, Value>,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    let field_mt = match obj.get("mediaType") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(manifest_invalid(
                json!({"reason": "mediaType is not a string"}),
            ))
        }
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(spec::media_type_essence)
        .filter(|s| !s.is_empty());
    let media_type: String = match (ct, field_mt) {
        (Some(ct), Some(f)) if ct != f => {
            return Err(manifest_invalid(json!({
                "reason": "mediaType does not match Content-Type",
                "mediaType": f, "contentType": ct,
            })))
        }
        (Some(ct), _) => ct.to_owned(),
        (None, Some(f)) => {
            if HeaderValue::from_str(f).is_err() {
                return Err(manifest_invalid(
                    json!({"reason": "mediaType is not a valid Content-Type value"}),
                ));
            }
            f.to_owned()
        }
        (None, None) => {
            if obj.contains_key("manifests") {
                spec::OCI_INDEX.to_owned()
            } else if obj.contains_key("config") && obj.contains_key("layers") {
                spec::OCI_MANIFEST.to_owned()
            } else {
                return Err(manifest_invalid(
                    json!({"reason": "no Content-Type or mediaType, and the type cannot be inferred"}),
                ));
            }
        }
    };
    Ok(media_type)
}

/// Race faults: a snapshot taken, a pause, the snapshot written back. `tag_update_lost`: the
/// repository's tags before the pause (when the PUT sets tags); `referrers_lost_update`: the
/// referrers of `subject` before the pause.
async fn race_snapshots(
    st: &St,
    name: &str,
    tags: &[String],
    subject: Option<&Digest>,
) -> (Option<BTreeMap<String, String>>, Option<HashSet<String>>) {
    let faults = &st.config.faults;
    let stale_tags = if faults.tag_update_lost && !tags.is_empty() {
        let snap = st.store.read().repos.get(name).map(|r| r.tags.clone());
        faults::race_pause().await;
        snap
    } else {
        None
    };
    let stale_referrers: Option<HashSet<String>> = match (subject, faults.referrers_lost_update) {
        (Some(s), true) => {
            let snap = st.store.read().repos.get(name).map(|r| {
                r.manifests
                    .iter()
                    .filter(|(_, m)| m.subject.as_deref() == Some(s.as_str()))
                    .map(|(d, _)| d.clone())
                    .collect()
            });
            faults::race_pause().await;
            Some(snap.unwrap_or_default())
        }
        _ => None,
    };
    (stale_tags, stale_referrers)
}

/// The 201 of a manifest PUT: `Location`, `Docker-Content-Digest`, `OCI-Subject` (unless the
/// quirk `no_referrers`), `OCI-Tag` (the `?tag=` parameters).
fn manifest_created(
    st: &St,
    name: &str,
    digest: &Digest,
    subject: Option<Digest>,
    extra_tags: &[String],
) -> Response {
    let q = &st.config.quirks;
    let mut resp = empty(StatusCode::CREATED);
    set(
        &mut resp,
        header::LOCATION,
        &format!("/v2/{name}/manifests/{}", digest.as_str()),
    );
    set(&mut resp, CONTENT_DIGEST, digest.as_str());
    if subject.is_some() && q.no_referrers {
        q.hit("no_referrers");
    }
    if let (Some(s), false) = (subject, q.no_referrers) {
        set(&mut resp, OCI_SUBJECT, s.as_str());
    }
    if !extra_tags.is_empty() {
        set(&mut resp, OCI_TAG, &extra_tags.join(", "));
    }
    resp
}

/// end-9.
pub(super) async fn delete_manifest(st: &St, name: &str, r: &str) -> Res {
    if !deletes(st) {
        return Err(delete_disabled());
    }
    let reference = parse_reference(r)?.ok_or_else(|| manifest_unknown(r))?;
    let effective = faults::manifest_delete_effective(&st.config.faults);
    let keep_tags = st.config.quirks.dangling_tags;
    if keep_tags && matches!(reference, Reference::Digest(_)) {
        st.config.quirks.hit("dangling_tags");
    }
    // Fault `delete_stale_tags`: the tags pointing to the manifest when the delete began.
    let stale: Option<Vec<String>> = match (&reference, st.config.faults.delete_stale_tags) {
        (Reference::Digest(d), true) => {
            let tags = st.store.read().repos.get(name).map(|repo| {
                repo.tags
                    .iter()
                    .filter(|(_, v)| v.as_str() == d.as_str())
                    .map(|(t, _)| t.clone())
                    .collect()
            });
            faults::race_pause().await;
            tags
        }
        _ => None,
    };
    let found = st
        .store
        .update(name, false, |repo| {
            let found = match &reference {
                Reference::Tag(t) => repo.tags.contains_key(*t),
                Reference::Digest(d) => repo.manifests.contains_key(d.as_str()),
            };
            if !found || !effective {
                return (found, false);
            }
            match &reference {
                Reference::Tag(t) => {
                    let pointed = repo.tags.remove(*t);
                    // Fault `tag_delete_removes_manifest`: the manifest goes with its tag.
                    if let Some(d) =
                        pointed.filter(|_| st.config.faults.tag_delete_removes_manifest)
                    {
                        repo.manifests.remove(d.as_str());
                        repo.tags.retain(|_, v| v.as_str() != d.as_str());
                    }
                }
                Reference::Digest(d) => {
                    repo.manifests.remove(d.as_str());
                    match stale {
                        Some(tags) if !keep_tags => {
                            for t in tags {
                                repo.tags.remove(&t);
                            }
                        }
                        _ if !keep_tags => repo.tags.retain(|_, v| v != d.as_str()),
                        _ => {}
                    }
                }
            }
            (true, true)
        })
        .map_err(ApiError::internal)?;
    if found != Some(true) {
        return Err(manifest_unknown(r));
    }
    Ok(empty(StatusCode::ACCEPTED))
}
