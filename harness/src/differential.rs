//! Differential mode (cargo feature `rocksdb`): RocksDB as a second oracle. `tumbler
//! differential` generates each seed's ops as `run` does, makes every crash a clean restart
//! (RocksDB runs on the real filesystem, which cannot drop unsynced writes), and runs them:
//!
//! 1. on Cobble under the standard configs that use the `string_append` merge operator
//!    (`check::run_seed`: every read checked against the model as it returns, then the
//!    cross-config diff), and
//! 2. on RocksDB ([`run_rocksdb`]), writing a history in Cobble's history format.
//!
//! A Cobble run that passes wrote each read's result only after the model agreed with it, so
//! its history line is both Cobble's and the model's answer. The two histories are compared
//! line by line: a difference is a result where RocksDB disagrees with both the model and
//! Cobble, and is reduced (delta debugging over the ops while the same op kind still
//! diverges) and saved. A Cobble failure is reported as an ordinary Tumbler finding.
//!
//! Where RocksDB's API differs, the executor maps each op to what RocksDB offers, never to a
//! second copy of the answer: `seek_lt(t)` is `seek_for_prev(t)`, then `prev` if it landed on
//! `t`; `set_bounds` makes a new iterator at the old one's snapshot (every iterator reads at an
//! explicit snapshot, taken when it opens); `next`/`prev` on an unpositioned iterator are not
//! sent (RocksDB requires a valid iterator; the model says it stays unpositioned);
//! `iter.limited` is the plain move with its limit applied to where it landed (RocksDB has
//! no limits; a move from a park seeks to the limit); a delete
//! range with `start > end` is not sent (RocksDB would refuse every later write until reopened,
//! SEMANTICS.md) and reads `err invalid-argument` as Cobble's does. Batches are encoded in
//! RocksDB's documented WriteBatch layout (12-byte header, then tagged records), the only way
//! the `rocksdb` crate offers SingleDelete. Only `string_append` configs take part: RocksDB
//! full-merges a stack onto its base during compaction, which the non-associative `nested`
//! operator would show as a (known, by design) difference.
//!
//! RocksDB is linked from the system (`ROCKSDB_LIB_DIR`, e.g. Debian's `librocksdb-dev`) or
//! built by `librocksdb-sys`; see README. Its files are not deterministic (its own threads
//! flush and compact), its results must be.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::check;
use crate::config::EngineConfig;
use crate::merge_ops::MergeKind;
use crate::model::Write;
use crate::ops::{self, BatchId, IterId, LimitedStep, Op, OpKind, SnapshotId};
use crate::plan::{self, SeedSpec};
use crate::runner::{bounds_within_prefix, fmt_pos, fmt_scan, fmt_value, prefix_range};
use crate::runner::{scan_order, RunSettings};

#[derive(Debug, Args)]
pub struct DifferentialArgs {
    /// Number of seeds to run: base-seed, base-seed + 1, ...
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: u64,
    #[arg(long, default_value_t = 1)]
    pub base_seed: u64,
    /// Ops per seed (at most 1000000).
    #[arg(long, default_value_t = 5000, value_parser = crate::input::parse_ops)]
    pub ops: usize,
    /// Directory of named configs (JSON); those with the `string_append` merge operator run.
    #[arg(long, default_value = plan::STANDARD_CONFIGS)]
    pub configs: PathBuf,
    /// Where RocksDB's databases go (default: /dev/shm when present, else the temp dir).
    #[arg(long)]
    pub rocksdb_dir: Option<PathBuf>,
    /// Seconds spent reducing each divergence.
    #[arg(long, default_value_t = 120)]
    pub reduce_budget: u64,
    /// Write summary.json and, per divergence, its ops and reduced case here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One seed's outcome.
#[derive(Debug, Serialize)]
pub struct SeedOutcome {
    pub seed: u64,
    pub ops: usize,
    /// `agree`, `cobble_finding` (Cobble failed an oracle: an ordinary Tumbler finding) or
    /// `rocksdb_disagrees` (RocksDB disagrees with both the model and Cobble).
    pub verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergence: Option<Divergence>,
}

/// The first result where RocksDB's history differs from Cobble's (and the model's).
#[derive(Clone, Debug, Serialize)]
pub struct Divergence {
    pub op_index: usize,
    pub op_kind: String,
    /// Cobble's history line, which is the model's answer too.
    pub cobble_and_model: String,
    pub rocksdb: String,
    /// The reduced ops, printed as an ops file.
    pub reduced_ops: usize,
    pub reduced: String,
}

/// Runs the differential campaign; returns whether every seed agreed.
pub fn main(args: &DifferentialArgs) -> anyhow::Result<bool> {
    let scratch = args.rocksdb_dir.clone().unwrap_or_else(default_scratch);
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mut outcomes = Vec::new();
    #[expect(clippy::disallowed_methods, reason = "wall time is only printed")]
    let started = Instant::now();
    let mut total_ops = 0usize;
    for seed in args.base_seed..args.base_seed.saturating_add(args.seeds) {
        let spec = SeedSpec {
            ops: args.ops,
            configs: args.configs.clone(),
            random_configs: 0,
            weights: None,
            swarm: false,
            error_rate: 0.0,
            plant: None,
            hang_timeout: crate::watchdog::HANG_TIMEOUT_DEFAULT_SECS,
        };
        let plan = plan::plan_seed(&spec, seed)?;
        let configs: Vec<EngineConfig> = plan
            .configs
            .into_iter()
            .filter(|c| c.merge_kind() == MergeKind::StringAppend)
            .collect();
        anyhow::ensure!(!configs.is_empty(), "no string_append config in {:?}", args.configs);
        let ops = crash_free(&plan.file.ops);
        total_ops += ops.len();
        let db_dir = scratch.join(format!("tumbler-rocksdb-{}-{seed}", std::process::id()));
        let outcome = check_seed(seed, &ops, &configs, &plan.settings, &db_dir, args)?;
        match (&outcome.verdict, &outcome.divergence) {
            (_, Some(d)) => {
                println!(
                    "DIVERGE seed {seed} op {} ({}): RocksDB disagrees with the model and Cobble",
                    d.op_index, d.op_kind
                );
                println!("  cobble and model: {}", d.cobble_and_model);
                println!("  rocksdb:          {}", d.rocksdb);
                println!("  reduced to {} ops:\n{}", d.reduced_ops, indent(&d.reduced));
            }
            (&"cobble_finding", None) => {}
            _ => println!("agree seed {seed} ({} ops, {} configs)", ops.len(), configs.len()),
        }
        if let Some(out) = &args.out {
            save(out, &outcome, &ops)?;
        }
        outcomes.push(outcome);
    }
    let disagree = outcomes.iter().filter(|o| o.verdict == "rocksdb_disagrees").count();
    let cobble = outcomes.iter().filter(|o| o.verdict == "cobble_finding").count();
    // Wall time is reported only, never decides anything.
    println!(
        "{} seeds, {total_ops} ops: {} agree, {disagree} where RocksDB disagrees, {cobble} Cobble \
         findings ({:.0} s)",
        outcomes.len(),
        outcomes.len() - disagree - cobble,
        started.elapsed().as_secs_f64()
    );
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let summary = serde_json::json!({
            "seeds": outcomes.len(), "ops": total_ops, "rocksdb_disagrees": disagree,
            "cobble_findings": cobble, "outcomes": outcomes,
        });
        std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    }
    Ok(disagree == 0 && cobble == 0)
}

fn default_scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// The ops with every crash made a clean restart, and every read through an uncommitted
/// batch made the same read of the database alone: the `rocksdb` crate (0.21) has no
/// `WriteBatchWithIndex`, and both engines run these ops.
pub fn crash_free(ops: &[Op]) -> Vec<Op> {
    let map = |op: &Op| match op {
        Op::Crash { .. } => Op::Restart,
        Op::IterNew { id, snapshot, lower, upper, batch: Some(_) } => Op::IterNew {
            id: *id,
            snapshot: *snapshot,
            lower: lower.clone(),
            upper: upper.clone(),
            batch: None,
        },
        Op::BatchGet { key, snapshot: None, .. } => Op::Get { key: key.clone() },
        Op::BatchGet { key, snapshot: Some(id), .. } => {
            Op::SnapshotGet { id: *id, key: key.clone() }
        }
        Op::BatchScan { lower, upper, ends, .. } => {
            Op::Scan { lower: lower.clone(), upper: upper.clone(), ends: *ends }
        }
        op => op.clone(),
    };
    ops.iter().map(map).collect()
}

fn check_seed(
    seed: u64,
    ops: &[Op],
    configs: &[EngineConfig],
    settings: &RunSettings,
    db_dir: &Path,
    args: &DifferentialArgs,
) -> anyhow::Result<SeedOutcome> {
    let report = check::run_seed(ops, configs, settings, false);
    if let Some(f) = report.failures.first() {
        println!(
            "FAIL seed {seed}: Cobble: [{}] config {} op {:?}: {}",
            f.failure.oracle.name(),
            f.config,
            f.failure.op_index,
            f.failure.message.lines().next().unwrap_or("")
        );
        println!("replay: tumbler run --seed {seed} --ops {} --error-rate 0", ops.len());
        return Ok(SeedOutcome {
            seed,
            ops: ops.len(),
            verdict: "cobble_finding",
            divergence: None,
        });
    }
    let cobble: Vec<&str> = report.runs[0].comparable_history().collect();
    let rocks = run_rocksdb(ops, db_dir, MergeKind::StringAppend)?;
    let Some((op_index, cobble_line, rocks_line)) = first_difference(&cobble, &rocks) else {
        return Ok(SeedOutcome { seed, ops: ops.len(), verdict: "agree", divergence: None });
    };
    let kind = ops[op_index].kind();
    let base = configs[0].clone();
    let rocks = |ops: &[Op]| run_rocksdb(ops, db_dir, MergeKind::StringAppend);
    let reduced = reduce(ops, op_index, Duration::from_secs(args.reduce_budget), |cand| {
        diverges_at_kind(cand, &base, settings, &rocks, kind)
    })?;
    let file = ops::OpsFile { generator: None, seed: Some(seed), ops: reduced.clone() };
    Ok(SeedOutcome {
        seed,
        ops: ops.len(),
        verdict: "rocksdb_disagrees",
        divergence: Some(Divergence {
            op_index,
            op_kind: format!("{kind:?}"),
            cobble_and_model: cobble_line,
            rocksdb: rocks_line,
            reduced_ops: reduced.len(),
            reduced: ops::print(&file),
        }),
    })
}

/// The first op whose history lines differ: its index and both lines.
fn first_difference(cobble: &[&str], rocks: &[String]) -> Option<(usize, String, String)> {
    let n = cobble.len().max(rocks.len());
    (0..n).find_map(|i| {
        let (a, b) = (cobble.get(i).copied(), rocks.get(i).map(String::as_str));
        if a == b {
            return None;
        }
        let line = a.or(b).unwrap_or_default();
        let op_index = line.split(' ').next().and_then(|s| s.parse().ok()).unwrap_or(i);
        Some((op_index, a.unwrap_or("(none)").to_string(), b.unwrap_or("(none)").to_string()))
    })
}

/// Whether `ops` still shows a RocksDB divergence at an op of `kind` while Cobble passes.
fn diverges_at_kind(
    ops: &[Op],
    config: &EngineConfig,
    settings: &RunSettings,
    rocks: &dyn Fn(&[Op]) -> anyhow::Result<Vec<String>>,
    kind: OpKind,
) -> anyhow::Result<bool> {
    if ops::validate(ops).is_err() {
        return Ok(false);
    }
    let run = check::run_config_guarded(ops, config, settings);
    if run.failure.is_some() {
        return Ok(false);
    }
    let cobble: Vec<&str> = run.comparable_history().collect();
    let rocks = rocks(ops)?;
    Ok(first_difference(&cobble, &rocks).is_some_and(|(i, _, _)| ops[i].kind() == kind))
}

/// Delta debugging: drops everything after the diverging op, then chunks of halving size
/// (object-aware, as `tumbler reduce` does) while `still` holds, within `budget`.
fn reduce(
    ops: &[Op],
    op_index: usize,
    budget: Duration,
    mut still: impl FnMut(&[Op]) -> anyhow::Result<bool>,
) -> anyhow::Result<Vec<Op>> {
    #[expect(
        clippy::disallowed_methods,
        reason = "wall time only stops the reducer early, as `tumbler reduce`'s budget does"
    )]
    let started = Instant::now();
    let mut best: Vec<Op> = ops[..=op_index.min(ops.len() - 1)].to_vec();
    if !still(&best)? {
        best = ops.to_vec();
    }
    let mut chunk = best.len().div_ceil(2).max(1);
    loop {
        let mut changed = false;
        let mut start = 0;
        while start < best.len() && started.elapsed() < budget {
            let cand = crate::reduce::remove_ops(&best, start..(start + chunk).min(best.len()));
            if cand.len() < best.len() && still(&cand)? {
                best = cand;
                changed = true;
            } else {
                start += chunk;
            }
        }
        if started.elapsed() >= budget || (chunk == 1 && !changed) {
            return Ok(best);
        }
        if !changed {
            chunk = chunk.div_ceil(2);
        }
    }
}

fn save(out: &Path, outcome: &SeedOutcome, ops: &[Op]) -> anyhow::Result<()> {
    let Some(d) = &outcome.divergence else { return Ok(()) };
    let dir = out.join(format!("seed-{}", outcome.seed));
    std::fs::create_dir_all(&dir)?;
    let file = ops::OpsFile { generator: None, seed: Some(outcome.seed), ops: ops.to_vec() };
    std::fs::write(dir.join("ops.txt"), ops::print(&file))?;
    std::fs::write(dir.join("reduced.ops"), &d.reduced)?;
    let mut text = String::new();
    let _ = writeln!(text, "op {} ({})", d.op_index, d.op_kind);
    let _ = writeln!(text, "cobble and model: {}", d.cobble_and_model);
    let _ = writeln!(text, "rocksdb:          {}", d.rocksdb);
    std::fs::write(dir.join("divergence.txt"), text)?;
    Ok(())
}

/// Runs `ops` on a fresh RocksDB in `dir` (removed first and after) and returns its history:
/// one line per op, `"{i} {op} -> {result}"`, as Cobble's comparable history has them.
pub fn run_rocksdb(ops: &[Op], dir: &Path, merge: MergeKind) -> anyhow::Result<Vec<String>> {
    let opts = rocks_options(merge)?;
    run_rocksdb_with(ops, dir, &opts)
}

fn run_rocksdb_with(
    ops: &[Op],
    dir: &Path,
    opts: &rocksdb::Options,
) -> anyhow::Result<Vec<String>> {
    let _ = std::fs::remove_dir_all(dir);
    let mut history = Vec::with_capacity(ops.len());
    let mut next = 0;
    while next < ops.len() {
        let db = rocksdb::DB::open(opts, dir)
            .with_context(|| format!("opening RocksDB in {}", dir.display()))?;
        next = Segment::new(&db).run(ops, next, &mut history);
    }
    let _ = rocksdb::DB::destroy(&rocksdb::Options::default(), dir);
    let _ = std::fs::remove_dir_all(dir);
    Ok(history)
}

/// Small buffers and files, so that a few thousand ops flush and compact through every level.
fn rocks_options(merge: MergeKind) -> anyhow::Result<rocksdb::Options> {
    let mut o = rocksdb::Options::default();
    o.create_if_missing(true);
    o.set_write_buffer_size(64 << 10);
    o.set_max_write_buffer_number(3);
    o.set_target_file_size_base(64 << 10);
    o.set_max_bytes_for_level_base(256 << 10);
    o.set_level_zero_file_num_compaction_trigger(2);
    o.set_max_background_jobs(2);
    match merge {
        MergeKind::StringAppend => o.set_merge_operator_associative("string_append", string_append),
        MergeKind::Nested => anyhow::bail!("the nested merge operator does not take part"),
    }
    Ok(o)
}

/// RocksDB's side of `string_append`: `,` between the existing value and each operand.
/// Written here from SEMANTICS.md, apart from Cobble's `StringAppend` and the model's.
fn string_append(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &rocksdb::MergeOperands,
) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = existing.map(<[u8]>::to_vec);
    for op in operands {
        match &mut out {
            Some(v) => {
                v.push(b',');
                v.extend_from_slice(op);
            }
            None => out = Some(op.to_vec()),
        }
    }
    out
}

/// An open iterator: RocksDB's raw iterator at its own snapshot, with the bounds and the
/// prefix the ops gave it (a prefix `p` is the bounds `[p@, pA)`: RocksDB runs without a
/// prefix extractor). Field order matters: the iterator drops before the snapshot it reads at.
struct RocksIter<'a> {
    it: rocksdb::DBRawIterator<'a>,
    snap: Rc<rocksdb::Snapshot<'a>>,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    prefix: Option<Vec<u8>>,
    /// Where an `iter.limited` that found no key inside its limit parked Cobble's iterator
    /// (RocksDB has no limits: the next move seeks from here).
    parked: Option<Vec<u8>>,
}

/// The ops between two restarts, on one open database.
struct Segment<'a> {
    db: &'a rocksdb::DB,
    batches: BTreeMap<BatchId, Vec<Write>>,
    snapshots: BTreeMap<SnapshotId, Rc<rocksdb::Snapshot<'a>>>,
    iters: BTreeMap<IterId, RocksIter<'a>>,
}

impl<'a> Segment<'a> {
    fn new(db: &'a rocksdb::DB) -> Segment<'a> {
        Segment { db, batches: BTreeMap::new(), snapshots: BTreeMap::new(), iters: BTreeMap::new() }
    }

    /// Runs ops from `from` through the next restart (included); returns where it stopped.
    fn run(mut self, ops: &[Op], from: usize, history: &mut Vec<String>) -> usize {
        for (i, op) in ops.iter().enumerate().skip(from) {
            let result = self.exec(op);
            history.push(format!("{i} {} -> {result}", ops::print_op(op)));
            if matches!(op, Op::Restart | Op::Reconfigure | Op::Crash { .. }) {
                return i + 1;
            }
        }
        ops.len()
    }

    fn exec(&mut self, op: &Op) -> String {
        let ok = |r: Result<(), rocksdb::Error>| match r {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("err {e}"),
        };
        match op {
            Op::Put { sync, .. }
            | Op::Delete { sync, .. }
            | Op::SingleDelete { sync, .. }
            | Op::Merge { sync, .. }
            | Op::DeleteRange { sync, .. } => {
                self.write(&[Write::from_op(op).expect("a write op")], *sync)
            }
            Op::Get { key } => fmt_result(self.db.get(key)),
            Op::BatchNew { id } => {
                self.batches.insert(*id, Vec::new());
                "ok".into()
            }
            Op::BatchPut { id, .. }
            | Op::BatchDelete { id, .. }
            | Op::BatchSingleDelete { id, .. }
            | Op::BatchMerge { id, .. }
            | Op::BatchDeleteRange { id, .. } => match self.batches.get_mut(id) {
                Some(b) => {
                    b.push(Write::from_op(op).expect("a batch write op"));
                    "ok".into()
                }
                None => format!("err unknown batch {id}"),
            },
            Op::BatchCommit { id, sync } => match self.batches.remove(id) {
                Some(writes) => self.write(&writes, *sync),
                None => format!("err unknown batch {id}"),
            },
            Op::BatchAbort { id } => {
                self.batches.remove(id);
                "ok".into()
            }
            // RocksDB gets the ingestion as the one batch it amounts to (the model's own
            // reading); a refused one is refused here as well.
            Op::BatchIngest { ids } => {
                let files: Vec<Vec<Write>> =
                    ids.iter().filter_map(|id| self.batches.remove(id)).collect();
                if files.len() != ids.len() {
                    return format!("err unknown batch in {op}");
                }
                match crate::model::ingest_writes(&files) {
                    Ok(writes) => self.write(&writes, true),
                    Err(_) => "err invalid-argument".into(),
                }
            }
            Op::BatchClear { id } => match self.batches.get_mut(id) {
                Some(b) => {
                    b.clear();
                    "ok".into()
                }
                None => format!("err unknown batch {id}"),
            },
            // `crash_free` made these plain reads.
            Op::BatchGet { .. } | Op::BatchScan { .. } => "err unsupported".into(),
            Op::SnapshotNew { id } => {
                self.snapshots.insert(*id, Rc::new(self.db.snapshot()));
                "ok".into()
            }
            Op::SnapshotGet { id, key } => match self.snapshots.get(id) {
                Some(s) => fmt_result(s.get(key)),
                None => format!("err unknown snapshot {id}"),
            },
            Op::SnapshotClose { id } => {
                self.snapshots.remove(id);
                "ok".into()
            }
            // RocksDB's forward scan, put in the order the ends take it (an order, not an
            // answer: the pairs are RocksDB's).
            Op::Scan { lower, upper, ends } => {
                if matches!((lower, upper), (Some(l), Some(u)) if l > u) {
                    // An empty range (RocksDB leaves crossed bounds undefined).
                    return fmt_scan(&[]);
                }
                let snap = Rc::new(self.db.snapshot());
                let mut it = self.open_iter(&snap, lower, upper, &None);
                it.seek_to_first();
                let mut list = Vec::new();
                while it.valid() {
                    match (it.key(), it.value()) {
                        (Some(k), Some(v)) => list.push((k.to_vec(), v.to_vec())),
                        _ => break,
                    }
                    it.next();
                }
                if let Err(e) = it.status() {
                    return format!("err {e}");
                }
                fmt_scan(&scan_order(&list, *ends))
            }
            Op::MultiGet { snapshot, keys } => {
                let snap = match snapshot {
                    Some(s) => match self.snapshots.get(s) {
                        Some(snap) => snap.clone(),
                        None => return format!("err unknown snapshot {s}"),
                    },
                    None => Rc::new(self.db.snapshot()),
                };
                let values: Vec<String> = keys.iter().map(|k| fmt_result(snap.get(k))).collect();
                values.join(" ")
            }
            Op::IterNew { id, snapshot, lower, upper, .. } => {
                self.new_iter(*id, *snapshot, lower.clone(), upper.clone(), None)
            }
            Op::IterNewPrefix { id, snapshot, prefix } => {
                self.new_iter(*id, *snapshot, None, None, Some(prefix.clone()))
            }
            Op::IterClone { id, from } => {
                let Some(old) = self.iters.get(from) else {
                    return format!("err unknown iterator {from}");
                };
                let (snap, lower, upper, prefix) =
                    (old.snap.clone(), old.lower.clone(), old.upper.clone(), old.prefix.clone());
                let it = self.open_iter(&snap, &lower, &upper, &prefix);
                self.iters.insert(*id, RocksIter { it, snap, lower, upper, prefix, parked: None });
                "ok".into()
            }
            Op::IterRefresh { id } => {
                let Some(old) = self.iters.remove(id) else {
                    return format!("err unknown iterator {id}");
                };
                let RocksIter { lower, upper, prefix, .. } = old;
                let snap = Rc::new(self.db.snapshot());
                let it = self.open_iter(&snap, &lower, &upper, &prefix);
                self.iters.insert(*id, RocksIter { it, snap, lower, upper, prefix, parked: None });
                "ok".into()
            }
            Op::IterSetBounds { id, lower, upper } => {
                let Some(old) = self.iters.remove(id) else {
                    return format!("err unknown iterator {id}");
                };
                let (snap, prefix) = (old.snap.clone(), old.prefix.clone());
                drop(old);
                let (lower, upper) = (lower.clone(), upper.clone());
                let it = self.open_iter(&snap, &lower, &upper, &prefix);
                self.iters.insert(*id, RocksIter { it, snap, lower, upper, prefix, parked: None });
                "ok".into()
            }
            Op::IterFirst { id }
            | Op::IterLast { id }
            | Op::IterSeekGe { id, .. }
            | Op::IterSeekLt { id, .. }
            | Op::IterNext { id }
            | Op::IterPrev { id }
            | Op::IterNextPrefix { id } => match self.iters.get_mut(id) {
                Some(st) => match (op, st.parked.take()) {
                    (Op::IterNext { .. } | Op::IterPrev { .. }, Some(at)) => {
                        step_from_park(&mut st.it, &at, matches!(op, Op::IterNext { .. }));
                        landed(&st.it)
                    }
                    // Cobble's next_prefix needs a key to start from: a parked iterator stays.
                    (Op::IterNextPrefix { .. }, Some(at)) => {
                        st.parked = Some(at);
                        fmt_pos(None)
                    }
                    _ => position(&mut st.it, op),
                },
                None => format!("err unknown iterator {id}"),
            },
            Op::IterLimited { id, step, limit } => match self.iters.get_mut(id) {
                Some(st) => limited(st, step, limit),
                None => format!("err unknown iterator {id}"),
            },
            Op::IterClose { id } => {
                self.iters.remove(id);
                "ok".into()
            }
            Op::Flush => ok(self.db.flush()),
            // Cobble's runner checks its checkpoints against the model; RocksDB's would be
            // checked by no one here.
            Op::Checkpoint => "ok".into(),
            // Cobble's runner checks its estimate against its tables; the figure is no result.
            Op::EstimateDiskUsage { .. } => "ok".into(),
            Op::CompactRange { start, end } => {
                self.db.compact_range(start.as_deref(), end.as_deref());
                "ok".into()
            }
            Op::FlushWal { sync } => ok(self.db.flush_wal(*sync)),
            // RocksDB runs its own background work.
            Op::BackgroundSteps { .. } => "ok".into(),
            // RocksDB reopens under its one set of options.
            Op::Restart | Op::Reconfigure | Op::Crash { .. } => "ok".into(),
        }
    }

    fn new_iter(
        &mut self,
        id: IterId,
        snapshot: Option<SnapshotId>,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        prefix: Option<Vec<u8>>,
    ) -> String {
        let snap = match snapshot {
            Some(s) => match self.snapshots.get(&s) {
                Some(snap) => snap.clone(),
                None => return format!("err unknown snapshot {s}"),
            },
            None => Rc::new(self.db.snapshot()),
        };
        let it = self.open_iter(&snap, &lower, &upper, &prefix);
        self.iters.insert(id, RocksIter { it, snap, lower, upper, prefix, parked: None });
        "ok".into()
    }

    fn open_iter(
        &self,
        snap: &rocksdb::Snapshot<'a>,
        lower: &Option<Vec<u8>>,
        upper: &Option<Vec<u8>>,
        prefix: &Option<Vec<u8>>,
    ) -> rocksdb::DBRawIterator<'a> {
        let (lower, upper) = bounds_within_prefix(lower, upper, prefix.as_deref());
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_snapshot(snap);
        if let Some(l) = lower {
            ro.set_iterate_lower_bound(l.clone());
        }
        if let Some(u) = upper {
            ro.set_iterate_upper_bound(u.clone());
        }
        self.db.raw_iterator_opt(ro)
    }

    fn write(&self, writes: &[Write], sync: bool) -> String {
        if writes.iter().any(|w| matches!(w, Write::DeleteRange { start, end } if start > end)) {
            return "err invalid-argument".into();
        }
        let batch = rocksdb::WriteBatch::from_data(&encode_batch(writes));
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(sync);
        match self.db.write_opt(batch, &wo) {
            Ok(()) => "ok".into(),
            Err(e) => format!("err {e}"),
        }
    }
}

fn fmt_result(r: Result<Option<Vec<u8>>, rocksdb::Error>) -> String {
    match r {
        Ok(v) => fmt_value(&v),
        Err(e) => format!("err {e}"),
    }
}

/// Leaves a park at `at` as Cobble's iterator does: forward to the first key at or after it,
/// backward to the last key before it.
fn step_from_park(it: &mut rocksdb::DBRawIterator<'_>, at: &[u8], forward: bool) {
    if forward {
        it.seek(at);
    } else {
        it.seek_for_prev(at);
        if it.valid() && it.key() == Some(at) {
            it.prev();
        }
    }
}

/// `iter.limited` on RocksDB, which has no limits: the plain move, then the limit applied to
/// where it landed (a key outside the limit parks the iterator there, as Cobble's does), with
/// the same refusals of a limit on the wrong side of the position.
fn limited(st: &mut RocksIter<'_>, step: &LimitedStep, limit: &[u8]) -> String {
    let current = if st.parked.is_none() && st.it.valid() { st.it.key() } else { None };
    let at = match step {
        LimitedStep::SeekGe(k) | LimitedStep::SeekLt(k) => Some(k.as_slice()),
        LimitedStep::Next | LimitedStep::Prev => st.parked.as_deref().or(current),
    };
    let refused = match (step, at) {
        (LimitedStep::Next, Some(a)) if st.parked.is_none() => limit <= a,
        (LimitedStep::Next | LimitedStep::SeekGe(_), Some(a)) => limit < a,
        (LimitedStep::Prev | LimitedStep::SeekLt(_), Some(a)) => limit > a,
        (_, None) => return fmt_pos(None),
    };
    if refused {
        return "err invalid-argument".into();
    }
    match (step, st.parked.take()) {
        (LimitedStep::Next, Some(p)) => step_from_park(&mut st.it, &p, true),
        (LimitedStep::Prev, Some(p)) => step_from_park(&mut st.it, &p, false),
        (LimitedStep::Next, None) => st.it.next(),
        (LimitedStep::Prev, None) => st.it.prev(),
        (LimitedStep::SeekGe(k), _) => st.it.seek(k),
        (LimitedStep::SeekLt(k), _) => step_from_park(&mut st.it, k, false),
    }
    if st.it.status().is_err() {
        return landed(&st.it);
    }
    match (st.it.valid(), st.it.key()) {
        (true, Some(k)) if (k < limit) == step.forward() => landed(&st.it),
        _ => {
            st.parked = Some(limit.to_vec());
            "parked".into()
        }
    }
}

/// One positioning op on a RocksDB iterator, printed as Cobble's history prints it.
fn position(it: &mut rocksdb::DBRawIterator<'_>, op: &Op) -> String {
    match op {
        Op::IterFirst { .. } => it.seek_to_first(),
        Op::IterLast { .. } => it.seek_to_last(),
        Op::IterSeekGe { key, .. } => it.seek(key),
        Op::IterSeekLt { key, .. } => {
            it.seek_for_prev(key);
            if it.valid() && it.key() == Some(key.as_slice()) {
                it.prev();
            }
        }
        // RocksDB requires a valid iterator here; an unpositioned one stays unpositioned.
        Op::IterNext { .. } if it.valid() => it.next(),
        Op::IterPrev { .. } if it.valid() => it.prev(),
        Op::IterNext { .. } | Op::IterPrev { .. } => {}
        // Past the current key's prefix `p`: its keys end before `pA`.
        Op::IterNextPrefix { .. } if it.valid() => {
            let key = it.key().map(<[u8]>::to_vec).unwrap_or_default();
            match crate::model::key_prefix(&key) {
                Some(p) => it.seek(prefix_range(p).1),
                None => it.next(),
            }
        }
        Op::IterNextPrefix { .. } => {}
        _ => unreachable!("an iterator positioning op"),
    }
    landed(it)
}

/// Where a RocksDB iterator landed, printed as Cobble's history prints it.
fn landed(it: &rocksdb::DBRawIterator<'_>) -> String {
    if let Err(e) = it.status() {
        return format!("err {e}");
    }
    match (it.valid(), it.key(), it.value()) {
        (true, Some(k), Some(v)) => fmt_pos(Some((k, v))),
        _ => fmt_pos(None),
    }
}

/// RocksDB's WriteBatch layout: an 8-byte sequence number (0: the DB assigns it) and a 4-byte
/// record count, little-endian, then per record a type tag and varint32-prefixed slices:
/// deletion 0x0, value 0x1, merge 0x2, single deletion 0x7, range deletion 0xF.
pub fn encode_batch(writes: &[Write]) -> Vec<u8> {
    let mut out = vec![0u8; 8];
    let count = u32::try_from(writes.len()).expect("a batch holds fewer than 2^32 writes");
    out.extend_from_slice(&count.to_le_bytes());
    for w in writes {
        let (tag, a, b): (u8, &[u8], Option<&[u8]>) = match w {
            Write::Delete { key } => (0x0, key, None),
            Write::Put { key, value } => (0x1, key, Some(value)),
            Write::Merge { key, value } => (0x2, key, Some(value)),
            Write::SingleDelete { key } => (0x7, key, None),
            Write::DeleteRange { start, end } => (0xF, start, Some(end)),
        };
        out.push(tag);
        put_slice(&mut out, a);
        if let Some(b) = b {
            put_slice(&mut out, b);
        }
    }
    out
}

fn put_slice(out: &mut Vec<u8>, s: &[u8]) {
    let mut n = u32::try_from(s.len()).expect("keys and values are under 4 GiB");
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        default_scratch().join(format!("tumbler-difftest-{}-{name}", std::process::id()))
    }

    /// What RocksDB decodes from our encoding (the crate reports puts and deletes only).
    #[derive(Default)]
    struct Seen(Vec<String>);
    impl rocksdb::WriteBatchIterator for Seen {
        fn put(&mut self, key: Box<[u8]>, value: Box<[u8]>) {
            self.0.push(format!("put {key:?} {}", value.len()));
        }
        fn delete(&mut self, key: Box<[u8]>) {
            self.0.push(format!("delete {key:?}"));
        }
    }

    fn parse(text: &str) -> Vec<Op> {
        ops::parse(&format!("# tumbler ops v1\n{text}")).expect("test ops parse").ops
    }

    #[test]
    fn encoded_batches_are_what_rocksdb_reads() {
        let writes = vec![
            Write::Put { key: b"a".to_vec(), value: vec![7u8; 300] },
            Write::Delete { key: b"b".to_vec() },
            Write::SingleDelete { key: b"c".to_vec() },
            Write::Merge { key: b"a".to_vec(), value: b"m".to_vec() },
            Write::DeleteRange { start: b"x".to_vec(), end: b"z".to_vec() },
        ];
        let batch = rocksdb::WriteBatch::from_data(&encode_batch(&writes));
        assert_eq!(batch.len(), 5);
        let mut seen = Seen::default();
        batch.iterate(&mut seen);
        assert_eq!(seen.0, [format!("put {:?} 300", &b"a"[..]), format!("delete {:?}", &b"b"[..])]);

        let ops = parse(
            "put \"a\" \"1\"\nput \"c\" \"3\"\nput \"y\" \"9\"\nbatch.new b1\n\
             batch.merge b1 \"a\" \"2\"\nbatch.single_delete b1 \"c\"\n\
             batch.delete_range b1 \"x\" \"z\"\nbatch.commit b1\nget \"a\"\nget \"c\"\n\
             get \"y\"\n",
        );
        let dir = scratch("encode");
        let h = run_rocksdb(&ops, &dir, MergeKind::StringAppend).expect("RocksDB runs");
        assert_eq!(
            &h[8..],
            ["8 get \"a\" -> \"1,2\"", "9 get \"c\" -> not-found", "10 get \"y\" -> not-found"]
        );
    }

    /// Operands in the wrong order: a RocksDB that differs on purpose.
    fn newest_first(
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &rocksdb::MergeOperands,
    ) -> Option<Vec<u8>> {
        let mut parts: Vec<Vec<u8>> = operands.iter().map(<[u8]>::to_vec).collect();
        parts.reverse();
        parts.extend(existing.map(<[u8]>::to_vec));
        Some(parts.join(&b","[..]))
    }

    #[test]
    fn a_seed_agrees_and_a_planted_difference_is_found_and_reduced() {
        let spec = SeedSpec {
            ops: 2000,
            configs: Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/standard"),
            random_configs: 0,
            weights: None,
            swarm: false,
            error_rate: 0.0,
            plant: None,
            hang_timeout: 60,
        };
        let plan = plan::plan_seed(&spec, 3).expect("the standard configs load");
        let config = plan.configs.iter().find(|c| c.name == "default").expect("default config");
        let ops = crash_free(&plan.file.ops);
        assert!(ops.iter().any(|op| matches!(op, Op::Restart)));
        let dir = scratch("seed");
        let run = check::run_config_guarded(&ops, config, &plan.settings);
        assert!(run.failure.is_none(), "{:?}", run.failure);
        let cobble: Vec<&str> = run.comparable_history().collect();
        let rocks = run_rocksdb(&ops, &dir, MergeKind::StringAppend).expect("RocksDB runs");
        assert_eq!(first_difference(&cobble, &rocks), None);

        let mut wrong = rocks_options(MergeKind::StringAppend).expect("options");
        wrong.set_merge_operator_associative("string_append", newest_first);
        let wrong_rocks = |ops: &[Op]| run_rocksdb_with(ops, &dir, &wrong);
        let bad = wrong_rocks(&ops).expect("RocksDB runs");
        let (i, a, b) = first_difference(&cobble, &bad).expect("reversed merges show");
        assert_ne!(a, b);
        let kind = ops[i].kind();
        let reduced = reduce(&ops, i, Duration::from_secs(120), |cand| {
            diverges_at_kind(cand, config, &plan.settings, &wrong_rocks, kind)
        })
        .expect("reduction runs");
        // A put, a merge and a read (with the iterator and snapshot it needs) are all it takes.
        assert!(
            reduced.len() <= 6,
            "{}",
            ops::print(&ops::OpsFile { ops: reduced, ..Default::default() })
        );
        assert!(diverges_at_kind(&reduced, config, &plan.settings, &wrong_rocks, kind).unwrap());
    }
}
