//! Options for opening a database. The options of one read or write live with `Db`
//! (`db/options.rs`), the WAL recovery mode with the WAL reader, the picker's with the picker.

use crate::sync::Arc;
use std::fmt;

use crate::comparator::{Bytewise, Comparator};
use crate::env::{Fs, OsFs};
use crate::merge::{MergeOperator, StringAppend};
use crate::wal::WalRecoveryMode;

/// Block compression for SSTables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Blocks stored as is.
    None,
    /// LZ4 block compression (lz4_flex).
    #[default]
    Lz4,
}

/// Who runs flushes and compactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheduler {
    /// Background threads, up to this many compactions at once.
    Threads { max_concurrent_compactions: usize },
    /// Nothing runs by itself: the embedder calls `run_background_step()`. Deterministic.
    Manual,
}

impl Default for Scheduler {
    fn default() -> Scheduler {
        Scheduler::Threads { max_concurrent_compactions: 1 }
    }
}

/// Extracts the prefix of a user key: for prefix bloom filters, iterators pinned to one
/// prefix (`ReadOptions::prefix`) and `next_prefix`.
///
/// As in RocksDB, the prefix is a leading part of the key (`key.starts_with(prefix)`), and
/// the keys sharing a prefix are contiguous in the comparator's order.
pub trait PrefixExtractor: Send + Sync + fmt::Debug {
    /// A stable name, recorded in table properties.
    fn name(&self) -> &str;
    /// The prefix of `key`, or `None` when the key has none (it is then not in the filter).
    fn prefix<'a>(&self, key: &'a [u8]) -> Option<&'a [u8]>;
    /// Under the bytewise comparator: a key above every key with `prefix` and at or below
    /// every larger key, so `next_prefix` can seek to it instead of stepping through the
    /// prefix's keys. `None` (the default) when the extractor knows no such key.
    fn prefix_end(&self, prefix: &[u8]) -> Option<Vec<u8>> {
        let _ = prefix;
        None
    }
}

/// Prefix = the bytes before the first occurrence of a delimiter byte (Tumbler's keys are
/// `prefix@suffix`); a key without it has no prefix.
#[derive(Debug, Clone, Copy)]
pub struct DelimiterPrefix(pub u8);

impl PrefixExtractor for DelimiterPrefix {
    fn name(&self) -> &str {
        "cobble.delimiter_prefix"
    }

    fn prefix<'a>(&self, key: &'a [u8]) -> Option<&'a [u8]> {
        key.iter().position(|&b| b == self.0).map(|i| &key[..i])
    }

    /// `prefix` then the byte after the delimiter: the keys with `prefix` are exactly those
    /// in `[prefix + delimiter, prefix + (delimiter + 1))`.
    fn prefix_end(&self, prefix: &[u8]) -> Option<Vec<u8>> {
        let next = self.0.checked_add(1)?;
        let mut end = prefix.to_vec();
        end.push(next);
        Some(end)
    }
}

/// Options for [`crate::Db::open`]. Sizes are in bytes.
#[derive(Clone)]
pub struct Options {
    /// The filesystem the database lives on.
    pub fs: Arc<dyn Fs>,
    pub comparator: Arc<dyn Comparator>,
    pub merge_operator: Arc<dyn MergeOperator>,
    pub create_if_missing: bool,
    pub error_if_exists: bool,
    /// Size of each memtable's arena, allocated up front.
    pub memtable_size: usize,
    /// Writes stall when this many memtables (mutable included) wait for flush.
    pub memtable_stop_writes_threshold: usize,
    /// No WAL: unflushed writes are lost on a crash.
    pub disable_wal: bool,
    pub wal_recovery_mode: WalRecoveryMode,
    /// Target uncompressed size of an SSTable data block.
    pub block_size: usize,
    /// Keys between restart points in a block.
    pub restart_interval: usize,
    /// Index blocks larger than this become two-level.
    pub index_block_size: usize,
    /// Bloom filter bits per key; 0 disables the filter.
    pub bloom_bits_per_key: usize,
    pub prefix_extractor: Option<Arc<dyn PrefixExtractor>>,
    pub compression: Compression,
    /// Flush and compaction outputs are split at this size.
    pub target_file_size: u64,
    /// L0 file count that triggers compaction.
    pub l0_compaction_threshold: usize,
    /// L0 file count at which writes stall.
    pub l0_stop_writes_threshold: usize,
    /// Target size of the first non-L0 level.
    pub lbase_max_bytes: u64,
    /// Each level below the base may be this many times larger than the one above.
    pub level_multiplier: u64,
    /// The manifest is rewritten into a new file past this size.
    pub max_manifest_file_size: u64,
    /// Open SSTable readers kept in the table cache.
    pub max_open_files: usize,
    /// Block cache capacity in bytes.
    pub cache_size: usize,
    pub scheduler: Scheduler,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("comparator", &self.comparator.name())
            .field("merge_operator", &self.merge_operator.name())
            .field("memtable_size", &self.memtable_size)
            .field("disable_wal", &self.disable_wal)
            .field("block_size", &self.block_size)
            .field("target_file_size", &self.target_file_size)
            .field("cache_size", &self.cache_size)
            .field("scheduler", &self.scheduler)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            fs: Arc::new(OsFs::new()),
            comparator: Arc::new(Bytewise),
            merge_operator: Arc::new(StringAppend::default()),
            create_if_missing: true,
            error_if_exists: false,
            memtable_size: 4 << 20,
            memtable_stop_writes_threshold: 4,
            disable_wal: false,
            wal_recovery_mode: WalRecoveryMode::default(),
            block_size: 4096,
            restart_interval: 16,
            index_block_size: 4096,
            bloom_bits_per_key: 10,
            prefix_extractor: None,
            compression: Compression::default(),
            target_file_size: 2 << 20,
            l0_compaction_threshold: 4,
            l0_stop_writes_threshold: 12,
            lbase_max_bytes: 64 << 20,
            level_multiplier: 10,
            max_manifest_file_size: 64 << 20,
            max_open_files: 1000,
            cache_size: 8 << 20,
            scheduler: Scheduler::default(),
        }
    }
}
