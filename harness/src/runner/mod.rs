//! The runner: executes one ops sequence against Cobble under one engine config, on its own
//! `SimFs`, and checks every result as it goes.
//!
//! Oracles applied here (the cross-config diff lives in `check.rs`):
//! - **Reference model**: every read (get, snapshot get, iterator position) must equal the
//!   model's answer; every write must be accepted or refused exactly as the model says.
//! - **Durability bounds** after every crash and every fault-triggered reopen: the recovered
//!   `last_seqnum()` L is a commit point with `synced <= L <= last written`, and a full scan
//!   equals the model's state after L. Writes after L are then re-applied in order, as a
//!   client retrying unacknowledged writes would, so every config continues from the same
//!   logical state.
//! - **Invariants at every close**: no iterator, snapshot, cache handle or memtable byte
//!   outstanding; levels sorted and non-overlapping; exactly the live files left on disk.
//!
//! History: one line per op, `<index> <op> -> <result>`, revealing nothing of the LSM shape, so
//! histories compare across configs. Lines starting with `#` are notes (losses, injected
//! errors) that differ between configs and that the diff ignores.
//!
//! Faults: write, sync and namespace errors (and, now and then, a disk that fills up: ENOSPC)
//! are injected only while no iterator or snapshot is
//! open (a poisoned database must be reopened, which would end them in this config alone);
//! read errors are injected always, and the read is retried with faults off.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use cobble::{Db, Error, ReadOptions, Snapshot, WriteBatch, WriteOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod attribution;
mod checks;
mod close_race;

use attribution::Marks;
use checks::Budget;

use crate::config::EngineConfig;
use crate::model::{Model, ModelError, Write};
use crate::ops::{self, BatchId, CrashAt, IterId, Op, SnapshotId};
use crate::sim::{
    CrashPolicy, FaultConfig, FaultKind, FaultRecord, PlantedFault, PlantedFs, SimFs,
};

/// Where every database lives inside its SimFs.
pub const DB_DIR: &str = "/db";

/// Settings shared by every config of one run.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// The run's seed: SimFs seeds and crash decisions derive from it.
    pub seed: u64,
    /// Chance that a filesystem call fails with an injected error (0 = none).
    pub error_rate: f64,
    /// A deliberate bug between the engine and SimFs, to prove the oracles catch it.
    pub planted: Option<PlantedFault>,
}

/// What kind of check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Oracle {
    /// A result differs from the reference model.
    Model,
    /// A crash lost a synced write, kept a partial batch, or recovered something never written.
    Durability,
    /// Something leaked or an LSM invariant broke at close.
    Invariant,
    /// The engine returned an error the fault model does not explain.
    Engine,
    /// Two configs disagree (set by the cross-config diff).
    Diff,
    /// The same config twice gave different histories or images.
    Determinism,
    /// Background work left undone after draining: a stall that never resolves, L0 or a
    /// level over its threshold, an obsolete file left behind.
    Liveness,
    /// Memtables and block cache held more than the configured budget.
    Memory,
    /// The engine (or user code it runs) panicked; the message says where (`watchdog.rs`).
    Panic,
    /// An op or a drain made no progress for the hang timeout (`watchdog.rs`).
    Hang,
    /// The process running the seed died: an abort, a stack overflow, a signal (`supervise.rs`).
    Abort,
}

impl Oracle {
    /// The name used in reports and triage signatures.
    pub fn name(self) -> &'static str {
        match self {
            Oracle::Model => "model",
            Oracle::Durability => "durability",
            Oracle::Invariant => "invariant",
            Oracle::Engine => "engine",
            Oracle::Diff => "diff",
            Oracle::Determinism => "determinism",
            Oracle::Liveness => "liveness",
            Oracle::Memory => "memory",
            Oracle::Panic => "panic",
            Oracle::Hang => "hang",
            Oracle::Abort => "abort",
        }
    }
}

/// A failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub oracle: Oracle,
    /// The op being executed (index into the ops), if any.
    pub op_index: Option<usize>,
    pub message: String,
}

/// Counters of one config's run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub ops_executed: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub unsynced_bytes_dropped: u64,
    pub dir_entries_dropped: u64,
    pub torn_writes: u64,
    pub errors_injected: u64,
    pub fault_reopens: u64,
    pub writes_lost: u64,
    /// ENOSPC, short writes, corrupt reads, rot, and where faults and crashes struck.
    pub faults: FaultTally,
}

impl RunStats {
    /// Adds another run's counters.
    pub fn add(&mut self, o: &RunStats) {
        self.ops_executed += o.ops_executed;
        self.crashes += o.crashes;
        self.restarts += o.restarts;
        self.unsynced_bytes_dropped += o.unsynced_bytes_dropped;
        self.dir_entries_dropped += o.dir_entries_dropped;
        self.torn_writes += o.torn_writes;
        self.errors_injected += o.errors_injected;
        self.fault_reopens += o.fault_reopens;
        self.writes_lost += o.writes_lost;
        self.faults.add(&o.faults);
    }
}

/// The fault-model counters of one seed or of a whole campaign, and where faults landed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FaultTally {
    pub storage_full_errors: u64,
    pub short_writes: u64,
    pub corrupt_reads: u64,
    pub rotted_sectors: u64,
    pub rot_reads: u64,
    /// `"<what>/<file kind>/<call>"` -> count (`"error/wal/sync"`, `"crash/sst/append"`, `"crash/boundary/-"`).
    pub coverage: std::collections::BTreeMap<String, u64>,
}

impl FaultTally {
    /// Adds another tally.
    pub fn add(&mut self, o: &FaultTally) {
        self.storage_full_errors += o.storage_full_errors;
        self.short_writes += o.short_writes;
        self.corrupt_reads += o.corrupt_reads;
        self.rotted_sectors += o.rotted_sectors;
        self.rot_reads += o.rot_reads;
        for (k, v) in &o.coverage {
            *self.coverage.entry(k.clone()).or_default() += v;
        }
    }

    /// The expected fault classes ([`EXPECTED_COVERAGE`]) never hit.
    pub fn never_hit(&self) -> Vec<String> {
        EXPECTED_COVERAGE
            .iter()
            .filter(|k| !self.coverage.contains_key(**k))
            .map(|k| k.to_string())
            .collect()
    }
}

/// The fault classes a campaign is meant to reach, `"<what>/<file kind>/<call>"` as in
/// [`FaultTally::coverage`]: a nightly lists those it never hit.
pub const EXPECTED_COVERAGE: &[&str] = &[
    "error/wal/append",
    "error/wal/sync",
    "error/sst/append",
    "error/sst/sync",
    "error/sst/read",
    "error/manifest/append",
    "error/manifest/sync",
    "error/temp/sync",
    "error/dir/sync dir",
    "error/current/rename",
    "enospc/wal/append",
    "enospc/sst/append",
    "short-write/wal/append",
    "corrupt-read/sst/read",
    "rot-read/sst/read",
    "crash/wal/append",
    "crash/wal/sync",
    "crash/sst/append",
    "crash/sst/sync",
    "crash/manifest/append",
    "crash/manifest/sync",
    "crash/temp/sync",
    "crash/current/rename",
    "crash/dir/sync dir",
    "crash/boundary/-",
    "failed-sync-all/manifest/sync",
    "failed-sync-part/wal/sync",
    "failed-sync-part/dir/sync dir",
    "poison/-/reopen",
    "poison/-/resume",
    "poison/-/crash-keep",
    "poison/-/crash-torn",
    "poison/-/crash-drop",
    "close-race/-/close",
];

/// The kind of database file a path names, for coverage.
pub fn file_kind(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".log") {
        "wal"
    } else if name.ends_with(".sst") {
        "sst"
    } else if name.starts_with("MANIFEST-") {
        "manifest"
    } else if name == "CURRENT" {
        "current"
    } else if name.ends_with(".dbtmp") {
        "temp"
    } else if name == "LOCK" {
        "lock"
    } else if !name.contains('.') {
        "dir"
    } else {
        "other"
    }
}

/// The outcome of one config's run.
#[derive(Clone, Debug)]
pub struct ConfigRun {
    pub config: EngineConfig,
    /// History lines, comments included.
    pub history: Vec<String>,
    pub failure: Option<Failure>,
    pub stats: RunStats,
    /// Hash of the final SimFs image (meaningful for deterministic configs).
    pub image_hash: u64,
}

impl ConfigRun {
    /// The history without comment lines: what must match across configs.
    pub fn comparable_history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(String::as_str).filter(|l| !l.starts_with('#'))
    }
}

/// Runs `ops` under `config` and checks every result. Never panics on an engine failure:
/// a panic inside the engine is caught and reported as a `Panic` failure.
pub fn run_config(ops: &[Op], config: &EngineConfig, settings: &RunSettings) -> ConfigRun {
    let mut exec = Exec::new(config, settings);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exec.run(ops)));
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(f)) => Some(f),
        Err(panic) => {
            // `panicked at LOC: MSG`, the location recorded by the watchdog's quiet hook.
            let message = crate::watchdog::panic_message(&*panic);
            Some(Failure { oracle: Oracle::Panic, op_index: exec.current_op, message })
        }
    };
    if let Some(f) = &failure {
        exec.history.push(format!("# FAILURE ({}): {}", f.oracle.name(), f.message));
    }
    // Tear down without checks; a failed run may have left anything open.
    exec.iters.clear();
    exec.snapshots.clear();
    let db = exec.db.take();
    drop(db);
    exec.absorb_fs_stats();
    ConfigRun {
        config: config.clone(),
        history: exec.history,
        failure,
        stats: exec.stats,
        image_hash: exec.fs.image_hash(),
    }
}

struct IterState {
    it: cobble::Iterator,
    seq: u64,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    /// The model's view: the visible pairs within the bounds at `seq`.
    list: Vec<(Vec<u8>, Vec<u8>)>,
    pos: Option<usize>,
}

struct Exec {
    config: EngineConfig,
    deterministic: bool,
    absolute_consistency: bool,
    wal_disabled: bool,
    settings: RunSettings,
    fs: SimFs,
    db: Option<Db>,
    model: Model,
    batches: BTreeMap<BatchId, (WriteBatch, Vec<Write>)>,
    snapshots: BTreeMap<SnapshotId, (Snapshot, u64)>,
    iters: BTreeMap<IterId, IterState>,
    /// Every write up to here was acknowledged as durable.
    synced_seq: u64,
    /// Every write up to here was acknowledged (durable or not): a recovery that keeps
    /// everything volatile (a clean reopen, `resume`, a `keep` crash) must keep these.
    acked_seq: u64,
    history: Vec<String>,
    stats: RunStats,
    rng: ChaCha8Rng,
    current_op: Option<usize>,
    /// A crash armed by `crash ... within n` for the op being executed.
    armed: Option<ops::CrashPolicy>,
    reopen_count: u64,
    /// Where the evidence windows of fault attribution start.
    marks: Marks,
    budget: Budget,
    /// The largest arena a single write needed (it gets an arena of its own when it exceeds
    /// `memtable_size`).
    largest_write_arena: u64,
}

type Check<T> = Result<T, Failure>;

/// How the runner carries on after a fault poisoned the database (`recover_from_poison`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PoisonRecovery {
    /// Close, and open again on the same filesystem: everything volatile survives.
    Reopen,
    /// `Db::resume()` once the fault has cleared.
    Resume,
    /// The process dies and the machine with it: a crash under this policy.
    Crash(ops::CrashPolicy),
}

impl PoisonRecovery {
    const ALL: [PoisonRecovery; 5] = [
        PoisonRecovery::Reopen,
        PoisonRecovery::Resume,
        PoisonRecovery::Crash(ops::CrashPolicy::Keep),
        PoisonRecovery::Crash(ops::CrashPolicy::Torn),
        PoisonRecovery::Crash(ops::CrashPolicy::Drop),
    ];

    fn name(self) -> &'static str {
        match self {
            PoisonRecovery::Reopen => "reopen",
            PoisonRecovery::Resume => "resume",
            PoisonRecovery::Crash(p) => match p {
                ops::CrashPolicy::Keep => "crash-keep",
                ops::CrashPolicy::Torn => "crash-torn",
                ops::CrashPolicy::Dirs => "crash-dirs",
                ops::CrashPolicy::Drop => "crash-drop",
            },
        }
    }
}

fn fmt_bytes(b: &[u8]) -> String {
    if b.len() <= 40 {
        ops::format::quote(b)
    } else {
        let mut h = crate::sim::Fnv64::default();
        h.write(b);
        format!("<{} bytes {:016x}>", b.len(), h.finish())
    }
}

fn fmt_value(v: &Option<Vec<u8>>) -> String {
    match v {
        Some(v) => fmt_bytes(v),
        None => "not-found".to_string(),
    }
}

fn fmt_pos(pos: Option<(&[u8], &[u8])>) -> String {
    match pos {
        Some((k, v)) => format!("{}={}", fmt_bytes(k), fmt_bytes(v)),
        None => ".".to_string(),
    }
}

impl Exec {
    fn new(config: &EngineConfig, settings: &RunSettings) -> Exec {
        let opts = config.to_options(Arc::new(cobble::MemFs::new()));
        let mut h = crate::sim::Fnv64::default();
        h.write_u64(settings.seed);
        h.write(config.name.as_bytes());
        let config_seed = h.finish();
        let budget = Budget::new(&opts);
        Exec {
            config: config.clone(),
            deterministic: matches!(opts.scheduler, cobble::Scheduler::Manual),
            absolute_consistency: opts.wal_recovery_mode
                == cobble::WalRecoveryMode::AbsoluteConsistency,
            wal_disabled: opts.disable_wal,
            settings: settings.clone(),
            fs: SimFs::new(settings.seed),
            db: None,
            model: Model::with_merge(config.merge_kind()),
            batches: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            iters: BTreeMap::new(),
            synced_seq: 0,
            acked_seq: 0,
            history: Vec::new(),
            stats: RunStats::default(),
            rng: ChaCha8Rng::seed_from_u64(config_seed),
            current_op: None,
            armed: None,
            reopen_count: 0,
            marks: Marks::default(),
            budget,
            largest_write_arena: 0,
        }
    }

    /// True when SimFs's evidence explains `e` (see `attribution`).
    fn is_fault(&self, e: &Error) -> bool {
        attribution::explain(&self.fs, self.marks, self.deterministic, e).is_ok()
    }

    /// The failure for an engine error that no fault explains.
    fn unexplained<T>(&self, what: &str, e: &Error) -> Check<T> {
        // A panic the engine caught (in a background worker, or user code it ran) and turned
        // into an error is a panic finding, whichever call meets it.
        let panicked = match e {
            Error::Panicked { .. } => true,
            Error::Poisoned { cause } => matches!(**cause, Error::Panicked { .. }),
            _ => false,
        };
        if panicked {
            return self.fail(Oracle::Panic, format!("{what} failed: the engine caught a {e}"));
        }
        let why = attribution::explain(&self.fs, self.marks, self.deterministic, e)
            .err()
            .unwrap_or_default();
        self.fail(
            Oracle::Engine,
            format!(
                "{what} failed: {e}; unexplained: {why}; {}",
                attribution::last_fault(&self.fs)
            ),
        )
    }

    /// Adds the current SimFs instance's counters and fault log to the run's stats; called
    /// before the instance is replaced (a crash image) and at the end.
    fn absorb_fs_stats(&mut self) {
        let st = self.fs.stats();
        self.stats.errors_injected += st.errors_injected;
        let f = &mut self.stats.faults;
        f.storage_full_errors += st.storage_full_errors;
        f.short_writes += st.short_writes;
        f.corrupt_reads += st.corrupt_reads;
        f.rotted_sectors += st.rotted_sectors;
        f.rot_reads += st.rot_reads;
        for r in self.fs.faults_after(0) {
            let what = match r.kind {
                FaultKind::StorageFull => "enospc",
                FaultKind::ShortWrite => "short-write",
                FaultKind::CorruptRead => "corrupt-read",
                FaultKind::RotRead => "rot-read",
                _ => "error",
            };
            self.count_coverage(what, &r.path, r.op);
            if matches!(r.persisted, "all" | "part") {
                // A failed sync that made (some of) its work durable anyway (rule 12).
                self.count_coverage(&format!("failed-sync-{}", r.persisted), &r.path, r.op);
            }
            if r.kind == FaultKind::ShortWrite {
                // A short write is a write error too.
                self.count_coverage("error", &r.path, r.op);
            }
        }
        if let Some(c) = self.fs.crash_point() {
            self.count_coverage("crash", &c.path, c.op);
        }
    }

    fn count_coverage(&mut self, what: &str, path: &str, call: &str) {
        let key = format!("{what}/{}/{call}", file_kind(path));
        *self.stats.faults.coverage.entry(key).or_default() += 1;
    }

    /// Replaces the filesystem with a crash image, keeping the old instance's counters.
    fn replace_fs(&mut self, image: SimFs) {
        self.absorb_fs_stats();
        self.fs = image;
        self.marks = Marks::default();
    }

    /// Marks the start of a database's life on the current instance (after an open).
    fn mark_open(&mut self) {
        let n = self.fs.stats().faults;
        self.marks = Marks { open: n, op: n };
    }

    fn fail<T>(&self, oracle: Oracle, message: impl Into<String>) -> Check<T> {
        Err(Failure { oracle, op_index: self.current_op, message: message.into() })
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("database open")
    }

    fn options(&self) -> cobble::Options {
        let fs: Arc<dyn cobble::Fs> = Arc::new(self.fs.clone());
        match self.settings.planted {
            Some(fault) => fault.plant(self.config.to_options(Arc::new(PlantedFs::new(fs, fault)))),
            None => self.config.to_options(fs),
        }
    }

    /// Sets the fault plan for the current moment (see the module docs).
    fn arm_faults(&mut self) {
        let p = self.settings.error_rate;
        if p <= 0.0 {
            self.fs.set_faults(FaultConfig::none());
            return;
        }
        // Background threads may fail a manifest write at any moment, and a poisoned database
        // must be reopened: threaded configs get read errors only.
        let objects_open = !self.iters.is_empty() || !self.snapshots.is_empty();
        let w = if objects_open || !self.deterministic { 0.0 } else { p };
        // Now and then the disk is nearly full for one op: appends past a seeded margin fail
        // with ENOSPC (StorageFull), as a write error would.
        let capacity_bytes = (w > 0.0 && self.rng.gen_ratio(1, 64))
            .then(|| self.fs.stats().live_bytes + self.rng.gen_range(0..256 << 10));
        // Now and then a sync fails with high odds for one op (a disk going bad): failed syncs
        // are what rule 12 is about, and the rarest calls (a manifest's, a directory's) must
        // meet them too.
        let sync_p = if w > 0.0 && self.rng.gen_ratio(1, 32) { 0.25 } else { w };
        self.fs.set_faults(FaultConfig {
            read_error_prob: p,
            write_error_prob: w,
            sync_error_prob: sync_p,
            metadata_error_prob: w / 4.0,
            corrupt_read_prob: p / 2.0,
            short_writes: true,
            // Under AbsoluteConsistency a torn WAL record is an error by design: a failed sync
            // persists all or nothing.
            torn_failed_syncs: !self.absolute_consistency,
            capacity_bytes,
        });
    }

    fn run(&mut self, ops: &[Op]) -> Check<()> {
        self.open_fresh()?;
        for (i, op) in ops.iter().enumerate() {
            self.current_op = Some(i);
            crate::watchdog::op_started(Some(i));
            self.arm_faults();
            self.marks.op = self.fs.stats().faults;
            let result = self.exec_op(op)?;
            self.history.push(format!("{i} {} -> {result}", ops::print_op(op)));
            self.stats.ops_executed += 1;
            self.check_memory()?;
        }
        self.current_op = None;
        crate::watchdog::op_started(None);
        self.fs.set_faults(FaultConfig::none());
        self.drain_and_check_liveness()?;
        self.close_and_check()?;
        Ok(())
    }

    /// The memory budget after an op (see `checks::Budget::check`).
    fn check_memory(&self) -> Check<()> {
        self.check_memory_with(!self.deterministic)
    }

    fn check_memory_with(&self, background_may_pin: bool) -> Check<()> {
        let Some(db) = &self.db else { return Ok(()) };
        let m = db.metrics();
        let iters = self.iters.len() as u64;
        match self.budget.check(&m, self.largest_write_arena, iters, background_may_pin) {
            Ok(()) => Ok(()),
            Err(msg) => self.fail(Oracle::Memory, format!("{msg}; metrics: {m:?}")),
        }
    }

    /// Drains background work with faults off and checks liveness (see `checks`).
    fn drain_and_check_liveness(&mut self) -> Check<()> {
        // Iterators pin versions, whose files are then not obsolete yet.
        self.end_objects();
        let Some(db) = &self.db else { return Ok(()) };
        self.fs.set_faults(FaultConfig::none());
        self.fs.heal_rot();
        match db.drain_background_work(10_000) {
            Ok(cobble::Drained::Idle) => {}
            Ok(cobble::Drained::NotConverged) => {
                return self.fail(
                    Oracle::Liveness,
                    format!(
                        "background work does not converge: {:?} left\nLSM shape:\n{}",
                        db.pending_background_work(),
                        db.lsm_description()
                    ),
                )
            }
            Err(e) => return self.fail(Oracle::Engine, format!("draining background work: {e}")),
        }
        let on_disk = match checks::list_dir(&self.fs, DB_DIR) {
            Ok(names) => names,
            Err(e) => return self.fail(Oracle::Engine, format!("listing the db dir: {e}")),
        };
        let opts = self.options();
        if let Err(msg) = checks::check_drained(db, &opts, &on_disk) {
            return self.fail(Oracle::Liveness, msg);
        }
        // Drained, with no iterator open: nothing may pin a block now, under any scheduler.
        self.check_memory_with(false)
    }

    fn open_fresh(&mut self) -> Check<()> {
        self.fs.set_faults(FaultConfig::none());
        match Db::open(self.options(), DB_DIR) {
            Ok(db) => {
                self.db = Some(db);
                self.mark_open();
                Ok(())
            }
            Err(e) => self.fail(Oracle::Engine, format!("open of a new database failed: {e}")),
        }
    }

    /// Runs one op, including any crash it meets and the recovery from it. Returns the
    /// result text for the history.
    fn exec_op(&mut self, op: &Op) -> Check<String> {
        match op {
            Op::Crash { policy, at } => {
                self.end_objects();
                match at {
                    // Threaded configs too: the crash then strikes whichever thread makes the
                    // call, the op's or a background one.
                    CrashAt::Within(n) => {
                        self.fs.set_crash_at(Some(self.fs.call_count() + u64::from(*n)));
                        self.armed = Some(*policy);
                    }
                    _ => self.crash_and_recover(*policy, "at op boundary")?,
                }
                return Ok("ok".to_string());
            }
            Op::Restart => {
                self.end_objects();
                self.restart()?;
                return Ok("ok".to_string());
            }
            _ => {}
        }
        let armed = self.armed.take();
        let result = self.exec_plain(op);
        if armed.is_none() && self.deterministic {
            if let Ok(Outcome::Done(_)) = &result {
                let poisoned = self.db.as_ref().is_some_and(Db::is_poisoned);
                if let Some(rec) =
                    attribution::swallowed(&self.fs, self.marks).filter(|_| !poisoned)
                {
                    return self.fail(Oracle::Engine, swallowed_message(&rec));
                }
            }
        }
        if let Some(policy) = armed {
            // The crash strikes during this op, or at its end if it made fewer calls.
            self.fs.set_crash_at(None);
            let during = self.fs.is_crashed();
            let what = if during { "during the op" } else { "after the op" };
            self.end_objects();
            match result {
                Ok(Outcome::Done(text)) => {
                    self.crash_and_recover(policy, what)?;
                    return Ok(text);
                }
                Ok(Outcome::Faulted { write, .. }) => {
                    if let Some(w) = write {
                        self.apply_unacknowledged(w);
                    }
                    self.crash_and_recover(policy, what)?;
                    return self.retry_after_recovery(op);
                }
                Ok(Outcome::FaultedRead { .. }) => {
                    self.crash_and_recover(policy, what)?;
                    return self.retry_after_recovery(op);
                }
                Err(f) => return Err(f),
            }
        }
        match result? {
            Outcome::Done(text) => Ok(text),
            Outcome::FaultedRead { error, .. } => {
                self.history.push(format!("# injected error, read retried: {error}"));
                self.fs.set_faults(FaultConfig::none());
                self.fs.heal_rot();
                match self.retry_faults_off(op)? {
                    Outcome::Done(text) => Ok(text),
                    Outcome::Faulted { error, .. } | Outcome::FaultedRead { error, .. } => {
                        self.fail(Oracle::Engine, format!("read failed with faults off: {error}"))
                    }
                }
            }
            Outcome::Faulted { error, write } => {
                self.history.push(format!("# injected error: {error}"));
                let poisoned = self.db.as_ref().is_some_and(Db::is_poisoned);
                if !poisoned {
                    // Only a poisoning failure can have applied part of a write: this one
                    // changed nothing, so retry it as is.
                    self.fs.set_faults(FaultConfig::none());
                    self.fs.heal_rot();
                    return match self.retry_faults_off(op)? {
                        Outcome::Done(text) => Ok(text),
                        Outcome::Faulted { error, .. } | Outcome::FaultedRead { error, .. } => self
                            .fail(Oracle::Engine, format!("retry with faults off failed: {error}")),
                    };
                }
                self.end_objects_for_fault()?;
                if let Some(w) = write {
                    self.apply_unacknowledged(w);
                }
                self.stats.fault_reopens += 1;
                self.recover_from_poison()?;
                self.retry_after_recovery(op)
            }
        }
    }

    /// True when `e` is a corruption that a rotted sector of this instance explains.
    fn rot_explains(&self, e: &Error) -> bool {
        e.is_corruption() && self.fs.has_rot() && self.fs.stats().rot_reads > 0
    }

    /// Runs `op` again with faults off. Under Threads a background step that failed while
    /// faults were still on may hand its (explained) error to this attempt, since a stalled
    /// write returns that step's error: such attempts are repeated a few times.
    fn retry_faults_off(&mut self, op: &Op) -> Check<Outcome> {
        let mut outcome = self.exec_plain(op)?;
        for _ in 0..4 {
            if self.deterministic || matches!(outcome, Outcome::Done(_)) {
                break;
            }
            outcome = self.exec_plain(op)?;
        }
        Ok(outcome)
    }

    /// After a fault-triggered reopen, iterators and snapshots would be gone in this config
    /// only; faults that poison are armed only when none are open, so this is a harness bug.
    fn end_objects_for_fault(&mut self) -> Check<()> {
        if !self.iters.is_empty() || !self.snapshots.is_empty() {
            return self
                .fail(Oracle::Engine, "database poisoned while iterators or snapshots were open");
        }
        Ok(())
    }

    /// Re-runs an op whose first attempt met a fault, now that the database is healthy.
    fn retry_after_recovery(&mut self, op: &Op) -> Check<String> {
        self.fs.set_faults(FaultConfig::none());
        if let Op::BatchCommit { id, .. } = op {
            self.batches.remove(id);
            return Ok("ok".to_string());
        }
        if Write::from_op(op).is_some() {
            // The write was already applied to the model, and the recovery found it or
            // re-applied it.
            return Ok("ok".to_string());
        }
        match self.exec_plain(op)? {
            Outcome::Done(text) => Ok(text),
            Outcome::Faulted { error, .. } | Outcome::FaultedRead { error, .. } => self.fail(
                Oracle::Engine,
                format!("op failed again after recovery, with faults off: {error}"),
            ),
        }
    }

    /// Records a write whose outcome is unknown (it failed, or a crash interrupted it): the
    /// model applies it, and recovery either finds it or re-applies it.
    fn apply_unacknowledged(&mut self, writes: Vec<Write>) {
        let _ = self.model.apply_batch(writes);
    }

    fn end_objects(&mut self) {
        self.iters.clear();
        self.snapshots.clear();
        self.batches.clear();
    }

    /// Crashes the filesystem, builds the crash image, reopens on it (possibly crashing once
    /// more inside recovery) and checks the durability bounds.
    fn crash_and_recover(&mut self, policy: ops::CrashPolicy, when: &str) -> Check<()> {
        // Batches live in the client and survive; iterators and snapshots die with the
        // process.
        self.iters.clear();
        self.snapshots.clear();
        self.fs.set_crash_at(None);
        self.fs.crash_now();
        drop(self.db.take());
        let mut report_text = String::new();
        let mut crashes_in_recovery = 0;
        let sim_policy = self.sim_policy(policy);
        loop {
            let seed: u64 = self.rng.gen();
            let (image, report) = self.fs.crash_image(&sim_policy, seed);
            self.stats.crashes += 1;
            self.stats.unsynced_bytes_dropped += report.unsynced_bytes_dropped;
            self.stats.dir_entries_dropped += report.dir_entries_dropped;
            self.stats.torn_writes += report.torn_writes;
            if self.fs.crash_point().is_none() {
                *self.stats.faults.coverage.entry("crash/boundary/-".to_string()).or_default() += 1;
            }
            let _ = write!(
                report_text,
                " dropped {} bytes, {} dir entries, {} torn;",
                report.unsynced_bytes_dropped, report.dir_entries_dropped, report.torn_writes
            );
            self.replace_fs(image);
            // Now and then the media rot (deterministic configs, with faults enabled): a
            // sector of a durable table or manifest reads back wrong from now on.
            if self.deterministic && self.settings.error_rate > 0.0 && self.rng.gen_ratio(1, 6) {
                let seed: u64 = self.rng.gen();
                let rot_target = |p: &str| matches!(file_kind(p), "sst" | "manifest");
                if let Some((path, at)) = self.fs.rot_sector(seed, 512, &rot_target) {
                    let _ = write!(report_text, " rotted {path} at {at};");
                }
            }
            // One crash in four (deterministic configs) strikes again inside recovery.
            if self.deterministic && crashes_in_recovery == 0 && self.rng.gen_ratio(1, 4) {
                let at = self.rng.gen_range(1..60);
                self.fs.set_crash_at(Some(at));
            }
            let opened = loop {
                match Db::open(self.options(), DB_DIR) {
                    // An open that meets rot must say so; the sector is then repaired (as from
                    // a replica) and the open tried again.
                    Err(e) if !self.fs.is_crashed() && self.rot_explains(&e) => {
                        let _ = write!(report_text, " open met rot ({e}), repaired;");
                        self.fs.heal_rot();
                    }
                    other => break other,
                }
            };
            match opened {
                Ok(db) => {
                    if self.fs.is_crashed() {
                        // The armed call was past recovery's end, inside a background thread:
                        // treat it as a crash right after recovery.
                        drop(db);
                        crashes_in_recovery += 1;
                        continue;
                    }
                    self.fs.set_crash_at(None);
                    self.db = Some(db);
                    self.mark_open();
                    break;
                }
                Err(e) if self.fs.is_crashed() => {
                    crashes_in_recovery += 1;
                    let _ = write!(report_text, " crashed again in recovery ({e});");
                    if crashes_in_recovery > 3 {
                        return self.fail(Oracle::Engine, "recovery crashed too often");
                    }
                }
                Err(e) => {
                    return self.fail(
                        Oracle::Durability,
                        format!("reopen after a crash {when} ({policy:?}) failed: {e}"),
                    )
                }
            }
        }
        self.reopen_count += 1;
        // A crash that kept every volatile byte kept every acknowledged write (when they go
        // through the WAL).
        let floor = if self.keeps_acked(&sim_policy) { self.acked_seq } else { self.synced_seq };
        let lost = self.verify_recovered(&format!("crash {when}"), floor)?;
        self.history.push(format!(
            "# crash {} {when}:{report_text} recovered to seq {}, {lost} writes lost and re-applied",
            policy.name(),
            self.model.last_seq() - lost
        ));
        Ok(())
    }

    fn sim_policy(&mut self, policy: ops::CrashPolicy) -> CrashPolicy {
        match policy {
            // Under AbsoluteConsistency a torn WAL tail is an error by design: tear nothing.
            ops::CrashPolicy::Torn if !self.absolute_consistency => {
                CrashPolicy::drop_unsynced().with_torn_writes(512, 0.3)
            }
            ops::CrashPolicy::Dirs => CrashPolicy::random_dir_ops(),
            // The same holds for a record the crash cut between two of its appends.
            ops::CrashPolicy::Keep if !self.absolute_consistency => CrashPolicy::keep_unsynced(),
            _ => CrashPolicy::drop_unsynced(),
        }
    }

    /// Whether a recovery from a crash image built under `policy` must hold every
    /// acknowledged write: every volatile byte survives, and writes go through the WAL.
    fn keeps_acked(&self, policy: &CrashPolicy) -> bool {
        policy.keep_unsynced && !self.wal_disabled
    }

    /// After a fault poisoned the database: picks by seed how the client carries on, as a
    /// real one might (the error handler issue 14 describes), and checks the result against
    /// the model like any recovery. The failed write, if any, is already in the model as
    /// unacknowledged.
    fn recover_from_poison(&mut self) -> Check<()> {
        self.fs.set_faults(FaultConfig::none());
        // Under AbsoluteConsistency a torn WAL tail (a short write that poisoned) must fail the
        // open by design: only recoveries that cannot see one.
        let choices: &[PoisonRecovery] = if self.absolute_consistency {
            &[PoisonRecovery::Resume, PoisonRecovery::Crash(ops::CrashPolicy::Drop)]
        } else {
            &PoisonRecovery::ALL
        };
        let choice = choices[self.rng.gen_range(0..choices.len())];
        *self.stats.faults.coverage.entry(format!("poison/-/{}", choice.name())).or_default() += 1;
        match choice {
            PoisonRecovery::Crash(policy) => {
                self.crash_and_recover(policy, "after a poisoning fault")
            }
            PoisonRecovery::Reopen => self.reopen_in_place(),
            PoisonRecovery::Resume => self.resume_after_poison(),
        }
    }

    /// Closes the poisoned database and opens it again on the same filesystem, with nothing
    /// lost: whatever a failed sync left behind is still there to be read.
    fn reopen_in_place(&mut self) -> Check<()> {
        // Batches live in the client and survive; `end_objects_for_fault` saw no iterator or
        // snapshot open.
        let db = self.db.take().expect("database open");
        if let Err(e) = db.close() {
            if !self.is_fault(&e) {
                return self.unexplained("close of a poisoned database", &e);
            }
        }
        let leaks = db.leaks();
        if !leaks.is_empty() {
            return self.fail(Oracle::Invariant, format!("leaked at a poisoned close: {leaks:?}"));
        }
        drop(db);
        self.fs.heal_rot();
        match Db::open(self.options(), DB_DIR) {
            Ok(db) => {
                self.db = Some(db);
                self.mark_open();
            }
            Err(e) => {
                return self.fail(
                    Oracle::Durability,
                    format!(
                        "reopen after a poisoning fault (clean close, nothing lost) failed: {e}"
                    ),
                )
            }
        }
        self.reopen_count += 1;
        let floor = if self.wal_disabled { self.synced_seq } else { self.acked_seq };
        let lost = self.verify_recovered("reopen after a poisoning fault", floor)?;
        self.history.push(format!(
            "# poisoned, closed and reopened: recovered to seq {}, {lost} writes re-applied",
            self.model.last_seq() - lost
        ));
        Ok(())
    }

    /// `Db::resume` on the poisoned database, with the fault cleared: it must succeed and keep
    /// every acknowledged write.
    fn resume_after_poison(&mut self) -> Check<()> {
        self.fs.heal_rot();
        if let Err(e) = self.db().resume() {
            return self.unexplained("resume with faults off", &e);
        }
        if self.db().is_poisoned() {
            return self.fail(Oracle::Engine, "resume returned Ok but the database is poisoned");
        }
        let floor = self.acked_seq;
        let lost = self.verify_recovered("resume after a poisoning fault", floor)?;
        self.history.push(format!(
            "# poisoned and resumed: at seq {}, {lost} writes re-applied",
            self.model.last_seq() - lost
        ));
        Ok(())
    }

    /// Checks the reopened database against the model (durability bounds: it holds at least
    /// every write up to `floor`), then re-applies the writes it lost. Returns how many writes
    /// were lost.
    fn verify_recovered(&mut self, what: &str, floor: u64) -> Check<u64> {
        self.fs.set_faults(FaultConfig::none());
        let db = self.db.as_ref().expect("reopened");
        let recovered = db.last_seqnum();
        let last = self.model.last_seq();
        let got = match scan_all(db) {
            Ok(v) => v,
            Err(e) if self.rot_explains(&e) => {
                // The scan met rot and said so: repair the sector and look again.
                self.history.push(format!("# {what}: scan met rot ({e}), repaired"));
                self.fs.heal_rot();
                match scan_all(db) {
                    Ok(v) => v,
                    Err(e) => {
                        return self.fail(Oracle::Engine, format!("{what}: scan failed: {e}"))
                    }
                }
            }
            Err(e) => return self.fail(Oracle::Engine, format!("{what}: scan failed: {e}")),
        };
        if let Err(m) = check_recovery(&self.model, floor.max(self.synced_seq), recovered, &got) {
            return self.fail(Oracle::Durability, format!("{what}: {m}"));
        }
        let commits: Vec<Vec<Write>> = self
            .model
            .commits_after(recovered)
            .into_iter()
            .map(|c| c.into_iter().map(|(_, w)| w.clone()).collect())
            .collect();
        for writes in commits {
            let mut batch = WriteBatch::new();
            for w in &writes {
                add_to_batch(&mut batch, w);
            }
            let mut result = self.db().write(batch.clone(), &WriteOptions::default());
            if let Err(e) = &result {
                if self.rot_explains(e) && !self.db().is_poisoned() {
                    // A stalled write ran a compaction that met rot and said so.
                    self.fs.heal_rot();
                    result = self.db().write(batch, &WriteOptions::default());
                }
            }
            if let Err(e) = result {
                return self.fail(Oracle::Engine, format!("{what}: re-applying a write: {e}"));
            }
        }
        if self.db().last_seqnum() != last {
            return self.fail(
                Oracle::Engine,
                format!(
                    "{what}: after re-applying, last seqnum {} != model {last}",
                    self.db().last_seqnum()
                ),
            );
        }
        self.synced_seq = recovered;
        self.acked_seq = last;
        self.stats.writes_lost += last - recovered;
        Ok(last - recovered)
    }

    /// A clean close and reopen, with every close-time invariant checked.
    fn restart(&mut self) -> Check<()> {
        self.stats.restarts += 1;
        // Close with faults off: a removal that failed would leave a file behind, which is
        // allowed, but the close-time check wants none.
        self.fs.set_faults(FaultConfig::none());
        // Threaded configs close, one time in two, while client threads still call.
        let race = !self.deterministic && self.rng.gen_ratio(1, 2);
        let raced = if race {
            self.close_racing()?
        } else {
            self.close_and_check()?;
            Vec::new()
        };
        self.fs.set_faults(FaultConfig::none());
        match Db::open(self.options(), DB_DIR) {
            Ok(db) => {
                self.db = Some(db);
                self.mark_open();
            }
            Err(e) => return self.fail(Oracle::Engine, format!("reopen after close: {e}")),
        }
        // A clean close keeps everything, synced or not.
        let last = self.model.last_seq();
        let recovered = self.db().last_seqnum();
        if recovered != last {
            return self.fail(
                Oracle::Durability,
                format!("clean restart recovered to seq {recovered}, expected {last}"),
            );
        }
        self.verify_recovered("clean restart", last)?;
        if !raced.is_empty() {
            // The racing puts were checked (the scan holds exactly the acknowledged ones);
            // delete them so the history goes on as in every other config.
            let deletes: Vec<Write> =
                raced.into_iter().map(|(key, _)| Write::Delete { key }).collect();
            let mut batch = WriteBatch::new();
            for w in &deletes {
                add_to_batch(&mut batch, w);
            }
            if let Err(e) = self.db().write(batch, &WriteOptions::default()) {
                return self.fail(Oracle::Engine, format!("deleting the close-race keys: {e}"));
            }
            self.write_done(deletes, false)?;
        }
        Ok(())
    }

    /// Closes the database while client threads still call it (`close_race`), checks what
    /// every side saw and the close-time invariants, and puts the acknowledged racing writes
    /// in the model. Returns those writes.
    fn close_racing(&mut self) -> Check<Vec<(Vec<u8>, Vec<u8>)>> {
        self.end_objects();
        let db = self.db.take().expect("database open");
        if let Err(e) = db.check_invariants() {
            return self.fail(Oracle::Invariant, format!("LSM invariant: {e}"));
        }
        let race = close_race::close_while_busy(&db, 3);
        *self.stats.faults.coverage.entry("close-race/-/close".to_string()).or_default() += 1;
        if let Some(Err(e)) = &race.close {
            return self.fail(Oracle::Engine, format!("close racing live calls failed: {e}"));
        }
        if !race.problems.is_empty() {
            let shown: Vec<&str> = race.problems.iter().take(4).map(String::as_str).collect();
            return self.fail(
                Oracle::Engine,
                format!(
                    "close racing live calls: {} call(s) broke the contract: {}",
                    race.problems.len(),
                    shown.join("; ")
                ),
            );
        }
        let leaks = db.leaks();
        if !leaks.is_empty() {
            return self.fail(Oracle::Invariant, format!("leaked at a racing close: {leaks:?}"));
        }
        let live = db.live_files();
        drop(db);
        let on_disk = match checks::list_dir(&self.fs, DB_DIR) {
            Ok(names) => names,
            Err(e) => return self.fail(Oracle::Engine, format!("listing the db dir: {e}")),
        };
        // A racer's iterator may have pinned tables past close: those stay until the next
        // open deletes them. A live file missing is a bug all the same.
        let (_, missing) = checks::file_difference(&on_disk, &live, self.wal_disabled);
        if !missing.is_empty() {
            return self.fail(
                Oracle::Invariant,
                format!("files after a racing close: missing {missing:?}"),
            );
        }
        // Distinct keys, one put each: their order does not change the state the model reaches.
        for (key, value) in &race.acked {
            let put = Write::Put { key: key.clone(), value: value.clone() };
            if let Err(e) = self.model.apply_batch(vec![put]) {
                return self.fail(Oracle::Model, format!("a racing put the model refuses: {e}"));
            }
        }
        self.acked_seq = self.model.last_seq();
        Ok(race.acked)
    }

    /// Closes the database and checks the close-time invariants.
    fn close_and_check(&mut self) -> Check<()> {
        self.end_objects();
        let Some(db) = self.db.take() else { return Ok(()) };
        if let Err(e) = db.check_invariants() {
            return self.fail(Oracle::Invariant, format!("LSM invariant: {e}"));
        }
        // Every close runs with faults off, so any error is the engine's.
        if let Err(e) = db.close() {
            return self.fail(Oracle::Engine, format!("close failed: {e}"));
        }
        let leaks = db.leaks();
        if !leaks.is_empty() {
            return self.fail(Oracle::Invariant, format!("leaked at close: {leaks:?}"));
        }
        let live = db.live_files();
        drop(db);
        let on_disk = match checks::list_dir(&self.fs, DB_DIR) {
            Ok(names) => names,
            Err(e) => return self.fail(Oracle::Engine, format!("listing the db dir: {e}")),
        };
        let (extra, missing) = checks::file_difference(&on_disk, &live, self.wal_disabled);
        if !extra.is_empty() || !missing.is_empty() {
            return self.fail(
                Oracle::Invariant,
                format!("files after close: obsolete {extra:?}, missing {missing:?}"),
            );
        }
        Ok(())
    }

    fn write_done(&mut self, writes: Vec<Write>, sync: bool) -> Check<String> {
        match self.model.apply_batch(writes) {
            Ok(_) => {}
            Err(e) => {
                return self
                    .fail(Oracle::Model, format!("engine accepted a write the model refuses: {e}"))
            }
        }
        let engine = self.db().last_seqnum();
        if engine != self.model.last_seq() {
            return self.fail(
                Oracle::Model,
                format!("last seqnum {engine}, model expects {}", self.model.last_seq()),
            );
        }
        if sync && !self.wal_disabled {
            self.synced_seq = self.model.last_seq();
        }
        self.acked_seq = self.model.last_seq();
        Ok("ok".to_string())
    }

    fn write(&mut self, writes: Vec<Write>, batch: WriteBatch, sync: bool) -> Check<Outcome> {
        let refused = writes.iter().find_map(|w| w.validate().err());
        self.largest_write_arena = self.largest_write_arena.max(write_arena_bound(&writes));
        match self.db().write(batch, &WriteOptions { sync }) {
            Ok(()) => {
                if let Some(e) = refused {
                    return self.fail(
                        Oracle::Model,
                        format!("engine accepted a write the model refuses: {e}"),
                    );
                }
                self.write_done(writes, sync).map(Outcome::Done)
            }
            Err(Error::InvalidArgument(m)) => match refused {
                Some(ModelError::InvalidArgument(_)) => {
                    Ok(Outcome::Done("err invalid-argument".to_string()))
                }
                None => self.fail(Oracle::Model, format!("engine refused a valid write: {m}")),
            },
            Err(e) if self.is_fault(&e) => {
                Ok(Outcome::Faulted { error: e.to_string(), write: Some(writes) })
            }
            Err(e) => self.unexplained("write", &e),
        }
    }

    fn read_result<T>(&self, r: cobble::Result<T>) -> Check<Result<T, String>> {
        match r {
            Ok(v) => Ok(Ok(v)),
            Err(e) if self.is_fault(&e) => Ok(Err(e.to_string())),
            Err(e) => self.unexplained("read", &e),
        }
    }

    fn check_get(
        &self,
        got: Option<Vec<u8>>,
        expect: Option<Vec<u8>>,
        what: &str,
    ) -> Check<String> {
        if got != expect {
            return self.fail(
                Oracle::Model,
                format!("{what}: engine {}, model {}", fmt_value(&got), fmt_value(&expect)),
            );
        }
        Ok(fmt_value(&got))
    }

    /// Executes one op without crash handling.
    fn exec_plain(&mut self, op: &Op) -> Check<Outcome> {
        let done = |s: &str| Ok(Outcome::Done(s.to_string()));
        match op {
            Op::Put { sync, .. }
            | Op::Delete { sync, .. }
            | Op::SingleDelete { sync, .. }
            | Op::Merge { sync, .. }
            | Op::DeleteRange { sync, .. } => {
                let w = Write::from_op(op).expect("a write op");
                let mut batch = WriteBatch::new();
                add_to_batch(&mut batch, &w);
                self.write(vec![w], batch, *sync)
            }
            Op::Get { key } => {
                let r = self.db().get(&ReadOptions::default(), key);
                match self.read_result(r)? {
                    Ok(v) => {
                        let expect = self.model.get(key);
                        self.check_get(v, expect, &format!("get {}", fmt_bytes(key)))
                            .map(Outcome::Done)
                    }
                    Err(error) => Ok(Outcome::FaultedRead { error }),
                }
            }
            Op::BatchNew { id } => {
                self.batches.insert(*id, (WriteBatch::new(), Vec::new()));
                done("ok")
            }
            Op::BatchPut { id, .. }
            | Op::BatchDelete { id, .. }
            | Op::BatchSingleDelete { id, .. }
            | Op::BatchMerge { id, .. }
            | Op::BatchDeleteRange { id, .. } => {
                let w = Write::from_op(op).expect("a batch write op");
                let Some((batch, writes)) = self.batches.get_mut(id) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown batch {id}"));
                };
                add_to_batch(batch, &w);
                writes.push(w);
                done("ok")
            }
            Op::BatchCommit { id, sync } => {
                let Some((batch, writes)) = self.batches.get(id).cloned() else {
                    return self.fail(Oracle::Engine, format!("ops name unknown batch {id}"));
                };
                let outcome = self.write(writes, batch, *sync)?;
                if let Outcome::Done(_) = outcome {
                    self.batches.remove(id);
                }
                Ok(outcome)
            }
            Op::BatchAbort { id } => {
                self.batches.remove(id);
                done("ok")
            }
            Op::SnapshotNew { id } => {
                let snap = self.db().snapshot();
                let seq = self.model.snapshot();
                if snap.seqnum() != seq {
                    return self.fail(
                        Oracle::Model,
                        format!("snapshot at seq {}, model at {seq}", snap.seqnum()),
                    );
                }
                self.snapshots.insert(*id, (snap, seq));
                done("ok")
            }
            Op::SnapshotGet { id, key } => {
                let Some((snap, seq)) = self.snapshots.get(id) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown snapshot {id}"));
                };
                let seq = *seq;
                let ro = ReadOptions { snapshot: Some(snap.clone()), ..ReadOptions::default() };
                let r = self.db().get(&ro, key);
                match self.read_result(r)? {
                    Ok(v) => {
                        let expect = self.model.get_at(key, seq);
                        self.check_get(v, expect, &format!("snapshot get {}", fmt_bytes(key)))
                            .map(Outcome::Done)
                    }
                    Err(error) => Ok(Outcome::FaultedRead { error }),
                }
            }
            Op::SnapshotClose { id } => {
                self.snapshots.remove(id);
                done("ok")
            }
            Op::IterNew { id, snapshot, lower, upper } => {
                let (snap, seq) = match snapshot {
                    Some(s) => match self.snapshots.get(s) {
                        Some((snap, seq)) => (Some(snap.clone()), *seq),
                        None => {
                            return self
                                .fail(Oracle::Engine, format!("ops name unknown snapshot {s}"))
                        }
                    },
                    None => (None, self.model.last_seq()),
                };
                let ro = ReadOptions {
                    snapshot: snap,
                    lower_bound: lower.clone(),
                    upper_bound: upper.clone(),
                };
                let r = self.db().iter(&ro);
                match self.read_result(r)? {
                    Ok(it) => {
                        let list = self.model.scan(seq, lower.as_deref(), upper.as_deref());
                        let state = IterState {
                            it,
                            seq,
                            lower: lower.clone(),
                            upper: upper.clone(),
                            list,
                            pos: None,
                        };
                        self.iters.insert(*id, state);
                        done("ok")
                    }
                    Err(error) => Ok(Outcome::FaultedRead { error }),
                }
            }
            Op::IterFirst { id }
            | Op::IterLast { id }
            | Op::IterSeekGe { id, .. }
            | Op::IterSeekLt { id, .. }
            | Op::IterNext { id }
            | Op::IterPrev { id } => self.iter_op(*id, op),
            Op::IterSetBounds { id, lower, upper } => {
                let model = &self.model;
                let Some(st) = self.iters.get_mut(id) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown iterator {id}"));
                };
                st.it.set_bounds(lower.clone(), upper.clone());
                st.lower = lower.clone();
                st.upper = upper.clone();
                st.list = model.scan(st.seq, lower.as_deref(), upper.as_deref());
                st.pos = None;
                done("ok")
            }
            Op::IterClose { id } => {
                self.iters.remove(id);
                done("ok")
            }
            Op::Flush => {
                let r = self.db().flush();
                self.durability_op(r, "flush", true)
            }
            Op::CompactRange { start, end } => {
                let r = self.db().compact_range(start.as_deref(), end.as_deref());
                self.durability_op(r, "compact_range", true)
            }
            Op::FlushWal { sync } => {
                let r = self.db().flush_wal(*sync);
                self.durability_op(r, "flush_wal", *sync && !self.wal_disabled)
            }
            Op::BackgroundSteps { n } => {
                if self.deterministic {
                    for _ in 0..*n {
                        match self.db().run_background_step() {
                            Ok(true) => {}
                            Ok(false) => break,
                            Err(e) if self.is_fault(&e) => {
                                return Ok(Outcome::Faulted { error: e.to_string(), write: None })
                            }
                            Err(e) => return self.unexplained("a background step", &e),
                        }
                    }
                }
                done("ok")
            }
            Op::Restart | Op::Crash { .. } => unreachable!("handled by exec_op"),
        }
    }

    /// The outcome of an op that writes nothing of its own (flush, compact_range, flush_wal):
    /// on success, when `makes_durable`, every write so far is durable.
    fn durability_op(
        &mut self,
        r: cobble::Result<()>,
        what: &str,
        makes_durable: bool,
    ) -> Check<Outcome> {
        match r {
            Ok(()) => {
                if makes_durable {
                    self.synced_seq = self.model.last_seq();
                }
                Ok(Outcome::Done("ok".to_string()))
            }
            Err(e) if self.is_fault(&e) => {
                Ok(Outcome::Faulted { error: e.to_string(), write: None })
            }
            Err(e) => self.unexplained(what, &e),
        }
    }

    fn iter_op(&mut self, id: IterId, op: &Op) -> Check<Outcome> {
        let (fs, marks, deterministic) = (self.fs.clone(), self.marks, self.deterministic);
        let Some(st) = self.iters.get_mut(&id) else {
            return Err(Failure {
                oracle: Oracle::Engine,
                op_index: self.current_op,
                message: format!("ops name unknown iterator {id}"),
            });
        };
        let n = st.list.len();
        let expect: Option<usize> = match op {
            Op::IterFirst { .. } => (n > 0).then_some(0),
            Op::IterLast { .. } => n.checked_sub(1),
            Op::IterSeekGe { key, .. } => {
                let i = st.list.partition_point(|(k, _)| k < key);
                (i < n).then_some(i)
            }
            Op::IterSeekLt { key, .. } => st.list.partition_point(|(k, _)| k < key).checked_sub(1),
            Op::IterNext { .. } => st.pos.and_then(|p| (p + 1 < n).then_some(p + 1)),
            Op::IterPrev { .. } => st.pos.and_then(|p| p.checked_sub(1)),
            _ => unreachable!("an iterator positioning op"),
        };
        let r = match op {
            Op::IterFirst { .. } => st.it.first(),
            Op::IterLast { .. } => st.it.last(),
            Op::IterSeekGe { key, .. } => st.it.seek_ge(key),
            Op::IterSeekLt { key, .. } => st.it.seek_lt(key),
            Op::IterNext { .. } => st.it.next(),
            Op::IterPrev { .. } => st.it.prev(),
            _ => unreachable!("an iterator positioning op"),
        };
        let valid = match r {
            Ok(v) => v,
            Err(e) if attribution::explain(&fs, marks, deterministic, &e).is_ok() => {
                // Reposition where the model says the iterator was, so the retry steps from
                // the same place.
                let back = st.pos.map(|p| st.list[p].0.clone());
                if let Some(k) = back {
                    self.fs.set_faults(FaultConfig::none());
                    self.fs.heal_rot();
                    if let Err(e) = st.it.seek_ge(&k) {
                        return Err(Failure {
                            oracle: Oracle::Engine,
                            op_index: self.current_op,
                            message: format!("iterator reposition with faults off: {e}"),
                        });
                    }
                }
                return Ok(Outcome::FaultedRead { error: e.to_string() });
            }
            Err(e) => {
                let why = attribution::explain(&fs, marks, deterministic, &e).err();
                return Err(Failure {
                    oracle: Oracle::Engine,
                    op_index: self.current_op,
                    message: format!(
                        "iterator op failed: {e}; unexplained: {}; {}",
                        why.unwrap_or_default(),
                        attribution::last_fault(&fs)
                    ),
                });
            }
        };
        let got = valid.then(|| (st.it.key(), st.it.value()));
        let want = expect.map(|i| (st.list[i].0.as_slice(), st.list[i].1.as_slice()));
        if got != want || valid != st.it.valid() {
            let message = format!(
                "iterator {id} (seq {}, bounds {:?}..{:?}): engine {}, model {}",
                st.seq,
                st.lower.as_deref().map(fmt_bytes),
                st.upper.as_deref().map(fmt_bytes),
                fmt_pos(got),
                fmt_pos(want)
            );
            return Err(Failure { oracle: Oracle::Model, op_index: self.current_op, message });
        }
        let text = fmt_pos(got);
        st.pos = expect;
        Ok(Outcome::Done(text))
    }
}

/// What one attempt at an op came to.
enum Outcome {
    Done(String),
    /// A write-side op met an injected fault; `write` holds the writes it tried.
    Faulted {
        error: String,
        write: Option<Vec<Write>>,
    },
    /// A read met an injected fault; it may simply be retried.
    FaultedRead {
        error: String,
    },
}

fn add_to_batch(batch: &mut WriteBatch, w: &Write) {
    match w {
        Write::Put { key, value } => batch.put(key, value),
        Write::Delete { key } => batch.delete(key),
        Write::SingleDelete { key } => batch.single_delete(key),
        Write::Merge { key, value } => batch.merge(key, value),
        Write::DeleteRange { start, end } => batch.delete_range(start, end),
    }
}

/// The durability bounds on a recovered database: it recovered to `recovered` (its last
/// seqnum) and a full scan gave `scan`. Writes up to `synced` were acknowledged as durable.
/// The state must be exactly the model's after some whole commit between the two: no lost
/// synced write, no partial batch, no hole, nothing never written.
pub fn check_recovery(
    model: &Model,
    synced: u64,
    recovered: u64,
    scan: &[(Vec<u8>, Vec<u8>)],
) -> Result<(), String> {
    let last = model.last_seq();
    if recovered < synced {
        return Err(format!("recovered to seq {recovered}, but writes up to {synced} were synced"));
    }
    if recovered > last {
        return Err(format!("recovered to seq {recovered}, past the last write {last}"));
    }
    if !model.is_commit_point(recovered) {
        return Err(format!("recovered to seq {recovered}, inside a batch"));
    }
    let expect: Vec<(Vec<u8>, Vec<u8>)> = model.state_at(recovered).into_iter().collect();
    if scan != expect.as_slice() {
        return Err(format!(
            "recovered state at seq {recovered} differs from the model: {}",
            first_difference(&expect, scan)
        ));
    }
    Ok(())
}

/// Every visible pair, by a forward scan.
pub fn scan_all(db: &Db) -> cobble::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut it = db.iter(&ReadOptions::default())?;
    let mut out = Vec::new();
    let mut valid = it.first()?;
    while valid {
        out.push((it.key().to_vec(), it.value().to_vec()));
        valid = it.next()?;
    }
    Ok(out)
}

fn first_difference(expect: &[(Vec<u8>, Vec<u8>)], got: &[(Vec<u8>, Vec<u8>)]) -> String {
    for i in 0..expect.len().max(got.len()) {
        let e = expect.get(i);
        let g = got.get(i);
        if e != g {
            let show = |p: Option<&(Vec<u8>, Vec<u8>)>| {
                p.map_or(".".to_string(), |(k, v)| format!("{}={}", fmt_bytes(k), fmt_bytes(v)))
            };
            return format!("entry {i}: expected {}, got {}", show(e), show(g));
        }
    }
    "no difference".to_string()
}

/// An upper bound on the arena bytes one write needs: every entry's key and value plus a
/// generous per-entry overhead (skiplist node, internal key trailer, length prefixes), so that
/// the memory budget allows a write too large for `memtable_size` its own arena.
fn write_arena_bound(writes: &[Write]) -> u64 {
    writes
        .iter()
        .map(|w| {
            let bytes = match w {
                Write::Put { key, value } | Write::Merge { key, value } => key.len() + value.len(),
                Write::Delete { key } | Write::SingleDelete { key } => key.len(),
                Write::DeleteRange { start, end } => start.len() + end.len(),
            };
            bytes as u64 + 128
        })
        .sum()
}

/// The failure text for a fault the engine did not report.
fn swallowed_message(rec: &FaultRecord) -> String {
    format!(
        "the op succeeded although fault #{} ({} in {} {}, call {}) struck during it, and the \
         database is not poisoned: the engine swallowed it",
        rec.id,
        rec.kind.name(),
        rec.op,
        rec.path,
        rec.call
    )
}
