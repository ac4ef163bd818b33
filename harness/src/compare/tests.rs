//! Unit tests of both oracles on hand-made outcomes.

use super::*;
use crate::vocab::content::{sha256_hex, OCI_INDEX};
use crate::vocab::exchange::{Observation, OpOutcome, RequestRecord};
use crate::vocab::{BlobId, DigestAlgo, ManifestId};
use std::collections::BTreeMap;

fn ex(label: &str, endpoint: &str, method: &str, status: u16) -> Exchange {
    Exchange {
        label: label.into(),
        endpoint: endpoint.into(),
        request: RequestRecord {
            method: method.into(),
            url: "http://127.0.0.1:1/v2/ns/r0/x".into(),
            headers: BTreeMap::new(),
            body_len: 0,
            body_sha256: None,
        },
        observation: Observation {
            status,
            transport_error: None,
            headers: BTreeMap::new(),
            body: BodyFacts::Empty,
            redirect: None,
        },
    }
}

fn h(mut e: Exchange, k: &str, v: &str) -> Exchange {
    e.observation.headers.insert(k.into(), v.into());
    e
}

fn body(mut e: Exchange, b: BodyFacts) -> Exchange {
    e.observation.body = b;
    e
}

/// blob0 (layer), blob1 (config), m0 = image(b1; b0), m1 = image(b1; subject m0).
fn seq() -> Sequence {
    Sequence::from_toml(
        r#"
[content]
blobs = [{ size = 10, seed = 1 }, { size = 5, seed = 2 }]
[[content.manifests]]
kind = "image"
config = 1
layers = [0]
artifact_type = "application/x-sig"
[[content.manifests]]
kind = "image"
config = 1
layers = [0]
subject = 0
artifact_type = "application/x-sig"
[[ops]] # 0
op = "push_blob"
repo = 0
blob = 0
method = "monolithic"
[[ops]] # 1
op = "push_blob"
repo = 0
blob = 1
method = "monolithic"
[[ops]] # 2
op = "get_blob"
repo = 0
blob = 0
[[ops]] # 3
op = "push_manifest"
repo = 0
manifest = 0
reference = { tag = "b" }
[[ops]] # 4
op = "push_manifest"
repo = 0
manifest = 1
reference = { tag = "a" }
[[ops]] # 5
op = "list_tags"
repo = 0
[[ops]] # 6
op = "mount_blob"
repo = 1
blob = 0
from = 0
[[ops]] # 7
op = "list_referrers"
repo = 0
subject = { digest = 0 }
[[ops]] # 8
op = "head_blob"
repo = 1
blob = 0
"#,
    )
    .unwrap()
}

/// What a spec-exact registry answers to `seq()`.
fn good(c: &Content) -> Vec<Vec<Exchange>> {
    let b0 = c.blob(BlobId(0)).unwrap().clone();
    let post = || {
        h(
            ex("post", "end-4a", "POST", 202),
            "location",
            "/v2/ns/r0/blobs/uploads/<upload>",
        )
    };
    let put = || {
        h(
            ex("put", "end-6", "PUT", 201),
            "location",
            "/v2/ns/r0/blobs/x",
        )
    };
    let d0 = c.blob_digest(BlobId(0)).unwrap().to_string();
    let m0 = c.manifest_digest(ManifestId(0)).unwrap().to_string();
    let mut referrer = c.referrer_descriptor(ManifestId(1)).unwrap();
    referrer.digest = c.manifest_sha256(ManifestId(1)).unwrap().to_string();
    vec![
        vec![post(), put()],
        vec![post(), put()],
        vec![body(
            h(
                h(ex("get", "end-2", "GET", 200), "docker-content-digest", &d0),
                "content-length",
                "10",
            ),
            BodyFacts::Content {
                len: 10,
                sha256: sha256_hex(&b0),
            },
        )],
        vec![h(
            ex("put", "end-7a", "PUT", 201),
            "location",
            "/v2/ns/r0/manifests/b",
        )],
        vec![h(
            h(
                ex("put", "end-7a", "PUT", 201),
                "location",
                "/v2/ns/r0/manifests/a",
            ),
            "oci-subject",
            &m0,
        )],
        vec![body(
            ex("get", "end-8a", "GET", 200),
            BodyFacts::Tags {
                name: "ns/r0".into(),
                tags: vec!["a".into(), "b".into()],
            },
        )],
        vec![h(
            ex("post", "end-11", "POST", 201),
            "location",
            "/v2/ns/r1/blobs/x",
        )],
        vec![body(
            h(ex("get", "end-12a", "GET", 200), "content-type", OCI_INDEX),
            BodyFacts::Referrers {
                manifests: vec![referrer],
            },
        )],
        vec![h(
            h(
                ex("head", "end-2", "HEAD", 200),
                "docker-content-digest",
                &d0,
            ),
            "content-length",
            "10",
        )],
    ]
}

fn outcome(reference: Vec<Vec<Exchange>>, other: Vec<Vec<Exchange>>) -> CaseOutcome {
    CaseOutcome {
        targets: vec!["reference".into(), "other".into()],
        ops: reference
            .into_iter()
            .zip(other)
            .map(|(r, o)| OpOutcome {
                per_target: vec![r, o],
            })
            .collect(),
        // The rules as main reads them (every version's reading is tested in spec_rules).
        versions: vec![crate::compare::SpecVersion::V1_1Dev; 2],
    }
}

fn run(mutate: impl FnOnce(&mut Vec<Vec<Exchange>>)) -> Vec<Divergence> {
    let s = seq();
    let c = Content::render(&s.content).unwrap();
    let mut other = good(&c);
    mutate(&mut other);
    check_case(&s, &c, &outcome(good(&c), other))
}

#[test]
fn correct_responses_pass() {
    let d = run(|_| {});
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn wrong_status_is_violation() {
    let d = run(|o| o[2][0].observation.status = 500);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].class, Class::Violation);
    assert_eq!(d[0].target, "other");
    assert_eq!(d[0].endpoint, "end-2");
    assert_eq!(d[0].rule, "end-2/get-200");
    assert_eq!(d[0].field, "status");
    assert_eq!(d[0].reference.as_deref(), Some("200"));
    assert!(d[0].spec.contains("MUST be `200 OK`"));
}

#[test]
fn wrong_body_and_header_are_violations() {
    let d = run(|o| {
        o[2][0].observation.body = BodyFacts::Content {
            len: 10,
            sha256: "00".into(),
        };
        o[8][0].observation.headers.remove("content-length");
    });
    let rules: Vec<&str> = d.iter().map(|d| d.rule.as_str()).collect();
    assert_eq!(rules, ["end-2/get-body", "end-2/head-length"], "{d:#?}");
    assert!(d.iter().all(|d| d.class == Class::Violation));
}

#[test]
fn mount_202_is_unsupported_and_continues() {
    let d = run(|o| {
        o[6][0].observation.status = 202;
        o[6][0]
            .observation
            .headers
            .insert("location".into(), "/v2/ns/r1/blobs/uploads/<upload>".into());
    });
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].class, Class::Unsupported);
    assert_eq!(d[0].rule, "end-11/mount-202");
    assert_eq!(d[0].endpoint, "end-11");
    // The fallback upload follows a 202: the blob is there, the HEAD (op 8) is judged.
    assert!(d.iter().all(|d| d.op_index == 6));
}

#[test]
fn referrers_404_is_unsupported() {
    let d = run(|o| {
        o[7][0] = ex("get", "end-12a", "GET", 404);
        o[4][0].observation.headers.remove("oci-subject");
    });
    let got: Vec<(&str, Class)> = d.iter().map(|d| (d.rule.as_str(), d.class)).collect();
    assert_eq!(
        got,
        [
            ("end-7/oci-subject-unsupported", Class::Unsupported),
            ("end-12a/unsupported", Class::Unsupported)
        ],
        "{d:#?}"
    );
}

#[test]
fn missing_oci_subject_with_referrers_api_is_violation() {
    let d = run(|o| {
        o[4][0].observation.headers.remove("oci-subject");
    });
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].rule, "end-7/oci-subject");
    assert_eq!(d[0].class, Class::Violation);
}

#[test]
fn digest_of_another_algorithm_is_variation() {
    let s = seq();
    let c = Content::render(&s.content).unwrap();
    let other = crate::vocab::content::digest_of(DigestAlgo::Sha512, c.blob(BlobId(0)).unwrap());
    let d = run(|o| {
        o[2][0]
            .observation
            .headers
            .insert("docker-content-digest".into(), other.clone());
    });
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(
        (d[0].rule.as_str(), d[0].class),
        ("end-2/digest-algorithm", Class::Variation)
    );
    let d = run(|o| {
        o[2][0]
            .observation
            .headers
            .insert("docker-content-digest".into(), "sha256:00".into());
    });
    assert_eq!(
        (d[0].rule.as_str(), d[0].class),
        ("end-2/get-digest-value", Class::Violation)
    );
    // Another algorithm, but not the digest of these bytes: a wrong digest.
    let d = run(|o| {
        o[2][0].observation.headers.insert(
            "docker-content-digest".into(),
            format!("sha512:{}", "0".repeat(128)),
        );
    });
    assert_eq!(
        (d[0].rule.as_str(), d[0].class),
        ("end-2/get-digest-value", Class::Violation)
    );
}

#[test]
fn unsorted_tags_are_violation() {
    let d = run(|o| {
        o[5][0].observation.body = BodyFacts::Tags {
            name: "ns/r0".into(),
            tags: vec!["b".into(), "a".into()],
        }
    });
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].rule, "end-8a/order");
    assert_eq!(d[0].class, Class::Violation);
    assert_eq!(d[0].endpoint, "end-8a");
}

#[test]
fn failed_push_does_not_cascade() {
    let d = run(|o| {
        o[0][1].observation.status = 500;
        o[2][0] = ex("get", "end-2", "GET", 404);
        o[3][0] = ex("put", "end-7a", "PUT", 400);
        o[5][0].observation.body = BodyFacts::Tags {
            name: "ns/r0".into(),
            tags: vec!["a".into()],
        };
    });
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!((d[0].op_index, d[0].rule.as_str()), (0, "end-6/put-201"));
}

#[test]
fn reference_divergence_is_reported_on_reference() {
    let s = seq();
    let c = Content::render(&s.content).unwrap();
    let mut r = good(&c);
    r[6][0].observation.status = 202; // a Variation rule, but the reference must match the model
    let d = check_case(&s, &c, &outcome(r, good(&c)));
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].target, "reference");
    assert_eq!(d[0].class, Class::Violation);
    assert!(d[0].summary.contains("reference disagrees"));
}

#[test]
fn differential_header_difference_is_variation() {
    let d = run(|o| {
        o[0][0]
            .observation
            .headers
            .insert("location-form".into(), "absolute".into());
    });
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].class, Class::Variation);
    assert_eq!(d[0].rule, "diff/location");
    assert_eq!(d[0].field, "header:location-form");
}

#[test]
fn transport_error_and_skipped() {
    let d = run(|o| {
        o[2][0].observation = Observation {
            status: 0,
            transport_error: Some("connection reset".into()),
            headers: BTreeMap::new(),
            body: BodyFacts::Empty,
            redirect: None,
        };
    });
    // No answer to a GET of an existing blob breaks that GET's MUST.
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].rule, "end-2/get-200");
    assert_eq!(d[0].class, Class::Violation);
    assert!(d[0].summary.contains("no HTTP response"), "{d:#?}");
}

#[test]
fn a_body_that_breaks_off_is_a_transport_finding() {
    // Distribution 2.8.2 answers an unsatisfiable range with 416, `Content-Length` of the
    // whole blob and a 33-byte body: the status is right, the message is not.
    let d = run(|o| {
        o[2][0].observation.transport_error = Some(format!(
            "{}: unexpected EOF",
            crate::observe::BODY_READ_ERROR
        ));
    });
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].rule, "http/transport");
    assert_eq!(d[0].field, "body");
    assert!(d[0].summary.contains("broke off"), "{d:#?}");
    // ocidiff's own size cap is not the target's fault.
    let d = run(|o| {
        o[2][0].observation.transport_error = Some("body exceeds 10 bytes".into());
    });
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn every_rule_id_in_the_code_exists() {
    // Every source file of the harness, found here (not a hand-kept list): a string literal
    // shaped like a rule id of any family RULES has must name a rule, or a typo would become
    // the fallback variation silently.
    fn sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                ));
            }
        }
    }
    let mut files = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 40, "{} source files", files.len());
    let mut families: Vec<&str> = RULES
        .iter()
        .filter_map(|r| r.id.split_once('/').map(|(f, _)| f))
        .collect();
    families.sort_unstable();
    families.dedup();
    let mut n = 0;
    for (path, code) in &files {
        if path.ends_with("compare/tests.rs") {
            continue;
        }
        // Test fixtures may name made-up rules.
        let code = code.split("#[cfg(test)]").next().unwrap_or_default();
        for part in code.split('"').skip(1).step_by(2) {
            let looks_like_rule = !part.contains(' ')
                && !part.contains('{')
                && part
                    .split_once('/')
                    .is_some_and(|(f, rest)| !rest.is_empty() && families.contains(&f))
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-/".contains(c));
            if looks_like_rule {
                n += 1;
                assert_ne!(
                    rule(part).id,
                    "unknown",
                    "rule {part:?} ({path}) is not in RULES"
                );
            }
        }
    }
    assert!(n > 200, "{n}");
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let len = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), len, "duplicate rule ids");
    for r in RULES {
        assert!(!r.spec.is_empty());
    }
}

#[test]
fn signature_and_class_serde() {
    assert_eq!(
        serde_json::to_string(&Class::Unsupported).unwrap(),
        "\"unsupported\""
    );
    let d = run(|o| o[2][0].observation.status = 500);
    assert_eq!(
        d[0].signature(),
        (
            "other".to_string(),
            "end-2".to_string(),
            "status".to_string(),
            Class::Violation,
            "end-2/get-200".to_string()
        )
    );
}
