//! The regression corpus: reduced failing cases, one ops file each in `corpus/`, replayed by
//! `cargo test` (`harness/tests/corpus.rs`) under every standard config.
//!
//! An entry is an ordinary ops file whose header comments tell its story:
//!
//! ```text
//! # tumbler ops v1
//! # generator: 1
//! # seed: 1
//! # symptom: durability: reopen after a crash failed: the manifest names a missing table
//! # fix: sync the directory after writing tables, before the manifest names them
//! # config: {"name":"tiny_memtable","memtable_size":4096,"scheduler":"manual"}
//! # error_rate: 0
//! put "a@1" "v" sync
//! ...
//! ```
//!
//! `symptom` and `fix` are required; `config` lines (engine configs as JSON, any number) add
//! configs to the standard ones; `error_rate` (default 0) sets the injected error rate.
//! An entry with `# planted: <fault>` is the opposite kind: a deliberately broken filesystem
//! (`sim/planted.rs`) that the harness must keep catching, so it must FAIL, with the oracle
//! its symptom names first (`durability at put: ...`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::config::EngineConfig;
use crate::ops::{self, OpsFile};
use crate::sim::PlantedFault;

/// One corpus case.
#[derive(Clone, Debug)]
pub struct CorpusEntry {
    pub path: PathBuf,
    pub file: OpsFile,
    pub symptom: String,
    pub fix: String,
    /// Configs the entry names, run besides the standard ones.
    pub configs: Vec<EngineConfig>,
    pub error_rate: f64,
    /// A planted fault the entry must keep failing with.
    pub planted: Option<PlantedFault>,
}

/// Parses one entry.
pub fn parse_entry(path: &Path, text: &str) -> anyhow::Result<CorpusEntry> {
    let file = ops::parse(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let (mut symptom, mut fix, mut configs, mut error_rate) = (None, None, Vec::new(), 0.0);
    let mut planted = None;
    for line in text.lines() {
        let Some(comment) = line.trim().strip_prefix('#') else { continue };
        let Some((key, value)) = comment.split_once(':') else { continue };
        let value = value.trim();
        match key.trim() {
            "symptom" => symptom = Some(value.to_string()),
            "fix" => fix = Some(value.to_string()),
            "config" => configs.push(
                EngineConfig::from_json(value)
                    .with_context(|| format!("{}: config line", path.display()))?,
            ),
            "planted" => {
                planted = Some(
                    value
                        .parse::<PlantedFault>()
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                )
            }
            "error_rate" => {
                error_rate = value
                    .parse()
                    .with_context(|| format!("{}: error_rate {value:?}", path.display()))?
            }
            _ => {}
        }
    }
    let (Some(symptom), Some(fix)) = (symptom, fix) else {
        bail!("{}: a corpus entry needs `# symptom:` and `# fix:` lines", path.display());
    };
    if file.seed.is_none() {
        bail!("{}: a corpus entry needs a `# seed:` line", path.display());
    }
    Ok(CorpusEntry { path: path.to_path_buf(), file, symptom, fix, configs, error_rate, planted })
}

/// Every `*.ops` entry of `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<CorpusEntry>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading corpus {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "ops"));
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            parse_entry(p, &text)
        })
        .collect()
}
