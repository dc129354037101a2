//! Recovery at open, in named steps: take the directory (`open_dir`), read the manifest
//! (`read_manifest`), list the directory and check it against the manifest (`scan_dir`), adopt
//! the manifest's version (`adopt`), replay the WALs into memtables (`replay_wals`), and install
//! (`install_recovered`: flush those memtables to L0, start a new WAL and a new manifest, delete
//! obsolete files).
//!
//! Invariants: every table the manifest names exists, and so does the WAL at its log number
//! when newer WALs exist (a damaged last edit that was acted on is `Corruption`, never an older
//! version); replayed batches continue one another's seqnums with no gap and no repeat; only
//! the newest WAL may lose a damaged tail; nothing is deleted before the new manifest is
//! installed.

use crate::sync::Arc;
use std::collections::BTreeSet;

use super::{DbInner, MemEntry};
use crate::batch::WriteBatch;
use crate::env::FileLock;
use crate::error::{Error, Result};
use crate::filename::{self, FileKind};
use crate::key;
use crate::memtable::Memtable;
use crate::version::edit::VersionEdit;
use crate::version::{manifest, Version};
use crate::wal::{LogReader, LogWriter};

/// What the manifest says (or what a new database starts from).
struct ManifestState {
    version: Version,
    log_number: u64,
    next_file_num: u64,
    last_seq: u64,
}

/// The memtables the WALs filled, oldest first, and the last seqnum they hold.
struct Replayed {
    mems: Vec<Arc<Memtable>>,
    last_seq: u64,
}

impl DbInner {
    /// Opens the database: replays the manifest and the WALs, flushes what the WALs held to
    /// L0, and starts a new WAL and a new manifest.
    pub(super) fn recover(&self) -> Result<()> {
        let lock = self.open_dir()?;
        let mut found = self.read_manifest()?;
        let wals = self.scan_dir(&mut found)?;
        let manifest_last_seq = found.last_seq;
        self.adopt(found, lock);
        let replayed = self.replay_wals(&wals, manifest_last_seq)?;
        self.install_recovered(replayed)
    }

    /// Creates the directory if asked to (syncing its parent) and takes its lock.
    fn open_dir(&self) -> Result<Box<dyn FileLock>> {
        let (fs, dir) = (&self.fs, &self.dir);
        if !fs.exists(dir)? {
            if !self.opts.create_if_missing {
                return Err(Error::NotFound(dir.display().to_string()));
            }
            fs.create_dir_all(dir)?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs.sync_dir(parent)?;
            }
        }
        fs.lock(&filename::lock(dir))
    }

    /// Reads `CURRENT` and replays the manifest it names; a directory without `CURRENT` is a
    /// new database.
    fn read_manifest(&self) -> Result<ManifestState> {
        let (fs, dir) = (&self.fs, &self.dir);
        if fs.exists(&filename::current(dir))? {
            if self.opts.error_if_exists {
                return Err(Error::InvalidArgument(format!(
                    "database {} already exists",
                    dir.display()
                )));
            }
            let r = manifest::recover(fs, dir, &self.cmp)?;
            Ok(ManifestState {
                version: r.version,
                log_number: r.log_number,
                next_file_num: r.next_file_num,
                last_seq: r.last_seq,
            })
        } else if !self.opts.create_if_missing {
            Err(Error::NotFound(format!("{} (no CURRENT)", dir.display())))
        } else {
            Ok(ManifestState {
                version: Version::default(),
                log_number: 0,
                next_file_num: 1,
                last_seq: 0,
            })
        }
    }

    /// Lists the directory: raises the next file number above every numbered file, checks
    /// that the files the manifest needs exist, and returns the WALs to replay, oldest first.
    fn scan_dir(&self, found: &mut ManifestState) -> Result<Vec<u64>> {
        let dir = &self.dir;
        let log_number = found.log_number;
        let names = self.fs.list(dir)?;
        let mut wals = Vec::new();
        for name in &names {
            if let Some(kind) = filename::parse(name) {
                let num = match kind {
                    FileKind::Wal(n)
                    | FileKind::Table(n)
                    | FileKind::Manifest(n)
                    | FileKind::Temp(n) => n,
                    _ => continue,
                };
                found.next_file_num = found.next_file_num.max(num + 1);
                if let FileKind::Wal(n) = kind {
                    if n >= log_number && !self.opts.disable_wal {
                        wals.push(n);
                    }
                }
            }
        }
        wals.sort_unstable();
        // Invariant: a damaged last edit that was acted on (its predecessor names files since
        // deleted) is `Corruption`, not an older version. Regression: tests/corruption.rs
        // damaged_files_never_give_wrong_data_*.
        let present: BTreeSet<u64> = names
            .iter()
            .filter_map(|n| match filename::parse(n) {
                Some(FileKind::Table(n)) => Some(n),
                _ => None,
            })
            .collect();
        if let Some(f) = found.version.levels.iter().flatten().find(|f| !present.contains(&f.num)) {
            return Err(Error::corruption(
                format!("the manifest names table {:06} which does not exist", f.num),
                dir.display(),
            ));
        }
        if !self.opts.disable_wal && log_number > 0 {
            let newest_wal = names
                .iter()
                .filter_map(|n| match filename::parse(n) {
                    Some(FileKind::Wal(n)) => Some(n),
                    _ => None,
                })
                .max();
            if newest_wal.is_some_and(|n| n > log_number) && !wals.contains(&log_number) {
                return Err(Error::corruption(
                    format!(
                        "WAL {log_number:06} named by the manifest is missing, newer ones exist"
                    ),
                    dir.display(),
                ));
            }
        }
        Ok(wals)
    }

    /// Makes the manifest's version current and takes ownership of the directory lock.
    fn adopt(&self, found: ManifestState, lock: Box<dyn FileLock>) {
        let mut state = self.lock();
        state.version = Arc::new(found.version);
        state.live_versions = vec![Arc::downgrade(&state.version)];
        state.next_file_num = found.next_file_num;
        state.manifest_last_seq = found.last_seq;
        state.lock = Some(lock);
    }

    /// Replays `wals` (oldest first) into memtables, skipping batches the tables already hold
    /// (at or below `manifest_last_seq`).
    fn replay_wals(&self, wals: &[u64], manifest_last_seq: u64) -> Result<Replayed> {
        let mut last_seq = manifest_last_seq;
        let mut mems: Vec<Arc<Memtable>> = Vec::new();
        let mut mem = self.new_memtable(self.opts.memtable_size);
        // Invariant: only the newest WAL may lose a damaged tail (an older one was synced
        // before the next was created). Regression: tests/corruption.rs
        // damaged_files_never_give_wrong_data_*.
        let mut dropped: Option<String> = None;
        for &num in wals {
            let path = filename::wal(&self.dir, num);
            let file = self.fs.open(&path)?;
            let location = path.display().to_string();
            let mut reader = LogReader::new(file, location.clone(), self.opts.wal_recovery_mode)?;
            while let Some(record) = reader.read_record()? {
                if let Some(earlier) = &dropped {
                    return Err(Error::corruption(
                        format!("{earlier} lost a damaged tail, but a later WAL holds writes"),
                        &location,
                    ));
                }
                let batch = WriteBatch::decode(&record)
                    .map_err(|e| Error::corruption(format!("WAL batch: {e}"), &location))?;
                // No write over the limits is ever logged, so such a record is damage (and
                // would not fit an arena).
                batch.check_limits().map_err(|what| {
                    Error::corruption(format!("WAL batch over a size limit: {what}"), &location)
                })?;
                let count = u64::from(batch.count());
                if count == 0 || batch.seq() + count - 1 <= manifest_last_seq {
                    continue;
                }
                if batch.seq() + count - 1 > key::SEQNUM_MAX {
                    return Err(Error::corruption("WAL batch seqnum out of range", &location));
                }
                // Invariant: each batch continues the one before it (seqnums are handed out
                // contiguously, memtables flush whole and in order), so a gap is a cut WAL
                // and a repeat is damage too. Regression: tests/corruption.rs
                // damaged_files_never_give_wrong_data_*.
                if batch.seq() != last_seq + 1 {
                    let what = if batch.seq() > last_seq + 1 {
                        "writes are missing"
                    } else {
                        "seqnums repeat"
                    };
                    return Err(Error::corruption(
                        format!(
                            "WAL batch at seqnum {} follows seqnum {last_seq}: {what}",
                            batch.seq()
                        ),
                        &location,
                    ));
                }
                let needed = super::arena_bytes_needed(&batch)
                    .map_err(|e| Error::corruption(format!("WAL batch: {e}"), &location))?;
                if mem.capacity() - mem.used_bytes() < needed {
                    if !mem.is_empty() {
                        mems.push(mem);
                    }
                    mem = self.new_memtable(self.opts.memtable_size.max(needed));
                }
                for (i, op) in batch.iter().enumerate() {
                    mem.add(batch.seq() + i as u64, op.kind, op.key, op.value)
                        .expect("room was checked for the whole batch");
                }
                last_seq = batch.seq() + count - 1;
            }
            if reader.dropped_tail().is_some() {
                dropped = Some(location);
            }
        }
        if !mem.is_empty() {
            mems.push(mem);
        }
        Ok(Replayed { mems, last_seq })
    }

    /// Flushes the replayed memtables to L0, starts a new WAL and a new manifest naming it,
    /// and deletes obsolete files.
    fn install_recovered(&self, replayed: Replayed) -> Result<()> {
        let Replayed { mems, last_seq } = replayed;
        let mut edit = VersionEdit::default();
        for m in &mems {
            let (files, bytes, _) = self.flush_memtable(m)?;
            let mut state = self.lock();
            state.stats.flushes += 1;
            state.stats.flush_bytes += bytes;
            drop(state);
            edit.added.extend(files.into_iter().map(|f| (0, f)));
        }
        drop(mems);
        let mut state = self.lock();
        assert!(last_seq >= state.manifest_last_seq, "replay never moves seqnums back");
        let version = manifest::apply(&state.version, &edit, &self.cmp, "recovery")?;
        self.install_version(&mut state, version);
        let wal_num = state.next_file_num;
        state.next_file_num += 1;
        if !self.opts.disable_wal {
            let file = self.fs.create(&filename::wal(&self.dir, wal_num))?;
            state.wal = Some(LogWriter::new(file));
        }
        state.last_seq = last_seq;
        state.manifest_last_seq = last_seq;
        // Creating the manifest syncs the directory, which makes the new WAL's and the
        // flushed tables' entries durable before CURRENT names the manifest.
        let version = state.version.clone();
        state.manifest = Some(self.create_manifest(&mut state, &version, wal_num, last_seq)?);
        for (_, f) in &edit.added {
            assert!(state.pending_outputs.remove(&f.num), "a recovery output was pending");
        }
        state.mem = MemEntry { mem: self.new_memtable(self.opts.memtable_size), wal_num };
        self.publish(&state);
        self.delete_obsolete_files(&mut state);
        Ok(())
    }
}
