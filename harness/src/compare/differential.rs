//! The differential oracle: each target against the reference, exchange by exchange (aligned
//! by label): status, normalized headers, body facts. Anything the model accepted on both sides
//! but that still differs is a variation.

use crate::ops::expect::Found;
use crate::vocab::exchange::{BodyFacts, Exchange};
use std::collections::BTreeSet;

fn strip_sha(s: &str) -> &str {
    s.strip_prefix("sha256:").unwrap_or(s)
}

/// Headers never compared between targets (they differ by nature).
const IGNORED_HEADERS: [&str; 8] = [
    "date",
    "server",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "vary",
    "www-authenticate",
    "x-content-type-options",
];

/// Target vs reference, exchange by exchange (aligned by label). Returns (label, finding).
/// With `tolerate_transport`, exchanges where either side got no response are not compared.
pub fn differential(
    reference: &[Exchange],
    target: &[Exchange],
    tolerate_transport: bool,
) -> Vec<(String, Found)> {
    let mut out = Vec::new();
    let mut labels: Vec<&str> = reference.iter().map(|e| e.label.as_str()).collect();
    for e in target {
        if !labels.contains(&e.label.as_str()) {
            labels.push(e.label.as_str());
        }
    }
    for label in labels {
        let r = reference.iter().find(|e| e.label == label);
        let t = target.iter().find(|e| e.label == label);
        // An exchange on one side only (a fallback, a verification, another page) follows from
        // an earlier answer of the same op, which is compared itself.
        let (Some(r), Some(t)) = (r, t) else {
            continue;
        };
        let (ro, to) = (&r.observation, &t.observation);
        if tolerate_transport && (ro.status == 0 || to.status == 0) {
            continue;
        }
        if ro.status != to.status {
            out.push((
                label.to_string(),
                Found {
                    field: "status".into(),
                    rule: "diff/status",
                    summary: format!("status {} vs reference {}", to.status, ro.status),
                    expected: ro.status.to_string(),
                    actual: to.status.to_string(),
                },
            ));
            // Headers and bodies of different statuses are not comparable.
            continue;
        }
        let names: BTreeSet<&String> = ro.headers.keys().chain(to.headers.keys()).collect();
        for name in names {
            // Content-Length follows the body (compared below); error bodies MAY be any format;
            // `Link` is optional and judged by the paging checks; session ids by their rule.
            if IGNORED_HEADERS.contains(&name.as_str())
                || name == "link"
                || name == "link-form"
                || name == "location-session-id"
                || name == "content-type"
                || name == "content-length"
                || (name == "content-type-essence" && ro.status >= 400)
            {
                continue;
            }
            let (a, b) = (ro.headers.get(name), to.headers.get(name));
            if a == b {
                continue;
            }
            let rule = if name == "location" || name == "location-form" {
                "diff/location"
            } else {
                "diff/header"
            };
            out.push((
                label.to_string(),
                Found {
                    field: format!("header:{name}"),
                    rule,
                    summary: header_words(name, a.map(String::as_str), b.map(String::as_str)),
                    expected: a.cloned().unwrap_or_else(|| "<absent>".into()),
                    actual: b.cloned().unwrap_or_else(|| "<absent>".into()),
                },
            ));
        }
        if !body_equivalent(&ro.body, &to.body) {
            let rule = match (&ro.body, &to.body) {
                (BodyFacts::Errors { .. }, BodyFacts::Errors { .. }) => "diff/error-code",
                _ if ro.status >= 400 => "diff/error-body",
                _ => "diff/body",
            };
            out.push((
                label.to_string(),
                Found {
                    field: "body".into(),
                    rule,
                    summary: format!(
                        "body {} vs reference {}",
                        to.body.describe(),
                        ro.body.describe()
                    ),
                    expected: ro.body.describe(),
                    actual: to.body.describe(),
                },
            ));
        }
    }
    out
}

/// A header that differs, as a maintainer reads it: "Range header absent (the reference
/// sent `0-0`)", "Location header `/x` (the reference sent `/y`)".
fn header_words(name: &str, reference: Option<&str>, target: Option<&str>) -> String {
    let shown = |v: &str| {
        let v: String = v.chars().take(100).collect();
        format!("`{v}`")
    };
    match (target, reference) {
        (None, Some(r)) => format!("{name} header absent (the reference sent {})", shown(r)),
        (Some(t), None) => format!("{name} header {} (the reference sent none)", shown(t)),
        (Some(t), Some(r)) => format!(
            "{name} header {} (the reference sent {})",
            shown(t),
            shown(r)
        ),
        (None, None) => format!("{name} header absent on both"),
    }
}

fn body_equivalent(a: &BodyFacts, b: &BodyFacts) -> bool {
    match (a, b) {
        (BodyFacts::Tags { tags: x, .. }, BodyFacts::Tags { tags: y, .. }) => x == y,
        (BodyFacts::Referrers { manifests: x }, BodyFacts::Referrers { manifests: y }) => {
            let (mut x, mut y) = (x.clone(), y.clone());
            x.sort();
            y.sort();
            x == y
        }
        // Catalogs hold other runs' repositories: only the model check applies.
        (BodyFacts::Catalog { .. }, BodyFacts::Catalog { .. }) => true,
        (
            BodyFacts::Content {
                len: l1,
                sha256: s1,
            },
            BodyFacts::Content {
                len: l2,
                sha256: s2,
            },
        ) => l1 == l2 && strip_sha(s1) == strip_sha(s2),
        (
            BodyFacts::Other {
                len: l1,
                sha256: s1,
                ..
            },
            BodyFacts::Other {
                len: l2,
                sha256: s2,
                ..
            },
        ) => l1 == l2 && s1 == s2,
        (x, y) => x == y,
    }
}
