//! End-to-end test of `tumbler reduce`: a planted-fault failure saved by a run is shrunk to a
//! handful of ops that still fail the same way, under a config with only necessary knobs.

use std::path::{Path, PathBuf};

use tumbler::artifacts;
use tumbler::check;
use tumbler::config::{self, EngineConfig};
use tumbler::ops::{self, Weights};
use tumbler::reduce::{self, Signature};
use tumbler::runner::{Oracle, RunSettings};
use tumbler::sim::PlantedFault;

fn standard_config(name: &str) -> EngineConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/standard");
    config::load_dir(&dir).unwrap().into_iter().find(|c| c.name == name).unwrap()
}

/// Runs seed `seed` like `tumbler run --ops <n> --plant skip-wal-sync --out <dir>` with one
/// config and returns the failure directory.
fn saved_failure(seed: u64, n: usize, config: EngineConfig) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("reduce-{seed}-{n}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // The first seed from `seed` on that the planted fault fails: which seeds do depends on
    // the generator's version, the reducer's behaviour on the failure does not.
    let configs = vec![config];
    for seed in seed..seed + 20 {
        let file = ops::generate_file(seed, n, &Weights::default());
        let settings =
            RunSettings { seed, error_rate: 0.0005, planted: Some(PlantedFault::SkipWalSync) };
        let report = check::run_seed(&file.ops, &configs, &settings, false);
        if !report.failures.is_empty() {
            artifacts::write(&dir, &file, &configs, &settings, &report).unwrap();
            return dir;
        }
    }
    panic!("no seed of 20 from {seed} fails under the planted fault")
}

#[test]
fn reduces_a_planted_fault_to_a_few_ops_and_necessary_knobs() {
    let original = standard_config("tiny_everything");
    let dir = saved_failure(3, 600, original.clone());
    let saved = artifacts::read(&dir).unwrap();
    let r = reduce::reduce(&saved, None).unwrap();
    assert_eq!(r.signature.oracle, Oracle::Durability);
    assert_eq!(r.original_ops, 600);
    assert!(r.case.ops.len() <= 10, "reduced to {} ops", r.case.ops.len());
    assert_eq!(r.case.error_rate, 0.0, "injected errors are not needed for this failure");

    // Every knob left is needed: putting any one back to its default loses the failure.
    let target = r.case.configs.last().unwrap();
    assert_eq!(r.case.configs.len(), 1);
    assert!(
        target.knobs_set().len() < original.knobs_set().len(),
        "knobs {:?}",
        target.knobs_set()
    );
    for (knob, shrunk) in target.shrink_candidates() {
        let case = reduce::Case { configs: vec![shrunk], ..r.case.clone() };
        let f = reduce::run_case(&case, &saved.settings, false);
        assert!(
            f.is_none_or(|f| Signature::of(&f, &case.ops) != r.signature),
            "knob {knob} is not needed"
        );
    }

    // The output directory replays like a saved failure and fails with the same signature.
    let out = dir.join("reduced");
    reduce::write_output(&out, &r).unwrap();
    let replayed = artifacts::read(&out).unwrap();
    assert_eq!(replayed.file.ops, r.case.ops);
    assert_eq!(replayed.settings.seed, saved.settings.seed);
    assert_eq!(replayed.settings.planted, Some(PlantedFault::SkipWalSync));
    ops::validate(&replayed.file.ops).unwrap();
    // Renamed, but seeded as the candidates were: the run's decisions hang on that name.
    assert_eq!(replayed.configs[0].name, "tiny_everything-reduced");
    assert_eq!(replayed.configs[0].seeded_as.as_deref(), Some("tiny_everything"));
    let report = check::run_seed(&replayed.file.ops, &replayed.configs, &replayed.settings, false);
    let f = &report.failures.first().expect("the reduced case still fails").failure;
    assert_eq!(Signature::of(f, &replayed.file.ops), r.signature);
    assert!(out.join("repro.sh").exists() && out.join("failure.txt").exists());

    // The corpus entry parses to the same ops and names the minimal config on one line.
    let entry = std::fs::read_to_string(out.join("corpus_entry.ops")).unwrap();
    let parsed = ops::parse(&entry).unwrap();
    assert_eq!(parsed.ops, r.case.ops);
    assert_eq!(parsed.seed, Some(saved.settings.seed));
    assert!(parsed.generator.is_some());
    let config_lines: Vec<&str> =
        entry.lines().filter_map(|l| l.strip_prefix("# config: ")).collect();
    assert_eq!(config_lines.len(), 1);
    let config = EngineConfig::from_json(config_lines[0]).unwrap();
    assert_eq!(config, EngineConfig { description: None, ..replayed.configs[0].clone() });
    assert!(entry.contains("# knobs of tiny_everything-reduced: "), "{entry}");
    assert!(entry.contains(&format!("# symptom: {}: ", r.signature)), "{entry}");
    assert!(entry.contains("# planted: skip-wal-sync\n"), "{entry}");
    assert!(entry.contains("# fix: TODO describe the fix\n"), "{entry}");

    // The reducer is deterministic: a second reduction gives the same case.
    let again = reduce::reduce(&saved, None).unwrap();
    assert_eq!(again.case, r.case);
    assert_eq!(again.tests, r.tests);
}

#[test]
fn a_passing_directory_is_an_error() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reduce-passing");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let file = ops::generate_file(1, 50, &Weights::default());
    let settings = RunSettings { seed: 1, error_rate: 0.0, planted: None };
    let configs = vec![standard_config("default")];
    let report = check::run_seed(&file.ops, &configs, &settings, false);
    assert!(report.failures.is_empty());
    artifacts::write(&dir, &file, &configs, &settings, &report).unwrap();
    let saved = artifacts::read(&dir).unwrap();
    let e = reduce::reduce(&saved, None).unwrap_err();
    assert!(e.to_string().contains("does not reproduce"), "{e}");
}

/// A reduced config is saved under a new name; the runner's decisions (faults, crash
/// policies, how it carries on after a poisoning fault) must not change with it, or a saved
/// reduced case would not fail as its candidates did (seen: a durability finding whose reduced
/// case passed on replay).
#[test]
fn a_config_seeded_as_another_name_runs_exactly_as_that_name() {
    let original = standard_config("tiny_everything");
    let renamed = EngineConfig {
        name: "tiny_everything-reduced".into(),
        seeded_as: Some("tiny_everything".into()),
        ..original.clone()
    };
    let unseeded = EngineConfig { seeded_as: None, ..renamed.clone() };
    let ops = ops::generate(9, 600, &Weights::default());
    let settings = RunSettings { seed: 9, error_rate: 0.01, planted: None };
    let a = tumbler::runner::run_config(&ops, &original, &settings);
    let b = tumbler::runner::run_config(&ops, &renamed, &settings);
    let c = tumbler::runner::run_config(&ops, &unseeded, &settings);
    assert!(a.stats.errors_injected > 0, "the run must inject faults to test anything");
    assert_eq!(a.history, b.history);
    assert_eq!(a.image_hash, b.image_hash);
    assert_ne!(a.history, c.history, "the name seeds nothing: this test proves nothing");
}
