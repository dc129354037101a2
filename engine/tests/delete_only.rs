//! Delete-only compactions: tables a range tombstone hides from every reader leave the tree
//! without being rewritten, and never while a snapshot can still see them.

use cobble::internal::sync::Arc;
use cobble::{Db, Fs, MemFs, Options, ReadOptions, Scheduler, WriteOptions};

const WO: WriteOptions = WriteOptions { sync: false };

fn opts(fs: &MemFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 64 << 10,
        target_file_size: 2 << 10,
        compression: cobble::Compression::None,
        scheduler: Scheduler::Manual,
        ..Options::default()
    }
}

fn tables(db: &Db) -> usize {
    db.metrics().levels.iter().map(|l| l.files).sum()
}

fn count(db: &Db, ro: &ReadOptions) -> usize {
    db.range::<&[u8]>(ro, ..).unwrap().count()
}

/// Loads `k000..k399` into the bottom level (several tables), then deletes `[k100, k300)`
/// with a tombstone flushed alone into L0.
fn load_and_delete(db: &Db) -> usize {
    for i in 0..400 {
        db.put(format!("k{i:03}"), [b'v'; 40], &WO).unwrap();
    }
    db.compact_range(None, None).unwrap();
    let before = tables(db);
    assert!(before >= 4, "{before} tables");
    db.delete_range("k100", "k300", &WO).unwrap();
    db.flush().unwrap();
    before
}

/// Every table file on disk is live, and no reader is open beyond the live tables.
fn assert_no_dropped_table_kept(db: &Db, fs: &MemFs) {
    let live = tables(db);
    let on_disk = fs.list(std::path::Path::new("/db")).unwrap();
    let ssts = on_disk.iter().filter(|n| n.ends_with(".sst")).count();
    assert_eq!(ssts, live, "dropped tables' files left on disk: {on_disk:?}");
    let open = db.metrics().open_tables;
    assert!(open <= live, "{open} readers open for {live} live tables");
}

fn run_steps(db: &Db) {
    while db.run_background_step().unwrap() {}
}

#[test]
fn tables_inside_a_tombstone_every_reader_sees_are_dropped_unread() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs), "/db").unwrap();
    let before = load_and_delete(&db);
    let written = db.metrics().compaction_bytes_written;
    run_steps(&db);
    let m = db.metrics();
    assert_eq!(m.delete_only_compactions, 1);
    assert!(m.tables_dropped_by_tombstones >= 1, "{m:?}");
    assert_eq!(m.compaction_bytes_written, written, "nothing was rewritten");
    // The tables only partly inside the range stay; the L0 tombstone stays.
    assert_eq!(tables(&db) as u64, before as u64 + 1 - m.tables_dropped_by_tombstones);
    assert_eq!(count(&db, &ReadOptions::default()), 200);
    for k in ["k099", "k300", "k399"] {
        assert!(db.get(&ReadOptions::default(), k).unwrap().is_some(), "{k}");
    }
    for k in ["k100", "k200", "k299"] {
        assert_eq!(db.get(&ReadOptions::default(), k).unwrap(), None, "{k}");
    }
    db.close().unwrap();
    let db = Db::open(opts(&fs), "/db").unwrap();
    assert_eq!(count(&db, &ReadOptions::default()), 200, "after a reopen");
    db.close().unwrap();
}

/// The step that drops tables deletes their files and closes their readers itself: it must
/// not keep the version it replaced alive while it purges (found by Tumbler, config
/// threads_3_tiny: a delete-only step after a drain left a dropped table open and on disk).
#[test]
fn the_step_that_drops_tables_deletes_their_files_and_readers() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs), "/db").unwrap();
    load_and_delete(&db);
    // Every table's reader open, as after reads across the whole range.
    assert_eq!(count(&db, &ReadOptions::default()), 200);
    while db.metrics().delete_only_compactions == 0 {
        assert!(db.run_background_step().unwrap(), "the delete-only step never ran");
    }
    assert_no_dropped_table_kept(&db, &fs);
    db.close().unwrap();
}

#[test]
fn a_snapshot_older_than_the_tombstone_keeps_the_tables() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs), "/db").unwrap();
    for i in 0..400 {
        db.put(format!("k{i:03}"), [b'v'; 40], &WO).unwrap();
    }
    db.compact_range(None, None).unwrap();
    let snap = db.snapshot();
    db.delete_range("k100", "k300", &WO).unwrap();
    db.flush().unwrap();
    run_steps(&db);
    assert_eq!(db.metrics().delete_only_compactions, 0, "the snapshot still sees them");
    let at_snap = ReadOptions { snapshot: Some(snap.clone()), ..ReadOptions::default() };
    assert_eq!(count(&db, &at_snap), 400);
    drop((snap, at_snap));
    run_steps(&db);
    assert_eq!(db.metrics().delete_only_compactions, 1, "released: now they go");
    assert_eq!(count(&db, &ReadOptions::default()), 200);
    db.close().unwrap();
}

/// Under background threads, a drain that says `Idle` has no delete-only step left for a
/// worker to run after it returns (such a step has no compaction score to be counted by).
#[test]
fn a_threaded_drain_leaves_no_delete_only_step_behind() {
    let fs = MemFs::new();
    let opts =
        Options { scheduler: Scheduler::Threads { max_concurrent_compactions: 2 }, ..opts(&fs) };
    let db = Db::open(opts, "/db").unwrap();
    for i in 0..400 {
        db.put(format!("k{i:03}"), [b'v'; 40], &WO).unwrap();
    }
    db.compact_range(None, None).unwrap();
    let snap = db.snapshot();
    db.delete_range("k100", "k300", &WO).unwrap();
    db.flush().unwrap();
    assert_eq!(db.drain_background_work(1000).unwrap(), cobble::Drained::Idle);
    assert_eq!(db.metrics().delete_only_compactions, 0, "the snapshot still sees them");
    drop(snap);
    assert_eq!(db.drain_background_work(1000).unwrap(), cobble::Drained::Idle);
    assert_eq!(db.metrics().delete_only_compactions, 1, "released: the drain ran the step");
    assert_no_dropped_table_kept(&db, &fs);
    db.close().unwrap();
}

#[test]
fn newer_writes_inside_the_range_keep_their_tables() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs), "/db").unwrap();
    load_and_delete(&db);
    // Written after the tombstone, flushed into L0: newer than it, so never dropped by it.
    db.put("k150", "new", &WO).unwrap();
    db.flush().unwrap();
    run_steps(&db);
    assert_eq!(db.get(&ReadOptions::default(), "k150").unwrap(), Some(b"new".to_vec()));
    assert_eq!(count(&db, &ReadOptions::default()), 201);
    db.close().unwrap();
}
