//! Against a real registry (CNCF distribution, Debian's `docker-registry`): the engine finds at
//! least one violation, every violation has a complete reproducer directory, replaying its
//! scenario on a fresh distribution shows the finding again, and its standalone `repro.sh`
//! exits 1 (reproduced) against a fresh distribution and 0 against a fresh reference. Which
//! violations distribution has is not hard-coded.
//!
//! Skipped without the binary; fails instead with `OCIDIFF_REQUIRE_EXTERNAL=1` (as in CI).

mod common;

use common::{describe, fuzz_config, reference};
use ocidiff::compare::Class;
use ocidiff::drivers::fuzz::run_fuzz;
use ocidiff::drivers::replay::replay;
use ocidiff::shrink::Finding;
use ocidiff::targets::{find_distribution_binary, launch, TargetSpec};
use std::path::Path;
use std::time::{Duration, Instant};

fn distribution() -> TargetSpec {
    TargetSpec::Distribution { binary: None }
}

/// Runs `bash repro.sh` against a fresh registry of `spec`; returns (exit code, stdout).
async fn run_repro(script: &Path, spec: &TargetSpec) -> (i32, String) {
    let fresh = launch("fresh", spec).await.unwrap();
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(script)
        .env("REGISTRY", fresh.base_url.as_str())
        .env_remove("REGISTRY_USER")
        .env_remove("REGISTRY_PASS")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("repro.sh took over 60 s")
        .expect("running bash");
    fresh.shutdown().await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_violations_reproduce() {
    if find_distribution_binary().is_none() {
        common::skip_external("no docker-registry / registry binary on PATH");
        return;
    }
    let start = Instant::now();
    let out = tempfile::tempdir().unwrap();
    let summary = run_fuzz(fuzz_config(
        vec![
            ("reference".into(), reference()),
            ("distribution".into(), distribution()),
        ],
        1,
        500,
        Duration::from_secs(25),
        true,
        out.path(),
    ))
    .await
    .unwrap();
    println!(
        "fuzz: {} cases, {} ops, {:.1?}; {} violations, {} variations, {} unsupported",
        summary.cases_run,
        summary.ops_run,
        summary.elapsed,
        summary.violations,
        summary.variations,
        summary.unsupported
    );
    println!("{}", describe(&summary.findings));
    assert!(
        start.elapsed() <= Duration::from_secs(60),
        "fuzzing took {:.1?}",
        start.elapsed()
    );
    let violations: Vec<&Finding> = summary
        .findings
        .iter()
        .filter(|f| f.divergence.class == Class::Violation && f.divergence.target == "distribution")
        .collect();
    assert!(!violations.is_empty(), "no violation found on distribution");

    let json = std::fs::read_to_string(out.path().join("findings.json")).unwrap();
    let entries: serde_json::Value = serde_json::from_str(&json).unwrap();
    let entries = entries.as_array().expect("findings.json is an array");

    for f in &violations {
        let d = &f.divergence;
        let dir = out.path().join("findings").join(&f.id);
        for file in ["scenario.toml", "repro.sh", "report.md"] {
            assert!(dir.join(file).is_file(), "{}: missing {file}", f.id);
        }
        assert!(
            entries.iter().any(|e| e["id"] == f.id.as_str()),
            "{} not in findings.json",
            f.id
        );
        if !f.confirmed {
            println!("{}: unconfirmed (flaky) finding, replay not required", f.id);
            continue;
        }

        // Replay the scenario on a fresh reference + distribution.
        let rep = replay(
            dir.join("scenario.toml"),
            vec![("distribution".into(), distribution())],
            ocidiff::compare::SpecVersion::V1_1Dev,
        )
        .await
        .unwrap_or_else(|e| panic!("{}: replay failed: {e:#}", f.id));
        assert_eq!(
            rep.reproduced,
            Some(true),
            "{} ({} {}): replay did not show the finding again; divergences: {:?}",
            f.id,
            d.rule,
            d.field,
            rep.divergences
                .iter()
                .map(|x| (&x.rule, &x.endpoint, &x.field))
                .collect::<Vec<_>>()
        );

        // The standalone script: reproduces on a fresh distribution (exit 1), not on the
        // reference (exit 0).
        let (code, stdout) = run_repro(&dir.join("repro.sh"), &distribution()).await;
        assert_eq!(code, 1, "{}: repro.sh on distribution:\n{stdout}", f.id);
        assert!(stdout.contains("REPRODUCED: "), "{}: {stdout}", f.id);
        let (code, stdout_ref) = run_repro(&dir.join("repro.sh"), &reference()).await;
        assert_eq!(
            code, 0,
            "{}: repro.sh on the reference:\n{stdout_ref}",
            f.id
        );
        let verdict = stdout
            .lines()
            .find(|l| l.starts_with("REPRODUCED"))
            .unwrap_or("");
        println!(
            "{}: {} — replay and repro.sh reproduce; the reference passes ({verdict})",
            f.id, d.rule
        );
    }
    println!(
        "{} violations checked in {:.1?}",
        violations.len(),
        start.elapsed()
    );
}
