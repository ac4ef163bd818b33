//! The conformance report: `results.json` (the types here), `junit.xml` and the `index.html`
//! matrix (`conformance_html`).

pub use super::results::{
    exchange_lines, CellResult, ConformanceResults, TargetInfo, WorkflowInfo,
};
use crate::compare::{Class, Divergence};
use crate::vocab::fs::write_atomic;
use anyhow::Context as _;
use std::path::Path;

/// Writes `index.html`, `junit.xml` and `results.json` into `out`.
pub fn write_outputs(r: &ConformanceResults, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = serde_json::to_vec_pretty(r)?;
    write_atomic(&out.join("results.json"), &json)?;
    write_atomic(
        &out.join("junit.xml"),
        super::junit::conformance(r)?.as_bytes(),
    )?;
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
