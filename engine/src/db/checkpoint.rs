//! `Db::checkpoint`: a consistent, openable copy of the database in another directory.
//!
//! The copy is built in `<dir>.tmp` and renamed to `<dir>` only once complete and durable, so
//! `<dir>` either does not exist or opens to every write acknowledged before the call. The
//! steps and their fsyncs, in order, are ARCHITECTURE.md's "Checkpoint" (Durability
//! protocol); the step numbers below are its. The source database is only read: a failed
//! checkpoint does not poison it.

use std::path::Path;

use super::purge::HeldVersion;
use super::{Db, DbInner};
use crate::env::Fs;
use crate::error::{Error, Result};
use crate::filename;
use crate::sync::Arc;
use crate::version::manifest::{self, ManifestWriter};
use crate::wal::{LogReader, WalRecoveryMode};

/// What step 3 captures.
struct Capture {
    held: HeldVersion,
    log_number: u64,
    next_file_num: u64,
    last_flushed_seq: u64,
}

impl Db {
    /// Writes a consistent copy of the database to `dir`, which must not exist, and which
    /// opens as a database of its own (tables hard-linked where the filesystem allows).
    /// `InvalidArgument` when `dir` exists; `Poisoned` or `Closed` as writes are.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        let inner = &self.inner;
        let fs = &inner.fs;
        let dir = dir.as_ref();
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return Err(Error::InvalidArgument(format!("checkpoint into {}", dir.display())));
        };
        if fs.exists(dir)? {
            return Err(Error::InvalidArgument(format!(
                "checkpoint directory {} exists",
                dir.display()
            )));
        }
        let tmp = parent.join(format!("{}.tmp", name.to_string_lossy()));
        if fs.exists(&tmp)? {
            for leftover in fs.list(&tmp)? {
                fs.remove(&tmp.join(leftover))?;
            }
        }
        fs.create_dir_all(&tmp)?;
        if inner.opts.disable_wal {
            self.flush()?;
        }
        let capture = inner.capture_for_checkpoint(&tmp)?;
        for f in capture.held.version.levels.iter().flatten() {
            let from = filename::table(&inner.dir, f.num);
            let to = filename::table(&tmp, f.num);
            link_or_copy(fs, &from, &to)?;
        }
        let snapshot = manifest::snapshot_edit(
            &capture.held.version,
            inner.cmp.user().name(),
            capture.log_number,
            capture.next_file_num + 1,
            capture.last_flushed_seq,
        );
        ManifestWriter::create(fs, &tmp, capture.next_file_num, &snapshot)?;
        fs.rename(&tmp, dir)?;
        fs.sync_dir(parent)
    }
}

impl DbInner {
    /// Step 3: captures what the checkpoint holds and copies the live WALs into `tmp`.
    fn capture_for_checkpoint(self: &Arc<Self>, tmp: &Path) -> Result<Capture> {
        let state = self.wait_for_wal(self.lock());
        Self::check_writable(&state)?;
        if !self.opts.disable_wal {
            let mut wals = Vec::new();
            for m in &state.imms {
                let len = self.fs.open(&filename::wal(&self.dir, m.wal_num))?.len()?;
                wals.push((m.wal_num, len));
            }
            wals.push((state.mem.wal_num, state.wal.as_ref().map_or(0, |w| w.size())));
            for (num, len) in wals {
                let copy = filename::wal(tmp, num);
                copy_prefix(&self.fs, &filename::wal(&self.dir, num), &copy, len)?;
                verify_log(&self.fs, &copy)?;
            }
        }
        Ok(Capture {
            held: HeldVersion::new(self, state.version.clone()),
            log_number: self.min_unflushed_wal(&state),
            next_file_num: state.next_file_num,
            last_flushed_seq: state.manifest_last_seq,
        })
    }
}

/// Hard-links `from` to `to`; copies (and syncs the copy) only where the filesystem cannot
/// link. Any other failure is returned: falling back would hide it.
fn link_or_copy(fs: &Arc<dyn Fs>, from: &Path, to: &Path) -> Result<()> {
    match fs.link(from, to) {
        Ok(()) => Ok(()),
        Err(Error::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::Unsupported | std::io::ErrorKind::CrossesDevices
            ) =>
        {
            let len = fs.open(from)?.len()?;
            copy_prefix(fs, from, to, len)
        }
        Err(e) => Err(e),
    }
}

/// Reads the WAL copy at `path` back, every fragment's checksum checked and no damaged tail
/// allowed (a live WAL's written bytes end at a record boundary): a bad read of the source
/// while copying would otherwise be synced into the checkpoint as damage, which its first
/// open would meet as mid-log corruption.
fn verify_log(fs: &Arc<dyn Fs>, path: &Path) -> Result<()> {
    let name = path.display().to_string();
    let mut reader = LogReader::new(fs.open(path)?, name, WalRecoveryMode::AbsoluteConsistency)?;
    while reader.read_record()?.is_some() {}
    Ok(())
}

/// Copies the first `len` bytes of `from` into a new file `to` and syncs it.
fn copy_prefix(fs: &Arc<dyn Fs>, from: &Path, to: &Path, len: u64) -> Result<()> {
    const CHUNK: u64 = 1 << 20;
    let src = fs.open(from)?;
    let dst = fs.create(to)?;
    let mut buf = Vec::new();
    let mut offset = 0;
    while offset < len {
        let n = CHUNK.min(len - offset);
        buf.resize(n as usize, 0);
        src.read_at(offset, &mut buf)?;
        dst.append(&buf)?;
        offset += n;
    }
    dst.sync()
}
