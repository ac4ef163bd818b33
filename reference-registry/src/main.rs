//! `reference-registry` CLI: serves the reference registry on a socket.
//!
//! ```text
//! reference-registry --listen 127.0.0.1:5000 [--storage memory|DIR]
//!     [--auth none|basic:USER:PASS|token|token:USER:PASS] [--no-delete]
//!     [--profile distribution-2.8|ghcr|ecr|quay] [--quirk NAME]... [--list-quirks]
//! ```
//! Prints exactly one line, `listening on http://ADDR`, to stdout once bound.

use clap::Parser;
use reference_registry::{AuthMode, Config, Quirks, Storage};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;

#[derive(Parser, Debug)]
#[command(version, about = "ocidiff's reference OCI registry")]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// `memory`, or a directory for persistent storage.
    #[arg(long, default_value = "memory")]
    storage: String,
    /// `none`, `basic:USER:PASS`, `token` or `token:USER:PASS`.
    #[arg(long, default_value = "none")]
    auth: String,
    /// Disable manifest and blob deletion (405 UNSUPPORTED).
    #[arg(long)]
    no_delete: bool,
    /// Behave like a real registry in every way the spec allows it to differ
    /// (see --list-quirks): distribution-2.8, ghcr, ecr, quay.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Turn on one spec-allowed behaviour (repeatable; on top of --profile).
    #[arg(long = "quirk", value_name = "NAME")]
    quirks: Vec<String>,
    /// Print the quirks and profiles (with their sources) and exit.
    #[arg(long)]
    list_quirks: bool,
}

fn quirks(cli: &Cli) -> anyhow::Result<Quirks> {
    let mut q = match &cli.profile {
        Some(p) => Quirks::profile(p).map_err(anyhow::Error::msg)?,
        None => Quirks::default(),
    };
    for name in &cli.quirks {
        q.enable(name).map_err(anyhow::Error::msg)?;
    }
    Ok(q)
}

fn list_quirks() {
    println!("quirks (behaviours the spec allows):");
    for q in Quirks::ALL {
        println!("  {:<22} {}", q.name, q.what);
    }
    println!("profiles:");
    for p in Quirks::PROFILES {
        println!("  {:<22} {}", p.name, p.quirks.join(", "));
        for s in p.sources {
            println!("  {:<22}   source: {s}", "");
        }
    }
}

fn parse_auth(s: &str) -> anyhow::Result<AuthMode> {
    if s == "none" {
        return Ok(AuthMode::None);
    }
    if s == "token" {
        return Ok(AuthMode::Token {
            username: None,
            password: None,
        });
    }
    let (kind, creds) = s
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("invalid --auth {s:?}"))?;
    let (user, pass) = creds
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--auth {kind}: expects USER:PASS"))?;
    match kind {
        "basic" => Ok(AuthMode::Basic {
            username: user.to_owned(),
            password: pass.to_owned(),
        }),
        "token" => Ok(AuthMode::Token {
            username: Some(user.to_owned()),
            password: Some(pass.to_owned()),
        }),
        _ => anyhow::bail!(
            "invalid --auth {s:?}: expected none, basic:USER:PASS, token or token:USER:PASS"
        ),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    if cli.list_quirks {
        list_quirks();
        return Ok(());
    }
    let config = Config {
        quirks: quirks(&cli)?,
        storage: if cli.storage == "memory" {
            Storage::Memory
        } else {
            Storage::Dir(cli.storage.clone().into())
        },
        auth: parse_auth(&cli.auth)?,
        delete_enabled: !cli.no_delete,
        ..Config::default()
    };
    let running = reference_registry::spawn_on(config, cli.listen).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", running.addr())?;
        out.flush()?;
    }
    tracing::info!(addr = %running.addr(), storage = %cli.storage, "reference registry started");
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}
