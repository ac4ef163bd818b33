//! Named registry presets: how to launch (or reach) each registry ocidiff knows, and the
//! behaviour the spec leaves to it. `--target NAME=preset:PRESET`, `--target NAME=container:IMAGE`
//! and `preset = "..."` in `ocidiff.toml` all come here.

use crate::execute::auth::Credentials;
use crate::targets::common::Access;
use crate::targets::container::ContainerSpec;
use crate::targets::external::{ExternalSpec, ProcessSpec, RemoteSpec};
use crate::targets::{parse_registry_url, TargetSpec};
use crate::vocab::redact::redact;
use anyhow::{bail, Result};
use url::Url;

/// A named preset.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    /// How ocidiff brings it up.
    pub launch: &'static str,
    /// What the spec allows this registry to do differently (not reported as violations: the
    /// oracle classifies these as variations or unsupported).
    pub allows: &'static [&'static str],
    /// A program ocidiff starts from `PATH` (`tests/tools/install-go-tools.sh` installs them);
    /// such a preset is one of the default targets when its program is there.
    pub program: Option<&'static str>,
}

/// Every preset, in documentation order.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "reference",
        launch: "embedded reference registry (in-process)",
        allows: &["everything the spec allows; this is the oracle"],
        program: None,
    },
    Preset {
        name: "container-registry",
        launch: "embedded crates.io container-registry 0.3 (in-process)",
        allows: &["partial spec coverage: see its conformance report (`ocidiff conformance`)"],
        program: None,
    },
    Preset {
        name: "distribution",
        launch: "`docker-registry` / `registry` binary from PATH, loopback port, temp storage",
        allows: &[
            "no referrers API (end-12a answers 404: unsupported)",
            "no cross-repository mount without `from` (end-11 falls back to an upload, 202)",
            "DELETE needs storage.delete.enabled (on in ocidiff's config)",
        ],
        program: None,
    },
    Preset {
        name: "distribution3",
        launch: "`distribution3` from PATH (distribution v3, `go install`ed by tests/tools/install-go-tools.sh): `distribution3 serve config.yml`, filesystem storage in a temp dir, deletes enabled, loopback port",
        allows: &[
            "no referrers API (end-12a answers 404: unsupported); sha512 declined",
            "no cross-repository mount without `from` (end-11 falls back to an upload, 202)",
        ],
        program: Some("distribution3"),
    },
    Preset {
        name: "olareg",
        launch: "`olareg` from PATH: `olareg serve --addr 127.0.0.1 --port PORT --dir TEMP --api-delete --api-blob-delete`",
        allows: &["deletes enabled by its flags; garbage collection at its defaults"],
        program: Some("olareg"),
    },
    Preset {
        name: "ggcr",
        launch: "`crane` from PATH (go-containerregistry): `crane registry serve --address 127.0.0.1:PORT --disk TEMP`",
        allows: &["in-memory manifests, blobs on disk; sends a `Warning` header on some answers"],
        program: Some("crane"),
    },
    Preset {
        name: "distribution-container",
        launch: "image registry:2 (REGISTRY_STORAGE_DELETE_ENABLED=true), port 5000",
        allows: &["as `distribution`"],
        program: None,
    },
    Preset {
        name: "distribution3-container",
        launch: "image registry:3 (REGISTRY_STORAGE_DELETE_ENABLED=true), port 5000",
        allows: &["as `distribution`; distribution 3 serves the referrers API"],
        program: None,
    },
    Preset {
        name: "zot",
        launch: "image ghcr.io/project-zot/zot-linux-amd64:latest with a minimal config, port 5000",
        allows: &[
            "tag listing and pagination per the spec; `_catalog` and referrers are core (no extensions)",
            "cross-repository mount answers 202 (an upload) while dedupe is off, as configured here",
            "DELETE of a blob a manifest still references, or of a manifest an index references: 405 DENIED",
            "Docker media types accepted only with `http.compat: [\"docker2s2\"]` (set here; else 415)",
        ],
        program: None,
    },
    Preset {
        name: "trow",
        launch: "image ghcr.io/trow-registry/trow:latest, port 8000",
        allows: &[
            "blob DELETE may be refused (405: unsupported)",
            "referrers API may be absent",
        ],
        program: None,
    },
    Preset {
        name: "harbor",
        launch: "not launched: an existing Harbor (url, project, credentials required)",
        allows: &[
            "repository names must start with `<project>/` (applied as the repository prefix)",
            "bearer token auth; robot accounts or users with push + delete on the project",
            "blob DELETE may be refused (405: unsupported)",
        ],
        program: None,
    },
];

/// Looks a preset up by name.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// What a preset may be given (from `ocidiff.toml`; empty on the command line).
#[derive(Clone, Debug, Default)]
pub struct PresetParams {
    /// An existing instance instead of launching one (required for `harbor`).
    pub url: Option<Url>,
    /// Harbor project (repository prefix).
    pub project: Option<String>,
    /// Overrides the preset's image (`IMAGE[:TAG]`).
    pub image: Option<String>,
    pub credentials: Option<Credentials>,
    /// The program of a process preset (`NAME=olareg:/path/to/olareg`); else from `PATH`.
    pub program: Option<std::path::PathBuf>,
}

const ZOT_CONFIG: &str = r#"{
  "distSpecVersion": "1.1.1",
  "storage": { "rootDirectory": "/var/lib/registry", "gc": false, "dedupe": false },
  "http": { "address": "0.0.0.0", "port": "5000", "compat": ["docker2s2"] },
  "log": { "level": "warn" }
}
"#;

fn container(image: &str, override_image: Option<&str>, port: u16) -> Result<ContainerSpec> {
    let mut c = ContainerSpec::parse(override_image.unwrap_or(image))?;
    c.port = port;
    Ok(c)
}

/// The target spec of a preset.
pub fn preset_spec(name: &str, params: PresetParams) -> Result<TargetSpec> {
    let Some(preset) = find(name) else {
        bail!(
            "unknown preset `{}` (known: {})",
            redact(name),
            PRESETS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let access = Access {
        credentials: params.credentials.clone(),
        ..Default::default()
    };
    if preset.name == "harbor" {
        let (Some(url), Some(project)) = (params.url.clone(), params.project.clone()) else {
            bail!(
                "preset `harbor` needs an existing Harbor: `url` and `project` (and credentials, \
                 from the config, OCIDIFF_<NAME>_USERNAME/_PASSWORD or the Docker config); \
                 ocidiff does not launch Harbor (several services and a database, not one image). \
                 Configure it in ocidiff.toml"
            );
        };
        let project = project.trim_matches('/').to_string();
        if project.is_empty()
            || !project
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        {
            bail!("preset `harbor`: project `{project}` is not a valid Harbor project name");
        }
        let mut access = access;
        access.options.repo_prefix = project;
        return Ok(TargetSpec::External(Box::new(ExternalSpec::Remote(
            RemoteSpec {
                url,
                access,
                preset: Some("harbor".into()),
            },
        ))));
    }
    if let Some(url) = params.url {
        // Any preset may point at an existing instance.
        return Ok(TargetSpec::External(Box::new(ExternalSpec::Remote(
            RemoteSpec {
                url,
                access,
                preset: Some(preset.name.to_string()),
            },
        ))));
    }
    let image = params.image.as_deref();
    let spec = match preset.name {
        "reference" => TargetSpec::Reference(Box::default()),
        "container-registry" => TargetSpec::ContainerRegistry,
        "distribution" => match image {
            Some(_) => return preset_spec("distribution-container", params),
            None => TargetSpec::Distribution { binary: None },
        },
        "distribution-container" | "distribution3-container" => {
            let default = if preset.name == "distribution-container" {
                "registry:2"
            } else {
                "registry:3"
            };
            let mut c = container(default, image, 5000)?;
            c.env
                .insert("REGISTRY_STORAGE_DELETE_ENABLED".into(), "true".into());
            c.access = access;
            TargetSpec::External(Box::new(ExternalSpec::Container(c)))
        }
        "zot" => {
            let mut c = container("ghcr.io/project-zot/zot-linux-amd64:latest", image, 5000)?;
            c.files.push((
                "/etc/zot/config.json".into(),
                ZOT_CONFIG.as_bytes().to_vec(),
            ));
            c.access = access;
            TargetSpec::External(Box::new(ExternalSpec::Container(c)))
        }
        "trow" => {
            let mut c = container("ghcr.io/trow-registry/trow:latest", image, 8000)?;
            c.access = access;
            TargetSpec::External(Box::new(ExternalSpec::Container(c)))
        }
        "distribution3" | "olareg" | "ggcr" => {
            let program = match &params.program {
                Some(p) => p.clone(),
                None => program_on_path(preset)?,
            };
            TargetSpec::External(Box::new(ExternalSpec::Process(process_recipe(
                preset.name,
                &program,
                access,
            ))))
        }
        other => bail!("preset `{other}` has no launch recipe"),
    };
    Ok(spec)
}

/// The program of a process preset, from `PATH`.
pub fn program_on_path(preset: &Preset) -> Result<std::path::PathBuf> {
    let program = preset.program.unwrap_or(preset.name);
    crate::targets::find_on_path(program).ok_or_else(|| {
        anyhow::anyhow!(
            "preset `{}`: no `{program}` on PATH (bash tests/tools/install-go-tools.sh installs \
             it; or name the binary: NAME={}:/path/to/{program})",
            preset.name,
            preset.name
        )
    })
}

/// How ocidiff starts a process preset: a fresh temp dir (`{dir}`) for its storage and
/// configuration, a free loopback port (`{port}`).
fn process_recipe(preset: &str, program: &std::path::Path, access: Access) -> ProcessSpec {
    let mut spec = ProcessSpec {
        command: vec![program.display().to_string()],
        dirs: vec!["data".to_string()],
        access,
        ..Default::default()
    };
    let args: &[&str] = match preset {
        "distribution3" => {
            spec.files.push((
                "config.yml".to_string(),
                crate::targets::distribution_config_template(),
            ));
            // As for distribution 2.8 (targets::distribution_gogc): only the collector's pace.
            if std::env::var_os("GOGC").is_none() {
                spec.env.insert("GOGC".into(), "400".into());
            }
            &["serve", "{dir}/config.yml"]
        }
        "olareg" => &[
            "serve",
            "--addr",
            "127.0.0.1",
            "--port",
            "{port}",
            "--dir",
            "{dir}/data",
            "--api-delete",
            "--api-blob-delete",
        ],
        _ => &[
            "registry",
            "serve",
            "--address",
            "127.0.0.1:{port}",
            "--disk",
            "{dir}/data",
        ],
    };
    spec.command.extend(args.iter().map(|a| a.to_string()));
    spec
}

/// `container:IMAGE[:TAG]`, `preset:NAME`, and `NAME` of a preset that is not a built-in kind;
/// `None` when `value` is none of these.
pub fn parse_kind(value: &str) -> Result<Option<TargetSpec>> {
    if let Some(image) = value.strip_prefix("container:") {
        let c = ContainerSpec::parse(image)?;
        return Ok(Some(TargetSpec::External(Box::new(
            ExternalSpec::Container(c),
        ))));
    }
    if let Some(name) = value.strip_prefix("preset:") {
        return preset_spec(name.trim(), PresetParams::default()).map(Some);
    }
    if find(value).is_some() {
        return preset_spec(value, PresetParams::default()).map(Some);
    }
    // `olareg:/path/to/olareg`: a process preset with its program named.
    if let Some((name, path)) = value.split_once(':') {
        if let Some(p) = find(name).filter(|p| p.program.is_some()) {
            if path.is_empty() {
                bail!("`{name}:` needs a program path after the colon");
            }
            return preset_spec(
                p.name,
                PresetParams {
                    program: Some(path.into()),
                    ..Default::default()
                },
            )
            .map(Some);
        }
    }
    Ok(None)
}

/// The target name when none is given: the preset's name for `preset:NAME` / `NAME`.
pub fn default_name(value: &str) -> Option<&str> {
    let name = value.strip_prefix("preset:").unwrap_or(value).trim();
    find(name).map(|p| p.name)
}

/// A URL for a preset given as `preset:NAME@URL`? Not supported on the command line: the config
/// file carries `url`. This helper parses a config `url` value.
pub fn parse_url(value: &str) -> Result<(Url, Option<Credentials>)> {
    let (url, u, p) = parse_registry_url(value)?;
    Ok((
        url,
        u.map(|username| Credentials {
            username,
            password: p.unwrap_or_default(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::parse_target_arg;

    fn container_of(spec: &TargetSpec) -> &ContainerSpec {
        match spec {
            TargetSpec::External(e) => match e.as_ref() {
                ExternalSpec::Container(c) => c,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn command_line_forms() {
        let (n, s) = parse_target_arg("d=container:localhost/ocidiff-distribution:2.8.2").unwrap();
        assert_eq!(n, "d");
        assert_eq!(s.kind(), "container");
        assert_eq!(
            container_of(&s).image_ref(),
            "localhost/ocidiff-distribution:2.8.2"
        );
        let (n, s) = parse_target_arg("z=preset:zot").unwrap();
        assert_eq!(n, "z");
        let c = container_of(&s);
        assert_eq!(c.image, "ghcr.io/project-zot/zot-linux-amd64");
        assert!(c.files.iter().any(|(p, _)| p == "/etc/zot/config.json"));
        let (_, s) = parse_target_arg("r=preset:distribution-container").unwrap();
        assert_eq!(container_of(&s).image_ref(), "registry:2");
        assert_eq!(
            container_of(&s).env["REGISTRY_STORAGE_DELETE_ENABLED"],
            "true"
        );
        let (_, s) = parse_target_arg("t=preset:trow").unwrap();
        assert_eq!(container_of(&s).port, 8000);
        // `--target distribution` stays the native preset.
        assert!(matches!(
            parse_target_arg("distribution").unwrap().1,
            TargetSpec::Distribution { binary: None }
        ));
        assert!(matches!(
            parse_target_arg("x=preset:reference").unwrap().1,
            TargetSpec::Reference(_)
        ));
        let (n, s) = parse_target_arg("zot").unwrap();
        assert_eq!((n.as_str(), s.kind()), ("zot", "container"));
        assert_eq!(parse_target_arg("preset:trow").unwrap().0, "trow");
        for (arg, needle) in [
            ("h=preset:harbor", "does not launch Harbor"),
            ("x=preset:quay", "unknown preset"),
            ("x=container:", "needs an image"),
            ("x=container:a@sha256:00", "digests"),
        ] {
            let err = format!("{:#}", parse_target_arg(arg).unwrap_err());
            assert!(err.contains(needle), "{arg}: {err}");
        }
    }

    #[test]
    fn harbor_needs_url_and_project() {
        let url = Url::parse("https://harbor.example/").unwrap();
        let spec = preset_spec(
            "harbor",
            PresetParams {
                url: Some(url),
                project: Some("library".into()),
                ..Default::default()
            },
        )
        .unwrap();
        match spec {
            TargetSpec::External(e) => match *e {
                ExternalSpec::Remote(r) => {
                    assert_eq!(r.access.options.repo_prefix, "library");
                    assert_eq!(r.preset.as_deref(), Some("harbor"));
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        assert!(preset_spec(
            "harbor",
            PresetParams {
                url: Some(Url::parse("https://h/").unwrap()),
                project: Some("Bad Project".into()),
                ..Default::default()
            }
        )
        .is_err());
    }
}
