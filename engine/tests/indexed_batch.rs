//! Indexed batches: reading a batch merged with the database before committing it gives what
//! the database gives right after committing it, point reads and iterators alike, at a
//! snapshot too; writes made after the read's view stay out of it.

use cobble::internal::sync::Arc;
use cobble::WriteOptions;
use cobble::{Db, Fs, IndexedBatch, KeyValue, MemFs, Options, ReadOptions, Scheduler};
use proptest::prelude::*;

const WO: WriteOptions = WriteOptions { sync: false };

fn open(fs: &MemFs) -> Db {
    let opts = Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 4 << 10,
        target_file_size: 2 << 10,
        scheduler: Scheduler::Manual,
        ..Options::default()
    };
    Db::open(opts, "/db").unwrap()
}

fn s(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|v| String::from_utf8(v).unwrap())
}

/// Every pair the cursor walks forward, and backward.
fn walk(mut c: cobble::Cursor) -> (Vec<KeyValue>, Vec<KeyValue>) {
    let mut fwd = Vec::new();
    c.first().unwrap();
    while c.valid() {
        fwd.push((c.key().to_vec(), c.value().to_vec()));
        c.next().unwrap();
    }
    let mut back = Vec::new();
    c.last().unwrap();
    while c.valid() {
        back.push((c.key().to_vec(), c.value().to_vec()));
        c.prev().unwrap();
    }
    back.reverse();
    (fwd, back)
}

#[test]
fn the_batch_reads_over_the_database_and_stays_uncommitted() {
    let fs = MemFs::new();
    let db = open(&fs);
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("m", "base")] {
        db.put(k, v, &WO).unwrap();
    }
    db.merge("m", "x", &WO).unwrap();
    let mut b = db.indexed_batch();
    b.put("a", "10");
    b.delete("b");
    b.delete_range("c", "d");
    b.merge("m", "y");
    b.merge("n", "z");
    b.put("c2", "new");
    let ro = ReadOptions::default();
    assert_eq!(s(b.get(&db, &ro, "a").unwrap()).as_deref(), Some("10"));
    assert_eq!(b.get(&db, &ro, "b").unwrap(), None);
    assert_eq!(b.get(&db, &ro, "c").unwrap(), None, "the batch's range delete");
    assert_eq!(s(b.get(&db, &ro, "c2").unwrap()).as_deref(), Some("new"), "put after the range");
    assert_eq!(s(b.get(&db, &ro, "d").unwrap()).as_deref(), Some("4"), "end is exclusive");
    assert_eq!(s(b.get(&db, &ro, "m").unwrap()).as_deref(), Some("base,x,y"), "one merge");
    assert_eq!(s(b.get(&db, &ro, "n").unwrap()).as_deref(), Some("z"));
    let (fwd, back) = walk(b.iter(&db, &ro).unwrap());
    let keys: Vec<&[u8]> = fwd.iter().map(|(k, _)| &k[..]).collect();
    assert_eq!(keys, [&b"a"[..], b"c2", b"d", b"m", b"n"]);
    assert_eq!(fwd, back);
    // Nothing reached the database.
    assert_eq!(s(db.get(&ro, "a").unwrap()).as_deref(), Some("1"));
    db.write(b.into_batch(), &WO).unwrap();
    assert_eq!(s(db.get(&ro, "m").unwrap()).as_deref(), Some("base,x,y"));
    assert_eq!(db.get(&ro, "c").unwrap(), None);
    db.close().unwrap();
}

#[test]
fn writes_after_the_view_and_after_the_snapshot_stay_out() {
    let fs = MemFs::new();
    let db = open(&fs);
    db.put("k", "old", &WO).unwrap();
    db.merge("m", "a", &WO).unwrap();
    let snap = db.snapshot();
    db.put("k", "new", &WO).unwrap();
    db.merge("m", "b", &WO).unwrap();
    db.delete_range("a", "z", &WO).unwrap();
    db.flush().unwrap();
    let mut b = db.indexed_batch();
    b.merge("m", "c");
    b.put("x", "1");
    let at_snap = ReadOptions { snapshot: Some(snap.clone()), ..ReadOptions::default() };
    assert_eq!(s(b.get(&db, &at_snap, "k").unwrap()).as_deref(), Some("old"));
    assert_eq!(s(b.get(&db, &at_snap, "m").unwrap()).as_deref(), Some("a,c"));
    let (fwd, _) = walk(b.iter(&db, &at_snap).unwrap());
    assert_eq!(fwd.len(), 3, "k, m and x as of the snapshot: {fwd:?}");
    // Now: the range delete hides everything but the batch's own writes.
    let now = ReadOptions::default();
    assert_eq!(b.get(&db, &now, "k").unwrap(), None);
    assert_eq!(s(b.get(&db, &now, "m").unwrap()).as_deref(), Some("c"));
    // An iterator made now does not see a write that lands after it is made, nor a later
    // write to the batch.
    let it = b.iter(&db, &now).unwrap();
    db.put("y", "late", &WO).unwrap();
    b.put("w", "late");
    let (fwd, _) = walk(it);
    let keys: Vec<&[u8]> = fwd.iter().map(|(k, _)| &k[..]).collect();
    assert_eq!(keys, [&b"m"[..], b"x"]);
    drop((snap, at_snap));
    db.close().unwrap();
}

#[test]
fn clone_refresh_bounds_and_append_carry_the_batch() {
    let fs = MemFs::new();
    let db = open(&fs);
    db.put("a", "1", &WO).unwrap();
    let mut b = db.indexed_batch();
    b.put("b", "2");
    let mut other = cobble::WriteBatch::new();
    other.put("c", "3");
    other.delete("a");
    b.append(&other);
    assert_eq!(b.count(), 3);
    let ro = ReadOptions { upper_bound: Some(b"c".to_vec()), ..ReadOptions::default() };
    let it = b.iter(&db, &ro).unwrap();
    let clone = it.try_clone().unwrap();
    let (fwd, _) = walk(clone);
    assert_eq!(fwd, vec![(b"b".to_vec(), b"2".to_vec())], "bounded, a deleted by the batch");
    db.put("a2", "x", &WO).unwrap();
    let mut it = it;
    it.refresh().unwrap();
    let (fwd, _) = walk(it);
    let keys: Vec<&[u8]> = fwd.iter().map(|(k, _)| &k[..]).collect();
    assert_eq!(keys, [&b"a2"[..], b"b"], "refresh: the database now, the batch kept");
    b.clear();
    assert!(b.is_empty());
    assert_eq!(s(b.get(&db, &ReadOptions::default(), "a").unwrap()).as_deref(), Some("1"));
    db.close().unwrap();
}

/// One write of the generated workloads, on a handful of keys so they collide.
#[derive(Clone, Debug)]
enum W {
    Put(u8, u8),
    Delete(u8),
    Merge(u8, u8),
    DeleteRange(u8, u8),
    Flush,
}

fn key(k: u8) -> Vec<u8> {
    vec![b'a' + k]
}

fn w() -> impl Strategy<Value = W> {
    prop_oneof![
        4 => (0..8u8, any::<u8>()).prop_map(|(k, v)| W::Put(k, v)),
        2 => (0..8u8).prop_map(W::Delete),
        4 => (0..8u8, any::<u8>()).prop_map(|(k, v)| W::Merge(k, v)),
        1 => (0..8u8, 0..9u8).prop_map(|(a, b)| W::DeleteRange(a, b)),
        1 => Just(W::Flush),
    ]
}

fn apply_db(db: &Db, w: &W) {
    match *w {
        W::Put(k, v) => db.put(key(k), [v], &WO).unwrap(),
        W::Delete(k) => db.delete(key(k), &WO).unwrap(),
        W::Merge(k, v) => db.merge(key(k), [v], &WO).unwrap(),
        W::DeleteRange(a, b) => db.delete_range(key(a.min(b)), key(a.max(b)), &WO).unwrap(),
        W::Flush => db.flush().unwrap(),
    }
}

fn apply_batch(b: &mut IndexedBatch, w: &W) {
    match *w {
        W::Put(k, v) => b.put(key(k), [v]),
        W::Delete(k) => b.delete(key(k)),
        W::Merge(k, v) => b.merge(key(k), [v]),
        W::DeleteRange(a, b2) => b.delete_range(key(a.min(b2)), key(a.max(b2))),
        W::Flush => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Metamorphic: reads through the uncommitted batch equal reads after committing it.
    #[test]
    fn reading_the_batch_equals_reading_after_commit(
        before in prop::collection::vec(w(), 0..40),
        batch in prop::collection::vec(w(), 0..20),
    ) {
        let fs = MemFs::new();
        let db = open(&fs);
        for op in &before {
            apply_db(&db, op);
        }
        let mut b = db.indexed_batch();
        for op in &batch {
            apply_batch(&mut b, op);
        }
        let ro = ReadOptions::default();
        let gets: Vec<_> = (0..9).map(|k| b.get(&db, &ro, key(k)).unwrap()).collect();
        let (fwd, back) = walk(b.iter(&db, &ro).unwrap());
        let mut ranged: Vec<_> =
            b.range::<&[u8]>(&db, &ro, ..).unwrap().rev().map(Result::unwrap).collect();
        ranged.reverse();
        db.write(b.into_batch(), &WO).unwrap();
        let after: Vec<_> = (0..9).map(|k| db.get(&ro, key(k)).unwrap()).collect();
        prop_assert_eq!(gets, after);
        let (fwd2, _) = walk(db.iter(&ro).unwrap());
        prop_assert_eq!(&fwd, &fwd2);
        prop_assert_eq!(&back, &fwd2);
        prop_assert_eq!(&ranged, &fwd2);
        db.close().unwrap();
    }
}
