//! Two correct reference registries must agree on everything: any finding here is a false
//! positive of the executor, the model or the oracle. Also: the engine is deterministic.

mod common;

use common::{describe, faulty, fuzz_config, reference};
use ocidiff::drivers::fuzz::run_fuzz;
use ocidiff::generate::{generate_sequence, GenConfig};
use reference_registry::Faults;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_references_never_diverge() {
    let out = tempfile::tempdir().unwrap();
    // Two seeds far apart; every case `i` uses seed + i.
    let mut cases = 0;
    for seed in [1u64, 0x5EED_0000_0000] {
        let cfg = fuzz_config(
            vec![
                ("reference".into(), reference()),
                ("reference-b".into(), reference()),
            ],
            seed,
            200,
            Duration::from_secs(15),
            true,
            &out.path().join(seed.to_string()),
        );
        let summary = run_fuzz(cfg).await.unwrap();
        println!(
            "seed {seed}: {} cases, {} ops in {:.1?}, {} findings",
            summary.cases_run,
            summary.ops_run,
            summary.elapsed,
            summary.findings.len()
        );
        assert!(
            summary.findings.is_empty(),
            "reference vs reference diverged (seed {seed}):\n{}",
            describe(&summary.findings)
        );
        cases += summary.cases_run;
    }
    assert!(cases >= 40, "only {cases} cases ran in the time bound");
}

#[test]
fn same_seed_same_sequence() {
    let gen = GenConfig::default();
    let mut distinct = std::collections::BTreeSet::new();
    for seed in (0..40u64).chain([u64::MAX, 1 << 63]) {
        let a = generate_sequence(seed, &gen);
        let b = generate_sequence(seed, &gen);
        assert_eq!(a, b, "seed {seed} generated two different sequences");
        assert!(!a.ops.is_empty(), "seed {seed}: empty sequence");
        distinct.insert(serde_json::to_string(&a).unwrap());
    }
    assert!(
        distinct.len() >= 40,
        "seeds collide: {} distinct",
        distinct.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_findings() {
    let faults = Faults {
        blob_corrupt_byte: true,
        manifest_get_no_digest_header: true,
        tags_ignore_n: true,
        ..Faults::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let out = tempfile::tempdir().unwrap();
        let cfg = fuzz_config(
            vec![
                ("reference".into(), reference()),
                ("faulty".into(), faulty(faults.clone())),
            ],
            42,
            30,
            Duration::from_secs(60),
            true,
            out.path(),
        );
        let s = run_fuzz(cfg).await.unwrap();
        assert!(
            s.completed,
            "time bound hit; determinism needs the case bound"
        );
        assert!(!s.findings.is_empty(), "faulty reference gave no findings");
        let key: Vec<_> = s
            .findings
            .iter()
            .map(|f| {
                (
                    f.divergence.signature(),
                    f.first_seen_case,
                    f.ops.clone(),
                    f.confirmed,
                )
            })
            .collect();
        runs.push((s.cases_run, s.ops_run, key));
    }
    let (a, b) = (&runs[0], &runs[1]);
    assert_eq!((a.0, a.1), (b.0, b.1), "different case / op counts");
    let sigs_a: Vec<_> = a.2.iter().map(|k| k.0.clone()).collect();
    let sigs_b: Vec<_> = b.2.iter().map(|k| k.0.clone()).collect();
    assert_eq!(sigs_a, sigs_b, "different finding signatures");
    assert_eq!(
        a.2, b.2,
        "same signatures, different first cases or minimal sequences"
    );
    println!("{} findings, identical in both runs", a.2.len());
}

/// Cases run `jobs` at a time are judged in case order: the same seed gives the same findings
/// (same causes, first cases and minimal sequences) whatever `jobs` is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_do_not_depend_on_jobs() {
    let faults = Faults {
        blob_corrupt_byte: true,
        tags_unsorted: true,
        ..Faults::default()
    };
    let mut runs = Vec::new();
    for jobs in [1, 6] {
        let out = tempfile::tempdir().unwrap();
        let mut cfg = fuzz_config(
            vec![
                ("reference".into(), reference()),
                ("faulty".into(), faulty(faults.clone())),
            ],
            9,
            40,
            Duration::from_secs(90),
            true,
            out.path(),
        );
        cfg.jobs = jobs;
        let s = run_fuzz(cfg).await.unwrap();
        assert!(s.completed, "jobs {jobs}: time bound hit");
        assert!(!s.findings.is_empty());
        let key: Vec<_> = s
            .findings
            .iter()
            .map(|f| {
                (
                    f.id.clone(),
                    f.first_seen_case,
                    f.ops.clone(),
                    f.occurrences,
                )
            })
            .collect();
        runs.push((s.cases_run, key));
    }
    assert_eq!(runs[0], runs[1], "jobs 1 and jobs 6 differ");
}
