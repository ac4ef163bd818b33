//! `ocidiff merge OUT DIR...`: one findings set and one page from several `ocidiff fuzz` output
//! directories (the shards `--shard i/N` of one seed, or separate runs). The CI system is the
//! distributed engine: each job fuzzes a shard, a last job merges.
//!
//! Each input is read back from what `ocidiff fuzz` writes: `run.json` (the run) and, for every
//! entry of `findings.json`, `findings/<id>/finding.json` (the whole finding). Findings are
//! merged in the order the cases first showed them (shards of one seed share case numbers), by
//! the same rules a single run applies: one finding per cause (occurrences, places and symptoms
//! summed; the earliest case's finding is the example, as in an unsharded run), symptoms under
//! their cause. OUT then holds what a single run writes: `findings.json`, `findings/<id>/`
//! (scenario, `repro.sh`, report), `index.html`, `junit.xml`, `run.json`, and `baseline.json`
//! with `--baseline`.

use crate::compare::Class;
use crate::report::baseline::{self, Baseline, Comparison};
use crate::report::fuzz_html::{self, RunInfo};
use crate::report::FindingsWriter;
use crate::shrink::{Finding, FindingSet};
use crate::vocab::fs::write_atomic;
use anyhow::{bail, Context as _};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One `ocidiff fuzz` output directory, read back.
#[derive(Debug)]
pub struct RunOutput {
    pub dir: PathBuf,
    pub run: RunInfo,
    pub findings: Vec<Finding>,
}

/// Reads `dir/run.json` and the findings `dir/findings.json` lists.
pub fn load_run(dir: &Path) -> anyhow::Result<RunOutput> {
    let run_file = dir.join("run.json");
    let text = std::fs::read(&run_file).with_context(|| {
        format!(
            "{}: no run.json here — not an `ocidiff fuzz` output directory",
            dir.display()
        )
    })?;
    let run: RunInfo = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a run description", run_file.display()))?;
    let list_file = dir.join("findings.json");
    let list: Vec<serde_json::Value> = serde_json::from_slice(
        &std::fs::read(&list_file).with_context(|| format!("reading {}", list_file.display()))?,
    )
    .with_context(|| format!("{}: not a findings.json array", list_file.display()))?;
    let mut findings = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let Some(id) = e["id"].as_str() else {
            bail!("{}, entry {i}: no \"id\"", list_file.display());
        };
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("{}, entry {i}: bad id {id:?}", list_file.display());
        }
        let file = dir.join("findings").join(id).join("finding.json");
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let f: Finding = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a finding", file.display()))?;
        if f.id != id {
            bail!(
                "{}: holds finding {} where findings.json lists {id}",
                file.display(),
                f.id
            );
        }
        findings.push(f);
    }
    Ok(RunOutput {
        dir: dir.to_path_buf(),
        run,
        findings,
    })
}

/// The merged findings of `runs` (see the module doc for the rules).
pub fn merge_findings(runs: &[RunOutput]) -> Vec<Finding> {
    let mut all: Vec<&Finding> = runs.iter().flat_map(|r| &r.findings).collect();
    all.sort_by(|a, b| (a.first_seen_case, &a.id).cmp(&(b.first_seen_case, &b.id)));
    let mut set = FindingSet::new();
    for f in all {
        set.merge(f.clone());
    }
    set.into_vec()
}

/// The merged run: targets in first-seen order, cases and ops summed, the longest run's time
/// (shards run side by side), the seed when all share one.
pub fn merge_runs(runs: &[RunOutput]) -> RunInfo {
    let mut targets: Vec<(String, String)> = Vec::new();
    for r in runs {
        for t in &r.run.targets {
            if !targets.iter().any(|(n, _)| *n == t.0) {
                targets.push(t.clone());
            }
        }
    }
    let seeds: Vec<u64> = runs.iter().map(|r| r.run.seed).collect();
    let seed = if seeds.windows(2).all(|w| w[0] == w[1]) {
        seeds.first().copied().unwrap_or(0)
    } else {
        0
    };
    let merged: Vec<String> = runs.iter().map(|r| r.run.run_id.clone()).collect();
    use sha2::Digest as _;
    let id = hex::encode(sha2::Sha256::digest(merged.join(",").as_bytes()));
    RunInfo {
        run_id: format!("merged-{}", &id[..12]),
        seed,
        targets,
        cases_run: runs.iter().map(|r| r.run.cases_run).sum(),
        ops_run: runs.iter().map(|r| r.run.ops_run).sum(),
        seconds: runs.iter().map(|r| r.run.seconds).fold(0.0, f64::max),
        running: false,
        shard: None,
        merged,
        spec_version: runs.first().map(|r| r.run.spec_version).unwrap_or_default(),
        stats: merge_stats(runs),
    }
}

/// Throttling and session figures summed per target over the runs.
fn merge_stats(runs: &[RunOutput]) -> Vec<crate::execute::TargetRunStats> {
    let mut out: Vec<crate::execute::TargetRunStats> = Vec::new();
    for s in runs.iter().flat_map(|r| &r.run.stats) {
        match out.iter_mut().find(|o| o.target == s.target) {
            Some(o) => {
                o.throttled += s.throttled;
                o.throttled_seconds += s.throttled_seconds;
                o.throttled_gave_up += s.throttled_gave_up;
                o.sessions_opened += s.sessions_opened;
                o.sessions_closed += s.sessions_closed;
                o.sessions_cancelled += s.sessions_cancelled;
                o.sessions_left_open += s.sessions_left_open;
                if o.cancel_refused.is_none() {
                    o.cancel_refused = s.cancel_refused.clone();
                }
            }
            None => out.push(s.clone()),
        }
    }
    out
}

/// What `ocidiff merge` wrote.
#[derive(Debug)]
pub struct MergeSummary {
    pub run: RunInfo,
    pub findings: Vec<Finding>,
    pub violations: usize,
    pub variations: usize,
    pub unsupported: usize,
    pub baseline: Option<Comparison>,
    /// Input shards `i/N` missing for the N the inputs name (a merge of incomplete shards).
    pub missing_shards: Vec<String>,
}

impl MergeSummary {
    /// As for a fuzz run: 1 when there are violations (with a baseline: new ones), else 0.
    pub fn exit_code(&self) -> i32 {
        crate::report::baseline::exit_code(self.violations, self.baseline.as_ref())
    }
}

/// Merges `inputs` into `out` (which must not be one of them).
pub fn merge(
    out: &Path,
    inputs: &[PathBuf],
    baseline: Option<&Baseline>,
    version: Option<crate::vocab::spec_version::SpecVersion>,
) -> anyhow::Result<MergeSummary> {
    if inputs.is_empty() {
        bail!("nothing to merge: name at least one output directory");
    }
    let out_abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    for i in inputs {
        if std::path::absolute(i).is_ok_and(|a| a == out_abs) {
            bail!(
                "{}: the merge output cannot be one of its inputs",
                out.display()
            );
        }
    }
    let runs = inputs
        .iter()
        .map(|d| load_run(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // One verdict per merge: inputs judged by different spec versions are not one run.
    if let Some(first) = runs.first() {
        let want = version.unwrap_or(first.run.spec_version);
        if let Some(other) = runs.iter().find(|r| r.run.spec_version != want) {
            bail!(
                "{} was judged by spec version {}, {} by {want}: merge runs of one version \
                 (re-run with --spec-version {want})",
                other.dir.display(),
                other.run.spec_version,
                if version.is_some() {
                    "--spec-version asks for".to_string()
                } else {
                    first.dir.display().to_string()
                }
            );
        }
    }
    let run = merge_runs(&runs);
    if let Some(b) = baseline {
        b.check_version(run.spec_version)
            .map_err(anyhow::Error::msg)?;
    }
    let findings = merge_findings(&runs);

    // A merge of shards names the shards it lacks: their cases are not in the result.
    let mut missing_shards = Vec::new();
    let counts: std::collections::BTreeSet<u32> = runs
        .iter()
        .filter_map(|r| r.run.shard.map(|s| s.1))
        .collect();
    for n in counts {
        for i in 0..n {
            if !runs.iter().any(|r| r.run.shard == Some((i, n))) {
                missing_shards.push(format!("{i}/{n}"));
            }
        }
    }

    let urls: BTreeMap<String, String> = run.targets.iter().cloned().collect();
    let mut writer = FindingsWriter::new(out)?.with_target_urls(urls);
    for f in &findings {
        writer.add(f)?;
    }
    let comparison = match baseline {
        Some(b) => {
            let c = baseline::compare(b, &findings);
            writer.mark_baseline(&c)?;
            write_atomic(
                &out.join("baseline.json"),
                serde_json::to_string_pretty(&c)?.as_bytes(),
            )?;
            Some(c)
        }
        None => None,
    };
    write_atomic(&out.join("run.json"), &serde_json::to_vec_pretty(&run)?)?;
    fuzz_html::write(out, &run, &findings)?;
    write_atomic(
        &out.join("junit.xml"),
        crate::report::junit::fuzz(&run, &findings, comparison.as_ref())?.as_bytes(),
    )?;
    let count = |c: Class| findings.iter().filter(|f| f.divergence.class == c).count();
    Ok(MergeSummary {
        violations: count(Class::Violation),
        variations: count(Class::Variation),
        unsupported: count(Class::Unsupported),
        run,
        findings,
        baseline: comparison,
        missing_shards,
    })
}
