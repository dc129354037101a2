//! A point read that stops at the first source deciding the key.
//!
//! The DB reads its sources newest first (memtables, L0 tables, then one table per level) and
//! feeds each to a [`PointLookup`]: the source's range tombstones covering the key, then its
//! versions of the key. After each source the caller asks [`PointLookup::decided`] with a bound
//! on what the unread sources may still hold; once the known versions settle the key (a value,
//! a delete or a covering tombstone newer than anything unread, with only merge operands
//! above it), the rest are never opened. [`PointLookup::resolve`] then reads the answer exactly
//! as [`super::resolve`] does for any other read.

use std::cmp::Ordering;

use super::resolve::{ends_walk, resolve_versions, Version, VersionBuf};
use super::{InternalIterator, PinnedValue, TombstoneSet};
use crate::error::{Error, Result};
use crate::key::{self, InternalComparator, Kind};
use crate::merge::MergeOperator;

/// What the sources not yet read may hold of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unread {
    /// Nothing: every source was read.
    Nothing,
    /// Entries and tombstones with seqnums at most this one.
    AtMost(u64),
    /// Only entries and tombstones older than every version and tombstone read so far (the
    /// level invariant: for one user key, a level holds only what is older than the levels
    /// above it, memtables included).
    Older,
}

/// One user key's versions gathered source by source (see the module comment).
#[derive(Debug)]
pub struct PointLookup<'k> {
    user_key: &'k [u8],
    snapshot_seq: u64,
    /// Where each source is sought: the key at the snapshot.
    seek: key::KeyBuf,
    /// Versions at or below the snapshot, newest first.
    versions: VersionBuf,
    /// The largest seqnum of a visible range tombstone read so far that covers the key.
    cover: Option<u64>,
    /// The newest `Set` version read, pinned where it lies; its entry in `versions` holds no
    /// bytes (older `Set`s can never be the answer's base once it is read).
    pin: Option<(u64, PinnedValue)>,
}

impl<'k> PointLookup<'k> {
    /// A lookup of `user_key` as of `snapshot_seq`.
    pub fn new(user_key: &'k [u8], snapshot_seq: u64) -> PointLookup<'k> {
        PointLookup {
            user_key,
            snapshot_seq,
            seek: key::seek_key(user_key, snapshot_seq),
            versions: VersionBuf::default(),
            cover: None,
            pin: None,
        }
    }

    /// Counts the range tombstone `[start, end)#seq` if it is visible and covers the key.
    pub fn add_tombstone(&mut self, cmp: &InternalComparator, start: &[u8], end: &[u8], seq: u64) {
        if seq <= self.snapshot_seq
            && cmp.compare_user(start, self.user_key) != Ordering::Greater
            && cmp.compare_user(self.user_key, end) == Ordering::Less
        {
            self.cover = self.cover.max(Some(seq));
        }
    }

    /// Counts a source's range tombstones, fragmented: those visible that cover the key.
    pub fn add_tombstones(&mut self, set: &TombstoneSet) {
        self.cover = self.cover.max(set.max_covering_at(self.user_key, self.snapshot_seq));
    }

    /// Reads the key's versions from one source (its tombstones already added), newest first,
    /// up to the first that ends the walk.
    pub fn read_source(
        &mut self,
        iter: &mut dyn InternalIterator,
        cmp: &InternalComparator,
    ) -> Result<()> {
        let first_new = self.versions.entries.len();
        iter.seek_ge(&self.seek)?;
        while iter.valid() {
            let p = key::parse(iter.key()).ok_or_else(|| {
                Error::corruption(
                    format!("malformed internal key ({} bytes)", iter.key().len()),
                    "point read source",
                )
            })?;
            if cmp.compare_user(p.user_key, self.user_key) != Ordering::Equal {
                break;
            }
            // The seek skipped newer versions; the check guards against loose positioning.
            if p.seq <= self.snapshot_seq {
                let newest_set =
                    p.kind == Kind::Set && self.pin.as_ref().is_none_or(|(s, _)| p.seq > *s);
                match iter.value_pin().filter(|_| newest_set) {
                    Some(pin) => {
                        self.versions.push(p.seq, p.kind, &[]);
                        self.pin = Some((p.seq, pin));
                    }
                    None => self.versions.push(p.seq, p.kind, iter.value()),
                }
                if ends_walk(p.seq, p.kind, self.cover) {
                    break;
                }
            }
            iter.next()?;
        }
        // Sources are read newest first, so this sorts only when two sources' seqnums
        // interleave.
        let entries = &self.versions.entries;
        let sorted = match (first_new.checked_sub(1), entries.get(first_new)) {
            (Some(last_old), Some(first)) => entries[last_old].0 > first.0,
            _ => true,
        };
        if !sorted {
            self.versions.sort_newest_first();
        }
        Ok(())
    }

    /// True when no unread source can change the answer.
    pub fn decided(&self, unread: Unread) -> bool {
        let bound = match unread {
            Unread::Nothing => return true,
            Unread::AtMost(seq) => Some(seq),
            Unread::Older => None,
        };
        for &(seq, kind, _) in &self.versions.entries {
            if bound.is_some_and(|b| seq <= b) {
                // An unread version may sit above this one.
                return false;
            }
            if self.cover.is_some_and(|t| seq < t) || kind != Kind::Merge {
                return true;
            }
        }
        // Only merge operands so far: a covering tombstone above everything unread ends them.
        match (self.cover, bound) {
            (Some(t), Some(b)) => t > b,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The versions read, newest first, the pinned one's bytes where they lie. (Equal
    /// seqnums keep their read order and the pinned one was read first, so [`super::resolve`]'s
    /// walk meets it before any other `Set` of its seqnum.)
    fn versions(&self) -> impl Iterator<Item = Version<'_>> + Clone {
        let pin = self.pin.as_ref().map(|(seq, pin)| (*seq, &pin[..]));
        self.versions.iter().map(move |mut v| {
            if let Some((seq, bytes)) = pin {
                if v.seq == seq && v.kind == Kind::Set {
                    v.value = bytes;
                }
            }
            v
        })
    }

    /// True when nothing was read: no version and no covering tombstone.
    pub fn is_empty(&self) -> bool {
        self.versions.entries.is_empty() && self.cover.is_none()
    }

    /// The key's value when `newer`, a lookup of the same key over sources all newer than
    /// this one's, did not decide it: `newer`'s merge operands apply on top of this lookup's
    /// versions, in one full merge (an indexed batch over the database).
    pub fn resolve_beneath(
        &self,
        newer: &PointLookup<'_>,
        merge_op: &dyn MergeOperator,
    ) -> Option<Vec<u8>> {
        debug_assert!(!newer.decided(Unread::Older), "the newer lookup decided the key");
        let versions = newer.versions().chain(self.versions());
        resolve_versions(self.user_key, versions, self.cover, merge_op).into_vec()
    }

    /// The key's value from what was read.
    pub fn resolve(&self, merge_op: &dyn MergeOperator) -> Option<Vec<u8>> {
        resolve_versions(self.user_key, self.versions(), self.cover, merge_op).into_vec()
    }

    /// As [`PointLookup::resolve`], handing out the value where it lies when it is a
    /// version's own (not a merge's result), else as computed.
    pub fn resolve_pinned(mut self, merge_op: &dyn MergeOperator) -> Option<PinnedValue> {
        let first = self.versions.entries.first().map(|&(seq, kind, _)| (seq, kind));
        let pinned_seq = self.pin.as_ref().map(|(s, _)| *s);
        match first {
            Some((seq, Kind::Set))
                if Some(seq) == pinned_seq && self.cover.is_none_or(|t| seq >= t) =>
            {
                self.pin.take().map(|(_, pin)| pin)
            }
            _ => self.resolve(merge_op).map(PinnedValue::owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comparator::Bytewise;
    use crate::iter::VecIterator;
    use crate::merge::StringAppend;
    use crate::sync::Arc;

    fn icmp() -> InternalComparator {
        InternalComparator::new(Arc::new(Bytewise))
    }

    fn source(entries: &[(u64, Kind, &str)]) -> VecIterator {
        let cmp = icmp();
        let mut v: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .map(|&(seq, kind, val)| (key::encode(b"k", seq, kind), val.as_bytes().to_vec()))
            .collect();
        v.sort_by(|a, b| cmp.compare(&a.0, &b.0));
        VecIterator::new(v, cmp)
    }

    /// A source that pins every value (as an owned copy: the lookup cannot tell).
    struct Pinning(VecIterator);

    impl InternalIterator for Pinning {
        fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
            self.0.seek_ge(target)
        }
        fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
            self.0.seek_lt(target)
        }
        fn first(&mut self) -> Result<()> {
            self.0.first()
        }
        fn last(&mut self) -> Result<()> {
            self.0.last()
        }
        fn next(&mut self) -> Result<()> {
            self.0.next()
        }
        fn prev(&mut self) -> Result<()> {
            self.0.prev()
        }
        fn valid(&self) -> bool {
            self.0.valid()
        }
        fn key(&self) -> &[u8] {
            self.0.key()
        }
        fn value(&self) -> &[u8] {
            self.0.value()
        }
        fn value_pin(&self) -> Option<PinnedValue> {
            Some(PinnedValue::owned(self.0.value().to_vec()))
        }
    }

    #[test]
    fn the_newest_set_keeps_the_pin_whatever_order_sources_come_in() {
        let cmp = icmp();
        let op = StringAppend::default();
        let read = |sources: &[&[(u64, Kind, &str)]]| {
            let mut l = PointLookup::new(b"k", 100);
            for s in sources {
                l.read_source(&mut Pinning(source(s)), &cmp).unwrap();
            }
            let plain = l.resolve(&op);
            (plain, l.resolve_pinned(&op).map(PinnedValue::into_vec))
        };
        let new: &[(u64, Kind, &str)] = &[(20, Kind::Set, "new")];
        let old: &[(u64, Kind, &str)] = &[(15, Kind::Set, "old")];
        let ops: &[(u64, Kind, &str)] = &[(30, Kind::Merge, "m")];
        let want = Some(b"new".to_vec());
        // Interleaved seqnums (L0): the older Set may be read after the newer one, or before.
        assert_eq!(read(&[new, old]), (want.clone(), want.clone()));
        assert_eq!(read(&[old, new]), (want.clone(), want));
        let merged = Some(b"new,m".to_vec());
        assert_eq!(read(&[ops, new, old]), (merged.clone(), merged.clone()));
        assert_eq!(read(&[old, ops, new]), (merged.clone(), merged));
    }

    #[test]
    fn a_value_above_everything_unread_decides() {
        let cmp = icmp();
        let mut l = PointLookup::new(b"k", 100);
        l.read_source(&mut source(&[(20, Kind::Set, "new"), (15, Kind::Set, "old")]), &cmp)
            .unwrap();
        assert!(l.decided(Unread::AtMost(19)));
        assert!(!l.decided(Unread::AtMost(20)), "an unread source may hold seqnum 20");
        assert!(l.decided(Unread::Older));
        assert_eq!(l.resolve(&StringAppend::default()), Some(b"new".to_vec()));
    }

    #[test]
    fn merge_operands_wait_for_their_base() {
        let cmp = icmp();
        let mut l = PointLookup::new(b"k", 100);
        l.read_source(&mut source(&[(30, Kind::Merge, "b")]), &cmp).unwrap();
        assert!(!l.decided(Unread::AtMost(10)));
        assert!(!l.decided(Unread::Older));
        l.read_source(&mut source(&[(10, Kind::Set, "a")]), &cmp).unwrap();
        assert!(l.decided(Unread::Older));
        let got = l.resolve(&StringAppend::default()).unwrap();
        assert_eq!(got, b"a,b".to_vec());
    }

    #[test]
    fn a_covering_tombstone_decides_only_above_the_unread() {
        let cmp = icmp();
        let mut l = PointLookup::new(b"k", 100);
        l.add_tombstone(&cmp, b"a", b"z", 50);
        l.add_tombstone(&cmp, b"a", b"k", 90); // ends before the key
        l.add_tombstone(&cmp, b"a", b"z", 101); // above the snapshot
        l.read_source(&mut source(&[(60, Kind::Merge, "m")]), &cmp).unwrap();
        assert!(l.decided(Unread::AtMost(49)));
        assert!(!l.decided(Unread::AtMost(50)));
        assert_eq!(l.resolve(&StringAppend::default()), Some(b"m".to_vec()));
    }

    #[test]
    fn versions_of_interleaved_sources_are_sorted() {
        let cmp = icmp();
        let mut l = PointLookup::new(b"k", 100);
        l.read_source(&mut source(&[(20, Kind::Merge, "b")]), &cmp).unwrap();
        l.read_source(&mut source(&[(30, Kind::Merge, "c"), (10, Kind::Set, "a")]), &cmp).unwrap();
        assert_eq!(l.resolve(&StringAppend::default()), Some(b"a,b,c".to_vec()));
    }
}
