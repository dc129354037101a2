//! Planted faults: deliberately broken filesystems that lie to the engine the way a buggy
//! engine would misuse a real one, or user code the engine must survive (a filesystem or a
//! merge operator that panics or never returns). They exist to prove that Tumbler's oracles
//! catch real durability bugs and that a panic or a hang is a finding, not a crash of Tumbler
//! (see `tests/planted.rs`, `tests/cli.rs` and `tumbler run --plant`). Never used by default.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use cobble::{File, FileLock, Fs, MergeOperator, Result};

/// A bug to plant between the engine and its filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedFault {
    /// `sync_dir` does nothing: new file names (tables, WALs, CURRENT) are never made durable.
    SkipSyncDir,
    /// `sync` of WAL files does nothing: writes acknowledged as synced are not durable.
    SkipWalSync,
    /// The first append of data to a WAL panics: a panic inside a write group's leader, which
    /// appends without the state lock and must turn the panic into a (fatal) poisoning, not
    /// leave the writers behind it queued forever.
    PanicInAppend,
    /// The merge operator panics (Cobble runs it when a read resolves merge operands, and in
    /// any compaction that would fold them).
    PanicInMerge,
    /// A file append panics on an engine background thread (`cobble-bg-*`): a panic inside a
    /// background flush or compaction of a threaded config.
    PanicInBackground,
    /// The merge operator never returns (parks forever), on whatever thread calls it.
    HangInMerge,
    /// The first append of data to a WAL aborts the process, as a panic during a panic's
    /// unwinding does: only a child process can report it (`supervise.rs`).
    AbortInAppend,
    /// Every third `sync_dir` after an open's first few fails with a plain EIO that SimFs never injected: an error path
    /// that fires spuriously. Fault attribution must blame the engine.
    SpuriousEio,
    /// The merge operator sees its operands newest first: the reference model, which never
    /// calls the engine's operator, must disagree.
    ReverseMerge,
    /// A failed `sync` of a WAL reports success: the engine "swallows" an injected error. The
    /// swallowed-fault check (and durability, after a crash) must catch it.
    SwallowSyncError,
    /// Removing a table does nothing and reports success: obsolete tables pile up, which the
    /// liveness oracle must see.
    KeepObsoleteTables,
    /// When a MANIFEST sync fails, the newest table goes, as in an engine that takes a failed
    /// edit for one that never happened and discards its output. But a failed sync promises
    /// nothing (fault model rule 12): the edit may be durable, and then the next open finds
    /// the manifest naming a missing table. Recoveries that keep what the failed sync left
    /// (a reopen in place, a `keep` crash) must catch it.
    DeleteAfterFailedSync,
}

/// Every planted fault, in the order `--plant` lists them.
pub const ALL_PLANTED: [PlantedFault; 12] = [
    PlantedFault::SkipSyncDir,
    PlantedFault::SkipWalSync,
    PlantedFault::PanicInAppend,
    PlantedFault::PanicInMerge,
    PlantedFault::PanicInBackground,
    PlantedFault::HangInMerge,
    PlantedFault::AbortInAppend,
    PlantedFault::SpuriousEio,
    PlantedFault::ReverseMerge,
    PlantedFault::SwallowSyncError,
    PlantedFault::KeepObsoleteTables,
    PlantedFault::DeleteAfterFailedSync,
];

impl PlantedFault {
    /// The name used on the command line and in settings.json.
    pub fn name(self) -> &'static str {
        match self {
            PlantedFault::SkipSyncDir => "skip-sync-dir",
            PlantedFault::SkipWalSync => "skip-wal-sync",
            PlantedFault::PanicInAppend => "panic-in-append",
            PlantedFault::PanicInMerge => "panic-in-merge",
            PlantedFault::PanicInBackground => "panic-in-background",
            PlantedFault::HangInMerge => "hang-in-merge",
            PlantedFault::AbortInAppend => "abort-in-append",
            PlantedFault::SpuriousEio => "spurious-eio",
            PlantedFault::ReverseMerge => "reverse-merge",
            PlantedFault::SwallowSyncError => "swallow-sync-error",
            PlantedFault::KeepObsoleteTables => "keep-obsolete-tables",
            PlantedFault::DeleteAfterFailedSync => "delete-after-failed-sync",
        }
    }

    /// Plants the fault in options whose filesystem is already a [`PlantedFs`]: the merge
    /// faults wrap the merge operator; the others change nothing more.
    pub fn plant(self, mut options: cobble::Options) -> cobble::Options {
        if matches!(
            self,
            PlantedFault::PanicInMerge | PlantedFault::HangInMerge | PlantedFault::ReverseMerge
        ) {
            let inner = options.merge_operator.clone();
            options.merge_operator = Arc::new(PlantedMerge { inner, fault: self });
        }
        options
    }
}

/// A merge operator that panics or hangs (see [`PlantedFault::PanicInMerge`] and
/// [`PlantedFault::HangInMerge`]) and otherwise defers to the real one, under its name.
#[derive(Debug)]
struct PlantedMerge {
    inner: Arc<dyn MergeOperator>,
    fault: PlantedFault,
}

impl PlantedMerge {
    fn strike(&self) {
        match self.fault {
            PlantedFault::PanicInMerge => panic!("planted panic-in-merge: merge operator panicked"),
            PlantedFault::HangInMerge => loop {
                // Parked forever: a hang that costs no CPU once the watchdog abandons it.
                std::thread::park();
            },
            _ => {}
        }
    }
}

impl MergeOperator for PlantedMerge {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn full_merge(&self, key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Vec<u8> {
        self.strike();
        if self.fault == PlantedFault::ReverseMerge {
            let reversed: Vec<&[u8]> = operands.iter().rev().copied().collect();
            return self.inner.full_merge(key, existing, &reversed);
        }
        self.inner.full_merge(key, existing, operands)
    }

    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        self.strike();
        self.inner.partial_merge(key, operands)
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
        ALL_PLANTED.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ALL_PLANTED.iter().map(|p| p.name()).collect();
            format!("unknown planted fault {s:?} ({})", names.join(", "))
        })
    }
}

/// Wraps a filesystem and plants `fault` in it.
#[derive(Debug)]
pub struct PlantedFs {
    inner: Arc<dyn Fs>,
    fault: PlantedFault,
    /// `sync_dir` calls so far (for `SpuriousEio`).
    dir_syncs: std::sync::atomic::AtomicU64,
    /// The newest table created (for `DeleteAfterFailedSync`).
    newest_table: Arc<Mutex<Option<PathBuf>>>,
}

impl PlantedFs {
    /// Plants `fault` in front of `inner`.
    pub fn new(inner: Arc<dyn Fs>, fault: PlantedFault) -> PlantedFs {
        PlantedFs {
            inner,
            fault,
            dir_syncs: std::sync::atomic::AtomicU64::new(0),
            newest_table: Arc::default(),
        }
    }

    fn wrap(&self, path: &Path, file: Arc<dyn File>) -> Arc<dyn File> {
        let is_wal = path.extension().is_some_and(|e| e == "log");
        match self.fault {
            PlantedFault::SkipWalSync if is_wal => {
                Arc::new(NoSyncFile { inner: file, try_sync: false })
            }
            PlantedFault::SwallowSyncError if is_wal => {
                Arc::new(NoSyncFile { inner: file, try_sync: true })
            }
            PlantedFault::PanicInAppend | PlantedFault::AbortInAppend if is_wal => {
                Arc::new(PanicFile { inner: file, fault: self.fault })
            }
            PlantedFault::PanicInBackground => {
                Arc::new(PanicFile { inner: file, fault: self.fault })
            }
            PlantedFault::DeleteAfterFailedSync
                if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("MANIFEST-")) =>
            {
                Arc::new(DiscardingFile {
                    inner: file,
                    fs: self.inner.clone(),
                    newest_table: self.newest_table.clone(),
                })
            }
            _ => file,
        }
    }
}

/// A file whose `sync` always reports success: without trying (`SkipWalSync`), or trying and
/// hiding the error (`SwallowSyncError`).
#[derive(Debug)]
struct NoSyncFile {
    inner: Arc<dyn File>,
    try_sync: bool,
}

impl File for NoSyncFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn append(&self, data: &[u8]) -> Result<()> {
        self.inner.append(data)
    }
    fn sync(&self) -> Result<()> {
        if self.try_sync {
            let _ = self.inner.sync();
        }
        Ok(())
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn truncate(&self, len: u64) -> Result<()> {
        self.inner.truncate(len)
    }
}

/// A file whose appends of data panic ([`PlantedFault::PanicInAppend`]), or only those on an
/// engine background thread ([`PlantedFault::PanicInBackground`]), or abort the process
/// ([`PlantedFault::AbortInAppend`]).
#[derive(Debug)]
struct PanicFile {
    inner: Arc<dyn File>,
    fault: PlantedFault,
}

impl File for PanicFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn append(&self, data: &[u8]) -> Result<()> {
        if !data.is_empty() {
            let background =
                std::thread::current().name().is_some_and(|n| n.starts_with("cobble-bg"));
            match self.fault {
                PlantedFault::PanicInAppend => {
                    panic!("planted panic-in-append: WAL append of {} bytes", data.len())
                }
                PlantedFault::PanicInBackground if background => {
                    panic!("planted panic-in-background: append of {} bytes", data.len())
                }
                PlantedFault::AbortInAppend => {
                    eprintln!("planted abort-in-append: aborting the process");
                    std::process::abort()
                }
                _ => {}
            }
        }
        self.inner.append(data)
    }
    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn truncate(&self, len: u64) -> Result<()> {
        self.inner.truncate(len)
    }
}

/// A MANIFEST whose failed sync removes the newest table ([`PlantedFault::DeleteAfterFailedSync`]).
#[derive(Debug)]
struct DiscardingFile {
    inner: Arc<dyn File>,
    fs: Arc<dyn Fs>,
    newest_table: Arc<Mutex<Option<PathBuf>>>,
}

impl File for DiscardingFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn append(&self, data: &[u8]) -> Result<()> {
        self.inner.append(data)
    }
    fn sync(&self) -> Result<()> {
        let result = self.inner.sync();
        if result.is_err() {
            let newest = self.newest_table.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(table) = newest {
                let _ = self.fs.remove(&table);
            }
        }
        result
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn truncate(&self, len: u64) -> Result<()> {
        self.inner.truncate(len)
    }
}

/// A database's own table (`NNNNNN.sst`), not an external one the runner writes to ingest.
fn is_db_table(path: &Path) -> bool {
    let name =
        path.file_name().and_then(|n| n.to_str()).and_then(cobble::internal::filename::parse);
    matches!(name, Some(cobble::internal::filename::FileKind::Table(_)))
}

impl Fs for PlantedFs {
    fn create(&self, path: &Path) -> Result<Arc<dyn File>> {
        if is_db_table(path) {
            *self.newest_table.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(path.to_path_buf());
        }
        Ok(self.wrap(path, self.inner.create(path)?))
    }
    fn open(&self, path: &Path) -> Result<Arc<dyn File>> {
        Ok(self.wrap(path, self.inner.open(path)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> Result<()> {
        if self.fault == PlantedFault::KeepObsoleteTables && is_db_table(path) {
            return Ok(());
        }
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
            PlantedFault::SpuriousEio => {
                let n = self.dir_syncs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                // Past the first few (an open's), so that ops meet it.
                if n > 8 && n.is_multiple_of(3) {
                    return Err(cobble::Error::io(
                        format!("sync dir {}", dir.display()),
                        std::io::Error::other("spurious EIO (planted)"),
                    ));
                }
                self.inner.sync_dir(dir)
            }
            _ => self.inner.sync_dir(dir),
        }
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
}
