//! [`PinnedValue`]: a value handed out where it lies, in a cached block or a memtable's arena,
//! instead of copied (Pebble's lesson from cgo: a copy across a boundary is what costs).

use std::fmt;
use std::ops::Deref;

/// What keeps pinned bytes alive and finds them: a block and a range of it, a memtable and
/// one of its entries. Each source module implements it for its own kind, so this module
/// needs none of them (the module graph stays acyclic).
pub(crate) trait PinSource: Send + Sync {
    /// The pinned bytes.
    fn bytes(&self) -> &[u8];
}

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
    /// Where the bytes lie, held: a block (a cached one's handle) or a memtable.
    Held(Box<dyn PinSource>),
}

impl PinnedValue {
    pub(crate) fn owned(v: Vec<u8>) -> PinnedValue {
        PinnedValue { inner: Inner::Owned(v) }
    }

    pub(crate) fn held(source: Box<dyn PinSource>) -> PinnedValue {
        PinnedValue { inner: Inner::Held(source) }
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
            Inner::Held(source) => source.bytes(),
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
