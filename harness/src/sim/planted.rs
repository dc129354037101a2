//! Planted faults: deliberately broken filesystems that lie to the engine the way a buggy
//! engine would misuse a real one. They exist to prove that Tumbler's oracles catch real
//! durability bugs (see `tests/planted.rs` and `tumbler run --plant`). Never used by default.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use cobble::{File, FileLock, Fs, Result};

/// A bug to plant between the engine and its filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedFault {
    /// `sync_dir` does nothing: new file names (tables, WALs, CURRENT) are never made durable.
    SkipSyncDir,
    /// `sync` of WAL files does nothing: writes acknowledged as synced are not durable.
    SkipWalSync,
}

impl PlantedFault {
    /// The name used on the command line and in settings.json.
    pub fn name(self) -> &'static str {
        match self {
            PlantedFault::SkipSyncDir => "skip-sync-dir",
            PlantedFault::SkipWalSync => "skip-wal-sync",
        }
    }
}

impl fmt::Display for PlantedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PlantedFault {
    type Err = String;

    fn from_str(s: &str) -> Result<PlantedFault, String> {
        match s {
            "skip-sync-dir" => Ok(PlantedFault::SkipSyncDir),
            "skip-wal-sync" => Ok(PlantedFault::SkipWalSync),
            _ => Err(format!("unknown planted fault {s:?} (skip-sync-dir, skip-wal-sync)")),
        }
    }
}

/// Wraps a filesystem and plants `fault` in it.
#[derive(Debug)]
pub struct PlantedFs {
    inner: Arc<dyn Fs>,
    fault: PlantedFault,
}

impl PlantedFs {
    /// Plants `fault` in front of `inner`.
    pub fn new(inner: Arc<dyn Fs>, fault: PlantedFault) -> PlantedFs {
        PlantedFs { inner, fault }
    }

    fn wrap(&self, path: &Path, file: Arc<dyn File>) -> Arc<dyn File> {
        let is_wal = path.extension().is_some_and(|e| e == "log");
        if self.fault == PlantedFault::SkipWalSync && is_wal {
            Arc::new(NoSyncFile { inner: file })
        } else {
            file
        }
    }
}

#[derive(Debug)]
struct NoSyncFile {
    inner: Arc<dyn File>,
}

impl File for NoSyncFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn append(&self, data: &[u8]) -> Result<()> {
        self.inner.append(data)
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn truncate(&self, len: u64) -> Result<()> {
        self.inner.truncate(len)
    }
}

impl Fs for PlantedFs {
    fn create(&self, path: &Path) -> Result<Arc<dyn File>> {
        Ok(self.wrap(path, self.inner.create(path)?))
    }
    fn open(&self, path: &Path) -> Result<Arc<dyn File>> {
        Ok(self.wrap(path, self.inner.open(path)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> Result<()> {
        self.inner.remove(path)
    }
    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.link(from, to)
    }
    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        match self.fault {
            PlantedFault::SkipSyncDir => Ok(()),
            PlantedFault::SkipWalSync => self.inner.sync_dir(dir),
        }
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
}
