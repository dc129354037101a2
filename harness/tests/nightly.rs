//! Tests of `tumbler nightly` and `tumbler merge-reports`: shards partition the seed sequence,
//! merged shard reports equal an unsharded run's seeds, and a planted fault is found, saved,
//! replayable and reported in summary.json and a well-formed junit.xml.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tumbler::nightly::{derive_seed, Shard};
use tumbler::report::Summary;

const BASE: u64 = 20_261_122;

/// The workspace root: the default `configs/standard` is relative to it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/ has a parent").to_path_buf()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("nightly-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn tumbler(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tumbler"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run tumbler");
    assert_ne!(
        out.status.code(),
        Some(2),
        "tumbler {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `nightly` for `max_seeds` seeds of `shard` into `out`.
fn nightly(out: &Path, shard: &str, max_seeds: u64, extra: &[&str]) -> Output {
    let out_s = out.to_str().expect("utf-8 path");
    let max = max_seeds.to_string();
    let base = BASE.to_string();
    let mut args = vec![
        "nightly",
        "--max-seeds",
        &max,
        "--shard",
        shard,
        "--base-seed",
        &base,
        "--ops",
        "300",
        "--out",
        out_s,
    ];
    args.extend_from_slice(extra);
    tumbler(&args)
}

fn seed_set(s: &Summary) -> BTreeSet<(u64, u64)> {
    s.seeds.iter().map(|r| (r.position, r.seed)).collect()
}

#[test]
fn shards_partition_the_seed_sequence() {
    for n in 1..=7u64 {
        let m = 50;
        let mut sharded = BTreeSet::new();
        for k in 0..n {
            let shard = Shard { index: k, count: n };
            for i in 0..m {
                // Each seed is new: no two shards, and no two seeds of a shard, share it.
                assert!(sharded.insert(shard.seed(BASE, i)), "duplicate seed, n={n} k={k} i={i}");
            }
        }
        let unsharded: BTreeSet<u64> = (0..n * m).map(|i| Shard::ALL.seed(BASE, i)).collect();
        assert_eq!(sharded, unsharded, "n={n}");
    }
    // Different bases give different sequences.
    assert_ne!(derive_seed(BASE, 0), derive_seed(BASE + 1, 0));
}

#[test]
fn three_shards_and_their_merge_run_the_unsharded_seeds() {
    let dir = scratch("shards");
    let whole = dir.join("whole");
    let out = nightly(&whole, "0/1", 6, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let whole = Summary::load(&whole).expect("unsharded summary");
    assert_eq!(whole.totals.seeds_run, 6);
    assert_eq!(whole.base_seed, BASE);

    let mut shard_dirs = Vec::new();
    let mut union = BTreeSet::new();
    for k in 0..3 {
        let d = dir.join(format!("shard-{k}"));
        let out = nightly(&d, &format!("{k}/3"), 2, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
        let s = Summary::load(&d).expect("shard summary");
        assert_eq!(s.totals.seeds_run, 2);
        let set = seed_set(&s);
        assert!(union.is_disjoint(&set), "shard {k} repeats a seed");
        union.extend(set);
        shard_dirs.push(d);
    }
    assert_eq!(union, seed_set(&whole));

    let merged_dir = dir.join("merged");
    let mut args = vec!["merge-reports".to_string()];
    args.extend(shard_dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".to_string(), merged_dir.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tumbler(&args);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let merged = Summary::load(&merged_dir).expect("merged summary");
    assert_eq!(seed_set(&merged), seed_set(&whole));
    let positions: Vec<u64> = merged.seeds.iter().map(|r| r.position).collect();
    assert_eq!(positions, (0..6).collect::<Vec<_>>());
    assert_eq!(merged.shards.len(), 3);
    assert_eq!(merged.totals.seeds_run, 6);
    let junit = std::fs::read_to_string(merged_dir.join("junit.xml")).expect("merged junit");
    let doc = roxmltree::Document::parse(&junit).expect("well-formed merged junit.xml");
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("testcase")).count(), 6);
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("testsuite")).count(), 3);

    // Merging the same shard twice is refused (exit 2).
    let dup = [
        "merge-reports",
        shard_dirs[0].to_str().expect("utf-8"),
        shard_dirs[0].to_str().expect("utf-8"),
        "--out",
        merged_dir.to_str().expect("utf-8"),
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_tumbler"))
        .current_dir(root())
        .args(dup)
        .output()
        .expect("run tumbler");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn planted_fault_is_found_saved_and_reported() {
    let dir = scratch("planted");
    let out = nightly(&dir, "0/1", 3, &["--plant", "skip-wal-sync"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let s = Summary::load(&dir).expect("summary");
    assert_eq!(s.totals.seeds_run, 3);
    assert!(s.totals.seeds_failed > 0, "{stdout}");
    assert!(s.signatures.keys().any(|k| k.starts_with("durability/")), "{:?}", s.signatures);
    // One bug, few lines: the reduced cases share oracle and knob, and each shape is a write
    // lost in a crash, or in the crash image a checkpoint is checked in (the checkpoint's copy
    // of the WAL is not synced either); a reduced case may need a compaction on the way.
    let keys: Vec<&String> = s.signatures.keys().collect();
    assert!(
        keys.iter().all(|k| {
            let parts: Vec<&str> = k.split('/').collect();
            let shape: Vec<&str> = parts.get(1).map_or(vec![], |s| s.split('+').collect());
            parts.first() == Some(&"durability")
                && parts.get(2) == Some(&"defaults")
                && shape.contains(&"write")
                && (shape.contains(&"crash") || shape.contains(&"checkpoint"))
        }),
        "{keys:?}"
    );
    let failed: Vec<_> = s.seeds.iter().filter(|r| !r.passed).collect();
    for r in &failed {
        // The seed and a one-line replay command are printed and recorded.
        assert!(stdout.contains(&format!("FAIL seed {}", r.seed)), "{stdout}");
        assert!(stdout.contains(&format!("replay: {}", r.replay)), "{stdout}");
        assert!(
            r.replay.starts_with(&format!("tumbler run --seed {} --ops 300", r.seed))
                && r.replay.ends_with("--plant skip-wal-sync"),
            "{}",
            r.replay
        );
        let saved = dir.join(r.dir.as_deref().expect("failed seeds are saved"));
        assert_eq!(saved, dir.join(format!("failures/seed-{}", r.seed)));
        for f in ["ops.txt", "settings.json", "failure.txt", "repro.sh"] {
            assert!(saved.join(f).is_file(), "{} lacks {f}", saved.display());
        }
        assert!(r.failures.iter().all(|f| s.signatures.contains_key(&f.signature)));
        // Reduced within the budget to a small case with a ready corpus entry, which still
        // fails the same way when parsed back.
        let reduced = dir.join(r.reduced.as_deref().expect("the failure was reduced"));
        let entry = std::fs::read_to_string(reduced.join("corpus_entry.ops")).expect("entry");
        let entry = tumbler::corpus::parse_entry(&reduced, &entry).expect("a valid corpus entry");
        assert!(entry.file.ops.len() <= 30, "{} ops", entry.file.ops.len());
        assert_eq!(entry.planted, Some(tumbler::sim::PlantedFault::SkipWalSync));
        assert!(entry.symptom.starts_with("durability"), "{}", entry.symptom);
    }

    // junit.xml: well-formed, one testcase per seed, a failure per failed seed that carries
    // the replay command.
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml");
    let doc = roxmltree::Document::parse(&junit).expect("well-formed junit.xml");
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 3);
    for r in &failed {
        let case = cases
            .iter()
            .find(|c| c.attribute("name") == Some(format!("seed-{}", r.seed).as_str()))
            .expect("a testcase per seed");
        let failure =
            case.children().find(|n| n.has_tag_name("failure")).expect("failed seed has failure");
        assert_eq!(failure.attribute("type"), Some(r.failures[0].oracle.as_str()));
        let body = failure.text().expect("failure body");
        assert!(body.contains(&format!("replay: {}", r.replay)), "{body}");
    }

    // The saved directory replays the failure on its own.
    let first = dir.join(failed[0].dir.as_deref().expect("saved"));
    let out = tumbler(&["replay", first.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn nightly_needs_a_stopping_rule() {
    let dir = scratch("usage");
    let out = Command::new(env!("CARGO_BIN_EXE_tumbler"))
        .current_dir(root())
        .args(["nightly", "--out", dir.to_str().expect("utf-8")])
        .output()
        .expect("run tumbler");
    assert_eq!(out.status.code(), Some(2));
}

/// A threaded config's failure on OS threads is retried under the `--shuttle-bin` build first.
/// The test passes its own binary (a shuttle build in CI's shuttle step, OS threads otherwise):
/// a planted background panic fails every threaded config whatever the schedule, so the retry
/// must reproduce it, save a case and clear `may_not_replay`.
#[test]
fn threaded_failures_are_retried_under_the_shuttle_build() {
    let dir = scratch("shuttle-retry");
    let bin = env!("CARGO_BIN_EXE_tumbler");
    let out = nightly(&dir, "0/1", 1, &["--plant", "panic-in-background", "--shuttle-bin", bin]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let s = Summary::load(&dir).expect("summary");
    let r = &s.seeds[0];
    let threaded: BTreeSet<&str> = r
        .failures
        .iter()
        .filter(|f| f.config.starts_with("threads_"))
        .map(|f| f.config.as_str())
        .collect();
    assert!(!threaded.is_empty(), "no threaded config failed: {stdout}");
    if cfg!(feature = "shuttle") {
        // Threaded configs already ran under the model scheduler: nothing to retry.
        assert!(r.shuttle_retries.is_empty() && !r.may_not_replay, "{stdout}");
        return;
    }
    let retried: BTreeSet<&str> = r.shuttle_retries.iter().map(|t| t.config.as_str()).collect();
    assert_eq!(retried, threaded, "{stdout}");
    for t in &r.shuttle_retries {
        assert!(t.reproduced && t.finding.starts_with("[panic]"), "{t:?}");
        let saved = dir.join(t.dir.as_deref().expect("a reproduced retry is saved"));
        assert!(saved.join("ops.txt").is_file(), "{}", saved.display());
        assert!(
            stdout.contains(&format!("retried under shuttle: config {}", t.config)),
            "{stdout}"
        );
    }
    assert!(!r.may_not_replay, "reproduced under shuttle, so it replays: {stdout}");
}
