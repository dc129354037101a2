//! [`PinnedValue`]: a value handed out where it lies, in a cached block or a memtable's arena,
//! instead of copied (Pebble's lesson from cgo: a copy across a boundary is what costs).

use std::fmt;
use std::ops::{Deref, Range};

use crate::memtable::{Memtable, PinnedEntry};
use crate::sstable::block::Block;
use crate::sync::Arc;

/// A value read by [`crate::Db::get_pinned`]. Derefs to the bytes. While it lives it holds
/// what they lie in: a block (and, for a cached one, its cache handle) or a whole memtable,
/// so drop it before closing the database, as an iterator (the close-time leak checks count
/// both).
pub struct PinnedValue {
    inner: Inner,
}

enum Inner {
    /// Computed (a merge), or from a source that cannot pin.
    Owned(Vec<u8>),
    /// A range of a block's bytes.
    Block(Block, Range<usize>),
    /// A memtable entry's value, in the arena the `Arc` keeps alive.
    Arena(Arc<Memtable>, PinnedEntry),
}

impl PinnedValue {
    pub(crate) fn owned(v: Vec<u8>) -> PinnedValue {
        PinnedValue { inner: Inner::Owned(v) }
    }

    pub(crate) fn block(block: Block, range: Range<usize>) -> PinnedValue {
        PinnedValue { inner: Inner::Block(block, range) }
    }

    pub(crate) fn arena(mt: Arc<Memtable>, entry: PinnedEntry) -> PinnedValue {
        PinnedValue { inner: Inner::Arena(mt, entry) }
    }

    /// True when the bytes were not copied: they are the block's or the memtable's own.
    pub fn is_pinned(&self) -> bool {
        !matches!(self.inner, Inner::Owned(_))
    }

    /// The bytes as a vector of their own (a copy unless they were computed).
    pub fn into_vec(self) -> Vec<u8> {
        match self.inner {
            Inner::Owned(v) => v,
            _ => self.to_vec(),
        }
    }
}

impl Deref for PinnedValue {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            Inner::Owned(v) => v,
            Inner::Block(b, r) => &b.data()[r.clone()],
            Inner::Arena(mt, e) => mt.pinned_value(e),
        }
    }
}

impl AsRef<[u8]> for PinnedValue {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for PinnedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedValue")
            .field("len", &self.len())
            .field("pinned", &self.is_pinned())
            .finish()
    }
}
