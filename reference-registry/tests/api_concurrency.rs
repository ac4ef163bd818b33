//! Concurrency: parallel uploads, racing tag moves and reads that must never
//! observe torn content. Every task count and wait is bounded.

mod common;

use std::sync::Arc;

use common::*;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_chunked_uploads_into_one_repo() {
    bounded(async {
        let reg = Arc::new(start().await);
        let mut tasks = vec![];
        for i in 0..16u64 {
            let reg = reg.clone();
            tasks.push(tokio::spawn(async move {
                let data = bytes(100 + i, 256 * 1024 + i as usize);
                let digest = sha256(&data);
                let mut upload = reg.start_upload("conc/up").await;
                let mut offset = 0;
                for chunk in data.chunks(64 * 1024) {
                    let end = offset + chunk.len() - 1;
                    let r = reg
                        .http
                        .patch(&upload)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header("content-range", format!("{offset}-{end}"))
                        .body(chunk.to_vec())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(
                        r.status(),
                        StatusCode::ACCEPTED,
                        "upload {i} chunk {offset}"
                    );
                    assert_eq!(header_req(r.headers(), "range"), format!("0-{end}"));
                    upload = reg.resolve(&location(&r));
                    offset = end + 1;
                }
                let r = reg
                    .http
                    .put(with_query(&upload, &format!("digest={digest}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED, "upload {i} close");
                (digest, data)
            }));
        }
        let mut results = vec![];
        for t in tasks {
            results.push(t.await.expect("upload task panicked"));
        }
        for (digest, data) in results {
            let r = reg.get(&format!("/v2/conc/up/blobs/{digest}")).await;
            assert_eq!(r.status(), StatusCode::OK);
            assert!(
                r.bytes().await.unwrap()[..] == data[..],
                "{digest} corrupted"
            );
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_of_the_same_blob() {
    bounded(async {
        let reg = Arc::new(start().await);
        let data = Arc::new(bytes(200, 300_000));
        let mut tasks = vec![];
        for _ in 0..16 {
            let reg = reg.clone();
            let data = data.clone();
            tasks.push(tokio::spawn(async move {
                reg.push_blob("conc/same", &data).await
            }));
        }
        let mut digests = vec![];
        for t in tasks {
            digests.push(t.await.expect("task"));
        }
        digests.dedup();
        assert_eq!(digests.len(), 1);
        let r = reg
            .get(&format!("/v2/conc/same/blobs/{}", digests[0]))
            .await;
        assert_eq!(content_length(r.headers()), data.len() as u64);
        assert!(r.bytes().await.unwrap()[..] == data[..]);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_tag_moves_end_consistent() {
    bounded(async {
        let reg = Arc::new(start().await);
        // Five distinct manifests.
        let mut manifests = vec![];
        for i in 0..5u64 {
            let (m, d) = reg
                .push_image("conc/tags", &format!("seed{i}"), 300 + i)
                .await;
            manifests.push((m, d));
        }
        let manifests = Arc::new(manifests);
        let mut tasks = vec![];
        for i in 0..50usize {
            let reg = reg.clone();
            let manifests = manifests.clone();
            tasks.push(tokio::spawn(async move {
                let (m, _) = &manifests[i % 5];
                // Everyone fights over "hot"; plus ten tags with two writers each.
                reg.push_manifest("conc/tags", "hot", OCI_MANIFEST, m).await;
                reg.push_manifest("conc/tags", &format!("t{}", i % 10), OCI_MANIFEST, m)
                    .await;
            }));
        }
        for t in tasks {
            t.await.expect("tag task");
        }
        let v: Value = reg
            .get("/v2/conc/tags/tags/list")
            .await
            .json()
            .await
            .unwrap();
        let tags: Vec<String> = serde_json::from_value(v["tags"].clone()).unwrap();
        let mut want: Vec<String> = (0..10)
            .map(|i| format!("t{i}"))
            .chain((0..5).map(|i| format!("seed{i}")))
            .chain(["hot".to_string()])
            .collect();
        want.sort();
        assert_eq!(tags, want, "tag list after concurrent moves");
        // Each tag points to one of the manifests its writers pushed, fully.
        for tag in &tags {
            let r = reg.get(&format!("/v2/conc/tags/manifests/{tag}")).await;
            assert_eq!(r.status(), StatusCode::OK);
            let hd = header_req(r.headers(), "docker-content-digest").to_string();
            let body = r.bytes().await.unwrap();
            assert_eq!(sha256(&body), hd, "{tag}: header digest vs body");
            let allowed: Vec<&String> = if let Some(n) = tag.strip_prefix('t') {
                let n: usize = n.parse().unwrap();
                vec![&manifests[n % 5].1]
            } else if let Some(n) = tag.strip_prefix("seed") {
                vec![&manifests[n.parse::<usize>().unwrap()].1]
            } else {
                manifests.iter().map(|(_, d)| d).collect()
            };
            assert!(allowed.contains(&&hd), "{tag} -> unexpected {hd}");
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_are_never_torn() {
    bounded(async {
        let reg = Arc::new(start().await);
        let big = bytes(400, 2 * 1024 * 1024);
        let big_digest = reg.push_blob("conc/read", &big).await;
        let (m1, d1) = reg.push_image("conc/read", "flip", 401).await;
        let (m2, d2) = reg.push_image("conc/read", "flop", 402).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

        // Writer: flips the tag between the two manifests (bounded count).
        let writer = {
            let reg = reg.clone();
            let (m1, m2) = (m1.clone(), m2.clone());
            let stop = stop.clone();
            tokio::spawn(async move {
                for i in 0..200 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let m = if i % 2 == 0 { &m1 } else { &m2 };
                    reg.push_manifest("conc/read", "moving", OCI_MANIFEST, m)
                        .await;
                }
            })
        };
        // Blob rewriter: re-uploads the same big blob while it is being read.
        let rewriter = {
            let reg = reg.clone();
            let big = big.clone();
            tokio::spawn(async move {
                for _ in 0..4 {
                    reg.push_blob("conc/read", &big).await;
                }
            })
        };
        let mut readers = vec![];
        for i in 0..16 {
            let reg = reg.clone();
            let big_digest = big_digest.clone();
            let (d1, d2) = (d1.clone(), d2.clone());
            readers.push(tokio::spawn(async move {
                for _ in 0..10 {
                    if i % 2 == 0 {
                        let r = reg.get(&format!("/v2/conc/read/blobs/{big_digest}")).await;
                        assert_eq!(r.status(), StatusCode::OK);
                        let body = r.bytes().await.unwrap();
                        assert_eq!(sha256(&body), big_digest, "torn blob read");
                    } else {
                        let r = reg.get("/v2/conc/read/manifests/moving").await;
                        if r.status() == StatusCode::NOT_FOUND {
                            continue; // not pushed yet
                        }
                        assert_eq!(r.status(), StatusCode::OK);
                        let hd = header_req(r.headers(), "docker-content-digest").to_string();
                        let body = r.bytes().await.unwrap();
                        let bd = sha256(&body);
                        assert_eq!(bd, hd, "manifest body vs Docker-Content-Digest");
                        assert!(bd == d1 || bd == d2, "torn manifest {bd}");
                    }
                }
            }));
        }
        for r in readers {
            r.await.expect("reader");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.await.expect("writer");
        rewriter.await.expect("rewriter");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_to_one_session_never_corrupt() {
    bounded(async {
        let reg = Arc::new(start().await);
        let upload = reg.start_upload("conc/session").await;
        let data = bytes(500, 8 * 1000);
        // Eight clients race to send chunk i at its offset; exactly the in-order
        // prefix can be accepted, the rest must get 416 (never 5xx).
        let mut tasks = vec![];
        for i in 0..8usize {
            let reg = reg.clone();
            let upload = upload.clone();
            let chunk = data[i * 1000..(i + 1) * 1000].to_vec();
            tasks.push(tokio::spawn(async move {
                let r = reg
                    .http
                    .patch(&upload)
                    .header("content-range", format!("{}-{}", i * 1000, i * 1000 + 999))
                    .body(chunk)
                    .send()
                    .await
                    .unwrap();
                r.status().as_u16()
            }));
        }
        for t in tasks {
            let s = t.await.unwrap();
            assert!(s == 202 || s == 416, "racing PATCH -> {s}");
        }
        let r = reg.http.get(&upload).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let range = header_req(r.headers(), "range").to_string();
        let end: usize = range
            .strip_prefix("0-")
            .and_then(|e| e.parse().ok())
            .unwrap_or_else(|| panic!("Range {range}"));
        assert_eq!(
            (end + 1) % 1000,
            0,
            "accepted bytes are whole chunks: {range}"
        );
        let prefix = &data[..=end];
        let r = reg
            .http
            .put(with_query(&upload, &format!("digest={}", sha256(prefix))))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "stored prefix is the in-order prefix"
        );
    })
    .await
}
