//! `ocidiff race`: concurrent cases (`generate::race`) run on every target at once, each
//! target's history judged by the linearizability oracle (`compare::race`); one finding per
//! (target, race rule, rule of the answer no order explains), shrunk to the fewest clients
//! and ops that still show it (a race may need attempts: each candidate is tried several
//! times), replayed to measure how often it reproduces, and written with its `race.toml` and
//! a `repro.sh` that sends the clients' requests with curl in background jobs.

use super::case::{case_seed, run_id, with_reference_first, Fleet};
use crate::compare::race::{
    check_history, debugging, hist_ops, race_rule, Consistency, NotLinearizable, Verdict,
};
use crate::compare::{check_case, rule_in};
use crate::generate::race::{generate_race, RaceCase, RaceConfig};
use crate::model::ModelState;
use crate::targets::TargetSpec;
use crate::vocab::content::Content;
use crate::vocab::exchange::CaseOutcome;
use crate::vocab::fs::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Everything a race run needs.
#[derive(Clone)]
pub struct RaceRunConfig {
    pub targets: Vec<(String, TargetSpec)>,
    pub seed: u64,
    pub cases: u64,
    pub duration: Duration,
    pub race: RaceConfig,
    pub out: PathBuf,
    pub shrink: bool,
    /// Attempts per shrink candidate and for the replay rate.
    pub attempts: u32,
    /// Declared consistency level per target name (default strict).
    pub consistency: BTreeMap<String, Consistency>,
    /// Search steps per history at most (beyond: inconclusive, never a finding).
    pub budget: usize,
    /// Stop once this many races are found (`None`: run to the case / time limit).
    pub max_races: Option<usize>,
    /// The spec version targets are judged by unless they claim one.
    pub spec_version: crate::vocab::spec_version::SpecVersion,
}

impl RaceRunConfig {
    pub fn new(targets: Vec<(String, TargetSpec)>, out: PathBuf) -> RaceRunConfig {
        RaceRunConfig {
            targets,
            seed: 0,
            cases: 200,
            duration: Duration::from_secs(60),
            race: RaceConfig::default(),
            out,
            shrink: true,
            attempts: 8,
            consistency: BTreeMap::new(),
            budget: 200_000,
            max_races: None,
            spec_version: Default::default(),
        }
    }
}

/// One race finding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RaceFinding {
    pub id: String,
    /// `race/<endpoint>` (or `http/server-error`: a 5xx while clients overlapped).
    pub rule: String,
    /// `violation` for a race, `variation` for a 5xx (HTTP semantics are a SHOULD).
    pub class: crate::compare::Class,
    /// The MUST the rule quotes.
    pub spec: String,
    pub target: String,
    /// The rule of the answer no order explains, and that rule's quote.
    pub answer_rule: String,
    pub answer_spec: String,
    pub summary: String,
    pub expected: String,
    pub actual: String,
    pub kind: String,
    pub case_index: u64,
    pub case_seed: u64,
    /// Seconds from the start of the run to the case that found it.
    pub seconds_to_detect: f64,
    /// Clients and segment ops of the case that found it, and after shrinking.
    pub found_clients: usize,
    pub found_ops: usize,
    pub clients: usize,
    pub ops: usize,
    /// How often the (shrunk) case showed it again, out of `attempts` (fewer than asked
    /// for when the run's deadline came first).
    pub reproduced: u32,
    pub attempts: u32,
    /// Cases that showed it.
    pub occurrences: u64,
    pub case: RaceCase,
    /// The spec version the class and quotes are of.
    #[serde(default)]
    pub spec_version: crate::vocab::spec_version::SpecVersion,
}

/// What a race run did.
#[derive(Debug)]
pub struct RaceSummary {
    pub run_id: String,
    pub targets: Vec<String>,
    pub cases_run: u64,
    /// Ops of the cases run (prefix, segment, reads after; not shrinking or controls).
    pub ops_run: u64,
    /// Histories judged (cases x targets that passed their prefix).
    pub histories: u64,
    /// Histories whose search ran out of budget.
    pub inconclusive: u64,
    /// Histories not judged: the target diverged in the sequential prefix.
    pub unjudged: u64,
    /// Histories not linearizable because of a rule the ops break run one at a time too
    /// (sequential bugs, the fuzzer's findings).
    pub sequential: u64,
    /// The sequential bugs behind those histories, one per cause.
    pub sequential_bugs: Vec<SequentialBug>,
    pub findings: Vec<RaceFinding>,
    pub elapsed: Duration,
    pub out: PathBuf,
}

impl RaceSummary {
    /// Races (violations) found.
    pub fn violations(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.class == crate::compare::Class::Violation)
            .count()
    }

    /// 1 when a race (a violation) was found, else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.violations() > 0)
    }
}

/// One target's verdict on one case.
#[derive(Debug)]
pub struct TargetVerdict {
    pub target: usize,
    /// `None`: not judged (the prefix diverged on this target).
    pub verdict: Option<Verdict>,
    /// The history is not linearizable, but the same rule also fails with the segment's ops
    /// run one after another: a sequential bug (the fuzzer's finding), not a race.
    pub sequential: bool,
    /// The one-at-a-time order that failed, when `sequential`.
    pub serial: Option<Box<RaceCase>>,
    /// The first answer of the segment that was a 5xx: (client, op index, endpoint, status).
    pub server_error: Option<(usize, usize, String, u16)>,
}

/// The rule of a 5xx answered while clients overlapped (a SHOULD: HTTP semantics).
pub const SERVER_ERROR: &str = "http/server-error";

/// At most this many one-at-a-time orders are tried before a history counts as a race.
pub const CONTROL_ORDERS: usize = 6;

/// A history that failed one op at a time too: a sequential bug, the fuzzer's finding (same
/// id as `ocidiff fuzz` gives its cause), with the one-at-a-time sequence that shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SequentialBug {
    /// The id of the sequential finding (`findings/<id>/` of a fuzz run).
    pub finding: String,
    pub target: String,
    pub rule: String,
    pub summary: String,
    /// Histories it explained.
    pub histories: u32,
    /// Prefix, the segment's ops in the order that failed, and the reads after.
    pub ops: crate::ops::Sequence,
}

impl TargetVerdict {
    /// The race this verdict shows, if any.
    pub fn race(&self) -> Option<&NotLinearizable> {
        match &self.verdict {
            Some(Verdict::Not(n)) if !self.sequential => Some(n),
            _ => None,
        }
    }

    /// The findings this verdict shows on target `name`: its race, a 5xx under concurrency.
    fn keys(&self, name: &str) -> Vec<Key> {
        let mut v: Vec<Key> = self
            .race()
            .and_then(|n| key_of(name, n))
            .into_iter()
            .collect();
        if self.server_error.is_some() {
            v.push((name.to_string(), SERVER_ERROR.to_string()));
        }
        v
    }
}

/// The identity of a race: target and race rule (the endpoint whose state no order
/// explains). The rule of the unexplained answer is not part of it: one lost update shows as
/// a missing tag in a list on one attempt and as a 404 on the next.
type Key = (String, String);

fn key_of(target: &str, n: &NotLinearizable) -> Option<Key> {
    Some((target.to_string(), race_rule(&n.endpoint)?.to_string()))
}

/// A race case run once: its content, the prefix's outcome and divergences, the model after
/// the prefix, and the segment's history on every target.
pub struct Recorded {
    pub content: Content,
    pub prefix: CaseOutcome,
    pub prefix_divergences: Vec<crate::compare::Divergence>,
    /// The model after the prefix (where the search starts).
    pub state: ModelState,
    pub history: crate::vocab::exchange::History,
}

/// Runs `case` in namespace `ns` on every target: the prefix one op after the other, then
/// the segment and the reads after (`None` when the content does not render).
pub async fn record(fleet: &Fleet, case: &RaceCase, ns: &str) -> Option<Recorded> {
    let content = Content::render(&case.content).ok()?;
    let ex = &fleet.executor;
    let seq = case.prefix_seq();
    let prefix = ex.run(&seq, &content, ns).await;
    let prefix_divergences = check_case(&seq, &content, &prefix);
    let mut state = ModelState::new();
    state.learn(&content);
    for op in &case.prefix {
        op.op().apply(&mut state, &content);
    }
    let history = ex
        .run_segment(&case.client_ops(), &case.after, &content, ns)
        .await;
    Some(Recorded {
        content,
        prefix,
        prefix_divergences,
        state,
        history,
    })
}

/// Whether a target's prefix left it off the model: a divergence that may have changed its
/// state (a status, a missing step, other tags); header findings do not.
fn off_model(divs: &[crate::compare::Divergence], target: &str) -> bool {
    divs.iter()
        .any(|d| d.target == target && crate::compare::changes_state(&d.field))
}

/// Runs one race case in namespace `ns` on every target of the fleet and judges each
/// target's history. `None` when the content does not render or the reference itself
/// diverged in the prefix.
pub async fn run_race_case(
    fleet: &Fleet,
    case: &RaceCase,
    ns: &str,
    consistency: &[Consistency],
    budget: usize,
    controls: &mut Controls,
) -> Option<Vec<TargetVerdict>> {
    let ex = &fleet.executor;
    let Recorded {
        content,
        prefix_divergences: divs,
        state: st,
        history: hist,
        ..
    } = record(fleet, case, ns).await?;
    let names = ex.target_names();
    if debugging() {
        for d in &divs {
            eprintln!(
                "prefix: {} {} {} {}: {}",
                d.target, d.class, d.rule, d.field, d.summary
            );
        }
    }
    // A target is judged when the prefix left it on the model.
    let diverged = |t: usize| off_model(&divs, &names[t]);
    if diverged(0) {
        return None;
    }
    let clients = case.client_ops();
    if debugging() {
        for (t, timed) in hist.per_target.iter().enumerate() {
            for x in timed.iter().filter(|x| x.client < clients.len()) {
                let op = &clients[x.client][x.index];
                let st: Vec<u16> = x.exchanges.iter().map(|e| e.observation.status).collect();
                eprintln!(
                    "t{t} c{} #{} {:>6}-{:>6}us {} {st:?}",
                    x.client,
                    x.index,
                    x.start_us,
                    x.end_us,
                    op.name()
                );
            }
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for (t, timed) in hist.per_target.iter().enumerate() {
        if diverged(t) {
            out.push(TargetVerdict {
                target: t,
                verdict: None,
                sequential: false,
                serial: None,
                server_error: None,
            });
            continue;
        }
        let level = consistency.get(t).copied().unwrap_or_default();
        let ops = hist_ops(&clients, &case.after, timed, level);
        let verdict = check_history(&st, &content, &ops, t == 0, budget);
        out.push(TargetVerdict {
            target: t,
            verdict: Some(verdict),
            sequential: false,
            serial: None,
            server_error: timed
                .iter()
                .filter(|x| x.client < clients.len())
                .find_map(|x| {
                    x.exchanges
                        .iter()
                        .find(|e| e.observation.status >= 500)
                        .map(|e| (x.client, x.index, e.endpoint.clone(), e.observation.status))
                }),
        });
    }
    // The controls: the segment's ops one at a time, in the orders that matter (client by
    // client, reversed, every interleaving of a small segment, random ones of a larger one),
    // then the reads, judged by the same oracle. A history that fails in any of them is not
    // about concurrency: it is a sequential bug.
    // Targets whose controls already ran on this case (an earlier attempt) take their answer.
    let mut cleared = std::collections::BTreeSet::new();
    for v in &mut out {
        if !matches!(v.verdict, Some(Verdict::Not(_))) {
            continue;
        }
        match controls.0.get(&v.target) {
            Some(Some(serial)) => {
                v.sequential = true;
                v.serial = Some(serial.clone());
            }
            Some(None) => {
                cleared.insert(v.target);
            }
            None => {}
        }
    }
    let checking: Vec<usize> = out
        .iter()
        .filter(|v| {
            matches!(v.verdict, Some(Verdict::Not(_)))
                && !v.sequential
                && !cleared.contains(&v.target)
        })
        .map(|v| v.target)
        .collect();
    let racy = |out: &[TargetVerdict]| {
        out.iter()
            .any(|v| checking.contains(&v.target) && !v.sequential)
    };
    let mut ran_controls = true;
    for (k, order) in case
        .serial_orders(CONTROL_ORDERS, case.segment_ops() as u64)
        .into_iter()
        .enumerate()
    {
        if !racy(&out) {
            break;
        }
        let serial_case = RaceCase {
            clients: vec![crate::generate::race::Client { ops: order }],
            ..case.clone()
        };
        let cns = format!("{ns}q{k}");
        let control_run = record(fleet, &serial_case, &cns).await;
        fleet.cleanup(&cns);
        let Some(control_run) = control_run else {
            ran_controls = false;
            break;
        };
        let serial = serial_case.client_ops();
        for v in &mut out {
            if !checking.contains(&v.target) || v.sequential {
                continue;
            }
            let t = v.target;
            let off = off_model(&control_run.prefix_divergences, &names[t]);
            let level = consistency.get(t).copied().unwrap_or_default();
            let ops = hist_ops(
                &serial,
                &case.after,
                &control_run.history.per_target[t],
                level,
            );
            // Trust first: when the ops misbehave one at a time too (whatever the rule), the
            // concurrent verdict cannot be laid on concurrency.
            let control = check_history(&st, &content, &ops, t == 0, budget);
            if debugging() {
                eprintln!("control {k} on {}: prefix off {off}, {control:?}", names[t]);
            }
            if off || !matches!(control, Verdict::Linearizable) {
                v.sequential = true;
                v.serial = Some(Box::new(serial_case.clone()));
            }
        }
    }
    for t in checking.iter().filter(|_| ran_controls) {
        if let Some(v) = out.iter().find(|v| v.target == *t) {
            controls.0.insert(*t, v.serial.clone());
        }
    }
    Some(out)
}

/// What the one-at-a-time controls said about one case, per target (`Some`: a sequential bug,
/// with the order that shows it; `None`: every order passed). A case run again (replays,
/// shrink attempts) does not run its controls again: one at a time, a case does what it did.
#[derive(Default)]
pub struct Controls(BTreeMap<usize, Option<Box<RaceCase>>>);

/// How often to run a case: at most `n` times, not past `until`, or until the first hit.
#[derive(Clone, Copy)]
struct Tries {
    n: u32,
    stop_at_first: bool,
    until: Instant,
}

/// Runs `case` up to `tries.n` times (fresh namespaces): (how many showed race `key`, how
/// many ran).
async fn attempts_showing(
    fleet: &Fleet,
    case: &RaceCase,
    key: &Key,
    cfg: &RaceRunConfig,
    ns_base: &str,
    tries: Tries,
) -> (u32, u32) {
    let names = fleet.executor.target_names();
    let levels = levels_of(&cfg.consistency, &names);
    let (mut hits, mut runs) = (0, 0);
    let mut controls = Controls::default();
    for a in 0..tries.n {
        if Instant::now() >= tries.until {
            break;
        }
        runs += 1;
        let ns = format!("{ns_base}a{a}");
        let v = run_race_case(fleet, case, &ns, &levels, cfg.budget, &mut controls).await;
        fleet.cleanup(&ns);
        let shown = v
            .into_iter()
            .flatten()
            .any(|tv| tv.keys(&names[tv.target]).contains(key));
        if shown {
            hits += 1;
            if tries.stop_at_first {
                break;
            }
        }
    }
    (hits, runs)
}

/// Candidates one step simpler than `c`: a client dropped, an op dropped from a client. A
/// race needs two clients: one client's ops are sequential.
fn simpler(c: &RaceCase) -> Vec<RaceCase> {
    let mut v = Vec::new();
    if c.clients.len() > 2 {
        for i in 0..c.clients.len() {
            let mut d = c.clone();
            d.clients.remove(i);
            v.push(d);
        }
    }
    for i in 0..c.clients.len() {
        for k in 0..c.clients[i].ops.len() {
            if c.clients[i].ops.len() == 1 {
                continue;
            }
            let mut d = c.clone();
            d.clients[i].ops.remove(k);
            v.push(d);
        }
    }
    v
}

/// Greedy shrinking: keep the first simpler candidate that still shows the race within
/// `attempts` tries; bounded by `until`.
async fn shrink(
    fleet: &Fleet,
    case: &RaceCase,
    key: &Key,
    cfg: &RaceRunConfig,
    ns_base: &str,
    until: Instant,
) -> RaceCase {
    let mut best = case.clone();
    let mut round = 0u32;
    'outer: loop {
        for (j, cand) in simpler(&best).into_iter().enumerate() {
            if Instant::now() >= until {
                break 'outer;
            }
            let ns = format!("{ns_base}s{round}x{j}");
            // A simpler case may show the race less often: twice the attempts before giving
            // a candidate up.
            let tries = Tries {
                n: cfg.attempts.saturating_mul(2),
                stop_at_first: true,
                until,
            };
            if attempts_showing(fleet, &cand, key, cfg, &ns, tries).await.0 > 0 {
                best = cand;
                round += 1;
                continue 'outer;
            }
        }
        break;
    }
    best
}

/// Each target's declared consistency level (default strict), in target order.
fn levels_of(consistency: &BTreeMap<String, Consistency>, names: &[String]) -> Vec<Consistency> {
    names
        .iter()
        .map(|n| consistency.get(n).copied().unwrap_or_default())
        .collect()
}

/// The race loop: cases one after another (a race needs the target's attention, and
/// parallel cases would blur each other's timing), bounded by `cases` and `duration`.
pub async fn run_race(cfg: RaceRunConfig) -> anyhow::Result<RaceSummary> {
    let targets = with_reference_first(cfg.targets.clone())?;
    for name in cfg.consistency.keys() {
        if !targets.iter().any(|(n, _)| n == name) {
            anyhow::bail!("--consistency names {name:?}, which is not a target");
        }
    }
    let fleet = Fleet::launch(&targets, cfg.spec_version).await?;
    let result = race_with(&cfg, &fleet, "findings.json").await;
    fleet.shutdown().await;
    result
}

/// The race loop on launched targets; the summary goes to `out/<summary_file>` (a race run's
/// `findings.json`, or `races.json` beside a fuzz run's findings).
pub async fn race_with(
    cfg: &RaceRunConfig,
    fleet: &Fleet,
    summary_file: &str,
) -> anyhow::Result<RaceSummary> {
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let id = run_id();
    let names = fleet.names();
    let versions = fleet.executor.versions();
    let levels = levels_of(&cfg.consistency, &names);
    let mut found: BTreeMap<Key, RaceFinding> = BTreeMap::new();
    let mut s = RaceSummary {
        run_id: id.clone(),
        targets: names.clone(),
        cases_run: 0,
        ops_run: 0,
        histories: 0,
        inconclusive: 0,
        unjudged: 0,
        sequential: 0,
        sequential_bugs: Vec::new(),
        findings: Vec::new(),
        elapsed: Duration::ZERO,
        out: cfg.out.clone(),
    };
    for i in 0..cfg.cases {
        if Instant::now() >= deadline || cfg.max_races.is_some_and(|m| found.len() >= m) {
            break;
        }
        let seed = case_seed(cfg.seed, i);
        let case = generate_race(seed, &cfg.race);
        let ns = format!("ocidiff{id}c{i}");
        let remaining = deadline.saturating_duration_since(Instant::now());
        let verdicts = tokio::time::timeout(
            remaining,
            run_race_case(
                fleet,
                &case,
                &ns,
                &levels,
                cfg.budget,
                &mut Controls::default(),
            ),
        )
        .await;
        fleet.cleanup(&ns);
        let Ok(verdicts) = verdicts else { break };
        s.cases_run += 1;
        s.ops_run += (case.prefix.len() + case.segment_ops() + case.after.len()) as u64;
        let Some(verdicts) = verdicts else {
            s.unjudged += names.len() as u64;
            continue;
        };
        for tv in verdicts {
            let name = &names[tv.target];
            let version = versions.get(tv.target).copied().unwrap_or_default();
            if let Some((c, k, endpoint, status)) = &tv.server_error {
                let key: Key = (name.clone(), SERVER_ERROR.to_string());
                match found.get_mut(&key) {
                    Some(f) => f.occurrences += 1,
                    None => {
                        let seconds = start.elapsed().as_secs_f64();
                        let ns_base = format!("ocidiff{id}c{i}e");
                        let tries = Tries {
                            n: cfg.attempts,
                            stop_at_first: false,
                            until: deadline,
                        };
                        let (reproduced, attempts) =
                            attempts_showing(fleet, &case, &key, cfg, &ns_base, tries).await;
                        let r = rule_in(SERVER_ERROR, version);
                        let op = case
                            .clients
                            .get(*c)
                            .and_then(|cl| cl.ops.get(*k))
                            .map(|op| serde_json::to_string(op).unwrap_or_default())
                            .unwrap_or_default();
                        let f = RaceFinding {
                            id: format!("race-{:03}", found.len() + 1),
                            rule: SERVER_ERROR.to_string(),
                            class: r.class,
                            spec: r.quote(),
                            target: name.clone(),
                            answer_rule: SERVER_ERROR.to_string(),
                            answer_spec: r.quote(),
                            summary: format!(
                                "{endpoint} answered {status} while {} clients overlapped \
                                 (client {c} op {k} {op})",
                                case.clients.len()
                            ),
                            expected: "not a 5xx".to_string(),
                            actual: status.to_string(),
                            kind: case.kind.clone(),
                            case_index: i,
                            case_seed: seed,
                            seconds_to_detect: seconds,
                            found_clients: case.clients.len(),
                            found_ops: case.segment_ops(),
                            clients: case.clients.len(),
                            ops: case.segment_ops(),
                            reproduced,
                            attempts,
                            occurrences: 1,
                            case: case.clone(),
                            spec_version: version,
                        };
                        found.insert(key, f);
                    }
                }
            }
            if tv.sequential {
                s.histories += 1;
                s.sequential += 1;
                if let Some(serial) = &tv.serial {
                    let ns = format!("ocidiff{id}c{i}seq");
                    note_sequential(fleet, serial, name, &ns, &mut s.sequential_bugs).await;
                }
                continue;
            }
            match tv.verdict {
                None => s.unjudged += 1,
                Some(Verdict::Inconclusive) => {
                    s.histories += 1;
                    s.inconclusive += 1;
                }
                Some(Verdict::Linearizable) => s.histories += 1,
                Some(Verdict::Not(n)) => {
                    s.histories += 1;
                    let Some(key) = key_of(name, &n) else {
                        continue;
                    };
                    if let Some(f) = found.get_mut(&key) {
                        f.occurrences += 1;
                        continue;
                    }
                    let seconds = start.elapsed().as_secs_f64();
                    let ns_base = format!("ocidiff{id}c{i}f");
                    let shrunk = if cfg.shrink {
                        let until = (Instant::now() + Duration::from_secs(30)).min(deadline);
                        shrink(fleet, &case, &key, cfg, &ns_base, until).await
                    } else {
                        case.clone()
                    };
                    let tries = Tries {
                        n: cfg.attempts,
                        stop_at_first: false,
                        until: deadline,
                    };
                    let ns_r = format!("{ns_base}r");
                    let (reproduced, attempts) =
                        attempts_showing(fleet, &shrunk, &key, cfg, &ns_r, tries).await;
                    let r = rule_in(key.1.as_str(), version);
                    let a = rule_in(n.found.rule, version);
                    let (c, o) = (case.clients.len(), case.segment_ops());
                    let blocking = case
                        .clients
                        .get(n.blocking.0)
                        .and_then(|c| c.ops.get(n.blocking.1))
                        .or_else(|| case.after.get(n.blocking.1))
                        .map(|op| serde_json::to_string(op).unwrap_or_default())
                        .unwrap_or_default();
                    let who = if n.blocking.0 == case.clients.len() {
                        format!("read {} after the segment", n.blocking.1)
                    } else {
                        format!("client {} op {}", n.blocking.0, n.blocking.1)
                    };
                    found.insert(
                        key.clone(),
                        RaceFinding {
                            id: format!("race-{:03}", found.len() + 1),
                            rule: key.1.clone(),
                            class: r.class,
                            spec: r.quote(),
                            target: name.clone(),
                            answer_rule: a.rule.id.to_string(),
                            answer_spec: a.quote(),
                            summary: format!(
                                "no order of the {} ops of {} clients explains every answer \
                                 (at most {} fit); {who} {blocking}: {}",
                                n.ops, c, n.placed, n.found.summary
                            ),
                            expected: n.found.expected.clone(),
                            actual: n.found.actual.clone(),
                            kind: case.kind.clone(),
                            case_index: i,
                            case_seed: seed,
                            seconds_to_detect: seconds,
                            found_clients: c,
                            found_ops: o,
                            clients: shrunk.clients.len(),
                            ops: shrunk.segment_ops(),
                            reproduced,
                            attempts,
                            occurrences: 1,
                            case: shrunk,
                            spec_version: version,
                        },
                    );
                }
            }
        }
    }
    s.findings = found.into_values().collect();
    // Sessions of a case cut at the deadline are cancelled like the others.
    fleet.executor.cancel_orphans().await;
    s.elapsed = start.elapsed();
    let urls: Vec<String> = fleet
        .launched
        .iter()
        .map(|t| t.base_url.as_str().trim_end_matches('/').to_string())
        .collect();
    write_outputs(&s, &urls, summary_file)?;
    Ok(s)
}

/// Runs a failing one-at-a-time order as a plain sequence and records the sequential bug it
/// shows on `target` (its first divergence there), once per cause.
async fn note_sequential(
    fleet: &Fleet,
    serial: &RaceCase,
    target: &str,
    ns: &str,
    bugs: &mut Vec<SequentialBug>,
) {
    let seq = crate::ops::Sequence {
        content: serial.content.clone(),
        ops: serial
            .prefix
            .iter()
            .chain(serial.clients.iter().flat_map(|c| &c.ops))
            .chain(&serial.after)
            .cloned()
            .collect(),
    };
    let run = super::case::run_checked(&fleet.executor, &seq, ns).await;
    fleet.cleanup(ns);
    let Some((_, _, divs)) = run else { return };
    let Some(d) = divs.iter().find(|d| d.target == target) else {
        return;
    };
    let finding = crate::shrink::finding_id(&d.cause());
    match bugs.iter_mut().find(|b| b.finding == finding) {
        Some(b) => b.histories += 1,
        None => bugs.push(SequentialBug {
            finding,
            target: target.to_string(),
            rule: d.rule.clone(),
            summary: d.summary.clone(),
            histories: 1,
            ops: seq,
        }),
    }
}

/// `findings.json` (every race finding) and `races/<id>/` (`race.toml`, `finding.json`,
/// `repro.sh`).
fn write_outputs(s: &RaceSummary, urls: &[String], summary_file: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(&s.out)?;
    let summary = serde_json::json!({
        "run_id": s.run_id,
        "targets": s.targets,
        "cases_run": s.cases_run,
        "histories": s.histories,
        "inconclusive": s.inconclusive,
        "unjudged": s.unjudged,
        "sequential": s.sequential,
        "sequential_bugs": s.sequential_bugs,
        "elapsed_secs": s.elapsed.as_secs_f64(),
        "findings": s.findings,
    });
    write_atomic(
        &s.out.join(summary_file),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    for f in &s.findings {
        let dir = s.out.join("races").join(&f.id);
        std::fs::create_dir_all(&dir)?;
        write_atomic(&dir.join("race.toml"), f.case.to_toml()?.as_bytes())?;
        write_atomic(
            &dir.join("finding.json"),
            serde_json::to_string_pretty(f)?.as_bytes(),
        )?;
        let url = s
            .targets
            .iter()
            .position(|t| *t == f.target)
            .and_then(|t| urls.get(t))
            .cloned()
            .unwrap_or_default();
        let comment = format!(
            "{} on {}: {}\n{}\nFound after {:.1} s; shrunk to {} clients / {} ops; reproduced {}/{} times.",
            f.rule,
            f.target,
            f.summary.replace('\n', " "),
            f.spec,
            f.seconds_to_detect,
            f.clients,
            f.ops,
            f.reproduced,
            f.attempts
        );
        let script = crate::report::repro::render_race(&f.case, &comment, &f.target, &url, &dir)?;
        write_atomic(&dir.join("repro.sh"), script.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.join("repro.sh"), std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// A race case from a `race.toml` or a finding directory holding one.
pub fn read_case(path: &Path) -> anyhow::Result<RaceCase> {
    let file = if path.is_dir() {
        path.join("race.toml")
    } else {
        path.to_path_buf()
    };
    let text =
        std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    RaceCase::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

/// What `ocidiff race --replay` saw.
#[derive(Debug)]
pub struct ReplayRate {
    /// Per non-linearizable attempt: target and summary.
    pub shown: Vec<(String, String)>,
    pub attempts: u32,
    /// Attempts where some target's history was not linearizable.
    pub reproduced: u32,
}

/// Runs a race case `attempts` times on the targets; how often some target's history was
/// not linearizable.
pub async fn replay_race(
    targets: Vec<(String, TargetSpec)>,
    case: &RaceCase,
    attempts: u32,
    consistency: &BTreeMap<String, Consistency>,
    budget: usize,
    version: crate::vocab::spec_version::SpecVersion,
) -> anyhow::Result<ReplayRate> {
    let targets = with_reference_first(targets)?;
    let fleet = Fleet::launch(&targets, version).await?;
    let names = fleet.names();
    let levels = levels_of(consistency, &names);
    let id = run_id();
    let mut rate = ReplayRate {
        shown: Vec::new(),
        attempts,
        reproduced: 0,
    };
    let mut controls = Controls::default();
    for a in 0..attempts {
        let ns = format!("ocidiff{id}r{a}");
        let v = run_race_case(&fleet, case, &ns, &levels, budget, &mut controls).await;
        fleet.cleanup(&ns);
        let mut any = false;
        for tv in v.into_iter().flatten() {
            if let Some(n) = tv.race() {
                any = true;
                rate.shown
                    .push((names[tv.target].clone(), n.found.summary.clone()));
            }
        }
        rate.reproduced += u32::from(any);
    }
    fleet.shutdown().await;
    Ok(rate)
}
