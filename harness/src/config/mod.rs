//! Engine configs: named, JSON-serializable sets of `cobble::Options` knobs
//! (`configs/standard/*.json` always run; random ones come from a seed).
//!
//! Every knob is optional; an absent knob takes `cobble::Options::default()`'s value, so a
//! config file lists only what it changes and follows the engine's defaults when they move.
//! Unknown fields are an error (a typo must not silently test the default).
//!
//! Each knob is written once, in the table below (`engine_knobs!`, see `knob.rs`): its type,
//! how it reaches `cobble::Options`, Tumbler's bounds, how a random config draws it and how the
//! reducer shrinks it. `EngineConfig`'s fields, its JSON, `to_options`, `knobs()`, `random()`,
//! `config_check` and the reducer all come from that table.
//!
//! Size: just over 600 lines because the knob table, one row per engine knob, is meant to be read
//! in one place.

mod knob;

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rand::Rng;
use serde::{Deserialize, Serialize};

use self::knob::{engine_knobs, log_uniform, pick};
pub use self::knob::{Knob, KnobSpec, KnobValue};
use crate::merge_ops::MergeKind;

engine_knobs! {
    /// Bytes of one memtable's arena, allocated up front.
    memtable_size: usize {
        engine: memtable_size,
        bounds: (1, 256 << 20),
        random: |r, _| log_uniform(r, 4 << 10, 8 << 20) as usize,
    }
    memtable_stop_writes_threshold: usize {
        engine: memtable_stop_writes_threshold,
        bounds: (2, 64),
        random: |r, _| r.gen_range(2..=6),
    }
    disable_wal: bool {
        engine: disable_wal,
        random: |r, _| r.gen_ratio(1, 8),
    }
    wal_recovery_mode: WalRecovery {
        engine: {
            apply: |o, v| o.wal_recovery_mode = v.into(),
            read: |o| o.wal_recovery_mode.into(),
        },
        random: |r, _| pick(r, [WalRecovery::TolerateCorruptTail, WalRecovery::AbsoluteConsistency]),
    }
    block_size: usize {
        engine: block_size,
        bounds: (1, 64 << 20),
        random: |r, _| log_uniform(r, 1, 64 << 10) as usize,
    }
    restart_interval: usize {
        engine: restart_interval,
        bounds: (1, 1 << 16),
        random: |r, _| r.gen_range(1..=32),
    }
    index_block_size: usize {
        engine: index_block_size,
        bounds: (1, 64 << 20),
        random: |r, _| log_uniform(r, 1, 16 << 10) as usize,
    }
    bloom_bits_per_key: usize {
        engine: bloom_bits_per_key,
        bounds: (0, 64),
        random: |r, _| r.gen_range(0..=20),
    }
    /// `true`: prefix bloom filters on the bytes before the first `@`
    /// (`DelimiterPrefix(b'@')`), matching the generator's `prefix@suffix` keys.
    prefix_bloom: bool {
        engine: {
            apply: |o, v| o.prefix_extractor = v.then(at_prefix),
            read: |o| o.prefix_extractor.is_some(),
        },
        random: |r, _| r.gen_bool(0.5),
    }
    compression: CompressionKind {
        engine: {
            apply: |o, v| o.compression = v.into(),
            read: |o| o.compression.into(),
        },
        random: |r, _| pick(r, [CompressionKind::None, CompressionKind::Lz4]),
    }
    target_file_size: u64 {
        engine: target_file_size,
        bounds: (1, 1 << 40),
        random: |r, _| log_uniform(r, 1, 8 << 20),
    }
    l0_compaction_threshold: usize {
        engine: l0_compaction_threshold,
        bounds: (1, 1 << 10),
        random: |r, _| r.gen_range(1..=8),
    }
    /// At least `l0_compaction_threshold` (`config_check`); a random one is above it.
    l0_stop_writes_threshold: usize {
        engine: l0_stop_writes_threshold,
        bounds: (1, 1 << 10),
        random: |r, c| {
            let base = c
                .l0_compaction_threshold
                .unwrap_or(cobble::Options::default().l0_compaction_threshold);
            base + r.gen_range(1..=16)
        },
    }
    lbase_max_bytes: u64 {
        engine: lbase_max_bytes,
        bounds: (1, 1 << 50),
        random: |r, _| log_uniform(r, 1, 64 << 20),
    }
    level_multiplier: u64 {
        engine: level_multiplier,
        bounds: (2, 1000),
        random: |r, _| r.gen_range(2..=10),
    }
    max_manifest_file_size: u64 {
        engine: max_manifest_file_size,
        bounds: (1, 1 << 40),
        random: |r, _| log_uniform(r, 1, 1 << 20),
    }
    max_open_files: usize {
        engine: max_open_files,
        bounds: (1, 1 << 20),
        random: |r, _| log_uniform(r, 1, 1000) as usize,
    }
    cache_size: usize {
        engine: cache_size,
        bounds: (0, 1 << 30),
        random: |r, _| if r.gen_ratio(1, 10) { 0 } else { log_uniform(r, 1, 16 << 20) as usize },
    }
    /// Who runs flushes and compactions. Always set in a random config, to `Threads(1..=4)`
    /// one time in four: threaded random configs put the production scheduler under every
    /// oracle (their results are checked, not their timing, so their failures may not replay
    /// exactly). The reducer never moves to the default (threads), which does not replay
    /// exactly: a threads scheduler becomes Manual and Manual stays.
    scheduler: SchedulerKind {
        engine: {
            apply: |o, v| o.scheduler = v.into(),
            read: |o| o.scheduler.into(),
        },
        bounds: (1, 64),
        unset_chance: (0, 1),
        random: |r, _| {
            if r.gen_ratio(1, 4) {
                SchedulerKind::Threads(r.gen_range(1..=4))
            } else {
                SchedulerKind::Manual
            }
        },
        shrink: |s| match s {
            SchedulerKind::Threads(_) => vec![Some(SchedulerKind::Manual)],
            SchedulerKind::Manual => Vec::new(),
        },
    }
    /// The merge operator (`string_append`, Cobble's default, or `nested`; see `merge_ops`).
    /// Only configs with the same operator are diffed against each other.
    merge_operator: MergeKind {
        engine: {
            apply: |o, v| o.merge_operator = v.engine_operator(),
            read: |o| MergeKind::of_engine_operator(&*o.merge_operator),
        },
        random: |r, _| pick(r, [MergeKind::StringAppend, MergeKind::Nested]),
    }
}

/// How WAL recovery treats a damaged log (`cobble::WalRecoveryMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalRecovery {
    TolerateCorruptTail,
    AbsoluteConsistency,
}

impl From<WalRecovery> for cobble::WalRecoveryMode {
    fn from(m: WalRecovery) -> cobble::WalRecoveryMode {
        match m {
            WalRecovery::TolerateCorruptTail => cobble::WalRecoveryMode::TolerateCorruptTail,
            WalRecovery::AbsoluteConsistency => cobble::WalRecoveryMode::AbsoluteConsistency,
        }
    }
}

impl From<cobble::WalRecoveryMode> for WalRecovery {
    fn from(m: cobble::WalRecoveryMode) -> WalRecovery {
        match m {
            cobble::WalRecoveryMode::TolerateCorruptTail => WalRecovery::TolerateCorruptTail,
            cobble::WalRecoveryMode::AbsoluteConsistency => WalRecovery::AbsoluteConsistency,
        }
    }
}

/// Block compression (`cobble::Compression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompressionKind {
    None,
    Lz4,
}

impl From<CompressionKind> for cobble::Compression {
    fn from(c: CompressionKind) -> cobble::Compression {
        match c {
            CompressionKind::None => cobble::Compression::None,
            CompressionKind::Lz4 => cobble::Compression::Lz4,
        }
    }
}

impl From<cobble::Compression> for CompressionKind {
    fn from(c: cobble::Compression) -> CompressionKind {
        match c {
            cobble::Compression::None => CompressionKind::None,
            cobble::Compression::Lz4 => CompressionKind::Lz4,
        }
    }
}

/// Who runs flushes and compactions (`cobble::Scheduler`). JSON: `"manual"` or
/// `{"threads": 2}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    /// The harness calls `run_background_step()`; deterministic.
    Manual,
    /// Background threads, up to this many compactions at once.
    Threads(usize),
}

impl From<SchedulerKind> for cobble::Scheduler {
    fn from(s: SchedulerKind) -> cobble::Scheduler {
        match s {
            SchedulerKind::Manual => cobble::Scheduler::Manual,
            SchedulerKind::Threads(n) => {
                cobble::Scheduler::Threads { max_concurrent_compactions: n }
            }
        }
    }
}

impl From<cobble::Scheduler> for SchedulerKind {
    fn from(s: cobble::Scheduler) -> SchedulerKind {
        match s {
            cobble::Scheduler::Manual => SchedulerKind::Manual,
            cobble::Scheduler::Threads { max_concurrent_compactions: n } => {
                SchedulerKind::Threads(n)
            }
        }
    }
}

/// The prefix extractor of `prefix_bloom`: the bytes before the first `@`.
fn at_prefix() -> Arc<dyn cobble::PrefixExtractor> {
    Arc::new(cobble::DelimiterPrefix(b'@'))
}

/// A filesystem for options that are only read, never opened: SimFs, whose constructor takes
/// no engine lock (a shuttle build's locks work only inside a shuttle execution, `sched.rs`).
pub fn placeholder_fs() -> Arc<dyn cobble::Fs> {
    Arc::new(crate::sim::SimFs::new(0))
}

impl EngineConfig {
    /// Parses one config from JSON.
    pub fn from_json(text: &str) -> anyhow::Result<EngineConfig> {
        serde_json::from_str(text).context("engine config JSON")
    }

    /// The config as pretty JSON (absent knobs left out).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config serializes")
    }

    /// The engine options this config stands for, on filesystem `fs`.
    pub fn to_options(&self, fs: Arc<dyn cobble::Fs>) -> cobble::Options {
        let mut o = cobble::Options { fs, ..cobble::Options::default() };
        for k in KNOBS {
            k.apply(self, &mut o);
        }
        o
    }

    /// The merge operator this config uses.
    pub fn merge_kind(&self) -> MergeKind {
        self.merge_operator.unwrap_or_default()
    }

    /// True when flushes and compactions run only when the harness steps them.
    pub fn is_deterministic(&self) -> bool {
        matches!(self.to_options(placeholder_fs()).scheduler, cobble::Scheduler::Manual)
    }

    /// Every knob with its effective value (defaults filled in, spelled as in JSON), in table
    /// order.
    pub fn knobs(&self) -> Vec<(&'static str, String)> {
        let o = self.to_options(placeholder_fs());
        KNOBS.iter().map(|k| (k.name(), k.show(&o))).collect()
    }

    /// The knobs this config sets, in table order.
    pub fn knobs_set(&self) -> Vec<&'static str> {
        KNOBS.iter().filter(|k| k.is_set(self)).map(|k| k.name()).collect()
    }

    /// What the reducer tries: for each knob this config sets, the config with that knob
    /// shrunk (see each knob's `shrink`), in table order.
    pub fn shrink_candidates(&self) -> Vec<(&'static str, EngineConfig)> {
        KNOBS.iter().flat_map(|k| k.shrink(self).into_iter().map(|c| (k.name(), c))).collect()
    }

    /// This config (same name, same seeding) with the [`RECONFIGURABLE`] knobs drawn afresh
    /// from `seed`, as a random config draws them: what `reconfigure` reopens under.
    pub fn reconfigured(&self, seed: u64) -> EngineConfig {
        let drawn = EngineConfig::random(seed);
        let mut c = self.clone();
        for k in KNOBS.iter().filter(|k| RECONFIGURABLE.contains(&k.name())) {
            k.copy(&drawn, &mut c);
        }
        c
    }

    /// A random config drawn from `seed` (named `random-<seed>`): each knob drawn by its
    /// table row's `random`, from its own stream of the seed, or left unset (one time in three
    /// unless the row says otherwise).
    pub fn random(seed: u64) -> EngineConfig {
        let mut c = EngineConfig { name: format!("random-{seed}"), ..EngineConfig::default() };
        for k in KNOBS {
            k.draw(seed, &mut c);
        }
        c
    }
}

/// The knobs a database may be reopened under with other values, everything reading the
/// same: the table format (block, restart and index sizes, bloom and prefix bloom,
/// compression), the caches, and memtable, file and level sizes. Not the comparator or the
/// merge operator (they define the data), the scheduler (replay), whether there is a WAL and
/// its recovery mode (what a crash keeps), nor knobs whose bounds depend on each other.
pub const RECONFIGURABLE: &[&str] = &[
    "memtable_size",
    "block_size",
    "restart_interval",
    "index_block_size",
    "bloom_bits_per_key",
    "prefix_bloom",
    "compression",
    "target_file_size",
    "lbase_max_bytes",
    "level_multiplier",
    "max_open_files",
    "cache_size",
];

/// The names of the knobs whose effective values differ between `a` and `b`, in knob order,
/// each with both values (`block_size: 4096 -> 1`).
pub fn diff(a: &EngineConfig, b: &EngineConfig) -> Vec<String> {
    a.knobs()
        .into_iter()
        .zip(b.knobs())
        .filter(|((_, va), (_, vb))| va != vb)
        .map(|((name, va), (_, vb))| format!("{name}: {va} -> {vb}"))
        .collect()
}

/// Loads every `*.json` in `dir`, sorted by name. A file's `name` must be absent or equal to
/// its file stem.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<EngineConfig>> {
    let mut configs = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .with_context(|| format!("config file name {} is not UTF-8", path.display()))?
            .to_string();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut config = EngineConfig::from_json(&text)
            .with_context(|| format!("parsing {}", path.display()))?;
        if config.name.is_empty() {
            config.name = stem;
        } else if config.name != stem {
            bail!("{}: name `{}` differs from the file name", path.display(), config.name);
        }
        configs.push(config);
    }
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn standard_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/standard")
    }

    fn standard(name: &str) -> EngineConfig {
        load_dir(&standard_dir()).unwrap().into_iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn json_round_trip() {
        let c = EngineConfig {
            name: "x".into(),
            description: Some("why".into()),
            block_size: Some(1),
            prefix_bloom: Some(true),
            compression: Some(CompressionKind::None),
            wal_recovery_mode: Some(WalRecovery::AbsoluteConsistency),
            scheduler: Some(SchedulerKind::Threads(2)),
            ..EngineConfig::default()
        };
        let json = c.to_json();
        assert!(json.contains("\"threads\": 2") && !json.contains("memtable_size"), "{json}");
        assert_eq!(EngineConfig::from_json(&json).unwrap(), c);
        for seed in 0..50 {
            let r = EngineConfig::random(seed);
            assert_eq!(EngineConfig::from_json(&r.to_json()).unwrap(), r);
        }
        let m = EngineConfig::from_json(r#"{"scheduler": "manual"}"#).unwrap();
        assert_eq!(m.scheduler, Some(SchedulerKind::Manual));
        assert_eq!(m.name, "");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_errors() {
        assert!(EngineConfig::from_json(r#"{"block_sise": 1}"#).is_err());
        assert!(EngineConfig::from_json(r#"{"compression": "zstd"}"#).is_err());
        assert!(EngineConfig::from_json(r#"{"block_size": -1}"#).is_err());
    }

    #[test]
    fn empty_config_is_the_engine_default() {
        let o = EngineConfig::default().to_options(placeholder_fs());
        let d = cobble::Options::default();
        assert_eq!(o.memtable_size, d.memtable_size);
        assert_eq!(o.scheduler, d.scheduler);
        assert!(o.prefix_extractor.is_none());
        assert!(diff(&EngineConfig::default(), &EngineConfig::default()).is_empty());
    }

    /// A config setting only `k`, off the engine's default and shrinkable by the reducer,
    /// drawn from `k`'s own random stream.
    fn off_default(k: &dyn Knob) -> EngineConfig {
        (0..1000)
            .map(|seed| {
                let mut c = EngineConfig { name: k.name().into(), ..EngineConfig::default() };
                k.draw(seed, &mut c);
                c
            })
            .find(|c| {
                !diff(&EngineConfig::default(), c).is_empty() && !c.shrink_candidates().is_empty()
            })
            .unwrap_or_else(|| panic!("{}: no random value off the default", k.name()))
    }

    #[test]
    fn every_knob_is_listed_serialized_applied_and_shrunk() {
        let default = EngineConfig::default();
        let names: Vec<&str> = default.knobs().iter().map(|k| k.0).collect();
        assert_eq!(names, KNOBS.iter().map(|k| k.name()).collect::<Vec<_>>());
        let distinct: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(distinct.len(), names.len(), "a knob twice in the table");
        for k in KNOBS {
            let name = k.name();
            let c = off_default(*k);
            assert_eq!(c.knobs_set(), [name]);
            // knobs() lists it with the value set: `apply` and `read` reach the same field.
            let shown = c.knobs().into_iter().find(|(n, _)| *n == name).expect("listed").1;
            assert_eq!(Some(shown), k.show_set(&c), "{name}");
            // to_options changes this knob and no other.
            let d = diff(&default, &c);
            assert_eq!(d.len(), 1, "{name}: {d:?}");
            assert!(d[0].starts_with(&format!("{name}: ")), "{name}: {d:?}");
            // The JSON round trip, under the knob's name.
            let json = c.to_json();
            assert!(json.contains(&format!("\"{name}\"")), "{json}");
            assert_eq!(EngineConfig::from_json(&json).unwrap(), c, "{name}");
            // The reducer's candidates shrink it, and only it.
            let candidates = c.shrink_candidates();
            assert!(!candidates.is_empty(), "{name}");
            for (n, shrunk) in &candidates {
                assert_eq!(*n, name);
                assert_ne!(shrunk, &c, "{name}");
                assert!(diff(&c, shrunk).iter().all(|d| d.starts_with(&format!("{name}: "))));
            }
            // Tumbler's bounds cover it and accept what random configs draw.
            k.check_bounds(&c).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let c = EngineConfig { cache_size: Some(1), ..EngineConfig::default() };
        assert!(diff(&default, &c).contains(&format!("cache_size: {} -> 1", 8 << 20)));
    }

    /// Every field of `cobble::Options` is a knob of the table or named here as deliberately
    /// none: a new engine option does not compile until it is one or the other.
    #[test]
    fn every_engine_option_is_a_knob_or_deliberately_not() {
        let cobble::Options {
            // Not knobs: the runner gives each run its filesystem; the rest stay the defaults.
            fs: _,
            comparator: _,
            create_if_missing: _,
            error_if_exists: _,
            // Knobs of the table (`prefix_extractor` is `prefix_bloom`).
            memtable_size: _,
            memtable_stop_writes_threshold: _,
            disable_wal: _,
            wal_recovery_mode: _,
            block_size: _,
            restart_interval: _,
            index_block_size: _,
            bloom_bits_per_key: _,
            prefix_extractor: _,
            compression: _,
            target_file_size: _,
            l0_compaction_threshold: _,
            l0_stop_writes_threshold: _,
            lbase_max_bytes: _,
            level_multiplier: _,
            max_manifest_file_size: _,
            max_open_files: _,
            cache_size: _,
            scheduler: _,
            merge_operator: _,
        } = cobble::Options::default();
        assert_eq!(KNOBS.len(), 20, "the knobs named above");
    }

    #[test]
    fn to_options_sets_the_engine_values() {
        let c = EngineConfig {
            wal_recovery_mode: Some(WalRecovery::AbsoluteConsistency),
            block_size: Some(1),
            prefix_bloom: Some(true),
            compression: Some(CompressionKind::None),
            scheduler: Some(SchedulerKind::Manual),
            merge_operator: Some(MergeKind::Nested),
            ..EngineConfig::default()
        };
        let o = c.to_options(placeholder_fs());
        assert_eq!(o.wal_recovery_mode, cobble::WalRecoveryMode::AbsoluteConsistency);
        assert_eq!(o.compression, cobble::Compression::None);
        assert_eq!(o.scheduler, cobble::Scheduler::Manual);
        assert_eq!(o.prefix_extractor.as_ref().unwrap().prefix(b"ab@c"), Some(&b"ab"[..]));
        assert_eq!(o.block_size, 1);
        assert_eq!(o.merge_operator.name(), "tumbler.nested");
    }

    #[test]
    fn diff_names_only_effective_differences() {
        let a = EngineConfig { name: "a".into(), ..EngineConfig::default() };
        let b = EngineConfig {
            name: "b".into(),
            description: Some("ignored".into()),
            block_size: Some(cobble::Options::default().block_size),
            cache_size: Some(1),
            ..EngineConfig::default()
        };
        let d = diff(&a, &b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].starts_with("cache_size: "), "{d:?}");
    }

    #[test]
    fn reconfigured_configs_change_only_the_reconfigurable_knobs() {
        for name in ["default", "tiny_everything", "wal_disabled", "threads_2"] {
            let c = standard(name);
            let mut changed = std::collections::BTreeSet::new();
            for seed in 0..20 {
                let r = c.reconfigured(seed);
                assert_eq!(r, c.reconfigured(seed), "deterministic");
                assert_eq!((&r.name, &r.seeded_as), (&c.name, &c.seeded_as));
                for k in KNOBS {
                    k.check_bounds(&r).unwrap_or_else(|e| panic!("{name} {seed}: {e}"));
                }
                let fs = std::sync::Arc::new(cobble::MemFs::new());
                let db = cobble::Db::open(r.to_options(fs), "/db")
                    .unwrap_or_else(|e| panic!("{name} {seed}: the engine refuses it: {e}"));
                db.close().unwrap();
                for d in diff(&c, &r) {
                    let knob = d.split(':').next().unwrap().to_string();
                    assert!(RECONFIGURABLE.contains(&knob.as_str()), "{name}: {d}");
                    changed.insert(knob);
                }
            }
            // Twenty draws move most of them.
            assert!(changed.len() * 2 > RECONFIGURABLE.len(), "{name}: {changed:?}");
        }
        for knob in RECONFIGURABLE {
            assert!(KNOBS.iter().any(|k| k.name() == *knob), "{knob} is no knob");
        }
    }

    #[test]
    fn random_configs_are_deterministic_and_varied() {
        assert_eq!(EngineConfig::random(5), EngineConfig::random(5));
        let all: Vec<EngineConfig> = (0..40).map(EngineConfig::random).collect();
        let distinct: std::collections::BTreeSet<String> =
            all.iter().map(|c| c.to_json()).collect();
        assert_eq!(distinct.len(), all.len());
        let threaded = all.iter().filter(|c| !c.is_deterministic()).count();
        assert!((1..20).contains(&threaded), "{threaded} of 40 threaded: about 1 in 4 expected");
        for c in &all {
            let o = c.to_options(placeholder_fs());
            assert!(o.l0_stop_writes_threshold > o.l0_compaction_threshold, "{}", c.name);
            assert!(o.memtable_stop_writes_threshold >= 2);
            assert!(o.block_size >= 1 && o.target_file_size >= 1 && o.level_multiplier >= 2);
        }
        // Each knob is both set and left default somewhere in 40 draws.
        for knob in EngineConfig::default().knobs().iter().map(|k| k.0) {
            let differing = all
                .iter()
                .filter(|c| {
                    diff(&EngineConfig::default(), c)
                        .iter()
                        .any(|d| d.starts_with(&format!("{knob}:")))
                })
                .count();
            if knob != "scheduler" {
                assert!(differing > 0 && differing < all.len(), "{knob}: {differing}");
            }
        }
    }

    #[test]
    fn standard_configs_load() {
        let configs = load_dir(&standard_dir()).unwrap();
        assert!(configs.len() >= 20, "{} configs", configs.len());
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for want in
            ["default", "manual", "threads_1", "threads_2", "tiny_everything", "wal_disabled"]
        {
            assert!(names.contains(&want), "missing {want}");
        }
        // Only the threads configs are nondeterministic.
        for c in &configs {
            assert_eq!(c.is_deterministic(), !c.name.starts_with("threads"), "{}", c.name);
            assert!(c.description.is_some(), "{} has no description", c.name);
        }
        // No two standard configs are the same engine setup.
        let setups: std::collections::BTreeSet<_> = configs.iter().map(|c| c.knobs()).collect();
        assert_eq!(setups.len(), configs.len());
    }

    #[test]
    fn load_dir_checks_names_and_reports_bad_files() {
        let dir = std::env::temp_dir().join(format!("tumbler-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.json"), r#"{"cache_size": 1}"#).unwrap();
        std::fs::write(dir.join("a.json"), r#"{"name": "a"}"#).unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let names: Vec<String> = load_dir(&dir).unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["a", "b"]);
        std::fs::write(dir.join("c.json"), r#"{"name": "other"}"#).unwrap();
        assert!(load_dir(&dir).unwrap_err().to_string().contains("differs from the file name"));
        std::fs::write(dir.join("c.json"), r#"{"bogus": 1}"#).unwrap();
        let e = format!("{:#}", load_dir(&dir).unwrap_err());
        assert!(e.contains("c.json") && e.contains("bogus"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
