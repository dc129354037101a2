//! Cobble: an LSM key-value storage engine.
//!
//! The `pub use` list below is the public API. See ARCHITECTURE.md for the map.

pub mod cache;
pub mod comparator;
pub mod env;
mod error;
pub mod iter;
pub mod key;
pub mod merge;
mod options;
pub mod table_cache;

pub use cache::Cache;
pub use comparator::{Bytewise, Comparator};
pub use env::{Clock, File, FileLock, Fs, ManualClock, MemFs, OsFs, SystemClock};
pub use error::{Error, Result};
pub use merge::{MergeOperator, StringAppend};
pub use options::{
    Compression, DelimiterPrefix, Options, PrefixExtractor, ReadOptions, Scheduler,
    WalRecoveryMode, WriteOptions,
};

#[cfg(test)]
mod datadriven;
