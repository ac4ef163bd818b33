//! `ocidiff fuzz` against a container target started through testcontainers.
//!
//! Needs a Docker-compatible API: `DOCKER_HOST`, or podman's socket at
//! `/run/ocidiff-podman.sock` as started by `tests/images/build-local-images.sh` (which also
//! builds the default image `localhost/ocidiff-distribution:2.8.2` from Debian's docker-registry).
//! Skipped with a message when no socket answers `GET /_ping` (a stale socket file does not
//! count); fails instead with `OCIDIFF_REQUIRE_EXTERNAL=1`, as in CI. `OCIDIFF_CONTAINER_IMAGE`
//! picks another image (e.g. `registry:2` with Docker).

use ocidiff::drivers::fuzz::{run_fuzz, FuzzConfig};
use ocidiff::targets::{parse_target_arg, TargetSpec};
use ocidiff_e2e::skip_external;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The tests count containers: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const PODMAN_SOCKET: &str = "/run/ocidiff-podman.sock";
const DEFAULT_IMAGE: &str = "localhost/ocidiff-distribution:2.8.2";

/// The unix socket of a Docker API that answers `GET /_ping`, setting `DOCKER_HOST` when taken
/// from the defaults; otherwise why there is none. A socket file alone is not enough: a killed
/// `podman system service` leaves a stale one behind that refuses connections.
fn docker_socket() -> Result<String, String> {
    let candidates = match std::env::var("DOCKER_HOST") {
        Ok(host) => match host.strip_prefix("unix://") {
            Some(path) => vec![path.to_string()],
            None => return Err(format!("DOCKER_HOST={host} is not a unix:// socket")),
        },
        Err(_) => vec![
            PODMAN_SOCKET.to_string(),
            "/var/run/docker.sock".to_string(),
        ],
    };
    let mut reasons = Vec::new();
    for path in candidates {
        match ping(&path) {
            Ok(()) => {
                std::env::set_var("DOCKER_HOST", format!("unix://{path}"));
                return Ok(path);
            }
            Err(e) => reasons.push(format!("{path}: {e}")),
        }
    }
    Err(format!(
        "no Docker API answering (set DOCKER_HOST, or run tests/images/build-local-images.sh \
         for podman's socket at {PODMAN_SOCKET}): {}",
        reasons.join("; ")
    ))
}

/// `GET /_ping` on a Docker API unix socket, bounded; `Ok` when it answers 200.
fn ping(path: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    if !Path::new(path).exists() {
        return Err("no such socket".into());
    }
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("connect: {e} (stale socket, no server listening?)"))?;
    let timeout = Some(Duration::from_secs(5));
    s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
    s.set_write_timeout(timeout).map_err(|e| e.to_string())?;
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut head = Vec::new();
    // Bounded: the status line is in the first bytes; each read progresses or times out.
    let mut buf = [0u8; 256];
    while head.len() < 12 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let head = String::from_utf8_lossy(&head);
    match head.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!(
            "GET /_ping answered {:?}",
            head.lines().next().unwrap_or("")
        )),
    }
}

/// Containers (all states) created from `image`, through the Docker API (works with podman).
fn containers_of(socket: &str, image: &str) -> Vec<String> {
    let out = Command::new("curl")
        .args([
            "-fsS",
            "--max-time",
            "10",
            "--unix-socket",
            socket,
            "http://d/containers/json?all=true",
        ])
        .output()
        .expect("curl");
    assert!(out.status.success(), "listing containers failed: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("container list JSON");
    v.as_array()
        .map(|a| {
            a.iter()
                .filter(|c| {
                    c["Image"]
                        .as_str()
                        .is_some_and(|i| i == image || i.trim_start_matches("localhost/") == image)
                })
                .filter_map(|c| c["Id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn fuzz_against_a_container_target() {
    let socket = match docker_socket() {
        Ok(s) => s,
        Err(why) => return skip_external(&format!("fuzz_against_a_container_target: {why}")),
    };
    if Command::new("curl").arg("--version").output().is_err() {
        return skip_external("fuzz_against_a_container_target: curl missing");
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let image = std::env::var("OCIDIFF_CONTAINER_IMAGE").unwrap_or_else(|_| DEFAULT_IMAGE.into());
    let before = containers_of(&socket, &image);
    let out = tempfile::tempdir().unwrap();
    let (name, spec) = parse_target_arg(&format!("dist-container=container:{image}")).unwrap();
    assert_eq!(spec.kind(), "container");
    let cfg = FuzzConfig {
        seed: 1,
        duration: Duration::from_secs(25),
        cases: 15,
        shrink: false,
        ..FuzzConfig::new(
            vec![
                ("reference".into(), TargetSpec::Reference(Box::default())),
                (name, spec),
            ],
            out.path().to_path_buf(),
        )
    };
    let mut targets = cfg.targets.clone();
    ocidiff::targets::external::set_log_dir(&mut targets, &out.path().join("logs"));
    let cfg = FuzzConfig { targets, ..cfg };
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let summary = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), run_fuzz(cfg)).await })
        .expect("fuzz run exceeded 60 s")
        .expect("fuzz run failed (is the image built? tests/images/build-local-images.sh)");
    drop(rt);
    assert!(start.elapsed() < Duration::from_secs(60));
    assert!(summary.cases_run > 0 && summary.ops_run > 0, "{summary:?}");
    assert!(
        !summary.findings.is_empty(),
        "distribution differs from the reference in allowed ways at least"
    );
    assert!(out.path().join("findings.json").is_file());
    let log = out.path().join("logs").join("dist-container.log");
    assert!(log.is_file(), "container log not kept");
    let after = containers_of(&socket, &image);
    let leaked: Vec<&String> = after.iter().filter(|id| !before.contains(id)).collect();
    assert!(leaked.is_empty(), "containers left behind: {leaked:?}");
}

/// A launched container is removed when its target is dropped without shutdown (a failed run),
/// and when it never becomes ready.
#[test]
fn containers_are_removed_on_drop_and_on_failed_start() {
    let socket = match docker_socket() {
        Ok(s) => s,
        Err(why) => {
            return skip_external(&format!(
                "containers_are_removed_on_drop_and_on_failed_start: {why}"
            ))
        }
    };
    if Command::new("curl").arg("--version").output().is_err() {
        return skip_external("containers_are_removed_on_drop_and_on_failed_start: curl missing");
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let image = std::env::var("OCIDIFF_CONTAINER_IMAGE").unwrap_or_else(|_| DEFAULT_IMAGE.into());
    let before = containers_of(&socket, &image);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (name, spec) = parse_target_arg(&format!("dropped=container:{image}")).unwrap();
        let t = tokio::time::timeout(
            Duration::from_secs(60),
            ocidiff::targets::launch(&name, &spec),
        )
        .await
        .expect("bounded")
        .expect("container starts");
        assert_eq!(t.kind, "container");
        assert!(t.base_url.as_str().starts_with("http://127.0.0.1:"));
        assert!(containers_of(&socket, &image).len() > before.len());
        drop(t);

        // Nothing listens on the probed port: readiness fails, the container goes.
        let mut c = ocidiff::targets::container::ContainerSpec::parse(&image).unwrap();
        c.port = 5999;
        c.startup_timeout = Duration::from_secs(3);
        let spec = TargetSpec::External(Box::new(
            ocidiff::targets::external::ExternalSpec::Container(c),
        ));
        let err = ocidiff::targets::launch("never-ready", &spec)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("not ready"), "{err:#}");
    });
    drop(rt);
    let after = containers_of(&socket, &image);
    let leaked: Vec<&String> = after.iter().filter(|id| !before.contains(id)).collect();
    assert!(leaked.is_empty(), "containers left behind: {leaked:?}");
}
