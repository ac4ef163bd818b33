//! The executor against real registries (the reference, in-process on a socket).

use super::*;
use crate::model::ModelState;
use crate::vocab::ManifestId;

fn target(name: &str, url: &str) -> ExecTarget {
    ExecTarget {
        name: name.into(),
        base_url: Url::parse(url).unwrap(),
        username: None,
        password: None,
        options: TargetOptions::default(),
    }
}

async fn reference_executor() -> (reference_registry::RunningRegistry, Executor) {
    let reg = reference_registry::spawn(reference_registry::Config::default())
        .await
        .unwrap();
    let ex = Executor::new(
        vec![target("reference", &reg.url())],
        ExecOptions::default(),
    )
    .unwrap();
    (reg, ex)
}

fn statuses(out: &CaseOutcome, op: usize) -> Vec<(String, u16)> {
    out.ops[op].per_target[0]
        .iter()
        .map(|e| (e.label.clone(), e.observation.status))
        .collect()
}

#[tokio::test]
async fn unreachable_target_gives_transport_errors() {
    let ex = Executor::new(
        vec![target("dead", "http://127.0.0.1:9/")],
        ExecOptions {
            request_timeout: Duration::from_secs(2),
            ..ExecOptions::default()
        },
    )
    .unwrap();
    let seq = Sequence::from_toml(
        r#"
[content]
blobs = [{ size = 4, seed = 1 }]
[[ops]]
op = "check_api"
[[ops]]
op = "push_blob"
repo = 0
blob = 0
method = "monolithic"
[[ops]]
op = "patch_chunk"
session = 0
start = 0
end = 2
"#,
    )
    .unwrap();
    let content = Content::render(&seq.content).unwrap();
    let out = ex.run(&seq, &content, "t").await;
    assert_eq!(out.ops.len(), 3);
    assert_eq!(out.ops[0].per_target[0][0].observation.status, 0);
    assert_eq!(out.ops[1].per_target[0].len(), 1);
    assert_eq!(
        out.ops[2].per_target[0][0]
            .observation
            .transport_error
            .as_deref(),
        Some("skipped: no upload location")
    );
}

#[tokio::test]
async fn hand_written_sequence_against_reference() {
    let (_reg, ex) = reference_executor().await;
    let seq = Sequence::from_toml(
        r#"
[content]
blobs = [{ size = 100, seed = 1 }, { size = 5000, seed = 2 }, { size = 3000, seed = 3 }]
[[content.manifests]]
kind = "image"
config = 0
layers = [1, 2]
custom_fields = true
[[ops]] # 0
op = "check_api"
[[ops]] # 1
op = "push_blob"
repo = 0
blob = 0
method = "monolithic"
[[ops]] # 2
op = "push_blob"
repo = 0
blob = 1
method = "chunked"
chunks = 3
last_in_put = true
[[ops]] # 3
op = "start_upload"
repo = 0
session = 0
blob = 2
[[ops]] # 4
op = "patch_chunk"
session = 0
start = 0
end = 1000
[[ops]] # 5
op = "patch_chunk"
session = 0
start = 500
end = 1500
[[ops]] # 6
op = "upload_status"
session = 0
[[ops]] # 7
op = "complete_upload"
session = 0
rest_in_body = true
[[ops]] # 8
op = "push_manifest"
repo = 0
manifest = 0
reference = { tag = "v1" }
[[ops]] # 9
op = "get_manifest"
repo = 0
reference = { digest = 0 }
[[ops]] # 10
op = "list_tags"
repo = 0
[[ops]] # 11
op = "push_blob"
repo = 1
blob = 0
method = "single_post"
digest = "wrong"
[[ops]] # 12
op = "get_blob"
repo = 0
blob = 1
range = [10, 19]
[[ops]] # 13
op = "list_tags_paged"
repo = 0
n = 1
[[ops]] # 14
op = "patch_chunk"
session = 0
start = 0
end = 10
"#,
    )
    .unwrap();
    let content = Content::render(&seq.content).unwrap();
    let out = ex.run(&seq, &content, "ns1").await;
    assert_eq!(out.targets, vec!["reference"]);
    let s = |l: &str, c: u16| (l.to_string(), c);
    assert_eq!(statuses(&out, 0), vec![s("get", 200)]);
    assert_eq!(statuses(&out, 1), vec![s("post", 202), s("put", 201)]);
    assert_eq!(
        statuses(&out, 2),
        vec![
            s("post", 202),
            s("patch#1", 202),
            s("patch#2", 202),
            s("put", 201)
        ]
    );
    assert_eq!(statuses(&out, 3), vec![s("post", 202)]);
    assert_eq!(statuses(&out, 4), vec![s("patch", 202)]);
    assert_eq!(statuses(&out, 5), vec![s("patch", 416)]);
    assert_eq!(statuses(&out, 6), vec![s("get", 204)]);
    let status_headers = &out.ops[6].per_target[0][0].observation.headers;
    assert_eq!(
        status_headers.get("range").map(String::as_str),
        Some("0-999")
    );
    assert!(
        status_headers["location"].contains("/blobs/uploads/<upload>"),
        "{status_headers:?}"
    );
    assert_eq!(statuses(&out, 7), vec![s("put", 201)]);
    assert_eq!(statuses(&out, 8), vec![s("put", 201)]);
    let get = &out.ops[9].per_target[0][0];
    assert_eq!(get.observation.status, 200);
    assert_eq!(
        get.observation.body,
        BodyFacts::Content {
            len: content.manifest(ManifestId(0)).unwrap().len() as u64,
            sha256: sha256_hex(content.manifest(ManifestId(0)).unwrap()),
        }
    );
    assert_eq!(
        get.observation.header("docker-content-digest"),
        content.manifest_digest(ManifestId(0))
    );
    assert_eq!(
        out.ops[10].per_target[0][0].observation.body,
        BodyFacts::Tags {
            name: "ns1/r0".into(),
            tags: vec!["v1".into()]
        }
    );
    assert_eq!(statuses(&out, 11)[0].1, 400);
    assert!(matches!(
        &out.ops[11].per_target[0][0].observation.body,
        BodyFacts::Errors { codes } if codes == &vec!["DIGEST_INVALID".to_string()]
    ));
    assert_eq!(statuses(&out, 12), vec![s("get", 206)]);
    // A full page without Link: the next one is asked for with `last`, as a client does.
    assert_eq!(statuses(&out, 13), vec![s("page#1", 200), s("page#2", 200)]);
    assert!(out.ops[13].per_target[0][1].request.url.contains("last=v1"));
    // The session was completed: its old location is gone.
    assert_eq!(statuses(&out, 14)[0].1, 404);
    let rec = &out.ops[1].per_target[0][1].request;
    assert_eq!(rec.method, "PUT");
    assert!(
        rec.url.contains("digest=sha256%3A") || rec.url.contains("digest=sha256:"),
        "{}",
        rec.url
    );
    assert_eq!(rec.body_len, 100);
    assert_eq!(rec.headers["content-type"], "application/octet-stream");
}

#[tokio::test]
async fn generated_sequences_run_against_reference() {
    let (_reg, ex) = reference_executor().await;
    let cfg = crate::generate::GenConfig::default();
    for seed in 0..20u64 {
        let seq = crate::generate::generate_sequence(seed, &cfg);
        let content = Content::render(&seq.content).unwrap();
        let out = ex.run(&seq, &content, &format!("gen{seed}")).await;
        assert_eq!(out.ops.len(), seq.ops.len());
        for (op, o) in seq.ops.iter().zip(&out.ops) {
            for e in &o.per_target[0] {
                let err = e.observation.transport_error.as_deref().unwrap_or("");
                assert!(
                    err.is_empty() || err.starts_with("skipped"),
                    "seed {seed} {op:?}: {err}"
                );
            }
        }
    }
}

/// The model and the reference agree on what exists after every op of generated cases: every
/// pull, tag list and referrers list the reference answers matches the model.
#[tokio::test]
async fn model_agrees_with_reference() {
    let (_reg, ex) = reference_executor().await;
    let cfg = crate::generate::GenConfig {
        max_blob_size: 4096,
        max_ops: 40,
        invalid_share: 0.2,
        ..Default::default()
    };
    let mut mismatches = Vec::new();
    for seed in 0..100u64 {
        let seq = crate::generate::generate_sequence(seed, &cfg);
        let content = Content::render(&seq.content).unwrap();
        let out = ex.run(&seq, &content, &format!("agree{seed}")).await;
        let mut st = ModelState::new();
        st.learn(&content);
        for (i, (op, o)) in seq.ops.iter().zip(&out.ops).enumerate() {
            let Some(last) = o.per_target[0].last() else {
                continue;
            };
            let status = last.observation.status;
            let exists: Option<bool> = match op {
                Op::GetManifest(m) => Some(st.resolve(m.repo, &m.reference).is_some()),
                Op::HeadManifest(m) => Some(st.resolve(m.repo, &m.reference).is_some()),
                Op::GetBlob(b) => Some(st.has_blob(b.repo, b.blob)),
                Op::HeadBlob(b) => Some(st.has_blob(b.repo, b.blob)),
                _ => None,
            };
            if let Some(ok) = exists {
                if ok != (200..300).contains(&status) {
                    mismatches.push(format!(
                        "seed {seed} op {i} {op:?}: model {ok}, status {status}"
                    ));
                }
            }
            if let (Op::ListTags(t), BodyFacts::Tags { tags, .. }) = (op, &last.observation.body) {
                if t.n.is_none() && t.last.is_none() && *tags != st.tags(t.repo) {
                    mismatches.push(format!(
                        "seed {seed} op {i}: tags {tags:?} vs model {:?}",
                        st.tags(t.repo)
                    ));
                }
            }
            if let (Op::ListReferrers(r), BodyFacts::Referrers { manifests }) =
                (op, &last.observation.body)
            {
                if let Some(m) = r.subject.manifest() {
                    let model = st.referrers(r.repo, m, r.artifact_type.as_deref(), &content);
                    if *manifests != model {
                        mismatches.push(format!(
                            "seed {seed} op {i}: referrers {manifests:?} vs model {model:?}"
                        ));
                    }
                }
            }
            op.op().apply(&mut st, &content);
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test]
async fn basic_and_bearer_auth() {
    use reference_registry::{AuthMode, Config};
    for auth in [
        AuthMode::Basic {
            username: "u".into(),
            password: "p".into(),
        },
        AuthMode::Token {
            username: Some("u".into()),
            password: Some("p".into()),
        },
    ] {
        let reg = reference_registry::spawn(Config {
            auth: auth.clone(),
            ..Config::default()
        })
        .await
        .unwrap();
        let with_user = |user: Option<&str>| ExecTarget {
            username: user.map(str::to_string),
            password: Some("p".into()),
            ..target("r", &reg.url())
        };
        let ex = Executor::new(
            vec![with_user(Some("u")), with_user(None)],
            ExecOptions::default(),
        )
        .unwrap();
        let seq = Sequence::from_toml(
            r#"
[content]
blobs = [{ size = 10, seed = 1 }]
[[ops]]
op = "check_api"
[[ops]]
op = "push_blob"
repo = 0
blob = 0
method = "chunked"
chunks = 2
last_in_put = false
[[ops]]
op = "head_blob"
repo = 0
blob = 0
"#,
        )
        .unwrap();
        let content = Content::render(&seq.content).unwrap();
        let out = ex.run(&seq, &content, "auth").await;
        let codes = |t: usize| -> Vec<u16> {
            out.ops
                .iter()
                .flat_map(|o| o.per_target[t].iter().map(|e| e.observation.status))
                .collect()
        };
        assert_eq!(codes(0), vec![200, 202, 202, 202, 201, 200], "{auth:?}");
        assert_eq!(codes(1), vec![401, 401, 401], "{auth:?}");
        assert!(!out.ops[0].per_target[0][0]
            .request
            .headers
            .contains_key("authorization"));
    }
}

#[test]
fn paths_under_a_base_are_parsed_as_the_joined_string() {
    let bases = [
        "http://127.0.0.1:5000",
        "http://127.0.0.1:5000/",
        "https://registry.example.com/prefix/",
        "http://[::1]:8080/a/b",
        "http://h/?q=1",
    ];
    let paths = [
        "/v2/",
        "/v2/ns/r0/blobs/uploads/",
        "/v2/ns/r0/manifests/sha256:abc",
        "/v2/../x/./y",
        "/v2/a/%2e%2e/b",
        "/v2/A%20b/c d/é",
        "/v2//double//slash",
        "/v2/tags/list?n=1",
        "/v2/x#frag",
        "",
    ];
    for b in bases {
        let base = Url::parse(b).unwrap();
        for p in paths {
            let old = Url::parse(&format!("{}{p}", base.as_str().trim_end_matches('/')))
                .unwrap_or_else(|_| base.clone());
            assert_eq!(under_base(&base, p), old, "{b} + {p}");
        }
    }
}
