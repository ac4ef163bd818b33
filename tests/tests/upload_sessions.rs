//! Issue 29 against a real registry: a fuzz run on distribution 2.8.2 (Debian's
//! `docker-registry`, access log on) attends to every upload session it opens: each session
//! directory left in distribution's storage got a `DELETE` from ocidiff. The run's session
//! counts add up, with none left open.
//!
//! What distribution itself leaves behind is told apart, not blamed on the run:
//! - a cancelled session's directory keeps its `hashstates/` (distribution 2.8.2 rewrites the
//!   hash state after removing the session: `POST`, `DELETE` 204, and the folder is there);
//! - a session whose `PUT` failed digest verification keeps its data: distribution's own
//!   cancel after the error fails ("error canceling upload after error: already closed") and
//!   the client's `DELETE` is answered 404 `BLOB_UPLOAD_INVALID` ("upload resumed at wrong
//!   offset"), so no client can remove it (its upload purging does, after a week).
//!
//! Both are checked here on a fresh session first, so the test notices if a distribution
//! without them is installed. Skipped without `docker-registry`; fails instead with
//! `OCIDIFF_REQUIRE_EXTERNAL=1`.

use ocidiff::drivers::fuzz::{run_fuzz, FuzzConfig};
use ocidiff::targets::TargetSpec;
use ocidiff_e2e::{find_executable, skip_external, start_distribution_logged, DISTRIBUTION_BIN};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `(method, status)` of every request to each upload session id, from the access log.
fn session_requests(log: &Path) -> BTreeMap<String, Vec<(String, u16)>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut by_id: BTreeMap<String, Vec<(String, u16)>> = BTreeMap::new();
    for line in text.lines() {
        // 127.0.0.1 - - [date] "DELETE /v2/NAME/blobs/uploads/ID?_state=... HTTP/1.1" 204 0 "" ""
        let mut quoted = line.split('"');
        let (Some(_), Some(request), Some(after)) = (quoted.next(), quoted.next(), quoted.next())
        else {
            continue;
        };
        let mut parts = request.split(' ');
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some((_, rest)) = target.split_once("/blobs/uploads/") else {
            continue;
        };
        let id = rest.split(['?', '/']).next().unwrap_or_default();
        let status = after.split_whitespace().next().and_then(|s| s.parse().ok());
        if let (false, Some(status)) = (id.is_empty(), status) {
            by_id
                .entry(id.to_string())
                .or_default()
                .push((method.to_string(), status));
        }
    }
    by_id
}

/// Every `<repo>/_uploads/<id>` directory under distribution's storage.
fn session_dirs(storage: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "_uploads") {
                found.extend(
                    std::fs::read_dir(&path)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|s| s.path()),
                );
            } else {
                walk(&path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(storage, &mut found);
    found
}

fn holds_data(dir: &Path) -> bool {
    dir.join("data").exists() || dir.join("startedat").exists()
}

/// distribution 2.8.2's own residue, on a fresh session of each kind (see the module doc).
async fn distribution_residue_is_its_own(base: &str, storage: &Path) {
    let http = reqwest::Client::new();
    let post = |repo: &str| {
        let url = format!("{base}/v2/{repo}/blobs/uploads/");
        let http = http.clone();
        async move {
            let r = http.post(url).send().await.unwrap();
            assert_eq!(r.status(), 202);
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            if loc.starts_with('/') {
                format!("{base}{loc}")
            } else {
                loc
            }
        }
    };
    let cancelled = post("residue/cancelled").await;
    let r = http.delete(&cancelled).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let failed = post("residue/failed").await;
    let zero = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let r = http
        .put(format!("{failed}&digest={zero}"))
        .header("content-type", "application/octet-stream")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http.delete(&failed).send().await.unwrap();
    let repos = storage.join("docker/registry/v2/repositories/residue");
    let cancelled_dirs = session_dirs(&repos.join("cancelled"));
    let failed_dirs = session_dirs(&repos.join("failed"));
    assert!(
        cancelled_dirs.len() == 1 && !holds_data(&cancelled_dirs[0]),
        "a cancelled session: {cancelled_dirs:?}"
    );
    assert!(
        r.status() == 404 && failed_dirs.len() == 1 && holds_data(&failed_dirs[0]),
        "DELETE after a failed PUT: {}, {failed_dirs:?}",
        r.status()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_attends_to_every_upload_session_on_distribution() {
    if find_executable(DISTRIBUTION_BIN).is_none() {
        skip_external("upload_sessions: docker-registry is not installed");
        return;
    }
    let d = start_distribution_logged().unwrap();
    distribution_residue_is_its_own(&d.url(), &d.storage_dir()).await;
    let out = tempfile::tempdir().unwrap();
    let cfg = FuzzConfig {
        seed: 29,
        // Far more cases than fit: the run is cut at its deadline, mid-case.
        cases: 100_000,
        duration: Duration::from_secs(20),
        ..FuzzConfig::new(
            vec![
                ("reference".into(), TargetSpec::Reference(Box::default())),
                (
                    "distribution".into(),
                    TargetSpec::Url {
                        url: d.url().parse().unwrap(),
                        username: None,
                        password: None,
                    },
                ),
            ],
            out.path().to_path_buf(),
        )
    };
    let s = run_fuzz(cfg).await.unwrap();
    let st = s
        .stats
        .iter()
        .find(|t| t.target == "distribution")
        .expect("distribution's figures");
    println!("{} cases; {st:?}", s.cases_run);
    assert!(!s.completed, "the run should be cut at its deadline");
    assert!(st.sessions_opened > 50, "{st:?}");
    assert_eq!(
        st.sessions_opened,
        st.sessions_closed + st.sessions_cancelled + st.sessions_left_open,
        "{st:?}"
    );
    assert_eq!(st.sessions_left_open, 0, "{st:?}");

    let requests = session_requests(&d.log_path());
    let (mut residue, mut leaked_by_distribution) = (0, 0);
    let mut unattended = Vec::new();
    for dir in session_dirs(&d.storage_dir().join("docker/registry/v2/repositories")) {
        if dir.components().any(|c| c.as_os_str() == "residue") {
            continue;
        }
        let id = dir.file_name().unwrap().to_string_lossy().to_string();
        let seen = requests.get(&id).cloned().unwrap_or_default();
        let deleted = seen.iter().any(|(m, _)| m == "DELETE");
        if !deleted {
            unattended.push(format!("{id}: {seen:?}"));
        } else if !holds_data(&dir) {
            residue += 1;
        } else {
            // Its data stays only when distribution could not cancel it: a failed PUT, then
            // the DELETE answered 404.
            let failed_put = seen.iter().any(|(m, st)| m == "PUT" && *st >= 400);
            let delete_404 = seen.iter().any(|(m, st)| m == "DELETE" && *st == 404);
            assert!(
                failed_put && delete_404,
                "session {id} was cancelled and still holds data: {seen:?}"
            );
            leaked_by_distribution += 1;
        }
    }
    println!(
        "session folders left: {residue} cancelled (hashstates only), \
         {leaked_by_distribution} after a failed PUT (distribution could not cancel them)"
    );
    assert!(
        unattended.is_empty(),
        "{} upload session(s) left without a DELETE from ocidiff:\n{}",
        unattended.len(),
        unattended.join("\n")
    );
}
