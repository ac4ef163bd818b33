//! Writing findings: `findings.json` (a JSON array, rewritten atomically after every new finding),
//! `findings/<id>/` with `scenario.toml` (replayable with `ocidiff replay`), `repro.sh` (standalone
//! bash + curl) and `report.md`; plus the terminal progress bar and the end-of-run summary.

pub mod baseline;
pub mod conformance;
pub mod conformance_html;
pub mod fuzz_html;
pub mod junit;
pub mod probe;
pub mod repro;
pub mod results;

use crate::compare::Class;
use crate::scenario::{ExpectedDivergence, Meta, Scenario};
use crate::shrink::Finding;
use crate::vocab::content::Content;
use crate::vocab::fs::write_atomic;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Writes findings as they are found.
pub struct FindingsWriter {
    out: PathBuf,
    entries: Vec<serde_json::Value>,
    target_urls: BTreeMap<String, String>,
}

impl FindingsWriter {
    /// Creates `out_dir`, `out_dir/findings/` and an empty `findings.json`.
    pub fn new(out_dir: impl AsRef<Path>) -> anyhow::Result<FindingsWriter> {
        let out = out_dir.as_ref().to_path_buf();
        std::fs::create_dir_all(out.join("findings"))
            .with_context(|| format!("creating {}", out.join("findings").display()))?;
        let w = FindingsWriter {
            out,
            entries: Vec::new(),
            target_urls: BTreeMap::new(),
        };
        w.write_json()?;
        Ok(w)
    }

    /// Target URLs used as the default `REGISTRY` of each reproducer (credentials stripped).
    pub fn with_target_urls(mut self, urls: BTreeMap<String, String>) -> FindingsWriter {
        self.target_urls = urls;
        self
    }

    pub fn json_path(&self) -> PathBuf {
        self.out.join("findings.json")
    }

    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    /// Writes `findings/<id>/` and rewrites `findings.json`. Returns the finding's directory.
    pub fn add(&mut self, f: &Finding) -> anyhow::Result<PathBuf> {
        let rel = PathBuf::from("findings").join(&f.id);
        let dir = self.out.join(&rel);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let d = &f.divergence;

        let sc = Scenario {
            meta: Meta {
                title: format!("{} {} on {}: {}", d.class, d.rule, d.target, d.endpoint),
                description: d.summary.clone(),
                spec: vec![d.spec.clone()],
                seed: Some(f.case_seed),
                targets: vec![d.target.clone()],
            },
            content: f.ops.content.clone(),
            ops: f.ops.ops.clone(),
            concurrent: Vec::new(),
            expect: Vec::new(),
            divergence: Some(ExpectedDivergence {
                target: d.target.clone(),
                op_index: d.op_index,
                endpoint: d.endpoint.clone(),
                field: d.field.clone(),
                class: d.class.to_string(),
                rule: d.rule.clone(),
                summary: d.summary.clone(),
            }),
        };
        crate::scenario::write(&sc, dir.join("scenario.toml"))?;

        let url = self
            .target_urls
            .get(&d.target)
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:5000".to_string());
        let script = match Content::render(&f.ops.content) {
            Ok(content) => render_repro_sh(f, &content, &url, &dir)?,
            Err(e) => {
                format!("#!/usr/bin/env bash\necho 'cannot render content: {e}' >&2\nexit 2\n")
            }
        };
        write_atomic(&dir.join("repro.sh"), script.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(
                dir.join("repro.sh"),
                std::fs::Permissions::from_mode(0o755),
            );
        }
        write_atomic(&dir.join("report.md"), render_report_md(f).as_bytes())?;
        write_finding_json(&dir, f)?;

        let entry = serde_json::json!({
            "id": f.id,
            "class": d.class,
            "target": d.target,
            "endpoint": d.endpoint,
            "field": d.field,
            "rule": d.rule,
            "cause": d.cause().key,
            "spec": d.spec,
            "spec_version": d.spec_version,
            "spec_text": d.spec_version.text(),
            "next_spec": d.next_violation().map(|vr| serde_json::json!({
                "spec_version": vr.version,
                "class": vr.class,
                "spec": vr.spec,
            })),
            "summary": d.summary,
            "expected": d.expected,
            "actual": d.actual,
            "reference": d.reference,
            "op_index": d.op_index,
            "label": d.label,
            "ops": f.ops,
            "original_ops_len": f.original_ops_len,
            "minimal_ops_len": f.ops.ops.len(),
            "confirmed": f.confirmed,
            "isolated": f.isolated,
            "shrink_runs": f.shrink_runs,
            "shrink_skipped": f.shrink_skipped,
            "reproducer": rel.join("scenario.toml").to_string_lossy(),
            "repro_sh": rel.join("repro.sh").to_string_lossy(),
            "report": rel.join("report.md").to_string_lossy(),
            "seed": f.seed,
            "case_seed": f.case_seed,
            "first_seen_case": f.first_seen_case,
            "occurrences": f.occurrences,
            "seen_at": f.seen_at,
            "symptoms": f.symptoms,
            "state_cause": f.state_cause,
        });
        self.entries.retain(|e| e["id"] != entry["id"]);
        self.entries.push(entry);
        self.write_json()?;
        Ok(dir)
    }

    /// Rewrites what changes as a known finding is seen again (its counts, places and
    /// symptoms): its `findings.json` entry and `report.md`; the reproducer stays.
    pub fn update(&mut self, f: &Finding) -> anyhow::Result<()> {
        let Some(entry) = self.entries.iter_mut().find(|e| e["id"] == f.id.as_str()) else {
            self.add(f)?;
            return Ok(());
        };
        entry["occurrences"] = f.occurrences.into();
        entry["seen_at"] = serde_json::json!(f.seen_at);
        entry["symptoms"] = serde_json::json!(f.symptoms);
        entry["state_cause"] = serde_json::json!(f.state_cause);
        let dir = self.out.join("findings").join(&f.id);
        write_atomic(&dir.join("report.md"), render_report_md(f).as_bytes())?;
        write_finding_json(&dir, f)?;
        self.write_json()
    }

    /// Drops a finding that turned out to be a symptom of another: its entry and directory.
    pub fn remove(&mut self, id: &str) -> anyhow::Result<()> {
        self.entries.retain(|e| e["id"] != id);
        let dir = self.out.join("findings").join(id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        self.write_json()
    }

    /// Marks every entry of `findings.json` with its baseline status ("new" / "known").
    pub fn mark_baseline(&mut self, c: &baseline::Comparison) -> anyhow::Result<()> {
        for e in &mut self.entries {
            if let Some(status) = e["id"].as_str().and_then(|id| c.status_of(id)) {
                e["baseline"] = status.into();
            }
        }
        self.write_json()
    }

    fn write_json(&self) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(&self.entries)?;
        write_atomic(&self.json_path(), text.as_bytes())
    }
}

/// `findings/<id>/finding.json`: the whole finding (what `ocidiff merge` reads back).
fn write_finding_json(dir: &Path, f: &Finding) -> anyhow::Result<()> {
    write_atomic(&dir.join("finding.json"), &serde_json::to_vec(f)?)
}

/// A finding's standalone reproducer (see `repro`).
pub fn render_repro_sh(
    f: &Finding,
    content: &Content,
    default_url: &str,
    dir: &Path,
) -> anyhow::Result<String> {
    let d = &f.divergence;
    let comment = format!(
        "Finding {}: {} {} on target {:?} ({} {}), op #{} exchange {:?}.\n{}\nSpec ({}, --spec-version {}): {}",
        f.id,
        d.class,
        d.rule,
        d.target,
        d.endpoint,
        d.field,
        d.op_index,
        d.label,
        d.summary.replace('\n', " "),
        d.spec_version.text(),
        d.spec_version,
        d.spec.replace('\n', " ")
    );
    let diverging = format!("op{}:{}", d.op_index, d.label);
    let mut s = repro::render(
        &f.ops,
        content,
        default_url,
        &repro::ReproHead {
            comment: &comment,
            diverging: &diverging,
        },
        dir,
    )?;
    s.push_str(&probe::render_verdict(f));
    Ok(s)
}

// ------------------------------------------------------------------------------------------
// report.md
// ------------------------------------------------------------------------------------------

/// What the isolation check said (`Finding::isolated`), for reports; `None` when not checked.
pub fn isolation_note(f: &Finding) -> Option<String> {
    let target = &f.divergence.target;
    f.isolated.map(|alone| {
        if alone {
            format!("yes: shown on a fresh `{target}` and a fresh reference")
        } else {
            format!(
                "NO: not shown on a fresh `{target}`, even with the case's content pushed to \
                 another repository first; it depended on what other cases left on the target"
            )
        }
    })
}

/// The human-readable report of one finding.
pub fn render_report_md(f: &Finding) -> String {
    let d = &f.divergence;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {} — {} `{}` on `{}`\n",
        f.id, d.class, d.rule, d.target
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| class | **{}** |", d.class);
    let _ = writeln!(
        s,
        "| judged by | Distribution Spec {} (`--spec-version {}`) |",
        d.spec_version.text(),
        d.spec_version
    );
    if let Some(vr) = d.next_violation() {
        let _ = writeln!(
            s,
            "| under {} | **violation** (ready for the next spec): {} |",
            vr.version,
            vr.spec.replace('|', "\\|")
        );
    }
    let _ = writeln!(s, "| target | `{}` |", d.target);
    let _ = writeln!(s, "| endpoint | `{}` |", d.endpoint);
    let _ = writeln!(s, "| field | `{}` |", d.field);
    let _ = writeln!(s, "| rule | `{}` |", d.rule);
    let _ = writeln!(s, "| op / exchange | #{} `{}` |", d.op_index, d.label);
    let _ = writeln!(s, "| expected | `{}` |", d.expected.replace('|', "\\|"));
    let _ = writeln!(s, "| actual | `{}` |", d.actual.replace('|', "\\|"));
    if let Some(r) = &d.reference {
        let _ = writeln!(s, "| reference | `{}` |", r.replace('|', "\\|"));
    }
    let _ = writeln!(
        s,
        "| seed / case | {} / case {} (case seed {}) |",
        f.seed, f.first_seen_case, f.case_seed
    );
    let _ = writeln!(
        s,
        "| shrunk | {} → {} ops ({} runs{}) |",
        f.original_ops_len,
        f.ops.ops.len(),
        f.shrink_runs,
        if f.confirmed {
            ", confirmed"
        } else {
            ", NOT re-confirmed"
        }
    );
    if let Some(line) = isolation_note(f) {
        let _ = writeln!(s, "| reproduces alone | {line} |");
    }
    if f.occurrences > 1 {
        let _ = writeln!(
            s,
            "| seen | {} times: {} |",
            f.occurrences,
            f.seen_at.join(", ")
        );
    }
    let _ = writeln!(s, "\n{}\n", d.summary);
    if let Some(c) = &f.state_cause {
        let _ = writeln!(
            s,
            "**Caused by** op {} of the sequence, `{}`: right after it, {}\n",
            c.op_index + 1,
            c.op,
            c.effect
        );
    }
    if !f.symptoms.is_empty() {
        let _ = writeln!(
            s,
            "## Symptoms\n\nDivergences that follow from this finding:\n"
        );
        for sym in &f.symptoms {
            let _ = writeln!(
                s,
                "- `{}` on `{}`, {} times, e.g. {}",
                sym.rule, sym.endpoint, sym.count, sym.example
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Spec ({})\n\n> {}\n", d.spec_version.text(), d.spec);
    let _ = writeln!(s, "## Minimal sequence\n");
    let _ = writeln!(s, "```toml");
    let sc = Scenario::from_sequence(&f.ops);
    let _ = writeln!(
        s,
        "{}",
        crate::scenario::to_string(&sc).unwrap_or_else(|e| e.to_string())
    );
    let _ = writeln!(s, "```\n");
    let _ = writeln!(
        s,
        "Replay: `ocidiff replay scenario.toml`; standalone: `REGISTRY=http://host:port ./repro.sh`.\n"
    );
    if let Some(v) = observations(f) {
        let _ = writeln!(s, "## Op #{} observations\n", d.op_index);
        if let Some(diff) = &v.diff {
            let _ = writeln!(
                s,
                "### Diff (`{}` → `{}`)\n\n```diff",
                v.reference, d.target
            );
            let _ = write!(s, "{diff}");
            let _ = writeln!(s, "```\n");
            let _ = writeln!(
                s,
                "### `{}`\n\n```json\n{}\n```\n",
                v.reference, v.reference_json
            );
        }
        let _ = writeln!(s, "### `{}`\n\n```json\n{}\n```", d.target, v.target_json);
    }
    s
}

/// The diverging op's exchanges on the target and on the reference, as JSON, with the
/// unified diff between them (none when the target is the reference).
pub struct OpObservations {
    pub reference: String,
    pub reference_json: String,
    pub target_json: String,
    pub diff: Option<String>,
}

/// The observations of `f`'s diverging op, when the finding holds its run.
pub fn observations(f: &Finding) -> Option<OpObservations> {
    let d = &f.divergence;
    let o = f.outcome.as_ref()?;
    let ti = o.targets.iter().position(|t| *t == d.target)?;
    let op = o.ops.get(d.op_index)?;
    let tgt = op.per_target.get(ti).cloned().unwrap_or_default();
    let refx = op.per_target.first().cloned().unwrap_or_default();
    let reference = o
        .targets
        .first()
        .cloned()
        .unwrap_or_else(|| "reference".into());
    let target_json = serde_json::to_string_pretty(&tgt).unwrap_or_default();
    let reference_json = serde_json::to_string_pretty(&refx).unwrap_or_default();
    let diff = (ti != 0).then(|| {
        similar::TextDiff::from_lines(&reference_json, &target_json)
            .unified_diff()
            .context_radius(4)
            .header(&reference, &d.target)
            .to_string()
    });
    Some(OpObservations {
        reference,
        reference_json,
        target_json,
        diff,
    })
}

// ------------------------------------------------------------------------------------------
// Terminal
// ------------------------------------------------------------------------------------------

/// Progress bar on stderr (cases, ops/s, findings); a no-op when disabled.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    start: std::time::Instant,
    ops: u64,
    findings: usize,
}

impl Progress {
    pub fn new(total_cases: u64, enabled: bool) -> Progress {
        let bar = enabled.then(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(total_cases),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} cases {msg}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b
        });
        Progress {
            bar,
            start: std::time::Instant::now(),
            ops: 0,
            findings: 0,
        }
    }

    pub fn case_done(&mut self, ops: u64) {
        self.ops += ops;
        self.refresh();
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    pub fn set_findings(&mut self, n: usize) {
        self.findings = n;
        self.refresh();
    }

    pub fn message(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.println(msg);
        }
    }

    fn refresh(&self) {
        if let Some(b) = &self.bar {
            let secs = self.start.elapsed().as_secs_f64().max(0.001);
            b.set_message(format!(
                "| {:.0} ops/s | {} findings",
                self.ops as f64 / secs,
                self.findings
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The spec versions the findings were judged by, as a line for reports ("judged by the
/// Distribution Spec v1.1.1 (--spec-version 1.1)"); several when targets claim different ones.
pub fn judged_by(findings: &[Finding], run: crate::vocab::spec_version::SpecVersion) -> String {
    let mut versions: Vec<_> = findings.iter().map(|f| f.divergence.spec_version).collect();
    versions.push(run);
    versions.sort();
    versions.dedup();
    let names: Vec<String> = versions
        .iter()
        .map(|v| format!("{} (--spec-version {v})", v.text()))
        .collect();
    format!("judged by the Distribution Spec {}", names.join(", "))
}

/// The findings that the next spec version would make violations ("ready for the next
/// spec"): not counted in the exit code; each with the next version's sentence.
pub fn next_spec_section(findings: &[Finding]) -> String {
    let mut s = String::new();
    let next: Vec<(&Finding, crate::compare::VersionedRule)> = findings
        .iter()
        .filter_map(|f| f.divergence.next_violation().map(|vr| (f, vr)))
        .collect();
    if next.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nready for the next spec: {} finding(s) would be violations under {} (not counted in the exit code)",
        next.len(),
        next[0].1.version
    );
    for (f, vr) in next {
        let d = &f.divergence;
        let _ = writeln!(
            s,
            "  {} {:<16} {:<34} {} now, violation under {}: \"{}\"",
            f.id,
            d.target,
            d.rule,
            d.class,
            vr.version,
            vr.spec.chars().take(110).collect::<String>()
        );
    }
    s
}

/// The end-of-run table: per target, violations / variations / unsupported; one line per finding.
pub fn summary_table(targets: &[String], findings: &[Finding]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:>10} {:>10} {:>11} {:>9}",
        "target", "violations", "variations", "unsupported", "symptoms"
    );
    for t in targets {
        let mine = || findings.iter().filter(|f| f.divergence.target == *t);
        let count = |c: Class| mine().filter(|f| f.divergence.class == c).count();
        let _ = writeln!(
            s,
            "{:<24} {:>10} {:>10} {:>11} {:>9}",
            t,
            count(Class::Violation),
            count(Class::Variation),
            count(Class::Unsupported),
            mine().map(|f| f.symptom_count()).sum::<u32>()
        );
    }
    if !findings.is_empty() {
        let _ = writeln!(s);
    }
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        (a.divergence.class, &a.divergence.target, &a.id).cmp(&(
            b.divergence.class,
            &b.divergence.target,
            &b.id,
        ))
    });
    for f in sorted {
        let d = &f.divergence;
        let seen = if f.occurrences > 1 {
            format!(" (seen {}x: {})", f.occurrences, f.seen_at.join(", "))
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "{} {:<11} {:<16} {:<8} {:<34} {}{seen}",
            f.id,
            d.class.to_string(),
            d.target,
            d.endpoint,
            d.rule,
            d.summary.chars().take(100).collect::<String>()
        );
        if let Some(c) = &f.state_cause {
            let _ = writeln!(s, "    caused by `{}`: right after it, {}", c.op, c.effect);
        }
        for sym in &f.symptoms {
            let _ = writeln!(
                s,
                "    symptom {:<8} {:<34} {}x, e.g. {}",
                sym.endpoint,
                sym.rule,
                sym.count,
                sym.example.chars().take(80).collect::<String>()
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Divergence;
    use crate::ops::Sequence;

    fn finding(id: &str, seq: Sequence) -> Finding {
        Finding {
            id: id.into(),
            divergence: Divergence {
                class: Class::Violation,
                target: "other".into(),
                op_index: 1,
                label: "get".into(),
                endpoint: "end-2".into(),
                field: "status".into(),
                rule: "end-2/get-200".into(),
                spec: "A GET request ... MUST be `200 OK`.".into(),
                summary: "GET end-2 answered 500".into(),
                expected: "200".into(),
                actual: "500".into(),
                reference: Some("200".into()),
                spec_version: Default::default(),
            },
            original_ops_len: 10,
            ops: seq,
            seed: 7,
            first_seen_case: 3,
            case_seed: 10,
            shrink_runs: 4,
            shrink_skipped: 2,
            confirmed: true,
            isolated: None,
            occurrences: 1,
            seen_at: vec!["end-2 status".into()],
            symptoms: Vec::new(),
            outcome: None,
            state_cause: None,
        }
    }

    #[test]
    fn writes_valid_json_after_each_finding() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = FindingsWriter::new(dir.path().join("out")).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(w.json_path()).unwrap()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 0);
        let seq = crate::generate::generate_sequence(3, &crate::generate::GenConfig::default());
        for (k, id) in ["aaaaaaaaaaaa", "bbbbbbbbbbbb"].iter().enumerate() {
            let f = finding(id, seq.clone());
            let fdir = w.add(&f).unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(w.json_path()).unwrap()).unwrap();
            let arr = v.as_array().unwrap();
            assert_eq!(arr.len(), k + 1);
            let e = &arr[k];
            for key in [
                "id",
                "class",
                "target",
                "endpoint",
                "rule",
                "spec",
                "summary",
                "ops",
                "reproducer",
                "seed",
                "first_seen_case",
            ] {
                assert!(!e[key].is_null(), "missing {key}");
            }
            assert_eq!(e["class"], "violation");
            // The reproducer replays: it parses back to the same sequence.
            let sc = crate::scenario::read(fdir.join("scenario.toml")).unwrap();
            assert_eq!(sc.sequence(), seq);
            assert_eq!(sc.divergence.unwrap().rule, "end-2/get-200");
            let sh = std::fs::read_to_string(fdir.join("repro.sh")).unwrap();
            assert!(sh.starts_with("#!/usr/bin/env bash"));
            assert!(sh.contains("REGISTRY_USER"));
            let md = std::fs::read_to_string(fdir.join("report.md")).unwrap();
            assert!(md.contains("end-2/get-200") && md.contains("MUST be `200 OK`"));
        }
        let table = summary_table(&["reference".into(), "other".into()], &[finding("x", seq)]);
        assert!(table.contains("other") && table.contains("end-2/get-200"));
    }

    #[test]
    fn repro_script_is_valid_bash() {
        if std::process::Command::new("bash")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for seed in 0..8u64 {
            let seq =
                crate::generate::generate_sequence(seed, &crate::generate::GenConfig::default());
            let content = Content::render(&seq.content).unwrap();
            let f = finding("cccccccccccc", seq);
            let sh =
                render_repro_sh(&f, &content, "http://u:secret@127.0.0.1:1", dir.path()).unwrap();
            assert!(!sh.contains("u:secret@"), "credentials must be redacted");
            let p = dir.path().join("r.sh");
            std::fs::write(&p, &sh).unwrap();
            let out = std::process::Command::new("bash")
                .arg("-n")
                .arg(&p)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "seed {seed}: {}\n{sh}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
