//! Serve one of ocidiff's launchable targets on a loopback port until interrupted, for
//! benchmarks and manual poking: the same launch path `ocidiff fuzz --target KIND` uses.
//!
//! ```sh
//! cargo run --release -p ocidiff --example serve -- container-registry
//! # listening on http://127.0.0.1:PORT/
//! ```
//!
//! `KIND` is any `--target` value that ocidiff launches itself (`reference`,
//! `container-registry`, `distribution[:/path]`); the first line on stdout is
//! `listening on URL`. SIGINT / SIGTERM stop it (and remove its storage).

use anyhow::{bail, Context as _, Result};
use std::io::Write as _;

#[tokio::main]
async fn main() -> Result<()> {
    let kind = match std::env::args().nth(1) {
        Some(k) if !k.starts_with('-') => k,
        _ => bail!("usage: serve KIND   (reference | container-registry | distribution[:/path])"),
    };
    let (name, spec) = ocidiff::targets::parse_target_arg(&kind)?;
    let target = ocidiff::targets::launch(&name, &spec)
        .await
        .with_context(|| format!("launching {kind}"))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", target.base_url)?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(target);
    Ok(())
}
