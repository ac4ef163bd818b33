//! Referrers: end-12a / end-12b (`GET /v2/<name>/referrers/<digest>`, with
//! `?artifactType=` filtering), the manifests whose `subject` is the digest, as an image index.

use super::{json_response, parse_digest, query_get, set, ApiError, Res, St, OCI_FILTERS};
use crate::faults;
use crate::spec;
use crate::store::ManifestRec;
use axum::http::{header, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

/// end-12a / end-12b.
pub(super) fn referrers(st: &St, name: &str, d: &str, query: &str) -> Res {
    if st.config.quirks.no_referrers {
        st.config.quirks.hit("no_referrers");
        // No such API: the answer of an unknown path.
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            errors: Vec::new(),
            headers: Vec::new(),
        });
    }
    let digest = parse_digest(d)?;
    let filter = query_get(query, "artifactType").filter(|a| !a.is_empty());
    let with_at = faults::referrers_artifact_type(&st.config.faults);
    let mut found: Vec<(&String, &Arc<ManifestRec>)> = Vec::new();
    let meta = st.store.read();
    if let Some(repo) = meta.repos.get(name) {
        found = repo
            .manifests
            .iter()
            .filter(|(_, m)| m.subject.as_deref() == Some(digest.as_str()))
            .filter(|(d, _)| !repo.hidden_referrers.contains(*d))
            .filter(|(_, m)| {
                filter
                    .as_deref()
                    .is_none_or(|f| m.artifact_type.as_deref() == Some(f))
            })
            .collect();
    }
    found.sort_unstable_by(|a, b| a.0.cmp(b.0));
    // Quirk `referrers_paged`: pages of two, in digest order, `after` = the last one sent.
    let mut next = None;
    if st.config.quirks.referrers_paged {
        if let Some(after) = query_get(query, "after") {
            found.retain(|(d, _)| d.as_str() > &*after);
        }
        if found.len() > REFERRERS_PAGE {
            st.config.quirks.hit("referrers_paged");
            found.truncate(REFERRERS_PAGE);
            let after: String =
                url::form_urlencoded::byte_serialize(found[REFERRERS_PAGE - 1].0.as_bytes())
                    .collect();
            let filter_q = filter
                .as_deref()
                .map(|f| {
                    let f: String = url::form_urlencoded::byte_serialize(f.as_bytes()).collect();
                    format!("artifactType={f}&")
                })
                .unwrap_or_default();
            next = Some(format!(
                "</v2/{name}/referrers/{}?{filter_q}after={after}>; rel=\"next\"",
                digest.as_str()
            ));
        }
    }
    let manifests: Vec<Value> = found
        .iter()
        .map(|(d, m)| {
            let mut desc = serde_json::Map::new();
            desc.insert("mediaType".into(), json!(m.media_type));
            desc.insert("digest".into(), json!(d));
            desc.insert("size".into(), json!(m.bytes.len()));
            if let (true, Some(at)) = (with_at, &m.artifact_type) {
                desc.insert("artifactType".into(), json!(at));
            }
            if let Some(a) = &m.annotations {
                desc.insert("annotations".into(), a.clone());
            }
            Value::Object(desc)
        })
        .collect();
    drop(meta);
    let mut resp = json_response(
        &json!({
            "schemaVersion": 2,
            "mediaType": spec::OCI_INDEX,
            "manifests": manifests,
        }),
        spec::OCI_INDEX,
    );
    if filter.is_some() {
        set(&mut resp, OCI_FILTERS, "artifactType");
    }
    if let Some(link) = next {
        set(&mut resp, header::LINK, &link);
    }
    Ok(resp)
}

/// Descriptors per referrers page under the quirk `referrers_paged` (one: every listing of
/// several referrers is paged).
const REFERRERS_PAGE: usize = 1;
