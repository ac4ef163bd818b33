//! Findings: a divergence with its minimal reproducer, deduplicated by signature.

use crate::compare::{Divergence, Signature};
use crate::ops::Sequence;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A deduplicated divergence with its minimal reproducer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// Short stable hash of the signature.
    pub id: String,
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
    /// Whether the minimal sequence was confirmed to still show the signature.
    pub confirmed: bool,
    /// The minimal sequence's run (for reports: target vs reference side by side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::vocab::exchange::CaseOutcome>,
}

/// Short stable id of a signature: the first 12 hex digits of its sha256.
pub fn finding_id(sig: &Signature) -> String {
    use sha2::Digest as _;
    let text = format!("{}|{}|{}|{}|{}", sig.0, sig.1, sig.2, sig.3, sig.4);
    hex::encode(sha2::Sha256::digest(text.as_bytes()))[..12].to_string()
}

/// Findings deduplicated by signature, in signature order.
#[derive(Clone, Debug, Default)]
pub struct FindingSet {
    by_sig: BTreeMap<Signature, Finding>,
}

impl FindingSet {
    pub fn new() -> FindingSet {
        FindingSet::default()
    }

    pub fn contains(&self, sig: &Signature) -> bool {
        self.by_sig.contains_key(sig)
    }

    /// Adds a finding; `false` (and nothing changes) when its signature is already known.
    pub fn insert(&mut self, f: Finding) -> bool {
        let sig = f.divergence.signature();
        if self.by_sig.contains_key(&sig) {
            return false;
        }
        self.by_sig.insert(sig, f);
        true
    }

    pub fn len(&self) -> usize {
        self.by_sig.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sig.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Finding> {
        self.by_sig.values()
    }

    pub fn into_vec(self) -> Vec<Finding> {
        self.by_sig.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Class;

    #[test]
    fn finding_ids_are_stable_and_dedup_works() {
        let sig: Signature = (
            "t".into(),
            "end-2".into(),
            "status".into(),
            Class::Violation,
            "end-2/get-200".into(),
        );
        assert_eq!(finding_id(&sig), finding_id(&sig.clone()));
        assert_eq!(finding_id(&sig).len(), 12);
        let d = Divergence {
            class: Class::Violation,
            target: "t".into(),
            op_index: 0,
            label: "get".into(),
            endpoint: "end-2".into(),
            field: "status".into(),
            rule: "end-2/get-200".into(),
            spec: String::new(),
            summary: String::new(),
            expected: "200".into(),
            actual: "500".into(),
            reference: None,
        };
        let f = Finding {
            id: finding_id(&d.signature()),
            divergence: d,
            ops: Sequence::default(),
            original_ops_len: 3,
            seed: 1,
            first_seen_case: 0,
            case_seed: 1,
            shrink_runs: 0,
            confirmed: true,
            outcome: None,
        };
        let mut set = FindingSet::new();
        assert!(set.insert(f.clone()));
        assert!(!set.insert(f));
        assert_eq!(set.len(), 1);
    }
}
