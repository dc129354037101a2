//! `FaultFs`: `OsFs` (or any `Fs`) that fails one chosen call with EIO, counts calls, can
//! panic instead of failing, and can hold a chosen call at a gate until the test opens it.
//! Shared by `tests/failures.rs` and `tests/fault_sweep.rs`.
//!
//! Fault model (deliberately small): a failed call does nothing at all (an append appends
//! nothing, a sync syncs nothing, a rename renames nothing). What the OS already holds (bytes
//! appended earlier, sitting in the page cache) stays, as after a real failed fsync on ext4.

#![allow(dead_code, reason = "each test binary uses a different part")]

use cobble::internal::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use cobble::internal::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::path::{Path, PathBuf};

use cobble::internal::filename::{self, FileKind};
use cobble::{Error, File, FileLock, Fs, OsFs, Result};

/// The filesystem call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Open,
    Read,
    Append,
    Sync,
    Len,
    Truncate,
    Rename,
    Remove,
    Link,
    List,
    CreateDir,
    SyncDir,
    Lock,
    Exists,
}

/// What the call is about: the file kind of its path (the destination, for a rename).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Wal,
    Table,
    Manifest,
    Current,
    Temp,
    LockFile,
    Dir,
    Other,
}

pub fn target(path: &Path) -> Target {
    match path.file_name().and_then(|n| n.to_str()).and_then(filename::parse) {
        Some(FileKind::Wal(_)) => Target::Wal,
        Some(FileKind::Table(_)) => Target::Table,
        Some(FileKind::Manifest(_)) => Target::Manifest,
        Some(FileKind::Temp(_)) => Target::Temp,
        Some(FileKind::Current) => Target::Current,
        Some(FileKind::Lock) => Target::LockFile,
        _ => Target::Other,
    }
}

/// Which call fails (once; the rule is spent when it fires).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Never,
    /// The n-th call counted since the filesystem was made (1-based).
    Nth(u64),
    /// The first call of `op` on `target`, when the call before it was `after` (if given).
    Match {
        op: Op,
        target: Target,
        after: Option<(Op, Target)>,
    },
}

#[derive(Debug, Default)]
struct Gate {
    /// Hold the `nth` (1-based) call of `op` on `target` at the gate.
    rule: Option<(Op, Target, u64)>,
    seen: u64,
    held: usize,
    open: bool,
}

#[derive(Debug)]
pub struct Control {
    calls: AtomicU64,
    failures: AtomicU64,
    panic_instead: AtomicBool,
    rule: Mutex<Rule>,
    prev: Mutex<Option<(Op, Target)>>,
    /// The call the rule last failed.
    failed: Mutex<Option<(Op, Target)>>,
    gate: Mutex<Gate>,
    gate_cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Control {
    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls failed (or panicked) so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// The call the rule last failed, if any.
    pub fn last_failure(&self) -> Option<(Op, Target)> {
        *lock(&self.failed)
    }

    pub fn arm(&self, rule: Rule) {
        *lock(&self.rule) = rule;
    }

    /// The armed call panics instead of failing.
    pub fn panic_instead(&self) {
        self.panic_instead.store(true, Ordering::SeqCst);
    }

    /// Holds the `nth` call of `op` on `target` until [`Control::open_gate`].
    pub fn hold(&self, op: Op, target: Target, nth: u64) {
        *lock(&self.gate) = Gate { rule: Some((op, target, nth)), ..Gate::default() };
    }

    /// Waits until a call is held at the gate.
    pub fn wait_held(&self) {
        let mut g = lock(&self.gate);
        while g.held == 0 {
            g = self.gate_cv.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub fn open_gate(&self) {
        lock(&self.gate).open = true;
        self.gate_cv.notify_all();
    }

    fn check(&self, op: Op, target: Target) -> Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let last = lock(&self.prev).replace((op, target));
        {
            let mut g = lock(&self.gate);
            if let Some((o, t, nth)) = g.rule {
                if o == op && t == target {
                    g.seen += 1;
                    if g.seen == nth {
                        g.held += 1;
                        self.gate_cv.notify_all();
                        while !g.open {
                            g = self.gate_cv.wait(g).unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                }
            }
        }
        let fire = {
            let mut rule = lock(&self.rule);
            let fire = match *rule {
                Rule::Never => false,
                Rule::Nth(k) => n == k,
                Rule::Match { op: o, target: t, after } => {
                    o == op && t == target && after.is_none_or(|a| last == Some(a))
                }
            };
            if fire {
                *rule = Rule::Never;
            }
            fire
        };
        if !fire {
            return Ok(());
        }
        self.failures.fetch_add(1, Ordering::SeqCst);
        *lock(&self.failed) = Some((op, target));
        if self.panic_instead.load(Ordering::SeqCst) {
            panic!("injected panic in {op:?} of {target:?}");
        }
        Err(Error::io(
            format!("injected failure of {op:?} on {target:?} (call {n})"),
            std::io::Error::from_raw_os_error(5), // EIO
        ))
    }
}

/// The fault-injecting filesystem.
#[derive(Debug, Clone)]
pub struct FaultFs {
    inner: Arc<dyn Fs>,
    pub control: Arc<Control>,
}

impl FaultFs {
    pub fn new(rule: Rule) -> FaultFs {
        FaultFs::over(Arc::new(OsFs::new()), rule)
    }

    pub fn over(inner: Arc<dyn Fs>, rule: Rule) -> FaultFs {
        FaultFs {
            inner,
            control: Arc::new(Control {
                calls: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                panic_instead: AtomicBool::new(false),
                rule: Mutex::new(rule),
                prev: Mutex::new(None),
                failed: Mutex::new(None),
                gate: Mutex::new(Gate::default()),
                gate_cv: Condvar::new(),
            }),
        }
    }

    fn wrap(&self, path: &Path, f: Arc<dyn File>) -> Arc<dyn File> {
        Arc::new(FaultFile { inner: f, target: target(path), control: self.control.clone() })
    }
}

#[derive(Debug)]
struct FaultFile {
    inner: Arc<dyn File>,
    target: Target,
    control: Arc<Control>,
}

impl File for FaultFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.control.check(Op::Read, self.target)?;
        self.inner.read_at(offset, buf)
    }
    fn append(&self, data: &[u8]) -> Result<()> {
        self.control.check(Op::Append, self.target)?;
        self.inner.append(data)
    }
    fn sync(&self) -> Result<()> {
        self.control.check(Op::Sync, self.target)?;
        self.inner.sync()
    }
    fn len(&self) -> Result<u64> {
        self.control.check(Op::Len, self.target)?;
        self.inner.len()
    }
    fn truncate(&self, len: u64) -> Result<()> {
        self.control.check(Op::Truncate, self.target)?;
        self.inner.truncate(len)
    }
}

impl Fs for FaultFs {
    fn create(&self, path: &Path) -> Result<Arc<dyn File>> {
        self.control.check(Op::Create, target(path))?;
        Ok(self.wrap(path, self.inner.create(path)?))
    }
    fn open(&self, path: &Path) -> Result<Arc<dyn File>> {
        self.control.check(Op::Open, target(path))?;
        Ok(self.wrap(path, self.inner.open(path)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.control.check(Op::Rename, target(to))?;
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> Result<()> {
        self.control.check(Op::Remove, target(path))?;
        self.inner.remove(path)
    }
    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        self.control.check(Op::Link, target(to))?;
        self.inner.link(from, to)
    }
    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        self.control.check(Op::List, Target::Dir)?;
        self.inner.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.control.check(Op::CreateDir, Target::Dir)?;
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.control.check(Op::SyncDir, Target::Dir)?;
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.control.check(Op::Lock, Target::LockFile)?;
        self.inner.lock(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.control.check(Op::Exists, target(path))?;
        self.inner.exists(path)
    }
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("cobble-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
