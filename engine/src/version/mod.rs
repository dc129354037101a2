//! Versions: the set of SSTables that make up the LSM tree at one moment, level by level.
//!
//! A [`Version`] is immutable; a flush or compaction builds the next one by applying a
//! [`edit::VersionEdit`]. Readers hold an `Arc<Version>` for as long as they read, and a table
//! file is deleted only when no live version lists it.
//!
//! Invariants: L0 files are ordered newest first (by largest seqnum, then file number); in L1..L6
//! files are sorted by key and no two files of a level overlap in user keys.

pub mod edit;
pub mod manifest;
pub mod picker;

use crate::sync::Arc;
use std::cmp::Ordering;
use std::fmt;

use crate::key::{self, InternalComparator, Kind, SEQNUM_MAX};

/// Number of levels, L0 through L6.
pub const NUM_LEVELS: usize = 7;

/// One SSTable as the manifest records it.
#[derive(Clone, PartialEq, Eq)]
pub struct FileMetadata {
    pub num: u64,
    pub size: u64,
    /// Smallest internal key (a point key or a range tombstone start).
    pub smallest: Vec<u8>,
    /// Largest internal key; an exclusive range-tombstone sentinel when it ends a tombstone.
    pub largest: Vec<u8>,
    pub smallest_seq: u64,
    pub largest_seq: u64,
    /// True when the table holds range tombstones (readers load them eagerly).
    pub has_range_dels: bool,
}

impl fmt::Debug for FileMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:06}:[{}-{}]",
            self.num,
            key::parse(&self.smallest).map(|k| k.user_key).unwrap_or_default().escape_ascii(),
            key::parse(&self.largest).map(|k| k.user_key).unwrap_or_default().escape_ascii()
        )
    }
}

/// The internal key that ends a range tombstone at `end`: it sorts before every real entry of
/// `end`, and a file bound equal to it does not include `end` itself.
pub fn range_del_sentinel(end: &[u8]) -> Vec<u8> {
    key::encode(end, SEQNUM_MAX, Kind::RangeDelete)
}

impl FileMetadata {
    /// The smallest user key.
    pub fn smallest_user(&self) -> &[u8] {
        key::user_key(&self.smallest)
    }

    /// The largest user key (exclusive if [`FileMetadata::largest_is_exclusive`]).
    pub fn largest_user(&self) -> &[u8] {
        key::user_key(&self.largest)
    }

    /// True when the largest bound is a range-tombstone sentinel, which excludes its user key.
    pub fn largest_is_exclusive(&self) -> bool {
        key::trailer_of(&self.largest) == key::trailer(SEQNUM_MAX, Kind::RangeDelete as u8)
    }

    /// True when the file's key range may contain `user_key`.
    pub fn contains_user_key(&self, cmp: &InternalComparator, user_key: &[u8]) -> bool {
        cmp.compare_user(self.smallest_user(), user_key) != Ordering::Greater
            && self.below_largest(cmp, user_key)
    }

    fn below_largest(&self, cmp: &InternalComparator, user_key: &[u8]) -> bool {
        match cmp.compare_user(user_key, self.largest_user()) {
            Ordering::Less => true,
            Ordering::Equal => !self.largest_is_exclusive(),
            Ordering::Greater => false,
        }
    }

    /// True when the file overlaps the user-key range `[start, end]` (`None` = unbounded).
    pub fn overlaps(
        &self,
        cmp: &InternalComparator,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
    ) -> bool {
        let after_start = start.is_none_or(|s| self.below_largest(cmp, s));
        let before_end =
            end.is_none_or(|e| cmp.compare_user(self.smallest_user(), e) != Ordering::Greater);
        after_start && before_end
    }

    /// True when every key the file may hold lies in `[start, end)` (`None` = unbounded).
    pub fn within(
        &self,
        cmp: &InternalComparator,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
    ) -> bool {
        let starts_inside =
            start.is_none_or(|s| cmp.compare_user(self.smallest_user(), s) != Ordering::Less);
        let ends_inside = end.is_none_or(|e| match cmp.compare_user(self.largest_user(), e) {
            Ordering::Less => true,
            Ordering::Equal => self.largest_is_exclusive(),
            Ordering::Greater => false,
        });
        starts_inside && ends_inside
    }
}

/// The files of every level at one moment.
#[derive(Clone, Default)]
pub struct Version {
    pub levels: [Vec<Arc<FileMetadata>>; NUM_LEVELS],
    /// L0's files as sorted runs ([`l0_runs`]), set by [`Version::sort_levels`].
    l0_runs: Vec<Vec<Arc<FileMetadata>>>,
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_map();
        for (i, files) in self.levels.iter().enumerate() {
            if !files.is_empty() {
                l.entry(&format!("L{i}"), files);
            }
        }
        l.finish()
    }
}

impl Version {
    /// Total bytes in `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|f| f.size).sum()
    }

    /// Every file number in this version.
    pub fn file_nums(&self) -> impl Iterator<Item = u64> + '_ {
        self.levels.iter().flatten().map(|f| f.num)
    }

    /// Files of `level` overlapping `[start, end]`. For L0 the range first grows until no
    /// further L0 file overlaps it (so the result holds every L0 version of its keys); below,
    /// a contiguous run.
    pub fn overlapping(
        &self,
        cmp: &InternalComparator,
        level: usize,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
    ) -> Vec<Arc<FileMetadata>> {
        if level != 0 {
            return self.levels[level]
                .iter()
                .filter(|f| f.overlaps(cmp, start, end))
                .cloned()
                .collect();
        }
        // Invariant: an L0 range grows until no other L0 file overlaps it, so the result holds
        // every older version of every key it covers. Regression: tests/model.rs
        // regression_l0_compact_range_leaves_older_file.
        let mut lo = start.map(<[u8]>::to_vec);
        let mut hi = end.map(<[u8]>::to_vec);
        loop {
            let files: Vec<Arc<FileMetadata>> = self.levels[0]
                .iter()
                .filter(|f| f.overlaps(cmp, lo.as_deref(), hi.as_deref()))
                .cloned()
                .collect();
            let mut grew = false;
            for f in &files {
                if let Some(l) = &lo {
                    if cmp.compare_user(f.smallest_user(), l) == Ordering::Less {
                        lo = Some(f.smallest_user().to_vec());
                        grew = true;
                    }
                }
                if let Some(h) = &hi {
                    if cmp.compare_user(f.largest_user(), h) == Ordering::Greater {
                        hi = Some(f.largest_user().to_vec());
                        grew = true;
                    }
                }
            }
            if !grew {
                return files;
            }
        }
    }

    /// The one file of `level` (>= 1) whose range may contain `user_key`.
    pub fn file_for_key(
        &self,
        cmp: &InternalComparator,
        level: usize,
        user_key: &[u8],
    ) -> Option<&Arc<FileMetadata>> {
        debug_assert!(level > 0);
        let files = &self.levels[level];
        let i = files.partition_point(|f| !f.below_largest(cmp, user_key));
        files.get(i).filter(|f| f.contains_user_key(cmp, user_key))
    }

    /// Checks the level invariants; returns a description of the first violation.
    pub fn check_invariants(&self, cmp: &InternalComparator) -> Result<(), String> {
        for (level, files) in self.levels.iter().enumerate().skip(1) {
            for pair in files.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                let ord = cmp.compare_user(a.largest_user(), b.smallest_user());
                if ord == Ordering::Greater || (ord == Ordering::Equal && !a.largest_is_exclusive())
                {
                    return Err(format!("L{level}: {a:?} overlaps {b:?}"));
                }
            }
        }
        for f in self.levels.iter().flatten() {
            if cmp.compare(&f.smallest, &f.largest) == Ordering::Greater {
                return Err(format!("{f:?}: smallest > largest"));
            }
        }
        Ok(())
    }

    /// Sorts each level into its canonical order.
    pub fn sort_levels(&mut self, cmp: &InternalComparator) {
        self.levels[0].sort_by(|a, b| l0_order(a, b));
        for files in self.levels.iter_mut().skip(1) {
            files.sort_by(|a, b| cmp.compare(&a.smallest, &b.smallest));
        }
        self.l0_runs = l0_runs(cmp, &self.levels[0]);
    }

    /// L0's read amplification: the most L0 files whose ranges hold any one user key
    /// (touching bounds count), the number of its sorted runs. One flush split into several
    /// tables adds one, not one per table, so L0 is compacted (and writes stall) by sorted
    /// runs, as RocksDB's one-table flushes count.
    pub fn l0_depth(&self) -> usize {
        self.l0_runs.len()
    }

    /// L0's sorted runs ([`l0_runs`]).
    pub fn l0_runs(&self) -> &[Vec<Arc<FileMetadata>>] {
        &self.l0_runs
    }

    /// The L0 files whose ranges may hold `user_key`, newest first (L0's order): a binary
    /// search in each sorted run, so a point read costs the depth, not the file count.
    pub fn l0_files_for_key(
        &self,
        cmp: &InternalComparator,
        user_key: &[u8],
    ) -> smallvec::SmallVec<[&Arc<FileMetadata>; 16]> {
        let mut found: smallvec::SmallVec<[&Arc<FileMetadata>; 16]> = self
            .l0_runs
            .iter()
            .filter_map(|run| {
                let i = run.partition_point(|f| !f.below_largest(cmp, user_key));
                run.get(i).filter(|f| f.contains_user_key(cmp, user_key))
            })
            .collect();
        found.sort_by(|a, b| l0_order(a, b));
        found
    }
}

/// L0's order: newest (largest seqnum) first, ties by file number, newest first.
fn l0_order(a: &FileMetadata, b: &FileMetadata) -> Ordering {
    b.largest_seq.cmp(&a.largest_seq).then(b.num.cmp(&a.num))
}

/// `files` (L0's) split into sorted runs: in each run no two files overlap (touching bounds
/// count as overlap) and files are in key order, so a run reads as one `LevelIter` and an
/// iterator over L0 merges one source per run instead of one per file. Greedy by smallest
/// key: a file joins the first run whose last file ends before it starts. Every run that is
/// not free then holds the file's smallest key, so the run count is the depth: the most files
/// holding one key, the fewest runs possible.
pub fn l0_runs(
    cmp: &InternalComparator,
    files: &[Arc<FileMetadata>],
) -> Vec<Vec<Arc<FileMetadata>>> {
    let mut sorted: Vec<&Arc<FileMetadata>> = files.iter().collect();
    sorted.sort_by(|a, b| cmp.compare_user(a.smallest_user(), b.smallest_user()));
    let mut runs: Vec<Vec<Arc<FileMetadata>>> = Vec::new();
    for f in sorted {
        let free = runs.iter_mut().find(|run| {
            let last = run.last().expect("runs are never empty");
            cmp.compare_user(last.largest_user(), f.smallest_user()) == Ordering::Less
        });
        match free {
            Some(run) => run.push(f.clone()),
            None => runs.push(vec![f.clone()]),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comparator::Bytewise;
    use proptest::prelude::*;

    fn file(num: u64, lo: u8, hi: u8) -> Arc<FileMetadata> {
        Arc::new(FileMetadata {
            num,
            size: 1,
            smallest: key::encode(&[lo], 1, Kind::Set),
            largest: key::encode(&[hi], 1, Kind::Set),
            smallest_seq: 1,
            largest_seq: 1,
            has_range_dels: false,
        })
    }

    /// The depth counted the slow way: for each key, the files holding it.
    fn depth_by_keys(files: &[(u8, u8)]) -> usize {
        (0..=u8::MAX)
            .map(|k| files.iter().filter(|(lo, hi)| *lo <= k && k <= *hi).count())
            .max()
            .unwrap_or(0)
    }

    proptest! {
        /// `l0_runs` splits L0 into as many runs as the most files holding one key (the
        /// fewest possible), each in key order with no two files sharing a key, and loses or
        /// repeats no file; `l0_files_for_key` finds exactly the files holding a key.
        #[test]
        fn l0_runs_are_sorted_disjoint_and_as_few_as_the_depth(
            ranges in proptest::collection::vec((0u8..40, 0u8..8), 0..24)
        ) {
            let cmp = InternalComparator::new(Arc::new(Bytewise));
            let bounds: Vec<(u8, u8)> =
                ranges.iter().map(|&(lo, len)| (lo, lo.saturating_add(len))).collect();
            let files: Vec<Arc<FileMetadata>> = bounds
                .iter()
                .enumerate()
                .map(|(i, &(lo, hi))| file(i as u64 + 1, lo, hi))
                .collect();
            let depth = depth_by_keys(&bounds);
            let runs = l0_runs(&cmp, &files);
            prop_assert_eq!(runs.len(), depth);
            for run in &runs {
                for pair in run.windows(2) {
                    prop_assert!(pair[0].largest_user() < pair[1].smallest_user(), "{:?}", run);
                }
            }
            let mut nums: Vec<u64> = runs.iter().flatten().map(|f| f.num).collect();
            nums.sort_unstable();
            prop_assert_eq!(nums, (1..=files.len() as u64).collect::<Vec<_>>());
            let mut version = Version::default();
            version.levels[0] = files.clone();
            version.sort_levels(&cmp);
            prop_assert_eq!(version.l0_depth(), depth);
            for k in 0..50u8 {
                let found: Vec<u64> =
                    version.l0_files_for_key(&cmp, &[k]).iter().map(|f| f.num).collect();
                let want: Vec<u64> = version.levels[0]
                    .iter()
                    .filter(|f| f.smallest_user()[0] <= k && k <= f.largest_user()[0])
                    .map(|f| f.num)
                    .collect();
                prop_assert_eq!(found, want);
            }
        }
    }
}
