//! `OsFs`: the engine's filesystem over `std::fs`, with real fsync of files and directories.

use crate::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{File, FileLock, Fs};
use crate::error::{Error, Result};

/// The operating system's filesystem.
#[derive(Debug, Default, Clone)]
pub struct OsFs {
    _private: (),
}

impl OsFs {
    /// A handle on the OS filesystem.
    pub fn new() -> OsFs {
        OsFs { _private: () }
    }
}

fn ctx(op: &str, path: &Path) -> String {
    format!("{op} {}", path.display())
}

#[derive(Debug)]
struct OsFile {
    path: String,
    // Appends take the lock so that the end offset and the write stay together.
    file: Mutex<fs::File>,
}

impl OsFile {
    /// The file. The mutex guards no invariant of its own (the OS keeps the file's state), so
    /// a lock poisoned by a panic elsewhere is taken anyway: close paths must not panic.
    fn file(&self) -> MutexGuard<'_, fs::File> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl File for OsFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let file = self.file();
        file.read_exact_at(buf, offset)
            .map_err(|e| Error::io(format!("read {} at {offset}", self.path), e))
    }

    fn append(&self, data: &[u8]) -> Result<()> {
        let mut file = self.file();
        file.write_all(data).map_err(|e| Error::io(format!("append {}", self.path), e))
    }

    fn sync(&self) -> Result<()> {
        let file = self.file();
        file.sync_data().map_err(|e| Error::io(format!("sync {}", self.path), e))
    }

    fn len(&self) -> Result<u64> {
        let file = self.file();
        Ok(file.metadata().map_err(|e| Error::io(format!("stat {}", self.path), e))?.len())
    }

    fn truncate(&self, len: u64) -> Result<()> {
        let file = self.file();
        file.set_len(len).map_err(|e| Error::io(format!("truncate {}", self.path), e))
    }
}

#[derive(Debug)]
struct OsLock {
    _file: fs::File,
}

impl FileLock for OsLock {}

impl Fs for OsFs {
    fn create(&self, path: &Path) -> Result<Arc<dyn File>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(ctx("create", path), e))?;
        file.set_len(0).map_err(|e| Error::io(ctx("create", path), e))?;
        Ok(Arc::new(OsFile { path: path.display().to_string(), file: Mutex::new(file) }))
    }

    fn open(&self, path: &Path) -> Result<Arc<dyn File>> {
        let file = fs::OpenOptions::new().read(true).append(true).open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(path.display().to_string())
            } else {
                Error::io(ctx("open", path), e)
            }
        })?;
        Ok(Arc::new(OsFile { path: path.display().to_string(), file: Mutex::new(file) }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).map_err(|e| Error::io(ctx("rename", from), e))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).map_err(|e| Error::io(ctx("remove", path), e))
    }

    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        fs::hard_link(from, to).map_err(|e| Error::io(ctx("link", from), e))
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io(ctx("list", dir), e))? {
            let entry = entry.map_err(|e| Error::io(ctx("list", dir), e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::io(ctx("mkdir", dir), e))
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let d = fs::File::open(dir).map_err(|e| Error::io(ctx("open dir", dir), e))?;
        d.sync_all().map_err(|e| Error::io(ctx("sync dir", dir), e))
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(ctx("lock", path), e))?;
        file.try_lock().map_err(|e| match e {
            fs::TryLockError::WouldBlock => Error::io(
                ctx("lock", path),
                std::io::Error::new(std::io::ErrorKind::WouldBlock, "held by another process"),
            ),
            fs::TryLockError::Error(e) => Error::io(ctx("lock", path), e),
        })?;
        Ok(Box::new(OsLock { _file: file }))
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        path.try_exists().map_err(|e| Error::io(ctx("stat", path), e))
    }
}
