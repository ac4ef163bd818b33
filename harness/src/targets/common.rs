//! What every launched target kind shares: access settings (credentials, TLS, repository
//! prefix), the guard that stops a target, readiness polling, the access check, free ports
//! and kept logs.

use crate::execute::auth::Credentials;
use crate::execute::TargetOptions;
use crate::targets::credentials as auth;
use crate::vocab::redact::redact;
use anyhow::{anyhow, bail, Context, Result};
use futures::future::BoxFuture;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};
use url::Url;

/// How long a process or container may take to answer `GET /v2/` by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest log copied next to the findings.
pub(crate) const MAX_LOG_COPY: u64 = 16 << 20;

/// What every external target may carry: credentials, per-target options, and where its log
/// goes.
#[derive(Clone, Default)]
pub struct Access {
    pub credentials: Option<Credentials>,
    pub options: TargetOptions,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .field("repo_prefix", &self.options.repo_prefix)
            .field("insecure", &self.options.insecure)
            .field("ca", &self.options.ca_pem.is_some())
            .finish()
    }
}

/// What `LaunchedTarget` holds for an external target: stops it when shut down or dropped.
pub trait ExternalGuard: Send + Sync {
    /// Stops gracefully (bounded) and cleans up.
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Nothing to stop (remote registries).
pub(crate) struct NoGuard;

impl ExternalGuard for NoGuard {
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

pub(crate) fn probe_client(options: &TargetOptions) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::limited(5));
    if options.insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    if let Some(pem) = &options.ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| anyhow!("bad CA certificate: {e}"))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().context("building HTTP client")
}

/// Resolves a target's credentials (explicit, environment, Docker config) and checks access.
pub(crate) async fn resolve_and_check(
    name: &str,
    url: &Url,
    access: &Access,
) -> Result<Option<Credentials>> {
    let creds = auth::resolve_credentials(name, url, access.credentials.clone())?.map(|(c, _)| c);
    let client = probe_client(&access.options)?;
    auth::check_access(name, url, creds.as_ref(), &client).await?;
    Ok(creds)
}

/// Polls `GET <base><path>` until it answers with anything but 5xx, `alive` fails, or the
/// timeout passes.
pub(crate) async fn wait_answering(
    client: &reqwest::Client,
    base: &Url,
    path: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    let url = base
        .join(path.trim_start_matches('/'))
        .context("joining the readiness path")?;
    let deadline = Instant::now() + timeout;
    loop {
        alive()?;
        let last = match client.get(url.clone()).send().await {
            Ok(r) if r.status().as_u16() < 500 => return Ok(()),
            Ok(r) => format!("answered {}", r.status().as_u16()),
            Err(e) => {
                if e.is_timeout() {
                    "timeout".to_string()
                } else {
                    "not answering".to_string()
                }
            }
        };
        if Instant::now() >= deadline {
            bail!("GET {path} not ready after {timeout:?} (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn free_loopback_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Copies a log to `<dir>/<name>.log` (bounded, redacted). Errors are only logged.
pub(crate) fn keep_log(log: &[u8], dir: Option<&Path>, name: &str) {
    let Some(dir) = dir else { return };
    let text = String::from_utf8_lossy(&log[..log.len().min(MAX_LOG_COPY as usize)]);
    let res = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join(format!("{name}.log")), redact(&text)));
    if let Err(e) = res {
        tracing::warn!("could not keep the log of target {name}: {e}");
    }
}
