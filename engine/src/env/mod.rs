//! The engine's only door to the world: the [`Fs`] and [`File`] traits.
//!
//! Invariant: no engine module reads time, and no other engine module calls `std::fs` or the
//! OS. `OsFs` is the
//! production backend; `MemFs` is an in-memory, deterministic one. The fault-injecting,
//! crash-imaging filesystem lives in the harness (`tumbler::sim::SimFs`), not here.

mod mem;
mod os;

pub use mem::MemFs;
pub use os::OsFs;

use crate::sync::Arc;
use std::fmt::Debug;
use std::path::Path;

use crate::error::Result;

/// An open file. Reads are positional and may run concurrently; appends go to the end.
///
/// Durability contract: bytes appended are volatile until [`File::sync`] returns `Ok`.
/// A new directory entry (create, rename, remove, link) is volatile until
/// [`Fs::sync_dir`] of its parent returns `Ok`.
pub trait File: Send + Sync + Debug {
    /// Reads exactly `buf.len()` bytes at `offset`. Reading past the end is an error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Appends `data` at the end of the file.
    fn append(&self, data: &[u8]) -> Result<()>;
    /// Makes the file's data durable (fdatasync).
    fn sync(&self) -> Result<()>;
    /// The current length in bytes.
    fn len(&self) -> Result<u64>;
    /// True when the file has no bytes.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Cuts or extends (with zeros) the file to `len` bytes.
    fn truncate(&self, len: u64) -> Result<()>;
}

/// A held lock on a path; dropping it releases the lock.
pub trait FileLock: Send + Sync + Debug {}

/// A filesystem. Paths are plain; a database lives in one directory.
pub trait Fs: Send + Sync + Debug {
    /// Creates `path` (truncating any existing file) and opens it for reading and appending.
    fn create(&self, path: &Path) -> Result<Arc<dyn File>>;
    /// Opens an existing file for reading (and appending).
    fn open(&self, path: &Path) -> Result<Arc<dyn File>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> Result<()>;
    /// Makes `to` a second name of `from` (a hard link, or a copy where links are missing).
    fn link(&self, from: &Path, to: &Path) -> Result<()>;
    /// Lists the names (not paths) in a directory, sorted.
    fn list(&self, dir: &Path) -> Result<Vec<String>>;
    /// Creates a directory and its parents; durable after `sync_dir` of each parent.
    fn create_dir_all(&self, dir: &Path) -> Result<()>;
    /// Makes the directory's entries durable.
    fn sync_dir(&self, dir: &Path) -> Result<()>;
    /// Takes an exclusive lock on `path`, creating the file if needed.
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>>;
    /// True when `path` names an existing file or directory.
    fn exists(&self, path: &Path) -> Result<bool>;
}
