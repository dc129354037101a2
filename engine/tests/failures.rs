//! Single failures on the real filesystem (issue 14): a failed manifest or CURRENT write
//! leaves a database that opens, `close` strands no caller, `resume` continues after a
//! cleared error, size limits are refused at the API, and panics poison instead of cascading.
//!
//! Story of the bugs: on `OsFs` wrapped in an `Fs` failing one chosen call with EIO,
//! - a failed MANIFEST sync during a flush poisoned the database, then `close` removed the
//!   new table although the edit naming it sat in the page cache: reopen said "the manifest
//!   names table 000004 which does not exist" (same for a compaction's edit and with the
//!   Threads scheduler);
//! - a failed directory sync after the CURRENT rename: close removed the new manifest that
//!   CURRENT already named ("CURRENT names a missing manifest");
//! - `close` while another thread waited in `Db::flush` left that caller blocked forever;
//! - a batch too large for a memtable arena panicked in the arena, poisoning the std mutex,
//!   and every later call (close and Drop included) panicked on it.

mod fault_fs;

use cobble::internal::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use cobble::internal::sync::Arc;
use std::cmp::Ordering;
use std::path::Path;

use cobble::internal::filename;
use cobble::internal::wal::LogWriter;
use cobble::{
    Bytewise, Comparator, Db, Error, Fs, MergeOperator, Options, OsFs, ReadOptions, Scheduler,
    WriteBatch, WriteOptions, MAX_BATCH_COUNT, MAX_KEY_LEN, MAX_VALUE_LEN,
};
use fault_fs::{FaultFs, Op, Rule, Target, TempDir};

fn options(fs: Arc<dyn Fs>, scheduler: Scheduler) -> Options {
    Options {
        fs,
        memtable_size: 64 << 10,
        target_file_size: 1 << 20,
        block_size: 1024,
        l0_compaction_threshold: 8,
        l0_stop_writes_threshold: 16,
        scheduler,
        ..Options::default()
    }
}

fn healthy() -> Arc<dyn Fs> {
    Arc::new(OsFs::new())
}

fn threads() -> Scheduler {
    Scheduler::Threads { max_concurrent_compactions: 1 }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("value-{i}-{round}").into_bytes()
}

const SYNC: WriteOptions = WriteOptions { sync: true };
const NOSYNC: WriteOptions = WriteOptions { sync: false };

/// Writes keys `0..n` with `round`'s values; the last write is synced, so all are durable.
fn write_round(db: &Db, n: u32, round: u32) {
    for i in 0..n {
        let wo = if i + 1 == n || i % 10 == 9 { &SYNC } else { &NOSYNC };
        db.put(key(i), value(i, round), wo).expect("put");
    }
}

fn check_round(db: &Db, n: u32, round: u32) {
    for i in 0..n {
        let got = db.get(&ReadOptions::default(), key(i)).expect("get");
        assert_eq!(got, Some(value(i, round)), "key {i} round {round}");
    }
}

/// Closes the poisoned database (which must return and delete nothing the failed edit may
/// name), then reopens on a healthy filesystem and checks round `round` of `n` keys.
fn close_reopen_check(db: Db, dir: &Path, n: u32, round: u32) {
    assert!(db.is_poisoned());
    let _ = db.close();
    drop(db);
    let db = Db::open(options(healthy(), Scheduler::Manual), dir).expect("reopen after failure");
    check_round(&db, n, round);
    db.close().expect("close");
}

fn manifest_sync_fails_during_flush(scheduler: Scheduler) {
    let dir = TempDir::new("flush-manifest-sync");
    let fs = FaultFs::new(Rule::Never);
    let db = Db::open(options(Arc::new(fs.clone()), scheduler), dir.path()).expect("open");
    write_round(&db, 200, 0);
    fs.control.arm(Rule::Match { op: Op::Sync, target: Target::Manifest, after: None });
    let err = db.flush().expect_err("the manifest sync fails");
    assert!(err.is_io() || err.is_poisoned(), "{err}");
    assert_eq!(fs.control.failures(), 1);
    assert!(db.put(b"k", b"v", &SYNC).expect_err("poisoned").is_poisoned());
    close_reopen_check(db, dir.path(), 200, 0);
}

#[test]
fn a_failed_manifest_sync_in_a_flush_leaves_an_openable_database_manual() {
    manifest_sync_fails_during_flush(Scheduler::Manual);
}

#[test]
fn a_failed_manifest_sync_in_a_flush_leaves_an_openable_database_threads() {
    manifest_sync_fails_during_flush(threads());
}

#[test]
fn a_failed_manifest_sync_in_a_compaction_leaves_an_openable_database() {
    let dir = TempDir::new("compaction-manifest-sync");
    let fs = FaultFs::new(Rule::Never);
    let db = Db::open(options(Arc::new(fs.clone()), Scheduler::Manual), dir.path()).expect("open");
    write_round(&db, 200, 0);
    db.flush().expect("flush");
    write_round(&db, 200, 1);
    db.flush().expect("flush");
    fs.control.arm(Rule::Match { op: Op::Sync, target: Target::Manifest, after: None });
    let err = db.compact_range(None, None).expect_err("the manifest sync fails");
    assert!(err.is_io(), "{err}");
    assert_eq!(fs.control.failures(), 1);
    close_reopen_check(db, dir.path(), 200, 1);
}

#[test]
fn a_failed_dir_sync_after_the_current_rename_leaves_an_openable_database() {
    let dir = TempDir::new("current-dir-sync");
    let fs = FaultFs::new(Rule::Never);
    // Every edit starts a new manifest.
    let opts =
        Options { max_manifest_file_size: 1, ..options(Arc::new(fs.clone()), Scheduler::Manual) };
    let db = Db::open(opts, dir.path()).expect("open");
    write_round(&db, 200, 0);
    fs.control.arm(Rule::Match {
        op: Op::SyncDir,
        target: Target::Dir,
        after: Some((Op::Rename, Target::Current)),
    });
    let err = db.flush().expect_err("the directory sync fails");
    assert!(err.is_io(), "{err}");
    assert_eq!(fs.control.failures(), 1);
    close_reopen_check(db, dir.path(), 200, 0);
}

/// Story: `close` set the shutdown flag and woke waiters, but a `Db::flush` waiting for the
/// worker saw nothing changed and waited again; the worker, back from a compaction, saw the
/// flag and exited without flushing; nobody woke the caller again. Here the worker is held in
/// a compaction's table create while a flush waits and `close` starts.
#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "callers on several threads are what this test is about"
)]
fn close_wakes_a_flush_waiting_for_the_worker() {
    let dir = TempDir::new("close-wakes-flush");
    let fs = FaultFs::new(Rule::Never);
    let opts = Options { l0_compaction_threshold: 2, ..options(Arc::new(fs.clone()), threads()) };
    let db = Db::open(opts, dir.path()).expect("open");
    // Tables 1 and 2 are flushes; the 3rd table create is the compaction's output.
    fs.control.hold(Op::Create, Target::Table, 3);
    write_round(&db, 50, 0);
    db.flush().expect("flush");
    write_round(&db, 50, 1);
    db.flush().expect("flush");
    fs.control.wait_held();
    db.put(b"x", b"y", &NOSYNC).expect("put");
    cobble::internal::sync::thread::scope(|s| {
        let flusher = s.spawn(|| db.flush());
        // The flusher switched memtables and waits (it holds the lock until it waits).
        while db.metrics().immutable_memtables == 0 {
            cobble::internal::sync::thread::yield_now();
        }
        let closer = s.spawn(|| db.close());
        // Once close has begun, writes are refused; then let the worker go.
        while db.put(b"x", b"z", &NOSYNC).is_ok() {
            cobble::internal::sync::thread::yield_now();
        }
        fs.control.open_gate();
        closer.join().expect("close returns").expect("close");
        match flusher.join().expect("flush returns") {
            Ok(()) | Err(Error::Closed) => {}
            Err(e) => panic!("flush: {e}"),
        }
    });
    assert!(matches!(db.flush(), Err(Error::Closed)));
    assert!(matches!(db.compact_range(None, None), Err(Error::Closed)));
    assert!(matches!(db.flush_wal(true), Err(Error::Closed)));
    assert!(matches!(db.run_background_step(), Err(Error::Closed)));
    assert!(matches!(db.resume(), Err(Error::Closed)));
}

/// Four threads call put, get, iter and flush in bounded loops while the main thread closes.
/// Every call returns its result or `Closed`, and every thread finishes.
#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "callers on several threads are what this test is about"
)]
fn close_races_callers() {
    for round in 0..4u32 {
        let dir = TempDir::new("close-races");
        let opts = Options {
            memtable_size: 8 << 10,
            l0_compaction_threshold: 2,
            ..options(healthy(), Scheduler::Threads { max_concurrent_compactions: 2 })
        };
        let db = Db::open(opts, dir.path()).expect("open");
        let ok_or_closed = |r: cobble::Result<()>| match r {
            Ok(()) | Err(Error::Closed) => {}
            Err(e) => panic!("unexpected error: {e}"),
        };
        cobble::internal::sync::thread::scope(|s| {
            for t in 0..4u32 {
                let db = &db;
                s.spawn(move || {
                    for i in 0..400u32 {
                        let k = key(i % 97 + t * 1000);
                        match (i + t) % 4 {
                            0 => ok_or_closed(db.put(&k, value(i, round), &NOSYNC)),
                            1 => ok_or_closed(db.get(&ReadOptions::default(), &k).map(drop)),
                            2 => {
                                ok_or_closed(db.iter(&ReadOptions::default()).and_then(|mut it| {
                                    it.first()?;
                                    let mut n = 0;
                                    while it.valid() && n < 20 {
                                        it.next()?;
                                        n += 1;
                                    }
                                    Ok(())
                                }))
                            }
                            _ if i % 16 == 3 => ok_or_closed(db.flush()),
                            _ => ok_or_closed(db.put(&k, value(i, round), &SYNC)),
                        }
                    }
                });
            }
            for i in 0..(50 * round) {
                ok_or_closed(db.put(key(i), b"main", &NOSYNC));
            }
            db.close().expect("close");
        });
        drop(db);
        let db = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect("reopen");
        db.close().expect("close");
    }
}

fn resume_after_failure(scheduler: Scheduler, rule: Rule, manifest_size: u64, what: &str) {
    let dir = TempDir::new("resume");
    let fs = FaultFs::new(Rule::Never);
    let opts = Options {
        max_manifest_file_size: manifest_size,
        ..options(Arc::new(fs.clone()), scheduler)
    };
    let db = Db::open(opts, dir.path()).expect("open");
    write_round(&db, 100, 0);
    db.flush().expect("flush");
    // Unsynced writes: acknowledged, only in the memtable and the WAL's page cache.
    for i in 100..150 {
        db.put(key(i), value(i, 0), &NOSYNC).expect("put");
    }
    fs.control.arm(rule);
    let err = match db.put(key(150), value(150, 0), &SYNC) {
        Ok(()) => db.flush().expect_err(what),
        Err(e) => e,
    };
    assert!(err.is_io() || err.is_poisoned(), "{what}: {err}");
    assert_eq!(fs.control.failures(), 1, "{what}");
    assert!(db.is_poisoned(), "{what}");
    assert!(db.poison_cause().is_some_and(|e| e.is_io()), "{what}");
    assert!(db.put(b"k", b"v", &NOSYNC).expect_err("poisoned").is_poisoned());
    // The failure was transient: resume continues.
    db.resume().unwrap_or_else(|e| panic!("{what}: resume: {e}"));
    assert!(!db.is_poisoned());
    check_round(&db, 150, 0);
    for i in 150..300 {
        db.put(key(i), value(i, 0), &NOSYNC).expect("put after resume");
    }
    db.flush().expect("flush after resume");
    db.put(key(300), value(300, 0), &SYNC).expect("put after resume");
    db.compact_range(None, None).expect("compact after resume");
    check_round(&db, 301, 0);
    db.close().expect("close");
    drop(db);
    let db = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect("reopen");
    check_round(&db, 301, 0);
    db.close().expect("close");
}

fn resume_cases(scheduler: Scheduler) {
    let on = |op, target| Rule::Match { op, target, after: None };
    let big = 1 << 20;
    let cases = [
        (on(Op::Sync, Target::Wal), big, "WAL sync"),
        (on(Op::Append, Target::Wal), big, "WAL append"),
        (on(Op::Sync, Target::Manifest), big, "manifest sync (append)"),
        (on(Op::Append, Target::Manifest), big, "manifest append"),
        (on(Op::Sync, Target::Manifest), 1, "new manifest sync"),
        (on(Op::Sync, Target::Temp), 1, "CURRENT temp sync"),
        (on(Op::Rename, Target::Current), 1, "CURRENT rename"),
        (
            Rule::Match {
                op: Op::SyncDir,
                target: Target::Dir,
                after: Some((Op::Rename, Target::Current)),
            },
            1,
            "dir sync after CURRENT",
        ),
    ];
    for (rule, manifest_size, what) in cases {
        resume_after_failure(scheduler, rule, manifest_size, what);
    }
}

#[test]
fn resume_after_a_transient_failure_manual() {
    resume_cases(Scheduler::Manual);
}

#[test]
fn resume_after_a_transient_failure_threads() {
    resume_cases(threads());
}

#[test]
fn a_failed_resume_can_be_retried() {
    let dir = TempDir::new("resume-retry");
    let fs = FaultFs::new(Rule::Never);
    let db = Db::open(options(Arc::new(fs.clone()), Scheduler::Manual), dir.path()).expect("open");
    write_round(&db, 100, 0);
    fs.control.arm(Rule::Match { op: Op::Sync, target: Target::Wal, after: None });
    assert!(db.put(b"k", b"v", &SYNC).is_err());
    // The resume's own manifest sync fails: still poisoned, retry works.
    fs.control.arm(Rule::Match { op: Op::Sync, target: Target::Manifest, after: None });
    assert!(db.resume().is_err());
    assert!(db.is_poisoned());
    fs.control.arm(Rule::Match { op: Op::Sync, target: Target::Table, after: None });
    assert!(db.resume().is_err());
    assert!(db.is_poisoned());
    assert_eq!(fs.control.failures(), 3);
    db.resume().expect("resume");
    db.put(b"k", b"v", &SYNC).expect("put");
    check_round(&db, 100, 0);
    db.close().expect("close");
    drop(db);
    let db = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect("reopen");
    check_round(&db, 100, 0);
    assert_eq!(db.get(&ReadOptions::default(), b"k").expect("get"), Some(b"v".to_vec()));
}

#[test]
fn writes_over_the_size_limits_are_refused_before_anything_is_written() {
    let dir = TempDir::new("limits");
    let db = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect("open");
    db.put(b"a", b"1", &SYNC).expect("put");
    let seq = db.last_seqnum();
    let invalid = |r: cobble::Result<()>| matches!(r, Err(Error::InvalidArgument(_)));
    let big_key = vec![b'k'; MAX_KEY_LEN + 1];
    assert!(invalid(db.put(&big_key, b"v", &SYNC)));
    assert!(invalid(db.delete(&big_key, &SYNC)));
    assert!(invalid(db.delete_range(b"a", &big_key, &SYNC)));
    assert!(invalid(db.put(b"k", vec![0; MAX_VALUE_LEN + 1], &SYNC)));
    // The batch: millions of deletes of the empty key (here one over the count limit).
    let mut b = WriteBatch::new();
    for _ in 0..=MAX_BATCH_COUNT {
        b.delete(b"");
    }
    assert!(invalid(db.write(b, &SYNC)));
    assert_eq!(db.last_seqnum(), seq);
    assert!(!db.is_poisoned());
    // A key exactly at the limit is fine, and survives a flush and a reopen.
    let max_key = vec![b'm'; MAX_KEY_LEN];
    db.put(&max_key, b"max", &SYNC).expect("put at the limit");
    db.flush().expect("flush");
    db.close().expect("close");
    drop(db);
    let db = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect("reopen");
    assert_eq!(db.get(&ReadOptions::default(), &max_key).expect("get"), Some(b"max".to_vec()));
    assert_eq!(db.get(&ReadOptions::default(), b"a").expect("get"), Some(b"1".to_vec()));
}

#[test]
fn a_wal_record_over_a_limit_is_corruption_at_open() {
    let dir = TempDir::new("limits-wal");
    let db = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect("open");
    db.put(b"a", b"1", &SYNC).expect("put");
    let seq = db.last_seqnum();
    db.flush().expect("flush");
    db.close().expect("close");
    drop(db);
    // Write a record no engine writes into the newest WAL (empty: everything was flushed).
    let fs = OsFs::new();
    let newest = fs
        .list(dir.path())
        .expect("list")
        .into_iter()
        .filter_map(|n| match filename::parse(&n) {
            Some(filename::FileKind::Wal(n)) => Some(n),
            _ => None,
        })
        .max()
        .expect("a WAL");
    let file = fs.create(&filename::wal(dir.path(), newest)).expect("create");
    let mut log = LogWriter::new(file);
    let mut b = WriteBatch::new();
    b.put(vec![b'k'; MAX_KEY_LEN + 1], b"v");
    b.set_seq(seq + 1);
    log.add_record(&b.encode()).expect("append");
    log.sync().expect("sync");
    drop(log);
    let err = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect_err("refused");
    assert!(err.is_corruption() && err.to_string().contains("MAX_KEY_LEN"), "{err}");
}

/// WAL replay requires each batch to continue the one before it: a batch that skips seqnums
/// (a cut older WAL) or repeats them (damage no checksum sees) is `Corruption` at open, never
/// replayed (a repeat used to be applied, two writes sharing one seqnum).
#[test]
fn a_wal_batch_out_of_seqnum_order_is_corruption_at_open() {
    for (name, offset, symptom) in
        [("gap", 2, "writes are missing"), ("repeat", 0, "seqnums repeat")]
    {
        let dir = TempDir::new(&format!("wal-seq-{name}"));
        let db = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect("open");
        db.put(b"a", b"1", &SYNC).expect("put");
        let seq = db.last_seqnum();
        db.flush().expect("flush");
        db.close().expect("close");
        drop(db);
        let fs = OsFs::new();
        let newest = fs
            .list(dir.path())
            .expect("list")
            .into_iter()
            .filter_map(|n| match filename::parse(&n) {
                Some(filename::FileKind::Wal(n)) => Some(n),
                _ => None,
            })
            .max()
            .expect("a WAL");
        let file = fs.create(&filename::wal(dir.path(), newest)).expect("create");
        let mut log = LogWriter::new(file);
        let mut first = WriteBatch::new();
        first.put(b"b", b"2");
        first.set_seq(seq + 1);
        log.add_record(&first.encode()).expect("append");
        let mut second = WriteBatch::new();
        second.put(b"c", b"3");
        second.set_seq(seq + 1 + offset);
        log.add_record(&second.encode()).expect("append");
        log.sync().expect("sync");
        drop(log);
        let err = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect_err("refused");
        assert!(err.is_corruption() && err.to_string().contains(symptom), "{name}: {err}");
    }
}

/// A user's `Fs` panics in a background compaction: the worker catches it, the database is
/// poisoned with the panic's message, callers get errors, close returns.
///
/// The bug (issue 14): a panic in a step killed the worker and poisoned the state mutex; every
/// later call, close included, panicked on the lock, and callers waiting for the step hung.
#[test]
fn a_panic_in_a_background_compaction_poisons_instead_of_hanging() {
    let dir = TempDir::new("panic-bg");
    let fs = FaultFs::new(Rule::Never);
    fs.control.panic_instead();
    let opts = Options { l0_compaction_threshold: 2, ..options(Arc::new(fs.clone()), threads()) };
    let db = Db::open(opts, dir.path()).expect("open");
    // Tables 1 and 2 are flushes; the 3rd table create is the compaction's output: hold it,
    // arm the panic, let it go.
    fs.control.hold(Op::Create, Target::Table, 3);
    write_round(&db, 100, 0);
    db.flush().expect("flush");
    write_round(&db, 100, 1);
    db.flush().expect("flush");
    fs.control.wait_held();
    fs.control.arm(Rule::Match { op: Op::Create, target: Target::Table, after: None });
    fs.control.open_gate();
    // A flush now waits for the worker, whose compaction panics.
    let err = db.put(b"x", b"y", &NOSYNC).and_then(|()| db.flush()).expect_err("poisoned");
    assert!(err.is_poisoned(), "{err}");
    assert_eq!(fs.control.failures(), 1);
    assert!(db.is_poisoned());
    let cause = db.poison_cause().expect("a cause");
    assert!(cause.to_string().contains("injected panic"), "{cause}");
    assert!(db.put(b"k", b"v", &SYNC).expect_err("poisoned").is_poisoned());
    assert!(db.resume().expect_err("a panic is not resumable").is_poisoned());
    db.close().expect("close");
    drop(db);
    let db = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect("reopen");
    check_round(&db, 100, 1);
}

/// A comparator that panics on one key while armed.
#[derive(Debug)]
struct Touchy {
    armed: Arc<AtomicBool>,
}

impl Comparator for Touchy {
    fn name(&self) -> &str {
        "touchy"
    }
    fn compare(&self, a: &[u8], b: &[u8]) -> Ordering {
        if self.armed.load(AtomicOrdering::SeqCst) && (a == b"boom" || b == b"boom") {
            panic!("touchy comparator met boom");
        }
        Bytewise.compare(a, b)
    }
}

/// A panic inside a foreground write (the comparator, in the memtable insert the group
/// leader makes without the state lock): the write returns the poisoning as its error, and
/// later calls, close and Drop return errors instead of panicking.
#[test]
fn a_panic_in_a_foreground_write_poisons_instead_of_cascading() {
    let dir = TempDir::new("panic-fg");
    let armed = Arc::new(AtomicBool::new(true));
    let opts = Options {
        comparator: Arc::new(Touchy { armed: armed.clone() }),
        ..options(healthy(), Scheduler::Manual)
    };
    let db = Db::open(opts.clone(), dir.path()).expect("open");
    write_round(&db, 50, 0);
    let put =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.put(b"boom", b"v", &NOSYNC)));
    let err = put.expect("the leader catches the panic").expect_err("the write fails");
    assert!(err.to_string().contains("touchy comparator met boom"), "{err}");
    assert!(db.is_poisoned());
    assert!(db.put(b"k", b"v", &NOSYNC).expect_err("poisoned").is_poisoned());
    assert!(db.flush().expect_err("poisoned").is_poisoned());
    assert!(db.resume().is_err());
    check_round(&db, 50, 0);
    db.close().expect("close");
    drop(db);
    armed.store(false, AtomicOrdering::SeqCst);
    let db = Db::open(opts, dir.path()).expect("reopen");
    check_round(&db, 50, 0);
}

#[derive(Debug)]
struct Exploding;

impl MergeOperator for Exploding {
    fn name(&self) -> &str {
        "exploding"
    }
    fn full_merge(&self, _key: &[u8], _existing: Option<&[u8]>, _operands: &[&[u8]]) -> Vec<u8> {
        panic!("merge operator exploded");
    }
}

/// Compactions keep merge operands as they are (they never call the operator), so a merge
/// operator runs only in reads, without the state lock: its panic reaches the reader alone.
#[test]
fn a_panicking_merge_operator_hurts_only_its_reader() {
    let dir = TempDir::new("panic-merge");
    let opts = Options {
        merge_operator: Arc::new(Exploding),
        l0_compaction_threshold: 2,
        ..options(healthy(), threads())
    };
    let db = Db::open(opts, dir.path()).expect("open");
    db.merge(b"m", b"1", &SYNC).expect("merge");
    db.flush().expect("flush");
    db.merge(b"m", b"2", &SYNC).expect("merge");
    db.flush().expect("flush");
    db.compact_range(None, None).expect("compaction with merge operands");
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        db.get(&ReadOptions::default(), b"m")
    }));
    assert!(read.is_err());
    assert!(!db.is_poisoned());
    db.put(b"k", b"v", &SYNC).expect("put");
    db.close().expect("close");
}

/// A user's `Fs` panics while `close` syncs the WAL: close still ends with a closed database
/// (it returns the panic as an error), so a second close and Drop return instead of waiting
/// for a close that will never finish.
#[test]
fn a_panic_inside_close_still_closes() {
    let dir = TempDir::new("panic-close");
    let fs = FaultFs::new(Rule::Never);
    fs.control.panic_instead();
    let db = Db::open(options(Arc::new(fs.clone()), Scheduler::Manual), dir.path()).expect("open");
    write_round(&db, 50, 0);
    db.put(b"x", b"y", &NOSYNC).expect("put");
    fs.control.arm(Rule::Match { op: Op::Sync, target: Target::Wal, after: None });
    let err = db.close().expect_err("the sync panicked");
    assert!(matches!(err, Error::Panicked { .. }), "{err}");
    assert_eq!(fs.control.failures(), 1);
    db.close().expect("a second close returns");
    assert!(matches!(db.put(b"k", b"v", &NOSYNC), Err(Error::Closed)));
    drop(db);
    let db = Db::open(options(healthy(), Scheduler::Manual), dir.path()).expect("reopen");
    check_round(&db, 50, 0);
}
