//! Where a target's credentials come from: flags / URL, the environment
//! (`OCIDIFF_<NAME>_USERNAME` / `_PASSWORD`), `~/.docker/config.json`; and the access check
//! that tells a user clearly when credentials are wrong or missing.

use crate::execute::auth::{parse_bearer, without_url, BearerState, Credentials, TokenError};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use std::path::{Path, PathBuf};
use url::Url;

/// Where a target's credentials came from (for messages; never the values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    Explicit,
    Environment,
    DockerConfig,
}

/// The environment variable prefix for a target name: `OCIDIFF_<NAME>_` with the name
/// uppercased and every character other than a letter or digit turned into `_`.
pub fn env_prefix(target_name: &str) -> String {
    let n: String = target_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("OCIDIFF_{n}_")
}

/// Credentials from `OCIDIFF_<NAME>_USERNAME` / `OCIDIFF_<NAME>_PASSWORD` (the password may
/// also come from a file named by `OCIDIFF_<NAME>_PASSWORD_FILE`).
pub fn credentials_from_env_with(
    target_name: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<Credentials>> {
    let p = env_prefix(target_name);
    let Some(username) = get(&format!("{p}USERNAME")).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let password = match get(&format!("{p}PASSWORD")) {
        Some(pw) => pw,
        None => match get(&format!("{p}PASSWORD_FILE")) {
            Some(file) => std::fs::read_to_string(&file)
                .with_context(|| format!("reading {p}PASSWORD_FILE `{file}`"))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            None => String::new(),
        },
    };
    Ok(Some(Credentials { username, password }))
}

/// [`credentials_from_env_with`] on the process environment.
pub fn credentials_from_env(target_name: &str) -> Result<Option<Credentials>> {
    credentials_from_env_with(target_name, |k| std::env::var(k).ok())
}

/// The Docker client config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".docker").join("config.json"))
}

/// The `host[:port]` key a registry URL has in `auths` (Docker Hub's index URL for
/// `docker.io` / `registry-1.docker.io`).
fn registry_key(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// Normalizes an `auths` key (`https://host:port/v1/`, `host:port`, ...) to `host[:port]`.
fn normalize_auth_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or("").to_ascii_lowercase()
}

/// Credentials for `url` from a Docker config file's `auths` (`auth` = base64 `user:pass`, or
/// `username` + `password`). Credential helpers (`credsStore`, `credHelpers`) and
/// `identitytoken` are not supported: an entry with only those gives `None`.
pub fn credentials_from_docker_config(path: &Path, url: &Url) -> Result<Option<Credentials>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{} is not valid JSON: {e}", path.display()))?;
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let Some(want) = registry_key(url).map(|k| k.to_ascii_lowercase()) else {
        return Ok(None);
    };
    let mut keys: Vec<&String> = auths.keys().collect();
    keys.sort();
    for key in keys {
        if normalize_auth_key(key) != want {
            continue;
        }
        let entry = &auths[key];
        if let Some(auth) = entry
            .get("auth")
            .and_then(|a| a.as_str())
            .filter(|a| !a.is_empty())
        {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| {
                    anyhow!(
                        "{}: the `auth` of `{key}` is not valid base64",
                        path.display()
                    )
                })?;
            let raw = String::from_utf8(raw)
                .map_err(|_| anyhow!("{}: the `auth` of `{key}` is not UTF-8", path.display()))?;
            let Some((u, p)) = raw.split_once(':') else {
                bail!(
                    "{}: the `auth` of `{key}` is not `user:password`",
                    path.display()
                );
            };
            return Ok(Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
        if let Some(u) = entry.get("username").and_then(|u| u.as_str()) {
            let p = entry.get("password").and_then(|p| p.as_str()).unwrap_or("");
            return Ok(Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
    }
    Ok(None)
}

/// A target's credentials: explicit ones (URL / config) first, then the environment, then the
/// Docker config file.
pub fn resolve_credentials(
    target_name: &str,
    url: &Url,
    explicit: Option<Credentials>,
) -> Result<Option<(Credentials, CredentialSource)>> {
    if let Some(c) = explicit {
        return Ok(Some((c, CredentialSource::Explicit)));
    }
    if let Some(c) = credentials_from_env(target_name)? {
        return Ok(Some((c, CredentialSource::Environment)));
    }
    if let Some(path) = docker_config_path() {
        if let Some(c) = credentials_from_docker_config(&path, url)? {
            return Ok(Some((c, CredentialSource::DockerConfig)));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Access check
// ---------------------------------------------------------------------------------------------

/// Checks that `GET /v2/` succeeds with these credentials (basic, or the bearer flow when the
/// registry challenges with `Bearer`). A clear error when the registry refuses: wrong
/// credentials, or credentials needed but none given.
pub async fn check_access(
    target_name: &str,
    base: &Url,
    creds: Option<&Credentials>,
    client: &reqwest::Client,
) -> Result<()> {
    let url = base.join("v2/").context("joining /v2/")?;
    let send = |token: Option<String>| {
        let mut b = client.get(url.clone());
        if let Some(t) = token {
            b = b.bearer_auth(t);
        } else if let Some(c) = creds {
            b = b.basic_auth(&c.username, Some(&c.password));
        }
        b.send()
    };
    let how = || {
        format!(
            "give credentials as NAME=http://user:pass@host, in {}USERNAME / {}PASSWORD, or in the \
             Docker config's `auths`",
            env_prefix(target_name),
            env_prefix(target_name)
        )
    };
    let resp = send(None)
        .await
        .map_err(|e| anyhow!("GET /v2/ failed: {}", without_url(&e)))?;
    if resp.status().as_u16() != 401 {
        return Ok(());
    }
    let challenge = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_bearer);
    let Some(params) = challenge else {
        if creds.is_some() {
            bail!("target `{target_name}` rejected its credentials (GET /v2/ answered 401)");
        }
        bail!(
            "target `{target_name}` requires authentication (GET /v2/ answered 401): {}",
            how()
        );
    };
    let state = BearerState::default();
    let realm = state.learn(&params).ok_or_else(|| {
        anyhow!("target `{target_name}` sent a bearer challenge with a bad realm")
    })?;
    let scope = params.get("scope").cloned().unwrap_or_default();
    let token = match state.token(client, &realm, &scope, creds).await {
        Ok(t) => t,
        Err(TokenError::Status(s @ (401 | 403))) => {
            if creds.is_some() {
                bail!("target `{target_name}`: the token endpoint rejected its credentials ({s})");
            }
            bail!(
                "target `{target_name}`: the token endpoint requires credentials ({s}): {}",
                how()
            );
        }
        Err(e) => bail!("target `{target_name}`: no bearer token: {e}"),
    };
    let resp = send(Some(token))
        .await
        .map_err(|e| anyhow!("GET /v2/ failed: {}", without_url(&e)))?;
    if resp.status().as_u16() == 401 {
        bail!("target `{target_name}` refused its bearer token (GET /v2/ answered 401)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_credentials() {
        assert_eq!(env_prefix("my-reg.1"), "OCIDIFF_MY_REG_1_");
        let env = |k: &str| match k {
            "OCIDIFF_HUB_USERNAME" => Some("alice".to_string()),
            "OCIDIFF_HUB_PASSWORD" => Some("s3cret".to_string()),
            _ => None,
        };
        let c = credentials_from_env_with("hub", env).unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cret")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(credentials_from_env_with("other", env).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "from-file\n").unwrap();
        let fp = f.display().to_string();
        let env2 = move |k: &str| match k {
            "OCIDIFF_X_USERNAME" => Some("bob".to_string()),
            "OCIDIFF_X_PASSWORD_FILE" => Some(fp.clone()),
            _ => None,
        };
        let c = credentials_from_env_with("x", env2).unwrap().unwrap();
        assert_eq!(c.password, "from-file");
    }

    #[test]
    fn docker_config_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{
                    "https://127.0.0.1:5000/v1/": {{"auth": "{auth}"}},
                    "registry.example": {{"username": "bob", "password": "pw"}},
                    "helper.example": {{"identitytoken": "x"}},
                    "bad.example": {{"auth": "!!!"}}
                }}, "credsStore": "desktop"}}"#
            ),
        )
        .unwrap();
        let get = |u: &str| credentials_from_docker_config(&path, &Url::parse(u).unwrap());
        let c = get("http://127.0.0.1:5000/").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "pa:ss")
        );
        let c = get("https://registry.example/").unwrap().unwrap();
        assert_eq!(c.username, "bob");
        assert!(get("http://127.0.0.1:5001/").unwrap().is_none());
        assert!(get("https://helper.example/").unwrap().is_none());
        let err = format!("{:#}", get("https://bad.example/").unwrap_err());
        assert!(err.contains("base64"), "{err}");
        assert!(credentials_from_docker_config(
            &dir.path().join("none.json"),
            &Url::parse("http://h/").unwrap()
        )
        .unwrap()
        .is_none());
        std::fs::write(&path, "not json").unwrap();
        assert!(get("http://127.0.0.1:5000/").is_err());
    }
}
