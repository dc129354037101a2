//! Child processes: a nightly seed, or a reduction candidate of a panic, hang or abort, runs in
//! a child `tumbler __child`, so that an abort, a stack overflow or a signal becomes a finding
//! (`Oracle::Abort`) with the signal, the stderr tail and the last panic's location, and the
//! parent goes on. `tumbler run` runs itself again as a child (`run --in-process`, stdout and
//! stderr passed through): when that child dies, each config runs alone in a `__child`, and
//! the parent prints the findings and the replay command.
//!
//! The child writes a JSON [`Record`] of its findings to a file the parent names; its stdout is
//! discarded and its stderr kept (the tail goes into an abort's message). `__child seed`'s
//! arguments are written by [`seed_child_args`] and parsed by [`ChildSeedArgs`], both here;
//! `__child case DIR` runs a failure directory the reducer wrote (`reduce::child_case`).
//!
//! Invariant: wall time decides only whether a child hung (a backstop well past the child's
//! own watchdog); it never reaches a record, an artifact or a decision in the simulation.

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::check::{self, SeedFailure, SeedReport};
use crate::input::{
    input_error, is_input_error, parse_error_rate, parse_ops, parse_random_configs, EXIT_BAD_INPUT,
    EXIT_FINDING, EXIT_INTERNAL,
};
use crate::plan::{self, SeedSpec};
use crate::runner::{Failure, Oracle, RunStats};
use crate::sim::PlantedFault;

/// `tumbler __child`: what to run and where to write the record.
#[derive(Debug, Args)]
pub struct ChildArgs {
    /// Where the JSON record goes.
    #[arg(long)]
    pub record: PathBuf,
    #[command(subcommand)]
    pub work: ChildWork,
}

/// A child's work.
#[derive(Debug, Subcommand)]
pub enum ChildWork {
    /// One seed, as `tumbler run` would run it; artifacts go to `--out` only on a finding.
    Seed(ChildSeedArgs),
    /// A saved case directory (ops.txt, settings.json, configs/), as the reducer runs a
    /// candidate: the finding of its last config (or the divergence of its two configs).
    Case {
        dir: PathBuf,
        #[arg(long, default_value_t = crate::watchdog::HANG_TIMEOUT_DEFAULT_SECS)]
        hang_timeout: u64,
    },
}

/// `__child seed`: one seed, as [`seed_child_args`] describes it.
#[derive(Debug, Args)]
pub struct ChildSeedArgs {
    #[arg(long)]
    pub seed: u64,
    #[arg(long, value_parser = parse_ops)]
    pub ops: usize,
    #[arg(long)]
    pub configs: PathBuf,
    #[arg(long, value_parser = parse_random_configs)]
    pub random_configs: usize,
    #[arg(long)]
    pub weights: Option<PathBuf>,
    #[arg(long)]
    pub swarm: bool,
    #[arg(long, value_parser = parse_error_rate, allow_negative_numbers = true)]
    pub error_rate: f64,
    #[arg(long)]
    pub plant: Option<PlantedFault>,
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=crate::watchdog::HANG_TIMEOUT_MAX_SECS))]
    pub hang_timeout: u64,
    /// Save the artifacts here on a finding.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only this config of the seed (after another config killed the seed's process).
    #[arg(long)]
    pub only_config: Option<String>,
}

impl ChildSeedArgs {
    fn spec(&self) -> SeedSpec {
        SeedSpec {
            ops: self.ops,
            configs: self.configs.clone(),
            random_configs: self.random_configs,
            weights: self.weights.clone(),
            swarm: self.swarm,
            error_rate: self.error_rate,
            plant: self.plant,
            hang_timeout: self.hang_timeout,
        }
    }
}

/// The `__child seed` arguments that run seed `seed` of `spec` (only config `only_config`
/// when given), saving a finding to `out` when given.
pub fn seed_child_args(
    spec: &SeedSpec,
    seed: u64,
    only_config: Option<&str>,
    out: Option<&Path>,
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["seed".into(), "--seed".into(), seed.to_string().into()];
    let mut push = |k: &str, v: OsString| {
        a.push(k.into());
        a.push(v);
    };
    push("--ops", spec.ops.to_string().into());
    push("--configs", spec.configs.clone().into_os_string());
    push("--random-configs", spec.random_configs.to_string().into());
    push("--error-rate", spec.error_rate.to_string().into());
    push("--hang-timeout", spec.hang_timeout.to_string().into());
    if let Some(w) = &spec.weights {
        push("--weights", w.clone().into_os_string());
    }
    if let Some(p) = spec.plant {
        push("--plant", p.name().into());
    }
    if let Some(c) = only_config {
        push("--only-config", c.into());
    }
    if let Some(out) = out {
        push("--out", out.as_os_str().to_owned());
    }
    if spec.swarm {
        a.push("--swarm".into());
    }
    a
}

/// One finding, as a child reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordFailure {
    pub oracle: String,
    pub config: String,
    pub op_index: Option<usize>,
    pub message: String,
}

/// What a child found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub failures: Vec<RecordFailure>,
    pub ops_executed: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub errors_injected: u64,
    #[serde(default)]
    pub faults: crate::report::FaultTally,
}

impl Record {
    fn from_report(report: &SeedReport) -> Record {
        Record {
            failures: report
                .failures
                .iter()
                .map(|f| RecordFailure {
                    oracle: f.failure.oracle.name().to_string(),
                    config: f.config.clone(),
                    op_index: f.failure.op_index,
                    message: f.failure.message.clone(),
                })
                .collect(),
            ops_executed: report.stats.ops_executed,
            crashes: report.stats.crashes,
            restarts: report.stats.restarts,
            errors_injected: report.stats.errors_injected,
            faults: report.stats.faults.clone(),
        }
    }
}

/// `tumbler __child`: runs `work` and writes its record to `record`. Returns whether the work
/// passed.
pub fn child_main(
    record: &Path,
    work: impl FnOnce() -> anyhow::Result<Record>,
) -> anyhow::Result<bool> {
    crate::watchdog::set_verbose_panics(true);
    let r = work()?;
    let passed = r.failures.is_empty();
    let text = serde_json::to_string(&r).context("serializing the record")?;
    std::fs::write(record, text).with_context(|| format!("writing {}", record.display()))?;
    Ok(passed)
}

/// `tumbler __child seed`: runs the seed (or one config of it) and saves the artifacts of a
/// finding to `--out`.
pub fn child_seed(args: &ChildSeedArgs) -> anyhow::Result<Record> {
    crate::watchdog::set_hang_timeout(Duration::from_secs(args.hang_timeout));
    let mut plan = plan::plan_seed(&args.spec(), args.seed).map_err(input_error)?;
    if let Some(name) = &args.only_config {
        plan.configs.retain(|c| &c.name == name);
        if plan.configs.is_empty() {
            return Err(input_error(anyhow::anyhow!("no config named {name}")));
        }
    }
    let report = check::run_seed(&plan.file.ops, &plan.configs, &plan.settings, false);
    if !report.failures.is_empty() {
        if let Some(out) = &args.out {
            crate::artifacts::write(out, &plan.file, &plan.configs, &plan.settings, &report)
                .with_context(|| format!("writing artifacts to {}", out.display()))?;
        }
    }
    Ok(Record::from_report(&report))
}

/// How a child ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It finished and wrote its record.
    Record(Record),
    /// It died (a signal, an abort) or outlived its backstop: an `Abort` (or `Hang`) failure.
    Died(Failure),
}

/// How much of a dead child's stderr its finding keeps.
const STDERR_TAIL_BYTES: usize = 1500;

/// The conventional name of a signal number.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

/// Runs `tumbler __child --record R ARGS...` and waits at most `backstop`. Exit codes 0 and 1
/// give the record; 2 and 3 are errors (bad input, Tumbler's own) carrying the stderr; a
/// signal or any other end is a died child.
pub fn run_child(args: &[OsString], backstop: Duration, scratch: &Path) -> anyhow::Result<Outcome> {
    let exe = std::env::current_exe().context("finding the tumbler executable")?;
    run_child_of(&exe, args, backstop, scratch)
}

/// [`run_child`] with another tumbler executable `exe` (nightly's shuttle build, which retries
/// a threaded failure seen on OS threads).
pub fn run_child_of(
    exe: &Path,
    args: &[OsString],
    backstop: Duration,
    scratch: &Path,
) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let record = scratch.join("record.json");
    let _ = std::fs::remove_file(&record);
    let mut child = Command::new(exe)
        .arg("__child")
        .arg("--record")
        .arg(&record)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting a child tumbler")?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    #[expect(
        clippy::disallowed_methods,
        reason = "drains the child's stderr so it never blocks on a full pipe"
    )]
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    #[expect(clippy::disallowed_methods, reason = "wall time decides only whether a child hung")]
    let started = std::time::Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for a child tumbler")? {
            break status;
        }
        if started.elapsed() >= backstop {
            timed_out = true;
            let _ = child.kill();
            break child.wait().context("waiting for a killed child tumbler")?;
        }
        #[expect(clippy::disallowed_methods, reason = "polls a child process; no decision")]
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = reader.join().unwrap_or_default();
    let err = String::from_utf8_lossy(&err).into_owned();
    let tail = tail(&err);
    let last_panic = err
        .lines()
        .filter_map(|l| l.find("panicked at ").map(|i| &l[i..]))
        .find(|l| !l.contains("panic in a destructor during cleanup"))
        .map(str::to_string);
    if timed_out {
        return Ok(Outcome::Died(Failure {
            oracle: Oracle::Hang,
            op_index: None,
            message: format!(
                "the child process gave no result within {}s and was killed; stderr tail: {tail}",
                backstop.as_secs()
            ),
        }));
    }
    match status.code() {
        Some(0 | 1) => {
            let text = std::fs::read_to_string(&record)
                .with_context(|| format!("reading the child's record {}", record.display()))?;
            let r: Record = serde_json::from_str(&text).context("parsing the child's record")?;
            Ok(Outcome::Record(r))
        }
        Some(EXIT_BAD_INPUT) => Err(input_error(anyhow::anyhow!("child tumbler: {}", err.trim()))),
        Some(EXIT_INTERNAL) => {
            bail!("child tumbler failed: {}", err.trim())
        }
        code => {
            let how = match (code, signal_of(&status)) {
                (_, Some(sig)) => format!("was killed by signal {sig} ({})", signal_name(sig)),
                (Some(c), None) => format!("exited with code {c}"),
                (None, None) => "died".to_string(),
            };
            let panic = last_panic.map(|p| format!("; last {p}")).unwrap_or_default();
            Ok(Outcome::Died(Failure {
                oracle: Oracle::Abort,
                op_index: None,
                message: format!("the process {how}{panic}; stderr tail: {tail}"),
            }))
        }
    }
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt as _;
    status.signal()
}

#[cfg(not(unix))]
fn signal_of(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

fn tail(text: &str) -> String {
    let t = text.trim_end();
    let mut start = t.len().saturating_sub(STDERR_TAIL_BYTES);
    while !t.is_char_boundary(start) {
        start += 1;
    }
    t[start..].replace('\n', " | ")
}

/// A seed report holding one finding of a died child (for its failure.txt and repro.sh).
pub fn died_report(failure: Failure) -> SeedReport {
    SeedReport {
        runs: Vec::new(),
        failures: vec![SeedFailure { config: "-".to_string(), failure, detail: String::new() }],
        stats: RunStats::default(),
    }
}

/// The backstop for a child whose own watchdog bounds each op by `hang_timeout`: generous,
/// since only a child stuck outside any op (or unable to exit) meets it.
pub fn backstop(hang_timeout: Duration, ops: usize) -> Duration {
    hang_timeout * 3 + Duration::from_secs(600) + Duration::from_millis(ops as u64 * 20)
}

/// `tumbler run`: runs the seed in a child `run --in-process` (this process's arguments, output
/// passed through) and returns its exit code; if the child dies, reports the death, runs each
/// config of seed `seed` of `spec` alone in a `__child` and prints every finding and the
/// replay command (exit code 1), saving the artifacts to `out` when given.
pub fn run_supervised(seed: Option<u64>, spec: &SeedSpec, out: Option<&Path>) -> i32 {
    match supervised(seed, spec, out) {
        Ok(code) => code,
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

fn supervised(given: Option<u64>, spec: &SeedSpec, out: Option<&Path>) -> anyhow::Result<i32> {
    let seed = given.unwrap_or_else(plan::random_seed);
    let mut argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    argv.push("--in-process".into());
    if given.is_none() {
        argv.push("--seed".into());
        argv.push(seed.to_string().into());
    }
    let exe = std::env::current_exe().context("finding the tumbler executable")?;
    let status = Command::new(exe).args(&argv).status().context("starting a child tumbler")?;
    if let Some(code) = status.code() {
        if (0..=3).contains(&code) {
            return Ok(code);
        }
    }
    let how = match (status.code(), signal_of(&status)) {
        (_, Some(sig)) => format!("was killed by signal {sig} ({})", signal_name(sig)),
        (Some(c), None) => format!("exited with code {c}"),
        (None, None) => "died".to_string(),
    };
    println!("[abort] the process running seed {seed} {how}; running each config alone");
    let plan = plan::plan_seed(spec, seed).map_err(input_error)?;
    let scratch = std::env::temp_dir().join(format!("tumbler-run-{}", std::process::id()));
    let backstop = backstop(Duration::from_secs(spec.hang_timeout), spec.ops);
    let mut failures = Vec::new();
    for c in &plan.configs {
        let failure_of = |oracle: Oracle, op_index, message| SeedFailure {
            config: c.name.clone(),
            failure: Failure { oracle, op_index, message },
            detail: String::new(),
        };
        match run_child(&seed_child_args(spec, seed, Some(&c.name), None), backstop, &scratch)? {
            Outcome::Record(r) => failures.extend(r.failures.into_iter().map(|f| {
                let oracle = crate::artifacts::oracle_named(&f.oracle).unwrap_or(Oracle::Abort);
                failure_of(oracle, f.op_index, f.message)
            })),
            Outcome::Died(f) => failures.push(failure_of(f.oracle, None, f.message)),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if failures.is_empty() {
        failures.push(SeedFailure {
            config: "-".to_string(),
            failure: Failure {
                oracle: Oracle::Abort,
                op_index: None,
                message: format!("the process {how}; alone, every config passed"),
            },
            detail: String::new(),
        });
    }
    println!("FAIL seed {seed}: {} failure(s) (cross-config diff skipped)", failures.len());
    for f in &failures {
        let op = f.failure.op_index.map(|i| format!(" at op {i}")).unwrap_or_default();
        println!("- [{}] config {}{op}: {}", f.failure.oracle.name(), f.config, f.failure.message);
    }
    let mut replay = plan.replay_command.clone();
    if let Some(out) = out {
        let report = SeedReport { runs: Vec::new(), failures, stats: RunStats::default() };
        crate::artifacts::write(out, &plan.file, &plan.configs, &plan.settings, &report)
            .with_context(|| format!("writing artifacts to {}", out.display()))?;
        replay = format!("tumbler replay {}", out.display());
    }
    println!("replay: {replay}");
    Ok(EXIT_FINDING)
}
