//! Shared helpers for the end-to-end tests (free ports, starting Debian distribution, temp dirs).
//!
//! Everything here that starts something returns a guard whose `Drop` stops
//! it and removes its temporary files. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Where Debian's `docker-registry` package (distribution 2.8.2) installs its binary.
pub const DISTRIBUTION_BIN: &str = "/usr/bin/docker-registry";

/// Look an executable up on `PATH` (or take an absolute path as is).
pub fn find_executable(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|c| c.is_file())
}

/// The one skip policy for tests needing an external tool: prints `skip: <what>` and lets the
/// caller return, or, when `OCIDIFF_REQUIRE_EXTERNAL=1` (set by `.ci/run`, which installs every
/// tool), panics with `required external tool missing: <what>` so that CI cannot skip silently.
pub fn skip_external(what: &str) {
    if std::env::var("OCIDIFF_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
        panic!("required external tool missing: {what}");
    }
    eprintln!("skip: {what}");
}

/// `true` means "go ahead"; when `name` is missing, applies [`skip_external`] and returns `false`.
pub fn require_tool(test: &str, name: &str) -> bool {
    if find_executable(name).is_some() {
        return true;
    }
    skip_external(&format!(
        "{test}: `{name}` is not installed (Debian: apt-get install skopeo docker-registry)"
    ));
    false
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A minimal, bounded HTTP/1.0 GET; returns the status code.
pub fn http_get_status(addr: SocketAddr, path: &str, timeout: Duration) -> Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    // Bounded: at most 64 bytes, each read either progresses or errors out.
    while n < 12 {
        let k = s.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no HTTP status line in {head:?}"))?;
    Ok(code)
}

/// Run a command to completion with a time bound; kills it on timeout.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let desc = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {desc}"))?;
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => Ok(out?),
        Err(_) => {
            // Only the process we started, by its id.
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            bail!("{desc} did not finish within {timeout:?}")
        }
    }
}

/// A running Debian distribution registry; killed and its storage removed on drop.
pub struct Distribution {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Distribution {
    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`, for `docker://` references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The registry's log file (its access log too when started with one).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// The storage root directory.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `dir` (config + storage) is removed when the TempDir drops.
    }
}

/// Start `docker-registry serve CONFIG` (filesystem storage in a fresh temp
/// dir, loopback, delete enabled, log level warn) and wait until `GET /v2/`
/// answers 200. Tries a few ports in case one is taken between probe and bind.
pub fn start_distribution() -> Result<Distribution> {
    start_distribution_with(DISTRIBUTION_BIN, Duration::from_secs(20))
}

pub fn start_distribution_with(bin: &str, ready_timeout: Duration) -> Result<Distribution> {
    start(bin, ready_timeout, false)
}

/// As [`start_distribution`], with distribution's access log (one line per request, with its
/// status) in [`Distribution::log_path`].
pub fn start_distribution_logged() -> Result<Distribution> {
    start(DISTRIBUTION_BIN, Duration::from_secs(20), true)
}

fn start(bin: &str, ready_timeout: Duration, access_log: bool) -> Result<Distribution> {
    let bin = find_executable(bin).with_context(|| format!("{bin} not found"))?;
    let mut last_err = None;
    for _attempt in 0..3 {
        match try_start(&bin, ready_timeout, access_log) {
            Ok(d) => return Ok(d),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap())
}

fn try_start(bin: &Path, ready_timeout: Duration, access_log: bool) -> Result<Distribution> {
    let dir = tempfile::Builder::new()
        .prefix("ocidiff-distribution-")
        .tempdir()?;
    let storage = dir.path().join("storage");
    std::fs::create_dir_all(&storage)?;
    let port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let config = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: {}\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {addr}\n",
        !access_log,
        storage.display()
    );
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config)?;
    let log = std::fs::File::create(dir.path().join("registry.log"))?;
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Keep the environment from overriding our config.
        .env_remove("REGISTRY_HTTP_ADDR")
        .env_remove("REGISTRY_STORAGE")
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    let mut d = Distribution { child, addr, dir };
    let deadline = Instant::now() + ready_timeout;
    loop {
        if let Some(status) = d.child.try_wait()? {
            let log =
                std::fs::read_to_string(d.dir.path().join("registry.log")).unwrap_or_default();
            bail!("docker-registry exited early ({status}): {log}");
        }
        if let Ok(200) = http_get_status(addr, "/v2/", Duration::from_secs(2)) {
            return Ok(d);
        }
        if Instant::now() >= deadline {
            bail!("docker-registry on {addr} not ready within {ready_timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One run of the official conformance suite (`oci-conformance`): every test's status and
/// failure messages, read from its terminal output.
pub struct SuiteRun {
    /// `(name, status, message)` in output order; names without the `OCI Conformance Test/`
    /// root; the message joins the `- ...` lines under a failed test.
    pub tests: Vec<(String, String, String)>,
    pub output: String,
}

impl SuiteRun {
    /// Failed leaves: a failed group is the sum of its failed children.
    pub fn failed_leaves(&self) -> Vec<(&str, &str)> {
        let failed: Vec<&(String, String, String)> =
            self.tests.iter().filter(|(_, s, _)| s == "FAIL").collect();
        failed
            .iter()
            .filter(|(n, _, _)| {
                !failed
                    .iter()
                    .any(|(m, _, _)| m.len() > n.len() && m.starts_with(&format!("{n}/")))
            })
            .map(|(n, _, m)| (n.as_str(), m.as_str()))
            .collect()
    }

    /// Tests with this status.
    pub fn count(&self, status: &str) -> usize {
        self.tests.iter().filter(|(_, s, _)| s == status).count()
    }
}

/// Runs the official suite `suite` against `registry` (host:port, plain HTTP) at spec version
/// `version` (`OCI_VERSION`), with `extra` environment (its `OCI_API_*` / `OCI_DATA_*`
/// switches), bounded to 10 minutes.
pub fn run_official_suite(
    suite: &Path,
    registry: &str,
    version: &str,
    extra: &[(&str, &str)],
) -> Result<SuiteRun> {
    let results = tempfile::tempdir()?;
    let mut cmd = Command::new(suite);
    cmd.current_dir(results.path())
        .env("OCI_REGISTRY", registry)
        .env("OCI_TLS", "disabled")
        .env("OCI_VERSION", version)
        .env("OCI_LOG", "error")
        .env("OCI_RESULTS_DIR", results.path().join("results"));
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(600))?;
    let output =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let mut tests: Vec<(String, String, String)> = Vec::new();
    for line in output.lines() {
        let l = line.trim();
        if let Some(msg) = l.strip_prefix("- ") {
            if let Some((_, s, m)) = tests.last_mut() {
                if s == "FAIL" {
                    if !m.is_empty() {
                        m.push_str(" ; ");
                    }
                    m.push_str(msg);
                }
            }
            continue;
        }
        let Some((name, status)) = l.rsplit_once(": ") else {
            continue;
        };
        if let Some(rest) = name.strip_prefix("OCI Conformance Test/") {
            tests.push((rest.to_string(), status.trim().to_string(), String::new()));
        }
    }
    if !results.path().join("results/results.yaml").is_file() {
        bail!("the suite wrote no results.yaml:\n{output}");
    }
    Ok(SuiteRun { tests, output })
}
