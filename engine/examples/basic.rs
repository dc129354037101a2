//! The everyday API: open, write (single writes and an atomic batch), read, iterate, read at
//! a snapshot, close and reopen.
//!
//! Run: `cargo run -p cobble --example basic`

use cobble::{Db, Options, ReadOptions, Result, WriteBatch, WriteOptions};

fn main() -> Result<()> {
    let dir = std::env::temp_dir().join("cobble-example-basic");
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(Options::default().memtable_size(8 << 20), &dir)?;
    let wo = WriteOptions::default();

    db.put("apple", "red", &wo)?;
    db.put("banana", "yellow", &wo)?;
    let snapshot = db.snapshot();

    // A batch commits atomically, with one sync for all of it.
    let mut batch = WriteBatch::new();
    batch.put("cherry", "dark red");
    batch.delete("banana");
    batch.delete_range("x", "z");
    db.write(batch, &WriteOptions { sync: true })?;

    let now = ReadOptions::default();
    assert_eq!(db.get(&now, "banana")?, None);
    let then = ReadOptions { snapshot: Some(snapshot), ..ReadOptions::default() };
    assert_eq!(db.get(&then, "banana")?, Some(b"yellow".to_vec()));

    // A double-ended std iterator over a range of keys.
    for kv in db.range(&now, &b"a"[..]..&b"c~"[..])? {
        let (key, value) = kv?;
        println!("{} = {}", String::from_utf8_lossy(&key), String::from_utf8_lossy(&value));
    }
    drop(then);
    db.close()?;

    // Everything synced (and, at close, the WAL) is there after a reopen.
    let db = Db::open(Options::default(), &dir)?;
    assert_eq!(db.get(&now, "cherry")?, Some(b"dark red".to_vec()));
    db.close()?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
