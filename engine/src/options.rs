//! Options for opening a database. The options of one read or write live with `Db`
//! (`db/options.rs`), the WAL recovery mode with the WAL reader, the picker's with the picker.
//!
//! Every field is public and documented, and has a chained setter of the same name
//! (`Options::default().memtable_size(64 << 20).cache_size(256 << 20)`), as fjall's `Config`
//! and the `rocksdb` crate offer. [`crate::Db::open`] refuses impossible values
//! (`Options::validate`) with `InvalidArgument`.
#![deny(missing_docs)]

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
    Threads {
        /// At most this many compactions run at once (at least 1).
        max_concurrent_compactions: usize,
    },
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
    /// The order of user keys; recorded in every table, which a reopen with another
    /// comparator refuses. Default: bytewise.
    pub comparator: Arc<dyn Comparator>,
    /// Folds merge operands in reads (never in compactions). Default: `StringAppend` (`,`).
    pub merge_operator: Arc<dyn MergeOperator>,
    /// Create the database when the directory holds none. Default: true.
    pub create_if_missing: bool,
    /// Refuse to open a database that already exists. Default: false.
    pub error_if_exists: bool,
    /// Size of each memtable's arena, allocated up front.
    pub memtable_size: usize,
    /// Writes stall when this many memtables (mutable included) wait for flush.
    pub memtable_stop_writes_threshold: usize,
    /// No WAL: unflushed writes are lost on a crash.
    pub disable_wal: bool,
    /// What WAL replay does with a damaged or torn record.
    pub wal_recovery_mode: WalRecoveryMode,
    /// Target uncompressed size of an SSTable data block.
    pub block_size: usize,
    /// Keys between restart points in a block.
    pub restart_interval: usize,
    /// Index blocks larger than this become two-level (partitioned). Default: 256 KiB, so
    /// a table of up to a few thousand data blocks has one index block, which its reader
    /// holds (as RocksDB does by default) and a point read costs one cache lookup, for the
    /// data block. A two-level index keeps only the top level in the reader and reads each
    /// partition through the block cache.
    pub index_block_size: usize,
    /// Bloom filter bits per key; 0 disables the filter.
    pub bloom_bits_per_key: usize,
    /// Extracts key prefixes for prefix bloom filters and prefix iteration. Default: none.
    pub prefix_extractor: Option<Arc<dyn PrefixExtractor>>,
    /// Block compression of new tables. Default: LZ4.
    pub compression: Compression,
    /// Flush and compaction outputs are split at this size.
    pub target_file_size: u64,
    /// L0 depth (the most L0 tables holding one key, `Version::l0_depth`; a flush split
    /// into several tables adds one) that triggers compaction.
    pub l0_compaction_threshold: usize,
    /// L0 depth at which writes stall.
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
    /// Who runs flushes and compactions. Default: one background thread.
    pub scheduler: Scheduler,
}

/// Chained setters, one per field: `Options::default().memtable_size(64 << 20)`.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        impl Options {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $field(mut self, value: $ty) -> Options {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`Options::fs`].
    fs: Arc<dyn Fs>,
    /// Sets [`Options::comparator`].
    comparator: Arc<dyn Comparator>,
    /// Sets [`Options::merge_operator`].
    merge_operator: Arc<dyn MergeOperator>,
    /// Sets [`Options::create_if_missing`].
    create_if_missing: bool,
    /// Sets [`Options::error_if_exists`].
    error_if_exists: bool,
    /// Sets [`Options::memtable_size`].
    memtable_size: usize,
    /// Sets [`Options::memtable_stop_writes_threshold`].
    memtable_stop_writes_threshold: usize,
    /// Sets [`Options::disable_wal`].
    disable_wal: bool,
    /// Sets [`Options::wal_recovery_mode`].
    wal_recovery_mode: WalRecoveryMode,
    /// Sets [`Options::block_size`].
    block_size: usize,
    /// Sets [`Options::restart_interval`].
    restart_interval: usize,
    /// Sets [`Options::index_block_size`].
    index_block_size: usize,
    /// Sets [`Options::bloom_bits_per_key`].
    bloom_bits_per_key: usize,
    /// Sets [`Options::prefix_extractor`].
    prefix_extractor: Option<Arc<dyn PrefixExtractor>>,
    /// Sets [`Options::compression`].
    compression: Compression,
    /// Sets [`Options::target_file_size`].
    target_file_size: u64,
    /// Sets [`Options::l0_compaction_threshold`].
    l0_compaction_threshold: usize,
    /// Sets [`Options::l0_stop_writes_threshold`].
    l0_stop_writes_threshold: usize,
    /// Sets [`Options::lbase_max_bytes`].
    lbase_max_bytes: u64,
    /// Sets [`Options::level_multiplier`].
    level_multiplier: u64,
    /// Sets [`Options::max_manifest_file_size`].
    max_manifest_file_size: u64,
    /// Sets [`Options::max_open_files`].
    max_open_files: usize,
    /// Sets [`Options::cache_size`].
    cache_size: usize,
    /// Sets [`Options::scheduler`].
    scheduler: Scheduler,
}

impl Options {
    /// Refuses impossible values with `InvalidArgument` naming the field; [`crate::Db::open`]
    /// calls it first.
    pub fn validate(&self) -> crate::Result<()> {
        let positive: [(&str, u64); 8] = [
            ("memtable_size", self.memtable_size as u64),
            ("block_size", self.block_size as u64),
            ("restart_interval", self.restart_interval as u64),
            ("index_block_size", self.index_block_size as u64),
            ("target_file_size", self.target_file_size),
            ("l0_compaction_threshold", self.l0_compaction_threshold as u64),
            ("lbase_max_bytes", self.lbase_max_bytes),
            ("max_open_files", self.max_open_files as u64),
        ];
        let bad = |what: String| Err(crate::Error::InvalidArgument(what));
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return bad(format!("{name} must be positive"));
        }
        if self.memtable_size > u32::MAX as usize / 2 {
            return bad("memtable_size must be below 2 GiB (arena offsets are 32-bit)".into());
        }
        if self.block_size > 256 << 20 || self.index_block_size > 256 << 20 {
            return bad("block_size and index_block_size must be at most 256 MiB".into());
        }
        if self.bloom_bits_per_key > 64 {
            return bad("bloom_bits_per_key must be at most 64".into());
        }
        if self.memtable_stop_writes_threshold < 2 {
            return bad("memtable_stop_writes_threshold must be at least 2".into());
        }
        if self.l0_stop_writes_threshold < self.l0_compaction_threshold {
            return bad("l0_stop_writes_threshold must be at least l0_compaction_threshold".into());
        }
        if self.level_multiplier < 2 {
            return bad("level_multiplier must be at least 2".into());
        }
        if self.scheduler == (Scheduler::Threads { max_concurrent_compactions: 0 }) {
            return bad("Scheduler::Threads needs max_concurrent_compactions >= 1".into());
        }
        Ok(())
    }
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
            index_block_size: 256 << 10,
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
