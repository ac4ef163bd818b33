//! Real clients through the reference registry: `crane` (go-containerregistry) pushes and
//! pulls an image and an index, `oras` pushes an artifact, attaches a referrer (a manifest
//! with a `subject`), discovers it and pulls it back; through the plain reference and through
//! it with each real registry's quirk profile. What a client cannot do against a profile is
//! listed in [`CANNOT`] with why (a documented fact, not a silent skip); everything else must
//! work. Both clients come from `tests/tools/install-go-tools.sh`.

use ocidiff_e2e::{find_executable, skip_external};
use reference_registry::{Config, Quirks};
use std::path::Path;
use std::process::Command;

/// (profile, step, why): steps a client cannot do against a profile (none today).
const CANNOT: &[(&str, &str, &str)] = &[];

fn tool(name: &str) -> Option<std::path::PathBuf> {
    let found = find_executable(name);
    if found.is_none() {
        skip_external(&format!(
            "go_clients: `{name}` is not installed (bash tests/tools/install-go-tools.sh, then put its folder on PATH)"
        ));
    }
    found
}

/// Runs a client command (bounded by the client's own timeouts); `Err` carries its output.
fn run(cmd: &Path, args: &[&str], dir: &Path) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir.join(".docker"))
        .output()
        .map_err(|e| format!("{}: {e}", cmd.display()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "{} {}: {}\n{text}",
            cmd.display(),
            args.join(" "),
            out.status
        ))
    }
}

/// The steps against one registry at `host` (host:port); each step's result.
fn steps(
    crane: &Path,
    oras: &Path,
    host: &str,
    dir: &Path,
) -> Vec<(&'static str, Result<String, String>)> {
    std::fs::write(dir.join("a.txt"), b"hello from ocidiff\n").unwrap();
    let tar = Command::new("tar")
        .args(["cf", "layer.tar", "a.txt"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(tar.success());
    let img = format!("{host}/clients/img:v1");
    let idx = format!("{host}/clients/idx:v1");
    let art = format!("{host}/clients/art:v1");
    let mut out = Vec::new();
    out.push((
        "crane push image",
        run(
            crane,
            &["append", "--insecure", "-f", "layer.tar", "-t", &img],
            dir,
        ),
    ));
    out.push((
        "crane push index",
        run(
            crane,
            &["index", "append", "--insecure", "-t", &idx, "-m", &img],
            dir,
        ),
    ));
    out.push((
        "crane pull image",
        run(crane, &["pull", "--insecure", &img, "img.tar"], dir).and_then(|o| {
            let len = std::fs::metadata(dir.join("img.tar"))
                .map(|m| m.len())
                .unwrap_or(0);
            if len > 0 {
                Ok(o)
            } else {
                Err("img.tar is empty".into())
            }
        }),
    ));
    out.push((
        "crane pull index manifest",
        run(crane, &["manifest", "--insecure", &idx], dir).and_then(|m| {
            if m.contains("application/vnd.oci.image.index.v1+json") {
                Ok(m)
            } else {
                Err(format!("not an index: {m}"))
            }
        }),
    ));
    out.push((
        "oras push artifact",
        run(
            oras,
            &[
                "push",
                "--plain-http",
                &art,
                "--artifact-type",
                "application/vnd.ocidiff.test",
                "a.txt",
            ],
            dir,
        ),
    ));
    out.push((
        "oras attach referrer",
        run(
            oras,
            &[
                "attach",
                "--plain-http",
                "--artifact-type",
                "application/vnd.ocidiff.sig",
                &art,
                "a.txt",
            ],
            dir,
        ),
    ));
    out.push((
        "oras discover referrer",
        run(
            oras,
            &["discover", "--plain-http", "--format", "json", &art],
            dir,
        )
        .and_then(|o| {
            if o.contains("application/vnd.ocidiff.sig") {
                Ok(o)
            } else {
                Err(format!("the referrer is not listed: {o}"))
            }
        }),
    ));
    let pulled = dir.join("pulled");
    out.push((
        "oras pull artifact",
        run(
            oras,
            &["pull", "--plain-http", "-o", pulled.to_str().unwrap(), &art],
            dir,
        )
        .and_then(|o| match std::fs::read(pulled.join("a.txt")) {
            Ok(b) if b == b"hello from ocidiff\n" => Ok(o),
            other => Err(format!("pulled content differs: {other:?}")),
        }),
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crane_and_oras_through_the_reference_and_every_profile() {
    let (Some(crane), Some(oras)) = (tool("crane"), tool("oras")) else {
        return;
    };
    let mut profiles: Vec<(String, Quirks)> = vec![("reference".into(), Quirks::default())];
    for p in Quirks::PROFILES {
        profiles.push((p.name.to_string(), Quirks::profile(p.name).unwrap()));
    }
    let mut failures = Vec::new();
    for (name, quirks) in profiles {
        let reg = reference_registry::spawn(Config {
            quirks,
            ..Config::default()
        })
        .await
        .unwrap();
        let host = reg
            .url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let dir = tempfile::tempdir().unwrap();
        let (c, o, d) = (crane.clone(), oras.clone(), dir.path().to_path_buf());
        let results = tokio::task::spawn_blocking(move || steps(&c, &o, &host, &d))
            .await
            .unwrap();
        for (step, r) in results {
            let cannot = CANNOT.iter().find(|(p, s, _)| *p == name && *s == step);
            match (r, cannot) {
                (Ok(_), None) => println!("{name:<18} {step:<26} ok"),
                (Err(_), Some((_, _, why))) => println!("{name:<18} {step:<26} cannot: {why}"),
                (Ok(_), Some(_)) => {
                    failures.push(format!("{name}: {step} now works; take it out of CANNOT"))
                }
                (Err(e), None) => failures.push(format!("{name}: {step} failed:\n{e}")),
            }
        }
        reg.shutdown().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
