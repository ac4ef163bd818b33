//! Baselines (`ocidiff fuzz --baseline FILE`): a registry adopts ocidiff without fixing every
//! finding first, and CI fails only on regressions.
//!
//! A baseline is either a previous run's `findings.json` (every finding in it is known, matched
//! by its id: target, class and cause), or a curated known-issues file in TOML:
//!
//! ```toml
//! [[known]]
//! target = "distribution"          # optional: any target when absent
//! rule = "end-8a/order"            # a rule id, or a cause such as "errors/code:UNKNOWN"
//! class = "violation"              # optional: any class when absent
//! reason = "distribution#4151: tags in insertion order"   # required
//! ```
//!
//! The run's findings are then `new` or `known`, and every baseline entry that matched nothing
//! is reported as `no longer seen` (a fix, or a case the run did not reach: a short or sharded
//! run proves nothing about absence). Only new violations make the run fail.

use crate::compare::{rules, Class};
use crate::shrink::Finding;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A baseline file that cannot be used (the run does not start).
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("reading baseline {}: {source}", file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("baseline {} is not a findings.json array: {message}", file.display())]
    Json { file: PathBuf, message: String },
    #[error("baseline {} is not a known-issues file: {message}", file.display())]
    Toml { file: PathBuf, message: String },
    #[error("baseline {}, entry {index}: {message}", file.display())]
    Entry {
        file: PathBuf,
        index: usize,
        message: String,
    },
}

/// One known finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Known {
    /// The finding id of a previous run (`findings.json` baselines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A rule id (matches every cause of the rule) or a cause key (`rule:detail`).
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<Class>,
    pub reason: String,
    /// The spec version the finding was judged by (`findings.json` baselines; optional in
    /// TOML). A baseline of another version than the run's is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_version: Option<crate::vocab::spec_version::SpecVersion>,
}

impl Known {
    fn matches(&self, f: &Finding) -> bool {
        if let Some(id) = &self.id {
            return *id == f.id;
        }
        let d = &f.divergence;
        let cause = d.cause();
        self.target.as_ref().is_none_or(|t| *t == d.target)
            && self.class.is_none_or(|c| c == d.class)
            && (self.rule == cause.key || self.rule == cause.rule())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownFile {
    #[serde(default)]
    known: Vec<Known>,
}

/// A loaded baseline.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub file: PathBuf,
    pub entries: Vec<Known>,
    /// Entries naming a rule ocidiff does not have (they can never match).
    pub warnings: Vec<String>,
}

impl Baseline {
    /// Refuses a baseline judged by another spec version than `run`'s: the same behaviour is
    /// a violation under one and a variation under another, so known / new would mix verdicts.
    pub fn check_version(
        &self,
        run: crate::vocab::spec_version::SpecVersion,
    ) -> Result<(), String> {
        match self
            .entries
            .iter()
            .find_map(|k| k.spec_version.filter(|v| *v != run))
        {
            Some(v) => Err(format!(
                "baseline {} was judged by spec version {v}, this run by {run}: re-run the \
                 baseline with --spec-version {run}, or judge this run with --spec-version {v}",
                self.file.display()
            )),
            None => Ok(()),
        }
    }
}

/// Reads a baseline: JSON (a `findings.json` array) when the file starts with `[`, else TOML.
pub fn load(file: &Path) -> Result<Baseline, BaselineError> {
    let text = std::fs::read_to_string(file).map_err(|source| BaselineError::Io {
        file: file.to_path_buf(),
        source,
    })?;
    let entries = if text.trim_start().starts_with('[') && !text.trim_start().starts_with("[[") {
        from_findings_json(file, &text)?
    } else {
        let parsed: KnownFile = toml::from_str(&text).map_err(|e| BaselineError::Toml {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        for (i, k) in parsed.known.iter().enumerate() {
            let problem = if k.rule.trim().is_empty() {
                Some("`rule` is empty")
            } else if k.reason.trim().is_empty() {
                Some("`reason` is empty: say why the finding is accepted (an issue link, a decision)")
            } else if k.id.is_some() {
                Some("`id` is for findings.json baselines; name the `target` and `rule` instead")
            } else {
                None
            };
            if let Some(message) = problem {
                return Err(BaselineError::Entry {
                    file: file.to_path_buf(),
                    index: i + 1,
                    message: message.into(),
                });
            }
        }
        parsed.known
    };
    let warnings = entries
        .iter()
        .enumerate()
        .filter(|(_, k)| {
            let rule = k.rule.split(':').next().unwrap_or(&k.rule);
            !rules::RULES.iter().any(|r| r.id == rule)
        })
        .map(|(i, k)| {
            format!(
                "baseline {}, entry {}: ocidiff has no rule `{}`; the entry can never match",
                file.display(),
                i + 1,
                k.rule
            )
        })
        .collect();
    Ok(Baseline {
        file: file.to_path_buf(),
        entries,
        warnings,
    })
}

fn from_findings_json(file: &Path, text: &str) -> Result<Vec<Known>, BaselineError> {
    let err = |message: String| BaselineError::Json {
        file: file.to_path_buf(),
        message,
    };
    let values: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let field = |name: &str| {
                v.get(name)
                    .and_then(|x| x.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| err(format!("entry {}: no string field `{name}`", i + 1)))
            };
            let id = field("id")?;
            let class = serde_json::from_value(v["class"].clone())
                .map_err(|e| err(format!("entry {}: `class`: {e}", i + 1)))?;
            Ok(Known {
                reason: format!("in baseline {} (finding {id})", file.display()),
                id: Some(id),
                target: Some(field("target")?),
                rule: v
                    .get("cause")
                    .and_then(|x| x.as_str())
                    .map(str::to_owned)
                    .map_or_else(|| field("rule"), Ok)?,
                class: Some(class),
                spec_version: v
                    .get("spec_version")
                    .and_then(|x| x.as_str())
                    .map(crate::vocab::spec_version::SpecVersion::parse)
                    .transpose()
                    .map_err(|e| err(format!("entry {}: `spec_version`: {e}", i + 1)))?,
            })
        })
        .collect()
}

/// A finding as the comparison lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub id: String,
    pub target: String,
    pub class: Class,
    pub rule: String,
    pub summary: String,
    /// Why it is accepted (known findings only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The run's findings against the baseline (`baseline.json`).
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub new: Vec<Listed>,
    pub known: Vec<Listed>,
    pub no_longer_seen: Vec<Known>,
}

impl Comparison {
    /// New violations: the only findings that fail a run with a baseline.
    pub fn new_violations(&self) -> usize {
        self.new
            .iter()
            .filter(|l| l.class == Class::Violation)
            .count()
    }

    /// What it is for a finding id: "new" or "known".
    pub fn status_of(&self, id: &str) -> Option<&'static str> {
        if self.new.iter().any(|l| l.id == id) {
            Some("new")
        } else if self.known.iter().any(|l| l.id == id) {
            Some("known")
        } else {
            None
        }
    }

    /// The terminal summary.
    pub fn render(&self) -> String {
        let mut s = format!(
            "baseline {}: {} new ({} violations), {} known, {} no longer seen\n",
            self.baseline,
            self.new.len(),
            self.new_violations(),
            self.known.len(),
            self.no_longer_seen.len()
        );
        for l in &self.new {
            s.push_str(&format!(
                "  new    {} {} {} on {}: {}\n",
                l.id, l.class, l.rule, l.target, l.summary
            ));
        }
        for k in &self.no_longer_seen {
            s.push_str(&format!(
                "  gone   {} on {}{}\n",
                k.rule,
                k.target.as_deref().unwrap_or("any target"),
                k.id.as_ref()
                    .map(|i| format!(" (finding {i})"))
                    .unwrap_or_default()
            ));
        }
        s
    }
}

/// A run's exit code: 1 when it has violations (with a baseline: new ones), else 0.
pub fn exit_code(violations: usize, baseline: Option<&Comparison>) -> i32 {
    i32::from(baseline.map_or(violations, Comparison::new_violations) > 0)
}

/// Sorts the findings into new and known; lists the entries nothing matched.
pub fn compare(baseline: &Baseline, findings: &[Finding]) -> Comparison {
    let mut used = vec![false; baseline.entries.len()];
    let mut new = Vec::new();
    let mut known = Vec::new();
    for f in findings {
        let d = &f.divergence;
        let mut listed = Listed {
            id: f.id.clone(),
            target: d.target.clone(),
            class: d.class,
            rule: d.cause().key,
            summary: d.summary.clone(),
            reason: None,
        };
        let mut hit = None;
        for (i, k) in baseline.entries.iter().enumerate() {
            if k.matches(f) {
                used[i] = true;
                hit.get_or_insert(k);
            }
        }
        match hit {
            Some(k) => {
                listed.reason = Some(k.reason.clone());
                known.push(listed);
            }
            None => new.push(listed),
        }
    }
    Comparison {
        baseline: baseline.file.display().to_string(),
        new,
        known,
        no_longer_seen: baseline
            .entries
            .iter()
            .zip(used)
            .filter(|(_, u)| !u)
            .map(|(k, _)| k.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Divergence;
    use crate::ops::Sequence;

    fn finding(target: &str, rule: &str, class: Class, actual: &str) -> Finding {
        let d = Divergence {
            target: target.into(),
            op_index: 0,
            endpoint: "end-8a".into(),
            label: String::new(),
            field: "body".into(),
            class,
            rule: rule.into(),
            spec: String::new(),
            summary: format!("{rule} on {target}"),
            expected: String::new(),
            actual: actual.into(),
            reference: None,
            spec_version: Default::default(),
        };
        Finding::new(&d, &Sequence::default(), 1, 0, 0)
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn curated_entries_match_by_target_rule_and_class() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "known.toml",
            r#"
[[known]]
target = "distribution"
rule = "end-8a/order"
reason = "tags in insertion order, distribution#4151"

[[known]]
rule = "errors/code:UNKNOWN"
class = "violation"
reason = "accepted"

[[known]]
target = "distribution"
rule = "end-5/out-of-order-416"
reason = "fixed upstream"
"#,
        );
        let b = load(&file).unwrap();
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
        let findings = vec![
            finding("distribution", "end-8a/order", Class::Violation, ""),
            finding("zot", "end-8a/order", Class::Violation, ""),
            finding("zot", "errors/code", Class::Violation, "UNKNOWN"),
            finding("zot", "errors/code", Class::Violation, "BLOB_WHAT"),
            finding("zot", "diff/header", Class::Variation, "x"),
        ];
        let c = compare(&b, &findings);
        let ids = |v: &[Listed]| {
            v.iter()
                .map(|l| (l.target.clone(), l.rule.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&c.known),
            [
                ("distribution".to_string(), "end-8a/order".to_string()),
                ("zot".into(), "errors/code:UNKNOWN".into())
            ]
        );
        assert_eq!(ids(&c.new).len(), 3);
        assert_eq!(
            c.new_violations(),
            2,
            "the variation is new but does not fail"
        );
        assert_eq!(c.no_longer_seen.len(), 1);
        assert_eq!(c.no_longer_seen[0].rule, "end-5/out-of-order-416");
        assert_eq!(c.status_of(&findings[0].id), Some("known"));
        assert_eq!(c.status_of(&findings[1].id), Some("new"));
        assert!(c
            .render()
            .contains("3 new (2 violations), 2 known, 1 no longer seen"));
    }

    #[test]
    fn a_findings_json_baseline_matches_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let old = finding("distribution", "end-8a/order", Class::Violation, "");
        let gone = finding("distribution", "end-6/put-201", Class::Violation, "");
        let json = serde_json::json!([
            {"id": old.id, "class": "violation", "target": "distribution", "rule": "end-8a/order",
             "cause": "end-8a/order", "summary": "x"},
            {"id": gone.id, "class": "violation", "target": "distribution", "rule": "end-6/put-201",
             "summary": "y"},
        ]);
        let file = write(dir.path(), "findings.json", &json.to_string());
        let b = load(&file).unwrap();
        let now = finding("distribution", "end-8a/n-max", Class::Violation, "");
        let c = compare(&b, &[old.clone(), now.clone()]);
        assert_eq!(c.known.len(), 1);
        assert_eq!(c.known[0].id, old.id);
        assert_eq!(c.new[0].id, now.id);
        assert_eq!(c.no_longer_seen[0].id.as_deref(), Some(gone.id.as_str()));
        // An empty findings.json is a valid baseline: everything is new.
        let empty = write(dir.path(), "empty.json", "[]");
        assert_eq!(compare(&load(&empty).unwrap(), &[now]).new_violations(), 1);
    }

    #[test]
    fn bad_baselines_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "no-reason.toml",
                "[[known]]\nrule = \"end-8a/order\"\nreason = \"\"\n",
                "`reason` is empty",
            ),
            (
                "typo.toml",
                "[[known]]\nrul = \"end-8a/order\"\nreason = \"r\"\n",
                "unknown field",
            ),
            ("broken.json", "[{\"id\": 1}]", "no string field `id`"),
            ("garbage.toml", "[[known]\n", "not a known-issues file"),
        ];
        for (name, text, want) in cases {
            let file = write(dir.path(), name, text);
            let e = load(&file).unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
        let e = load(&dir.path().join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("reading baseline"), "{e}");
        // A rule ocidiff does not have is a warning: the entry loads but can never match.
        let file = write(
            dir.path(),
            "old.toml",
            "[[known]]\nrule = \"end-99/nope\"\nreason = \"r\"\n",
        );
        let b = load(&file).unwrap();
        assert_eq!(b.warnings.len(), 1);
        assert!(b.warnings[0].contains("no rule `end-99/nope`"));
    }
}
