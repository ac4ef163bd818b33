//! `ocidiff conformance` output: results.json and junit.xml are consistent, and index.html renders
//! in a real browser (Debian's `chromium`, headless): the summary and the matrix are there, and
//! opening `index.html#<check id>` opens that check's drill-down (inline script).
//!
//! The browser part is skipped, with a message, when chromium is not installed (`apt-get install
//! chromium`), and fails instead with `OCIDIFF_REQUIRE_EXTERNAL=1` (as in CI); set
//! `OCIDIFF_CHROMIUM=/path/to/chromium` to use another binary. The screenshot is written to
//! `target/conformance-report.png` for a human to look at.

mod common;

use ocidiff::drivers::conformance::{builtin_workflows, run_conformance};
use ocidiff::report::conformance::{write_outputs, ConformanceResults};
use ocidiff::report::conformance_html::check_id;
use ocidiff::scenario::checks::Outcome;
use ocidiff::targets::TargetSpec;
use std::path::Path;

async fn report(dir: &Path) -> ConformanceResults {
    let faulty = reference_registry::Config {
        faults: reference_registry::Faults {
            tags_unsorted: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let r = run_conformance(
        vec![
            ("reference".into(), TargetSpec::Reference(Box::default())),
            ("faulty".into(), TargetSpec::Reference(Box::new(faulty))),
        ],
        &builtin_workflows().unwrap(),
        ocidiff::compare::SpecVersion::V1_1Dev,
    )
    .await
    .unwrap();
    write_outputs(&r, dir).unwrap();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_files_and_browser_rendering() {
    let dir = tempfile::tempdir().unwrap();
    let r = report(dir.path()).await;

    // results.json round-trips and agrees with the in-memory results.
    let json: ConformanceResults =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(json, r);
    assert_eq!(json.targets[0].name, "reference");
    assert!(json.targets[0].oracle);
    assert!(!r.target_failed("reference"));
    assert!(r.target_failed("faulty"));

    // junit.xml: one testsuite per target x workflow; failures cite rule and spec.
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.starts_with("<?xml"));
    assert_eq!(junit.matches("<testsuite ").count(), 2 * 4);
    assert!(junit.contains("<testsuite name=\"faulty.content-discovery\""));
    assert!(junit.contains("<failure message=\"end-8a/order: If the list is not empty, the tags MUST be in lexical"), "{junit}");
    assert!(junit.contains("<skipped message=\"skipped: no exchange put-fallback"));
    let fails: usize = r.results.iter().map(|c| c.counts.fail).sum();
    assert_eq!(junit.matches("<failure ").count(), fails);

    // The HTML is one self-contained file.
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    for external in ["<link ", "src=\"http", "src='http", "@import", "url(http"] {
        assert!(!html.contains(external), "external asset: {external}");
    }

    // A failing check to open by URL hash.
    let cell = r.cell("faulty", "content-discovery").unwrap();
    let idx = cell
        .checks
        .iter()
        .position(|c| c.outcome == Outcome::Fail && c.name.contains("lexical order"))
        .unwrap();
    let id = check_id("faulty", "content-discovery", idx);
    assert!(html.contains(&format!("id=\"{id}\"")));

    let Some(bin) = common::chromium() else {
        common::skip_external(
            "browser check: chromium not installed (apt-get install chromium, or set OCIDIFF_CHROMIUM)",
        );
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}#{id}", dir.path().join("index.html").display());
    let dom = common::run_chromium(&bin, profile.path(), &["--dump-dom"], &url);
    assert!(dom.contains("</html>"), "no DOM from chromium:\n{dom}");
    // The inline script ran.
    assert!(dom.contains("class=\" js\""), "script did not run");
    // Summary and matrix: a row per target, a column per workflow.
    assert!(dom.contains("id=\"summary\""));
    assert!(dom.contains("FAILS a MUST requirement"));
    assert!(dom.contains("passes every MUST check"));
    let matrix = dom
        .split("id=\"matrix\"")
        .nth(1)
        .and_then(|m| m.split("</table>").next())
        .expect("matrix table rendered");
    assert_eq!(matrix.matches("<tr data-target=").count(), 2, "{matrix}");
    assert_eq!(matrix.matches("<td class=\"cell ").count(), 8, "{matrix}");
    assert!(matrix.contains("href=\"#cell-faulty-content-discovery\""));
    // The drill-down named by the hash is open, with its cell, and shows the exchange.
    let opened = dom
        .split(&format!("id=\"{id}\""))
        .next()
        .and_then(|before| before.rsplit("<details").next())
        .unwrap();
    assert!(opened.contains("check fail"), "{opened}");
    let tag = dom
        .split(&format!("id=\"{id}\""))
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap();
    assert!(tag.contains("open=\"\""), "drill-down not opened: {tag}");
    assert!(tag.contains("data-opened=\"true\""), "{tag}");
    let cell_tag = dom
        .split("id=\"cell-faulty-content-discovery\"")
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap();
    assert!(
        cell_tag.contains("open=\"\""),
        "cell not opened: {cell_tag}"
    );
    let body = dom.split(&format!("id=\"{id}\"")).nth(1).unwrap();
    let body = body.split("</details>").next().unwrap();
    assert!(body.contains("GET http://127.0.0.1:"), "{body}");
    assert!(body.contains("HTTP 200"), "{body}");
    assert!(body.contains("lexical"), "{body}");
    // Closed elsewhere: another cell stays closed.
    let other = dom
        .split("id=\"cell-reference-pull\"")
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap();
    assert!(!other.contains("open"), "{other}");

    // A screenshot, kept for humans under target/.
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/conformance-report.png");
    let _ = std::fs::remove_file(&shot);
    common::run_chromium(
        &bin,
        profile.path(),
        &[
            "--window-size=1400,1000",
            &format!("--screenshot={}", shot.display()),
        ],
        &format!("file://{}", dir.path().join("index.html").display()),
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(png.len() > 20_000, "screenshot suspiciously small");
}

/// Credentials in a target URL never reach the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_redacted() {
    let running = reference_registry::spawn(reference_registry::Config {
        auth: reference_registry::AuthMode::Basic {
            username: "alice".into(),
            password: "s3cret-pw".into(),
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let url = running.url().to_string();
    let with_creds = url.replacen("http://", "http://alice:s3cret-pw@", 1);
    let spec = ocidiff::targets::parse_target_arg(&format!("basic={with_creds}")).unwrap();
    let wf: Vec<_> = builtin_workflows()
        .unwrap()
        .into_iter()
        .filter(|w| w.id == "pull")
        .collect();
    let r = run_conformance(vec![spec], &wf, ocidiff::compare::SpecVersion::V1_1Dev)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_outputs(&r, dir.path()).unwrap();
    for f in ["index.html", "junit.xml", "results.json"] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(!text.contains("s3cret-pw"), "{f} leaks the password");
    }
    // The authenticated registry passes too (credentials were used, just not shown).
    assert!(!r.target_failed("basic"), "{:#?}", r.cell("basic", "pull"));
    drop(running);
}
