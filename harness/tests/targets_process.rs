//! Process targets (command lines with `{port}` / `{dir}`), `ocidiff.toml` through the CLI, and
//! `ocidiff targets`. The process parts use Debian's docker-registry and skip without it
//! (fail instead with `OCIDIFF_REQUIRE_EXTERNAL=1`, as in CI).

mod common;

use ocidiff::targets::external::{ExternalSpec, ProcessSpec};
use ocidiff::targets::{find_distribution_binary, launch, TargetSpec};
use std::process::Command;
use std::time::Duration;

fn distribution_process() -> Option<ProcessSpec> {
    let bin = find_distribution_binary()?;
    let mut p = ProcessSpec {
        command: vec![
            "sh".into(),
            "-c".into(),
            // A wrapper shell: stopping must reach the registry too (process group).
            format!(
                "printf 'version: 0.1\\nstorage:\\n  filesystem:\\n    rootdirectory: {{dir}}/data\\n  delete:\\n    enabled: true\\nhttp:\\n  addr: 127.0.0.1:{{port}}\\n' > {{dir}}/config.yml && {} serve {{dir}}/config.yml",
                bin.display()
            ),
        ],
        ready_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    p.env.insert("OCIDIFF_TEST_DIR".into(), "{dir}".into());
    Some(p)
}

#[tokio::test]
async fn process_target_runs_and_cleans_up() {
    let Some(mut p) = distribution_process() else {
        common::skip_external("no docker-registry / registry binary on PATH");
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    p.log_dir = Some(logs.path().to_path_buf());
    let spec = TargetSpec::External(Box::new(ExternalSpec::Process(p)));
    assert_eq!(spec.kind(), "process");
    let t = launch("proc", &spec).await.unwrap();
    assert_eq!(t.kind, "process");
    let url = t.base_url.clone();
    let log = t.log_path.clone().unwrap();
    let dir = log.parent().unwrap().to_path_buf();
    assert!(dir.join("config.yml").is_file(), "{{dir}} not substituted");
    let status = reqwest::get(url.join("v2/").unwrap())
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    t.shutdown().await;
    assert!(!dir.exists(), "temp dir left behind");
    assert!(logs.path().join("proc.log").is_file(), "log not kept");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    assert!(
        client.get(url.join("v2/").unwrap()).send().await.is_err(),
        "registry still answering after shutdown"
    );
}

#[tokio::test]
async fn dropped_process_target_stops() {
    let Some(p) = distribution_process() else {
        common::skip_external("no docker-registry / registry binary on PATH");
        return;
    };
    let spec = TargetSpec::External(Box::new(ExternalSpec::Process(p)));
    let t = launch("proc-drop", &spec).await.unwrap();
    let url = t.base_url.clone();
    drop(t);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    assert!(client.get(url.join("v2/").unwrap()).send().await.is_err());
}

fn ocidiff() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ocidiff"))
}

#[test]
fn cli_reads_config_and_lists_targets() {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::from("[[target]]\nname = \"oracle\"\npreset = \"reference\"\n\n[[target]]\nname = \"cr\"\npreset = \"container-registry\"\n");
    let have_dist = find_distribution_binary().is_some();
    if !have_dist {
        common::skip_external("no docker-registry / registry binary on PATH (dist-proc part)");
    }
    if have_dist {
        toml.push_str("\n[[target]]\nname = \"dist-proc\"\nprocess = { command = [\"sh\", \"-c\", \"printf 'version: 0.1\\\\nstorage:\\\\n  filesystem:\\\\n    rootdirectory: {dir}/d\\\\nhttp:\\\\n  addr: 127.0.0.1:{port}\\\\n' > c.yml && exec docker-registry serve c.yml\"], ready_timeout = 20 }\n");
    }
    let cfg = dir.path().join("ocidiff.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let out = ocidiff()
        .args(["targets", "--presets", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("preset harbor"), "{stdout}");
    assert!(
        stdout.contains("oracle") && stdout.contains("ok"),
        "{stdout}"
    );
    assert!(stdout.contains("cr "), "{stdout}");
    if have_dist {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("dist-proc") && l.contains(" ok ")),
            "{stdout}"
        );
    }
    // `--target NAME` picks a configured target; bad config is a usage error (2).
    let out = ocidiff()
        .args(["targets", "--target", "cr", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("cr ") && !stdout.contains("oracle"),
        "{stdout}"
    );
    std::fs::write(
        &cfg,
        "[[target]]\nname = \"x\"\nurl = \"http://h\"\npassword = \"leak-me\"\n",
    )
    .unwrap();
    let out = ocidiff()
        .args(["targets", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("username") && !stderr.contains("leak-me"),
        "{stderr}"
    );
}

#[test]
fn cli_fuzz_with_config_keeps_process_logs() {
    if find_distribution_binary().is_none() {
        common::skip_external("no docker-registry / registry binary on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ocidiff.toml");
    std::fs::write(
        &cfg,
        "[[target]]\nname = \"dist-proc\"\nprocess = { command = [\"sh\", \"-c\", \"printf 'version: 0.1\\\\nstorage:\\\\n  filesystem:\\\\n    rootdirectory: {dir}/d\\\\n  delete:\\\\n    enabled: true\\\\nhttp:\\\\n  addr: 127.0.0.1:{port}\\\\n' > c.yml && exec docker-registry serve c.yml\"], ready_timeout = 20 }\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = ocidiff()
        .args(["fuzz", "--config"])
        .arg(&cfg)
        .args([
            "--duration",
            "20",
            "--cases",
            "5",
            "--seed",
            "2",
            "--quiet",
            "--no-shrink",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert!(out_dir.join("findings.json").is_file());
    assert!(
        out_dir.join("logs").join("dist-proc.log").is_file(),
        "{stderr}"
    );
}
