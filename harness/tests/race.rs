//! Concurrent histories and the linearizability oracle (`ocidiff race`, issue 11).
//!
//! * The reference registry is linearizable: reference vs reference over several seeds of
//!   concurrent cases gives no finding (and every history gets a verdict).
//! * Every race fault of the reference (`Faults::RACE_NAMES`) is found within 60 s, shrunk to
//!   at most 3 clients, and replays; the table goes to `target/race-faults.json` (README).
//! * The checker refuses a history no order explains, and accepts it once the answers are
//!   put back: a recorded history with one answer doctored.

mod common;

use common::{faulty, reference, target_dir};
use ocidiff::compare::race::{check_history, hist_ops, Consistency, Verdict};
use ocidiff::drivers::case::Fleet;
use ocidiff::drivers::race::{run_race, RaceRunConfig};
use ocidiff::generate::race::{Client, RaceCase};
use ocidiff::model::ModelState;
use ocidiff::ops::manifest_pull::GetManifest;
use ocidiff::ops::manifest_push::PushManifest;
use ocidiff::ops::Op;
use ocidiff::vocab::content::Content;
use ocidiff::vocab::exchange::BodyFacts;
use ocidiff::vocab::spec::Reference;
use ocidiff::vocab::{ManifestId, Repo};
use reference_registry::Faults;
use std::time::{Duration, Instant};

fn two_references() -> Vec<(String, ocidiff::targets::TargetSpec)> {
    vec![
        ("reference".to_string(), reference()),
        ("other".to_string(), reference()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_is_linearizable_under_concurrent_cases() {
    for seed in [1u64, 2, 3] {
        let out = tempfile::tempdir().unwrap();
        let mut cfg = RaceRunConfig::new(two_references(), out.path().to_path_buf());
        cfg.seed = seed;
        cfg.cases = 150;
        cfg.duration = Duration::from_secs(60);
        cfg.race.max_clients = 8;
        cfg.race.max_ops = 4;
        let s = run_race(cfg).await.unwrap();
        assert!(
            s.findings.is_empty(),
            "seed {seed}: {:#?}",
            s.findings.iter().map(|f| &f.summary).collect::<Vec<_>>()
        );
        assert_eq!(s.cases_run, 150, "seed {seed}");
        assert_eq!(s.histories, 300, "seed {seed}: every history judged");
        assert_eq!(s.inconclusive, 0, "seed {seed}");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("findings.json")).unwrap())
                .unwrap();
        assert_eq!(written["findings"].as_array().map(Vec::len), Some(0));
    }
}

/// Which race family exposes each fault (the run draws only from it).
fn family(fault: &str) -> &'static str {
    match fault {
        "tag_update_lost" => "tags",
        "delete_stale_tags" => "deletes",
        "blob_commit_early" => "blobs",
        "referrers_lost_update" => "referrers",
        other => panic!("no family for {other}"),
    }
}

#[derive(serde::Serialize)]
struct Row {
    fault: String,
    rule: String,
    seconds_to_detect: f64,
    cases_to_detect: u64,
    found_clients: usize,
    found_ops: usize,
    clients: usize,
    ops: usize,
    reproduced: u32,
    attempts: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_race_fault_is_found_shrunk_and_replayed() {
    let mut rows = Vec::new();
    for fault in Faults::RACE_NAMES {
        let out = tempfile::tempdir().unwrap();
        let targets = vec![
            ("reference".to_string(), reference()),
            ("faulty".to_string(), faulty(Faults::only(fault).unwrap())),
        ];
        let mut cfg = RaceRunConfig::new(targets, out.path().to_path_buf());
        cfg.seed = 1;
        cfg.cases = 2000;
        cfg.duration = Duration::from_secs(60);
        cfg.race.kinds = vec![family(fault).to_string()];
        cfg.max_races = Some(1);
        // Races show on some attempts only: enough attempts that the replay rate is not 0 by
        // bad luck.
        cfg.attempts = 24;
        let started = Instant::now();
        let s = run_race(cfg).await.unwrap();
        assert!(
            s.findings.iter().all(|f| f.target == "faulty"),
            "{fault}: a finding on the reference: {:#?}",
            s.findings
        );
        let f = s
            .findings
            .iter()
            .min_by(|a, b| a.seconds_to_detect.total_cmp(&b.seconds_to_detect))
            .unwrap_or_else(|| panic!("{fault}: not found in {} cases", s.cases_run));
        let dir = out.path().join("races").join(&f.id);
        let script = std::fs::read_to_string(dir.join("repro.sh")).unwrap();
        assert!(
            script.contains(") > \"$BASE_WORK/client0.log\" 2>&1 &"),
            "{script}"
        );
        assert!(script.contains("\nwait\n"));
        assert!(ocidiff::drivers::race::read_case(&dir).is_ok());
        println!(
            "{fault}: {} ({} cases, {:.1} s)",
            f.summary,
            s.cases_run,
            started.elapsed().as_secs_f64()
        );
        rows.push(Row {
            fault: fault.to_string(),
            rule: f.rule.clone(),
            seconds_to_detect: f.seconds_to_detect,
            cases_to_detect: f.case_index + 1,
            found_clients: f.found_clients,
            found_ops: f.found_ops,
            clients: f.clients,
            ops: f.ops,
            reproduced: f.reproduced,
            attempts: f.attempts,
        });
    }
    for r in &rows {
        println!(
            "{:<24} {:<12} {:>7.2}s {:>4} cases {}x{} -> {} clients / {} ops, replayed {}/{}",
            r.fault,
            r.rule,
            r.seconds_to_detect,
            r.cases_to_detect,
            r.found_clients,
            r.found_ops,
            r.clients,
            r.ops,
            r.reproduced,
            r.attempts
        );
    }
    let _ = std::fs::write(
        target_dir().join("race-faults.json"),
        serde_json::to_string_pretty(&rows).unwrap(),
    );
    for r in &rows {
        let fault = &r.fault;
        assert!(r.rule.starts_with("race/"), "{fault}: {}", r.rule);
        assert!(
            r.seconds_to_detect < 60.0,
            "{fault}: {}",
            r.seconds_to_detect
        );
        assert!(r.clients <= 3, "{fault}: shrunk to {} clients", r.clients);
        assert!(
            r.reproduced > 0,
            "{fault}: the shrunk case never reproduced"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctored_answer_makes_a_history_no_order_explains() {
    // Two clients move tag `a` (M0 in the prefix) to M1 and M2; a read after both sees one.
    let mut case = ocidiff::generate::race::generate_race(1, &Default::default());
    let push = |m: u16| -> Op {
        PushManifest::new(Repo(0), ManifestId(m), Reference::Tag("a".into())).into()
    };
    case.clients = vec![Client { ops: vec![push(1)] }, Client { ops: vec![push(2)] }];
    case.after = vec![GetManifest {
        repo: Repo(0),
        reference: Reference::Tag("a".into()),
    }
    .into()];
    let (content, st, hist) = recorded(&case).await;
    let clients = case.client_ops();
    let judge = |timed: &[ocidiff::vocab::exchange::TimedOp]| {
        let ops = hist_ops(&clients, &case.after, timed, Consistency::Strict);
        check_history(&st, &content, &ops, true, 100_000)
    };
    let timed = hist.per_target[0].clone();
    assert_eq!(judge(&timed), Verdict::Linearizable);
    // The read shows M0 again: both moves completed before it began, so no order explains it.
    let mut doctored = timed.clone();
    let read = doctored.iter_mut().find(|t| t.client == 2).unwrap();
    let m0 = content.manifest_sha256(ManifestId(0)).unwrap().to_string();
    if let BodyFacts::Content { sha256, .. } = &mut read.exchanges[0].observation.body {
        *sha256 = m0.trim_start_matches("sha256:").to_string();
    } else {
        panic!("a manifest body: {:?}", read.exchanges[0].observation.body);
    }
    match judge(&doctored) {
        Verdict::Not(n) => {
            assert_eq!(n.endpoint, "end-3");
            assert_eq!(n.blocking, (2, 0));
            assert_eq!(
                ocidiff::compare::race::race_rule(&n.endpoint),
                Some("race/end-3")
            );
        }
        v => panic!("doctored history judged {v:?}"),
    }
    // Whichever push the read saw, making the other one start after the read ended makes the
    // history unexplainable too (real-time order matters).
    let mut late = timed.clone();
    let read_end = late.iter().find(|t| t.client == 2).unwrap().end_us;
    let seen = late
        .iter()
        .find(|t| t.client == 2)
        .map(|t| t.exchanges[0].observation.body.clone())
        .unwrap();
    let m1 = content.manifest_sha256(ManifestId(1)).unwrap().to_string();
    let saw_m1 =
        matches!(&seen, BodyFacts::Content { sha256, .. } if m1.ends_with(sha256.as_str()));
    let other = if saw_m1 { 0 } else { 1 };
    let o = late.iter_mut().find(|t| t.client == other).unwrap();
    o.start_us = read_end + 10;
    o.end_us = read_end + 20;
    assert!(matches!(judge(&late), Verdict::Not(_)), "saw_m1 {saw_m1}");
}

/// Runs `case` on an embedded reference: its content, the model after the prefix (which the
/// reference must pass), and the segment's history.
async fn recorded(case: &RaceCase) -> (Content, ModelState, ocidiff::vocab::exchange::History) {
    let fleet = Fleet::launch(
        &[("reference".to_string(), reference())],
        ocidiff::compare::SpecVersion::V1_1Dev,
    )
    .await
    .unwrap();
    let r = ocidiff::drivers::race::record(&fleet, case, "ocidiffrecorded")
        .await
        .unwrap();
    fleet.shutdown().await;
    assert!(r.prefix_divergences.is_empty());
    (r.content, r.state, r.history)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fuzz_run_gives_a_share_of_its_cases_to_concurrent_ones() {
    let out = tempfile::tempdir().unwrap();
    let targets = vec![
        ("reference".to_string(), reference()),
        (
            "faulty".to_string(),
            faulty(Faults::only("tag_update_lost").unwrap()),
        ),
    ];
    let mut cfg = common::fuzz_config(targets, 5, 120, Duration::from_secs(30), false, out.path());
    cfg.race_share = 0.5;
    let s = ocidiff::drivers::fuzz::run_fuzz(cfg).await.unwrap();
    let races = s.races.as_ref().expect("a concurrent part");
    assert!(
        races.cases_run > 0 && races.cases_run <= 60,
        "{}",
        races.cases_run
    );
    assert!(s.cases_run > races.cases_run, "sequential cases ran too");
    assert!(
        races
            .findings
            .iter()
            .any(|f| f.target == "faulty" && f.rule.starts_with("race/")),
        "{:#?}",
        races.findings
    );
    assert!(races.findings.iter().all(|f| f.target == "faulty"));
    assert_eq!(s.exit_code(), 1);
    // Both outputs, side by side.
    assert!(out.path().join("findings.json").is_file());
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("races.json")).unwrap()).unwrap();
    assert!(!r["findings"].as_array().unwrap().is_empty());
}

/// Against Debian's distribution 2.8.2: its histories get verdicts (its prefix stays on the
/// model), every race found has two clients or more and a `repro.sh` that runs the clients
/// as background jobs against a fresh distribution. Which races it has is not hard-coded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_histories_are_judged() {
    if ocidiff::targets::find_distribution_binary().is_none() {
        common::skip_external("docker-registry (distribution) is not installed");
        return;
    }
    let spec = || ocidiff::targets::TargetSpec::Distribution { binary: None };
    let out = tempfile::tempdir().unwrap();
    let mut cfg = RaceRunConfig::new(
        vec![
            ("reference".to_string(), reference()),
            ("distribution".to_string(), spec()),
        ],
        out.path().to_path_buf(),
    );
    cfg.seed = 4;
    cfg.cases = 60;
    cfg.duration = Duration::from_secs(60);
    cfg.attempts = 4;
    let s = run_race(cfg).await.unwrap();
    assert_eq!(s.unjudged, 0, "distribution left the model in the prefix");
    assert_eq!(s.inconclusive, 0);
    assert_eq!(s.histories, 2 * s.cases_run);
    assert!(s.findings.iter().all(|f| f.target == "distribution"));
    for f in &s.findings {
        assert!(f.clients >= 2, "{}: {} clients", f.id, f.clients);
        let dir = out.path().join("races").join(&f.id);
        let fresh = ocidiff::targets::launch("fresh", &spec()).await.unwrap();
        let run = tokio::process::Command::new("bash")
            .arg(dir.join("repro.sh"))
            .env("REGISTRY", fresh.base_url.as_str())
            .env("ATTEMPTS", "2")
            .output()
            .await
            .unwrap();
        fresh.shutdown().await;
        let text = String::from_utf8_lossy(&run.stdout);
        assert!(text.contains("### attempt 2"), "{text}");
        assert!(text.contains("[client 1] === ["), "{text}");
    }
    println!(
        "distribution: {} cases, {} findings: {:?}",
        s.cases_run,
        s.findings.len(),
        s.findings
            .iter()
            .map(|f| (&f.rule, &f.summary))
            .collect::<Vec<_>>()
    );
}

/// A declared consistency level changes the verdict exactly where the spec lets registries
/// differ: a read after a completed delete that still sees the manifest is a race for a
/// strict target and allowed for a `lazy-delete` one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_delete_allows_a_read_that_still_sees_a_deleted_manifest() {
    use ocidiff::ops::delete::DeleteManifest;
    use ocidiff::ops::manifest_pull::HeadManifest;
    let mut case = ocidiff::generate::race::generate_race(2, &Default::default());
    let head: Op = HeadManifest {
        repo: Repo(0),
        reference: Reference::Digest(ManifestId(1)),
    }
    .into();
    let delete: Op = DeleteManifest {
        repo: Repo(0),
        reference: Reference::Digest(ManifestId(1)),
    }
    .into();
    case.clients = vec![Client {
        ops: vec![head.clone(), delete],
    }];
    case.after = vec![head];
    let (content, st, hist) = recorded(&case).await;
    let clients = case.client_ops();
    let judge = |timed: &[ocidiff::vocab::exchange::TimedOp], level| {
        let ops = hist_ops(&clients, &case.after, timed, level);
        check_history(&st, &content, &ops, false, 100_000)
    };
    let timed = hist.per_target[0].clone();
    assert_eq!(judge(&timed, Consistency::Strict), Verdict::Linearizable);
    assert_eq!(
        judge(&timed, Consistency::LazyDelete),
        Verdict::Linearizable
    );
    // The read after the delete answers as the read before it did (200, the manifest).
    let before = timed
        .iter()
        .find(|t| t.client == 0 && t.index == 0)
        .unwrap()
        .exchanges
        .clone();
    assert_eq!(before[0].observation.status, 200);
    let mut stale = timed.clone();
    stale.iter_mut().find(|t| t.client == 1).unwrap().exchanges = before;
    assert!(matches!(
        judge(&stale, Consistency::Strict),
        Verdict::Not(_)
    ));
    assert_eq!(
        judge(&stale, Consistency::LazyDelete),
        Verdict::Linearizable
    );
}

/// `--duration` bounds the whole race run, its shrinking and replays included: with a
/// thousand attempts per replay, a 3 s run still ends within its request timeout of 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_bounds_shrinking_and_replays() {
    let out = tempfile::tempdir().unwrap();
    let targets = vec![
        ("reference".to_string(), reference()),
        (
            "faulty".to_string(),
            faulty(Faults::only("referrers_lost_update").unwrap()),
        ),
    ];
    let mut cfg = RaceRunConfig::new(targets, out.path().to_path_buf());
    cfg.seed = 1;
    cfg.cases = 100_000;
    cfg.duration = Duration::from_secs(3);
    cfg.attempts = 1000;
    cfg.race.kinds = vec!["referrers".to_string()];
    let started = Instant::now();
    let s = run_race(cfg).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3 + 15),
        "{:?}",
        started.elapsed()
    );
    assert!(!s.findings.is_empty(), "found within 3 s");
    assert!(out.path().join("findings.json").is_file());
}
