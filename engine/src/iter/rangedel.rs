//! Range-tombstone fragmentation: overlapping `[start, end)#seq` tombstones become sorted,
//! non-overlapping fragments, so "which tombstones cover key k" is one binary search.
//!
//! Rule used by every read path: a point entry `k#s` is deleted by range tombstones iff
//! [`Fragments::max_covering_seq`]`(k) > s` (a tombstone deletes what was written before it).

use std::cmp::Ordering;
use std::fmt;

use crate::key::{InternalComparator, RangeTombstone};

/// Splits `tombstones` (overlapping, any order) at each other's boundaries.
///
/// Returns one tombstone per (fragment, distinct seq), sorted by start ascending then seq
/// descending; fragments never partially overlap: two outputs have equal `[start, end)` or
/// disjoint ones. Empty tombstones (`start >= end`) delete nothing and are dropped. This is
/// the form a flush or compaction writes into an SSTable's range-deletion block.
///
/// Cost: O(n log n + n * f) for n tombstones and f fragments; tombstones are few.
pub fn fragment_all(
    tombstones: &[RangeTombstone],
    cmp: &InternalComparator,
) -> Vec<RangeTombstone> {
    let (bounds, seqs) = sweep(tombstones.iter(), cmp);
    let mut out = Vec::new();
    for (f, mut fs) in seqs.into_iter().enumerate() {
        fs.sort_unstable_by(|a, b| b.cmp(a));
        fs.dedup();
        for seq in fs {
            out.push(RangeTombstone { start: bounds[f].clone(), end: bounds[f + 1].clone(), seq });
        }
    }
    out
}

/// The boundaries of all non-empty tombstones (sorted, distinct) and, for each fragment
/// `[bounds[i], bounds[i + 1])`, the seqnums of the tombstones covering it.
fn sweep<'a>(
    tombstones: impl Iterator<Item = &'a RangeTombstone> + Clone,
    cmp: &InternalComparator,
) -> (Vec<Vec<u8>>, Vec<Vec<u64>>) {
    let live = tombstones.filter(|t| cmp.compare_user(&t.start, &t.end) == Ordering::Less);
    let mut bounds: Vec<Vec<u8>> =
        live.clone().flat_map(|t| [t.start.clone(), t.end.clone()]).collect();
    bounds.sort_by(|a, b| cmp.compare_user(a, b));
    bounds.dedup_by(|a, b| cmp.compare_user(a, b) == Ordering::Equal);
    let mut seqs = vec![Vec::new(); bounds.len().saturating_sub(1)];
    let index = |k: &[u8]| {
        bounds
            .binary_search_by(|b| cmp.compare_user(b, k))
            .expect("every tombstone boundary is in the boundary list")
    };
    for t in live {
        for fs in &mut seqs[index(&t.start)..index(&t.end)] {
            fs.push(t.seq);
        }
    }
    (bounds, seqs)
}

/// The range tombstones visible at one snapshot, fragmented, each fragment carrying the
/// largest covering seqnum. Built once per read (iterator or get).
#[derive(Clone)]
pub struct Fragments {
    /// Sorted, non-overlapping, non-empty; `seq` is the max covering seqnum. Adjacent
    /// fragments with the same seq are coalesced.
    frags: Vec<RangeTombstone>,
    cmp: InternalComparator,
}

impl fmt::Debug for Fragments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.frags).finish()
    }
}

impl Fragments {
    /// Fragments the tombstones with `seq <= visible_seq` (those a snapshot at
    /// `visible_seq` sees).
    pub fn new(
        tombstones: &[RangeTombstone],
        visible_seq: u64,
        cmp: &InternalComparator,
    ) -> Fragments {
        let (bounds, seqs) = sweep(tombstones.iter().filter(|t| t.seq <= visible_seq), cmp);
        let mut frags: Vec<RangeTombstone> = Vec::new();
        for (f, fs) in seqs.into_iter().enumerate() {
            let Some(seq) = fs.into_iter().max() else { continue };
            if let Some(prev) = frags.last_mut() {
                if prev.seq == seq && prev.end == bounds[f] {
                    prev.end = bounds[f + 1].clone();
                    continue;
                }
            }
            frags.push(RangeTombstone {
                start: bounds[f].clone(),
                end: bounds[f + 1].clone(),
                seq,
            });
        }
        Fragments { frags, cmp: cmp.clone() }
    }

    /// No tombstones at all.
    pub fn empty(cmp: &InternalComparator) -> Fragments {
        Fragments { frags: Vec::new(), cmp: cmp.clone() }
    }

    /// True when nothing is deleted by range.
    pub fn is_empty(&self) -> bool {
        self.frags.is_empty()
    }

    /// The sorted, non-overlapping fragments; each `seq` is the largest covering seqnum.
    pub fn fragments(&self) -> &[RangeTombstone] {
        &self.frags
    }

    /// The largest seqnum of a visible tombstone covering `user_key`, if any.
    pub fn max_covering_seq(&self, user_key: &[u8]) -> Option<u64> {
        let after = self
            .frags
            .partition_point(|f| self.cmp.compare_user(&f.start, user_key) != Ordering::Greater);
        let f = &self.frags[after.checked_sub(1)?];
        (self.cmp.compare_user(user_key, &f.end) == Ordering::Less).then_some(f.seq)
    }

    /// True when the point entry `user_key#seq` is deleted by a range tombstone.
    pub fn deletes(&self, user_key: &[u8], seq: u64) -> bool {
        self.max_covering_seq(user_key).is_some_and(|t| t > seq)
    }
}
