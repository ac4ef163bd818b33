//! Verdicts by the spec version a registry claims (issue 25): the same run judged under `1.1`
//! (v1.1.1) quotes no sentence v1.1.1 lacks and makes no violation of a SHOULD there, while
//! under `1.1+dev` (main) the main-only MUSTs these registries break are violations; what
//! `1.1` does not count, it lists as "ready for the next spec".

mod common;

use common::{describe, reference};
use ocidiff::compare::{rule_in, Class, SpecVersion};
use ocidiff::drivers::fuzz::{run_fuzz, FuzzConfig, FuzzSummary};
use ocidiff::targets::{find_distribution_binary, TargetSpec};
use std::time::Duration;

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn text_of(v: SpecVersion) -> String {
    let path = format!("{}/spec/{}", env!("CARGO_MANIFEST_DIR"), v.file());
    collapse(&std::fs::read_to_string(path).unwrap())
}

async fn judged(target: (&str, TargetSpec), v: SpecVersion, seed: u64) -> FuzzSummary {
    let dir = tempfile::tempdir().unwrap();
    run_fuzz(FuzzConfig {
        seed,
        cases: 300,
        duration: Duration::from_secs(25),
        shrink: false,
        spec_version: v,
        ..FuzzConfig::new(
            vec![
                ("reference".into(), reference()),
                (target.0.into(), target.1),
            ],
            dir.path().to_path_buf(),
        )
    })
    .await
    .unwrap()
}

/// Every violation of a run judged by `v` rests on a registry MUST that is in `v`'s text.
fn every_violation_quotes_its_version(s: &FuzzSummary, v: SpecVersion) {
    let text = text_of(v);
    for f in &s.findings {
        let d = &f.divergence;
        assert_eq!(d.spec_version, v, "{}", describe(std::slice::from_ref(f)));
        if d.class != Class::Violation || d.target == "reference" {
            continue;
        }
        let vr = rule_in(&d.rule, v);
        assert!(vr.defined, "{} is not defined by {v}", d.rule);
        for sentence in d.spec.split(" … ") {
            assert!(
                sentence.starts_with('(') || text.contains(&collapse(sentence)),
                "{v}: {} quotes a sentence {} lacks: {sentence:?}",
                d.rule,
                v.text()
            );
        }
        assert!(
            d.spec.contains("MUST"),
            "{v}: violation {} without a MUST: {:?}",
            d.rule,
            d.spec
        );
    }
}

fn rules(s: &FuzzSummary, class: Class) -> Vec<String> {
    let mut v: Vec<String> = s
        .findings
        .iter()
        .filter(|f| f.divergence.class == class && f.divergence.target != "reference")
        .map(|f| f.divergence.rule.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// container-registry leaves `Docker-Content-Digest` out of blob and manifest GETs: a MUST on
/// main, a SHOULD in v1.1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_registry_digest_headers_by_version() {
    let dev = judged(
        ("container-registry", TargetSpec::ContainerRegistry),
        SpecVersion::V1_1Dev,
        2,
    )
    .await;
    let v11 = judged(
        ("container-registry", TargetSpec::ContainerRegistry),
        SpecVersion::V1_1,
        2,
    )
    .await;
    every_violation_quotes_its_version(&dev, SpecVersion::V1_1Dev);
    every_violation_quotes_its_version(&v11, SpecVersion::V1_1);
    let (dev_x, v11_x) = (rules(&dev, Class::Violation), rules(&v11, Class::Violation));
    println!("1.1+dev violations: {dev_x:?}\n1.1 violations: {v11_x:?}");
    assert!(
        dev_x
            .iter()
            .any(|r| r == "end-3/digest" || r == "end-2/get-digest"),
        "the missing digest headers are main-only MUSTs:\n{}",
        describe(&dev.findings)
    );
    for r in ["end-3/digest", "end-2/get-digest"] {
        assert!(!v11_x.iter().any(|x| x == r), "{r} is a SHOULD in v1.1.1");
    }
    // What 1.1 does not count, its next-version view lists.
    let ready: Vec<String> = v11
        .findings
        .iter()
        .filter_map(|f| {
            f.divergence
                .next_violation()
                .map(|_| f.divergence.rule.clone())
        })
        .collect();
    assert!(
        ready
            .iter()
            .any(|r| r == "end-3/digest" || r == "end-2/get-digest"),
        "ready for the next spec: {ready:?}"
    );
    // A violation under 1.1 is one under main too (main only adds MUSTs here).
    for r in &v11_x {
        assert_eq!(
            rule_in(r, SpecVersion::V1_1Dev).class,
            Class::Violation,
            "{r}"
        );
    }
}

/// distribution 2.8.2 answers a closing PUT after a gap with 400: main's "If the final chunk
/// is uploaded out of order, the registry MUST respond with a `416`" is not in v1.1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_final_chunk_order_by_version() {
    if find_distribution_binary().is_none() {
        common::skip_external("no docker-registry / registry binary on PATH");
        return;
    }
    let spec = || TargetSpec::Distribution { binary: None };
    let dev = judged(("distribution", spec()), SpecVersion::V1_1Dev, 1).await;
    let v11 = judged(("distribution", spec()), SpecVersion::V1_1, 1).await;
    every_violation_quotes_its_version(&dev, SpecVersion::V1_1Dev);
    every_violation_quotes_its_version(&v11, SpecVersion::V1_1);
    let (dev_x, v11_x) = (rules(&dev, Class::Violation), rules(&v11, Class::Violation));
    println!("1.1+dev violations: {dev_x:?}\n1.1 violations: {v11_x:?}");
    assert!(!v11_x.iter().any(|r| r == "end-6/out-of-order-416"));
    if dev_x.iter().any(|r| r == "end-6/out-of-order-416") {
        assert!(
            rules(&v11, Class::Variation)
                .iter()
                .any(|r| r == "end-6/out-of-order-416"),
            "under 1.1 the 400 is a variation (the behaviour is not defined there)"
        );
    }
}
