//! Compactions combine merge operands with the operator's `partial_merge` where no reader can
//! tell the difference: reads at every snapshot give what they gave before, and operators that
//! decline keep every operand.

use cobble::internal::sync::Arc;
use cobble::{Db, Fs, MemFs, MergeOperator, Options, ReadOptions, Scheduler, WriteOptions};

const WO: WriteOptions = WriteOptions { sync: false };

fn opts(fs: &MemFs, op: Arc<dyn MergeOperator>) -> Options {
    Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 64 << 10,
        compression: cobble::Compression::None,
        scheduler: Scheduler::Manual,
        merge_operator: op,
        ..Options::default()
    }
}

fn get(db: &Db, ro: &ReadOptions, key: &str) -> Option<String> {
    db.get(ro, key).unwrap().map(|v| String::from_utf8(v).unwrap())
}

/// Ten operands per key across three flushes, a base under some keys, then a full compaction.
fn load(db: &Db) {
    for round in 0..3 {
        for k in 0..20usize {
            if round == 0 && k.is_multiple_of(2) {
                db.put(format!("k{k:02}"), format!("base{k}"), &WO).unwrap();
            }
            for i in 0..3 {
                db.merge(format!("k{k:02}"), format!("r{round}i{i}"), &WO).unwrap();
            }
        }
        db.flush().unwrap();
    }
}

fn expected(k: usize) -> String {
    let mut pieces = Vec::new();
    if k.is_multiple_of(2) {
        pieces.push(format!("base{k}"));
    }
    for round in 0..3 {
        for i in 0..3 {
            pieces.push(format!("r{round}i{i}"));
        }
    }
    pieces.join(",")
}

#[test]
fn a_compaction_combines_stacks_and_reads_stay_the_same() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs, Arc::new(cobble::StringAppend::default())), "/db").unwrap();
    load(&db);
    let ro = ReadOptions::default();
    for k in 0..20 {
        assert_eq!(get(&db, &ro, &format!("k{k:02}")), Some(expected(k)), "k{k:02} before");
    }
    db.compact_range(None, None).unwrap();
    let m = db.metrics();
    // Odd keys: nine operands and no base, one left; even keys: the base ends the run.
    assert_eq!(m.merge_operands_combined, 20 * 8, "{m:?}");
    for k in 0..20 {
        assert_eq!(get(&db, &ro, &format!("k{k:02}")), Some(expected(k)), "k{k:02} after");
    }
    let scanned: Vec<_> = db.range::<&[u8]>(&ro, ..).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(scanned.len(), 20);
    db.close().unwrap();
    let db = Db::open(opts(&fs, Arc::new(cobble::StringAppend::default())), "/db").unwrap();
    assert_eq!(get(&db, &ro, "k07"), Some(expected(7)), "after a reopen");
    db.close().unwrap();
}

#[test]
fn operands_a_snapshot_separates_are_not_combined_across_it() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs, Arc::new(cobble::StringAppend::default())), "/db").unwrap();
    db.merge("k", "a", &WO).unwrap();
    db.merge("k", "b", &WO).unwrap();
    // Two tables, so the compaction rewrites them (one table alone would just move down).
    db.flush().unwrap();
    let snap = db.snapshot();
    db.merge("k", "c", &WO).unwrap();
    db.merge("k", "d", &WO).unwrap();
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    // Only the two operands below the snapshot may combine.
    assert_eq!(db.metrics().merge_operands_combined, 1);
    let at_snap = ReadOptions { snapshot: Some(snap.clone()), ..ReadOptions::default() };
    assert_eq!(get(&db, &at_snap, "k").as_deref(), Some("a,b"));
    assert_eq!(get(&db, &ReadOptions::default(), "k").as_deref(), Some("a,b,c,d"));
    drop((snap, at_snap));
    db.close().unwrap();
}

/// Keeps its operands apart: `partial_merge` is left at its default (`None`), and a full
/// merge marks how many operands it saw, so a combined operand would show.
#[derive(Debug)]
struct Counting;

impl MergeOperator for Counting {
    fn name(&self) -> &str {
        "test.counting"
    }
    fn full_merge(&self, _key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Vec<u8> {
        let mut out = existing.map(<[u8]>::to_vec).unwrap_or_default();
        out.extend_from_slice(format!("[{}]", operands.len()).as_bytes());
        out
    }
}

#[test]
fn an_operator_without_partial_merge_keeps_every_operand() {
    let fs = MemFs::new();
    let db = Db::open(opts(&fs, Arc::new(Counting)), "/db").unwrap();
    for i in 0..5 {
        db.merge("k", format!("{i}"), &WO).unwrap();
        db.flush().unwrap();
    }
    db.compact_range(None, None).unwrap();
    assert_eq!(db.metrics().merge_operands_combined, 0);
    assert_eq!(get(&db, &ReadOptions::default(), "k").as_deref(), Some("[5]"));
    db.close().unwrap();
}
