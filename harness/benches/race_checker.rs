//! The linearizability checker's pace, and what concurrent cases cost a fuzz run.
//!
//! 1. Record `BENCH_CASES` concurrent histories against the embedded reference registry:
//!    segments of exactly 8 clients x 4 ops (the checker's worst case) plus the reads after.
//! 2. (a) baseline: the sequential oracle (`check_case`) over the same prefix and ops, one
//!    after the other; (b) the linearizability search (`check_history`) over each history.
//!    Both report ops checked per second (best of `BENCH_ROUNDS`); (b) also its slowest
//!    history.
//! 3. Fuzz rate: `run_fuzz` against the embedded reference for `BENCH_SECS` seconds with
//!    `race_share` 0 and 0.2, in the same run: ops per second of each and their ratio.
//!
//! Run: `cargo bench -p ocidiff --bench race_checker` (env `BENCH_CASES`, `BENCH_ROUNDS`,
//! `BENCH_SECS`).

use ocidiff::compare::check_case;
use ocidiff::compare::race::{check_history, hist_ops, Consistency, Verdict};
use ocidiff::drivers::case::Fleet;
use ocidiff::drivers::fuzz::{run_fuzz, FuzzConfig};
use ocidiff::generate::race::{generate_race, RaceCase, RaceConfig};
use ocidiff::model::ModelState;
use ocidiff::ops::Sequence;
use ocidiff::targets::TargetSpec;
use ocidiff::vocab::content::Content;
use ocidiff::vocab::exchange::{CaseOutcome, OpOutcome, TimedOp};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Recorded {
    case: RaceCase,
    content: Content,
    st: ModelState,
    prefix: CaseOutcome,
    timed: Vec<TimedOp>,
}

impl Recorded {
    fn ops(&self) -> usize {
        self.case.segment_ops() + self.case.after.len()
    }
}

async fn record(n: u64) -> Vec<Recorded> {
    let fleet = Fleet::launch(
        &[(
            "reference".to_string(),
            TargetSpec::Reference(Box::default()),
        )],
        ocidiff::compare::SpecVersion::V1_1Dev,
    )
    .await
    .expect("embedded reference");
    let cfg = RaceConfig {
        max_clients: 8,
        max_ops: 4,
        exact: true,
        ..RaceConfig::default()
    };
    let mut out = Vec::new();
    for seed in 0..n {
        let case = generate_race(seed, &cfg);
        let ns = format!("ocidiffbench{seed}");
        let r = ocidiff::drivers::race::record(&fleet, &case, &ns)
            .await
            .expect("content");
        fleet.cleanup(&ns);
        out.push(Recorded {
            case,
            content: r.content,
            st: r.state,
            prefix: r.prefix,
            timed: r.history.per_target.into_iter().next().unwrap_or_default(),
        });
    }
    fleet.shutdown().await;
    out
}

/// The sequential oracle over prefix + the segment's ops in the order they started.
fn sequential(r: &Recorded) -> usize {
    let clients = r.case.client_ops();
    let mut timed: Vec<&TimedOp> = r.timed.iter().collect();
    timed.sort_by_key(|t| t.start_us);
    let mut seq = r.case.prefix_seq();
    let mut outcome = r.prefix.clone();
    for t in timed {
        let op = if t.client < clients.len() {
            &clients[t.client][t.index]
        } else {
            &r.case.after[t.index]
        };
        seq.ops.push(op.clone());
        outcome.ops.push(OpOutcome {
            per_target: vec![t.exchanges.clone()],
        });
    }
    check_case(&Sequence { ..seq }, &r.content, &outcome).len()
}

fn linearizable(r: &Recorded) -> bool {
    let clients = r.case.client_ops();
    let ops = hist_ops(&clients, &r.case.after, &r.timed, Consistency::Strict);
    matches!(
        check_history(&r.st, &r.content, &ops, true, 1_000_000),
        Verdict::Linearizable
    )
}

fn best<F: FnMut()>(rounds: u64, mut f: F) -> Duration {
    (0..rounds.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

async fn fuzz_rate(share: f64, secs: u64) -> f64 {
    let out = tempfile::tempdir().expect("temp dir");
    let mut cfg = FuzzConfig::new(
        vec![(
            "reference".to_string(),
            TargetSpec::Reference(Box::default()),
        )],
        out.path().to_path_buf(),
    );
    cfg.seed = 1;
    cfg.cases = 1_000_000;
    cfg.duration = Duration::from_secs(secs);
    cfg.shrink = false;
    cfg.race_share = share;
    let s = run_fuzz(cfg).await.expect("fuzz run");
    let ops = s.ops_run + s.races.as_ref().map_or(0, |r| r.ops_run);
    ops as f64 / s.elapsed.as_secs_f64()
}

fn main() {
    let cases = env("BENCH_CASES", 60);
    let rounds = env("BENCH_ROUNDS", 3);
    let secs = env("BENCH_SECS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let recorded = rt.block_on(record(cases));
    let ops: usize = recorded.iter().map(Recorded::ops).sum();
    let lin_ok = recorded.iter().filter(|r| linearizable(r)).count();
    let seq_time = best(rounds, || {
        for r in &recorded {
            std::hint::black_box(sequential(r));
        }
    });
    let lin_time = best(rounds, || {
        for r in &recorded {
            std::hint::black_box(linearizable(r));
        }
    });
    let worst = recorded
        .iter()
        .map(|r| {
            let t = Instant::now();
            std::hint::black_box(linearizable(r));
            (t.elapsed(), r.ops())
        })
        .max()
        .unwrap_or_default();
    let seq_rate = ops as f64 / seq_time.as_secs_f64();
    let lin_rate = ops as f64 / lin_time.as_secs_f64();
    println!(
        "{cases} histories of 8 clients x 4 ops + {} reads after ({ops} ops; {lin_ok} linearizable)",
        recorded.first().map_or(0, |r| r.case.after.len())
    );
    println!("(a) sequential oracle, same ops:  {seq_rate:>10.0} ops/s");
    println!(
        "(b) linearizability search:       {lin_rate:>10.0} ops/s  ({:.2}x of (a)); slowest history {:.2} ms for {} ops",
        lin_rate / seq_rate,
        worst.0.as_secs_f64() * 1e3,
        worst.1
    );
    let plain = rt.block_on(fuzz_rate(0.0, secs));
    let mixed = rt.block_on(fuzz_rate(0.2, secs));
    println!(
        "fuzz against the embedded reference, {secs} s each: sequential {plain:.0} ops/s, 20 % concurrent {mixed:.0} ops/s ({:.2}x)",
        mixed / plain
    );
}
