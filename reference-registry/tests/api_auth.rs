//! Authentication: HTTP basic and Docker-style bearer tokens (challenge ->
//! token endpoint with service + scope -> bearer), including scope checks.

mod common;

use common::*;
use reference_registry::{AuthMode, Config};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, StatusCode};
use std::collections::HashMap;

/// Parse `Scheme k="v",k2="v2"` into (scheme, params).
fn parse_challenge(v: &str) -> (String, HashMap<String, String>) {
    let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    // Bounded: each iteration consumes at least one parameter.
    for _ in 0..32 {
        if rest.is_empty() {
            break;
        }
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (val, tail) = if let Some(stripped) = after.strip_prefix('"') {
            let end = stripped.find('"').expect("closing quote in challenge");
            (&stripped[..end], &stripped[end + 1..])
        } else {
            match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        params.insert(k, val.to_string());
        rest = tail.trim().trim_start_matches(',').trim();
    }
    (scheme.to_string(), params)
}

fn challenge(r: &reqwest::Response) -> (String, HashMap<String, String>) {
    let v = r
        .headers()
        .get(WWW_AUTHENTICATE)
        .unwrap_or_else(|| panic!("401 without WWW-Authenticate"))
        .to_str()
        .unwrap();
    parse_challenge(v)
}

fn basic(b: RequestBuilder, user: &str, pass: &str) -> RequestBuilder {
    b.basic_auth(user, Some(pass))
}

fn bearer(b: RequestBuilder, token: &str) -> RequestBuilder {
    b.header(AUTHORIZATION, format!("Bearer {token}"))
}

/// Ask the realm for a token; returns (status, token).
async fn fetch_token(
    reg: &Reg,
    realm: &str,
    service: Option<&str>,
    scope: Option<&str>,
    creds: Option<(&str, &str)>,
) -> (StatusCode, Option<String>) {
    let mut q = vec![];
    if let Some(s) = service {
        q.push(("service", s));
    }
    if let Some(s) = scope {
        q.push(("scope", s));
    }
    let mut b = reg.http.get(reg.resolve(realm)).query(&q);
    if let Some((u, p)) = creds {
        b = basic(b, u, p);
    }
    let r = b.send().await.unwrap();
    let status = r.status();
    if !status.is_success() {
        return (status, None);
    }
    let v: serde_json::Value = r.json().await.unwrap();
    let token = v["token"]
        .as_str()
        .or_else(|| v["access_token"].as_str())
        .expect("token or access_token in token response")
        .to_string();
    (status, Some(token))
}

async fn push_blob_with(
    reg: &Reg,
    repo: &str,
    data: &[u8],
    auth: &dyn Fn(RequestBuilder) -> RequestBuilder,
) -> StatusCode {
    let r = auth(
        reg.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .header(CONTENT_LENGTH, "0"),
    )
    .send()
    .await
    .unwrap();
    if r.status() != StatusCode::ACCEPTED {
        return r.status();
    }
    let upload = reg.resolve(&location(&r));
    let r = auth(
        reg.http
            .put(with_query(&upload, &format!("digest={}", sha256(data))))
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(data.to_vec()),
    )
    .send()
    .await
    .unwrap();
    r.status()
}

fn basic_config() -> Config {
    Config {
        auth: AuthMode::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        },
        ..Config::default()
    }
}

#[tokio::test]
async fn basic_requires_credentials() {
    bounded(async {
        let reg = start_with(basic_config()).await;
        let r = reg.get("/v2/").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let (scheme, params) = challenge(&r);
        assert_eq!(scheme.to_ascii_lowercase(), "basic");
        assert!(params.contains_key("realm"), "{params:?}");
        assert_error(r, 401, "UNAUTHORIZED").await;

        for (u, p) in [("alice", "wrong"), ("bob", "s3cret"), ("", "")] {
            let r = basic(reg.req(Method::GET, "/v2/"), u, p)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{u}:{p}");
            assert!(r.headers().get(WWW_AUTHENTICATE).is_some());
        }
        let r = basic(reg.req(Method::GET, "/v2/"), "alice", "s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // A bearer token is not basic credentials.
        let r = bearer(reg.req(Method::GET, "/v2/"), "whatever")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    })
    .await
}

#[tokio::test]
async fn basic_protects_every_endpoint_and_allows_push_pull() {
    bounded(async {
        let reg = start_with(basic_config()).await;
        let ok = |b: RequestBuilder| basic(b, "alice", "s3cret");
        let none = |b: RequestBuilder| b;
        let data = b"authenticated blob".to_vec();
        let d = sha256(&data);
        assert_eq!(
            push_blob_with(&reg, "auth/basic", &data, &none).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            push_blob_with(&reg, "auth/basic", &data, &ok).await,
            StatusCode::CREATED
        );
        for path in [
            format!("/v2/auth/basic/blobs/{d}"),
            "/v2/auth/basic/tags/list".to_string(),
            "/v2/auth/basic/manifests/latest".to_string(),
            format!("/v2/auth/basic/referrers/{d}"),
            "/v2/_catalog".to_string(),
        ] {
            let r = reg.get(&path).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
        let r = ok(reg.req(Method::GET, &format!("/v2/auth/basic/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(&r.bytes().await.unwrap()[..], &data[..]);
        let r = reg.delete(&format!("/v2/auth/basic/blobs/{d}")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    })
    .await
}

fn token_config(creds: bool) -> Config {
    Config {
        auth: AuthMode::Token {
            username: creds.then(|| "tok".to_string()),
            password: creds.then(|| "pw".to_string()),
        },
        ..Config::default()
    }
}

#[tokio::test]
async fn token_flow_pull_and_push() {
    bounded(async {
        let reg = start_with(token_config(false)).await;

        // end-1 challenge.
        let r = reg.get("/v2/").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let (scheme, p) = challenge(&r);
        assert_eq!(scheme.to_ascii_lowercase(), "bearer");
        let realm = p.get("realm").expect("realm").clone();
        let service = p.get("service").expect("service").clone();
        assert_error(r, 401, "UNAUTHORIZED").await;

        // Pull challenge carries a pull scope for the repository.
        let r = reg.get("/v2/auth/tok/manifests/latest").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let (_, p) = challenge(&r);
        let scope = p
            .get("scope")
            .expect("scope in repository challenge")
            .clone();
        assert!(scope.starts_with("repository:auth/tok:"), "{scope}");
        assert!(scope.contains("pull"), "{scope}");

        // Push challenge asks for push.
        let r = reg
            .req(Method::POST, "/v2/auth/tok/blobs/uploads/")
            .header(CONTENT_LENGTH, "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let (_, p) = challenge(&r);
        let push_scope = p.get("scope").expect("scope").clone();
        assert!(
            push_scope.starts_with("repository:auth/tok:"),
            "{push_scope}"
        );
        assert!(push_scope.contains("push"), "{push_scope}");

        let (s, push_token) =
            fetch_token(&reg, &realm, Some(&service), Some(&push_scope), None).await;
        assert_eq!(s, StatusCode::OK);
        let push_token = push_token.unwrap();
        let auth = |b: RequestBuilder| bearer(b, &push_token);
        let data = b"token blob".to_vec();
        assert_eq!(
            push_blob_with(&reg, "auth/tok", &data, &auth).await,
            StatusCode::CREATED
        );

        // Pull with a pull-only token.
        let (s, pull_token) = fetch_token(&reg, &realm, Some(&service), Some(&scope), None).await;
        assert_eq!(s, StatusCode::OK);
        let pull_token = pull_token.unwrap();
        let r = bearer(
            reg.req(
                Method::GET,
                &format!("/v2/auth/tok/blobs/{}", sha256(&data)),
            ),
            &pull_token,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(&r.bytes().await.unwrap()[..], &data[..]);
        // Unknown manifest: authorized, so 404 not 401.
        let r = bearer(
            reg.req(Method::GET, "/v2/auth/tok/manifests/latest"),
            &pull_token,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // Any valid token opens end-1.
        let r = bearer(reg.req(Method::GET, "/v2/"), &pull_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    })
    .await
}

#[tokio::test]
async fn token_with_wrong_scope_is_rejected() {
    bounded(async {
        let reg = start_with(token_config(false)).await;
        let r = reg.get("/v2/").await;
        let (_, p) = challenge(&r);
        let realm = p["realm"].clone();
        let service = p["service"].clone();

        // Seed the repository with an all-powerful token for it.
        let (_, t) = fetch_token(
            &reg,
            &realm,
            Some(&service),
            Some("repository:auth/mine:pull,push"),
            None,
        )
        .await;
        let t = t.unwrap();
        let data = b"mine".to_vec();
        assert_eq!(
            push_blob_with(&reg, "auth/mine", &data, &|b| bearer(b, &t)).await,
            StatusCode::CREATED
        );
        let path = format!("/v2/auth/mine/blobs/{}", sha256(&data));

        // A token for another repository.
        let (_, other) = fetch_token(
            &reg,
            &realm,
            Some(&service),
            Some("repository:auth/other:pull,push"),
            None,
        )
        .await;
        let other = other.unwrap();
        let r = bearer(reg.req(Method::GET, &path), &other)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 401 || r.status() == 403,
            "token for another repo -> {}",
            r.status()
        );
        // A token for a repository whose name merely starts with ours.
        let (_, prefix) = fetch_token(
            &reg,
            &realm,
            Some(&service),
            Some("repository:auth/min:pull"),
            None,
        )
        .await;
        let r = bearer(reg.req(Method::GET, &path), &prefix.unwrap())
            .send()
            .await
            .unwrap();
        assert!(r.status() == 401 || r.status() == 403, "{}", r.status());

        // A pull-only token cannot push.
        let (_, pull) = fetch_token(
            &reg,
            &realm,
            Some(&service),
            Some("repository:auth/mine:pull"),
            None,
        )
        .await;
        let pull = pull.unwrap();
        let s = push_blob_with(&reg, "auth/mine", b"nope", &|b| bearer(b, &pull)).await;
        assert!(s == 401 || s == 403, "pull token pushing -> {s}");
        let r = bearer(reg.req(Method::DELETE, &path), &pull)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 401 || r.status() == 403,
            "pull token deleting -> {}",
            r.status()
        );
        // But it can pull.
        let r = bearer(reg.req(Method::GET, &path), &pull)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        // Garbage tokens.
        for junk in ["", "garbage", "a.b.c", &format!("{pull}x")] {
            let r = bearer(reg.req(Method::GET, &path), junk)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "token {junk:?}");
        }
    })
    .await
}

#[tokio::test]
async fn token_endpoint_checks_credentials_when_configured() {
    bounded(async {
        let reg = start_with(token_config(true)).await;
        let r = reg.get("/v2/auth/cred/tags/list").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let (_, p) = challenge(&r);
        let realm = p["realm"].clone();
        let service = p["service"].clone();
        let scope = p["scope"].clone();
        let (s, _) = fetch_token(&reg, &realm, Some(&service), Some(&scope), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "token without credentials");
        let (s, _) = fetch_token(
            &reg,
            &realm,
            Some(&service),
            Some(&scope),
            Some(("tok", "bad")),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "token with wrong credentials");
        let (s, t) = fetch_token(
            &reg,
            &realm,
            Some(&service),
            Some(&scope),
            Some(("tok", "pw")),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let r = bearer(reg.req(Method::GET, "/v2/auth/cred/tags/list"), &t.unwrap())
            .send()
            .await
            .unwrap();
        // Authorized: the repository just doesn't exist.
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    })
    .await
}

async fn token_for(reg: &Reg, scope: &str) -> String {
    let r = reg.get("/v2/").await;
    let (_, p) = challenge(&r);
    let (s, t) = fetch_token(reg, &p["realm"], Some(&p["service"]), Some(scope), None).await;
    assert_eq!(s, StatusCode::OK);
    t.unwrap()
}

#[tokio::test]
async fn token_pull_only_cannot_touch_upload_sessions() {
    bounded(async {
        let reg = start_with(token_config(false)).await;
        let push = token_for(&reg, "repository:auth/up:pull,push").await;
        let pull = token_for(&reg, "repository:auth/up:pull").await;
        let r = bearer(
            reg.req(Method::POST, "/v2/auth/up/blobs/uploads/")
                .header(CONTENT_LENGTH, "0"),
            &push,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let upload = reg.resolve(&location(&r));
        // end-13 / end-5 / end-6 / end-14 belong to the push flow.
        for m in [Method::GET, Method::PATCH, Method::PUT, Method::DELETE] {
            let r = bearer(reg.http.request(m.clone(), &upload), &pull)
                .send()
                .await
                .unwrap();
            assert!(
                r.status() == 401 || r.status() == 403,
                "{m} on an upload session with a pull-only token -> {}",
                r.status()
            );
        }
        // The session is intact for its owner.
        let r = bearer(reg.http.get(&upload), &push).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    })
    .await
}

#[tokio::test]
async fn token_mount_needs_pull_on_the_source() {
    bounded(async {
        let reg = start_with(token_config(false)).await;
        let src = token_for(&reg, "repository:auth/secret:pull,push").await;
        let data = b"secret layer".to_vec();
        let d = sha256(&data);
        assert_eq!(
            push_blob_with(&reg, "auth/secret", &data, &|b| bearer(b, &src)).await,
            StatusCode::CREATED
        );
        // Push on the destination only: the mount must not happen.
        let dst = token_for(&reg, "repository:auth/thief:pull,push").await;
        let r = bearer(
            reg.req(
                Method::POST,
                &format!("/v2/auth/thief/blobs/uploads/?mount={d}&from=auth/secret"),
            )
            .header(CONTENT_LENGTH, "0"),
            &dst,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "mount without pull on source"
        );
        let r = bearer(
            reg.req(Method::GET, &format!("/v2/auth/thief/blobs/{d}")),
            &dst,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "blob leaked by mount");
        // Same request with a token that also grants pull on the source.
        let r = reg.get("/v2/").await;
        let (_, p) = challenge(&r);
        let mut q = vec![("service", p["service"].as_str())];
        q.push(("scope", "repository:auth/thief:pull,push"));
        q.push(("scope", "repository:auth/secret:pull"));
        let v: serde_json::Value = reg
            .http
            .get(reg.resolve(&p["realm"]))
            .query(&q)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let both = v["token"].as_str().unwrap().to_string();
        let r = bearer(
            reg.req(
                Method::POST,
                &format!("/v2/auth/thief/blobs/uploads/?mount={d}&from=auth/secret"),
            )
            .header(CONTENT_LENGTH, "0"),
            &both,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    })
    .await
}

#[tokio::test]
async fn token_catalog_needs_catalog_scope() {
    bounded(async {
        let reg = start_with(token_config(false)).await;
        let repo_only = token_for(&reg, "repository:auth/cat:pull,push").await;
        let r = bearer(reg.req(Method::GET, "/v2/_catalog"), &repo_only)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "catalog with a repository token"
        );
        let (_, p) = challenge(&r);
        assert_eq!(
            p.get("scope").map(String::as_str),
            Some("registry:catalog:*")
        );
        let cat = token_for(&reg, "registry:catalog:*").await;
        let r = bearer(reg.req(Method::GET, "/v2/_catalog"), &cat)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // The catalog token grants nothing on repositories.
        let r = bearer(reg.req(Method::GET, "/v2/auth/cat/tags/list"), &cat)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    })
    .await
}

#[test]
fn challenge_parser_handles_commas_in_quotes() {
    let (s, p) = parse_challenge(
        r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push""#,
    );
    assert_eq!(s, "Bearer");
    assert_eq!(p["realm"], "http://127.0.0.1:1/token");
    assert_eq!(p["service"], "reg");
    assert_eq!(p["scope"], "repository:a/b:pull,push");
}
