//! The op generator: a seed, an op count and weights in, a valid op sequence out.
//!
//! Randomness: one root seed; each consumer draws from its own ChaCha8 stream derived by name
//! ([`child_rng`]), so a new consumer does not shift the draws of the others.
//!
//! Validity the generator guarantees (and the tests check independently):
//! - every op names only live objects (created, not closed, not ended by a restart or crash);
//! - every single_delete is a valid use (see `keys.rs`);
//! - iterator bounds never have lower > upper; batch range deletes never have start > end
//!   (a direct `delete_range` rarely does, to test `InvalidArgument`);
//! - a snapshot is closed only when no live iterator reads at it;
//! - a `crash .. within n` is followed by an op that touches the filesystem.
//!
//! Shapes: now and then, right after an op that leaves every config with an empty WAL (a
//! flush, a restart, a crash), the generator emits a short fixed sequence that random draws
//! would almost never line up (see `Shape`). Shape ops obey the rules above like any other.
//!
//! Size: over 600 lines: one op kind per arm of one generator, so that the weights and the
//! validity rules above stay in one place.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::keys::KeyManager;
use super::Value;
use super::{
    BatchId, CrashAt, CrashPolicy, IterId, LimitedStep, Op, OpKind, OpsFile, ScanEnds, SnapshotId,
};

/// Recorded in every generated ops file. Bump it whenever the same seed and weights would give
/// different ops, so a seed reported by an older commit is still explained.
pub const GENERATOR_VERSION: &str = "8";

/// Chance that an op leaving the WAL empty starts a shape.
const SHAPE_CHANCE: f64 = 0.15;

/// Sequences the generator emits as a whole, each aimed at a layout that random ops reach
/// only by luck.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// A put whose WAL record ends 0..=16 bytes before the first 32 KiB block boundary of a
    /// fresh log, then a small synced write (whose record starts in that tail: zero padding
    /// below 7 bytes, an empty first fragment at exactly 7), then a crash, so recovery replays
    /// records around a block tail (the log format in `engine/src/wal/mod.rs`).
    WalBlockTail,
    /// A range delete above every key, flushed alone and compacted down: a table with no
    /// point entries in L1 or below, beside the others; then an iterator seeks into it.
    TombstoneOnlyTable,
    /// Unsynced puts, then a durability barrier (an empty batch committed with sync, the
    /// idiom for "make every earlier write durable", or a synced put of another key), then a
    /// crash that drops unsynced data: the barrier's promise is checked where only it keeps
    /// the earlier writes.
    SyncBarrier,
}

/// The WAL's block size and fragment header, as documented for the log format; the batch
/// layout (12-byte header, kind byte, varint lengths, 4-byte checksum) likewise. Used only to
/// aim [`Shape::WalBlockTail`]; a wrong figure makes the shape miss, never a false failure.
const WAL_BLOCK: usize = 32 * 1024;
const WAL_FRAGMENT_HEADER: usize = 7;
const BATCH_OVERHEAD: usize = 12 + 1 + 4;

/// The value length that makes a put of a key of `key_len` bytes, as the first record of a
/// log, end `tail` bytes before the first block boundary.
fn wal_block_tail_value_len(key_len: usize, tail: usize) -> u32 {
    let varints = 1 + 3; // key length below 128, value length below 2^21
    let fixed = WAL_FRAGMENT_HEADER + BATCH_OVERHEAD + varints + key_len + tail;
    WAL_BLOCK.saturating_sub(fixed) as u32
}

/// At most this many batches, snapshots and iterators are open at once.
const MAX_BATCHES: usize = 4;
const MAX_SNAPSHOTS: usize = 6;
const MAX_ITERS: usize = 6;

/// The default weights, `configs/ops/default.json`, built in so the harness runs anywhere.
const DEFAULT_WEIGHTS_JSON: &str = include_str!("../../../configs/ops/default.json");

/// A ChaCha8 RNG for the consumer `name`, derived from the root `seed`: same key, one stream
/// per name (the stream number is the FNV-1a hash of the name).
pub fn child_rng(seed: u64, name: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stream = crate::sim::Fnv64::default();
    stream.write(name.as_bytes());
    rng.set_stream(stream.finish());
    rng
}

/// Relative weights of op kinds; a kind with weight 0 is never generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Weights(BTreeMap<OpKind, u32>);

impl Default for Weights {
    fn default() -> Weights {
        Weights::from_json(DEFAULT_WEIGHTS_JSON).expect("configs/ops/default.json is valid")
    }
}

impl Weights {
    /// Parses `{"put": 100, "iter.next": 50, ...}`. Kinds left out weigh 0; unknown names
    /// and an all-zero table are errors.
    pub fn from_json(text: &str) -> anyhow::Result<Weights> {
        let raw: BTreeMap<String, u32> = serde_json::from_str(text).context("op weights JSON")?;
        let mut w = BTreeMap::new();
        for (name, weight) in raw {
            let Some(kind) = OpKind::from_name(&name) else {
                bail!("op weights: unknown op kind `{name}`");
            };
            w.insert(kind, weight);
        }
        let w = Weights(w);
        if w.total() == 0 {
            bail!("op weights: every weight is 0");
        }
        Ok(w)
    }

    /// Reads a weights file.
    pub fn load(path: &Path) -> anyhow::Result<Weights> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading op weights {}", path.display()))?;
        Weights::from_json(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The weights as JSON, every kind listed.
    pub fn to_json(&self) -> String {
        let named: BTreeMap<&str, u32> =
            OpKind::ALL.iter().map(|&k| (k.name(), self.get(k))).collect();
        serde_json::to_string_pretty(&named).expect("a string map serializes")
    }

    /// The weight of `kind`.
    pub fn get(&self, kind: OpKind) -> u32 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    /// Sets the weight of `kind`.
    pub fn set(&mut self, kind: OpKind, weight: u32) {
        self.0.insert(kind, weight);
    }

    fn total(&self) -> u64 {
        self.0.values().map(|&w| u64::from(w)).sum()
    }

    /// Swarm testing: a per-seed variation that disables about a quarter of the kinds and
    /// scales the rest by 1/4..4, so different seeds stress different mixes. `put` always
    /// stays on, so there is data to read.
    pub fn swarm(&self, seed: u64) -> Weights {
        let mut rng = child_rng(seed, "swarm");
        let mut out = BTreeMap::new();
        for kind in OpKind::ALL {
            let w = self.get(kind);
            let disable = rng.gen_bool(0.25);
            let shift: i32 = rng.gen_range(-2..=2);
            let w = if disable && kind != OpKind::Put {
                0
            } else if shift >= 0 {
                w.saturating_mul(1 << shift)
            } else {
                (w >> -shift).max(u32::from(w > 0))
            };
            out.insert(kind, w);
        }
        let mut out = Weights(out);
        if out.get(OpKind::Put) == 0 {
            out.set(OpKind::Put, 1);
        }
        out
    }
}

/// Generates `n_ops` ops from `seed` with `weights` (apply [`Weights::swarm`] first for swarm
/// mode). The same arguments always give the same ops.
pub fn generate(seed: u64, n_ops: usize, weights: &Weights) -> Vec<Op> {
    let mut g = Generator::new(seed, weights.clone());
    (0..n_ops).map(|_| g.step()).collect()
}

/// [`generate`] wrapped in an [`OpsFile`] whose header records the generator version and seed.
pub fn generate_file(seed: u64, n_ops: usize, weights: &Weights) -> OpsFile {
    OpsFile {
        generator: Some(GENERATOR_VERSION.to_string()),
        seed: Some(seed),
        ops: generate(seed, n_ops, weights),
    }
}

struct Generator {
    weights: Weights,
    /// Picks op kinds.
    kinds: ChaCha8Rng,
    /// Keys, bounds and ranges.
    keys_rng: ChaCha8Rng,
    /// Value lengths and gen seeds.
    values: ChaCha8Rng,
    /// Which live object an op uses.
    objects: ChaCha8Rng,
    /// Sync flags, step counts, crash policies.
    misc: ChaCha8Rng,
    /// Whether and which shape starts, and its details.
    shapes: ChaCha8Rng,
    /// Ops of a shape still to emit.
    queued: VecDeque<Op>,
    keys: KeyManager,
    batches: BTreeSet<BatchId>,
    /// Open batches holding no write (new or cleared): committing one is the idiom for a WAL
    /// barrier, so such a commit mostly syncs.
    empty_batches: BTreeSet<BatchId>,
    /// The point keys each live batch wrote, for reads through it that meet its writes.
    batch_keys: BTreeMap<BatchId, Vec<Vec<u8>>>,
    snapshots: BTreeSet<SnapshotId>,
    /// Live iterators and the snapshot each reads at.
    iters: BTreeMap<IterId, Option<SnapshotId>>,
    next_batch: u32,
    next_snapshot: u32,
    next_iter: u32,
    /// A `crash .. within n` was just emitted: the next op must touch the filesystem, and
    /// every object dies after it.
    crash_armed: bool,
    /// Ops generated so far (literal values embed it, so values are told apart).
    count: u64,
}

impl Generator {
    fn new(seed: u64, weights: Weights) -> Generator {
        Generator {
            weights,
            kinds: child_rng(seed, "kinds"),
            keys_rng: child_rng(seed, "keys"),
            values: child_rng(seed, "values"),
            objects: child_rng(seed, "objects"),
            misc: child_rng(seed, "misc"),
            shapes: child_rng(seed, "shapes"),
            queued: VecDeque::new(),
            keys: KeyManager::new(),
            batches: BTreeSet::new(),
            empty_batches: BTreeSet::new(),
            batch_keys: BTreeMap::new(),
            snapshots: BTreeSet::new(),
            iters: BTreeMap::new(),
            next_batch: 1,
            next_snapshot: 1,
            next_iter: 1,
            crash_armed: false,
            count: 0,
        }
    }

    fn step(&mut self) -> Op {
        let op = if self.crash_armed {
            self.fs_op()
        } else if let Some(op) = self.queued.pop_front() {
            op
        } else {
            self.pick()
        };
        self.observe(&op);
        self.count += 1;
        let log_emptied =
            matches!(op, Op::Flush | Op::Restart | Op::Reconfigure | Op::Crash { .. });
        if log_emptied && !self.crash_armed && self.queued.is_empty() {
            self.maybe_start_shape();
        }
        op
    }

    /// Queues a shape now and then. Its ops are made here, all at once: nothing runs between
    /// them, so the objects and keys they name stay valid.
    fn maybe_start_shape(&mut self) {
        if !self.shapes.gen_bool(SHAPE_CHANCE) {
            return;
        }
        let shape = match self.shapes.gen_range(0..3) {
            0 => Shape::WalBlockTail,
            1 => Shape::TombstoneOnlyTable,
            _ => Shape::SyncBarrier,
        };
        // A shape uses only kinds the weights allow (swarm mode, a crash-free mix).
        let on = |kinds: &[OpKind]| kinds.iter().all(|&k| self.weights.get(k) > 0);
        let needs: &[OpKind] = match shape {
            Shape::WalBlockTail => &[OpKind::Put, OpKind::Crash],
            Shape::TombstoneOnlyTable => {
                &[OpKind::DeleteRange, OpKind::Flush, OpKind::CompactRange]
            }
            Shape::SyncBarrier => &[OpKind::Put, OpKind::Crash],
        };
        if !on(needs) {
            return;
        }
        use OpKind::{IterClose, IterNew, IterNext, IterPrev, IterSeekGe};
        let iterate = on(&[IterNew, IterSeekGe, IterPrev, IterNext, IterClose]);
        let batches = on(&[OpKind::BatchNew, OpKind::BatchCommit]);
        match shape {
            Shape::WalBlockTail => {
                let key = self.keys.draw_writable_key(&mut self.keys_rng);
                let len = wal_block_tail_value_len(key.len(), self.shapes.gen_range(0..=16));
                let value = Value::Gen { len, seed: u64::from(self.shapes.gen::<u32>()) };
                self.queued.push_back(Op::Put { key, value, sync: self.shapes.gen_bool(0.5) });
                let key = self.keys.draw_writable_key(&mut self.keys_rng);
                let value = self.value();
                self.queued.push_back(Op::Put { key, value, sync: true });
                let policy = CrashPolicy::ALL[self.shapes.gen_range(0..CrashPolicy::ALL.len())];
                self.queued.push_back(Op::Crash { policy, at: CrashAt::Boundary });
            }
            Shape::SyncBarrier => {
                for _ in 0..self.shapes.gen_range(1..=3) {
                    let key = self.keys.draw_writable_key(&mut self.keys_rng);
                    let value = self.value();
                    self.queued.push_back(Op::Put { key, value, sync: false });
                }
                if batches && self.batches.len() < MAX_BATCHES && self.shapes.gen_bool(0.5) {
                    let id = BatchId(self.next_batch);
                    self.next_batch += 1;
                    self.queued.push_back(Op::BatchNew { id });
                    self.queued.push_back(Op::BatchCommit { id, sync: true });
                } else {
                    let key = self.keys.draw_writable_key(&mut self.keys_rng);
                    let value = self.value();
                    self.queued.push_back(Op::Put { key, value, sync: true });
                }
                self.queued
                    .push_back(Op::Crash { policy: CrashPolicy::Drop, at: CrashAt::Boundary });
            }
            Shape::TombstoneOnlyTable => {
                let (start, end) = self.keys.range_past_all_keys();
                self.queued.push_back(Op::DeleteRange {
                    start: start.clone(),
                    end: end.clone(),
                    sync: false,
                });
                self.queued.push_back(Op::Flush);
                self.queued.push_back(Op::CompactRange {
                    start: Some(start.clone()),
                    end: Some(end.clone()),
                });
                if iterate && self.iters.len() < MAX_ITERS {
                    let id = IterId(self.next_iter);
                    self.next_iter += 1;
                    self.queued.push_back(Op::IterNew {
                        id,
                        snapshot: None,
                        lower: None,
                        upper: None,
                        batch: None,
                    });
                    self.queued.push_back(Op::IterSeekGe { id, key: start });
                    self.queued.push_back(Op::IterPrev { id });
                    self.queued.push_back(Op::IterNext { id });
                    self.queued.push_back(Op::IterNext { id });
                    self.queued.push_back(Op::IterClose { id });
                }
            }
        }
    }

    /// A weighted choice among the kinds possible now; falls back to a `get`.
    fn pick(&mut self) -> Op {
        for _ in 0..32 {
            let candidates: Vec<(OpKind, u32)> = OpKind::ALL
                .into_iter()
                .map(|k| (k, self.weights.get(k)))
                .filter(|&(k, w)| w > 0 && self.possible(k))
                .collect();
            let total: u64 = candidates.iter().map(|&(_, w)| u64::from(w)).sum();
            if total == 0 {
                break;
            }
            let mut r = self.kinds.gen_range(0..total);
            let mut chosen = candidates[0].0;
            for (k, w) in candidates {
                if r < u64::from(w) {
                    chosen = k;
                    break;
                }
                r -= u64::from(w);
            }
            if let Some(op) = self.make(chosen) {
                return op;
            }
        }
        Op::Get { key: self.keys.draw_key(&mut self.keys_rng) }
    }

    /// Cheap preconditions: the objects an op needs exist, or there is room for a new one.
    fn possible(&self, kind: OpKind) -> bool {
        use OpKind::*;
        match kind {
            BatchNew => self.batches.len() < MAX_BATCHES,
            BatchPut | BatchDelete | BatchSingleDelete | BatchMerge | BatchDeleteRange
            | BatchCommit | BatchAbort | BatchClear | BatchGet | BatchScan => {
                !self.batches.is_empty()
            }
            BatchIngest => !self.batches.is_empty() || self.batches.len() + 2 <= MAX_BATCHES,
            SnapshotNew => self.snapshots.len() < MAX_SNAPSHOTS,
            SnapshotGet => !self.snapshots.is_empty(),
            SnapshotClose => self.closable_snapshots().next().is_some(),
            IterNew | IterNewPrefix => self.iters.len() < MAX_ITERS,
            IterClone => !self.iters.is_empty() && self.iters.len() < MAX_ITERS,
            IterFirst | IterLast | IterSeekGe | IterSeekLt | IterNext | IterPrev
            | IterNextPrefix | IterLimited | IterRefresh | IterSetBounds | IterClose => {
                !self.iters.is_empty()
            }
            _ => true,
        }
    }

    fn closable_snapshots(&self) -> impl Iterator<Item = SnapshotId> + '_ {
        self.snapshots.iter().copied().filter(|s| !self.iters.values().any(|i| *i == Some(*s)))
    }

    fn sync(&mut self) -> bool {
        self.misc.gen_bool(0.1)
    }

    fn batch(&mut self) -> BatchId {
        let i = self.objects.gen_range(0..self.batches.len());
        *self.batches.iter().nth(i).expect("index below len")
    }

    /// A live snapshot three times in ten, when there is one; else none (read now).
    fn maybe_snapshot(&mut self) -> Option<SnapshotId> {
        (!self.snapshots.is_empty() && self.objects.gen_bool(0.3)).then(|| self.snapshot())
    }

    fn snapshot(&mut self) -> SnapshotId {
        let i = self.objects.gen_range(0..self.snapshots.len());
        *self.snapshots.iter().nth(i).expect("index below len")
    }

    /// A new iterator's id, and the snapshot it reads at (40% of the time when one is open).
    fn new_iter(&mut self) -> (IterId, Option<SnapshotId>) {
        let id = IterId(self.next_iter);
        self.next_iter += 1;
        let snapshot =
            (!self.snapshots.is_empty() && self.objects.gen_bool(0.4)).then(|| self.snapshot());
        (id, snapshot)
    }

    fn iter(&mut self) -> IterId {
        let i = self.objects.gen_range(0..self.iters.len());
        *self.iters.keys().nth(i).expect("index below len")
    }

    /// Bounds for an iterator: each side absent 40% of the time, never lower > upper.
    fn bounds(&mut self) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let (lo, hi) = self.keys.draw_range(&mut self.keys_rng);
        let lo = self.keys_rng.gen_bool(0.6).then_some(lo);
        let hi = self.keys_rng.gen_bool(0.6).then_some(hi);
        (lo, hi)
    }

    /// A value: mostly short literals (which embed the op number), sometimes up to 64 KiB,
    /// rarely 1 MiB or more; long values are `gen` patterns.
    fn value(&mut self) -> Value {
        let r = &mut self.values;
        let len: u32 = match r.gen_range(0..1000) {
            0..=39 => 0,
            40..=539 => r.gen_range(1..=24),
            540..=789 => r.gen_range(25..=256),
            790..=909 => r.gen_range(257..=4096),
            910..=989 => r.gen_range(4097..=65536),
            _ => r.gen_range((1 << 20)..=(5 << 18)),
        };
        if len <= 24 {
            // `v<op number>` padded with dots names the op that wrote it; a value too short
            // for that is `x`s, so it is never mistaken for another op's.
            let mut v = format!("v{}", self.count).into_bytes();
            if v.len() > len as usize {
                v.clear();
            }
            let pad = if v.is_empty() { b'x' } else { b'.' };
            v.resize(len as usize, pad);
            Value::Lit(v)
        } else {
            // 32-bit seeds keep the lines short; they are plenty to tell values apart.
            Value::Gen { len, seed: u64::from(r.gen::<u32>()) }
        }
    }

    /// A range for a batch range delete or a direct one that must avoid pending
    /// single_deletes; `None` when the draw hit one.
    fn delete_range_bounds(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        let (start, end) = self.keys.draw_range(&mut self.keys_rng);
        (!self.keys.range_hits_lock(&start, &end)).then_some((start, end))
    }

    fn make(&mut self, kind: OpKind) -> Option<Op> {
        let op = match kind {
            OpKind::Put => {
                let key = self.keys.draw_writable_key(&mut self.keys_rng);
                Op::Put { key, value: self.value(), sync: self.sync() }
            }
            OpKind::Get => Op::Get { key: self.keys.draw_key(&mut self.keys_rng) },
            OpKind::Delete => {
                let key = self.keys.draw_writable_key(&mut self.keys_rng);
                Op::Delete { key, sync: self.sync() }
            }
            OpKind::SingleDelete => {
                let key = self.keys.draw_single_delete_key(&mut self.keys_rng)?;
                Op::SingleDelete { key, sync: self.sync() }
            }
            OpKind::Merge => {
                let key = self.keys.draw_writable_key(&mut self.keys_rng);
                Op::Merge { key, value: self.value(), sync: self.sync() }
            }
            OpKind::DeleteRange => {
                let (mut start, mut end) = self.delete_range_bounds()?;
                // Rarely reversed: the engine must refuse it and stay usable.
                if start != end && self.misc.gen_bool(0.03) {
                    std::mem::swap(&mut start, &mut end);
                }
                Op::DeleteRange { start, end, sync: self.sync() }
            }
            OpKind::BatchNew => {
                let id = BatchId(self.next_batch);
                self.next_batch += 1;
                Op::BatchNew { id }
            }
            OpKind::BatchPut => {
                let id = self.batch();
                let key = self.keys.draw_writable_key(&mut self.keys_rng);
                Op::BatchPut { id, key, value: self.value() }
            }
            OpKind::BatchDelete => {
                let id = self.batch();
                Op::BatchDelete { id, key: self.keys.draw_writable_key(&mut self.keys_rng) }
            }
            OpKind::BatchSingleDelete => {
                let id = self.batch();
                let key = self.keys.draw_single_delete_key(&mut self.keys_rng)?;
                Op::BatchSingleDelete { id, key }
            }
            OpKind::BatchMerge => {
                let id = self.batch();
                let key = self.keys.draw_writable_key(&mut self.keys_rng);
                Op::BatchMerge { id, key, value: self.value() }
            }
            OpKind::BatchDeleteRange => {
                let id = self.batch();
                let (start, end) = self.delete_range_bounds()?;
                Op::BatchDeleteRange { id, start, end }
            }
            OpKind::BatchCommit => {
                let id = self.batch();
                // An empty synced commit makes every earlier write durable: a barrier whose
                // absence only a crash right after it shows.
                let sync = if self.empty_batches.contains(&id) {
                    self.misc.gen_bool(0.7)
                } else {
                    self.sync()
                };
                Op::BatchCommit { id, sync }
            }
            OpKind::BatchAbort => Op::BatchAbort { id: self.batch() },
            OpKind::BatchIngest => self.make_ingest()?,
            OpKind::BatchClear => {
                // Never one holding a single_delete: the single_delete rules count it as
                // written at commit.
                let id = self.batch();
                (!self.keys.holds_lock(id)).then_some(Op::BatchClear { id })?
            }
            OpKind::SnapshotNew => {
                let id = SnapshotId(self.next_snapshot);
                self.next_snapshot += 1;
                Op::SnapshotNew { id }
            }
            OpKind::SnapshotGet => {
                let id = self.snapshot();
                Op::SnapshotGet { id, key: self.keys.draw_key(&mut self.keys_rng) }
            }
            OpKind::SnapshotClose => {
                let closable: Vec<SnapshotId> = self.closable_snapshots().collect();
                let id = closable[self.objects.gen_range(0..closable.len())];
                Op::SnapshotClose { id }
            }
            OpKind::IterNew => {
                let (id, snapshot) = self.new_iter();
                let (lower, upper) = self.bounds();
                // A quarter over a live batch: every move then reads through it.
                let batch =
                    (!self.batches.is_empty() && self.objects.gen_bool(0.25)).then(|| self.batch());
                Op::IterNew { id, snapshot, lower, upper, batch }
            }
            OpKind::IterNewPrefix => {
                let (id, snapshot) = self.new_iter();
                Op::IterNewPrefix {
                    id,
                    snapshot,
                    prefix: self.keys.draw_prefix(&mut self.keys_rng),
                }
            }
            OpKind::IterClone => {
                let from = self.iter();
                let id = IterId(self.next_iter);
                self.next_iter += 1;
                Op::IterClone { id, from }
            }
            OpKind::IterRefresh => Op::IterRefresh { id: self.iter() },
            OpKind::IterNextPrefix => Op::IterNextPrefix { id: self.iter() },
            OpKind::IterLimited if self.keys.keys().len() >= 4 && self.misc.gen_bool(0.3) => {
                // A walk whose limits are neighbouring keys written before: a step often
                // lands on a key equal to its limit, where an off-by-one in the limit shows.
                let id = self.iter();
                let at = self.misc.gen_range(0..self.keys.keys().len() - 3);
                let ks: Vec<&Vec<u8>> = self.keys.sorted_keys().skip(at).take(4).collect();
                let step =
                    |step, limit: &Vec<u8>| Op::IterLimited { id, step, limit: limit.clone() };
                self.queued.push_back(step(LimitedStep::Next, ks[2]));
                self.queued.push_back(step(LimitedStep::Next, ks[3]));
                self.queued.push_back(step(LimitedStep::Prev, ks[1]));
                self.queued.push_back(step(LimitedStep::Prev, ks[0]));
                step(LimitedStep::SeekGe(ks[0].clone()), ks[1])
            }
            OpKind::IterLimited => {
                let id = self.iter();
                let mut a = self.keys.draw_bound(&mut self.keys_rng);
                let mut b = self.keys.draw_bound(&mut self.keys_rng);
                let kind = self.misc.gen_range(0..4);
                // A seek's limit mostly on the right side of its key (one in ten is refused);
                // a step's side depends on where the iterator is, which only the run knows.
                if kind >= 2 && (a > b) != self.misc.gen_bool(0.1) {
                    std::mem::swap(&mut a, &mut b);
                }
                let (step, limit) = match kind {
                    0 => (LimitedStep::Next, a),
                    1 => (LimitedStep::Prev, a),
                    2 => (LimitedStep::SeekGe(a), b),
                    _ => (LimitedStep::SeekLt(b), a),
                };
                Op::IterLimited { id, step, limit }
            }
            OpKind::BatchGet => {
                let id = self.batch();
                // Half the time a key the batch wrote, so the batch decides or merges it.
                let written = self.batch_keys.get(&id).filter(|k| !k.is_empty());
                let key = match written {
                    Some(keys) if self.misc.gen_bool(0.5) => {
                        keys[self.misc.gen_range(0..keys.len())].clone()
                    }
                    _ => self.keys.draw_key(&mut self.keys_rng),
                };
                Op::BatchGet { id, snapshot: self.maybe_snapshot(), key }
            }
            OpKind::BatchScan => {
                let (id, snapshot) = (self.batch(), self.maybe_snapshot());
                let (lower, upper) = self.bounds();
                let ends = ScanEnds::ALL[self.misc.gen_range(0..ScanEnds::ALL.len())];
                Op::BatchScan { id, snapshot, lower, upper, ends }
            }
            OpKind::Scan => {
                let (lower, upper) = self.bounds();
                let ends = ScanEnds::ALL[self.misc.gen_range(0..ScanEnds::ALL.len())];
                Op::Scan { lower, upper, ends }
            }
            OpKind::MultiGet => {
                let snapshot = self.maybe_snapshot();
                let n = self.misc.gen_range(1..=6);
                let keys = (0..n).map(|_| self.keys.draw_key(&mut self.keys_rng)).collect();
                Op::MultiGet { snapshot, keys }
            }
            OpKind::IterFirst => Op::IterFirst { id: self.iter() },
            OpKind::IterLast => Op::IterLast { id: self.iter() },
            OpKind::IterSeekGe => {
                let id = self.iter();
                Op::IterSeekGe { id, key: self.keys.draw_bound(&mut self.keys_rng) }
            }
            OpKind::IterSeekLt => {
                let id = self.iter();
                Op::IterSeekLt { id, key: self.keys.draw_bound(&mut self.keys_rng) }
            }
            OpKind::IterNext => Op::IterNext { id: self.iter() },
            OpKind::IterPrev => Op::IterPrev { id: self.iter() },
            OpKind::IterSetBounds => {
                let id = self.iter();
                let (lower, upper) = self.bounds();
                Op::IterSetBounds { id, lower, upper }
            }
            OpKind::IterClose => Op::IterClose { id: self.iter() },
            OpKind::Flush => Op::Flush,
            OpKind::Checkpoint => Op::Checkpoint,
            OpKind::EstimateDiskUsage => {
                let (start, end) = self.keys.draw_range(&mut self.keys_rng);
                let start = self.misc.gen_bool(0.8).then_some(start);
                let end = self.misc.gen_bool(0.8).then_some(end);
                Op::EstimateDiskUsage { start, end }
            }
            OpKind::CompactRange => {
                if self.misc.gen_bool(0.3) {
                    Op::CompactRange { start: None, end: None }
                } else {
                    let (start, end) = self.keys.draw_range(&mut self.keys_rng);
                    let start = self.misc.gen_bool(0.85).then_some(start);
                    let end = self.misc.gen_bool(0.85).then_some(end);
                    Op::CompactRange { start, end }
                }
            }
            OpKind::FlushWal => Op::FlushWal { sync: self.misc.gen_bool(0.5) },
            OpKind::BackgroundSteps => {
                let n = if self.misc.gen_bool(0.1) { 64 } else { self.misc.gen_range(1..=8) };
                Op::BackgroundSteps { n }
            }
            OpKind::Restart => Op::Restart,
            OpKind::Reconfigure => Op::Reconfigure,
            OpKind::Crash => {
                let policy = CrashPolicy::ALL[self.misc.gen_range(0..CrashPolicy::ALL.len())];
                let at = if self.misc.gen_bool(0.5) {
                    CrashAt::Boundary
                } else {
                    // Half the time among an op's first calls: a synced put makes only two
                    // (WAL append, WAL sync), and crashes there are the ones that matter most.
                    let most = if self.misc.gen_bool(0.5) { 3 } else { 48 };
                    CrashAt::Within(self.misc.gen_range(1..=most))
                };
                Op::Crash { policy, at }
            }
        };
        Some(op)
    }

    /// A `batch.ingest`: most often of one or two batches made for it now (their ops
    /// queued: distinct keys per file, the second file's keys all after the first's, a range
    /// delete within a file's keys), otherwise of live batches as they are (a repeated key or
    /// two overlapping files are refused, and that is under test too).
    fn make_ingest(&mut self) -> Option<Op> {
        let w = |k: OpKind| self.weights.get(k) > 0;
        let fresh = w(OpKind::BatchNew)
            && w(OpKind::BatchPut)
            && self.batches.len() + 2 <= MAX_BATCHES
            && self.misc.gen_bool(0.7);
        if !fresh {
            if self.batches.is_empty() {
                return None;
            }
            let first = self.batch();
            let mut ids = vec![first];
            if self.objects.gen_bool(0.25) {
                let second = self.batch();
                if second != first {
                    ids.push(second);
                }
            }
            return Some(Op::BatchIngest { ids });
        }
        let (merge, delete, range) =
            (w(OpKind::BatchMerge), w(OpKind::BatchDelete), w(OpKind::BatchDeleteRange));
        let n = self.misc.gen_range(1..=12);
        let mut keys: Vec<Vec<u8>> =
            (0..n).map(|_| self.keys.draw_writable_key(&mut self.keys_rng)).collect();
        keys.sort();
        keys.dedup();
        let split = if keys.len() >= 2 && self.misc.gen_bool(0.3) {
            self.misc.gen_range(1..keys.len())
        } else {
            keys.len()
        };
        let mut ops = Vec::new();
        let mut ids = Vec::new();
        for group in [&keys[..split], &keys[split..]] {
            if group.is_empty() {
                continue;
            }
            let id = BatchId(self.next_batch);
            self.next_batch += 1;
            ids.push(id);
            ops.push(Op::BatchNew { id });
            for key in group {
                let key = key.clone();
                ops.push(match self.misc.gen_range(0..100) {
                    0..=24 if merge => Op::BatchMerge { id, key, value: self.value() },
                    25..=39 if delete => Op::BatchDelete { id, key },
                    _ => Op::BatchPut { id, key, value: self.value() },
                });
            }
            if range && group.len() >= 2 && self.misc.gen_bool(0.3) {
                let i = self.misc.gen_range(0..group.len() - 1);
                let j = self.misc.gen_range(i + 1..group.len());
                let (start, end) = (group[i].clone(), group[j].clone());
                if !self.keys.range_hits_lock(&start, &end) {
                    ops.push(Op::BatchDeleteRange { id, start, end });
                }
            }
        }
        ops.push(Op::BatchIngest { ids });
        let first = ops.remove(0);
        self.queued.extend(ops);
        Some(first)
    }

    /// The op a `crash .. within n` strikes in: one that touches the filesystem and names no
    /// object.
    fn fs_op(&mut self) -> Op {
        match self.misc.gen_range(0..6) {
            0 => {
                let key = self.keys.draw_writable_key(&mut self.keys_rng);
                Op::Put { key, value: self.value(), sync: true }
            }
            1 => Op::Flush,
            2 => Op::CompactRange { start: None, end: None },
            3 => Op::FlushWal { sync: true },
            4 if self.weights.get(OpKind::Checkpoint) > 0 => Op::Checkpoint,
            _ => Op::BackgroundSteps { n: 64 },
        }
    }

    /// Updates the key manager and the object tables for `op`.
    fn observe(&mut self, op: &Op) {
        if let Op::BatchPut { id, .. }
        | Op::BatchDelete { id, .. }
        | Op::BatchSingleDelete { id, .. }
        | Op::BatchMerge { id, .. }
        | Op::BatchDeleteRange { id, .. } = op
        {
            self.empty_batches.remove(id);
        }
        if let Op::BatchPut { id, key, .. }
        | Op::BatchDelete { id, key }
        | Op::BatchSingleDelete { id, key }
        | Op::BatchMerge { id, key, .. } = op
        {
            self.batch_keys.entry(*id).or_default().push(key.clone());
        }
        if let Op::BatchNew { id }
        | Op::BatchClear { id }
        | Op::BatchCommit { id, .. }
        | Op::BatchAbort { id } = op
        {
            self.batch_keys.remove(id);
        }
        if let Op::BatchIngest { ids } = op {
            for id in ids {
                self.batch_keys.remove(id);
            }
        }
        let km = &mut self.keys;
        match op {
            Op::Put { key, .. } | Op::BatchPut { key, .. } => km.on_put(key),
            Op::Delete { key, .. }
            | Op::Merge { key, .. }
            | Op::BatchDelete { key, .. }
            | Op::BatchMerge { key, .. } => km.on_delete_or_merge(key),
            Op::SingleDelete { key, .. } => km.on_single_delete(key, None),
            Op::BatchSingleDelete { id, key } => km.on_single_delete(key, Some(*id)),
            Op::DeleteRange { start, end, .. } | Op::BatchDeleteRange { start, end, .. } => {
                km.on_delete_range(start, end)
            }
            Op::BatchNew { id } | Op::BatchClear { id } => {
                self.batches.insert(*id);
                self.empty_batches.insert(*id);
            }
            Op::BatchCommit { id, .. } | Op::BatchAbort { id } => {
                self.batches.remove(id);
                self.empty_batches.remove(id);
                km.on_batch_end(*id);
            }
            Op::BatchIngest { ids } => {
                for id in ids {
                    self.batches.remove(id);
                    self.empty_batches.remove(id);
                    km.on_batch_end(*id);
                }
            }
            Op::SnapshotNew { id } => {
                self.snapshots.insert(*id);
            }
            Op::SnapshotClose { id } => {
                self.snapshots.remove(id);
            }
            Op::IterNew { id, snapshot, .. } | Op::IterNewPrefix { id, snapshot, .. } => {
                self.iters.insert(*id, *snapshot);
            }
            Op::IterClone { id, from } => {
                let snapshot = self.iters.get(from).copied().flatten();
                self.iters.insert(*id, snapshot);
            }
            Op::IterRefresh { id } => {
                // It reads the latest state now: its snapshot may close.
                self.iters.insert(*id, None);
            }
            Op::IterClose { id } => {
                self.iters.remove(id);
            }
            Op::Restart | Op::Reconfigure | Op::Crash { at: CrashAt::Boundary, .. } => {
                self.end_all()
            }
            _ => {}
        }
        if self.crash_armed {
            // This was the op the armed crash strikes in.
            self.crash_armed = false;
            self.end_all();
        }
        if let Op::Crash { at: CrashAt::Within(_), .. } = op {
            self.crash_armed = true;
        }
    }

    fn end_all(&mut self) {
        self.batches.clear();
        self.empty_batches.clear();
        self.batch_keys.clear();
        self.snapshots.clear();
        self.iters.clear();
        self.keys.on_all_batches_end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{parse, print, validate};

    fn ops(seed: u64, n: usize) -> Vec<Op> {
        generate(seed, n, &Weights::default())
    }

    #[test]
    fn same_seed_same_ops_different_seed_different_ops() {
        assert_eq!(ops(7, 2000), ops(7, 2000));
        assert_ne!(ops(7, 2000), ops(8, 2000));
        // A prefix of a longer run is the shorter run.
        assert_eq!(ops(7, 500)[..], ops(7, 2000)[..500]);
        let f = generate_file(7, 300, &Weights::default().swarm(7));
        assert_eq!(f, generate_file(7, 300, &Weights::default().swarm(7)));
        assert_eq!(parse(&print(&f)).unwrap(), f);
    }

    #[test]
    fn child_streams_are_independent() {
        use rand::RngCore;
        let a: Vec<u64> = (0..4).map(|_| child_rng(1, "keys").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "same name, same stream");
        assert_ne!(child_rng(1, "keys").next_u64(), child_rng(1, "values").next_u64());
        assert_ne!(child_rng(1, "keys").next_u64(), child_rng(2, "keys").next_u64());
    }

    #[test]
    fn default_weights_cover_every_kind_and_round_trip() {
        let w = Weights::default();
        for k in OpKind::ALL {
            assert!(w.get(k) > 0, "{} has no weight", k.name());
        }
        assert_eq!(Weights::from_json(&w.to_json()).unwrap(), w);
        assert!(Weights::from_json(r#"{"put": 1, "fly": 2}"#)
            .unwrap_err()
            .to_string()
            .contains("fly"));
        assert!(Weights::from_json(r#"{"put": 0}"#).is_err());
        assert!(Weights::from_json("[1]").is_err());
    }

    #[test]
    fn swarm_disables_and_skews_deterministically() {
        let base = Weights::default();
        let a = base.swarm(3);
        assert_eq!(a, base.swarm(3));
        assert!(a.get(OpKind::Put) > 0);
        let variants: BTreeSet<String> = (0..20).map(|s| base.swarm(s).to_json()).collect();
        assert!(variants.len() > 15);
        let disabled: usize = (0..20)
            .map(|s| OpKind::ALL.iter().filter(|&&k| base.swarm(s).get(k) == 0).count())
            .sum();
        assert!(disabled > 20 * 4, "about a quarter of kinds off: {disabled}");
        for s in 0..20 {
            let sw = base.swarm(s);
            let g = generate(s, 400, &sw);
            for op in &g {
                assert!(sw.get(op.kind()) > 0 || op.kind() == OpKind::Get || is_fs_op(op), "{op}");
            }
            check_valid(&g);
        }
    }

    fn is_fs_op(op: &Op) -> bool {
        matches!(
            op,
            Op::Put { .. }
                | Op::Flush
                | Op::CompactRange { .. }
                | Op::Checkpoint
                | Op::FlushWal { .. }
                | Op::BackgroundSteps { .. }
        )
    }

    /// The shape's aim, checked against the engine: a put sized by
    /// `wal_block_tail_value_len` as the first write of a fresh database leaves its WAL
    /// exactly `tail` bytes short of 32 KiB. (If the log format changes, fix the figures.)
    #[test]
    fn wal_block_tail_shape_hits_its_target() {
        use std::sync::Arc;
        for tail in [0, 1, 6, 7, 8, 16] {
            let fs = Arc::new(cobble::MemFs::new());
            let opts = cobble::Options { fs: fs.clone(), ..cobble::Options::default() };
            let db = cobble::Db::open(opts, "/db").unwrap();
            let key = b"k0042@x7".to_vec();
            let len = wal_block_tail_value_len(key.len(), tail) as usize;
            db.put(&key, vec![b'v'; len], &cobble::WriteOptions { sync: true }).unwrap();
            let logs: Vec<String> = cobble::Fs::list(&*fs, std::path::Path::new("/db"))
                .unwrap()
                .into_iter()
                .filter(|n| n.ends_with(".log"))
                .collect();
            let wal_len = logs
                .iter()
                .map(|n| {
                    let path = std::path::Path::new("/db").join(n);
                    cobble::Fs::open(&*fs, &path).unwrap().len().unwrap()
                })
                .max()
                .unwrap();
            assert_eq!(wal_len, (WAL_BLOCK - tail) as u64, "tail {tail}");
            db.close().unwrap();
        }
    }

    #[test]
    fn generated_ops_are_valid() {
        for seed in 0..30 {
            check_valid(&ops(seed, 3000));
        }
    }

    #[test]
    fn generated_ops_exercise_every_kind_and_large_values() {
        let g = ops(11, 20_000);
        let kinds: BTreeSet<OpKind> = g.iter().map(Op::kind).collect();
        for k in OpKind::ALL {
            assert!(kinds.contains(&k), "{} never generated", k.name());
        }
        let lens: Vec<usize> = g
            .iter()
            .filter_map(|op| match op {
                Op::Put { value, .. } | Op::Merge { value, .. } | Op::BatchPut { value, .. } => {
                    Some(value.len())
                }
                _ => None,
            })
            .collect();
        assert!(lens.contains(&0));
        assert!(lens.iter().any(|&l| l >= 1 << 20), "a 1 MiB value");
        assert!(lens.iter().any(|&l| (4097..=65536).contains(&l)));
        // Single deletes happen on keys that hold a value.
        let sd_after_put = g.iter().enumerate().any(|(i, op)| match op {
            Op::SingleDelete { key, .. } => {
                g[..i].iter().any(|o| matches!(o, Op::Put { key: k, .. } if k == key))
            }
            _ => false,
        });
        assert!(sd_after_put);
        assert!(g.iter().any(|op| matches!(op, Op::IterNew { lower: None, upper: None, .. })));
        assert!(g
            .iter()
            .any(|op| matches!(op, Op::IterNew { lower: Some(_), upper: Some(_), .. })));
    }

    /// The generator's guarantees: what `validate` checks (written independently of the key
    /// manager), and an op that touches the filesystem after each `crash .. within n`.
    fn check_valid(ops: &[Op]) {
        if let Err(e) = validate(ops) {
            panic!("{e}");
        }
        for (i, pair) in ops.windows(2).enumerate() {
            if let Op::Crash { at: CrashAt::Within(_), .. } = pair[0] {
                assert!(
                    is_fs_op(&pair[1]),
                    "op {}: an armed crash needs an fs op: {}",
                    i + 1,
                    pair[1]
                );
            }
        }
    }
}
