//! Issue 28, item 6: the README's first command (`ocidiff fuzz` on every registry it can start
//! here) speaks to a registry maintainer: its summary, page and findings file contain no Rust
//! debug formatting (`Some(...)`, `None`).

use std::process::Command;

/// The Rust debug formatting a report must not show, found in `text`.
fn debug_formatting(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for needle in [
        "Some(",
        "None vs",
        "vs reference None",
        ": None",
        "Some(&quot;",
    ] {
        for (i, _) in text.match_indices(needle) {
            let from = text[..i].char_indices().rev().nth(60).map_or(0, |(k, _)| k);
            let to = text[i..]
                .char_indices()
                .nth(60)
                .map_or(text.len(), |(k, _)| i + k);
            found.push(text[from..to].replace('\n', " "));
        }
    }
    found
}

#[test]
fn the_first_commands_reports_are_in_plain_words() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_ocidiff"))
        .args([
            "fuzz",
            "--duration",
            "20",
            "--seed",
            "1",
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .current_dir(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.code().is_some_and(|c| c < 2),
        "{}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    let page = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    let findings = std::fs::read_to_string(out.path().join("findings.json")).unwrap();
    assert!(findings.len() > 100, "no findings to read: {findings}");
    for (what, text) in [
        ("summary", &stdout),
        ("index.html", &page),
        ("findings.json", &findings),
    ] {
        let found = debug_formatting(text);
        assert!(
            found.is_empty(),
            "{what} has Rust debug formatting:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn the_check_finds_debug_formatting() {
    assert!(!debug_formatting("header range: None vs reference Some(\"0-0\")").is_empty());
    assert!(debug_formatting("range header absent (the reference sent `0-0`)").is_empty());
}
