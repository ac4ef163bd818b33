//! Disk storage survives restarts: the real binary (killed and restarted on the
//! same directory) and the in-process `Storage::Dir` backend.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use reference_registry::{spawn, Config, Storage};
use reqwest::StatusCode;

/// A running `reference-registry` process; killed (and reaped) on drop.
struct ProcessGuard {
    child: Child,
    base: String,
    /// Further stdout lines after `listening on ...`.
    lines: mpsc::Receiver<String>,
}

impl ProcessGuard {
    fn start(dir: &Path) -> ProcessGuard {
        let dir = dir.to_str().expect("UTF-8 temp dir");
        ProcessGuard::start_args(&["--storage", dir])
    }

    /// `reference-registry --listen 127.0.0.1:0 ARGS...`, waiting for its address.
    fn start_args(args: &[&str]) -> ProcessGuard {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reference-registry"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start reference-registry binary");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // The reader thread ends when the child's stdout closes (on kill).
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut guard = ProcessGuard {
            child,
            base: String::new(),
            lines: rx,
        };
        match guard.lines.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                let url = line
                    .strip_prefix("listening on ")
                    .unwrap_or_else(|| panic!("first stdout line is {line:?}"));
                guard.base = url.trim().trim_end_matches('/').to_string();
            }
            Err(_) => {
                let status = guard.child.try_wait();
                panic!("no `listening on` line within 20 s (child: {status:?})");
            }
        }
        assert!(
            guard.base.starts_with("http://127.0.0.1:"),
            "{}",
            guard.base
        );
        guard
    }

    fn kill(mut self) {
        self.stop();
    }

    /// Stops the process and returns any stdout lines after the first.
    fn stop_and_collect_stdout(mut self) -> Vec<String> {
        self.stop();
        let mut out = vec![];
        // Bounded: the reader thread ends at EOF, which follows the kill.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            out.push(line);
            if out.len() > 1000 {
                break;
            }
        }
        out
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Pushed {
    blob: Vec<u8>,
    blob_digest: String,
    manifest: Vec<u8>,
    manifest_digest: String,
}

/// Push through any registry at `base` (free functions: no `Reg` needed).
async fn push_content(http: &reqwest::Client, base: &str) -> Pushed {
    async fn blob(http: &reqwest::Client, base: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let r = http
            .post(format!("{base}/v2/persist/img/blobs/uploads/"))
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let loc = location(&r);
        let loc = if loc.starts_with('/') {
            format!("{base}{loc}")
        } else {
            loc
        };
        let r = http
            .put(with_query(&loc, &format!("digest={d}")))
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        d
    }
    let config = b"{\"persist\":true}".to_vec();
    let layer = bytes(900, 100_000);
    blob(http, base, &config).await;
    let blob_digest = blob(http, base, &layer).await;
    let manifest = image_manifest(&config, &[&layer], None, None);
    for tag in ["v1", "doomed"] {
        let r = http
            .put(format!("{base}/v2/persist/img/manifests/{tag}"))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // A deletion must persist too.
    let r = http
        .delete(format!("{base}/v2/persist/img/manifests/doomed"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    Pushed {
        blob: layer,
        blob_digest,
        manifest_digest: sha256(&manifest),
        manifest,
    }
}

async fn verify_content(http: &reqwest::Client, base: &str, p: &Pushed) {
    for reference in ["v1", p.manifest_digest.as_str()] {
        let r = http
            .get(format!("{base}/v2/persist/img/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "manifest {reference} after restart"
        );
        assert_eq!(content_type(r.headers()), OCI_MANIFEST);
        assert_eq!(
            header_req(r.headers(), "docker-content-digest"),
            p.manifest_digest
        );
        assert_eq!(&r.bytes().await.unwrap()[..], &p.manifest[..]);
    }
    let r = http
        .get(format!("{base}/v2/persist/img/blobs/{}", p.blob_digest))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "blob after restart");
    assert!(
        r.bytes().await.unwrap()[..] == p.blob[..],
        "blob bytes after restart"
    );
    let r = http
        .get(format!("{base}/v2/persist/img/manifests/doomed"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "deleted tag resurrected");
    let v: serde_json::Value = http
        .get(format!("{base}/v2/persist/img/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tags"], serde_json::json!(["v1"]));
}

#[tokio::test]
async fn binary_restart_on_same_directory_keeps_content() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let http = client();
        let first = ProcessGuard::start(dir.path());
        let pushed = push_content(&http, &first.base).await;
        verify_content(&http, &first.base, &pushed).await;
        first.kill();

        let second = ProcessGuard::start(dir.path());
        verify_content(&http, &second.base, &pushed).await;
        // Still writable after restart.
        let r = http
            .put(format!("{}/v2/persist/img/manifests/v2", second.base))
            .header("content-type", OCI_MANIFEST)
            .body(pushed.manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        drop(second);
    })
    .await
}

#[tokio::test]
async fn in_process_dir_storage_survives_restart() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            storage: Storage::Dir(dir.path().to_path_buf()),
            ..Config::default()
        };
        let http = client();
        let first = spawn(config.clone()).await.unwrap();
        let base = first.url().to_string().trim_end_matches('/').to_string();
        let pushed = push_content(&http, &base).await;
        first.shutdown().await;

        let second = spawn(config).await.unwrap();
        let base = second.url().to_string().trim_end_matches('/').to_string();
        verify_content(&http, &base, &pushed).await;
        second.shutdown().await;
    })
    .await
}

#[tokio::test]
async fn memory_storage_is_not_shared_between_instances() {
    bounded(async {
        let http = client();
        let first = spawn(Config::default()).await.unwrap();
        let base = first.url().to_string().trim_end_matches('/').to_string();
        let pushed = push_content(&http, &base).await;
        let second = spawn(Config::default()).await.unwrap();
        let base2 = second.url().to_string().trim_end_matches('/').to_string();
        assert_ne!(base, base2);
        let r = http
            .get(format!(
                "{base2}/v2/persist/img/blobs/{}",
                pushed.blob_digest
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    })
    .await
}

// ---------------------------------------------------------------- CLI flags

#[tokio::test]
async fn cli_memory_storage_and_single_stdout_line() {
    bounded(async {
        let p = ProcessGuard::start_args(&["--storage", "memory"]);
        let http = client();
        let pushed = push_content(&http, &p.base).await;
        verify_content(&http, &p.base, &pushed).await;
        let extra = p.stop_and_collect_stdout();
        assert!(
            extra.is_empty(),
            "stdout must hold exactly one line; extra: {extra:?}"
        );
    })
    .await
}

#[tokio::test]
async fn cli_no_delete_flag_gives_405_unsupported() {
    bounded(async {
        let p = ProcessGuard::start_args(&["--no-delete"]);
        let http = client();
        let r = http
            .post(format!(
                "{}/v2/cli/nodel/blobs/uploads/?digest={}",
                p.base,
                sha256(b"x")
            ))
            .body(b"x".to_vec())
            .send()
            .await
            .unwrap();
        assert!(r.status() == 201 || r.status() == 202, "{}", r.status());
        for path in [
            format!("/v2/cli/nodel/blobs/{}", sha256(b"x")),
            format!("/v2/cli/nodel/manifests/{}", sha256(b"y")),
            "/v2/cli/nodel/manifests/latest".to_string(),
        ] {
            let r = http
                .delete(format!("{}{path}", p.base))
                .send()
                .await
                .unwrap();
            assert_error(r, 405, "UNSUPPORTED").await;
        }
    })
    .await
}

#[tokio::test]
async fn cli_basic_auth_flag() {
    bounded(async {
        let p = ProcessGuard::start_args(&["--auth", "basic:carol:pa55"]);
        let http = client();
        let r = http.get(format!("{}/v2/", p.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let ch = header_req(r.headers(), "www-authenticate").to_ascii_lowercase();
        assert!(ch.starts_with("basic"), "{ch}");
        let r = http
            .get(format!("{}/v2/", p.base))
            .basic_auth("carol", Some("pa55"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    })
    .await
}

#[tokio::test]
async fn cli_token_auth_flag() {
    bounded(async {
        let p = ProcessGuard::start_args(&["--auth", "token:dave:pw"]);
        let http = client();
        let r = http
            .get(format!("{}/v2/cli/tok/tags/list", p.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let ch = header_req(r.headers(), "www-authenticate").to_string();
        assert!(ch.to_ascii_lowercase().starts_with("bearer"), "{ch}");
        let realm = ch
            .split("realm=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("realm")
            .to_string();
        let token_req = || {
            http.get(&realm).query(&[
                ("service", "reference-registry"),
                ("scope", "repository:cli/tok:pull"),
            ])
        };
        let r = token_req().send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "token without credentials"
        );
        let r = token_req()
            .basic_auth("dave", Some("pw"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: serde_json::Value = r.json().await.unwrap();
        let token = v["token"].as_str().expect("token").to_string();
        let r = http
            .get(format!("{}/v2/cli/tok/tags/list", p.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "authorized; unknown repo"
        );
    })
    .await
}

#[test]
fn cli_rejects_bad_arguments() {
    for args in [
        &["--auth", "bogus"][..],
        &["--auth", "basic:nopass"][..],
        &["--listen", "not-an-address"][..],
        &["--frobnicate"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reference-registry"))
            .args(if args[0] == "--listen" {
                vec![]
            } else {
                vec!["--listen", "127.0.0.1:0"]
            })
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Bounded wait for the exit.
        let mut status = None;
        for _ in 0..200 {
            if let Some(s) = child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?}: still running after 10 s");
        };
        assert!(!status.success(), "{args:?} exited successfully");
        let mut out = String::new();
        use std::io::Read;
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(!out.contains("listening on"), "{args:?} printed {out:?}");
    }
}
