//! Replays every regression case in `corpus/` under all standard configs (plus the configs an
//! entry names): each once made Cobble fail, and must pass now that the bug is fixed.

use std::path::Path;

use tumbler::check::run_seed;
use tumbler::config;
use tumbler::corpus;
use tumbler::runner::RunSettings;

#[test]
fn every_corpus_case_passes_under_every_standard_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let standard = config::load_dir(&root.join("configs/standard")).unwrap();
    let entries = corpus::load_dir(&root.join("corpus")).unwrap();
    assert!(!entries.is_empty(), "the corpus has no entries");
    for entry in &entries {
        let mut configs = standard.clone();
        for c in &entry.configs {
            if !configs.iter().any(|s| s.name == c.name) {
                configs.push(c.clone());
            }
        }
        let seed = entry.file.seed.expect("entries have seeds");
        let settings = RunSettings { seed, error_rate: entry.error_rate, planted: entry.planted };
        let report = run_seed(&entry.file.ops, &configs, &settings, false);
        if let Some(fault) = entry.planted {
            // A planted fault the harness must keep catching, with the recorded oracle.
            let oracle = entry.symptom.split_whitespace().next().unwrap_or_default();
            assert!(
                report.failures.iter().any(|f| f.failure.oracle.name() == oracle),
                "{}: planted {fault} no longer caught as {oracle}: {:?}",
                entry.path.display(),
                report.failures
            );
            continue;
        }
        for f in &report.failures {
            eprintln!(
                "{}: [{}] {} {}\n{}",
                entry.path.display(),
                f.failure.oracle.name(),
                f.config,
                f.failure.message,
                f.detail
            );
        }
        assert!(
            report.failures.is_empty(),
            "{} fails again (symptom was: {})",
            entry.path.display(),
            entry.symptom
        );
    }
}

#[test]
fn malformed_entries_are_refused_with_a_clear_error() {
    let p = Path::new("x.ops");
    let e = corpus::parse_entry(p, "# tumbler ops v1\n# seed: 1\nput \"a\" \"b\"\n").unwrap_err();
    assert!(e.to_string().contains("symptom"), "{e}");
    let e = corpus::parse_entry(
        p,
        "# tumbler ops v1\n# seed: 1\n# symptom: s\n# fix: f\n# config: {\"bogus\": 1}\n",
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("config"), "{e:#}");
    let e = corpus::parse_entry(p, "# tumbler ops v1\n# symptom: s\n# fix: f\n").unwrap_err();
    assert!(e.to_string().contains("seed"), "{e}");
    let ok = corpus::parse_entry(p, "# tumbler ops v1\n# seed: 1\n# symptom: s\n# fix: f\nflush\n")
        .unwrap();
    assert_eq!(ok.file.ops.len(), 1);
}
