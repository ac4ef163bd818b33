//! Targets: parse `--target` specs, launch (embedded reference, embedded container-registry,
//! distribution process, URL) and tear down; per-target name rules and credentials.
//!
//! Every launched target is a [`LaunchedTarget`] whose private guard stops the server (task or
//! child process) and removes its temporary storage on `Drop`; [`LaunchedTarget::shutdown`] does
//! the same gracefully. Credentials are taken out of URLs at parse time and never printed: the
//! `Debug` impls and every error message go through [`redact`].

pub mod common;
pub mod config;
pub mod container;
pub mod credentials;
pub mod external;
pub mod presets;

use crate::targets::common::free_loopback_port;
use crate::vocab::redact::redact;
use anyhow::{anyhow, bail, Context, Result};
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// How long a launched registry may take to answer `GET /v2/`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful shutdown may take before the server is stopped hard.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Request body limit of the embedded container-registry (its own binary uses the same).
const CONTAINER_REGISTRY_BODY_LIMIT: usize = 1024 * 1024 * 1024;
/// Longest accepted target name.
pub const MAX_NAME_LEN: usize = 40;
/// Binary names searched on `PATH` for the distribution target, in order.
pub const DISTRIBUTION_BINARIES: [&str; 2] = ["docker-registry", "registry"];

/// What a target is and how to bring it up.
#[derive(Clone)]
pub enum TargetSpec {
    /// The embedded reference registry (in-process, ephemeral loopback port).
    Reference(Box<reference_registry::Config>),
    /// The crates.io `container-registry` crate, embedded in-process.
    ContainerRegistry,
    /// CNCF distribution (`docker-registry` or `registry`), started as a child process.
    Distribution { binary: Option<PathBuf> },
    /// An already running registry.
    Url {
        url: Url,
        username: Option<String>,
        password: Option<String>,
    },
    /// Remote registries with options, processes and containers (see `external`, `presets`).
    External(Box<crate::targets::external::ExternalSpec>),
}

impl TargetSpec {
    /// The kind, as used in reports and `default_targets` names.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetSpec::Reference(_) => "reference",
            TargetSpec::ContainerRegistry => "container-registry",
            TargetSpec::Distribution { .. } => "distribution",
            TargetSpec::Url { .. } => "url",
            TargetSpec::External(e) => e.kind(),
        }
    }

    /// A one-line human description without credentials.
    pub fn describe(&self) -> String {
        match self {
            TargetSpec::Reference(_) => "embedded reference registry".to_string(),
            TargetSpec::ContainerRegistry => "embedded container-registry 0.3".to_string(),
            TargetSpec::Distribution { binary: Some(b) } => {
                format!("distribution ({})", b.display())
            }
            TargetSpec::Distribution { binary: None } => "distribution (from PATH)".to_string(),
            TargetSpec::Url { url, username, .. } => {
                let auth = if username.is_some() {
                    " (basic auth)"
                } else {
                    ""
                };
                format!("{}{auth}", redact(url.as_str()))
            }
            TargetSpec::External(e) => e.describe(),
        }
    }
}

impl fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Reference(c) => f
                .debug_struct("Reference")
                .field("storage", &c.storage)
                .field("auth", &auth_kind(&c.auth))
                .field("delete_enabled", &c.delete_enabled)
                .field("max_manifest_bytes", &c.max_manifest_bytes)
                .field("faults", &c.faults)
                .finish(),
            TargetSpec::ContainerRegistry => f.write_str("ContainerRegistry"),
            TargetSpec::Distribution { binary } => f
                .debug_struct("Distribution")
                .field("binary", binary)
                .finish(),
            TargetSpec::Url {
                url,
                username,
                password,
            } => f
                .debug_struct("Url")
                .field("url", &redact(url.as_str()))
                .field("username", &username.as_ref().map(|_| "***"))
                .field("password", &password.as_ref().map(|_| "***"))
                .finish(),
            TargetSpec::External(e) => e.fmt(f),
        }
    }
}

/// The auth mode's name, without its credentials.
fn auth_kind(auth: &reference_registry::AuthMode) -> &'static str {
    match auth {
        reference_registry::AuthMode::None => "none",
        reference_registry::AuthMode::Basic { .. } => "basic",
        reference_registry::AuthMode::Token { .. } => "token",
    }
}

/// The credentials a client needs for a reference registry with this auth mode.
fn reference_credentials(auth: &reference_registry::AuthMode) -> (Option<String>, Option<String>) {
    match auth {
        reference_registry::AuthMode::None => (None, None),
        reference_registry::AuthMode::Basic { username, password } => {
            (Some(username.clone()), Some(password.clone()))
        }
        reference_registry::AuthMode::Token { username, password } => {
            (username.clone(), password.clone())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Checks a target name: 1..=40 characters of `[A-Za-z0-9._-]`, starting with a letter or digit.
/// Names appear in file names, reports and shell scripts, hence the narrow alphabet.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("target name is empty (expected NAME=..., e.g. `mine=http://127.0.0.1:5000`)");
    }
    if name.len() > MAX_NAME_LEN {
        bail!("target name `{name}` is longer than {MAX_NAME_LEN} characters");
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let all_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !first_ok || !all_ok {
        bail!(
            "invalid target name `{}`: use letters, digits, `.`, `_` and `-`, starting with a letter or digit",
            redact(name)
        );
    }
    Ok(())
}

/// Parses one `--target` argument.
///
/// Accepted forms: `reference`, `container-registry`, `distribution`, `distribution:/path/bin`
/// (named after their kind), and `NAME=KIND` / `NAME=distribution:/path/bin` /
/// `NAME=http(s)://[user:pass@]host[:port]`. Credentials in the URL move (percent-decoded) into
/// `username` / `password`; the URL keeps none.
pub fn parse_target_arg(arg: &str) -> Result<(String, TargetSpec)> {
    let arg = arg.trim();
    if arg.is_empty() {
        bail!("empty --target (expected reference, container-registry, distribution or NAME=URL)");
    }
    let (name, value) = match arg.split_once('=') {
        Some((name, value)) => {
            let name = name.trim();
            if name.contains("://") {
                bail!(
                    "--target `{}`: a URL target is written NAME=URL, e.g. `mine=http://127.0.0.1:5000`",
                    redact(arg)
                );
            }
            validate_name(name)?;
            (Some(name.to_string()), value.trim())
        }
        None => (None, arg),
    };
    if value.is_empty() {
        bail!(
            "--target `{}`: nothing after `=` (expected a kind or a URL)",
            redact(arg)
        );
    }
    if value.contains("://") {
        let Some(name) = name else {
            bail!(
                "--target `{}`: a URL target needs a name: NAME=URL, e.g. `mine={}`",
                redact(arg),
                redact(value)
            );
        };
        let (url, username, password) = parse_registry_url(value)?;
        return Ok((
            name,
            TargetSpec::Url {
                url,
                username,
                password,
            },
        ));
    }
    let spec = parse_kind(value).with_context(|| format!("--target `{}`", redact(arg)))?;
    let name = name.unwrap_or_else(|| {
        crate::targets::presets::default_name(value)
            .unwrap_or(spec.kind())
            .to_string()
    });
    Ok((name, spec))
}

fn parse_kind(value: &str) -> Result<TargetSpec> {
    match value {
        "reference" | "ref" => Ok(TargetSpec::Reference(Box::default())),
        "container-registry" | "container_registry" => Ok(TargetSpec::ContainerRegistry),
        "distribution" => Ok(TargetSpec::Distribution { binary: None }),
        other => {
            if let Some(path) = other.strip_prefix("distribution:") {
                if path.is_empty() {
                    bail!("`distribution:` needs a binary path after the colon");
                }
                return Ok(TargetSpec::Distribution {
                    binary: Some(PathBuf::from(path)),
                });
            }
            if let Some(spec) = crate::targets::presets::parse_kind(other)? {
                return Ok(spec);
            }
            bail!(
                "unknown target kind `{}` (expected reference, container-registry, distribution, \
                 distribution:/path/to/binary, container:IMAGE[:TAG], preset:PRESET, or \
                 NAME=http://host:port)",
                redact(other)
            )
        }
    }
}

/// Parses a registry base URL: http(s) with a host, no query or fragment, path `/` (a trailing
/// `/v2` or `/v2/` is accepted and dropped). Returns the URL without credentials plus the
/// percent-decoded username and password.
pub fn parse_registry_url(value: &str) -> Result<(Url, Option<String>, Option<String>)> {
    let mut url =
        Url::parse(value).map_err(|e| anyhow!("invalid target URL `{}`: {e}", redact(value)))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!(
            "target URL `{}`: scheme must be http or https, not `{}`",
            redact(value),
            url.scheme()
        );
    }
    if url.host_str().unwrap_or("").is_empty() {
        bail!("target URL `{}` has no host", redact(value));
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!(
            "target URL `{}`: must not have a query or fragment",
            redact(value)
        );
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/v2").unwrap_or(path);
    if !path.is_empty() {
        bail!(
            "target URL `{}`: registries live at the root (`/v2/`); a path prefix `{path}` is not supported",
            redact(value)
        );
    }
    url.set_path("/");
    let raw_user = url.username().to_string();
    let raw_pass = url.password().map(str::to_string);
    let username = if raw_user.is_empty() && raw_pass.is_none() {
        None
    } else {
        Some(percent_decode(&raw_user)?)
    };
    let password = raw_pass.as_deref().map(percent_decode).transpose()?;
    if username.is_some() || password.is_some() {
        url.set_username("")
            .map_err(|_| anyhow!("cannot strip credentials from `{}`", redact(value)))?;
        url.set_password(None)
            .map_err(|_| anyhow!("cannot strip credentials from `{}`", redact(value)))?;
    }
    Ok((url, username, password))
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => bail!("bad percent-encoding in URL credentials"),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| anyhow!("URL credentials are not valid UTF-8"))
}

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

/// Searches `PATH` for `docker-registry`, then `registry`.
pub fn find_distribution_binary() -> Option<PathBuf> {
    DISTRIBUTION_BINARIES
        .iter()
        .find_map(|bin| find_on_path(bin))
}

/// The first executable file named `program` in a `PATH` directory.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// The targets used when none is given: the reference (the oracle, first), container-registry,
/// and distribution when its binary is on `PATH`. The second list says what was skipped and why.
pub fn default_targets() -> (Vec<(String, TargetSpec)>, Vec<String>) {
    let mut targets = vec![
        (
            "reference".to_string(),
            TargetSpec::Reference(Box::default()),
        ),
        (
            "container-registry".to_string(),
            TargetSpec::ContainerRegistry,
        ),
    ];
    let mut skipped = Vec::new();
    match find_distribution_binary() {
        Some(bin) => targets.push((
            "distribution".to_string(),
            TargetSpec::Distribution { binary: Some(bin) },
        )),
        None => skipped.push(format!(
            "distribution: no {} binary on PATH",
            DISTRIBUTION_BINARIES.join(" or ")
        )),
    }
    // Today's registries (distribution 3, olareg, go-containerregistry) when their programs
    // are on PATH (tests/tools/install-go-tools.sh).
    for preset in crate::targets::presets::PRESETS {
        if preset.program.is_none() {
            continue;
        }
        match crate::targets::presets::program_on_path(preset) {
            Ok(program) => match crate::targets::presets::preset_spec(
                preset.name,
                crate::targets::presets::PresetParams {
                    program: Some(program),
                    ..Default::default()
                },
            ) {
                Ok(spec) => targets.push((preset.name.to_string(), spec)),
                Err(e) => skipped.push(format!("{}: {e:#}", preset.name)),
            },
            Err(_) => skipped.push(format!(
                "{}: no {} on PATH (bash tests/tools/install-go-tools.sh)",
                preset.name,
                preset.program.unwrap_or(preset.name)
            )),
        }
    }
    (targets, skipped)
}

// ---------------------------------------------------------------------------------------------
// Launching
// ---------------------------------------------------------------------------------------------

/// A running target. Dropping it stops what `launch` started and removes its temporary files.
pub struct LaunchedTarget {
    pub name: String,
    pub kind: &'static str,
    /// Base URL without credentials, path `/`.
    pub base_url: Url,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The server's log file, for processes.
    pub log_path: Option<PathBuf>,
    guard: Guard,
}

impl fmt::Debug for LaunchedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchedTarget")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &redact(self.base_url.as_str()))
            .field("username", &self.username.as_ref().map(|_| "***"))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("log_path", &self.log_path)
            .finish_non_exhaustive()
    }
}

impl LaunchedTarget {
    /// What the executor needs to talk to this target.
    pub fn exec_target(&self) -> crate::execute::ExecTarget {
        crate::execute::ExecTarget {
            name: self.name.clone(),
            base_url: self.base_url.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            options: match &self.guard {
                Guard::External(_, options) => options.clone(),
                _ => Default::default(),
            },
        }
    }

    /// Forgets what case namespace `ns` left on a target this process owns (the embedded
    /// reference: repositories, sessions and content); other targets keep it. Returns whether
    /// anything could be cleaned.
    pub fn cleanup(&self, ns: &str) -> bool {
        match &self.guard {
            Guard::Reference(running) => {
                if let Err(e) = running.purge(&format!("{ns}/")) {
                    tracing::warn!(target = %self.name, "cleaning up {ns}: {e}");
                }
                true
            }
            _ => false,
        }
    }

    /// Stops the target gracefully (bounded) and removes its temporary files.
    pub async fn shutdown(self) {
        match self.guard {
            Guard::None => {}
            Guard::Reference(running) => running.shutdown().await,
            Guard::ContainerRegistry(server) => server.shutdown().await,
            Guard::Distribution(process) => {
                // Killing is immediate; reaping may block briefly, so keep it off the runtime.
                let _ = tokio::task::spawn_blocking(move || drop(process)).await;
            }
            Guard::External(guard, _) => guard.shutdown().await,
        }
    }
}

enum Guard {
    None,
    Reference(reference_registry::RunningRegistry),
    ContainerRegistry(ServerTask),
    Distribution(ChildProcess),
    External(
        Box<dyn crate::targets::common::ExternalGuard>,
        crate::execute::TargetOptions,
    ),
}

/// A launched external target (see `external`): `guard` stops it.
pub(crate) fn external_target(
    name: &str,
    kind: &'static str,
    base_url: Url,
    credentials: Option<crate::execute::auth::Credentials>,
    log_path: Option<PathBuf>,
    options: crate::execute::TargetOptions,
    guard: Box<dyn crate::targets::common::ExternalGuard>,
) -> LaunchedTarget {
    let (username, password) = match credentials {
        Some(c) => (Some(c.username), Some(c.password)),
        None => (None, None),
    };
    LaunchedTarget {
        name: name.to_string(),
        kind,
        base_url,
        username,
        password,
        log_path,
        guard: Guard::External(guard, options),
    }
}

/// Launches a target and waits until it answers `GET /v2/`.
pub async fn launch(name: &str, spec: &TargetSpec) -> Result<LaunchedTarget> {
    validate_name(name)?;
    let launched = match spec {
        TargetSpec::Reference(config) => launch_reference(name, config).await,
        TargetSpec::ContainerRegistry => launch_container_registry(name).await,
        TargetSpec::Distribution { binary } => launch_distribution(name, binary.as_deref()).await,
        TargetSpec::Url {
            url,
            username,
            password,
        } => {
            wait_ready_auth(url, username.as_deref(), password.as_deref(), READY_TIMEOUT).await?;
            // Credentials: the URL's, else the environment's or the Docker config's; checked.
            let access = crate::targets::common::Access {
                credentials: username
                    .as_ref()
                    .map(|u| crate::execute::auth::Credentials {
                        username: u.clone(),
                        password: password.clone().unwrap_or_default(),
                    }),
                ..Default::default()
            };
            let creds = crate::targets::common::resolve_and_check(name, url, &access).await?;
            let (username, password) = match creds {
                Some(c) => (Some(c.username), Some(c.password)),
                None => (None, None),
            };
            Ok(LaunchedTarget {
                name: name.to_string(),
                kind: spec.kind(),
                base_url: url.clone(),
                username,
                password,
                log_path: None,
                guard: Guard::None,
            })
        }
        TargetSpec::External(e) => crate::targets::external::launch(name, e).await,
    };
    launched.with_context(|| format!("launching target `{name}` ({})", spec.describe()))
}

/// Checks a target list: at least one target, valid and unique names.
pub fn validate_targets(targets: &[(String, TargetSpec)]) -> Result<()> {
    if targets.is_empty() {
        bail!("no targets (give at least one --target)");
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in targets {
        validate_name(name)?;
        if !seen.insert(name.as_str()) {
            bail!("target name `{name}` is given twice; name them apart with NAME=...");
        }
    }
    Ok(())
}

/// Launches every target in order (the first is the oracle by convention). On any failure the
/// ones already running are stopped (dropped) and the error names the failing target.
pub async fn launch_all(targets: &[(String, TargetSpec)]) -> Result<Vec<LaunchedTarget>> {
    validate_targets(targets)?;
    let mut launched = Vec::with_capacity(targets.len());
    for (name, spec) in targets {
        launched.push(launch(name, spec).await?);
    }
    Ok(launched)
}

/// Stops every target (gracefully, concurrently).
pub async fn shutdown_all(targets: Vec<LaunchedTarget>) {
    futures::future::join_all(targets.into_iter().map(LaunchedTarget::shutdown)).await;
}

async fn launch_reference(
    name: &str,
    config: &reference_registry::Config,
) -> Result<LaunchedTarget> {
    let running = reference_registry::spawn(config.clone()).await?;
    let base_url = Url::parse(&running.url())
        .with_context(|| format!("reference registry reported a bad URL `{}`", running.url()))?;
    let (username, password) = reference_credentials(&config.auth);
    let target = LaunchedTarget {
        name: name.to_string(),
        kind: "reference",
        base_url,
        username,
        password,
        log_path: None,
        guard: Guard::Reference(running),
    };
    wait_ready(&target.base_url, READY_TIMEOUT).await?;
    Ok(target)
}

/// An in-process axum server: stopped (graceful, then aborted) and its storage removed on drop.
struct ServerTask {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: Option<tempfile::TempDir>,
}

impl ServerTask {
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        // `dir` is removed by Drop.
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        drop(self.dir.take());
    }
}

async fn launch_container_registry(name: &str) -> Result<LaunchedTarget> {
    use container_registry::auth::{Anonymous, Permissions};
    use rand::distributions::{Alphanumeric, DistString};

    let dir = tempfile::Builder::new()
        .prefix("ocidiff-container-registry-")
        .tempdir()
        .context("creating storage directory for container-registry")?;
    // Anonymous clients get read-write; anything presenting credentials must know this secret.
    let secret = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
    let auth = Anonymous::new(Permissions::ReadWrite, sec::Secret::new(secret));
    let registry = container_registry::ContainerRegistry::builder()
        .storage(dir.path())
        .auth_provider(Arc::new(auth))
        .build()
        .map_err(|e| anyhow!("building container-registry: {e}"))?;
    let app = axum::Router::new().merge(registry.make_router()).layer(
        axum::extract::DefaultBodyLimit::max(CONTAINER_REGISTRY_BODY_LIMIT),
    );
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("binding a loopback port for container-registry")?;
    let addr = listener.local_addr().context("local address")?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!("container-registry server stopped: {e}");
        }
    });
    let target = LaunchedTarget {
        name: name.to_string(),
        kind: "container-registry",
        base_url: loopback_url(addr)?,
        username: None,
        password: None,
        log_path: None,
        guard: Guard::ContainerRegistry(ServerTask {
            stop: Some(stop_tx),
            task: Some(task),
            dir: Some(dir),
        }),
    };
    wait_ready(&target.base_url, READY_TIMEOUT).await?;
    Ok(target)
}

fn loopback_url(addr: SocketAddr) -> Result<Url> {
    Url::parse(&format!("http://{addr}/")).context("building loopback URL")
}

/// A child registry process: killed, reaped, and its directory removed on drop.
struct ChildProcess {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(self.dir.take());
    }
}

/// The config.yml given to distribution.
pub fn distribution_config(root: &Path, port: u16) -> String {
    distribution_config_with(&root.display().to_string(), &port.to_string())
}

/// distribution's config.yml with `{dir}` and `{port}` placeholders (the `distribution3`
/// process preset: distribution 3 reads the same keys).
pub fn distribution_config_template() -> String {
    distribution_config_with("{dir}/data", "{port}")
}

fn distribution_config_with(root: &str, port: &str) -> String {
    let root = root.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "{root}"
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"#
    )
}

/// The last `max` bytes of a log file, redacted, for error messages.
pub fn log_tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::from("(no log)");
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim();
    if text.is_empty() {
        String::from("(log empty)")
    } else {
        redact(text)
    }
}

async fn launch_distribution(name: &str, binary: Option<&Path>) -> Result<LaunchedTarget> {
    let binary = match binary {
        Some(b) => {
            if !is_executable(b) {
                bail!("distribution binary `{}` is not an executable file", b.display());
            }
            b.to_path_buf()
        }
        None => find_distribution_binary().ok_or_else(|| {
            anyhow!(
                "no {} binary on PATH (install Debian's docker-registry, or pass NAME=distribution:/path/to/registry)",
                DISTRIBUTION_BINARIES.join(" or ")
            )
        })?,
    };
    // The port is picked, released, then bound by the child: retry if another process takes it.
    const ATTEMPTS: usize = 3;
    let mut last_err = None;
    for attempt in 1..=ATTEMPTS {
        match start_distribution_once(name, &binary).await {
            Ok(t) => return Ok(t),
            Err(e) => {
                let retry = format!("{e:#}").contains("address already in use");
                last_err = Some(e);
                if !retry || attempt == ATTEMPTS {
                    break;
                }
            }
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow!("distribution did not start")))
}

/// Where a launched distribution keeps its config, log and storage: a fresh directory in
/// `OCIDIFF_DISTRIBUTION_DIR` if set (e.g. `/dev/shm`), else in the system temp dir.
/// distribution's filesystem driver fsyncs every file it commits (each blob, each link file of
/// a manifest push), so on a disk a fuzz run is bound by that I/O; on tmpfs the same code paths
/// run about twice as fast (README "Scale"). Not the default: distribution never frees the data
/// of deleted blobs without garbage collection, so its storage grows with the run (~15 MB/s of
/// fuzzing here), which in RAM would take the machine within an hour.
fn distribution_dir() -> Result<tempfile::TempDir> {
    distribution_dir_in(std::env::var_os("OCIDIFF_DISTRIBUTION_DIR").map(PathBuf::from))
}

fn distribution_dir_in(base: Option<PathBuf>) -> Result<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    b.prefix("ocidiff-distribution-");
    match base {
        Some(dir) => b.tempdir_in(&dir).with_context(|| {
            format!(
                "creating a directory for distribution in OCIDIFF_DISTRIBUTION_DIR ({})",
                dir.display()
            )
        }),
        None => b.tempdir().context("creating a directory for distribution"),
    }
}

/// The Go garbage collector's target for a launched distribution: `400` (collect when the heap
/// has grown to five times what was live, not twice) unless `GOGC` is set in ocidiff's own
/// environment, which the child then inherits as it is. distribution 2.8.2 allocates heavily
/// per request (it compiles its whole URL router's regexps for each one), so with Go's default
/// about a fifth of its CPU goes to the collector (pprof: background marking 9 %, allocation assists 7 %); `400` gives a fuzz run about 1.2x the ops/s on
/// tmpfs and 1.06-1.15x on disk, for a peak RSS of ~120 MB instead of ~67 MB (README "Scale").
/// Only the collector's pace changes, nothing the registry answers.
fn distribution_gogc(inherited: Option<&std::ffi::OsStr>) -> Option<&'static str> {
    inherited.is_none().then_some("400")
}

async fn start_distribution_once(name: &str, binary: &Path) -> Result<LaunchedTarget> {
    let dir = distribution_dir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).context("creating distribution's data directory")?;
    let port = free_loopback_port()?;
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, distribution_config(&data, port))
        .context("writing distribution's config.yml")?;
    let log_path = dir.path().join("registry.log");
    let log = std::fs::File::create(&log_path).context("creating registry.log")?;
    let log_err = log.try_clone().context("duplicating the log handle")?;
    let mut command = Command::new(binary);
    command.arg("serve").arg(&config_path);
    if let Some(gogc) = distribution_gogc(std::env::var_os("GOGC").as_deref()) {
        command.env("GOGC", gogc);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .spawn()
        .with_context(|| format!("starting `{} serve`", binary.display()))?;
    let mut process = ChildProcess {
        child: Some(child),
        dir: Some(dir),
    };
    let base_url = loopback_url(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;

    // Wait for readiness, failing early if the process exits.
    let deadline = Instant::now() + READY_TIMEOUT;
    let client = probe_client()?;
    loop {
        if let Some(child) = process.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "distribution exited early ({status}); log tail:\n{}",
                    log_tail(&log_path, 2048)
                );
            }
        }
        let last = match probe(&client, &base_url, None, None).await {
            Ok(()) => break,
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!(
                "distribution at {base_url} not ready after {:?} (last: {last}); log tail:\n{}",
                READY_TIMEOUT,
                log_tail(&log_path, 2048)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(LaunchedTarget {
        name: name.to_string(),
        kind: "distribution",
        base_url,
        username: None,
        password: None,
        log_path: Some(log_path),
        guard: Guard::Distribution(process),
    })
}

// ---------------------------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------------------------

fn probe_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building HTTP client")
}

async fn probe(
    client: &reqwest::Client,
    base: &Url,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<()> {
    let url = base.join("v2/").context("joining /v2/")?;
    let mut req = client.get(url);
    if let Some(user) = username {
        req = req.basic_auth(user, password);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| anyhow!(redact(&e.to_string())))?;
    match resp.status().as_u16() {
        200 | 401 => Ok(()),
        s => bail!("GET /v2/ answered {s} (expected 200 or 401)"),
    }
}

/// Waits until `GET <url>/v2/` answers 200 or 401, polling every 50 ms up to `timeout`.
pub async fn wait_ready(url: &Url, timeout: Duration) -> Result<()> {
    wait_ready_auth(url, None, None, timeout).await
}

/// [`wait_ready`] sending HTTP basic credentials when `username` is set.
pub async fn wait_ready_auth(
    url: &Url,
    username: Option<&str>,
    password: Option<&str>,
    timeout: Duration,
) -> Result<()> {
    let client = probe_client()?;
    let deadline = Instant::now() + timeout;
    loop {
        let err = match probe(&client, url, username, password).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            bail!(
                "{} not ready after {timeout:?}: {}",
                redact(url.as_str()),
                redact(&format!("{err:#}"))
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_spec(arg: &str) -> (String, Url, Option<String>, Option<String>) {
        match parse_target_arg(arg).unwrap() {
            (
                name,
                TargetSpec::Url {
                    url,
                    username,
                    password,
                },
            ) => (name, url, username, password),
            other => panic!("not a URL target: {other:?}"),
        }
    }

    #[test]
    fn parses_kinds() {
        for (arg, name, kind) in [
            ("reference", "reference", "reference"),
            (
                "container-registry",
                "container-registry",
                "container-registry",
            ),
            ("distribution", "distribution", "distribution"),
            ("oracle=reference", "oracle", "reference"),
            ("cr=container-registry", "cr", "container-registry"),
            ("dist=distribution", "dist", "distribution"),
            ("  dist = distribution ", "dist", "distribution"),
        ] {
            let (n, spec) = parse_target_arg(arg).unwrap();
            assert_eq!(n, name, "{arg}");
            assert_eq!(spec.kind(), kind, "{arg}");
        }
        match parse_target_arg("d2=distribution:/usr/bin/registry").unwrap() {
            (n, TargetSpec::Distribution { binary }) => {
                assert_eq!(n, "d2");
                assert_eq!(binary, Some(PathBuf::from("/usr/bin/registry")));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_target_arg("distribution").unwrap().1,
            TargetSpec::Distribution { binary: None }
        ));
    }

    #[test]
    fn parses_urls_and_strips_credentials() {
        let (n, url, u, p) = url_spec("mine=http://127.0.0.1:5000");
        assert_eq!(n, "mine");
        assert_eq!(url.as_str(), "http://127.0.0.1:5000/");
        assert_eq!((u, p), (None, None));

        let (_, url, u, p) = url_spec("mine=http://alice:s%40cr%3At@localhost:5000/");
        assert_eq!(url.as_str(), "http://localhost:5000/");
        assert_eq!(u.as_deref(), Some("alice"));
        assert_eq!(p.as_deref(), Some("s@cr:t"));

        let (_, url, u, p) = url_spec("x=https://bob@registry.example/v2/");
        assert_eq!(url.as_str(), "https://registry.example/");
        assert_eq!(u.as_deref(), Some("bob"));
        assert_eq!(p, None);

        let (_, url, _, _) = url_spec("x=http://[::1]:5000/v2");
        assert_eq!(url.as_str(), "http://[::1]:5000/");
    }

    #[test]
    fn rejects_bad_forms() {
        for (arg, needle) in [
            ("", "empty"),
            ("=reference", "empty"),
            ("x=", "nothing after"),
            ("http://127.0.0.1:5000", "needs a name"),
            ("quay", "unknown target kind"),
            ("x=quay", "unknown target kind"),
            ("x=ftp://host", "scheme"),
            ("x=http://host:5000/prefix", "path prefix"),
            ("x=http://host:5000/?a=b", "query"),
            ("x=http://host:notaport", "invalid target URL"),
            ("bad name=reference", "invalid target name"),
            ("-x=reference", "invalid target name"),
            ("a/b=reference", "invalid target name"),
            ("x=distribution:", "binary path"),
            ("x=http://u:%zz@host", "percent"),
        ] {
            let err = match parse_target_arg(arg) {
                Ok(ok) => panic!("`{arg}` parsed: {ok:?}"),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                err.contains(needle),
                "`{arg}`: error `{err}` lacks `{needle}`"
            );
        }
        let long = format!("{}=reference", "n".repeat(MAX_NAME_LEN + 1));
        assert!(parse_target_arg(&long).is_err());
    }

    #[test]
    fn credentials_never_printed() {
        let (_, spec) = parse_target_arg("x=http://alice:hunter2@host:5000").unwrap();
        let dbg = format!("{spec:?} {}", spec.describe());
        assert!(!dbg.contains("hunter2") && !dbg.contains("alice"), "{dbg}");
        let err = format!(
            "{:#}",
            parse_target_arg("x=ftp://alice:hunter2@host").unwrap_err()
        );
        assert!(!err.contains("hunter2"), "{err}");
        assert_eq!(
            redact("GET http://u:p@h:1/v2/ and https://x@y/z, ftp://plain/"),
            "GET http://***@h:1/v2/ and https://***@y/z, ftp://plain/"
        );
        assert_eq!(redact("no urls here"), "no urls here");
        assert_eq!(redact("trailing http://"), "trailing http://");
    }

    #[test]
    fn default_targets_start_with_reference() {
        let (targets, skipped) = default_targets();
        assert_eq!(targets[0].0, "reference");
        assert!(targets.iter().any(|(n, _)| n == "container-registry"));
        let has_dist = targets.iter().any(|(n, _)| n == "distribution");
        assert_eq!(has_dist, find_distribution_binary().is_some());
        assert_eq!(
            has_dist,
            !skipped.iter().any(|s| s.starts_with("distribution:")),
            "{skipped:?}"
        );
        // Each program preset is either started or named as skipped, with why.
        for p in crate::targets::presets::PRESETS
            .iter()
            .filter(|p| p.program.is_some())
        {
            let started = targets.iter().any(|(n, _)| n == p.name);
            let skip = skipped
                .iter()
                .any(|s| s.starts_with(&format!("{}:", p.name)));
            assert!(started != skip, "{}: {targets:?} {skipped:?}", p.name);
            assert_eq!(
                started,
                find_on_path(p.program.unwrap()).is_some(),
                "{}",
                p.name
            );
        }
    }

    #[test]
    fn distribution_dir_honours_its_base() {
        let base = tempfile::tempdir().unwrap();
        let d = distribution_dir_in(Some(base.path().to_path_buf())).unwrap();
        assert!(d.path().starts_with(base.path()), "{}", d.path().display());
        assert!(d.path().is_dir());
        let d = distribution_dir_in(None).unwrap();
        assert!(d.path().starts_with(std::env::temp_dir()));
        let missing = base.path().join("missing");
        let e = distribution_dir_in(Some(missing.clone())).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("OCIDIFF_DISTRIBUTION_DIR")
                && msg.contains(&missing.display().to_string()),
            "{msg}"
        );
    }

    #[test]
    fn distribution_gc_pace_is_set_unless_the_user_set_one() {
        assert_eq!(distribution_gogc(None), Some("400"));
        // A GOGC of the user's (even an empty or odd one) is inherited untouched.
        for own in ["100", "off", ""] {
            assert_eq!(distribution_gogc(Some(std::ffi::OsStr::new(own))), None);
        }
    }

    #[test]
    fn distribution_config_is_complete() {
        let c = distribution_config(Path::new("/tmp/x/data"), 5123);
        for needle in [
            "version: 0.1",
            "level: warn",
            "disabled: true",
            "rootdirectory: \"/tmp/x/data\"",
            "enabled: true",
            "blobdescriptor: inmemory",
            "addr: 127.0.0.1:5123",
            "X-Content-Type-Options: [nosniff]",
        ] {
            assert!(c.contains(needle), "missing {needle}:\n{c}");
        }
    }

    async fn get_v2(t: &LaunchedTarget) -> u16 {
        let url = t.base_url.join("v2/").unwrap();
        reqwest::get(url).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn launches_reference() {
        let t = launch("reference", &TargetSpec::Reference(Box::default()))
            .await
            .unwrap();
        assert_eq!(t.kind, "reference");
        assert_eq!(get_v2(&t).await, 200);
        let et = t.exec_target();
        assert_eq!(et.name, "reference");
        assert_eq!(et.base_url, t.base_url);
        t.shutdown().await;
    }

    #[tokio::test]
    async fn launches_reference_with_basic_auth() {
        let config = reference_registry::Config {
            auth: reference_registry::AuthMode::Basic {
                username: "alice".into(),
                password: "hunter2".into(),
            },
            ..Default::default()
        };
        let spec = TargetSpec::Reference(Box::new(config));
        assert!(!format!("{spec:?}").contains("hunter2"));
        let t = launch("locked", &spec).await.unwrap();
        assert_eq!(get_v2(&t).await, 401);
        assert!(!format!("{t:?}").contains("hunter2"));
        let et = t.exec_target();
        assert_eq!(et.username.as_deref(), Some("alice"));
        assert_eq!(et.password.as_deref(), Some("hunter2"));
        let client = probe_client().unwrap();
        let ok = client
            .get(t.base_url.join("v2/").unwrap())
            .basic_auth("alice", Some("hunter2"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        t.shutdown().await;
    }

    #[tokio::test]
    async fn launch_all_checks_names_and_cleans_up() {
        let r = || TargetSpec::Reference(Box::default());
        let err = launch_all(&[("a".into(), r()), ("a".into(), r())])
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("twice"), "{err:#}");
        assert!(launch_all(&[]).await.is_err());
        let bad = TargetSpec::Distribution {
            binary: Some(PathBuf::from("/nonexistent/registry")),
        };
        let err = launch_all(&[("a".into(), r()), ("b".into(), bad)])
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("`b`"), "{err:#}");
        let all = launch_all(&[
            ("a".into(), r()),
            ("b".into(), TargetSpec::ContainerRegistry),
        ])
        .await
        .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].exec_target().name, "b");
        shutdown_all(all).await;
    }

    #[tokio::test]
    async fn launches_container_registry() {
        let t = launch("cr", &TargetSpec::ContainerRegistry).await.unwrap();
        assert_eq!(t.kind, "container-registry");
        assert_eq!(get_v2(&t).await, 200);
        let url = t.base_url.clone();
        t.shutdown().await;
        // Stopped: the port no longer answers (bounded: one try with a short timeout).
        let client = probe_client().unwrap();
        assert!(probe(&client, &url, None, None).await.is_err());
    }

    #[tokio::test]
    async fn drop_stops_container_registry() {
        let t = launch("cr", &TargetSpec::ContainerRegistry).await.unwrap();
        let url = t.base_url.clone();
        drop(t);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let client = probe_client().unwrap();
        assert!(probe(&client, &url, None, None).await.is_err());
    }

    #[tokio::test]
    async fn launches_distribution() {
        if find_distribution_binary().is_none() {
            eprintln!("skip: no docker-registry / registry binary on PATH");
            return;
        }
        let t = launch("dist", &TargetSpec::Distribution { binary: None })
            .await
            .unwrap();
        assert_eq!(t.kind, "distribution");
        assert_eq!(get_v2(&t).await, 200);
        let log = t.log_path.clone().unwrap();
        assert!(log.exists());
        let dir = log.parent().unwrap().to_path_buf();
        t.shutdown().await;
        assert!(!dir.exists(), "temp dir not removed");
    }

    #[tokio::test]
    async fn distribution_failure_reports_log() {
        // `true` exits at once: the error must say so rather than time out.
        let Some(bin) = ["/bin/true", "/usr/bin/true"]
            .iter()
            .map(PathBuf::from)
            .find(|p| is_executable(p))
        else {
            return;
        };
        let err = launch("d", &TargetSpec::Distribution { binary: Some(bin) })
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("exited early"), "{err:#}");
    }

    #[tokio::test]
    async fn url_target_waits_for_ready() {
        let r = launch("reference", &TargetSpec::Reference(Box::default()))
            .await
            .unwrap();
        let mut with_creds = r.base_url.clone();
        with_creds.set_username("u").unwrap();
        with_creds.set_password(Some("p")).unwrap();
        let (name, spec) = parse_target_arg(&format!("remote={with_creds}")).unwrap();
        let t = launch(&name, &spec).await.unwrap();
        assert_eq!(t.kind, "url");
        assert_eq!(t.base_url, r.base_url);
        assert_eq!(t.username.as_deref(), Some("u"));
        assert_eq!(t.exec_target().password.as_deref(), Some("p"));
        t.shutdown().await;
        r.shutdown().await;

        // Nothing listening: a clear, bounded error.
        let port = free_loopback_port().unwrap();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let err = wait_ready(&url, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("not ready"), "{err:#}");
    }
}
