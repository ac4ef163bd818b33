//! The distribution launcher in `ocidiff_e2e` starts a ready registry and its
//! guard's `Drop` stops it and removes its temporary storage.
//! Skipped without docker-registry; fails instead with `OCIDIFF_REQUIRE_EXTERNAL=1`.

use std::time::Duration;

use ocidiff_e2e::{
    free_port, http_get_status, require_tool, run_bounded, start_distribution, DISTRIBUTION_BIN,
};

#[test]
fn distribution_starts_ready_and_cleans_up_on_drop() {
    if !require_tool(
        "distribution_starts_ready_and_cleans_up_on_drop",
        DISTRIBUTION_BIN,
    ) {
        return;
    }
    let dist = start_distribution().expect("start distribution");
    let addr = dist.host().parse().unwrap();
    assert!(dist.url().starts_with("http://127.0.0.1:"));
    assert_eq!(
        http_get_status(addr, "/v2/", Duration::from_secs(5)).unwrap(),
        200
    );
    let storage = dist.storage_dir();
    assert!(storage.is_dir());
    let pid = dist.pid();
    drop(dist);
    assert!(!storage.exists(), "temp storage left behind");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "distribution process {pid} still running"
    );
    assert!(
        http_get_status(addr, "/v2/", Duration::from_secs(1)).is_err(),
        "port still answering after drop"
    );
}

#[test]
fn two_distributions_get_distinct_ports() {
    if !require_tool("two_distributions_get_distinct_ports", DISTRIBUTION_BIN) {
        return;
    }
    let a = start_distribution().expect("first");
    let b = start_distribution().expect("second");
    assert_ne!(a.host(), b.host());
}

#[test]
fn helpers_are_bounded() {
    assert!(free_port().unwrap() > 0);
    let err = run_bounded(
        std::process::Command::new("sleep").arg("30"),
        Duration::from_millis(200),
    )
    .unwrap_err();
    assert!(err.to_string().contains("did not finish"), "{err}");
    let out = run_bounded(
        std::process::Command::new("echo").arg("hi"),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
}
