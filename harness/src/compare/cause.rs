//! One bug, one finding: what makes divergences the same finding (`Cause`), and which rules'
//! divergences are consequences of another finding of the same target (`symptom_of`).
//!
//! A cause is the target, the class and the rule: the same wrong behaviour seen on several
//! exchanges, ops or endpoints is one finding that counts where it showed. Two rules say more
//! than their id: `errors/code` (one finding per unknown code) and `diff/header` (one per
//! header). Once a target is shown to misorder tags or to ignore `n`, the paging checks that
//! follow from it are symptoms of that finding, not findings of their own; a referrers filter
//! that finds nothing because descriptors lack `artifactType` is a symptom of that.

use super::divergence::Divergence;
use super::rules::Class;
use serde::{Deserialize, Serialize};

/// What makes divergences one finding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cause {
    pub target: String,
    pub class: Class,
    /// The rule id, refined for `errors/code` (`errors/code:<CODE>`) and `diff/header`
    /// (`diff/header:<name>`).
    pub key: String,
}

impl Cause {
    /// The rule this cause is about.
    pub fn rule(&self) -> &str {
        self.key.split(':').next().unwrap_or(&self.key)
    }
}

impl Divergence {
    /// The finding this divergence belongs to.
    pub fn cause(&self) -> Cause {
        let key = match self.rule.as_str() {
            "errors/code" => format!("errors/code:{}", self.actual),
            "diff/header" => format!(
                "diff/header:{}",
                self.field.strip_prefix("header:").unwrap_or(&self.field)
            ),
            // A 5xx or a dropped connection is the registry failing, whatever answer the rule
            // expected: one crash finding per endpoint (the same crash reached by a valid and
            // an out-of-order PUT, answered 500 or by a reset, is one bug), its rules and
            // answers listed where it showed. A request ocidiff did not send is no crash.
            r if self.field == "status" && crashed(&self.actual) && !r.starts_with("race/") => {
                format!("{SERVER_ERROR}:{}", self.endpoint)
            }
            r => r.to_string(),
        };
        Cause {
            target: self.target.clone(),
            class: self.class,
            key,
        }
    }
}

/// The key of the causes of crashes (`server-error:<endpoint>`): 5xx answers and dropped
/// connections.
pub const SERVER_ERROR: &str = "server-error";

/// A status field value that shows the registry failing: a 5xx, or no response (reset,
/// closed, timed out; not a request ocidiff skipped).
fn crashed(status: &str) -> bool {
    is_server_error(status)
        || (status.starts_with("no response") && !status.starts_with("no response (skipped"))
}

fn is_server_error(status: &str) -> bool {
    status.len() == 3 && status.starts_with('5') && status.bytes().all(|b| b.is_ascii_digit())
}

/// (symptom rule, endpoint it applies on or `*`, the rules it follows from, the likelier
/// first: a symptom goes under the first of them the target has a finding of).
const SYMPTOMS: &[(&str, &str, &[&str])] = &[
    ("end-8b/n-zero", "*", &["end-8b/n-max"]),
    (
        "end-8b/n-fewer",
        "*",
        &["end-8a/order", "end-8b/n-max", "end-8b/n-more-with-link"],
    ),
    // `last` answered wrong: most often the handler that ignores `n` ignores `last` too.
    (
        "end-8b/content",
        "*",
        &[
            "end-8b/n-max",
            "end-8b/n-more-with-link",
            "end-8b/n-fewer",
            "end-8a/order",
        ],
    ),
    (
        "end-8b/pagination",
        "*",
        &[
            "end-8b/n-max",
            "end-8b/n-more-with-link",
            "end-8b/n-fewer",
            "end-8b/content",
            "end-8a/order",
        ],
    ),
    ("end-12a/missing", "end-12b", &["end-12a/artifact-type"]),
    (
        "end-12b/filter-not-applied",
        "end-12b",
        &["end-12a/artifact-type"],
    ),
];

/// The rules a divergence of `rule` on `endpoint` follows from, when it is a symptom.
pub fn symptom_of(rule: &str, endpoint: &str) -> &'static [&'static str] {
    SYMPTOMS
        .iter()
        .find(|(r, ep, _)| *r == rule && (*ep == "*" || *ep == endpoint))
        .map(|(_, _, roots)| *roots)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_and_symptoms() {
        let d = Divergence::sample;
        // The same code on two endpoints: one cause; another code: another.
        assert_eq!(
            d("errors/code", "end-2", "body", "UNKNOWN").cause(),
            d("errors/code", "end-7a", "body", "UNKNOWN").cause()
        );
        assert_ne!(
            d("errors/code", "end-2", "body", "UNKNOWN").cause(),
            d("errors/code", "end-2", "body", "OOPS").cause()
        );
        assert_eq!(
            d("diff/location", "end-4a", "header:location", "x").cause(),
            d("diff/location", "end-6", "header:location-form", "y").cause()
        );
        assert_ne!(
            d("diff/header", "end-2", "header:range", "").cause(),
            d("diff/header", "end-2", "header:oci-subject", "").cause()
        );
        // A 5xx on one endpoint is one cause whatever the rule expected; another status or
        // endpoint is another.
        let crash = |rule: &str, ep: &str, status: &str| d(rule, ep, "status", status).cause();
        assert_eq!(
            crash("end-6/put-201", "end-6", "500"),
            crash("end-6/out-of-order-416", "end-6", "500")
        );
        assert_eq!(crash("end-6/put-201", "end-6", "500").rule(), SERVER_ERROR);
        // Another 5xx or a reset on the same endpoint: the same crash.
        assert_eq!(
            crash("end-6/put-201", "end-6", "500"),
            crash("end-6/put-201", "end-6", "503")
        );
        assert_eq!(
            crash("end-6/put-201", "end-6", "500"),
            crash("http/transport", "end-6", "no response (connection reset)")
        );
        // A request not sent is no crash.
        assert_ne!(
            crash(
                "http/transport",
                "end-6",
                "no response (skipped: throttled)"
            )
            .rule(),
            SERVER_ERROR
        );
        assert_ne!(
            crash("end-6/put-201", "end-6", "500"),
            crash("end-5/range", "end-5", "500")
        );
        assert_eq!(crash("end-6/put-201", "end-6", "400").key, "end-6/put-201");
        assert!(symptom_of("end-8b/n-fewer", "end-8b").contains(&"end-8b/n-max"));
        assert!(symptom_of("end-12a/missing", "end-12a").is_empty());
        assert!(!symptom_of("end-12a/missing", "end-12b").is_empty());
        assert!(symptom_of("end-8a/order", "end-8a").is_empty());
    }
}
