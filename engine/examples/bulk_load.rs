//! Bulk loading: write sorted data into an external SSTable with `SstWriter`, ingest it in one
//! atomic step, and take a checkpoint (an openable copy) of the result.
//!
//! Run: `cargo run -p cobble --example bulk_load`

use cobble::{Db, Options, ReadOptions, Result, SstWriter};

fn main() -> Result<()> {
    let root = std::env::temp_dir().join("cobble-example-bulk");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("a scratch directory");
    let opts = Options::default();
    let db = Db::open(opts.clone(), root.join("db"))?;

    // Keys in strictly increasing order; range deletions in any order.
    let sst = root.join("load.sst");
    let mut w = SstWriter::create(&opts, &sst)?;
    for i in 0..1000u32 {
        w.put(format!("user{i:05}"), format!("profile {i}"))?;
    }
    let table = w.finish()?;
    println!("wrote {} entries, {} bytes", table.points, table.file_size);

    // Atomic and durable on return; placed in the lowest level it fits.
    db.ingest(&[&sst])?;
    let ro = ReadOptions::default();
    assert_eq!(db.get(&ro, "user00042")?, Some(b"profile 42".to_vec()));

    db.checkpoint(root.join("checkpoint"))?;
    db.close()?;
    let copy = Db::open(Options::default(), root.join("checkpoint"))?;
    assert_eq!(copy.get(&ro, "user00999")?, Some(b"profile 999".to_vec()));
    copy.close()?;
    std::fs::remove_dir_all(&root).ok();
    Ok(())
}
