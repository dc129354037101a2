//! [`VecIterator`]: an [`InternalIterator`] over an owned, sorted vector of entries.
//!
//! Tests use it as a stand-in for memtables and tables; the engine uses it for small
//! in-memory sources (for example a batch being read through).

use std::cmp::Ordering;
use std::fmt;

use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key::InternalComparator;

/// An iterator over `(encoded internal key, value)` pairs held in memory.
pub struct VecIterator {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    cmp: InternalComparator,
    /// `entries.len()` means "not positioned".
    pos: usize,
}

impl fmt::Debug for VecIterator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VecIterator")
            .field("len", &self.entries.len())
            .field("pos", &self.pos)
            .finish()
    }
}

impl VecIterator {
    /// Builds an iterator over `entries`, sorting them by `cmp` first (a stable sort, so
    /// already sorted input costs one pass). Every key must be an encoded internal key (at
    /// least a trailer long): the comparator panics on shorter ones.
    pub fn new(mut entries: Vec<(Vec<u8>, Vec<u8>)>, cmp: InternalComparator) -> VecIterator {
        entries.sort_by(|a, b| cmp.compare(&a.0, &b.0));
        let pos = entries.len();
        VecIterator { entries, cmp, pos }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn invalidate(&mut self) {
        self.pos = self.entries.len();
    }

    /// Index of the first entry `>= target`.
    fn lower_bound(&self, target: &[u8]) -> usize {
        self.entries.partition_point(|(k, _)| self.cmp.compare(k, target) == Ordering::Less)
    }
}

impl InternalIterator for VecIterator {
    fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
        self.pos = self.lower_bound(target);
        Ok(())
    }

    fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
        match self.lower_bound(target).checked_sub(1) {
            Some(i) => self.pos = i,
            None => self.invalidate(),
        }
        Ok(())
    }

    fn first(&mut self) -> Result<()> {
        self.pos = 0;
        Ok(())
    }

    fn last(&mut self) -> Result<()> {
        match self.entries.len().checked_sub(1) {
            Some(i) => self.pos = i,
            None => self.invalidate(),
        }
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        assert!(self.valid(), "next on an invalid VecIterator");
        self.pos += 1;
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        assert!(self.valid(), "prev on an invalid VecIterator");
        match self.pos.checked_sub(1) {
            Some(i) => self.pos = i,
            None => self.invalidate(),
        }
        Ok(())
    }

    fn valid(&self) -> bool {
        self.pos < self.entries.len()
    }

    fn key(&self) -> &[u8] {
        &self.entries[self.pos].0
    }

    fn value(&self) -> &[u8] {
        &self.entries[self.pos].1
    }
}

#[cfg(test)]
mod tests {
    use crate::sync::Arc;

    use super::*;
    use crate::comparator::Bytewise;
    use crate::key::{self, Kind};

    fn cmp() -> InternalComparator {
        InternalComparator::new(Arc::new(Bytewise))
    }

    #[test]
    fn walks_both_ways_and_seeks() {
        let entries = vec![
            (key::encode(b"b", 3, Kind::Set), b"b3".to_vec()),
            (key::encode(b"a", 1, Kind::Set), b"a1".to_vec()),
            (key::encode(b"b", 7, Kind::Merge), b"b7".to_vec()),
        ];
        let mut it = VecIterator::new(entries, cmp());
        assert_eq!(it.len(), 3);
        assert!(!it.valid());
        it.first().unwrap();
        assert_eq!(it.value(), b"a1");
        it.next().unwrap();
        assert_eq!(it.value(), b"b7");
        it.next().unwrap();
        assert_eq!(it.value(), b"b3");
        it.next().unwrap();
        assert!(!it.valid());
        it.last().unwrap();
        assert_eq!(it.value(), b"b3");
        it.prev().unwrap();
        it.prev().unwrap();
        assert_eq!(it.value(), b"a1");
        it.prev().unwrap();
        assert!(!it.valid());

        it.seek_ge(&key::seek_key(b"b", 5)).unwrap();
        assert_eq!(it.value(), b"b3");
        it.seek_lt(&key::seek_key(b"b", 5)).unwrap();
        assert_eq!(it.value(), b"b7");
        it.seek_lt(&key::seek_key(b"a", key::SEQNUM_MAX)).unwrap();
        assert!(!it.valid());
        it.seek_ge(&key::last_key(b"b")).unwrap();
        assert!(!it.valid());
    }

    #[test]
    fn empty_is_never_valid() {
        let mut it = VecIterator::new(Vec::new(), cmp());
        assert!(it.is_empty());
        it.first().unwrap();
        assert!(!it.valid());
        it.last().unwrap();
        assert!(!it.valid());
        it.seek_lt(b"zzzzzzzzz").unwrap();
        assert!(!it.valid());
    }
}
