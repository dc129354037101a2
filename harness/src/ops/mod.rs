//! Tumbler's operations: the `Op` enum, object ids and values, shared by the generator, the
//! ops-file format and (later) the runner and the reducer.
//!
//! An op never holds a `Db` object: iterators, snapshots and batches are named by ids (`i3`,
//! `s1`, `b2`) that are unique within one ops file and never reused, so a printed file reads
//! without ambiguity and a reducer may delete lines without renumbering.

pub mod format;
pub mod generator;
pub mod keys;
pub mod validate;

use std::fmt;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use format::{parse, parse_op, print, print_op, OpsFile, ParseError};
pub use generator::{generate, generate_file, Weights, GENERATOR_VERSION};
pub use validate::{validate, Invalid};

/// Names a write batch (`b<n>` in ops files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchId(pub u32);

/// Names a snapshot (`s<n>` in ops files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId(pub u32);

/// Names an iterator (`i<n>` in ops files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IterId(pub u32);

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}", self.0)
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

impl fmt::Display for IterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

/// A value as written in an ops file: a literal, or a pattern expanded deterministically so a
/// 1 MiB value costs a few bytes of file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// These exact bytes.
    Lit(Vec<u8>),
    /// `len` bytes made by [`Value::expand`] from `seed`. Printed `gen(len,seed)`.
    Gen { len: u32, seed: u64 },
}

impl Value {
    /// The bytes this value stands for.
    ///
    /// Part of ops format v1, so it must never change: `gen(len, seed)` draws from a ChaCha8
    /// RNG seeded with `seed_from_u64(seed)`. Odd seeds give uniformly random bytes
    /// (incompressible); even seeds give runs of 1..=32 copies of a letter from `a..=h`
    /// (compressible), so both compression paths see large values.
    pub fn expand(&self) -> Vec<u8> {
        match self {
            Value::Lit(bytes) => bytes.clone(),
            Value::Gen { len, seed } => {
                let len = *len as usize;
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                let mut out = vec![0u8; len];
                if seed % 2 == 1 {
                    rng.fill_bytes(&mut out);
                } else {
                    let mut i = 0;
                    while i < len {
                        let r = rng.next_u32();
                        let letter = b'a' + (r & 7) as u8;
                        let run = ((r >> 3) % 32 + 1) as usize;
                        let end = (i + run).min(len);
                        out[i..end].fill(letter);
                        i = end;
                    }
                }
                out
            }
        }
    }

    /// The length of the expanded value, without expanding it.
    pub fn len(&self) -> usize {
        match self {
            Value::Lit(bytes) => bytes.len(),
            Value::Gen { len, .. } => *len as usize,
        }
    }

    /// True when the value expands to no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which ends of a range a `scan` takes keys from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScanEnds {
    /// `next()` until the end.
    Front,
    /// `next_back()` until the start.
    Back,
    /// `next()` and `next_back()` in turn until they meet.
    Both,
}

impl ScanEnds {
    /// All of them, in printing order.
    pub const ALL: [ScanEnds; 3] = [ScanEnds::Front, ScanEnds::Back, ScanEnds::Both];

    /// The word used in ops files.
    pub fn name(self) -> &'static str {
        match self {
            ScanEnds::Front => "front",
            ScanEnds::Back => "back",
            ScanEnds::Both => "both",
        }
    }
}

/// The move of an `iter.limited` op.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LimitedStep {
    /// `next_with_limit`: the limit is exclusive.
    Next,
    /// `prev_with_limit`: the limit is inclusive.
    Prev,
    /// `seek_ge_with_limit` to the key.
    SeekGe(Vec<u8>),
    /// `seek_lt_with_limit` to the key.
    SeekLt(Vec<u8>),
}

impl LimitedStep {
    /// The word used in ops files.
    pub fn name(&self) -> &'static str {
        match self {
            LimitedStep::Next => "next",
            LimitedStep::Prev => "prev",
            LimitedStep::SeekGe(_) => "seek_ge",
            LimitedStep::SeekLt(_) => "seek_lt",
        }
    }

    /// True for the moves toward larger keys.
    pub fn forward(&self) -> bool {
        matches!(self, LimitedStep::Next | LimitedStep::SeekGe(_))
    }
}

/// What a crash loses (the simulated filesystem implements each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CrashPolicy {
    /// Unsynced file data is dropped.
    Drop,
    /// Unsynced file data is partly kept: a torn write at the end of files.
    Torn,
    /// Like `Drop`, and directory entries not made durable by a directory sync are lost too.
    Dirs,
    /// Nothing volatile is lost: every unsynced byte and directory entry reaches the media
    /// (the page cache was written back just before the power went).
    Keep,
}

impl CrashPolicy {
    /// All policies, in printing order.
    pub const ALL: [CrashPolicy; 4] =
        [CrashPolicy::Drop, CrashPolicy::Torn, CrashPolicy::Dirs, CrashPolicy::Keep];

    /// The word used in ops files.
    pub fn name(self) -> &'static str {
        match self {
            CrashPolicy::Drop => "drop",
            CrashPolicy::Torn => "torn",
            CrashPolicy::Dirs => "dirs",
            CrashPolicy::Keep => "keep",
        }
    }
}

/// When a crash strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashAt {
    /// At the op boundary: between the previous op and the next one.
    Boundary,
    /// During the next op: at its `n`-th filesystem call (counting from 1), or when it returns
    /// if it makes fewer calls. Either way the database has crashed and been reopened once that
    /// op is over. The generator follows such a crash with an op that touches the filesystem.
    Within(u32),
}

/// One operation. Keys and bounds are bytes; values are [`Value`]s. Writes carry a `sync` flag
/// (`WriteOptions::sync`); batch ops carry it on commit.
///
/// Invariant: after `Restart`, `Reconfigure` or `Crash`, no op names an object created before
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        key: Vec<u8>,
        value: Value,
        sync: bool,
    },
    Get {
        key: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
        sync: bool,
    },
    SingleDelete {
        key: Vec<u8>,
        sync: bool,
    },
    Merge {
        key: Vec<u8>,
        value: Value,
        sync: bool,
    },
    /// Deletes `[start, end)`; `start > end` is `InvalidArgument` and changes nothing.
    DeleteRange {
        start: Vec<u8>,
        end: Vec<u8>,
        sync: bool,
    },

    BatchNew {
        id: BatchId,
    },
    BatchPut {
        id: BatchId,
        key: Vec<u8>,
        value: Value,
    },
    BatchDelete {
        id: BatchId,
        key: Vec<u8>,
    },
    BatchSingleDelete {
        id: BatchId,
        key: Vec<u8>,
    },
    BatchMerge {
        id: BatchId,
        key: Vec<u8>,
        value: Value,
    },
    BatchDeleteRange {
        id: BatchId,
        start: Vec<u8>,
        end: Vec<u8>,
    },
    /// Writes the batch (`db.write(batch)`); the batch is gone afterwards.
    BatchCommit {
        id: BatchId,
        sync: bool,
    },
    /// Drops the batch unwritten.
    BatchAbort {
        id: BatchId,
    },
    /// Empties the batch (`WriteBatch::clear`); it stays open for more writes.
    BatchClear {
        id: BatchId,
    },
    /// Writes each batch as an external table (`SstWriter`: points sorted by key, a
    /// single_delete as a delete, range deletes as given) and ingests them in one
    /// `db.ingest`; the batches are gone afterwards. The model reads it as one commit of each
    /// file's deleted ranges, then its points; a file with a repeated key, none at all, or
    /// overlapping another is refused.
    BatchIngest {
        ids: Vec<BatchId>,
    },
    /// Reads `key` through the uncommitted batch over the database, now or at `snapshot`
    /// (`IndexedBatch::get`, or `get_pinned` in odd-numbered ops): what a read right after
    /// committing it there would give.
    BatchGet {
        id: BatchId,
        snapshot: Option<SnapshotId>,
        key: Vec<u8>,
    },
    /// Reads `[lower, upper)` through the uncommitted batch over the database, now or at
    /// `snapshot` (`IndexedBatch::range`), taking keys from the ends as `scan` does.
    BatchScan {
        id: BatchId,
        snapshot: Option<SnapshotId>,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        ends: ScanEnds,
    },

    /// Reads `[lower, upper)` through `db.range` (a double-ended `std` iterator), taking keys
    /// from the front, the back, or both ends in turn.
    Scan {
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        ends: ScanEnds,
    },
    /// Reads every key at one view (`db.multi_get`), at `snapshot` if given.
    MultiGet {
        snapshot: Option<SnapshotId>,
        keys: Vec<Vec<u8>>,
    },

    SnapshotNew {
        id: SnapshotId,
    },
    SnapshotGet {
        id: SnapshotId,
        key: Vec<u8>,
    },
    SnapshotClose {
        id: SnapshotId,
    },

    /// Opens an iterator, at `snapshot` if given (else at the latest state), with an inclusive
    /// lower and an exclusive upper bound, each optional; with `batch`, over that uncommitted
    /// batch as it is now, applied over the database (`IndexedBatch::iter`).
    IterNew {
        id: IterId,
        snapshot: Option<SnapshotId>,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        batch: Option<BatchId>,
    },
    /// Opens an iterator pinned to the keys whose prefix (the bytes before the first `@`) is
    /// `prefix` (`ReadOptions::prefix`); configs without a prefix extractor get the same keys
    /// from the bounds `[prefix@, prefixA)`.
    IterNewPrefix {
        id: IterId,
        snapshot: Option<SnapshotId>,
        prefix: Vec<u8>,
    },
    /// Opens `id` over the same view as `from`, with its bounds and prefix, unpositioned
    /// (`Cursor::try_clone`).
    IterClone {
        id: IterId,
        from: IterId,
    },
    /// Moves the iterator to the latest state, unpositioned (`Cursor::refresh`).
    IterRefresh {
        id: IterId,
    },
    IterFirst {
        id: IterId,
    },
    IterLast {
        id: IterId,
    },
    IterSeekGe {
        id: IterId,
        key: Vec<u8>,
    },
    IterSeekLt {
        id: IterId,
        key: Vec<u8>,
    },
    IterNext {
        id: IterId,
    },
    IterPrev {
        id: IterId,
    },
    /// Moves to the first key after the current one with another prefix (`next_prefix`).
    IterNextPrefix {
        id: IterId,
    },
    /// A step or seek that stops at `limit` (`next_with_limit` and kin): short of a key
    /// inside the limit the iterator parks there.
    IterLimited {
        id: IterId,
        step: LimitedStep,
        limit: Vec<u8>,
    },
    /// Replaces the bounds; the iterator is unpositioned afterwards.
    IterSetBounds {
        id: IterId,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
    },
    IterClose {
        id: IterId,
    },

    /// Flushes the memtable(s).
    Flush,
    /// Compacts the key range `[start, end]`; `None` is unbounded on that side.
    CompactRange {
        start: Option<Vec<u8>>,
        end: Option<Vec<u8>>,
    },
    /// `db.estimate_disk_usage` of `[start, end)` (`None`: unbounded). The figure differs by
    /// config and stays out of the history; the runner checks it against the tables' sizes.
    EstimateDiskUsage {
        start: Option<Vec<u8>>,
        end: Option<Vec<u8>>,
    },
    /// `db.checkpoint` into a new directory beside the database; the runner opens it and
    /// compares it with the model then, and again after every later crash.
    Checkpoint,
    /// Writes the WAL buffer out, syncing it if `sync`.
    FlushWal {
        sync: bool,
    },
    /// Calls `run_background_step()` up to `n` times (stops early when there is no work).
    BackgroundSteps {
        n: u32,
    },
    /// Clean close and reopen.
    Restart,
    /// Clean close and reopen under the config with its table-format, cache and size knobs
    /// drawn afresh (the runner draws them: `EngineConfig::reconfigured`).
    Reconfigure,
    /// Simulated power loss, then reopen.
    Crash {
        policy: CrashPolicy,
        at: CrashAt,
    },
}

/// The kind of an [`Op`], without its arguments: what the weights file assigns weights to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Put,
    Get,
    Delete,
    SingleDelete,
    Merge,
    DeleteRange,
    BatchNew,
    BatchPut,
    BatchDelete,
    BatchSingleDelete,
    BatchMerge,
    BatchDeleteRange,
    BatchCommit,
    BatchAbort,
    BatchClear,
    BatchIngest,
    BatchGet,
    BatchScan,
    Scan,
    MultiGet,
    SnapshotNew,
    SnapshotGet,
    SnapshotClose,
    IterNew,
    IterNewPrefix,
    IterClone,
    IterRefresh,
    IterFirst,
    IterLast,
    IterSeekGe,
    IterSeekLt,
    IterNext,
    IterPrev,
    IterNextPrefix,
    IterLimited,
    IterSetBounds,
    IterClose,
    Flush,
    CompactRange,
    EstimateDiskUsage,
    Checkpoint,
    FlushWal,
    BackgroundSteps,
    Restart,
    Reconfigure,
    Crash,
}

impl OpKind {
    /// Every kind, in declaration order.
    pub const ALL: [OpKind; 46] = [
        OpKind::Put,
        OpKind::Get,
        OpKind::Delete,
        OpKind::SingleDelete,
        OpKind::Merge,
        OpKind::DeleteRange,
        OpKind::BatchNew,
        OpKind::BatchPut,
        OpKind::BatchDelete,
        OpKind::BatchSingleDelete,
        OpKind::BatchMerge,
        OpKind::BatchDeleteRange,
        OpKind::BatchCommit,
        OpKind::BatchAbort,
        OpKind::BatchClear,
        OpKind::BatchIngest,
        OpKind::BatchGet,
        OpKind::BatchScan,
        OpKind::Scan,
        OpKind::MultiGet,
        OpKind::SnapshotNew,
        OpKind::SnapshotGet,
        OpKind::SnapshotClose,
        OpKind::IterNew,
        OpKind::IterNewPrefix,
        OpKind::IterClone,
        OpKind::IterRefresh,
        OpKind::IterFirst,
        OpKind::IterLast,
        OpKind::IterSeekGe,
        OpKind::IterSeekLt,
        OpKind::IterNext,
        OpKind::IterPrev,
        OpKind::IterNextPrefix,
        OpKind::IterLimited,
        OpKind::IterSetBounds,
        OpKind::IterClose,
        OpKind::Flush,
        OpKind::CompactRange,
        OpKind::EstimateDiskUsage,
        OpKind::Checkpoint,
        OpKind::FlushWal,
        OpKind::BackgroundSteps,
        OpKind::Restart,
        OpKind::Reconfigure,
        OpKind::Crash,
    ];

    /// The op's name in ops files and in the weights file.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::Delete => "delete",
            OpKind::SingleDelete => "single_delete",
            OpKind::Merge => "merge",
            OpKind::DeleteRange => "delete_range",
            OpKind::BatchNew => "batch.new",
            OpKind::BatchPut => "batch.put",
            OpKind::BatchDelete => "batch.delete",
            OpKind::BatchSingleDelete => "batch.single_delete",
            OpKind::BatchMerge => "batch.merge",
            OpKind::BatchDeleteRange => "batch.delete_range",
            OpKind::BatchCommit => "batch.commit",
            OpKind::BatchAbort => "batch.abort",
            OpKind::BatchClear => "batch.clear",
            OpKind::BatchIngest => "batch.ingest",
            OpKind::BatchGet => "batch.get",
            OpKind::BatchScan => "batch.scan",
            OpKind::Scan => "scan",
            OpKind::MultiGet => "multi_get",
            OpKind::SnapshotNew => "snapshot.new",
            OpKind::SnapshotGet => "snapshot.get",
            OpKind::SnapshotClose => "snapshot.close",
            OpKind::IterNew => "iter.new",
            OpKind::IterNewPrefix => "iter.new_prefix",
            OpKind::IterClone => "iter.clone",
            OpKind::IterRefresh => "iter.refresh",
            OpKind::IterFirst => "iter.first",
            OpKind::IterLast => "iter.last",
            OpKind::IterSeekGe => "iter.seek_ge",
            OpKind::IterSeekLt => "iter.seek_lt",
            OpKind::IterNext => "iter.next",
            OpKind::IterPrev => "iter.prev",
            OpKind::IterNextPrefix => "iter.next_prefix",
            OpKind::IterLimited => "iter.limited",
            OpKind::IterSetBounds => "iter.set_bounds",
            OpKind::IterClose => "iter.close",
            OpKind::Flush => "flush",
            OpKind::CompactRange => "compact_range",
            OpKind::Checkpoint => "checkpoint",
            OpKind::EstimateDiskUsage => "estimate_disk_usage",
            OpKind::FlushWal => "flush_wal",
            OpKind::BackgroundSteps => "background_steps",
            OpKind::Restart => "restart",
            OpKind::Reconfigure => "reconfigure",
            OpKind::Crash => "crash",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl Op {
    /// This op's kind.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Put { .. } => OpKind::Put,
            Op::Get { .. } => OpKind::Get,
            Op::Delete { .. } => OpKind::Delete,
            Op::SingleDelete { .. } => OpKind::SingleDelete,
            Op::Merge { .. } => OpKind::Merge,
            Op::DeleteRange { .. } => OpKind::DeleteRange,
            Op::BatchNew { .. } => OpKind::BatchNew,
            Op::BatchPut { .. } => OpKind::BatchPut,
            Op::BatchDelete { .. } => OpKind::BatchDelete,
            Op::BatchSingleDelete { .. } => OpKind::BatchSingleDelete,
            Op::BatchMerge { .. } => OpKind::BatchMerge,
            Op::BatchDeleteRange { .. } => OpKind::BatchDeleteRange,
            Op::BatchCommit { .. } => OpKind::BatchCommit,
            Op::BatchAbort { .. } => OpKind::BatchAbort,
            Op::BatchClear { .. } => OpKind::BatchClear,
            Op::BatchIngest { .. } => OpKind::BatchIngest,
            Op::BatchGet { .. } => OpKind::BatchGet,
            Op::BatchScan { .. } => OpKind::BatchScan,
            Op::Scan { .. } => OpKind::Scan,
            Op::MultiGet { .. } => OpKind::MultiGet,
            Op::SnapshotNew { .. } => OpKind::SnapshotNew,
            Op::SnapshotGet { .. } => OpKind::SnapshotGet,
            Op::SnapshotClose { .. } => OpKind::SnapshotClose,
            Op::IterNew { .. } => OpKind::IterNew,
            Op::IterNewPrefix { .. } => OpKind::IterNewPrefix,
            Op::IterClone { .. } => OpKind::IterClone,
            Op::IterRefresh { .. } => OpKind::IterRefresh,
            Op::IterFirst { .. } => OpKind::IterFirst,
            Op::IterLast { .. } => OpKind::IterLast,
            Op::IterSeekGe { .. } => OpKind::IterSeekGe,
            Op::IterSeekLt { .. } => OpKind::IterSeekLt,
            Op::IterNext { .. } => OpKind::IterNext,
            Op::IterPrev { .. } => OpKind::IterPrev,
            Op::IterNextPrefix { .. } => OpKind::IterNextPrefix,
            Op::IterLimited { .. } => OpKind::IterLimited,
            Op::IterSetBounds { .. } => OpKind::IterSetBounds,
            Op::IterClose { .. } => OpKind::IterClose,
            Op::Flush => OpKind::Flush,
            Op::CompactRange { .. } => OpKind::CompactRange,
            Op::Checkpoint => OpKind::Checkpoint,
            Op::EstimateDiskUsage { .. } => OpKind::EstimateDiskUsage,
            Op::FlushWal { .. } => OpKind::FlushWal,
            Op::BackgroundSteps { .. } => OpKind::BackgroundSteps,
            Op::Restart => OpKind::Restart,
            Op::Reconfigure => OpKind::Reconfigure,
            Op::Crash { .. } => OpKind::Crash,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format::print_op(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = OpKind::ALL.iter().map(|k| k.name()).collect();
        for k in OpKind::ALL {
            assert_eq!(OpKind::from_name(k.name()), Some(k));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), OpKind::ALL.len());
    }

    #[test]
    fn gen_values_are_deterministic_and_of_the_right_length() {
        for seed in 0..6u64 {
            let v = Value::Gen { len: 1000 + seed as u32, seed };
            let a = v.expand();
            assert_eq!(a.len(), v.len());
            assert_eq!(a, v.expand());
        }
        assert_ne!(
            Value::Gen { len: 64, seed: 1 }.expand(),
            Value::Gen { len: 64, seed: 3 }.expand()
        );
        // Even seeds are compressible: letters only.
        assert!(Value::Gen { len: 500, seed: 8 }
            .expand()
            .iter()
            .all(|b| (b'a'..=b'h').contains(b)));
        assert!(Value::Gen { len: 0, seed: 5 }.is_empty());
    }

    /// Pins the expansion: ops files in the corpus depend on it, so it must never change.
    #[test]
    fn gen_expansion_is_pinned() {
        let odd = Value::Gen { len: 8, seed: 1 }.expand();
        let even = Value::Gen { len: 40, seed: 2 }.expand();
        assert_eq!(odd, PINNED_ODD.to_vec(), "gen(8,1) = {odd:?}");
        assert_eq!(even, PINNED_EVEN.to_vec(), "gen(40,2) = {:?}", String::from_utf8_lossy(&even));
    }

    const PINNED_ODD: &[u8] = &[177, 13, 164, 140, 234, 76, 9, 103];
    const PINNED_EVEN: &[u8] = b"fffffffffffffffffffffffffbbbbbbbbbbbbbbb";
}
