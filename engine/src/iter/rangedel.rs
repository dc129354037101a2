//! Range-tombstone fragmentation: overlapping `[start, end)#seq` tombstones become sorted,
//! non-overlapping fragments, so "which tombstones cover key k" is one binary search.
//!
//! Rule used by every read path: a point entry `k#s` is deleted by range tombstones iff
//! [`Fragments::max_covering_seq`]`(k) > s` (a tombstone deletes what was written before it).

use std::cmp::Ordering;
use std::fmt;

use crate::key::{InternalComparator, RangeTombstone};
use crate::sync::Arc;

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
    TombstoneSet::new(tombstones, cmp).tombstones(u64::MAX).collect()
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

/// One source's range tombstones (a table's, a memtable's, a version's), fragmented once:
/// sorted, non-overlapping fragments, each with every seqnum covering it, newest first. A
/// table builds its set when it opens, a memtable caches its own until its next range delete
/// and the DB caches the current version's, so a read asks which tombstone covers a key at
/// its snapshot with one binary search per set instead of fragmenting per read.
pub struct TombstoneSet {
    /// `(start, end, seqs descending)`, sorted by start, disjoint, non-empty.
    frags: Vec<(Vec<u8>, Vec<u8>, Vec<u64>)>,
    cmp: InternalComparator,
}

impl fmt::Debug for TombstoneSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.frags).finish()
    }
}

impl TombstoneSet {
    /// Fragments `tombstones` (overlapping, any order), keeping every seqnum.
    pub fn new(tombstones: &[RangeTombstone], cmp: &InternalComparator) -> TombstoneSet {
        let (mut bounds, seqs) = sweep(tombstones.iter(), cmp);
        let mut frags = Vec::new();
        for (f, mut fs) in seqs.into_iter().enumerate() {
            if fs.is_empty() {
                continue;
            }
            fs.sort_unstable_by(|a, b| b.cmp(a));
            fs.dedup();
            let end = bounds[f + 1].clone();
            frags.push((std::mem::take(&mut bounds[f]), end, fs));
        }
        TombstoneSet { frags, cmp: cmp.clone() }
    }

    /// True when the source has no (non-empty) range tombstone.
    pub fn is_empty(&self) -> bool {
        self.frags.is_empty()
    }

    /// The largest seqnum at most `visible_seq` of a tombstone covering `user_key`.
    pub fn max_covering_at(&self, user_key: &[u8], visible_seq: u64) -> Option<u64> {
        let after = self
            .frags
            .partition_point(|f| self.cmp.compare_user(&f.0, user_key) != Ordering::Greater);
        let (_, end, seqs) = &self.frags[after.checked_sub(1)?];
        if self.cmp.compare_user(user_key, end) != Ordering::Less {
            return None;
        }
        seqs.iter().copied().find(|&s| s <= visible_seq)
    }

    /// Every fragment once per seqnum, at most `visible_seq`.
    fn tombstones(&self, visible_seq: u64) -> impl Iterator<Item = RangeTombstone> + '_ {
        self.frags.iter().flat_map(move |(start, end, seqs)| {
            seqs.iter().filter(move |&&s| s <= visible_seq).map(move |&seq| RangeTombstone {
                start: start.clone(),
                end: end.clone(),
                seq,
            })
        })
    }
}

/// The range tombstones one read sees: layers of [`TombstoneSet`]s, each read at its own
/// visible seqnum (an indexed batch's own tombstones sit above the view the database's are
/// capped at). Built per read from cached sets; queried per key.
#[derive(Clone)]
pub struct Fragments {
    layers: Vec<(Arc<TombstoneSet>, u64)>,
    cmp: InternalComparator,
}

impl fmt::Debug for Fragments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.layers.iter().map(|(set, seq)| (seq, set))).finish()
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
        let set = TombstoneSet::new(tombstones, cmp);
        Fragments::layered(vec![(Arc::new(set), visible_seq)], cmp)
    }

    /// The tombstones of `layers`, each set read at its own visible seqnum; empty sets are
    /// left out.
    pub fn layered(
        mut layers: Vec<(Arc<TombstoneSet>, u64)>,
        cmp: &InternalComparator,
    ) -> Fragments {
        layers.retain(|(set, _)| !set.is_empty());
        Fragments { layers, cmp: cmp.clone() }
    }

    /// No tombstones at all.
    pub fn empty(cmp: &InternalComparator) -> Fragments {
        Fragments { layers: Vec::new(), cmp: cmp.clone() }
    }

    /// True when nothing is deleted by range.
    pub fn is_empty(&self) -> bool {
        self.layers.iter().all(|(set, seq)| set.tombstones(*seq).next().is_none())
    }

    /// The visible tombstones as sorted, non-overlapping fragments, each `seq` the largest
    /// covering seqnum, adjacent fragments of one seq coalesced (computed, for tests and
    /// display).
    pub fn fragments(&self) -> Vec<RangeTombstone> {
        let visible: Vec<RangeTombstone> =
            self.layers.iter().flat_map(|(set, seq)| set.tombstones(*seq)).collect();
        let (bounds, seqs) = sweep(visible.iter(), &self.cmp);
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
        frags
    }

    /// The largest seqnum of a visible tombstone covering `user_key`, if any.
    pub fn max_covering_seq(&self, user_key: &[u8]) -> Option<u64> {
        self.layers.iter().filter_map(|(set, seq)| set.max_covering_at(user_key, *seq)).max()
    }

    /// True when the point entry `user_key#seq` is deleted by a range tombstone.
    pub fn deletes(&self, user_key: &[u8], seq: u64) -> bool {
        self.max_covering_seq(user_key).is_some_and(|t| t > seq)
    }
}
