//! Directory-entry durability, checked without a crash model: a `Fs` wrapper around `MemFs`
//! remembers which created names were not yet made durable by `sync_dir`, and records a
//! violation whenever a sync makes durable a record that points at such a name:
//! - a sync of the live manifest, or a switch of CURRENT, while a table's (or the new
//!   manifest's) name is still volatile: after a crash the manifest would name a missing file;
//! - a WAL sync while the WAL's own name is still volatile: a synced write that a crash could
//!   still lose with the file.
//!
//! With the `Manual` scheduler no output is being written while an edit is logged, so every
//! volatile table name at a manifest sync is a violation.

use cobble::internal::sync::{Arc, Mutex};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cobble::internal::filename::{self, FileKind};
use cobble::{
    Db, File, FileLock, Fs, MemFs, Options, ReadOptions, Result, Scheduler, WriteOptions,
};

#[derive(Debug, Default)]
struct Tracker {
    /// Names created (or renamed into place) whose directory entry is not yet durable.
    volatile: BTreeSet<PathBuf>,
    violations: Vec<String>,
}

#[derive(Debug, Clone)]
struct CheckingFs {
    inner: MemFs,
    tracker: Arc<Mutex<Tracker>>,
}

#[derive(Debug)]
struct CheckingFile {
    inner: Arc<dyn File>,
    path: PathBuf,
    tracker: Arc<Mutex<Tracker>>,
}

fn kind(path: &Path) -> Option<FileKind> {
    filename::parse(path.file_name()?.to_str()?)
}

impl File for CheckingFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }

    fn append(&self, data: &[u8]) -> Result<()> {
        self.inner.append(data)
    }

    fn sync(&self) -> Result<()> {
        let mut t = self.tracker.lock().expect("tracker");
        let k = kind(&self.path);
        if matches!(k, Some(FileKind::Wal(_)))
            && !self.inner.is_empty()?
            && t.volatile.contains(&self.path)
        {
            let v = format!("{} synced while its name is not durable", self.path.display());
            t.violations.push(v);
        }
        // A new manifest is synced before its name is durable, which is fine: nothing points
        // at it until CURRENT does (checked in `rename`). A live one's edits count at once.
        if matches!(k, Some(FileKind::Manifest(_))) && !t.volatile.contains(&self.path) {
            let tables: Vec<String> = t
                .volatile
                .iter()
                .filter(|p| matches!(kind(p), Some(FileKind::Table(_))))
                .map(|p| p.display().to_string())
                .collect();
            if !tables.is_empty() {
                let v = format!(
                    "{} synced while tables {tables:?} are not durable",
                    self.path.display()
                );
                t.violations.push(v);
            }
        }
        drop(t);
        self.inner.sync()
    }

    fn len(&self) -> Result<u64> {
        self.inner.len()
    }

    fn truncate(&self, len: u64) -> Result<()> {
        self.inner.truncate(len)
    }
}

impl CheckingFs {
    fn wrap(&self, path: &Path, inner: Arc<dyn File>) -> Arc<dyn File> {
        Arc::new(CheckingFile { inner, path: path.to_path_buf(), tracker: self.tracker.clone() })
    }

    fn tracker(&self) -> cobble::internal::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().expect("tracker")
    }
}

impl Fs for CheckingFs {
    fn create(&self, path: &Path) -> Result<Arc<dyn File>> {
        let existed = self.inner.exists(path)?;
        let f = self.inner.create(path)?;
        if !existed {
            self.tracker().volatile.insert(path.to_path_buf());
        }
        Ok(self.wrap(path, f))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn File>> {
        let f = self.inner.open(path)?;
        Ok(self.wrap(path, f))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)?;
        let mut t = self.tracker();
        if matches!(kind(to), Some(FileKind::Current)) {
            let names: Vec<String> = t
                .volatile
                .iter()
                .filter(|p| matches!(kind(p), Some(FileKind::Table(_) | FileKind::Manifest(_))))
                .map(|p| p.display().to_string())
                .collect();
            if !names.is_empty() {
                t.violations.push(format!("CURRENT replaced while {names:?} are not durable"));
            }
        }
        t.volatile.remove(from);
        t.volatile.insert(to.to_path_buf());
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<()> {
        self.inner.remove(path)?;
        self.tracker().volatile.remove(path);
        Ok(())
    }

    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.link(from, to)?;
        self.tracker().volatile.insert(to.to_path_buf());
        Ok(())
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.inner.sync_dir(dir)?;
        self.tracker().volatile.retain(|p| p.parent() != Some(dir));
        Ok(())
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
}

#[test]
fn every_synced_record_points_at_durable_names() {
    let fs = CheckingFs { inner: MemFs::new(), tracker: Arc::default() };
    let opts = Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 2048,
        target_file_size: 1024,
        block_size: 128,
        l0_compaction_threshold: 2,
        lbase_max_bytes: 4096,
        max_manifest_file_size: 2048,
        scheduler: Scheduler::Manual,
        ..Options::default()
    };
    for round in 0..4u32 {
        let db = Db::open(opts.clone(), "/db").expect("open");
        for i in 0..600u32 {
            let k = format!("key{:03}", (i * 7 + round) % 211);
            let wo = WriteOptions { sync: i % 13 == 0 };
            db.put(k.as_bytes(), format!("{round}-{i}").as_bytes(), &wo).expect("put");
            if i % 97 == 0 {
                db.delete_range(b"key050", b"key060", &wo).expect("delete_range");
            }
            if i % 5 == 0 {
                db.run_background_step().expect("step");
            }
        }
        if round % 2 == 1 {
            db.compact_range(None, None).expect("compact_range");
        }
        assert!(db.get(&ReadOptions::default(), b"key001").expect("get").is_some());
        let m = db.metrics();
        assert!(m.flushes > 3 && m.compactions > 0, "{m:?}");
        db.close().expect("close");
    }
    let t = fs.tracker();
    assert!(t.violations.is_empty(), "{:#?}", t.violations);
}
