//! Pull: end-1 (`GET /v2/`), end-2 (blob GET/HEAD with Range) and end-3
//! (manifest GET/HEAD).

mod common;

use common::*;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn end1_base_returns_200() {
    bounded(async {
        let reg = start().await;
        let r = reg.get("/v2/").await;
        assert_eq!(r.status(), StatusCode::OK);
        // Without the trailing slash it is still the base endpoint or a redirect to it, never 5xx.
        let r = reg.get("/v2").await;
        assert!(
            r.status().is_success() || r.status().is_redirection() || r.status() == 404,
            "GET /v2 -> {}",
            r.status()
        );
    })
    .await
}

#[tokio::test]
async fn end2_blob_get_returns_exact_bytes_and_headers() {
    bounded(async {
        let reg = start().await;
        let data = bytes(1, 12_345);
        let digest = reg.push_blob("pull/blob", &data).await;
        let r = reg.get(&format!("/v2/pull/blob/blobs/{digest}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
        assert_eq!(content_length(r.headers()), data.len() as u64);
        let body = r.bytes().await.unwrap();
        assert_eq!(&body[..], &data[..]);
        assert_eq!(sha256(&body), digest);
    })
    .await
}

#[tokio::test]
async fn end2_blob_head_has_length_and_digest_and_no_body() {
    bounded(async {
        let reg = start().await;
        let data = bytes(2, 4096);
        let digest = reg.push_blob("pull/head", &data).await;
        let r = reg.head(&format!("/v2/pull/head/blobs/{digest}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
        assert_eq!(content_length(r.headers()), 4096);
        assert!(r.bytes().await.unwrap().is_empty());
    })
    .await
}

#[tokio::test]
async fn end2_empty_blob_roundtrips() {
    bounded(async {
        let reg = start().await;
        let digest = reg.push_blob("pull/empty", b"").await;
        assert_eq!(
            digest,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let r = reg.get(&format!("/v2/pull/empty/blobs/{digest}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(content_length(r.headers()), 0);
        assert!(r.bytes().await.unwrap().is_empty());
    })
    .await
}

#[tokio::test]
async fn end2_unknown_blob_is_404_blob_unknown() {
    bounded(async {
        let reg = start().await;
        reg.push_blob("pull/known", b"x").await;
        let missing = sha256(b"never pushed");
        let r = reg.get(&format!("/v2/pull/known/blobs/{missing}")).await;
        assert_error(r, 404, "BLOB_UNKNOWN").await;
        let r = reg.head(&format!("/v2/pull/known/blobs/{missing}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(r.bytes().await.unwrap().is_empty(), "HEAD has no body");
        // Unknown repository: 404 as well.
        let r = reg.get(&format!("/v2/pull/nope/blobs/{missing}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let codes = error_codes(r).await;
        assert!(
            codes
                .iter()
                .any(|c| c == "BLOB_UNKNOWN" || c == "NAME_UNKNOWN"),
            "{codes:?}"
        );
    })
    .await
}

#[tokio::test]
async fn end2_blob_is_scoped_to_its_repository() {
    bounded(async {
        let reg = start().await;
        let digest = reg.push_blob("pull/a", b"scoped blob").await;
        reg.push_blob("pull/b", b"other").await;
        let r = reg.get(&format!("/v2/pull/b/blobs/{digest}")).await;
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "blob leaked across repos"
        );
    })
    .await
}

async fn range_get(reg: &Reg, path: &str, range: &str) -> reqwest::Response {
    reg.req(Method::GET, path)
        .header("range", range)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn end2_range_requests() {
    bounded(async {
        let reg = start().await;
        let data = bytes(3, 1000);
        let digest = reg.push_blob("pull/range", &data).await;
        let path = format!("/v2/pull/range/blobs/{digest}");

        // Closed range.
        let r = range_get(&reg, &path, "bytes=0-9").await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(header_req(r.headers(), "content-range"), "bytes 0-9/1000");
        assert_eq!(content_length(r.headers()), 10);
        assert_eq!(&r.bytes().await.unwrap()[..], &data[0..10]);

        // Middle range.
        let r = range_get(&reg, &path, "bytes=100-199").await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            header_req(r.headers(), "content-range"),
            "bytes 100-199/1000"
        );
        assert_eq!(&r.bytes().await.unwrap()[..], &data[100..200]);

        // Open-ended range.
        let r = range_get(&reg, &path, "bytes=990-").await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            header_req(r.headers(), "content-range"),
            "bytes 990-999/1000"
        );
        assert_eq!(&r.bytes().await.unwrap()[..], &data[990..]);

        // Suffix range: the last 5 bytes.
        let r = range_get(&reg, &path, "bytes=-5").await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            header_req(r.headers(), "content-range"),
            "bytes 995-999/1000"
        );
        assert_eq!(content_length(r.headers()), 5);
        assert_eq!(&r.bytes().await.unwrap()[..], &data[995..]);

        // Suffix longer than the blob: the whole blob (RFC 9110 14.1.2).
        let r = range_get(&reg, &path, "bytes=-5000").await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(header_req(r.headers(), "content-range"), "bytes 0-999/1000");
        assert_eq!(&r.bytes().await.unwrap()[..], &data[..]);

        // Last position beyond the end is clamped.
        let r = range_get(&reg, &path, "bytes=900-5000").await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            header_req(r.headers(), "content-range"),
            "bytes 900-999/1000"
        );
        assert_eq!(&r.bytes().await.unwrap()[..], &data[900..]);

        // Unsatisfiable: first position at/after the end -> 416 + `bytes */N`.
        for bad in ["bytes=1000-", "bytes=1000-1001", "bytes=5000-6000"] {
            let r = range_get(&reg, &path, bad).await;
            assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
            assert_eq!(header_req(r.headers(), "content-range"), "bytes */1000");
        }

        // A range unit the server does not understand MUST be ignored (RFC 9110 14.2).
        let r = range_get(&reg, &path, "items=0-1").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(&r.bytes().await.unwrap()[..], &data[..]);

        // Malformed byte ranges: ignored (200) or 416, never 5xx.
        for junk in ["bytes=abc", "bytes=9-3", "bytes=", "bytes=--1"] {
            let r = range_get(&reg, &path, junk).await;
            let s = r.status();
            assert!(s == 200 || s == 416, "{junk}: {s}");
            if s == 200 {
                assert_eq!(&r.bytes().await.unwrap()[..], &data[..], "{junk}");
            }
        }
    })
    .await
}

#[tokio::test]
async fn end3_manifest_get_by_tag_and_digest() {
    bounded(async {
        let reg = start().await;
        let (manifest, digest) = reg.push_image("pull/img", "v1", 10).await;
        for reference in ["v1", digest.as_str()] {
            let r = reg
                .get(&format!("/v2/pull/img/manifests/{reference}"))
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{reference}");
            assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
            assert_eq!(content_length(r.headers()), manifest.len() as u64);
            assert_eq!(
                header_req(r.headers(), "content-type"),
                OCI_MANIFEST,
                "Content-Type should equal the pushed type, without parameters"
            );
            assert_eq!(&r.bytes().await.unwrap()[..], &manifest[..]);
        }
    })
    .await
}

#[tokio::test]
async fn end3_manifest_get_with_accept_header() {
    bounded(async {
        let reg = start().await;
        let (manifest, _) = reg.push_image("pull/accept", "v1", 11).await;
        let r = reg
            .req(Method::GET, "/v2/pull/accept/manifests/v1")
            .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(&r.bytes().await.unwrap()[..], &manifest[..]);
    })
    .await
}

#[tokio::test]
async fn end3_manifest_head() {
    bounded(async {
        let reg = start().await;
        let (manifest, digest) = reg.push_image("pull/mhead", "latest", 12).await;
        for reference in ["latest", digest.as_str()] {
            let r = reg
                .head(&format!("/v2/pull/mhead/manifests/{reference}"))
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
            assert_eq!(content_length(r.headers()), manifest.len() as u64);
            assert_eq!(content_type(r.headers()), OCI_MANIFEST);
            assert!(r.bytes().await.unwrap().is_empty());
        }
    })
    .await
}

#[tokio::test]
async fn end3_unknown_manifest_is_404() {
    bounded(async {
        let reg = start().await;
        reg.push_image("pull/m404", "v1", 13).await;
        let r = reg.get("/v2/pull/m404/manifests/nope").await;
        assert_error(r, 404, "MANIFEST_UNKNOWN").await;
        let missing = sha256(b"no such manifest");
        let r = reg.get(&format!("/v2/pull/m404/manifests/{missing}")).await;
        assert_error(r, 404, "MANIFEST_UNKNOWN").await;
        let r = reg.head("/v2/pull/m404/manifests/nope").await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // Nonexistent repository.
        let r = reg.get("/v2/pull/no-such-repo/manifests/v1").await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let codes = error_codes(r).await;
        assert!(
            codes
                .iter()
                .any(|c| c == "NAME_UNKNOWN" || c == "MANIFEST_UNKNOWN"),
            "{codes:?}"
        );
    })
    .await
}

#[tokio::test]
async fn end3_manifest_by_digest_is_scoped_to_repository() {
    bounded(async {
        let reg = start().await;
        let (_, digest) = reg.push_image("pull/one", "v1", 14).await;
        reg.push_image("pull/two", "v1", 15).await;
        let r = reg.get(&format!("/v2/pull/two/manifests/{digest}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    })
    .await
}

#[tokio::test]
async fn end2_blob_pull_of_manifest_digest_in_same_repo_is_not_500() {
    bounded(async {
        let reg = start().await;
        let (_, digest) = reg.push_image("pull/cross", "v1", 16).await;
        let r = reg.get(&format!("/v2/pull/cross/blobs/{digest}")).await;
        assert!(r.status() == 200 || r.status() == 404, "{}", r.status());
    })
    .await
}
