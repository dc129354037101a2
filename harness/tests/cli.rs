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

// ---- Issue 15: a nightly harness never dies or hangs on the bugs it hunts, and never blames
// the engine for a user's typo. Every case asserts the exit code, that nothing panicked
// (Tumbler's own panic output), and a message naming the problem.

/// Runs tumbler and checks that its stderr shows no panic of Tumbler itself.
fn tumbler_clean(args: &[&str]) -> (i32, String, String) {
    let (code, out, err) = tumbler(args);
    assert!(!err.contains("panicked"), "tumbler {args:?} panicked: {err}");
    (code, out, err)
}

/// Expects exit code 2 and a stderr naming every one of `want`.
fn bad(args: &[&str], want: &[&str]) {
    let (code, out, err) = tumbler_clean(args);
    assert_eq!(code, 2, "tumbler {args:?}: {out}{err}");
    for w in want {
        assert!(err.contains(w), "tumbler {args:?}: want {w:?} in: {err}");
    }
    assert!(!out.contains("[engine]"), "tumbler {args:?} blamed the engine: {out}");
}

/// A config directory: one Manual config and one threaded config with tiny sizes, so flushes
/// and compactions run on the engine's background threads within a few hundred ops.
fn small_configs(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("manual.json"), r#"{"scheduler": "manual"}"#).unwrap();
    std::fs::write(
        dir.join("threads_tiny.json"),
        r#"{"scheduler": {"threads": 1}, "memtable_size": 4096, "target_file_size": 1024,
            "l0_compaction_threshold": 1, "l0_stop_writes_threshold": 2}"#,
    )
    .unwrap();
    dir
}

fn ops_file(dir: &std::path::Path, name: &str, body: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("# tumbler ops v1\n{body}")).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn numeric_flags_are_bounded_at_parse_time() {
    for (flag, value) in [
        ("--error-rate", "5"),
        ("--error-rate", "NaN"),
        ("--error-rate", "-1"),
        ("--error-rate", "inf"),
        ("--ops", "1000000000000"),
        ("--ops", "18446744073709551615"),
        ("--ops=-3", ""),
        ("--random-configs", "1000000000"),
        ("--hang-timeout", "0"),
        ("--hang-timeout", "86401"),
        ("--seed", "abc"),
        ("--seed", "18446744073709551616"),
    ] {
        let name = flag.split('=').next().unwrap();
        let args: Vec<&str> = ["run", flag, value].into_iter().filter(|a| !a.is_empty()).collect();
        bad(&args, &[name]);
    }
    bad(&["run", "--ops"], &["--ops"]);
    bad(&["replay", "x.ops", "--error-rate", "1.5"], &["--error-rate"]);
    for (flag, value) in [
        ("--jobs", "0"),
        ("--jobs", "100000"),
        ("--max-seeds", "0"),
        ("--shard", "4/4"),
        ("--shard", "x"),
        ("--duration", "10x"),
        ("--error-rate", "NaN"),
        ("--reduce-budget", "many"),
    ] {
        bad(&["nightly", "--max-seeds", "1", flag, value], &[flag]);
    }
    // Contradictory or missing: nightly needs a stopping rule; merge-reports needs inputs.
    bad(&["nightly", "--out", temp_dir("nostop").to_str().unwrap()], &["--max-seeds"]);
    bad(&["merge-reports"], &["DIRS"]);
    bad(&["reduce"], &["DIR"]);
    bad(&["reduce", "/no/such/failure", "--budget-secs", "0"], &["--budget-secs"]);
    bad(&["frobnicate"], &["frobnicate"]);
}

#[test]
fn ops_files_breaking_the_generators_rules_are_bad_input_naming_line_and_rule() {
    let dir = temp_dir("invalid-ops");
    for (body, line, rule) in [
        // The reported case: 26 `[engine]` failures for the user's undefined batch.
        ("put \"a\" \"1\"\nbatch.put b1 \"a\" \"1\"\n", 3, "batch not live"),
        ("iter.new i1 - \"b\" \"a\"\n", 2, "lower > upper"),
        ("batch.new b1\nbatch.delete_range b1 \"z\" \"a\"\n", 3, "start > end"),
        ("put \"a\" \"1\"\nput \"a\" \"2\"\nsingle_delete \"a\"\n", 4, "invalid single_delete"),
        ("snapshot.new s1\niter.new i1 s1 - -\nsnapshot.close s1\n", 4, "under an iterator"),
        ("iter.next i9\n", 2, "iterator not live"),
        ("snapshot.get s1 \"a\"\n", 2, "snapshot not live"),
    ] {
        let f = ops_file(&dir, "case.ops", body);
        bad(&["replay", &f], &[&f, &format!("line {line}"), rule]);
    }
    // A direct delete_range with start > end is valid: the engine must refuse it.
    let f = ops_file(&dir, "reversed.ops", "delete_range \"z\" \"a\"\nget \"b\"\n");
    let (code, out, err) =
        tumbler_clean(&["replay", &f, "--config", "configs/standard/default.json"]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn garbage_empty_binary_truncated_and_oversized_files_are_bad_input() {
    let dir = temp_dir("bad-files");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let empty = write("empty.ops", b"");
    bad(&["replay", &empty], &[&empty, "empty file"]);
    let binary = write("binary.ops", &[0x7f, b'E', b'L', b'F', 0xff, 0xfe, 0, 1, 2]);
    bad(&["replay", &binary], &[&binary, "not UTF-8"]);
    let garbage = write("garbage.ops", b"hello world\n");
    bad(&["replay", &garbage], &[&garbage, "line 1", "header"]);
    let truncated = write("truncated.ops", b"# tumbler ops v1\nput \"a");
    bad(&["replay", &truncated], &[&truncated, "line 2"]);
    let huge = write("huge.ops", b"# tumbler ops v1\nput \"a\" gen(4294967295,1)\n");
    bad(&["replay", &huge], &[&huge, "line 2", "maximum value size"]);
    // Oversized: refused from its size, before reading (a sparse file costs nothing).
    let big = dir.join("big.ops");
    std::fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
    bad(&["replay", big.to_str().unwrap()], &["big.ops", "maximum"]);
    bad(&["replay", dir.join("nope.ops").to_str().unwrap()], &["nope.ops"]);
    // A failure directory without ops.txt, and reports that are not reports.
    let d = dir.to_str().unwrap();
    bad(&["replay", d], &["ops.txt"]);
    bad(&["reduce", d], &["ops.txt"]);
    for (name, bytes) in
        [("empty", &b""[..]), ("garbage", b"{not json"), ("binary", &[0xff, 0xfe, 0x00][..])]
    {
        let shard = dir.join(format!("shard-{name}"));
        std::fs::create_dir_all(&shard).unwrap();
        std::fs::write(shard.join("summary.json"), bytes).unwrap();
        bad(&["merge-reports", shard.to_str().unwrap()], &["summary.json"]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn configs_the_engine_rejects_are_bad_input_naming_file_and_field() {
    let dir = temp_dir("bad-configs");
    for (json, field) in [
        (r#"{"memtable_size": 0}"#, "memtable_size"),
        (r#"{"restart_interval": 0}"#, "restart_interval"),
        (r#"{"level_multiplier": 1}"#, "level_multiplier"),
        (r#"{"memtable_size": 18446744073709551615}"#, "memtable_size"),
        (r#"{"scheduler": {"threads": 0}}"#, "scheduler.threads"),
        (r#"{"block_size": 0}"#, "block_size"),
        (r#"{"l0_compaction_threshold": 9, "l0_stop_writes_threshold": 3}"#, "l0_stop"),
        (r#"{"memtable_sise": 4096}"#, "memtable_sise"),
        (r#"{"memtable_size": "big"}"#, "expected usize"),
        (r#"{"#, "broken.json"),
    ] {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("broken.json");
        std::fs::write(&file, json).unwrap();
        let d = dir.to_str().unwrap();
        bad(&["run", "--ops", "10", "--configs", d], &["broken.json", field]);
        let ops = ops_file(&dir.join("ops"), "ok.ops", "put \"a\" \"1\"\n");
        bad(&["replay", &ops, "--config", file.to_str().unwrap()], &["broken.json", field]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_0() {
    use std::io::Read as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tumbler"))
        .args(["run", "--seed", "2", "--ops", "100", "--configs", "configs/standard"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs `tumbler run` with a planted fault under the small configs and returns stdout.
fn planted_run(plant: &str, name: &str) -> String {
    let configs = small_configs(name);
    let c = configs.to_str().unwrap();
    let args = [
        "run",
        "--seed",
        "1",
        "--ops",
        "300",
        "--plant",
        plant,
        "--hang-timeout",
        "3",
        "--configs",
        c,
    ];
    let (code, out, err) = tumbler_clean(&args);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAIL seed 1"), "{out}");
    let replay = out.lines().find(|l| l.starts_with("replay: tumbler run --seed 1 ")).unwrap();
    assert!(replay.contains(&format!("--plant {plant}")), "{replay}");
    std::fs::remove_dir_all(&configs).unwrap();
    out
}

/// A WAL append panics: the write group's leader appends without the state lock and catches
/// the panic, which poisons the database; the failed write is a panic finding at its op.
#[test]
fn a_panic_in_a_wal_append_is_a_panic_finding() {
    let out = planted_run("panic-in-append", "plant-append");
    let line = out.lines().find(|l| l.starts_with("- [panic] config ")).expect("a panic finding");
    assert!(line.contains(" at op "), "{line}");
    assert!(line.contains("the engine caught a panic"), "{line}");
    assert!(line.contains("planted panic-in-append"), "{line}");
}

#[test]
fn a_panicking_merge_operator_is_a_panic_finding() {
    let out = planted_run("panic-in-merge", "plant-merge");
    let line = out.lines().find(|l| l.starts_with("- [panic] config ")).expect("a panic finding");
    assert!(line.contains("planted panic-in-merge: merge operator panicked"), "{line}");
}

#[test]
fn a_merge_operator_that_never_returns_is_a_hang_finding() {
    let out = planted_run("hang-in-merge", "plant-hang");
    let line = out.lines().find(|l| l.starts_with("- [hang] config ")).expect("a hang finding");
    assert!(line.contains(" at op "), "{line}");
    assert!(line.contains("no progress for 3.0s"), "{line}");
}

#[test]
fn a_panic_in_a_background_worker_is_reported_not_waited_for() {
    let out = planted_run("panic-in-background", "plant-bg");
    // The engine catches the worker's panic and poisons itself with it: the next call meets
    // it, and the runner reports it as a panic, never waiting for the worker.
    let line =
        out.lines().find(|l| l.starts_with("- [panic] config threads_tiny")).expect("a panic");
    assert!(line.contains("planted panic-in-background"), "{line}");
}

/// Runs a two-seed nightly with a planted fault; returns the summary.
fn planted_nightly(plant: &str, name: &str) -> serde_json::Value {
    let configs = small_configs(&format!("{name}-configs"));
    // A config without a WAL survives a fault planted in WAL appends.
    std::fs::write(
        configs.join("wal_disabled.json"),
        r#"{"scheduler": "manual", "disable_wal": true}"#,
    )
    .unwrap();
    let out_dir = temp_dir(name);
    let (c, o) = (configs.to_str().unwrap(), out_dir.to_str().unwrap());
    let args = [
        "nightly",
        "--max-seeds",
        "2",
        "--ops",
        "200",
        "--plant",
        plant,
        "--hang-timeout",
        "2",
        "--reduce-budget",
        "3",
        "--base-seed",
        "5",
        "--configs",
        c,
        "--out",
        o,
    ];
    let (code, out, err) = tumbler_clean(&args);
    assert_eq!(code, 1, "{out}{err}");
    let text = std::fs::read_to_string(out_dir.join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The shard went on to the next seed, and each failure was saved with a replay command.
    assert_eq!(summary["totals"]["seeds_run"], 2, "{text}");
    for seed in summary["seeds"].as_array().unwrap() {
        assert_eq!(seed["passed"], false, "{seed}");
        assert!(seed["replay"].as_str().unwrap().contains(&format!("--plant {plant}")));
        let dir = out_dir.join(seed["dir"].as_str().unwrap());
        assert!(dir.join("failure.txt").exists() && dir.join("repro.sh").exists(), "{seed}");
    }
    std::fs::remove_dir_all(&configs).unwrap();
    std::fs::remove_dir_all(&out_dir).unwrap();
    summary
}

fn signature_keys(summary: &serde_json::Value) -> Vec<String> {
    summary["signatures"].as_object().unwrap().keys().cloned().collect()
}

#[test]
fn nightly_records_panics_hangs_and_aborts_under_their_own_signatures() {
    let s = planted_nightly("panic-in-merge", "nightly-panic");
    let keys = signature_keys(&s);
    assert!(
        // Whichever read or restart resolves the merge first; the location names the bug.
        keys.iter().any(|k| k.starts_with("panic/") && k.contains("/harness/src/sim/planted.rs:")),
        "{keys:?}"
    );

    let s = planted_nightly("hang-in-merge", "nightly-hang");
    let keys = signature_keys(&s);
    assert!(keys.iter().all(|k| k.starts_with("hang/")), "{keys:?}");

    // An abort kills the seed's process: the child's death is the record, and each config
    // then runs alone, so the one that aborts is named and the others still report.
    let s = planted_nightly("abort-in-append", "nightly-abort");
    assert_eq!(signature_keys(&s), vec!["abort/-/SIGABRT".to_string()]);
    let failures = s["seeds"][0]["failures"].as_array().unwrap();
    let configs: Vec<&str> = failures.iter().map(|f| f["config"].as_str().unwrap()).collect();
    assert_eq!(configs, ["manual", "threads_tiny"], "{failures:?}");
    for f in failures {
        assert!(f["message"].as_str().unwrap().contains("killed by signal 6 (SIGABRT)"), "{f}");
        assert!(f["message"].as_str().unwrap().contains("planted abort-in-append"), "{f}");
    }
}

#[test]
fn an_abort_under_run_is_a_finding_and_the_other_configs_run_on() {
    let configs = small_configs("run-abort");
    std::fs::write(
        configs.join("wal_disabled.json"),
        r#"{"scheduler": "manual", "disable_wal": true}"#,
    )
    .unwrap();
    let out_dir = temp_dir("run-abort-out");
    let (c, o) = (configs.to_str().unwrap(), out_dir.to_str().unwrap());
    let args = ["run", "--seed", "1", "--ops", "200", "--plant", "abort-in-append", "--configs", c];
    let (code, out, err) = tumbler_clean(&[&args[..], &["--out", o]].concat());
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("[abort] the process running seed 1 was killed by signal 6"), "{out}");
    let aborted: Vec<&str> = out.lines().filter(|l| l.starts_with("- [abort] config ")).collect();
    assert_eq!(aborted.len(), 2, "{out}");
    assert!(aborted.iter().all(|l| l.contains("killed by signal 6 (SIGABRT)")), "{out}");
    // The config without a WAL ran alone to the end and passed.
    assert!(!out.contains("config wal_disabled"), "{out}");
    assert!(out.contains(&format!("replay: tumbler replay {o}")), "{out}");
    assert!(out_dir.join("failure.txt").exists() && out_dir.join("repro.sh").exists());
    std::fs::remove_dir_all(&configs).unwrap();
    std::fs::remove_dir_all(&out_dir).unwrap();
}
