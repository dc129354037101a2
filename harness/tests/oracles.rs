//! Each oracle added so that bugs cannot slip past Tumbler, shown catching its violation:
//! a planted error that SimFs never injected (attribution), a reordered merge (the independent
//! model), a swallowed sync failure, and the fault classes a run reports reaching.

use std::path::Path;

use tumbler::check::run_seed;
use tumbler::config::{self, EngineConfig};
use tumbler::ops::{self, Weights};
use tumbler::runner::{run_config, Oracle, RunSettings};
use tumbler::sim::PlantedFault;

fn config(name: &str) -> EngineConfig {
    config::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/standard"))
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap()
}

fn run(
    cfg: &str,
    seed: u64,
    n: usize,
    error_rate: f64,
    planted: Option<PlantedFault>,
) -> tumbler::runner::ConfigRun {
    let ops = ops::generate(seed, n, &Weights::default());
    run_config(&ops, &config(cfg), &RunSettings { seed, error_rate, planted })
}

#[test]
fn an_error_no_fault_explains_fails_under_the_engine_oracle() {
    let r = run("manual", 1, 2000, 0.0, Some(PlantedFault::SpuriousEio));
    let f = r.failure.expect("a spurious EIO must not pass");
    assert_eq!(f.oracle, Oracle::Engine, "{f:?}");
    assert!(f.message.contains("cites no injected fault"), "{}", f.message);
    // The same run without the plant passes.
    assert!(run("manual", 1, 2000, 0.0, None).failure.is_none());
}

#[test]
fn merge_operands_applied_in_the_wrong_order_fail_the_model() {
    for cfg in ["default", "merge_nested"] {
        let r = run(cfg, 1, 2000, 0.0, Some(PlantedFault::ReverseMerge));
        let f = r.failure.unwrap_or_else(|| panic!("{cfg}: reversed merges must not pass"));
        assert!(matches!(f.oracle, Oracle::Model | Oracle::Durability), "{cfg}: {f:?}");
    }
}

#[test]
fn a_swallowed_sync_failure_is_caught() {
    // Enough injected sync errors (and memtable switches, which sync the WAL) that one
    // strikes a WAL sync in many seeds; every failure is the swallowed fault (or, when a
    // crash comes first, the synced writes it lost), and the same runs pass without the plant.
    // Seeds until four are caught (the generator's version moves which ones strike).
    let mut caught = 0;
    for seed in 1..=24 {
        if caught == 4 {
            break;
        }
        let r = run("tiny_memtable", seed, 1500, 0.05, Some(PlantedFault::SwallowSyncError));
        if let Some(f) = r.failure {
            let swallowed = f.oracle == Oracle::Engine && f.message.contains("swallowed");
            let lost = f.oracle == Oracle::Durability && f.message.contains("were synced");
            assert!(swallowed || lost, "{f:?}");
            caught += 1;
        }
    }
    assert!(caught >= 4, "a WAL sync error reported as success went unnoticed in 24 seeds");
    for seed in 1..=3 {
        let r = run("tiny_memtable", seed, 1500, 0.05, None);
        assert!(r.failure.is_none(), "{:?}", r.failure);
    }
}

#[test]
fn obsolete_files_left_behind_fail_liveness() {
    // Writes, flushes and background steps only: no restart or crash, whose close-time check
    // would see the files first.
    let w = Weights::from_json(r#"{"put": 20, "delete": 5, "flush": 2, "background_steps": 4}"#)
        .unwrap();
    let ops = ops::generate(2, 2000, &w);
    let settings =
        RunSettings { seed: 2, error_rate: 0.0, planted: Some(PlantedFault::KeepObsoleteTables) };
    let r = run_config(&ops, &config("small_levels"), &settings);
    let f = r.failure.expect("tables never removed must not pass");
    assert_eq!(f.oracle, Oracle::Liveness, "{f:?}");
    assert!(f.message.contains("obsolete files left after draining"), "{}", f.message);
}

#[test]
fn runs_report_short_writes_corrupt_reads_rot_and_where_faults_landed() {
    let cfgs: Vec<EngineConfig> =
        ["default", "tiny_memtable", "small_levels", "manual"].iter().map(|n| config(n)).collect();
    let ops = ops::generate(11, 3000, &Weights::default());
    let report =
        run_seed(&ops, &cfgs, &RunSettings { seed: 11, error_rate: 0.01, planted: None }, false);
    for f in &report.failures {
        eprintln!("{} {:?} {}\n{}", f.config, f.failure.oracle, f.failure.message, f.detail);
    }
    assert!(report.failures.is_empty());
    let s = &report.stats.faults;
    assert!(s.short_writes > 0, "{s:?}");
    assert!(s.corrupt_reads > 0, "{s:?}");
    assert!(s.coverage.keys().any(|k| k.starts_with("crash/")), "{:?}", s.coverage);
    assert!(s.coverage.keys().any(|k| k.starts_with("error/wal/")), "{:?}", s.coverage);
}

#[test]
fn threaded_configs_run_under_every_oracle() {
    for name in ["threads_2", "threads_3_tiny", "threads_4_tiny"] {
        let r = run(name, 4, 1500, 0.002, None);
        assert!(r.failure.is_none(), "{name}: {:?}", r.failure);
        assert!(r.stats.crashes > 0, "{name}: {:?}", r.stats);
        // Some restarts closed the database while client threads still called it.
        let raced = r.stats.faults.coverage.get("close-race/-/close").copied().unwrap_or(0);
        assert!(raced > 0, "{name}: no racing close in {} restarts", r.stats.restarts);
    }
}

#[test]
fn after_a_poisoning_fault_every_way_of_carrying_on_is_taken_and_checked() {
    // A high error rate poisons often; each recovery (reopen in place, resume, and the three
    // crashes) is checked against the model like any other.
    // Each poisoning picks one of five ways by seed, and a failed sync fails all or part of
    // what it covers: seeds run until every way and both kinds of failed sync were seen
    // (usually within eight: dozens of poisonings), at most 24.
    let mut seen = std::collections::BTreeMap::new();
    let all_seen = |seen: &std::collections::BTreeMap<String, u64>| {
        ["reopen", "resume", "crash-keep", "crash-torn", "crash-drop"]
            .iter()
            .all(|w| seen.contains_key(&format!("poison/-/{w}")))
            && ["failed-sync-all/", "failed-sync-part/"]
                .iter()
                .all(|p| seen.keys().any(|k| k.starts_with(p)))
    };
    for seed in 1..=24 {
        if all_seen(&seen) {
            break;
        }
        let r = run("tiny_memtable", seed, 1500, 0.02, None);
        assert!(r.failure.is_none(), "seed {seed}: {:?}", r.failure);
        for (k, v) in r.stats.faults.coverage {
            if k.starts_with("poison/") || k.starts_with("failed-sync-") {
                *seen.entry(k).or_insert(0) += v;
            }
        }
    }
    for way in ["reopen", "resume", "crash-keep", "crash-torn", "crash-drop"] {
        assert!(seen.contains_key(&format!("poison/-/{way}")), "{way} never taken: {seen:?}");
    }
    assert!(seen.keys().any(|k| k.starts_with("failed-sync-all/")), "{seen:?}");
    assert!(seen.keys().any(|k| k.starts_with("failed-sync-part/")), "{seen:?}");
}

#[test]
fn a_table_discarded_after_a_failed_manifest_sync_is_caught() {
    // A failed sync promises nothing: when its edit was durable after all, the recovery that
    // keeps what it left (reopen in place, a keep crash) finds the manifest naming a missing
    // table. Frequent sync failures, small memtables: many flushes meet one.
    let mut caught = 0;
    // About one seed in seven meets the shape: thirty give a margin against chance.
    for seed in 1..=30 {
        let r = run("tiny_memtable", seed, 1500, 0.02, Some(PlantedFault::DeleteAfterFailedSync));
        if let Some(f) = r.failure {
            assert!(matches!(f.oracle, Oracle::Durability | Oracle::Engine), "seed {seed}: {f:?}");
            caught += 1;
        }
    }
    assert!(caught >= 2, "tables discarded after failed manifest syncs: {caught} of 30 caught");
}

#[test]
fn a_checkpoint_that_is_not_durable_when_made_fails_durability() {
    // `b@1` is not synced in the database, but the checkpoint copies it and must sync it;
    // the crash then loses it from the database only.
    let text = "# tumbler ops v1\nput \"a@1\" \"v1\"\nflush\nput \"b@1\" \"v2\"\ncheckpoint\nput \"c@1\" \"v3\"\n\
                crash drop\nget \"b@1\"\ncheckpoint\n";
    let ops = ops::parse(text).unwrap().ops;
    for cfg in ["manual", "wal_disabled", "tiny_everything"] {
        let settings = RunSettings { seed: 1, error_rate: 0.0, planted: None };
        let r = run_config(&ops, &config(cfg), &settings);
        assert!(r.failure.is_none(), "{cfg}: {:?}", r.failure);
        // A filesystem that never syncs a directory: the checkpoint's name is not durable.
        let settings = RunSettings { planted: Some(PlantedFault::SkipSyncDir), ..settings };
        let f = run_config(&ops, &config(cfg), &settings).failure.expect("a lost checkpoint");
        assert_eq!(f.oracle, Oracle::Durability, "{cfg}: {f:?}");
        assert_eq!(f.op_index, Some(3), "{cfg}: {f:?}");
        assert!(f.message.contains("checkpoint /checkpoint-0"), "{cfg}: {}", f.message);
    }
}
