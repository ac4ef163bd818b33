//! `ocidiff.toml`: the target list as a file (see `harness/ocidiff.example.toml` and
//! `harness/TARGETS.md`). Each `[[target]]` has a `name` and exactly one of `preset`, `url`,
//! `container` or `process`, plus optional credentials and options.
//!
//! Secrets: prefer `password_env` (an environment variable name) or `password_file` to an inline
//! `password`; none of them is ever printed.

use crate::execute::auth::Credentials;
use crate::execute::TargetOptions;
use crate::targets::common::Access;
use crate::targets::container::ContainerSpec;
use crate::targets::external::{ExternalSpec, ProcessSpec, RemoteSpec};
use crate::targets::presets::{preset_spec, PresetParams};
use crate::targets::{validate_name, TargetSpec};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default config file, used when present and no `--config` is given.
pub const DEFAULT_CONFIG: &str = "ocidiff.toml";
/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    target: Vec<TargetEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    name: String,
    preset: Option<String>,
    url: Option<String>,
    container: Option<ContainerEntry>,
    process: Option<ProcessEntry>,
    /// Harbor project (preset `harbor`).
    project: Option<String>,
    /// Image override for container presets.
    image: Option<String>,
    /// Program of a process preset (`distribution3`, `olareg`, `ggcr`) instead of `PATH`'s.
    program: Option<PathBuf>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    #[serde(default)]
    insecure: bool,
    /// PEM file of extra CA certificates.
    ca: Option<PathBuf>,
    /// Prepended to every repository name.
    repo_prefix: Option<String>,
    /// The Distribution Spec version this registry claims (`1.0`, `1.1`, `1.1+dev`): its
    /// findings are judged by that version's text, whatever `--spec-version` says.
    spec_version: Option<String>,
    /// Upload sessions ocidiff holds open at once on this target at most.
    max_open_sessions: Option<usize>,
    /// Requests per second at most.
    rate: Option<f64>,
    /// Requests in the whole run at most (a quota): once spent, the run ends cleanly.
    max_requests: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContainerEntry {
    image: String,
    port: Option<u16>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    cmd: Vec<String>,
    wait_path: Option<String>,
    wait_log: Option<String>,
    startup_timeout: Option<u64>,
    /// Files written into the container: path -> contents.
    #[serde(default)]
    files: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessEntry {
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    wait_path: Option<String>,
    ready_timeout: Option<u64>,
}

/// Reads a config file into named target specs (in file order).
pub fn load(path: &Path) -> Result<Vec<(String, TargetSpec)>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > MAX_CONFIG_BYTES {
        bail!("{} is larger than {MAX_CONFIG_BYTES} bytes", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, path.parent().unwrap_or(Path::new(".")))
        .with_context(|| format!("in {}", path.display()))
}

/// `--config FILE`, else `./ocidiff.toml` when it exists.
pub fn resolve_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let p = PathBuf::from(DEFAULT_CONFIG);
            p.is_file().then_some(p)
        }
    }
}

/// Parses config text; relative paths (`ca`, `password_file`) are relative to `base`.
pub fn parse(text: &str, base: &Path) -> Result<Vec<(String, TargetSpec)>> {
    // TOML errors may quote the offending line, which may hold a password: keep only the
    // position and the reason.
    let file: File = toml::from_str(text).map_err(|e| {
        let span = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" at line {line}")
            })
            .unwrap_or_default();
        anyhow!("invalid config{span}: {}", e.message())
    })?;
    if file.target.is_empty() {
        bail!("no [[target]] entries");
    }
    let mut out = Vec::with_capacity(file.target.len());
    for t in file.target {
        let name = t.name.clone();
        validate_name(&name)?;
        let spec = entry_spec(t, base).with_context(|| format!("target `{name}`"))?;
        out.push((name, spec));
    }
    crate::targets::validate_targets(&out)?;
    Ok(out)
}

fn entry_spec(t: TargetEntry, base: &Path) -> Result<TargetSpec> {
    let kinds = [
        t.preset.is_some(),
        t.url.is_some() && t.preset.is_none(),
        t.container.is_some(),
        t.process.is_some(),
    ];
    let n = kinds.iter().filter(|k| **k).count();
    if n != 1 {
        bail!("give exactly one of `preset`, `url`, `container` or `process`");
    }
    let password = match (&t.password, &t.password_env, &t.password_file) {
        (Some(p), None, None) => Some(p.clone()),
        (None, Some(var), None) => Some(
            std::env::var(var)
                .map_err(|_| anyhow!("password_env: environment variable `{var}` is not set"))?,
        ),
        (None, None, Some(f)) => {
            let f = base.join(f);
            Some(
                std::fs::read_to_string(&f)
                    .with_context(|| format!("reading password_file {}", f.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            )
        }
        (None, None, None) => None,
        _ => bail!("give at most one of `password`, `password_env`, `password_file`"),
    };
    let mut credentials = match (&t.username, password) {
        (Some(u), p) => Some(Credentials {
            username: u.clone(),
            password: p.unwrap_or_default(),
        }),
        (None, Some(_)) => bail!("a password needs a `username`"),
        (None, None) => None,
    };
    let ca_pem = match &t.ca {
        Some(f) => {
            let f = base.join(f);
            let pem = std::fs::read(&f).with_context(|| format!("reading ca {}", f.display()))?;
            reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow!("ca {}: not a PEM certificate bundle: {e}", f.display()))?;
            Some(pem)
        }
        None => None,
    };
    let url = match &t.url {
        Some(u) => {
            let (url, url_creds) = crate::targets::presets::parse_url(u)?;
            if url_creds.is_some() {
                if credentials.is_some() {
                    bail!("credentials both in `url` and in `username`");
                }
                credentials = url_creds;
            }
            Some(url)
        }
        None => None,
    };
    let spec_version = match &t.spec_version {
        Some(v) => Some(
            crate::vocab::spec_version::SpecVersion::parse(v)
                .map_err(|e| anyhow::anyhow!("`spec_version`: {e}"))?,
        ),
        None => None,
    };
    if t.max_open_sessions == Some(0) {
        bail!("`max_open_sessions` must be at least 1");
    }
    if t.max_requests == Some(0) {
        bail!("`max_requests` must be at least 1 (a budget of 0 requests can test nothing)");
    }
    let min_interval = match t.rate {
        Some(r) => {
            Some(crate::execute::interval_of_rate(r).map_err(|e| anyhow::anyhow!("`rate`: {e}"))?)
        }
        None => None,
    };
    let options = TargetOptions {
        spec_version,
        max_open_sessions: t.max_open_sessions,
        min_interval,
        max_requests: t.max_requests,
        repo_prefix: t
            .repo_prefix
            .clone()
            .unwrap_or_default()
            .trim_matches('/')
            .to_string(),
        insecure: t.insecure,
        ca_pem,
        repo_names: Default::default(),
    };
    let access = Access {
        credentials: credentials.clone(),
        options: options.clone(),
    };
    if let Some(preset) = &t.preset {
        let mut spec = preset_spec(
            preset,
            PresetParams {
                url,
                project: t.project.clone(),
                image: t.image.clone(),
                credentials,
                program: t.program.clone(),
            },
        )?;
        if let TargetSpec::External(e) = &mut spec {
            let a = e.access_mut();
            a.options.insecure = options.insecure;
            a.options.ca_pem = options.ca_pem.clone();
            a.options.spec_version = options.spec_version;
            a.options.max_open_sessions = options.max_open_sessions;
            a.options.min_interval = options.min_interval;
            a.options.max_requests = options.max_requests;
            if !options.repo_prefix.is_empty() {
                a.options.repo_prefix = options.repo_prefix.clone();
            }
        } else if t.insecure || t.ca.is_some() || t.repo_prefix.is_some() || t.username.is_some() {
            bail!("preset `{preset}` runs in-process: credentials and TLS options do not apply");
        } else if t.rate.is_some() || t.max_requests.is_some() {
            bail!(
                "preset `{preset}` runs in-process: `rate` and `max_requests` are for registries \
                 ocidiff reaches over HTTP (use --rate / --max-requests for a whole run)"
            );
        } else if t.spec_version.is_some() {
            bail!(
                "preset `{preset}` runs in-process: judge it by another spec version with \
                 --spec-version (a per-target `spec_version` is for registries ocidiff reaches \
                 over HTTP)"
            );
        }
        return Ok(spec);
    }
    if t.project.is_some() || t.image.is_some() || t.program.is_some() {
        bail!("`project`, `image` and `program` go with a `preset`");
    }
    if let Some(url) = url {
        return Ok(TargetSpec::External(Box::new(ExternalSpec::Remote(
            RemoteSpec {
                url,
                access,
                preset: None,
            },
        ))));
    }
    if let Some(c) = t.container {
        let mut spec = ContainerSpec::parse(&c.image)?;
        if let Some(p) = c.port {
            if p == 0 {
                bail!("container port must not be 0");
            }
            spec.port = p;
        }
        spec.env = c.env;
        spec.cmd = c.cmd;
        if let Some(w) = c.wait_path {
            spec.wait_path = w;
        }
        spec.wait_log = c.wait_log;
        if let Some(s) = c.startup_timeout {
            spec.startup_timeout = Duration::from_secs(s.clamp(1, 3600));
        }
        for (path, contents) in c.files {
            if !path.starts_with('/') {
                bail!("container file `{path}`: use an absolute path");
            }
            spec.files.push((path, contents.into_bytes()));
        }
        spec.access = access;
        return Ok(TargetSpec::External(Box::new(ExternalSpec::Container(
            spec,
        ))));
    }
    if let Some(p) = t.process {
        if p.command.is_empty() || p.command[0].trim().is_empty() {
            bail!("process `command` is empty");
        }
        let mut spec = ProcessSpec {
            command: p.command,
            env: p.env,
            access,
            ..Default::default()
        };
        if let Some(w) = p.wait_path {
            spec.wait_path = w;
        }
        if let Some(s) = p.ready_timeout {
            spec.ready_timeout = Duration::from_secs(s.clamp(1, 3600));
        }
        return Ok(TargetSpec::External(Box::new(ExternalSpec::Process(spec))));
    }
    bail!("no target kind")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../ocidiff.example.toml");
        std::env::set_var("OCIDIFF_EXAMPLE_HARBOR_PASSWORD", "x");
        let targets = parse(text, Path::new(".")).unwrap();
        let names: Vec<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"reference"), "{names:?}");
        assert!(targets.iter().any(|(_, s)| s.kind() == "container"));
        assert!(targets.iter().any(|(_, s)| s.kind() == "process"));
        assert!(targets.iter().any(|(_, s)| s.kind() == "url"));
    }

    #[test]
    fn spec_version_and_session_bound_per_target() {
        let t = parse(
            "[[target]]\nname = \"u\"\nurl = \"http://127.0.0.1:5000\"\nspec_version = \"1.0\"\nmax_open_sessions = 8\n",
            Path::new("."),
        )
        .unwrap();
        match &t[0].1 {
            TargetSpec::External(e) => match e.as_ref() {
                ExternalSpec::Remote(r) => {
                    assert_eq!(
                        r.access.options.spec_version,
                        Some(crate::vocab::spec_version::SpecVersion::V1_0)
                    );
                    assert_eq!(r.access.options.max_open_sessions, Some(8));
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        for (text, needle) in [
            (
                "url = \"http://h:1\"\nspec_version = \"2.0\"",
                "unknown spec version",
            ),
            ("url = \"http://h:1\"\nmax_open_sessions = 0", "at least 1"),
            (
                "preset = \"reference\"\nspec_version = \"1.0\"",
                "--spec-version",
            ),
        ] {
            let err = parse(
                &format!("[[target]]\nname = \"x\"\n{text}\n"),
                Path::new("."),
            )
            .unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{text}: {err:#}");
        }
    }

    #[test]
    fn kinds_and_errors() {
        let t = parse(
            r#"
[[target]]
name = "r"
preset = "reference"

[[target]]
name = "u"
url = "http://alice:hunter2@127.0.0.1:5000"
repo_prefix = "/team/"

[[target]]
name = "c"
container = { image = "registry:2", port = 5000, env = { A = "b" }, files = { "/etc/x" = "y" } }

[[target]]
name = "p"
process = { command = ["docker-registry", "serve", "{dir}/config.yml"], ready_timeout = 5 }
"#,
            Path::new("."),
        )
        .unwrap();
        assert_eq!(t.len(), 4);
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        match &t[1].1 {
            TargetSpec::External(e) => match e.as_ref() {
                ExternalSpec::Remote(r) => {
                    assert_eq!(r.access.options.repo_prefix, "team");
                    assert_eq!(
                        r.access.credentials.as_ref().map(|c| c.password.as_str()),
                        Some("hunter2")
                    );
                    assert_eq!(r.url.as_str(), "http://127.0.0.1:5000/");
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        for (text, needle) in [
            ("", "no [[target]]"),
            ("[[target]]\nname = \"a\"\n", "exactly one"),
            (
                "[[target]]\nname = \"a\"\npreset = \"zot\"\ncontainer = { image = \"x\" }\n",
                "exactly one",
            ),
            ("[[target]]\nname = \"a\"\nbogus = 1\n", "unknown field"),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h\"\npassword = \"secret-pw\"\n",
                "needs a `username`",
            ),
            (
                "[[target]]\nname = \"a\"\npreset = \"harbor\"\n",
                "does not launch Harbor",
            ),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h\"\nusername = \"u\"\npassword_env = \"OCIDIFF_SURELY_UNSET_VAR\"\n",
                "not set",
            ),
            (
                "[[target]]\nname = \"a\"\npreset = \"reference\"\n[[target]]\nname = \"a\"\npreset = \"reference\"\n",
                "twice",
            ),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h\"\npassword = \"secret-pw\n",
                "invalid config at line",
            ),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h\"\nmax_requests = 0\n",
                "`max_requests` must be at least 1",
            ),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h\"\nrate = 0\n",
                "`rate`: rate must be a positive number",
            ),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h\"\nrate = -2.5\n",
                "positive number",
            ),
            (
                "[[target]]\nname = \"a\"\nurl = \"http://h\"\nrate = 1e9\n",
                "more than ocidiff can pace",
            ),
            (
                "[[target]]\nname = \"a\"\npreset = \"reference\"\nrate = 2\n",
                "runs in-process",
            ),
        ] {
            let err = format!("{:#}", parse(text, Path::new(".")).unwrap_err());
            assert!(err.contains(needle), "`{text}`: {err}");
            assert!(!err.contains("secret-pw"), "{err}");
        }
    }
}
