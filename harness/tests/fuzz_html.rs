//! `ocidiff fuzz` writes `index.html`: one self-contained page with a card per target and each
//! finding with its spec sentence, minimal sequence, target-vs-reference diff and the command
//! that reproduces it. Rendered in headless Chromium (skipped without it, a failure with
//! `OCIDIFF_REQUIRE_EXTERNAL=1`): the script runs, and opening `index.html#finding-<id>` opens
//! that finding.

mod common;

use common::{faulty, fuzz_config, reference};
use ocidiff::compare::Class;
use ocidiff::drivers::fuzz::run_fuzz;
use ocidiff::report::fuzz_html::finding_anchor;
use reference_registry::Faults;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_page_renders_findings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let s = run_fuzz(fuzz_config(
        vec![
            ("reference".into(), reference()),
            (
                "faulty".into(),
                faulty(Faults {
                    tags_unsorted: true,
                    blob_corrupt_byte: true,
                    ..Faults::default()
                }),
            ),
        ],
        3,
        40,
        Duration::from_secs(60),
        true,
        &out,
    ))
    .await
    .unwrap();
    let f = s
        .findings
        .iter()
        .find(|f| f.divergence.class == Class::Violation && f.divergence.rule == "end-2/get-body")
        .unwrap_or_else(|| panic!("no corrupt-blob finding: {}", common::describe(&s.findings)));

    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for external in ["<link ", "src=\"http", "src='http", "@import", "url(http"] {
        assert!(!html.contains(external), "external asset: {external}");
    }
    let anchor = finding_anchor(&f.id);
    assert!(html.contains(&format!("id=\"{anchor}\"")));
    // Every finding of the run is on the page, once.
    for g in &s.findings {
        assert_eq!(
            html.matches(&format!("id=\"{}\"", finding_anchor(&g.id)))
                .count(),
            1,
            "{}",
            g.id
        );
    }

    let Some(bin) = common::chromium() else {
        common::skip_external(
            "browser check: chromium not installed (apt-get install chromium, or set OCIDIFF_CHROMIUM)",
        );
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}#{anchor}", out.join("index.html").display());
    let dom = common::run_chromium(&bin, profile.path(), &["--dump-dom"], &url);
    assert!(dom.contains("</html>"), "no DOM from chromium:\n{dom}");
    assert!(dom.contains("class=\" js\""), "script did not run");
    // Cards: the reference passes, the faulty target fails.
    let card = |name: &str| {
        dom.split(&format!("data-target=\"{name}\""))
            .nth(1)
            .and_then(|c| c.split("</div></div>").next())
            .unwrap_or_else(|| panic!("no card for {name}"))
            .to_string()
    };
    assert!(card("reference").contains("no violation found"));
    assert!(card("faulty").contains("violation"));
    assert!(card("faulty").contains("verdict fail"));
    // The finding named by the hash is open and has its parts.
    let tag = dom
        .split(&format!("id=\"{anchor}\""))
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap();
    assert!(tag.contains("open=\"\""), "finding not opened: {tag}");
    let body = dom.split(&format!("id=\"{anchor}\"")).nth(1).unwrap();
    // Up to the next finding (the sequence is a nested `<details>`).
    let body = body.split("<details class=\"finding ").next().unwrap();
    assert!(
        body.contains("MUST provide the expected blob"),
        "spec sentence: {body}"
    );
    assert!(body.contains("bash findings/"), "repro command: {body}");
    assert!(body.contains("repro.sh"), "{body}");
    assert!(
        body.contains("op = \"get_blob\""),
        "minimal sequence: {body}"
    );
    assert!(body.contains("class=\"diff\""), "diff: {body}");
    assert!(
        body.contains("class=\"del\"") && body.contains("class=\"add\""),
        "{body}"
    );
    // Another finding stays closed.
    if let Some(other) = s.findings.iter().find(|g| g.id != f.id) {
        let tag = dom
            .split(&format!("id=\"{}\"", finding_anchor(&other.id)))
            .nth(1)
            .and_then(|s| s.split('>').next())
            .unwrap();
        assert!(!tag.contains("open"), "{tag}");
    }
}
