//! A classified difference between a target and the model or the reference, and what makes two
//! of them the same finding.

use super::rules::Class;
use serde::{Deserialize, Serialize};

/// One classified difference between a target and the model or the reference.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub class: Class,
    pub target: String,
    pub op_index: usize,
    /// Exchange label within the op ("post", "put", "patch#2", ...).
    pub label: String,
    /// Endpoint id ("end-2", ..., "catalog").
    pub endpoint: String,
    /// "status", "header:<name>", "body", "exchange:<label>".
    pub field: String,
    /// Rule id from [`RULES`].
    pub rule: String,
    /// The quoted spec sentence.
    pub spec: String,
    pub summary: String,
    pub expected: String,
    pub actual: String,
    /// The reference's value for the same field, when the target is not the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The spec version the class and quote are of (the target's claim, else the run's).
    #[serde(default)]
    pub spec_version: crate::vocab::spec_version::SpecVersion,
}

/// What makes two divergences "the same finding".
pub type Signature = (String, String, String, Class, String);

impl Divergence {
    /// How the next spec version reads this divergence's rule, when it would be a violation
    /// there and is not one under the version judged ("ready for the next spec": listed apart,
    /// never counted in the exit code).
    pub fn next_violation(&self) -> Option<super::rule_versions::VersionedRule> {
        if self.class == Class::Violation {
            return None;
        }
        let next = self.spec_version.next()?;
        let vr = super::rule_versions::rule_in(&self.rule, next);
        (vr.class == Class::Violation).then_some(vr)
    }

    /// (target, endpoint, field, class, rule).
    pub fn signature(&self) -> Signature {
        (
            self.target.clone(),
            self.endpoint.clone(),
            self.field.clone(),
            self.class,
            self.rule.clone(),
        )
    }
}

impl Divergence {
    /// A violation on target `t` for tests: `rule` on `endpoint`, `field`, answered `actual`.
    #[cfg(test)]
    pub fn sample(rule: &str, endpoint: &str, field: &str, actual: &str) -> Divergence {
        Divergence {
            class: Class::Violation,
            target: "t".into(),
            op_index: 0,
            label: "get".into(),
            endpoint: endpoint.into(),
            field: field.into(),
            rule: rule.into(),
            spec: String::new(),
            summary: format!("{rule} summary"),
            expected: String::new(),
            actual: actual.into(),
            reference: None,
            spec_version: Default::default(),
        }
    }
}
