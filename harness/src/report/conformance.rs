//! The conformance report: `results.json` (the types here), `junit.xml` and the `index.html`
//! matrix (`conformance_html`).

pub use super::results::{CellResult, ConformanceResults, TargetInfo, WorkflowInfo};
use crate::compare::{Class, Divergence};
use crate::scenario::checks::{CheckResult, Counts, Outcome};
use crate::vocab::fs::write_atomic;
use anyhow::Context as _;
use std::path::Path;

/// Writes `index.html`, `junit.xml` and `results.json` into `out`.
pub fn write_outputs(r: &ConformanceResults, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = serde_json::to_vec_pretty(r)?;
    write_atomic(&out.join("results.json"), &json)?;
    write_atomic(&out.join("junit.xml"), junit_xml(r).as_bytes())?;
    write_atomic(
        &out.join("index.html"),
        super::conformance_html::render(r).as_bytes(),
    )?;
    // Reports are meant to be published: world-readable like any generated file.
    #[cfg(unix)]
    for f in ["results.json", "junit.xml", "index.html"] {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(out.join(f), std::fs::Permissions::from_mode(0o644));
    }
    Ok(())
}

/// XML text / attribute escaping (control characters other than tab / newline are dropped).
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' => o.push(c),
            c if (c as u32) < 0x20 => {}
            c => o.push(c),
        }
    }
    o
}

/// One line per exchange: `label METHOD url -> status`.
pub fn exchange_lines(c: &CheckResult) -> String {
    c.exchanges
        .iter()
        .map(|x| {
            format!(
                "{} {} {} -> {}{}",
                x.label,
                x.request.method,
                x.request.url,
                x.observation.status,
                x.observation
                    .transport_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// JUnit XML: one `<testsuite>` per target x workflow; `fail` -> `<failure>` (message: rule and
/// spec sentence), `skip` -> `<skipped>`, `warn` passes with the note in `<system-out>`; `info`
/// (allowed variations) is left out.
pub fn junit_xml(r: &ConformanceResults) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut total = Counts::default();
    for c in &r.results {
        total.merge(&c.counts);
    }
    // Variations (`info`) are observations, not checks: they stay in the HTML and JSON only.
    let tests = |c: &Counts| c.pass + c.fail + c.warn + c.skip;
    o.push_str(&format!(
        "<testsuites name=\"ocidiff conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
        tests(&total),
        total.fail,
        total.skip
    ));
    for cell in &r.results {
        let errors = usize::from(cell.error.is_some());
        o.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\" skipped=\"{}\">\n",
            xml_escape(&format!("{}.{}", cell.target, cell.workflow)),
            tests(&cell.counts) + errors,
            cell.counts.fail,
            cell.counts.skip
        ));
        if let Some(e) = &cell.error {
            o.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"run\"><error message=\"{}\"/></testcase>\n",
                xml_escape(&format!("{}.{}", cell.target, cell.workflow)),
                xml_escape(e)
            ));
        }
        for c in cell.checks.iter().filter(|c| c.outcome != Outcome::Info) {
            let classname = xml_escape(&format!("{}.{}", cell.target, cell.workflow));
            o.push_str(&format!(
                "    <testcase classname=\"{classname}\" name=\"{}\">",
                xml_escape(&format!(
                    "[{}] {}",
                    c.level.to_string().to_uppercase(),
                    c.name
                ))
            ));
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
            match c.outcome {
                Outcome::Fail => o.push_str(&format!(
                    "<failure message=\"{}\" type=\"{}\">{}</failure>",
                    xml_escape(&format!("{rule}: {} — {}", c.spec, c.message)),
                    xml_escape(&c.level.to_string()),
                    xml_escape(&details)
                )),
                Outcome::Skip => o.push_str(&format!(
                    "<skipped message=\"{}\"/>",
                    xml_escape(&c.message)
                )),
                Outcome::Warn => o.push_str(&format!(
                    "<system-out>{}</system-out>",
                    xml_escape(&format!(
                        "{}: {details}",
                        c.outcome.to_string().to_uppercase()
                    ))
                )),
                Outcome::Pass | Outcome::Info => {}
            }
            o.push_str("</testcase>\n");
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

/// Counts of the oracle's divergences by class, for summaries.
pub fn divergence_counts(divs: &[Divergence], target: &str) -> (usize, usize, usize) {
    let n = |c: Class| {
        divs.iter()
            .filter(|d| d.target == target && d.class == c)
            .count()
    };
    (
        n(Class::Violation),
        n(Class::Variation),
        n(Class::Unsupported),
    )
}
