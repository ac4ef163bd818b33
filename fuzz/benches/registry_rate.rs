//! Executions per second of the in-process `registry` fuzz target on its seed corpus
//! (`corpora/fuzz/registry/`), without libFuzzer: the code an execution runs, timed. Baseline
//! in the same run: the `manifest` target (one PUT and two GETs per execution) on its corpus.
//!
//!     cargo bench -p ocidiff-fuzz --bench registry_rate [-- SECONDS] [registry]
//!
//! With `registry`, only that target runs (for profilers: `valgrind --tool=callgrind`).

use std::path::Path;
use std::time::{Duration, Instant};

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora/fuzz")
        .join(name);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, b)| b).collect()
}

/// Runs `f` over `inputs` round after round for `secs`; executions per second.
fn rate(inputs: &[Vec<u8>], secs: f64, f: impl Fn(&[u8])) -> (f64, u64) {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        for i in inputs {
            f(i);
            n += 1;
        }
    }
    (n as f64 / start.elapsed().as_secs_f64(), n)
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5.0);
    let registry = corpus("registry");
    let manifest = corpus("manifest");
    // Warm up (thread-local runtime and registries).
    for i in registry.iter().take(20) {
        ocidiff_fuzz::registry::registry_bytes(i);
    }
    let sent = ocidiff_fuzz::registry::requests_sent();
    let (r, rn) = rate(&registry, secs, ocidiff_fuzz::registry::registry_bytes);
    let per_exec = (ocidiff_fuzz::registry::requests_sent() - sent) as f64 / rn as f64;
    if std::env::args().any(|a| a == "registry") {
        println!("registry: {r:>9.0} exec/s ({rn} execs, {per_exec:.1} requests each)");
        return;
    }
    let (m, mn) = rate(&manifest, secs, ocidiff_fuzz::registry::manifest);
    println!(
        "registry: {r:>9.0} exec/s ({rn} execs over {} corpus inputs, {per_exec:.1} requests each)",
        registry.len()
    );
    println!(
        "manifest: {m:>9.0} exec/s ({mn} execs over {} corpus inputs; baseline)",
        manifest.len()
    );
    println!("registry / manifest: {:.3}", r / m);
}
