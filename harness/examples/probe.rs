//! Temporary probe: runs one seed across the standard configs and prints failures.
use tumbler::{check, config, ops, runner};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(1);
    let n: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(1000);
    let rate: f64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(0.0);
    let mut configs = config::load_dir(std::path::Path::new(
        &std::env::var("CFGDIR").unwrap_or("configs/standard".into()),
    ))
    .unwrap();
    if let Some(f) = args.get(4) {
        configs.retain(|c| f.split(',').any(|n| n == c.name));
    }
    let ops = ops::generate(seed, n, &ops::Weights::default());
    let settings = runner::RunSettings { seed, error_rate: rate, planted: None };
    let r = check::run_seed(&ops, &configs, &settings, false);
    println!("{:?}", r.stats);
    for f in r.failures.iter().take(5) {
        println!("{} {:?}: {}\n{}", f.config, f.failure.oracle, f.failure.message, f.detail);
        println!(
            "  at op {:?}: {:?}",
            f.failure.op_index,
            f.failure.op_index.map(|i| ops::print_op(&ops[i]))
        );
    }
    println!("{} failures", r.failures.len());
    if let Some(f) = r.failures.first() {
        let run = r.runs.iter().find(|x| x.config.name == f.config).unwrap();
        let n = run.history.len();
        for l in &run.history[n.saturating_sub(40)..] {
            println!("  | {l}");
        }
        std::fs::write("/tmp/probe_history.txt", run.history.join("\n")).unwrap();
    }
}
