//! Targets beyond the built-in kinds: remote registries with TLS options, credentials from the
//! environment or the Docker config and a repository prefix (`Remote`), command lines started
//! by ocidiff (`Process`), and container images started through testcontainers (`Container`,
//! see `container`). `target::TargetSpec::External` wraps an [`ExternalSpec`]; launching one
//! gives a `LaunchedTarget` whose guard stops and cleans up what was started, on `shutdown` and
//! on `Drop`, and keeps the server's log (copied to the spec's `log_dir` when set).

use crate::execute::auth::Credentials;
use crate::execute::TargetOptions;
use crate::targets::common::{
    free_loopback_port, keep_log, probe_client, resolve_and_check, wait_answering, Access,
    ExternalGuard, NoGuard, DEFAULT_READY_TIMEOUT, MAX_LOG_COPY,
};
use crate::targets::{LaunchedTarget, TargetSpec};
use crate::vocab::redact::redact;
use anyhow::{bail, Context, Result};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use url::Url;

/// An existing registry (URL), with options the plain `Url` kind has not.
#[derive(Clone, Debug)]
pub struct RemoteSpec {
    pub url: Url,
    pub access: Access,
    /// The preset it was made from (`harbor`, ...), for descriptions.
    pub preset: Option<String>,
}

/// A command line started by ocidiff: `{port}` and `{dir}` in the arguments (and env values)
/// become a free loopback port and a fresh temporary directory.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Readiness probe path (default `/v2/`): ready on any answer but 5xx / transport errors.
    pub wait_path: String,
    pub ready_timeout: Duration,
    pub access: Access,
    /// The server log is copied to `<log_dir>/<name>.log` when the target stops.
    pub log_dir: Option<PathBuf>,
    /// Files written into `{dir}` before the start (path relative to `{dir}`, content), with
    /// the placeholders replaced in the content: a configuration file.
    pub files: Vec<(String, String)>,
    /// Folders created in `{dir}` before the start (storage).
    pub dirs: Vec<String>,
}

impl Default for ProcessSpec {
    fn default() -> Self {
        ProcessSpec {
            command: Vec::new(),
            env: BTreeMap::new(),
            wait_path: "/v2/".into(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            access: Access::default(),
            log_dir: None,
            files: Vec::new(),
            dirs: Vec::new(),
        }
    }
}

/// The external target kinds.
#[derive(Clone, Debug)]
pub enum ExternalSpec {
    Remote(RemoteSpec),
    Process(ProcessSpec),
    Container(crate::targets::container::ContainerSpec),
}

impl ExternalSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            ExternalSpec::Remote(_) => "url",
            ExternalSpec::Process(_) => "process",
            ExternalSpec::Container(_) => "container",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ExternalSpec::Remote(r) => {
                let mut s = redact(r.url.as_str());
                if let Some(p) = &r.preset {
                    s = format!("{p} at {s}");
                }
                if !r.access.options.repo_prefix.is_empty() {
                    s.push_str(&format!(" (names under {}/)", r.access.options.repo_prefix));
                }
                s
            }
            ExternalSpec::Process(p) => format!(
                "process `{}`",
                redact(&p.command.join(" "))
                    .chars()
                    .take(120)
                    .collect::<String>()
            ),
            ExternalSpec::Container(c) => format!("container {}", c.image_ref()),
        }
    }

    pub fn access_mut(&mut self) -> &mut Access {
        match self {
            ExternalSpec::Remote(r) => &mut r.access,
            ExternalSpec::Process(p) => &mut p.access,
            ExternalSpec::Container(c) => &mut c.access,
        }
    }
}

/// Sets where process and container targets copy their logs (`<dir>/<name>.log`).
pub fn set_log_dir(targets: &mut [(String, TargetSpec)], dir: &Path) {
    for (_, spec) in targets.iter_mut() {
        if let TargetSpec::External(e) = spec {
            match e.as_mut() {
                ExternalSpec::Process(p) => p.log_dir = Some(dir.to_path_buf()),
                ExternalSpec::Container(c) => c.log_dir = Some(dir.to_path_buf()),
                ExternalSpec::Remote(_) => {}
            }
        }
    }
}

/// Applies `--insecure` / `--ca FILE` to every `url` target (plain URL targets become remote
/// targets carrying the options) and to external targets.
pub fn apply_tls(targets: &mut [(String, TargetSpec)], insecure: bool, ca_pem: Option<&[u8]>) {
    if !insecure && ca_pem.is_none() {
        return;
    }
    for (_, spec) in targets.iter_mut() {
        if let TargetSpec::Url {
            url,
            username,
            password,
        } = spec
        {
            let access = Access {
                credentials: username.as_ref().map(|u| Credentials {
                    username: u.clone(),
                    password: password.clone().unwrap_or_default(),
                }),
                options: TargetOptions::default(),
            };
            *spec = TargetSpec::External(Box::new(ExternalSpec::Remote(RemoteSpec {
                url: url.clone(),
                access,
                preset: None,
            })));
        }
        if let TargetSpec::External(e) = spec {
            let o = &mut e.access_mut().options;
            o.insecure |= insecure;
            if let Some(pem) = ca_pem {
                o.ca_pem = Some(pem.to_vec());
            }
        }
    }
}

/// Launches an external target and waits until it answers.
pub async fn launch(name: &str, spec: &ExternalSpec) -> Result<LaunchedTarget> {
    match spec {
        ExternalSpec::Remote(r) => launch_remote(name, r).await,
        ExternalSpec::Process(p) => launch_process(name, p).await,
        ExternalSpec::Container(c) => crate::targets::container::launch(name, c).await,
    }
}

async fn launch_remote(name: &str, r: &RemoteSpec) -> Result<LaunchedTarget> {
    let client = probe_client(&r.access.options)?;
    wait_answering(
        &client,
        &r.url,
        "/v2/",
        crate::targets::READY_TIMEOUT,
        || Ok(()),
    )
    .await
    .with_context(|| format!("{} does not answer", redact(r.url.as_str())))?;
    let creds = resolve_and_check(name, &r.url, &r.access).await?;
    Ok(crate::targets::external_target(
        name,
        "url",
        r.url.clone(),
        creds,
        None,
        r.access.options.clone(),
        Box::new(NoGuard),
    ))
}

/// Replaces `{port}` and `{dir}`.
pub fn substitute(s: &str, port: u16, dir: &Path) -> String {
    s.replace("{port}", &port.to_string())
        .replace("{dir}", &dir.display().to_string())
}

/// A started process: its process group is killed, the log kept and the directory removed on
/// shutdown / drop.
struct ProcessGuard {
    name: String,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    log_dir: Option<PathBuf>,
}

impl ProcessGuard {
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            #[cfg(unix)]
            {
                // The child leads its own process group: stop everything it started.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.dir.take() {
            if let Ok(log) = read_capped(&self.log_path, MAX_LOG_COPY) {
                keep_log(&log, self.log_dir.as_deref(), &self.name);
            }
            drop(dir);
        }
    }
}

fn read_capped(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ExternalGuard for ProcessGuard {
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || drop(self)).await;
        })
    }
}

async fn launch_process(name: &str, p: &ProcessSpec) -> Result<LaunchedTarget> {
    let Some(program) = p.command.first() else {
        bail!("process target `{name}`: the command is empty");
    };
    let dir = tempfile::Builder::new()
        .prefix("ocidiff-process-")
        .tempdir()
        .context("creating the process directory")?;
    let port = free_loopback_port()?;
    for sub in &p.dirs {
        std::fs::create_dir_all(dir.path().join(sub))
            .with_context(|| format!("creating {sub} in the process directory"))?;
    }
    for (rel, content) in &p.files {
        std::fs::write(dir.path().join(rel), substitute(content, port, dir.path()))
            .with_context(|| format!("writing {rel} in the process directory"))?;
    }
    let log_path = dir.path().join("process.log");
    let log = std::fs::File::create(&log_path).context("creating process.log")?;
    let log_err = log.try_clone().context("duplicating the log handle")?;
    let mut cmd = Command::new(substitute(program, port, dir.path()));
    cmd.args(
        p.command[1..]
            .iter()
            .map(|a| substitute(a, port, dir.path())),
    )
    .current_dir(dir.path())
    .stdin(Stdio::null())
    .stdout(Stdio::from(log))
    .stderr(Stdio::from(log_err));
    for (k, v) in &p.env {
        cmd.env(k, substitute(v, port, dir.path()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting `{}`", redact(program)))?;
    let mut guard = ProcessGuard {
        name: name.to_string(),
        child: Some(child),
        dir: Some(dir),
        log_path: log_path.clone(),
        log_dir: p.log_dir.clone(),
    };
    let base_url = Url::parse(&format!("http://127.0.0.1:{port}/")).context("building URL")?;
    let client = probe_client(&p.access.options)?;
    let ready = wait_answering(
        &client,
        &base_url,
        &p.wait_path,
        p.ready_timeout,
        || match guard.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => bail!("the process exited early ({status})"),
            _ => Ok(()),
        },
    )
    .await;
    if let Err(e) = ready {
        let tail = crate::targets::log_tail(&log_path, 2048);
        return Err(e.context(format!("log tail:\n{tail}")));
    }
    let creds = resolve_and_check(name, &base_url, &p.access).await?;
    Ok(crate::targets::external_target(
        name,
        "process",
        base_url,
        creds,
        Some(log_path),
        p.access.options.clone(),
        Box::new(guard),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        assert_eq!(
            substitute(
                "--listen=127.0.0.1:{port} --dir {dir}/x",
                5,
                Path::new("/t")
            ),
            "--listen=127.0.0.1:5 --dir /t/x"
        );
    }

    #[test]
    fn tls_flags_reach_url_targets() {
        let mut t = vec![
            crate::targets::parse_target_arg("u=https://alice:pw@h:5000").unwrap(),
            ("r".to_string(), TargetSpec::Reference(Box::default())),
        ];
        apply_tls(&mut t, true, None);
        match &t[0].1 {
            TargetSpec::External(e) => match e.as_ref() {
                ExternalSpec::Remote(r) => {
                    assert!(r.access.options.insecure);
                    assert_eq!(r.url.as_str(), "https://h:5000/");
                    assert_eq!(
                        r.access.credentials.as_ref().map(|c| c.password.as_str()),
                        Some("pw")
                    );
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        assert!(matches!(t[1].1, TargetSpec::Reference(_)));
        assert!(!format!("{t:?}").contains("pw\""));
    }

    #[tokio::test]
    async fn empty_or_missing_command_is_an_error() {
        let err = launch_process("p", &ProcessSpec::default())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("empty"), "{err:#}");
        let spec = ProcessSpec {
            command: vec!["/nonexistent/registry".into()],
            ..Default::default()
        };
        assert!(launch_process("p", &spec).await.is_err());
    }

    #[tokio::test]
    async fn process_that_exits_reports_its_log() {
        let spec = ProcessSpec {
            command: vec![
                "sh".into(),
                "-c".into(),
                "echo listening on {port} in {dir}; exit 3".into(),
            ],
            ready_timeout: Duration::from_secs(5),
            ..Default::default()
        };
        let err = format!("{:#}", launch_process("p", &spec).await.unwrap_err());
        assert!(err.contains("exited early"), "{err}");
        assert!(err.contains("listening on"), "{err}");
    }
}
