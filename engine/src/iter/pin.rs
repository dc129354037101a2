//! [`PinnedValue`]: a value handed out where it lies, in a cached block or a memtable's arena,
//! instead of copied (Pebble's lesson from cgo: a copy across a boundary is what costs).

use std::fmt;
use std::ops::{Deref, Range};

use crate::cache::CacheHandle;
use crate::sync::Arc;

/// A source whose entries can be pinned by a token it hands out (a memtable: the token is
/// an entry's node). The source module implements it, so this module needs none of them
/// (the module graph stays acyclic), and a pin holds the source's own `Arc`: no allocation.
pub(crate) trait PinSource: Send + Sync {
    /// The bytes `token` names.
    ///
    /// # Safety
    ///
    /// `token` was handed out by this same source for bytes it keeps unchanged while it
    /// lives (see [`PinnedValue::in_source`]).
    unsafe fn pinned_bytes(&self, token: u32) -> &[u8];
}

/// A value read by [`crate::Db::get_pinned`]. Derefs to the bytes. While it lives it holds
/// what they lie in: a block (and, for a cached one, its cache handle) or a whole memtable,
/// so drop it before closing the database, as an iterator (the close-time leak checks count
/// both). Making one allocates nothing unless the value is computed (a merge).
pub struct PinnedValue {
    inner: Inner,
}

enum Inner {
    /// Computed (a merge), or from a source that cannot pin.
    Owned(Vec<u8>),
    /// A range of a block read outside the cache.
    Shared(Arc<[u8]>, Range<usize>),
    /// A range of a cached block, held by a handle of its own.
    Cached(CacheHandle, Range<usize>),
    /// An entry of a source that finds it by token (a memtable).
    Source(Arc<dyn PinSource>, u32),
}

impl PinnedValue {
    pub(crate) fn owned(v: Vec<u8>) -> PinnedValue {
        PinnedValue { inner: Inner::Owned(v) }
    }

    /// `range` of an uncached block's bytes.
    pub(crate) fn shared(bytes: Arc<[u8]>, range: Range<usize>) -> PinnedValue {
        PinnedValue { inner: Inner::Shared(bytes, range) }
    }

    /// `range` of a cached block's bytes.
    pub(crate) fn cached(handle: CacheHandle, range: Range<usize>) -> PinnedValue {
        PinnedValue { inner: Inner::Cached(handle, range) }
    }

    /// The bytes `source` names by `token`.
    ///
    /// # Safety
    ///
    /// `token` must be one `source` handed out for bytes it keeps unchanged while it lives,
    /// as [`PinSource::pinned_bytes`] requires.
    pub(crate) unsafe fn in_source(source: Arc<dyn PinSource>, token: u32) -> PinnedValue {
        PinnedValue { inner: Inner::Source(source, token) }
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
            Inner::Shared(bytes, range) => &bytes[range.clone()],
            Inner::Cached(handle, range) => &handle[range.clone()],
            // SAFETY: only `in_source` makes this variant, whose caller vouched for `token`.
            Inner::Source(source, token) => unsafe { source.pinned_bytes(*token) },
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
