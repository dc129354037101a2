//! Iterators over internal keys and the user-facing [`DbIterator`].
//!
//! Every source (memtable, SSTable, level) implements [`InternalIterator`]; a merging
//! iterator combines them; the DB iterator hides seqnums, applies the snapshot, range
//! tombstones, deletes and merges, and enforces bounds.

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
}
