//! Background work as steps: memtable switches, flushes, compaction picking and compaction,
//! recovery and close. Both schedulers drive the same step function: `Threads` from worker
//! threads, `Manual` from `Db::run_background_step` or inline in a write that would stall.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, MutexGuard, PoisonError};

use super::{DbInner, MemEntry, State};
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::filename::{self, FileKind};
use crate::iter::InternalIterator;
use crate::iter::MergingIterator;
use crate::iter::{fragment_all, Fragments};
use crate::key::{self, Kind, RangeTombstone};
use crate::memtable::Memtable;
use crate::options::Scheduler;
use crate::sstable::TableWriter;
use crate::version::edit::VersionEdit;
use crate::version::manifest;
use crate::version::picker::{self, Compaction, PickerOptions};
use crate::version::{range_del_sentinel, FileMetadata, Version, NUM_LEVELS};
use crate::wal::{LogReader, LogWriter};

/// What background work is waiting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackgroundWork {
    /// Immutable memtables waiting for flush.
    pub flushes: usize,
    /// Levels whose compaction score is at least 1.
    pub compactions: usize,
}

impl BackgroundWork {
    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.flushes == 0 && self.compactions == 0
    }
}

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
        state.pending_outputs.insert(num);
        num
    }

    fn forget_pending(&self, num: u64) {
        self.lock().pending_outputs.remove(&num);
    }

    /// Removes a table this step wrote and no edit names (the step failed, or the output
    /// stayed empty). A poisoned database deletes nothing, not even these: the next open
    /// removes them as orphans.
    fn discard_output(&self, num: u64) {
        let poisoned = self.lock().poison.is_some();
        if !poisoned {
            let _ = self.fs.remove(&filename::table(&self.dir, num));
        }
        self.forget_pending(num);
    }

    /// Runs `f`, turning a panic in it (a user's comparator or `Fs`, say) into
    /// [`Error::Panicked`]. For work done without the state lock, so a panic leaves no lock
    /// poisoned and no flag set; the caller poisons the database with the error.
    fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
        panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(Error::from_panic(&*p)))
    }

    /// Writes `source` (sorted) and `tombstones` into new tables. On failure every new file
    /// is removed.
    fn write_tables(
        &self,
        source: &mut dyn InternalIterator,
        tombstones: Vec<RangeTombstone>,
        mut keep: impl FnMut(&[u8]) -> bool,
    ) -> Result<(Vec<FileMetadata>, u64)> {
        let mut out = OutputWriter::new(self, tombstones);
        let result = (|| {
            source.first()?;
            while source.valid() {
                if keep(source.key()) {
                    out.add(source.key(), source.value())?;
                }
                source.next()?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            out.abandon();
            return Err(e);
        }
        let (files, bytes) = out.finish().inspect_err(|_| out.abandon())?;
        // Story of a bug (found by a crash test on the harness's SimFs): outputs were synced
        // but their directory entries were not, and the manifest edit naming them is appended
        // to an existing manifest file, which syncs no directory. A crash could then keep the
        // edit and lose the tables' names: the recovered version named missing tables. The
        // entries must be durable before any manifest record points at them.
        if !files.is_empty() {
            if let Err(e) = self.fs.sync_dir(&self.dir) {
                out.done = files;
                out.abandon();
                return Err(e);
            }
        }
        Ok((files, bytes))
    }

    /// Makes room in the memtable for a write needing `needed` arena bytes, switching
    /// memtables and stalling (running or awaiting background work) as needed.
    pub(super) fn make_room<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        needed: usize,
    ) -> Result<MutexGuard<'a, State>> {
        let mut stalled = false;
        loop {
            Self::check_writable(&state)?;
            let mem = &state.mem.mem;
            let fits = mem.capacity() - mem.used_bytes() >= needed;
            let l0_stop = state.version.levels[0].len() >= self.opts.l0_stop_writes_threshold;
            let imm_stop = state.imms.len() + 1 >= self.opts.memtable_stop_writes_threshold;
            if (l0_stop || (!fits && imm_stop)) && !stalled {
                state.stats.stalls += 1;
                let before = (state.imms.len(), state.version.levels[0].len());
                state = self.help_or_wait(state)?;
                let after = (state.imms.len(), state.version.levels[0].len());
                if before == after && matches!(self.opts.scheduler, Scheduler::Manual) {
                    // No step could make progress: let the write through rather than hang.
                    stalled = true;
                }
                continue;
            }
            if fits {
                return Ok(state);
            }
            let capacity = self.opts.memtable_size.max(needed);
            if mem.is_empty() {
                // An empty memtable too small for this batch: replace it, keeping its WAL.
                state.mem.mem = self.new_memtable(capacity);
                return Ok(state);
            }
            return self.switch_memtable(state, capacity);
        }
    }

    /// Freezes the memtable and starts a new one with a new WAL. The old WAL is synced first,
    /// so a crash can never keep a newer WAL's writes while losing older ones.
    pub(super) fn switch_memtable<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        capacity: usize,
    ) -> Result<MutexGuard<'a, State>> {
        let mut wal_num = state.mem.wal_num;
        if !self.opts.disable_wal {
            let num = state.next_file_num;
            let result = (|| {
                if let Some(wal) = state.wal.as_mut() {
                    wal.sync()?;
                }
                let file = self.fs.create(&filename::wal(&self.dir, num))?;
                self.fs.sync_dir(&self.dir)?;
                Ok(LogWriter::new(file))
            })();
            match result {
                Ok(wal) => {
                    state.next_file_num += 1;
                    state.wal = Some(wal);
                    wal_num = num;
                }
                Err(e) => return Err(self.poison(&mut state, e)),
            }
        }
        let new = MemEntry { mem: self.new_memtable(capacity), wal_num };
        let old = std::mem::replace(&mut state.mem, new);
        state.imms.push_back(old);
        self.cond.notify_all();
        Ok(state)
    }

    /// Runs a step here (Manual) or waits for the background threads (Threads).
    pub(super) fn help_or_wait<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>> {
        Self::check_writable(&state)?;
        match self.opts.scheduler {
            Scheduler::Manual => {
                let (state, ran) = self.run_step(state)?;
                if !ran && (state.flushing || !state.compacting.is_empty()) {
                    // Another thread runs the step this caller needs; `close` and `poison`
                    // wake this wait too, and the check below sees why.
                    let state = self.wait(state);
                    Self::check_writable(&state)?;
                    return Ok(state);
                }
                Ok(state)
            }
            Scheduler::Threads { .. } => {
                let failures = state.bg_failures;
                self.cond.notify_all();
                let state = self.wait(state);
                Self::check_writable(&state)?;
                if state.bg_failures != failures {
                    // The step this writer waits for failed: return its error (same kind) and
                    // let the caller retry, never wait again (engine/tests/shutdown.rs).
                    return Err(state.bg_error.as_ref().map_or_else(
                        || Error::io("background work", std::io::Error::other("a step failed")),
                        Error::duplicate,
                    ));
                }
                Ok(state)
            }
        }
    }

    pub(super) fn pending_work(&self, state: &State) -> super::BackgroundWork {
        let compactions = (0..NUM_LEVELS - 1)
            .filter(|&level| self.level_score(&state.version, level) >= 1.0)
            .count();
        super::BackgroundWork { flushes: state.imms.len(), compactions }
    }

    fn level_score(&self, version: &Version, level: usize) -> f64 {
        picker::level_score(&PickerOptions::from(&self.opts), version, level)
    }

    /// Runs one step: the oldest flush, else the best compaction. Returns whether it ran.
    pub(super) fn run_step<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
    ) -> Result<(MutexGuard<'a, State>, bool)> {
        if !state.flushing && !state.imms.is_empty() {
            return self.flush_oldest(state).map(|s| (s, true));
        }
        match self.pick_compaction(&state) {
            Some(c) => self.run_compaction(state, c).map(|s| (s, true)),
            None => Ok((state, false)),
        }
    }

    fn flush_oldest<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>> {
        let imm = state.imms.front().expect("a memtable to flush").clone();
        state.flushing = true;
        drop(state);
        let result = Self::catch_panic(|| self.flush_memtable(&imm.mem));
        let mut state = self.lock();
        state.flushing = false;
        self.cond.notify_all();
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
        let mut edit = VersionEdit {
            log_number: (!self.opts.disable_wal).then(|| self.min_unflushed_wal(&state)),
            last_seq: Some(max_seq.max(state.manifest_last_seq)),
            ..VersionEdit::default()
        };
        for f in &files {
            edit.added.push((0, f.clone()));
        }
        let result = self.log_and_apply(&mut state, edit);
        for f in &files {
            state.pending_outputs.remove(&f.num);
        }
        if let Err(e) = result {
            state.imms.push_front(popped);
            self.cond.notify_all();
            return Err(e);
        }
        state.stats.flushes += 1;
        state.stats.flush_bytes += bytes;
        self.delete_obsolete_files(&mut state);
        self.cond.notify_all();
        Ok(state)
    }

    /// Writes a memtable to L0 tables; returns them, their bytes and the memtable's largest
    /// seqnum.
    fn flush_memtable(&self, mem: &Arc<Memtable>) -> Result<(Vec<FileMetadata>, u64, u64)> {
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

    pub(super) fn pick_compaction(&self, state: &State) -> Option<Compaction> {
        picker::pick_compaction(
            &state.version,
            &PickerOptions::from(&self.opts),
            &self.cmp,
            &state.compacting,
            &state.compact_pointer,
        )
    }

    /// The user-key range `[smallest, largest]` covered by `files`.
    fn key_range(&self, files: &[Arc<FileMetadata>]) -> (Vec<u8>, Vec<u8>) {
        picker::key_range(&self.cmp, files)
    }

    fn run_compaction<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        c: Compaction,
    ) -> Result<MutexGuard<'a, State>> {
        let inputs: Vec<u64> = c.all_inputs().map(|f| f.num).collect();
        state.compacting.extend(inputs.iter().copied());
        if c.level != c.output_level {
            let last = &c.inputs[0][c.inputs[0].len() - 1];
            state.compact_pointer[c.level] = Some(last.largest_user().to_vec());
        }
        let trivial = c.inputs[0].len() == 1 && c.inputs[1].is_empty() && c.level != c.output_level;
        let result = if trivial {
            let f = &c.inputs[0][0];
            let mut edit = VersionEdit::default();
            edit.deleted.insert((c.level, f.num));
            edit.added.push((c.output_level, FileMetadata::clone(f)));
            Ok((edit, 0, 0))
        } else {
            let version = state.version.clone();
            let smallest_snapshot = Self::smallest_snapshot(&state);
            drop(state);
            let r = Self::catch_panic(|| self.compact_files(&c, &version, smallest_snapshot));
            state = self.lock();
            r
        };
        for n in &inputs {
            state.compacting.remove(n);
        }
        self.cond.notify_all();
        let (edit, read, written) = match result {
            Ok(r) => r,
            Err(e @ Error::Panicked { .. }) => return Err(self.poison(&mut state, e)),
            Err(e) => return Err(e),
        };
        let outputs: Vec<u64> = edit.added.iter().map(|(_, f)| f.num).collect();
        let result = self.log_and_apply(&mut state, edit);
        for n in outputs {
            state.pending_outputs.remove(&n);
        }
        result?;
        state.stats.compactions += 1;
        state.stats.compaction_bytes_read += read;
        state.stats.compaction_bytes_written += written;
        self.delete_obsolete_files(&mut state);
        self.cond.notify_all();
        Ok(state)
    }

    /// Merges the compaction's inputs into new tables, dropping what no reader can see.
    fn compact_files(
        &self,
        c: &Compaction,
        version: &Version,
        smallest_snapshot: u64,
    ) -> Result<(VersionEdit, u64, u64)> {
        let mut sources: Vec<Box<dyn InternalIterator>> = Vec::new();
        let mut tombstones = Vec::new();
        let mut read = 0;
        for f in c.all_inputs() {
            let table = self.tables.get(f.num)?;
            tombstones.extend(table.range_tombstones().iter().cloned());
            sources.push(Box::new(table.iter()));
            read += f.size;
        }
        let lower_levels_have = |start: &[u8], end: Option<&[u8]>| {
            (c.output_level + 1..NUM_LEVELS).any(|l| {
                version.levels[l].iter().any(|f| match end {
                    None => f.contains_user_key(&self.cmp, start),
                    Some(end) => {
                        f.overlaps(&self.cmp, Some(start), Some(end))
                            && self.cmp.compare_user(f.smallest_user(), end) != Ordering::Equal
                    }
                })
            })
        };
        let fragments = fragment_all(&tombstones, &self.cmp);
        // Tombstones visible to every snapshot whose range holds nothing below can go.
        let kept: Vec<RangeTombstone> = fragments
            .iter()
            .filter(|t| t.seq > smallest_snapshot || lower_levels_have(&t.start, Some(&t.end)))
            .cloned()
            .collect();
        let covering = Fragments::new(&fragments, smallest_snapshot, &self.cmp);
        let mut iter = MergingIterator::new(sources, self.cmp.clone());
        let mut cur_key: Vec<u8> = Vec::new();
        let mut first = true;
        let mut hidden = false;
        let keep = |ikey: &[u8]| -> bool {
            let p = key::parse(ikey).expect("tables hold valid internal keys");
            if first || self.cmp.compare_user(p.user_key, &cur_key) != Ordering::Equal {
                cur_key.clear();
                cur_key.extend_from_slice(p.user_key);
                hidden = false;
                first = false;
            }
            if hidden {
                return false;
            }
            if covering.max_covering_seq(p.user_key).is_some_and(|t| t > p.seq) {
                // Deleted by a range tombstone that every snapshot sees: so is everything older.
                hidden = true;
                return false;
            }
            let visible_to_all = p.seq <= smallest_snapshot;
            match p.kind {
                Kind::Delete | Kind::SingleDelete
                    if visible_to_all && !lower_levels_have(p.user_key, None) =>
                {
                    hidden = true;
                    false
                }
                Kind::Merge => true,
                _ => {
                    hidden = visible_to_all;
                    true
                }
            }
        };
        let (files, written) = self.write_tables(&mut iter, kept, keep)?;
        let mut edit = VersionEdit::default();
        for (i, inputs) in c.inputs.iter().enumerate() {
            let level = if i == 0 { c.level } else { c.output_level };
            for f in inputs {
                edit.deleted.insert((level, f.num));
            }
        }
        for f in files {
            edit.added.push((c.output_level, f));
        }
        Ok((edit, read, written))
    }

    /// Compacts everything overlapping `[start, end]` down, level by level.
    pub(super) fn compact_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        for level in 0..NUM_LEVELS - 1 {
            let mut state = self.lock();
            loop {
                Self::check_writable(&state)?;
                let inputs0 = state.version.overlapping(&self.cmp, level, start, end);
                if inputs0.is_empty() {
                    break;
                }
                let (lo, hi) = self.key_range(&inputs0);
                let inputs1 = state.version.overlapping(&self.cmp, level + 1, Some(&lo), Some(&hi));
                let busy =
                    inputs0.iter().chain(&inputs1).any(|f| state.compacting.contains(&f.num));
                if busy {
                    state = self.wait(state);
                    continue;
                }
                let c = Compaction { level, output_level: level + 1, inputs: [inputs0, inputs1] };
                drop(self.run_compaction(state, c)?);
                break;
            }
        }
        Ok(())
    }

    /// Opens the database: replays the manifest and the WALs, flushes what the WALs held to
    /// L0, and starts a new WAL and a new manifest.
    pub(super) fn recover(&self) -> Result<()> {
        let fs = &self.fs;
        let dir = &self.dir;
        if !fs.exists(dir)? {
            if !self.opts.create_if_missing {
                return Err(Error::NotFound(dir.display().to_string()));
            }
            fs.create_dir_all(dir)?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs.sync_dir(parent)?;
            }
        }
        let lock = fs.lock(&filename::lock(dir))?;
        let (version, log_number, mut next_file_num, mut last_seq) =
            if fs.exists(&filename::current(dir))? {
                if self.opts.error_if_exists {
                    return Err(Error::InvalidArgument(format!(
                        "database {} already exists",
                        dir.display()
                    )));
                }
                let r = manifest::recover(fs, dir, &self.cmp)?;
                (r.version, r.log_number, r.next_file_num, r.last_seq)
            } else if !self.opts.create_if_missing {
                return Err(Error::NotFound(format!("{} (no CURRENT)", dir.display())));
            } else {
                (Version::default(), 0, 1, 0)
            };
        let manifest_last_seq = last_seq;
        let names = fs.list(dir)?;
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
                next_file_num = next_file_num.max(num + 1);
                if let FileKind::Wal(n) = kind {
                    if n >= log_number && !self.opts.disable_wal {
                        wals.push(n);
                    }
                }
            }
        }
        wals.sort_unstable();
        // Story of a bug (found by tests/corruption.rs): the manifest reader drops a damaged
        // last edit, as it must for a torn append after a crash. But a bit flip in a complete,
        // synced last edit looks the same, and dropping it left an older version: one whose
        // compaction inputs were already deleted, or one missing the tables of the last flush
        // whose WAL was already deleted, and reads returned old data. A torn edit was never
        // acted on, so every file its predecessor names still exists; these two checks turn
        // the "acted on, then damaged" case into `Corruption`.
        let present: BTreeSet<u64> = names
            .iter()
            .filter_map(|n| match filename::parse(n) {
                Some(FileKind::Table(n)) => Some(n),
                _ => None,
            })
            .collect();
        if let Some(f) = version.levels.iter().flatten().find(|f| !present.contains(&f.num)) {
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
        {
            let mut state = self.lock();
            state.version = Arc::new(version);
            state.live_versions = vec![Arc::downgrade(&state.version)];
            state.next_file_num = next_file_num;
            state.manifest_last_seq = manifest_last_seq;
            state.lock = Some(lock);
        }
        // Replay every WAL into memtables, then flush them to L0.
        let mut mems: Vec<Arc<Memtable>> = Vec::new();
        let mut mem = self.new_memtable(self.opts.memtable_size);
        // Story of a bug (found by tests/corruption.rs): every WAL was read tolerating a
        // damaged tail, so a flipped byte near the end of an older WAL dropped its last
        // batches while the next WAL's batches were still replayed: a hole in the middle of
        // history, not a lost tail. An older WAL is synced before the next one is created, so
        // a crash never tears it; a dropped tail followed by writes in a later WAL is damage.
        let mut dropped: Option<String> = None;
        for num in wals {
            let path = filename::wal(dir, num);
            let file = fs.open(&path)?;
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
                // Same story, for damage no reader can see: an older WAL cut at a record
                // boundary (or to nothing) reads as clean, but the writes that follow skip
                // seqnums. Seqnums are handed out contiguously and memtables flush whole and
                // in order, so the first write not yet in the tables is `last_seq + 1`, and
                // each batch continues the one before it.
                if batch.seq() > last_seq + 1 {
                    return Err(Error::corruption(
                        format!(
                            "WAL batch at seqnum {} follows seqnum {last_seq}: writes are missing",
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
                last_seq = last_seq.max(batch.seq() + count - 1);
            }
            if reader.dropped_tail().is_some() {
                dropped = Some(location);
            }
        }
        if !mem.is_empty() {
            mems.push(mem);
        }
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
        let version = manifest::apply(&state.version, &edit, &self.cmp, "recovery")?;
        Self::install_version(&mut state, version);
        let wal_num = state.next_file_num;
        state.next_file_num += 1;
        if !self.opts.disable_wal {
            let file = fs.create(&filename::wal(dir, wal_num))?;
            state.wal = Some(LogWriter::new(file));
        }
        state.last_seq = last_seq;
        state.manifest_last_seq = last_seq;
        // Creating the manifest syncs the directory, which makes the new WAL's and the
        // flushed tables' entries durable before CURRENT names the manifest.
        let version = state.version.clone();
        state.manifest = Some(self.create_manifest(&mut state, &version, wal_num, last_seq)?);
        for (_, f) in &edit.added {
            state.pending_outputs.remove(&f.num);
        }
        state.mem = MemEntry { mem: self.new_memtable(self.opts.memtable_size), wal_num };
        self.delete_obsolete_files(&mut state);
        Ok(())
    }

    /// See [`super::Db::close`].
    pub(super) fn close(&self) -> Result<()> {
        {
            let mut state = self.lock();
            if state.shutting_down {
                // Another close runs: return when it is done, as if this one had done it.
                while !state.closed {
                    state = self.wait(state);
                }
                return Ok(());
            }
            // From here on every call returns `Closed`, and every waiter is woken to see it.
            state.shutting_down = true;
            self.cond.notify_all();
        }
        // A panic here (a user's `Fs` syncing the WAL, say) must still end in a closed
        // database: otherwise a later close, or Drop, would wait for this one forever.
        match panic::catch_unwind(AssertUnwindSafe(|| self.shut_down())) {
            Ok(result) => result,
            Err(payload) => {
                let mut state = self.lock();
                let e = self.poison(&mut state, Error::from_panic(&*payload));
                self.release(&mut state);
                Err(e)
            }
        }
    }

    /// The body of `close` once `shutting_down` is set.
    fn shut_down(&self) -> Result<()> {
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for t in threads {
            // A worker catches panics in its steps; a join error is one outside them, already
            // reported on that thread. Close goes on.
            let _ = t.join();
        }
        let mut state = self.lock();
        // Steps running in callers' threads (`Manual` steps, `compact_range`, `resume`) end
        // before the state is torn down. They notify when done. A panic-poisoned database
        // may have left a flag set by the panicking step: do not wait for it.
        while (state.flushing || !state.compacting.is_empty() || state.resuming)
            && !state.poison.as_ref().is_some_and(|p| p.fatal)
        {
            state = self.wait(state);
        }
        let mut result = Ok(());
        if state.poison.is_none() {
            if self.opts.disable_wal {
                // Without a WAL, memtables are the only copy: flush them.
                match self.flush_all(state) {
                    Ok(s) => state = s,
                    Err(e) => {
                        result = Err(e);
                        state = self.lock();
                    }
                }
            } else if let Some(wal) = state.wal.as_mut() {
                if let Err(e) = wal.sync() {
                    result = Err(self.poison(&mut state, e));
                }
            }
        }
        // A no-op when poisoned: the next open decides what is obsolete.
        self.delete_obsolete_files(&mut state);
        self.release(&mut state);
        result
    }

    /// Marks the database closed, drops what it holds (memtables, WAL, manifest, tables, the
    /// directory lock) and wakes every waiter.
    fn release(&self, state: &mut State) {
        state.files_at_close = Some(self.live_files(state));
        state.closed = true;
        state.mem.mem = self.new_memtable(0);
        state.imms.clear();
        state.wal = None;
        state.manifest = None;
        let nums: Vec<u64> = state.version.file_nums().collect();
        state.version = Arc::new(Version::default());
        for n in nums {
            self.tables.evict(n);
        }
        state.lock = None;
        self.cond.notify_all();
    }

    /// See [`super::Db::resume`].
    pub(super) fn resume(&self) -> Result<()> {
        let mut state = self.lock();
        loop {
            if state.closed || state.shutting_down {
                return Err(Error::Closed);
            }
            let Some(poison) = &state.poison else { return Ok(()) };
            if poison.fatal {
                return Err(Error::Poisoned { cause: poison.cause.clone() });
            }
            // One resume at a time, and none while a step started before the poison still
            // writes: it will fail at `log_and_apply` and notify.
            if !state.resuming && !state.flushing && state.compacting.is_empty() {
                break;
            }
            state = self.wait(state);
        }
        state.resuming = true;
        let result = self.resume_inner(state);
        let mut state = self.lock();
        state.resuming = false;
        self.cond.notify_all();
        result
    }

    /// The body of [`DbInner::resume`]: `state.resuming` is set; no write or step runs.
    fn resume_inner<'a>(&'a self, state: MutexGuard<'a, State>) -> Result<()> {
        // 1. Flush every memtable, oldest first. Their writes were acknowledged, but the WAL
        //    holding the newest of them may have failed its sync: tables make them durable.
        let mut mems: Vec<Arc<Memtable>> = state.imms.iter().map(|m| m.mem.clone()).collect();
        if !state.mem.mem.is_empty() {
            mems.push(state.mem.mem.clone());
        }
        drop(state);
        let mut added: Vec<FileMetadata> = Vec::new();
        let mut flush_bytes = 0;
        let forget = |added: &[FileMetadata]| {
            let mut state = self.lock();
            for f in added {
                state.pending_outputs.remove(&f.num);
            }
        };
        for m in &mems {
            match Self::catch_panic(|| self.flush_memtable(m)) {
                Ok((files, bytes, _)) => {
                    added.extend(files);
                    flush_bytes += bytes;
                }
                Err(e) => {
                    // Tables already written stay (nothing is deleted while poisoned); the
                    // next successful resume or open removes them as orphans.
                    forget(&added);
                    return Err(e);
                }
            }
        }
        drop(mems);
        let mut state = self.lock();
        let result = (|| {
            if state.shutting_down {
                return Err(Error::Closed);
            }
            let mut edit = VersionEdit::default();
            edit.added.extend(added.iter().map(|f| (0, f.clone())));
            let next = manifest::apply(&state.version, &edit, &self.cmp, "resume")?;
            // 2. A new WAL: the old one may have an unknown tail. Its directory entry becomes
            //    durable with the manifest's directory sync below.
            let wal_num = state.next_file_num;
            state.next_file_num += 1;
            let wal = if self.opts.disable_wal {
                None
            } else {
                Some(LogWriter::new(self.fs.create(&filename::wal(&self.dir, wal_num))?))
            };
            // 3. A fresh manifest with the whole version, installed through CURRENT.
            let last_seq = state.last_seq;
            let manifest = self.create_manifest(&mut state, &next, wal_num, last_seq)?;
            Ok((next, wal_num, wal, manifest))
        })();
        for f in &added {
            state.pending_outputs.remove(&f.num);
        }
        let (next, wal_num, wal, manifest) = result?;
        // 4. Install, clear the poison, and only now delete what the new manifest does not
        //    name (old WALs and manifests, orphan tables): CURRENT naming it is durable.
        Self::install_version(&mut state, next);
        state.manifest = Some(manifest);
        if wal.is_some() {
            state.wal = wal;
        }
        state.imms.clear();
        state.mem = MemEntry { mem: self.new_memtable(self.opts.memtable_size), wal_num };
        state.manifest_last_seq = state.last_seq;
        if !added.is_empty() {
            state.stats.flushes += 1;
            state.stats.flush_bytes += flush_bytes;
        }
        state.poison = None;
        state.bg_error = None;
        self.delete_obsolete_files(&mut state);
        self.cond.notify_all();
        Ok(())
    }

    /// Flushes the memtable and every immutable one, in this thread.
    fn flush_all<'a>(&'a self, mut state: MutexGuard<'a, State>) -> Result<MutexGuard<'a, State>> {
        if !state.mem.mem.is_empty() {
            state = self.switch_memtable(state, self.opts.memtable_size)?;
        }
        while !state.imms.is_empty() {
            state = self.flush_oldest(state)?;
        }
        Ok(state)
    }
}

/// Starts the `Threads` scheduler's workers.
pub(super) fn start_threads(inner: &Arc<DbInner>, count: usize) {
    let mut threads = inner.threads.lock().unwrap_or_else(PoisonError::into_inner);
    for i in 0..count {
        let db = inner.clone();
        #[allow(clippy::disallowed_methods)] // The Threads scheduler is the one place that spawns.
        let handle = std::thread::Builder::new()
            .name(format!("cobble-bg-{i}"))
            .spawn(move || worker(&db))
            .expect("spawning a background thread");
        threads.push(handle);
    }
}

fn worker(db: &Arc<DbInner>) {
    let mut state = db.lock();
    loop {
        if state.shutting_down {
            return;
        }
        if state.poison.is_some() || state.resuming {
            state = db.wait(state);
            continue;
        }
        // Story of a bug (issue 14): a panic in a step (a user's `Fs` or comparator) killed
        // the worker and poisoned the state mutex; every later call, close included, panicked
        // on the lock, and callers waiting for the step hung. The panic is caught here (and
        // around the unlocked parts of each step), poisons the database with its message and
        // wakes every waiter.
        match panic::catch_unwind(AssertUnwindSafe(|| db.run_step(state))) {
            Ok(Ok((s, true))) => state = s,
            Ok(Ok((s, false))) => state = db.wait(s),
            Err(payload) => {
                let e = Error::from_panic(&*payload);
                let mut s = db.lock();
                s.bg_failures += 1;
                s.bg_error = Some(e.duplicate());
                db.poison(&mut s, e);
                if s.shutting_down {
                    return;
                }
                state = s;
            }
            Ok(Err(e)) => {
                // A failed flush or compaction removed its outputs and changed no version
                // (a manifest failure poisons the database in `log_and_apply`). Tell the
                // writers waiting for it, and retry when something changes instead of
                // spinning on a persistent error.
                let mut s = db.lock();
                s.bg_failures += 1;
                s.bg_error = Some(e.duplicate());
                db.cond.notify_all();
                if s.shutting_down {
                    return;
                }
                state = db.wait(s);
            }
        }
    }
}
