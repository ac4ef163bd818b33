//! Unit tests of the store: purging, idle sessions, disk persistence, and the pipelined
//! append (hashing, rollback) on both backends.

use super::upload::BATCH_BYTES;
use super::*;
use futures::StreamExt;

#[test]
fn purge_drops_repositories_sessions_and_unreferenced_content() {
    let store = Store::open(Box::new(MemoryBackend::new().unwrap())).unwrap();
    let d = |s: &str| Digest::parse(&format!("sha256:{}", s.repeat(64))).unwrap();
    let (a, b) = (d("a"), d("b"));
    for (digest, repo) in [(&a, "ns1/r1"), (&b, "ns2/r1")] {
        store
            .backend
            .commit_blob(digest, Spooled::Memory(b"x".to_vec()))
            .unwrap();
        store.link_blob(repo, digest).unwrap();
    }
    let open = store.start_upload("ns1/r2", Algorithm::Sha256).unwrap();
    // The first round keeps content committed since the previous one (none before).
    let p = store.purge("ns1/").unwrap();
    assert_eq!((p.repos, p.uploads, p.blobs), (1, 1, 0));
    assert!(store.upload(&open).is_none());
    assert!(store.read().repos.contains_key("ns2/r1"));
    // The next round drops what no repository refers to any more.
    let p = store.purge("ns1/").unwrap();
    assert_eq!((p.repos, p.blobs), (0, 1));
    assert!(store.blob(a.as_str()).is_none());
    assert!(store.blob(b.as_str()).is_some());
}

#[test]
fn idle_sessions_are_swept() {
    let store = Store::open(Box::new(MemoryBackend::new().unwrap())).unwrap();
    let id = store.start_upload("r", Algorithm::Sha256).unwrap();
    let kept = store.start_upload("r", Algorithm::Sha256).unwrap();
    assert!(store.upload(&id).is_some());
    let later = Instant::now() + UPLOAD_IDLE_TIMEOUT + Duration::from_secs(120);
    {
        let mut s = store.uploads.lock().unwrap();
        // `kept` was used recently (relative to `later`).
        s.map.get_mut(&kept).unwrap().1 = later;
        s.last_sweep = None;
        s.sweep(later);
    }
    assert!(store.upload(&id).is_none());
    assert!(store.upload(&kept).is_some());
}

#[test]
fn disk_metadata_survives_reopen_and_temp_files_go() {
    let dir = tempfile::tempdir().unwrap();
    let d = Algorithm::Sha256.digest(b"x");
    {
        let store = Store::open(Box::new(DiskBackend::open(dir.path()).unwrap())).unwrap();
        let mut up = store.temp_upload("a/b", Algorithm::Sha256).unwrap();
        up.spool.write(b"x").unwrap();
        store.commit_upload(&mut up, &d).unwrap();
        store
            .update("a/b", false, |r| {
                r.tags.insert("t".into(), "nothing".into());
                ((), true)
            })
            .unwrap();
    }
    std::fs::write(
        dir.path().join("repositories/a/b/_meta.json.tmp-x"),
        b"junk",
    )
    .unwrap();
    let store = Store::open(Box::new(DiskBackend::open(dir.path()).unwrap())).unwrap();
    let meta = store.read();
    let repo = &meta.repos["a/b"];
    assert!(repo.blobs.contains(d.as_str()));
    // A tag pointing at an unknown manifest is dropped on load.
    assert!(repo.tags.is_empty());
    assert_eq!(store.blob(d.as_str()).unwrap().len(), 1);
    assert!(!dir
        .path()
        .join("repositories/a/b/_meta.json.tmp-x")
        .exists());
}

fn frames(data: &[u8], frame: usize) -> Vec<Result<Bytes, io::Error>> {
    data.chunks(frame)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect()
}

fn file_len(up: &Upload) -> u64 {
    up.spooled().len() as u64
}

/// A store of each kind: memory (uploads spooled in memory) and disk (temp files).
fn both_stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    vec![
        (
            Store::open(Box::new(MemoryBackend::new().unwrap())).unwrap(),
            None,
        ),
        (
            Store::open(Box::new(DiskBackend::open(dir.path()).unwrap())).unwrap(),
            Some(dir),
        ),
    ]
}

/// Bodies of many batches go through the hashing thread; small ones are
/// hashed inline. Either way the digest and file match the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_append_hashes_and_writes_everything() {
    let data: Vec<u8> = (0..(5 * BATCH_BYTES + 12345))
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let stores = both_stores();
    for ((store, _dir), alg) in stores
        .iter()
        .flat_map(|s| [Algorithm::Sha256, Algorithm::Sha512].map(|a| (s, a)))
    {
        let mut up = store.temp_upload("r", alg).unwrap();
        // A small chunk, then a large one in uneven frames.
        let small = axum::body::Body::from(data[..100].to_vec());
        assert_eq!(up.append(small, Some(100)).await.unwrap(), 100);
        let rest = &data[100..];
        let body = axum::body::Body::from_stream(futures::stream::iter(frames(rest, 300_001)));
        let n = up.append(body, Some(rest.len() as u64)).await.unwrap();
        assert_eq!(n, rest.len() as u64);
        assert_eq!(up.size(), data.len() as u64);
        assert_eq!(file_len(&up), data.len() as u64);
        assert_eq!(up.spooled(), data);
        assert_eq!(up.digest(alg).unwrap(), alg.digest(&data));
        // The other algorithm re-reads the file.
        let other = match alg {
            Algorithm::Sha256 => Algorithm::Sha512,
            Algorithm::Sha512 => Algorithm::Sha256,
        };
        assert_eq!(up.digest(other).unwrap(), other.digest(&data));
    }
}

/// A chunk longer or shorter than announced, a body error, or a request
/// dropped half-way leaves the upload exactly as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_or_dropped_append_rolls_back() {
    for (store, _dir) in both_stores() {
        rolls_back_on(&store).await;
    }
}

async fn rolls_back_on(store: &Store) {
    let head = b"0123456789".to_vec();
    let big: Vec<u8> = (0..(3 * BATCH_BYTES + 7)).map(|i| i as u8).collect();
    let mut up = store.temp_upload("r", Algorithm::Sha256).unwrap();
    up.append(axum::body::Body::from(head.clone()), None)
        .await
        .unwrap();
    let check = |up: &Upload| {
        assert_eq!(up.size(), head.len() as u64);
        assert_eq!(file_len(up), head.len() as u64);
        assert_eq!(
            up.digest(Algorithm::Sha256).unwrap(),
            Algorithm::Sha256.digest(&head)
        );
    };
    // Too long (detected while streaming) and too short (at the end).
    for exp in [big.len() as u64 - 1, big.len() as u64 + 1] {
        let body = axum::body::Body::from_stream(futures::stream::iter(frames(&big, 500_000)));
        assert!(matches!(
            up.append(body, Some(exp)).await,
            Err(AppendError::Length { .. })
        ));
        check(&up);
    }
    // A body error after several batches.
    let mut fr = frames(&big, 500_000);
    fr.push(Err(io::Error::other("reset")));
    let body = axum::body::Body::from_stream(futures::stream::iter(fr));
    assert!(matches!(
        up.append(body, None).await,
        Err(AppendError::Body)
    ));
    check(&up);
    // Dropped half-way: the body stalls after several batches.
    let stalled = futures::stream::iter(frames(&big, 500_000))
        .chain(futures::stream::pending::<Result<Bytes, io::Error>>());
    let body = axum::body::Body::from_stream(stalled);
    let res = tokio::time::timeout(Duration::from_millis(300), up.append(body, None)).await;
    assert!(res.is_err());
    check(&up);
    // And it still works afterwards.
    up.append(axum::body::Body::from(big.clone()), None)
        .await
        .unwrap();
    let mut all = head.clone();
    all.extend_from_slice(&big);
    assert_eq!(
        up.digest(Algorithm::Sha256).unwrap(),
        Algorithm::Sha256.digest(&all)
    );
    assert_eq!(up.spooled(), all);
}
