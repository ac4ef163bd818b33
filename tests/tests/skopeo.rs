//! A real client round trip: skopeo copies an OCI image layout into a registry
//! and back out; manifest and blobs must come back byte-identical. Runs against
//! the reference registry (in-process) and Debian's distribution 2.8.2.
//! Skipped without skopeo / docker-registry; fails instead with `OCIDIFF_REQUIRE_EXTERNAL=1`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ocidiff_e2e::{require_tool, run_bounded, start_distribution, DISTRIBUTION_BIN};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SKOPEO_TIMEOUT: Duration = Duration::from_secs(120);

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A layer that starts like a ustar header, followed by random bytes.
fn tarish_layer(seed: u64, len: usize) -> Vec<u8> {
    let mut v = pseudo_random(seed, len);
    let name = format!("file-{seed}.bin");
    v[..512].fill(0);
    v[..name.len()].copy_from_slice(name.as_bytes());
    v[257..262].copy_from_slice(b"ustar");
    v
}

struct Layout {
    manifest: Vec<u8>,
    blobs: Vec<Vec<u8>>, // config + layers
}

fn write_blob(dir: &Path, data: &[u8]) -> Value {
    let hex = sha256_hex(data);
    std::fs::write(dir.join("blobs/sha256").join(&hex), data).unwrap();
    json!({"digest": format!("sha256:{hex}"), "size": data.len()})
}

/// Build an OCI image layout in `dir` with one image tagged `tag`.
fn build_layout(dir: &Path, tag: &str) -> Layout {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["OCIDIFF=1"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created_by": "ocidiff e2e"}]
    }))
    .unwrap();
    let layers = [tarish_layer(1, 300_000), tarish_layer(2, 70_001)];
    let mut config_desc = write_blob(dir, &config);
    config_desc["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|l| {
            let mut d = write_blob(dir, l);
            d["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar");
            d
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": layer_descs,
        "annotations": {"org.example.e2e": "skopeo"}
    }))
    .unwrap();
    let mut mdesc = write_blob(dir, &manifest);
    mdesc["mediaType"] = json!(OCI_MANIFEST);
    mdesc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = json!({"schemaVersion": 2, "manifests": [mdesc]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let mut blobs = vec![config];
    blobs.extend(layers);
    Layout { manifest, blobs }
}

fn skopeo(args: &[&str]) {
    let mut cmd = Command::new("skopeo");
    cmd.arg("--insecure-policy").args(args);
    let out = run_bounded(&mut cmd, SKOPEO_TIMEOUT).expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    std::fs::read(dir.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("blob {digest} missing from pulled layout: {e}"))
}

/// Push `layout` to `host`, pull it back into a second layout, compare bytes.
fn roundtrip(host: &str, what: &str) {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let src_dir: PathBuf = src.path().join("layout");
    let dst_dir: PathBuf = dst.path().join("layout");
    let layout = build_layout(&src_dir, "v1");
    let remote = format!("docker://{host}/ocidiff/img:v1");
    // Without --preserve-digests skopeo gzips uncompressed layers on push
    // (and rewrites the manifest); the point here is byte-identity.
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src_dir.display()),
        &remote,
    ]);
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-oci-accept-uncompressed-layers",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:v1", dst_dir.display()),
    ]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(dst_dir.join("index.json")).unwrap()).unwrap();
    let desc = index["manifests"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "v1")
        })
        .unwrap_or_else(|| panic!("{what}: no v1 in pulled index.json: {index}"));
    let digest = desc["digest"].as_str().unwrap();
    assert_eq!(
        digest,
        format!("sha256:{}", sha256_hex(&layout.manifest)),
        "{what}: manifest digest changed in the round trip"
    );
    let pulled = read_blob(&dst_dir, digest);
    assert!(
        pulled == layout.manifest,
        "{what}: manifest bytes differ:\n{}\nvs\n{}",
        String::from_utf8_lossy(&pulled),
        String::from_utf8_lossy(&layout.manifest)
    );
    for blob in &layout.blobs {
        let d = format!("sha256:{}", sha256_hex(blob));
        assert!(read_blob(&dst_dir, &d) == *blob, "{what}: blob {d} differs");
    }
}

/// Same bytes straight from the registry API, independent of skopeo's pull side.
async fn check_manifest_over_http(base: &str) {
    let r = reqwest::Client::new()
        .get(format!("{base}/v2/ocidiff/img/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(ct.as_deref(), Some(OCI_MANIFEST));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_roundtrip_reference_registry() {
    if !require_tool("skopeo_roundtrip_reference_registry", "skopeo") {
        return;
    }
    let reg = reference_registry::spawn(reference_registry::Config::default())
        .await
        .expect("spawn reference registry");
    let base = reg.url().to_string().trim_end_matches('/').to_string();
    let host = base.trim_start_matches("http://").to_string();
    tokio::task::spawn_blocking(move || roundtrip(&host, "reference-registry"))
        .await
        .expect("round trip");
    check_manifest_over_http(&base).await;
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_roundtrip_distribution() {
    if !require_tool("skopeo_roundtrip_distribution", "skopeo")
        || !require_tool("skopeo_roundtrip_distribution", DISTRIBUTION_BIN)
    {
        return;
    }
    let dist = tokio::task::spawn_blocking(start_distribution)
        .await
        .unwrap()
        .expect("start distribution");
    let host = dist.host();
    tokio::task::spawn_blocking(move || roundtrip(&host, "distribution"))
        .await
        .expect("round trip");
    check_manifest_over_http(&dist.url()).await;
    drop(dist);
}
