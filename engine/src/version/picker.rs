//! The compaction picker: a pure function of a version, the options, the files already being
//! compacted and the per-level compact pointers, so it can be tested on made-up versions.
//!
//! Leveled compaction: L0 scores by its depth (`Version::l0_depth`, the most L0 files a read
//! of one key may look in) over `l0_compaction_threshold`; L1..L5 by bytes over a target
//! (`lbase_max_bytes`, times `level_multiplier` per level below L1); L6 never compacts. The highest-scoring level >= 1 that has a free input compacts. L0 takes all of
//! its files (they overlap); below, one file, the first after the level's compact pointer
//! (round robin over the key space).

use crate::sync::Arc;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::{FileMetadata, Version, NUM_LEVELS};
use crate::key::InternalComparator;

/// The options the picker reads (the database builds them from its `Options`).
#[derive(Clone, Copy, Debug)]
pub struct PickerOptions {
    pub l0_compaction_threshold: usize,
    pub lbase_max_bytes: u64,
    pub level_multiplier: u64,
}

/// A compaction: `inputs[0]` from `level`, `inputs[1]` from `output_level`, and `between[i]`
/// from level `level + 1 + i` when the output level lies further down (a manual compaction
/// takes every level at once; the picker only ever takes two adjacent levels, or L0 alone).
///
/// Invariant: for every key the inputs cover, every level from `level` to `output_level`
/// contributes all the files holding it, so the output sits below only newer versions.
#[derive(Debug)]
pub struct Compaction {
    pub level: usize,
    pub output_level: usize,
    pub inputs: [Vec<Arc<FileMetadata>>; 2],
    pub between: Vec<Vec<Arc<FileMetadata>>>,
}

impl Compaction {
    /// Two adjacent levels' inputs (or one level's into itself).
    pub fn new(level: usize, output_level: usize, inputs: [Vec<Arc<FileMetadata>>; 2]) -> Self {
        Compaction { level, output_level, inputs, between: Vec::new() }
    }

    /// Every input file, `level`'s first, then each level below in order.
    pub fn all_inputs(&self) -> impl Iterator<Item = &Arc<FileMetadata>> {
        self.inputs[0].iter().chain(self.between.iter().flatten()).chain(&self.inputs[1])
    }

    /// Each input file with the level it is in.
    pub fn inputs_by_level(&self) -> impl Iterator<Item = (usize, &Arc<FileMetadata>)> {
        let between = self.between.iter().enumerate();
        self.inputs[0]
            .iter()
            .map(|f| (self.level, f))
            .chain(between.flat_map(move |(i, fs)| fs.iter().map(move |f| (self.level + 1 + i, f))))
            .chain(self.inputs[1].iter().map(|f| (self.output_level, f)))
    }
}

/// The target size of `level` (>= 1).
pub fn level_target(opts: &PickerOptions, level: usize) -> u64 {
    let mut target = opts.lbase_max_bytes.max(1);
    for _ in 1..level {
        target = target.saturating_mul(opts.level_multiplier);
    }
    target
}

/// How urgently `level` needs compaction; >= 1 means it does.
pub fn level_score(opts: &PickerOptions, version: &Version, level: usize) -> f64 {
    if level == 0 {
        version.l0_depth() as f64 / opts.l0_compaction_threshold.max(1) as f64
    } else if level < NUM_LEVELS - 1 {
        version.level_bytes(level) as f64 / level_target(opts, level) as f64
    } else {
        0.0
    }
}

/// The user-key range `[smallest, largest]` covered by `files` (not empty).
pub fn key_range(cmp: &InternalComparator, files: &[Arc<FileMetadata>]) -> (Vec<u8>, Vec<u8>) {
    let mut lo = files[0].smallest_user();
    let mut hi = files[0].largest_user();
    for f in files {
        if cmp.compare_user(f.smallest_user(), lo) == Ordering::Less {
            lo = f.smallest_user();
        }
        if cmp.compare_user(f.largest_user(), hi) == Ordering::Greater {
            hi = f.largest_user();
        }
    }
    (lo.to_vec(), hi.to_vec())
}

/// Picks the next compaction, or `None` when no level needs one or every candidate touches a
/// file in `compacting`.
pub fn pick_compaction(
    version: &Version,
    opts: &PickerOptions,
    cmp: &InternalComparator,
    compacting: &BTreeSet<u64>,
    compact_pointer: &[Option<Vec<u8>>; NUM_LEVELS],
) -> Option<Compaction> {
    let mut levels: Vec<(f64, usize)> = (0..NUM_LEVELS - 1)
        .map(|l| (level_score(opts, version, l), l))
        .filter(|(score, _)| *score >= 1.0)
        .collect();
    levels.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let busy = |files: &[Arc<FileMetadata>]| files.iter().any(|f| compacting.contains(&f.num));
    for (_, level) in levels {
        if level == 0 {
            let l0 = version.levels[0].clone();
            if busy(&l0) {
                continue;
            }
            let (lo, hi) = key_range(cmp, &l0);
            let l1 = version.overlapping(cmp, 1, Some(&lo), Some(&hi));
            if busy(&l1) {
                if version.l0_depth() >= 2 {
                    // L1 is busy: merge L0 into itself so read amplification stops growing
                    // (not when its files overlap none of one another: that would gain nothing).
                    return Some(Compaction::new(0, 0, [l0, vec![]]));
                }
                continue;
            }
            return Some(Compaction::new(0, 1, [l0, l1]));
        }
        let files = &version.levels[level];
        let start = match &compact_pointer[level] {
            Some(p) => files
                .iter()
                .position(|f| cmp.compare_user(f.smallest_user(), p) == Ordering::Greater)
                .unwrap_or(0),
            None => 0,
        };
        for i in 0..files.len() {
            let f = &files[(start + i) % files.len()];
            if compacting.contains(&f.num) {
                continue;
            }
            let inputs0 = vec![f.clone()];
            let (lo, hi) = key_range(cmp, &inputs0);
            let inputs1 = version.overlapping(cmp, level + 1, Some(&lo), Some(&hi));
            if busy(&inputs1) {
                continue;
            }
            return Some(Compaction::new(level, level + 1, [inputs0, inputs1]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comparator::Bytewise;
    use crate::datadriven::{self, TestCase};
    use crate::key::{self, Kind};
    use crate::version::range_del_sentinel;

    /// Parses a file line: `num: smallest-largest size=N [seqs=a-b] [rangedel-end]`, where
    /// `rangedel-end` makes the largest bound an exclusive range-tombstone sentinel.
    fn parse_file(line: &str, case: &TestCase) -> FileMetadata {
        let mut words = line.split_whitespace();
        let num: u64 = words
            .next()
            .and_then(|w| w.strip_suffix(':'))
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("line {}: bad file number in {line:?}", case.line));
        let range = words.next().unwrap_or_else(|| panic!("line {}: no key range", case.line));
        let (lo, hi) = range.split_once('-').expect("range is smallest-largest");
        let (mut size, mut seqs, mut exclusive) = (1u64, (1u64, 1u64), false);
        for w in words {
            if let Some(v) = w.strip_prefix("size=") {
                size = v.parse().expect("size");
            } else if let Some(v) = w.strip_prefix("seqs=") {
                let (a, b) = v.split_once('-').expect("seqs=a-b");
                seqs = (a.parse().expect("seq"), b.parse().expect("seq"));
            } else if w == "rangedel-end" {
                exclusive = true;
            } else {
                panic!("line {}: unknown file attribute {w:?}", case.line);
            }
        }
        let largest = if exclusive {
            range_del_sentinel(hi.as_bytes())
        } else {
            key::encode(hi.as_bytes(), seqs.0, Kind::Set)
        };
        FileMetadata {
            num,
            size,
            smallest: key::encode(lo.as_bytes(), seqs.1, Kind::Set),
            largest,
            smallest_seq: seqs.0,
            largest_seq: seqs.1,
            has_range_dels: exclusive,
        }
    }

    fn describe(files: &[Arc<FileMetadata>]) -> String {
        let nums: Vec<String> = files.iter().map(|f| f.num.to_string()).collect();
        nums.join(",")
    }

    #[test]
    fn compaction_picker() {
        let cmp = InternalComparator::new(Arc::new(Bytewise));
        let mut version = Version::default();
        let mut opts = PickerOptions {
            l0_compaction_threshold: 4,
            lbase_max_bytes: 1000,
            level_multiplier: 10,
        };
        let mut compacting = BTreeSet::new();
        let mut pointers: [Option<Vec<u8>>; NUM_LEVELS] = Default::default();
        datadriven::run("testdata/compaction_picker", |case| match case.cmd.as_str() {
            // `define [l0-threshold=N] [lbase=N] [multiplier=N]`, then `L<n>` headers each
            // followed by file lines. Resets the compacting set and the compact pointers.
            "define" => {
                opts = PickerOptions {
                    l0_compaction_threshold: case.arg_or("l0-threshold", 4),
                    lbase_max_bytes: case.arg_or("lbase", 1000),
                    level_multiplier: case.arg_or("multiplier", 10),
                };
                version = Version::default();
                compacting.clear();
                pointers = Default::default();
                let mut level = None;
                for line in case.input.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    if let Some(l) = line.strip_prefix('L') {
                        level = Some(l.parse::<usize>().expect("level number"));
                        continue;
                    }
                    let level = level.expect("a level header before files");
                    version.levels[level].push(Arc::new(parse_file(line, case)));
                }
                version.sort_levels(&cmp);
                if let Err(e) = version.check_invariants(&cmp) {
                    return format!("invalid version: {e}\n");
                }
                let mut out = String::new();
                for level in 0..NUM_LEVELS {
                    if version.levels[level].is_empty() {
                        continue;
                    }
                    out.push_str(&format!(
                        "L{level}: {} files, {} bytes",
                        version.levels[level].len(),
                        version.level_bytes(level)
                    ));
                    if level == 0 {
                        out.push_str(&format!(", depth {}", version.l0_depth()));
                    }
                    out.push('\n');
                }
                out
            }
            "scores" => {
                let mut out = String::new();
                for level in 0..NUM_LEVELS {
                    let target = match level {
                        0 => format!("depth {}", opts.l0_compaction_threshold),
                        l if l == NUM_LEVELS - 1 => "none".to_string(),
                        l => format!("{} bytes", level_target(&opts, l)),
                    };
                    out.push_str(&format!(
                        "L{level}: score={:.2} target={target}\n",
                        level_score(&opts, &version, level)
                    ));
                }
                out
            }
            // `compacting files=(1,2)`: marks files as inputs of a running compaction.
            "compacting" => {
                compacting = case
                    .arg("files")
                    .unwrap_or(&[])
                    .iter()
                    .map(|n| n.parse().expect("num"))
                    .collect();
                format!("compacting: {compacting:?}\n")
            }
            // `pointer level=N key=K`: sets a level's compact pointer.
            "pointer" => {
                let level: usize = case.arg_or("level", 1);
                let key: String = case.arg_or("key", String::new());
                pointers[level] = Some(key.into_bytes());
                "ok\n".to_string()
            }
            // `pick [apply]`: shows the picked compaction; `apply` then marks its inputs as
            // compacting and advances the compact pointer, as running it would.
            "pick" => match pick_compaction(&version, &opts, &cmp, &compacting, &pointers) {
                None => "no compaction\n".to_string(),
                Some(c) => {
                    let out = format!(
                        "L{} -> L{}: inputs L{}=[{}] L{}=[{}]\n",
                        c.level,
                        c.output_level,
                        c.level,
                        describe(&c.inputs[0]),
                        c.output_level,
                        describe(&c.inputs[1]),
                    );
                    if case.has("apply") {
                        compacting.extend(c.all_inputs().map(|f| f.num));
                        if c.level != c.output_level {
                            let last = &c.inputs[0][c.inputs[0].len() - 1];
                            pointers[c.level] = Some(last.largest_user().to_vec());
                        }
                    }
                    out
                }
            },
            // `overlapping level=N start=K end=K`: `Version::overlapping`, which grows the
            // range in L0.
            "overlapping" => {
                let level: usize = case.arg_or("level", 0);
                let start: Option<String> = case.arg("start").map(|v| v[0].clone());
                let end: Option<String> = case.arg("end").map(|v| v[0].clone());
                let files = version.overlapping(
                    &cmp,
                    level,
                    start.as_deref().map(str::as_bytes),
                    end.as_deref().map(str::as_bytes),
                );
                format!("[{}]\n", describe(&files))
            }
            other => panic!("line {}: unknown command {other}", case.line),
        });
    }
}
