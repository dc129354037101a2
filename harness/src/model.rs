//! The reference model: an MVCC key-value map, simple enough to be obviously right, that the
//! runner compares Cobble against (SEMANTICS.md is its specification).
//!
//! Representation: the log of every write, the write with seqnum `s` at `log[s - 1]`
//! (seqnums are the model's own, starting at 1, contiguous); per key the seqnums of its point
//! writes; the seqnums of range deletes. A read at seqnum `s` looks only at writes `<= s`.
//! Nothing is ever compacted away: reads walk the versions. A point read checks every range
//! delete; a scan finds each key's newest covering range delete in one sweep over the range
//! deletes in key order (`range_floors`), so a scan costs O((keys + ranges) log ranges), not
//! their product.

use crate::merge_ops::MergeKind;
use crate::ops::Op;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::ops::Bound;

/// One write, with its value expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    /// Behaves like `Delete` (the generator only makes valid uses).
    SingleDelete {
        key: Vec<u8>,
    },
    Merge {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Deletes `[start, end)`.
    DeleteRange {
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

impl Write {
    /// The write an op performs (direct or added to a batch), or `None` for other ops.
    pub fn from_op(op: &Op) -> Option<Write> {
        Some(match op {
            Op::Put { key, value, .. } | Op::BatchPut { key, value, .. } => {
                Write::Put { key: key.clone(), value: value.expand() }
            }
            Op::Delete { key, .. } | Op::BatchDelete { key, .. } => {
                Write::Delete { key: key.clone() }
            }
            Op::SingleDelete { key, .. } | Op::BatchSingleDelete { key, .. } => {
                Write::SingleDelete { key: key.clone() }
            }
            Op::Merge { key, value, .. } | Op::BatchMerge { key, value, .. } => {
                Write::Merge { key: key.clone(), value: value.expand() }
            }
            Op::DeleteRange { start, end, .. } | Op::BatchDeleteRange { start, end, .. } => {
                Write::DeleteRange { start: start.clone(), end: end.clone() }
            }
            _ => return None,
        })
    }

    /// Checks the write the way the engine must: a range with `start > end` is refused.
    pub fn validate(&self) -> Result<(), ModelError> {
        match self {
            Write::DeleteRange { start, end } if start > end => {
                Err(ModelError::InvalidArgument("delete_range: start > end".to_string()))
            }
            _ => Ok(()),
        }
    }

    /// The key of a point write; `None` for a range delete.
    pub fn point_key(&self) -> Option<&[u8]> {
        match self {
            Write::Put { key, .. }
            | Write::Delete { key }
            | Write::SingleDelete { key }
            | Write::Merge { key, .. } => Some(key),
            Write::DeleteRange { .. } => None,
        }
    }
}

/// The writes an ingestion of external files amounts to, as one commit: the files in key
/// order, each contributing its deleted ranges (the union of its non-empty range deletes,
/// overlapping or touching ranges merged, in key order) and then its point writes in key order
/// (a single_delete as a delete). So a file's range deletes never hide its own points.
///
/// Refused (`InvalidArgument`), as the engine must: a range delete with `start > end`, a file
/// with a repeated point key or no entry at all, and two files whose key spans meet (a span
/// runs from the smallest point key or range start to the largest point key, inclusive, or
/// range end, exclusive).
pub fn ingest_writes(files: &[Vec<Write>]) -> Result<Vec<Write>, ModelError> {
    let refuse = |why: &str| Err(ModelError::InvalidArgument(format!("ingest: {why}")));
    struct File {
        ranges: Vec<(Vec<u8>, Vec<u8>)>,
        points: Vec<Write>,
        first: Vec<u8>,
        /// The last key in the span, and whether the span includes it.
        last: (Vec<u8>, bool),
    }
    let mut out_files = Vec::new();
    for writes in files {
        let mut ranges = Vec::new();
        let mut points: BTreeMap<Vec<u8>, Write> = BTreeMap::new();
        for w in writes {
            w.validate()?;
            match w {
                Write::DeleteRange { start, end } if start < end => {
                    ranges.push((start.clone(), end.clone()))
                }
                Write::DeleteRange { .. } => {}
                Write::SingleDelete { key } => {
                    if points.insert(key.clone(), Write::Delete { key: key.clone() }).is_some() {
                        return refuse("a file holds one key twice");
                    }
                }
                w => {
                    let key = w.point_key().expect("a point write").to_vec();
                    if points.insert(key, w.clone()).is_some() {
                        return refuse("a file holds one key twice");
                    }
                }
            }
        }
        ranges.sort();
        let mut union: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (start, end) in ranges {
            match union.last_mut() {
                Some(last) if start <= last.1 => {
                    if end > last.1 {
                        last.1 = end;
                    }
                }
                _ => union.push((start, end)),
            }
        }
        let first_point = points.keys().next().cloned();
        let first = match (first_point, union.first()) {
            (Some(p), Some(r)) => p.min(r.0.clone()),
            (Some(p), None) => p,
            (None, Some(r)) => r.0.clone(),
            (None, None) => return refuse("a file holds no entry"),
        };
        let last_point = points.keys().next_back().map(|k| (k.clone(), true));
        let last_range = union.last().map(|r| (r.1.clone(), false));
        let last = match (last_point, last_range) {
            // A point at a range's (exclusive) end is still in the span.
            (Some(p), Some(r)) => {
                if p.0 >= r.0 {
                    p
                } else {
                    r
                }
            }
            (Some(p), None) => p,
            (None, Some(r)) => r,
            (None, None) => unreachable!("refused above"),
        };
        out_files.push(File { ranges: union, points: points.into_values().collect(), first, last });
    }
    out_files.sort_by(|a, b| a.first.cmp(&b.first));
    for pair in out_files.windows(2) {
        let (last, inclusive) = &pair[0].last;
        if last > &pair[1].first || (last == &pair[1].first && *inclusive) {
            return refuse("two files overlap");
        }
    }
    let mut out = Vec::new();
    for f in out_files {
        out.extend(f.ranges.into_iter().map(|(start, end)| Write::DeleteRange { start, end }));
        out.extend(f.points);
    }
    Ok(out)
}

/// A write the model (and so the engine) refuses; nothing was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    InvalidArgument(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
        }
    }
}

impl std::error::Error for ModelError {}

/// The MVCC reference model.
#[derive(Debug, Clone)]
pub struct Model {
    merge: MergeKind,
    /// `log[s - 1]` is the write with seqnum `s`.
    log: Vec<Write>,
    /// The last seqnum of each commit (a single write, or a whole batch), ascending. Crashes
    /// may lose a suffix of commits, never part of one.
    commit_ends: Vec<u64>,
    /// Per key, the seqnums of its point writes, ascending.
    points: BTreeMap<Vec<u8>, Vec<u64>>,
    /// Seqnums of range deletes, ascending.
    ranges: Vec<u64>,
}

impl Default for Model {
    fn default() -> Model {
        Model::new()
    }
}

impl Model {
    /// An empty model with the default merge operator, `string_append` (`,`).
    pub fn new() -> Model {
        Model::with_merge(MergeKind::default())
    }

    /// An empty model merging as `merge` says (its own definition, never the engine's code).
    pub fn with_merge(merge: MergeKind) -> Model {
        Model {
            merge,
            log: Vec::new(),
            commit_ends: Vec::new(),
            points: BTreeMap::new(),
            ranges: Vec::new(),
        }
    }

    /// The seqnum of the newest write; 0 when there is none.
    pub fn last_seq(&self) -> u64 {
        self.log.len() as u64
    }

    /// A snapshot is just the seqnum it reads at: every write up to the newest one.
    pub fn snapshot(&self) -> u64 {
        self.last_seq()
    }

    /// Applies one write as its own commit, returning its seqnum. A refused write changes
    /// nothing and uses no seqnum. A `delete_range` with `start == end` is accepted (it uses a
    /// seqnum and covers nothing).
    pub fn apply(&mut self, write: Write) -> Result<u64, ModelError> {
        self.apply_batch(vec![write]).map(|r| r.expect("one write").1)
    }

    /// Applies a batch atomically: the writes get contiguous seqnums in order, each seeing the
    /// ones before it. Returns the first and last seqnum, or `None` for an empty batch (which
    /// uses none). If any write is refused, nothing is applied.
    pub fn apply_batch(&mut self, writes: Vec<Write>) -> Result<Option<(u64, u64)>, ModelError> {
        for w in &writes {
            w.validate()?;
        }
        if writes.is_empty() {
            return Ok(None);
        }
        let first = self.last_seq() + 1;
        for w in writes {
            self.log.push(w);
            let seq = self.last_seq();
            self.index(seq);
        }
        let last = self.last_seq();
        self.commit_ends.push(last);
        Ok(Some((first, last)))
    }

    fn index(&mut self, seq: u64) {
        match self.log[seq as usize - 1].point_key() {
            Some(key) => self.points.entry(key.to_vec()).or_default().push(seq),
            None => self.ranges.push(seq),
        }
    }

    fn write(&self, seq: u64) -> &Write {
        &self.log[seq as usize - 1]
    }

    /// The value of `key` now.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get_at(key, self.last_seq())
    }

    /// The value of `key` as of seqnum `seq` (a snapshot).
    pub fn get_at(&self, key: &[u8], seq: u64) -> Option<Vec<u8>> {
        self.get_with(key, seq, &[])
    }

    /// The value of `key` with `pending` (an uncommitted batch's writes, in order) applied
    /// over the state at `seq`: what a read right after committing them would give.
    pub fn get_with(&self, key: &[u8], seq: u64, pending: &[Write]) -> Option<Vec<u8>> {
        let versions = self.points.get(key).map_or(&[][..], Vec::as_slice);
        self.resolve(key, versions, seq, pending, || self.range_floor(key, seq))
    }

    /// [`Model::get_with`] of `key`, whose point writes are `versions`, with `floor` giving
    /// [`Model::range_floor`] when the committed versions are needed.
    fn resolve(
        &self,
        key: &[u8],
        versions: &[u64],
        seq: u64,
        pending: &[Write],
        floor: impl FnOnce() -> u64,
    ) -> Option<Vec<u8>> {
        let mut operands: Vec<&[u8]> = Vec::new();
        let mut base: Option<&[u8]> = None;
        let mut ended = false;
        for w in pending.iter().rev() {
            match w {
                Write::Put { key: k, value } if k.as_slice() == key => {
                    base = Some(value);
                    ended = true;
                }
                Write::Delete { key: k } | Write::SingleDelete { key: k }
                    if k.as_slice() == key =>
                {
                    ended = true;
                }
                Write::Merge { key: k, value } if k.as_slice() == key => operands.push(value),
                Write::DeleteRange { start, end } => {
                    ended = start.as_slice() <= key && key < end.as_slice();
                }
                _ => {}
            }
            if ended {
                break;
            }
        }
        if !ended {
            let (b, older) = self.stack_above(versions, seq, floor());
            base = b;
            operands.extend(older);
        }
        if operands.is_empty() {
            return base.map(<[u8]>::to_vec);
        }
        operands.reverse();
        Some(self.merge.model_merge(base, &operands))
    }

    /// The seqnum of the newest range delete at or before `seq` that covers `key` (0: none):
    /// the versions of `key` older than it are deleted.
    fn range_floor(&self, key: &[u8], seq: u64) -> u64 {
        self.ranges
            .iter()
            .rev()
            .copied()
            .filter(|&s| s <= seq)
            .find(|&s| {
                let (start, end) = self.range(s);
                start <= key && key < end
            })
            .unwrap_or(0)
    }

    /// [`Model::range_floor`] of each of `keys` (ascending), in one sweep: the range deletes
    /// at or before `seq`, sorted by start, enter the active set when the sweep reaches their
    /// start and leave it at their end; a key's floor is the newest active one.
    fn range_floors<'k>(
        &self,
        seq: u64,
        keys: impl ExactSizeIterator<Item = &'k [u8]>,
    ) -> Vec<u64> {
        let visible = &self.ranges[..self.ranges.partition_point(|&s| s <= seq)];
        let mut by_start: Vec<(&[u8], &[u8], u64)> = visible
            .iter()
            .map(|&s| {
                let (start, end) = self.range(s);
                (start, end, s)
            })
            .filter(|(start, end, _)| start < end)
            .collect();
        by_start.sort_by(|a, b| a.0.cmp(b.0));
        let mut entering = by_start.into_iter().peekable();
        let mut active: BTreeSet<u64> = BTreeSet::new();
        let mut leaving: BinaryHeap<Reverse<(&[u8], u64)>> = BinaryHeap::new();
        let mut floors = Vec::with_capacity(keys.len());
        for key in keys {
            while let Some((_, end, s)) = entering.next_if(|(start, _, _)| *start <= key) {
                active.insert(s);
                leaving.push(Reverse((end, s)));
            }
            while let Some(&Reverse((end, s))) = leaving.peek() {
                if end > key {
                    break;
                }
                leaving.pop();
                active.remove(&s);
            }
            floors.push(active.last().copied().unwrap_or(0));
        }
        floors
    }

    fn range(&self, seq: u64) -> (&[u8], &[u8]) {
        match self.write(seq) {
            Write::DeleteRange { start, end } => (start, end),
            _ => unreachable!("ranges holds only range deletes"),
        }
    }

    /// What decides a key whose point writes are `versions` as of `seq`, given its
    /// [`Model::range_floor`]: the newest value not deleted (if any), and the merge operands
    /// above it, newest first.
    fn stack_above(
        &self,
        versions: &[u64],
        seq: u64,
        range_floor: u64,
    ) -> (Option<&[u8]>, Vec<&[u8]>) {
        let mut operands: Vec<&[u8]> = Vec::new();
        let mut base: Option<&[u8]> = None;
        for &s in versions.iter().rev().filter(|&&s| s <= seq) {
            if s < range_floor {
                break;
            }
            match self.write(s) {
                Write::Put { value, .. } => {
                    base = Some(value);
                    break;
                }
                Write::Delete { .. } | Write::SingleDelete { .. } => break,
                Write::Merge { value, .. } => operands.push(value),
                Write::DeleteRange { .. } => unreachable!("points holds only point writes"),
            }
        }
        (base, operands)
    }

    /// The visible pairs with `lower <= key < upper` (each bound optional) as of `seq`, in key
    /// order. Empty when `lower > upper`.
    pub fn scan(
        &self,
        seq: u64,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.scan_with(seq, lower, upper, &[])
    }

    /// [`Model::scan`] with `pending` applied over the state at `seq` (see
    /// [`Model::get_with`]).
    pub fn scan_with(
        &self,
        seq: u64,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        pending: &[Write],
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        if lower.zip(upper).is_some_and(|(l, u)| l > u) {
            return Vec::new();
        }
        let lo = lower.map_or(Bound::Unbounded, Bound::Included);
        let hi = upper.map_or(Bound::Unbounded, Bound::Excluded);
        // Each key in bounds, with its point writes (none for a key only `pending` writes).
        let mut keys: BTreeMap<&[u8], &[u64]> = self
            .points
            .range::<[u8], _>((lo, hi))
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        for k in pending.iter().filter_map(Write::point_key) {
            if lower.is_none_or(|l| l <= k) && upper.is_none_or(|u| k < u) {
                keys.entry(k).or_insert(&[]);
            }
        }
        let floors = self.range_floors(seq, keys.keys().copied());
        keys.into_iter()
            .zip(floors)
            .filter_map(|((k, versions), floor)| {
                self.resolve(k, versions, seq, pending, || floor).map(|v| (k.to_vec(), v))
            })
            .collect()
    }

    /// [`Model::scan`] keeping only the keys whose [`key_prefix`] is `prefix` when given (an
    /// iterator pinned to a prefix), with `pending` applied as [`Model::scan_with`] does (an
    /// iterator over an uncommitted batch).
    pub fn scan_prefix(
        &self,
        seq: u64,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        prefix: Option<&[u8]>,
        pending: &[Write],
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v = match pending {
            [] => self.scan(seq, lower, upper),
            _ => self.scan_with(seq, lower, upper, pending),
        };
        if let Some(p) = prefix {
            v.retain(|(k, _)| key_prefix(k) == Some(p));
        }
        v
    }

    /// [`Model::scan`] in descending key order.
    pub fn scan_rev(
        &self,
        seq: u64,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v = self.scan(seq, lower, upper);
        v.reverse();
        v
    }

    /// The whole visible map after the write with seqnum `seq` (0: empty).
    pub fn state_at(&self, seq: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.scan(seq, None, None).into_iter().collect()
    }

    /// True when `seq` ends a commit (or is 0): a crash may keep exactly the writes up to it.
    pub fn is_commit_point(&self, seq: u64) -> bool {
        seq == 0 || self.commit_ends.binary_search(&seq).is_ok()
    }

    /// Every commit point from `from` (inclusive) on, ascending; 0 is a commit point.
    pub fn commit_points_from(&self, from: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (from == 0).then_some(0).into_iter().collect();
        v.extend(self.commit_ends.iter().copied().filter(|&s| s >= from.max(1)));
        v
    }

    /// The writes after `seq`, with their seqnums, grouped by commit (a batch stays whole), for
    /// re-applying writes a crash lost. `seq` must be a commit point.
    pub fn commits_after(&self, seq: u64) -> Vec<Vec<(u64, &Write)>> {
        assert!(self.is_commit_point(seq), "seqnum {seq} is inside a batch");
        let mut groups = Vec::new();
        let mut start = seq + 1;
        for &end in self.commit_ends.iter().filter(|&&e| e > seq) {
            groups.push((start..=end).map(|s| (s, self.write(s))).collect());
            start = end + 1;
        }
        groups
    }

    /// The writes after `seq`, with their seqnums, in order.
    pub fn writes_after(&self, seq: u64) -> Vec<(u64, &Write)> {
        (seq + 1..=self.last_seq()).map(|s| (s, self.write(s))).collect()
    }

    /// Forgets every write after `seq`, as a crash that lost them would; the next write gets
    /// `seq + 1`. `seq` must be a commit point: batches are atomic.
    pub fn truncate_to(&mut self, seq: u64) {
        assert!(seq <= self.last_seq(), "truncate_to({seq}) past the last seqnum");
        assert!(self.is_commit_point(seq), "truncate_to({seq}) would split a batch");
        self.log.truncate(seq as usize);
        self.commit_ends.retain(|&e| e <= seq);
        self.ranges.retain(|&s| s <= seq);
        self.points.retain(|_, v| {
            v.retain(|&s| s <= seq);
            !v.is_empty()
        });
    }
}

/// The prefix of a generated key: the bytes before its first `@` (`None` without one). The
/// model's own definition, written apart from the engine's `DelimiterPrefix`.
pub fn key_prefix(key: &[u8]) -> Option<&[u8]> {
    let at = key.iter().position(|&b| b == b'@')?;
    Some(&key[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Write {
        Write::Put { key: k.into(), value: v.into() }
    }
    fn del(k: &str) -> Write {
        Write::Delete { key: k.into() }
    }
    fn sdel(k: &str) -> Write {
        Write::SingleDelete { key: k.into() }
    }
    fn merge(k: &str, v: &str) -> Write {
        Write::Merge { key: k.into(), value: v.into() }
    }
    fn range(s: &str, e: &str) -> Write {
        Write::DeleteRange { start: s.into(), end: e.into() }
    }
    fn get(m: &Model, k: &str) -> Option<String> {
        m.get(k.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }
    fn model(writes: Vec<Write>) -> Model {
        let mut m = Model::new();
        for w in writes {
            m.apply(w).unwrap();
        }
        m
    }
    fn pairs(v: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| {
                (String::from_utf8(k.clone()).unwrap(), String::from_utf8(v.clone()).unwrap())
            })
            .collect()
    }

    #[test]
    fn put_get_and_empty_value_is_a_value() {
        let m = model(vec![put("a", "1"), put("a", "2"), put("e", "")]);
        assert_eq!(get(&m, "a").as_deref(), Some("2"));
        assert_eq!(get(&m, "e").as_deref(), Some(""));
        assert_eq!(get(&m, "x"), None);
        assert_eq!(m.last_seq(), 3);
    }

    #[test]
    fn delete_hides_every_older_version() {
        let m = model(vec![put("a", "1"), put("a", "2"), del("a")]);
        assert_eq!(get(&m, "a"), None);
        let m = model(vec![put("a", "1"), del("a"), put("a", "3")]);
        assert_eq!(get(&m, "a").as_deref(), Some("3"));
    }

    #[test]
    fn single_delete_acts_like_delete() {
        let m = model(vec![put("a", "1"), sdel("a"), put("b", "2")]);
        assert_eq!(get(&m, "a"), None);
        let m = model(vec![sdel("a"), put("a", "1")]);
        assert_eq!(get(&m, "a").as_deref(), Some("1"));
    }

    #[test]
    fn merge_rules() {
        // No existing value: just the operands, oldest first.
        assert_eq!(
            get(&model(vec![merge("k", "x"), merge("k", "y")]), "k").as_deref(),
            Some("x,y")
        );
        // Onto a put.
        let m = model(vec![put("k", "a"), merge("k", "b"), merge("k", "c")]);
        assert_eq!(get(&m, "k").as_deref(), Some("a,b,c"));
        // An empty existing value is a value.
        assert_eq!(get(&model(vec![put("k", ""), merge("k", "x")]), "k").as_deref(), Some(",x"));
        // After any delete the merge starts from no value.
        for d in [del("k"), sdel("k"), range("a", "z")] {
            let m = model(vec![put("k", "a"), merge("k", "b"), d.clone(), merge("k", "x")]);
            assert_eq!(get(&m, "k").as_deref(), Some("x"), "after {d:?}");
        }
        // A put after merges replaces them.
        let m = model(vec![merge("k", "a"), put("k", "p"), merge("k", "b")]);
        assert_eq!(get(&m, "k").as_deref(), Some("p,b"));
    }

    #[test]
    fn delete_range_bounds() {
        let mut m = model(vec![put("a", "1"), put("b", "2"), put("c", "3"), put("d", "4")]);
        m.apply(range("b", "d")).unwrap();
        let all = pairs(&m.scan(m.last_seq(), None, None));
        assert_eq!(all, vec![("a".into(), "1".into()), ("d".into(), "4".into())], "end exclusive");
        // start == end: a no-op that uses a seqnum.
        let seq = m.apply(range("a", "a")).unwrap();
        assert_eq!(seq, 6);
        assert_eq!(get(&m, "a").as_deref(), Some("1"));
        // start > end: refused, nothing changes, no seqnum used.
        let before = m.state_at(m.last_seq());
        assert!(matches!(m.apply(range("z", "a")), Err(ModelError::InvalidArgument(_))));
        assert_eq!(m.last_seq(), 6);
        assert_eq!(m.state_at(6), before);
        // Writes after a range delete are visible.
        m.apply(put("c", "new")).unwrap();
        assert_eq!(get(&m, "c").as_deref(), Some("new"));
        // A range delete over a key with no versions is harmless; older snapshots still see.
        assert_eq!(m.get_at(b"b", 4).as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn batches_apply_in_order_with_contiguous_seqnums() {
        let mut m = model(vec![put("x", "0")]);
        let r = m.apply_batch(vec![put("a", "1"), del("a"), put("b", "1"), merge("b", "2")]);
        assert_eq!(r, Ok(Some((2, 5))));
        assert_eq!(get(&m, "a"), None, "put then delete in one batch leaves it deleted");
        assert_eq!(get(&m, "b").as_deref(), Some("1,2"), "merge sees the put before it");
        assert_eq!(m.apply_batch(vec![]), Ok(None));
        assert_eq!(m.last_seq(), 5);
        // A refused write refuses the whole batch.
        assert!(m.apply_batch(vec![put("c", "1"), range("q", "p")]).is_err());
        assert_eq!(get(&m, "c"), None);
        assert_eq!(m.last_seq(), 5);
        assert!(m.is_commit_point(1) && m.is_commit_point(5) && !m.is_commit_point(3));
        assert_eq!(m.commit_points_from(0), vec![0, 1, 5]);
        assert_eq!(m.commit_points_from(2), vec![5]);
    }

    #[test]
    fn snapshots_see_only_earlier_writes() {
        let mut m = model(vec![put("a", "1"), put("b", "1")]);
        let snap = m.snapshot();
        m.apply(put("a", "2")).unwrap();
        m.apply(del("b")).unwrap();
        m.apply(merge("c", "x")).unwrap();
        m.apply(range("", "zz")).unwrap();
        assert_eq!(m.get_at(b"a", snap).as_deref(), Some(&b"1"[..]));
        assert_eq!(m.get_at(b"b", snap).as_deref(), Some(&b"1"[..]));
        assert_eq!(m.get_at(b"c", snap), None);
        assert_eq!(m.get_at(b"a", 3).as_deref(), Some(&b"2"[..]));
        assert_eq!(m.get_at(b"c", 5).as_deref(), Some(&b"x"[..]));
        assert!(m.state_at(m.last_seq()).is_empty());
        assert_eq!(m.state_at(0), BTreeMap::new());
    }

    #[test]
    fn scans_respect_bounds_and_direction() {
        let m = model(vec![put("a", "1"), put("b", "2"), put("c", "3"), del("b"), put("d", "")]);
        let s = m.last_seq();
        let names = |v: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<String> {
            pairs(&v).into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(names(m.scan(s, None, None)), ["a", "c", "d"]);
        assert_eq!(names(m.scan(s, Some(b"b"), Some(b"d"))), ["c"], "lower incl, upper excl");
        assert_eq!(names(m.scan(s, Some(b"a"), Some(b"a"))), Vec::<String>::new());
        assert_eq!(names(m.scan(s, Some(b"d"), Some(b"a"))), Vec::<String>::new());
        assert_eq!(names(m.scan_rev(s, None, Some(b"d"))), ["c", "a"]);
        assert_eq!(names(m.scan(3, None, None)), ["a", "b", "c"], "at an older seqnum");
    }

    #[test]
    fn truncate_and_lost_writes() {
        let mut m = model(vec![put("a", "1"), put("b", "1")]);
        m.apply_batch(vec![put("a", "2"), merge("b", "2")]).unwrap();
        m.apply(range("a", "b")).unwrap();
        assert_eq!(m.last_seq(), 5);
        let lost = m.commits_after(2);
        assert_eq!(lost.len(), 2);
        assert_eq!(lost[0], vec![(3, &put("a", "2")), (4, &merge("b", "2"))]);
        assert_eq!(lost[1], vec![(5, &range("a", "b"))]);
        assert_eq!(m.writes_after(4), vec![(5, &range("a", "b"))]);
        let full = m.state_at(5);
        let mid = m.state_at(4);

        let mut t = m.clone();
        t.truncate_to(2);
        assert_eq!(t.last_seq(), 2);
        assert_eq!(t.state_at(2), m.state_at(2));
        assert_eq!(get(&t, "a").as_deref(), Some("1"));
        // Re-applying the lost commits rebuilds the same states.
        let groups: Vec<Vec<Write>> = m
            .commits_after(2)
            .into_iter()
            .map(|g| g.into_iter().map(|(_, w)| w.clone()).collect())
            .collect();
        for g in groups {
            t.apply_batch(g).unwrap();
        }
        assert_eq!(t.state_at(5), full);
        assert_eq!(t.state_at(4), mid);
        t.truncate_to(0);
        assert_eq!(t.last_seq(), 0);
        assert!(t.state_at(0).is_empty());
        assert_eq!(t.get(b"a"), None);
    }

    /// The versioned model agrees with the plainest possible one: a single map that each
    /// write updates in place, replayed from the start up to every seqnum.
    mod versus_replay {
        use proptest::prelude::*;

        use super::*;

        fn key() -> impl Strategy<Value = Vec<u8>> {
            prop::sample::select(vec!["", "a", "a@1", "b", "b@", "c"])
                .prop_map(|k| k.as_bytes().to_vec())
        }

        fn write() -> impl Strategy<Value = Write> {
            prop_oneof![
                (key(), "[xyz]{0,2}")
                    .prop_map(|(key, v)| Write::Put { key, value: v.into_bytes() }),
                key().prop_map(|key| Write::Delete { key }),
                key().prop_map(|key| Write::SingleDelete { key }),
                (key(), "[xyz]{0,2}")
                    .prop_map(|(key, v)| Write::Merge { key, value: v.into_bytes() }),
                (key(), key()).prop_map(|(start, end)| Write::DeleteRange { start, end }),
            ]
        }

        /// Merges one operand at a time with the engine's own `StringAppend` (associative, so
        /// in-place merging is right): a second, independent implementation to check against.
        fn replay(writes: &[Write]) -> BTreeMap<Vec<u8>, Vec<u8>> {
            use cobble::MergeOperator as _;
            let op = cobble::StringAppend::default();
            let mut m: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for w in writes {
                match w {
                    Write::Put { key, value } => {
                        m.insert(key.clone(), value.clone());
                    }
                    Write::Delete { key } | Write::SingleDelete { key } => {
                        m.remove(key);
                    }
                    Write::Merge { key, value } => {
                        let merged = op.full_merge(key, m.get(key).map(|v| v.as_slice()), &[value]);
                        m.insert(key.clone(), merged);
                    }
                    Write::DeleteRange { start, end } => m.retain(|k, _| !(start <= k && k < end)),
                }
            }
            m
        }

        proptest! {
            #[test]
            fn states_match_replay(batches in prop::collection::vec(prop::collection::vec(write(), 0..4), 0..12), cut in any::<prop::sample::Index>()) {
                let mut model = Model::new();
                let mut applied: Vec<Write> = Vec::new();
                for b in batches {
                    if model.apply_batch(b.clone()).is_ok() {
                        applied.extend(b);
                    } else {
                        prop_assert!(b.iter().any(|w| w.validate().is_err()));
                    }
                }
                prop_assert_eq!(model.last_seq(), applied.len() as u64);
                for s in 0..=model.last_seq() {
                    prop_assert_eq!(model.state_at(s), replay(&applied[..s as usize]), "seq {}", s);
                }
                // Truncating to any commit point gives the replay of that prefix.
                let points = model.commit_points_from(0);
                let p = points[cut.index(points.len())];
                let mut t = model.clone();
                t.truncate_to(p);
                prop_assert_eq!(t.state_at(p), replay(&applied[..p as usize]));
                prop_assert_eq!(t.last_seq(), p);
            }

            /// Point reads, bounded scans and reads through a pending batch, at every seqnum,
            /// against the replay: the scans' one-sweep range floors and the point reads' scan
            /// of every range delete must agree with it.
            #[test]
            fn reads_match_replay(writes in prop::collection::vec(write(), 0..40), pending in prop::collection::vec(write(), 0..6)) {
                let writes: Vec<Write> = writes.into_iter().filter(|w| w.validate().is_ok()).collect();
                let pending: Vec<Write> = pending.into_iter().filter(|w| w.validate().is_ok()).collect();
                let mut model = Model::new();
                for w in &writes {
                    model.apply(w.clone()).expect("valid");
                }
                let keys = ["", "a", "a@1", "b", "b@", "c", "d"];
                let bounds = || std::iter::once(None).chain(keys.iter().map(|k| Some(k.as_bytes())));
                let in_bounds = |state: BTreeMap<Vec<u8>, Vec<u8>>, lo: Option<&[u8]>, hi: Option<&[u8]>| -> Vec<(Vec<u8>, Vec<u8>)> {
                    state.into_iter()
                        .filter(|(k, _)| lo.is_none_or(|l| l <= k.as_slice()) && hi.is_none_or(|h| k.as_slice() < h))
                        .collect()
                };
                for s in 0..=model.last_seq() {
                    let state = replay(&writes[..s as usize]);
                    for k in keys {
                        prop_assert_eq!(model.get_at(k.as_bytes(), s), state.get(k.as_bytes()).cloned(), "get {} at {}", k, s);
                    }
                    for lo in bounds() {
                        for hi in bounds() {
                            prop_assert_eq!(model.scan(s, lo, hi), in_bounds(state.clone(), lo, hi), "scan {:?}..{:?} at {}", lo, hi, s);
                        }
                    }
                }
                let last = model.last_seq();
                let mut all = writes.clone();
                all.extend(pending.iter().cloned());
                let state = replay(&all);
                for k in keys {
                    prop_assert_eq!(model.get_with(k.as_bytes(), last, &pending), state.get(k.as_bytes()).cloned(), "get_with {}", k);
                }
                for lo in bounds() {
                    for hi in bounds() {
                        prop_assert_eq!(model.scan_with(last, lo, hi, &pending), in_bounds(state.clone(), lo, hi), "scan_with {:?}..{:?}", lo, hi);
                    }
                }
            }
        }
    }

    #[test]
    fn ingestion_is_ranges_then_points_per_file_in_key_order() {
        let f1 = vec![put("b", "1"), range("a", "c"), sdel("a"), range("b", "d"), merge("c", "m")];
        let f0 = vec![put("0", "x")];
        let got = ingest_writes(&[f1, f0]).unwrap();
        let want = vec![put("0", "x"), range("a", "d"), del("a"), put("b", "1"), merge("c", "m")];
        assert_eq!(got, want);
        // Touching ranges merge; an empty range is dropped.
        let got = ingest_writes(&[vec![range("a", "b"), range("b", "c"), range("x", "x")]]);
        assert_eq!(got.unwrap(), vec![range("a", "c")]);
        // A range end is exclusive: a file starting there does not overlap.
        assert!(ingest_writes(&[vec![range("a", "m")], vec![put("m", "1")]]).is_ok());
        let refused = [
            vec![vec![put("a", "1"), merge("a", "2")]],
            vec![vec![]],
            vec![vec![range("q", "q")]],
            vec![vec![range("z", "a")]],
            vec![vec![put("a", "1"), put("m", "1")], vec![put("m", "2")]],
            vec![vec![range("a", "n")], vec![put("m", "2")]],
        ];
        for files in refused {
            assert!(
                matches!(ingest_writes(&files), Err(ModelError::InvalidArgument(_))),
                "{files:?}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "would split a batch")]
    fn truncate_inside_a_batch_is_a_bug() {
        let mut m = Model::new();
        m.apply_batch(vec![put("a", "1"), put("b", "1")]).unwrap();
        m.truncate_to(1);
    }

    #[test]
    fn writes_from_ops_expand_values() {
        use crate::ops::{BatchId, Value};
        let op = Op::BatchMerge {
            id: BatchId(1),
            key: b"k".to_vec(),
            value: Value::Gen { len: 5, seed: 2 },
        };
        let w = Write::from_op(&op).unwrap();
        assert_eq!(
            w,
            Write::Merge { key: b"k".to_vec(), value: Value::Gen { len: 5, seed: 2 }.expand() }
        );
        assert_eq!(Write::from_op(&Op::Flush), None);
    }
}
