//! The one function that decides what a user key reads as, from its versions. `get`, the
//! DB iterator (both directions) and anything else that reads call it, so they agree.
//!
//! Rules (see SEMANTICS.md), walking versions newest first:
//! - a version with `seq < ` the covering range-tombstone seq is deleted: stop, as a delete;
//! - `Set`: the base value, stop;
//! - `Delete`, `SingleDelete`: no base, stop;
//! - `Merge`: an operand, keep walking;
//! - the end of the versions: no base.
//!
//! With no operand the result is the base (or not found); with operands it is
//! `full_merge(key, base, operands oldest first)`.
//!
//! SingleDelete misuse: reads treat `SingleDelete` exactly like `Delete`: it hides every
//! older version, however many `Set`s, `Merge`s or deletes lie below it. Misuse therefore
//! never corrupts a read and is never reported as corruption. (Compaction must keep this
//! true by only dropping a SingleDelete together with what it hides when that cannot change
//! this function's answer.)
//!
//! A `RangeDelete` kind in a point stream (range tombstones normally reach reads only as
//! [`crate::iter::Fragments`]) is read as a point delete of its start key, which is the part
//! of its meaning visible at that key.

use std::ops::Range;

use crate::key::Kind;
use crate::merge::MergeOperator;

/// One version of a user key, as seen by [`resolve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version<'a> {
    pub seq: u64,
    pub kind: Kind,
    pub value: &'a [u8],
}

/// True when the newest-first walk of [`resolve`] stops at a version `seq`/`kind`: versions
/// older than it cannot change the answer. Readers use it to stop collecting early.
pub fn ends_walk(seq: u64, kind: Kind, range_del_seq: Option<u64>) -> bool {
    kind != Kind::Merge || range_del_seq.is_some_and(|t| seq < t)
}

/// Versions of one user key, values packed into one buffer so collecting them allocates
/// only while the buffer grows.
#[derive(Debug, Default)]
pub(super) struct VersionBuf {
    /// A point read rarely meets more than a few versions: those stay inline.
    pub(super) entries: smallvec::SmallVec<[(u64, Kind, Range<usize>); 4]>,
    bytes: Vec<u8>,
}

impl VersionBuf {
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.bytes.clear();
    }

    pub(super) fn push(&mut self, seq: u64, kind: Kind, value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.entries.push((seq, kind, start..self.bytes.len()));
    }

    /// The versions in stored order.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = Version<'_>> + Clone {
        self.entries.iter().map(|(seq, kind, r)| Version {
            seq: *seq,
            kind: *kind,
            value: &self.bytes[r.clone()],
        })
    }

    /// Resolves the versions as [`resolve`] does, walking them in stored order, or reversed
    /// when `reverse`, without collecting them.
    pub(super) fn resolve<'a>(
        &'a self,
        user_key: &[u8],
        reverse: bool,
        range_del_seq: Option<u64>,
        merge_op: &dyn MergeOperator,
    ) -> Resolved<'a> {
        if reverse {
            resolve_versions(user_key, self.iter().rev(), range_del_seq, merge_op)
        } else {
            resolve_versions(user_key, self.iter(), range_del_seq, merge_op)
        }
    }

    /// Sorts the versions newest first (they were pushed from sources whose seqnums
    /// interleave).
    pub(super) fn sort_newest_first(&mut self) {
        self.entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    }
}

/// What one user key reads as: [`resolve`]'s answer, borrowing the value when it is one
/// version's own, so a reader with a buffer of its own copies it without allocating.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// Not found.
    Absent,
    /// One version's value, as stored.
    Value(&'a [u8]),
    /// A merge's result.
    Merged(Vec<u8>),
}

impl Resolved<'_> {
    /// The value as a vector of its own.
    pub fn into_vec(self) -> Option<Vec<u8>> {
        match self {
            Resolved::Absent => None,
            Resolved::Value(v) => Some(v.to_vec()),
            Resolved::Merged(v) => Some(v),
        }
    }

    /// Puts the value in `out` (reusing its buffer when it is a version's own); false when
    /// not found.
    pub fn store(self, out: &mut Vec<u8>) -> bool {
        match self {
            Resolved::Absent => return false,
            Resolved::Value(v) => {
                out.clear();
                out.extend_from_slice(v);
            }
            Resolved::Merged(v) => *out = v,
        }
        true
    }
}

/// Resolves one user key.
///
/// `versions` are the key's versions newest first, already restricted to the snapshot
/// (`seq <= snapshot`); `range_del_seq` is the largest seqnum of a visible range tombstone
/// covering the key. Returns the value, or `None` when the key reads as not found.
pub fn resolve(
    user_key: &[u8],
    versions: &[Version<'_>],
    range_del_seq: Option<u64>,
    merge_op: &dyn MergeOperator,
) -> Option<Vec<u8>> {
    resolve_versions(user_key, versions.iter().copied(), range_del_seq, merge_op).into_vec()
}

/// [`resolve`] over versions as they come (newest first), allocating only for a merge.
pub fn resolve_versions<'a>(
    user_key: &[u8],
    versions: impl Iterator<Item = Version<'a>> + Clone,
    range_del_seq: Option<u64>,
    merge_op: &dyn MergeOperator,
) -> Resolved<'a> {
    debug_assert!(
        versions.clone().zip(versions.clone().skip(1)).all(|(a, b)| a.seq >= b.seq),
        "versions must come newest first"
    );
    let mut operands: Vec<&[u8]> = Vec::new();
    let mut base: Option<&[u8]> = None;
    for v in versions {
        if range_del_seq.is_some_and(|t| v.seq < t) {
            break;
        }
        match v.kind {
            Kind::Set => {
                base = Some(v.value);
                break;
            }
            Kind::Merge => operands.push(v.value),
            Kind::Delete | Kind::SingleDelete | Kind::RangeDelete => break,
        }
    }
    if operands.is_empty() {
        return base.map_or(Resolved::Absent, Resolved::Value);
    }
    operands.reverse();
    Resolved::Merged(merge_op.full_merge(user_key, base, &operands))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::StringAppend;

    fn v(seq: u64, kind: Kind, value: &'static str) -> Version<'static> {
        Version { seq, kind, value: value.as_bytes() }
    }

    fn r(versions: &[Version<'_>], rd: Option<u64>) -> Option<String> {
        resolve(b"k", versions, rd, &StringAppend::default())
            .map(|b| String::from_utf8(b).expect("test values are utf-8"))
    }

    #[test]
    fn rules() {
        use Kind::*;
        assert_eq!(r(&[], None), None);
        assert_eq!(r(&[v(5, Set, "a"), v(3, Set, "b")], None).as_deref(), Some("a"));
        assert_eq!(r(&[v(5, Set, "")], None).as_deref(), Some(""));
        assert_eq!(r(&[v(5, Delete, ""), v(3, Set, "b")], None), None);
        assert_eq!(r(&[v(5, SingleDelete, ""), v(3, Set, "b")], None), None);
        // Operands are handed over oldest first, onto the Set below them.
        let m = [v(7, Merge, "z"), v(6, Merge, "y"), v(5, Set, "x"), v(4, Merge, "w")];
        assert_eq!(r(&m, None).as_deref(), Some("x,y,z"));
        // An empty base is a value.
        assert_eq!(r(&[v(7, Merge, "z"), v(5, Set, "")], None).as_deref(), Some(",z"));
        // A delete ends the walk: merges above it start from nothing.
        assert_eq!(
            r(&[v(7, Merge, "z"), v(5, Delete, ""), v(3, Set, "a")], None).as_deref(),
            Some("z")
        );
        // Merges with nothing below.
        assert_eq!(r(&[v(7, Merge, "z"), v(6, Merge, "y")], None).as_deref(), Some("y,z"));
        // A range tombstone at 6 cuts below 6.
        assert_eq!(r(&[v(7, Merge, "z"), v(5, Set, "x")], Some(6)).as_deref(), Some("z"));
        assert_eq!(r(&[v(5, Set, "x")], Some(6)), None);
        assert_eq!(r(&[v(7, Set, "x")], Some(6)).as_deref(), Some("x"));
        // SingleDelete misuse: hides everything below, like Delete.
        let misuse = [v(9, SingleDelete, ""), v(8, Set, "b"), v(7, Delete, ""), v(6, Set, "a")];
        assert_eq!(r(&misuse, None), None);
        assert_eq!(
            r(&[v(9, Merge, "m"), v(8, SingleDelete, ""), v(7, Merge, "x")], None).as_deref(),
            Some("m")
        );
    }

    #[test]
    fn ends_walk_matches_resolve() {
        use Kind::*;
        assert!(!ends_walk(5, Merge, None));
        assert!(!ends_walk(5, Merge, Some(5)));
        assert!(ends_walk(5, Merge, Some(6)));
        assert!(ends_walk(5, Set, None));
        assert!(ends_walk(5, Delete, None));
        assert!(ends_walk(5, SingleDelete, None));
    }
}
