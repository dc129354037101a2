//! `tumbler reduce`: shrinks a saved failure directory while it keeps failing the same way, and
//! writes the result as a new failure directory plus a ready-to-commit corpus entry.
//!
//! "The same way" is a [`Signature`]: the oracle and the kind of the first failing op (the
//! message may change, e.g. sequence numbers shrink with the ops). Every candidate runs only the
//! failing config (for a `diff` failure, the two configs that diverge) through
//! [`check::run_config_guarded`], without the determinism check unless that is the failure.
//!
//! Passes, repeated until a whole round changes nothing:
//! 1. Drop everything after the failing op; try injected errors off (`error_rate` 0).
//! 2. Delta debugging over the ops: remove chunks of halving size down to single ops. Removal
//!    is object-aware: removing an iterator's, snapshot's or batch's creation removes every op
//!    naming it (and iterators read at a removed snapshot). Candidates that
//!    [`ops::validate()`] rejects are never run.
//! 3. Fault schedule: remove each crash, make `within n` a boundary crash or a smaller `n`,
//!    make torn/dirs crashes plain drops.
//! 4. Op simplification: values become short literals or halve their length; `sync` flags go.
//! 5. Config: each knob of each config is shrunk as its row of the knob table says
//!    (`config/mod.rs`): back to its default, except that a Manual scheduler stays (the
//!    default, threads, does not replay exactly) and a threads one is moved to Manual.
//!
//! The saved failure is read, and the reduced one written, by `artifacts.rs`.
//!
//! Determinism: the reducer makes no decision from a clock or from hash order, so the same
//! input gives the same output. The time budget only stops it early (keeping the best case so
//! far); a budget-stopped result therefore depends on the machine's speed.
//!
//! Size: near 1,000 lines: the reduction passes share one candidate loop and one notion of "fails
//! the same way"; split by pass it would scatter that invariant.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::artifacts::{self, Saved};
use crate::check::{self, SeedReport};
use crate::config::{self, EngineConfig, SchedulerKind, KNOBS};
use crate::ops::{
    self, CrashAt, CrashPolicy, LimitedStep, Op, OpKind, OpsFile, Value, GENERATOR_VERSION,
};
use crate::runner::{ConfigRun, Failure, Oracle, RunSettings};
use crate::sim::PlantedFault;
use crate::supervise::{Record, RecordFailure};

/// How a failure shows: what a reduced case must keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub oracle: Oracle,
    /// The kind of the failing op; `None` when the failure came at the final close.
    pub op_kind: Option<OpKind>,
    /// For a panic or an abort: where it panicked (`FILE:LINE:COL`), when known.
    pub location: Option<String>,
}

impl Signature {
    /// The signature of `failure` found while running `ops`.
    pub fn of(failure: &Failure, ops: &[Op]) -> Signature {
        let location = matches!(failure.oracle, Oracle::Panic | Oracle::Abort)
            .then(|| crate::watchdog::panic_location(&failure.message).map(str::to_string))
            .flatten();
        Signature {
            oracle: failure.oracle,
            op_kind: failure.op_index.and_then(|i| ops.get(i)).map(Op::kind),
            location,
        }
    }

    /// True for failures whose candidates must run in a child process with a time limit:
    /// a panic may abort the process, a hang leaves a thread behind.
    pub fn needs_isolation(oracle: Oracle) -> bool {
        matches!(oracle, Oracle::Panic | Oracle::Hang | Oracle::Abort)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.op_kind.map_or("close", OpKind::name);
        write!(f, "{} at {at}", self.oracle.name())?;
        match &self.location {
            Some(loc) => write!(f, " ({loc})"),
            None => Ok(()),
        }
    }
}

/// The thing being shrunk.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub ops: Vec<Op>,
    pub error_rate: f64,
    /// The failing config is last; for a `diff` failure the config it diverges from is first.
    pub configs: Vec<EngineConfig>,
}

/// The outcome of a reduction.
#[derive(Clone, Debug)]
pub struct Reduction {
    pub signature: Signature,
    /// The reduced case and the failure it shows.
    pub case: Case,
    pub failure: Failure,
    pub seed: u64,
    pub planted: Option<PlantedFault>,
    pub generator: String,
    pub original_ops: usize,
    /// The failing config as saved (before knob reduction).
    pub original_config: EngineConfig,
    /// Candidates run.
    pub tests: usize,
    /// True when the time budget ran out first (the result depends on the machine's speed).
    pub stopped_by_budget: bool,
}

/// Shrinks `saved`'s first failure. `budget` bounds wall time (it only stops the search).
pub fn reduce(saved: &Saved, budget: Option<Duration>) -> anyhow::Result<Reduction> {
    reduce_within(saved, budget, None)
}

/// Like [`reduce`], also stopping after `max_tests` candidate runs: a budget that, unlike
/// time, gives the same result on every machine (what `tumbler nightly` uses).
pub fn reduce_within(
    saved: &Saved,
    budget: Option<Duration>,
    max_tests: Option<usize>,
) -> anyhow::Result<Reduction> {
    #[expect(
        clippy::disallowed_methods,
        reason = "wall time only stops the search early (module docs)"
    )]
    let deadline = budget.map(|b| Instant::now() + b);
    let ops = &saved.file.ops;
    let isolate = saved.oracle.is_some_and(Signature::needs_isolation);
    let report = if isolate {
        isolated_report(saved)
    } else {
        check::run_seed(ops, &saved.configs, &saved.settings, false)
    };
    let (case, failure, check_determinism) = match pick_target(saved, &report) {
        Some(t) => t,
        None => {
            // Only the determinism check is left to explain the saved failure.
            let report = check::run_seed(ops, &saved.configs, &saved.settings, true);
            match pick_target(saved, &report) {
                Some(t) => t,
                None => bail!("the saved failure does not reproduce: every config passes"),
            }
        }
    };
    let signature = Signature::of(&failure, ops);
    let original_config = case.configs.last().expect("a case has a config").clone();
    let mut r = Reducer {
        settings: saved.settings.clone(),
        isolate: isolate || Signature::needs_isolation(signature.oracle),
        file: saved.file.clone(),
        signature: signature.clone(),
        check_determinism,
        deadline,
        max_tests,
        tests: 0,
        out_of_time: false,
        best: case,
        failure,
    };
    r.run();
    if r.isolate {
        let _ = std::fs::remove_dir_all(scratch_dir());
    }
    Ok(Reduction {
        signature,
        case: r.best,
        failure: r.failure,
        seed: saved.settings.seed,
        planted: saved.settings.planted,
        generator: saved.file.generator.clone().unwrap_or_else(|| GENERATOR_VERSION.to_string()),
        original_ops: ops.len(),
        original_config,
        tests: r.tests,
        stopped_by_budget: r.out_of_time,
    })
}

/// Chooses the failure to keep: the report's first failure fixes the signature; among the
/// configs failing with it, prefer a deterministic one, then the fewest non-default knobs, then
/// the name. Returns the starting case, its failure and whether the determinism check is needed.
fn pick_target(saved: &Saved, report: &SeedReport) -> Option<(Case, Failure, bool)> {
    let first = report
        .failures
        .iter()
        .find(|f| Some(f.failure.oracle) == saved.oracle)
        .or(report.failures.first())?;
    let ops = &saved.file.ops;
    let sig = Signature::of(&first.failure, ops);
    let by_name = |name: &str| saved.configs.iter().find(|c| c.name == name).cloned();
    let configs_of = |f: &check::SeedFailure| -> Option<Vec<EngineConfig>> {
        let failing = by_name(&f.config)?;
        if f.failure.oracle == Oracle::Diff {
            // check.rs diffs every passing run against the first passing one.
            let base = report.runs.iter().find(|r| r.failure.is_none())?;
            Some(vec![base.config.clone(), failing])
        } else {
            Some(vec![failing])
        }
    };
    let default = baseline();
    let candidates = report
        .failures
        .iter()
        .filter(|f| Signature::of(&f.failure, ops) == sig)
        .filter_map(|f| Some((configs_of(f)?, f.failure.clone())))
        .min_by_key(|(configs, _)| {
            let c = configs.last().expect("a case has a config");
            (!c.is_deterministic(), config::diff(&default, c).len(), c.name.clone())
        })?;
    let (configs, failure) = candidates;
    let case = Case { ops: ops.clone(), error_rate: saved.settings.error_rate, configs };
    Some((case, failure, sig.oracle == Oracle::Determinism))
}

struct Reducer {
    settings: RunSettings,
    /// Run each candidate in a child process (`supervise.rs`).
    isolate: bool,
    /// The saved ops file (its header is copied into isolated candidates).
    file: OpsFile,
    signature: Signature,
    check_determinism: bool,
    deadline: Option<Instant>,
    max_tests: Option<usize>,
    tests: usize,
    out_of_time: bool,
    best: Case,
    failure: Failure,
}

impl Reducer {
    fn run(&mut self) {
        self.report("start");
        self.truncate();
        if self.best.error_rate != 0.0 {
            let cand = Case { error_rate: 0.0, ..self.best.clone() };
            if self.try_accept(cand) {
                self.report("error_rate 0");
            }
        }
        loop {
            let before = self.best.clone();
            self.ddmin();
            self.faults();
            self.simplify_ops();
            self.knobs();
            if self.best == before || self.out_of_time {
                break;
            }
        }
        self.report("done");
    }

    fn report(&self, step: &str) {
        let knobs = self.best.configs.last().map_or(0, |c| config::diff(&baseline(), c).len());
        println!(
            "reduce: {step}: {} ops, {knobs} knobs, {} tests",
            self.best.ops.len(),
            self.tests
        );
    }

    fn budget_left(&mut self) -> bool {
        if self.max_tests.is_some_and(|m| self.tests >= m) {
            self.out_of_time = true;
        }
        if let Some(d) = self.deadline {
            #[expect(clippy::disallowed_methods, reason = "wall time only stops the search early")]
            let now = Instant::now();
            if now >= d {
                self.out_of_time = true;
            }
        }
        !self.out_of_time
    }

    /// Runs `cand`; returns its failure when it shows the signature on the failing config.
    fn test(&mut self, cand: &Case) -> Option<Failure> {
        if !self.budget_left() || ops::validate(&cand.ops).is_err() {
            return None;
        }
        self.tests += 1;
        let failure = if self.isolate {
            run_case_isolated(cand, &self.file, &self.settings)?
        } else {
            run_case(cand, &self.settings, self.check_determinism)?
        };
        (Signature::of(&failure, &cand.ops) == self.signature).then_some(failure)
    }

    /// Keeps `cand` when it fails the same way.
    fn try_accept(&mut self, cand: Case) -> bool {
        match self.test(&cand) {
            Some(f) => {
                self.best = cand;
                self.failure = f;
                self.truncate();
                true
            }
            None => false,
        }
    }

    /// Drops the ops after the failing one (kept only if it still fails the same way).
    fn truncate(&mut self) {
        let Some(i) = self.failure.op_index else { return };
        if i + 1 >= self.best.ops.len() {
            return;
        }
        let mut cand = self.best.clone();
        cand.ops.truncate(i + 1);
        if let Some(f) = self.test(&cand) {
            self.best = cand;
            self.failure = f;
        }
    }

    /// Delta debugging: removes chunks of ops, halving the chunk size down to single ops.
    fn ddmin(&mut self) {
        let mut chunk = self.best.ops.len().div_ceil(2).max(1);
        loop {
            let mut progressed = false;
            let mut start = 0;
            while start < self.best.ops.len() && self.budget_left() {
                let end = (start + chunk).min(self.best.ops.len());
                let cand =
                    Case { ops: remove_ops(&self.best.ops, start..end), ..self.best.clone() };
                if cand.ops.len() < self.best.ops.len() && self.try_accept(cand) {
                    // The next chunk has moved to `start`.
                    progressed = true;
                } else {
                    start = end;
                }
            }
            if progressed {
                self.report(&format!("removed chunks of {chunk}"));
                chunk = chunk.min(self.best.ops.len().div_ceil(2)).max(1);
                continue;
            }
            if chunk == 1 || self.out_of_time {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }

    /// Tries each op-local rewrite `alternatives` offers, in order, keeping the first that
    /// still fails, and repeats on the same op until none does.
    fn rewrite_each(&mut self, what: &str, alternatives: fn(&Op) -> Vec<Option<Op>>) {
        let mut changed = false;
        let mut i = 0;
        while i < self.best.ops.len() && self.budget_left() {
            let mut accepted = false;
            for alt in alternatives(&self.best.ops[i]) {
                let ops = match alt {
                    Some(op) => {
                        let mut ops = self.best.ops.clone();
                        ops[i] = op;
                        ops
                    }
                    None => remove_ops(&self.best.ops, i..i + 1),
                };
                if self.try_accept(Case { ops, ..self.best.clone() }) {
                    accepted = true;
                    changed = true;
                    break;
                }
            }
            if !accepted {
                i += 1;
            }
        }
        if changed {
            self.report(what);
        }
    }

    /// Simplifies the crash schedule.
    fn faults(&mut self) {
        self.rewrite_each("simplified crashes", crash_alternatives);
    }

    /// Shortens values and drops sync flags: first all at once, then one op at a time.
    fn simplify_ops(&mut self) {
        let all: Vec<Op> = self
            .best
            .ops
            .iter()
            .map(|op| {
                let op = without_sync(op).unwrap_or_else(|| op.clone());
                with_value(&op, tiny_value()).unwrap_or(op)
            })
            .collect();
        if all != self.best.ops && self.try_accept(Case { ops: all, ..self.best.clone() }) {
            self.report("all values tiny, no syncs");
            return;
        }
        if let Some(ops) = short_keys(&self.best.ops) {
            if self.try_accept(Case { ops, ..self.best.clone() }) {
                self.report("short keys");
            }
        }
        self.rewrite_each("plainer writes", plainer_write);
        self.rewrite_each("shortened values", value_alternatives);
        self.rewrite_each("dropped sync flags", |op| {
            without_sync(op).map(Some).into_iter().collect()
        });
    }

    /// Shrinks each knob of each config (back to its default, mostly), keeping the first
    /// candidate of each knob that still fails.
    fn knobs(&mut self) {
        let mut changed = false;
        for c in 0..self.best.configs.len() {
            for knob in KNOBS {
                for shrunk in knob.shrink(&self.best.configs[c]) {
                    if !self.budget_left() {
                        return;
                    }
                    let mut cand = self.best.clone();
                    cand.configs[c] = shrunk;
                    if self.try_accept(cand) {
                        changed = true;
                        break;
                    }
                }
            }
        }
        if changed {
            self.report("reset knobs");
        }
    }
}

/// A directory holding `case` as a saved failure (ops.txt, settings.json, configs/), for a
/// child process to replay.
fn write_case(
    dir: &Path,
    case: &Case,
    file: &OpsFile,
    settings: &RunSettings,
) -> anyhow::Result<()> {
    let file = OpsFile { ops: case.ops.clone(), ..file.clone() };
    let settings = RunSettings { error_rate: case.error_rate, ..settings.clone() };
    let report = SeedReport { runs: Vec::new(), failures: Vec::new(), stats: Default::default() };
    artifacts::write(dir, &file, &case.configs, &settings, &report)
}

/// Scratch space for isolated candidates, one per process.
fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("tumbler-reduce-{}", std::process::id()))
}

/// Runs `case` (one config) in a child process under the hang timeout: a panic, a hang or an
/// abort of the candidate cannot take the reducer down. `None` when it passed or could not run.
pub fn run_case_isolated(case: &Case, file: &OpsFile, settings: &RunSettings) -> Option<Failure> {
    let dir = scratch_dir().join("case");
    write_case(&dir, case, file, settings).ok()?;
    let timeout = crate::watchdog::hang_timeout();
    let args: Vec<std::ffi::OsString> = vec![
        "case".into(),
        dir.clone().into_os_string(),
        "--hang-timeout".into(),
        timeout.as_secs().max(1).to_string().into(),
    ];
    let backstop = crate::supervise::backstop(timeout, case.ops.len());
    let outcome =
        crate::supervise::run_child(&args, backstop, &scratch_dir().join("child")).ok()?;
    match outcome {
        crate::supervise::Outcome::Died(f) => Some(f),
        crate::supervise::Outcome::Record(r) => {
            let f = r.failures.into_iter().next()?;
            let oracle = artifacts::oracle_named(&f.oracle)?;
            Some(Failure { oracle, op_index: f.op_index, message: f.message })
        }
    }
}

/// The first run of a panic, hang or abort: each config alone in a child process, so that one
/// config's abort does not hide the others.
fn isolated_report(saved: &Saved) -> SeedReport {
    let mut failures = Vec::new();
    for c in &saved.configs {
        let case = Case {
            ops: saved.file.ops.clone(),
            error_rate: saved.settings.error_rate,
            configs: vec![c.clone()],
        };
        if let Some(failure) = run_case_isolated(&case, &saved.file, &saved.settings) {
            failures.push(check::SeedFailure {
                config: c.name.clone(),
                failure,
                detail: String::new(),
            });
        }
    }
    let _ = std::fs::remove_dir_all(scratch_dir());
    SeedReport { runs: Vec::new(), failures, stats: crate::runner::RunStats::default() }
}

/// `tumbler __child case DIR`: runs the case the reducer saved in `dir` (written by
/// `write_case`) and records the failure of its failing (last) config.
pub fn child_case(dir: &Path) -> anyhow::Result<Record> {
    let saved = artifacts::read(dir)?;
    let case = Case {
        ops: saved.file.ops.clone(),
        error_rate: saved.settings.error_rate,
        configs: saved.configs.clone(),
    };
    let failure = run_case(&case, &saved.settings, false);
    let config = case.configs.last().map(|c| c.name.clone()).unwrap_or_default();
    Ok(Record {
        failures: failure
            .into_iter()
            .map(|f| RecordFailure {
                oracle: f.oracle.name().to_string(),
                config: config.clone(),
                op_index: f.op_index,
                message: f.message,
            })
            .collect(),
        ..Record::default()
    })
}

/// Runs `case` and returns the failure seen on its failing (last) config, if any.
pub fn run_case(case: &Case, settings: &RunSettings, check_determinism: bool) -> Option<Failure> {
    let settings = RunSettings { error_rate: case.error_rate, ..settings.clone() };
    let target = case.configs.last()?;
    if check_determinism {
        let report = check::run_seed(&case.ops, &case.configs, &settings, true);
        return report.failures.into_iter().find(|f| f.config == target.name).map(|f| f.failure);
    }
    let runs: Vec<ConfigRun> = if case.configs.len() == 2 {
        let (a, b) = rayon::join(
            || check::run_config_guarded(&case.ops, &case.configs[0], &settings),
            || check::run_config_guarded(&case.ops, &case.configs[1], &settings),
        );
        vec![a, b]
    } else {
        case.configs.iter().map(|c| check::run_config_guarded(&case.ops, c, &settings)).collect()
    };
    let last = runs.last()?;
    if let Some(f) = &last.failure {
        return Some(f.clone());
    }
    // A two-config case is a divergence: it counts only when both runs pass on their own.
    match runs.as_slice() {
        [base, other] if base.failure.is_none() => check::diff_runs(base, other).map(|f| f.failure),
        _ => None,
    }
}

/// An id an op creates or names (`b1`, `s2`, `i3`).
fn created_id(op: &Op) -> Option<String> {
    match op {
        Op::BatchNew { id } => Some(id.to_string()),
        Op::SnapshotNew { id } => Some(id.to_string()),
        Op::IterNew { id, .. } | Op::IterNewPrefix { id, .. } | Op::IterClone { id, .. } => {
            Some(id.to_string())
        }
        _ => None,
    }
}

fn named_ids(op: &Op) -> Vec<String> {
    match op {
        Op::BatchPut { id, .. }
        | Op::BatchDelete { id, .. }
        | Op::BatchSingleDelete { id, .. }
        | Op::BatchMerge { id, .. }
        | Op::BatchDeleteRange { id, .. }
        | Op::BatchCommit { id, .. }
        | Op::BatchAbort { id }
        | Op::BatchClear { id } => vec![id.to_string()],
        Op::BatchIngest { ids } => ids.iter().map(ToString::to_string).collect(),
        Op::BatchGet { id, snapshot, .. } | Op::BatchScan { id, snapshot, .. } => {
            std::iter::once(id.to_string())
                .chain(snapshot.iter().map(ToString::to_string))
                .collect()
        }
        Op::SnapshotGet { id, .. } | Op::SnapshotClose { id } => vec![id.to_string()],
        Op::IterNew { snapshot, batch, .. } => snapshot
            .iter()
            .map(ToString::to_string)
            .chain(batch.iter().map(ToString::to_string))
            .collect(),
        Op::IterNewPrefix { snapshot, .. } | Op::MultiGet { snapshot, .. } => {
            snapshot.iter().map(ToString::to_string).collect()
        }
        Op::IterClone { from, .. } => vec![from.to_string()],
        Op::IterFirst { id }
        | Op::IterLast { id }
        | Op::IterSeekGe { id, .. }
        | Op::IterSeekLt { id, .. }
        | Op::IterNext { id }
        | Op::IterPrev { id }
        | Op::IterNextPrefix { id }
        | Op::IterLimited { id, .. }
        | Op::IterRefresh { id }
        | Op::IterSetBounds { id, .. }
        | Op::IterClose { id } => vec![id.to_string()],
        _ => Vec::new(),
    }
}

/// `ops` without `range`, and without every op naming an object whose creation went.
pub fn remove_ops(ops: &[Op], range: std::ops::Range<usize>) -> Vec<Op> {
    let mut dead = BTreeSet::new();
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if range.contains(&i) || named_ids(op).iter().any(|id| dead.contains(id)) {
            dead.extend(created_id(op));
        } else {
            out.push(op.clone());
        }
    }
    out
}

fn crash_alternatives(op: &Op) -> Vec<Option<Op>> {
    if let Op::Reconfigure = op {
        return vec![None, Some(Op::Restart)];
    }
    let Op::Crash { policy, at } = *op else { return Vec::new() };
    let mut alts = vec![None];
    if let CrashAt::Within(n) = at {
        alts.push(Some(Op::Crash { policy, at: CrashAt::Boundary }));
        for m in [1, n / 2] {
            if m >= 1 && m < n {
                alts.push(Some(Op::Crash { policy, at: CrashAt::Within(m) }));
            }
        }
    }
    if policy != CrashPolicy::Drop {
        alts.push(Some(Op::Crash { policy: CrashPolicy::Drop, at }));
    }
    alts
}

fn tiny_value() -> Value {
    Value::Lit(b"v".to_vec())
}

fn value_of(op: &Op) -> Option<&Value> {
    match op {
        Op::Put { value, .. }
        | Op::Merge { value, .. }
        | Op::BatchPut { value, .. }
        | Op::BatchMerge { value, .. } => Some(value),
        _ => None,
    }
}

/// `op` with its value replaced, if it has one that differs.
fn with_value(op: &Op, v: Value) -> Option<Op> {
    if value_of(op)? == &v {
        return None;
    }
    let mut op = op.clone();
    match &mut op {
        Op::Put { value, .. }
        | Op::Merge { value, .. }
        | Op::BatchPut { value, .. }
        | Op::BatchMerge { value, .. } => *value = v,
        _ => return None,
    }
    Some(op)
}

fn value_alternatives(op: &Op) -> Vec<Option<Op>> {
    let Some(v) = value_of(op) else { return Vec::new() };
    let mut alts = Vec::new();
    if v.len() > 1 || matches!(v, Value::Gen { .. }) {
        alts.extend(with_value(op, tiny_value()).map(Some));
    }
    match v {
        Value::Gen { len, seed } if *len > 16 => {
            alts.extend(with_value(op, Value::Gen { len: len / 2, seed: *seed }).map(Some));
        }
        Value::Lit(b) if b.len() > 1 => {
            alts.extend(with_value(op, Value::Lit(b[..b.len() / 2].to_vec())).map(Some));
        }
        _ => {}
    }
    alts
}

/// Every key, bound and range end `op` holds.
fn keys_mut(op: &mut Op) -> Vec<&mut Vec<u8>> {
    match op {
        Op::Put { key, .. }
        | Op::Get { key }
        | Op::Delete { key, .. }
        | Op::SingleDelete { key, .. }
        | Op::Merge { key, .. }
        | Op::BatchPut { key, .. }
        | Op::BatchDelete { key, .. }
        | Op::BatchSingleDelete { key, .. }
        | Op::BatchMerge { key, .. }
        | Op::BatchGet { key, .. }
        | Op::SnapshotGet { key, .. }
        | Op::IterSeekGe { key, .. }
        | Op::IterSeekLt { key, .. } => vec![key],
        Op::IterLimited { step, limit, .. } => match step {
            LimitedStep::SeekGe(key) | LimitedStep::SeekLt(key) => vec![key, limit],
            LimitedStep::Next | LimitedStep::Prev => vec![limit],
        },
        Op::DeleteRange { start, end, .. } | Op::BatchDeleteRange { start, end, .. } => {
            vec![start, end]
        }
        Op::IterNew { lower, upper, .. } | Op::IterSetBounds { lower, upper, .. } => {
            lower.iter_mut().chain(upper.iter_mut()).collect()
        }
        Op::CompactRange { start, end } => start.iter_mut().chain(end.iter_mut()).collect(),
        Op::MultiGet { keys, .. } => keys.iter_mut().collect(),
        Op::Scan { lower, upper, .. } | Op::BatchScan { lower, upper, .. } => {
            lower.iter_mut().chain(upper.iter_mut()).collect()
        }
        _ => Vec::new(),
    }
}

/// `ops` with every key renamed `k<rank>` (fixed width, so byte order and equality between
/// all the keys the ops mention are kept), if that changes them.
fn short_keys(ops: &[Op]) -> Option<Vec<Op>> {
    let mut ops = ops.to_vec();
    let mut keys = BTreeSet::new();
    for op in &mut ops {
        keys.extend(keys_mut(op).into_iter().map(|k| k.clone()));
    }
    let width = keys.len().saturating_sub(1).to_string().len();
    let renamed: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = keys
        .iter()
        .enumerate()
        .map(|(rank, k)| (k.clone(), format!("k{rank:0width$}").into_bytes()))
        .collect();
    let before = ops.clone();
    for op in &mut ops {
        for k in keys_mut(op) {
            *k = renamed[k.as_slice()].clone();
        }
    }
    (ops != before).then_some(ops)
}

/// `op` with its sync flag cleared, if it was set.
/// A delete, single_delete, merge or range delete (direct or batched) as a put of its key
/// (a range's start): when the failure keeps, the write's kind did not matter, and cases of
/// one bug reduce to one shape whichever write they happened to keep.
fn plainer_write(op: &Op) -> Vec<Option<Op>> {
    let put = |key: &[u8], sync: bool| Op::Put { key: key.to_vec(), value: tiny_value(), sync };
    let batch_put = |id, key: &[u8]| Op::BatchPut { id, key: key.to_vec(), value: tiny_value() };
    let plain = match op {
        Op::Delete { key, sync } | Op::SingleDelete { key, sync } => put(key, *sync),
        Op::Merge { key, sync, .. } => put(key, *sync),
        Op::DeleteRange { start, sync, .. } => put(start, *sync),
        Op::BatchDelete { id, key } | Op::BatchSingleDelete { id, key } => batch_put(*id, key),
        Op::BatchMerge { id, key, .. } => batch_put(*id, key),
        Op::BatchDeleteRange { id, start, .. } => batch_put(*id, start),
        _ => return Vec::new(),
    };
    vec![Some(plain)]
}

fn without_sync(op: &Op) -> Option<Op> {
    let mut op = op.clone();
    match &mut op {
        Op::Put { sync, .. }
        | Op::Delete { sync, .. }
        | Op::SingleDelete { sync, .. }
        | Op::Merge { sync, .. }
        | Op::DeleteRange { sync, .. }
        | Op::BatchCommit { sync, .. }
        | Op::FlushWal { sync }
            if *sync =>
        {
            *sync = false
        }
        _ => return None,
    }
    Some(op)
}

/// What knob differences are named against: the engine defaults, stepped by the harness
/// (the default threads scheduler does not replay exactly, so the reducer never moves to it).
pub fn baseline() -> EngineConfig {
    EngineConfig { scheduler: Some(SchedulerKind::Manual), ..EngineConfig::default() }
}

/// The reduced configs as saved: renamed `<name>-reduced` (the suffix keeps their name order,
/// which `check::run_seed` needs to pick the same diff base) and described.
fn output_configs(r: &Reduction) -> Vec<EngineConfig> {
    let default = baseline();
    r.case
        .configs
        .iter()
        .map(|c| {
            let knobs = config::diff(&default, c);
            let mut c = c.clone();
            c.description = Some(format!(
                "Reduced from `{}`; knobs off the defaults (Manual scheduler): {}.",
                c.name,
                if knobs.is_empty() { "none".to_string() } else { knobs.join(", ") }
            ));
            if !c.name.ends_with("-reduced") {
                // Renamed, but seeded as before: the run's decisions hang on the name's hash,
                // and the reduced case must fail as the candidates did.
                c.seeded_as.get_or_insert_with(|| c.name.clone());
                c.name = format!("{}-reduced", c.name);
            }
            c
        })
        .collect()
}

/// The corpus entry: an ops file whose header comments describe the failure.
///
/// ```text
/// # tumbler ops v1
/// # generator: 1
/// # seed: 3
/// # symptom: durability at compact_range: crash during the op: recovered to seq 3, ...
/// # planted: skip-wal-sync            (only for a planted fault)
/// # error_rate: 0
/// # knobs of default-reduced: none     (for people: `knob: default -> value, ...` or `none`)
/// # config: {"name":"default-reduced","scheduler":"manual"}
/// # fix: TODO describe the fix
/// ```
///
/// The `# knobs of` and `# config:` pair comes once per config (one line of compact JSON, as
/// [`EngineConfig::from_json`] reads it); for a `diff` failure the base config comes first and
/// the failing one last. Knob differences are named against [`baseline`]. Every header line is
/// a comment to [`ops::parse`], which fills in only `generator` and `seed`.
pub fn corpus_entry(r: &Reduction) -> String {
    let mut out = String::new();
    out.push_str(ops::format::MAGIC);
    out.push('\n');
    let _ = writeln!(out, "# generator: {}", r.generator);
    let _ = writeln!(out, "# seed: {}", r.seed);
    let message = r.failure.message.lines().next().unwrap_or("");
    let _ = writeln!(out, "# symptom: {}: {message}", r.signature);
    if let Some(p) = r.planted {
        let _ = writeln!(out, "# planted: {p}");
    }
    let _ = writeln!(out, "# error_rate: {}", r.case.error_rate);
    for c in output_configs(r) {
        let knobs = config::diff(&baseline(), &c);
        let knobs = if knobs.is_empty() { "none".to_string() } else { knobs.join(", ") };
        let _ = writeln!(out, "# knobs of {}: {knobs}", c.name);
        // The description is for config files; the corpus line carries only the knobs.
        let c = EngineConfig { description: None, ..c };
        let json = serde_json::to_string(&c).expect("a config serializes");
        let _ = writeln!(out, "# config: {json}");
    }
    out.push_str("# fix: TODO describe the fix\n");
    for op in &r.case.ops {
        out.push_str(&ops::print_op(op));
        out.push('\n');
    }
    out
}

/// Writes the reduced case to `out` in the saved-failure layout (so `tumbler replay out`
/// works), plus `corpus_entry.ops`.
pub fn write_output(out: &Path, r: &Reduction) -> anyhow::Result<()> {
    // An earlier reduction is overwritten (`artifacts::write` removes its stale files).
    if out.exists()
        && !out.join("corpus_entry.ops").exists()
        && std::fs::read_dir(out)?.next().is_some()
    {
        bail!("{} exists and is not an earlier reduction: not overwriting", out.display());
    }
    let settings = RunSettings { seed: r.seed, error_rate: r.case.error_rate, planted: r.planted };
    let configs = output_configs(r);
    let file = OpsFile {
        generator: Some(r.generator.clone()),
        seed: Some(r.seed),
        ops: r.case.ops.clone(),
    };
    let check_determinism = r.signature.oracle == Oracle::Determinism;
    let report = if Signature::needs_isolation(r.signature.oracle) {
        // Running it here could abort or hang this process: record the reduced failure.
        let mut report = crate::supervise::died_report(r.failure.clone());
        report.failures[0].config =
            r.case.configs.last().map(|c| c.name.clone()).unwrap_or_default();
        report
    } else {
        check::run_seed(&file.ops, &configs, &settings, check_determinism)
    };
    artifacts::write(out, &file, &configs, &settings, &report)?;
    std::fs::write(out.join("corpus_entry.ops"), corpus_entry(r))?;
    Ok(())
}

/// `tumbler reduce DIR [--budget-secs N] [--out DIR2]`.
pub fn main(dir: &Path, budget_secs: Option<u64>, out: Option<PathBuf>) -> anyhow::Result<()> {
    #[expect(clippy::disallowed_methods, reason = "wall time only feeds the printed figures")]
    let started = Instant::now();
    let saved = artifacts::read(dir)?;
    let r = reduce(&saved, budget_secs.map(Duration::from_secs))?;
    let out = out.unwrap_or_else(|| dir.join("reduced"));
    write_output(&out, &r).with_context(|| format!("writing {}", out.display()))?;
    let target = r.case.configs.last().expect("a case has a config");
    let knobs = config::diff(&baseline(), target);
    println!("signature: {}", r.signature);
    println!("failure: {}", r.failure.message.lines().next().unwrap_or(""));
    println!(
        "ops: {} -> {}; config {} knobs: {} -> {} ({}); error_rate {} -> {}",
        r.original_ops,
        r.case.ops.len(),
        r.original_config.name,
        config::diff(&baseline(), &r.original_config).len(),
        knobs.len(),
        if knobs.is_empty() { "defaults".to_string() } else { knobs.join(", ") },
        saved.settings.error_rate,
        r.case.error_rate,
    );
    println!(
        "{} candidates run in {:.1}s{}",
        r.tests,
        started.elapsed().as_secs_f64(),
        if r.stopped_by_budget {
            " (stopped by the budget: the result depends on speed)"
        } else {
            ""
        }
    );
    println!("reduced: {}", out.display());
    println!("corpus entry: {}", out.join("corpus_entry.ops").display());
    println!("replay: tumbler replay {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Vec<Op> {
        ops::parse(&format!("{}\n{body}", ops::format::MAGIC)).unwrap().ops
    }

    fn print(ops: &[Op]) -> String {
        ops.iter().map(ops::print_op).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn removing_a_creation_removes_its_uses() {
        let ops = parse(
            "snapshot.new s1\niter.new i1 s1 - -\nput \"a\" \"1\"\niter.first i1\n\
             snapshot.get s1 \"a\"\niter.close i1\nbatch.new b2\nbatch.put b2 \"a\" \"2\"\n\
             batch.commit b2\nflush",
        );
        // The snapshot takes the iterator read at it, and both objects' uses, along.
        assert_eq!(
            print(&remove_ops(&ops, 0..1)),
            "put \"a\" \"1\"\nbatch.new b2\nbatch.put b2 \"a\" \"2\"\nbatch.commit b2\nflush"
        );
        assert_eq!(
            print(&remove_ops(&ops, 6..7)),
            "snapshot.new s1\niter.new i1 s1 - -\nput \"a\" \"1\"\niter.first i1\n\
             snapshot.get s1 \"a\"\niter.close i1\nflush"
        );
        // Removing a use alone keeps everything else.
        assert_eq!(remove_ops(&ops, 3..4).len(), ops.len() - 1);
        for start in 0..ops.len() {
            for end in start..=ops.len() {
                let kept = remove_ops(&ops, start..end);
                assert!(ops::validate(&kept).is_ok(), "{start}..{end}:\n{}", print(&kept));
            }
        }
    }

    #[test]
    fn reads_through_a_batch_go_with_the_batch_and_with_their_snapshot() {
        let ops = parse(
            "snapshot.new s1\nbatch.new b2\nbatch.put b2 \"a\" \"2\"\n\
             batch.get b2 s1 \"a\"\nbatch.scan b2 - \"a\" - front\nbatch.commit b2\nflush",
        );
        assert_eq!(print(&remove_ops(&ops, 1..2)), "snapshot.new s1\nflush");
        assert_eq!(
            print(&remove_ops(&ops, 0..1)),
            "batch.new b2\nbatch.put b2 \"a\" \"2\"\nbatch.scan b2 - \"a\" - front\n\
             batch.commit b2\nflush"
        );
        let renamed = short_keys(&ops).expect("keys to rename");
        assert!(print(&renamed).contains("batch.get b2 s1 \"k0\""), "{}", print(&renamed));
    }

    #[test]
    fn crash_alternatives_simplify_the_schedule() {
        let op = parse("crash torn within 8").remove(0);
        let alts: Vec<String> = crash_alternatives(&op)
            .into_iter()
            .map(|a| a.map_or("<removed>".to_string(), |o| ops::print_op(&o)))
            .collect();
        assert_eq!(
            alts,
            [
                "<removed>",
                "crash torn",
                "crash torn within 1",
                "crash torn within 4",
                "crash drop within 8"
            ]
        );
        assert_eq!(crash_alternatives(&parse("crash drop").remove(0)).len(), 1);
        assert!(crash_alternatives(&parse("flush").remove(0)).is_empty());
    }

    #[test]
    fn short_keys_keep_order_and_equality() {
        let ops = parse(
            "put \"pp@long-suffix-2\" \"1\"\ndelete_range \"pp@\" \"pp@long-suffix-9\"\n\
             iter.new i1 - \"a\" -\nget \"pp@long-suffix-2\"",
        );
        assert_eq!(
            print(&short_keys(&ops).unwrap()),
            "put \"k2\" \"1\"\ndelete_range \"k1\" \"k3\"\niter.new i1 - \"k0\" -\nget \"k2\""
        );
        assert!(short_keys(&parse("put \"k0\" \"1\"")).is_none());
    }

    #[test]
    fn writes_become_puts_of_their_key() {
        let plain = |line: &str| -> Vec<String> {
            plainer_write(&parse(line).remove(0))
                .into_iter()
                .flatten()
                .map(|o| ops::print_op(&o))
                .collect()
        };
        assert_eq!(plain("delete_range \"a\" \"b\" sync"), ["put \"a\" \"v\" sync"]);
        assert_eq!(plain("merge \"k\" \"xyz\""), ["put \"k\" \"v\""]);
        assert_eq!(plain("batch.single_delete b1 \"k\""), ["batch.put b1 \"k\" \"v\""]);
        assert!(plain("put \"k\" \"v\"").is_empty());
        assert!(plain("get \"k\"").is_empty());
    }

    #[test]
    fn values_shrink_and_syncs_drop() {
        let op = parse("put \"k\" gen(100,3) sync").remove(0);
        let alts: Vec<String> =
            value_alternatives(&op).into_iter().flatten().map(|o| ops::print_op(&o)).collect();
        assert_eq!(alts, ["put \"k\" \"v\" sync", "put \"k\" gen(50,3) sync"]);
        assert_eq!(ops::print_op(&without_sync(&op).unwrap()), "put \"k\" gen(100,3)");
        assert!(without_sync(&parse("flush_wal").remove(0)).is_none());
        assert!(value_alternatives(&parse("put \"k\" \"v\"").remove(0)).is_empty());
    }

    #[test]
    fn knobs_reset_to_defaults_but_the_scheduler_stays_manual() {
        let c = EngineConfig {
            name: "c".into(),
            block_size: Some(1),
            scheduler: Some(SchedulerKind::Manual),
            ..EngineConfig::default()
        };
        assert_eq!(c.knobs_set(), ["block_size", "scheduler"]);
        let candidates = c.shrink_candidates();
        assert_eq!(candidates.len(), 1, "{candidates:?}");
        assert_eq!(candidates[0].0, "block_size");
        assert_eq!(candidates[0].1.block_size, None);
        let t = EngineConfig { scheduler: Some(SchedulerKind::Threads(2)), ..c };
        let candidates = t.shrink_candidates();
        assert_eq!(candidates[1].0, "scheduler");
        assert_eq!(candidates[1].1.scheduler, Some(SchedulerKind::Manual));
    }
}
