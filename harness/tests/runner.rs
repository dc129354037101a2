//! The runner and its oracles end to end: standard configs pass, runs are deterministic,
//! planted engine bugs are caught, and the durability check judges hand-made recoveries.

use std::path::Path;

use tumbler::check::run_seed;
use tumbler::config::{self, EngineConfig};
use tumbler::model::{Model, Write};
use tumbler::ops::{self, Weights};
use tumbler::runner::{check_recovery, run_config, Oracle, RunSettings};
use tumbler::sim::PlantedFault;

fn standard() -> Vec<EngineConfig> {
    config::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/standard")).unwrap()
}

fn settings(seed: u64, error_rate: f64) -> RunSettings {
    RunSettings { seed, error_rate, planted: None }
}

#[test]
fn standard_and_random_configs_pass_a_seed_with_crashes_and_errors() {
    let mut configs = standard();
    configs.extend(
        (0..3)
            .map(|i| EngineConfig { name: format!("random_{i}"), ..EngineConfig::random(100 + i) }),
    );
    let ops = ops::generate(5, 600, &Weights::default());
    let report = run_seed(&ops, &configs, &settings(5, 0.002), false);
    for f in &report.failures {
        eprintln!("{} {:?} {}\n{}", f.config, f.failure.oracle, f.failure.message, f.detail);
    }
    assert!(report.failures.is_empty());
    assert_eq!(report.runs.len(), configs.len());
    assert_eq!(report.stats.ops_executed, 600 * configs.len() as u64);
    assert!(report.stats.crashes > 0, "{:?}", report.stats);
    assert!(report.stats.unsynced_bytes_dropped > 0, "{:?}", report.stats);
}

#[test]
fn same_seed_twice_gives_byte_identical_histories_and_images() {
    let configs: Vec<EngineConfig> =
        standard().into_iter().filter(|c| c.is_deterministic()).take(6).collect();
    let ops = ops::generate(9, 500, &Weights::default());
    for c in &configs {
        let a = run_config(&ops, c, &settings(9, 0.002));
        let b = run_config(&ops, c, &settings(9, 0.002));
        assert!(a.failure.is_none(), "{}: {:?}", c.name, a.failure);
        assert_eq!(a.history, b.history, "{}", c.name);
        assert_eq!(a.image_hash, b.image_hash, "{}", c.name);
    }
    // And the determinism oracle itself agrees.
    let report = run_seed(&ops, &configs, &settings(9, 0.002), true);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

#[test]
fn planted_faults_are_reported_as_durability_failures() {
    let configs: Vec<EngineConfig> = standard()
        .into_iter()
        .filter(|c| c.name == "default" || c.name == "tiny_memtable")
        .collect();
    assert_eq!(configs.len(), 2);
    let ops = ops::generate(3, 2000, &Weights::default());
    for fault in [PlantedFault::SkipWalSync, PlantedFault::SkipSyncDir] {
        let s = RunSettings { planted: Some(fault), ..settings(3, 0.0) };
        let report = run_seed(&ops, &configs, &s, false);
        assert!(
            report.failures.iter().any(|f| f.failure.oracle == Oracle::Durability),
            "{fault}: {:?}",
            report.failures
        );
        // Without the planted fault the same run passes.
        let clean = run_seed(&ops, &configs, &settings(3, 0.0), false);
        assert!(clean.failures.is_empty(), "{:?}", clean.failures);
    }
}

fn put(k: &str, v: &str) -> Write {
    Write::Put { key: k.as_bytes().to_vec(), value: v.as_bytes().to_vec() }
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

#[test]
fn durability_check_on_hand_made_recoveries() {
    let mut m = Model::new();
    m.apply(put("a", "1")).unwrap(); // seq 1
    m.apply_batch(vec![put("b", "2"), Write::Delete { key: b"a".to_vec() }]).unwrap(); // 2..3
    m.apply(put("c", "3")).unwrap(); // seq 4

    // Every whole-commit prefix at or after the synced point is acceptable.
    assert_eq!(check_recovery(&m, 1, 1, &kv(&[("a", "1")])), Ok(()));
    assert_eq!(check_recovery(&m, 1, 3, &kv(&[("b", "2")])), Ok(()));
    assert_eq!(check_recovery(&m, 4, 4, &kv(&[("b", "2"), ("c", "3")])), Ok(()));
    assert_eq!(check_recovery(&m, 0, 0, &[]), Ok(()));

    // A lost synced write.
    let e = check_recovery(&m, 3, 1, &kv(&[("a", "1")])).unwrap_err();
    assert!(e.contains("synced"), "{e}");
    // Half a batch.
    let e = check_recovery(&m, 0, 2, &kv(&[("a", "1"), ("b", "2")])).unwrap_err();
    assert!(e.contains("inside a batch"), "{e}");
    // Something never written.
    let e = check_recovery(&m, 0, 5, &[]).unwrap_err();
    assert!(e.contains("past the last write"), "{e}");
    // The right seqnum but the wrong contents (a hole: b's batch applied without a's delete).
    let e = check_recovery(&m, 0, 3, &kv(&[("a", "1"), ("b", "2")])).unwrap_err();
    assert!(e.contains("differs"), "{e}");
    // A value from the future at an earlier seqnum.
    let e = check_recovery(&m, 0, 1, &kv(&[("a", "1"), ("c", "3")])).unwrap_err();
    assert!(e.contains("differs"), "{e}");
}
