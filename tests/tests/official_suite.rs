//! The official OCI conformance suite (opencontainers/distribution-spec `conformance`, built by
//! `tests/tools/install-go-tools.sh` as `oci-conformance`) against the reference registry, under
//! each spec version it knows (`OCI_VERSION` 1.0, 1.1, 1.1+dev), with every API and data option
//! on (sparse manifests, digest headers, upload cancel, tag parameters, anonymous mounts):
//! zero failures. Skips only where the suite's own test data is invalid, each named in
//! [`SUITE_DATA_INVALID`] with the reason.

use ocidiff_e2e::{find_executable, run_official_suite, skip_external, SuiteRun};

/// Tests the suite runs on data the spec does not allow a registry to accept (none today).
const SUITE_DATA_INVALID: &[(&str, &str)] = &[];

/// The suite's skips on the reference, each with why it is right: the suite skips where the
/// registry took a path it also accepts.
const EXPECTED_SKIPS: &[(&str, &str)] = &[(
    "range requests/range 500-0",
    "`Range: bytes=500-0` is syntactically invalid (last-pos before first-pos); RFC 9110 \
     section 14.2 has the server ignore such a Range and send the whole blob, as the reference \
     does; the suite skips that answer as 'range request unsupported'",
)];

/// The suite's switches, all on: what `1.1+dev` checks by default and the options off by
/// default at `1.0` / `1.1` (the reference implements every optional API).
const EVERYTHING: &[(&str, &str)] = &[
    ("OCI_API_PULL", "true"),
    ("OCI_API_PUSH", "true"),
    ("OCI_API_BLOBS_ATOMIC", "true"),
    ("OCI_API_BLOBS_DELETE", "true"),
    ("OCI_API_BLOBS_DIGEST_HEADER", "true"),
    ("OCI_API_BLOBS_MOUNT_ANONYMOUS", "true"),
    ("OCI_API_BLOBS_UPLOAD_CANCEL", "true"),
    ("OCI_API_MANIFESTS_ATOMIC", "true"),
    ("OCI_API_MANIFESTS_DELETE", "true"),
    ("OCI_API_MANIFESTS_DIGEST_HEADER", "true"),
    ("OCI_API_MANIFESTS_TAG_PARAM", "true"),
    ("OCI_API_TAGS_ATOMIC", "true"),
    ("OCI_API_TAGS_DELETE", "true"),
    ("OCI_API_TAGS_LIST", "true"),
    ("OCI_API_REFERRER", "true"),
    ("OCI_DATA_IMAGE", "true"),
    ("OCI_DATA_INDEX", "true"),
    ("OCI_DATA_INDEX_LIST", "true"),
    ("OCI_DATA_SPARSE", "true"),
    ("OCI_DATA_ARTIFACT", "true"),
    ("OCI_DATA_SUBJECT", "true"),
    ("OCI_DATA_SUBJECT_MISSING", "true"),
    ("OCI_DATA_ARTIFACT_LIST", "true"),
    ("OCI_DATA_SUBJECT_LIST", "true"),
    ("OCI_DATA_DATA_FIELD", "true"),
    ("OCI_DATA_NONDISTRIBUTABLE", "true"),
    ("OCI_DATA_CUSTOM_FIELDS", "true"),
    ("OCI_DATA_NO_LAYERS", "true"),
    ("OCI_DATA_EMPTY_BLOB", "true"),
    ("OCI_DATA_SHA512", "true"),
];

/// Failed leaves, less the tests whose data the spec does not allow ([`SUITE_DATA_INVALID`]).
fn failures(run: &SuiteRun) -> Vec<&str> {
    run.failed_leaves()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !SUITE_DATA_INVALID.iter().any(|(t, _)| n.contains(t)))
        .collect()
}

fn suite() -> Option<std::path::PathBuf> {
    let found = find_executable("oci-conformance");
    if found.is_none() {
        skip_external(
            "official_suite: `oci-conformance` is not installed (bash tests/tools/install-go-tools.sh, then put its folder on PATH)",
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_passes_the_official_suite_under_every_version() {
    let Some(suite) = suite() else { return };
    for version in ["1.0", "1.1", "1.1+dev"] {
        let reg = reference_registry::spawn(reference_registry::Config::default())
            .await
            .unwrap();
        let url = reg.url();
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let suite = suite.clone();
        let run = tokio::task::spawn_blocking(move || {
            run_official_suite(&suite, &addr, version, EVERYTHING)
        })
        .await
        .unwrap()
        .unwrap();
        let failures = failures(&run);
        println!(
            "OCI_VERSION={version}: {} pass, {} fail, {} skip, {} disabled",
            run.count("Pass"),
            run.count("FAIL"),
            run.count("Skip"),
            run.count("Disabled")
        );
        assert!(
            run.count("Pass") > 100,
            "OCI_VERSION={version}: too few tests ran:\n{}",
            run.output
        );
        let unexpected_skips: Vec<&str> = run
            .tests
            .iter()
            .filter(|(n, st, _)| st == "Skip" && !EXPECTED_SKIPS.iter().any(|(t, _)| n.contains(t)))
            .map(|(n, _, _)| n.as_str())
            .collect();
        assert!(
            unexpected_skips.is_empty(),
            "OCI_VERSION={version}: skips without a reason: {unexpected_skips:#?}\n{}",
            run.output
        );
        assert!(
            failures.is_empty(),
            "OCI_VERSION={version}: the reference fails {} official tests: {failures:#?}\n{}",
            failures.len(),
            run.output
        );
        reg.shutdown().await;
    }
}
