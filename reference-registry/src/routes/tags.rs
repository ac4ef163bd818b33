//! Tags: end-8a / end-8b (`GET /v2/<name>/tags/list`, with `?n=&last=` pagination), and the
//! pagination (`n`, `last`, pages) the catalog shares.

use super::{err, json_response, query_get, query_pairs, set, ApiError, Res, St};
use crate::faults;
use crate::quirks;
use crate::spec::{self, ErrorCode};
use axum::http::{header, StatusCode};
use serde_json::json;

/// `n` and `last` of a paginated list.
pub(super) fn pagination(query: &str) -> Result<(Option<usize>, Option<String>), ApiError> {
    let mut n = None;
    let mut last = None;
    for (k, v) in query_pairs(query) {
        if k == "n" && n.is_none() {
            n = Some(spec::parse_count(&v).ok_or_else(|| {
                err(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::Unsupported,
                    json!({"reason": "n must be a non-negative integer", "n": v.as_ref()}),
                )
            })?);
        } else if k == "last" && last.is_none() && !v.is_empty() {
            last = Some(v.into_owned());
        }
    }
    Ok((n, last))
}

/// One page of a sorted list; whether more entries follow it.
pub(super) fn page<'a, I: Iterator<Item = &'a str>>(
    iter: I,
    n: Option<usize>,
) -> (Vec<&'a str>, bool) {
    let mut iter = iter.peekable();
    let out: Vec<&str> = match n {
        Some(n) => iter.by_ref().take(n).collect(),
        None => iter.by_ref().collect(),
    };
    let more = n.is_some_and(|n| n > 0) && iter.peek().is_some();
    (out, more)
}

/// end-8a / end-8b.
pub(super) fn tags_list(st: &St, name: &str, query: &str) -> Res {
    let q = &st.config.quirks;
    let (n, mut last) = pagination(query)?;
    if let Some(token) = query_get(query, "next_page") {
        last = Some(quirks::tag_of_token(&token).ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                ErrorCode::Unsupported,
                json!({"reason": "bad next_page token"}),
            )
        })?);
    }
    let n = faults::tags_n(&st.config.faults, n);
    let meta = st.store.read();
    let repo = meta.repos.get(name).ok_or_else(|| {
        err(
            StatusCode::NOT_FOUND,
            ErrorCode::NameUnknown,
            json!({"name": name}),
        )
    })?;
    let mut keys: Vec<&str> = repo.tags.keys().map(String::as_str).collect();
    keys.sort_by_key(|t| quirks::tag_key(q, t));
    let after = |t: &&str| match &last {
        Some(l) => quirks::tag_key(q, t) > quirks::tag_key(q, l),
        None => true,
    };
    let (mut tags, more) = page(keys.into_iter().filter(after), n);
    faults::order_tag_page(&st.config.faults, &mut tags);
    let mut resp = json_response(&json!({"name": name, "tags": tags}), spec::JSON);
    if let (true, Some(n), Some(last)) = (more, n, tags.last()) {
        if let Some(link) = quirks::tags_link(q, &format!("/v2/{name}/tags/list"), n, last) {
            set(
                &mut resp,
                header::LINK,
                &faults::tags_link(&st.config.faults, link),
            );
        }
    }
    Ok(resp)
}
