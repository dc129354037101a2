//! `SstWriter` and `Db::ingest`: an ingestion reads exactly as one write batch (each file's
//! deleted ranges, then its points), lands in the lowest level it fits, refuses bad input with
//! `InvalidArgument`, and is all-or-nothing when a filesystem call fails.

mod fault_fs;

use std::collections::BTreeMap;

use cobble::internal::sync::Arc;
use cobble::{
    Db, Error, Fs, MemFs, Options, ReadOptions, Scheduler, SstWriter, StringAppend, WriteOptions,
};
use fault_fs::{FaultFs, Rule};
use proptest::prelude::*;

const WO: WriteOptions = WriteOptions { sync: false };

fn opts(fs: Arc<dyn Fs>) -> Options {
    Options {
        fs,
        memtable_size: 8 << 10,
        target_file_size: 2 << 10,
        block_size: 128,
        scheduler: Scheduler::Manual,
        merge_operator: Arc::new(StringAppend::default()),
        ..Options::default()
    }
}

fn scan(db: &Db, snapshot: Option<cobble::Snapshot>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let ro = ReadOptions { snapshot, ..ReadOptions::default() };
    db.range::<&[u8]>(&ro, ..).unwrap().map(|kv| kv.unwrap()).collect()
}

/// One entry of an external file, or one write before it.
#[derive(Clone, Debug)]
enum W {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Merge(Vec<u8>, Vec<u8>),
    DeleteRange(Vec<u8>, Vec<u8>),
}

/// The plainest model: one map, updated write by write.
fn apply(m: &mut BTreeMap<Vec<u8>, Vec<u8>>, w: &W) {
    match w {
        W::Put(k, v) => {
            m.insert(k.clone(), v.clone());
        }
        W::Delete(k) => {
            m.remove(k);
        }
        W::Merge(k, v) => {
            let merged = match m.get(k) {
                Some(old) => [old.as_slice(), b",", v].concat(),
                None => v.clone(),
            };
            m.insert(k.clone(), merged);
        }
        W::DeleteRange(s, e) => m.retain(|k, _| !(s <= k && k < e)),
    }
}

fn write(db: &Db, w: &W) {
    match w {
        W::Put(k, v) => db.put(k, v, &WO),
        W::Delete(k) => db.delete(k, &WO),
        W::Merge(k, v) => db.merge(k, v, &WO),
        W::DeleteRange(s, e) => db.delete_range(s, e, &WO),
    }
    .unwrap();
}

/// Writes `entries` (points in key order, ranges anywhere) to an external file at `path`.
fn external(o: &Options, path: &str, entries: &[W]) -> cobble::ExternalTable {
    let mut w = SstWriter::create(o, path).unwrap();
    for e in entries {
        match e {
            W::Put(k, v) => w.put(k, v),
            W::Delete(k) => w.delete(k),
            W::Merge(k, v) => w.merge(k, v),
            W::DeleteRange(s, e) => w.delete_range(s, e),
        }
        .unwrap();
    }
    w.finish().unwrap()
}

/// What an ingestion of `files` does to the model: per file, its ranges, then its points.
fn apply_ingest(m: &mut BTreeMap<Vec<u8>, Vec<u8>>, files: &[Vec<W>]) {
    for f in files {
        for w in f.iter().filter(|w| matches!(w, W::DeleteRange(..))) {
            apply(m, w);
        }
        for w in f.iter().filter(|w| !matches!(w, W::DeleteRange(..))) {
            apply(m, w);
        }
    }
}

fn key(prefix: u8, i: u8) -> Vec<u8> {
    vec![prefix, b'0' + i / 10, b'0' + i % 10]
}

/// Random writes over keys `a00..d99`.
fn writes() -> impl Strategy<Value = Vec<W>> {
    let k = (0u8..4, 0u8..100).prop_map(|(p, i)| key(b'a' + p, i));
    let w = prop_oneof![
        4 => (k.clone(), "[x-z]{0,3}").prop_map(|(k, v)| W::Put(k, v.into_bytes())),
        1 => k.clone().prop_map(W::Delete),
        2 => (k.clone(), "[x-z]{1,2}").prop_map(|(k, v)| W::Merge(k, v.into_bytes())),
        1 => (k.clone(), k).prop_map(|(a, b)| W::DeleteRange(a.clone().min(b.clone()), a.max(b))),
    ];
    prop::collection::vec(w, 0..120)
}

/// One external file over keys starting with `prefix`: sorted distinct points and ranges.
fn file(prefix: u8) -> impl Strategy<Value = Vec<W>> {
    let point = prop_oneof![
        3 => "[p-r]{0,3}".prop_map(|v| (0u8, v.into_bytes())),
        1 => Just((1u8, Vec::new())),
        2 => "[p-r]{1,2}".prop_map(|v| (2u8, v.into_bytes())),
    ];
    let points = prop::collection::btree_map(0u8..100, point, 0..40);
    let ranges = prop::collection::vec((0u8..100, 0u8..100), 0..3);
    (points, ranges)
        .prop_filter("a file holds an entry", |(p, r)| {
            !p.is_empty() || r.iter().any(|(a, b)| a != b)
        })
        .prop_map(move |(points, ranges)| {
            let mut out: Vec<W> = ranges
                .into_iter()
                .filter(|(a, b)| a != b)
                .map(|(a, b)| W::DeleteRange(key(prefix, a.min(b)), key(prefix, a.max(b))))
                .collect();
            for (i, (kind, v)) in points {
                let k = key(prefix, i);
                out.push(match kind {
                    0 => W::Put(k, v),
                    1 => W::Delete(k),
                    _ => W::Merge(k, v),
                });
            }
            out
        })
}

fn seqnums(files: &[Vec<W>]) -> u64 {
    // Ranges are disjoint unions per file: count them the way the model sees them.
    files
        .iter()
        .map(|f| {
            let mut ranges: Vec<(Vec<u8>, Vec<u8>)> = f
                .iter()
                .filter_map(|w| match w {
                    W::DeleteRange(s, e) => Some((s.clone(), e.clone())),
                    _ => None,
                })
                .collect();
            ranges.sort();
            let mut union: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for (s, e) in ranges {
                match union.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.clone().max(e),
                    _ => union.push((s, e)),
                }
            }
            (union.len() + f.iter().filter(|w| !matches!(w, W::DeleteRange(..))).count()) as u64
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Ingesting files over data in memtables and every level reads as the batch of the
    /// files' ranges then points, keeps snapshots taken before it, survives a reopen and a
    /// full compaction, and uses one seqnum per disjoint range and per point.
    #[test]
    fn an_ingestion_reads_as_one_batch(
        before in writes(),
        files in prop::collection::vec((0u8..4).prop_flat_map(|p| file(b'a' + p).prop_map(move |f| (p, f))), 1..4),
        compact_first in any::<bool>(),
        after in writes(),
    ) {
        // One file per prefix: files of one ingestion never overlap.
        let mut by_prefix = BTreeMap::new();
        for (p, f) in files {
            by_prefix.insert(p, f);
        }
        let files: Vec<Vec<W>> = by_prefix.into_values().collect();
        let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
        let o = opts(fs.clone());
        let db = Db::open(o.clone(), "/db").unwrap();
        let mut model = BTreeMap::new();
        for (i, w) in before.iter().enumerate() {
            write(&db, w);
            apply(&mut model, w);
            if compact_first && i == before.len() / 2 {
                db.compact_range(None, None).unwrap();
            }
        }
        let paths: Vec<String> = (0..files.len()).map(|i| format!("/ext/{i}.sst")).collect();
        fs.create_dir_all(std::path::Path::new("/ext")).unwrap();
        for (f, p) in files.iter().zip(&paths) {
            external(&o, p, f);
        }
        let snap = db.snapshot();
        let old = model.clone();
        let seq = db.last_seqnum();
        db.ingest(&paths).unwrap();
        apply_ingest(&mut model, &files);
        prop_assert_eq!(db.last_seqnum() - seq, seqnums(&files));
        prop_assert_eq!(scan(&db, None), model.clone());
        prop_assert_eq!(scan(&db, Some(snap.clone())), old);
        for k in model.keys() {
            prop_assert_eq!(db.get(&ReadOptions::default(), k).unwrap(), model.get(k).cloned());
        }
        drop(snap);
        for w in &after {
            write(&db, w);
            apply(&mut model, w);
        }
        db.close().unwrap();
        drop(db);
        let db = Db::open(o, "/db").unwrap();
        prop_assert_eq!(scan(&db, None), model.clone());
        db.compact_range(None, None).unwrap();
        prop_assert_eq!(scan(&db, None), model);
        db.close().unwrap();
    }
}

fn level_files(db: &Db) -> Vec<usize> {
    db.metrics().levels.iter().map(|l| l.files).collect()
}

#[test]
fn an_ingested_file_lands_in_the_lowest_level_it_fits() {
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let o = opts(fs.clone());
    let db = Db::open(o.clone(), "/db").unwrap();
    for i in 0..100u8 {
        db.put(key(b'b', i), b"old", &WO).unwrap();
    }
    db.compact_range(None, None).unwrap();
    let bottom = level_files(&db)[6];
    assert!(bottom > 0 && level_files(&db)[..6].iter().all(|&n| n == 0), "{:?}", level_files(&db));

    // Nothing overlaps: the bottom level.
    external(&o, "/far.sst", &[W::Put(key(b'x', 1), b"far".to_vec())]);
    db.ingest(&["/far.sst"]).unwrap();
    assert_eq!(level_files(&db)[6], bottom + 1, "{:?}", level_files(&db));

    // Overlapping the bottom level: just above it, newer than what it covers.
    external(&o, "/over.sst", &[W::Put(key(b'b', 5), b"new".to_vec())]);
    db.ingest(&["/over.sst"]).unwrap();
    assert_eq!(level_files(&db)[5], 1, "{:?}", level_files(&db));
    assert_eq!(db.get(&ReadOptions::default(), key(b'b', 5)).unwrap(), Some(b"new".to_vec()));

    // Overlapping a memtable: flushed first, so the file goes to L0 above the flushed table.
    db.put(key(b'b', 6), b"mem", &WO).unwrap();
    external(&o, "/mem.sst", &[W::Put(key(b'b', 6), b"ingested".to_vec())]);
    db.ingest(&["/mem.sst"]).unwrap();
    assert_eq!(level_files(&db)[0], 2, "{:?}", level_files(&db));
    assert_eq!(db.get(&ReadOptions::default(), key(b'b', 6)).unwrap(), Some(b"ingested".to_vec()));
    assert_eq!(db.metrics().ingested_files, 3);
    db.close().unwrap();
}

fn invalid<T: std::fmt::Debug>(r: cobble::Result<T>, what: &str) {
    match r {
        Err(Error::InvalidArgument(m)) => assert!(!m.is_empty(), "{what}"),
        other => panic!("{what}: {other:?}"),
    }
}

#[test]
fn bad_external_files_are_refused_and_change_nothing() {
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let o = opts(fs.clone());
    let mut w = SstWriter::create(&o, "/bad.sst").unwrap();
    w.put("b", "1").unwrap();
    invalid(w.put("a", "1"), "keys out of order");
    invalid(w.put("b", "2"), "a repeated key");
    invalid(w.delete_range("z", "a"), "a range ending before it starts");
    w.delete_range("q", "q").unwrap();
    assert_eq!(w.finish().unwrap().range_deletions, 0, "an empty range deletes nothing");

    let w = SstWriter::create(&o, "/empty.sst").unwrap();
    invalid(w.finish(), "an empty table");
    assert!(!fs.exists(std::path::Path::new("/empty.sst")).unwrap(), "the empty file is removed");

    let db = Db::open(o.clone(), "/db").unwrap();
    db.put("k", "v", &WO).unwrap();
    let seq = db.last_seqnum();
    external(
        &o,
        "/one.sst",
        &[W::Put(b"a".to_vec(), b"1".to_vec()), W::Put(b"m".to_vec(), b"1".to_vec())],
    );
    external(&o, "/two.sst", &[W::DeleteRange(b"c".to_vec(), b"e".to_vec())]);
    invalid(db.ingest(&["/one.sst", "/two.sst"]), "overlapping files");

    // A table of the database itself holds seqnums: not an external table.
    db.flush().unwrap();
    let own = fs
        .list(std::path::Path::new("/db"))
        .unwrap()
        .into_iter()
        .find(|n| n.ends_with(".sst"))
        .expect("a flushed table");
    invalid(db.ingest(&[format!("/db/{own}")]), "a database's own table");
    assert!(db.ingest(&["/missing.sst"]).is_err(), "a missing file");
    fs.create(std::path::Path::new("/junk.sst")).unwrap().append(b"not a table at all").unwrap();
    assert!(matches!(db.ingest(&["/junk.sst"]), Err(Error::Corruption { .. })), "garbage");

    assert_eq!(db.last_seqnum(), seq, "refused ingestions take no seqnum");
    assert_eq!(scan(&db, None).len(), 1);
    db.ingest::<&str>(&[]).unwrap();
    db.close().unwrap();
}

/// Every filesystem call of an ingestion, failed in turn: the ingestion returns an error and
/// the reopened database holds either all of it or none, with every earlier write.
#[test]
fn a_failed_call_during_an_ingestion_leaves_all_or_nothing() {
    let mut n = 1;
    loop {
        let mem = MemFs::new();
        let fs = FaultFs::over(Arc::new(mem.clone()), Rule::Never);
        let o = opts(Arc::new(fs.clone()));
        let db = Db::open(o.clone(), "/db").unwrap();
        let mut before = BTreeMap::new();
        for i in 0..60u8 {
            let w = W::Put(key(b'a' + i % 3, i), vec![b'v', i]);
            write(&db, &w);
            apply(&mut before, &w);
        }
        let files = vec![
            vec![W::DeleteRange(key(b'a', 0), key(b'a', 30)), W::Put(key(b'a', 7), b"x".to_vec())],
            (0..50u8).map(|i| W::Merge(key(b'c', i), b"m".to_vec())).collect(),
        ];
        external(&o, "/e0.sst", &files[0]);
        external(&o, "/e1.sst", &files[1]);
        let mut after = before.clone();
        apply_ingest(&mut after, &files);
        fs.control.arm(Rule::Nth(fs.control.calls() + n));
        let result = db.ingest(&["/e0.sst", "/e1.sst"]);
        let failed = fs.control.failures() > 0;
        fs.control.arm(Rule::Never);
        // Removing a file no version needs any more is best effort (retried later): the
        // only failure an ingestion may succeed over (listing the directory is part of it).
        let removal = matches!(
            fs.control.last_failure(),
            Some((fault_fs::Op::Remove | fault_fs::Op::List, _))
        );
        match &result {
            Ok(()) => assert!(
                !failed || removal,
                "n={n}: the ingestion hid a failed {:?}",
                fs.control.last_failure()
            ),
            Err(e) => assert!(failed, "n={n}: {e} without a failure"),
        }
        let _ = db.close();
        drop(db);
        let db = Db::open(opts(Arc::new(mem)), "/db")
            .unwrap_or_else(|e| panic!("n={n}: reopen after a failed ingestion: {e}"));
        let got = scan(&db, None);
        if result.is_ok() {
            assert_eq!(got, after, "n={n}: an acknowledged ingestion");
        } else {
            assert!(got == before || got == after, "n={n}: part of a failed ingestion");
        }
        db.close().unwrap();
        if !failed {
            assert!(n > 5, "the ingestion made only {n} calls");
            break;
        }
        n += 1;
    }
}

/// Under the `Threads` scheduler, writes racing an ingestion wait for it: seqnums stay
/// contiguous and every write and the whole ingestion read back.
#[test]
#[expect(clippy::disallowed_methods, reason = "a writer racing the ingestion is the point")]
fn writes_racing_an_ingestion_wait_for_it() {
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let o = Options { scheduler: Scheduler::Threads { max_concurrent_compactions: 2 }, ..opts(fs) };
    let db = Arc::new(Db::open(o.clone(), "/db").unwrap());
    let points: Vec<W> =
        (0..200u8).map(|i| W::Put([b"e", &[i][..]].concat(), b"ext".to_vec())).collect();
    external(&o, "/race.sst", &points);
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for i in 0..2000u32 {
                db.put(format!("w{i:05}"), "x", &WO).unwrap();
            }
        })
    };
    db.ingest(&["/race.sst"]).unwrap();
    writer.join().unwrap();
    assert_eq!(db.last_seqnum(), 2000 + 200);
    let got = scan(&db, None);
    assert_eq!(got.len(), 2200);
    assert!(points.iter().all(|w| matches!(w, W::Put(k, v) if got.get(k) == Some(v))));
    Arc::into_inner(db).expect("the writer is done").close().unwrap();
}

/// A file whose last range deletion ends where the next file starts does not overlap it
/// (the end is exclusive); a point there does.
#[test]
fn files_that_only_touch_are_ingested_together() {
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let o = opts(fs);
    let db = Db::open(o.clone(), "/db").unwrap();
    db.put("m", "old", &WO).unwrap();
    external(
        &o,
        "/a.sst",
        &[W::Put(b"a".to_vec(), b"1".to_vec()), W::DeleteRange(b"b".to_vec(), b"m".to_vec())],
    );
    external(&o, "/m.sst", &[W::Put(b"m".to_vec(), b"2".to_vec())]);
    db.ingest(&["/m.sst", "/a.sst"]).unwrap();
    assert_eq!(db.get(&ReadOptions::default(), "m").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.get(&ReadOptions::default(), "a").unwrap(), Some(b"1".to_vec()));
    external(
        &o,
        "/p.sst",
        &[W::Put(b"a".to_vec(), b"1".to_vec()), W::Put(b"m".to_vec(), b"3".to_vec())],
    );
    external(&o, "/q.sst", &[W::Put(b"m".to_vec(), b"4".to_vec())]);
    invalid(db.ingest(&["/p.sst", "/q.sst"]), "files sharing a point key");
    db.close().unwrap();
}
