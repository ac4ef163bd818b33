//! The false-alarm suite: every quirk of the reference registry is a behaviour the spec allows
//! (and a real registry has), so fuzzing the reference against the reference with a quirk, with
//! every quirk at once, or with a real registry's profile must give zero violations, on either
//! side. Variations and unsupported features are expected (that is how the quirk shows); each
//! quirk must have changed at least one answer (the registry counts them), or the suite would
//! prove nothing about it.

mod common;

use common::{describe, fuzz_config, reference};
use ocidiff::compare::Class;
use ocidiff::drivers::fuzz::{run_fuzz, FuzzSummary};
use ocidiff::targets::TargetSpec;
use reference_registry::{Config, Quirks};
use std::time::Duration;

fn quirky(q: Quirks) -> TargetSpec {
    TargetSpec::Reference(Box::new(Config {
        quirks: q,
        ..Config::default()
    }))
}

/// Fuzzes reference vs `q` for `cases` cases per seed (no shrinking: only the verdicts count),
/// judged by main (`1.1+dev`).
async fn fuzz(what: &str, q: Quirks, seeds: &[u64], cases: u64) -> Vec<FuzzSummary> {
    fuzz_under(
        what,
        q,
        seeds,
        cases,
        ocidiff::compare::SpecVersion::V1_1Dev,
    )
    .await
}

/// [`fuzz`] judged by spec version `v`.
async fn fuzz_under(
    what: &str,
    q: Quirks,
    seeds: &[u64],
    cases: u64,
    v: ocidiff::compare::SpecVersion,
) -> Vec<FuzzSummary> {
    let mut out = Vec::new();
    for &seed in seeds {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = fuzz_config(
            vec![
                ("reference".into(), reference()),
                ("quirky".into(), quirky(q.clone())),
            ],
            seed,
            cases,
            Duration::from_secs(30),
            false,
            dir.path(),
        );
        cfg.spec_version = v;
        let s = run_fuzz(cfg).await.unwrap();
        let violations: Vec<_> = s
            .findings
            .iter()
            .filter(|f| f.divergence.class == Class::Violation)
            .cloned()
            .collect();
        assert!(
            violations.is_empty(),
            "{what} (seed {seed}, --spec-version {v}): a spec-allowed behaviour was reported as a violation:\n{}",
            describe(&violations)
        );
        println!(
            "{what:<28} seed {seed:>4}: {:>3} cases, {:>2} variations, {:>2} unsupported",
            s.cases_run, s.variations, s.unsupported
        );
        out.push(s);
    }
    out
}

/// Cases per seed for each quirk alone, and the most seeds tried until the quirk changes an
/// answer (the rarest, `referrers_paged`, needs a listing of two referrers of one subject:
/// about one case in forty).
const CASES: u64 = 40;
const MAX_SEEDS: u64 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_quirk_alone_gives_no_violation() {
    let mut names: Vec<String> = Quirks::ALL
        .iter()
        .map(|q| match q.name {
            // Caps under what ocidiff holds and sends, so that they are reached: the 429s
            // they answer are throttling (retried after Retry-After), never a finding.
            "max_open_sessions" => "max_open_sessions:4".to_string(),
            "rate_limit" => "rate_limit:20".to_string(),
            n => n.to_string(),
        })
        .collect();
    // A minimum the generated chunk sizes straddle (the default 1 MiB is above every chunk).
    names.push("chunk_min:4096".into());
    for (i, name) in names.iter().enumerate() {
        let mut q = Quirks::default();
        q.enable(name).unwrap();
        let hits = q.hits.clone();
        // Two seeds at least; more while the quirk has changed nothing.
        let mut seeds = 0;
        while seeds < 2 || (hits.get(name) == 0 && seeds < MAX_SEEDS) {
            fuzz(name, q.clone(), &[100 * (seeds + 1) + i as u64], CASES).await;
            seeds += 1;
        }
        assert!(
            hits.get(name) > 0,
            "{name}: the quirk changed no answer in {seeds} seeds x {CASES} cases; it is not exercised"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_quirks_at_once_give_no_violation() {
    let q = Quirks::all();
    let hits = q.hits.clone();
    let runs = fuzz("all quirks", q, &[1, 2, 3], 80).await;
    assert!(runs.iter().all(|s| s.cases_run >= 40), "too few cases ran");
    let idle: Vec<&str> = Quirks::ALL
        .iter()
        .map(|i| i.name)
        .filter(|n| hits.get(n) == 0)
        .collect();
    println!("quirks that changed no answer with all on: {idle:?}");
}

/// The false-alarm suite under the older versions too: what main allows, 1.1 and 1.0 allow
/// (they only have fewer MUSTs), and their readings of the rules must not turn an allowed
/// behaviour into a violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_quirks_give_no_violation_under_every_version() {
    for v in [
        ocidiff::compare::SpecVersion::V1_0,
        ocidiff::compare::SpecVersion::V1_1,
    ] {
        fuzz_under(&format!("all quirks, {v}"), Quirks::all(), &[5], 60, v).await;
        for p in Quirks::PROFILES {
            fuzz_under(p.name, Quirks::profile(p.name).unwrap(), &[6], 30, v).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_registry_profiles_give_no_violation() {
    for p in Quirks::PROFILES {
        let q = Quirks::profile(p.name).unwrap();
        fuzz(p.name, q, &[11, 12], 40).await;
    }
}

/// Paged referrers hide no bug from the fuzzer: with the listing paged and the artifactType
/// dropped from the descriptors, the fuzzer finds end-12a/artifact-type as it does unpaged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_referrers_still_show_referrer_bugs() {
    let mut q = Quirks::default();
    q.enable("referrers_paged").unwrap();
    let hits = q.hits.clone();
    let dir = tempfile::tempdir().unwrap();
    let buggy = TargetSpec::Reference(Box::new(Config {
        quirks: q,
        faults: reference_registry::Faults::only("referrers_drop_artifact_type").unwrap(),
        ..Config::default()
    }));
    let s = run_fuzz(fuzz_config(
        vec![("reference".into(), reference()), ("buggy".into(), buggy)],
        5,
        80,
        Duration::from_secs(30),
        false,
        dir.path(),
    ))
    .await
    .unwrap();
    assert!(hits.get("referrers_paged") > 0);
    assert!(
        s.findings
            .iter()
            .any(|f| f.divergence.rule == "end-12a/artifact-type"
                && f.divergence.class == Class::Violation),
        "{}",
        describe(&s.findings)
    );
}

/// Chunks sized from the advertised `OCI-Chunk-Min-Length`: at the minimum and above it the
/// upload must work; one byte below it is a request the spec tells clients not to send, so the
/// registry's refusal is no finding. The reference without the header gets two halves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_around_the_advertised_minimum() {
    let mut q = Quirks::default();
    q.enable("chunk_min:4096").unwrap();
    let hits = q.hits.clone();
    let text = common::AT_MIN;
    let sc = ocidiff::scenario::from_str(text, std::path::Path::new("at-min.toml")).unwrap();
    let fleet = ocidiff::drivers::case::Fleet::launch(
        &[
            ("reference".into(), reference()),
            ("quirky".into(), quirky(q)),
        ],
        ocidiff::compare::SpecVersion::V1_1Dev,
    )
    .await
    .unwrap();
    let run = ocidiff::drivers::conformance::run_scenario(&fleet.executor, &sc, "atmin")
        .await
        .unwrap();
    let violations: Vec<_> = run
        .divergences
        .iter()
        .filter(|d| d.class == Class::Violation)
        .collect();
    assert!(violations.is_empty(), "{violations:#?}");
    let labels = |op: usize, t: usize| -> Vec<(String, u16, String)> {
        run.outcome.ops[op].per_target[t]
            .iter()
            .map(|x| {
                (
                    x.label.clone(),
                    x.observation.status,
                    x.request
                        .headers
                        .get("content-range")
                        .cloned()
                        .unwrap_or_default(),
                )
            })
            .collect()
    };
    // The quirky target advertised 4096: chunks of 4095 (refused at the close), 4096, 4097.
    let below = labels(0, 1);
    assert_eq!(below[1].2, "0-4094", "{below:?}");
    assert_eq!(labels(1, 1)[1].2, "0-4095");
    assert_eq!(labels(2, 1)[1].2, "0-4096");
    assert_eq!(labels(1, 1).last().unwrap().1, 201, "{:?}", labels(1, 1));
    assert_eq!(labels(2, 1).last().unwrap().1, 201, "{:?}", labels(2, 1));
    assert!(hits.get("chunk_min") > 0);
    // The reference advertises nothing: two halves.
    let reference_chunks = labels(1, 0);
    assert_eq!(reference_chunks.len(), 4, "{reference_chunks:?}");
    assert_eq!(reference_chunks[1].2, "0-4999");
    // The blobs pushed at and above the minimum read back.
    for op in [3, 4] {
        assert_eq!(run.outcome.ops[op].per_target[1][0].observation.status, 200);
    }
    fleet.shutdown().await;
}
