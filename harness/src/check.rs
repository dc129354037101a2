//! One seed across many configs: runs every config (in parallel, under the watchdog), then the
//! cross-config diff (among configs with the same merge operator) and, on request, the
//! determinism check.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use std::sync::Arc;

use crate::config::{self, EngineConfig};
use crate::merge_ops::MergeKind;
use crate::ops::Op;
use crate::runner::{self, ConfigRun, Failure, Oracle, RunSettings, RunStats};
use crate::watchdog::{self, Guarded};

/// A failure found in one run, with the config that showed it.
#[derive(Clone, Debug)]
pub struct SeedFailure {
    pub config: String,
    pub failure: Failure,
    /// For a cross-config divergence: the other config, the knobs that differ and a unified
    /// diff around the first divergent line.
    pub detail: String,
}

/// Everything one seed produced.
#[derive(Debug)]
pub struct SeedReport {
    pub runs: Vec<ConfigRun>,
    pub failures: Vec<SeedFailure>,
    pub stats: RunStats,
}

/// Runs `ops` under every config, then diffs the histories against the first config's.
///
/// Each config runs on its own thread under the watchdog (`watchdog.rs`): a panic is a
/// `Panic` finding of that config, a config that stops making progress is a `Hang` finding
/// (its thread abandoned), and the other configs run on.
pub fn run_seed(
    ops: &[Op],
    configs: &[EngineConfig],
    settings: &RunSettings,
    check_determinism: bool,
) -> SeedReport {
    let shared: Arc<Vec<Op>> = Arc::new(ops.to_vec());
    let jobs: Vec<_> = configs
        .iter()
        .map(|c| {
            let (ops, c, settings) = (shared.clone(), c.clone(), settings.clone());
            move || {
                let first = runner::run_config(&ops, &c, &settings);
                let second = check_determinism.then(|| runner::run_config(&ops, &c, &settings));
                (first, second)
            }
        })
        .collect();
    let runs: Vec<(ConfigRun, Option<ConfigRun>)> =
        watchdog::run_guarded(jobs, rayon::current_num_threads())
            .into_iter()
            .zip(configs)
            .map(|(g, c)| match g {
                Guarded::Done(pair) => pair,
                other => (abandoned_run(c, other), None),
            })
            .collect();
    let mut failures = Vec::new();
    let mut stats = RunStats::default();
    for (run, second) in &runs {
        stats.add(&run.stats);
        if let Some(f) = &run.failure {
            failures.push(SeedFailure {
                config: run.config.name.clone(),
                failure: f.clone(),
                detail: String::new(),
            });
        }
        if let Some(second) = second {
            if let Some(detail) = determinism_difference(run, second) {
                failures.push(SeedFailure {
                    config: run.config.name.clone(),
                    failure: Failure {
                        oracle: Oracle::Determinism,
                        op_index: None,
                        message: "the same config twice gave different results".to_string(),
                    },
                    detail,
                });
            }
        }
    }
    let runs: Vec<ConfigRun> = runs.into_iter().map(|(r, _)| r).collect();
    // Diff only runs that passed their own checks (a failed run stops early), and only runs
    // with the same merge operator (merged values are the operator's bytes): the first passing
    // run of each operator, in config order, is that group's base.
    let mut groups: BTreeMap<MergeKind, Vec<&ConfigRun>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.failure.is_none()) {
        groups.entry(r.config.merge_kind()).or_default().push(r);
    }
    for passing in groups.values() {
        if let Some((base, rest)) = passing.split_first() {
            for other in rest {
                if let Some(f) = diff_runs(base, other) {
                    failures.push(f);
                }
            }
        }
    }
    SeedReport { runs, failures, stats }
}

/// The run of a config the watchdog gave up on: a `Hang` finding at the op it was stuck in,
/// or a `Panic` finding when it panicked first (and its teardown then hung).
fn abandoned_run<T>(config: &EngineConfig, guarded: Guarded<T>) -> ConfigRun {
    let (oracle, op, message) = match guarded {
        Guarded::Hung { op, message } => (Oracle::Hang, op, message),
        Guarded::PanickedThenHung { op, panic, message } => {
            (Oracle::Panic, op, format!("{panic} (then {message})"))
        }
        Guarded::Done(_) => unreachable!("a finished job is not abandoned"),
    };
    ConfigRun {
        config: config.clone(),
        history: vec![format!("# FAILURE ({}): {message}", oracle.name())],
        failure: Some(Failure { oracle, op_index: op, message }),
        stats: RunStats::default(),
        image_hash: 0,
    }
}

/// Runs one config under the watchdog (as [`run_seed`] does): a hang is a `Hang` finding.
pub fn run_config_guarded(ops: &[Op], config: &EngineConfig, settings: &RunSettings) -> ConfigRun {
    let (ops, c, s) = (ops.to_vec(), config.clone(), settings.clone());
    let job = move || runner::run_config(&ops, &c, &s);
    match watchdog::run_guarded(vec![job], 1).pop().expect("one job") {
        Guarded::Done(run) => run,
        other => abandoned_run(config, other),
    }
}

fn determinism_difference(a: &ConfigRun, b: &ConfigRun) -> Option<String> {
    // Threaded configs replay exactly under the model scheduler (`sched.rs`).
    let deterministic = a.config.is_deterministic() || crate::sched::REPLAYABLE_THREADS;
    let (ha, hb): (Vec<&str>, Vec<&str>) = if deterministic {
        (
            a.history.iter().map(String::as_str).collect(),
            b.history.iter().map(String::as_str).collect(),
        )
    } else {
        (a.comparable_history().collect(), b.comparable_history().collect())
    };
    if ha != hb {
        return Some(unified_diff(&ha, &hb, "first run", "second run"));
    }
    if deterministic && a.image_hash != b.image_hash {
        return Some(format!(
            "final SimFs images differ: {:016x} vs {:016x}",
            a.image_hash, b.image_hash
        ));
    }
    None
}

/// Compares two passing runs' comparable histories.
pub fn diff_runs(base: &ConfigRun, other: &ConfigRun) -> Option<SeedFailure> {
    let a: Vec<&str> = base.comparable_history().collect();
    let b: Vec<&str> = other.comparable_history().collect();
    if a == b {
        return None;
    }
    let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let op_index = a.get(first).or(b.get(first)).and_then(|l| l.split(' ').next()?.parse().ok());
    let mut detail = String::new();
    let _ = writeln!(detail, "configs {} and {} diverge", base.config.name, other.config.name);
    let knobs = config::diff(&base.config, &other.config);
    let _ = writeln!(
        detail,
        "knobs that differ: {}",
        if knobs.is_empty() { "none".into() } else { knobs.join(", ") }
    );
    detail.push_str(&unified_diff(&a, &b, &base.config.name, &other.config.name));
    Some(SeedFailure {
        config: other.config.name.clone(),
        failure: Failure {
            oracle: Oracle::Diff,
            op_index,
            message: format!("history differs from {} at line {}", base.config.name, first + 1),
        },
        detail,
    })
}

/// A unified diff of the first divergence, with context.
pub fn unified_diff(a: &[&str], b: &[&str], a_name: &str, b_name: &str) -> String {
    let first = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let lo = first.saturating_sub(5);
    let hi_a = (first + 6).min(a.len());
    let hi_b = (first + 6).min(b.len());
    let ta = a[lo..hi_a].join("\n") + "\n";
    let tb = b[lo..hi_b].join("\n") + "\n";
    similar::TextDiff::from_lines(&ta, &tb)
        .unified_diff()
        .context_radius(5)
        .header(a_name, b_name)
        .to_string()
}
