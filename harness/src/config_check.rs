//! Config validation before any run: a config the engine would refuse, or one Tumbler cannot
//! afford, is bad input naming the file and the field (exit code 2), never an `[engine]`
//! finding.
//!
//! Two layers: Tumbler's own bounds on each knob (the `bounds` of its row in the knob table,
//! `config/mod.rs`, documented in README.md), then the engine's option validation itself, by
//! opening a throwaway database on a `MemFs` with the config's options (Manual scheduler, so
//! no thread starts).

use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;

use crate::config::{EngineConfig, KNOBS};
use crate::input::input_error;

/// Checks one config: each knob within its bounds, then the engine's own validation. The
/// error names the field.
pub fn check(c: &EngineConfig) -> Result<(), String> {
    for k in KNOBS {
        k.check_bounds(c)?;
    }
    let mut opts = c.to_options(crate::config::placeholder_fs());
    if opts.l0_stop_writes_threshold < opts.l0_compaction_threshold {
        return Err(format!(
            "field `l0_stop_writes_threshold`: {} is below l0_compaction_threshold {}",
            opts.l0_stop_writes_threshold, opts.l0_compaction_threshold
        ));
    }
    opts.scheduler = cobble::Scheduler::Manual;
    // Under the scheduler of this build: a shuttle build's locks need a shuttle execution.
    crate::sched::run(0, move || {
        opts.fs = Arc::new(cobble::MemFs::new());
        match cobble::Db::open(opts, "/config-check") {
            Ok(db) => {
                let _ = db.close();
                Ok(())
            }
            Err(cobble::Error::InvalidArgument(m)) => Err(format!("the engine refuses it: {m}")),
            Err(e) => Err(format!("the engine cannot open a database with it: {e}")),
        }
    })
    .unwrap_or_else(|panic| Err(format!("the engine cannot open a database with it: {panic}")))
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
