//! Manifest push: end-7a (by tag or digest), end-7b (`?tag=`), subject handling,
//! size limits and manifest validation.

mod common;

use common::*;
use reference_registry::Config;
use reqwest::StatusCode;
use serde_json::json;

/// Push config + one layer; returns (config, layer).
async fn blobs(reg: &Reg, repo: &str, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let config = format!("{{\"os\":\"linux\",\"seed\":{seed}}}").into_bytes();
    let layer = bytes(seed, 3000);
    reg.push_blob(repo, &config).await;
    reg.push_blob(repo, &layer).await;
    (config, layer)
}

async fn assert_manifest(reg: &Reg, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
    let r = reg.get(&format!("/v2/{repo}/manifests/{reference}")).await;
    assert_eq!(r.status(), StatusCode::OK, "GET {repo}:{reference}");
    assert_eq!(
        header_req(r.headers(), "docker-content-digest"),
        sha256(body)
    );
    assert_eq!(content_type(r.headers()), media_type);
    assert_eq!(content_length(r.headers()), body.len() as u64);
    let got = r.bytes().await.unwrap();
    assert!(got[..] == body[..], "manifest bytes differ for {reference}");
}

#[tokio::test]
async fn end7a_oci_image_manifest_by_tag() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/img", 30).await;
        let m = image_manifest(&config, &[&layer], None, None);
        let r = reg.put_manifest("man/img", "v1", OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let digest = sha256(&m);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
        let loc = reg.resolve(&location(&r));
        let g = reg.http.get(loc).send().await.unwrap();
        assert_eq!(g.status(), StatusCode::OK, "Location is pullable");
        assert_eq!(&g.bytes().await.unwrap()[..], &m[..]);
        assert_manifest(&reg, "man/img", "v1", OCI_MANIFEST, &m).await;
        assert_manifest(&reg, "man/img", &digest, OCI_MANIFEST, &m).await;
        assert!(r.headers().get("oci-subject").is_none());
    })
    .await
}

#[tokio::test]
async fn end7a_bytes_are_stored_exactly() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/exact", 31).await;
        // Odd whitespace, key order, unicode escapes and trailing newline.
        let m = format!(
            "{{\n   \"layers\" : [ {{\"size\": {}, \"digest\":\"{}\", \"mediaType\":\"{}\"}} ],\n\t\"schemaVersion\":2,\
             \"mediaType\": \"{}\", \"config\": {{\"mediaType\":\"{}\",\"digest\":\"{}\",\"size\":{}}},\
             \"annotations\":{{\"x\":\"caf\\u00e9 \u{1F600}\"}}   }}\n\n",
            layer.len(),
            sha256(&layer),
            OCI_LAYER,
            OCI_MANIFEST,
            OCI_CONFIG,
            sha256(&config),
            config.len()
        )
        .into_bytes();
        let d = reg.push_manifest("man/exact", "pretty", OCI_MANIFEST, &m).await;
        assert_manifest(&reg, "man/exact", "pretty", OCI_MANIFEST, &m).await;
        assert_manifest(&reg, "man/exact", &d, OCI_MANIFEST, &m).await;
    })
    .await
}

#[tokio::test]
async fn end7a_push_by_digest_verifies_digest() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/bydigest", 32).await;
        let m = image_manifest(&config, &[&layer], None, None);
        let digest = sha256(&m);
        let r = reg
            .put_manifest("man/bydigest", &digest, OCI_MANIFEST, &m)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
        assert_manifest(&reg, "man/bydigest", &digest, OCI_MANIFEST, &m).await;
        // Untagged: the tag list does not grow.
        let t: serde_json::Value = reg
            .get("/v2/man/bydigest/tags/list")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(t["tags"], json!([]), "{t}");

        // Body whose digest differs from the URL digest.
        let other = image_manifest(&config, &[], None, None);
        let r = reg
            .put_manifest("man/bydigest", &sha256(b"nope"), OCI_MANIFEST, &other)
            .await;
        assert_error(r, 400, "DIGEST_INVALID").await;
        let r = reg
            .get(&format!("/v2/man/bydigest/manifests/{}", sha256(&other)))
            .await;
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "rejected manifest stored"
        );
    })
    .await
}

#[tokio::test]
async fn end7a_sha512_reference_verifies_digest() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/sha512", 33).await;
        let m = image_manifest(&config, &[&layer], None, None);
        let digest = sha512(&m);
        let r = reg
            .put_manifest("man/sha512", &digest, OCI_MANIFEST, &m)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
        let g = reg.get(&format!("/v2/man/sha512/manifests/{digest}")).await;
        assert_eq!(g.status(), StatusCode::OK);
        assert_eq!(&g.bytes().await.unwrap()[..], &m[..]);
    })
    .await
}

#[tokio::test]
async fn end7a_image_index() {
    bounded(async {
        let reg = start().await;
        let (m1, _) = reg.push_image("man/index", "amd64", 34).await;
        let (m2, _) = reg.push_image("man/index", "arm64", 35).await;
        let idx = image_index(&[(OCI_MANIFEST, &m1), (OCI_MANIFEST, &m2)]);
        let r = reg
            .put_manifest("man/index", "multi", OCI_INDEX, &idx)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_manifest(&reg, "man/index", "multi", OCI_INDEX, &idx).await;
        assert_manifest(&reg, "man/index", &sha256(&idx), OCI_INDEX, &idx).await;
    })
    .await
}

#[tokio::test]
async fn end7a_index_with_unknown_child_is_rejected_or_accepted_but_never_5xx() {
    bounded(async {
        let reg = start().await;
        reg.push_image("man/index2", "base", 36).await;
        let idx = image_index(&[(OCI_MANIFEST, b"{\"missing\":true}")]);
        let r = reg
            .put_manifest("man/index2", "multi", OCI_INDEX, &idx)
            .await;
        let s = r.status().as_u16();
        if s != 201 {
            assert_eq!(s, 400);
            let codes = error_codes(r).await;
            assert!(
                codes.iter().any(|c| c == "MANIFEST_BLOB_UNKNOWN"),
                "{codes:?}"
            );
        }
    })
    .await
}

#[tokio::test]
async fn end7a_artifact_manifest_with_artifact_type() {
    bounded(async {
        let reg = start().await;
        let empty = b"{}".to_vec();
        let payload = b"sbom payload".to_vec();
        reg.push_blob("man/art", &empty).await;
        reg.push_blob("man/art", &payload).await;
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom.v1",
            "config": descriptor(OCI_EMPTY, &empty),
            "layers": [descriptor("application/spdx+json", &payload)],
            "annotations": {"org.example": "1"}
        }))
        .unwrap();
        reg.push_manifest("man/art", "sbom", OCI_MANIFEST, &m).await;
        assert_manifest(&reg, "man/art", "sbom", OCI_MANIFEST, &m).await;
    })
    .await
}

#[tokio::test]
async fn end7a_docker_schema2_and_manifest_list() {
    bounded(async {
        let reg = start().await;
        let config = b"{\"architecture\":\"amd64\"}".to_vec();
        let layer = bytes(37, 500);
        reg.push_blob("man/docker", &config).await;
        reg.push_blob("man/docker", &layer).await;
        let m = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(DOCKER_CONFIG, &config),
            "layers": [descriptor(DOCKER_LAYER, &layer)],
        }))
        .unwrap();
        reg.push_manifest("man/docker", "v2", DOCKER_MANIFEST, &m)
            .await;
        assert_manifest(&reg, "man/docker", "v2", DOCKER_MANIFEST, &m).await;
        let list = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [{
                "mediaType": DOCKER_MANIFEST,
                "digest": sha256(&m),
                "size": m.len(),
                "platform": {"architecture": "amd64", "os": "linux"}
            }]
        }))
        .unwrap();
        reg.push_manifest("man/docker", "list", DOCKER_LIST, &list)
            .await;
        assert_manifest(&reg, "man/docker", "list", DOCKER_LIST, &list).await;
    })
    .await
}

#[tokio::test]
async fn end7a_missing_layer_or_config_is_manifest_blob_unknown() {
    bounded(async {
        // The spec's "MAY reject" is the quirk `reject_missing_refs` (distribution's choice).
        let mut quirks = reference_registry::Quirks::default();
        quirks.enable("reject_missing_refs").unwrap();
        let reg = start_with(Config {
            quirks,
            ..Config::default()
        })
        .await;
        let (config, layer) = blobs(&reg, "man/missing", 38).await;
        let absent = b"absent layer".to_vec();
        let m = image_manifest(&config, &[&layer, &absent], None, None);
        let r = reg
            .put_manifest("man/missing", "v1", OCI_MANIFEST, &m)
            .await;
        assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN").await;
        let m = image_manifest(b"absent config", &[&layer], None, None);
        let r = reg
            .put_manifest("man/missing", "v2", OCI_MANIFEST, &m)
            .await;
        assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN").await;
        // Nothing was tagged.
        let r = reg.get("/v2/man/missing/manifests/v1").await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // A blob in another repository does not count.
        reg.push_blob("man/elsewhere", &absent).await;
        let m = image_manifest(&config, &[&absent], None, None);
        let r = reg
            .put_manifest("man/missing", "v3", OCI_MANIFEST, &m)
            .await;
        assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN").await;
    })
    .await
}

#[tokio::test]
async fn end7a_missing_layer_is_accepted_by_default() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/lenient", 40).await;
        let absent = b"absent layer".to_vec();
        let m = image_manifest(&config, &[&layer, &absent], None, None);
        let r = reg
            .put_manifest("man/lenient", "v1", OCI_MANIFEST, &m)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = reg.get("/v2/man/lenient/manifests/v1").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.bytes().await.unwrap()[..] == m[..], "stored bytes differ");
    })
    .await
}

#[tokio::test]
async fn end7a_missing_subject_is_accepted_with_oci_subject() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/subject", 39).await;
        let absent_subject = image_manifest(b"x", &[], None, None);
        let m = image_manifest(
            &config,
            &[&layer],
            Some((OCI_MANIFEST, &absent_subject)),
            Some("application/vnd.example.sig"),
        );
        let r = reg
            .put_manifest("man/subject", "sig", OCI_MANIFEST, &m)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(
            header_req(r.headers(), "oci-subject"),
            sha256(&absent_subject)
        );
        // And for a subject that does exist.
        let (subject, sd) = reg.push_image("man/subject", "base", 40).await;
        let m2 = image_manifest(&config, &[], Some((OCI_MANIFEST, &subject)), None);
        let r = reg
            .put_manifest("man/subject", &sha256(&m2), OCI_MANIFEST, &m2)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header_req(r.headers(), "oci-subject"), sd);
    })
    .await
}

#[tokio::test]
async fn end7a_oversized_manifest_is_413() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/big", 41).await;
        let mut v: serde_json::Value =
            serde_json::from_slice(&image_manifest(&config, &[&layer], None, None)).unwrap();
        // A bit under 4 MiB must be accepted ("at least 4 megabytes").
        v["annotations"] = json!({"pad": "a".repeat(4 * 1024 * 1024 - 2048)});
        let ok = serde_json::to_vec(&v).unwrap();
        assert!(ok.len() <= 4 * 1024 * 1024);
        let r = reg.put_manifest("man/big", "ok", OCI_MANIFEST, &ok).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "manifest of {} bytes",
            ok.len()
        );
        v["annotations"] = json!({"pad": "a".repeat(4 * 1024 * 1024 + 16)});
        let big = serde_json::to_vec(&v).unwrap();
        let r = reg.put_manifest("man/big", "big", OCI_MANIFEST, &big).await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let r = reg.get("/v2/man/big/manifests/big").await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    })
    .await
}

#[tokio::test]
async fn end7a_configured_manifest_limit() {
    bounded(async {
        let reg = start_with(Config {
            max_manifest_bytes: 1024,
            ..Config::default()
        })
        .await;
        let (config, layer) = blobs(&reg, "man/limit", 42).await;
        let mut v: serde_json::Value =
            serde_json::from_slice(&image_manifest(&config, &[&layer], None, None)).unwrap();
        let small = serde_json::to_vec(&v).unwrap();
        assert!(small.len() < 1024);
        reg.push_manifest("man/limit", "small", OCI_MANIFEST, &small)
            .await;
        v["annotations"] = json!({"pad": "b".repeat(1500)});
        let big = serde_json::to_vec(&v).unwrap();
        let r = reg
            .put_manifest("man/limit", "big", OCI_MANIFEST, &big)
            .await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    })
    .await
}

#[tokio::test]
async fn end7b_push_by_digest_with_tags_returns_oci_tag() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/tags", 43).await;
        let m = image_manifest(&config, &[&layer], None, None);
        let digest = sha256(&m);
        let r = reg
            .put_manifest(
                "man/tags",
                &format!("{digest}?tag=1.2.3&tag=1.2&tag=1&tag=latest"),
                OCI_MANIFEST,
                &m,
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let mut tags: Vec<String> = r
            .headers()
            .get_all("oci-tag")
            .iter()
            .flat_map(|v| {
                v.to_str()
                    .unwrap()
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        tags.sort();
        assert_eq!(tags, ["1", "1.2", "1.2.3", "latest"]);
        for t in &tags {
            assert_manifest(&reg, "man/tags", t, OCI_MANIFEST, &m).await;
        }
        let list: serde_json::Value = reg
            .get("/v2/man/tags/tags/list")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["tags"], json!(["1", "1.2", "1.2.3", "latest"]));
    })
    .await
}

#[tokio::test]
async fn end7b_invalid_tag_parameter_is_rejected() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/badtag", 44).await;
        let m = image_manifest(&config, &[&layer], None, None);
        let digest = sha256(&m);
        let r = reg
            .put_manifest(
                "man/badtag",
                &format!("{digest}?tag=-nope"),
                OCI_MANIFEST,
                &m,
            )
            .await;
        let s = r.status().as_u16();
        assert!((400..500).contains(&s), "invalid ?tag= -> {s}");
    })
    .await
}

#[tokio::test]
async fn end7a_tag_moves_to_latest_push() {
    bounded(async {
        let reg = start().await;
        let (m1, d1) = reg.push_image("man/move", "t", 45).await;
        let (m2, d2) = reg.push_image("man/move", "t", 46).await;
        assert_ne!(d1, d2);
        assert_manifest(&reg, "man/move", "t", OCI_MANIFEST, &m2).await;
        // The old manifest is still there by digest.
        assert_manifest(&reg, "man/move", &d1, OCI_MANIFEST, &m1).await;
    })
    .await
}

#[tokio::test]
async fn end7a_invalid_manifest_is_manifest_invalid() {
    bounded(async {
        let reg = start().await;
        reg.push_blob("man/invalid", b"x").await;
        let cases: [&[u8]; 4] = [
            b"not json at all",
            b"{\"schemaVersion\":2,\"mediaType\":",
            b"[]",
            b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":\"oops\",\"layers\":[]}",
        ];
        for body in cases {
            let r = reg.put_manifest("man/invalid", "bad", OCI_MANIFEST, body).await;
            let text = String::from_utf8_lossy(body).to_string();
            let s = r.status().as_u16();
            let codes = error_codes(r).await;
            assert_eq!(s, 400, "{text}");
            assert!(codes.iter().any(|c| c == "MANIFEST_INVALID"), "{text}: {codes:?}");
        }
    })
    .await
}

#[tokio::test]
async fn end7a_content_type_parameters_are_ignored() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/ctparam", 47).await;
        let m = image_manifest(&config, &[&layer], None, None);
        let r = reg
            .put_manifest(
                "man/ctparam",
                "v1",
                &format!("{OCI_MANIFEST}; charset=utf-8"),
                &m,
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let g = reg.get("/v2/man/ctparam/manifests/v1").await;
        assert_eq!(content_type(g.headers()), OCI_MANIFEST);
    })
    .await
}

#[tokio::test]
async fn end7a_tag_length_limits() {
    bounded(async {
        let reg = start().await;
        let (config, layer) = blobs(&reg, "man/taglen", 48).await;
        let m = image_manifest(&config, &[&layer], None, None);
        let max = format!("A{}", "b".repeat(127));
        assert_eq!(max.len(), 128);
        reg.push_manifest("man/taglen", &max, OCI_MANIFEST, &m)
            .await;
        assert_manifest(&reg, "man/taglen", &max, OCI_MANIFEST, &m).await;
        let too_long = "c".repeat(129);
        for bad in [too_long.as_str(), "-dash", ".dot", "a+b"] {
            let r = reg.put_manifest("man/taglen", bad, OCI_MANIFEST, &m).await;
            let s = r.status().as_u16();
            assert!((400..500).contains(&s), "tag {bad:?} -> {s}");
        }
        // "_x" and "x.y-z" are valid tags.
        for good in ["_x", "x.y-z", "X__Y"] {
            reg.push_manifest("man/taglen", good, OCI_MANIFEST, &m)
                .await;
        }
    })
    .await
}
