//! `index.html` of `ocidiff fuzz`: one self-contained page (the conformance page's inline CSS and
//! script, no external assets). A card per target (violations, variations, unsupported,
//! symptoms), then per target its findings by class and cause, each a `<details>` with the spec
//! sentence it rests on, where it showed, its symptoms, the minimal sequence, the target vs
//! reference diff of the diverging op and the one command that reproduces it. Opening
//! `index.html#finding-<id>` opens that finding.

use super::conformance_html::{esc, slug, SCRIPT, STYLE};
use crate::compare::{rule, Class};
use crate::shrink::Finding;
use crate::vocab::fs::write_atomic;
use std::path::Path;

/// What the page says about the run besides its findings; also `run.json` of the output
/// directory (what `ocidiff merge` reads back).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub seed: u64,
    /// (name, URL with credentials stripped), the reference first.
    pub targets: Vec<(String, String)>,
    pub cases_run: u64,
    pub ops_run: u64,
    pub seconds: f64,
    /// Still running (the page is rewritten as findings come in).
    pub running: bool,
    /// `--shard I/N` of the run (`None`: all cases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<(u32, u32)>,
    /// The runs a merged page combines (`ocidiff merge`): their run ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<String>,
    /// The spec version the run judged by (`--spec-version`).
    #[serde(default)]
    pub spec_version: crate::vocab::spec_version::SpecVersion,
    /// Per target: throttling and upload sessions (opened, closed, cancelled, left open).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stats: Vec<crate::execute::TargetRunStats>,
}

pub fn finding_anchor(id: &str) -> String {
    format!("finding-{id}")
}

const EXTRA_STYLE: &str = r#"
details.finding{border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:0 10px}
details.finding>summary{padding:8px 0;cursor:pointer}
details.finding.violation{border-left:4px solid var(--fail)}
details.finding.variation{border-left:4px solid var(--warn)}
details.finding.unsupported{border-left:4px solid var(--skip)}
.badge.violation{background:var(--fail)}.badge.variation{background:var(--warn)}.badge.unsupported{background:var(--skip)}
.cmd{font-family:ui-monospace,monospace;background:var(--soft);padding:6px 8px;border-radius:4px;display:block;white-space:pre-wrap}
.diff .add{color:var(--pass)}.diff .del{color:var(--fail)}
"#;

fn class_rank(c: Class) -> u8 {
    match c {
        Class::Violation => 0,
        Class::Variation => 1,
        Class::Unsupported => 2,
    }
}

/// The diff with added / removed lines marked.
fn diff_html(diff: &str) -> String {
    let mut h = String::from("<pre class=\"diff\">");
    for line in diff.lines() {
        let cls = match line.chars().next() {
            Some('+') if !line.starts_with("+++") => "add",
            Some('-') if !line.starts_with("---") => "del",
            _ => "",
        };
        if cls.is_empty() {
            h.push_str(&esc(line));
        } else {
            h.push_str(&format!("<span class=\"{cls}\">{}</span>", esc(line)));
        }
        h.push('\n');
    }
    h.push_str("</pre>");
    h
}

fn finding_html(f: &Finding, url: &str) -> String {
    let d = &f.divergence;
    let r = rule(&d.rule);
    let mut h = format!(
        "<details class=\"finding {class}\" id=\"{anchor}\" data-rule=\"{rule}\"><summary><span class=\"badge {class}\">{class}</span><code>{rule}</code> <span class=\"ep\">{ep} {field}</span> &mdash; {summary}{seen}</summary>\n",
        class = d.class,
        anchor = finding_anchor(&f.id),
        rule = esc(&d.rule),
        ep = esc(&d.endpoint),
        field = esc(&d.field),
        summary = esc(&d.summary),
        seen = if f.occurrences > 1 {
            format!(" <span class=\"ep\">(seen {}&times;)</span>", f.occurrences)
        } else {
            String::new()
        },
    );
    h.push_str(&format!(
        "<blockquote><span class=\"lvl\">{}</span>{}</blockquote>\n",
        r.level,
        esc(&d.spec)
    ));
    h.push_str(&format!(
        "<p>expected <code>{}</code>, {} answered <code>{}</code>{}</p>\n",
        esc(&d.expected),
        esc(&d.target),
        esc(&d.actual),
        d.reference
            .as_ref()
            .map(|x| format!(", the reference <code>{}</code>", esc(x)))
            .unwrap_or_default()
    ));
    h.push_str(&format!(
        "<p>Reproduce (exit 1: reproduces, 0: fixed, 2: cannot run):</p><code class=\"cmd\">REGISTRY={} bash findings/{id}/repro.sh</code><code class=\"cmd\">ocidiff replay findings/{id}/scenario.toml --target {}={}</code>\n",
        esc(url),
        esc(&d.target),
        esc(url),
        id = esc(&f.id),
    ));
    if f.seen_at.len() > 1 || f.occurrences > 1 {
        h.push_str(&format!(
            "<p>Seen {} times, at: {}</p>\n",
            f.occurrences,
            esc(&f.seen_at.join(", "))
        ));
    }
    if let Some(c) = &f.state_cause {
        h.push_str(&format!(
            "<p class=\"cause\">Caused by op {} of the sequence, <code>{}</code>: right after \
             it, {}</p>\n",
            c.op_index + 1,
            esc(&c.op),
            esc(&c.effect)
        ));
    }
    if !f.symptoms.is_empty() {
        h.push_str(
            "<p>Symptoms (divergences that follow from this finding):</p><ul class=\"symptoms\">\n",
        );
        for s in &f.symptoms {
            h.push_str(&format!(
                "<li><code>{}</code> <span class=\"ep\">{}</span> {}&times;, e.g. {}</li>\n",
                esc(&s.rule),
                esc(&s.endpoint),
                s.count,
                esc(&s.example)
            ));
        }
        h.push_str("</ul>\n");
    }
    h.push_str(&format!(
        "<p>Minimal sequence: {} ops (from {}{}), op #{} exchange <code>{}</code> diverges.</p>\n",
        f.ops.ops.len(),
        f.original_ops_len,
        if f.shrink_runs > 0 {
            format!(", {} shrink runs", f.shrink_runs)
        } else {
            ", not shrunk".into()
        },
        d.op_index,
        esc(&d.label)
    ));
    if let Some(line) = super::isolation_note(f) {
        h.push_str(&format!(
            "<p>Reproduces alone: {}</p>\n",
            esc(&line.replace('`', ""))
        ));
    }
    let toml = crate::scenario::to_string(&crate::scenario::Scenario::from_sequence(&f.ops))
        .unwrap_or_else(|e| e.to_string());
    h.push_str(&format!(
        "<details class=\"sequence\"{}><summary>scenario.toml</summary><pre>{}</pre></details>\n",
        if f.ops.ops.len() <= 8 { " open" } else { "" },
        esc(&toml)
    ));
    if let Some(v) = super::observations(f) {
        if let Some(diff) = &v.diff {
            h.push_str(&format!(
                "<p>Op #{} on <code>{}</code> vs <code>{}</code>:</p>{}\n",
                d.op_index,
                esc(&d.target),
                esc(&v.reference),
                diff_html(diff)
            ));
        } else {
            h.push_str(&format!("<pre>{}</pre>\n", esc(&v.target_json)));
        }
    }
    h.push_str(&format!(
        "<p><a href=\"findings/{id}/report.md\">report.md</a> &middot; <a href=\"findings/{id}/repro.sh\">repro.sh</a> &middot; <a href=\"findings/{id}/scenario.toml\">scenario.toml</a></p>\n</details>\n",
        id = esc(&f.id)
    ));
    h
}

/// The page.
pub fn render(run: &RunInfo, findings: &[Finding]) -> String {
    let mut h = String::from("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ocidiff fuzz run</title>\n");
    h.push_str(&format!(
        "<style>{STYLE}{EXTRA_STYLE}</style></head>\n<body>\n"
    ));
    h.push_str(&format!(
        "<h1>ocidiff fuzz run <code>{}</code></h1><p class=\"meta\" id=\"spec-version\">{}</p><p class=\"meta\">seed {} &middot; {} cases, {} ops in {:.0} s{} &middot; findings are causes: one per bug, symptoms listed under it</p>\n",
        esc(&run.run_id),
        esc(&crate::report::judged_by(findings, run.spec_version)),
        run.seed,
        run.cases_run,
        run.ops_run,
        run.seconds,
        if run.running { " &middot; still running" } else { "" }
    ));
    if let Some((i, n)) = run.shard {
        h.push_str(&format!(
            "<p class=\"meta\" id=\"shard\">shard {i}/{n}: the cases <i>k</i> with <i>k</i> mod {n} = {i}</p>\n"
        ));
    }
    if !run.merged.is_empty() {
        h.push_str(&format!(
            "<p class=\"meta\" id=\"merged\">merged from {} runs: {}</p>\n",
            run.merged.len(),
            esc(&run.merged.join(", "))
        ));
    }
    if !run.stats.is_empty() {
        h.push_str("<ul class=\"meta\" id=\"target-stats\">");
        for st in &run.stats {
            h.push_str(&format!("<li>{}</li>", esc(&st.line())));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">\n");
    for (i, (name, url)) in run.targets.iter().enumerate() {
        let mine: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.divergence.target == *name)
            .collect();
        let n = |c: Class| mine.iter().filter(|f| f.divergence.class == c).count();
        let symptoms: u32 = mine.iter().map(|f| f.symptom_count()).sum();
        let v = n(Class::Violation);
        h.push_str(&format!(
            "<div class=\"card{}\" data-target=\"{}\"><h3>{}{}</h3><div class=\"url\">{}</div><div class=\"verdict {}\">{}</div><div><span class=\"n fail\">violations {v}</span><span class=\"n warn\">variations {}</span><span class=\"n skip\">unsupported {}</span><span class=\"n info\">symptoms {symptoms}</span></div></div>\n",
            if v > 0 { " failed" } else { "" },
            esc(name),
            esc(name),
            if i == 0 { " <span class=\"ep\">(oracle)</span>" } else { "" },
            esc(url),
            if v > 0 { "fail" } else { "pass" },
            if v > 0 {
                format!("{v} violation{} of a MUST", if v == 1 { "" } else { "s" })
            } else {
                "no violation found".to_string()
            },
            n(Class::Variation),
            n(Class::Unsupported),
        ));
    }
    h.push_str("</div></section>\n");
    for (name, url) in &run.targets {
        let mut mine: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.divergence.target == *name)
            .collect();
        if mine.is_empty() {
            continue;
        }
        mine.sort_by(|a, b| {
            (class_rank(a.divergence.class), &a.divergence.rule, &a.id).cmp(&(
                class_rank(b.divergence.class),
                &b.divergence.rule,
                &b.id,
            ))
        });
        h.push_str(&format!(
            "<section class=\"target\" id=\"target-{}\"><h2>{}</h2>\n",
            slug(name),
            esc(name)
        ));
        for f in mine {
            h.push_str(&finding_html(f, url));
        }
        h.push_str("</section>\n");
    }
    if findings.is_empty() {
        h.push_str("<p id=\"no-findings\">No divergence: every target agreed with the model and the reference.</p>\n");
    }
    h.push_str(&format!("<script>{SCRIPT}</script>\n</body></html>\n"));
    h
}

/// Writes `out/index.html`.
pub fn write(out: &Path, run: &RunInfo, findings: &[Finding]) -> anyhow::Result<()> {
    write_atomic(&out.join("index.html"), render(run, findings).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lines_are_marked_and_escaped() {
        let h = diff_html("--- a\n+++ b\n-<x>\n+y\n same");
        assert!(h.contains("<span class=\"del\">-&lt;x&gt;</span>"));
        assert!(h.contains("<span class=\"add\">+y</span>"));
        assert!(!h.contains("<span class=\"del\">--- a"));
    }

    #[test]
    fn an_empty_run_says_so() {
        let run = RunInfo {
            run_id: "r1".into(),
            targets: vec![("reference".into(), "http://127.0.0.1:1".into())],
            ..RunInfo::default()
        };
        let h = render(&run, &[]);
        assert!(h.contains("id=\"no-findings\""));
        assert!(h.contains("no violation found"));
        assert!(!h.contains("<link "));
    }
}
