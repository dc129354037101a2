//! End-to-end checks of the `cobble` debugging command: a real database on disk (OsFs) is
//! built, then every subcommand runs on its files and the output is checked for real content;
//! damaged files, bad arguments and missing files must give clear errors and exit codes.

use cobble::internal::sync::Arc;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cobble::{Db, Options, OsFs, Scheduler, WriteOptions};

/// A directory under the system temp dir, unique per test and process, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("cobble-cli-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes left in the WAL by `build_db` (never flushed): one batch each.
const WAL_WRITES: usize = 5;

/// Builds a database in `dir`: bulk data compacted to the bottom, then an L0 table holding
/// deletes, a range delete and a merge, then a few writes that stay in the WAL.
fn build_db(dir: &Path) {
    let opts = Options {
        fs: Arc::new(OsFs::new()),
        scheduler: Scheduler::Manual,
        memtable_size: 16 << 10,
        target_file_size: 8 << 10,
        ..Options::default()
    };
    let wo = WriteOptions::default();
    let db = Db::open(opts, dir).unwrap();
    for i in 0..2000u32 {
        // Values that do not compress to nothing, so the bulk fills several tables.
        let noise = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let v = if i % 50 == 7 { "L".repeat(200) } else { format!("value-{i}-{noise:x}") };
        db.put(format!("key{i:04}").as_bytes(), v.as_bytes(), &wo).unwrap();
        if i % 40 == 0 {
            db.merge(b"counter", format!("{i}").as_bytes(), &wo).unwrap();
        }
    }
    db.delete(b"key0001", &wo).unwrap();
    db.delete_range(b"key0100", b"key0150", &wo).unwrap();
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();

    db.put(b"late\x00bin", b"\xff\x01", &wo).unwrap();
    db.delete(b"key0003", &wo).unwrap();
    db.delete_range(b"key0200", b"key0210", &wo).unwrap();
    db.merge(b"counter", b"late", &wo).unwrap();
    db.flush().unwrap();

    // WAL_WRITES writes that only the WAL holds.
    db.put(b"wal-a", b"1", &wo).unwrap();
    db.put(b"wal-b", b"2", &wo).unwrap();
    db.delete(b"wal-gone", &wo).unwrap();
    db.merge(b"wal-m", b"op", &wo).unwrap();
    db.delete_range(b"wal-r1", b"wal-r2", &wo).unwrap();
    db.close().unwrap();
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cobble(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_cobble")).args(args).output().unwrap();
    let run = Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!run.stderr.contains("panicked"), "cobble {args:?} panicked: {}", run.stderr);
    run
}

fn ok(args: &[&str]) -> String {
    let r = cobble(args);
    assert_eq!(r.code, 0, "cobble {args:?} failed: {}{}", r.stdout, r.stderr);
    r.stdout
}

fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The lines of `text` between the line `header` and the next unindented line.
fn section<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
    text.lines().skip_while(|l| *l != header).skip(1).take_while(|l| l.starts_with("  ")).collect()
}

#[test]
fn sst_dump_and_check_agree_on_every_table() {
    let tmp = TempDir::new("sst_dump_and_check_agree_on_every_table");
    build_db(&tmp.0);
    let tables = files_with(&tmp.0, ".sst");
    assert!(tables.len() >= 3, "{tables:?}");
    let mut all = String::new();
    for t in &tables {
        let check = ok(&["sst", "check", s(t)]);
        let (n, m): (usize, usize) = {
            let rest = check.trim().strip_prefix("ok: ").expect(&check);
            let (n, rest) = rest.split_once(" entries, ").unwrap();
            (n.parse().unwrap(), rest.strip_suffix(" range tombstones").unwrap().parse().unwrap())
        };
        let dump = ok(&["sst", "dump", s(t)]);
        assert!(dump.contains(&format!("  entries: {n} (")), "{dump}");
        assert_eq!(section(&dump, "entries:").len(), n, "{dump}");
        assert_eq!(section(&dump, "range tombstones:").len(), m, "{dump}");
        all.push_str(&dump);
    }
    // The bulk data, the long values, and the L0 table's deletes, merge and range delete.
    for needle in [
        "  key0000#",
        "  key1999#",
        ",SET -> value-42-",
        ",SET -> LLLLLLLLLL",
        "... (200 bytes)",
        "  key0003#",
        ",DEL\n",
        "  counter#",
        ",MERGE -> late\n",
        "  late\\x00bin#",
        ",SET -> \\xff\\x01\n",
        "  [key0200, key0210)#",
        "comparator: cobble.bytewise",
    ] {
        assert!(all.contains(needle), "no {needle:?} in the dumps:\n{all}");
    }
    // --limit cuts the entry list and says so.
    let big = tables.iter().max_by_key(|t| fs::metadata(t).unwrap().len()).unwrap();
    let dump = ok(&["sst", "dump", "--limit", "3", s(big)]);
    let entries = section(&dump, "entries:");
    assert_eq!(entries.len(), 4, "{dump}");
    assert!(entries[3].starts_with("  ... stopped at --limit 3 of "), "{dump}");
    // --value-width shortens values.
    let dump = ok(&["sst", "dump", "--value-width=2", s(big)]);
    assert!(dump.contains(",SET -> va... ("), "{dump}");
}

#[test]
fn wal_dump_shows_unflushed_writes_and_damaged_tails() {
    let tmp = TempDir::new("wal_dump_shows_unflushed_writes_and_damaged_tails");
    build_db(&tmp.0);
    let wal = files_with(&tmp.0, ".log")
        .into_iter()
        .find(|p| fs::metadata(p).unwrap().len() > 0)
        .expect("a WAL with the last writes");
    let dump = ok(&["wal", "dump", s(&wal)]);
    for needle in [
        "@0 seq=",
        " count=1 (",
        "  wal-a#",
        ",SET -> 1\n",
        "  wal-gone#",
        ",DEL\n",
        ",MERGE -> op\n",
        "  [wal-r1, wal-r2)#",
        &format!("\n{WAL_WRITES} records, {WAL_WRITES} operations, seqnums "),
        "clean end",
    ] {
        assert!(dump.contains(needle), "no {needle:?} in:\n{dump}");
    }
    // Consecutive batches have consecutive seqnums.
    let seqs: Vec<u64> = dump
        .lines()
        .filter_map(|l| l.strip_prefix('@'))
        .map(|l| l.split_once("seq=").unwrap().1.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs.len(), WAL_WRITES);
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // A torn last record: dropped and reported when tolerated, an error when not.
    let torn = tmp.0.join("torn.log");
    let mut bytes = fs::read(&wal).unwrap();
    bytes.truncate(bytes.len() - 3);
    fs::write(&torn, &bytes).unwrap();
    let dump = ok(&["wal", "dump", "--mode", "tolerate", s(&torn)]);
    assert!(dump.contains(&format!("\n{} records,", WAL_WRITES - 1)), "{dump}");
    assert!(dump.contains("damaged tail dropped: "), "{dump}");
    let r = cobble(&["wal", "dump", "--mode=absolute", s(&torn)]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("corruption"), "{}", r.stderr);
    assert!(r.stdout.contains("  wal-a#"), "records before the damage still print: {}", r.stdout);
}

#[test]
fn manifest_dump_replays_to_the_version_lsm_shows() {
    let tmp = TempDir::new("manifest_dump_replays_to_the_version_lsm_shows");
    build_db(&tmp.0);
    let current = fs::read_to_string(tmp.0.join("CURRENT")).unwrap();
    let manifest = tmp.0.join(current.trim());
    let dump = ok(&["manifest", "dump", s(&manifest)]);
    for needle in [
        "edit 0 @0\n",
        "  comparator: cobble.bytewise\n",
        "  log number: ",
        "  next file: ",
        "  last seq: ",
        "  add L0 ",
        "clean end",
        "version after ",
    ] {
        assert!(dump.contains(needle), "no {needle:?} in:\n{dump}");
    }
    // The tables left on disk after close are exactly those of the final version.
    let version: Vec<&str> =
        dump.lines().skip_while(|l| !l.starts_with("version after ")).collect();
    let version = version.join("\n");
    for t in files_with(&tmp.0, ".sst") {
        let num = t.file_stem().unwrap().to_str().unwrap();
        assert!(version.contains(&format!("    {num} size=")), "{num} not in:\n{version}");
    }
    // lsm prints the same levels from the same manifest.
    let lsm = ok(&["lsm", s(&tmp.0)]);
    let levels: Vec<&str> = lsm
        .lines()
        .skip_while(|l| *l != "levels:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    let from_manifest: Vec<&str> =
        version.lines().skip(1).take_while(|l| l.starts_with("  ")).collect();
    assert_eq!(levels, from_manifest);
    // --limit prints fewer edits but still the whole version.
    let short = ok(&["manifest", "dump", "--limit", "1", s(&manifest)]);
    assert!(!short.contains("edit 1 @"), "{short}");
    assert!(short.contains(" (--limit 1)"), "{short}");
    assert!(short.contains(&version), "{short}");
}

#[test]
fn lsm_shows_levels_wals_and_unreferenced_files() {
    let tmp = TempDir::new("lsm_shows_levels_wals_and_unreferenced_files");
    build_db(&tmp.0);
    let tables = files_with(&tmp.0, ".sst");
    fs::write(tmp.0.join("junk.txt"), b"hello").unwrap();
    fs::copy(&tables[0], tmp.0.join("000999.sst")).unwrap();
    let lsm = ok(&["lsm", s(&tmp.0)]);
    for needle in [
        "CURRENT -> MANIFEST-",
        "log number ",
        "\nlevels:\n",
        "  L0: 1 files, ",
        "\nwal files:\n",
        ".log ",
        "(live)",
        "  000999.sst ",
        "(table not in the version)",
        "  junk.txt 5 bytes (not a Cobble file)",
    ] {
        assert!(lsm.contains(needle), "no {needle:?} in:\n{lsm}");
    }
    // Levels below L0 hold the compacted bulk.
    assert!(lsm.lines().any(|l| l.starts_with("  L") && !l.starts_with("  L0")), "{lsm}");
    for t in &tables {
        let num = t.file_stem().unwrap().to_str().unwrap();
        let size = fs::metadata(t).unwrap().len();
        assert!(lsm.contains(&format!("    {num} size={size} [")), "{num} not in:\n{lsm}");
    }
    // A live table gone from disk is reported and fails the command.
    fs::remove_file(&tables[0]).unwrap();
    let r = cobble(&["lsm", s(&tmp.0)]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("  MISSING"), "{}", r.stdout);
    assert!(r.stderr.contains("corruption"), "{}", r.stderr);
}

#[test]
fn damaged_tables_are_corruption_with_exit_1() {
    let tmp = TempDir::new("damaged_tables_are_corruption_with_exit_1");
    build_db(&tmp.0);
    let table = files_with(&tmp.0, ".sst").remove(0);
    let good = fs::read(&table).unwrap();

    // A flipped byte in the first data block: open succeeds, the check's iteration fails.
    let flipped = tmp.0.join("flipped.sst");
    let mut bytes = good.clone();
    bytes[20] ^= 0x40;
    fs::write(&flipped, &bytes).unwrap();
    for cmd in ["check", "dump"] {
        let r = cobble(&["sst", cmd, s(&flipped)]);
        assert_eq!(r.code, 1, "sst {cmd}: {}", r.stdout);
        assert!(r.stderr.contains("corruption: block checksum mismatch"), "{}", r.stderr);
        assert!(!r.stdout.contains("ok:"), "{}", r.stdout);
    }

    // A cut-off table and bytes that were never a table.
    let cut = tmp.0.join("cut.sst");
    fs::write(&cut, &good[..good.len() / 2]).unwrap();
    let junk = tmp.0.join("junk.sst");
    fs::write(&junk, b"this is not an sstable, not even close; it is only text").unwrap();
    let empty = tmp.0.join("empty.sst");
    fs::write(&empty, b"").unwrap();
    for f in [&cut, &junk, &empty] {
        let r = cobble(&["sst", "check", s(f)]);
        assert_eq!(r.code, 1, "{f:?}: {}", r.stdout);
        assert!(r.stderr.starts_with("cobble: corruption: "), "{f:?}: {}", r.stderr);
    }
    // A table is no log: as a WAL it holds no valid record (an error, naming what it looks
    // like), and as a manifest likewise.
    let r = cobble(&["wal", "dump", s(&table)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("\n0 records, 0 operations, seqnums none\n"), "{}", r.stdout);
    assert!(r.stdout.contains("damaged tail dropped: "), "{}", r.stdout);
    assert!(r.stderr.contains("not a WAL: no valid record"), "{}", r.stderr);
    assert!(r.stderr.contains("looks like an SSTable (footer magic)"), "{}", r.stderr);
    for args in [["wal", "dump"], ["manifest", "dump"]] {
        let r = cobble(&[args[0], args[1], "--mode", "absolute", s(&table)]);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stdout);
        assert!(r.stderr.starts_with("cobble: corruption: "), "{args:?}: {}", r.stderr);
    }
    let r = cobble(&["manifest", "dump", s(&table)]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("not a MANIFEST: no valid record"), "{}", r.stderr);
    assert!(r.stderr.contains("looks like an SSTable (footer magic)"), "{}", r.stderr);
}

/// Issue 15: `cobble wal dump` of random bytes, of an SST or of an ELF binary exited 0 with
/// "0 records ... damaged tail dropped", as if the file were a WAL with a torn tail.
#[test]
fn dumps_of_files_holding_no_valid_record_fail_and_say_what_they_look_like() {
    let tmp = TempDir::new("dumps_of_files_holding_no_valid_record");
    // Deterministic noise: a xorshift stream.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let random = tmp.0.join("random.log");
    fs::write(&random, &noise).unwrap();
    // A copy of this very test binary: an ELF file on Linux.
    let elf = tmp.0.join("binary.log");
    fs::copy(std::env::current_exe().unwrap(), &elf).unwrap();
    let text = tmp.0.join("notes.log");
    fs::write(&text, "these are notes, not a log\n".repeat(40)).unwrap();
    let zeros = tmp.0.join("zeros.log");
    fs::write(&zeros, vec![0u8; 100]).unwrap();
    let mut cases = vec![(&random, "random or damaged bytes"), (&text, "a text file")];
    if cfg!(target_os = "linux") {
        cases.push((&elf, "an ELF binary"));
    }
    for (file, looks) in cases {
        for cmd in ["wal", "manifest"] {
            let r = cobble(&[cmd, "dump", s(file)]);
            assert_eq!(r.code, 1, "{cmd} dump {file:?}: {}", r.stdout);
            assert!(r.stderr.contains("no valid record"), "{cmd} {file:?}: {}", r.stderr);
            assert!(r.stderr.contains(&format!("looks like {looks}")), "{file:?}: {}", r.stderr);
        }
        let r = cobble(&["sst", "dump", s(file)]);
        assert_eq!(r.code, 1, "sst dump {file:?}: {}", r.stdout);
        assert!(r.stderr.starts_with("cobble: corruption: "), "{file:?}: {}", r.stderr);
    }
    // Zeroes are what a preallocated WAL tail holds; a file of nothing else is not a WAL.
    let r = cobble(&["wal", "dump", s(&zeros)]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    // An empty WAL is a fresh one: no records, no error.
    let empty = tmp.0.join("empty.log");
    fs::write(&empty, b"").unwrap();
    let out = ok(&["wal", "dump", s(&empty)]);
    assert!(out.contains("0 records"), "{out}");
}

/// Issue 15: a closed stdout (`cobble ... | head -c1`) ends quietly with exit 0.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::Read as _;
    let tmp = TempDir::new("a_closed_stdout_ends_quietly");
    build_db(&tmp.0);
    let table = files_with(&tmp.0, ".sst").remove(0);
    for args in [vec!["sst", "dump", s(&table)], vec!["lsm", s(&tmp.0)], vec!["--help"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cobble"))
            .args(&args)
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
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn bad_arguments_print_usage_and_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["sst"],
        &["sst", "frob", "x"],
        &["sst", "dump"],
        &["sst", "dump", "a", "b"],
        &["sst", "dump", "--limit"],
        &["sst", "dump", "--limit", "many", "f"],
        &["sst", "dump", "--limit=-1", "f"],
        &["sst", "dump", "--colour", "f"],
        &["sst", "check", "--limit", "3", "f"],
        &["wal", "dump", "--mode", "lax", "f"],
        &["lsm", "--mode", "absolute", "d"],
        &["manifest"],
    ] {
        let r = cobble(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("cobble: "), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("usage: cobble"), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    let help = ok(&["--help"]);
    assert!(help.starts_with("usage: cobble"), "{help}");
    assert!(help.contains("sst dump FILE"), "{help}");
}

#[test]
fn missing_files_are_clear_errors() {
    let tmp = TempDir::new("missing_files_are_clear_errors");
    let missing = tmp.0.join("nope.sst");
    for args in [["sst", "dump"], ["sst", "check"], ["wal", "dump"], ["manifest", "dump"]] {
        let r = cobble(&[args[0], args[1], s(&missing)]);
        assert_eq!(r.code, 1, "{args:?}");
        assert_eq!(r.stderr.trim(), format!("cobble: not found: {}", missing.display()));
    }
    let r = cobble(&["lsm", s(&tmp.0.join("no-such-dir"))]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not found: ") && r.stderr.contains("no-such-dir"), "{}", r.stderr);
    let r = cobble(&["lsm", s(&tmp.0)]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not a Cobble database: no CURRENT in "), "{}", r.stderr);
}

/// The wrong kind of path for every subcommand (a directory to a dump, a file to `lsm`) and
/// numbers too large for their option: clear errors, never a panic.
#[test]
fn wrong_kinds_of_paths_and_oversized_numbers_are_clear_errors() {
    let tmp = TempDir::new("wrong_kinds_of_paths");
    let dir = s(&tmp.0);
    for args in [["sst", "dump"], ["sst", "check"], ["wal", "dump"], ["manifest", "dump"]] {
        let r = cobble(&[args[0], args[1], dir]);
        assert_eq!(r.code, 1, "{args:?} on a directory: {}", r.stdout);
        assert!(r.stderr.contains("Is a directory"), "{args:?}: {}", r.stderr);
    }
    let file = tmp.0.join("file");
    fs::write(&file, b"x").unwrap();
    let r = cobble(&["lsm", s(&file)]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("Not a directory"), "{}", r.stderr);
    for opt in ["--limit", "--value-width"] {
        let r = cobble(&["sst", "dump", opt, "99999999999999999999999", s(&file)]);
        assert_eq!(r.code, 2, "{opt}: {}", r.stdout);
        assert!(r.stderr.contains(&format!("{opt} needs a non-negative integer")), "{}", r.stderr);
    }
}
