//! Blob push: end-4a/4b/4c (POST), end-5 (PATCH), end-6 (PUT), end-11 (mount),
//! end-13 (upload status), end-14 (cancel).

mod common;

use common::*;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Body, Method, Response, StatusCode};

async fn patch(reg: &Reg, url: &str, range: Option<&str>, data: &[u8]) -> Response {
    let mut b = reg
        .http
        .patch(url)
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(data.to_vec());
    if let Some(range) = range {
        b = b.header("content-range", range);
    }
    b.send().await.unwrap()
}

async fn put_digest(reg: &Reg, url: &str, digest: &str, data: Option<(&str, &[u8])>) -> Response {
    let mut b = reg.http.put(with_query(url, &format!("digest={digest}")));
    match data {
        Some((range, bytes)) => {
            b = b
                .header(CONTENT_TYPE, "application/octet-stream")
                .header("content-range", range)
                .body(bytes.to_vec());
        }
        None => b = b.header(CONTENT_LENGTH, "0"),
    }
    b.send().await.unwrap()
}

async fn assert_blob(reg: &Reg, repo: &str, digest: &str, data: &[u8]) {
    let r = reg.get(&format!("/v2/{repo}/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK, "GET blob {digest}");
    assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
    assert_eq!(content_length(r.headers()), data.len() as u64);
    assert!(
        r.bytes().await.unwrap()[..] == data[..],
        "blob bytes differ"
    );
}

async fn assert_upload_range(reg: &Reg, upload: &str, expect: &str) -> String {
    let r = reg.http.get(upload).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "GET upload status");
    assert_eq!(header_req(r.headers(), "range"), expect);
    reg.resolve(&location(&r))
}

#[tokio::test]
async fn end4a_post_returns_202_with_unique_locations() {
    bounded(async {
        let reg = start().await;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5 {
            let r = reg
                .req(Method::POST, "/v2/push/post/blobs/uploads/")
                .header(CONTENT_LENGTH, "0")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            let loc = location(&r);
            assert!(seen.insert(loc.clone()), "duplicate upload location {loc}");
            // A fresh session answers end-13.
            let s = reg.http.get(reg.resolve(&loc)).send().await.unwrap();
            assert_eq!(s.status(), StatusCode::NO_CONTENT);
            assert!(s.headers().get("location").is_some());
        }
    })
    .await
}

#[tokio::test]
async fn end6_post_then_put_monolithic() {
    bounded(async {
        let reg = start().await;
        let data = bytes(20, 70_000);
        let digest = sha256(&data);
        let upload = reg.start_upload("push/mono").await;
        let r = reg
            .http
            .put(with_query(&upload, &format!("digest={digest}")))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
        let blob_location = reg.resolve(&location(&r));
        let g = reg.http.get(&blob_location).send().await.unwrap();
        assert_eq!(g.status(), StatusCode::OK, "Location is pullable");
        assert_eq!(&g.bytes().await.unwrap()[..], &data[..]);
        assert_blob(&reg, "push/mono", &digest, &data).await;
        // The session is closed.
        let s = reg.http.get(&upload).send().await.unwrap();
        assert_error(s, 404, "BLOB_UPLOAD_UNKNOWN").await;
    })
    .await
}

#[tokio::test]
async fn end4b_single_post_with_digest() {
    bounded(async {
        let reg = start().await;
        let data = bytes(21, 5000);
        let digest = sha256(&data);
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/push/single/blobs/uploads/?digest={digest}"),
            )
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(data.clone())
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            201 => {
                let loc = reg.resolve(&location(&r));
                assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
                let g = reg.http.get(loc).send().await.unwrap();
                assert_eq!(&g.bytes().await.unwrap()[..], &data[..]);
            }
            202 => {
                // Single POST unsupported: must hand out a session instead.
                let upload = reg.resolve(&location(&r));
                let r = put_digest(&reg, &upload, &digest, Some(("0-4999", &data))).await;
                assert_eq!(r.status(), StatusCode::CREATED);
            }
            s => panic!("single POST -> {s}"),
        }
        assert_blob(&reg, "push/single", &digest, &data).await;
    })
    .await
}

#[tokio::test]
async fn end4b_single_post_with_wrong_digest_is_400() {
    bounded(async {
        let reg = start().await;
        let wrong = sha256(b"something else");
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/push/single-bad/blobs/uploads/?digest={wrong}"),
            )
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(b"actual content".to_vec())
            .send()
            .await
            .unwrap();
        assert_error(r, 400, "DIGEST_INVALID").await;
        let r = reg.get(&format!("/v2/push/single-bad/blobs/{wrong}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    })
    .await
}

#[tokio::test]
async fn end5_chunked_upload_with_final_chunk_in_put() {
    bounded(async {
        let reg = start().await;
        let data = bytes(22, 30_000);
        let digest = sha256(&data);
        let mut upload = reg.start_upload("push/chunked").await;
        for (start, end) in [(0usize, 9999usize), (10_000, 19_999)] {
            let r = patch(
                &reg,
                &upload,
                Some(&format!("{start}-{end}")),
                &data[start..=end],
            )
            .await;
            assert_eq!(r.status(), StatusCode::ACCEPTED, "PATCH {start}-{end}");
            assert_eq!(header_req(r.headers(), "range"), format!("0-{end}"));
            upload = reg.resolve(&location(&r));
        }
        upload = assert_upload_range(&reg, &upload, "0-19999").await;
        let r = put_digest(
            &reg,
            &upload,
            &digest,
            Some(("20000-29999", &data[20_000..])),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
        location(&r);
        assert_blob(&reg, "push/chunked", &digest, &data).await;
    })
    .await
}

#[tokio::test]
async fn end5_chunked_upload_with_empty_closing_put() {
    bounded(async {
        let reg = start().await;
        let data = bytes(23, 4096 * 5 + 7);
        let digest = sha256(&data);
        let mut upload = reg.start_upload("push/chunked2").await;
        let mut offset = 0;
        for chunk in data.chunks(4096) {
            let end = offset + chunk.len() - 1;
            let r = patch(&reg, &upload, Some(&format!("{offset}-{end}")), chunk).await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            assert_eq!(header_req(r.headers(), "range"), format!("0-{end}"));
            upload = reg.resolve(&location(&r));
            offset = end + 1;
        }
        let r = put_digest(&reg, &upload, &digest, None).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_blob(&reg, "push/chunked2", &digest, &data).await;
    })
    .await
}

#[tokio::test]
async fn end5_out_of_order_chunk_is_416() {
    bounded(async {
        let reg = start().await;
        let data = bytes(24, 300);
        let digest = sha256(&data);
        let upload = reg.start_upload("push/ooo").await;

        // The first chunk MUST begin with 0.
        let r = patch(&reg, &upload, Some("10-19"), &data[10..20]).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

        let r = patch(&reg, &upload, Some("0-99"), &data[..100]).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let upload = reg.resolve(&location(&r));

        // Gap, overlap and repeat are all out of order.
        for (s, e) in [(150usize, 199usize), (50, 149), (0, 99)] {
            let r = patch(&reg, &upload, Some(&format!("{s}-{e}")), &data[s..=e]).await;
            assert_eq!(
                r.status(),
                StatusCode::RANGE_NOT_SATISFIABLE,
                "PATCH {s}-{e} after 0-99"
            );
        }
        // The session survives and still reports 0-99.
        let upload = assert_upload_range(&reg, &upload, "0-99").await;

        // Out-of-order final chunk in PUT -> 416.
        let r = put_digest(&reg, &upload, &digest, Some(("101-299", &data[101..]))).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

        // Resume correctly.
        let upload = assert_upload_range(&reg, &upload, "0-99").await;
        let r = patch(&reg, &upload, Some("100-199"), &data[100..200]).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let upload = reg.resolve(&location(&r));
        let r = put_digest(&reg, &upload, &digest, Some(("200-299", &data[200..]))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_blob(&reg, "push/ooo", &digest, &data).await;
    })
    .await
}

#[tokio::test]
async fn end5_content_range_not_matching_body_is_rejected() {
    bounded(async {
        let reg = start().await;
        let upload = reg.start_upload("push/badrange").await;
        // Declares 10 bytes, sends 5.
        let r = patch(&reg, &upload, Some("0-9"), b"12345").await;
        let s = r.status().as_u16();
        assert!(s == 400 || s == 416, "mismatched Content-Range -> {s}");
        // Malformed Content-Range.
        let r = patch(&reg, &upload, Some("bytes 0-4/5"), b"12345").await;
        let s = r.status().as_u16();
        assert!((400..500).contains(&s), "malformed Content-Range -> {s}");
    })
    .await
}

#[tokio::test]
async fn end5_streamed_patch_without_content_range() {
    bounded(async {
        let reg = start().await;
        let data = bytes(25, 200_000);
        let digest = sha256(&data);
        let upload = reg.start_upload("push/stream").await;
        // Chunked transfer encoding: no Content-Length, no Content-Range.
        let pieces: Vec<Result<Vec<u8>, std::io::Error>> = data[..150_000]
            .chunks(7000)
            .map(|c| Ok(c.to_vec()))
            .collect();
        let r = reg
            .http
            .patch(&upload)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(Body::wrap_stream(futures::stream::iter(pieces)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header_req(r.headers(), "range"), "0-149999");
        let upload = reg.resolve(&location(&r));
        // A second streamed PATCH appends.
        let r = patch(&reg, &upload, None, &data[150_000..]).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header_req(r.headers(), "range"), "0-199999");
        let upload = reg.resolve(&location(&r));
        let r = put_digest(&reg, &upload, &digest, None).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_blob(&reg, "push/stream", &digest, &data).await;
    })
    .await
}

#[tokio::test]
async fn end13_status_of_unknown_upload_is_404() {
    bounded(async {
        let reg = start().await;
        reg.push_blob("push/status", b"x").await;
        let r = reg
            .get("/v2/push/status/blobs/uploads/00000000-0000-4000-8000-000000000000")
            .await;
        assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
        let r = reg.get("/v2/push/status/blobs/uploads/not-a-uuid").await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    })
    .await
}

#[tokio::test]
async fn end13_upload_session_is_bound_to_its_repository() {
    bounded(async {
        let reg = start().await;
        let upload = reg.start_upload("push/owner").await;
        // Same session id under another repository must not resolve.
        let other = upload.replace("/push/owner/", "/push/thief/");
        assert_ne!(other, upload);
        let r = reg.http.get(&other).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    })
    .await
}

#[tokio::test]
async fn end14_cancel_upload() {
    bounded(async {
        let reg = start().await;
        let upload = reg.start_upload("push/cancel").await;
        let r = patch(&reg, &upload, Some("0-2"), b"abc").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let upload = reg.resolve(&location(&r));
        let r = reg
            .http
            .delete(&upload)
            .header(CONTENT_LENGTH, "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let r = reg.http.get(&upload).send().await.unwrap();
        assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
        let r = patch(&reg, &upload, Some("3-5"), b"def").await;
        assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
        let r = put_digest(&reg, &upload, &sha256(b"abc"), None).await;
        assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
        let r = reg.http.delete(&upload).send().await.unwrap();
        assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN").await;
    })
    .await
}

#[tokio::test]
async fn end11_mount_from_other_repository() {
    bounded(async {
        let reg = start().await;
        let data = bytes(26, 2048);
        let digest = reg.push_blob("push/src", &data).await;
        let r = reg
            .req(
                Method::POST,
                &format!("/v2/push/dst/blobs/uploads/?mount={digest}&from=push/src"),
            )
            .header(CONTENT_LENGTH, "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
        let loc = reg.resolve(&location(&r));
        let g = reg.http.get(loc).send().await.unwrap();
        assert_eq!(g.status(), StatusCode::OK);
        assert_blob(&reg, "push/dst", &digest, &data).await;
        // Source is unaffected.
        assert_blob(&reg, "push/src", &digest, &data).await;
    })
    .await
}

#[tokio::test]
async fn end11_mount_of_unknown_blob_starts_an_upload() {
    bounded(async {
        let reg = start().await;
        reg.push_blob("push/src2", b"present").await;
        let data = b"mounted later by upload".to_vec();
        let digest = sha256(&data);
        for query in [
            format!("mount={digest}&from=push/src2"),
            format!("mount={digest}&from=push/no-such-repo"),
            format!("mount={digest}"),
        ] {
            let r = reg
                .req(
                    Method::POST,
                    &format!("/v2/push/dst2/blobs/uploads/?{query}"),
                )
                .header(CONTENT_LENGTH, "0")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::ACCEPTED, "{query}");
            let upload = reg.resolve(&location(&r));
            let s = reg.http.get(&upload).send().await.unwrap();
            assert_eq!(
                s.status(),
                StatusCode::NO_CONTENT,
                "{query}: session usable"
            );
        }
        // A normal upload still completes.
        let upload = reg.start_upload("push/dst2").await;
        let r = put_digest(&reg, &upload, &digest, Some(("0-22", &data))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_blob(&reg, "push/dst2", &digest, &data).await;
    })
    .await
}

#[tokio::test]
async fn end4c_digest_algorithm_sha512() {
    bounded(async {
        let reg = start().await;
        let data = bytes(27, 10_000);
        let digest = sha512(&data);
        let r = reg
            .req(
                Method::POST,
                "/v2/push/sha512/blobs/uploads/?digest-algorithm=sha512",
            )
            .header(CONTENT_LENGTH, "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let upload = reg.resolve(&location(&r));
        let r = patch(&reg, &upload, Some("0-4999"), &data[..5000]).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let upload = reg.resolve(&location(&r));
        let r = put_digest(&reg, &upload, &digest, Some(("5000-9999", &data[5000..]))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
        assert_blob(&reg, "push/sha512", &digest, &data).await;
        let h = reg.head(&format!("/v2/push/sha512/blobs/{digest}")).await;
        assert_eq!(h.status(), StatusCode::OK);
        assert_eq!(content_length(h.headers()), 10_000);
    })
    .await
}

async fn start_sha512(reg: &Reg, repo: &str) -> String {
    let r = reg
        .req(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest-algorithm=sha512"),
        )
        .header(CONTENT_LENGTH, "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    reg.resolve(&location(&r))
}

#[tokio::test]
async fn end6_sha512_wrong_digest_is_400_and_monolithic_works() {
    bounded(async {
        let reg = start().await;
        let data = bytes(28, 777);
        let digest = sha512(&data);
        // Wrong sha512 digest -> 400 DIGEST_INVALID.
        let upload = start_sha512(&reg, "push/sha512b").await;
        let r = put_digest(&reg, &upload, &sha512(b"other"), Some(("0-776", &data))).await;
        assert_error(r, 400, "DIGEST_INVALID").await;
        // Monolithic PUT with the right digest.
        let upload = start_sha512(&reg, "push/sha512b").await;
        let r = reg
            .http
            .put(with_query(&upload, &format!("digest={digest}")))
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), digest);
        assert_blob(&reg, "push/sha512b", &digest, &data).await;
        // The same content is not addressable by a made-up sha512 digest.
        let r = reg
            .get(&format!("/v2/push/sha512b/blobs/{}", sha512(b"absent")))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    })
    .await
}

#[tokio::test]
async fn end4c_unsupported_digest_algorithm_is_400() {
    bounded(async {
        let reg = start().await;
        let r = reg
            .req(
                Method::POST,
                "/v2/push/md5/blobs/uploads/?digest-algorithm=md5",
            )
            .header(CONTENT_LENGTH, "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    })
    .await
}

#[tokio::test]
async fn end6_wrong_or_invalid_digest_is_400_digest_invalid() {
    bounded(async {
        let reg = start().await;
        let data = b"the real content".to_vec();
        let cases = [
            sha256(b"not the real content"),
            "sha256:abc".to_string(),
            "sha256:ZZZZ".to_string(),
            "md5:d41d8cd98f00b204e9800998ecf8427e".to_string(),
            "nonsense".to_string(),
        ];
        for digest in cases {
            let upload = reg.start_upload("push/baddigest").await;
            let r = reg
                .http
                .put(with_query(&upload, &format!("digest={digest}")))
                .body(data.clone())
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            let codes = error_codes(r).await;
            assert_eq!(s, 400, "PUT ?digest={digest}");
            assert!(
                codes.iter().any(|c| c == "DIGEST_INVALID"),
                "{digest}: {codes:?}"
            );
        }
        // Missing digest parameter.
        let upload = reg.start_upload("push/baddigest").await;
        let r = reg
            .http
            .put(&upload)
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "PUT without ?digest");
        let r = reg
            .get(&format!("/v2/push/baddigest/blobs/{}", sha256(&data)))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "nothing was stored");
    })
    .await
}

#[tokio::test]
async fn end6_wrong_digest_after_chunks_is_400() {
    bounded(async {
        let reg = start().await;
        let upload = reg.start_upload("push/baddigest2").await;
        let r = patch(&reg, &upload, Some("0-4"), b"hello").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let upload = reg.resolve(&location(&r));
        let r = put_digest(&reg, &upload, &sha256(b"hellx"), None).await;
        assert_error(r, 400, "DIGEST_INVALID").await;
        // Spec choice (reference README): the session stays open, unchanged.
        let upload = assert_upload_range(&reg, &upload, "0-4").await;
        // A wrong digest with a final chunk rolls that chunk back.
        let r = put_digest(&reg, &upload, &sha256(b"hello!!"), Some(("5-6", b"!?"))).await;
        assert_error(r, 400, "DIGEST_INVALID").await;
        let upload = assert_upload_range(&reg, &upload, "0-4").await;
        let r = put_digest(&reg, &upload, &sha256(b"hello!!"), Some(("5-6", b"!!"))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_blob(&reg, "push/baddigest2", &sha256(b"hello!!"), b"hello!!").await;
    })
    .await
}

#[tokio::test]
async fn end6_reupload_of_existing_blob_succeeds() {
    bounded(async {
        let reg = start().await;
        let d1 = reg.push_blob("push/dup", b"same bytes").await;
        let d2 = reg.push_blob("push/dup", b"same bytes").await;
        assert_eq!(d1, d2);
        assert_blob(&reg, "push/dup", &d1, b"same bytes").await;
    })
    .await
}

#[tokio::test]
async fn end4a_post_to_invalid_name_is_4xx() {
    bounded(async {
        let reg = start().await;
        for name in ["UPPER", "bad..name", "-lead", "trail-", "a//b"] {
            let r = reg
                .req(Method::POST, &format!("/v2/{name}/blobs/uploads/"))
                .header(CONTENT_LENGTH, "0")
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            assert!((400..500).contains(&s), "{name}: {s}");
        }
    })
    .await
}

#[tokio::test]
async fn end6_empty_blob_via_post_then_empty_put() {
    bounded(async {
        let reg = start().await;
        let upload = reg.start_upload("push/emptyput").await;
        let empty = sha256(b"");
        let r = put_digest(&reg, &upload, &empty, None).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header_req(r.headers(), "docker-content-digest"), empty);
        assert_blob(&reg, "push/emptyput", &empty, b"").await;
    })
    .await
}

#[tokio::test]
async fn end6_digest_with_uppercase_hex_is_400() {
    bounded(async {
        let reg = start().await;
        let data = b"case matters".to_vec();
        let upper = sha256(&data).to_uppercase().replacen("SHA256", "sha256", 1);
        let upload = reg.start_upload("push/upper").await;
        let r = put_digest(&reg, &upload, &upper, Some(("0-11", &data))).await;
        assert_error(r, 400, "DIGEST_INVALID").await;
    })
    .await
}

#[tokio::test]
async fn end4a_location_is_relative_or_same_origin() {
    bounded(async {
        let reg = start().await;
        let r = reg
            .req(Method::POST, "/v2/push/loc/blobs/uploads/")
            .header(CONTENT_LENGTH, "0")
            .send()
            .await
            .unwrap();
        let loc = location(&r);
        assert!(
            loc.starts_with("/v2/push/loc/blobs/uploads/") || loc.starts_with(&reg.base),
            "{loc}"
        );
        let id = loc.rsplit('/').next().unwrap().split('?').next().unwrap();
        assert!(id.len() >= 16, "session id {id:?} too short to be unique");
    })
    .await
}

/// An error answered before the request body is read (a chunk out of order, a manifest push
/// to an invalid reference): the client is still writing the body; the registry drains it
/// rather than closing the connection under the client, which would cost the client the
/// answer ("connection closed before message completed" / broken pipe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_errors_on_large_bodies_still_reach_the_client() {
    let reg = start().await;
    let big = bytes(7, 8 << 20);
    for round in 0..4 {
        let upload = reg.start_upload("early/r").await;
        // Out of order: starts at 5, the session is at 0.
        let r = reg
            .http
            .patch(&upload)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("content-range", format!("5-{}", big.len() + 4))
            .body(big.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: no answer to the out-of-order PATCH: {e}"));
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        // A manifest to an invalid reference, with a body over the limit.
        let r = reg
            .http
            .put(reg.url("/v2/early/r/manifests/-bad-"))
            .header(CONTENT_TYPE, OCI_MANIFEST)
            .body(big.clone())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!("round {round}: no answer to the invalid manifest PUT: {e}")
            });
        assert!(r.status().is_client_error(), "{}", r.status());
    }
}
