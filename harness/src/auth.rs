//! Registry authentication: `WWW-Authenticate` challenge parsing, the Docker/OCI bearer token
//! flow (realm, service, scope per repository and action, cached per scope until expiry), and
//! where credentials come from (flags / URL, environment, `~/.docker/config.json`).
//!
//! Secrets never leave this module in text form: [`Credentials`]' `Debug` prints `***`, tokens
//! are never logged, and error messages name the target and the status, not the values.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use url::Url;

/// Longest `WWW-Authenticate` value parsed; longer values are cut.
const MAX_CHALLENGE_LEN: usize = 8 * 1024;
/// At most this many challenges / parameters are parsed from one header value.
const MAX_ITEMS: usize = 64;
/// Token lifetime when the token endpoint gives no `expires_in` (Docker token spec: 60 s).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);
/// A cached token is renewed this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
/// At most this many tokens are cached per target (the cache is cleared when full).
const MAX_CACHED_TOKENS: usize = 1024;
/// Largest token response read.
const MAX_TOKEN_BODY: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Challenges
// ---------------------------------------------------------------------------------------------

/// One challenge of a `WWW-Authenticate` header: a scheme (lowercased) and its parameters
/// (names lowercased, values unquoted). A `token68` value is stored under the name `""`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t') {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b',') {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn token(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len() && is_tchar(self.s[self.i] as char) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    /// A token68 value: tchars plus `/` and trailing `=`.
    fn token68(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len()
            && (is_tchar(self.s[self.i] as char) || matches!(self.s[self.i], b'/' | b'='))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    /// A quoted string (the opening quote is current); backslash escapes one character.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' if self.i + 1 < self.s.len() => {
                    out.push(self.s[self.i + 1]);
                    self.i += 2;
                }
                b => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Parses a `WWW-Authenticate` value into its challenges (RFC 7235 section 4.1): several
/// challenges may share one value, separated by commas; parameter values may be quoted strings
/// holding commas, `=` and escaped quotes. Never panics; anything unparsable is skipped.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    let bytes = value.as_bytes();
    let mut lx = Lexer {
        s: &bytes[..bytes.len().min(MAX_CHALLENGE_LEN)],
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    // Every iteration consumes at least one byte or stops, and the item count is bounded.
    while out.len() < MAX_ITEMS {
        lx.skip_ws_commas();
        if lx.peek().is_none() {
            break;
        }
        let scheme = lx.token();
        if scheme.is_empty() {
            lx.i += 1; // not a token character: skip it
            continue;
        }
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        // `Scheme token68`: one value, then the end or a comma.
        lx.skip_ws();
        let t_start = lx.i;
        let t = lx.token68();
        lx.skip_ws();
        if !t.is_empty()
            && !t.trim_end_matches('=').contains('=')
            && matches!(lx.peek(), None | Some(b','))
        {
            ch.params.insert(String::new(), t);
        } else {
            lx.i = t_start;
        }
        // Parameters until the next challenge (a token not followed by `=`).
        for _ in 0..MAX_ITEMS {
            lx.skip_ws_commas();
            let name_start = lx.i;
            let name = lx.token();
            if name.is_empty() {
                break;
            }
            lx.skip_ws();
            if lx.peek() != Some(b'=') {
                lx.i = name_start;
                break;
            }
            lx.i += 1;
            lx.skip_ws();
            let v = if lx.peek() == Some(b'"') {
                lx.quoted()
            } else {
                let start = lx.i;
                while lx.i < lx.s.len() && !matches!(lx.s[lx.i], b',' | b' ' | b'\t') {
                    lx.i += 1;
                }
                String::from_utf8_lossy(&lx.s[start..lx.i]).into_owned()
            };
            ch.params.insert(name.to_ascii_lowercase(), v);
        }
        out.push(ch);
    }
    out
}

/// The parameters of the first `Bearer` challenge with a `realm` in a `WWW-Authenticate` value
/// (`realm`, `service`, `scope`, `error`, ...), names lowercased.
pub fn parse_bearer(value: &str) -> Option<BTreeMap<String, String>> {
    parse_challenges(value)
        .into_iter()
        .find(|c| c.scheme == "bearer" && c.params.contains_key("realm"))
        .map(|c| c.params)
}

// ---------------------------------------------------------------------------------------------
// Scopes
// ---------------------------------------------------------------------------------------------

/// The token scope a request needs: `repository:<name>:pull` for reads, `...:pull,push` for
/// writes and every upload-session request, `...:delete` for deletes, `registry:catalog:*` for
/// the catalog, `""` for `/v2/` and anything else.
pub fn scope_for(method: &str, path: &str) -> String {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return String::new();
    };
    if rest == "_catalog" || rest.starts_with("_catalog?") {
        return "registry:catalog:*".to_string();
    }
    let Some((repo, kind)) = [
        "/blobs/uploads",
        "/blobs/",
        "/manifests/",
        "/tags/",
        "/referrers/",
    ]
    .iter()
    .find_map(|m| rest.find(m).map(|i| (&rest[..i], *m))) else {
        return String::new();
    };
    if repo.is_empty() {
        return String::new();
    }
    let actions = if kind == "/blobs/uploads" {
        "pull,push"
    } else {
        match method {
            "GET" | "HEAD" => "pull",
            "DELETE" => "delete",
            _ => "pull,push",
        }
    };
    format!("repository:{repo}:{actions}")
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

/// A username and password. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(***)")
    }
}

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
// Tokens
// ---------------------------------------------------------------------------------------------

/// Where a registry sends clients for tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRealm {
    pub realm: Url,
    pub service: Option<String>,
}

#[derive(Clone)]
struct CachedToken {
    token: String,
    expires: Instant,
}

/// Per-target bearer state: the realm learned from the first challenge and the tokens by scope.
#[derive(Default)]
pub struct BearerState {
    realm: Mutex<Option<TokenRealm>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
}

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token endpoint answered {0}")]
    Status(u16),
    #[error("token request failed: {0}")]
    Transport(String),
    #[error("token response has no `token` or `access_token`")]
    NoToken,
    #[error("bad token realm")]
    BadRealm,
}

impl BearerState {
    /// The realm learned so far (None: the target never sent a bearer challenge).
    pub fn realm(&self) -> Option<TokenRealm> {
        self.realm.lock().ok()?.clone()
    }

    /// Learns the realm from a challenge's parameters; returns it.
    pub fn learn(&self, params: &BTreeMap<String, String>) -> Option<TokenRealm> {
        let realm = Url::parse(params.get("realm")?).ok()?;
        if !matches!(realm.scheme(), "http" | "https") {
            return None;
        }
        let r = TokenRealm {
            realm,
            service: params.get("service").cloned(),
        };
        if let Ok(mut m) = self.realm.lock() {
            *m = Some(r.clone());
        }
        Some(r)
    }

    /// A cached, unexpired token for `scope`.
    pub fn cached(&self, scope: &str) -> Option<String> {
        let m = self.tokens.lock().ok()?;
        let t = m.get(scope)?;
        (Instant::now() + EXPIRY_MARGIN < t.expires).then(|| t.token.clone())
    }

    /// Forgets the token of `scope` (after the registry refused it).
    pub fn forget(&self, scope: &str) {
        if let Ok(mut m) = self.tokens.lock() {
            m.remove(scope);
        }
    }

    fn store(&self, scope: &str, token: &str, ttl: Duration) {
        if let Ok(mut m) = self.tokens.lock() {
            if m.len() >= MAX_CACHED_TOKENS {
                m.clear();
            }
            m.insert(
                scope.to_string(),
                CachedToken {
                    token: token.to_string(),
                    expires: Instant::now() + ttl,
                },
            );
        }
    }

    /// A token for `scope`: from the cache, else fetched from the realm (sending `creds` as
    /// basic auth when set) and cached until `expires_in` (default 60 s).
    pub async fn token(
        &self,
        client: &reqwest::Client,
        realm: &TokenRealm,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, TokenError> {
        if let Some(t) = self.cached(scope) {
            return Ok(t);
        }
        let (token, ttl) = fetch_token(client, realm, scope, creds).await?;
        self.store(scope, &token, ttl);
        Ok(token)
    }
}

/// Fetches a token: `GET realm?service=...&scope=...` (scopes separated by spaces become
/// repeated `scope` parameters). Accepts `token` or `access_token`; `expires_in` in seconds.
pub async fn fetch_token(
    client: &reqwest::Client,
    realm: &TokenRealm,
    scope: &str,
    creds: Option<&Credentials>,
) -> Result<(String, Duration), TokenError> {
    let mut url = realm.realm.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = &realm.service {
            q.append_pair("service", s);
        }
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            q.append_pair("scope", s);
        }
    }
    let mut b = client.get(url);
    if let Some(c) = creds {
        b = b.basic_auth(&c.username, Some(&c.password));
    }
    let resp = b
        .send()
        .await
        .map_err(|e| TokenError::Transport(crate::target::redact(&without_url(&e))))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(TokenError::Status(status));
    }
    let body = crate::observe::read_body_capped(resp, MAX_TOKEN_BODY)
        .await
        .map_err(|(_, e)| TokenError::Transport(e))?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| TokenError::NoToken)?;
    let token = v
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .or_else(|| v.get("access_token").and_then(|t| t.as_str()))
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::NoToken)?
        .to_string();
    let ttl = v
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s.min(24 * 3600)))
        .unwrap_or(DEFAULT_TOKEN_TTL);
    Ok((token, ttl))
}

fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    format!("{kind} error")
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
    fn parses_one_bearer_challenge() {
        let p = parse_bearer(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(p["realm"], "http://127.0.0.1:1/token");
        assert_eq!(p["service"], "reg");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        assert!(parse_bearer("Basic realm=x").is_none());
        assert!(parse_bearer("Bearer service=x").is_none());
    }

    #[test]
    fn parses_several_challenges_and_quoting() {
        let v = r#"Basic realm="a, b=c", Bearer realm="https://auth.example/token?x=1,2",service=registry.example, scope="repository:x/y:pull,push repository:z:pull",error="insufficient_scope", Negotiate abc123==, Digest realm="q\"uote", nonce=n"#;
        let cs = parse_challenges(v);
        let schemes: Vec<&str> = cs.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, vec!["basic", "bearer", "negotiate", "digest"]);
        assert_eq!(cs[0].params["realm"], "a, b=c");
        let b = &cs[1].params;
        assert_eq!(b["realm"], "https://auth.example/token?x=1,2");
        assert_eq!(b["service"], "registry.example");
        assert_eq!(b["scope"], "repository:x/y:pull,push repository:z:pull");
        assert_eq!(b["error"], "insufficient_scope");
        assert_eq!(cs[2].params[""], "abc123==");
        assert_eq!(cs[3].params["realm"], "q\"uote");
        assert_eq!(cs[3].params["nonce"], "n");
        assert_eq!(
            parse_bearer(v).unwrap()["realm"],
            "https://auth.example/token?x=1,2"
        );
        // Case-insensitive scheme and names; spaces around `=`.
        let p = parse_bearer(r#"bEaReR  Realm = "http://h/t" , SERVICE=s"#).unwrap();
        assert_eq!(p["realm"], "http://h/t");
        assert_eq!(p["service"], "s");
    }

    #[test]
    fn challenge_parser_survives_garbage() {
        for v in [
            "",
            ",,,",
            "Bearer",
            "Bearer realm=",
            "Bearer realm=\"unterminated",
            "=====",
            "\"\"\"",
            "Bearer realm=\"x\\",
            "Bearer ,,, realm=\"h\"",
            "€ Bearer realm=\"h\"",
        ] {
            let _ = parse_challenges(v);
            let _ = parse_bearer(v);
        }
        let long = format!("Bearer realm=\"{}\"", "a".repeat(100_000));
        let _ = parse_bearer(&long);
        let many = "a=b, ".repeat(10_000);
        assert!(parse_challenges(&many).len() <= MAX_ITEMS);
    }

    #[test]
    fn scopes_per_action() {
        assert_eq!(scope_for("GET", "/v2/"), "");
        assert_eq!(scope_for("GET", "/v2/_catalog"), "registry:catalog:*");
        assert_eq!(
            scope_for("GET", "/v2/a/b/manifests/v1"),
            "repository:a/b:pull"
        );
        assert_eq!(
            scope_for("HEAD", "/v2/a/blobs/sha256:x"),
            "repository:a:pull"
        );
        assert_eq!(
            scope_for("PUT", "/v2/a/b/manifests/v1"),
            "repository:a/b:pull,push"
        );
        assert_eq!(
            scope_for("GET", "/v2/a/b/blobs/uploads/123"),
            "repository:a/b:pull,push"
        );
        assert_eq!(
            scope_for("POST", "/v2/a/b/blobs/uploads/"),
            "repository:a/b:pull,push"
        );
        assert_eq!(
            scope_for("DELETE", "/v2/a/b/manifests/sha256:x"),
            "repository:a/b:delete"
        );
        assert_eq!(scope_for("GET", "/v2/a/b/tags/list"), "repository:a/b:pull");
        assert_eq!(scope_for("GET", "/other"), "");
    }

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

    #[test]
    fn token_cache_expires() {
        let s = BearerState::default();
        s.store("a", "t1", Duration::from_secs(300));
        assert_eq!(s.cached("a").as_deref(), Some("t1"));
        s.store("b", "t2", Duration::from_secs(1));
        assert_eq!(s.cached("b"), None, "within the expiry margin");
        s.forget("a");
        assert_eq!(s.cached("a"), None);
    }
}
