//! Helpers shared by the engine proof tests.
#![allow(dead_code)]

use ocidiff::drivers::fuzz::FuzzConfig;
use ocidiff::shrink::Finding;
use ocidiff::targets::TargetSpec;
use reference_registry::{Config, Faults};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use std::time::Instant;

/// The correct reference registry.
pub fn reference() -> TargetSpec {
    TargetSpec::Reference(Box::default())
}

/// A reference registry with `faults` injected.
pub fn faulty(faults: Faults) -> TargetSpec {
    TargetSpec::Reference(Box::new(Config {
        faults,
        ..Config::default()
    }))
}

/// A bounded, quiet fuzz configuration writing to `out`, judged by main (`1.1+dev`): the
/// faults and findings these tests look for include main's MUSTs (the version-dependent
/// verdicts are tested with an explicit version in `spec_versions.rs` and `spec_rules.rs`).
pub fn fuzz_config(
    targets: Vec<(String, TargetSpec)>,
    seed: u64,
    cases: u64,
    duration: Duration,
    shrink: bool,
    out: &Path,
) -> FuzzConfig {
    FuzzConfig {
        seed,
        duration,
        cases,
        shrink,
        spec_version: ocidiff::compare::SpecVersion::V1_1Dev,
        ..FuzzConfig::new(targets, out.to_path_buf())
    }
}

/// One line per finding, for assertion messages.
pub fn describe(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            let d = &f.divergence;
            format!(
                "  {} {} {} on {} {} {} (case {}, {} ops): {}",
                f.id,
                d.class,
                d.rule,
                d.target,
                d.endpoint,
                d.field,
                f.first_seen_case,
                f.ops.ops.len(),
                d.summary
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The cargo target directory (for reports written by tests).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).join("target")
        }
    }
}

/// The one skip policy for tests needing an external tool (docker-registry, openssl, chromium):
/// prints `skip: <what>` and lets the caller return (or carry on without that part), or, when
/// `OCIDIFF_REQUIRE_EXTERNAL=1` (set by `.ci/run`, which installs every tool), panics with
/// `required external tool missing: <what>` so that CI cannot skip silently.
pub fn skip_external(what: &str) {
    if std::env::var("OCIDIFF_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
        panic!("required external tool missing: {what}");
    }
    eprintln!("skip: {what}");
}

/// Debian's chromium (or `OCIDIFF_CHROMIUM`), when installed.
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OCIDIFF_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs chromium headless with a hard timeout; returns stdout.
pub fn run_chromium(bin: &Path, profile: &Path, extra: &[&str], url: &str) -> String {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=5000",
        "--run-all-compositor-stages-before-draw",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let out_path = profile.join("stdout.txt");
    let file = std::fs::File::create(&out_path).unwrap();
    cmd.stdout(file);
    let mut child = cmd.spawn().expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait().unwrap() {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 120 s");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    std::fs::read_to_string(out_path).unwrap_or_default()
}

/// `true` when `podman` is on PATH; otherwise applies [`skip_external`] and returns `false`.
pub fn require_podman() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("podman").is_file()));
    if !found {
        skip_external("podman is not installed (Debian: apt-get install podman runc)");
    }
    found
}

/// Pushes the content of the scenario file `scenario` into `target` (`NAME=URL`) with
/// `ocidiff run` (binary `bin`); the repository the run made (`<namespace>/r0`).
pub fn seed_with_ocidiff_run(bin: &str, target: &str, scenario: &Path) -> String {
    let o = std::process::Command::new(bin)
        .arg("run")
        .arg(scenario)
        .args(["--target", target])
        .output()
        .unwrap();
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let ns = stdout
        .split("(namespace ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("the namespace of the seeding run")
        .to_string();
    format!("{ns}/r0")
}

/// Three blobs pushed in chunks of a registry's advertised `OCI-Chunk-Min-Length` minus one,
/// at it and plus one, the last two read back (tests of `method = "chunked_at_min"`).
pub const AT_MIN: &str = include_str!("at_min.toml");
