//! Authentication: off, HTTP basic, or Docker-style bearer tokens.
//!
//! Tokens come from this registry's own token endpoint (`GET /token`). A
//! token is `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`
//! with a random per-process key; the payload carries the expiry and the
//! granted scopes (`repository:NAME:ACTIONS`, `registry:catalog:*`).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

/// How clients authenticate.
#[derive(Clone, Debug, Default)]
pub enum AuthMode {
    /// No authentication.
    #[default]
    None,
    /// Every `/v2` request needs these basic credentials.
    Basic { username: String, password: String },
    /// Every `/v2` request needs a bearer token from `/token`; the token
    /// endpoint needs these basic credentials when both are set.
    Token {
        username: Option<String>,
        password: Option<String>,
    },
}

/// The service name in challenges and tokens.
pub const SERVICE: &str = "reference-registry";
/// Token lifetime in seconds.
pub const TOKEN_TTL: u64 = 300;

/// What a request wants to do to a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    /// The scope actions named in a challenge.
    fn challenge_actions(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "pull,push",
            Action::Delete => "delete",
        }
    }
}

/// What a `/v2` request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// `/v2/`: any valid credentials.
    Base,
    /// `/v2/_catalog`: `registry:catalog:*`.
    Catalog,
    /// A repository endpoint.
    Repository(&'a str, Action),
}

impl Scope<'_> {
    /// The `scope` of a challenge, if any.
    fn challenge(&self) -> Option<String> {
        match self {
            Scope::Base => None,
            Scope::Catalog => Some("registry:catalog:*".to_owned()),
            Scope::Repository(name, action) => {
                Some(format!("repository:{name}:{}", action.challenge_actions()))
            }
        }
    }
}

/// A refused request: the `WWW-Authenticate` value to send with 401.
#[derive(Debug)]
pub struct Challenge(pub String);

/// The authenticator of one registry.
pub struct Auth {
    mode: AuthMode,
    key: [u8; 32],
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    exp: u64,
    /// (`type:name`, granted actions)
    access: Vec<(String, Vec<String>)>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC) for unix seconds.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The (user, password) of a `Basic` Authorization header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn basic_challenge() -> Challenge {
    Challenge(format!("Basic realm=\"{SERVICE}\""))
}

impl Auth {
    pub fn new(mode: AuthMode) -> Auth {
        Auth {
            mode,
            key: rand::random(),
        }
    }

    /// Whether any authentication is required.
    pub fn enabled(&self) -> bool {
        !matches!(self.mode, AuthMode::None)
    }

    /// Checks a `/v2` request needing `scope`.
    pub fn check(
        &self,
        headers: &HeaderMap,
        host: &str,
        scope: Scope<'_>,
    ) -> Result<(), Challenge> {
        match &self.mode {
            AuthMode::None => Ok(()),
            AuthMode::Basic { username, password } => match basic_credentials(headers) {
                Some((u, p))
                    if ct_eq(u.as_bytes(), username.as_bytes())
                        && ct_eq(p.as_bytes(), password.as_bytes()) =>
                {
                    Ok(())
                }
                _ => Err(basic_challenge()),
            },
            AuthMode::Token { .. } => {
                let claims = bearer_token(headers).and_then(|t| self.verify(t));
                let challenge = |insufficient: bool| {
                    let mut c =
                        format!("Bearer realm=\"http://{host}/token\",service=\"{SERVICE}\"");
                    if let Some(sc) = scope.challenge() {
                        c.push_str(&format!(",scope=\"{sc}\""));
                    }
                    if insufficient {
                        c.push_str(",error=\"insufficient_scope\"");
                    }
                    Challenge(c)
                };
                let Some(claims) = claims else {
                    return Err(challenge(false));
                };
                if grants(&claims, scope) {
                    Ok(())
                } else {
                    Err(challenge(true))
                }
            }
        }
    }

    /// Whether the request may `action` on `name` (no challenge; used for
    /// the source repository of a mount).
    pub fn allows(&self, headers: &HeaderMap, name: &str, action: Action) -> bool {
        self.check(headers, "", Scope::Repository(name, action))
            .is_ok()
    }

    fn sign(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mac = URL_SAFE_NO_PAD.encode(hmac_sha256(&self.key, payload.as_bytes()));
        format!("{payload}.{mac}")
    }

    fn verify(&self, token: &str) -> Option<Claims> {
        let (payload, mac) = token.split_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        if !ct_eq(&mac, &hmac_sha256(&self.key, payload.as_bytes())) {
            return None;
        }
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.exp > now()).then_some(claims)
    }

    /// `GET /token?service=...&scope=repository:NAME:ACTIONS` (scope may repeat).
    pub fn token_endpoint(&self, headers: &HeaderMap, query: &str) -> Response {
        let AuthMode::Token { username, password } = &self.mode else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if let (Some(u), Some(p)) = (username, password) {
            let ok = matches!(basic_credentials(headers), Some((bu, bp))
                if ct_eq(bu.as_bytes(), u.as_bytes()) && ct_eq(bp.as_bytes(), p.as_bytes()));
            if !ok {
                let body = crate::spec::error_body(&[crate::spec::ErrorEntry {
                    code: crate::spec::ErrorCode::Unauthorized,
                    detail: serde_json::Value::Null,
                }]);
                let mut resp = (StatusCode::UNAUTHORIZED, body).into_response();
                let h = resp.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                if let Ok(v) = HeaderValue::from_str(&basic_challenge().0) {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
                return resp;
            }
        }
        let mut access: Vec<(String, Vec<String>)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if k != "scope" {
                continue;
            }
            for scope in v.split(' ') {
                let Some((resource, actions)) = scope.rsplit_once(':') else {
                    continue;
                };
                if !(resource.starts_with("repository:") || resource == "registry:catalog") {
                    continue;
                }
                let acts: Vec<String> = actions
                    .split(',')
                    .filter(|a| matches!(*a, "pull" | "push" | "delete" | "*"))
                    .map(str::to_owned)
                    .collect();
                access.push((resource.to_owned(), acts));
            }
        }
        let issued = now();
        let token = self.sign(&Claims {
            exp: issued + TOKEN_TTL,
            access,
        });
        let body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_TTL,
            "issued_at": rfc3339(issued),
        })
        .to_string();
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    }
}

fn grants(claims: &Claims, scope: Scope<'_>) -> bool {
    let (resource, action) = match scope {
        Scope::Base => return true,
        Scope::Catalog => {
            return claims
                .access
                .iter()
                .any(|(r, acts)| r == "registry:catalog" && acts.iter().any(|a| a == "*"))
        }
        Scope::Repository(name, action) => (name, action),
    };
    claims.access.iter().any(|(r, acts)| {
        r.strip_prefix("repository:") == Some(resource)
            && acts.iter().any(|a| {
                a == "*"
                    || match action {
                        Action::Pull => a == "pull",
                        Action::Push => a == "push",
                        Action::Delete => a == "delete" || a == "push",
                    }
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_known_vector() {
        // RFC 4231 test case 1.
        let mac = hmac_sha256(&[0x0bu8; 20], b"Hi There");
        assert_eq!(
            hex::encode(mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn token_roundtrip() {
        let auth = Auth::new(AuthMode::Token {
            username: None,
            password: None,
        });
        let t = auth.sign(&Claims {
            exp: now() + 10,
            access: vec![("repository:a/b".into(), vec!["pull".into()])],
        });
        let c = auth.verify(&t).unwrap();
        assert!(grants(&c, Scope::Repository("a/b", Action::Pull)));
        assert!(!grants(&c, Scope::Repository("a/b", Action::Push)));
        assert!(!grants(&c, Scope::Repository("a/c", Action::Pull)));
        assert!(!grants(&c, Scope::Catalog));
        assert!(grants(&c, Scope::Base));
        assert!(auth.verify(&format!("{t}x")).is_none());
        assert!(auth.verify("garbage").is_none());
    }
}
