//! Cobble: an LSM key-value storage engine.
//!
//! The `pub use` list below is the public API; every module is private. `internal` (hidden)
//! opens the insides to Cobble's own tools and tests only. See ARCHITECTURE.md for the map.

mod batch;
mod cache;
mod coding;
mod comparator;
mod db;
mod env;
mod error;
mod filename;
mod fuzz;
mod iter;
mod key;
mod memtable;
mod merge;
mod options;
mod sstable;
mod sync;
mod table_cache;
mod version;
mod wal;

/// The engine's insides, for Cobble's own tools: the `cobble` inspection binary, the fuzz
/// targets, Tumbler and the tests reach formats, keys and filesystems through here. Not part
/// of the API: nothing here is promised to stay.
#[doc(hidden)]
pub mod internal {
    pub mod batch {
        pub use crate::batch::*;
    }
    pub mod cache {
        pub use crate::cache::*;
    }
    pub mod coding {
        pub use crate::coding::*;
    }
    pub mod comparator {
        pub use crate::comparator::*;
    }
    pub mod env {
        pub use crate::env::*;
    }
    pub mod filename {
        pub use crate::filename::*;
    }
    pub mod fuzz {
        pub use crate::fuzz::*;
    }
    pub mod iter {
        pub use crate::iter::*;
    }
    pub mod key {
        pub use crate::key::*;
    }
    pub mod memtable {
        pub use crate::memtable::*;
    }
    pub mod merge {
        pub use crate::merge::*;
    }
    pub mod sstable {
        pub use crate::sstable::*;
    }
    pub mod sync {
        pub use crate::sync::*;
    }
    pub mod table_cache {
        pub use crate::table_cache::*;
    }
    pub mod version {
        pub use crate::version::*;
    }
    pub mod wal {
        pub use crate::wal::*;
    }
}

pub use batch::{WriteBatch, MAX_BATCH_BYTES, MAX_BATCH_COUNT, MAX_KEY_LEN, MAX_VALUE_LEN};
pub use cache::Cache;
pub use comparator::{Bytewise, Comparator};
pub use db::{BackgroundWork, Cursor, Db, Drained, KeyValue, Leaks, LevelMetrics, Metrics};
pub use db::{ExternalTable, IndexedBatch, Range, Snapshot, SstWriter, TableInfo};
pub use db::{ReadOptions, WriteOptions};
pub use env::{File, FileLock, Fs, MemFs, OsFs};
pub use error::{Error, Result};
pub use iter::{DbIterator, IterState, PinnedValue};
pub use merge::{MergeOperator, StringAppend};
pub use options::{Compression, DelimiterPrefix, Options, PrefixExtractor, Scheduler};
pub use wal::WalRecoveryMode;

#[cfg(test)]
mod datadriven;
