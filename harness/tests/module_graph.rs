//! The module graph of `harness/src` follows the pipeline: every folder imports only the folders
//! below it (ARCHITECTURE.md lists the order), and within a folder the files do not import each
//! other in a cycle (a folder's `mod.rs` is its interface and may be used by its files).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom to top. Folders on one line do not import each other.
const LAYERS: &[&[&str]] = &[
    &["vocab"],
    &["model"],
    &["ops"],
    &["generate", "observe"],
    &["execute"],
    &["targets"],
    &["compare"],
    &["shrink"],
    &["scenario"],
    &["report"],
    &["drivers"],
    &["cli"],
];

fn rank(folder: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&folder))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Rust files of `src/<folder>/`, recursively: (path relative to `src`, text without comments).
fn files() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![src()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(src())
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let text: String = std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect::<Vec<_>>()
                    .join("\n");
                out.push((rel, text));
            }
        }
    }
    out.sort();
    out
}

/// Identifiers following `prefix` (e.g. `crate::` -> the top-level modules a file names),
/// including those listed in `prefix{a, b::c}` groups.
fn names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn folders_import_only_downwards() {
    let mut violations = Vec::new();
    let mut folders = BTreeSet::new();
    for (rel, text) in files() {
        let Some((folder, _)) = rel.split_once('/') else {
            continue; // lib.rs, main.rs
        };
        folders.insert(folder.to_string());
        let Some(me) = rank(folder) else {
            violations.push(format!("{rel}: folder `{folder}` is not in LAYERS"));
            continue;
        };
        for used in names_after(&text, "crate::") {
            if used == folder {
                continue;
            }
            match rank(&used) {
                Some(r) if r < me => {}
                Some(_) => {
                    violations.push(format!("{rel} imports `{used}` (not below `{folder}`)"))
                }
                None => {
                    violations.push(format!("{rel} imports `crate::{used}`, which is no folder"))
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    let listed: BTreeSet<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter().map(|s| s.to_string()))
        .collect();
    assert_eq!(
        folders, listed,
        "every folder is a layer and every layer a folder"
    );
}

#[test]
fn files_of_a_folder_have_no_import_cycle() {
    let all = files();
    // folder -> file stem -> sibling stems it imports
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (rel, _) in &all {
        let parts: Vec<&str> = rel.split('/').collect();
        if parts.len() == 2 && parts[1] != "mod.rs" {
            graph.entry(parts[0].to_string()).or_default().insert(
                parts[1].trim_end_matches(".rs").to_string(),
                BTreeSet::new(),
            );
        }
    }
    for (rel, text) in &all {
        let parts: Vec<&str> = rel.split('/').collect();
        if parts.len() != 2 || parts[1] == "mod.rs" {
            continue;
        }
        let (folder, me) = (parts[0], parts[1].trim_end_matches(".rs"));
        let siblings = graph[folder].keys().cloned().collect::<BTreeSet<_>>();
        let mut used = names_after(text, "super::");
        used.extend(names_after(text, &format!("crate::{folder}::")));
        let deps: BTreeSet<String> = used
            .into_iter()
            .filter(|u| u != me && siblings.contains(u))
            .collect();
        graph.get_mut(folder).unwrap().insert(me.to_string(), deps);
    }
    for (folder, g) in &graph {
        // Kahn's algorithm: what cannot be ordered is on a cycle.
        let mut indeg: BTreeMap<&str, usize> = g.keys().map(|k| (k.as_str(), 0)).collect();
        for deps in g.values() {
            for d in deps {
                *indeg.get_mut(d.as_str()).unwrap() += 1;
            }
        }
        let mut ready: Vec<&str> = indeg
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(k, _)| *k)
            .collect();
        let mut done = 0;
        while let Some(n) = ready.pop() {
            done += 1;
            for d in &g[n] {
                let e = indeg.get_mut(d.as_str()).unwrap();
                *e -= 1;
                if *e == 0 {
                    ready.push(d.as_str());
                }
            }
        }
        let cyclic: Vec<&str> = indeg
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(
            done,
            g.len(),
            "import cycle in {folder}/ among {cyclic:?}: {g:?}"
        );
    }
}

#[test]
fn the_checker_sees_imports() {
    let names = names_after(
        "use crate::{vocab::x, ops};\nlet a = crate::model::M; notcrate::zz",
        "crate::",
    );
    assert_eq!(
        names,
        ["model", "ops", "vocab"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}
