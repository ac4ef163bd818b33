//! Findings: one per cause (see `compare::cause`), with the minimal reproducer of its first
//! divergence, where else it showed, and the symptoms that follow from it.

use crate::compare::{symptom_of, Cause, Divergence};
use crate::ops::Sequence;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One bug (or one variation / unsupported feature): a cause with its minimal reproducer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// Short stable hash of the cause.
    pub id: String,
    /// The divergence the reproducer shows.
    pub divergence: Divergence,
    /// The minimal sequence.
    pub ops: Sequence,
    pub original_ops_len: usize,
    /// The fuzz run's seed and the case index / case seed the divergence first showed in.
    pub seed: u64,
    pub first_seen_case: u64,
    pub case_seed: u64,
    /// Predicate runs spent shrinking (0 when not shrunk).
    pub shrink_runs: u32,
    /// Shrink candidates dropped by the preconditions without a run.
    #[serde(default)]
    pub shrink_skipped: u32,
    /// Whether the minimal sequence was confirmed to still show the cause.
    pub confirmed: bool,
    /// Whether the minimal sequence shows the cause on fresh instances of the reference and
    /// the target, with nothing of the run on them (its reproducer holds on its own); `None`
    /// when not checked (a target ocidiff does not start itself, or the deadline came first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolated: Option<bool>,
    /// Divergences of this cause the run saw (every op of every case; at least 1).
    #[serde(default = "one")]
    pub occurrences: u32,
    /// Where it showed: `endpoint field`, sorted, each once.
    #[serde(default)]
    pub seen_at: Vec<String>,
    /// Divergences that follow from this finding rather than being findings of their own.
    #[serde(default)]
    pub symptoms: Vec<Symptom>,
    /// The minimal sequence's run (for reports: target vs reference side by side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::vocab::exchange::CaseOutcome>,
    /// The earlier op that broke the target's state, when the failing op only shows it
    /// (`shrink::state_cause`): findings of one target with the same cause are one finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_cause: Option<super::state_cause::StateCause>,
}

fn one() -> u32 {
    1
}

/// A divergence that is a consequence of a finding (a paging check failing because the tags
/// are misordered, ...): counted and exemplified, not reported on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symptom {
    pub rule: String,
    pub endpoint: String,
    pub count: u32,
    /// The first one's summary.
    pub example: String,
}

impl Finding {
    /// A finding for `d`, seen first in `case` with sequence `seq`, not shrunk.
    pub fn new(d: &Divergence, seq: &Sequence, seed: u64, case: u64, case_seed: u64) -> Finding {
        Finding {
            id: finding_id(&d.cause()),
            divergence: d.clone(),
            ops: seq.clone(),
            original_ops_len: seq.ops.len(),
            seed,
            first_seen_case: case,
            case_seed,
            shrink_runs: 0,
            shrink_skipped: 0,
            confirmed: true,
            isolated: None,
            occurrences: 1,
            seen_at: vec![seen_at(d)],
            symptoms: Vec::new(),
            outcome: None,
            state_cause: None,
        }
    }

    /// One more divergence of this finding's cause.
    pub fn note(&mut self, d: &Divergence) {
        self.occurrences += 1;
        let at = seen_at(d);
        if let Err(i) = self.seen_at.binary_search(&at) {
            self.seen_at.insert(i, at);
        }
    }

    /// One more symptom of this finding.
    pub fn note_symptom(&mut self, rule: &str, endpoint: &str, count: u32, example: &str) {
        match self
            .symptoms
            .iter_mut()
            .find(|s| s.rule == rule && s.endpoint == endpoint)
        {
            Some(s) => s.count += count,
            None => {
                self.symptoms.push(Symptom {
                    rule: rule.to_string(),
                    endpoint: endpoint.to_string(),
                    count,
                    example: example.to_string(),
                });
                self.symptoms
                    .sort_by(|a, b| (&a.rule, &a.endpoint).cmp(&(&b.rule, &b.endpoint)));
            }
        }
    }

    /// Symptoms in total.
    pub fn symptom_count(&self) -> u32 {
        self.symptoms.iter().map(|s| s.count).sum()
    }
}

fn seen_at(d: &Divergence) -> String {
    format!("{} {}", d.endpoint, d.field)
}

/// Short stable id of a cause: the first 12 hex digits of its sha256.
pub fn finding_id(c: &Cause) -> String {
    use sha2::Digest as _;
    let text = format!("{}|{}|{}", c.target, c.class, c.key);
    hex::encode(sha2::Sha256::digest(text.as_bytes()))[..12].to_string()
}

/// Findings by cause, in cause order.
#[derive(Clone, Debug, Default)]
pub struct FindingSet {
    by_cause: BTreeMap<Cause, Finding>,
    /// Causes a control showed to be another (see [`FindingSet::reattribute`]).
    aliases: BTreeMap<Cause, Cause>,
    /// Causes folded under the finding of the op that broke the state
    /// ([`FindingSet::fold_state`]): their divergences count as its symptoms.
    symptom_aliases: BTreeMap<Cause, Cause>,
}

/// What [`FindingSet::absorb`] did with a divergence.
#[derive(Debug, PartialEq, Eq)]
pub enum Absorbed {
    /// Another occurrence of a known finding (its id).
    Occurrence(String),
    /// A symptom of a known finding (its id).
    Symptom(String),
    /// Neither: a new finding.
    New,
}

impl FindingSet {
    pub fn new() -> FindingSet {
        FindingSet::default()
    }

    pub fn contains(&self, c: &Cause) -> bool {
        self.by_cause.contains_key(c)
    }

    /// Counts `d` against the finding it belongs to: its cause's, or the finding it is a
    /// symptom of.
    pub fn absorb(&mut self, d: &Divergence) -> Absorbed {
        let Some((cause, symptom)) = self.home(d) else {
            return Absorbed::New;
        };
        let f = self.by_cause.get_mut(&cause).expect("home exists");
        if symptom {
            f.note_symptom(&d.rule, &d.endpoint, 1, &d.summary);
            Absorbed::Symptom(f.id.clone())
        } else {
            f.note(d);
            Absorbed::Occurrence(f.id.clone())
        }
    }

    /// The cause of the finding `d` counts for, if any.
    pub fn cause_of(&self, d: &Divergence) -> Option<Cause> {
        self.home(d).map(|(c, _)| c)
    }

    /// The finding `d` counts for: its cause's (or the cause a control showed it to be), else
    /// the one it is a symptom of (`true`).
    fn home(&self, d: &Divergence) -> Option<(Cause, bool)> {
        let own = d.cause();
        let own = self.aliases.get(&own).unwrap_or(&own);
        if self.by_cause.contains_key(own) {
            return Some((own.clone(), false));
        }
        if let Some(root) = self.symptom_aliases.get(own) {
            if self.by_cause.contains_key(root) {
                return Some((root.clone(), true));
            }
        }
        self.root_of(&d.target, &d.rule, &d.endpoint)
            .map(|root| (root, true))
    }

    /// The finding a divergence of `rule` on `endpoint` of `target` is a symptom of.
    fn root_of(&self, target: &str, rule: &str, endpoint: &str) -> Option<Cause> {
        symptom_of(rule, endpoint).iter().find_map(|root| {
            self.by_cause
                .keys()
                .find(|c| c.target == target && c.rule() == *root)
                .cloned()
        })
    }

    /// Adds a new finding and folds the findings that are symptoms of it under it; returns the
    /// ids of the findings folded (no longer findings of their own). A finding whose cause is
    /// already known is merged into the known one.
    pub fn insert(&mut self, f: Finding) -> Vec<String> {
        let cause = f.divergence.cause();
        if let Some(known) = self.by_cause.get_mut(&cause) {
            known.note(&f.divergence);
            return Vec::new();
        }
        let folded: Vec<Cause> = self
            .by_cause
            .iter()
            .filter(|(c, known)| {
                c.target == cause.target
                    && symptom_of(c.rule(), &known.divergence.endpoint).contains(&cause.rule())
            })
            .map(|(c, _)| c.clone())
            .collect();
        let mut root = f;
        let mut ids = Vec::new();
        for c in folded {
            let s = self.by_cause.remove(&c).expect("listed");
            root.note_symptom(
                &s.divergence.rule,
                &s.divergence.endpoint,
                s.occurrences,
                &s.divergence.summary,
            );
            for sym in &s.symptoms {
                root.note_symptom(&sym.rule, &sym.endpoint, sym.count, &sym.example);
            }
            ids.push(s.id);
        }
        self.by_cause.insert(cause, root);
        ids
    }

    /// Adds a finding of another run (`ocidiff merge`): a known cause takes its counts (its
    /// occurrences, places and symptoms; the finding already held stays the example), a
    /// symptom of a known finding is counted under it with all its occurrences, anything else
    /// is inserted (folding the known findings that are symptoms of it). Returns the ids that
    /// are no longer findings of their own.
    pub fn merge(&mut self, f: Finding) -> Vec<String> {
        let cause = f.divergence.cause();
        if let Some(known) = self.by_cause.get_mut(&cause) {
            known.occurrences += f.occurrences;
            for at in f.seen_at {
                if let Err(i) = known.seen_at.binary_search(&at) {
                    known.seen_at.insert(i, at);
                }
            }
            for sym in &f.symptoms {
                known.note_symptom(&sym.rule, &sym.endpoint, sym.count, &sym.example);
            }
            return Vec::new();
        }
        let d = &f.divergence;
        if let Some(root) = self.root_of(&d.target, &d.rule, &d.endpoint) {
            let r = self.by_cause.get_mut(&root).expect("root exists");
            r.note_symptom(&d.rule, &d.endpoint, f.occurrences, &d.summary);
            for sym in &f.symptoms {
                r.note_symptom(&sym.rule, &sym.endpoint, sym.count, &sym.example);
            }
            return vec![f.id];
        }
        self.insert(f)
    }

    /// Puts the shrunk version of a known finding in its place, keeping what the run counted
    /// since (occurrences, places, symptoms); `false` when the finding is gone (folded under a
    /// cause found meanwhile).
    pub fn replace_shrunk(&mut self, c: &Cause, shrunk: Finding) -> bool {
        let Some(known) = self.by_cause.get_mut(c) else {
            return false;
        };
        let mut f = shrunk;
        f.occurrences = known.occurrences;
        f.seen_at = std::mem::take(&mut known.seen_at);
        f.symptoms = std::mem::take(&mut known.symptoms);
        f.first_seen_case = known.first_seen_case;
        *known = f;
        true
    }

    /// Puts a shrunk finding whose cause its control changed (`drivers::fuzz_shrink`) in place
    /// of the finding of `was`: what the run counted under `was` goes with it, later
    /// divergences of `was` count for the new cause, and a finding already held for the new
    /// cause takes it in. Returns the ids that are no longer findings of their own (the old
    /// one among them); nothing when `was` is gone (folded meanwhile).
    pub fn reattribute(&mut self, was: &Cause, shrunk: Finding) -> Vec<String> {
        let Some(old) = self.by_cause.remove(was) else {
            return Vec::new();
        };
        let mut f = shrunk;
        f.occurrences = old.occurrences;
        f.seen_at = old.seen_at;
        f.symptoms = old.symptoms;
        f.first_seen_case = old.first_seen_case;
        self.aliases.insert(was.clone(), f.divergence.cause());
        let mut gone = vec![old.id];
        gone.extend(self.merge(f));
        gone
    }

    /// Folds the finding of `c` together with the findings of the same target that the same
    /// op broke (equal [`StateCause::op`](super::state_cause::StateCause)), or under the
    /// finding of that op's own divergence: one finding, the most severe (then the first
    /// seen) the root, the others its symptoms, their later divergences counted there.
    /// Returns the ids that are no longer findings of their own.
    pub fn fold_state(&mut self, c: &Cause) -> Vec<String> {
        let Some(sc) = self.by_cause.get(c).and_then(|f| f.state_cause.clone()) else {
            return Vec::new();
        };
        let mut group: Vec<Cause> = self
            .by_cause
            .iter()
            .filter(|(k, f)| {
                k.target == c.target
                    && (*k == c
                        || sc.diverged.as_ref() == Some(*k)
                        || f.state_cause
                            .as_ref()
                            .is_some_and(|s| s.op == sc.op && s.effect_kind == sc.effect_kind))
            })
            .map(|(k, _)| k.clone())
            .collect();
        if group.len() < 2 {
            return Vec::new();
        }
        let rank = |k: &Cause, f: &Finding| {
            let op_own = sc.diverged.as_ref() == Some(k);
            (!op_own, k.class, f.first_seen_case)
        };
        group.sort_by_key(|k| rank(k, &self.by_cause[k]));
        let root_cause = group.remove(0);
        let mut gone = Vec::new();
        for k in group {
            let s = self.by_cause.remove(&k).expect("listed");
            let root = self.by_cause.get_mut(&root_cause).expect("root");
            root.note_symptom(
                &s.divergence.rule,
                &s.divergence.endpoint,
                s.occurrences,
                &s.divergence.summary,
            );
            for sym in &s.symptoms {
                root.note_symptom(&sym.rule, &sym.endpoint, sym.count, &sym.example);
            }
            if root.state_cause.is_none() {
                root.state_cause = s.state_cause.clone();
            }
            for to in self.symptom_aliases.values_mut() {
                if *to == k {
                    *to = root_cause.clone();
                }
            }
            self.symptom_aliases.insert(k, root_cause.clone());
            gone.push(s.id);
        }
        gone
    }

    /// Drops a finding (a transport error that did not show again).
    pub fn remove(&mut self, c: &Cause) -> Option<Finding> {
        self.by_cause.remove(c)
    }

    pub fn get(&self, c: &Cause) -> Option<&Finding> {
        self.by_cause.get(c)
    }

    pub fn get_mut(&mut self, c: &Cause) -> Option<&mut Finding> {
        self.by_cause.get_mut(c)
    }

    pub fn len(&self) -> usize {
        self.by_cause.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_cause.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Finding> {
        self.by_cause.values()
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.by_cause.into_values().collect()
    }
}

/// Divergences of a case in the order findings should see them: causes before the symptoms
/// that follow from them, otherwise as found.
pub fn roots_first(divs: &mut [Divergence]) {
    divs.sort_by_key(|d| !symptom_of(&d.rule, &d.endpoint).is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn div(rule: &str, endpoint: &str, field: &str) -> Divergence {
        Divergence::sample(rule, endpoint, field, "500")
    }

    fn finding(d: &Divergence) -> Finding {
        Finding::new(d, &Sequence::default(), 1, 0, 1)
    }

    #[test]
    fn a_reattributed_finding_takes_its_counts_and_later_divergences() {
        let was = Divergence::sample("end-7/missing-subject", "end-7a", "status", "400");
        let now = Divergence::sample("end-7/put-201", "end-7a", "status", "400");
        let mut set = FindingSet::new();
        set.insert(finding(&was));
        set.absorb(&was);
        let gone = set.reattribute(&was.cause(), finding(&now));
        assert_eq!(gone, vec![finding_id(&was.cause())]);
        assert_eq!(set.len(), 1);
        let f = set.get(&now.cause()).unwrap();
        assert_eq!(f.occurrences, 2);
        // Later divergences of the old cause count for the new one.
        assert_eq!(
            set.absorb(&was),
            Absorbed::Occurrence(finding_id(&now.cause()))
        );
        assert!(!set.contains(&was.cause()));
    }

    #[test]
    fn ids_are_stable_and_one_cause_is_one_finding() {
        let at = |ep: &str| Divergence::sample("end-2/404", ep, "status", "200");
        let d = at("end-2");
        assert_eq!(finding_id(&d.cause()), finding_id(&d.cause().clone()));
        assert_eq!(finding_id(&d.cause()).len(), 12);
        let mut set = FindingSet::new();
        assert!(set.insert(finding(&d)).is_empty());
        // The same rule on another endpoint: an occurrence, not a finding.
        let other = at("end-3");
        assert_eq!(
            set.absorb(&other),
            Absorbed::Occurrence(finding_id(&d.cause()))
        );
        assert_eq!(set.absorb(&d), Absorbed::Occurrence(finding_id(&d.cause())));
        assert_eq!(set.len(), 1);
        let f = set.iter().next().unwrap();
        assert_eq!(f.occurrences, 3);
        assert_eq!(f.seen_at, vec!["end-2 status", "end-3 status"]);
        // A 5xx: one finding per endpoint and status, whatever the rule.
        let crash = div("end-6/put-201", "end-6", "status");
        assert_eq!(set.absorb(&crash), Absorbed::New);
        set.insert(finding(&crash));
        assert_eq!(
            set.absorb(&div("end-6/out-of-order-416", "end-6", "status")),
            Absorbed::Occurrence(finding_id(&crash.cause()))
        );
        assert_eq!(
            set.absorb(&div("end-6/put-201", "end-2", "status")),
            Absorbed::New
        );
        // Another rule: a new finding.
        assert_eq!(
            set.absorb(&div("end-2/get-body", "end-2", "body")),
            Absorbed::New
        );
    }

    #[test]
    fn symptoms_are_counted_under_their_cause_in_either_order() {
        // Cause first: the paging check that follows is a symptom.
        let order = div("end-8a/order", "end-8a", "body");
        let fewer = div("end-8b/n-fewer", "end-8b", "body");
        let mut set = FindingSet::new();
        set.insert(finding(&order));
        assert!(matches!(set.absorb(&fewer), Absorbed::Symptom(_)));
        assert!(matches!(set.absorb(&fewer), Absorbed::Symptom(_)));
        assert_eq!(set.len(), 1);
        let f = set.iter().next().unwrap();
        assert_eq!(f.symptom_count(), 2);
        assert_eq!(f.symptoms[0].rule, "end-8b/n-fewer");

        // Symptom first: it is folded under the cause once the cause shows.
        let mut set = FindingSet::new();
        set.insert(finding(&fewer));
        set.absorb(&fewer);
        let folded = set.insert(finding(&order));
        assert_eq!(folded, vec![finding_id(&fewer.cause())]);
        assert_eq!(set.len(), 1);
        assert_eq!(set.iter().next().unwrap().symptom_count(), 2);

        // Another target's misordering explains nothing here.
        let mut set = FindingSet::new();
        let mut elsewhere = order.clone();
        elsewhere.target = "u".into();
        set.insert(finding(&elsewhere));
        assert_eq!(set.absorb(&fewer), Absorbed::New);
    }

    #[test]
    fn causes_sort_before_symptoms() {
        let mut divs = vec![
            div("end-8b/n-fewer", "end-8b", "body"),
            div("end-8a/order", "end-8a", "body"),
            div("end-2/get-body", "end-2", "body"),
        ];
        roots_first(&mut divs);
        assert_eq!(divs[2].rule, "end-8b/n-fewer");
        assert_eq!(divs[0].rule, "end-8a/order");
    }
}
