//! Crash images: what a `SimFs` holds after a power cut, under a seeded `CrashPolicy`
//! (fault model rule 7, in `fs.rs`).

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fs::{Node, State};

/// How a crash treats what was not yet durable. Policies combine: the default drops everything
/// unsynced; `torn_sector` adds torn tails; `dir_ops_survive_prob` lets pending directory
/// operations survive; `keep_unsynced` keeps every volatile byte.
#[derive(Clone, Debug, PartialEq)]
pub struct CrashPolicy {
    /// When set, each file's unsynced tail keeps a seeded prefix of whole sectors of this many
    /// bytes (aligned to file offsets), instead of nothing.
    pub torn_sector: Option<usize>,
    /// With `torn_sector`, the chance that the last kept sector of a tail is garbage.
    pub torn_garbage_prob: f64,
    /// The chance that each pending directory operation survives, replayed in order.
    pub dir_ops_survive_prob: f64,
    /// Every reachable file keeps all its volatile bytes (as if the page cache reached the
    /// media just before the power went), instead of its durable bytes and a torn tail.
    pub keep_unsynced: bool,
}

impl Default for CrashPolicy {
    fn default() -> Self {
        CrashPolicy::drop_unsynced()
    }
}

impl CrashPolicy {
    /// Every unsynced byte and every unsynced directory operation is lost.
    pub fn drop_unsynced() -> CrashPolicy {
        CrashPolicy {
            torn_sector: None,
            torn_garbage_prob: 0.0,
            dir_ops_survive_prob: 0.0,
            keep_unsynced: false,
        }
    }

    /// Nothing volatile is lost: every unsynced byte and every pending directory operation
    /// survives. The kindest crash, and the one that exposes an engine that assumed a failed
    /// sync wrote nothing.
    pub fn keep_unsynced() -> CrashPolicy {
        CrashPolicy {
            keep_unsynced: true,
            dir_ops_survive_prob: 1.0,
            ..CrashPolicy::drop_unsynced()
        }
    }

    /// Unsynced tails are torn at `sector` granularity; a quarter of torn tails end in garbage.
    pub fn torn_writes(sector: usize) -> CrashPolicy {
        CrashPolicy::drop_unsynced().with_torn_writes(sector, 0.25)
    }

    /// Each unsynced directory operation survives with probability 1/2.
    pub fn random_dir_ops() -> CrashPolicy {
        CrashPolicy::drop_unsynced().with_dir_ops_survive_prob(0.5)
    }

    /// Adds torn tails.
    pub fn with_torn_writes(self, sector: usize, garbage_prob: f64) -> CrashPolicy {
        CrashPolicy { torn_sector: Some(sector), torn_garbage_prob: garbage_prob, ..self }
    }

    /// Sets the survival chance of pending directory operations.
    pub fn with_dir_ops_survive_prob(self, prob: f64) -> CrashPolicy {
        CrashPolicy { dir_ops_survive_prob: prob, ..self }
    }

    fn validate(&self) {
        assert!(self.torn_sector != Some(0), "a sector has at least one byte");
        for p in [self.torn_garbage_prob, self.dir_ops_survive_prob] {
            assert!((0.0..=1.0).contains(&p), "crash policy probability {p} out of [0, 1]");
        }
    }
}

/// What a crash threw away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Volatile bytes of surviving files that the image does not hold.
    pub unsynced_bytes_dropped: u64,
    /// Pending directory operations lost.
    pub dir_entries_dropped: u64,
    /// Pending directory operations that survived (only with `dir_ops_survive_prob > 0`).
    pub dir_ops_survived: u64,
    /// Files whose unsynced tail was cut inside it (some but not all of it kept) or ends in
    /// garbage.
    pub torn_writes: u64,
    /// Sectors filled with garbage.
    pub garbage_sectors: u64,
    /// Files that had a volatile name but are absent from the image.
    pub orphans_dropped: u64,
}

/// Builds the state a reboot finds. Random decisions, in order: one per pending directory
/// operation (only when its survival probability is above zero), then per surviving file in
/// path order its torn-tail length and garbage decision.
pub(super) fn build_image(state: &State, policy: &CrashPolicy, seed: u64) -> (State, CrashReport) {
    policy.validate();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut report = CrashReport::default();

    // Directories: durable entries, then the surviving pending operations in log order.
    let mut dirs: BTreeMap<u64, BTreeMap<String, u64>> = state
        .inodes
        .iter()
        .filter_map(|(ino, inode)| match &inode.node {
            Node::Dir(d) => Some((*ino, d.durable.clone())),
            Node::File(_) => None,
        })
        .collect();
    for op in &state.pending {
        let p = policy.dir_ops_survive_prob;
        if p > 0.0 && rng.gen::<f64>() < p {
            op.apply_to(&mut dirs);
            report.dir_ops_survived += 1;
        } else {
            report.dir_entries_dropped += 1;
        }
    }

    // Only what the root reaches through those entries exists.
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    State::walk(&|ino| dirs.get(&ino), &mut |_, ino| {
        if seen.insert(ino) && !dirs.contains_key(&ino) {
            files.push(ino);
        }
    });
    report.orphans_dropped = state
        .inodes
        .iter()
        .filter(|(ino, inode)| {
            matches!(inode.node, Node::File(_)) && inode.vlinks > 0 && !seen.contains(ino)
        })
        .count() as u64;

    let mut image_files = BTreeMap::new();
    for ino in files {
        let Node::File(f) = &state.inodes[&ino].node else {
            unreachable!("non-directories are files")
        };
        let durable = f.durable();
        let mut content = durable.to_vec();
        match policy.torn_sector {
            _ if policy.keep_unsynced => content.clone_from(&f.data),
            Some(sector) if f.durable_copy.is_none() && f.data.len() > f.durable_len => {
                let (start, end) = (f.durable_len, f.data.len());
                let first = start / sector;
                let chunks = (end - 1) / sector - first + 1;
                let kept = rng.gen_range(0..=chunks);
                let kept_end = if kept == 0 { start } else { ((first + kept) * sector).min(end) };
                content.extend_from_slice(&f.data[start..kept_end]);
                let p = policy.torn_garbage_prob;
                let garbage = kept > 0 && p > 0.0 && rng.gen::<f64>() < p;
                if garbage {
                    let sector_start = ((first + kept - 1) * sector).max(start);
                    rng.fill_bytes(&mut content[sector_start..kept_end]);
                    report.garbage_sectors += 1;
                }
                if garbage || (kept > 0 && kept < chunks) {
                    report.torn_writes += 1;
                }
                report.unsynced_bytes_dropped += (end - kept_end) as u64;
            }
            _ => {
                let common = match &f.durable_copy {
                    None => f.durable_len,
                    Some(copy) => copy.iter().zip(&f.data).take_while(|(a, b)| a == b).count(),
                };
                report.unsynced_bytes_dropped += (f.data.len() - common) as u64;
            }
        }
        image_files.insert(ino, content);
    }
    dirs.retain(|ino, _| seen.contains(ino));
    // The new instance's fault stream must not replay the crash decisions above.
    let fault_seed = seed.rotate_left(29) ^ 0x51_6d46_5f72_6562;
    let mut image = State::from_image(fault_seed, dirs, image_files, state.next_ino);
    // Rot is in the media: it survives the crash wherever its file does.
    for (ino, sectors) in &state.rot {
        if image.inodes.contains_key(ino) {
            image.rot.insert(*ino, sectors.clone());
        }
    }
    (image, report)
}
