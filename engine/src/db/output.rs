//! Table outputs of a flush or compaction: `OutputWriter` writes a sorted stream into tables
//! split at `target_file_size` (only between user keys), each synced, then syncs the directory.
//!
//! Invariants: every output's number is a pending output from allocation until the step's edit
//! is installed or the step fails (so obsolete-file deletion never removes it); a failed step
//! removes every table it wrote (unless the database is poisoned: then the next open does);
//! no edit names a table whose directory entry is not yet durable.

use crate::sync::Arc;
use std::cmp::Ordering;

use super::DbInner;
use crate::error::Result;
use crate::filename;
use crate::iter::InternalIterator;
use crate::key::{self, Kind, RangeTombstone};
use crate::sstable::TableWriter;
use crate::version::{range_del_sentinel, FileMetadata};

/// Writes a sorted stream of entries (plus range tombstones) into tables split at the
/// target file size, only between user keys.
struct OutputWriter<'a> {
    db: &'a DbInner,
    /// All tombstone fragments, sorted by start; each output gets its clipped share.
    tombstones: Vec<RangeTombstone>,
    current: Option<Output>,
    done: Vec<FileMetadata>,
    last_user_key: Vec<u8>,
    bytes_written: u64,
}

struct Output {
    num: u64,
    writer: TableWriter,
    file: Arc<dyn crate::env::File>,
    /// The user key this output starts at (`None` = from the beginning).
    lower: Option<Vec<u8>>,
    first_point: Option<Vec<u8>>,
    last_point: Vec<u8>,
    smallest_seq: u64,
    largest_seq: u64,
}

impl<'a> OutputWriter<'a> {
    fn new(db: &'a DbInner, tombstones: Vec<RangeTombstone>) -> OutputWriter<'a> {
        OutputWriter {
            db,
            tombstones,
            current: None,
            done: Vec::new(),
            last_user_key: Vec::new(),
            bytes_written: 0,
        }
    }

    fn open(&mut self, lower: Option<Vec<u8>>) -> Result<()> {
        let num = self.db.alloc_file_num();
        let file = self.db.fs.create(&filename::table(&self.db.dir, num))?;
        let writer = TableWriter::new(file.clone(), &self.db.opts);
        self.current = Some(Output {
            num,
            writer,
            file,
            lower,
            first_point: None,
            last_point: Vec::new(),
            smallest_seq: u64::MAX,
            largest_seq: 0,
        });
        Ok(())
    }

    fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let user_key = key::user_key(ikey);
        let split = match &self.current {
            Some(out) => {
                out.writer.estimated_size() >= self.db.opts.target_file_size
                    && self.db.cmp.compare_user(&self.last_user_key, user_key) != Ordering::Equal
            }
            None => false,
        };
        if split {
            self.finish_current(Some(user_key))?;
            self.open(Some(user_key.to_vec()))?;
        } else if self.current.is_none() {
            self.open(None)?;
        }
        let out = self.current.as_mut().expect("an output is open");
        out.writer.add(ikey, value)?;
        let seq = key::trailer_of(ikey) >> 8;
        out.smallest_seq = out.smallest_seq.min(seq);
        out.largest_seq = out.largest_seq.max(seq);
        if out.first_point.is_none() {
            out.first_point = Some(ikey.to_vec());
        }
        out.last_point.clear();
        out.last_point.extend_from_slice(ikey);
        self.last_user_key.clear();
        self.last_user_key.extend_from_slice(user_key);
        Ok(())
    }

    /// Finishes the open output, giving it the tombstones in `[lower, upper)`.
    fn finish_current(&mut self, upper: Option<&[u8]>) -> Result<()> {
        let Some(mut out) = self.current.take() else { return Ok(()) };
        let cmp = &self.db.cmp;
        let mut smallest = out.first_point.clone();
        let mut largest = (!out.last_point.is_empty()).then(|| out.last_point.clone());
        let mut has_range_dels = false;
        for t in &self.tombstones {
            let start = match &out.lower {
                Some(l) if cmp.compare_user(&t.start, l) == Ordering::Less => l.clone(),
                _ => t.start.clone(),
            };
            let end = match upper {
                Some(u) if cmp.compare_user(&t.end, u) == Ordering::Greater => u.to_vec(),
                _ => t.end.clone(),
            };
            if cmp.compare_user(&start, &end) != Ordering::Less {
                continue;
            }
            let clipped = RangeTombstone { start, end, seq: t.seq };
            out.writer.add_range_tombstone(&clipped)?;
            has_range_dels = true;
            out.smallest_seq = out.smallest_seq.min(t.seq);
            out.largest_seq = out.largest_seq.max(t.seq);
            let lo = key::encode(&clipped.start, clipped.seq, Kind::RangeDelete);
            let hi = range_del_sentinel(&clipped.end);
            if smallest.as_ref().is_none_or(|s| cmp.compare(&lo, s) == Ordering::Less) {
                smallest = Some(lo);
            }
            if largest.as_ref().is_none_or(|l| cmp.compare(&hi, l) == Ordering::Greater) {
                largest = Some(hi);
            }
        }
        let (Some(smallest), Some(largest)) = (smallest, largest) else {
            // Nothing landed in this output: remove the empty file.
            drop(out.writer);
            self.db.discard_output(out.num);
            return Ok(());
        };
        let num = out.num;
        let finished = out.writer.finish().and_then(|info| out.file.sync().map(|()| info));
        let info = match finished {
            Ok(info) => info,
            Err(e) => {
                // The output is no longer `current`: abandon() would not see it.
                self.db.discard_output(num);
                return Err(e);
            }
        };
        self.bytes_written += info.file_size;
        self.done.push(FileMetadata {
            num: out.num,
            size: info.file_size,
            smallest,
            largest,
            smallest_seq: out.smallest_seq,
            largest_seq: out.largest_seq,
            has_range_dels,
        });
        Ok(())
    }

    /// Finishes every output; tombstones beyond the last point key go into the last one.
    fn finish(&mut self) -> Result<(Vec<FileMetadata>, u64)> {
        if self.current.is_none() && !self.tombstones.is_empty() {
            self.open(None)?;
        }
        self.finish_current(None)?;
        Ok((std::mem::take(&mut self.done), self.bytes_written))
    }

    /// Removes every file this writer created (after a failure).
    fn abandon(&mut self) {
        let nums: Vec<u64> =
            self.done.iter().map(|f| f.num).chain(self.current.as_ref().map(|o| o.num)).collect();
        self.current = None;
        for num in nums {
            self.db.discard_output(num);
        }
    }
}

impl DbInner {
    /// A new file number, recorded as a pending output until installed or abandoned.
    fn alloc_file_num(&self) -> u64 {
        let mut state = self.lock();
        let num = state.next_file_num;
        state.next_file_num += 1;
        // File numbers are never reused, so an output is never a file of a live version.
        assert!(state.pending_outputs.insert(num), "file number {num} allocated twice");
        num
    }

    fn forget_pending(&self, num: u64) {
        self.lock().pending_outputs.remove(&num);
    }

    /// Removes a table this step wrote and no edit names (the step failed, or the output
    /// stayed empty). A poisoned database deletes nothing, not even these: the next open
    /// removes them as orphans.
    pub(super) fn discard_output(&self, num: u64) {
        let poisoned = self.lock().poison.is_some();
        if !poisoned {
            let _ = self.fs.remove(&filename::table(&self.dir, num));
        }
        self.forget_pending(num);
    }

    /// Writes `source` (sorted) and `tombstones` into new tables. On failure every new file
    /// is removed.
    pub(super) fn write_tables(
        &self,
        source: &mut dyn InternalIterator,
        tombstones: Vec<RangeTombstone>,
        mut keep: impl FnMut(&[u8]) -> bool,
    ) -> Result<(Vec<FileMetadata>, u64)> {
        self.write_tables_from(tombstones, |add| {
            source.first()?;
            while source.valid() {
                if keep(source.key()) {
                    add(source.key(), source.value())?;
                }
                source.next()?;
            }
            Ok(())
        })
    }

    /// Like [`DbInner::write_tables`], with the entries (sorted internal keys) handed to
    /// `add` by `fill`: for a source that is no `InternalIterator` (an ingestion stamping
    /// seqnums as it reads).
    pub(super) fn write_tables_from(
        &self,
        tombstones: Vec<RangeTombstone>,
        fill: impl FnOnce(&mut dyn FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()>,
    ) -> Result<(Vec<FileMetadata>, u64)> {
        let mut out = OutputWriter::new(self, tombstones);
        let result = fill(&mut |k: &[u8], v: &[u8]| out.add(k, v));
        if let Err(e) = result {
            out.abandon();
            return Err(e);
        }
        let (files, bytes) = out.finish().inspect_err(|_| out.abandon())?;
        // Invariant: a table's directory entry is durable before any manifest edit names it
        // (an appended edit syncs no directory). Regression: corpus/manifest-names-table-lost-in-crash.ops.
        if !files.is_empty() {
            if let Err(e) = self.fs.sync_dir(&self.dir) {
                out.done = files;
                out.abandon();
                return Err(e);
            }
        }
        Ok((files, bytes))
    }
}
