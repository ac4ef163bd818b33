//! The conformance workflows in `scenarios/`: they parse, cite the spec, cover every MUST rule of
//! the oracle, the reference registry passes every check, and `ocidiff run` behaves (exit codes,
//! malformed files reported with file:line:column).

use ocidiff::compare::{Class, RULES};
use ocidiff::drivers::case::{with_reference_first, Fleet};
use ocidiff::drivers::conformance::{builtin_workflows, load, run_conformance, run_scenario};
use ocidiff::report::results::ConformanceResults;
use ocidiff::scenario::checks::Outcome;
use ocidiff::scenario::{from_str, ScenarioError};
use ocidiff::targets::TargetSpec;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The built-in workflows (only `only`, when given) on the reference and on a second reference
/// registry configured by `config`, named `name`.
async fn conformance_vs(
    name: &str,
    config: reference_registry::Config,
    only: Option<&str>,
) -> ConformanceResults {
    let wf: Vec<_> = builtin_workflows()
        .unwrap()
        .into_iter()
        .filter(|w| only.is_none_or(|id| w.id == id))
        .collect();
    run_conformance(
        vec![
            reference(),
            (name.into(), TargetSpec::Reference(Box::new(config))),
        ],
        &wf,
        ocidiff::compare::SpecVersion::V1_1Dev,
    )
    .await
    .unwrap()
}

fn reference() -> (String, TargetSpec) {
    ("reference".into(), TargetSpec::Reference(Box::default()))
}

#[test]
fn workflow_files_parse_and_match_the_builtin_copies() {
    let from_disk = load(&root().join("scenarios")).unwrap_or_else(|e| panic!("{e:?}"));
    let ids: BTreeSet<String> = from_disk.iter().map(|w| w.id.clone()).collect();
    for id in ["pull", "push", "content-discovery", "content-management"] {
        assert!(ids.contains(id), "scenarios/{id}.toml is missing");
    }
    let builtin = builtin_workflows().unwrap();
    assert_eq!(builtin.len(), 4);
    for b in &builtin {
        let disk = from_disk.iter().find(|w| w.id == b.id).unwrap();
        assert_eq!(
            disk.scenario, b.scenario,
            "{} differs from the built-in copy",
            b.id
        );
    }
}

#[test]
fn every_check_is_named_and_cited_and_every_must_rule_is_covered() {
    let mut used = BTreeSet::new();
    for w in builtin_workflows().unwrap() {
        assert!(!w.scenario.meta.title.is_empty(), "{}: no title", w.id);
        assert!(!w.scenario.expect.is_empty(), "{}: no checks", w.id);
        for e in &w.scenario.expect {
            assert!(!e.name.is_empty(), "{}: a check without a name", w.id);
            let rule = e.rule.as_deref().map(ocidiff::compare::rule);
            let spec = e.spec.clone().or(rule.map(|r| r.spec.to_string()));
            assert!(
                spec.is_some_and(|s| !s.is_empty()),
                "{}: check {:?} cites no spec sentence",
                w.id,
                e.name
            );
            assert!(
                e.endpoint.is_some() || rule.is_some(),
                "{}: check {:?} names no endpoint",
                w.id,
                e.name
            );
            if let Some(r) = &e.rule {
                used.insert(r.clone());
            }
        }
    }
    // Every MUST rule a registry can break has a named check (transport errors are generic).
    let missing: Vec<&str> = RULES
        .iter()
        // Rules of every answer (endpoint "any": error bodies, Warning) are the oracle's, which
        // `ocidiff conformance` runs on every exchange of every workflow.
        .filter(|r| r.class == Class::Violation && r.endpoint != "any")
        // Races are the linearizability oracle's (`ocidiff race`, proven by tests/race.rs):
        // a workflow runs one client.
        .filter(|r| !r.id.starts_with("race/"))
        .map(|r| r.id)
        .filter(|id| !used.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "MUST rules without a check: {missing:?}"
    );
}

/// The workflows crossed with the data kinds: at least as many named checks per target as the
/// official suite's 860, every check named and cited, no rule id unknown, and the README's
/// table of checks per workflow and API is the one these workflows give.
#[test]
fn data_kinds_cover_every_api_and_the_readme_table_is_current() {
    let mut all = builtin_workflows().unwrap();
    let kinds = ocidiff::drivers::data_kinds::workflows();
    assert!(kinds.len() >= 17);
    for w in &kinds {
        let names: BTreeSet<&str> = w.scenario.expect.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names.len(),
            w.scenario.expect.len(),
            "{}: check names repeat",
            w.id
        );
        for e in &w.scenario.expect {
            let rule = e
                .rule
                .as_deref()
                .expect("every generated check names its rule");
            assert!(
                RULES.iter().any(|r| r.id == rule),
                "{}: {}: unknown rule {rule}",
                w.id,
                e.name
            );
            for r in &e.requires {
                assert!(
                    names.contains(r.as_str()),
                    "{}: {} requires {r:?}, no such check",
                    w.id,
                    e.name
                );
            }
        }
        // Each kind is pushed, pulled, listed and deleted.
        let table = ocidiff::drivers::data_kinds::coverage_table(std::slice::from_ref(w));
        let row = table.lines().nth(2).unwrap().to_string();
        let cells: Vec<usize> = row
            .split('|')
            .filter_map(|c| c.trim().parse().ok())
            .collect();
        assert!(
            cells[1..5].iter().all(|n| *n > 0),
            "{}: an API without checks: {row}",
            w.id
        );
    }
    all.extend(kinds);
    let table = ocidiff::drivers::data_kinds::coverage_table(&all);
    let total: usize = all.iter().map(|w| w.scenario.expect.len()).sum();
    assert!(total >= 860, "{total} named checks per target");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(&table),
        "README.md's table of checks is stale; it should read:\n{table}"
    );
}

#[test]
fn the_suite_exercises_what_the_official_suite_misses() {
    let all: Vec<_> = builtin_workflows().unwrap();
    let text: String = all
        .iter()
        .map(|w| ocidiff::scenario::to_string(&w.scenario).unwrap())
        .collect();
    for needle in [
        "list_tags_paged",                                  // n + following Link to the end
        "chunks = 3",                                       // several chunks per upload
        "out-of-order",                                     // 416
        "range = [",                                        // Range on blobs
        "sha512",                                           // sha512 blobs and manifests
        "artifact_type = \"application/vnd.example.sbom\"", // referrers filtering
        "oci-filters-applied",
        "[[concurrent]]", // concurrent pushes to one repository
    ] {
        assert!(text.contains(needle), "no scenario uses {needle:?}");
    }
}

/// The reference registry passes every check of every workflow under every spec version: no
/// failure, no warning, no violation; the only skips are paths it never takes. The checks that
/// depend on the version appear only where it defines them: referrers from 1.1 on, the final
/// chunk's 416 and `?tag=` under 1.1+dev only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_passes_every_check() {
    use ocidiff::compare::SpecVersion;
    for v in SpecVersion::ALL {
        let rules = reference_passes_every_check_under(v).await;
        let has = |prefix: &str| rules.iter().any(|r| r.starts_with(prefix));
        println!("{v}: {} rules checked", rules.len());
        assert_eq!(
            has("end-12a/"),
            v != SpecVersion::V1_0,
            "{v}: referrers checks"
        );
        assert_eq!(
            has("end-6/out-of-order-416"),
            v == SpecVersion::V1_1Dev,
            "{v}: final chunk order"
        );
        assert_eq!(
            has("end-7b/oci-tag"),
            v == SpecVersion::V1_1Dev,
            "{v}: ?tag="
        );
        assert!(has("end-3/digest") && has("end-2/get-200"), "{v}");
    }
}

/// The rules the checks cited; panics on any check the reference does not pass.
async fn reference_passes_every_check_under(v: ocidiff::compare::SpecVersion) -> BTreeSet<String> {
    let mut wf = builtin_workflows().unwrap();
    wf.extend(ocidiff::drivers::data_kinds::workflows());
    let r = run_conformance(vec![reference()], &wf, v).await.unwrap();
    assert_eq!(r.spec_version, v);
    assert!(r.spec.contains(v.text()), "{}", r.spec);
    assert_eq!(r.targets.len(), 1);
    assert_eq!(r.results.len(), wf.len());
    let mut bad = Vec::new();
    for cell in &r.results {
        assert!(cell.error.is_none(), "{:?}", cell.error);
        for c in &cell.checks {
            let ok = match c.outcome {
                Outcome::Pass => true,
                // The reference takes the other allowed path: it supports single POST, rejects
                // wrong digests and invalid manifests (no fallback or verification step to
                // check), and accepts manifests with missing references (no rejection to check).
                Outcome::Skip => {
                    c.message.contains("the op took another path") || c.name.contains("if rejected")
                }
                _ => false,
            };
            if !ok {
                bad.push(format!(
                    "{} / {}: {} {}: {}",
                    cell.workflow, c.name, c.outcome, c.source, c.message
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{v}: {bad:#?}");
    assert!(!r.any_failed());
    let total = r.target_counts("reference");
    assert!(total.pass >= 780, "{v}: {total:?}");
    r.results
        .iter()
        .flat_map(|c| &c.checks)
        .filter_map(|c| c.rule.clone())
        .collect()
}

/// A reference with a fault fails the checks that cite the broken rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_registry_fails_with_citations() {
    let faulty = reference_registry::Config {
        faults: reference_registry::Faults {
            tags_unsorted: true,
            range_ignored: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let r = conformance_vs("faulty", faulty, None).await;
    assert!(!r.target_failed("reference"));
    assert!(r.target_failed("faulty"));
    let cd = r.cell("faulty", "content-discovery").unwrap();
    let order = cd
        .checks
        .iter()
        .find(|c| c.name == "list tags: every tag, in lexical order")
        .unwrap();
    assert_eq!(order.outcome, Outcome::Fail, "{order:#?}");
    assert!(order.spec.contains("lexical"), "{}", order.spec);
    assert_eq!(order.rule.as_deref(), Some("end-8a/order"));
    // Range is a SHOULD: a warning, not a failure.
    let pull = r.cell("faulty", "pull").unwrap();
    let range = pull
        .checks
        .iter()
        .find(|c| c.name.starts_with("Range bytes=0-99"))
        .unwrap();
    assert_eq!(range.outcome, Outcome::Warn, "{range:#?}");
}

/// The faults the official suite catches and the fuzzer alone did not: a final chunk out of
/// order accepted, a malformed `Link`. `ocidiff conformance` fails each with its rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_catches_final_chunk_order_and_malformed_link() {
    for (fault, workflow, rule) in [
        (
            "final_chunk_order_ignored",
            "push",
            "end-6/out-of-order-416",
        ),
        ("link_malformed", "content-discovery", "end-8b/link-format"),
    ] {
        let faulty = reference_registry::Config {
            faults: reference_registry::Faults::only(fault).unwrap(),
            ..Default::default()
        };
        let r = conformance_vs("faulty", faulty, Some(workflow)).await;
        assert!(!r.target_failed("reference"), "{fault}");
        let cell = r.cell("faulty", workflow).unwrap();
        let failed: Vec<_> = cell
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .collect();
        assert!(
            failed.iter().any(|c| c.rule.as_deref() == Some(rule)),
            "{fault}: no failing {rule} check: {failed:#?}"
        );
    }
}

/// Delete declined (405): skip (unsupported), and the checks depending on it skip too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_deletes_are_skipped_not_failed() {
    let no_delete = reference_registry::Config {
        delete_enabled: false,
        ..Default::default()
    };
    let r = conformance_vs("nodelete", no_delete, Some("content-management")).await;
    let cell = r.cell("nodelete", "content-management").unwrap();
    assert_eq!(cell.counts.fail, 0, "{:#?}", cell.checks);
    let del = cell
        .checks
        .iter()
        .find(|c| c.name == "delete a manifest by digest: 202")
        .unwrap();
    assert_eq!(del.outcome, Outcome::Skip);
    assert!(del.message.contains("unsupported"), "{}", del.message);
    let after = cell
        .checks
        .iter()
        .find(|c| c.name == "deleted manifest: 404 by digest")
        .unwrap();
    assert_eq!(after.outcome, Outcome::Skip);
    assert!(cell.counts.skip >= 8, "{:?}", cell.counts);
}

/// A registry that pages its referrers (spec-allowed: a `Link` when the list does not fit one
/// response) passes content discovery: the pages are followed and judged as one listing. With
/// a referrers bug on top, the same checks fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_referrers_are_followed() {
    let mut paged = reference_registry::Config::default();
    paged.quirks.enable("referrers_paged").unwrap();
    let hits = paged.quirks.hits.clone();
    let r = conformance_vs("paged", paged.clone(), Some("content-discovery")).await;
    let cell = r.cell("paged", "content-discovery").unwrap();
    assert_eq!(cell.counts.fail, 0, "{:#?}", cell.checks);
    assert!(hits.get("referrers_paged") > 0, "no listing was paged");
    let every = cell
        .checks
        .iter()
        .find(|c| c.name == "list referrers: every referrer (2 images, 1 index)")
        .unwrap();
    assert_eq!(every.outcome, Outcome::Pass);
    assert!(
        every.exchanges.len() >= 3,
        "the three referrers come one per page: {:?}",
        every.exchanges.iter().map(|x| &x.label).collect::<Vec<_>>()
    );

    let mut buggy = paged;
    buggy.faults = reference_registry::Faults::only("referrers_drop_artifact_type").unwrap();
    let r = conformance_vs("buggy", buggy, Some("content-discovery")).await;
    let cell = r.cell("buggy", "content-discovery").unwrap();
    let failed: Vec<&str> = cell
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .filter_map(|c| c.rule.as_deref())
        .collect();
    assert!(failed.contains(&"end-12a/artifact-type"), "{failed:?}");
}

/// Concurrent groups run at once and are checked like any op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_groups_run_and_are_checked() {
    let sc = ocidiff::scenario::read(root().join("corpora/regressions/concurrent-tag-pushes.toml"))
        .unwrap();
    assert_eq!(sc.concurrent.len(), 1);
    let targets = with_reference_first(vec![reference()]).unwrap();
    let fleet = Fleet::launch(&targets, ocidiff::compare::SpecVersion::V1_1Dev)
        .await
        .unwrap();
    let r = run_scenario(&fleet.executor, &sc, "ocidiffconcurrenttest")
        .await
        .unwrap();
    fleet.shutdown().await;
    assert_eq!(r.outcome.ops.len(), sc.ops.len());
    for (i, op) in r.outcome.ops.iter().enumerate() {
        assert_eq!(op.per_target.len(), 1, "op {i}");
        assert!(!op.per_target[0].is_empty(), "op {i} has no exchange");
    }
    assert!(r.divergences.is_empty(), "{:#?}", r.divergences);
    assert!(
        r.checks[0].iter().all(|c| c.outcome == Outcome::Pass),
        "{:#?}",
        r.checks
    );
}

fn parse(text: &str) -> Result<ocidiff::scenario::Scenario, ScenarioError> {
    from_str(text, Path::new("bad.toml"))
}

fn err_of(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_files_get_file_line_column() {
    let op = "[[ops]]\nop = \"check_api\"\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{op}\n[[expect]]\nop = 0\nrule = \"end-99/nope\"\n"),
            "bad.toml:4:1:",
            "unknown rule",
        ),
        (
            format!("{op}\n[[expect]]\nop = 0\nmatches = {{ location = \"(\" }}\n"),
            "bad.toml:4:1:",
            "invalid regular expression",
        ),
        (
            format!("{op}\n[[expect]]\nop = 0\nrequires = [\"later\"]\n"),
            "bad.toml:4:1:",
            "not the name of an earlier check",
        ),
        (
            format!("{op}\n[[expect]]\nop = 0\nname = \"a\"\n\n[[expect]]\nop = 0\nname = \"a\"\n"),
            "bad.toml:8:1:",
            "duplicate check name",
        ),
        (
            format!("{op}\n[[expect]]\nop = 0\nlevel = \"sometimes\"\n"),
            "bad.toml:6:9:",
            "unknown variant",
        ),
        (
            format!("{op}\n[[expect]]\nop = 0\nheaders = {{ x = \"{{blob:3}}\" }}\n"),
            "bad.toml:4:1:",
            "blob 3 does not exist",
        ),
        (
            format!("{op}{op}\n[[concurrent]]\nops = [0, 2]\n"),
            "bad.toml:6:1:",
            "does not exist",
        ),
        (
            "[content]\nblobs = [{ size = 1, seed = 1 }]\n\n[[ops]]\nop = \"start_upload\"\nrepo = 0\nsession = 0\nblob = 0\n\n[[ops]]\nop = \"check_api\"\n\n[[concurrent]]\nops = [0, 1]\n".to_string(),
            "bad.toml:13:1:",
            "upload session",
        ),
        (
            format!("{op}{op}{op}\n[[ops]]\nop = \"head_blob\"\nrepo = 0\nblob = 7\n"),
            "bad.toml:8:1:",
            "blob 7 does not exist",
        ),
        ("[[ops]]\nop = \"check_api\"\nextra = = 1\n".into(), "bad.toml:3:", ""),
    ];
    for (text, at, what) in cases {
        let e = err_of(&text);
        assert!(e.starts_with(at), "expected {at} in {e:?} for\n{text}");
        assert!(e.contains(what), "expected {what:?} in {e:?}");
    }
}

#[test]
fn run_exit_codes() {
    let bin = env!("CARGO_BIN_EXE_ocidiff");
    let dir = tempfile::tempdir().unwrap();
    // Malformed: 2, with file:line:column on stderr.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[ops]]\nop = \"frobnicate\"\n").unwrap();
    let out = Command::new(bin)
        .args(["run", bad.to_str().unwrap(), "--target", "reference"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:2:6:"), "{stderr}");
    // A passing scenario: 0.
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[ops]]\nop = \"check_api\"\n[[expect]]\nop = 0\nname = \"v2\"\nrule = \"end-1/200\"\nstatus = 200\n",
    )
    .unwrap();
    let out = Command::new(bin)
        .args(["run", good.to_str().unwrap(), "--target", "reference"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("1 pass, 0 fail"), "{stdout}");
    // A failed MUST check: 1; a failed SHOULD check alone: 0 with a warning.
    let must = dir.path().join("must.toml");
    std::fs::write(
        &must,
        "[[ops]]\nop = \"check_api\"\n[[expect]]\nop = 0\nname = \"wrong\"\nstatus = 418\n",
    )
    .unwrap();
    let out = Command::new(bin)
        .args(["run", must.to_str().unwrap(), "--target", "reference"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL MUST   wrong"), "{stdout}");
    std::fs::write(
        &must,
        "[[ops]]\nop = \"check_api\"\n[[expect]]\nop = 0\nname = \"wrong\"\nlevel = \"should\"\nstatus = 418\n",
    )
    .unwrap();
    let out = Command::new(bin)
        .args(["run", must.to_str().unwrap(), "--target", "reference"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("WARN SHOULD wrong"), "{stdout}");
}

// ------------------------------------------------------------------------------------------
// scenarios/schema.json: a JSON Schema of the format, checked with a small validator (the
// subset of draft 2020-12 the schema uses) against every scenario and corpus file and against
// what the fuzzer writes.
// ------------------------------------------------------------------------------------------

use serde_json::Value;

fn schema() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("scenarios/schema.json")).unwrap())
        .unwrap()
}

fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/$defs/").expect("local $ref");
            &root["$defs"][name]
        }
        None => s,
    }
}

fn validate(root: &Value, s: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let s = resolve(root, s);
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            other => panic!("type {other} not supported by the test validator"),
        };
        if !ok {
            errors.push(format!("{path}: expected {t}, got {v}"));
            return;
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            errors.push(format!("{path}: expected {c}, got {v}"));
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errors.push(format!("{path}: {v} not one of {e:?}"));
        }
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_i64), v.as_i64()) {
        if n < min {
            errors.push(format!("{path}: {n} < {min}"));
        }
    }
    if let (Some(max), Some(n)) = (s.get("maximum").and_then(Value::as_i64), v.as_i64()) {
        if n > max {
            errors.push(format!("{path}: {n} > {max}"));
        }
    }
    if let (Some(p), Some(text)) = (s.get("pattern").and_then(Value::as_str), v.as_str()) {
        if !regex::Regex::new(p).unwrap().is_match(text) {
            errors.push(format!("{path}: {text:?} does not match {p}"));
        }
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        let matching = alts
            .iter()
            .filter(|a| {
                let mut e = Vec::new();
                validate(root, a, v, path, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!(
                "{path}: {v} matches {matching} of the oneOf alternatives"
            ));
        }
    }
    if let Some(arr) = v.as_array() {
        if let Some(items) = s.get("items") {
            for (i, x) in arr.iter().enumerate() {
                validate(root, items, x, &format!("{path}[{i}]"), errors);
            }
        }
        if let Some(n) = s.get("minItems").and_then(Value::as_u64) {
            if (arr.len() as u64) < n {
                errors.push(format!("{path}: fewer than {n} items"));
            }
        }
        if let Some(n) = s.get("maxItems").and_then(Value::as_u64) {
            if (arr.len() as u64) > n {
                errors.push(format!("{path}: more than {n} items"));
            }
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                errors.push(format!("{path}: missing {r}"));
            }
        }
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(root, ps, x, &format!("{path}.{k}"), errors),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{path}: unknown property {k}"))
                    }
                    Some(extra @ Value::Object(_)) => {
                        validate(root, extra, x, &format!("{path}.{k}"), errors)
                    }
                    _ => {}
                },
            }
        }
    }
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let root = schema();
    let mut errors = Vec::new();
    validate(&root, &root, doc, "$", &mut errors);
    errors
}

fn toml_to_json(text: &str) -> Value {
    let v: toml::Value = toml::from_str(text).unwrap();
    serde_json::to_value(v).unwrap()
}

#[test]
fn schema_accepts_every_scenario_and_corpus_file() {
    let mut files = Vec::new();
    for dir in ["scenarios", "corpora/regressions"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "toml") {
                files.push(e.path());
            }
        }
    }
    assert!(files.len() >= 15, "{files:?}");
    for f in files {
        let errors = schema_errors(&toml_to_json(&std::fs::read_to_string(&f).unwrap()));
        assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
    }
}

#[test]
fn schema_accepts_what_the_fuzzer_writes_and_rejects_nonsense() {
    for seed in [0u64, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, u64::MAX] {
        let seq = ocidiff::generate::generate_sequence(seed, &Default::default());
        let mut sc = ocidiff::scenario::Scenario::from_sequence(&seq);
        sc.meta.seed = Some(seed);
        let text = ocidiff::scenario::to_string(&sc).unwrap();
        let errors = schema_errors(&toml_to_json(&text));
        assert!(errors.is_empty(), "seed {seed}: {errors:#?}\n{text}");
    }
    for bad in [
        "[[ops]]\nop = \"frobnicate\"\n",
        "[[ops]]\nop = \"head_blob\"\nrepo = 0\n",
        "[[expect]]\nop = 0\nlevel = \"sometimes\"\n",
        "[[expect]]\nop = 0\nsurprise = 1\n",
        "[meta]\ntitle = 3\n",
    ] {
        assert!(
            !schema_errors(&toml_to_json(bad)).is_empty(),
            "accepted {bad:?}"
        );
    }
}

#[test]
fn schema_names_every_field_of_expect() {
    use ocidiff::scenario::{BodyExpect, Expect, Level};
    let mut e = Expect {
        op: 0,
        name: "n".into(),
        level: Some(Level::May),
        rule: Some("end-1/200".into()),
        endpoint: Some("end-1".into()),
        spec: Some("s".into()),
        label: Some("get".into()),
        status: vec![200],
        present: vec!["a".into()],
        absent: vec!["b".into()],
        unsupported: vec![404],
        requires: vec!["x".into()],
        min_exchanges: Some(1),
        skip_if_absent: true,
        body: Some(BodyExpect {
            kind: Some("tags".into()),
            sha256: Some("x".into()),
            len: Some(1),
            error_codes: vec!["X".into()],
            tags: Some(vec![]),
            referrers: Some(0),
            blob: Some(0),
            manifest: Some(0),
            referrer_manifests: Some(vec![0]),
            artifact_types: Some(vec![]),
            name: Some("n".into()),
            all_tags: Some(vec![]),
            referrer_descriptors: true,
            referrer_annotations: true,
        }),
        ..Expect::default()
    };
    e.headers.insert("h".into(), "v".into());
    e.matches.insert("h".into(), "v".into());
    e.matches_if_present.insert("h".into(), "v".into());
    let v = serde_json::to_value(&e).unwrap();
    let root = schema();
    let props = |def: &str| -> BTreeSet<String> {
        root["$defs"][def]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let keys: BTreeSet<String> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, props("expect"));
    let body: BTreeSet<String> = v["body"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(body, props("body"));
}
