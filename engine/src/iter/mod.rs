//! Iterators over internal keys and the user-facing [`DbIterator`].
//!
//! Every source (memtable, SSTable, level) implements [`InternalIterator`]; a merging
//! iterator combines them; the DB iterator hides seqnums, applies the snapshot, range
//! tombstones, deletes and merges, and enforces bounds.
//!
//! Files: `vec_iter` (an in-memory source), `merging` (N sources into one stream),
//! `rangedel` (range-tombstone fragments), `resolve` (the value of one user key from its
//! versions, shared by every read path), `lookup` (a point read that stops at the first
//! deciding source), `db_iter` (the user-facing iterator and the
//! reference point read).

mod db_iter;
mod lookup;
mod merging;
mod pin;
mod rangedel;
mod resolve;
mod vec_iter;

#[cfg(test)]
mod tests;

pub use db_iter::{bytewise_successor, get_from_iter, DbIterator, IterState, PrefixSpec};
pub use lookup::{PointLookup, Unread};
pub use merging::MergingIterator;
pub(crate) use pin::PinSource;
pub use pin::PinnedValue;
pub use rangedel::{fragment_all, Fragments, TombstoneSet};
pub use resolve::{ends_walk, resolve, Version};
pub use vec_iter::VecIterator;

use crate::error::Result;

/// A positioned cursor over encoded internal keys in [`crate::key::InternalComparator`] order.
///
/// Positioning calls return `Err` on I/O or corruption; the iterator is then invalid.
/// `key`/`value` may only be called while `valid()`.
pub trait InternalIterator: Send {
    /// Positions at the first entry `>= target` (an encoded internal key).
    fn seek_ge(&mut self, target: &[u8]) -> Result<()>;
    /// Positions at the last entry `< target` (an encoded internal key).
    fn seek_lt(&mut self, target: &[u8]) -> Result<()>;
    /// Positions at the first entry.
    fn first(&mut self) -> Result<()>;
    /// Positions at the last entry.
    fn last(&mut self) -> Result<()>;
    /// Moves to the next entry.
    fn next(&mut self) -> Result<()>;
    /// Moves to the previous entry.
    fn prev(&mut self) -> Result<()>;
    /// True when positioned on an entry.
    fn valid(&self) -> bool;
    /// The current encoded internal key.
    fn key(&self) -> &[u8];
    /// The current value.
    fn value(&self) -> &[u8];
    /// The current value where it lies, kept alive by the returned handle, when the source
    /// can hand it out that way (memtables and tables can); `None` otherwise.
    fn value_pin(&self) -> Option<PinnedValue> {
        None
    }
}
