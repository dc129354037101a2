//! What Tumbler accepts as input, and the exit codes that tell bad input from findings and
//! from Tumbler's own errors.
//!
//! Exit codes, each with one meaning: 0 pass, 1 a finding (a failed check, a panic, a hang, an
//! abort), 2 bad usage or bad input (flags, configs, ops files, failure directories, reports:
//! the message names the file and the field or line), 3 an error of Tumbler itself (writing
//! artifacts, a bug). Input is checked before anything runs: numeric flags against the bounds
//! below, configs by `config_check.rs`, ops files by `ops::validate`.

use std::path::Path;

use anyhow::Context;

use crate::ops::{self, OpsFile};

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
/// The most replays `nightly --reduce-budget` may give one failure.
pub const REDUCE_BUDGET_MAX: usize = 100_000;
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

fn parse_bounded(s: &str, what: &str, min: usize, max: usize) -> Result<usize, String> {
    let n: usize = s.trim().parse().map_err(|_| format!("{s:?} is not a {what}"))?;
    if n < min || n > max {
        return Err(format!("{n} is out of range: {min} to {max}"));
    }
    Ok(n)
}

/// Parses `--ops`: 0 to [`OPS_MAX`].
pub fn parse_ops(s: &str) -> Result<usize, String> {
    parse_bounded(s, "number of ops", 0, OPS_MAX)
}

/// Parses `--random-configs`: 0 to [`RANDOM_CONFIGS_MAX`].
pub fn parse_random_configs(s: &str) -> Result<usize, String> {
    parse_bounded(s, "number of configs", 0, RANDOM_CONFIGS_MAX)
}

/// Parses `--jobs`: 1 to [`JOBS_MAX`].
pub fn parse_jobs(s: &str) -> Result<usize, String> {
    parse_bounded(s, "number of jobs", 1, JOBS_MAX)
}

/// Parses `--reduce-budget`: 0 to [`REDUCE_BUDGET_MAX`].
pub fn parse_reduce_budget(s: &str) -> Result<usize, String> {
    parse_bounded(s, "number of replays", 0, REDUCE_BUDGET_MAX)
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
