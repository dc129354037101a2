//! Failure directories: the one layout that `run --out`, `replay --out`, `nightly` and the
//! reducer write ([`write()`]), and the one reader ([`read`]) behind `replay DIR`, `reduce DIR`,
//! nightly's reduction and the reducer's child processes.
//!
//! ```text
//! DIR/ops.txt             the ops file (its header names the generator and the seed)
//! DIR/settings.json       {"seed": 3, "error_rate": 0.0005, "planted": null, "generator": "1"}
//! DIR/configs/NAME.json   every config that ran (at least one)
//! DIR/histories/NAME.txt  each config's history, for people (never read back)
//! DIR/failure.txt         on a failure: `[oracle] config NAME op I: message` (or `after the last
//!                          op`) and detail
//! DIR/repro.sh            on a failure: replays the directory
//! ```
//!
//! The reducer adds `corpus_entry.ops` to the directory it writes.
//!
//! Reading is strict, so every command sees the same run: `ops.txt`, `settings.json` with all
//! four fields (`planted` is `null` for none) and a non-empty `configs/` must be there; the
//! ops file's header and `settings.json` must agree on the seed and the generator; every
//! config must pass `config_check`. Anything else is bad input (exit code 2) naming the file and
//! the field. Every directory Tumbler has written since `settings.json` existed reads back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::check::SeedReport;
use crate::config::{self, EngineConfig};
use crate::input::{self, input_error};
use crate::ops::{self, OpsFile, GENERATOR_VERSION};
use crate::runner::{Oracle, RunSettings};
use crate::sim::PlantedFault;

/// `settings.json`: what a replay needs besides the ops and the configs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    /// The run's seed (SimFs and crash decisions derive from it).
    pub seed: u64,
    /// The injected error rate, in [0, 1].
    pub error_rate: f64,
    /// The planted fault by name (`skip-wal-sync`), `null` for none.
    pub planted: Option<String>,
    /// The version of the generator that made the ops.
    pub generator: String,
}

impl Settings {
    /// Parses `settings.json`; the error names the field.
    pub fn from_json(text: &str) -> anyhow::Result<Settings> {
        let mut f = Fields::parse(text)?;
        let s = Settings {
            seed: f.take("seed")?,
            error_rate: f.take("error_rate")?,
            planted: f.take("planted")?,
            generator: f.take("generator")?,
        };
        f.finish()?;
        input::check_error_rate(s.error_rate).map_err(|e| anyhow!("field `error_rate`: {e}"))?;
        s.planted_fault()?;
        Ok(s)
    }

    /// The planted fault `planted` names.
    pub fn planted_fault(&self) -> anyhow::Result<Option<PlantedFault>> {
        self.planted
            .as_deref()
            .map(|p| p.parse().map_err(|e| anyhow!("field `planted`: {e}")))
            .transpose()
    }
}

/// The fields of a JSON object, taken one typed field at a time so that an error names its
/// field (serde_json's own messages name only a line and column).
struct Fields(serde_json::Map<String, serde_json::Value>);

impl Fields {
    fn parse(text: &str) -> anyhow::Result<Fields> {
        match serde_json::from_str(text).context("not JSON")? {
            serde_json::Value::Object(m) => Ok(Fields(m)),
            other => bail!("expected a JSON object, found {other}"),
        }
    }

    /// Takes field `name`, which must be present (a `null` is present).
    fn take<T: DeserializeOwned>(&mut self, name: &str) -> anyhow::Result<T> {
        let v = self.0.remove(name).ok_or_else(|| anyhow!("field `{name}` is missing"))?;
        serde_json::from_value(v).map_err(|e| anyhow!("field `{name}`: {e}"))
    }

    /// Refuses fields nobody took (a typo must not pass unnoticed).
    fn finish(self) -> anyhow::Result<()> {
        match self.0.keys().next() {
            Some(k) => bail!("unknown field `{k}`"),
            None => Ok(()),
        }
    }
}

/// A failure directory as read back: everything a replay or a reduction needs.
#[derive(Clone, Debug)]
pub struct Saved {
    /// The ops, with the seed and the generator of `settings.json` in the header.
    pub file: OpsFile,
    pub settings: RunSettings,
    /// The configs, sorted by name.
    pub configs: Vec<EngineConfig>,
    /// The oracle of the first failure in `failure.txt`; `None` when the run passed.
    pub oracle: Option<Oracle>,
}

/// Reads the failure directory `dir` (see the module docs). Every error is bad input.
pub fn read(dir: &Path) -> anyhow::Result<Saved> {
    read_dir(dir).map_err(input_error)
}

fn read_dir(dir: &Path) -> anyhow::Result<Saved> {
    if !dir.is_dir() {
        bail!("{}: not a failure directory (no such directory)", dir.display());
    }
    let mut file = input::load_ops_file(&dir.join("ops.txt"))?;
    let settings_path = dir.join("settings.json");
    let text = input::read_input(&settings_path, "settings")?;
    let settings =
        Settings::from_json(&text).with_context(|| format!("{}", settings_path.display()))?;
    let ops_path = dir.join("ops.txt");
    match file.seed {
        None => file.seed = Some(settings.seed),
        Some(s) if s != settings.seed => bail!(
            "{} has seed {s}, but field `seed` of {} is {}",
            ops_path.display(),
            settings_path.display(),
            settings.seed
        ),
        Some(_) => {}
    }
    match &file.generator {
        None => file.generator = Some(settings.generator.clone()),
        Some(g) if *g != settings.generator => bail!(
            "{} has generator {g}, but field `generator` of {} is {}",
            ops_path.display(),
            settings_path.display(),
            settings.generator
        ),
        Some(_) => {}
    }
    let configs_dir = dir.join("configs");
    if !configs_dir.is_dir() {
        bail!("{}: missing (a failure directory holds the configs it ran)", configs_dir.display());
    }
    let configs = config::load_dir(&configs_dir)?;
    if configs.is_empty() {
        bail!("{}: no configs (*.json)", configs_dir.display());
    }
    crate::config_check::check_all(&configs, &configs_dir)?;
    let failure_path = dir.join("failure.txt");
    let oracle = if failure_path.exists() {
        let text = input::read_input(&failure_path, "failure report")?;
        Some(first_oracle(&text).with_context(|| format!("{} line 1", failure_path.display()))?)
    } else {
        None
    };
    let planted =
        settings.planted_fault().with_context(|| format!("{}", settings_path.display()))?;
    Ok(Saved {
        settings: RunSettings { seed: settings.seed, error_rate: settings.error_rate, planted },
        file,
        configs,
        oracle,
    })
}

/// The oracle of failure.txt's first line, `[oracle] config ...`.
fn first_oracle(text: &str) -> anyhow::Result<Oracle> {
    let line = text.lines().next().unwrap_or("");
    let name = line
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(name, _)| name)
        .ok_or_else(|| anyhow!("expected `[oracle] config ...`, found {line:?}"))?;
    oracle_named(name).ok_or_else(|| anyhow!("unknown oracle `{name}`"))
}

/// Every oracle, to read one back by name.
const ALL_ORACLES: [Oracle; 11] = [
    Oracle::Model,
    Oracle::Durability,
    Oracle::Invariant,
    Oracle::Engine,
    Oracle::Diff,
    Oracle::Determinism,
    Oracle::Liveness,
    Oracle::Memory,
    Oracle::Panic,
    Oracle::Hang,
    Oracle::Abort,
];

/// The oracle named `name` in failure.txt, reports and child records.
pub fn oracle_named(name: &str) -> Option<Oracle> {
    ALL_ORACLES.into_iter().find(|o| o.name() == name)
}

/// Writes a run to `out` as a failure directory: ops.txt, settings.json, configs/,
/// histories/ and, when `report` has failures, failure.txt and repro.sh. Files of those names
/// that an earlier write left in `out` go first, so that the directory holds this run only
/// (a stale config would change what a replay runs).
pub fn write(
    out: &Path,
    file: &OpsFile,
    configs: &[EngineConfig],
    settings: &RunSettings,
    report: &SeedReport,
) -> anyhow::Result<()> {
    assert!(!configs.is_empty(), "a run has configs");
    assert!(file.seed.is_none_or(|s| s == settings.seed), "ops header and settings agree");
    let configs_dir = out.join("configs");
    let histories_dir = out.join("histories");
    remove_stale(&configs_dir, "json")?;
    remove_stale(&histories_dir, "txt")?;
    for name in ["failure.txt", "repro.sh"] {
        if out.join(name).is_file() {
            std::fs::remove_file(out.join(name))?;
        }
    }
    std::fs::create_dir_all(&configs_dir)?;
    std::fs::create_dir_all(&histories_dir)?;
    std::fs::write(out.join("ops.txt"), ops::print(file))?;
    let s = Settings {
        seed: settings.seed,
        error_rate: settings.error_rate,
        planted: settings.planted.map(|p| p.name().to_string()),
        generator: file.generator.clone().unwrap_or_else(|| GENERATOR_VERSION.to_string()),
    };
    std::fs::write(out.join("settings.json"), serde_json::to_string_pretty(&s)? + "\n")?;
    for c in configs {
        std::fs::write(configs_dir.join(format!("{}.json", c.name)), c.to_json() + "\n")?;
    }
    for r in &report.runs {
        std::fs::write(
            histories_dir.join(format!("{}.txt", r.config.name)),
            r.history.join("\n") + "\n",
        )?;
    }
    if report.failures.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for f in &report.failures {
        let _ = writeln!(
            text,
            "[{}] config {} {}: {}\n{}",
            f.failure.oracle.name(),
            f.config,
            f.failure.op_index.map_or("after the last op".to_string(), |i| format!("op {i}")),
            f.failure.message,
            f.detail
        );
    }
    std::fs::write(out.join("failure.txt"), text)?;
    let repro = format!(
        "#!/usr/bin/env bash\n# Replays this failure (seed {}).\nset -euo pipefail\n\
         cd \"$(dirname \"$0\")\"\nexec cargo run --release --manifest-path \"${{TUMBLER_ROOT:-$(git rev-parse --show-toplevel)}}/Cargo.toml\" -p tumbler -- replay \"$PWD\" \"$@\"\n",
        settings.seed
    );
    let path = out.join("repro.sh");
    std::fs::write(&path, repro)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Removes the `*.<ext>` files of `dir` (an earlier write's), if it exists.
fn remove_stale(dir: &Path, ext: &str) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let stale: Vec<PathBuf> =
        std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    for p in stale.iter().filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext)) {
        std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Weights;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tumbler-artifacts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn saved_run(dir: &Path) {
        let file = ops::generate_file(7, 20, &Weights::default());
        let configs = vec![EngineConfig {
            name: "tiny".into(),
            memtable_size: Some(4096),
            ..EngineConfig::default()
        }];
        let settings =
            RunSettings { seed: 7, error_rate: 0.25, planted: Some(PlantedFault::SkipWalSync) };
        let report = SeedReport {
            runs: Vec::new(),
            failures: Vec::new(),
            stats: crate::runner::RunStats::default(),
        };
        write(dir, &file, &configs, &settings, &report).unwrap();
    }

    #[test]
    fn what_is_written_reads_back() {
        let dir = scratch("round-trip");
        saved_run(&dir);
        let s = read(&dir).unwrap();
        assert_eq!((s.settings.seed, s.settings.error_rate), (7, 0.25));
        assert_eq!(s.settings.planted, Some(PlantedFault::SkipWalSync));
        assert_eq!(s.file.ops, ops::generate_file(7, 20, &Weights::default()).ops);
        assert_eq!(s.file.generator.as_deref(), Some(GENERATOR_VERSION));
        assert_eq!(s.configs.len(), 1);
        assert_eq!(s.configs[0].memtable_size, Some(4096));
        assert_eq!(s.oracle, None);
        // A failure's oracle is read from failure.txt.
        std::fs::write(dir.join("failure.txt"), "[liveness] config tiny after the last op: m\n")
            .unwrap();
        assert_eq!(read(&dir).unwrap().oracle, Some(Oracle::Liveness));
        // A second write replaces the first's configs and failure.
        std::fs::write(dir.join("configs/stale.json"), "{}").unwrap();
        saved_run(&dir);
        let s = read(&dir).unwrap();
        assert_eq!(s.configs.len(), 1);
        assert_eq!(s.oracle, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_settings_format_of_existing_directories_reads() {
        let s = Settings::from_json(
            r#"{"seed": 3, "error_rate": 0.0005, "planted": null, "generator": "1"}"#,
        )
        .unwrap();
        assert_eq!(s.seed, 3);
        assert_eq!(s.planted_fault().unwrap(), None);
        let s = Settings::from_json(
            r#"{"seed": 3, "error_rate": 0, "planted": "skip-sync-dir", "generator": "1"}"#,
        )
        .unwrap();
        assert_eq!(s.planted_fault().unwrap(), Some(PlantedFault::SkipSyncDir));
    }

    #[test]
    fn bad_settings_name_the_field() {
        for (json, want) in [
            (r#"{"seed": 3, "planted": null, "generator": "1"}"#, "field `error_rate` is missing"),
            (r#"{"seed": 3, "error_rate": 0, "generator": "1"}"#, "field `planted` is missing"),
            (
                r#"{"seed": "x", "error_rate": 0, "planted": null, "generator": "1"}"#,
                "field `seed`",
            ),
            (r#"{"seed": 3, "error_rate": 2, "planted": null, "generator": "1"}"#, "`error_rate`"),
            (r#"{"seed": 3, "error_rate": 0, "planted": "nope", "generator": "1"}"#, "`planted`"),
            (r#"{"seed": 3, "error_rate": 0, "planted": null, "generator": 1}"#, "`generator`"),
            (
                r#"{"seed": 3, "error_rate": 0, "planted": null, "generator": "1", "x": 1}"#,
                "unknown field `x`",
            ),
            ("[1]", "expected a JSON object"),
            ("{", "not JSON"),
        ] {
            let e = format!("{:#}", Settings::from_json(json).unwrap_err());
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn a_broken_directory_is_bad_input_naming_the_file() {
        let dir = scratch("broken");
        saved_run(&dir);
        let e = |dir: &Path| {
            let e = read(dir).unwrap_err();
            assert!(crate::input::is_input_error(&e), "{e:#}");
            format!("{e:#}")
        };
        std::fs::write(dir.join("settings.json"), r#"{"seed": 8}"#).unwrap();
        let m = e(&dir);
        assert!(m.contains("settings.json") && m.contains("error_rate"), "{m}");
        std::fs::write(
            dir.join("settings.json"),
            r#"{"seed": 8, "error_rate": 0, "planted": null, "generator": "1"}"#,
        )
        .unwrap();
        let m = e(&dir);
        assert!(m.contains("ops.txt has seed 7") && m.contains("`seed`"), "{m}");
        saved_run(&dir);
        std::fs::write(dir.join("failure.txt"), "no oracle here\n").unwrap();
        let m = e(&dir);
        assert!(m.contains("failure.txt line 1"), "{m}");
        std::fs::remove_file(dir.join("failure.txt")).unwrap();
        std::fs::remove_file(dir.join("configs/tiny.json")).unwrap();
        assert!(e(&dir).contains("no configs"));
        std::fs::remove_dir_all(dir.join("configs")).unwrap();
        assert!(e(&dir).contains("configs: missing"));
        std::fs::remove_file(dir.join("settings.json")).unwrap();
        assert!(e(&dir).contains("settings.json"));
        std::fs::remove_file(dir.join("ops.txt")).unwrap();
        assert!(e(&dir).contains("ops.txt"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e(&dir).contains("not a failure directory"));
    }

    #[test]
    fn every_oracle_reads_back_by_name() {
        for o in ALL_ORACLES {
            assert_eq!(oracle_named(o.name()), Some(o));
            // Exhaustive: a new oracle does not compile here until it is in ALL_ORACLES.
            match o {
                Oracle::Model
                | Oracle::Durability
                | Oracle::Invariant
                | Oracle::Engine
                | Oracle::Diff
                | Oracle::Determinism
                | Oracle::Liveness
                | Oracle::Memory
                | Oracle::Panic
                | Oracle::Hang
                | Oracle::Abort => {}
            }
        }
        assert_eq!(oracle_named("nope"), None);
    }
}
