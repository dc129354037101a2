//! Crossversion images: a database written by one build, continued by a later one, so an
//! accidental on-disk format break fails the build (Pebble keeps such a test).
//!
//! `tumbler image save` runs a seed's ops under one config, closes cleanly, and saves what
//! the database left (every file of the SimFs, byte for byte) with the model of what it holds
//! (its commits, oldest first) and a second stretch of ops generated from the same seed.
//! `tumbler image continue` (and `cargo test`, over `corpus/images/`) loads the files into a
//! fresh SimFs, opens the database there, checks every recovered key against the model, then
//! runs the second stretch with every oracle on, faults and crashes included.
//!
//! Layout of an image directory:
//! - `image.json`: `format`, `seed`, `config` (the engine config), `ops_before`, `written_by`
//!   (the harness version that wrote it) and `commits` (the model: per commit, its writes as
//!   `[kind, key hex, value hex]`; kinds `put`, `delete`, `single_delete`, `merge`,
//!   `delete_range` whose "value" is the end key).
//! - `continue.ops`: the second stretch, an ordinary ops file.
//! - `files/`: the database directory's files as they were durable at the end.
//!
//! Invariant: an image is never rewritten by the code that continues it; new formats get new
//! images beside the old ones, which keep being continued.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::config::EngineConfig;
use crate::model::{Model, Write};
use crate::ops::{self, Op, Weights};
use crate::runner::{self, ConfigRun, RunSettings, Start};

/// The version of the image layout this build writes and reads.
pub const IMAGE_FORMAT: u32 = 1;

/// Where the database lives inside SimFs (the runner's directory).
const DB_DIR: &str = runner::DB_DIR;

/// `image.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ImageMeta {
    format: u32,
    seed: u64,
    ops_before: usize,
    written_by: String,
    config: serde_json::Value,
    commits: Vec<Vec<[String; 3]>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> anyhow::Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        bail!("bad hex string {text:?}");
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16).with_context(|| format!("bad hex {text:?}"))
        })
        .collect()
}

fn wire(w: &Write) -> [String; 3] {
    let (kind, a, b): (&str, &[u8], &[u8]) = match w {
        Write::Put { key, value } => ("put", key, value),
        Write::Delete { key } => ("delete", key, &[]),
        Write::SingleDelete { key } => ("single_delete", key, &[]),
        Write::Merge { key, value } => ("merge", key, value),
        Write::DeleteRange { start, end } => ("delete_range", start, end),
    };
    [kind.to_string(), hex(a), hex(b)]
}

fn unwire(w: &[String; 3]) -> anyhow::Result<Write> {
    let (a, b) = (unhex(&w[1])?, unhex(&w[2])?);
    Ok(match w[0].as_str() {
        "put" => Write::Put { key: a, value: b },
        "delete" => Write::Delete { key: a },
        "single_delete" => Write::SingleDelete { key: a },
        "merge" => Write::Merge { key: a, value: b },
        "delete_range" => Write::DeleteRange { start: a, end: b },
        other => bail!("unknown write kind {other:?}"),
    })
}

/// The model of a cleanly closed database, compacted to one commit with the same reads and
/// the same last seqnum: a put of each live key's value, then deletes of a key no generated
/// op uses (`PAD_KEY`) up to the last seqnum. Nothing older is readable once the database is
/// closed (no snapshot survives a close), so nothing older needs keeping.
fn compact(model: &Model) -> Vec<Write> {
    let last = model.last_seq();
    let mut writes: Vec<Write> =
        model.state_at(last).into_iter().map(|(key, value)| Write::Put { key, value }).collect();
    while (writes.len() as u64) < last {
        writes.push(Write::Delete { key: PAD_KEY.to_vec() });
    }
    writes
}

/// Generated keys start with a lowercase letter (`ops/keys.rs`): this one never collides.
const PAD_KEY: &[u8] = b"\xff\xfdimage-pad";

/// The seed of the second stretch's ops: derived, so the two stretches differ.
fn continue_seed(seed: u64) -> u64 {
    seed ^ 0x5eed_c0de_0000_0001
}

/// Runs `ops_before` ops of `seed` under `config` and saves the image in `dir`, with a
/// second stretch of `ops_after` ops. Fails when the run itself fails.
pub fn save(
    dir: &Path,
    seed: u64,
    ops_before: usize,
    ops_after: usize,
    config: &EngineConfig,
) -> anyhow::Result<()> {
    let weights = Weights::default();
    let ops = ops::generate(seed, ops_before, &weights);
    let settings = RunSettings { seed, error_rate: 0.0, planted: None };
    let (run, end) = runner::run_config_from(&ops, config, &settings, None);
    if let Some(f) = &run.failure {
        bail!("the run that writes the image failed: [{}] {}", f.oracle.name(), f.message);
    }
    let end = end.context("the run left no database to save")?;
    if dir.exists() {
        bail!("{} exists: an image is never overwritten", dir.display());
    }
    let files_dir = dir.join("files");
    fs::create_dir_all(&files_dir).with_context(|| format!("creating {}", files_dir.display()))?;
    for (path, bytes) in &end.files {
        let rel = path.trim_start_matches('/');
        let to = files_dir.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&to, bytes).with_context(|| format!("writing {}", to.display()))?;
    }
    let meta = ImageMeta {
        format: IMAGE_FORMAT,
        seed,
        ops_before,
        written_by: format!("tumbler {}", env!("CARGO_PKG_VERSION")),
        config: serde_json::from_str(&config.to_json()).context("config as JSON")?,
        commits: vec![compact(&end.model).iter().map(wire).collect()],
    };
    let json = serde_json::to_string_pretty(&meta)? + "\n";
    fs::write(dir.join("image.json"), json)?;
    let after = ops::generate_file(continue_seed(seed), ops_after, &weights);
    fs::write(dir.join("continue.ops"), ops::format::print(&after))?;
    Ok(())
}

/// A loaded image: where the continuation starts, and what it runs.
#[derive(Debug)]
pub struct Loaded {
    pub seed: u64,
    pub config: EngineConfig,
    pub start: Start,
    pub ops: Vec<Op>,
}

/// Reads an image directory; bad input is an error naming the file.
pub fn load(dir: &Path) -> anyhow::Result<Loaded> {
    let meta_path = dir.join("image.json");
    let text = fs::read_to_string(&meta_path)
        .with_context(|| format!("reading {}", meta_path.display()))?;
    let meta: ImageMeta =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", meta_path.display()))?;
    if meta.format != IMAGE_FORMAT {
        bail!(
            "{}: image format {} (this build reads {IMAGE_FORMAT})",
            meta_path.display(),
            meta.format
        );
    }
    let config = EngineConfig::from_json(&meta.config.to_string())
        .with_context(|| format!("the config in {}", meta_path.display()))?;
    let mut model = Model::with_merge(config.merge_kind());
    for (i, c) in meta.commits.iter().enumerate() {
        let writes = c
            .iter()
            .map(unwire)
            .collect::<anyhow::Result<Vec<_>>>()
            .with_context(|| format!("{}: commit {i}", meta_path.display()))?;
        model
            .apply_batch(writes)
            .map_err(|e| anyhow::anyhow!("{}: commit {i}: {e}", meta_path.display()))?;
    }
    let mut files = Vec::new();
    collect_files(&dir.join("files"), &dir.join("files"), &mut files)?;
    if files.is_empty() {
        bail!("{}: no database files", dir.join("files").display());
    }
    let ops_path = dir.join("continue.ops");
    let text =
        fs::read_to_string(&ops_path).with_context(|| format!("reading {}", ops_path.display()))?;
    let ops =
        ops::format::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", ops_path.display()))?.ops;
    Ok(Loaded { seed: meta.seed, config, start: Start { files, model }, ops })
}

/// Every file under `dir`, as (`/`-rooted path relative to `root`, bytes), sorted.
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_files(root, &p, out)?;
        } else {
            let rel = p.strip_prefix(root).expect("under root");
            let name = format!("/{}", rel.to_string_lossy());
            out.push((name, fs::read(&p).with_context(|| format!("reading {}", p.display()))?));
        }
    }
    Ok(())
}

/// Continues the image in `dir`: opens it, checks it against the model, runs the second
/// stretch under the watchdog. The run's result (its `failure` says what broke); an image
/// that cannot be read is an input error.
pub fn continue_image(dir: &Path) -> anyhow::Result<ConfigRun> {
    let Loaded { seed, config, start, ops } = load(dir).map_err(crate::input::input_error)?;
    if !start.files.iter().any(|(p, _)| p.starts_with(&format!("{DB_DIR}/"))) {
        return Err(crate::input::input_error(anyhow::anyhow!(
            "{}: no files under {DB_DIR}",
            dir.display()
        )));
    }
    let settings = RunSettings { seed: continue_seed(seed), error_rate: 0.0, planted: None };
    let c = config.clone();
    let job = move || runner::run_config_from(&ops, &c, &settings, Some(start)).0;
    match crate::watchdog::run_guarded(vec![job], 1).pop().expect("one job") {
        crate::watchdog::Guarded::Done(run) => Ok(run),
        _ => bail!("{}: continuing the image hung", dir.display()),
    }
}

/// `tumbler image save`: reads the config file, saves the image.
pub fn save_main(
    seed: u64,
    ops: u64,
    ops_after: u64,
    config: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let text = fs::read_to_string(config)
        .with_context(|| format!("reading {}", config.display()))
        .map_err(crate::input::input_error)?;
    let c = EngineConfig::from_json(&text)
        .with_context(|| format!("in {}", config.display()))
        .map_err(crate::input::input_error)?;
    save(out, seed, to_usize(ops), to_usize(ops_after), &c)?;
    println!("saved image {}", out.display());
    Ok(())
}

/// `tumbler image continue`: continues each image; true when all passed.
pub fn continue_main(dirs: &[PathBuf]) -> anyhow::Result<bool> {
    let mut passed = true;
    for dir in dirs {
        let run = continue_image(dir)?;
        match &run.failure {
            None => println!("PASS {} ({} ops)", dir.display(), run.stats.ops_executed),
            Some(f) => {
                passed = false;
                let op = f.op_index.map(|i| format!(" at op {i}")).unwrap_or_default();
                println!("FAIL {}: [{}]{op}: {}", dir.display(), f.oracle.name(), f.message);
                println!("continue: tumbler image continue {}", dir.display());
            }
        }
    }
    Ok(passed)
}
