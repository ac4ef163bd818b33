//! Content management: end-9 (delete tag / manifest), end-10 (delete blob),
//! deletion disabled, and invalid names / tags / digests on every endpoint.

mod common;

use common::*;
use reference_registry::Config;
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn tags(reg: &Reg, repo: &str) -> Vec<String> {
    let r = reg.get(&format!("/v2/{repo}/tags/list")).await;
    if r.status() == StatusCode::NOT_FOUND {
        return vec![];
    }
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    serde_json::from_value(v["tags"].clone()).unwrap_or_default()
}

#[tokio::test]
async fn end9_delete_tag_keeps_manifest() {
    bounded(async {
        let reg = start().await;
        let (m, d) = reg.push_image("mgmt/tag", "one", 70).await;
        reg.push_manifest("mgmt/tag", "two", OCI_MANIFEST, &m).await;
        let r = reg.delete("/v2/mgmt/tag/manifests/one").await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let r = reg.get("/v2/mgmt/tag/manifests/one").await;
        assert_error(r, 404, "MANIFEST_UNKNOWN").await;
        assert_eq!(reg.get("/v2/mgmt/tag/manifests/two").await.status(), 200);
        assert_eq!(
            reg.get(&format!("/v2/mgmt/tag/manifests/{d}"))
                .await
                .status(),
            200
        );
        assert_eq!(tags(&reg, "mgmt/tag").await, ["two"]);
        // Deleting it again: 404.
        let r = reg.delete("/v2/mgmt/tag/manifests/one").await;
        assert_error(r, 404, "MANIFEST_UNKNOWN").await;
    })
    .await
}

#[tokio::test]
async fn end9_delete_manifest_by_digest_removes_its_tags() {
    bounded(async {
        let reg = start().await;
        let (m, d) = reg.push_image("mgmt/man", "a", 71).await;
        reg.push_manifest("mgmt/man", "b", OCI_MANIFEST, &m).await;
        let (_, other) = reg.push_image("mgmt/man", "keep", 72).await;
        let r = reg.delete(&format!("/v2/mgmt/man/manifests/{d}")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        for reference in ["a", "b", d.as_str()] {
            let r = reg
                .get(&format!("/v2/mgmt/man/manifests/{reference}"))
                .await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{reference}");
            let r = reg
                .head(&format!("/v2/mgmt/man/manifests/{reference}"))
                .await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "HEAD {reference}");
        }
        assert_eq!(tags(&reg, "mgmt/man").await, ["keep"]);
        assert_eq!(
            reg.get(&format!("/v2/mgmt/man/manifests/{other}"))
                .await
                .status(),
            200
        );
        let r = reg.delete(&format!("/v2/mgmt/man/manifests/{d}")).await;
        assert_error(r, 404, "MANIFEST_UNKNOWN").await;
    })
    .await
}

#[tokio::test]
async fn end9_delete_unknown_is_404() {
    bounded(async {
        let reg = start().await;
        reg.push_image("mgmt/unknown", "v1", 73).await;
        let r = reg.delete("/v2/mgmt/unknown/manifests/nope").await;
        assert_error(r, 404, "MANIFEST_UNKNOWN").await;
        let r = reg
            .delete(&format!("/v2/mgmt/unknown/manifests/{}", sha256(b"x")))
            .await;
        assert_error(r, 404, "MANIFEST_UNKNOWN").await;
        // Unknown repository.
        let r = reg
            .delete(&format!("/v2/mgmt/no-repo/manifests/{}", sha256(b"x")))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    })
    .await
}

#[tokio::test]
async fn end9_manifest_can_be_repushed_after_delete() {
    bounded(async {
        let reg = start().await;
        let (m, d) = reg.push_image("mgmt/repush", "v1", 74).await;
        assert_eq!(
            reg.delete(&format!("/v2/mgmt/repush/manifests/{d}"))
                .await
                .status(),
            202
        );
        reg.push_manifest("mgmt/repush", "v1", OCI_MANIFEST, &m)
            .await;
        let r = reg.get("/v2/mgmt/repush/manifests/v1").await;
        assert_eq!(r.status(), 200);
        assert_eq!(&r.bytes().await.unwrap()[..], &m[..]);
    })
    .await
}

#[tokio::test]
async fn end10_delete_blob() {
    bounded(async {
        let reg = start().await;
        let d = reg.push_blob("mgmt/blob", b"delete me").await;
        let keep = reg.push_blob("mgmt/blob", b"keep me").await;
        let r = reg.delete(&format!("/v2/mgmt/blob/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let r = reg.get(&format!("/v2/mgmt/blob/blobs/{d}")).await;
        assert_error(r, 404, "BLOB_UNKNOWN").await;
        assert_eq!(
            reg.head(&format!("/v2/mgmt/blob/blobs/{d}")).await.status(),
            404
        );
        assert_eq!(
            reg.get(&format!("/v2/mgmt/blob/blobs/{keep}"))
                .await
                .status(),
            200
        );
        let r = reg.delete(&format!("/v2/mgmt/blob/blobs/{d}")).await;
        assert_error(r, 404, "BLOB_UNKNOWN").await;
    })
    .await
}

#[tokio::test]
async fn end10_delete_blob_in_one_repo_keeps_other_repo() {
    bounded(async {
        let reg = start().await;
        let d = reg.push_blob("mgmt/r1", b"shared content").await;
        reg.push_blob("mgmt/r2", b"shared content").await;
        assert_eq!(
            reg.delete(&format!("/v2/mgmt/r1/blobs/{d}")).await.status(),
            202
        );
        assert_eq!(
            reg.get(&format!("/v2/mgmt/r1/blobs/{d}")).await.status(),
            404
        );
        let r = reg.get(&format!("/v2/mgmt/r2/blobs/{d}")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(&r.bytes().await.unwrap()[..], b"shared content");
    })
    .await
}

#[tokio::test]
async fn delete_disabled_is_405_unsupported() {
    bounded(async {
        let reg = start_with(Config {
            delete_enabled: false,
            ..Config::default()
        })
        .await;
        let (_, d) = reg.push_image("mgmt/nodelete", "v1", 75).await;
        let b = reg.push_blob("mgmt/nodelete", b"blob").await;
        for path in [
            "/v2/mgmt/nodelete/manifests/v1".to_string(),
            format!("/v2/mgmt/nodelete/manifests/{d}"),
            format!("/v2/mgmt/nodelete/blobs/{b}"),
        ] {
            let r = reg.delete(&path).await;
            assert_error(r, 405, "UNSUPPORTED").await;
        }
        // Nothing was deleted.
        assert_eq!(
            reg.get("/v2/mgmt/nodelete/manifests/v1").await.status(),
            200
        );
        assert_eq!(
            reg.get(&format!("/v2/mgmt/nodelete/blobs/{b}"))
                .await
                .status(),
            200
        );
        // Upload cancel is not a content deletion and keeps working.
        let upload = reg.start_upload("mgmt/nodelete").await;
        let r = reg.http.delete(&upload).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    })
    .await
}

fn assert_4xx(what: &str, status: StatusCode) {
    assert!(
        status.is_client_error(),
        "{what} -> {status} (expected 4xx)"
    );
}

#[tokio::test]
async fn invalid_names_are_4xx_never_5xx() {
    bounded(async {
        let reg = start().await;
        let d = sha256(b"x");
        let long = format!("{}/{}", "a".repeat(200), "b".repeat(200));
        let names = [
            "UPPER",
            "bad..name",
            "-lead",
            "trail-",
            "trail.",
            "a_-b",
            "a/",
            "a//b",
            "a/-b",
            "%00",
            "a%2Fb",
            "a b",
            "ümlaut",
            long.as_str(),
        ];
        for name in names {
            for (m, path) in [
                (Method::GET, format!("/v2/{name}/manifests/latest")),
                (Method::HEAD, format!("/v2/{name}/manifests/latest")),
                (Method::PUT, format!("/v2/{name}/manifests/latest")),
                (Method::DELETE, format!("/v2/{name}/manifests/{d}")),
                (Method::GET, format!("/v2/{name}/blobs/{d}")),
                (Method::DELETE, format!("/v2/{name}/blobs/{d}")),
                (Method::POST, format!("/v2/{name}/blobs/uploads/")),
                (Method::GET, format!("/v2/{name}/tags/list")),
                (Method::GET, format!("/v2/{name}/referrers/{d}")),
            ] {
                let r = reg
                    .req(m.clone(), &path)
                    .header("content-type", OCI_MANIFEST)
                    .body("{}")
                    .send()
                    .await
                    .unwrap();
                assert_4xx(&format!("{m} {path}"), r.status());
            }
        }
        // With a valid-looking path, the name itself is what's rejected.
        let r = reg.get("/v2/UPPER/tags/list").await;
        let s = r.status().as_u16();
        let codes = error_codes(r).await;
        if s == 400 {
            assert!(codes.iter().any(|c| c == "NAME_INVALID"), "{codes:?}");
        } else {
            assert_eq!(s, 404);
        }
    })
    .await
}

#[tokio::test]
async fn valid_unusual_names_work() {
    bounded(async {
        let reg = start().await;
        for name in [
            "a",
            "a__b",
            "a---b",
            "a.b/c_d/e-f",
            "0/1/2/3/4/5/6/7",
            "x.y.z",
        ] {
            let (m, _) = reg.push_image(name, "v1", 76).await;
            let r = reg.get(&format!("/v2/{name}/manifests/v1")).await;
            assert_eq!(r.status(), 200, "{name}");
            assert_eq!(&r.bytes().await.unwrap()[..], &m[..]);
        }
    })
    .await
}

#[tokio::test]
async fn invalid_references_and_digests_are_4xx() {
    bounded(async {
        let reg = start().await;
        reg.push_image("mgmt/ref", "v1", 77).await;
        let long_tag = "t".repeat(129);
        let refs = [
            "-tag",
            ".tag",
            long_tag.as_str(),
            "sha256:abc",
            "sha256:",
            "sha256:ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha512:abcd",
            "a:b:c",
            "%ff",
        ];
        for rf in refs {
            for m in [Method::GET, Method::HEAD, Method::DELETE] {
                let r = reg
                    .req(m.clone(), &format!("/v2/mgmt/ref/manifests/{rf}"))
                    .send()
                    .await
                    .unwrap();
                assert_4xx(&format!("{m} manifests/{rf}"), r.status());
            }
            let r = reg.put_manifest("mgmt/ref", rf, OCI_MANIFEST, b"{}").await;
            assert_4xx(&format!("PUT manifests/{rf}"), r.status());
        }
        let digests = [
            "latest",
            "sha256:abc",
            "sha256:",
            "sha256:ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "%ff",
        ];
        for d in digests {
            for m in [Method::GET, Method::HEAD, Method::DELETE] {
                let r = reg
                    .req(m.clone(), &format!("/v2/mgmt/ref/blobs/{d}"))
                    .send()
                    .await
                    .unwrap();
                assert_4xx(&format!("{m} blobs/{d}"), r.status());
            }
            let r = reg
                .req(
                    Method::POST,
                    &format!("/v2/mgmt/ref/blobs/uploads/?mount={d}&from=mgmt/ref"),
                )
                .send()
                .await
                .unwrap();
            // An invalid mount digest may just start a normal session.
            assert!(
                r.status() == 202 || r.status().is_client_error(),
                "mount {d} -> {}",
                r.status()
            );
        }
    })
    .await
}

#[tokio::test]
async fn garbage_paths_and_methods_are_4xx() {
    bounded(async {
        let reg = start().await;
        reg.push_image("mgmt/junk", "v1", 78).await;
        for (m, path) in [
            (Method::GET, "/v2/mgmt/junk"),
            (Method::GET, "/v2/mgmt/junk/"),
            (Method::GET, "/v2/mgmt/junk/manifests/"),
            (Method::GET, "/v2/mgmt/junk/blobs/"),
            (Method::GET, "/v2/mgmt/junk/unknown/thing"),
            (Method::PATCH, "/v2/mgmt/junk/manifests/v1"),
            (Method::POST, "/v2/mgmt/junk/manifests/v1"),
            (Method::PUT, "/v2/mgmt/junk/blobs/uploads/"),
            (Method::PATCH, "/v2/mgmt/junk/blobs/uploads/"),
            (Method::POST, "/v2/mgmt/junk/tags/list"),
            (Method::GET, "/v3/"),
            (
                Method::GET,
                "/v2/mgmt/junk/manifests/v1/../../../../etc/passwd",
            ),
            (Method::GET, "/v2/../../etc/passwd/manifests/v1"),
        ] {
            let r = reg.req(m.clone(), path).send().await.unwrap();
            assert_4xx(&format!("{m} {path}"), r.status());
        }
    })
    .await
}

#[tokio::test]
async fn repository_names_that_look_like_routes() {
    bounded(async {
        let reg = start().await;
        // All valid names per the grammar, each ending in a route keyword.
        let names = [
            "a/blobs/uploads",
            "b/manifests",
            "c/tags/list",
            "d/referrers",
            "e/blobs",
            "v2/v2",
            "f/tags",
        ];
        for (i, name) in names.iter().enumerate() {
            let (m, d) = reg.push_image(name, "v1", 80 + i as u64).await;
            let r = reg.get(&format!("/v2/{name}/manifests/v1")).await;
            assert_eq!(r.status(), 200, "{name}");
            assert_eq!(&r.bytes().await.unwrap()[..], &m[..], "{name}");
            let r = reg.get(&format!("/v2/{name}/tags/list")).await;
            assert_eq!(r.status(), 200, "{name}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["name"], *name);
            assert_eq!(v["tags"], serde_json::json!(["v1"]), "{name}");
            let r = reg.get(&format!("/v2/{name}/referrers/{d}")).await;
            assert_eq!(r.status(), 200, "{name}");
            let upload = reg.start_upload(name).await;
            let s = reg.http.get(&upload).send().await.unwrap();
            assert_eq!(s.status(), 204, "{name}: {upload}");
        }
        // The shorter prefixes are distinct (nonexistent) repositories.
        for name in ["a", "b", "c", "d", "e", "f"] {
            let r = reg.get(&format!("/v2/{name}/manifests/v1")).await;
            assert_eq!(r.status(), 404, "{name}");
        }
    })
    .await
}
