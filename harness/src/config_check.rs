//! Config validation before any run: a config the engine would refuse, or one Tumbler cannot
//! afford, is bad input naming the file and the field (exit code 2), never an `[engine]`
//! finding.
//!
//! Two layers: Tumbler's own bounds on each knob ([`BOUNDS`], documented in README.md), then
//! the engine's option validation itself, by opening a throwaway database on a `MemFs` with
//! the config's options (Manual scheduler, so no thread starts).

use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;

use crate::cli::input_error;
use crate::config::{EngineConfig, SchedulerKind};

/// Tumbler's bounds on each numeric knob: name, smallest, largest. The largest keep a run's
/// memory sane (a memtable's arena is allocated up front, in every config at once).
pub const BOUNDS: &[(&str, u64, u64)] = &[
    ("memtable_size", 1, 256 << 20),
    ("memtable_stop_writes_threshold", 2, 64),
    ("block_size", 1, 64 << 20),
    ("restart_interval", 1, 1 << 16),
    ("index_block_size", 1, 64 << 20),
    ("bloom_bits_per_key", 0, 64),
    ("target_file_size", 1, 1 << 40),
    ("l0_compaction_threshold", 1, 1 << 10),
    ("l0_stop_writes_threshold", 1, 1 << 10),
    ("lbase_max_bytes", 1, 1 << 50),
    ("level_multiplier", 2, 1000),
    ("max_manifest_file_size", 1, 1 << 40),
    ("max_open_files", 1, 1 << 20),
    ("cache_size", 0, 1 << 30),
    ("scheduler.threads", 1, 64),
];

/// The values a config sets, by knob name (absent knobs are not checked: they take the
/// engine's defaults).
fn set_values(c: &EngineConfig) -> Vec<(&'static str, u64)> {
    let mut v = Vec::new();
    let mut add = |name: &'static str, x: Option<u64>| {
        if let Some(x) = x {
            v.push((name, x));
        }
    };
    let u = |x: Option<usize>| x.map(|x| x as u64);
    add("memtable_size", u(c.memtable_size));
    add("memtable_stop_writes_threshold", u(c.memtable_stop_writes_threshold));
    add("block_size", u(c.block_size));
    add("restart_interval", u(c.restart_interval));
    add("index_block_size", u(c.index_block_size));
    add("bloom_bits_per_key", u(c.bloom_bits_per_key));
    add("target_file_size", c.target_file_size);
    add("l0_compaction_threshold", u(c.l0_compaction_threshold));
    add("l0_stop_writes_threshold", u(c.l0_stop_writes_threshold));
    add("lbase_max_bytes", c.lbase_max_bytes);
    add("level_multiplier", c.level_multiplier);
    add("max_manifest_file_size", c.max_manifest_file_size);
    add("max_open_files", u(c.max_open_files));
    add("cache_size", u(c.cache_size));
    if let Some(SchedulerKind::Threads(n)) = c.scheduler {
        add("scheduler.threads", Some(n as u64));
    }
    v
}

/// Checks one config: each knob within [`BOUNDS`], then the engine's own validation. The
/// error names the field.
pub fn check(c: &EngineConfig) -> Result<(), String> {
    for (name, value) in set_values(c) {
        let &(_, min, max) = BOUNDS.iter().find(|b| b.0 == name).expect("every knob has bounds");
        if value < min || value > max {
            return Err(format!("field `{name}`: {value} is out of range ({min} to {max})"));
        }
    }
    let mut opts = c.to_options(Arc::new(cobble::MemFs::new()));
    if opts.l0_stop_writes_threshold < opts.l0_compaction_threshold {
        return Err(format!(
            "field `l0_stop_writes_threshold`: {} is below l0_compaction_threshold {}",
            opts.l0_stop_writes_threshold, opts.l0_compaction_threshold
        ));
    }
    opts.scheduler = cobble::Scheduler::Manual;
    match cobble::Db::open(opts, "/config-check") {
        Ok(db) => {
            let _ = db.close();
            Ok(())
        }
        Err(cobble::Error::InvalidArgument(m)) => Err(format!("the engine refuses it: {m}")),
        Err(e) => Err(format!("the engine cannot open a database with it: {e}")),
    }
}

/// Checks every config loaded from `dir`; the error (bad input) names the file and the field.
pub fn check_all(configs: &[EngineConfig], dir: &Path) -> anyhow::Result<()> {
    for c in configs {
        if let Err(e) = check(c) {
            let file = dir.join(format!("{}.json", c.name));
            return Err(input_error(anyhow!("config {}: {e}", file.display())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_configs_and_random_ones_pass() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/standard"));
        let configs = crate::config::load_dir(dir).unwrap();
        check_all(&configs, dir).unwrap();
        for seed in 0..50 {
            let c = EngineConfig::random(seed);
            check(&c).unwrap_or_else(|e| panic!("random config {seed}: {e}"));
        }
    }

    #[test]
    fn bad_knobs_name_the_field() {
        for (json, field) in [
            (r#"{"memtable_size": 0}"#, "memtable_size"),
            (r#"{"restart_interval": 0}"#, "restart_interval"),
            (r#"{"level_multiplier": 1}"#, "level_multiplier"),
            (r#"{"memtable_size": 18446744073709551615}"#, "memtable_size"),
            (r#"{"memtable_stop_writes_threshold": 1}"#, "memtable_stop_writes_threshold"),
            (r#"{"scheduler": {"threads": 0}}"#, "scheduler.threads"),
            (r#"{"l0_compaction_threshold": 8, "l0_stop_writes_threshold": 4}"#, "l0_stop"),
        ] {
            let c = EngineConfig::from_json(json).unwrap();
            let e = check(&c).unwrap_err();
            assert!(e.contains(field), "{json}: {e}");
        }
    }
}
