//! Cobble: an LSM key-value storage engine.
//!
//! The `pub use` list below is the public API. See ARCHITECTURE.md for the map.

pub mod batch;
pub mod cache;
pub mod coding;
pub mod comparator;
mod db;
pub mod env;
mod error;
pub mod filename;
#[doc(hidden)]
pub mod fuzz;
pub mod iter;
pub mod key;
pub mod memtable;
pub mod merge;
mod options;
pub mod sstable;
pub mod sync;
pub mod table_cache;
pub mod version;
pub mod wal;

pub use batch::{WriteBatch, MAX_BATCH_BYTES, MAX_BATCH_COUNT, MAX_KEY_LEN, MAX_VALUE_LEN};
pub use cache::Cache;
pub use comparator::{Bytewise, Comparator};
pub use db::{BackgroundWork, Db, Drained, Iterator, KeyValue, Leaks, LevelMetrics, Metrics};
pub use db::{ExternalTable, Range, Snapshot, SstWriter};
pub use db::{ReadOptions, WriteOptions};
pub use env::{File, FileLock, Fs, MemFs, OsFs};
pub use error::{Error, Result};
pub use iter::{DbIterator, IterState};
pub use merge::{MergeOperator, StringAppend};
pub use options::{Compression, DelimiterPrefix, Options, PrefixExtractor, Scheduler};
pub use wal::WalRecoveryMode;

#[cfg(test)]
mod datadriven;
