//! The `tumbler` command line: flags and dispatch only. `run` and `replay` are `plan.rs`,
//! `nightly` is `nightly.rs`, `merge-reports` is `report.rs`, `reduce` is `reduce.rs`, and the
//! hidden `__child` is `supervise.rs`. Exit codes and input bounds: `input.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::input::{
    is_input_error, parse_error_rate, parse_ops, parse_random_configs, EXIT_BAD_INPUT,
    EXIT_FINDING, EXIT_INTERNAL, EXIT_PASS,
};
use crate::plan::{self, Output, ReplaySpec, SeedSpec};
use crate::sim::PlantedFault;
use crate::supervise::{ChildArgs, ChildWork};

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
    Nightly(crate::nightly::NightlyArgs),
    /// Combine the summary.json files of several nightly shards into one report.
    MergeReports(MergeReportsArgs),
    /// Shrink a saved failure directory while it fails the same way; writes DIR/reduced.
    Reduce(ReduceArgs),
    /// Crossversion images: save a database with its model, or continue a saved one under
    /// this build with every oracle on (see `image.rs`).
    #[command(subcommand)]
    Image(ImageCommand),
    /// Differential mode (cargo feature `rocksdb`): the same ops, crashes made clean restarts,
    /// on RocksDB too; every result compared with Cobble's and the model's.
    #[cfg(feature = "rocksdb")]
    Differential(crate::differential::DifferentialArgs),
    /// Internal: run one seed or one saved case in a child process and write a record
    /// (used by `nightly` and `reduce`; see `supervise.rs`).
    #[command(hide = true, name = "__child")]
    Child(ChildArgs),
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

impl CommonArgs {
    fn output(&self) -> Output {
        Output { out: self.out.clone(), json: self.json, check_determinism: self.check_determinism }
    }
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
    #[arg(long, default_value = plan::STANDARD_CONFIGS)]
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

impl RunArgs {
    /// How to run the seed, as a plain struct.
    pub fn spec(&self) -> SeedSpec {
        SeedSpec {
            ops: self.ops,
            configs: self.configs.clone(),
            random_configs: self.random_configs,
            weights: self.weights.clone(),
            swarm: self.swarm,
            error_rate: self.error_rate,
            plant: self.common.plant,
            hang_timeout: self.common.hang_timeout,
        }
    }
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

#[derive(Debug, Args)]
pub struct MergeReportsArgs {
    /// Nightly output directories (each holding summary.json).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged summary.json and junit.xml go.
    #[arg(long, default_value = "nightly-merged")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Run SEED's ops under one config, close, and save the database, its model and a second
    /// stretch of ops in a new directory.
    Save {
        /// The seed whose ops write the image.
        #[arg(long)]
        seed: u64,
        /// Ops before the image is taken (1 to 100000).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        ops: u64,
        /// Ops of the second stretch, run when the image is continued (1 to 100000).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        ops_after: u64,
        /// The engine config (a JSON file, as in configs/).
        #[arg(long)]
        config: PathBuf,
        /// The new image directory (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Open a saved image under this build, check it against its model, run its second
    /// stretch of ops. Exit 1 when anything fails.
    Continue {
        /// Image directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
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

/// Runs the CLI; returns the process exit code (see `input.rs`).
pub fn main_with(cli: Cli) -> i32 {
    crate::watchdog::install_panic_hook();
    let timeout = |secs: u64| crate::watchdog::set_hang_timeout(Duration::from_secs(secs));
    let result = match cli.command {
        Command::Run(args) if !args.in_process => {
            return crate::supervise::run_supervised(
                args.seed,
                &args.spec(),
                args.common.out.as_deref(),
            )
        }
        Command::Run(args) => {
            timeout(args.common.hang_timeout);
            let seed = args.seed.unwrap_or_else(plan::random_seed);
            println!("seed: {seed}");
            plan::plan_seed(&args.spec(), seed)
                .map_err(crate::input::input_error)
                .and_then(|p| plan::execute(&p, &args.common.output()))
        }
        Command::Replay(args) => {
            timeout(args.common.hang_timeout);
            let spec = ReplaySpec {
                path: args.path.clone(),
                config: args.config.clone(),
                error_rate: args.error_rate,
                plant: args.common.plant,
            };
            plan::plan_replay(&spec).map_err(crate::input::input_error).and_then(|p| {
                println!("seed: {}", p.settings.seed);
                plan::execute(&p, &args.common.output())
            })
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
        Command::Image(ImageCommand::Save { seed, ops, ops_after, config, out }) => {
            crate::image::save_main(seed, ops, ops_after, &config, &out).map(|()| true)
        }
        Command::Image(ImageCommand::Continue { dirs }) => crate::image::continue_main(&dirs),
        #[cfg(feature = "rocksdb")]
        Command::Differential(args) => crate::differential::main(&args),
        Command::Child(args) => crate::supervise::child_main(&args.record, || match &args.work {
            ChildWork::Seed(seed) => crate::supervise::child_seed(seed),
            ChildWork::Case { dir, hang_timeout } => {
                timeout(*hang_timeout);
                crate::reduce::child_case(dir)
            }
        }),
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
