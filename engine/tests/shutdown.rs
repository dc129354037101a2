//! Closing a database whose filesystem has died must return, whatever the background threads
//! were doing.
//!
//! Story of a bug (found by Tumbler's threaded configs, which hung): a worker whose flush failed
//! re-took the state lock and waited for more work without looking at the shutdown flag, so a
//! `close()` that had set the flag and notified just before that wait joined the worker forever.
//! Here the filesystem starts failing every call at a chosen point (as a crashed machine's
//! would) while writes keep background flushes and compactions busy, then the database is
//! closed. Before the fix some of these closes never returned.

use cobble::internal::sync::atomic::{AtomicU64, Ordering};
use cobble::internal::sync::Arc;
use std::path::Path;

use cobble::{Db, Error, File, FileLock, Fs, MemFs, Options, Result, Scheduler, WriteOptions};

/// `MemFs` that fails every call once `limit` calls have been made.
#[derive(Debug)]
struct DyingFs {
    inner: MemFs,
    calls: Arc<AtomicU64>,
    limit: u64,
}

#[derive(Debug)]
struct DyingFile {
    inner: Arc<dyn File>,
    calls: Arc<AtomicU64>,
    limit: u64,
}

fn tick(calls: &AtomicU64, limit: u64) -> Result<()> {
    if calls.fetch_add(1, Ordering::SeqCst) >= limit {
        return Err(Error::io("dying fs", std::io::Error::other("the machine is down")));
    }
    Ok(())
}

impl File for DyingFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        tick(&self.calls, self.limit)?;
        self.inner.read_at(offset, buf)
    }
    fn append(&self, data: &[u8]) -> Result<()> {
        tick(&self.calls, self.limit)?;
        self.inner.append(data)
    }
    fn sync(&self) -> Result<()> {
        tick(&self.calls, self.limit)?;
        self.inner.sync()
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn truncate(&self, len: u64) -> Result<()> {
        tick(&self.calls, self.limit)?;
        self.inner.truncate(len)
    }
}

impl DyingFs {
    fn wrap(&self, f: Arc<dyn File>) -> Arc<dyn File> {
        Arc::new(DyingFile { inner: f, calls: self.calls.clone(), limit: self.limit })
    }
}

impl Fs for DyingFs {
    fn create(&self, path: &Path) -> Result<Arc<dyn File>> {
        tick(&self.calls, self.limit)?;
        Ok(self.wrap(self.inner.create(path)?))
    }
    fn open(&self, path: &Path) -> Result<Arc<dyn File>> {
        tick(&self.calls, self.limit)?;
        Ok(self.wrap(self.inner.open(path)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        tick(&self.calls, self.limit)?;
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> Result<()> {
        tick(&self.calls, self.limit)?;
        self.inner.remove(path)
    }
    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        tick(&self.calls, self.limit)?;
        self.inner.link(from, to)
    }
    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        tick(&self.calls, self.limit)?;
        self.inner.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        tick(&self.calls, self.limit)?;
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        tick(&self.calls, self.limit)?;
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
}

#[test]
fn close_returns_when_the_filesystem_dies_under_background_work() {
    let (mut opened, mut died_while_writing) = (0, 0);
    for limit in (40..400).step_by(7) {
        let fs = DyingFs { inner: MemFs::new(), calls: Arc::new(AtomicU64::new(0)), limit };
        let opts = Options {
            fs: Arc::new(fs),
            memtable_size: 4096,
            target_file_size: 2048,
            block_size: 256,
            l0_compaction_threshold: 2,
            lbase_max_bytes: 8192,
            scheduler: Scheduler::Threads { max_concurrent_compactions: 2 },
            ..Options::default()
        };
        let db = match Db::open(opts, "/db") {
            Ok(db) => db,
            Err(e) => {
                assert!(e.is_io(), "limit {limit}: {e}");
                continue;
            }
        };
        opened += 1;
        for i in 0..2000u32 {
            let key = format!("key{:05}", i % 397);
            if let Err(e) = db.put(key.as_bytes(), [b'v'; 100], &WriteOptions::default()) {
                assert!(e.is_io() || matches!(e, Error::Poisoned { .. }), "limit {limit}: {e}");
                died_while_writing += 1;
                break;
            }
        }
        // Errors are expected (the filesystem is dead); returning is what matters.
        let _ = db.close();
        drop(db);
    }
    // The sweep really covered deaths during writes, not only during open.
    assert!(opened > 20, "{opened}");
    assert_eq!(died_while_writing, opened);
}
