//! Registries that protect themselves, as hosted ones do: a cap on open upload sessions, a
//! rate limit answering `429` with `Retry-After`, added latency. Throttling is not a finding:
//! the run backs off and goes on; ocidiff cancels every upload session a case leaves open and
//! holds at most `max_open_sessions` open at once; the same seed gives the same findings
//! whatever the latency.

mod common;

use common::{describe, faulty, fuzz_config, reference};
use ocidiff::compare::Class;
use ocidiff::drivers::fuzz::{run_fuzz, FuzzSummary};
use ocidiff::targets::TargetSpec;
use reference_registry::{Config, Faults, Quirks};
use std::time::Duration;

fn quirky(names: &[&str]) -> (TargetSpec, Quirks) {
    let mut q = Quirks::default();
    for n in names {
        q.enable(n).unwrap();
    }
    (
        TargetSpec::Reference(Box::new(Config {
            quirks: q.clone(),
            ..Config::default()
        })),
        q,
    )
}

async fn run(target: TargetSpec, seed: u64, cases: u64, secs: u64) -> FuzzSummary {
    let dir = tempfile::tempdir().unwrap();
    run_fuzz(fuzz_config(
        vec![("reference".into(), reference()), ("hosted".into(), target)],
        seed,
        cases,
        Duration::from_secs(secs),
        false,
        dir.path(),
    ))
    .await
    .unwrap()
}

fn violations(s: &FuzzSummary) -> Vec<ocidiff::shrink::Finding> {
    s.findings
        .iter()
        .filter(|f| f.divergence.class == Class::Violation)
        .cloned()
        .collect()
}

/// Issue 29: a registry that allows 50 open upload sessions and refuses the 51st with 429.
/// Every case's sessions are closed or cancelled and at most 32 are held at once, so the cap
/// is never reached: no 429 at all, zero violations, and the counts add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_stay_under_a_registry_cap() {
    let (target, q) = quirky(&["max_open_sessions:50"]);
    let s = run(target, 7, 150, 60).await;
    assert!(
        s.completed,
        "the case limit should come before the deadline"
    );
    assert!(violations(&s).is_empty(), "{}", describe(&violations(&s)));
    assert_eq!(q.hits.get("max_open_sessions"), 0, "a POST was refused");
    for st in &s.stats {
        println!("{}", st.line());
        assert!(st.sessions_opened > 20, "{st:?}");
        assert_eq!(
            st.sessions_opened,
            st.sessions_closed + st.sessions_cancelled + st.sessions_left_open,
            "{st:?}"
        );
        assert_eq!(st.sessions_left_open, 0, "{st:?}");
        assert_eq!(st.throttled, 0, "{st:?}");
    }
}

/// Issue 27: a rate limit low enough that a good share of the requests is throttled; the run
/// ends within its time, backs off, reports how much was throttled and no violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_not_a_finding() {
    let (target, q) = quirky(&["rate_limit:40"]);
    let s = run(target, 8, 60, 40).await;
    let hosted = s.stats.iter().find(|t| t.target == "hosted").unwrap();
    println!(
        "{} ({} answers throttled by the registry)",
        hosted.line(),
        q.hits.get("rate_limit")
    );
    assert!(hosted.throttled > 10, "{hosted:?}");
    assert!(hosted.throttled_seconds > 0.0, "{hosted:?}");
    assert!(
        violations(&s).is_empty(),
        "throttling was reported:\n{}",
        describe(&violations(&s))
    );
    assert!(
        s.findings
            .iter()
            .all(|f| !f.divergence.actual.contains("429")),
        "a 429 was compared: {}",
        describe(&s.findings)
    );
    assert!(s.cases_run >= 10, "{} cases", s.cases_run);
}

/// Issue 27: the same seed against a target with 0 ms and with 50 ms of added latency gives
/// the same findings (a faulty registry, so that there are findings to compare).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_does_not_change_findings() {
    let fast = faulty(Faults::only("tags_unsorted").unwrap());
    let slow = TargetSpec::Reference(Box::new(Config {
        faults: Faults::only("tags_unsorted").unwrap(),
        quirks: {
            let mut q = Quirks::default();
            q.enable("latency:50").unwrap();
            q
        },
        ..Config::default()
    }));
    let a = run(fast, 3, 40, 120).await;
    let b = run(slow, 3, 40, 120).await;
    assert!(
        a.completed && b.completed,
        "both runs should reach the case limit"
    );
    let ids = |s: &FuzzSummary| {
        let mut v: Vec<(String, String)> = s
            .findings
            .iter()
            .map(|f| (f.divergence.rule.clone(), f.divergence.class.to_string()))
            .collect();
        v.sort();
        v
    };
    assert!(!ids(&a).is_empty());
    assert_eq!(
        ids(&a),
        ids(&b),
        "\n{}\nvs\n{}",
        describe(&a.findings),
        describe(&b.findings)
    );
}

/// Issue 27: a request budget per target (`--max-requests`, `max_requests`) ends the run
/// cleanly once spent: no case starts after, the requests it refused are not judged (zero
/// violations), and the summary says the budget was spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_budget_ends_the_run_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fuzz_config(
        vec![
            ("reference".into(), reference()),
            ("hosted".into(), reference()),
        ],
        27,
        100_000,
        Duration::from_secs(60),
        false,
        dir.path(),
    );
    cfg.max_requests = Some(400);
    let started = std::time::Instant::now();
    let s = run_fuzz(cfg).await.unwrap();
    let st = s.stats.iter().find(|t| t.target == "hosted").unwrap();
    let reference = s.stats.iter().find(|t| t.target == "reference").unwrap();
    println!("{} cases in {:.1?}; {st:?}", s.cases_run, started.elapsed());
    assert!(st.budget_spent && st.max_requests == Some(400), "{st:?}");
    assert!(st.requests <= 400, "{st:?}");
    assert!(!s.completed);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run went on"
    );
    assert!(s.cases_run >= 5, "{} cases", s.cases_run);
    // The reference has no budget.
    assert!(!reference.budget_spent && reference.max_requests.is_none());
    assert!(violations(&s).is_empty(), "{}", describe(&s.findings));
}

/// Issue 27: `--rate` paces the requests to a target under test (not the reference).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_paces_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fuzz_config(
        vec![
            ("reference".into(), reference()),
            ("hosted".into(), reference()),
        ],
        27,
        100_000,
        Duration::from_secs(4),
        false,
        dir.path(),
    );
    cfg.min_interval = Some(ocidiff::execute::interval_of_rate(50.0).unwrap());
    let started = std::time::Instant::now();
    let s = run_fuzz(cfg).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let st = s.stats.iter().find(|t| t.target == "hosted").unwrap();
    let reference = s.stats.iter().find(|t| t.target == "reference").unwrap();
    println!(
        "{secs:.1} s; hosted {} requests, reference {}",
        st.requests, reference.requests
    );
    assert!(
        st.requests as f64 <= 50.0 * secs + 1.0,
        "{} in {secs:.1} s",
        st.requests
    );
    assert!(st.requests >= 50, "{st:?}");
    assert!(violations(&s).is_empty(), "{}", describe(&s.findings));
}

/// Issue 27: what a run pushes to a registry ocidiff does not own (a URL target) is deleted
/// at its end: afterwards no repository of the run lists a tag, and nothing is left over. On
/// a registry with deletes disabled, everything is listed in leftovers.json with why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_deletes_what_it_pushed_and_lists_what_stays() {
    for no_delete in [false, true] {
        let mut config = Config::default();
        if no_delete {
            config.quirks.enable("no_delete").unwrap();
        }
        let served = reference_registry::spawn(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s = run_fuzz(fuzz_config(
            vec![
                ("reference".into(), reference()),
                (
                    "hosted".into(),
                    TargetSpec::Url {
                        url: served.url().parse().unwrap(),
                        username: None,
                        password: None,
                    },
                ),
            ],
            27,
            40,
            Duration::from_secs(30),
            false,
            dir.path(),
        ))
        .await
        .unwrap();
        let c = s.cleanup.iter().find(|c| c.target == "hosted").unwrap();
        let file: Vec<ocidiff::execute::Cleanup> =
            serde_json::from_slice(&std::fs::read(dir.path().join("leftovers.json")).unwrap())
                .unwrap();
        assert_eq!(file, s.cleanup);
        println!(
            "no_delete {no_delete}: deleted {}, left {}",
            c.deleted,
            c.left.len()
        );
        if no_delete {
            assert!(!c.left.is_empty());
            assert!(
                c.left
                    .iter()
                    .all(|l| l.status == 405 && l.reason.contains("405")),
                "{:?}",
                c.left
            );
            continue;
        }
        assert!(c.left.is_empty(), "{:?}", c.left);
        assert!(c.deleted > 20, "{c:?}");
        // No repository of the run still lists a tag.
        let http = reqwest::Client::new();
        let catalog: serde_json::Value = http
            .get(format!("{}/v2/_catalog", served.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let repos = catalog["repositories"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for r in repos {
            let r = r.as_str().unwrap();
            let tags = http
                .get(format!("{}/v2/{r}/tags/list", served.url()))
                .send()
                .await
                .unwrap();
            if tags.status() == 200 {
                let v: serde_json::Value = tags.json().await.unwrap();
                let n = v["tags"].as_array().map_or(0, Vec::len);
                assert_eq!(n, 0, "{r} still lists tags: {v}");
            }
        }
    }
}
