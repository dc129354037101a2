//! Model test: random operations on a `Db` (MemFs, Manual scheduler, tiny sizes so flushes and
//! compactions happen every few ops) checked against a BTreeMap model with snapshot copies.
//!
//! The model is deliberately dumb: the current state is a `BTreeMap`, a snapshot is a clone of
//! it, a merge appends with ',' (StringAppend). Every read the DB serves, at the current state
//! or at a snapshot, must equal the model's answer.

use cobble::internal::sync::Arc;
use std::collections::BTreeMap;

use cobble::{
    Compression, Db, Error, Fs, MemFs, Options, ReadOptions, Scheduler, Snapshot, WriteBatch,
    WriteOptions,
};
use proptest::prelude::*;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// General keys: put, delete, merge, range-delete, all mixed.
const KEYS: usize = 24;
/// Single-delete keys: each is put once, then maybe single-deleted, never touched again.
const SD_KEYS: usize = 24;

fn key(i: usize) -> Vec<u8> {
    format!("k{:02}", i % KEYS).into_bytes()
}

fn sd_key(i: usize) -> Vec<u8> {
    format!("s{:02}", i % SD_KEYS).into_bytes()
}

/// A seek target or a bound: a real key, a key between two real ones, or one past either end.
#[derive(Debug, Clone)]
enum Target {
    Key(usize),
    After(usize),
    Sd(usize),
    Low,
    High,
}

impl Target {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Target::Key(i) => key(*i),
            Target::After(i) => {
                let mut k = key(*i);
                k.push(b'~');
                k
            }
            Target::Sd(i) => sd_key(*i),
            Target::Low => b"a".to_vec(),
            Target::High => b"zz".to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
enum Move {
    First,
    Last,
    Next,
    Prev,
    SeekGe(Target),
    SeekLt(Target),
}

#[derive(Debug, Clone)]
enum BatchOp {
    Put(usize, usize),
    Delete(usize),
    Merge(usize, u8),
    DeleteRange(usize, usize),
}

#[derive(Debug, Clone)]
enum Op {
    Put(usize, usize),
    /// A value larger than any memtable: the write gets a memtable of its own.
    PutBig(usize),
    Get(Target, Option<usize>),
    Delete(usize),
    /// Puts the next never-used single-delete key (a no-op once all are used).
    PutOnce(usize),
    /// Single-deletes the `n`th key that was put once and not yet single-deleted.
    SingleDelete(usize),
    Merge(usize, u8),
    DeleteRange(Target, Target),
    Batch(Vec<BatchOp>),
    TakeSnapshot,
    ReleaseSnapshot(usize),
    Iter {
        snap: Option<usize>,
        lower: Option<Target>,
        upper: Option<Target>,
        moves: Vec<Move>,
        step_midway: bool,
    },
    Flush,
    CompactRange(Option<Target>, Option<Target>),
    BackgroundStep,
    CheckAll,
    ReopenClose,
    ReopenDrop,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => (0..KEYS).prop_map(Target::Key),
        2 => (0..KEYS).prop_map(Target::After),
        1 => (0..SD_KEYS).prop_map(Target::Sd),
        1 => Just(Target::Low),
        1 => Just(Target::High),
    ]
}

fn mv() -> impl Strategy<Value = Move> {
    prop_oneof![
        1 => Just(Move::First),
        1 => Just(Move::Last),
        4 => Just(Move::Next),
        4 => Just(Move::Prev),
        2 => target().prop_map(Move::SeekGe),
        2 => target().prop_map(Move::SeekLt),
    ]
}

fn batch_op() -> impl Strategy<Value = BatchOp> {
    prop_oneof![
        4 => (0..KEYS, 0..200usize).prop_map(|(k, v)| BatchOp::Put(k, v)),
        2 => (0..KEYS).prop_map(BatchOp::Delete),
        3 => (0..KEYS, b'a'..=b'z').prop_map(|(k, v)| BatchOp::Merge(k, v)),
        1 => (0..KEYS, 0..KEYS).prop_map(|(a, b)| BatchOp::DeleteRange(a, b)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..KEYS, 0..200usize).prop_map(|(k, v)| Op::Put(k, v)),
        1 => (0..KEYS).prop_map(Op::PutBig),
        4 => (target(), proptest::option::of(0..4usize)).prop_map(|(t, s)| Op::Get(t, s)),
        4 => (0..KEYS).prop_map(Op::Delete),
        3 => (0..200usize).prop_map(Op::PutOnce),
        2 => (0..SD_KEYS).prop_map(Op::SingleDelete),
        6 => (0..KEYS, b'a'..=b'z').prop_map(|(k, v)| Op::Merge(k, v)),
        2 => (target(), target()).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        2 => proptest::collection::vec(batch_op(), 1..6).prop_map(Op::Batch),
        2 => Just(Op::TakeSnapshot),
        1 => (0..4usize).prop_map(Op::ReleaseSnapshot),
        3 => (
            proptest::option::of(0..4usize),
            proptest::option::weighted(0.3, target()),
            proptest::option::weighted(0.3, target()),
            proptest::collection::vec(mv(), 1..12),
            proptest::bool::weighted(0.2),
        )
            .prop_map(|(snap, lower, upper, moves, step_midway)| Op::Iter {
                snap,
                lower,
                upper,
                moves,
                step_midway
            }),
        1 => Just(Op::Flush),
        1 => (proptest::option::of(target()), proptest::option::of(target()))
            .prop_map(|(a, b)| Op::CompactRange(a, b)),
        3 => Just(Op::BackgroundStep),
        1 => Just(Op::CheckAll),
        1 => Just(Op::ReopenClose),
        1 => Just(Op::ReopenDrop),
    ]
}

#[derive(Debug, Clone)]
struct Sizes {
    memtable_size: usize,
    block_size: usize,
    target_file_size: u64,
    l0_compaction_threshold: usize,
    lbase_max_bytes: u64,
    index_block_size: usize,
    cache_size: usize,
    max_open_files: usize,
    lz4: bool,
    bloom_bits_per_key: usize,
    restart_interval: usize,
    disable_wal: bool,
    memtable_stop_writes_threshold: usize,
    /// Manual, unless a test switches it to Threads.
    scheduler: Scheduler,
}

fn sizes() -> impl Strategy<Value = Sizes> {
    (
        (2048usize..8192, prop_oneof![9 => 64usize..256, 1 => Just(1usize)]),
        (1024u64..4096, 1usize..=4, 2048u64..8192),
        (32usize..256, prop_oneof![3 => Just(1usize), 7 => 1024usize..65536]),
        (prop_oneof![3 => Just(1usize), 7 => 2usize..100], any::<bool>()),
        (prop_oneof![Just(0usize), Just(10usize)], 1usize..17),
        (proptest::bool::weighted(0.15), 2usize..5),
    )
        .prop_map(
            |(
                (memtable_size, block_size),
                (target_file_size, l0_compaction_threshold, lbase_max_bytes),
                (index_block_size, cache_size),
                (max_open_files, lz4),
                (bloom_bits_per_key, restart_interval),
                (disable_wal, memtable_stop_writes_threshold),
            )| Sizes {
                memtable_size,
                block_size,
                target_file_size,
                l0_compaction_threshold,
                lbase_max_bytes,
                index_block_size,
                cache_size,
                max_open_files,
                lz4,
                bloom_bits_per_key,
                restart_interval,
                disable_wal,
                memtable_stop_writes_threshold,
                scheduler: Scheduler::Manual,
            },
        )
}

fn options(fs: &MemFs, s: &Sizes) -> Options {
    Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: s.memtable_size,
        block_size: s.block_size,
        target_file_size: s.target_file_size,
        l0_compaction_threshold: s.l0_compaction_threshold,
        l0_stop_writes_threshold: s.l0_compaction_threshold + 4,
        lbase_max_bytes: s.lbase_max_bytes,
        level_multiplier: 2,
        index_block_size: s.index_block_size,
        cache_size: s.cache_size,
        max_open_files: s.max_open_files,
        compression: if s.lz4 { Compression::Lz4 } else { Compression::None },
        bloom_bits_per_key: s.bloom_bits_per_key,
        restart_interval: s.restart_interval,
        disable_wal: s.disable_wal,
        memtable_stop_writes_threshold: s.memtable_stop_writes_threshold,
        max_manifest_file_size: 2048,
        scheduler: s.scheduler,
        ..Options::default()
    }
}

/// A value of varying length (so memtables fill at different rates), tagged with the op index.
fn value(op_index: usize, v: usize) -> Vec<u8> {
    let mut out = format!("v{op_index}.").into_bytes();
    out.resize(out.len() + v % 97, b'a' + (v % 26) as u8);
    out
}

fn merge_into(map: &mut Map, k: Vec<u8>, operand: u8) {
    match map.get_mut(&k) {
        Some(v) => {
            v.push(b',');
            v.push(operand);
        }
        None => {
            map.insert(k, vec![operand]);
        }
    }
}

fn delete_range(map: &mut Map, start: &[u8], end: &[u8]) {
    let doomed: Vec<Vec<u8>> =
        map.range(start.to_vec()..end.to_vec()).map(|(k, _)| k.clone()).collect();
    for k in doomed {
        map.remove(&k);
    }
}

/// The model's iterator: sorted keys within bounds, and a position.
struct ModelIter {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    pos: Option<usize>,
}

impl ModelIter {
    fn new(map: &Map, lower: Option<&[u8]>, upper: Option<&[u8]>) -> ModelIter {
        let entries = map
            .iter()
            .filter(|(k, _)| lower.is_none_or(|l| k.as_slice() >= l))
            .filter(|(k, _)| upper.is_none_or(|u| k.as_slice() < u))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        ModelIter { entries, pos: None }
    }

    fn apply(&mut self, m: &Move) {
        let n = self.entries.len();
        self.pos = match m {
            Move::First => (n > 0).then_some(0),
            Move::Last => n.checked_sub(1),
            Move::Next => self.pos.and_then(|p| (p + 1 < n).then_some(p + 1)),
            Move::Prev => self.pos.and_then(|p| p.checked_sub(1)),
            Move::SeekGe(t) => {
                let t = t.bytes();
                let i = self.entries.partition_point(|(k, _)| *k < t);
                (i < n).then_some(i)
            }
            Move::SeekLt(t) => {
                let t = t.bytes();
                self.entries.partition_point(|(k, _)| *k < t).checked_sub(1)
            }
        };
    }

    fn current(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        self.pos.map(|p| self.entries[p].clone())
    }
}

fn scan(db: &Db, ro: &ReadOptions) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = db.iter(ro).expect("iter");
    let mut out = Vec::new();
    let mut ok = it.first().expect("first");
    while ok {
        out.push((it.key().to_vec(), it.value().to_vec()));
        ok = it.next().expect("next");
    }
    out
}

fn scan_reverse(db: &Db, ro: &ReadOptions) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = db.iter(ro).expect("iter");
    let mut out = Vec::new();
    let mut ok = it.last().expect("last");
    while ok {
        out.push((it.key().to_vec(), it.value().to_vec()));
        ok = it.prev().expect("prev");
    }
    out.reverse();
    out
}

/// Entries as short text: runs of one byte shrink to `x*n`, so failures stay readable.
fn show(entries: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut out = String::new();
    for (k, v) in entries {
        out.push_str(&String::from_utf8_lossy(k));
        out.push('=');
        out.push_str(&short(v));
        out.push(' ');
    }
    out
}

fn short(v: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let run = v[i..].iter().take_while(|&&b| b == v[i]).count();
        if run > 3 {
            out.push_str(&format!("{}*{run}", v[i] as char));
        } else {
            out.push_str(&String::from_utf8_lossy(&v[i..i + run]));
        }
        i += run;
    }
    out
}

/// Every key (both namespaces, plus a few absent ones) read with `get`, and both scans.
fn check_view(db: &Db, ro: &ReadOptions, model: &Map, what: &str) {
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(show(&scan(db, ro)), show(&expected), "{what}: forward scan");
    assert_eq!(show(&scan_reverse(db, ro)), show(&expected), "{what}: reverse scan");
    let keys = (0..KEYS).map(key).chain((0..SD_KEYS).map(sd_key)).chain([b"k".to_vec()]);
    for k in keys {
        assert_eq!(db.get(ro, &k).expect("get"), model.get(&k).cloned(), "{what}: get {k:?}");
    }
}

struct Harness {
    fs: MemFs,
    sizes: Sizes,
    db: Option<Db>,
    model: Map,
    snaps: Vec<(Snapshot, Map)>,
    /// Flushes and compactions of earlier incarnations (metrics restart at each open).
    flushes: u64,
    compactions: u64,
    /// Single-delete keys: 0 = never used, 1 = put once, 2 = single-deleted (retired).
    sd_state: Vec<u8>,
}

impl Harness {
    fn db(&self) -> &Db {
        self.db.as_ref().expect("db open")
    }

    fn reopen(&mut self, clean: bool) {
        // A restart ends snapshots.
        self.snaps.clear();
        let db = self.db.take().expect("db open");
        let m = db.metrics();
        self.flushes += m.flushes;
        self.compactions += m.compactions;
        if clean {
            db.close().expect("close");
            assert!(db.leaks().is_empty(), "{:?}", db.leaks());
        }
        drop(db);
        self.db = Some(Db::open(options(&self.fs, &self.sizes), "/db").expect("reopen"));
    }

    fn snap_view(&self, i: Option<usize>) -> (ReadOptions, &Map) {
        match i.filter(|_| !self.snaps.is_empty()) {
            Some(i) => {
                let (s, m) = &self.snaps[i % self.snaps.len()];
                (ReadOptions { snapshot: Some(s.clone()), ..Default::default() }, m)
            }
            None => (ReadOptions::default(), &self.model),
        }
    }

    fn run(&mut self, i: usize, op: &Op) {
        let wo = WriteOptions::default();
        match op {
            Op::Put(k, v) => {
                let val = value(i, *v);
                self.db().put(key(*k), &val, &wo).expect("put");
                self.model.insert(key(*k), val);
            }
            Op::PutBig(k) => {
                let mut val = value(i, 0);
                val.resize(9000, b'B');
                self.db().put(key(*k), &val, &wo).expect("put big");
                self.model.insert(key(*k), val);
            }
            Op::Get(t, s) => {
                let (ro, m) = self.snap_view(*s);
                let k = t.bytes();
                assert_eq!(self.db().get(&ro, &k).expect("get"), m.get(&k).cloned(), "get {k:?}");
            }
            Op::Delete(k) => {
                self.db().delete(key(*k), &wo).expect("delete");
                self.model.remove(&key(*k));
            }
            Op::PutOnce(v) => {
                if let Some(j) = self.sd_state.iter().position(|&s| s == 0) {
                    let val = value(i, *v);
                    self.db().put(sd_key(j), &val, &wo).expect("put once");
                    self.model.insert(sd_key(j), val);
                    self.sd_state[j] = 1;
                }
            }
            Op::SingleDelete(n) => {
                let live: Vec<usize> = (0..SD_KEYS).filter(|&j| self.sd_state[j] == 1).collect();
                if !live.is_empty() {
                    let j = live[n % live.len()];
                    self.db().single_delete(sd_key(j), &wo).expect("single_delete");
                    self.model.remove(&sd_key(j));
                    self.sd_state[j] = 2;
                }
            }
            Op::Merge(k, operand) => {
                self.db().merge(key(*k), [*operand], &wo).expect("merge");
                merge_into(&mut self.model, key(*k), *operand);
            }
            Op::DeleteRange(a, b) => {
                let (a, b) = (a.bytes(), b.bytes());
                let r = self.db().delete_range(&a, &b, &wo);
                if a > b {
                    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
                } else {
                    r.expect("delete_range");
                    delete_range(&mut self.model, &a, &b);
                }
            }
            Op::Batch(ops) => {
                let mut batch = WriteBatch::new();
                let mut next = self.model.clone();
                let mut invalid = false;
                for (j, bop) in ops.iter().enumerate() {
                    match bop {
                        BatchOp::Put(k, v) => {
                            let val = value(i * 10 + j, *v);
                            batch.put(key(*k), &val);
                            next.insert(key(*k), val);
                        }
                        BatchOp::Delete(k) => {
                            batch.delete(key(*k));
                            next.remove(&key(*k));
                        }
                        BatchOp::Merge(k, o) => {
                            batch.merge(key(*k), [*o]);
                            merge_into(&mut next, key(*k), *o);
                        }
                        BatchOp::DeleteRange(a, b) => {
                            batch.delete_range(key(*a), key(*b));
                            invalid |= a > b;
                            if a <= b {
                                delete_range(&mut next, &key(*a), &key(*b));
                            }
                        }
                    }
                }
                let r = self.db().write(batch, &wo);
                if invalid {
                    // The whole batch is refused and nothing of it applies.
                    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
                } else {
                    r.expect("write batch");
                    self.model = next;
                }
            }
            Op::TakeSnapshot => {
                if self.snaps.len() >= 4 {
                    self.snaps.remove(0);
                }
                let s = self.db().snapshot();
                self.snaps.push((s, self.model.clone()));
            }
            Op::ReleaseSnapshot(n) => {
                if !self.snaps.is_empty() {
                    let n = n % self.snaps.len();
                    self.snaps.remove(n);
                }
            }
            Op::Iter { snap, lower, upper, moves, step_midway } => {
                let (mut ro, m) = self.snap_view(*snap);
                ro.lower_bound = lower.as_ref().map(Target::bytes);
                ro.upper_bound = upper.as_ref().map(Target::bytes);
                let mut mi =
                    ModelIter::new(m, ro.lower_bound.as_deref(), ro.upper_bound.as_deref());
                let mut late_writes = None;
                let mut it = self.db().iter(&ro).expect("iter");
                for (j, mv) in moves.iter().enumerate() {
                    if *step_midway && j == moves.len() / 2 {
                        // The iterator keeps its view while writes land and the LSM changes
                        // under it.
                        let late = format!("late{i}").into_bytes();
                        self.db().put(key(i), &late, &wo).expect("put");
                        self.db().merge(key(i + 1), b"L", &wo).expect("merge");
                        let (a, b) = (key(i + 2), key(i + 5));
                        if a <= b {
                            self.db().delete_range(&a, &b, &wo).expect("delete_range");
                        }
                        self.db().flush().expect("flush");
                        while self.db().run_background_step().expect("step") {}
                        late_writes = Some(late);
                    }
                    let ok = match mv {
                        Move::First => it.first(),
                        Move::Last => it.last(),
                        Move::Next => it.next(),
                        Move::Prev => it.prev(),
                        Move::SeekGe(t) => it.seek_ge(&t.bytes()),
                        Move::SeekLt(t) => it.seek_lt(&t.bytes()),
                    }
                    .expect("iterator move");
                    mi.apply(mv);
                    let got = ok.then(|| (it.key().to_vec(), it.value().to_vec()));
                    assert_eq!(got, mi.current(), "iterator move {j} {mv:?} (bounds {ro:?})");
                    assert_eq!(ok, it.valid());
                }
                if let Some(late) = late_writes {
                    self.model.insert(key(i), late);
                    merge_into(&mut self.model, key(i + 1), b'L');
                    if key(i + 2) <= key(i + 5) {
                        delete_range(&mut self.model, &key(i + 2), &key(i + 5));
                    }
                }
            }
            Op::Flush => self.db().flush().expect("flush"),
            Op::CompactRange(a, b) => {
                let (a, b) = (a.as_ref().map(Target::bytes), b.as_ref().map(Target::bytes));
                self.db().compact_range(a.as_deref(), b.as_deref()).expect("compact_range");
            }
            Op::BackgroundStep => {
                self.db().run_background_step().expect("background step");
            }
            Op::CheckAll => {
                check_view(self.db(), &ReadOptions::default(), &self.model, "now");
                for (n, (s, m)) in self.snaps.iter().enumerate() {
                    let ro = ReadOptions { snapshot: Some(s.clone()), ..Default::default() };
                    check_view(self.db(), &ro, m, &format!("snapshot {n}"));
                }
                self.db().check_invariants().expect("invariants");
            }
            Op::ReopenClose => self.reopen(true),
            Op::ReopenDrop => self.reopen(false),
        }
    }
}

/// Runs one case; returns the flushes and compactions it caused.
fn run_case(sizes: Sizes, ops: Vec<Op>) -> (u64, u64) {
    let fs = MemFs::new();
    let db = Db::open(options(&fs, &sizes), "/db").expect("open");
    let mut h = Harness {
        fs,
        sizes,
        db: Some(db),
        model: Map::new(),
        snaps: Vec::new(),
        sd_state: vec![0; SD_KEYS],
        flushes: 0,
        compactions: 0,
    };
    for (i, op) in ops.iter().enumerate() {
        h.run(i, op);
    }
    h.run(ops.len(), &Op::CheckAll);
    h.snaps.clear();
    h.reopen(false);
    h.run(ops.len(), &Op::CheckAll);
    let db = h.db.take().expect("db open");
    db.check_invariants().expect("invariants");
    let m = db.metrics();
    db.close().expect("close");
    assert!(db.leaks().is_empty(), "{:?}", db.leaks());
    (h.flushes + m.flushes, h.compactions + m.compactions)
}

proptest! {
    // MODEL_CASES raises the count for a soak run; CI runs 1000.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("MODEL_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000),
        // Integration tests have no lib.rs for proptest to find: name the file outright.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/model.txt"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn db_matches_model(sizes in sizes(), ops in proptest::collection::vec(op(), 1..250)) {
        let (flushes, compactions) = run_case(sizes, ops);
        if std::env::var_os("MODEL_STATS").is_some() {
            eprintln!("STATS flushes={flushes} compactions={compactions}");
        }
    }
}

proptest! {
    // The same model under background threads: nothing is deterministic about when flushes
    // and compactions run, but every read must still match. Fewer cases: threads cost.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("MODEL_THREADS_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/model.txt"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn db_matches_model_under_threads(
        sizes in sizes(),
        ops in proptest::collection::vec(op(), 1..250),
        compactions in 1usize..3,
    ) {
        let sizes = Sizes {
            scheduler: Scheduler::Threads { max_concurrent_compactions: compactions },
            ..sizes
        };
        run_case(sizes, ops);
    }
}

/// A fixed, longer run, so the deeper levels fill at least once whatever proptest draws.
#[test]
fn long_fixed_run() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let sizes = sizes().new_tree(&mut runner).expect("sizes").current();
    let ops =
        proptest::collection::vec(op(), 1500..1501).new_tree(&mut runner).expect("ops").current();
    let (flushes, compactions) = run_case(sizes, ops);
    assert!(flushes > 20 && compactions > 10, "flushes={flushes} compactions={compactions}");
}

/// The first bug this test found. L0 files overlap one another, and `Version::overlapping` used
/// to return only the L0 files touching `[start, end]`. `compact_range(k01..)` then moved a
/// newer L0 file holding a range tombstone `[a, k08)` to L1 while an older L0 file holding only
/// `k00` stayed behind; the compaction dropped the tombstone (no level below L1 had data) and
/// the old `k00` came back. Now an L0 range grows until no other L0 file overlaps it, so the
/// inputs hold every older version of every key they cover.
#[test]
fn regression_l0_compact_range_leaves_older_file() {
    let sizes = Sizes {
        memtable_size: 2048,
        block_size: 64,
        target_file_size: 1024,
        l0_compaction_threshold: 1,
        lbase_max_bytes: 2048,
        index_block_size: 32,
        cache_size: 1,
        max_open_files: 1,
        lz4: false,
        bloom_bits_per_key: 0,
        restart_interval: 1,
        disable_wal: false,
        memtable_stop_writes_threshold: 4,
        scheduler: Scheduler::Manual,
    };
    let ops = vec![
        Op::Put(0, 0),
        Op::ReopenClose,
        Op::Merge(7, b'a'),
        Op::Put(0, 0),
        Op::Flush,
        Op::DeleteRange(Target::Low, Target::Key(8)),
        Op::CompactRange(Some(Target::Key(1)), None),
    ];
    run_case(sizes, ops);
}
