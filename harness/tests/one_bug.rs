//! Issue 30: one bug, one finding, across rules and modes. The reference registry with the
//! test-only fault `tag_delete_removes_manifest` (a tag `DELETE` takes the manifest with it,
//! as olareg v0.1.2 and nora-registry 1.4.3 do) fails many rules on many endpoints (HEAD / GET
//! by digest 404, DELETE by digest 404, tag lists short, referrers missing): a fuzz run
//! reports one finding, caused by the tag `DELETE`, the others its symptoms; a race run
//! reports no race, and names the sequential findings instead.

mod common;

use common::{describe, faulty, fuzz_config, reference};
use ocidiff::compare::Class;
use ocidiff::drivers::fuzz::run_fuzz;
use reference_registry::Faults;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_breaking_op_is_one_finding_with_its_symptoms() {
    let out = tempfile::tempdir().unwrap();
    let s = run_fuzz(fuzz_config(
        vec![
            ("reference".into(), reference()),
            (
                "faulty".into(),
                faulty(Faults::only("tag_delete_removes_manifest").unwrap()),
            ),
        ],
        30,
        400,
        Duration::from_secs(40),
        true,
        out.path(),
    ))
    .await
    .unwrap();
    println!("{}", describe(&s.findings));
    for f in &s.findings {
        println!(
            "{} symptoms {:?}\n   cause {:?}",
            f.id, f.symptoms, f.state_cause
        );
    }
    assert_eq!(
        s.findings.len(),
        1,
        "{}\n{}",
        describe(&s.findings),
        s.findings
            .iter()
            .map(|f| serde_json::to_string(&f.ops.ops).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let f = &s.findings[0];
    assert_eq!(f.divergence.class, Class::Violation);
    let cause = f.state_cause.as_ref().expect("a state cause");
    assert_eq!(cause.op, "DELETE /v2/<name>/manifests/<tag>");
    assert!(
        matches!(
            f.ops.ops.get(cause.op_index),
            Some(ocidiff::ops::Op::DeleteManifest(_))
        ),
        "{:?}",
        f.ops.ops
    );
    let rules: Vec<&str> = std::iter::once(f.divergence.rule.as_str())
        .chain(f.symptoms.iter().map(|x| x.rule.as_str()))
        .collect();
    for rule in ["end-3/head-200", "end-3/get-200"] {
        assert!(rules.contains(&rule), "{rule} not among {rules:?}");
    }
    // The page and findings.json say it in words.
    let json = std::fs::read_to_string(out.path().join("findings.json")).unwrap();
    assert!(json.contains("DELETE /v2/<name>/manifests/<tag>"), "{json}");
}

/// The same fault in `ocidiff race`: every history that breaks the model also fails with the
/// segment's ops run one at a time in some order, so it is a sequential bug, not a race, and
/// the run names the sequential finding instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_bug_is_not_a_race() {
    use ocidiff::drivers::race::{run_race, RaceRunConfig};
    let out = tempfile::tempdir().unwrap();
    let mut cfg = RaceRunConfig::new(
        vec![
            ("reference".into(), reference()),
            (
                "faulty".into(),
                faulty(Faults::only("tag_delete_removes_manifest").unwrap()),
            ),
        ],
        out.path().to_path_buf(),
    );
    cfg.seed = 30;
    cfg.cases = 120;
    cfg.duration = Duration::from_secs(40);
    cfg.race.kinds = vec!["deletes".to_string()];
    let s = run_race(cfg).await.unwrap();
    println!(
        "{} cases, {} histories, {} sequential: {:?}",
        s.cases_run,
        s.histories,
        s.sequential,
        s.sequential_bugs
            .iter()
            .map(|b| format!("{} {} {}", b.finding, b.rule, b.summary))
            .collect::<Vec<_>>()
    );
    assert!(
        s.findings.is_empty(),
        "races reported: {:#?}",
        s.findings
            .iter()
            .map(|f| format!("{} {} {}", f.id, f.rule, f.summary))
            .collect::<Vec<_>>()
    );
    assert!(s.sequential > 0, "the fault never showed");
    assert!(
        s.sequential_bugs.iter().all(|b| b.target == "faulty"),
        "{:?}",
        s.sequential_bugs
    );
    assert!(!s.sequential_bugs.is_empty());
}
