//! Reading a batch before committing it: an `IndexedBatch` answers reads with its own writes
//! applied over the database (as RocksDB's `WriteBatchWithIndex` does), so a transfer can check
//! the balances it is about to write, then commit them atomically or drop them.
//!
//! Run: `cargo run -p cobble --example read_your_writes`

use cobble::{Db, IndexedBatch, Options, ReadOptions, Result, WriteOptions};

fn balance(batch: &IndexedBatch, db: &Db, account: &str) -> Result<i64> {
    let v = batch.get(db, &ReadOptions::default(), account)?;
    Ok(v.map_or(0, |v| String::from_utf8_lossy(&v).parse().unwrap_or(0)))
}

/// Moves `amount` from `from` to `to` if `from` can pay; returns whether it did.
fn transfer(db: &Db, from: &str, to: &str, amount: i64) -> Result<bool> {
    let mut batch = db.indexed_batch();
    let paid = balance(&batch, db, from)? - amount;
    if paid < 0 {
        return Ok(false); // nothing was written
    }
    batch.put(from, paid.to_string());
    // The batch already reads its own write, over the database's other keys.
    assert_eq!(balance(&batch, db, from)?, paid);
    let received = balance(&batch, db, to)? + amount;
    batch.put(to, received.to_string());
    db.write(batch.into_batch(), &WriteOptions { sync: true })?;
    Ok(true)
}

fn main() -> Result<()> {
    let dir = std::env::temp_dir().join("cobble-example-read-your-writes");
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(Options::default(), &dir)?;
    db.put("alice", "100", &WriteOptions::default())?;
    assert!(transfer(&db, "alice", "bob", 30)?);
    assert!(!transfer(&db, "bob", "carol", 50)?, "bob holds only 30");
    let ro = ReadOptions::default();
    for kv in db.range::<&[u8]>(&ro, ..)? {
        let (k, v) = kv?;
        println!("{} = {}", String::from_utf8_lossy(&k), String::from_utf8_lossy(&v));
    }
    assert_eq!(db.get(&ro, "alice")?.as_deref(), Some(&b"70"[..]));
    assert_eq!(db.get(&ro, "bob")?.as_deref(), Some(&b"30"[..]));
    db.close()?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
