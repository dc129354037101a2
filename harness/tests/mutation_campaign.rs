//! The short Tumbler campaign that `scripts/mutants.sh` runs against each engine mutant: the
//! standard configs plus two random ones, a few fixed seeds with crashes and injected faults,
//! stopping at the first failing seed, then every crossversion image of `corpus/images/`. A
//! mutant is killed when this exits non-zero (a finding, a panic, an abort, a hang past
//! cargo-mutants' timeout).
//!
//! Built only with the `mutation-campaign` feature (its `required-features`), so `cargo test`
//! does not run it: under the dev profile it would take minutes, and the ordinary tests cover
//! the same ground seed by seed. `MUTANTS_SEEDS` (`1,2,3`) and `MUTANTS_OPS` (`800`) resize it.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tumbler::check;
use tumbler::plan::{self, SeedSpec};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/ has a parent");
    let seeds: Vec<u64> = std::env::var("MUTANTS_SEEDS")
        .unwrap_or_else(|_| "1,2,3".to_string())
        .split(',')
        .map(|s| s.trim().parse().expect("MUTANTS_SEEDS: comma-separated seeds"))
        .collect();
    let spec = SeedSpec {
        ops: env_or("MUTANTS_OPS", 800),
        configs: root.join(plan::STANDARD_CONFIGS),
        random_configs: 2,
        weights: None,
        swarm: false,
        error_rate: 0.0005,
        plant: None,
        hang_timeout: 30,
    };
    tumbler::watchdog::set_hang_timeout(Duration::from_secs(spec.hang_timeout));
    for seed in seeds {
        let plan = plan::plan_seed(&spec, seed).expect("the standard configs load");
        let report = check::run_seed(&plan.file.ops, &plan.configs, &plan.settings, false);
        if let Some(f) = report.failures.first() {
            println!(
                "FAIL seed {seed}: [{}] config {} op {:?}: {}",
                f.failure.oracle.name(),
                f.config,
                f.failure.op_index,
                f.failure.message.lines().next().unwrap_or("")
            );
            println!("replay: {}", plan.replay_command);
            return ExitCode::FAILURE;
        }
        println!("PASS seed {seed} ({} configs)", plan.configs.len());
    }
    // The crossversion images too: a mutant that changes what is written or read on disk
    // (a persisted name, a format field) fails to continue them.
    let images = root.join("corpus/images");
    let mut dirs: Vec<_> = std::fs::read_dir(&images)
        .expect("corpus/images exists")
        .map(|e| e.expect("a readable corpus/images entry").path())
        .collect();
    dirs.sort();
    for dir in dirs {
        match tumbler::image::continue_image(&dir) {
            Ok(run) if run.failure.is_none() => println!("PASS image {}", dir.display()),
            Ok(run) => {
                let f = run.failure.expect("checked above");
                println!("FAIL image {}: [{}] {}", dir.display(), f.oracle.name(), f.message);
                return ExitCode::FAILURE;
            }
            Err(e) => {
                println!("FAIL image {}: {e:#}", dir.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
