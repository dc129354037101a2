//! The read API beyond `get` and a plain iterator: iterators pinned to a prefix (and the
//! prefix bloom filter they consult), `next_prefix`, `multi_get` at one view, and an
//! iterator's `try_clone` and `refresh`.

use cobble::internal::sync::atomic::AtomicBool;
use cobble::internal::sync::{Arc, Mutex};
use std::sync::atomic::Ordering;

use cobble::{
    Comparator, Cursor, Db, DelimiterPrefix, Error, Fs, MemFs, MergeOperator, Options, ReadOptions,
    Scheduler, StringAppend, WriteOptions,
};

const WO: WriteOptions = WriteOptions { sync: false };

fn opts(fs: &MemFs, prefix: bool) -> Options {
    Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 1 << 16,
        block_size: 256,
        scheduler: Scheduler::Manual,
        prefix_extractor: prefix.then(|| Arc::new(DelimiterPrefix(b'@')) as _),
        ..Options::default()
    }
}

fn keys_forward(it: &mut Cursor) -> Vec<String> {
    let mut out = Vec::new();
    let mut ok = it.first().unwrap();
    while ok {
        out.push(String::from_utf8(it.key().to_vec()).unwrap());
        ok = it.next().unwrap();
    }
    out
}

fn keys_backward(it: &mut Cursor) -> Vec<String> {
    let mut out = Vec::new();
    let mut ok = it.last().unwrap();
    while ok {
        out.push(String::from_utf8(it.key().to_vec()).unwrap());
        ok = it.prev().unwrap();
    }
    out.reverse();
    out
}

fn pinned(prefix: &str) -> ReadOptions {
    ReadOptions { prefix: Some(prefix.as_bytes().to_vec()), ..ReadOptions::default() }
}

/// Keys whose prefixes nest and neighbour one another: `a` is a leading part of `ab`, and
/// `a!x` sorts between `a` and `a@`.
const KEYS: &[&str] = &["a", "a!x", "a@", "a@1", "a@2@z", "aa@1", "ab@", "b@1", "b@2", "c"];

fn load(db: &Db, keys: &[&str]) {
    for k in keys {
        db.put(k.as_bytes(), format!("v-{k}").as_bytes(), &WO).unwrap();
    }
}

#[test]
fn a_pinned_iterator_sees_its_prefix_only_from_memtable_and_tables() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs, true), "/db").unwrap();
    load(&db, &KEYS[..5]);
    db.flush().unwrap();
    load(&db, &KEYS[5..]);
    for (prefix, want) in [
        ("a", vec!["a@", "a@1", "a@2@z"]),
        ("aa", vec!["aa@1"]),
        ("ab", vec!["ab@"]),
        ("b", vec!["b@1", "b@2"]),
        ("c", vec![]),
        ("", vec![]),
    ] {
        let mut it = db.iter(&pinned(prefix)).unwrap();
        assert_eq!(keys_forward(&mut it), want, "forward under {prefix:?}");
        assert_eq!(keys_backward(&mut it), want, "backward under {prefix:?}");
        // Seeks outside the prefix land on its edges.
        let first = want.first().map(|s| s.to_string());
        assert_eq!(it.seek_ge(b"").unwrap().then(|| it.key().to_vec()), first.map(Into::into));
        assert!(!it.seek_ge(b"zzz").unwrap());
        let last = want.last().map(|s| s.to_string());
        assert_eq!(it.seek_lt(b"zzz").unwrap().then(|| it.key().to_vec()), last.map(Into::into));
    }
    // User bounds narrow a pinned iterator further, and set_bounds keeps the prefix.
    let ro = ReadOptions { lower_bound: Some(b"a@1".to_vec()), ..pinned("a") };
    let mut it = db.iter(&ro).unwrap();
    assert_eq!(keys_forward(&mut it), ["a@1", "a@2@z"]);
    it.set_bounds(None, Some(b"a@2".to_vec()));
    assert_eq!(keys_forward(&mut it), ["a@", "a@1"]);
    assert_eq!(it.bounds(), (None, Some(&b"a@2"[..])));
    assert_eq!(it.pinned_prefix(), Some(&b"a"[..]));
}

#[test]
fn a_pinned_iterator_skips_tables_its_prefix_filter_rules_out() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs, true), "/db").unwrap();
    // Three tables, one prefix each, all of them overlapping in key range.
    for p in ["a", "b", "c"] {
        for i in 0..50 {
            db.put(format!("{p}@{i:03}").as_bytes(), b"v", &WO).unwrap();
        }
        db.put(b"a", b"spans", &WO).unwrap();
        db.put(b"d", b"spans", &WO).unwrap();
        db.flush().unwrap();
    }
    let before = db.metrics().prefix_filter_skips;
    let mut it = db.iter(&pinned("b")).unwrap();
    let got = keys_forward(&mut it);
    assert_eq!(got.len(), 50);
    assert!(got.iter().all(|k| k.starts_with("b@")));
    // The two tables without a `b` key were ruled out by their filters (a false positive
    // passes one in at most; at 10 bits per key that would be a rare seed).
    let skipped = db.metrics().prefix_filter_skips - before;
    assert_eq!(skipped, 2, "tables skipped by the prefix filter");
    // Moved into L1 and beyond, the tables are skipped the same way.
    drop(it);
    db.compact_range(None, None).unwrap();
    let before = db.metrics().prefix_filter_skips;
    let mut it = db.iter(&pinned("bb")).unwrap();
    assert!(keys_forward(&mut it).is_empty());
    assert!(db.metrics().prefix_filter_skips > before);
    // A range tombstone in a table the filter rules out still deletes.
    drop(it);
    db.delete_range(b"b@010", b"b@020", &WO).unwrap();
    db.flush().unwrap();
    let mut it = db.iter(&pinned("b")).unwrap();
    assert_eq!(keys_forward(&mut it).len(), 40);
}

#[test]
fn pinned_iterators_and_next_prefix_need_an_extractor() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs, false), "/db").unwrap();
    load(&db, KEYS);
    assert!(matches!(db.iter(&pinned("a")), Err(Error::InvalidArgument(_))));
    let mut it = db.iter(&ReadOptions::default()).unwrap();
    assert!(it.first().unwrap());
    assert!(matches!(it.next_prefix(), Err(Error::InvalidArgument(_))));
}

/// A comparator of another name than bytewise but the same order: `next_prefix` must step
/// instead of seeking, and a pinned iterator must filter without the bytewise range.
#[derive(Debug)]
struct SameOrder;

impl Comparator for SameOrder {
    fn name(&self) -> &str {
        "test.same_order"
    }
    fn compare(&self, a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        a.cmp(b)
    }
    fn separator(&self, a: &[u8], _b: &[u8]) -> Vec<u8> {
        a.to_vec()
    }
    fn successor(&self, a: &[u8]) -> Vec<u8> {
        a.to_vec()
    }
}

#[test]
fn next_prefix_skips_to_the_next_prefix_by_seek_or_by_steps() {
    for comparator in [None, Some(Arc::new(SameOrder) as Arc<dyn Comparator>)] {
        let fs = MemFs::new();
        let mut o = opts(&fs, true);
        if let Some(c) = comparator.clone() {
            o.comparator = c;
        }
        let db = Db::open(o, "/db").unwrap();
        load(&db, KEYS);
        db.flush().unwrap();
        let mut it = db.iter(&ReadOptions::default()).unwrap();
        let mut got = vec![];
        let mut ok = it.first().unwrap();
        while ok {
            got.push(String::from_utf8(it.key().to_vec()).unwrap());
            ok = it.next_prefix().unwrap();
        }
        // `a` and `a!x` have no prefix (next_prefix acts as next); `a@2@z` shares `a@`'s.
        assert_eq!(got, ["a", "a!x", "a@", "aa@1", "ab@", "b@1", "c"], "{comparator:?}");
        // Within a pinned iterator there is no other prefix to go to.
        let mut it = db.iter(&pinned("a")).unwrap();
        assert!(it.first().unwrap());
        assert!(!it.next_prefix().unwrap());
        assert!(!it.valid());
        // An upper bound inside the next prefix stops the skip.
        let ro = ReadOptions { upper_bound: Some(b"aa@0".to_vec()), ..ReadOptions::default() };
        let mut it = db.iter(&ro).unwrap();
        assert!(it.seek_ge(b"a@").unwrap());
        assert!(!it.next_prefix().unwrap());
    }
}

#[test]
fn multi_get_reads_every_key_at_one_view() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs, false), "/db").unwrap();
    load(&db, &["k1", "k2", "k3"]);
    let snap = db.snapshot();
    db.delete(b"k2", &WO).unwrap();
    db.merge(b"k3", b"more", &WO).unwrap();
    db.flush().unwrap();
    let now = db.multi_get(&ReadOptions::default(), &["k1", "k2", "k3", "k4"]).unwrap();
    let v = |s: &str| Some(s.as_bytes().to_vec());
    assert_eq!(now, [v("v-k1"), None, v("v-k3,more"), None]);
    let ro = ReadOptions { snapshot: Some(snap), ..ReadOptions::default() };
    let then = db.multi_get(&ro, &[b"k3".to_vec(), b"k2".to_vec()]).unwrap();
    assert_eq!(then, [v("v-k3"), v("v-k2")]);
    assert!(db.multi_get::<&[u8]>(&ro, &[]).unwrap().is_empty());
    db.close().unwrap();
    assert!(matches!(db.multi_get(&ReadOptions::default(), &["k1"]), Err(Error::Closed)));
}

#[test]
fn a_clone_keeps_the_view_and_a_refresh_moves_to_the_latest() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs, true), "/db").unwrap();
    load(&db, &["a@1", "a@2", "b@1"]);
    let snap = db.snapshot();
    db.put(b"a@3", b"later", &WO).unwrap();
    let ro = ReadOptions {
        snapshot: Some(snap.clone()),
        upper_bound: Some(b"a@9".to_vec()),
        prefix: Some(b"a".to_vec()),
        ..ReadOptions::default()
    };
    let mut it = db.iter(&ro).unwrap();
    drop(snap);
    assert_eq!(keys_forward(&mut it), ["a@1", "a@2"]);
    // Writes, a flush and a compaction later, a clone still reads the old view.
    db.delete(b"a@1", &WO).unwrap();
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    let mut twin = it.try_clone().unwrap();
    assert!(!twin.valid(), "a clone starts unpositioned");
    assert_eq!(twin.seqnum(), it.seqnum());
    assert_eq!(keys_forward(&mut twin), ["a@1", "a@2"]);
    assert_eq!(twin.pinned_prefix(), Some(&b"a"[..]));
    // A refresh reads the latest state with the same bounds and prefix.
    it.refresh().unwrap();
    assert!(!it.valid());
    assert_eq!(it.seqnum(), db.last_seqnum());
    assert_eq!(keys_forward(&mut it), ["a@2", "a@3"]);
    assert_eq!(keys_forward(&mut twin), ["a@1", "a@2"]);
    assert_eq!(db.leaks().iterators, 2);
    drop(twin);
    drop(it);
    assert_eq!(db.leaks().iterators, 0);
    let mut it = db.iter(&ReadOptions::default()).unwrap();
    db.close().unwrap();
    assert!(matches!(it.try_clone(), Err(Error::Closed)));
    assert!(matches!(it.refresh(), Err(Error::Closed)));
}

/// A merge operator that compacts the whole database when it first meets the operand
/// `compact-now`: the read resolving that merge still holds the version the compaction
/// replaces, as a `get` on one thread does while a compaction finishes on another.
#[derive(Debug, Default)]
struct CompactDuringMerge {
    db: Mutex<Option<Arc<Db>>>,
    armed: AtomicBool,
}

impl MergeOperator for CompactDuringMerge {
    fn name(&self) -> &str {
        "test.compact_during_merge"
    }
    fn full_merge(&self, key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Vec<u8> {
        if operands.contains(&&b"compact-now"[..]) && self.armed.swap(false, Ordering::SeqCst) {
            if let Some(db) = self.db.lock().unwrap().as_ref() {
                db.compact_range(None, None).unwrap();
            }
        }
        StringAppend::default().full_merge(key, existing, operands)
    }
}

#[test]
fn a_read_holding_the_last_reference_to_an_old_version_deletes_its_tables() {
    let fs = MemFs::new();
    let merge = Arc::new(CompactDuringMerge::default());
    let o = Options { merge_operator: merge.clone(), ..opts(&fs, false) };
    let db = Arc::new(Db::open(o, "/db").unwrap());
    db.put(b"a@1", b"x", &WO).unwrap();
    db.flush().unwrap();
    db.put(b"b@1", b"y", &WO).unwrap();
    db.flush().unwrap();
    db.merge(b"a@1", b"compact-now", &WO).unwrap();
    *merge.db.lock().unwrap() = Some(db.clone());
    merge.armed.store(true, Ordering::SeqCst);
    for (read, want) in [("get", "x,compact-now"), ("multi_get", "x,compact-now,compact-now")] {
        let got = match read {
            "get" => db.get(&ReadOptions::default(), b"a@1").unwrap(),
            _ => db.multi_get(&ReadOptions::default(), &["a@1"]).unwrap().remove(0),
        };
        assert_eq!(got, Some(want.as_bytes().to_vec()));
        assert!(!merge.armed.load(Ordering::SeqCst), "the compaction ran inside the {read}");
        // The tables the compaction replaced went with the read's version: files and readers.
        let live = db.live_files();
        let tables: Vec<String> = fs
            .list(std::path::Path::new("/db"))
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".sst"))
            .collect();
        assert!(tables.iter().all(|t| live.contains(t)), "{read}: {tables:?} live {live:?}");
        let m = db.metrics();
        let live_tables: usize = m.levels.iter().map(|l| l.files).sum();
        assert!(m.open_tables <= live_tables, "{read}: {} readers", m.open_tables);
        // Again through the other read: new tables to replace.
        db.put(b"c@1", b"z", &WO).unwrap();
        db.flush().unwrap();
        db.merge(b"a@1", b"compact-now", &WO).unwrap();
        merge.armed.store(true, Ordering::SeqCst);
    }
    merge.db.lock().unwrap().take();
    db.close().unwrap();
}

/// A table whose file vanished from the directory before it became obsolete (removed by an
/// earlier failed attempt, or by someone else) still loses its reader when no version needs it.
/// Found by Tumbler's liveness oracle under a planted table removal.
#[test]
fn the_reader_of_an_obsolete_table_goes_even_when_its_file_is_already_gone() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs, false), "/db").unwrap();
    db.put(b"a@1", b"x", &WO).unwrap();
    db.flush().unwrap();
    assert_eq!(db.get(&ReadOptions::default(), b"a@1").unwrap(), Some(b"x".to_vec()));
    assert_eq!(db.metrics().open_tables, 1, "the get opened the table");
    let old = db.live_files().into_iter().find(|n| n.ends_with(".sst")).expect("a table");
    // The reader keeps its open file: reads still work with the name gone.
    fs.remove(&std::path::Path::new("/db").join(&old)).unwrap();
    db.put(b"a@1", b"y", &WO).unwrap();
    db.compact_range(None, None).unwrap();
    assert!(!db.live_files().contains(&old), "the compaction replaced {old}");
    // Open the new table's reader too: only it may be open now.
    assert_eq!(db.get(&ReadOptions::default(), b"a@1").unwrap(), Some(b"y".to_vec()));
    let m = db.metrics();
    let live_tables: usize = m.levels.iter().map(|l| l.files).sum();
    assert!(m.open_tables <= live_tables, "{} readers for {live_tables} tables", m.open_tables);
    db.close().unwrap();
}

fn bound(kind: u8, key: &[u8]) -> std::ops::Bound<Vec<u8>> {
    match kind % 3 {
        0 => std::ops::Bound::Included(key.to_vec()),
        1 => std::ops::Bound::Excluded(key.to_vec()),
        _ => std::ops::Bound::Unbounded,
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// `Db::range` from both ends, in any interleaving, gives what `BTreeMap::range` gives,
    /// over keys in tables and memtables alike.
    #[test]
    fn range_walks_both_ends_like_a_btreemap(
        keys in proptest::collection::vec(proptest::collection::vec(b'a'..b'e', 0..3), 0..40),
        flush_at in 0usize..40,
        bounds in (0u8..3, proptest::collection::vec(b'a'..b'e', 0..3), 0u8..3,
                   proptest::collection::vec(b'a'..b'e', 0..3)),
        steps in proptest::collection::vec(proptest::bool::ANY, 0..50),
    ) {
        let fs = MemFs::new();
        let db = Db::open(opts(&fs, false), "/db").unwrap();
        let mut model = std::collections::BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            if i == flush_at {
                db.flush().unwrap();
            }
            let v = format!("v{i}").into_bytes();
            db.put(k, &v, &WO).unwrap();
            model.insert(k.clone(), v);
        }
        let (start, end) = (bound(bounds.0, &bounds.1), bound(bounds.2, &bounds.3));
        let valid = match (&start, &end) {
            (std::ops::Bound::Included(s), std::ops::Bound::Included(e)) => s <= e,
            (std::ops::Bound::Included(s) | std::ops::Bound::Excluded(s),
             std::ops::Bound::Excluded(e) | std::ops::Bound::Included(e)) => s < e,
            _ => true,
        };
        let mut want: Box<dyn DoubleEndedIterator<Item = (&Vec<u8>, &Vec<u8>)>> = if valid {
            Box::new(model.range((start.clone(), end.clone())))
        } else {
            Box::new(std::iter::empty())
        };
        let mut got = db.range(&ReadOptions::default(), (start, end)).unwrap();
        for front in steps.iter().copied().chain([true, false, true]) {
            let g = if front { got.next() } else { got.next_back() };
            let w = if front { want.next() } else { want.next_back() };
            let g = g.map(|r| r.unwrap());
            proptest::prop_assert_eq!(g, w.map(|(k, v)| (k.clone(), v.clone())));
        }
    }
}

#[test]
fn prefix_gives_the_keys_starting_with_its_bytes_under_any_comparator() {
    for comparator in [None, Some(Arc::new(SameOrder) as Arc<dyn Comparator>)] {
        let fs = MemFs::new();
        let mut o = opts(&fs, false);
        if let Some(c) = comparator.clone() {
            o.comparator = c;
        }
        let db = Db::open(o, "/db").unwrap();
        load(&db, KEYS);
        db.put(b"a\xff", b"v", &WO).unwrap();
        db.put(b"\xff\xff", b"v", &WO).unwrap();
        let keys = |p: &[u8], rev: bool| -> Vec<Vec<u8>> {
            let r = db.prefix(&ReadOptions::default(), p).unwrap();
            let it: Box<dyn std::iter::Iterator<Item = _>> =
                if rev { Box::new(r.rev()) } else { Box::new(r) };
            it.map(|kv: cobble::Result<cobble::KeyValue>| kv.unwrap().0).collect()
        };
        let a: Vec<Vec<u8>> =
            [&b"a"[..], b"a!x", b"a@", b"a@1", b"a@2@z", b"aa@1", b"ab@", b"a\xff"]
                .iter()
                .map(|k| k.to_vec())
                .collect();
        assert_eq!(keys(b"a", false), a, "{comparator:?}");
        let mut rev = a.clone();
        rev.reverse();
        assert_eq!(keys(b"a", true), rev);
        assert_eq!(keys(b"a@", false), &a[2..5]);
        assert_eq!(keys(b"\xff", false), [b"\xff\xff".to_vec()]);
        assert!(keys(b"z", false).is_empty());
        assert_eq!(keys(b"", false).len(), KEYS.len() + 2);
    }
}

/// `estimate_disk_usage`: every table's size when unbounded, nothing for an empty range, and
/// growing with the range in between.
#[test]
fn disk_usage_estimates_grow_with_the_range() {
    let fs = MemFs::new();
    let o = Options {
        target_file_size: 2 << 10,
        compression: cobble::Compression::None,
        ..opts(&fs, false)
    };
    let db = Db::open(o, "/db").unwrap();
    for i in 0..400 {
        db.put(format!("k{i:03}"), [b'v'; 40], &WO).unwrap();
    }
    db.compact_range(None, None).unwrap();
    db.put("k150", "in the memtable: not counted", &WO).unwrap();
    let all: u64 = db.metrics().levels.iter().map(|l| l.bytes).sum();
    assert_eq!(db.estimate_disk_usage(None, None).unwrap(), all);
    assert_eq!(db.estimate_disk_usage(Some(b"k100"), Some(b"k100")).unwrap(), 0);
    let half = db.estimate_disk_usage(Some(b"k100"), Some(b"k300")).unwrap();
    assert!(half > all / 4 && half < all * 3 / 4, "{half} of {all}");
    let mut last = 0;
    for end in ["k101", "k150", "k200", "k250", "k300", "k399", "z"] {
        let e = db.estimate_disk_usage(Some(b"k100"), Some(end.as_bytes())).unwrap();
        assert!(e >= last, "{end}: {e} after {last}");
        last = e;
    }
    assert!(db.estimate_disk_usage(Some(b"k100"), None).unwrap() >= last);
    db.close().unwrap();
}

/// A point read stops at the newest source that decides its key: with three L0 tables each
/// holding a value of `k`, only the newest is read, while a merge chain reads on to its base
/// in the oldest. Counted in block-cache lookups, every block already resident.
#[test]
fn a_get_stops_at_the_newest_table_that_decides_the_key() {
    let fs = MemFs::new();
    let merge = Arc::new(StringAppend::default()) as Arc<dyn MergeOperator>;
    let o = Options { merge_operator: merge, ..opts(&fs, false) };
    let db = Db::open(o, "/db").unwrap();
    for round in 1..=3 {
        db.put(b"k", format!("v{round}").as_bytes(), &WO).unwrap();
        match round {
            1 => db.put(b"j", b"base", &WO).unwrap(),
            _ => db.merge(b"j", format!("m{round}").as_bytes(), &WO).unwrap(),
        }
        db.flush().unwrap();
    }
    assert_eq!(db.metrics().levels[0].files, 3, "three L0 tables");
    let ro = ReadOptions::default();
    let lookups = |key: &str| {
        let before = db.metrics().cache;
        let got = db.get(&ro, key).unwrap();
        let after = db.metrics().cache;
        (got, after.hits + after.misses - before.hits - before.misses)
    };
    // Warm every table's blocks.
    lookups("j");
    let (k, newest_only) = lookups("k");
    let (j, all_three) = lookups("j");
    assert_eq!(k, Some(b"v3".to_vec()));
    assert_eq!(j, Some(b"base,m2,m3".to_vec()));
    assert!(newest_only > 0);
    assert_eq!(all_three, 3 * newest_only, "the value of k is decided by the newest table");
    db.close().unwrap();
}

/// `get_pinned` reads as `get` does, from the memtable, from tables (cached or not), at a
/// snapshot, through merges and deletes; a version's own value is handed out where it lies,
/// a merge's result is computed. A pinned value outlives the writes and flushes after it.
#[test]
fn get_pinned_reads_as_get_and_pins_what_it_can() {
    let fs = MemFs::new();
    let mut o = opts(&fs, false);
    o.merge_operator = Arc::new(StringAppend::default());
    let db = Db::open(o, "/db").unwrap();
    let ro = ReadOptions::default();
    let check = |db: &Db, key: &str, ro: &ReadOptions| {
        let want = db.get(ro, key).unwrap();
        let got = db.get_pinned(ro, key).unwrap();
        assert_eq!(got.as_deref(), want.as_deref(), "key {key}");
        got
    };
    db.put("k", "v1", &WO).unwrap();
    db.put("gone", "x", &WO).unwrap();
    db.delete("gone", &WO).unwrap();
    let held = check(&db, "k", &ro).expect("k is set");
    assert!(held.is_pinned(), "a memtable value is pinned in the arena");
    assert!(check(&db, "gone", &ro).is_none());
    assert!(check(&db, "never", &ro).is_none());
    let snap = db.snapshot();
    db.put("k", "v2", &WO).unwrap();
    db.merge("m", "a", &WO).unwrap();
    db.merge("m", "b", &WO).unwrap();
    db.flush().unwrap();
    let at_snap = ReadOptions { snapshot: Some(snap.clone()), ..ReadOptions::default() };
    assert_eq!(&*check(&db, "k", &at_snap).unwrap(), b"v1");
    let from_table = check(&db, "k", &ro).unwrap();
    assert_eq!(&*from_table, b"v2");
    assert!(from_table.is_pinned(), "a table value is pinned in its block");
    let merged = check(&db, "m", &ro).unwrap();
    assert_eq!(&*merged, b"a,b");
    assert!(!merged.is_pinned(), "a merge result is computed");
    // Reads again from the cached block, and a newer memtable version shadows the table.
    assert!(check(&db, "k", &ro).unwrap().is_pinned());
    db.put("k", "v3", &WO).unwrap();
    assert_eq!(&*check(&db, "k", &ro).unwrap(), b"v3");
    db.compact_range(None, None).unwrap();
    assert_eq!(&*check(&db, "k", &ro).unwrap(), b"v3");
    // The first pinned value still reads what it read, its memtable long flushed.
    assert_eq!(&*held, b"v1");
    assert_eq!(held.into_vec(), b"v1");
    drop((from_table, merged, snap));
    db.close().unwrap();
}
