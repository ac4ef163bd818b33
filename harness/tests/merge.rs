//! `ocidiff merge`: the shards `--shard i/N` of one seed, merged, equal the unsharded run of the
//! same cases (same findings, same examples, same counts and symptoms); the merged directory
//! holds what a run writes (findings.json, reproducers, index.html, junit.xml, run.json); a
//! missing shard is named; what is not an `ocidiff fuzz` output is refused with a clear error.

mod common;

use common::{describe, faulty, fuzz_config, reference};
use ocidiff::drivers::fuzz::{run_fuzz, FuzzSummary};
use ocidiff::drivers::merge::{self, load_run};
use ocidiff::shrink::Finding;
use reference_registry::Faults;
use std::path::Path;
use std::time::Duration;

fn faults() -> Faults {
    let mut f = Faults::only("tags_unsorted").unwrap();
    f.manifest_get_no_digest_header = true;
    f.range_ignored = true;
    f
}

async fn run(out: &Path, shard: (u32, u32)) -> FuzzSummary {
    let targets = vec![
        ("reference".to_string(), reference()),
        ("faulty".to_string(), faulty(faults())),
    ];
    let mut cfg = fuzz_config(targets, 11, 45, Duration::from_secs(60), false, out);
    cfg.shard = shard;
    let s = run_fuzz(cfg).await.expect("fuzz run");
    assert!(s.completed, "the run must reach its case limit");
    s
}

/// What must be equal between a merged and an unsharded run.
fn key(f: &Finding) -> String {
    let d = &f.divergence;
    format!(
        "{} {} {} {} case {} seed {} x{} at {:?} symptoms {:?} ops {}",
        f.id,
        d.class,
        d.target,
        d.rule,
        f.first_seen_case,
        f.case_seed,
        f.occurrences,
        f.seen_at,
        f.symptoms
            .iter()
            .map(|s| format!("{} {} {}", s.rule, s.endpoint, s.count))
            .collect::<Vec<_>>(),
        serde_json::to_string(&f.ops).unwrap()
    )
}

fn keys(findings: &[Finding]) -> Vec<String> {
    let mut v: Vec<String> = findings.iter().map(key).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_shards_equal_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = run(&dir.path().join("whole"), (0, 1)).await;
    assert!(
        whole.violations >= 2,
        "the faults must show: {}",
        describe(&whole.findings)
    );
    let mut shard_dirs = Vec::new();
    let mut cases = 0;
    for i in 0..3 {
        let d = dir.path().join(format!("shard-{i}"));
        let s = run(&d, (i, 3)).await;
        cases += s.cases_run;
        shard_dirs.push(d);
    }
    assert_eq!(cases, whole.cases_run);

    let out = dir.path().join("merged");
    let m = merge::merge(&out, &shard_dirs, None, None).expect("merge");
    assert!(m.missing_shards.is_empty());
    assert_eq!(
        keys(&m.findings),
        keys(&whole.findings),
        "merged:\n{}\nunsharded:\n{}",
        describe(&m.findings),
        describe(&whole.findings)
    );
    assert_eq!(m.violations, whole.violations);
    assert_eq!(m.run.cases_run, whole.cases_run);
    assert_eq!(m.run.ops_run, whole.ops_run);
    assert_eq!(m.run.seed, 11);
    assert_eq!(m.run.merged.len(), 3);

    // The merged directory is a run's directory: read back, it is the same findings again,
    // with every reproducer in place.
    let back = load_run(&out).expect("merged output reads back");
    assert_eq!(keys(&back.findings), keys(&whole.findings));
    for f in &m.findings {
        for file in ["scenario.toml", "repro.sh", "report.md", "finding.json"] {
            assert!(
                out.join("findings").join(&f.id).join(file).is_file(),
                "{file}"
            );
        }
    }
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains("id=\"merged\""));
    for f in &m.findings {
        assert!(page.contains(&format!("finding-{}", f.id)));
    }
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<failure").count(), m.violations, "{junit}");

    // Two of three shards: merged, with the missing one named.
    let partial = merge::merge(&dir.path().join("partial"), &shard_dirs[..2], None, None).unwrap();
    assert_eq!(partial.missing_shards, vec!["2/3".to_string()]);

    // The CLI: exit 1 for violations, 0 when they are all in the baseline, 2 for bad input.
    let bin = env!("CARGO_BIN_EXE_ocidiff");
    let cli = |args: &[&str]| {
        std::process::Command::new(bin)
            .arg("merge")
            .args(args)
            .output()
            .unwrap()
    };
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let o = cli(&[
        &p(&dir.path().join("cli")),
        &p(&shard_dirs[0]),
        &p(&shard_dirs[1]),
        &p(&shard_dirs[2]),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("merged 3 runs"));
    let baseline = p(&dir.path().join("whole/findings.json"));
    let o = cli(&[
        "--baseline",
        &baseline,
        &p(&dir.path().join("cli2")),
        &p(&shard_dirs[0]),
        &p(&shard_dirs[1]),
        &p(&shard_dirs[2]),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = cli(&[&p(&dir.path().join("cli3")), &p(dir.path())]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no run.json"), "{err}");
    let o = cli(&[&p(&shard_dirs[0]), &p(&shard_dirs[0])]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be one of its inputs"));
}

#[test]
fn a_broken_finding_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("run.json"), r#"{"run_id":"r","seed":1,"targets":[],"cases_run":0,"ops_run":0,"seconds":0.0,"running":false}"#).unwrap();
    std::fs::write(d.join("findings.json"), r#"[{"id":"abc123"}]"#).unwrap();
    let e = load_run(d).unwrap_err();
    assert!(
        format!("{e:#}").contains("findings/abc123/finding.json"),
        "{e:#}"
    );
    std::fs::create_dir_all(d.join("findings/abc123")).unwrap();
    std::fs::write(d.join("findings/abc123/finding.json"), "{").unwrap();
    let e = load_run(d).unwrap_err();
    assert!(format!("{e:#}").contains("not a finding"), "{e:#}");
    std::fs::write(d.join("findings.json"), r#"[{"id":"../x"}]"#).unwrap();
    let e = load_run(d).unwrap_err();
    assert!(format!("{e:#}").contains("bad id"), "{e:#}");
}
