//! Against a real registry (CNCF distribution, Debian's `docker-registry`): the engine finds at
//! least one violation, every violation has a complete reproducer directory, replaying its
//! scenario on a fresh distribution shows the same signature again, and its standalone
//! `repro.sh` runs against a fresh distribution, exits 0 and prints the recorded status of the
//! diverging exchange. Which violations distribution has is not hard-coded.
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

/// The status the target answered on the diverging exchange, as recorded in the finding.
fn recorded_status(f: &Finding) -> Option<u16> {
    let d = &f.divergence;
    let outcome = f.outcome.as_ref()?;
    let t = outcome.targets.iter().position(|n| *n == d.target)?;
    let ex = outcome
        .ops
        .get(d.op_index)?
        .per_target
        .get(t)?
        .iter()
        .find(|x| x.label == d.label)?;
    Some(ex.observation.status)
}

/// Runs `bash repro.sh` against a fresh distribution; returns (exit success, stdout).
async fn run_repro(script: &Path) -> (bool, String) {
    let fresh = launch("distribution", &distribution()).await.unwrap();
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
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
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
        )
        .await
        .unwrap_or_else(|e| panic!("{}: replay failed: {e:#}", f.id));
        assert_eq!(
            rep.reproduced,
            Some(true),
            "{} ({} {}): replay did not show the signature again; divergences: {:?}",
            f.id,
            d.rule,
            d.field,
            rep.divergences
                .iter()
                .map(|x| x.signature())
                .collect::<Vec<_>>()
        );
        assert!(
            rep.divergences
                .iter()
                .any(|x| x.signature() == d.signature()),
            "{}: same rule, different signature",
            f.id
        );

        // The standalone script against a fresh distribution.
        let (ok, stdout) = run_repro(&dir.join("repro.sh")).await;
        assert!(ok, "{}: repro.sh failed:\n{stdout}", f.id);
        let marker = format!("=== [op{}:{}] ", d.op_index, d.label);
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&marker))
            .unwrap_or_else(|| panic!("{}: no `{marker}` line in:\n{stdout}", f.id));
        match recorded_status(f) {
            Some(status) if status != 0 => assert!(
                line.ends_with(&format!("-> {status}")),
                "{}: recorded status {status}, repro.sh printed `{line}`",
                f.id
            ),
            _ => assert!(line.contains(" -> "), "{}: odd line `{line}`", f.id),
        }
        assert!(
            stdout.contains(&format!("expected divergence: {}", d.rule)),
            "{}: no summary line",
            f.id
        );
        println!("{}: {} — replayed and repro.sh OK ({line})", f.id, d.rule);
    }
    println!(
        "{} violations checked in {:.1?}",
        violations.len(),
        start.elapsed()
    );
}
