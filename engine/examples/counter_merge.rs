//! A merge operator: counters incremented without a read-modify-write, the way RocksDB's
//! `Merge` is used. A read folds the operands into the value it needs; because adding is
//! associative, the operator also offers `partial_merge`, so compactions fold runs of
//! operands into one ahead of the reads.
//!
//! Run: `cargo run -p cobble --example counter_merge`

use cobble::{Db, MergeOperator, Options, ReadOptions, Result, WriteOptions};
use std::sync::Arc;

/// Adds little-endian u64 operands to the existing value (0 when there is none).
#[derive(Debug)]
struct Add;

impl MergeOperator for Add {
    fn name(&self) -> &str {
        "example.add_u64"
    }

    fn full_merge(&self, _key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Vec<u8> {
        let decode = |b: &[u8]| b.try_into().map(u64::from_le_bytes).unwrap_or(0);
        let sum = operands.iter().fold(existing.map_or(0, decode), |acc, op| acc + decode(op));
        sum.to_le_bytes().to_vec()
    }

    /// Several increments are one increment by their sum.
    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        Some(self.full_merge(key, None, operands))
    }
}

fn main() -> Result<()> {
    let dir = std::env::temp_dir().join("cobble-example-counter");
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(Options::default().merge_operator(Arc::new(Add)), &dir)?;
    let wo = WriteOptions::default();
    for _ in 0..10 {
        db.merge("page-views", 1u64.to_le_bytes(), &wo)?;
    }
    db.flush()?; // ten operands in one table
    for _ in 0..3 {
        db.merge("page-views", 1u64.to_le_bytes(), &wo)?;
    }
    db.flush()?;
    db.compact_range(None, None)?; // thirteen operands become one
    println!("operands folded by compaction: {}", db.metrics().merge_operands_combined);
    db.merge("page-views", 2u64.to_le_bytes(), &wo)?;
    let value = db.get(&ReadOptions::default(), "page-views")?.expect("a counter");
    let views = u64::from_le_bytes(value.try_into().expect("8 bytes"));
    assert_eq!(views, 15);
    println!("page-views = {views}");
    db.close()?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
