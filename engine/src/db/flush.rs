//! Flush: writing the oldest immutable memtable to L0 tables and logging the edit that adds
//! them and advances the log number.
//!
//! Invariants: one flush runs at a time, and memtables are flushed oldest first, so the edit's
//! log number (the WAL of the oldest memtable still unflushed) never decreases and every WAL
//! below it holds only flushed writes; a failed flush leaves its memtable at the front of the
//! queue and its WAL in place.

use crate::sync::{Arc, MutexGuard};

use super::{DbInner, State};
use crate::error::{Error, Result};
use crate::iter::fragment_all;
use crate::key;
use crate::memtable::Memtable;
use crate::version::edit::VersionEdit;
use crate::version::FileMetadata;

impl DbInner {
    /// Flushes the oldest immutable memtable and installs the tables.
    pub(super) fn flush_oldest<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>> {
        assert!(!state.flushing, "one flush at a time");
        let imm = state.imms.front().expect("a memtable to flush").clone();
        state.flushing = true;
        drop(state);
        let result = Self::catch_panic(|| self.flush_memtable(&imm.mem));
        let mut state = self.lock();
        state.flushing = false;
        self.wake_all();
        if state.closed {
            // Only a database poisoned by a panic closes without waiting for this step.
            return Err(Error::Closed);
        }
        let (files, bytes, max_seq) = match result {
            Ok(r) => r,
            Err(e @ Error::Panicked { .. }) => return Err(self.poison(&mut state, e)),
            Err(e) => return Err(e),
        };
        let popped = state.imms.pop_front().expect("the flushed memtable is still queued");
        assert!(Arc::ptr_eq(&popped.mem, &imm.mem), "flushes complete in order");
        assert!(max_seq <= state.last_seq, "a memtable holds only published writes");
        let log_number = self.min_unflushed_wal(&state);
        assert!(popped.wal_num <= log_number, "the log number never moves back");
        let mut edit = VersionEdit {
            log_number: (!self.opts.disable_wal).then_some(log_number),
            last_seq: Some(max_seq.max(state.manifest_last_seq)),
            ..VersionEdit::default()
        };
        for f in &files {
            edit.added.push((0, f.clone()));
        }
        let result = self.log_and_apply(&mut state, edit);
        for f in &files {
            assert!(state.pending_outputs.remove(&f.num), "a flush output was pending");
        }
        if let Err(e) = result {
            state.imms.push_front(popped);
            self.publish(&state);
            self.wake_all();
            return Err(e);
        }
        state.stats.flushes += 1;
        state.stats.flush_bytes += bytes;
        self.delete_obsolete_files(&mut state);
        self.wake_all();
        Ok(state)
    }

    /// Writes a memtable to L0 tables; returns them, their bytes and the memtable's largest
    /// seqnum.
    pub(super) fn flush_memtable(
        &self,
        mem: &Arc<Memtable>,
    ) -> Result<(Vec<FileMetadata>, u64, u64)> {
        let tombstones = mem.range_tombstones();
        let mut max_seq = tombstones.iter().map(|t| t.seq).max().unwrap_or(0);
        let fragments = fragment_all(&tombstones, &self.cmp);
        let mut iter = mem.iter();
        let (files, bytes) = self.write_tables(&mut iter, fragments, |ikey| {
            max_seq = max_seq.max(key::trailer_of(ikey) >> 8);
            true
        })?;
        Ok((files, bytes, max_seq))
    }

    /// Flushes the memtable and every immutable one, in this thread.
    pub(super) fn flush_all<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>> {
        if !state.mem.mem.is_empty() {
            state = self.switch_memtable(state, self.opts.memtable_size)?;
        }
        while !state.imms.is_empty() {
            state = self.flush_oldest(state)?;
        }
        Ok(state)
    }
}
