//! The GitHub Action (`action.yml`) run as what it is, its step scripts with the inputs in the
//! environment: `action/run.sh` against the reference (by URL, behind basic auth with the
//! credentials from the inputs) and against CNCF distribution 2.8.2, in conformance, run and
//! fuzz mode; the artifacts it uploads and the outputs it sets are checked, and the password
//! appears in none of them.

mod common;

use ocidiff::targets::{find_distribution_binary, launch, TargetSpec};
use reference_registry::{AuthMode, Config};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "act-Pw-7731-secret";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct ActionRun {
    code: i32,
    outputs: BTreeMap<String, String>,
    summary: String,
    log: String,
    out: PathBuf,
}

/// Runs `action/run.sh` with `inputs` (names as in action.yml) in `dir`.
fn run_action(dir: &Path, inputs: &[(&str, &str)]) -> ActionRun {
    let out = dir.join("report");
    let gh_out = dir.join("github_output");
    let gh_summary = dir.join("step_summary");
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("action/run.sh"))
        .current_dir(dir)
        .env("OCIDIFF", env!("CARGO_BIN_EXE_ocidiff"))
        .env("GITHUB_OUTPUT", &gh_out)
        .env("GITHUB_STEP_SUMMARY", &gh_summary)
        .env("INPUT_OUT", &out)
        .env_remove("GITHUB_ACTIONS");
    for (k, v) in inputs {
        cmd.env(format!("INPUT_{}", k.to_uppercase().replace('-', "_")), v);
    }
    let o = cmd.output().unwrap();
    let outputs = std::fs::read_to_string(&gh_out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ActionRun {
        code: o.status.code().unwrap_or(-1),
        outputs,
        summary: std::fs::read_to_string(&gh_summary).unwrap_or_default(),
        log: String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        out,
    }
}

/// [`run_action`] off the async runtime (the registries it talks to run on it), in `dir`
/// (created).
async fn act(dir: PathBuf, inputs: Vec<(&'static str, String)>) -> ActionRun {
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).unwrap();
        let inputs: Vec<(&str, &str)> = inputs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_action(&dir, &inputs)
    })
    .await
    .unwrap()
}

/// Every file under `dir`, as text (lossy).
fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    for e in walk(dir) {
        s.push_str(&String::from_utf8_lossy(&std::fs::read(e).unwrap()));
    }
    s
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

fn fail_count(out: &Path) -> u64 {
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let oracle: Vec<&str> = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["oracle"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !oracle.contains(&c["target"].as_str().unwrap()))
        .map(|c| c["counts"]["fail"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_against_the_reference_with_credentials() {
    let reg = reference_registry::spawn(Config {
        auth: AuthMode::Basic {
            username: "alice".into(),
            password: PASSWORD.into(),
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let url = reg.url();
    let dir = tempfile::tempdir().unwrap();

    // Conformance, a bare URL: the registry passes, outputs are 0, the artifacts are there.
    let r = act(
        dir.path().join("conf"),
        vec![
            ("registry", url.clone()),
            ("username", "alice".to_string()),
            ("password", PASSWORD.to_string()),
            ("mode", "conformance".to_string()),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(r.outputs["violations"], "0", "{:?}", r.outputs);
    assert_eq!(r.outputs["new-violations"], "0");
    assert_eq!(r.outputs["exit-code"], "0");
    for f in ["index.html", "junit.xml", "results.json", "ocidiff.log"] {
        assert!(r.out.join(f).is_file(), "{f}");
    }
    assert!(
        r.summary.contains("ocidiff conformance: 0 violations"),
        "{}",
        r.summary
    );
    let junit = std::fs::read_to_string(r.out.join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"registry."), "{junit}");
    assert!(!r.log.contains(PASSWORD) && !r.summary.contains(PASSWORD));
    assert!(
        !all_text(&r.out).contains(PASSWORD),
        "the password leaked into the report"
    );

    // Wrong credentials: ocidiff cannot run, the step says so (exit 2), not "0 violations".
    let r = act(
        dir.path().join("badauth"),
        vec![
            ("registry", url.clone()),
            ("username", "alice".to_string()),
            ("password", "wrong".to_string()),
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.log);

    // Fuzz, NAME=URL, with a seed and a shard: findings.json and the page; the open reference
    // agrees with the oracle.
    let target = format!("mine={url}");
    let r = act(
        dir.path().join("fuzz"),
        vec![
            ("registry", target.clone()),
            ("username", "alice".to_string()),
            ("password", PASSWORD.to_string()),
            ("mode", "fuzz".to_string()),
            ("duration", "5".to_string()),
            ("seed", "3".to_string()),
            ("shard", "0/2".to_string()),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(r.outputs["violations"], "0", "{}", r.log);
    for f in ["index.html", "junit.xml", "findings.json", "run.json"] {
        assert!(r.out.join(f).is_file(), "{f}");
    }
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["seed"], 3);
    assert_eq!(run["shard"], serde_json::json!([0, 2]));
    assert!(!all_text(&r.out).contains(PASSWORD));

    // The other shard, then both merged (mode merge, directories by glob).
    let r2 = act(
        dir.path().join("fuzz-1"),
        vec![
            ("registry", target.clone()),
            ("username", "alice".to_string()),
            ("password", PASSWORD.to_string()),
            ("mode", "fuzz".to_string()),
            ("duration", "5".to_string()),
            ("seed", "3".to_string()),
            ("shard", "1/2".to_string()),
        ],
    )
    .await;
    assert_eq!(r2.code, 0, "{}", r2.log);
    let glob = format!("{}/fuzz*/report", dir.path().display());
    let md = dir.path().join("merge");
    std::fs::create_dir_all(&md).unwrap();
    let m = run_action(&md, &[("mode", "merge"), ("merge", glob.as_str())]);
    assert_eq!(m.code, 0, "{}", m.log);
    assert!(m.log.contains("merged 2 runs"), "{}", m.log);
    assert_eq!(m.outputs["violations"], "0");
    let merged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.out.join("run.json")).unwrap()).unwrap();
    assert_eq!(merged["merged"].as_array().unwrap().len(), 2);
    let m = run_action(&md, &[("mode", "merge"), ("merge", "/nonexistent/*")]);
    assert_eq!(m.code, 2);

    // Bad input: a clear error and exit 2.
    let r = run_action(dir.path(), &[("registry", url.as_str()), ("mode", "audit")]);
    assert_eq!(r.code, 2);
    assert!(r.log.contains("mode must be"), "{}", r.log);
    reg.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_against_distribution() {
    if find_distribution_binary().is_none() {
        common::skip_external("no docker-registry / registry binary on PATH");
        return;
    }
    let dist = launch("dist", &TargetSpec::Distribution { binary: None })
        .await
        .unwrap();
    let url = dist.base_url.to_string();
    let dir = tempfile::tempdir().unwrap();

    // Conformance: distribution 2.8.2 fails checks; the outputs count them as results.json
    // does, the step fails, and with fail-on-violations=false it passes with the same outputs.
    let target = format!("distribution={url}");
    for (fail_on, code) in [("true", 1), ("false", 0)] {
        let r = act(
            dir.path().join(format!("conf-{fail_on}")),
            vec![
                ("registry", target.clone()),
                ("fail-on-violations", fail_on.to_string()),
            ],
        )
        .await;
        assert_eq!(r.code, code, "{}", r.log);
        let fails = fail_count(&r.out);
        assert!(
            fails > 0,
            "distribution 2.8.2 passes everything?\n{}",
            r.log
        );
        assert_eq!(r.outputs["violations"], fails.to_string());
        assert_eq!(r.outputs["exit-code"], "1");
        let junit = std::fs::read_to_string(r.out.join("junit.xml")).unwrap();
        assert!(junit.contains("<failure"), "{junit}");
    }

    // Read-only conformance of content already there (seeded with `ocidiff run`).
    let repo = common::seed_with_ocidiff_run(
        env!("CARGO_BIN_EXE_ocidiff"),
        &target,
        &repo_root().join("scenarios/pull.toml"),
    );
    let r = act(
        dir.path().join("read-only"),
        vec![
            ("registry", target.clone()),
            ("read-only-repo", repo),
            ("read-only-tags", "v1".to_string()),
        ],
    )
    .await;
    assert!(r.code == 0 || r.code == 1, "{}", r.log);
    assert!(r.log.contains("--read-only"), "{}", r.log);
    assert_eq!(r.outputs["violations"], fail_count(&r.out).to_string());
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["workflows"][0]["id"], "read-only");

    // Scenario files (mode run): the repository's conformance scenarios.
    let r = act(
        dir.path().join("run"),
        vec![("registry", target.clone()), ("mode", "run".to_string())],
    )
    .await;
    assert!(r.code == 0 || r.code == 1, "{}", r.log);
    assert!(r.out.join("results.json").is_file());

    // Fuzz with a baseline of its own findings: the same cases (bounded by count, not time)
    // show the same violations, known now, none new; the step passes.
    let d = dir.path().join("fuzz1");
    std::fs::create_dir_all(&d).unwrap();
    let fuzz = |d: PathBuf, baseline: Option<PathBuf>| {
        let target = target.clone();
        tokio::task::spawn_blocking(move || {
            let b = baseline
                .map(|b| b.to_string_lossy().into_owned())
                .unwrap_or_default();
            run_action(
                &d,
                &[
                    ("registry", target.as_str()),
                    ("mode", "fuzz"),
                    ("duration", "120"),
                    ("cases", "12"),
                    ("seed", "2"),
                    ("baseline", b.as_str()),
                ],
            )
        })
    };
    let first = fuzz(d.clone(), None).await.unwrap();
    assert_eq!(first.code, 1, "{}", first.log);
    let v: u64 = first.outputs["violations"].parse().unwrap();
    assert!(v > 0);
    assert_eq!(first.outputs["new-violations"], first.outputs["violations"]);
    let d2 = dir.path().join("fuzz2");
    std::fs::create_dir_all(&d2).unwrap();
    let second = fuzz(d2, Some(first.out.join("findings.json")))
        .await
        .unwrap();
    assert_eq!(second.code, 0, "{}", second.log);
    assert_eq!(second.outputs["new-violations"], "0", "{}", second.log);
    assert!(second.out.join("baseline.json").is_file());
    dist.shutdown().await;
}

/// action.yml hands every input to the script, and the script reads no input it does not
/// declare.
#[test]
fn action_yml_and_script_agree() {
    let yml = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    let script = std::fs::read_to_string(repo_root().join("action/run.sh")).unwrap();
    let inputs: Vec<String> = yml
        .split("\ninputs:\n")
        .nth(1)
        .unwrap()
        .split("\noutputs:\n")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(':'))
        .map(|l| l.trim().trim_end_matches(':').to_string())
        .collect();
    assert!(inputs.len() >= 10, "{inputs:?}");
    for i in inputs.iter().filter(|i| *i != "artifact-name") {
        let env = format!("INPUT_{}", i.to_uppercase().replace('-', "_"));
        assert!(
            yml.contains(&format!("{env}: ${{{{ inputs.{i} }}}}")),
            "action.yml does not pass {i} as {env}"
        );
        assert!(script.contains(&env), "run.sh ignores {env}");
    }
    for env in script
        .split("INPUT_")
        .skip(1)
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|e| !e.is_empty())
    {
        let name = env.to_lowercase().replace('_', "-");
        assert!(
            inputs.contains(&name),
            "run.sh reads INPUT_{env}, not an input"
        );
    }
    for out in ["violations", "new-violations", "exit-code", "report"] {
        assert!(script.contains(&format!("echo \"{out}=")), "{out}");
        assert!(
            yml.contains(&format!("steps.run.outputs.{out} }}}}")),
            "{out}"
        );
    }
}

/// The example workflows use only inputs the action declares, and the ClusterFuzzLite files
/// name paths that exist.
#[test]
fn examples_and_clusterfuzzlite_files_are_consistent() {
    let root = repo_root();
    let yml = std::fs::read_to_string(root.join("action.yml")).unwrap();
    let mut checked = 0;
    for e in std::fs::read_dir(root.join("examples/ci")).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if !l.trim_start().starts_with("- uses: OWNER/ocidiff@") {
                continue;
            }
            let indent = l.len() - l.trim_start().len() + 2;
            let mut in_with = false;
            for l in &lines[i + 1..] {
                let ind = l.len() - l.trim_start().len();
                if l.trim().is_empty() || l.trim_start().starts_with('#') {
                    continue;
                }
                if ind < indent || (ind == indent && l.trim_start().starts_with("- ")) {
                    break;
                }
                if ind == indent {
                    in_with = l.trim() == "with:";
                } else if in_with && ind == indent + 2 {
                    let key = l.trim().split(':').next().unwrap();
                    assert!(
                        yml.contains(&format!("\n  {key}:\n")),
                        "{}: input {key} is not declared in action.yml",
                        path.display()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 10, "{checked}");
    let docker = std::fs::read_to_string(root.join(".clusterfuzzlite/Dockerfile")).unwrap();
    for l in docker.lines().filter(|l| l.starts_with("COPY ")) {
        let src = l.split_whitespace().nth(1).unwrap();
        assert!(root.join(src).exists(), "{src}");
    }
    let project = std::fs::read_to_string(root.join(".clusterfuzzlite/project.yaml")).unwrap();
    assert!(project.contains("language: rust"));
    let check = Command::new("bash")
        .arg("-n")
        .arg(root.join(".clusterfuzzlite/build.sh"))
        .status()
        .unwrap();
    assert!(check.success());
}
