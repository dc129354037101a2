//! Delete-only compactions: a table lying wholly inside a range tombstone that is newer than
//! every entry of the table, and that every snapshot sees, holds nothing any new read can see.
//! It leaves the version by an edit alone, never read or rewritten (Pebble's delete-only
//! compactions, RocksDB's `DeleteFilesInRange`).
//!
//! Invariants: only seqnums decide, not levels: the table's largest seqnum is below the
//! tombstone's, and the tombstone's seqnum is at or below the smallest snapshot (or the last
//! seqnum when there is none), so every read that starts after the edit reads at a seqnum the
//! tombstone hides the whole table from. Reads already running keep their version. The
//! tombstone stays where it is (it may still hide older data in other tables); the tables
//! dropped are in no running compaction.

use std::collections::BTreeSet;

use super::{DbInner, State};
use crate::error::Result;
use crate::sync::{Arc, MutexGuard};
use crate::version::edit::VersionEdit;

impl DbInner {
    /// Drops every table a range tombstone hides from every reader, in one edit. Returns
    /// whether it dropped any.
    ///
    /// Invariant: no clone of the version it replaces outlives the edit. The purge that
    /// follows counts every live `Arc<Version>` as a reader, so a clone held here would keep
    /// the dropped tables' files on disk and their readers in the table cache, and nothing
    /// would purge again when it dropped (found by Tumbler, config threads_3_tiny: a step
    /// after a drain left a dropped table open; tests/delete_only.rs
    /// the_step_that_drops_tables_deletes_their_files_and_readers).
    pub(super) fn run_delete_only<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
    ) -> Result<(MutexGuard<'a, State>, bool)> {
        if !state.version.levels.iter().flatten().any(|f| f.has_range_dels) {
            return Ok((state, false));
        }
        let visible_to_all = Self::smallest_snapshot(&state);
        let unchanged = state.delete_only_checked.as_ref().is_some_and(|(v, blocked)| {
            v.ptr_eq(&Arc::downgrade(&state.version)) && visible_to_all < *blocked
        });
        if unchanged {
            return Ok((state, false));
        }
        // Under the lock throughout: a step that let go of it and then found nothing to do
        // could miss the wake-up of work queued meanwhile (a worker would then sleep on it).
        let (dropped, blocked) = self.hidden_tables(&state, visible_to_all)?;
        if dropped.is_empty() {
            state.delete_only_checked = Some((Arc::downgrade(&state.version), blocked));
            return Ok((state, false));
        }
        let count = dropped.len() as u64;
        let edit = VersionEdit { deleted: dropped, ..VersionEdit::default() };
        self.log_and_apply(&mut state, edit)?;
        state.stats.compactions += 1;
        state.stats.delete_only_compactions += 1;
        state.stats.tables_dropped_by_tombstones += count;
        self.delete_obsolete_files(&mut state);
        self.wake_all();
        Ok((state, true))
    }

    /// The (level, file) pairs of the current version that a tombstone seen by every reader
    /// hides, and the smallest seqnum of a tombstone a snapshot still keeps from acting: until
    /// the smallest snapshot reaches it (or the version changes), searching again finds nothing.
    /// The tables holding tombstones are read by every read of their range, so they are
    /// nearly always open already.
    fn hidden_tables(
        &self,
        state: &State,
        visible_to_all: u64,
    ) -> Result<(BTreeSet<(usize, u64)>, u64)> {
        let version = &state.version;
        let mut blocked = u64::MAX;
        let mut dropped = BTreeSet::new();
        for holder in version.levels.iter().flatten().filter(|f| f.has_range_dels) {
            let table = self.tables.get(holder.num)?;
            for t in table.range_tombstones() {
                if t.seq > visible_to_all {
                    blocked = blocked.min(t.seq);
                    continue;
                }
                let (start, end) = (Some(&t.start[..]), Some(&t.end[..]));
                for (level, files) in version.levels.iter().enumerate() {
                    for f in files {
                        let hidden = f.num != holder.num
                            && f.largest_seq < t.seq
                            && !state.compacting.contains(&f.num)
                            && f.within(&self.cmp, start, end);
                        if hidden {
                            dropped.insert((level, f.num));
                        }
                    }
                }
            }
        }
        Ok((dropped, blocked))
    }
}
