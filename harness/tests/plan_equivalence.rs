//! The executor and `repro.sh` render the same request plans: run both on the same sequences
//! against the reference, through a recording proxy, and compare what went out (method, path
//! shape, query, the headers that matter, body digest), request by request.

mod common;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use ocidiff::execute::{ExecOptions, ExecTarget, Executor};
use ocidiff::ops::Sequence;
use ocidiff::report::repro;
use ocidiff::vocab::content::{sha256_hex, Content};
use std::sync::{Arc, Mutex};
use url::Url;

/// One request as it reached the proxy, normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body_sha256: String,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<Seen>>>,
}

/// Headers a plan sets (and `Content-Length`, which both renderers derive from the body).
const COMPARED: [&str; 5] = [
    "content-type",
    "content-range",
    "range",
    "accept",
    "content-length",
];

/// The case namespace and upload ids become placeholders.
fn shape(path: &str, ns: &str) -> String {
    let p = path.replace(ns, "<ns>");
    match p.find("/blobs/uploads/") {
        Some(i) if p.len() > i + "/blobs/uploads/".len() => {
            format!("{}<upload>", &p[..i + "/blobs/uploads/".len()])
        }
        _ => p,
    }
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let mut headers: Vec<(String, String)> = COMPARED
        .iter()
        .filter_map(|h| {
            parts
                .headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(|v| (h.to_string(), v.trim().to_string()))
        })
        .collect();
    headers.sort();
    p.log.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        query,
        headers,
        body_sha256: sha256_hex(&bytes),
    });
    let url = format!(
        "{}{}{}",
        p.upstream,
        path,
        parts
            .uri
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    );
    let mut rb = p.client.request(parts.method.clone(), url);
    for (k, v) in parts.headers.iter() {
        if k != "host" {
            rb = rb.header(k, v);
        }
    }
    let resp = match rb.body(bytes).send().await {
        Ok(r) => r,
        Err(_) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = axum::http::StatusCode::BAD_GATEWAY;
            return r;
        }
    };
    let mut out = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let body = resp.bytes().await.unwrap_or_default();
    out.body(Body::from(body)).unwrap()
}

async fn start_proxy(upstream: String) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let state = Proxy {
        upstream,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        log: log.clone(),
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), log)
}

fn normalized(log: &[Seen], ns: &str) -> Vec<Seen> {
    log.iter()
        .map(|s| Seen {
            path: shape(&s.path, ns),
            query: s
                .query
                .iter()
                .map(|(k, v)| (k.clone(), v.replace(ns, "<ns>")))
                .collect(),
            ..s.clone()
        })
        .collect()
}

/// The sequences compared: every op, the four workflows (sequentially), generated cases, and
/// chunks sized at a registry's advertised minimum; each with the registry configuration it
/// runs against.
fn sequences() -> Vec<(String, Sequence, reference_registry::Config)> {
    let mut out = vec![(
        "every_op".to_string(),
        ocidiff::ops::every_op(),
        Default::default(),
    )];
    for w in ocidiff::drivers::conformance::builtin_workflows().unwrap() {
        out.push((
            format!("workflow {}", w.id),
            w.scenario.sequence(),
            Default::default(),
        ));
    }
    let mut min = reference_registry::Config::default();
    min.quirks.enable("chunk_min:4096").unwrap();
    out.push((
        "chunks at the advertised minimum".to_string(),
        ocidiff::scenario::from_str(common::AT_MIN, std::path::Path::new("at-min.toml"))
            .unwrap()
            .sequence(),
        min,
    ));
    let cfg = ocidiff::generate::GenConfig {
        invalid_share: 0.3,
        ..Default::default()
    };
    for seed in 0..12u64 {
        out.push((
            format!("generated seed {seed}"),
            ocidiff::generate::generate_sequence(seed, &cfg),
            Default::default(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_and_repro_send_the_same_requests() {
    for tool in ["bash", "curl"] {
        if std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_err()
        {
            common::skip_external(tool);
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, seq, config) in sequences() {
        // A fresh registry per sequence so that both runs meet the same state.
        let content = Content::render(&seq.content).unwrap();
        let mut runs = Vec::new();
        for (k, ns) in ["ocidiffeqexec", "ocidiffeqrepro"].iter().enumerate() {
            let reg = reference_registry::spawn(config.clone()).await.unwrap();
            let (proxy, log) = start_proxy(reg.url()).await;
            if k == 0 {
                let ex = Executor::new(
                    vec![ExecTarget {
                        name: "reference".into(),
                        base_url: Url::parse(&proxy).unwrap(),
                        username: None,
                        password: None,
                        options: Default::default(),
                    }],
                    ExecOptions::default(),
                )
                .unwrap();
                ex.run(&seq, &content, ns).await;
            } else {
                let script = repro::render(
                    &seq,
                    &content,
                    &proxy,
                    &repro::ReproHead {
                        comment: "equivalence test",
                        diverging: "none",
                    },
                    dir.path(),
                )
                .unwrap();
                let path = dir.path().join("repro.sh");
                std::fs::write(&path, script).unwrap();
                let out = tokio::process::Command::new("bash")
                    .arg(&path)
                    .env("REGISTRY", &proxy)
                    .env("NS", ns)
                    .output()
                    .await
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{name}: repro.sh failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let seen = normalized(&log.lock().unwrap(), ns);
            runs.push(seen);
        }
        let (exec, sh) = (&runs[0], &runs[1]);
        for (i, (a, b)) in exec.iter().zip(sh.iter()).enumerate() {
            assert_eq!(a, b, "{name}: request {i} differs (executor, repro.sh)");
        }
        assert_eq!(
            exec.len(),
            sh.len(),
            "{name}: {} requests from the executor, {} from repro.sh",
            exec.len(),
            sh.len()
        );
        assert!(!exec.is_empty(), "{name}: nothing was sent");
    }
}
