//! The harness must catch every injected fault of the reference registry: for each fault, fuzz
//! [reference (oracle), "faulty" = reference with only that fault] and expect a violation on
//! "faulty" with a short minimal reproducer. Records detection, cases and seconds to the first
//! detection, and the minimal sequence length; prints a table (`--nocapture`) and writes it to
//! `target/fault-injection.json`.

mod common;

use common::{describe, faulty, fuzz_config, reference, target_dir};
use ocidiff::compare::Class;
use ocidiff::drivers::fuzz::run_fuzz;
use ocidiff::shrink::Finding;
use reference_registry::Faults;
use std::time::Duration;

const SEED: u64 = 1;
const MAX_CASES: u64 = 200;
const MAX_TIME: Duration = Duration::from_secs(20);
const MAX_SHRUNK_OPS: usize = 6;

/// Which class of divergence proves detection. `Range` support is a SHOULD in the spec
/// ("A registry SHOULD support the `Range` request header"), so a registry ignoring it is an
/// allowed variation, not a violation: the oracle must notice it, but as a `Variation`.
fn expected_class(fault: &str) -> Class {
    match fault {
        "range_ignored" => Class::Variation,
        _ => Class::Violation,
    }
}

#[derive(Debug, serde::Serialize)]
struct Row {
    fault: String,
    expected_class: String,
    detected: bool,
    /// Cases run up to and including the first detecting one.
    cases_to_detect: Option<u64>,
    /// Wall time of a fuzz run bounded to exactly those cases, without shrinking.
    seconds_to_detect: Option<f64>,
    /// Ops of the minimal reproducer of the first detecting finding (and its original length).
    shrunk_ops: Option<usize>,
    original_ops: Option<usize>,
    rule: Option<String>,
    finding_id: Option<String>,
    /// Whether that reproducer shows the fault on fresh registries, with nothing of the run.
    isolated: Option<bool>,
    /// Every signature seen on "faulty" (class rule endpoint field).
    signatures: Vec<String>,
    cases_run: u64,
}

fn detecting(findings: &[Finding], class: Class) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.divergence.target == "faulty" && f.divergence.class == class)
        .collect()
}

async fn probe_fault(fault: &str) -> Row {
    let faults = Faults::only(fault).expect("fault name from Faults::NAMES");
    let class = expected_class(fault);
    let targets = || {
        vec![
            ("reference".to_string(), reference()),
            ("faulty".to_string(), faulty(faults.clone())),
        ]
    };
    let out = tempfile::tempdir().unwrap();
    // Every fault gets a short reproducer, the variation (`range_ignored`) too.
    let mut cfg = fuzz_config(targets(), SEED, MAX_CASES, MAX_TIME, true, out.path());
    cfg.shrink_variations = true;
    let full = run_fuzz(cfg)
        .await
        .unwrap_or_else(|e| panic!("{fault}: run_fuzz failed: {e:#}"));
    let hits = detecting(&full.findings, class);
    let first = hits
        .iter()
        .min_by_key(|f| (f.first_seen_case, f.ops.ops.len()));
    let mut row = Row {
        fault: fault.to_string(),
        expected_class: class.to_string(),
        detected: first.is_some(),
        cases_to_detect: first.map(|f| f.first_seen_case + 1),
        seconds_to_detect: None,
        shrunk_ops: first.map(|f| f.ops.ops.len()),
        original_ops: first.map(|f| f.original_ops_len),
        rule: first.map(|f| f.divergence.rule.clone()),
        finding_id: first.map(|f| f.id.clone()),
        isolated: first.and_then(|f| f.isolated),
        signatures: full
            .findings
            .iter()
            .filter(|f| f.divergence.target == "faulty")
            .map(|f| {
                let d = &f.divergence;
                format!("{} {} {} {}", d.class, d.rule, d.endpoint, d.field)
            })
            .collect(),
        cases_run: full.cases_run,
    };
    if let Some(cases) = row.cases_to_detect {
        // Time to the first detection: the same seed, exactly those cases, no shrinking.
        let out = tempfile::tempdir().unwrap();
        let timed = run_fuzz(fuzz_config(
            targets(),
            SEED,
            cases,
            MAX_TIME,
            false,
            out.path(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{fault}: timing run failed: {e:#}"));
        assert!(
            !detecting(&timed.findings, class).is_empty(),
            "{fault}: detection not reproducible with the same seed"
        );
        row.seconds_to_detect = Some(timed.elapsed.as_secs_f64());
    }
    if first.is_none() {
        eprintln!(
            "{fault}: no {class} on faulty in {} cases; findings:\n{}",
            full.cases_run,
            describe(&full.findings)
        );
    }
    row
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() & 1 == 0 {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    })
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".to_string(), |x| x.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_detected() {
    let mut rows = Vec::new();
    for fault in Faults::NAMES {
        rows.push(probe_fault(fault).await);
    }

    let detected = rows.iter().filter(|r| r.detected).count();
    let med = median(rows.iter().filter_map(|r| r.seconds_to_detect).collect());
    println!("\n| fault | detected | cases | seconds to detect | shrunk ops | rule |");
    println!("|---|---|---:|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.fault,
            if r.detected {
                format!("yes ({})", r.expected_class)
            } else {
                "NO".to_string()
            },
            opt(&r.cases_to_detect),
            r.seconds_to_detect
                .map_or("-".into(), |s| format!("{s:.3}")),
            match (r.shrunk_ops, r.original_ops) {
                (Some(s), Some(o)) => format!("{s} (from {o})"),
                _ => "-".into(),
            },
            opt(&r.rule)
        );
    }
    println!(
        "\ndetection rate {detected}/{} ; median seconds to detect {}\n",
        rows.len(),
        med.map_or("-".into(), |m| format!("{m:.3}"))
    );
    let json = serde_json::json!({
        "seed": SEED,
        "max_cases": MAX_CASES,
        "max_seconds": MAX_TIME.as_secs(),
        "detected": detected,
        "faults": rows.len(),
        "median_seconds_to_detect": med,
        "rows": rows,
    });
    let path = target_dir().join("fault-injection.json");
    if let Err(e) = std::fs::create_dir_all(target_dir())
        .and_then(|_| std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()))
    {
        eprintln!("could not write {}: {e}", path.display());
    } else {
        println!("wrote {}", path.display());
    }

    let missed: Vec<_> = rows
        .iter()
        .filter(|r| !r.detected)
        .map(|r| r.fault.as_str())
        .collect();
    assert!(missed.is_empty(), "undetected faults: {missed:?}");
    let long: Vec<_> = rows
        .iter()
        .filter(|r| r.shrunk_ops.is_some_and(|n| n > MAX_SHRUNK_OPS))
        .map(|r| format!("{} ({} ops)", r.fault, opt(&r.shrunk_ops)))
        .collect();
    assert!(
        long.is_empty(),
        "minimal reproducers longer than {MAX_SHRUNK_OPS} ops: {long:?}"
    );
    // A reproducer proves itself: each shows its fault on a fresh pair of registries.
    let dependent: Vec<_> = rows
        .iter()
        .filter(|r| r.detected && r.isolated != Some(true))
        .map(|r| format!("{} ({:?})", r.fault, r.isolated))
        .collect();
    assert!(
        dependent.is_empty(),
        "reproducers not shown on fresh registries: {dependent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fault_no_finding() {
    let out = tempfile::tempdir().unwrap();
    let s = run_fuzz(fuzz_config(
        vec![
            ("reference".into(), reference()),
            ("faulty".into(), faulty(Faults::default())),
        ],
        SEED,
        MAX_CASES,
        MAX_TIME,
        true,
        out.path(),
    ))
    .await
    .unwrap();
    assert!(s.cases_run > 0);
    assert!(
        s.findings.is_empty(),
        "a fault-free registry produced findings:\n{}",
        describe(&s.findings)
    );
}
