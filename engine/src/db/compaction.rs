//! Compaction: picking one (the pure picker in `version/picker.rs` decides), merging its
//! inputs into new tables of the output level while dropping what no reader can see, and
//! `compact_range`. The tables are written by `output.rs`, as a flush's are.
//!
//! Invariants: a file is in at most one running compaction (`State::compacting`), so the
//! picker never picks a file already being compacted; a compaction drops an entry only when
//! every snapshot sees something newer hide it, and a tombstone only when every snapshot sees
//! it and no level below the output may hold older data; merge operands every snapshot sees
//! alike are combined by the operator's `partial_merge` (`operand_runs.rs`), never fully
//! merged into a value (the full merge runs only in reads).

use crate::sync::{Arc, MutexGuard};
use std::cmp::Ordering;

use super::operand_runs::OperandRuns;
use super::tables::LevelIter;
use super::{DbInner, State};
use crate::error::{Error, Result};
use crate::iter::{fragment_all, Fragments, InternalIterator, MergingIterator};
use crate::key::{self, InternalComparator, Kind, RangeTombstone};
use crate::sync::atomic::Ordering as AtomicOrdering;
use crate::version::edit::VersionEdit;
use crate::version::picker::{self, Compaction, PickerOptions};
use crate::version::{self, FileMetadata, Version, NUM_LEVELS};

impl DbInner {
    /// The picker's options, taken from the database's.
    pub(super) fn picker_options(&self) -> PickerOptions {
        PickerOptions {
            l0_compaction_threshold: self.opts.l0_compaction_threshold,
            lbase_max_bytes: self.opts.lbase_max_bytes,
            level_multiplier: self.opts.level_multiplier,
        }
    }

    pub(super) fn pick_compaction(&self, state: &State) -> Option<Compaction> {
        picker::pick_compaction(
            &state.version,
            &self.picker_options(),
            &self.cmp,
            &state.compacting,
            &state.compact_pointer,
        )
    }

    /// Runs a compaction (a trivial move when its files overlap nothing below or each other)
    /// and installs its result.
    pub(super) fn run_compaction<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        c: Compaction,
    ) -> Result<MutexGuard<'a, State>> {
        let inputs: Vec<u64> = c.all_inputs().map(|f| f.num).collect();
        for &n in &inputs {
            assert!(state.compacting.insert(n), "file {n} picked while already being compacted");
        }
        if c.level != c.output_level {
            let last = &c.inputs[0][c.inputs[0].len() - 1];
            state.compact_pointer[c.level] = Some(last.largest_user().to_vec());
        }
        let trivial = self.is_trivial_move(&c);
        let result = if trivial {
            let mut edit = VersionEdit::default();
            for f in &c.inputs[0] {
                edit.deleted.insert((c.level, f.num));
                edit.added.push((c.output_level, FileMetadata::clone(f)));
            }
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
            assert!(state.compacting.remove(n), "file {n} stayed marked as compacting");
        }
        self.wake_all();
        let (edit, read, written) = match result {
            Ok(r) => r,
            Err(e @ Error::Panicked { .. }) => return Err(self.poison(&mut state, e)),
            Err(e) => return Err(e),
        };
        let outputs: Vec<u64> = edit.added.iter().map(|(_, f)| f.num).collect();
        let result = self.log_and_apply(&mut state, edit);
        for n in outputs {
            // A trivial move re-adds its input, which was never an output.
            assert!(
                state.pending_outputs.remove(&n) || trivial,
                "compaction output {n} was pending"
            );
        }
        result?;
        state.stats.compactions += 1;
        state.stats.compaction_bytes_read += read;
        state.stats.compaction_bytes_written += written;
        self.delete_obsolete_files(&mut state);
        self.wake_all();
        Ok(state)
    }

    /// True when the compaction can move its files down without rewriting them: all of them
    /// from one level, into another, overlapping nothing there or in between, and (L0's)
    /// not one another, so the output level stays sorted and non-overlapping. Like RocksDB's
    /// trivial moves, what the files hold moves as it is, shadowed versions included.
    fn is_trivial_move(&self, c: &Compaction) -> bool {
        if c.level == c.output_level
            || !c.inputs[1].is_empty()
            || c.between.iter().any(|fs| !fs.is_empty())
        {
            return false;
        }
        let mut files: Vec<&Arc<FileMetadata>> = c.inputs[0].iter().collect();
        files.sort_by(|a, b| self.cmp.compare_user(a.smallest_user(), b.smallest_user()));
        // Touching bounds count as overlap: an exclusive sentinel end is not worth the care.
        files.windows(2).all(|w| {
            self.cmp.compare_user(w[0].largest_user(), w[1].smallest_user()) == Ordering::Less
        })
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
        // Each sorted run of L0's inputs (`l0_runs`) and the files of each deeper level are one
        // source, read in key order, so the merge stays narrow however many files a level
        // gives. Each table is read ahead and leaves the block cache alone
        // (`Table::sequential_iter`).
        let mut by_level: Vec<Vec<Arc<FileMetadata>>> = vec![Vec::new(); NUM_LEVELS];
        for (level, f) in c.inputs_by_level() {
            let table = self.tables.get(f.num)?;
            tombstones.extend(table.range_tombstones().iter().cloned());
            read += f.size;
            by_level[level].push(f.clone());
        }
        let l0 = std::mem::take(&mut by_level[0]);
        let runs = version::l0_runs(&self.cmp, &l0).into_iter().chain(by_level);
        for mut files in runs.filter(|fs| !fs.is_empty()) {
            files.sort_by(|a, b| self.cmp.compare(&a.smallest, &b.smallest));
            let level = LevelIter::sequential(files, self.tables.clone(), self.cmp.clone());
            sources.push(Box::new(level));
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
        let mut keep = |ikey: &[u8]| -> bool {
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
        let mut runs =
            OperandRuns::new(self.opts.merge_operator.as_ref(), &self.cmp, smallest_snapshot);
        let (files, written) = self.write_tables_from(kept, |sink| {
            iter.first()?;
            while iter.valid() {
                if keep(iter.key()) {
                    runs.push(iter.key(), iter.value(), sink)?;
                }
                iter.next()?;
            }
            runs.finish(sink)
        })?;
        self.merge_operands_combined.fetch_add(runs.combined, AtomicOrdering::Relaxed);
        let mut edit = VersionEdit::default();
        for (level, f) in c.inputs_by_level() {
            edit.deleted.insert((level, f.num));
        }
        for f in files {
            edit.added.push((c.output_level, f));
        }
        Ok((edit, read, written))
    }

    /// Compacts everything overlapping `[start, end]` into the last level in one compaction,
    /// so each byte is rewritten once (level by level it was rewritten once per level).
    ///
    /// The range grows level by level with the files it takes (L0's until no other L0 file
    /// overlaps it): a file left out of a level overlaps none of the keys taken from above
    /// it, so every version left behind is newer than what moves below it. Data already
    /// only in the last level stays put.
    pub(super) fn compact_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        let mut state = self.lock();
        loop {
            Self::check_writable(&state)?;
            let mut inputs = Self::range_inputs(&self.cmp, &state.version, start, end);
            let Some(first) = inputs.iter().position(|fs| !fs.is_empty()) else { return Ok(()) };
            let last = NUM_LEVELS - 1;
            if first == last {
                return Ok(());
            }
            if inputs.iter().flatten().any(|f| state.compacting.contains(&f.num)) {
                state = self.wait(state);
                continue;
            }
            let output = std::mem::take(&mut inputs[last]);
            let between = inputs.drain(first + 1..last).collect();
            let c = Compaction {
                level: first,
                output_level: last,
                inputs: [std::mem::take(&mut inputs[first]), output],
                between,
            };
            drop(self.run_compaction(state, c)?);
            return Ok(());
        }
    }

    /// The files of each level a compaction of `[start, end]` into the last level takes:
    /// above the last level, every file overlapping the range, which grows with the files
    /// taken; in the last level only the files overlapping what moves into it (as level by
    /// level, a file there is rewritten only when data lands on it).
    fn range_inputs(
        cmp: &InternalComparator,
        version: &Version,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
    ) -> Vec<Vec<Arc<FileMetadata>>> {
        let (mut lo, mut hi) = (start.map(<[u8]>::to_vec), end.map(<[u8]>::to_vec));
        // The user keys of the files taken so far.
        let mut taken: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut out = Vec::with_capacity(NUM_LEVELS);
        for level in 0..NUM_LEVELS {
            let files = if level < NUM_LEVELS - 1 {
                version.overlapping(cmp, level, lo.as_deref(), hi.as_deref())
            } else if let Some((tlo, thi)) = &taken {
                version.overlapping(cmp, level, Some(tlo), Some(thi))
            } else {
                Vec::new()
            };
            if !files.is_empty() {
                let (flo, fhi) = picker::key_range(cmp, &files);
                if lo.as_deref().is_some_and(|l| cmp.compare_user(&flo, l) == Ordering::Less) {
                    lo = Some(flo.clone());
                }
                if hi.as_deref().is_some_and(|h| cmp.compare_user(&fhi, h) == Ordering::Greater) {
                    hi = Some(fhi.clone());
                }
                taken = Some(match taken {
                    None => (flo, fhi),
                    Some((tlo, thi)) => (
                        std::cmp::min_by(tlo, flo, |a, b| cmp.compare_user(a, b)),
                        std::cmp::max_by(thi, fhi, |a, b| cmp.compare_user(a, b)),
                    ),
                });
            }
            out.push(files);
        }
        out
    }
}
