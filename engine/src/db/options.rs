//! The options of one read or one write: `ReadOptions` (a snapshot of this `Db`, iterator
//! bounds, prefix) and `WriteOptions` (sync). They belong to `Db`'s API, so they live here.

use super::Snapshot;

/// Options for one write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Return only after the WAL holding this write is synced.
    pub sync: bool,
}

/// Options for reads and iterators.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Read at this snapshot instead of the latest state.
    pub snapshot: Option<Snapshot>,
    /// Inclusive lower bound for iterators.
    pub lower_bound: Option<Vec<u8>>,
    /// Exclusive upper bound for iterators.
    pub upper_bound: Option<Vec<u8>>,
    /// Iterators see only the keys whose prefix (by `Options::prefix_extractor`) is this,
    /// and skip the tables whose prefix bloom filter rules it out. Needs an extractor
    /// (`InvalidArgument` otherwise). Point reads ignore it.
    pub prefix: Option<Vec<u8>>,
}
