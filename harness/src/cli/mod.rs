//! Command-line parsing for the ocidiff binary; calls into the modules, holds no logic of its own.
//!
//! Exit codes: 0 no violation, 1 violations found (or a replayed scenario's `[[expect]]` failed;
//! for a reproducer, a scenario naming a divergence: 1 it reproduced, 0 it did not), 2 usage or
//! infrastructure error, cannot run (clap usage errors included; `--help` / `--version` exit 0).

use crate::drivers::fuzz::{run_fuzz, FuzzConfig};
use crate::drivers::replay::replay;
use crate::generate::GenConfig;
use crate::targets::{default_targets, launch, parse_target_arg, TargetSpec};
use crate::vocab::redact::redact;
use crate::vocab::spec_version::SpecVersion;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "ocidiff",
    version,
    about = "Differential fuzzing of OCI Distribution Spec registries"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Generate random sequences, run them on every target and report divergences.
    Fuzz(FuzzArgs),
    /// Run one scenario file and print each op's observations and the divergences.
    Replay(ReplayArgs),
    /// List the configured (or default) targets and check each answers `GET /v2/`.
    Targets(TargetsArgs),
    /// Run scenario files (a file or a directory of *.toml) on the targets: differentially
    /// (against the reference) and against their [[expect]] checks.
    Run(RunArgs),
    /// Run the four conformance workflows (Pull, Push, Content Discovery, Content Management)
    /// on each target and write index.html, junit.xml and results.json.
    Conformance(ConformanceArgs),
    /// Merge `ocidiff fuzz` output directories (the shards of one seed, or several runs) into
    /// one findings set and one page: findings.json, findings/<id>/, index.html, junit.xml.
    Merge(MergeArgs),
    /// Concurrent cases: several clients at once on shared state, each target's history
    /// checked by a linearizability oracle; races shrunk, replayed and written with a
    /// reproducer (findings.json, races/<id>/). With --replay, re-runs one race case.
    Race(RaceArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(CompletionsArgs),
    /// Write the man pages (ocidiff.1 and one per command) into a directory, or print
    /// ocidiff.1 to stdout.
    Man(ManArgs),
}

#[derive(Args, Debug)]
struct MergeArgs {
    /// Output directory of the merged result.
    #[arg(value_name = "OUT")]
    out: PathBuf,
    /// `ocidiff fuzz --out` directories to merge.
    #[arg(required = true, value_name = "DIR")]
    inputs: Vec<PathBuf>,
    /// Known findings (as for `fuzz --baseline`): exit 1 only for new violations.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Refuse inputs judged by another spec version (default: whatever the inputs agree on).
    #[arg(long = "spec-version", value_name = "VERSION", value_parser = SpecVersion::parse)]
    spec_version: Option<SpecVersion>,
}

#[derive(Args, Debug)]
struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
struct ManArgs {
    /// Directory for ocidiff.1 and ocidiff-<command>.1 (default: print ocidiff.1 to stdout).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// `--spec-version`, shared by the commands that judge.
#[derive(Args, Debug)]
struct VersionArgs {
    /// The Distribution Spec version targets are judged by, with the official conformance
    /// suite's names: 1.0 (v1.0.1), 1.1 (v1.1.1, the latest release) or 1.1+dev (main). A
    /// target's own `spec_version` in ocidiff.toml wins.
    #[arg(long = "spec-version", value_name = "VERSION", default_value = "1.1", value_parser = SpecVersion::parse)]
    spec_version: SpecVersion,
}

/// `--insecure` / `--ca`, shared by the commands that talk to https targets.
#[derive(Args, Debug)]
struct TlsArgs {
    /// Do not verify TLS certificates of https targets.
    #[arg(long)]
    insecure: bool,
    /// Extra trusted CA certificates (PEM file) for https targets.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct TargetsArgs {
    /// Targets to check (as for `fuzz`); default: the config file's, else the defaults.
    #[arg(long = "target", value_name = "NAME[=URL]")]
    targets: Vec<String>,
    /// Target config file (default: ./ocidiff.toml when present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    tls: TlsArgs,
    /// Also list the presets and what each may do differently.
    #[arg(long)]
    presets: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Scenario files or directories (searched recursively for *.toml).
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
    /// Targets (as for `fuzz`); the reference is added as the oracle. Default: every target
    /// that can start.
    #[arg(long = "target", value_name = "NAME[=URL]")]
    targets: Vec<String>,
    /// Target config file (default: ./ocidiff.toml when present); see harness/TARGETS.md.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    version: VersionArgs,
    /// Also print passing checks and each check's exchanges.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Args, Debug)]
struct ConformanceArgs {
    /// A target: NAME=http(s)://[user:pass@]host[:port] | reference | container-registry |
    /// distribution[:/path] | NAME=KIND. Repeatable; the reference is added as the oracle.
    /// Default: every target that can start.
    #[arg(long = "target", value_name = "NAME[=URL]")]
    targets: Vec<String>,
    /// Target config file (default: ./ocidiff.toml when present); see harness/TARGETS.md.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    version: VersionArgs,
    #[command(flatten)]
    tls: TlsArgs,
    /// Output directory for index.html, junit.xml and results.json.
    #[arg(long, default_value = "./ocidiff-conformance")]
    out: PathBuf,
    /// Run these scenario files instead of the built-in workflows (a file or a directory).
    #[arg(long, value_name = "FILE|DIR", conflicts_with = "read_only")]
    scenarios: Option<PathBuf>,
    /// Only the four workflows (Pull, Push, Content Discovery, Content Management), not
    /// their crossing with the data kinds (image, index, nested index, sparse, artifact, ...).
    #[arg(long, conflicts_with = "scenarios")]
    core: bool,
    /// Pull and discovery checks only, on content already in the registry (`--repo` and
    /// `--tag` / `--digest`): nothing is written to it. The first target besides the reference
    /// supplies the content; the reference gets a copy.
    #[arg(long, requires = "repo")]
    read_only: bool,
    /// With --read-only: the repository holding the content.
    #[arg(long, value_name = "NAME", requires = "read_only")]
    repo: Option<String>,
    /// With --read-only: a tag in --repo (repeatable).
    #[arg(long = "tag", value_name = "TAG", requires = "read_only")]
    tags: Vec<String>,
    /// With --read-only: a manifest digest in --repo (repeatable).
    #[arg(long = "digest", value_name = "DIGEST", requires = "read_only")]
    digests: Vec<String>,
}

#[derive(Args, Debug)]
struct RaceArgs {
    /// A target, as for `fuzz` (repeatable; default: every target that can start).
    #[arg(long = "target", value_name = "NAME[=URL]")]
    targets: Vec<String>,
    /// Target config file (default: ./ocidiff.toml when present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    version: VersionArgs,
    #[command(flatten)]
    tls: TlsArgs,
    /// Run seed (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop starting new cases after this many seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// At most this many cases.
    #[arg(long, default_value_t = 200)]
    cases: u64,
    /// At most this many clients per segment (2..=8).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(2..=8))]
    clients: u8,
    /// At most this many ops per client (1..=4).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=4))]
    ops_per_client: u8,
    /// Race families to draw from, comma-separated (tags, blobs, deletes, referrers,
    /// uploads, mixed; default: all).
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<String>,
    /// A target's declared consistency level: NAME=strict|lazy-delete (repeatable).
    #[arg(long = "consistency", value_name = "NAME=LEVEL")]
    consistency: Vec<String>,
    /// Attempts per shrink candidate and for the replay rate (and for --replay).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    attempts: u32,
    /// Do not shrink races.
    #[arg(long)]
    no_shrink: bool,
    /// Re-run one race case (a race.toml or its finding directory) --attempts times:
    /// exit 1 when some target's history was not linearizable, 0 when none was.
    #[arg(long, value_name = "PATH")]
    replay: Option<PathBuf>,
    /// Output directory (findings.json, races/<id>/).
    #[arg(long, default_value = "./ocidiff-race-out")]
    out: PathBuf,
}

#[derive(Args, Debug)]
struct FuzzArgs {
    /// A target: reference | container-registry | distribution[:/path] | NAME=KIND |
    /// NAME=http(s)://[user:pass@]host[:port]. Repeatable; default: every target that can start.
    #[arg(long = "target", value_name = "NAME[=URL]")]
    targets: Vec<String>,
    /// Target config file (default: ./ocidiff.toml when present); see harness/TARGETS.md.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    version: VersionArgs,
    #[command(flatten)]
    tls: TlsArgs,
    /// Run seed (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop starting new cases after this many seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// At most this many cases.
    #[arg(long, default_value_t = 1000)]
    cases: u64,
    /// At most this many ops per case.
    #[arg(long)]
    max_ops: Option<usize>,
    /// Share (0..=1) of deliberately invalid ops.
    #[arg(long)]
    invalid_share: Option<f64>,
    /// Share (0..=1) of the cases and time given to concurrent cases (as `ocidiff race`):
    /// races go to races.json and races/<id>/.
    #[arg(long, default_value_t = 0.0)]
    race_share: f64,
    /// Output directory (findings.json, findings/<id>/).
    #[arg(long, default_value = "./ocidiff-out")]
    out: PathBuf,
    /// Run only shard I of N (cases i with i % N == I), e.g. 0/4.
    #[arg(long, value_parser = parse_shard, value_name = "I/N")]
    shard: Option<(u32, u32)>,
    /// Do not shrink findings.
    #[arg(long)]
    no_shrink: bool,
    /// Shrink variations and unsupported findings too (default: only violations).
    #[arg(long)]
    shrink_variations: bool,
    /// Cases in flight at once, fixed (default: adapted to the targets, from 4 per core up to
    /// 64 while ops do not slow down, halved when a target throttles). Findings do not
    /// depend on it.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,
    /// At most this many requests in flight to one target (protects small registries).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=4096))]
    max_inflight: Option<u16>,
    /// Upload sessions held open at once per target at most (default 32; POSTs wait for
    /// room). Every session a case leaves open is cancelled when the case ends.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    max_open_sessions: Option<u16>,
    /// At most this many requests per second to each target under test (not the reference);
    /// a target's `rate` in ocidiff.toml wins.
    #[arg(long, value_name = "REQ_PER_S", value_parser = parse_rate)]
    rate: Option<Duration>,
    /// At most this many requests to each target under test in the whole run (a hosted
    /// registry's quota): once one is spent no new case starts and the run ends cleanly. A
    /// target's `max_requests` in ocidiff.toml wins.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_requests: Option<u64>,
    /// Keep what the run pushed: each case's repositories on the embedded registries
    /// (default: forgotten once the case is judged, so memory stays bounded), and everything
    /// pushed to URL targets (default: deleted at the end, what stays in leftovers.json).
    #[arg(long)]
    no_cleanup: bool,
    /// Known findings: a previous `findings.json` or a known-issues TOML file (README,
    /// "Baselines"). Findings are reported as new, known or no longer seen (`baseline.json`);
    /// the run exits 1 only for new violations.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// Scenario file (TOML).
    file: PathBuf,
    /// Targets (as for `fuzz`); default: every target that can start.
    #[arg(long = "target", value_name = "NAME[=URL]")]
    targets: Vec<String>,
    /// Target config file (default: ./ocidiff.toml when present); see harness/TARGETS.md.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    version: VersionArgs,
}

/// `--rate`: requests per second, as the least time between two requests.
fn parse_rate(s: &str) -> Result<Duration, String> {
    let rate: f64 = s
        .parse()
        .map_err(|_| format!("expected requests per second (a number), got {s:?}"))?;
    crate::execute::interval_of_rate(rate)
}

fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("expected I/N, got {s:?}"))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("bad shard index {i:?}"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("bad shard count {n:?}"))?;
    if n == 0 || i >= n {
        return Err(format!("shard index must be below the count (got {i}/{n})"));
    }
    Ok((i, n))
}

/// Entry point of the binary: returns the process exit code.
pub fn main() -> i32 {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 2;
        }
    };
    rt.block_on(async {
        match cli.cmd {
            Cmd::Fuzz(a) => fuzz(a).await,
            Cmd::Replay(a) => replay_cmd(a).await,
            Cmd::Targets(a) => targets_cmd(a).await,
            Cmd::Run(a) => run_cmd(a).await,
            Cmd::Conformance(a) => conformance_cmd(a).await,
            Cmd::Merge(a) => merge_cmd(a),
            Cmd::Race(a) => race_cmd(a).await,
            Cmd::Completions(a) => completions_cmd(a),
            Cmd::Man(a) => man_cmd(a),
        }
    })
}

/// The `--baseline` of `fuzz` and `merge`: loaded, its warnings printed; `Err` is the message.
fn load_baseline(
    file: Option<&std::path::Path>,
) -> Result<Option<crate::report::baseline::Baseline>, String> {
    match file.map(crate::report::baseline::load) {
        None => Ok(None),
        Some(Ok(b)) => {
            for w in &b.warnings {
                eprintln!("warning: {w}");
            }
            Ok(Some(b))
        }
        Some(Err(e)) => Err(e.to_string()),
    }
}

fn merge_cmd(a: MergeArgs) -> i32 {
    let baseline = match load_baseline(a.baseline.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match crate::drivers::merge::merge(&a.out, &a.inputs, baseline.as_ref(), a.spec_version) {
        Ok(s) => {
            println!(
                "merged {} runs: {} cases, {} ops; seed {}",
                s.run.merged.len(),
                s.run.cases_run,
                s.run.ops_run,
                s.run.seed
            );
            if !s.missing_shards.is_empty() {
                eprintln!(
                    "warning: shards missing from the merge: {} (their cases are not in it)",
                    s.missing_shards.join(", ")
                );
            }
            let names: Vec<String> = s.run.targets.iter().map(|(n, _)| n.clone()).collect();
            println!(
                "{}",
                crate::report::judged_by(&s.findings, s.run.spec_version)
            );
            print!("{}", crate::report::summary_table(&names, &s.findings));
            print!("{}", crate::report::next_spec_section(&s.findings));
            println!(
                "{} violations, {} variations, {} unsupported; findings in {}",
                s.violations,
                s.variations,
                s.unsupported,
                a.out.join("findings.json").display()
            );
            if let Some(c) = &s.baseline {
                print!("{}", c.render());
            }
            s.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

/// The clap definition of the whole command line (completions and man pages are made from it).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

fn completions_cmd(a: CompletionsArgs) -> i32 {
    let mut cmd = command();
    clap_complete::generate(a.shell, &mut cmd, "ocidiff", &mut std::io::stdout());
    0
}

/// Renders the man pages: `ocidiff.1`, then `ocidiff-<command>.1` for every command.
pub fn man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let cmd = command();
    let mut pages = Vec::new();
    let mut top = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut top)?;
    pages.push(("ocidiff.1".to_string(), top));
    for sub in cmd.get_subcommands() {
        let name = format!("ocidiff-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(
            sub.clone()
                .name(name.clone())
                .bin_name(format!("ocidiff {}", sub.get_name())),
        )
        .render(&mut page)?;
        pages.push((format!("{name}.1"), page));
    }
    Ok(pages)
}

fn man_cmd(a: ManArgs) -> i32 {
    let pages = match man_pages() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: rendering the man pages: {e}");
            return 2;
        }
    };
    match a.out {
        None => {
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(&pages[0].1);
            0
        }
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("error: creating {}: {e}", dir.display());
                return 2;
            }
            for (name, bytes) in &pages {
                if let Err(e) = crate::vocab::fs::write_atomic(&dir.join(name), bytes) {
                    eprintln!("error: {e:#}");
                    return 2;
                }
            }
            println!("{} man pages in {}", pages.len(), dir.display());
            0
        }
    }
}

/// The targets of a run that writes into `out`: resolved from the flags or the config file,
/// process and container logs kept in `out/logs`, `--insecure` / `--ca` applied.
fn targets_for_run(
    args: &[String],
    config: Option<&std::path::Path>,
    tls: &TlsArgs,
    out: &std::path::Path,
) -> Result<Vec<(String, TargetSpec)>, String> {
    let mut t = resolve_targets_with(args, config)?;
    crate::targets::external::set_log_dir(&mut t, &out.join("logs"));
    apply_tls_flags(&mut t, tls.insecure, tls.ca.as_deref())?;
    Ok(t)
}

/// Applies `--insecure` / `--ca` to the targets.
fn apply_tls_flags(
    targets: &mut [(String, TargetSpec)],
    insecure: bool,
    ca: Option<&std::path::Path>,
) -> Result<(), String> {
    let pem = match ca {
        Some(p) => {
            let pem = std::fs::read(p).map_err(|e| format!("--ca {}: {e}", p.display()))?;
            reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--ca {}: not a PEM certificate bundle: {e}", p.display()))?;
            Some(pem)
        }
        None => None,
    };
    crate::targets::external::apply_tls(targets, insecure, pem.as_deref());
    Ok(())
}

/// Parses `--target`s (a bare name picks that target of the config file), else takes the
/// config file's targets (`--config`, or ./ocidiff.toml when present), else the defaults.
fn resolve_targets_with(
    args: &[String],
    config: Option<&std::path::Path>,
) -> Result<Vec<(String, TargetSpec)>, String> {
    let configured = match crate::targets::config::resolve_path(config) {
        Some(path) => Some(
            crate::targets::config::load(&path)
                .map_err(|e| format!("config: {}", redact(&format!("{e:#}"))))?,
        ),
        None => None,
    };
    let Some(configured) = configured else {
        return resolve_targets(args);
    };
    if args.is_empty() {
        eprintln!(
            "targets (config): {}",
            configured
                .iter()
                .map(|(n, s)| format!("{n} ({})", s.describe()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(configured);
    }
    args.iter()
        .map(|a| {
            let a_trim = a.trim();
            if let Some((n, s)) = configured.iter().find(|(n, _)| n == a_trim) {
                return Ok((n.clone(), s.clone()));
            }
            parse_target_arg(a).map_err(|e| format!("--target {}: {e:#}", redact(a)))
        })
        .collect()
}

/// Parses `--target`s, or picks the defaults (printing what was skipped).
fn resolve_targets(args: &[String]) -> Result<Vec<(String, TargetSpec)>, String> {
    if args.is_empty() {
        let (targets, skipped) = default_targets();
        eprintln!(
            "targets: {}",
            targets
                .iter()
                .map(|(n, s)| format!("{n} ({})", s.describe()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for s in skipped {
            eprintln!("skipped: {s}");
        }
        return Ok(targets);
    }
    args.iter()
        .map(|a| parse_target_arg(a).map_err(|e| format!("--target {}: {e:#}", redact(a))))
        .collect()
}

async fn race_cmd(a: RaceArgs) -> i32 {
    use crate::compare::race::Consistency;
    use crate::drivers::race::{read_case, replay_race, run_race, RaceRunConfig};
    let targets = match targets_for_run(&a.targets, a.config.as_deref(), &a.tls, &a.out) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut consistency = std::collections::BTreeMap::new();
    for c in &a.consistency {
        let Some((name, level)) = c.split_once('=') else {
            eprintln!("error: --consistency {c:?}: expected NAME=strict|lazy-delete");
            return 2;
        };
        match level.parse::<Consistency>() {
            Ok(l) => {
                consistency.insert(name.to_string(), l);
            }
            Err(e) => {
                eprintln!("error: --consistency {c:?}: {e}");
                return 2;
            }
        }
    }
    for k in &a.kinds {
        if !crate::generate::race::KINDS.contains(&k.as_str()) {
            eprintln!(
                "error: --kinds: unknown race family {k:?} ({})",
                crate::generate::race::KINDS.join(", ")
            );
            return 2;
        }
    }
    let mut cfg = RaceRunConfig::new(targets, a.out);
    cfg.spec_version = a.version.spec_version;
    cfg.attempts = a.attempts;
    cfg.consistency = consistency;
    if let Some(path) = &a.replay {
        let case = match read_case(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        return match replay_race(
            cfg.targets,
            &case,
            a.attempts,
            &cfg.consistency,
            cfg.budget,
            cfg.spec_version,
        )
        .await
        {
            Ok(r) => {
                for (t, why) in &r.shown {
                    println!("{t}: {why}");
                }
                println!(
                    "race reproduced in {}/{} attempts",
                    r.reproduced, r.attempts
                );
                i32::from(r.reproduced > 0)
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        };
    }
    let seed = a.seed.unwrap_or_else(rand::random);
    eprintln!("seed: {seed} (re-run with --seed {seed})");
    cfg.seed = seed;
    cfg.cases = a.cases;
    cfg.duration = Duration::from_secs(a.duration);
    cfg.shrink = !a.no_shrink;
    cfg.race.max_clients = usize::from(a.clients);
    cfg.race.max_ops = usize::from(a.ops_per_client);
    if !a.kinds.is_empty() {
        cfg.race.kinds = a.kinds.clone();
    }
    match run_race(cfg).await {
        Ok(s) => {
            println!(
                "race run {}: {} cases, {} histories judged ({} inconclusive, {} failing one op \
                 at a time too: not races; {} not judged: the target diverged before the \
                 segment) in {:.1}s; seed {seed}",
                s.run_id,
                s.cases_run,
                s.histories,
                s.inconclusive,
                s.sequential,
                s.unjudged,
                s.elapsed.as_secs_f64()
            );
            for b in &s.sequential_bugs {
                println!(
                    "sequential bug, not a race: {} {} on {}: {} ({} histories; the fuzzer's \
                     finding {})",
                    b.finding, b.rule, b.target, b.summary, b.histories, b.finding
                );
            }
            for f in &s.findings {
                println!(
                    "{} {} {} on {}: {} [{} clients / {} ops after shrinking, reproduced {}/{}]",
                    f.id,
                    f.class,
                    f.rule,
                    f.target,
                    f.summary,
                    f.clients,
                    f.ops,
                    f.reproduced,
                    f.attempts
                );
            }
            println!("written to {}", s.out.display());
            s.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

async fn fuzz(a: FuzzArgs) -> i32 {
    let targets = match targets_for_run(&a.targets, a.config.as_deref(), &a.tls, &a.out) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut gen = GenConfig::default();
    if let Some(m) = a.max_ops {
        if m == 0 {
            eprintln!("error: --max-ops must be at least 1");
            return 2;
        }
        gen.max_ops = m;
    }
    if let Some(s) = a.invalid_share {
        if !(0.0..=1.0).contains(&s) {
            eprintln!("error: --invalid-share must be within 0..=1");
            return 2;
        }
        gen.invalid_share = s;
    }
    if !(0.0..=1.0).contains(&a.race_share) {
        eprintln!("error: --race-share must be within 0..=1");
        return 2;
    }
    let baseline = match load_baseline(a.baseline.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if let Some(Err(e)) = baseline
        .as_ref()
        .map(|b| b.check_version(a.version.spec_version))
    {
        eprintln!("error: {e}");
        return 2;
    }
    let seed = a.seed.unwrap_or_else(rand::random);
    eprintln!("seed: {seed} (re-run with --seed {seed})");
    let cfg = FuzzConfig {
        targets,
        seed,
        duration: Duration::from_secs(a.duration),
        cases: a.cases,
        gen,
        out: a.out,
        shard: a.shard.unwrap_or((0, 1)),
        shrink: !a.no_shrink,
        shrink_variations: a.shrink_variations,
        progress: !a.quiet,
        jobs: a.jobs.map_or(0, usize::from),
        max_inflight: a.max_inflight.map(usize::from),
        max_open_sessions: a
            .max_open_sessions
            .map_or(crate::execute::DEFAULT_MAX_OPEN_SESSIONS, usize::from),
        min_interval: a.rate,
        max_requests: a.max_requests,
        cleanup: !a.no_cleanup,
        baseline,
        race_share: a.race_share,
        spec_version: a.version.spec_version,
    };
    match run_fuzz(cfg).await {
        Ok(s) => {
            println!(
                "run {}: {} cases, {} ops in {:.1}s{}; seed {seed}",
                s.run_id,
                s.cases_run,
                s.ops_run,
                s.elapsed.as_secs_f64(),
                if s.completed {
                    String::new()
                } else if let Some(spent) = s.stats.iter().find(|t| t.budget_spent) {
                    format!(
                        " (stopped: the request budget of {} was spent)",
                        spent.target
                    )
                } else {
                    " (stopped by --duration)".to_string()
                }
            );
            println!(
                "{}",
                crate::report::judged_by(&s.findings, a.version.spec_version)
            );
            print!("{}", crate::report::summary_table(&s.targets, &s.findings));
            print!("{}", crate::report::next_spec_section(&s.findings));
            for st in &s.stats {
                println!("{}", st.line());
            }
            if a.jobs.is_none() {
                println!(
                    "cases in flight: adapted to the targets, up to {} (--jobs N fixes it)",
                    s.peak_jobs
                );
            }
            for c in &s.cleanup {
                println!(
                    "{}: cleanup deleted {} of what the run pushed, {} left{}",
                    c.target,
                    c.deleted,
                    c.left.len(),
                    c.left.first().map_or(String::new(), |l| format!(
                        " ({}; listed in {})",
                        l.reason,
                        s.out.join("leftovers.json").display()
                    ))
                );
            }
            let runs: u32 = s.findings.iter().map(|f| f.shrink_runs).sum();
            let skipped: u32 = s.findings.iter().map(|f| f.shrink_skipped).sum();
            if runs + skipped > 0 {
                println!(
                    "shrinking: {runs} candidate runs, {skipped} candidates dropped by preconditions without a run"
                );
            }
            println!(
                "{} violations, {} variations, {} unsupported; findings in {}",
                s.violations,
                s.variations,
                s.unsupported,
                s.out.join("findings.json").display()
            );
            if let Some(c) = &s.baseline {
                print!("{}", c.render());
            }
            if let Some(r) = &s.races {
                println!(
                    "concurrent cases: {} ({} histories judged, {} failing one op at a time too); \
                     {} races in {}",
                    r.cases_run,
                    r.histories,
                    r.sequential,
                    r.findings.len(),
                    r.out.join("races.json").display()
                );
                for f in &r.findings {
                    println!("  {} {} on {}: {}", f.id, f.rule, f.target, f.summary);
                }
            }
            s.exit_code()
        }
        Err(e) => {
            eprintln!("error: {}", redact(&format!("{e:#}")));
            2
        }
    }
}

async fn replay_cmd(a: ReplayArgs) -> i32 {
    let targets = match resolve_targets_with(&a.targets, a.config.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let r = match replay(&a.file, targets, a.version.spec_version).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}", redact(&format!("{e:#}")));
            return 2;
        }
    };
    println!("namespace: {}", r.namespace);
    for (i, op) in r.scenario.ops.iter().enumerate() {
        println!("\n#{i} {}", serde_json::to_string(op).unwrap_or_default());
        for (t, name) in r.outcome.targets.iter().enumerate() {
            let exs = r
                .outcome
                .ops
                .get(i)
                .and_then(|o| o.per_target.get(t))
                .cloned()
                .unwrap_or_default();
            for ex in exs {
                let o = &ex.observation;
                let headers: Vec<String> =
                    o.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                println!(
                    "  {name:<20} {:<10} {:<6} {:>3}{} | {} | {}",
                    ex.label,
                    ex.request.method,
                    o.status,
                    o.transport_error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default(),
                    headers.join("; "),
                    serde_json::to_string(&o.body).unwrap_or_default()
                );
            }
        }
    }
    println!("\ndivergences: {}", r.divergences.len());
    for d in &r.divergences {
        println!(
            "  {} {} op #{} {} {} [{}]: {}",
            d.class, d.target, d.op_index, d.label, d.endpoint, d.rule, d.summary
        );
    }
    if !r.expectation_failures.is_empty() {
        println!("expectation failures: {}", r.expectation_failures.len());
        for f in &r.expectation_failures {
            println!(
                "  {} op #{} {} [{}]: {}",
                f.target, f.op, f.label, f.expected, f.actual
            );
        }
    }
    if let Some(rep) = r.reproduced {
        println!(
            "{}",
            if rep {
                "REPRODUCED: the scenario's divergence showed again"
            } else {
                "NOT REPRODUCED: the scenario's divergence did not show"
            }
        );
    }
    if r.outcome.ops.iter().all(|op| {
        op.per_target
            .iter()
            .skip(1)
            .flatten()
            .all(|ex| ex.observation.status == 0)
    }) && r.outcome.targets.len() > 1
    {
        eprintln!("CANNOT RUN: no target but the reference answered");
        return 2;
    }
    r.exit_code()
}

fn load_or_report(path: &std::path::Path) -> Option<Vec<crate::drivers::conformance::Workflow>> {
    match crate::drivers::conformance::load(path) {
        Ok(w) => Some(w),
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            None
        }
    }
}

async fn run_cmd(a: RunArgs) -> i32 {
    use crate::scenario::checks::Outcome;
    let mut workflows = Vec::new();
    let mut bad = false;
    for p in &a.paths {
        match load_or_report(p) {
            Some(w) => workflows.extend(w),
            None => bad = true,
        }
    }
    if bad {
        return 2;
    }
    let targets = match resolve_targets_with(&a.targets, a.config.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let targets = match crate::drivers::case::with_reference_first(targets) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let fleet = match crate::drivers::case::Fleet::launch(&targets, a.version.spec_version).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {}", redact(&format!("{e:#}")));
            return 2;
        }
    };
    let run = crate::drivers::case::run_id();
    let mut total = crate::scenario::checks::Counts::default();
    let mut violations = 0usize;
    let mut code = 0;
    for (i, w) in workflows.iter().enumerate() {
        let ns = format!("ocidiff{run}s{i}");
        println!("== {} — {} (namespace {ns})", w.source, w.title());
        let r = match crate::drivers::conformance::run_scenario(&fleet.executor, &w.scenario, &ns)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {}: {e:#}", w.source);
                code = 2;
                continue;
            }
        };
        for (t, checks) in r.checks.iter().enumerate() {
            let name = &r.outcome.targets[t];
            for c in checks {
                total.add(c.outcome);
                if matches!(c.outcome, Outcome::Pass | Outcome::Info) && !a.verbose {
                    continue;
                }
                println!(
                    "  {name:<18} {:<4} {:<6} {} [{}{}]{}",
                    c.outcome.to_string().to_uppercase(),
                    c.level.to_string().to_uppercase(),
                    c.name,
                    c.endpoint,
                    c.rule
                        .as_deref()
                        .map(|r| format!(" {r}"))
                        .unwrap_or_default(),
                    if c.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", c.message)
                    }
                );
                if c.outcome == Outcome::Fail && !c.spec.is_empty() {
                    println!("  {:<18}      spec: {}", "", c.spec);
                }
                if a.verbose {
                    for l in crate::report::conformance::exchange_lines(c).lines() {
                        println!("  {:<18}      {l}", "");
                    }
                }
            }
            let counts = crate::scenario::checks::Counts::of(checks);
            let (v, var, u) = crate::report::conformance::divergence_counts(&r.divergences, name);
            violations += v;
            println!(
                "  {name:<18} {} pass, {} fail, {} warn, {} skip; oracle: {v} violations, {var} variations, {u} unsupported",
                counts.pass, counts.fail, counts.warn, counts.skip
            );
        }
    }
    fleet.shutdown().await;
    println!(
        "\ntotal: {} pass, {} fail, {} warn, {} skip, {} info; {violations} violations",
        total.pass, total.fail, total.warn, total.skip, total.info
    );
    if code == 0 && (total.fail > 0 || violations > 0) {
        code = 1;
    }
    code
}

async fn conformance_cmd(a: ConformanceArgs) -> i32 {
    if a.read_only {
        let targets = match targets_for_run(&a.targets, a.config.as_deref(), &a.tls, &a.out) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        let mut cfg = crate::drivers::read_only::ReadOnlyConfig::new(
            a.repo.as_deref().unwrap_or_default(),
            a.tags.clone(),
            a.digests.clone(),
        );
        cfg.spec_version = a.version.spec_version;
        return match crate::drivers::read_only::run_read_only(targets, &cfg).await {
            Ok((r, imp)) => {
                println!(
                    "read-only: {} manifests, {} blobs of {} imported",
                    imp.content.manifest_count() - 1,
                    imp.content.blob_count() - 1,
                    cfg.repo
                );
                for s in imp.skipped_blobs.iter().chain(&imp.skipped_manifests) {
                    println!("  not checked: {s}");
                }
                conformance_report(&r, &a.out)
            }
            Err(e) => {
                eprintln!("error: {}", redact(&format!("{e:#}")));
                2
            }
        };
    }
    let workflows = match &a.scenarios {
        Some(p) => match load_or_report(p) {
            Some(w) => w,
            None => return 2,
        },
        None => match crate::drivers::conformance::builtin_workflows() {
            Ok(mut w) => {
                if !a.core {
                    w.extend(crate::drivers::data_kinds::workflows());
                }
                w
            }
            Err(e) => {
                eprintln!("error: built-in workflow: {e}");
                return 2;
            }
        },
    };
    let targets = match targets_for_run(&a.targets, a.config.as_deref(), &a.tls, &a.out) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let r = match crate::drivers::conformance::run_conformance(
        targets,
        &workflows,
        a.version.spec_version,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}", redact(&format!("{e:#}")));
            return 2;
        }
    };
    conformance_report(&r, &a.out)
}

/// Writes the conformance outputs and prints the matrix; the exit code of the run.
fn conformance_report(
    r: &crate::report::conformance::ConformanceResults,
    out: &std::path::Path,
) -> i32 {
    if let Err(e) = crate::report::conformance::write_outputs(r, out) {
        eprintln!("error: writing the report: {e:#}");
        return 2;
    }
    print!("{:<20}", "target");
    for w in &r.workflows {
        print!(" {:<24}", w.id);
    }
    println!(" verdict");
    for t in &r.targets {
        print!("{:<20}", t.name);
        for w in &r.workflows {
            let c = r.cell(&t.name, &w.id).map(|c| c.counts).unwrap_or_default();
            print!(
                " {:<24}",
                format!("{}p {}f {}w {}s", c.pass, c.fail, c.warn, c.skip)
            );
        }
        println!(
            " {}",
            if r.target_failed(&t.name) {
                "FAIL"
            } else {
                "pass"
            }
        );
    }
    println!(
        "report: {} (also junit.xml, results.json)",
        out.join("index.html").display()
    );
    i32::from(r.any_failed())
}

async fn targets_cmd(a: TargetsArgs) -> i32 {
    if a.presets {
        for p in crate::targets::presets::PRESETS {
            println!("preset {:<24} {}", p.name, p.launch);
            for allow in p.allows {
                println!("  {:<30} allows: {allow}", "");
            }
        }
        println!();
    }
    let explicit = !a.targets.is_empty()
        || crate::targets::config::resolve_path(a.config.as_deref()).is_some();
    let (targets, skipped) = if explicit {
        match resolve_targets_with(&a.targets, a.config.as_deref()) {
            Ok(t) => (t, Vec::new()),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    } else {
        default_targets()
    };
    let mut targets = targets;
    if let Err(e) = apply_tls_flags(&mut targets, a.tls.insecure, a.tls.ca.as_deref()) {
        eprintln!("error: {e}");
        return 2;
    }
    let mut code = 0;
    for (name, spec) in &targets {
        match launch(name, spec).await {
            Ok(t) => {
                println!(
                    "{name:<20} ok    {} — {}",
                    redact(t.base_url.as_str()),
                    spec.describe()
                );
                t.shutdown().await;
            }
            Err(e) => {
                println!(
                    "{name:<20} FAIL  {} — {}",
                    spec.describe(),
                    redact(&format!("{e:#}"))
                );
                code = 2;
            }
        }
    }
    for s in skipped {
        println!("skipped: {s}");
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_fuzz_flags() {
        let c = Cli::try_parse_from([
            "ocidiff",
            "fuzz",
            "--target",
            "reference",
            "--target",
            "x=http://127.0.0.1:5000",
            "--seed",
            "7",
            "--shard",
            "1/4",
            "--no-shrink",
            "--quiet",
            "--max-ops",
            "5",
        ])
        .unwrap();
        match c.cmd {
            Cmd::Fuzz(a) => {
                assert_eq!(a.targets.len(), 2);
                assert_eq!(a.seed, Some(7));
                assert_eq!(a.shard, Some((1, 4)));
                assert_eq!(a.duration, 60);
                assert_eq!(a.cases, 1000);
                assert!(a.no_shrink && a.quiet);
            }
            other => panic!("{other:?}"),
        }
        let e = Cli::try_parse_from(["ocidiff", "fuzz", "--shard", "4/4"]).unwrap_err();
        assert!(e.use_stderr());
        let e = Cli::try_parse_from(["ocidiff", "--help"]).unwrap_err();
        assert!(!e.use_stderr());
        let e = Cli::try_parse_from(["ocidiff", "bogus"]).unwrap_err();
        assert!(e.use_stderr());
    }
}
