//! Engine configs: named, JSON-serializable sets of `cobble::Options` knobs
//! (`configs/standard/*.json` always run; random ones come from a seed).
//!
//! Every knob is optional; an absent knob takes `cobble::Options::default()`'s value, so a
//! config file lists only what it changes and follows the engine's defaults when they move.
//! Unknown fields are an error (a typo must not silently test the default).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::merge_ops::MergeKind;
use crate::ops::generator::child_rng;

/// How WAL recovery treats a damaged log (`cobble::WalRecoveryMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalRecovery {
    TolerateCorruptTail,
    AbsoluteConsistency,
}

/// Block compression (`cobble::Compression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompressionKind {
    None,
    Lz4,
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

/// A named engine configuration. See the module docs for defaults.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// The config's name; a file's name must match its stem (it may be left out there).
    pub name: String,
    /// What the config is for (not a knob).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memtable_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memtable_stop_writes_threshold: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_wal: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_recovery_mode: Option<WalRecovery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_interval: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_block_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bloom_bits_per_key: Option<usize>,
    /// `true`: prefix bloom filters on the bytes before the first `@`
    /// (`DelimiterPrefix(b'@')`), matching the generator's `prefix@suffix` keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_bloom: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_file_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l0_compaction_threshold: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l0_stop_writes_threshold: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lbase_max_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level_multiplier: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_manifest_file_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerKind>,
    /// The merge operator (`string_append`, Cobble's default, or `nested`; see `merge_ops`).
    /// Only configs with the same operator are diffed against each other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_operator: Option<MergeKind>,
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
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = self.$field {
                    o.$field = v;
                }
            )*};
        }
        set!(
            memtable_size,
            memtable_stop_writes_threshold,
            disable_wal,
            block_size,
            restart_interval,
            index_block_size,
            bloom_bits_per_key,
            target_file_size,
            l0_compaction_threshold,
            l0_stop_writes_threshold,
            lbase_max_bytes,
            level_multiplier,
            max_manifest_file_size,
            max_open_files,
            cache_size
        );
        if let Some(m) = self.wal_recovery_mode {
            o.wal_recovery_mode = match m {
                WalRecovery::TolerateCorruptTail => cobble::WalRecoveryMode::TolerateCorruptTail,
                WalRecovery::AbsoluteConsistency => cobble::WalRecoveryMode::AbsoluteConsistency,
            };
        }
        if let Some(p) = self.prefix_bloom {
            o.prefix_extractor = p.then(|| {
                Arc::new(cobble::DelimiterPrefix(b'@')) as Arc<dyn cobble::PrefixExtractor>
            });
        }
        if let Some(c) = self.compression {
            o.compression = match c {
                CompressionKind::None => cobble::Compression::None,
                CompressionKind::Lz4 => cobble::Compression::Lz4,
            };
        }
        o.merge_operator = self.merge_kind().engine_operator();
        if let Some(s) = self.scheduler {
            o.scheduler = match s {
                SchedulerKind::Manual => cobble::Scheduler::Manual,
                SchedulerKind::Threads(n) => {
                    cobble::Scheduler::Threads { max_concurrent_compactions: n }
                }
            };
        }
        o
    }

    /// The merge operator this config uses.
    pub fn merge_kind(&self) -> MergeKind {
        self.merge_operator.unwrap_or_default()
    }

    /// True when flushes and compactions run only when the harness steps them.
    pub fn is_deterministic(&self) -> bool {
        matches!(
            self.to_options(Arc::new(cobble::MemFs::new())).scheduler,
            cobble::Scheduler::Manual
        )
    }

    /// Every knob with its effective value (defaults filled in), in a fixed order.
    pub fn knobs(&self) -> Vec<(&'static str, String)> {
        let o = self.to_options(Arc::new(cobble::MemFs::new()));
        vec![
            ("memtable_size", o.memtable_size.to_string()),
            ("memtable_stop_writes_threshold", o.memtable_stop_writes_threshold.to_string()),
            ("disable_wal", o.disable_wal.to_string()),
            ("wal_recovery_mode", format!("{:?}", o.wal_recovery_mode)),
            ("block_size", o.block_size.to_string()),
            ("restart_interval", o.restart_interval.to_string()),
            ("index_block_size", o.index_block_size.to_string()),
            ("bloom_bits_per_key", o.bloom_bits_per_key.to_string()),
            ("prefix_bloom", o.prefix_extractor.is_some().to_string()),
            ("compression", format!("{:?}", o.compression)),
            ("target_file_size", o.target_file_size.to_string()),
            ("l0_compaction_threshold", o.l0_compaction_threshold.to_string()),
            ("l0_stop_writes_threshold", o.l0_stop_writes_threshold.to_string()),
            ("lbase_max_bytes", o.lbase_max_bytes.to_string()),
            ("level_multiplier", o.level_multiplier.to_string()),
            ("max_manifest_file_size", o.max_manifest_file_size.to_string()),
            ("max_open_files", o.max_open_files.to_string()),
            ("cache_size", o.cache_size.to_string()),
            ("scheduler", format!("{:?}", o.scheduler)),
            ("merge_operator", self.merge_kind().name().to_string()),
        ]
    }

    /// A random config drawn from `seed` (named `random-<seed>`). Each knob is left at its
    /// default with probability 1/3, else drawn from (log-uniform for sizes):
    ///
    /// | knob | range |
    /// |---|---|
    /// | memtable_size | 4 KiB ..= 8 MiB |
    /// | memtable_stop_writes_threshold | 2 ..= 6 |
    /// | disable_wal | true 1 in 8 |
    /// | wal_recovery_mode | either |
    /// | block_size | 1 ..= 64 KiB |
    /// | restart_interval | 1 ..= 32 |
    /// | index_block_size | 1 ..= 16 KiB |
    /// | bloom_bits_per_key | 0 ..= 20 |
    /// | prefix_bloom | either |
    /// | compression | either |
    /// | target_file_size | 1 ..= 8 MiB |
    /// | l0_compaction_threshold | 1 ..= 8 |
    /// | l0_stop_writes_threshold | l0_compaction_threshold + 1 ..= + 16 (with its default 4 when that is unset) |
    /// | lbase_max_bytes | 1 ..= 64 MiB |
    /// | level_multiplier | 2 ..= 10 |
    /// | max_manifest_file_size | 1 ..= 1 MiB |
    /// | max_open_files | 1 ..= 1000 |
    /// | cache_size | 0 ..= 16 MiB |
    /// | merge_operator | either |
    /// | scheduler | `Manual`, or `Threads(1..=4)` one time in four |
    ///
    /// Threaded random configs put the production scheduler under every oracle; their results
    /// are checked, not their timing, so their failures may not replay exactly.
    pub fn random(seed: u64) -> EngineConfig {
        let mut rng = child_rng(seed, "config");
        let r = &mut rng;
        fn maybe<T>(
            r: &mut rand_chacha::ChaCha8Rng,
            f: impl FnOnce(&mut rand_chacha::ChaCha8Rng) -> T,
        ) -> Option<T> {
            if r.gen_ratio(1, 3) {
                None
            } else {
                Some(f(r))
            }
        }
        let l0_compaction_threshold = maybe(r, |r| r.gen_range(1..=8));
        let l0_base =
            l0_compaction_threshold.unwrap_or(cobble::Options::default().l0_compaction_threshold);
        EngineConfig {
            name: format!("random-{seed}"),
            description: None,
            memtable_size: maybe(r, |r| log_uniform(r, 4 << 10, 8 << 20) as usize),
            memtable_stop_writes_threshold: maybe(r, |r| r.gen_range(2..=6)),
            disable_wal: maybe(r, |r| r.gen_ratio(1, 8)),
            wal_recovery_mode: maybe(r, |r| {
                if r.gen_bool(0.5) {
                    WalRecovery::TolerateCorruptTail
                } else {
                    WalRecovery::AbsoluteConsistency
                }
            }),
            block_size: maybe(r, |r| log_uniform(r, 1, 64 << 10) as usize),
            restart_interval: maybe(r, |r| r.gen_range(1..=32)),
            index_block_size: maybe(r, |r| log_uniform(r, 1, 16 << 10) as usize),
            bloom_bits_per_key: maybe(r, |r| r.gen_range(0..=20)),
            prefix_bloom: maybe(r, |r| r.gen_bool(0.5)),
            compression: maybe(r, |r| {
                if r.gen_bool(0.5) {
                    CompressionKind::None
                } else {
                    CompressionKind::Lz4
                }
            }),
            target_file_size: maybe(r, |r| log_uniform(r, 1, 8 << 20)),
            l0_compaction_threshold,
            l0_stop_writes_threshold: maybe(r, |r| l0_base + r.gen_range(1..=16)),
            lbase_max_bytes: maybe(r, |r| log_uniform(r, 1, 64 << 20)),
            level_multiplier: maybe(r, |r| r.gen_range(2..=10)),
            max_manifest_file_size: maybe(r, |r| log_uniform(r, 1, 1 << 20)),
            max_open_files: maybe(r, |r| log_uniform(r, 1, 1000) as usize),
            cache_size: maybe(r, |r| {
                if r.gen_ratio(1, 10) {
                    0
                } else {
                    log_uniform(r, 1, 16 << 20) as usize
                }
            }),
            // Drawn last, so the knobs above keep the values older builds drew for a seed.
            merge_operator: maybe(r, |r| {
                if r.gen_bool(0.5) {
                    MergeKind::StringAppend
                } else {
                    MergeKind::Nested
                }
            }),
            scheduler: Some(if r.gen_ratio(1, 4) {
                SchedulerKind::Threads(r.gen_range(1..=4))
            } else {
                SchedulerKind::Manual
            }),
        }
    }
}

/// A value in `lo..=hi` whose magnitude (power of two) is uniform.
fn log_uniform(r: &mut rand_chacha::ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    assert!(0 < lo && lo <= hi);
    let e = r.gen_range(lo.ilog2()..=hi.ilog2());
    let base = 1u64 << e;
    r.gen_range(base..=base.saturating_mul(2) - 1).clamp(lo, hi)
}

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
        let o = EngineConfig::default().to_options(Arc::new(cobble::MemFs::new()));
        let d = cobble::Options::default();
        assert_eq!(o.memtable_size, d.memtable_size);
        assert_eq!(o.scheduler, d.scheduler);
        assert!(o.prefix_extractor.is_none());
        assert!(diff(&EngineConfig::default(), &EngineConfig::default()).is_empty());
    }

    #[test]
    fn to_options_sets_every_knob() {
        let c = EngineConfig {
            memtable_size: Some(4096),
            memtable_stop_writes_threshold: Some(2),
            disable_wal: Some(true),
            wal_recovery_mode: Some(WalRecovery::AbsoluteConsistency),
            block_size: Some(1),
            restart_interval: Some(1),
            index_block_size: Some(1),
            bloom_bits_per_key: Some(0),
            prefix_bloom: Some(true),
            compression: Some(CompressionKind::None),
            target_file_size: Some(1),
            l0_compaction_threshold: Some(1),
            l0_stop_writes_threshold: Some(2),
            lbase_max_bytes: Some(1),
            level_multiplier: Some(2),
            max_manifest_file_size: Some(1),
            max_open_files: Some(1),
            cache_size: Some(1),
            scheduler: Some(SchedulerKind::Manual),
            merge_operator: Some(MergeKind::Nested),
            ..EngineConfig::default()
        };
        let o = c.to_options(Arc::new(cobble::MemFs::new()));
        assert_eq!(o.wal_recovery_mode, cobble::WalRecoveryMode::AbsoluteConsistency);
        assert_eq!(o.compression, cobble::Compression::None);
        assert_eq!(o.scheduler, cobble::Scheduler::Manual);
        assert_eq!(o.prefix_extractor.as_ref().unwrap().prefix(b"ab@c"), Some(&b"ab"[..]));
        assert_eq!((o.block_size, o.cache_size, o.level_multiplier), (1, 1, 2));
        // Every knob differs from the default, so diff names all of them.
        let d = diff(&EngineConfig::default(), &c);
        assert_eq!(d.len(), c.knobs().len(), "{d:?}");
        assert!(d.contains(&"block_size: 4096 -> 1".to_string()), "{d:?}");
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
    fn random_configs_are_deterministic_and_varied() {
        assert_eq!(EngineConfig::random(5), EngineConfig::random(5));
        let all: Vec<EngineConfig> = (0..40).map(EngineConfig::random).collect();
        let distinct: std::collections::BTreeSet<String> =
            all.iter().map(|c| c.to_json()).collect();
        assert_eq!(distinct.len(), all.len());
        let threaded = all.iter().filter(|c| !c.is_deterministic()).count();
        assert!((1..20).contains(&threaded), "{threaded} of 40 threaded: about 1 in 4 expected");
        for c in &all {
            let o = c.to_options(Arc::new(cobble::MemFs::new()));
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
