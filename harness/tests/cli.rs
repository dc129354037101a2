//! The `tumbler` binary: exit codes, artifacts, replay, and clear errors on bad input.

use std::path::PathBuf;
use std::process::Command;

fn tumbler(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tumbler"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("running tumbler");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tumbler-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_passing_run_prints_its_seed_and_a_json_summary() {
    let (code, out, err) = tumbler(&["run", "--seed", "4", "--ops", "200", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("seed: 4\n"), "{out}");
    let last = out.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    for field in [
        "seed",
        "ops",
        "configs",
        "ops_executed",
        "crashes",
        "unsynced_bytes_dropped",
        "dir_entries_dropped",
        "torn_writes",
        "errors_injected",
        "failures",
        "elapsed_ms",
        "ops_per_sec",
    ] {
        assert!(v.get(field).is_some(), "missing {field} in {last}");
    }
    assert_eq!(v["seed"], 4);
    assert_eq!(v["failures"], 0);
    assert!(v["configs"].as_u64().unwrap() >= 20);
}

#[test]
fn a_planted_fault_fails_with_artifacts_and_a_replay_command_that_reproduces_it() {
    let dir = temp_dir("planted");
    let d = dir.to_str().unwrap();
    let (code, out, _) =
        tumbler(&["run", "--seed", "3", "--ops", "2000", "--plant", "skip-wal-sync", "--out", d]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL seed 3"), "{out}");
    assert!(out.contains("[durability]"), "{out}");
    let replay = out.lines().find(|l| l.starts_with("replay: ")).expect("a replay line");
    assert_eq!(replay, format!("replay: tumbler replay {d}"));
    for f in ["ops.txt", "settings.json", "failure.txt", "repro.sh", "configs/default.json"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    assert!(dir.join("histories/default.txt").exists());
    let (code, out2, _) = tumbler(&["replay", d]);
    assert_eq!(code, 1, "{out2}");
    let first = |s: &str| s.lines().find(|l| l.starts_with("- [")).map(str::to_string);
    assert_eq!(first(&out), first(&out2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_gives_exit_2_and_a_clear_message() {
    let (code, _, err) = tumbler(&["run", "--no-such-flag"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = tumbler(&["run", "--error-rate", "7"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--error-rate"), "{err}");
    let dir = temp_dir("badops");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.ops");
    std::fs::write(&file, "# tumbler ops v1\nput \"a\" \"b\"\nfrobnicate 3\n").unwrap();
    let (code, _, err) = tumbler(&["replay", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 3"), "{err}");
    let (code, _, err) = tumbler(&["replay", "/no/such/dir/ops.txt"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("reading ops file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
