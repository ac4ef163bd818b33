//! The catalog: `GET /v2/_catalog` (not an endpoint id of the spec), paginated like the tag
//! list (`?n=&last=`, `Link`).

use super::tags::{page, pagination};
use super::{json_response, set, Res, St};
use crate::spec;
use axum::http::header;
use axum::response::Response;
use serde_json::json;

fn with_link(mut r: Response, path: &str, n: Option<usize>, page: &[&str], more: bool) -> Response {
    if let (true, Some(n), Some(last)) = (more, n, page.last()) {
        let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
        set(
            &mut r,
            header::LINK,
            &format!("<{path}?n={n}&last={last}>; rel=\"next\""),
        );
    }
    r
}

/// `GET /v2/_catalog`.
pub(super) fn catalog(st: &St, query: &str) -> Res {
    let (n, last) = pagination(query)?;
    let meta = st.store.read();
    let mut names: Vec<&str> = meta.repos.keys().map(String::as_str).collect();
    names.sort_unstable();
    let iter = names
        .iter()
        .copied()
        .filter(|r| last.as_deref().is_none_or(|l| *r > l));
    let (repos, more) = page(iter, n);
    let resp = json_response(&json!({"repositories": repos}), spec::JSON);
    Ok(with_link(resp, "/v2/_catalog", n, &repos, more))
}
