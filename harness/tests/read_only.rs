//! `ocidiff conformance --read-only`: pull and discovery checks on content already in a
//! registry. Against a registry holding content (the reference, seeded by `ocidiff run`), every
//! check passes and the tag list and referrers are covered; a registry with a pull bug fails
//! exactly those checks; the workflow sends only GET and HEAD to the target; distribution
//! 2.8.2 holding an image is checked the same way; content that is not there is a clear error.

mod common;

use ocidiff::drivers::read_only::{import, run_read_only, workflow, ReadOnlyConfig};
use ocidiff::scenario::checks::Outcome;
use ocidiff::targets::{find_distribution_binary, launch, parse_target_arg, TargetSpec};
use ocidiff::vocab::plan::Method;
use reference_registry::{Config, Faults};
use std::path::Path;
use std::process::Command;

fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Pushes the content of `scenario` into `url` with `ocidiff run`; the repository it made.
fn seed(url: &str, scenario: &str) -> String {
    common::seed_with_ocidiff_run(
        env!("CARGO_BIN_EXE_ocidiff"),
        &format!("seeded={url}"),
        &repo_root().join("scenarios").join(scenario),
    )
}

fn target(url: &str) -> Vec<(String, TargetSpec)> {
    vec![parse_target_arg(&format!("mirror={url}")).unwrap()]
}

fn fails(r: &ocidiff::report::conformance::ConformanceResults, t: &str) -> Vec<String> {
    r.cell(t, "read-only")
        .unwrap()
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| {
            format!(
                "{} [{}]: {}",
                c.name,
                c.rule.clone().unwrap_or_default(),
                c.message
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_checks_content_already_there() {
    let reg = reference_registry::spawn(Config::default()).await.unwrap();
    let url = reg.url();
    let repo = tokio::task::spawn_blocking({
        let url = url.clone();
        move || seed(&url, "content-discovery.toml")
    })
    .await
    .unwrap();
    let cfg = ReadOnlyConfig::new(&repo, vec!["v1".into()], Vec::new());
    let (r, imp) = run_read_only(target(&url), &cfg).await.unwrap();
    assert!(imp.tag_list_complete, "the repository's tags were read");
    assert!(!imp.listed_referrers.is_empty(), "referrers were read");
    for t in ["reference", "mirror"] {
        assert_eq!(fails(&r, t), Vec::<String>::new(), "{t}");
    }
    let cell = r.cell("mirror", "read-only").unwrap();
    assert!(cell.counts.pass >= 60, "{:?}", cell.counts);
    for name in ["tag list: 200", "unknown blob: 404", "api-version-check"] {
        assert!(
            cell.checks
                .iter()
                .any(|c| c.name == name && c.outcome == Outcome::Pass),
            "{name}"
        );
    }
    assert!(cell
        .checks
        .iter()
        .any(|c| c.name.starts_with("referrers of manifest")));

    // Only GET and HEAD reach the target: every read op's plan.
    let t = launch("m", &target(&url)[0].1).await.unwrap();
    let ex = ocidiff::execute::Executor::new(vec![t.exec_target()], Default::default()).unwrap();
    let imp = import(&ex, 0, &cfg).await.unwrap();
    let (sc, setup) = workflow(&imp);
    for op in &sc.ops[setup..] {
        for step in op.op().plan(&imp.content).steps {
            assert!(
                matches!(step.method, Method::Get | Method::Head),
                "{} sends {:?}",
                op.name(),
                step.method
            );
        }
    }
    t.shutdown().await;

    // By digest alone (no tag): the manifest and what it references.
    let d = imp
        .content
        .manifest_digest(ocidiff::vocab::ManifestId(imp.tags[0].1))
        .unwrap()
        .to_string();
    let by_digest = ReadOnlyConfig::new(&repo, Vec::new(), vec![d]);
    let (r, imp) = run_read_only(target(&url), &by_digest).await.unwrap();
    assert_eq!(fails(&r, "mirror"), Vec::<String>::new());
    assert_eq!(imp.roots.len(), 1);
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_finds_a_pull_bug() {
    let reg = reference_registry::spawn(Config {
        faults: Faults::only("manifest_get_no_digest_header").unwrap(),
        ..Config::default()
    })
    .await
    .unwrap();
    let url = reg.url();
    let repo = tokio::task::spawn_blocking({
        let url = url.clone();
        move || seed(&url, "pull.toml")
    })
    .await
    .unwrap();
    // Under main the digest header is a MUST (a failed check); under 1.1 a SHOULD.
    let mut cfg = ReadOnlyConfig::new(&repo, vec!["v1".into()], Vec::new());
    cfg.spec_version = ocidiff::compare::SpecVersion::V1_1Dev;
    let (r, _) = run_read_only(target(&url), &cfg).await.unwrap();
    assert!(fails(&r, "reference").is_empty());
    let f = fails(&r, "mirror");
    assert!(
        f.iter().any(|x| x.contains("Docker-Content-Digest")),
        "{f:#?}"
    );
    assert!(r.any_failed());
    reg.shutdown().await;
}

/// A listed tag that cannot be read (here: it outlived its manifest, which the spec allows)
/// is not blamed: the tag list is left unchecked and the tag is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_listed_tags_are_named_not_blamed() {
    let mut cfg = Config::default();
    cfg.quirks.enable("dangling_tags").unwrap();
    let reg = reference_registry::spawn(cfg).await.unwrap();
    let url = reg.url();
    let repo = tokio::task::spawn_blocking({
        let url = url.clone();
        move || seed(&url, "content-management.toml")
    })
    .await
    .unwrap();
    let cfg = ReadOnlyConfig::new(&repo, vec!["keep".into()], Vec::new());
    let (r, imp) = run_read_only(target(&url), &cfg).await.unwrap();
    assert!(!imp.tag_list_complete);
    assert!(
        imp.skipped_manifests.iter().any(|s| s.starts_with("tag ")),
        "{:?}",
        imp.skipped_manifests
    );
    assert_eq!(fails(&r, "mirror"), Vec::<String>::new());
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_against_distribution() {
    if find_distribution_binary().is_none() {
        common::skip_external("no docker-registry / registry binary on PATH");
        return;
    }
    let dist = launch("dist", &TargetSpec::Distribution { binary: None })
        .await
        .unwrap();
    let url = dist.base_url.to_string();
    let repo = tokio::task::spawn_blocking({
        let url = url.clone();
        move || seed(&url, "pull.toml")
    })
    .await
    .unwrap();
    let cfg = ReadOnlyConfig::new(&repo, vec!["v1".into()], Vec::new());
    let (r, imp) = run_read_only(target(&url), &cfg).await.unwrap();
    assert!(
        imp.listed_referrers.is_empty(),
        "distribution 2.8.2 has no referrers API"
    );
    assert!(
        fails(&r, "reference").is_empty(),
        "{:#?}",
        fails(&r, "reference")
    );
    let cell = r.cell("mirror", "read-only").unwrap();
    assert!(
        cell.counts.pass >= 20,
        "{:?}\n{:#?}",
        cell.counts,
        fails(&r, "mirror")
    );
    println!(
        "distribution read-only: {:?}; failed: {:#?}",
        cell.counts,
        fails(&r, "mirror")
    );
    dist.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_content_and_bad_arguments_are_clear_errors() {
    let reg = reference_registry::spawn(Config::default()).await.unwrap();
    let cfg = ReadOnlyConfig::new("no/such/repo", vec!["v1".into()], Vec::new());
    let e = run_read_only(target(&reg.url()), &cfg).await.unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("answered 404") && msg.contains("no/such/repo"),
        "{msg}"
    );
    let cfg = ReadOnlyConfig::new("Bad Name", vec!["v1".into()], Vec::new());
    assert!(format!(
        "{:#}",
        run_read_only(target(&reg.url()), &cfg).await.unwrap_err()
    )
    .contains("not a repository name"));
    let o = Command::new(env!("CARGO_BIN_EXE_ocidiff"))
        .args(["conformance", "--read-only", "--tag", "v1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "--read-only without --repo");
    let o = Command::new(env!("CARGO_BIN_EXE_ocidiff"))
        .args(["conformance", "--repo", "a/b"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "--repo without --read-only");
    reg.shutdown().await;
}
