//! The `tumbler` command line: `run` (one seed across many configs) and `replay` (a saved
//! failure directory or ops file); `nightly` and `merge-reports` live in `nightly.rs` and
//! `report.rs`.
//!
//! Exit codes, each with one meaning: 0 pass, 1 a finding (a failed check, a panic, a hang, an
//! abort), 2 bad usage or bad input (flags, configs, ops files, reports: the message names the
//! file and the field or line), 3 an error of Tumbler itself (writing artifacts, a bug).
//! Input is checked before anything runs: numeric flags against the bounds below, configs by
//! `config_check.rs`, ops files by `ops::validate`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::check::{self, SeedReport};
use crate::config::{self, EngineConfig};
use crate::ops::{self, OpsFile, Weights, GENERATOR_VERSION};
use crate::runner::{RunSettings, RunStats};
use crate::sim::PlantedFault;

/// Exit code: every check passed.
pub const EXIT_PASS: i32 = 0;
/// Exit code: a finding.
pub const EXIT_FINDING: i32 = 1;
/// Exit code: bad usage or bad input.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code: an error of Tumbler itself.
pub const EXIT_INTERNAL: i32 = 3;

/// The most ops one run may generate or an ops file may hold (every config keeps a history
/// line per op, so memory grows with ops times configs).
pub const OPS_MAX: usize = 1_000_000;
/// The most random configs one run may add.
pub const RANDOM_CONFIGS_MAX: usize = 1_000;
/// The most concurrent seeds of `nightly --jobs`.
pub const JOBS_MAX: usize = 256;
/// The largest ops file, config or report Tumbler reads (bytes).
pub const INPUT_FILE_MAX_BYTES: u64 = 256 << 20;

/// An error in what the user gave (exit code 2), as opposed to an error of Tumbler (3).
#[derive(Debug)]
pub struct InputError(pub anyhow::Error);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for InputError {}

/// Marks `e` as bad input (exit code 2).
pub fn input_error(e: anyhow::Error) -> anyhow::Error {
    if is_input_error(&e) {
        e
    } else {
        anyhow::Error::new(InputError(e))
    }
}

/// True when `e` is (or wraps) an [`InputError`].
pub fn is_input_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<InputError>())
}

/// Parses an `--error-rate`: a finite probability in [0, 1].
pub fn parse_error_rate(s: &str) -> Result<f64, String> {
    let p: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    check_error_rate(p)
}

/// Checks an error rate from a flag or a settings file: finite, in [0, 1].
pub fn check_error_rate(p: f64) -> Result<f64, String> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("error rate {p} is not a probability in [0, 1]"))
    }
}

/// Reads a text input file, refusing what is not a readable UTF-8 file of a sane size.
pub fn read_input(path: &Path, what: &str) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("reading {what} {}", path.display()))
        .map_err(input_error)?;
    if meta.is_dir() {
        return Err(input_error(anyhow::anyhow!("{what} {} is a directory", path.display())));
    }
    if meta.len() > INPUT_FILE_MAX_BYTES {
        return Err(input_error(anyhow::anyhow!(
            "{what} {} is {} bytes, more than the maximum {INPUT_FILE_MAX_BYTES}",
            path.display(),
            meta.len()
        )));
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading {what} {}", path.display()))
        .map_err(input_error)?;
    String::from_utf8(bytes).map_err(|e| {
        input_error(anyhow::anyhow!(
            "{what} {} is not UTF-8 text (byte {} is invalid): is it a binary file?",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads, parses and validates an ops file: a malformed line or an op breaking a rule the
/// generator obeys (`ops::validate`) is bad input naming the file, the line and the rule.
pub fn load_ops_file(path: &Path) -> anyhow::Result<OpsFile> {
    let text = read_input(path, "ops file")?;
    let file =
        ops::parse(&text).map_err(|e| input_error(anyhow::anyhow!("{}: {e}", path.display())))?;
    if file.ops.len() > OPS_MAX {
        return Err(input_error(anyhow::anyhow!(
            "{}: {} ops, more than the maximum {OPS_MAX}",
            path.display(),
            file.ops.len()
        )));
    }
    if let Err(e) = ops::validate(&file.ops) {
        let line = ops::format::op_lines(&text).get(e.index).copied().unwrap_or(0);
        return Err(input_error(anyhow::anyhow!(
            "{}: ops file line {line}: invalid op sequence: {}",
            path.display(),
            e.message
        )));
    }
    Ok(file)
}

/// Deterministic simulation and metamorphic testing for the Cobble storage engine.
#[derive(Debug, Parser)]
#[command(name = "tumbler", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate ops from a seed and run them under every config, checking all oracles.
    Run(RunArgs),
    /// Replay a saved failure directory (from `run --out`) or an ops file.
    Replay(ReplayArgs),
    /// Run derived seeds until a duration is up; save, reduce and triage failures; write
    /// summary.json and junit.xml (see `nightly.rs`).
    Nightly(NightlyArgs),
    /// Combine the summary.json files of several nightly shards into one report.
    MergeReports(MergeReportsArgs),
    /// Shrink a saved failure directory while it fails the same way; writes DIR/reduced.
    Reduce(ReduceArgs),
    /// Internal: run one seed or one saved case in a child process and write a record
    /// (used by `nightly` and `reduce`; see `supervise.rs`).
    #[command(hide = true, name = "__child")]
    Child(crate::supervise::ChildArgs),
}

/// Options shared by `run` and `replay`.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Keep artifacts here: ops, configs, histories; on failure also the diff and repro.sh.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON summary line last.
    #[arg(long)]
    pub json: bool,
    /// Run each config twice and compare histories and final filesystem images.
    #[arg(long)]
    pub check_determinism: bool,
    /// Plant a known bug (skip-sync-dir, skip-wal-sync, panic-in-append, panic-in-merge,
    /// hang-in-merge) to check that the oracles catch it.
    #[arg(long, hide = true)]
    pub plant: Option<PlantedFault>,
    /// An op, a drain or a close making no progress for this many seconds is a `hang`
    /// finding (1 to 86400). Wall time decides only that a run hung.
    #[arg(long, default_value_t = crate::watchdog::HANG_TIMEOUT_DEFAULT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=crate::watchdog::HANG_TIMEOUT_MAX_SECS))]
    pub hang_timeout: u64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The seed (a random one is drawn and printed when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of ops to generate (at most 1000000).
    #[arg(long, default_value_t = 1000, value_parser = parse_ops)]
    pub ops: usize,
    /// Directory of named configs (JSON).
    #[arg(long, default_value = "configs/standard")]
    pub configs: PathBuf,
    /// Also run this many random configs drawn from the seed (at most 1000).
    #[arg(long, default_value_t = 0, value_parser = parse_random_configs)]
    pub random_configs: usize,
    /// Op weights (JSON); the built-in defaults when absent.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Swarm mode: the seed disables some op kinds and skews the rest.
    #[arg(long)]
    pub swarm: bool,
    /// Chance that a filesystem call fails with an injected error, in [0, 1].
    #[arg(long, default_value_t = 0.0005, value_parser = parse_error_rate, allow_negative_numbers = true)]
    pub error_rate: f64,
    /// Run here, not in a supervised child process (the child's own flag; see supervise.rs).
    #[arg(long, hide = true)]
    pub in_process: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A failure directory (holding ops.txt) or an ops file.
    pub path: PathBuf,
    /// Run only this config (a JSON file) instead of the saved or standard ones.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The injected error rate, when replaying a bare ops file, in [0, 1].
    #[arg(long, value_parser = parse_error_rate, allow_negative_numbers = true)]
    pub error_rate: Option<f64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args, Clone)]
pub struct NightlyArgs {
    /// Keep running seeds until this much time is up: `30s`, `10m`, `2h`, `1h30m`.
    #[arg(long, value_parser = crate::nightly::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Stop after this many seeds (in this shard), whatever the duration (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_seeds: Option<u64>,
    /// Seeds run at once, each in its own child process (1 to 256).
    #[arg(long, default_value_t = 1, value_parser = parse_jobs)]
    pub jobs: usize,
    /// Run shard K of N (`K/N`, K from 0): seed i is `derive(base, i*N + K)`.
    #[arg(long, default_value = "0/1")]
    pub shard: crate::nightly::Shard,
    /// The base seed; by default a hash of `git rev-parse HEAD` (0 outside a git checkout).
    #[arg(long)]
    pub base_seed: Option<u64>,
    /// Number of ops per seed (at most 1000000).
    #[arg(long, default_value_t = 1000, value_parser = parse_ops)]
    pub ops: usize,
    /// Directory of named configs (JSON).
    #[arg(long, default_value = "configs/standard")]
    pub configs: PathBuf,
    /// Also run this many random configs drawn from each seed (at most 1000).
    #[arg(long, default_value_t = 0, value_parser = parse_random_configs)]
    pub random_configs: usize,
    /// Swarm mode: each seed disables some op kinds and skews the rest.
    #[arg(long)]
    pub swarm: bool,
    /// Chance that a filesystem call fails with an injected error, in [0, 1].
    #[arg(long, default_value_t = 0.0005, value_parser = parse_error_rate, allow_negative_numbers = true)]
    pub error_rate: f64,
    /// Most replays the reducer may spend on one failure (at most 100000).
    #[arg(long, default_value_t = 200, value_parser = parse_reduce_budget)]
    pub reduce_budget: usize,
    /// Where summary.json, junit.xml and failures/seed-<seed>/ go.
    #[arg(long, default_value = "nightly-out")]
    pub out: PathBuf,
    /// Plant a known bug (see `run --plant`) to check that nightly catches it.
    #[arg(long, hide = true)]
    pub plant: Option<PlantedFault>,
    /// An op making no progress for this many seconds is a `hang` finding (1 to 86400).
    #[arg(long, default_value_t = crate::watchdog::HANG_TIMEOUT_DEFAULT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=crate::watchdog::HANG_TIMEOUT_MAX_SECS))]
    pub hang_timeout: u64,
}

#[derive(Debug, Args)]
pub struct MergeReportsArgs {
    /// Nightly output directories (each holding summary.json).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged summary.json and junit.xml go.
    #[arg(long, default_value = "nightly-merged")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReduceArgs {
    /// A failure directory (from `run --out` or `replay --out`).
    pub dir: PathBuf,
    /// Stop after about this many seconds, keeping the smallest failing case so far
    /// (1 to 604800).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub budget_secs: Option<u64>,
    /// Where to write the reduced failure directory (default DIR/reduced).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A candidate making no progress for this many seconds is a `hang` (1 to 86400).
    #[arg(long, default_value_t = crate::watchdog::HANG_TIMEOUT_DEFAULT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=crate::watchdog::HANG_TIMEOUT_MAX_SECS))]
    pub hang_timeout: u64,
}

fn parse_bounded(s: &str, what: &str, min: usize, max: usize) -> Result<usize, String> {
    let n: usize = s.trim().parse().map_err(|_| format!("{s:?} is not a {what}"))?;
    if n < min || n > max {
        return Err(format!("{n} is out of range: {min} to {max}"));
    }
    Ok(n)
}

fn parse_ops(s: &str) -> Result<usize, String> {
    parse_bounded(s, "number of ops", 0, OPS_MAX)
}

fn parse_random_configs(s: &str) -> Result<usize, String> {
    parse_bounded(s, "number of configs", 0, RANDOM_CONFIGS_MAX)
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    parse_bounded(s, "number of jobs", 1, JOBS_MAX)
}

fn parse_reduce_budget(s: &str) -> Result<usize, String> {
    parse_bounded(s, "number of replays", 0, 100_000)
}

/// Everything a run needs, however it was described.
#[derive(Debug, Clone)]
pub struct Plan {
    pub file: OpsFile,
    pub configs: Vec<EngineConfig>,
    pub settings: RunSettings,
    /// The command that replays this plan, for the one-line repro.
    pub replay_command: String,
}

/// Runs the CLI; returns the process exit code (see the module docs).
pub fn main_with(cli: Cli) -> i32 {
    crate::watchdog::install_panic_hook();
    let timeout = |secs: u64| crate::watchdog::set_hang_timeout(Duration::from_secs(secs));
    let result = match cli.command {
        Command::Run(args) if !args.in_process => return crate::supervise::run_supervised(&args),
        Command::Run(args) => {
            timeout(args.common.hang_timeout);
            plan_run(&args).map_err(input_error).and_then(|p| execute(&p, &args.common))
        }
        Command::Replay(args) => {
            timeout(args.common.hang_timeout);
            plan_replay(&args).map_err(input_error).and_then(|p| execute(&p, &args.common))
        }
        Command::Nightly(args) => {
            timeout(args.hang_timeout);
            crate::nightly::run(&args)
        }
        Command::MergeReports(args) => crate::report::merge_dirs(&args.dirs, &args.out),
        Command::Reduce(args) => {
            timeout(args.hang_timeout);
            crate::reduce::main(&args.dir, args.budget_secs, args.out).map(|()| true)
        }
        Command::Child(args) => crate::supervise::child_main(&args),
    };
    match result {
        Ok(true) => EXIT_PASS,
        Ok(false) => EXIT_FINDING,
        Err(e) if is_input_error(&e) => {
            eprintln!("tumbler: error: {e:#}");
            EXIT_BAD_INPUT
        }
        Err(e) => {
            eprintln!("tumbler: internal error: {e:#}");
            EXIT_INTERNAL
        }
    }
}

/// Draws a seed for a run given none.
pub fn random_seed() -> u64 {
    use rand::RngCore;
    // The one unseeded draw: it picks the seed, which is printed before anything runs.
    rand::rngs::OsRng.next_u64()
}

fn plan_run(args: &RunArgs) -> anyhow::Result<Plan> {
    let seed = args.seed.unwrap_or_else(random_seed);
    println!("seed: {seed}");
    plan_seed(args, seed)
}

/// The plan `tumbler run --seed <seed>` with `args` would run (quietly; `nightly` uses it).
pub fn plan_seed(args: &RunArgs, seed: u64) -> anyhow::Result<Plan> {
    check_error_rate(args.error_rate).map_err(|e| anyhow::anyhow!("--error-rate: {e}"))?;
    if args.ops > OPS_MAX {
        bail!("--ops {} is more than the maximum {OPS_MAX}", args.ops);
    }
    let mut weights = match &args.weights {
        Some(p) => Weights::load(p)?,
        None => Weights::default(),
    };
    if args.swarm {
        weights = weights.swarm(seed);
    }
    let file = ops::generate_file(seed, args.ops, &weights);
    let mut configs = config::load_dir(&args.configs)
        .with_context(|| format!("loading configs from {}", args.configs.display()))?;
    crate::config_check::check_all(&configs, &args.configs)?;
    for i in 0..args.random_configs {
        let mut c = EngineConfig::random(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        c.name = format!("random_{i}");
        configs.push(c);
    }
    if configs.is_empty() {
        bail!("no configs to run");
    }
    let mut replay = format!("tumbler run --seed {seed} --ops {}", args.ops);
    if args.configs != Path::new("configs/standard") {
        let _ = write!(replay, " --configs {}", args.configs.display());
    }
    if args.random_configs > 0 {
        let _ = write!(replay, " --random-configs {}", args.random_configs);
    }
    if let Some(w) = &args.weights {
        let _ = write!(replay, " --weights {}", w.display());
    }
    if args.swarm {
        replay.push_str(" --swarm");
    }
    let _ = write!(replay, " --error-rate {}", args.error_rate);
    if let Some(p) = args.common.plant {
        let _ = write!(replay, " --plant {p}");
    }
    if args.common.hang_timeout != crate::watchdog::HANG_TIMEOUT_DEFAULT_SECS {
        let _ = write!(replay, " --hang-timeout {}", args.common.hang_timeout);
    }
    Ok(Plan {
        file,
        configs,
        settings: RunSettings { seed, error_rate: args.error_rate, planted: args.common.plant },
        replay_command: replay,
    })
}

fn plan_replay(args: &ReplayArgs) -> anyhow::Result<Plan> {
    let (ops_path, dir) = if args.path.is_dir() {
        (args.path.join("ops.txt"), Some(args.path.clone()))
    } else {
        (args.path.clone(), None)
    };
    let file = load_ops_file(&ops_path)?;
    let mut error_rate = 0.0;
    let mut planted = args.common.plant;
    let mut configs = Vec::new();
    if let Some(dir) = &dir {
        let settings = dir.join("settings.json");
        if settings.exists() {
            let s: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&settings)?)
                    .with_context(|| format!("parsing {}", settings.display()))?;
            error_rate = s["error_rate"].as_f64().unwrap_or(0.0);
            check_error_rate(error_rate)
                .map_err(|e| anyhow::anyhow!("{}: error_rate: {e}", settings.display()))?;
            if let Some(p) = s["planted"].as_str() {
                let p = p
                    .parse()
                    .map_err(|e| anyhow::anyhow!("{}: planted: {e}", settings.display()))?;
                planted = planted.or(Some(p));
            }
        }
        let cdir = dir.join("configs");
        if cdir.is_dir() {
            configs = config::load_dir(&cdir)?;
            crate::config_check::check_all(&configs, &cdir)?;
        }
    }
    if let Some(r) = args.error_rate {
        error_rate = r;
    }
    if let Some(c) = &args.config {
        let text = read_input(c, "config")?;
        let mut cfg = EngineConfig::from_json(&text)
            .with_context(|| format!("parsing config {}", c.display()))?;
        if cfg.name.is_empty() {
            cfg.name = c.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        }
        crate::config_check::check(&cfg).map_err(|e| anyhow::anyhow!("{}: {e}", c.display()))?;
        configs = vec![cfg];
    }
    if configs.is_empty() {
        let standard = Path::new("configs/standard");
        configs =
            config::load_dir(standard).context("no saved configs: loading configs/standard")?;
        crate::config_check::check_all(&configs, standard)?;
    }
    let seed = file.seed.unwrap_or(0);
    println!("seed: {seed}");
    Ok(Plan {
        file,
        configs,
        settings: RunSettings { seed, error_rate, planted },
        replay_command: format!("tumbler replay {}", args.path.display()),
    })
}

/// Runs a plan, writes artifacts, prints the report. Returns true when it passed.
pub fn execute(plan: &Plan, common: &CommonArgs) -> anyhow::Result<bool> {
    #[allow(clippy::disallowed_methods)] // Wall time only feeds the summary's speed figures.
    let started = std::time::Instant::now();
    let report =
        check::run_seed(&plan.file.ops, &plan.configs, &plan.settings, common.check_determinism);
    let elapsed = started.elapsed();
    let passed = report.failures.is_empty();
    let mut replay = plan.replay_command.clone();
    if let Some(out) = &common.out {
        write_artifacts(out, plan, &report)
            .with_context(|| format!("writing artifacts to {}", out.display()))?;
        if !passed {
            replay = format!("tumbler replay {}", out.display());
        }
    }
    print_report(plan, &report);
    if !passed {
        println!("replay: {replay}");
    }
    if common.json {
        println!("{}", summary_json(plan, &report.stats, report.failures.len(), elapsed));
    }
    Ok(passed)
}

fn print_report(plan: &Plan, report: &SeedReport) {
    let s = &report.stats;
    println!(
        "{} ops x {} configs: {} ops executed, {} crashes ({} unsynced bytes and {} dir entries \
         dropped, {} torn writes), {} restarts, {} injected errors, {} writes lost and re-applied",
        plan.file.ops.len(),
        plan.configs.len(),
        s.ops_executed,
        s.crashes,
        s.unsynced_bytes_dropped,
        s.dir_entries_dropped,
        s.torn_writes,
        s.restarts,
        s.errors_injected,
        s.writes_lost
    );
    if report.failures.is_empty() {
        println!("PASS seed {}", plan.settings.seed);
        return;
    }
    println!("FAIL seed {}: {} failure(s)", plan.settings.seed, report.failures.len());
    for f in report.failures.iter().take(5) {
        let op = f
            .failure
            .op_index
            .and_then(|i| {
                plan.file.ops.get(i).map(|op| format!(" at op {i} `{}`", short(&ops::print_op(op))))
            })
            .unwrap_or_default();
        println!("- [{}] config {}{op}: {}", f.failure.oracle.name(), f.config, f.failure.message);
        if !f.detail.is_empty() {
            println!("{}", f.detail.trim_end());
        }
    }
}

/// An op's text cut to a readable length for the report (failure.txt keeps the index).
fn short(text: &str) -> String {
    const MAX: usize = 120;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

fn summary_json(
    plan: &Plan,
    s: &RunStats,
    failures: usize,
    elapsed: std::time::Duration,
) -> String {
    let ms = elapsed.as_millis() as u64;
    let ops_per_sec = if ms == 0 { 0.0 } else { s.ops_executed as f64 * 1000.0 / ms as f64 };
    serde_json::json!({
        "seed": plan.settings.seed,
        "ops": plan.file.ops.len(),
        "configs": plan.configs.len(),
        "ops_executed": s.ops_executed,
        "crashes": s.crashes,
        "restarts": s.restarts,
        "unsynced_bytes_dropped": s.unsynced_bytes_dropped,
        "dir_entries_dropped": s.dir_entries_dropped,
        "torn_writes": s.torn_writes,
        "errors_injected": s.errors_injected,
        "storage_full_errors": s.faults.storage_full_errors,
        "short_writes": s.faults.short_writes,
        "corrupt_reads": s.faults.corrupt_reads,
        "rotted_sectors": s.faults.rotted_sectors,
        "rot_reads": s.faults.rot_reads,
        "coverage": s.faults.coverage,
        "never_hit": s.faults.never_hit(),
        "writes_lost": s.writes_lost,
        "failures": failures,
        "elapsed_ms": ms,
        "ops_per_sec": (ops_per_sec * 10.0).round() / 10.0,
    })
    .to_string()
}

/// Writes ops.txt, settings.json, configs/, histories/ and, on failure, failure.txt and
/// repro.sh.
pub fn write_artifacts(out: &Path, plan: &Plan, report: &SeedReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(out.join("configs"))?;
    std::fs::create_dir_all(out.join("histories"))?;
    std::fs::write(out.join("ops.txt"), ops::print(&plan.file))?;
    let settings = serde_json::json!({
        "seed": plan.settings.seed,
        "error_rate": plan.settings.error_rate,
        "planted": plan.settings.planted.map(|p| p.name()),
        "generator": GENERATOR_VERSION,
    });
    std::fs::write(out.join("settings.json"), serde_json::to_string_pretty(&settings)? + "\n")?;
    for c in &plan.configs {
        std::fs::write(out.join("configs").join(format!("{}.json", c.name)), c.to_json() + "\n")?;
    }
    for r in &report.runs {
        std::fs::write(
            out.join("histories").join(format!("{}.txt", r.config.name)),
            r.history.join("\n") + "\n",
        )?;
    }
    if !report.failures.is_empty() {
        let mut text = String::new();
        for f in &report.failures {
            let _ = writeln!(
                text,
                "[{}] config {} op {:?}: {}\n{}",
                f.failure.oracle.name(),
                f.config,
                f.failure.op_index,
                f.failure.message,
                f.detail
            );
        }
        std::fs::write(out.join("failure.txt"), text)?;
        let repro = format!(
            "#!/usr/bin/env bash\n# Replays this failure (seed {}).\nset -euo pipefail\n\
             cd \"$(dirname \"$0\")\"\nexec cargo run --release --manifest-path \"${{TUMBLER_ROOT:-$(git rev-parse --show-toplevel)}}/Cargo.toml\" -p tumbler -- replay \"$PWD\" \"$@\"\n",
            plan.settings.seed
        );
        let path = out.join("repro.sh");
        std::fs::write(&path, repro)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}
