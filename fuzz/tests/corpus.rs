//! Replays every seed and regression input in `corpora/fuzz/<target>/` through the same check
//! the libFuzzer target runs (`ocidiff_fuzz::TARGETS`), on the stable toolchain, as an ordinary
//! `cargo test`. A new file in a corpus directory is picked up without code changes.

use std::path::{Path, PathBuf};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/fuzz")
}

fn replay(target: &str) {
    let (_, run) = ocidiff_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target {target}"));
    let dir = corpus_root().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let outcome = std::panic::catch_unwind(|| run(&data));
        if let Err(e) = outcome {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: {} fails: {msg}", f.display());
        }
    }
    eprintln!("{target}: {} inputs replayed", files.len());
}

macro_rules! corpus_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { replay(stringify!($name)); })*

        /// Every target has a corpus test and every corpus directory a target.
        #[test]
        fn every_target_has_a_corpus() {
            let tested = [$(stringify!($name)),*];
            for (t, _) in ocidiff_fuzz::TARGETS {
                assert!(tested.contains(t), "target {t} has no corpus test");
            }
            for e in std::fs::read_dir(corpus_root()).expect("corpora/fuzz") {
                let name = e.expect("entry").file_name().to_string_lossy().into_owned();
                assert!(tested.contains(&name.as_str()), "corpora/fuzz/{name}: no such target");
            }
        }
    };
}

corpus_tests!(
    digest,
    digest_verify,
    reference,
    range,
    link,
    observe,
    scenario,
    www_authenticate,
    manifest,
    registry,
);

fn seed(target: &str, name: &str) -> Vec<u8> {
    let p = corpus_root().join(target).join(format!("seed-{name}"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The valid seeds really are valid, so the round-trip properties are not vacuous.
#[test]
fn valid_seeds_are_accepted() {
    for name in ["monolithic", "big-seed", "empty"] {
        let text = String::from_utf8(seed("scenario", name)).expect("utf-8");
        ocidiff::scenario::from_str(&text, Path::new(name))
            .unwrap_or_else(|e| panic!("scenario seed {name}: {e}"));
    }
    for name in ["bad-blob-ref", "unknown-field", "not-toml"] {
        let text = String::from_utf8(seed("scenario", name)).expect("utf-8");
        assert!(
            ocidiff::scenario::from_str(&text, Path::new(name)).is_err(),
            "{name}"
        );
    }
    for (name, status) in [
        ("image-by-tag", 201),
        ("image-by-digest", 201),
        ("image-sha512", 201),
        ("image-no-ct", 201),
        ("image-ct-params", 201),
        ("index", 201),
        ("index-no-ct", 201),
        ("subject", 201),
        ("docker", 201),
        ("image-ct-mismatch", 400),
        ("missing-blob", 201),
        ("schema1", 400),
        ("not-json", 400),
        ("bad-digest", 400),
        ("negative-size", 400),
    ] {
        assert_eq!(
            ocidiff_fuzz::registry::manifest_status(&seed("manifest", name)),
            Some(status),
            "manifest seed {name}"
        );
    }
    for name in ["sha256-empty", "sha512-empty"] {
        let s = String::from_utf8(seed("digest", name)).expect("utf-8");
        assert!(
            reference_registry::spec::Digest::parse(&s).is_ok(),
            "{name}"
        );
    }
}

/// Replays one file: `OCIDIFF_FUZZ_REPLAY=<target>:<path> cargo test -p ocidiff-fuzz --test
/// corpus replay_one -- --nocapture` (with `OCIDIFF_FUZZ_DEBUG=1` the registry target prints
/// the decoded ops). Does nothing without the variable.
#[test]
fn replay_one() {
    let Ok(spec) = std::env::var("OCIDIFF_FUZZ_REPLAY") else {
        return;
    };
    let (target, path) = spec
        .split_once(':')
        .expect("OCIDIFF_FUZZ_REPLAY=<target>:<path>");
    let (_, run) = ocidiff_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target {target}"));
    run(&std::fs::read(path).expect("readable input"));
}
