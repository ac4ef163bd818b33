//! Shell completions and man pages come from the clap definition itself: every command and
//! flag the parser knows is in them, and a flag added later shows up without editing a file.

use std::process::Command;

fn ocidiff(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ocidiff"))
        .args(args)
        .output()
        .unwrap()
}

fn subcommands() -> Vec<String> {
    ocidiff::cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

#[test]
fn completions_list_every_command_and_flag() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = ocidiff(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let text = String::from_utf8(o.stdout).unwrap();
        for sub in subcommands() {
            assert!(text.contains(&sub), "{shell}: no {sub}");
        }
        assert!(
            text.contains("baseline") && text.contains("shard"),
            "{shell}"
        );
    }
    let o = ocidiff(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bash_completion_script_is_valid_bash() {
    let o = ocidiff(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ocidiff.bash");
    std::fs::write(&f, &o.stdout).unwrap();
    let check = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn man_pages_cover_every_command() {
    let o = ocidiff(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    let top = String::from_utf8(o.stdout).unwrap();
    assert!(
        top.starts_with(".ie") || top.contains(".TH ocidiff"),
        "{top}"
    );
    let dir = tempfile::tempdir().unwrap();
    let o = ocidiff(&["man", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    for sub in subcommands() {
        let page = std::fs::read_to_string(dir.path().join(format!("ocidiff-{sub}.1")))
            .unwrap_or_else(|e| panic!("ocidiff-{sub}.1: {e}"));
        assert!(page.contains(&format!(".TH ocidiff-{sub}")), "{sub}");
    }
    let fuzz = std::fs::read_to_string(dir.path().join("ocidiff-fuzz.1")).unwrap();
    assert!(fuzz.contains("baseline") && fuzz.contains("shard"));
}
