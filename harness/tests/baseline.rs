//! Baselines end to end: a run's `findings.json` as the baseline of the next run makes the
//! same bugs `known` (exit 0), a regression `new` (exit 1), a fix `no longer seen`; a curated
//! known-issues file works the same; a bad baseline file stops the CLI with exit 2 before any
//! run. Targets: the reference (oracle) and a reference with injected faults.

mod common;

use common::{describe, faulty, fuzz_config, reference};
use ocidiff::compare::Class;
use ocidiff::drivers::fuzz::{run_fuzz, FuzzSummary};
use ocidiff::report::baseline::{self, Baseline};
use reference_registry::Faults;
use std::path::Path;
use std::time::Duration;

async fn run(faults: Faults, out: &Path, baseline: Option<Baseline>) -> FuzzSummary {
    let targets = vec![
        ("reference".to_string(), reference()),
        ("faulty".to_string(), faulty(faults)),
    ];
    let mut cfg = fuzz_config(targets, 1, 40, Duration::from_secs(30), false, out);
    cfg.baseline = baseline;
    run_fuzz(cfg).await.expect("fuzz run")
}

fn rules(s: &FuzzSummary, class: Class) -> Vec<String> {
    let mut v: Vec<String> = s
        .findings
        .iter()
        .filter(|f| f.divergence.class == class && f.divergence.target == "faulty")
        .map(|f| f.divergence.rule.clone())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_separate_new_known_and_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let unsorted = Faults::only("tags_unsorted").unwrap();

    // The first run: the bug is a violation, the run fails.
    let first = run(unsorted.clone(), &dir.path().join("a"), None).await;
    assert!(
        rules(&first, Class::Violation).contains(&"end-8a/order".to_string()),
        "{}",
        describe(&first.findings)
    );
    assert_eq!(first.exit_code(), 1);
    let first_json = dir.path().join("a/findings.json");

    // The same registry against its own findings: everything known, the run passes.
    let b = baseline::load(&first_json).unwrap();
    let again = run(unsorted.clone(), &dir.path().join("b"), Some(b)).await;
    let c = again.baseline.as_ref().expect("comparison");
    assert_eq!(c.new_violations(), 0, "{}", c.render());
    assert!(!c.known.is_empty());
    assert_eq!(again.exit_code(), 0, "{}", c.render());
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("b/findings.json")).unwrap())
            .unwrap();
    assert!(written
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["baseline"] == "known" || e["baseline"] == "new"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("b/baseline.json")).unwrap())
            .unwrap();
    assert_eq!(report["new"].as_array().unwrap().len(), c.new.len());
    // junit.xml: known violations are skipped with the baseline's reason, none fails.
    let junit = std::fs::read_to_string(dir.path().join("b/junit.xml")).unwrap();
    assert_eq!(junit.matches("<failure").count(), 0, "{junit}");
    let known_violations = c
        .known
        .iter()
        .filter(|l| l.class == Class::Violation)
        .count();
    assert!(known_violations > 0);
    assert_eq!(
        junit.matches("known (baseline)").count(),
        known_violations,
        "{junit}"
    );

    // A regression on top: only the new bug is new, and it fails the run.
    let mut worse = unsorted.clone();
    worse.blob_put_status_200 = true;
    let b = baseline::load(&first_json).unwrap();
    let regressed = run(worse, &dir.path().join("c"), Some(b)).await;
    let c = regressed.baseline.as_ref().unwrap();
    let new: Vec<&str> = c
        .new
        .iter()
        .filter(|l| l.class == Class::Violation)
        .map(|l| l.rule.as_str())
        .collect();
    assert!(new.contains(&"end-6/put-201"), "{}", c.render());
    assert!(!new.contains(&"end-8a/order"), "{}", c.render());
    assert_eq!(regressed.exit_code(), 1);
    let junit = std::fs::read_to_string(dir.path().join("c/junit.xml")).unwrap();
    assert_eq!(
        junit.matches("<failure").count(),
        c.new_violations(),
        "{junit}"
    );
    assert!(junit.contains("end-6/put-201"));

    // The bug fixed: its entries are no longer seen, nothing is new.
    let b = baseline::load(&first_json).unwrap();
    let fixed = run(Faults::default(), &dir.path().join("d"), Some(b)).await;
    let c = fixed.baseline.as_ref().unwrap();
    assert!(c.new.is_empty(), "{}", c.render());
    assert!(c.known.is_empty());
    assert_eq!(c.no_longer_seen.len(), first.findings.len());
    assert_eq!(fixed.exit_code(), 0);

    // A curated known-issues file naming the rule: the same verdicts as the findings.json one.
    let curated = dir.path().join("known.toml");
    std::fs::write(
        &curated,
        "[[known]]\ntarget = \"faulty\"\nrule = \"end-8a/order\"\nreason = \"tags in reverse order, tracked upstream\"\n",
    )
    .unwrap();
    let b = baseline::load(&curated).unwrap();
    assert!(b.warnings.is_empty());
    let again = run(unsorted, &dir.path().join("e"), Some(b)).await;
    let c = again.baseline.as_ref().unwrap();
    assert!(c
        .known
        .iter()
        .any(|l| l.rule == "end-8a/order" && l.reason.as_deref().unwrap().contains("upstream")));
    assert!(
        c.new
            .iter()
            .all(|l| l.class != Class::Violation || l.rule != "end-8a/order"),
        "{}",
        c.render()
    );
}

#[test]
fn a_bad_baseline_stops_the_cli_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("known.toml");
    std::fs::write(&bad, "[[known]]\nrule = \"end-8a/order\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ocidiff"))
        .args([
            "fuzz",
            "--target",
            "reference",
            "--cases",
            "1",
            "--quiet",
            "--baseline",
        ])
        .arg(&bad)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("known.toml") && stderr.contains("reason"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "no run started");
}
