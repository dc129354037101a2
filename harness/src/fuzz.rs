//! Fuzzing entry points of the harness: one function per harness-side target of the `fuzz/`
//! cargo-fuzz project, here (not in `fuzz/`) so `harness/tests/fuzz_corpus.rs` runs them on
//! stable Rust. (The engine's decoders have theirs in `cobble::internal::fuzz`.)
//!
//! [`metamorphic`] drives a generated op sequence, a random engine config and a fault schedule
//! through the same runner and oracles as `tumbler run`, so coverage guidance steers the
//! simulator.

use crate::check;
use crate::config::EngineConfig;
use crate::ops::{self, Op, Weights};
use crate::runner::{run_config, RunSettings};

/// The most ops one `metamorphic` fuzz input runs: enough for flushes and compactions, few
/// enough that an input runs in milliseconds.
pub const METAMORPHIC_OPS_MAX: usize = 200;

/// What a `metamorphic` fuzz input stands for: a seed, an op count and the engine
/// configuration drawn from the seed. The bytes pick only these; the ops come from the
/// generator, so every input is a valid op sequence and a crash replays as a plain Tumbler seed.
#[derive(Clone, Debug, PartialEq)]
pub struct MetamorphicInput {
    pub seed: u64,
    pub n_ops: usize,
    pub config: EngineConfig,
    /// The injected error rate: byte 9 over 4096 (0 when absent).
    pub error_rate: f64,
}

impl MetamorphicInput {
    /// Decodes bytes: the first 8 (little endian, zero-padded when short) are the seed, the
    /// next one the op count modulo `METAMORPHIC_OPS_MAX + 1`; the rest is ignored.
    pub fn from_bytes(data: &[u8]) -> MetamorphicInput {
        let mut seed = [0u8; 8];
        let n = data.len().min(8);
        seed[..n].copy_from_slice(&data[..n]);
        let seed = u64::from_le_bytes(seed);
        let n_ops = data
            .get(8)
            .map_or(METAMORPHIC_OPS_MAX, |&b| usize::from(b) % (METAMORPHIC_OPS_MAX + 1));
        let error_rate = data.get(9).map_or(0.0, |&b| f64::from(b) / 4096.0);
        let mut config = EngineConfig::random(seed);
        config.name = format!("random_{seed}");
        MetamorphicInput { seed, n_ops, config, error_rate }
    }

    /// The ops, from the generator with default weights.
    pub fn ops(&self) -> Vec<Op> {
        ops::generate(self.seed, self.n_ops, &Weights::default())
    }
}

/// Runs [`MetamorphicInput::from_bytes`]`(data)` under its random config and under the default
/// config, with every oracle of the runner plus the cross-config diff. Any failure panics with
/// the seed and the command that replays it.
pub fn metamorphic(data: &[u8]) {
    let input = MetamorphicInput::from_bytes(data);
    let ops = input.ops();
    let settings = RunSettings { seed: input.seed, error_rate: input.error_rate, planted: None };
    // The diff compares merged values, so the baseline uses the input config's operator.
    let default = EngineConfig {
        name: "default".into(),
        merge_operator: input.config.merge_operator,
        ..EngineConfig::default()
    };
    let a = run_config(&ops, &default, &settings);
    let b = run_config(&ops, &input.config, &settings);
    let replay = format!(
        "tumbler run --seed {} --ops {} --random-configs 0 --error-rate {} (config: {})",
        input.seed,
        input.n_ops,
        input.error_rate,
        input.config.to_json()
    );
    for run in [&a, &b] {
        if let Some(f) = &run.failure {
            panic!("{} failure in {}: {} ({replay})", f.oracle.name(), run.config.name, f.message);
        }
    }
    if let Some(f) = check::diff_runs(&a, &b) {
        panic!("{}\n{} ({replay})", f.failure.message, f.detail);
    }
}

/// `data` as an ops file (lossily decoded as UTF-8) through [`ops::parse`].
///
/// Errors are the expected answer to bad text; a panic is a bug. Checked: a file that parses
/// prints to text that parses back to the same file, and printing is stable (printing the
/// re-parsed file gives the same text).
pub fn ops_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(file) = ops::parse(&text) else {
        return;
    };
    let printed = ops::print(&file);
    let again = ops::parse(&printed)
        .unwrap_or_else(|e| panic!("printed ops file does not parse: {e}\n{printed}"));
    assert_eq!(again, file, "parse(print(x)) != x; printed:\n{printed}");
    assert_eq!(ops::print(&again), printed, "printing is not stable");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metamorphic_inputs_decode_deterministically_and_stay_bounded() {
        let a = MetamorphicInput::from_bytes(&[7, 0, 0, 0, 0, 0, 0, 0, 250, 1, 2]);
        assert_eq!((a.seed, a.n_ops), (7, 250 % 201));
        assert_eq!(a.error_rate, 1.0 / 4096.0);
        assert_eq!(a, MetamorphicInput::from_bytes(&[7, 0, 0, 0, 0, 0, 0, 0, 250, 1]));
        assert_eq!(MetamorphicInput::from_bytes(&[7, 0, 0, 0, 0, 0, 0, 0, 250]).error_rate, 0.0);
        assert_eq!(a.config, EngineConfig { name: "random_7".into(), ..EngineConfig::random(7) });
        assert_eq!(a.ops().len(), a.n_ops);
        assert_eq!(a.ops(), a.ops());
        let empty = MetamorphicInput::from_bytes(&[]);
        assert_eq!((empty.seed, empty.n_ops), (0, METAMORPHIC_OPS_MAX));
        for b in 0..=255u8 {
            let n = MetamorphicInput::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 0, b]).n_ops;
            assert!(n <= METAMORPHIC_OPS_MAX);
        }
    }
}
