//! Authentication against real registries: the reference registry in Basic and Token modes
//! (with and without credentials, wrong passwords), credentials from the environment and the
//! Docker config, distribution with htpasswd, and redaction of secrets in everything a fuzz run
//! writes.

mod common;

use ocidiff::drivers::fuzz::{run_fuzz, FuzzConfig};
use ocidiff::execute::{ExecOptions, Executor};
use ocidiff::ops::Sequence;
use ocidiff::targets::external::{ExternalSpec, ProcessSpec};
use ocidiff::targets::{launch, parse_target_arg, LaunchedTarget, TargetSpec};
use ocidiff::vocab::content::Content;
use reference_registry::{AuthMode, Config, Faults};
use std::path::Path;
use std::time::Duration;

const PASSWORD: &str = "pw-Zq9x-secret";
/// `push_pull_delete` on the reference: /v2/, post, patch, put, get, tags (repository exists),
/// delete, head after delete.
const FULL: [u16; 8] = [200, 202, 202, 201, 200, 200, 202, 404];

async fn reference_with(auth: AuthMode) -> reference_registry::RunningRegistry {
    reference_registry::spawn(Config {
        auth,
        ..Config::default()
    })
    .await
    .unwrap()
}

fn basic() -> AuthMode {
    AuthMode::Basic {
        username: "alice".into(),
        password: PASSWORD.into(),
    }
}

fn token(with_creds: bool) -> AuthMode {
    AuthMode::Token {
        username: with_creds.then(|| "alice".into()),
        password: with_creds.then(|| PASSWORD.into()),
    }
}

fn with_creds(url: &str, user: &str, pass: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_username(user).unwrap();
    u.set_password(Some(pass)).unwrap();
    u.to_string()
}

/// Pushes a chunked blob, reads it back, deletes it: every action of the token flow.
async fn push_pull_delete(t: &LaunchedTarget) -> Vec<u16> {
    let ex = Executor::new(vec![t.exec_target()], ExecOptions::default()).unwrap();
    let seq = Sequence::from_toml(
        r#"
[content]
blobs = [{ size = 3000, seed = 7 }]
[[ops]]
op = "check_api"
[[ops]]
op = "push_blob"
repo = 0
blob = 0
method = "chunked"
chunks = 2
last_in_put = true
[[ops]]
op = "get_blob"
repo = 0
blob = 0
[[ops]]
op = "list_tags"
repo = 0
[[ops]]
op = "delete_blob"
repo = 0
blob = 0
[[ops]]
op = "head_blob"
repo = 0
blob = 0
"#,
    )
    .unwrap();
    let content = Content::render(&seq.content).unwrap();
    let out = ex.run(&seq, &content, "authns").await;
    out.ops
        .iter()
        .flat_map(|o| o.per_target[0].iter().map(|e| e.observation.status))
        .collect()
}

#[tokio::test]
async fn basic_auth_with_url_credentials() {
    let reg = reference_with(basic()).await;
    let (name, spec) = parse_target_arg(&format!(
        "basicurl={}",
        with_creds(&reg.url(), "alice", PASSWORD)
    ))
    .unwrap();
    let t = launch(&name, &spec).await.unwrap();
    assert_eq!(push_pull_delete(&t).await, FULL.to_vec());
    t.shutdown().await;
}

#[tokio::test]
async fn token_auth_with_and_without_credentials() {
    // Token endpoint with credentials.
    let reg = reference_with(token(true)).await;
    let (name, spec) = parse_target_arg(&format!(
        "tokcreds={}",
        with_creds(&reg.url(), "alice", PASSWORD)
    ))
    .unwrap();
    let t = launch(&name, &spec).await.unwrap();
    let codes = push_pull_delete(&t).await;
    assert_eq!(codes, FULL.to_vec());
    t.shutdown().await;
    // Anonymous token endpoint: no credentials needed.
    let reg = reference_with(token(false)).await;
    let (name, spec) = parse_target_arg(&format!("tokanon={}", reg.url())).unwrap();
    let t = launch(&name, &spec).await.unwrap();
    assert_eq!(t.username, None);
    assert_eq!(push_pull_delete(&t).await, FULL.to_vec());
    t.shutdown().await;
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_clear_errors() {
    for (mode, label) in [(basic(), "basic"), (token(true), "token")] {
        let reg = reference_with(mode).await;
        let (name, spec) = parse_target_arg(&format!(
            "wrong{label}={}",
            with_creds(&reg.url(), "alice", "not-the-password")
        ))
        .unwrap();
        let err = format!("{:#}", launch(&name, &spec).await.unwrap_err());
        assert!(err.contains("rejected its credentials"), "{label}: {err}");
        assert!(!err.contains("not-the-password"), "{err}");
        let (name, spec) = parse_target_arg(&format!("none{label}={}", reg.url())).unwrap();
        let err = format!("{:#}", launch(&name, &spec).await.unwrap_err());
        assert!(err.contains("requires"), "{label}: {err}");
        assert!(err.contains(&format!("OCIDIFF_NONE{}_USERNAME", label.to_uppercase())));
    }
}

#[tokio::test]
async fn credentials_from_environment() {
    let reg = reference_with(basic()).await;
    std::env::set_var("OCIDIFF_ENV_TARGET_1_USERNAME", "alice");
    std::env::set_var("OCIDIFF_ENV_TARGET_1_PASSWORD", PASSWORD);
    let (name, spec) = parse_target_arg(&format!("env-target.1={}", reg.url())).unwrap();
    let t = launch(&name, &spec).await.unwrap();
    assert_eq!(t.username.as_deref(), Some("alice"));
    assert_eq!(push_pull_delete(&t).await[0], 200);
    assert!(!format!("{t:?}").contains(PASSWORD));
    t.shutdown().await;
}

#[tokio::test]
async fn credentials_from_docker_config() {
    use base64::Engine as _;
    let reg = reference_with(token(true)).await;
    let url = url::Url::parse(&reg.url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("alice:{PASSWORD}"));
    let key = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    );
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths": {{"{key}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    // Only this test sets DOCKER_CONFIG; entries are per host:port, so other tests' registries
    // (other ports) find nothing there.
    std::env::set_var("DOCKER_CONFIG", dir.path());
    let (name, spec) = parse_target_arg(&format!("dockercfg={}", reg.url())).unwrap();
    let t = launch(&name, &spec).await.unwrap();
    assert_eq!(t.username.as_deref(), Some("alice"));
    assert_eq!(push_pull_delete(&t).await[1], 202);
    t.shutdown().await;
}

/// A whole fuzz run against a token-auth reference compares like an open one: auth adds no
/// violations.
#[tokio::test]
async fn fuzz_through_the_token_flow() {
    let reg = reference_with(token(true)).await;
    let out = tempfile::tempdir().unwrap();
    let cfg = FuzzConfig {
        seed: 11,
        duration: Duration::from_secs(30),
        cases: 12,
        shrink: false,
        ..FuzzConfig::new(
            vec![
                ("reference".into(), TargetSpec::Reference(Box::default())),
                parse_target_arg(&format!(
                    "tok={}",
                    with_creds(&reg.url(), "alice", PASSWORD)
                ))
                .unwrap(),
            ],
            out.path().to_path_buf(),
        )
    };
    let s = run_fuzz(cfg).await.unwrap();
    assert!(s.ops_run > 0);
    let summary: Vec<String> = s
        .findings
        .iter()
        .map(|f| format!("{:?}", f).chars().take(300).collect())
        .collect();
    assert_eq!(s.violations, 0, "{summary:#?}");
    assert_no_secret(out.path(), PASSWORD);
}

fn assert_no_secret(dir: &Path, secret: &str) {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                let bytes = std::fs::read(&p).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains(secret), "secret in {}", p.display());
                use base64::Engine as _;
                let b64 =
                    base64::engine::general_purpose::STANDARD.encode(format!("alice:{secret}"));
                assert!(!text.contains(&b64), "encoded secret in {}", p.display());
            }
        }
    }
    assert!(files > 0, "nothing written under {}", dir.display());
}

/// A faulty reference behind basic auth: the run finds the fault, and the password appears
/// nowhere in findings.json, the reproducers or the reports.
#[tokio::test]
async fn secrets_never_reach_findings() {
    let out = tempfile::tempdir().unwrap();
    let faulty = TargetSpec::Reference(Box::new(Config {
        faults: Faults::only("blob_put_status_200").unwrap(),
        auth: basic(),
        ..Config::default()
    }));
    let cfg = FuzzConfig {
        seed: 3,
        duration: Duration::from_secs(40),
        cases: 20,
        ..FuzzConfig::new(
            vec![
                ("reference".into(), TargetSpec::Reference(Box::default())),
                ("locked".into(), faulty),
            ],
            out.path().to_path_buf(),
        )
    };
    let s = run_fuzz(cfg).await.unwrap();
    assert!(s.violations > 0, "the fault was not found");
    assert!(out.path().join("findings.json").is_file());
    assert_no_secret(out.path(), PASSWORD);
}

/// distribution with htpasswd (bcrypt), started as a `process` target; skipped without the
/// binary (fails instead with `OCIDIFF_REQUIRE_EXTERNAL=1`).
#[tokio::test]
async fn distribution_with_htpasswd() {
    let Some(bin) = ocidiff::targets::find_distribution_binary() else {
        common::skip_external("no docker-registry / registry binary on PATH");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash(PASSWORD, 5).unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: /nonexistent\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:1\nauth:\n  htpasswd:\n    realm: ocidiff-test\n    path: {}\n",
            htpasswd.display()
        ),
    )
    .unwrap();
    let process = |user: Option<(&str, &str)>| {
        let mut p = ProcessSpec {
            command: vec![
                bin.display().to_string(),
                "serve".into(),
                config.display().to_string(),
            ],
            ready_timeout: Duration::from_secs(20),
            ..Default::default()
        };
        p.env
            .insert("REGISTRY_HTTP_ADDR".into(), "127.0.0.1:{port}".into());
        p.env.insert(
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY".into(),
            "{dir}/data".into(),
        );
        p.access.credentials = user.map(|(u, pw)| ocidiff::execute::auth::Credentials {
            username: u.into(),
            password: pw.into(),
        });
        TargetSpec::External(Box::new(ExternalSpec::Process(p)))
    };
    let t = launch("dist-htpasswd", &process(Some(("alice", PASSWORD))))
        .await
        .unwrap();
    assert_eq!(t.kind, "process");
    let codes = push_pull_delete(&t).await;
    // distribution answers 404 for the tag list of a repository without tags.
    assert_eq!(codes, vec![200, 202, 202, 201, 200, 404, 202, 404]);
    t.shutdown().await;
    let err = format!(
        "{:#}",
        launch("dist-wrong", &process(Some(("alice", "nope"))))
            .await
            .unwrap_err()
    );
    assert!(err.contains("rejected its credentials"), "{err}");
    let err = format!(
        "{:#}",
        launch("dist-none", &process(None)).await.unwrap_err()
    );
    assert!(err.contains("requires authentication"), "{err}");
}

/// A repository prefix (Harbor's project) is applied on the wire and removed from what is
/// compared: a prefixed reference compares clean against the plain one.
#[tokio::test]
async fn repository_prefix_compares_clean() {
    let reg = reference_with(AuthMode::None).await;
    let out = tempfile::tempdir().unwrap();
    let mut access = ocidiff::targets::common::Access::default();
    access.options.repo_prefix = "project1".into();
    let remote = TargetSpec::External(Box::new(ExternalSpec::Remote(
        ocidiff::targets::external::RemoteSpec {
            url: url::Url::parse(&reg.url()).unwrap(),
            access,
            preset: Some("harbor".into()),
        },
    )));
    let cfg = FuzzConfig {
        seed: 5,
        duration: Duration::from_secs(30),
        cases: 15,
        shrink: false,
        ..FuzzConfig::new(
            vec![
                ("reference".into(), TargetSpec::Reference(Box::default())),
                ("prefixed".into(), remote),
            ],
            out.path().to_path_buf(),
        )
    };
    let s = run_fuzz(cfg).await.unwrap();
    assert!(s.ops_run > 0);
    let summary: Vec<String> = s
        .findings
        .iter()
        .map(|f| format!("{:?}", f).chars().take(400).collect())
        .collect();
    assert!(s.findings.is_empty(), "{summary:#?}");
    // The names really were prefixed on the wire.
    let cat = reqwest::get(format!("{}/v2/_catalog", reg.url().trim_end_matches('/')))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cat.contains("\"project1/"), "{cat}");
}
