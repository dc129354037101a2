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

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use cobble::{Db, Error, Snapshot};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod attribution;
mod checks;
mod close_race;
mod exec;
mod recovery;
mod stats;

use exec::IterState;
pub use exec::{bounds_within_prefix, prefix_range};
pub use exec::{fmt_bytes, fmt_pos, fmt_scan, fmt_value, scan_order};
pub use recovery::{check_recovery, scan_all};
pub use stats::{file_kind, FaultTally, RunStats, EXPECTED_COVERAGE};

use attribution::Marks;
use checks::Budget;

use crate::config::EngineConfig;
use crate::model::{Model, Write};
use crate::ops::{self, BatchId, IterId, Op, SnapshotId};
use crate::sim::{FaultConfig, FaultKind, PlantedFault, PlantedFs, SimFs};

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
    run_config_from(ops, config, settings, None).0
}

/// A database to start from instead of an empty directory, or what a passing run left: the
/// files of its directory (durable, as `/`-rooted paths) and the model of what they hold.
/// Crossversion images (`image.rs`) are made of these.
#[derive(Debug)]
pub struct Start {
    pub files: Vec<(String, Vec<u8>)>,
    pub model: Model,
}

/// [`run_config`], starting from `start` when given (the database opened there must hold
/// exactly the model's state before the first op), and returning what a passing run left.
pub fn run_config_from(
    ops: &[Op],
    config: &EngineConfig,
    settings: &RunSettings,
    start: Option<Start>,
) -> (ConfigRun, Option<Start>) {
    let seed = config_seed(config, settings);
    let (owned_ops, owned_config, owned_settings) =
        (ops.to_vec(), config.clone(), settings.clone());
    let job = move || run_config_here(&owned_ops, &owned_config, &owned_settings, start);
    match crate::sched::run(seed, job) {
        Ok(run) => run,
        // The model scheduler's own finding: every thread blocked (a deadlock) is a hang.
        Err(message) => {
            let oracle = if message.contains("deadlock") { Oracle::Hang } else { Oracle::Panic };
            let run = ConfigRun {
                config: config.clone(),
                history: vec![format!("# FAILURE ({}): {message}", oracle.name())],
                failure: Some(Failure { oracle, op_index: None, message }),
                stats: RunStats::default(),
                image_hash: 0,
            };
            (run, None)
        }
    }
}

/// The seed of one config's run: the run's seed and the config's name (`seeded_as`, when a
/// reduced config keeps its original's). It seeds the runner's decisions and, in shuttle
/// builds, the config's thread scheduler.
/// A panic the engine caught (in a background worker, or user code it ran) and returned,
/// itself or as the cause of its poison.
fn caught_panic(e: &Error) -> bool {
    match e {
        Error::Panicked { .. } => true,
        Error::Poisoned { cause } => matches!(**cause, Error::Panicked { .. }),
        _ => false,
    }
}

fn config_seed(config: &EngineConfig, settings: &RunSettings) -> u64 {
    let mut h = crate::sim::Fnv64::default();
    h.write_u64(settings.seed);
    h.write(config.seeded_as.as_deref().unwrap_or(&config.name).as_bytes());
    h.finish()
}

/// [`run_config_from`] on the calling thread, under whatever schedules it.
fn run_config_here(
    ops: &[Op],
    config: &EngineConfig,
    settings: &RunSettings,
    start: Option<Start>,
) -> (ConfigRun, Option<Start>) {
    let mut exec = Exec::new(config, settings);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some(start) = start {
            exec.start_from(start)?;
        }
        exec.run(ops)
    }));
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
    let end = failure.is_none().then(|| exec.leftover());
    let run = ConfigRun {
        config: config.clone(),
        history: exec.history,
        failure,
        stats: exec.stats,
        image_hash: exec.fs.image_hash(),
    };
    (run, end)
}

struct Exec {
    config: EngineConfig,
    deterministic: bool,
    absolute_consistency: bool,
    wal_disabled: bool,
    /// The config pins iterators to a prefix through the engine (`prefix_bloom`); without
    /// it, `iter.new_prefix` and `iter.next_prefix` are emulated with bounds and seeks.
    prefix_extractor: bool,
    settings: RunSettings,
    fs: SimFs,
    db: Option<Db>,
    model: Model,
    batches: BTreeMap<BatchId, (cobble::IndexedBatch, Vec<Write>)>,
    snapshots: BTreeMap<SnapshotId, (Snapshot, u64)>,
    iters: BTreeMap<IterId, IterState>,
    /// The newest checkpoints made, with the state each must open to; checked when made and
    /// after every later crash.
    checkpoints: VecDeque<exec::Checkpoint>,
    /// Checkpoints attempted so far: each attempt gets a directory of its own.
    checkpoint_attempts: u64,
    /// Ingestions attempted so far: each attempt writes external tables of its own names.
    ingest_attempts: u64,
    /// Every write up to here was acknowledged as durable.
    synced_seq: u64,
    /// The run started from a saved database (`start_from`), not an empty directory.
    from_image: bool,
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
    /// Write faults were armed for a threaded config since background work last settled
    /// (`settle_write_faults`).
    write_faults_armed: bool,
}

type Check<T> = Result<T, Failure>;

impl Exec {
    fn new(config: &EngineConfig, settings: &RunSettings) -> Exec {
        let opts = config.to_options(crate::config::placeholder_fs());
        let config_seed = config_seed(config, settings);
        let budget = Budget::new(&opts);
        Exec {
            config: config.clone(),
            deterministic: matches!(opts.scheduler, cobble::Scheduler::Manual),
            absolute_consistency: opts.wal_recovery_mode
                == cobble::WalRecoveryMode::AbsoluteConsistency,
            wal_disabled: opts.disable_wal,
            prefix_extractor: opts.prefix_extractor.is_some(),
            settings: settings.clone(),
            fs: SimFs::new(settings.seed),
            db: None,
            model: Model::with_merge(config.merge_kind()),
            batches: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            iters: BTreeMap::new(),
            checkpoints: VecDeque::new(),
            checkpoint_attempts: 0,
            ingest_attempts: 0,
            synced_seq: 0,
            acked_seq: 0,
            from_image: false,
            history: Vec::new(),
            stats: RunStats::default(),
            rng: ChaCha8Rng::seed_from_u64(config_seed),
            current_op: None,
            armed: None,
            reopen_count: 0,
            marks: Marks::default(),
            budget,
            largest_write_arena: 0,
            write_faults_armed: false,
        }
    }

    /// True when SimFs's evidence explains `e` (see `attribution`).
    fn is_fault(&self, e: &Error) -> bool {
        attribution::explain(&self.fs, self.marks, self.deterministic, e).is_ok()
    }

    /// The failure for an engine error where none may occur (faults are off): an `Engine`
    /// finding, or a `Panic` one when the error is a panic the engine caught.
    fn engine_error<T>(&self, what: &str, e: &Error) -> Check<T> {
        if caught_panic(e) {
            return self.fail(Oracle::Panic, format!("{what} failed: the engine caught a {e}"));
        }
        self.fail(Oracle::Engine, format!("{what}: {e}"))
    }

    /// The failure for an engine error that no fault explains.
    fn unexplained<T>(&self, what: &str, e: &Error) -> Check<T> {
        // A panic the engine caught (in a background worker, or user code it ran) and turned
        // into an error is a panic finding, whichever call meets it.
        if caught_panic(e) {
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

    /// The run replays from its seed: a deterministic config, or any config in a shuttle build
    /// (`sched.rs`). Only such runs get every fault (write, sync, ENOSPC, rot, crashes inside
    /// recovery); on OS threads a background write fault lands at a moment no seed decides.
    fn replayable(&self) -> bool {
        self.deterministic || crate::sched::REPLAYABLE_THREADS
    }

    /// Drains background work with faults off. A step that met a read fault does not poison
    /// (under Threads one that began before faults went off may still meet one): it is
    /// accepted when a fault explains it, and the drain starts again; faults are off, so three
    /// tries bound it.
    fn drain_past_read_faults(&mut self) -> cobble::Result<cobble::Drained> {
        self.fs.set_faults(FaultConfig::none());
        let mut drained = self.db().drain_background_work(10_000);
        for _ in 0..3 {
            match &drained {
                Err(e) if self.is_fault(e) && !self.db().is_poisoned() => {
                    self.history.push(format!("# drain met a background step's fault: {e}"));
                    drained = self.db().drain_background_work(10_000);
                }
                _ => break,
            }
        }
        drained
    }

    /// Sets the fault plan for `op` (see the module docs).
    fn arm_faults(&mut self, op: &Op) -> Check<()> {
        let p = self.settings.error_rate;
        let opens_object = matches!(op, Op::SnapshotNew { .. } | Op::IterNew { .. });
        let objects_open = !self.iters.is_empty() || !self.snapshots.is_empty();
        if self.write_faults_armed && (opens_object || objects_open) {
            self.settle_write_faults()?;
        }
        if p <= 0.0 {
            self.fs.set_faults(FaultConfig::none());
            return Ok(());
        }
        // Write faults poison the database, which must then be reopened: not while iterators
        // or snapshots are open, and on OS threads not at all (a background write fault would
        // land at a moment no seed decides, so the run would not replay): threaded configs get
        // read errors only there, and every fault in a shuttle build.
        let w = if objects_open || opens_object || !self.replayable() { 0.0 } else { p };
        self.write_faults_armed = w > 0.0 && !self.deterministic;
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
        Ok(())
    }

    /// Before an iterator or snapshot opens in a threaded config that had write faults armed:
    /// write faults go off and the background steps that ran under them finish, so none can
    /// poison the database while the object is open (the reopen that follows would end it in
    /// this config only). A poisoning they left is handled now, as an op's would be.
    fn settle_write_faults(&mut self) -> Check<()> {
        self.fs.set_faults(FaultConfig::none());
        self.write_faults_armed = false;
        if self.db.is_none() {
            return Ok(());
        }
        match self.drain_past_read_faults() {
            // Work that does not converge is the liveness check's business, at the end.
            Ok(_) => Ok(()),
            Err(e) if self.is_fault(&e) => {
                self.history.push(format!("# a background step failed: {e}"));
                if self.db().is_poisoned() {
                    self.stats.fault_reopens += 1;
                    self.recover_from_poison()?;
                }
                Ok(())
            }
            Err(e) => self.unexplained("settling background work before opening an object", &e),
        }
    }

    fn run(&mut self, ops: &[Op]) -> Check<()> {
        self.open_fresh()?;
        if self.from_image {
            // Every write the image's model holds must be there: none may be lost.
            self.verify_recovered("opening the image", self.model.last_seq())?;
        }
        for (i, op) in ops.iter().enumerate() {
            self.current_op = Some(i);
            crate::watchdog::op_started(Some(i));
            self.arm_faults(op)?;
            self.marks.op = self.fs.stats().faults;
            let result = self.exec_op(op)?;
            self.history.push(format!("{i} {} -> {result}", ops::print_op(op)));
            self.stats.ops_executed += 1;
            self.check_memory()?;
        }
        if let Some(policy) = self.armed.take() {
            // A `crash .. within n` that no op followed (the last op, or a reduced case cut
            // there) strikes when the ops end.
            self.fs.set_faults(FaultConfig::none());
            self.fs.set_crash_at(None);
            self.end_objects();
            self.crash_and_recover(policy, "after the last op")?;
        }
        self.current_op = None;
        crate::watchdog::op_started(None);
        self.fs.set_faults(FaultConfig::none());
        self.drain_and_check_liveness()?;
        self.close_and_check()?;
        Ok(())
    }

    /// Loads `start` into the (fresh) SimFs and the model; `run` then opens it and
    /// [`Exec::run`] checks it holds the model's state, every write durable.
    fn start_from(&mut self, start: Start) -> Check<()> {
        if let Err(e) = self.fs.import(&start.files) {
            return self.fail(Oracle::Engine, format!("loading the image into SimFs: {e}"));
        }
        // Checkpoints an earlier run made are in the image: new ones take later numbers.
        self.checkpoint_attempts = start
            .files
            .iter()
            .filter_map(|(path, _)| path.strip_prefix("/checkpoint-")?.split(['/', '.']).next())
            .filter_map(|n| n.parse::<u64>().ok())
            .map(|n| n + 1)
            .max()
            .unwrap_or(0);
        self.model = start.model;
        self.synced_seq = self.model.last_seq();
        self.acked_seq = self.model.last_seq();
        self.from_image = true;
        self.history.push(format!(
            "# started from an image: {} files, model at seqnum {}",
            start.files.len(),
            self.model.last_seq()
        ));
        Ok(())
    }

    /// What a passing run left: every file, as durable, and the model. Reads no file
    /// through a call, so it draws nothing from the fault stream.
    fn leftover(&self) -> Start {
        self.fs.make_all_durable();
        Start { files: self.fs.durable_files(), model: self.model.clone() }
    }

    fn open_fresh(&mut self) -> Check<()> {
        self.fs.set_faults(FaultConfig::none());
        match Db::open(self.options(), DB_DIR) {
            Ok(db) => {
                self.db = Some(db);
                self.mark_open();
                Ok(())
            }
            Err(e) => self.engine_error("open of a new database failed", &e),
        }
    }
}
