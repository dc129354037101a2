//! What `tumbler run` and `tumbler replay` run: a [`Plan`] (ops, configs, settings and the
//! command that replays it), built from a seed ([`plan_seed`], also nightly's and the child
//! processes') or from a saved failure directory or ops file ([`plan_replay`]), and running
//! one ([`execute`]): the report, the artifacts and the JSON summary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::check::{self, SeedReport};
use crate::config::{self, EngineConfig};
use crate::input::{self, OPS_MAX};
use crate::ops::{self, OpsFile, Weights};
use crate::runner::{RunSettings, RunStats};
use crate::sim::PlantedFault;

/// Everything a run needs, however it was described.
#[derive(Debug, Clone)]
pub struct Plan {
    pub file: OpsFile,
    pub configs: Vec<EngineConfig>,
    pub settings: RunSettings,
    /// The command that replays this plan, for the one-line repro.
    pub replay_command: String,
}

/// The configs run when nothing else is named.
pub const STANDARD_CONFIGS: &str = "configs/standard";

/// How to run a seed: what `tumbler run`'s flags say, without the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedSpec {
    /// Number of ops to generate (at most [`OPS_MAX`]).
    pub ops: usize,
    /// Directory of named configs (JSON).
    pub configs: PathBuf,
    /// Random configs drawn from the seed, run besides those of `configs`.
    pub random_configs: usize,
    /// Op weights (JSON); the built-in defaults when absent.
    pub weights: Option<PathBuf>,
    /// The seed disables some op kinds and skews the rest.
    pub swarm: bool,
    /// Chance that a filesystem call fails with an injected error, in [0, 1].
    pub error_rate: f64,
    pub plant: Option<PlantedFault>,
    /// Seconds without progress that make a `hang` finding.
    pub hang_timeout: u64,
}

/// How to replay: what `tumbler replay`'s flags say.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySpec {
    /// A failure directory or an ops file.
    pub path: PathBuf,
    /// Run only this config (a JSON file) instead of the saved or standard ones.
    pub config: Option<PathBuf>,
    /// Overrides the saved error rate (a bare ops file's is 0).
    pub error_rate: Option<f64>,
    /// Overrides the saved planted fault.
    pub plant: Option<PlantedFault>,
}

/// What [`execute`] does besides running: where artifacts go, the JSON line, the
/// determinism check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Keep the artifacts here (a failure directory, passing or failing).
    pub out: Option<PathBuf>,
    /// Print one JSON summary line last.
    pub json: bool,
    /// Run each config twice and compare histories and final filesystem images.
    pub check_determinism: bool,
}

/// Draws a seed for a run given none.
pub fn random_seed() -> u64 {
    #[expect(
        clippy::disallowed_types,
        reason = "the one unseeded draw: it picks the seed, which is printed before anything runs"
    )]
    use rand::rngs::OsRng;
    use rand::RngCore;
    OsRng.next_u64()
}

/// The plan `tumbler run --seed <seed>` with `spec` runs (quietly).
pub fn plan_seed(spec: &SeedSpec, seed: u64) -> anyhow::Result<Plan> {
    input::check_error_rate(spec.error_rate).map_err(|e| anyhow::anyhow!("--error-rate: {e}"))?;
    if spec.ops > OPS_MAX {
        bail!("--ops {} is more than the maximum {OPS_MAX}", spec.ops);
    }
    let mut weights = match &spec.weights {
        Some(p) => Weights::load(p)?,
        None => Weights::default(),
    };
    if spec.swarm {
        weights = weights.swarm(seed);
    }
    let file = ops::generate_file(seed, spec.ops, &weights);
    let mut configs = config::load_dir(&spec.configs)
        .with_context(|| format!("loading configs from {}", spec.configs.display()))?;
    crate::config_check::check_all(&configs, &spec.configs)?;
    for i in 0..spec.random_configs {
        let mut c = EngineConfig::random(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        c.name = format!("random_{i}");
        configs.push(c);
    }
    if configs.is_empty() {
        bail!("no configs to run");
    }
    let mut replay = format!("tumbler run --seed {seed} --ops {}", spec.ops);
    if spec.configs != Path::new(STANDARD_CONFIGS) {
        let _ = write!(replay, " --configs {}", spec.configs.display());
    }
    if spec.random_configs > 0 {
        let _ = write!(replay, " --random-configs {}", spec.random_configs);
    }
    if let Some(w) = &spec.weights {
        let _ = write!(replay, " --weights {}", w.display());
    }
    if spec.swarm {
        replay.push_str(" --swarm");
    }
    let _ = write!(replay, " --error-rate {}", spec.error_rate);
    if let Some(p) = spec.plant {
        let _ = write!(replay, " --plant {p}");
    }
    if spec.hang_timeout != crate::watchdog::HANG_TIMEOUT_DEFAULT_SECS {
        let _ = write!(replay, " --hang-timeout {}", spec.hang_timeout);
    }
    Ok(Plan {
        file,
        configs,
        settings: RunSettings { seed, error_rate: spec.error_rate, planted: spec.plant },
        replay_command: replay,
    })
}

/// The plan `tumbler replay` runs: a failure directory as saved (`artifacts::read`), or a
/// bare ops file under the standard configs with no injected errors, either changed by the
/// flags of `spec`.
pub fn plan_replay(spec: &ReplaySpec) -> anyhow::Result<Plan> {
    let (file, mut configs, mut settings) = if spec.path.is_dir() {
        let saved = crate::artifacts::read(&spec.path)?;
        (saved.file, saved.configs, saved.settings)
    } else {
        let file = input::load_ops_file(&spec.path)?;
        let settings = RunSettings { seed: file.seed.unwrap_or(0), error_rate: 0.0, planted: None };
        (file, Vec::new(), settings)
    };
    if let Some(r) = spec.error_rate {
        settings.error_rate = r;
    }
    if spec.plant.is_some() {
        settings.planted = spec.plant;
    }
    if let Some(c) = &spec.config {
        let text = input::read_input(c, "config")?;
        let mut cfg = EngineConfig::from_json(&text)
            .with_context(|| format!("parsing config {}", c.display()))?;
        if cfg.name.is_empty() {
            cfg.name = c.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        }
        crate::config_check::check(&cfg).map_err(|e| anyhow::anyhow!("{}: {e}", c.display()))?;
        configs = vec![cfg];
    }
    if configs.is_empty() {
        let standard = Path::new(STANDARD_CONFIGS);
        configs =
            config::load_dir(standard).context("no saved configs: loading configs/standard")?;
        crate::config_check::check_all(&configs, standard)?;
    }
    Ok(Plan {
        file,
        configs,
        settings,
        replay_command: format!("tumbler replay {}", spec.path.display()),
    })
}

/// Runs a plan, writes artifacts, prints the report. Returns true when it passed.
pub fn execute(plan: &Plan, output: &Output) -> anyhow::Result<bool> {
    #[expect(
        clippy::disallowed_methods,
        reason = "wall time only feeds the summary's speed figures"
    )]
    let started = std::time::Instant::now();
    let report =
        check::run_seed(&plan.file.ops, &plan.configs, &plan.settings, output.check_determinism);
    let elapsed = started.elapsed();
    let passed = report.failures.is_empty();
    let mut replay = plan.replay_command.clone();
    if let Some(out) = &output.out {
        crate::artifacts::write(out, &plan.file, &plan.configs, &plan.settings, &report)
            .with_context(|| format!("writing artifacts to {}", out.display()))?;
        if !passed {
            replay = format!("tumbler replay {}", out.display());
        }
    }
    print_report(plan, &report);
    if !passed {
        println!("replay: {replay}");
        let threaded =
            |name: &str| plan.configs.iter().any(|c| c.name == name && !c.is_deterministic());
        if report.failures.iter().any(|f| threaded(&f.config)) {
            if let Some(note) = crate::sched::threaded_failure_note() {
                println!("{note}");
            }
        }
    }
    if output.json {
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
