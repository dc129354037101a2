//! Many threads writing synced: group commit lets them share WAL fsyncs, so throughput grows
//! with the writers instead of being one fsync per write. `Metrics::write_groups` counts the
//! groups.
//!
//! Run: `cargo run -p cobble --release --example concurrent_writers`

use cobble::{Db, Options, Result, WriteOptions};
use std::sync::Arc;

#[expect(clippy::disallowed_methods, reason = "an embedder's own writer threads")]
fn main() -> Result<()> {
    let dir = std::env::temp_dir().join("cobble-example-writers");
    let _ = std::fs::remove_dir_all(&dir);
    let db = Arc::new(Db::open(Options::default(), &dir)?);
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || -> Result<()> {
                for i in 0..200 {
                    db.put(format!("t{t}-{i:04}"), "v", &WriteOptions { sync: true })?;
                }
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread")?;
    }
    let m = db.metrics();
    println!("{} synced writes in {} WAL groups", m.writes, m.write_groups);
    db.close()?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
