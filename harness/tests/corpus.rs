//! The regression corpus (`corpora/regressions/*.toml`): minimized sequences from fuzzing and
//! hand-written ones.
//!
//! - Every file runs on the reference registry: no violation, every `[[expect]]` check passes.
//! - On the other implementations (the embedded `container-registry`, and distribution when
//!   `docker-registry` / `registry` is on `PATH`), what ocidiff finds is compared with the file
//!   next to the scenario, `<name>.<target>.expected` (one finding per line). A change of
//!   behaviour of either side shows as a failure with a unified diff.
//!
//! Without distribution its expectations are skipped with a message; with
//! `OCIDIFF_REQUIRE_EXTERNAL=1` (as in CI) that fails instead.
//!
//! Regenerate the expected files with `OCIDIFF_BLESS=1 cargo test -p ocidiff --test corpus`
//! (then review the diff).

mod common;

use ocidiff::compare::Class;
use ocidiff::drivers::case::{run_id, with_reference_first, Fleet};
use ocidiff::drivers::conformance::{load, run_scenario, ScenarioRun};
use ocidiff::scenario::checks::Outcome;
use ocidiff::targets::{find_distribution_binary, TargetSpec};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/regressions")
}

fn bless() -> bool {
    std::env::var("OCIDIFF_BLESS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The readable findings of one target: the oracle's divergences (class, rule, endpoint, field,
/// op) and the outcome of every `[[expect]]` check.
fn findings_text(file: &str, target: &str, run: &ScenarioRun) -> String {
    let t = run
        .outcome
        .targets
        .iter()
        .position(|n| n == target)
        .expect("target ran");
    let mut lines = BTreeSet::new();
    // Where a Location points (absolute or relative, query parameters) is noise here.
    for d in run
        .divergences
        .iter()
        .filter(|d| d.target == target && d.rule != "diff/location")
    {
        lines.insert(format!(
            "{} {} at op {} {} ({})",
            d.class, d.rule, d.op_index, d.label, d.field
        ));
    }
    let mut text = format!(
        "# ocidiff findings on `{target}` for corpora/regressions/{file}\n\
         # regenerate: OCIDIFF_BLESS=1 cargo test -p ocidiff --test corpus\n"
    );
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    for c in run.checks[t].iter().filter(|c| c.source == "expect") {
        text.push_str(&format!("check {}: {}\n", c.outcome, c.name));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_corpus() {
    let files = load(&corpus_dir()).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(files.len() >= 10, "only {} corpus files", files.len());

    let mut targets: Vec<(String, TargetSpec)> = vec![
        ("reference".into(), TargetSpec::Reference(Box::default())),
        ("container-registry".into(), TargetSpec::ContainerRegistry),
    ];
    match find_distribution_binary() {
        Some(bin) => targets.push((
            "distribution".into(),
            TargetSpec::Distribution { binary: Some(bin) },
        )),
        None => common::skip_external(
            "corpus: docker-registry not on PATH; distribution expectations are not checked",
        ),
    }
    let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    let fleet = Fleet::launch(
        &with_reference_first(targets).unwrap(),
        ocidiff::compare::SpecVersion::V1_1Dev,
    )
    .await
    .unwrap();
    let run = run_id();
    let mut problems: Vec<String> = Vec::new();
    for (i, w) in files.iter().enumerate() {
        let file = Path::new(&w.source)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let ns = format!("ocidiff{run}k{i}");
        let r = match run_scenario(&fleet.executor, &w.scenario, &ns).await {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{file}: {e:#}"));
                continue;
            }
        };
        // The reference: no violation, every check passes.
        for d in r
            .divergences
            .iter()
            .filter(|d| d.target == "reference" && d.class == Class::Violation)
        {
            problems.push(format!(
                "{file}: violation on the reference: {} op {}: {}",
                d.rule, d.op_index, d.summary
            ));
        }
        for c in r.checks[0].iter().filter(|c| c.source == "expect") {
            if c.outcome != Outcome::Pass {
                problems.push(format!(
                    "{file}: check {:?} is {} on the reference: {}",
                    c.name, c.outcome, c.message
                ));
            }
        }
        // The others: compare with the recorded findings.
        for target in names.iter().filter(|n| *n != "reference") {
            let got = findings_text(&file, target, &r);
            let path = w
                .source
                .strip_suffix(".toml")
                .map(|s| format!("{s}.{target}.expected"))
                .unwrap();
            if bless() {
                std::fs::write(&path, &got).unwrap();
                continue;
            }
            let want = match std::fs::read_to_string(&path) {
                Ok(w) => w,
                Err(_) => {
                    problems.push(format!(
                        "{file}: {path} is missing; run with OCIDIFF_BLESS=1 to create it:\n{got}"
                    ));
                    continue;
                }
            };
            if want != got {
                let diff = similar::TextDiff::from_lines(&want, &got)
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("{path} (recorded)"), "observed now")
                    .to_string();
                problems.push(format!(
                    "{file}: findings on {target} changed (OCIDIFF_BLESS=1 to accept):\n{diff}"
                ));
            }
        }
        // A reproducer still shows the divergence it was minimized for.
        if let Some(want) = &w.scenario.divergence {
            if names.contains(&want.target) && !bless() {
                let shown = r.divergences.iter().any(|d| {
                    d.target == want.target
                        && d.rule == want.rule
                        && d.class.to_string() == want.class
                });
                if !shown {
                    problems.push(format!(
                        "{file}: the recorded divergence {} on {} no longer shows",
                        want.rule, want.target
                    ));
                }
            }
        }
    }
    fleet.shutdown().await;
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

/// Every `*.expected` file belongs to a scenario (no stale leftovers).
#[test]
fn no_orphan_expected_files() {
    for e in std::fs::read_dir(corpus_dir()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".expected") {
            let scenario = stem.rsplit_once('.').map(|(s, _)| s).unwrap_or(stem);
            assert!(
                corpus_dir().join(format!("{scenario}.toml")).exists(),
                "{name} has no {scenario}.toml"
            );
        }
    }
}
