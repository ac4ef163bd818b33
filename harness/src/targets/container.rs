//! Container targets through testcontainers: any image that serves the Distribution API on one
//! port. Works with Docker and with podman's Docker-compatible socket (`DOCKER_HOST`).
//!
//! The container port is published on `127.0.0.1:<free port>` only, set explicitly through the
//! host config (`publish_all_ports` off): podman 4 reports published ports with an empty
//! `HostIp`, which testcontainers' port lookup skips, and loopback-only is right for Docker too.
//! Readiness: an optional log line (testcontainers' wait strategy), then `GET <wait_path>`
//! answering anything but 5xx. The container is removed (forced, with its volumes) on shutdown,
//! on drop (testcontainers' drop), and on SIGINT / SIGTERM (testcontainers' watchdog).

use crate::targets::common::{keep_log, wait_answering, Access, ExternalGuard};
use crate::vocab::redact::redact;
use anyhow::{bail, Context, Result};
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;
use testcontainers::bollard::models::{HostConfig, PortBinding};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use url::Url;

/// An image to run as a registry.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// Image name without tag, e.g. `registry` or `ghcr.io/project-zot/zot-linux-amd64`.
    pub image: String,
    pub tag: String,
    /// The port the registry listens on inside the container.
    pub port: u16,
    pub env: BTreeMap<String, String>,
    /// Replaces the image's command (arguments to its entrypoint) when not empty.
    pub cmd: Vec<String>,
    /// Files written into the container before it starts: (absolute path, contents).
    pub files: Vec<(String, Vec<u8>)>,
    /// Readiness probe path.
    pub wait_path: String,
    /// Also wait for this line on stdout or stderr first.
    pub wait_log: Option<String>,
    /// Bound on start (pull excluded when the image is local) and readiness.
    pub startup_timeout: Duration,
    pub access: Access,
    /// The container log is copied to `<log_dir>/<name>.log` when the target stops.
    pub log_dir: Option<PathBuf>,
}

impl ContainerSpec {
    /// A spec for `IMAGE[:TAG]` (tag `latest` when absent), port 5000, probe `/v2/`.
    pub fn parse(image_ref: &str) -> Result<ContainerSpec> {
        let r = image_ref.trim();
        if r.is_empty() {
            bail!("`container:` needs an image, e.g. container:registry:2");
        }
        if r.contains('@') {
            bail!(
                "image `{}`: digests are not supported, use IMAGE:TAG",
                redact(r)
            );
        }
        if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!("image `{}`: contains whitespace", redact(r));
        }
        // The tag is after the last ':' unless a '/' follows it (then it is a registry port).
        let (image, tag) = match r.rfind(':') {
            Some(i) if !r[i + 1..].contains('/') => (&r[..i], &r[i + 1..]),
            _ => (r, "latest"),
        };
        if image.is_empty() || tag.is_empty() {
            bail!("image `{}`: expected IMAGE[:TAG]", redact(r));
        }
        Ok(ContainerSpec {
            image: image.to_string(),
            tag: tag.to_string(),
            port: 5000,
            env: BTreeMap::new(),
            cmd: Vec::new(),
            files: Vec::new(),
            wait_path: "/v2/".into(),
            wait_log: None,
            startup_timeout: crate::targets::common::DEFAULT_READY_TIMEOUT,
            access: Access::default(),
            log_dir: None,
        })
    }

    pub fn image_ref(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }
}

/// The running container; removed on shutdown and on drop.
struct ContainerGuard {
    name: String,
    container: Option<ContainerAsync<GenericImage>>,
    log_dir: Option<PathBuf>,
}

async fn container_log(c: &ContainerAsync<GenericImage>) -> Vec<u8> {
    let mut log = c.stdout_to_vec().await.unwrap_or_default();
    log.extend(c.stderr_to_vec().await.unwrap_or_default());
    log
}

impl ExternalGuard for ContainerGuard {
    fn shutdown(mut self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Some(c) = self.container.take() {
                if self.log_dir.is_some() {
                    let log = tokio::time::timeout(Duration::from_secs(10), container_log(&c))
                        .await
                        .unwrap_or_default();
                    keep_log(&log, self.log_dir.as_deref(), &self.name);
                }
                let id = c.id().to_string();
                match tokio::time::timeout(Duration::from_secs(30), c.rm()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!("removing container {id}: {e}"),
                    Err(_) => tracing::warn!("removing container {id}: timed out"),
                }
            }
        })
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        // testcontainers removes the container in its own Drop, which needs a Tokio runtime.
        // Outside one (e.g. dropped after the runtime ended), drop it inside a short-lived one.
        if let Some(c) = self.container.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                drop(c);
            } else {
                let _ =
                    std::thread::spawn(move || match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(async move { drop(c) }),
                        Err(_) => std::mem::forget(c),
                    })
                    .join();
            }
        }
    }
}

/// Fails fast, with a clear message, when the Docker API's unix socket (`DOCKER_HOST`, else
/// `/var/run/docker.sock` when present) accepts no connection: a stale socket file left behind by
/// a killed `podman system service` or Docker daemon. Other hosts are left to testcontainers.
fn check_docker_socket(docker_host: Option<&str>) -> Result<()> {
    let path = match docker_host {
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) => path.to_string(),
            None => return Ok(()),
        },
        None if std::path::Path::new("/var/run/docker.sock").exists() => {
            "/var/run/docker.sock".to_string()
        }
        None => return Ok(()),
    };
    #[cfg(unix)]
    if let Err(e) = std::os::unix::net::UnixStream::connect(&path) {
        bail!(
            "the Docker API socket {path} does not accept connections ({e}): no Docker daemon or \
             `podman system service` listens there (a stale socket file?); start one and set \
             DOCKER_HOST=unix://PATH (podman: tests/images/build-local-images.sh)"
        );
    }
    Ok(())
}

/// Starts the container and waits until it answers.
pub async fn launch(name: &str, spec: &ContainerSpec) -> Result<crate::targets::LaunchedTarget> {
    check_docker_socket(std::env::var("DOCKER_HOST").ok().as_deref())?;
    let host_port = crate::targets::common::free_loopback_port()?;
    let container_port = spec.port;
    let mut image = GenericImage::new(spec.image.clone(), spec.tag.clone())
        .with_exposed_port(container_port.tcp());
    if let Some(line) = &spec.wait_log {
        image = image.with_wait_for(WaitFor::message_on_either_std(line.as_bytes()));
    }
    let mut req = image
        .with_startup_timeout(spec.startup_timeout)
        .with_host_config_modifier(move |hc: &mut HostConfig| {
            hc.publish_all_ports = Some(false);
            let mut bindings = HashMap::new();
            bindings.insert(
                format!("{container_port}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_string()),
                    host_port: Some(host_port.to_string()),
                }]),
            );
            hc.port_bindings = Some(bindings);
        });
    for (k, v) in &spec.env {
        req = req.with_env_var(k.clone(), v.clone());
    }
    if !spec.cmd.is_empty() {
        req = req.with_cmd(spec.cmd.clone());
    }
    for (path, data) in &spec.files {
        req = req.with_copy_to(path.clone(), data.clone());
    }
    let container = tokio::time::timeout(spec.startup_timeout + Duration::from_secs(5), req.start())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "container {} did not start within {:?}",
                spec.image_ref(),
                spec.startup_timeout
            )
        })?
        .with_context(|| {
            format!(
                "starting container {} (is DOCKER_HOST set / the Docker socket reachable, and the image available?)",
                spec.image_ref()
            )
        })?;
    let mut guard = ContainerGuard {
        name: name.to_string(),
        container: Some(container),
        log_dir: spec.log_dir.clone(),
    };
    let base_url = Url::parse(&format!("http://127.0.0.1:{host_port}/")).context("building URL")?;
    let client = crate::targets::common::probe_client(&spec.access.options)?;
    let ready = wait_answering(
        &client,
        &base_url,
        &spec.wait_path,
        spec.startup_timeout,
        || Ok(()),
    )
    .await;
    if let Err(e) = ready {
        let log = match &guard.container {
            Some(c) => container_log(c).await,
            None => Vec::new(),
        };
        let text = String::from_utf8_lossy(&log);
        let tail: String = text
            .chars()
            .rev()
            .take(2048)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Box::new(std::mem::replace(
            &mut guard,
            ContainerGuard {
                name: String::new(),
                container: None,
                log_dir: None,
            },
        ))
        .shutdown()
        .await;
        return Err(e.context(format!(
            "container {} at {base_url}; log tail:\n{}",
            spec.image_ref(),
            redact(&tail)
        )));
    }
    let creds = crate::targets::common::resolve_and_check(name, &base_url, &spec.access).await?;
    Ok(crate::targets::external_target(
        name,
        "container",
        base_url,
        creds,
        None,
        spec.access.options.clone(),
        Box::new(guard),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn stale_docker_socket_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stale.sock");
        // Bound, then closed: the file stays, nothing listens.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let host = format!("unix://{}", path.display());
        let err = check_docker_socket(Some(&host)).unwrap_err().to_string();
        assert!(err.contains("does not accept connections"), "{err}");
        let live = dir.path().join("live.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
        check_docker_socket(Some(&format!("unix://{}", live.display()))).unwrap();
        check_docker_socket(Some("tcp://127.0.0.1:2375")).unwrap();
    }

    #[test]
    fn parses_image_refs() {
        let c = ContainerSpec::parse("registry:2").unwrap();
        assert_eq!((c.image.as_str(), c.tag.as_str()), ("registry", "2"));
        let c = ContainerSpec::parse("localhost/ocidiff-distribution:2.8.2").unwrap();
        assert_eq!(c.image, "localhost/ocidiff-distribution");
        assert_eq!(c.tag, "2.8.2");
        let c = ContainerSpec::parse("localhost:5000/x/y").unwrap();
        assert_eq!(
            (c.image.as_str(), c.tag.as_str()),
            ("localhost:5000/x/y", "latest")
        );
        let c = ContainerSpec::parse("ghcr.io/project-zot/zot-linux-amd64").unwrap();
        assert_eq!(c.tag, "latest");
        assert_eq!(c.image_ref(), "ghcr.io/project-zot/zot-linux-amd64:latest");
        for bad in ["", "img@sha256:abc", "a b", "img:", ":tag"] {
            assert!(ContainerSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
