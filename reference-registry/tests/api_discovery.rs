//! Content discovery: end-8a/8b (tags list, pagination), end-12a/12b
//! (referrers, artifactType filter) and `_catalog`.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn tag_all(reg: &Reg, repo: &str, tags: &[&str]) {
    let (m, _) = reg.push_image(repo, tags[0], 50).await;
    for t in &tags[1..] {
        reg.push_manifest(repo, t, OCI_MANIFEST, &m).await;
    }
}

async fn json_of(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Extract the `<...>` target of a `Link: <...>; rel="next"` header.
fn next_link(h: &reqwest::header::HeaderMap) -> Option<String> {
    let v = header(h, "link")?;
    assert!(v.contains("rel=\"next\""), "Link without rel=\"next\": {v}");
    let start = v.find('<').expect("Link has <") + 1;
    let end = v.find('>').expect("Link has >");
    Some(v[start..end].to_string())
}

#[tokio::test]
async fn end8a_tags_are_sorted() {
    bounded(async {
        let reg = start().await;
        let tags = [
            "zeta", "Alpha", "beta", "1.0", "_under", "alpha", "Beta-2", "a.b",
        ];
        tag_all(&reg, "disc/tags", &tags).await;
        let r = reg.get("/v2/disc/tags/tags/list").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(content_type(r.headers()), "application/json");
        assert!(r.headers().get("link").is_none());
        let v = json_of(r).await;
        assert_eq!(v["name"], "disc/tags");
        let got: Vec<String> = serde_json::from_value(v["tags"].clone()).unwrap();
        let mut want: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
        want.sort(); // Go's sort.Strings: byte order
        assert_eq!(got, want);
    })
    .await
}

#[tokio::test]
async fn end8b_pagination_with_n_last_and_link() {
    bounded(async {
        let reg = start().await;
        let tags = ["a", "b", "c", "d", "e", "f", "g"];
        tag_all(&reg, "disc/page", &tags).await;

        // n=3 -> exactly 3 and a Link to the rest.
        let r = reg.get("/v2/disc/page/tags/list?n=3").await;
        assert_eq!(r.status(), StatusCode::OK);
        let link = next_link(r.headers()).expect("Link header when more tags exist");
        let v = json_of(r).await;
        assert_eq!(v["tags"], json!(["a", "b", "c"]));

        // Follow Link headers to the end; bounded.
        let mut collected = vec!["a", "b", "c"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        let mut next = Some(reg.resolve(&link));
        for _ in 0..10 {
            let Some(url) = next.take() else { break };
            let r = reg.http.get(&url).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{url}");
            next = next_link(r.headers()).map(|l| reg.resolve(&l));
            let v = json_of(r).await;
            let page: Vec<String> = serde_json::from_value(v["tags"].clone()).unwrap();
            assert!(page.len() <= 3, "{url}: {page:?}");
            collected.extend(page);
        }
        assert!(next.is_none(), "pagination did not terminate");
        assert_eq!(collected, tags);

        // last= without n.
        let v = json_of(reg.get("/v2/disc/page/tags/list?last=d").await).await;
        assert_eq!(v["tags"], json!(["e", "f", "g"]));
        // last= with n.
        let v = json_of(reg.get("/v2/disc/page/tags/list?n=2&last=b").await).await;
        assert_eq!(v["tags"], json!(["c", "d"]));
        // last= of a tag that doesn't exist still sorts lexically.
        let v = json_of(reg.get("/v2/disc/page/tags/list?last=cc").await).await;
        assert_eq!(v["tags"], json!(["d", "e", "f", "g"]));
        // last= at the end.
        let r = reg.get("/v2/disc/page/tags/list?n=5&last=g").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("link").is_none());
        let v = json_of(r).await;
        assert_eq!(v["tags"], json!([]), "{v}");
        // n larger than the list: everything, no Link.
        let r = reg.get("/v2/disc/page/tags/list?n=100").await;
        assert!(r.headers().get("link").is_none());
        let v = json_of(r).await;
        assert_eq!(v["tags"], json!(tags));
        // n equal to the list size: everything; a Link (if any) must lead to an empty page.
        let r = reg.get("/v2/disc/page/tags/list?n=7").await;
        let v = json_of(r).await;
        assert_eq!(v["tags"], json!(tags));
    })
    .await
}

#[tokio::test]
async fn end8b_n_zero_is_empty_without_link() {
    bounded(async {
        let reg = start().await;
        tag_all(&reg, "disc/zero", &["a", "b"]).await;
        for q in ["n=0", "n=0&last=a"] {
            let r = reg.get(&format!("/v2/disc/zero/tags/list?{q}")).await;
            assert_eq!(r.status(), StatusCode::OK, "{q}");
            assert!(r.headers().get("link").is_none(), "{q}: Link with n=0");
            let v = json_of(r).await;
            assert_eq!(v["tags"], json!([]), "{q}: empty list");
        }
    })
    .await
}

#[tokio::test]
async fn end8b_bad_n_is_4xx() {
    bounded(async {
        let reg = start().await;
        tag_all(&reg, "disc/badn", &["a"]).await;
        for q in ["n=-1", "n=abc", "n=1.5"] {
            let r = reg.get(&format!("/v2/disc/badn/tags/list?{q}")).await;
            let s = r.status().as_u16();
            assert!((400..500).contains(&s), "{q}: {s}");
        }
    })
    .await
}

#[tokio::test]
async fn end8a_unknown_repository_is_404_name_unknown() {
    bounded(async {
        let reg = start().await;
        let r = reg.get("/v2/disc/nothing/tags/list").await;
        assert_error(r, 404, "NAME_UNKNOWN").await;
    })
    .await
}

/// Pushes a subject image and four referrers; returns (subject digest, the referrers' (digest, bytes)).
async fn referrers_fixture(reg: &Reg, repo: &str) -> (String, Vec<(String, Vec<u8>)>) {
    let (subject, sd) = reg.push_image(repo, "base", 60).await;
    let empty = b"{}".to_vec();
    let payload = b"signature".to_vec();
    let sbom_config = b"{\"sbom\":true}".to_vec();
    reg.push_blob(repo, &empty).await;
    reg.push_blob(repo, &payload).await;
    reg.push_blob(repo, &sbom_config).await;
    // A: explicit artifactType + annotations.
    let a = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sig",
        "config": descriptor(OCI_EMPTY, &empty),
        "layers": [descriptor("application/octet-stream", &payload)],
        "subject": descriptor(OCI_MANIFEST, &subject),
        "annotations": {"org.example.k": "v", "org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    }))
    .unwrap();
    // B: no artifactType -> config mediaType.
    let b = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.example.sbom.config", &sbom_config),
        "layers": [],
        "subject": descriptor(OCI_MANIFEST, &subject)
    }))
    .unwrap();
    // C: an index with a subject and no artifactType -> artifactType omitted.
    let c = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, &subject)],
        "subject": descriptor(OCI_MANIFEST, &subject),
        "annotations": {"idx": "yes"}
    }))
    .unwrap();
    // D: an index with an artifactType.
    let d = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "artifactType": "application/vnd.example.sig",
        "manifests": [],
        "subject": descriptor(OCI_MANIFEST, &subject)
    }))
    .unwrap();
    let mut out = vec![];
    for (body, mt) in [
        (&a, OCI_MANIFEST),
        (&b, OCI_MANIFEST),
        (&c, OCI_INDEX),
        (&d, OCI_INDEX),
    ] {
        let r = reg.put_manifest(repo, &sha256(body), mt, body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header_req(r.headers(), "oci-subject"), sd);
        out.push((sha256(body), body.clone()));
    }
    // Unrelated manifest without subject.
    reg.push_image(repo, "other", 61).await;
    (sd, out)
}

fn find<'a>(manifests: &'a [Value], digest: &str) -> &'a Value {
    manifests
        .iter()
        .find(|m| m["digest"] == digest)
        .unwrap_or_else(|| panic!("{digest} missing from {manifests:?}"))
}

#[tokio::test]
async fn end12a_referrers_descriptors() {
    bounded(async {
        let reg = start().await;
        let (sd, refs) = referrers_fixture(&reg, "disc/ref").await;
        let r = reg.get(&format!("/v2/disc/ref/referrers/{sd}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(content_type(r.headers()), OCI_INDEX);
        assert!(r.headers().get("oci-filters-applied").is_none());
        let v = json_of(r).await;
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], OCI_INDEX);
        let ms = v["manifests"].as_array().unwrap().clone();
        assert_eq!(ms.len(), 4, "{v}");
        for (d, body) in &refs {
            let m = find(&ms, d);
            assert_eq!(m["size"], body.len(), "{d}");
        }
        let a = find(&ms, &refs[0].0);
        assert_eq!(a["mediaType"], OCI_MANIFEST);
        assert_eq!(a["artifactType"], "application/vnd.example.sig");
        assert_eq!(
            a["annotations"],
            json!({"org.example.k": "v", "org.opencontainers.image.created": "2024-01-01T00:00:00Z"})
        );
        let b = find(&ms, &refs[1].0);
        assert_eq!(b["artifactType"], "application/vnd.example.sbom.config");
        let c = find(&ms, &refs[2].0);
        assert_eq!(c["mediaType"], OCI_INDEX);
        assert!(c.get("artifactType").is_none(), "index without artifactType: {c}");
        assert_eq!(c["annotations"], json!({"idx": "yes"}));
        let d = find(&ms, &refs[3].0);
        assert_eq!(d["artifactType"], "application/vnd.example.sig");
    })
    .await
}

#[tokio::test]
async fn end12b_referrers_artifact_type_filter() {
    bounded(async {
        let reg = start().await;
        let (sd, refs) = referrers_fixture(&reg, "disc/filter").await;
        let r = reg
            .get(&format!(
                "/v2/disc/filter/referrers/{sd}?artifactType=application/vnd.example.sig"
            ))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header_req(r.headers(), "oci-filters-applied"),
            "artifactType"
        );
        let v = json_of(r).await;
        let mut got: Vec<String> = v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().to_string())
            .collect();
        got.sort();
        let mut want = vec![refs[0].0.clone(), refs[3].0.clone()];
        want.sort();
        assert_eq!(got, want);

        // Filter on the config-derived artifactType.
        let v = json_of(
            reg.get(&format!(
                "/v2/disc/filter/referrers/{sd}?artifactType=application/vnd.example.sbom.config"
            ))
            .await,
        )
        .await;
        assert_eq!(v["manifests"].as_array().unwrap().len(), 1);

        // Filter matching nothing: empty list, still 200.
        let r = reg
            .get(&format!(
                "/v2/disc/filter/referrers/{sd}?artifactType=application/none"
            ))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header_req(r.headers(), "oci-filters-applied"),
            "artifactType"
        );
        let v = json_of(r).await;
        assert_eq!(v["manifests"], json!([]));
    })
    .await
}

#[tokio::test]
async fn end12a_unknown_subject_gives_empty_index() {
    bounded(async {
        let reg = start().await;
        reg.push_image("disc/empty", "v1", 62).await;
        let unknown = sha256(b"no referrers");
        let r = reg
            .get(&format!("/v2/disc/empty/referrers/{unknown}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(content_type(r.headers()), OCI_INDEX);
        let v = json_of(r).await;
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["manifests"], json!([]));
        // Referrers in another repository don't leak.
        let (sd, _) = referrers_fixture(&reg, "disc/ref-other").await;
        let v = json_of(reg.get(&format!("/v2/disc/empty/referrers/{sd}")).await).await;
        assert_eq!(v["manifests"], json!([]));
    })
    .await
}

#[tokio::test]
async fn end12a_invalid_digest_is_400() {
    bounded(async {
        let reg = start().await;
        reg.push_image("disc/refbad", "v1", 63).await;
        for bad in [
            "sha256:abc",
            "notadigest",
            "sha256:",
            "sha256:ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
        ] {
            let r = reg.get(&format!("/v2/disc/refbad/referrers/{bad}")).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    })
    .await
}

#[tokio::test]
async fn end12a_deleted_referrer_disappears() {
    bounded(async {
        let reg = start().await;
        let (sd, refs) = referrers_fixture(&reg, "disc/refdel").await;
        let r = reg
            .delete(&format!("/v2/disc/refdel/manifests/{}", refs[0].0))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let v = json_of(reg.get(&format!("/v2/disc/refdel/referrers/{sd}")).await).await;
        let ms = v["manifests"].as_array().unwrap();
        assert_eq!(ms.len(), 3);
        assert!(ms.iter().all(|m| m["digest"] != refs[0].0.as_str()));
    })
    .await
}

#[tokio::test]
async fn catalog_lists_repositories_sorted_with_pagination() {
    bounded(async {
        let reg = start().await;
        for repo in ["cat/zz", "cat/aa", "cat/mm/deep", "other"] {
            reg.push_image(repo, "v1", 64).await;
        }
        let r = reg.get("/v2/_catalog").await;
        assert_eq!(r.status(), StatusCode::OK);
        let v = json_of(r).await;
        let repos: Vec<String> = serde_json::from_value(v["repositories"].clone()).unwrap();
        assert_eq!(repos, ["cat/aa", "cat/mm/deep", "cat/zz", "other"]);
        let r = reg.get("/v2/_catalog?n=2").await;
        assert_eq!(r.status(), StatusCode::OK);
        let link = next_link(r.headers());
        let v = json_of(r).await;
        assert_eq!(v["repositories"], json!(["cat/aa", "cat/mm/deep"]));
        if let Some(link) = link {
            let r = reg.http.get(reg.resolve(&link)).send().await.unwrap();
            let v = json_of(r).await;
            assert_eq!(v["repositories"], json!(["cat/zz", "other"]));
        }
    })
    .await
}

#[tokio::test]
async fn end12a_empty_artifact_type_falls_back() {
    bounded(async {
        let reg = start().await;
        let (subject, sd) = reg.push_image("disc/emptyat", "base", 65).await;
        let cfg = b"{\"k\":1}".to_vec();
        reg.push_blob("disc/emptyat", &cfg).await;
        // Manifest with artifactType "" -> config mediaType.
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "",
            "config": descriptor("application/vnd.example.cfg", &cfg),
            "layers": [],
            "subject": descriptor(OCI_MANIFEST, &subject)
        }))
        .unwrap();
        // Index with artifactType "" -> artifactType omitted.
        let i = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": "",
            "manifests": [],
            "subject": descriptor(OCI_MANIFEST, &subject)
        }))
        .unwrap();
        reg.push_manifest("disc/emptyat", &sha256(&m), OCI_MANIFEST, &m)
            .await;
        reg.push_manifest("disc/emptyat", &sha256(&i), OCI_INDEX, &i)
            .await;
        let v = json_of(reg.get(&format!("/v2/disc/emptyat/referrers/{sd}")).await).await;
        let ms = v["manifests"].as_array().unwrap().clone();
        assert_eq!(ms.len(), 2, "{v}");
        assert_eq!(
            find(&ms, &sha256(&m))["artifactType"],
            "application/vnd.example.cfg"
        );
        let idx = find(&ms, &sha256(&i));
        assert!(
            idx.get("artifactType").is_none(),
            "index with empty artifactType: MUST be omitted: {idx}"
        );
    })
    .await
}
