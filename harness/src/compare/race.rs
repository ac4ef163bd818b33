//! The linearizability oracle for concurrent segments (Wing & Gong's search with Lowe's
//! memoization, partitioned like Porcupine's P-compositional checker).
//!
//! A target's history is linearizable when there is one order of its ops, consistent with
//! real time (an op that completed before another was invoked comes first), in which the
//! model answers every op as the target did. Each candidate step judges the op with the same
//! judge as the sequential walk ([`super::judge_op`]) in the state the order so far leaves;
//! a step is refused only by a finding on the *state* an answer shows (status, body, the
//! digest / type / length headers, a missing step) under a MUST (on the reference: any such
//! finding: it is the oracle). Header formats, the form of a body (tag order, JSON shape:
//! [`form_rule`]) and SHOULDs are the sequential oracle's business, not a race.
//!
//! Ops on different repositories commute in the model, so the history is split per
//! repository (a mount joins its two) and each part is searched alone. Visited
//! (placed-set, state) pairs are remembered, so the search is polynomial in practice for the
//! segments the generator draws (at most 8 clients x 4 ops plus the reads after).
//!
//! **Consistency levels.** Where the spec allows weaker behaviour than atomic updates, a
//! target declares it: with [`Consistency::LazyDelete`] a delete's answer is judged where
//! it is placed, but its effect is a separate step that may come at any later point (or
//! never within the history), as the official suite's `*_ATOMIC` switches allow.

use super::{facts_of, judge_op, rule, Class};
use crate::model::ModelState;
use crate::ops::expect::{Found, TargetFacts, TargetMemo};
use crate::ops::{Op, Sym};
use crate::vocab::content::Content;
use crate::vocab::exchange::{Exchange, TimedOp};
use crate::vocab::Repo;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// What a target promises about concurrent updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    /// Every op takes effect atomically between its invocation and its answer.
    #[default]
    Strict,
    /// Deletes take effect at some point after they are invoked, not necessarily before
    /// their answer (reads may still see deleted content for a while).
    LazyDelete,
}

impl std::str::FromStr for Consistency {
    type Err = String;
    fn from_str(s: &str) -> Result<Consistency, String> {
        match s {
            "strict" => Ok(Consistency::Strict),
            "lazy-delete" => Ok(Consistency::LazyDelete),
            _ => Err(format!(
                "unknown consistency level {s:?} (strict, lazy-delete)"
            )),
        }
    }
}

/// One op of a history as the search sees it.
#[derive(Clone, Copy)]
pub struct HistOp<'a> {
    pub op: &'a Op,
    pub client: usize,
    pub index: usize,
    pub start: u64,
    /// `u64::MAX`: no upper bound (the delayed effect of a lazy delete).
    pub end: u64,
    pub exs: &'a [Exchange],
    /// The delayed effect of a delete (applied, never judged).
    pub effect_only: bool,
    /// A lazy delete's answer (judged, its effect is the separate `effect_only` step).
    pub judge_only: bool,
    /// The op changes nothing in any state (a read): see [`Search::go`]'s fast path.
    pub pure: bool,
}

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotLinearizable {
    /// Ops of the failing part.
    pub ops: usize,
    /// The most ops any order could place.
    pub placed: usize,
    /// (client, index) of the op that fits no state reachable at that point.
    pub blocking: (usize, usize),
    /// What the op's answer showed against the model there (the first state tried).
    pub found: Found,
    /// The endpoint of the blocking exchange.
    pub endpoint: String,
    /// Index of the blocking exchange in the op's exchanges.
    pub exchange: usize,
}

/// The search's answer for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    Not(NotLinearizable),
    /// The search budget ran out: no verdict.
    Inconclusive,
}

/// `OCIDIFF_RACE_DEBUG=1`: print the search's steps (and, in `ocidiff race`, prefix
/// divergences, per-op timings and the control's verdict).
pub fn debugging() -> bool {
    std::env::var_os("OCIDIFF_RACE_DEBUG").is_some()
}

/// Whether a finding on this field says something about the state the answer shows.
pub fn state_field(field: &str) -> bool {
    matches!(
        field,
        "status"
            | "body"
            | "header:docker-content-digest"
            | "header:content-type"
            | "header:content-length"
            | "header:oci-tag"
            | "header:range"
    ) || field.starts_with("exchange:")
}

/// Rules about an answer's form, whatever state it shows (tag order, JSON shape, names,
/// `Link` syntax, error bodies): the sequential oracle reports them; they say nothing about
/// an order of ops, so they never block a step (else one format bug would also be a "race").
pub fn form_rule(rule: &str) -> bool {
    matches!(
        rule,
        "end-8a/order"
            | "end-8a/json"
            | "end-8a/name"
            | "end-8b/pagination"
            | "end-12a/json"
            | "end-12a/content-type"
    ) || rule.ends_with("/link-format")
        || rule.starts_with("errors/")
        || rule.starts_with("warning/")
}

fn blocks(f: &Found, is_reference: bool) -> bool {
    state_field(&f.field)
        && !form_rule(f.rule)
        && (is_reference || rule(f.rule).class == Class::Violation)
}

/// The repositories an op touches (its footprint's symbols).
fn repos_of(op: &Op, st: &ModelState, content: &Content) -> BTreeSet<Repo> {
    let fp = op.op().footprint(st, content);
    fp.reads
        .iter()
        .chain(fp.writes.iter())
        .filter_map(|s| match s {
            Sym::Blob(r, _)
            | Sym::Manifest(r, _)
            | Sym::Tags(r)
            | Sym::Referrers(r, _)
            | Sym::RepoExists(r) => Some(*r),
            Sym::BlobAny(_) | Sym::Session(_) => None,
        })
        .collect()
}

/// Splits op indices into parts that share no repository (an op touching none, or sessions
/// only, joins the part of its client's previous op, else part 0).
fn partition(ops: &[HistOp<'_>], st: &ModelState, content: &Content) -> Vec<Vec<usize>> {
    let n = ops.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    // A session's ops touch the repository its opening op names (the footprint, taken in the
    // state before the segment, does not know sessions opened within it): all of a session's
    // ops land in that repository's part.
    let session_repo: HashMap<crate::vocab::Session, Repo> = ops
        .iter()
        .filter_map(|h| match h.op {
            Op::StartUpload(s) => Some((s.session, s.repo)),
            _ => None,
        })
        .collect();
    let mut by_repo: HashMap<Repo, usize> = HashMap::new();
    let mut last_of_client: HashMap<usize, usize> = HashMap::new();
    for (i, h) in ops.iter().enumerate() {
        let mut repos = repos_of(h.op, st, content);
        for s in h.op.op().ids().sessions {
            repos.extend(
                session_repo
                    .get(&s)
                    .copied()
                    .or_else(|| st.session(s).map(|x| x.repo)),
            );
        }
        let join = |a: usize, b: usize, p: &mut Vec<usize>| {
            let (ra, rb) = (find(p, a), find(p, b));
            if ra != rb {
                p[ra] = rb;
            }
        };
        if repos.is_empty() {
            let other = last_of_client.get(&h.client).copied().unwrap_or(0);
            join(i, other, &mut parent);
        }
        for r in repos {
            match by_repo.get(&r) {
                Some(&j) => join(i, j, &mut parent),
                None => {
                    by_repo.insert(r, i);
                }
            }
        }
        last_of_client.insert(h.client, i);
    }
    let mut parts: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let r = find(&mut parent, i);
        parts.entry(r).or_default().push(i);
    }
    let mut v: Vec<Vec<usize>> = parts.into_values().collect();
    v.sort();
    v
}

struct Search<'a, 'b> {
    ops: &'b [HistOp<'a>],
    idx: &'b [usize],
    content: &'b Content,
    facts: &'b TargetFacts,
    is_reference: bool,
    /// Placed set -> the states seen there.
    visited: HashMap<u64, Vec<ModelState>>,
    steps: usize,
    budget: usize,
    best: Option<(usize, usize, usize, Found)>,
    out_of_budget: bool,
}

/// One candidate step of the search.
enum Step {
    /// The op's answer fits the state; `applies`: its effect goes into the model.
    Fits {
        memo: TargetMemo,
        applies: bool,
    },
    /// A finding on the state refuses the op here (the deepest one is kept for the report).
    Blocked,
    OutOfBudget,
}

impl Search<'_, '_> {
    /// Judges op `k` in state `st` (the one judge of an op, as in the sequential walk).
    fn step(&mut self, k: usize, st: &ModelState, memo: &TargetMemo, depth: usize) -> Step {
        self.steps += 1;
        if self.steps > self.budget {
            self.out_of_budget = true;
            return Step::OutOfBudget;
        }
        let h = self.ops[self.idx[k]];
        let mut memo = memo.clone();
        if h.effect_only {
            return Step::Fits {
                memo,
                applies: true,
            };
        }
        let j = judge_op(
            h.op.op(),
            st,
            self.content,
            self.facts,
            &mut memo,
            self.is_reference,
            h.exs,
            false,
        );
        if debugging() {
            eprintln!(
                "depth {depth} op {} c{} #{}: off_model {} found {:?}",
                h.op.name(),
                h.client,
                h.index,
                j.off_model,
                j.found
                    .iter()
                    .map(|(_, f)| (&f.field, f.rule, &f.summary))
                    .collect::<Vec<_>>()
            );
        }
        if let Some((x, f)) = j.found.iter().find(|(_, f)| blocks(f, self.is_reference)) {
            if self.best.as_ref().is_none_or(|b| depth > b.0) {
                self.best = Some((depth, self.idx[k], *x, f.clone()));
            }
            return Step::Blocked;
        }
        Step::Fits {
            memo,
            applies: !j.off_model && !h.judge_only,
        }
    }

    /// Depth-first over the ops that may come next; `done` is a bit set over `idx`.
    fn go(&mut self, done: u64, st: &ModelState, memo: &TargetMemo, depth: usize) -> bool {
        let n = self.idx.len();
        let all_finite_done =
            (0..n).all(|k| done & (1 << k) != 0 || self.ops[self.idx[k]].end == u64::MAX);
        if all_finite_done {
            return true;
        }
        let seen = self.visited.entry(done).or_default();
        if seen.iter().any(|s| s == st) {
            return false;
        }
        seen.push(st.clone());
        let min_end = (0..n)
            .filter(|k| done & (1 << k) == 0)
            .map(|k| self.ops[self.idx[k]].end)
            .min()
            .unwrap_or(u64::MAX);
        // Fast path: a read that may come next and fits the current state goes next, without
        // branching. If any order exists from here, one starts with it: moving it to the front
        // breaks no real-time constraint (nothing pending ended before it began) and changes
        // no state the others see.
        for k in 0..n {
            let h = &self.ops[self.idx[k]];
            if done & (1 << k) != 0 || !h.pure || h.start > min_end {
                continue;
            }
            match self.step(k, st, memo, depth) {
                Step::Fits { memo, .. } => return self.go(done | (1 << k), st, &memo, depth + 1),
                Step::Blocked => continue,
                Step::OutOfBudget => return false,
            }
        }
        for k in 0..n {
            if done & (1 << k) != 0 {
                continue;
            }
            let h = &self.ops[self.idx[k]];
            if h.start > min_end || h.pure {
                // A pure op that fits was placed above; one that does not fit waits.
                continue;
            }
            // A lazy delete's effect comes after its own answer was placed.
            if h.effect_only {
                let judged = (0..n).find(|&j| {
                    let o = &self.ops[self.idx[j]];
                    o.judge_only && o.client == h.client && o.index == h.index
                });
                if judged.is_some_and(|j| done & (1 << j) == 0) {
                    continue;
                }
            }
            let (memo2, applies) = match self.step(k, st, memo, depth) {
                Step::Fits { memo, applies } => (memo, applies),
                Step::Blocked => continue,
                Step::OutOfBudget => return false,
            };
            let mut next = st.clone();
            if applies {
                h.op.op().apply(&mut next, self.content);
            }
            if self.go(done | (1 << k), &next, &memo2, depth + 1) {
                return true;
            }
            if self.out_of_budget {
                return false;
            }
        }
        false
    }
}

/// Most ops one part may hold (the placed set is a 64-bit mask).
pub const MAX_PART_OPS: usize = 64;

/// Checks one target's history, starting from `st0` (the model after the sequential prefix).
/// `budget` bounds the steps tried over all parts.
pub fn check_history(
    st0: &ModelState,
    content: &Content,
    ops: &[HistOp<'_>],
    is_reference: bool,
    budget: usize,
) -> Verdict {
    let facts = facts_of(
        ops.iter()
            .flat_map(|h| h.exs.iter().map(move |ex| (h.op, ex))),
    );
    let ops: Vec<HistOp<'_>> = ops
        .iter()
        .map(|h| HistOp {
            pure: !h.effect_only
                && !h.judge_only
                && h.op.op().footprint(st0, content).writes.is_empty()
                && h.op.op().ids().sessions.is_empty(),
            ..*h
        })
        .collect();
    let ops = &ops[..];
    let mut steps = 0;
    for part in partition(ops, st0, content) {
        if part.len() > MAX_PART_OPS {
            return Verdict::Inconclusive;
        }
        let mut s = Search {
            ops,
            idx: &part,
            content,
            facts: &facts,
            is_reference,
            visited: HashMap::new(),
            steps: 0,
            budget: budget.saturating_sub(steps),
            best: None,
            out_of_budget: false,
        };
        let ok = s.go(0, st0, &TargetMemo::default(), 0);
        steps += s.steps;
        if s.out_of_budget {
            return Verdict::Inconclusive;
        }
        if !ok {
            let Some((placed, i, x, found)) = s.best else {
                return Verdict::Inconclusive;
            };
            let h = &ops[i];
            return Verdict::Not(NotLinearizable {
                ops: part.iter().filter(|&&i| !ops[i].effect_only).count(),
                placed,
                blocking: (h.client, h.index),
                endpoint: h.exs.get(x).map(|e| e.endpoint.clone()).unwrap_or_default(),
                exchange: x,
                found,
            });
        }
    }
    Verdict::Linearizable
}

/// The search's view of a recorded history: `clients[c][k]` is the op `TimedOp { client: c,
/// index: k }` stands for; `after` ops (the reads after the segment, run one after another)
/// come with their own `TimedOp`s (client `clients.len()`).
pub fn hist_ops<'a>(
    clients: &'a [Vec<Op>],
    after: &'a [Op],
    timed: &'a [TimedOp],
    consistency: Consistency,
) -> Vec<HistOp<'a>> {
    let mut out = Vec::with_capacity(timed.len());
    for t in timed {
        let op = if t.client < clients.len() {
            clients[t.client].get(t.index)
        } else {
            after.get(t.index)
        };
        let Some(op) = op else { continue };
        // No answer, or a server error: the op may or may not have taken effect, at any time
        // from its invocation on (Porcupine's treatment of a crashed call). Its own answer is
        // the sequential oracle's finding (a 5xx), not a race.
        let failed = t
            .exchanges
            .iter()
            .any(|e| e.observation.status == 0 || e.observation.status >= 500);
        if failed {
            out.push(HistOp {
                op,
                client: t.client,
                index: t.index,
                start: t.start_us,
                end: u64::MAX,
                exs: &t.exchanges,
                effect_only: true,
                judge_only: false,
                pure: false,
            });
            continue;
        }
        let lazy = consistency == Consistency::LazyDelete
            && matches!(op, Op::DeleteManifest(_) | Op::DeleteBlob(_));
        let h = HistOp {
            op,
            client: t.client,
            index: t.index,
            start: t.start_us,
            end: t.end_us,
            exs: &t.exchanges,
            effect_only: false,
            judge_only: lazy,
            pure: false,
        };
        out.push(h);
        if lazy {
            out.push(HistOp {
                end: u64::MAX,
                effect_only: true,
                judge_only: false,
                ..h
            });
        }
    }
    out
}

/// The rule a race finding is filed under: `race/<endpoint of the blocking answer>`
/// (`None` for an endpoint no segment op uses).
pub fn race_rule(endpoint: &str) -> Option<&'static str> {
    Some(match endpoint {
        "end-2" => "race/end-2",
        "end-3" => "race/end-3",
        "end-4a" | "end-4b" | "end-4c" | "end-5" | "end-6" | "end-11" | "end-13" | "end-14" => {
            "race/end-6"
        }
        "end-7a" | "end-7b" => "race/end-7",
        "end-8a" | "end-8b" => "race/end-8",
        "end-9" => "race/end-9",
        "end-10" => "race/end-10",
        "end-12a" | "end-12b" => "race/end-12",
        _ => return None,
    })
}
