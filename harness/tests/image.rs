//! The container image (`Dockerfile`): built with podman (offline: the prebuilt binaries on a
//! runtime base of this machine's libraries, `tests/images/build-ocidiff-image.sh`), its
//! `ocidiff conformance` against a registry on the host (distribution 2.8.2) gives the same
//! results as the binary, and its `reference-registry` serves a registry that passes.
//!
//! Needs podman (root) and docker-registry; skipped without them, failing instead under
//! `OCIDIFF_REQUIRE_EXTERNAL=1` (CI).

mod common;

use ocidiff::targets::{find_distribution_binary, launch, TargetSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/ocidiff:test";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn podman_works() -> bool {
    Command::new("podman")
        .args(["info", "--format", "{{.Host.OCIRuntime.Name}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Removes the test image (and a container of it) however the test ends.
struct Cleanup(Vec<String>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("podman").args(["rm", "-f", c]).output();
        }
        let _ = Command::new("podman").args(["rmi", "-f", IMAGE]).output();
    }
}

/// (workflow, check name, outcome) of every check of the non-oracle targets, sorted.
fn verdicts(results: &Path) -> Vec<String> {
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(results).unwrap()).unwrap();
    let mut v = Vec::new();
    for cell in r["results"].as_array().unwrap() {
        if cell["target"] == "reference" {
            continue;
        }
        for c in cell["checks"].as_array().unwrap() {
            v.push(format!(
                "{} {} {} {}",
                cell["target"], cell["workflow"], c["name"], c["outcome"]
            ));
        }
    }
    v.sort();
    v
}

fn conformance_with_binary(target: &str, out: &Path) -> i32 {
    let o = Command::new(env!("CARGO_BIN_EXE_ocidiff"))
        .args(["conformance", "--target", target, "--out"])
        .arg(out)
        .output()
        .unwrap();
    o.status.code().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_builds_and_runs_like_the_binary() {
    if !common::require_podman() {
        return;
    }
    if !podman_works() {
        common::skip_external("podman does not run containers here");
        return;
    }
    if find_distribution_binary().is_none() {
        common::skip_external("no docker-registry / registry binary on PATH");
        return;
    }
    let ocidiff = PathBuf::from(env!("CARGO_BIN_EXE_ocidiff"));
    let reference = ocidiff.with_file_name("reference-registry");
    assert!(
        reference.is_file(),
        "{} missing: `cargo build -p reference-registry` (cargo test --workspace builds it)",
        reference.display()
    );
    let mut cleanup = Cleanup(Vec::new());
    let t = Instant::now();
    let b = Command::new("bash")
        .arg(repo_root().join("tests/images/build-ocidiff-image.sh"))
        .arg(&ocidiff)
        .arg(&reference)
        .arg(IMAGE)
        .output()
        .unwrap();
    assert!(
        b.status.success(),
        "image build failed:\n{}{}",
        String::from_utf8_lossy(&b.stdout),
        String::from_utf8_lossy(&b.stderr)
    );
    eprintln!("image built in {:.1}s", t.elapsed().as_secs_f64());

    // The image's ocidiff against distribution on the host = the binary against it.
    let dist = launch("dist", &TargetSpec::Distribution { binary: None })
        .await
        .unwrap();
    let target = format!("dist={}", dist.base_url);
    let dir = tempfile::tempdir().unwrap();
    let (bin_out, img_out) = (dir.path().join("binary"), dir.path().join("image"));
    std::fs::create_dir_all(&img_out).unwrap();
    let bin_code = conformance_with_binary(&target, &bin_out);
    let o = Command::new("podman")
        .args(["run", "--rm", "--network", "host", "-v"])
        .arg(format!("{}:/out", img_out.display()))
        .args([IMAGE, "conformance", "--target", &target, "--out", "/out"])
        .output()
        .unwrap();
    let img_code = o.status.code().unwrap_or(-1);
    assert_eq!(img_code, bin_code, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(bin_code, 1, "distribution 2.8.2 fails checks");
    let (vb, vi) = (
        verdicts(&bin_out.join("results.json")),
        verdicts(&img_out.join("results.json")),
    );
    assert!(vb.len() > 100, "{}", vb.len());
    assert_eq!(vi, vb, "the image and the binary disagree");
    for f in ["index.html", "junit.xml"] {
        assert!(img_out.join(f).is_file(), "{f}");
    }
    dist.shutdown().await;

    // The image's reference registry, published on a host port, passes.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let name = format!("ocidiff-image-test-{port}");
    cleanup.0.push(name.clone());
    let o = Command::new("podman")
        .args(["run", "-d", "--name", &name, "-p"])
        .arg(format!("127.0.0.1:{port}:5000"))
        .args([
            "--entrypoint",
            "reference-registry",
            IMAGE,
            "--listen",
            "0.0.0.0:5000",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{url}/v2/")).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the image's reference-registry never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = dir.path().join("ref");
    assert_eq!(conformance_with_binary(&format!("imgref={url}"), &out), 0);
}
