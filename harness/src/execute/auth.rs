//! Registry authentication on the wire: `WWW-Authenticate` challenge parsing, the token scope a
//! request needs, and the Docker/OCI bearer token flow (realm, service, scope per repository
//! and action, cached per scope until expiry). Where credentials come from is `targets`.
//!
//! Secrets never leave this module in text form: [`Credentials`]' `Debug` prints `***`, tokens
//! are never logged, and error messages name the target and the status, not the values.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
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
        .map_err(|e| TokenError::Transport(crate::vocab::redact::redact(&without_url(&e))))?;
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

/// A transport error described without its URL (which may carry credentials).
pub fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    format!("{kind} error")
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
