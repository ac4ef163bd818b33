//! JUnit XML, written with `quick-junit` (the crate cargo-nextest writes its reports with), for
//! CI systems that show test results: `ocidiff conformance` (a suite per target x workflow, a
//! case per check) and `ocidiff fuzz` / `ocidiff merge` (a suite per target, a case per finding).

use super::baseline::Comparison;
use super::fuzz_html::RunInfo;
use super::results::{exchange_lines, ConformanceResults};
use crate::compare::Class;
use crate::scenario::checks::Outcome;
use crate::shrink::Finding;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

fn failure(message: String, ty: &str, description: String) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
    s.set_message(message)
        .set_type(ty)
        .set_description(description);
    s
}

fn skipped(message: String) -> TestCaseStatus {
    let mut s = TestCaseStatus::skipped();
    s.set_message(message);
    s
}

fn to_xml(report: &Report) -> anyhow::Result<String> {
    report
        .to_string()
        .map_err(|e| anyhow::anyhow!("writing JUnit XML: {e}"))
}

/// `ocidiff conformance`: one `<testsuite>` per target x workflow; `fail` -> `<failure>`
/// (message: rule and spec sentence), `skip` -> `<skipped>`, `warn` passes with the note in
/// `<system-out>`; `info` (allowed variations: observations, not checks) is left out, as in the
/// counts. A workflow that could not run is an `<error>`.
pub fn conformance(r: &ConformanceResults) -> anyhow::Result<String> {
    let mut report = Report::new("ocidiff conformance");
    for cell in &r.results {
        let suite_name = format!("{}.{}", cell.target, cell.workflow);
        let mut suite = TestSuite::new(suite_name.as_str());
        let version = r
            .targets
            .iter()
            .find(|t| t.name == cell.target)
            .map_or(r.spec_version, |t| t.spec_version);
        suite.add_property(quick_junit::Property::new("spec-version", version.name()));
        suite.add_property(quick_junit::Property::new("spec-text", version.text()));
        if let Some(e) = &cell.error {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(e.as_str());
            let mut tc = TestCase::new("run", st);
            tc.set_classname(suite_name.as_str());
            suite.add_test_case(tc);
        }
        for c in cell.checks.iter().filter(|c| c.outcome != Outcome::Info) {
            let rule = c.rule.clone().unwrap_or_else(|| c.endpoint.clone());
            let details = format!(
                "{}\nendpoint: {}\nspec: {}\nop #{}: {}\n{}{}",
                c.message,
                c.endpoint,
                c.spec,
                c.op,
                c.op_text,
                exchange_lines(c),
                if c.oracle.is_empty() {
                    String::new()
                } else {
                    format!("\noracle: {}", c.oracle.join("; "))
                }
            );
            let status = match c.outcome {
                Outcome::Fail => failure(
                    format!("{rule}: {} — {}", c.spec, c.message),
                    &c.level.to_string(),
                    details.clone(),
                ),
                Outcome::Skip => skipped(c.message.clone()),
                Outcome::Warn | Outcome::Pass | Outcome::Info => TestCaseStatus::success(),
            };
            let name = format!("[{}] {}", c.level.to_string().to_uppercase(), c.name);
            let mut tc = TestCase::new(name.as_str(), status);
            tc.set_classname(suite_name.as_str());
            if c.outcome == Outcome::Warn {
                tc.set_system_out(format!("WARN: {details}"));
            }
            suite.add_test_case(tc);
        }
        report.add_test_suite(suite);
    }
    to_xml(&report)
}

/// `ocidiff fuzz` and `ocidiff merge`: one `<testsuite>` per target with a `run` case (the
/// target was fuzzed: cases and ops in `<system-out>`) and a case per finding. A violation is a
/// `<failure>` (message: rule and spec sentence; text: summary, where it showed, the
/// reproducer); with a baseline, a known violation is `<skipped>` with the baseline's reason;
/// variations and unsupported features pass, with the finding in `<system-out>`.
pub fn fuzz(
    run: &RunInfo,
    findings: &[Finding],
    baseline: Option<&Comparison>,
) -> anyhow::Result<String> {
    let mut report = Report::new("ocidiff fuzz");
    let mut names: Vec<&str> = run.targets.iter().map(|(n, _)| n.as_str()).collect();
    for f in findings {
        if !names.contains(&f.divergence.target.as_str()) {
            names.push(&f.divergence.target);
        }
    }
    for target in names {
        let mut suite = TestSuite::new(target);
        let version = findings
            .iter()
            .find(|f| f.divergence.target == target)
            .map_or(run.spec_version, |f| f.divergence.spec_version);
        suite.add_property(quick_junit::Property::new("spec-version", version.name()));
        suite.add_property(quick_junit::Property::new("spec-text", version.text()));
        let mut tc = TestCase::new("run", TestCaseStatus::success());
        tc.set_classname(target);
        tc.set_system_out(format!(
            "run {} seed {}: {} cases, {} ops in {:.1}s",
            run.run_id, run.seed, run.cases_run, run.ops_run, run.seconds
        ));
        suite.add_test_case(tc);
        let mut mine: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.divergence.target == target)
            .collect();
        mine.sort_by(|a, b| (a.divergence.class, &a.id).cmp(&(b.divergence.class, &b.id)));
        for f in mine {
            let d = &f.divergence;
            let text = format!(
                "{}\nspec: {}\nrule: {} ({})\nseen {} time(s) at: {}\n{} symptom(s)\nminimal sequence: {} op(s) (from {})\nreproduce: ocidiff replay findings/{}/scenario.toml (or findings/{}/repro.sh)",
                d.summary,
                d.spec,
                d.rule,
                d.class,
                f.occurrences,
                f.seen_at.join(", "),
                f.symptom_count(),
                f.ops.ops.len(),
                f.original_ops_len,
                f.id,
                f.id
            );
            let known = baseline.and_then(|c| c.known.iter().find(|l| l.id == f.id));
            let status = match (d.class, known) {
                (Class::Violation, None) => failure(
                    format!("{}: {} — {}", d.rule, d.spec, d.summary),
                    "violation",
                    text.clone(),
                ),
                (Class::Violation, Some(k)) => skipped(format!(
                    "known (baseline): {}",
                    k.reason.as_deref().unwrap_or("listed in the baseline")
                )),
                _ => TestCaseStatus::success(),
            };
            let name = format!("[{}] {} ({})", d.class, d.cause().key, f.id);
            let mut tc = TestCase::new(name.as_str(), status);
            tc.set_classname(format!("{target}.{}", d.endpoint));
            if d.class != Class::Violation || known.is_some() {
                tc.set_system_out(text);
            }
            suite.add_test_case(tc);
        }
        report.add_test_suite(suite);
    }
    to_xml(&report)
}
