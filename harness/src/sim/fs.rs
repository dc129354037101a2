//! `SimFs`: the engine's `Fs` in simulation, with volatile and durable state, crash images and
//! seeded error injection.
//!
//! # Fault model
//!
//! What the simulated media promise, and what they may do instead. The engine must be correct
//! under every behaviour listed here; anything not listed never happens.
//!
//! ## State
//! 1. The filesystem is a tree of inodes under one root. A file inode holds VOLATILE bytes
//!    (what reads see) and DURABLE bytes (what survives a crash). A directory inode holds
//!    volatile entries (name -> inode) and durable entries. Hard links are two entries naming
//!    one inode. Paths are resolved from the root; `"db/x"` and `"/db/x"` are the same path.
//! 2. `File::sync` copies the file's volatile bytes to its durable bytes. Nothing else makes
//!    file data durable, and sync does not make the file's name durable.
//! 3. `create`, `rename`, `remove`, `link`, `lock` (when it creates its file) and
//!    `create_dir_all` (per new directory) change volatile entries and append a directory
//!    operation to a pending log. A rename is ONE operation, even across directories.
//!    `create` of an existing file truncates that inode in place (as `O_TRUNC` does): that is a
//!    data change made durable by `File::sync`, not a directory operation.
//! 4. `sync_dir(d)` makes durable every pending operation touching `d`, plus (so that each
//!    directory's durable entries are always its volatile history cut at some point) every
//!    earlier pending operation touching a directory that one of those touches. A cross-directory
//!    rename thus becomes durable in both directories at once. Afterwards `d`'s durable entries
//!    equal its volatile entries.
//! 5. The root is durable at creation. [`SimFs::make_all_durable`] (not a call: no counter, no
//!    faults) syncs everything, to set up a directory that "existed before".
//!
//! ## Crashes
//! 6. Every `Fs`/`File` call (not `Drop` of a file or lock) increments a call counter. With
//!    `set_crash_at(Some(n))`, call `n` fails with `Error::Io` and has no effect; from then on
//!    every call on the instance, and on every file and lock from it, fails with `Error::Io`.
//!    `crash_now` does the same at once. Calls after the crash do not advance the counter.
//! 7. `crash_image(policy, seed)` crashes the instance (for good) and builds a new `SimFs` from
//!    its durable state, as a reboot would find it:
//!    - directories: the durable entries, then (with `dir_ops_survive_prob > 0`) each pending
//!      operation, in log order, survives independently with that probability and is replayed
//!      onto them. A surviving rename brings both halves, a dropped one neither.
//!    - files: only inodes reachable from the root through those entries exist. A file whose
//!      data was synced but whose name never became durable is gone (an orphan).
//!    - data: each reachable file holds its durable bytes. With `torn_sector = Some(s)`, a file
//!      whose volatile bytes extend its durable bytes (the append-only case) also keeps a seeded
//!      prefix of its unsynced tail cut at `s`-aligned file offsets (zero, some or all of the
//!      tail), and with probability `torn_garbage_prob` the last kept sector holds seeded random
//!      bytes instead of the data. A file truncated below its durable length since its last
//!      sync is never torn: it comes back with exactly its durable bytes. With
//!      `keep_unsynced`, each reachable file holds its volatile bytes instead.
//!    - locks are not part of the image; the new instance has no faults and no crash point
//!      armed, its call counter starts at zero and its fault stream is seeded by a value
//!      derived from `seed` (not `seed` itself, which drove the crash decisions).
//!
//! ## Errors (only while armed with [`SimFs::set_faults`])
//! 8. Each call draws one number from a ChaCha8 stream seeded by the instance seed, whether or
//!    not faults are armed, so call `n`'s decision depends only on the seed and `n`.
//!    - `read_at` fails with probability `read_error_prob`; a read that does not fail returns
//!      its bytes with one seeded bit flipped with probability `corrupt_read_prob` (transient:
//!      the stored bytes are intact, and a retry reads them right);
//!    - `append` and `truncate` fail with probability `write_error_prob`. A failed truncate
//!      changes nothing. A failed append appends nothing, unless `short_writes` is set: then it
//!      appends a seeded prefix (possibly empty, never all) of the data before failing;
//!    - `sync` and `sync_dir` fail with probability `sync_error_prob`; what a failed one made
//!      durable is undetermined (rule 12);
//!    - `create`, `open`, `rename`, `remove`, `link`, `list`, `create_dir_all` and `lock` fail
//!      with probability `metadata_error_prob` and change nothing;
//!    - `len` and `exists` never fail by injection.
//!
//!    Injected errors are `Error::Io` with `io::ErrorKind::Other` and a message starting with
//!    "injected" and ending with `(fault #N)`.
//! 9. With `capacity_bytes = Some(c)`, an append (or an extending truncate) that would bring the
//!    volatile bytes of all live files (those with a volatile name or an open handle) above `c`
//!    fails with `io::ErrorKind::StorageFull`, a message ending with `(fault #N)`, and changes
//!    nothing.
//!
//! ## Rot (only when asked, with [`SimFs::rot_sector`])
//! 10. A rotted sector of a file reads back with every byte XORed by a non-zero pattern, on
//!     every read, until [`SimFs::heal_rot`]; it survives crashes with its file. Only durable
//!     bytes rot, and only whole sectors before a per-file guard at the end (the runner keeps
//!     rot out of a manifest's last 4 KiB: a rotted final record cannot be told from a torn
//!     unsynced one, which a log that tolerates torn tails drops by design).
//!
//! ## Evidence
//! 11. Every injected error (a short write is its own kind), ENOSPC refusal, corrupt read and
//!     rotted read is a fault with an id (1, 2, ... per instance) recorded in a log
//!     ([`SimFs::faults_after`]) with its call number, kind, call and path, and the crash
//!     point records where it struck ([`SimFs::crash_point`]): the runner explains every engine
//!     error by this evidence.
//!
//! ## Failed syncs
//! 12. A failed `sync` or `sync_dir` promises nothing either way (as after a real fsync EIO:
//!     some pages may have reached the media before the error, the rest are still in the page
//!     cache). Reads keep seeing the volatile state. What the failed call made durable is
//!     decided by its roll (no extra draw), one outcome of three:
//!     - nothing;
//!     - all of it, exactly as a successful call would have;
//!     - part of it: for `sync`, a seeded strict prefix of the file's unsynced tail cut at a
//!       512-byte file offset (only with `torn_failed_syncs`, and only for an append-only
//!       tail; otherwise this outcome makes nothing durable); for `sync_dir`, a seeded strict
//!       prefix, in log order, of the pending operations a successful call would have made
//!       durable.
//!
//!     What is not made durable stays volatile: a later crash may still drop it or (under a
//!     policy that keeps unsynced state) keep it, and a later successful sync makes it durable.
//!     The outcome counts in [`SimStats::failed_syncs_whole`] and
//!     [`SimStats::failed_syncs_partial`].
//!
//! # Representation
//! One `Mutex<State>` guards everything: call numbering and the fault stream need a total order
//! anyway, and an append is one lock, one map lookup and one `extend_from_slice`. Files are
//! append-only apart from `truncate`, so a file's durable bytes are kept as `durable_len` (the
//! durable bytes are `data[..durable_len]`) until a truncate cuts below `durable_len`; only then
//! are the durable bytes copied aside (`durable_copy`), and the next sync drops the copy. Inodes
//! are reference counted (volatile names, durable names, pending operations, open handles) and
//! freed when nothing refers to them.
//!
//! Size: over 600 lines on purpose: the fault model (this comment, the specification) and the
//! state that implements it are read side by side; the calls live in `fs/calls.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cobble::{Error, File, FileLock, Fs, Result};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::crash::{self, CrashPolicy, CrashReport};
use super::Digest;

mod calls;

use calls::SimFile;

/// The root directory's inode number.
pub(super) const ROOT: u64 = 0;

/// Error injection settings. All probabilities are in `[0, 1]`; the default injects nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Chance that a `read_at` fails.
    pub read_error_prob: f64,
    /// Chance that an `append` or a `truncate` fails.
    pub write_error_prob: f64,
    /// Chance that a `sync` or a `sync_dir` fails.
    pub sync_error_prob: f64,
    /// Chance that a namespace call (`create`, `open`, `rename`, `remove`, `link`, `list`,
    /// `create_dir_all`, `lock`) fails.
    pub metadata_error_prob: f64,
    /// Chance that a `read_at` that succeeds returns its bytes with one bit flipped, this once
    /// (a transient corruption on the way from the media: a retry reads the right bytes).
    pub corrupt_read_prob: f64,
    /// A failed append first appends a seeded strict prefix of its data (a short write).
    pub short_writes: bool,
    /// A failed `sync` may make a sector-aligned part of the file's unsynced tail durable
    /// (fault model rule 12). Without it a failed sync makes all or nothing durable, so it
    /// never leaves a torn record on the media.
    pub torn_failed_syncs: bool,
    /// The most volatile bytes all live files may hold together.
    pub capacity_bytes: Option<u64>,
}

impl FaultConfig {
    /// No injected errors and no capacity limit.
    pub fn none() -> FaultConfig {
        FaultConfig::default()
    }
}

/// Counters, for reports and for checking that a run exercised what it meant to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Calls made (the call counter).
    pub calls: u64,
    /// Errors injected by the fault stream.
    pub errors_injected: u64,
    /// Appends or truncates refused for lack of capacity.
    pub storage_full_errors: u64,
    /// Failed appends that wrote a strict prefix of their data first.
    pub short_writes: u64,
    /// Reads that returned flipped bits once (transient corruption).
    pub corrupt_reads: u64,
    /// Reads that met a rotted sector (persistent corruption) and returned its bad bytes.
    pub rot_reads: u64,
    /// Sectors rotted in this instance (see [`SimFs::rot_sector`]).
    pub rotted_sectors: u64,
    /// Every fault of this instance so far: injected errors, ENOSPC refusals, corrupt and
    /// rotted reads. Fault ids run 1..=faults.
    pub faults: u64,
    /// Bytes appended (including short writes).
    pub bytes_written: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Successful `File::sync` calls.
    pub syncs: u64,
    /// Successful `sync_dir` calls.
    pub dir_syncs: u64,
    /// Failed `sync`/`sync_dir` calls that made everything durable anyway (rule 12).
    pub failed_syncs_whole: u64,
    /// Failed `sync`/`sync_dir` calls that made part of their work durable (rule 12).
    pub failed_syncs_partial: u64,
    /// Volatile bytes of live files now.
    pub live_bytes: u64,
    /// Inodes now held (files and directories).
    pub inodes: u64,
}

/// What kind of fault a [`FaultRecord`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// An injected error from `read_at`.
    ReadError,
    /// An injected error from `append` or `truncate` that wrote nothing.
    WriteError,
    /// An injected `append` error after writing a strict, non-empty prefix of the data.
    ShortWrite,
    /// An injected error from `sync` or `sync_dir`.
    SyncError,
    /// An injected error from a namespace call.
    MetadataError,
    /// An append or truncate refused for lack of capacity (ENOSPC).
    StorageFull,
    /// A read that returned one flipped bit, once.
    CorruptRead,
    /// A read that returned the bad bytes of a rotted sector.
    RotRead,
}

impl FaultKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::ReadError => "read-error",
            FaultKind::WriteError => "write-error",
            FaultKind::ShortWrite => "short-write",
            FaultKind::SyncError => "sync-error",
            FaultKind::MetadataError => "metadata-error",
            FaultKind::StorageFull => "enospc",
            FaultKind::CorruptRead => "corrupt-read",
            FaultKind::RotRead => "rot-read",
        }
    }

    /// True for faults that surface as an error from the call (the others return bad bytes).
    pub fn is_error(self) -> bool {
        !matches!(self, FaultKind::CorruptRead | FaultKind::RotRead)
    }
}

/// One fault that SimFs really produced: the evidence an engine error must be explained by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// Numbered from 1 per instance; injected error messages carry it as `(fault #id)`.
    pub id: u64,
    /// The call number it struck.
    pub call: u64,
    pub kind: FaultKind,
    /// The call (`append`, `sync`, `sync dir`, `rename`, ...).
    pub op: &'static str,
    /// The path the call was about.
    pub path: String,
    /// For a failed `sync` or `sync_dir`, what it made durable anyway (rule 12): `"nothing"`,
    /// `"all"` or `"part"`. Empty for every other fault.
    pub persisted: &'static str,
}

/// Where an armed crash point struck: the call, and the path it was about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashPoint {
    pub call: u64,
    pub op: &'static str,
    pub path: String,
}

/// Finds the fault ids an error message cites (`fault #N`), in order.
pub fn cited_faults(message: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut rest = message;
    while let Some(i) = rest.find("fault #") {
        rest = &rest[i + "fault #".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(id) = digits.parse() {
            out.push(id);
        }
    }
    out
}

#[derive(Debug, Default)]
pub(super) struct FileData {
    /// Volatile bytes: what reads see.
    pub(super) data: Vec<u8>,
    /// Length of the durable bytes.
    pub(super) durable_len: usize,
    /// The durable bytes, when a truncate cut `data` below `durable_len` since the last sync.
    /// When `None`, the durable bytes are `data[..durable_len]`.
    pub(super) durable_copy: Option<Vec<u8>>,
}

impl FileData {
    pub(super) fn durable(&self) -> &[u8] {
        match &self.durable_copy {
            Some(copy) => copy,
            None => &self.data[..self.durable_len],
        }
    }

    fn truncate(&mut self, len: usize) {
        if len < self.data.len() {
            if self.durable_copy.is_none() && len < self.durable_len {
                self.durable_copy = Some(self.data[..self.durable_len].to_vec());
            }
            self.data.truncate(len);
        } else {
            self.data.resize(len, 0);
        }
    }

    fn sync(&mut self) {
        self.durable_copy = None;
        self.durable_len = self.data.len();
    }

    /// Makes a strict, non-empty prefix of the append-only unsynced tail durable, cut at a
    /// `FAILED_SYNC_SECTOR`-aligned file offset chosen by `r` (rule 12). Returns whether it
    /// did: a tail shorter than one sector boundary, or a file truncated below its durable
    /// length, gets nothing.
    fn sync_part(&mut self, r: u64) -> bool {
        if self.durable_copy.is_some() || self.data.len() <= self.durable_len {
            return false;
        }
        // Sector boundaries strictly inside the tail.
        let first = self.durable_len / FAILED_SYNC_SECTOR + 1;
        let last = (self.data.len() - 1) / FAILED_SYNC_SECTOR;
        if first > last {
            return false;
        }
        let cut = first + (r % (last - first + 1) as u64) as usize;
        self.durable_len = cut * FAILED_SYNC_SECTOR;
        true
    }
}

/// The granularity at which a failed sync may have persisted part of a file (rule 12).
const FAILED_SYNC_SECTOR: usize = 512;

/// What a failed `sync` or `sync_dir` made durable (fault model rule 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailedSync {
    Nothing,
    Whole,
    /// Part of it; the number picks which part.
    Part(u64),
}

impl FailedSync {
    /// Decided by the call's own roll, so that the fault stream stays one draw per call.
    fn from_roll(roll: u64) -> FailedSync {
        let r = remix(roll ^ 0x05fa_11ed_517c);
        match r % 3 {
            0 => FailedSync::Nothing,
            1 => FailedSync::Whole,
            _ => FailedSync::Part(r / 3),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct DirData {
    pub(super) entries: BTreeMap<String, u64>,
    pub(super) durable: BTreeMap<String, u64>,
}

#[derive(Debug)]
pub(super) enum Node {
    File(FileData),
    Dir(DirData),
}

#[derive(Debug)]
pub(super) struct Inode {
    pub(super) node: Node,
    /// Volatile entries naming this inode.
    pub(super) vlinks: u32,
    /// Durable entries naming this inode.
    dlinks: u32,
    /// Pending directory operations that would name this inode.
    op_refs: u32,
    /// Open `SimFile` handles.
    handles: u32,
    /// Whether `live_bytes` includes this inode's bytes (it has a volatile name or a handle).
    counted: bool,
}

impl Inode {
    fn new(node: Node) -> Inode {
        Inode { node, vlinks: 0, dlinks: 0, op_refs: 0, handles: 0, counted: false }
    }

    fn len(&self) -> usize {
        match &self.node {
            Node::File(f) => f.data.len(),
            Node::Dir(_) => 0,
        }
    }
}

/// One pending (volatile) directory operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DirOp {
    /// A new name (create, link, mkdir, lock creating its file).
    Insert { dir: u64, name: String, ino: u64 },
    /// A removed name.
    Remove { dir: u64, name: String },
    /// A rename: both halves or neither.
    Rename { from_dir: u64, from_name: String, to_dir: u64, to_name: String, ino: u64 },
}

impl DirOp {
    fn touches(&self, d: u64) -> bool {
        match self {
            DirOp::Insert { dir, .. } | DirOp::Remove { dir, .. } => *dir == d,
            DirOp::Rename { from_dir, to_dir, .. } => *from_dir == d || *to_dir == d,
        }
    }

    fn dirs(&self) -> [u64; 2] {
        match self {
            DirOp::Insert { dir, .. } | DirOp::Remove { dir, .. } => [*dir, *dir],
            DirOp::Rename { from_dir, to_dir, .. } => [*from_dir, *to_dir],
        }
    }

    fn ino(&self) -> Option<u64> {
        match self {
            DirOp::Insert { ino, .. } | DirOp::Rename { ino, .. } => Some(*ino),
            DirOp::Remove { .. } => None,
        }
    }

    /// Applies the operation to a set of entry maps (one per directory inode).
    pub(super) fn apply_to(&self, dirs: &mut BTreeMap<u64, BTreeMap<String, u64>>) {
        match self {
            DirOp::Insert { dir, name, ino } => {
                dirs.entry(*dir).or_default().insert(name.clone(), *ino);
            }
            DirOp::Remove { dir, name } => {
                dirs.entry(*dir).or_default().remove(name);
            }
            DirOp::Rename { from_dir, from_name, to_dir, to_name, ino } => {
                dirs.entry(*from_dir).or_default().remove(from_name);
                dirs.entry(*to_dir).or_default().insert(to_name.clone(), *ino);
            }
        }
    }

    fn hash_into(&self, h: &mut Digest) {
        match self {
            DirOp::Insert { dir, name, ino } => {
                h.write_u64(1);
                h.write_u64(*dir);
                h.write_bytes(name.as_bytes());
                h.write_u64(*ino);
            }
            DirOp::Remove { dir, name } => {
                h.write_u64(2);
                h.write_u64(*dir);
                h.write_bytes(name.as_bytes());
            }
            DirOp::Rename { from_dir, from_name, to_dir, to_name, ino } => {
                h.write_u64(3);
                h.write_u64(*from_dir);
                h.write_bytes(from_name.as_bytes());
                h.write_u64(*to_dir);
                h.write_bytes(to_name.as_bytes());
                h.write_u64(*ino);
            }
        }
    }
}

/// Which fault probability a call is exposed to.
#[derive(Clone, Copy, Debug)]
enum Exposure {
    Read,
    Write,
    Sync,
    Metadata,
    Never,
}

pub(super) struct State {
    pub(super) inodes: BTreeMap<u64, Inode>,
    pub(super) next_ino: u64,
    pub(super) pending: Vec<DirOp>,
    locks: BTreeSet<PathBuf>,
    crash_at: Option<u64>,
    crashed: bool,
    faults: FaultConfig,
    rng: ChaCha8Rng,
    live_bytes: u64,
    stats: SimStats,
    /// Every fault produced, in order (`log[i].id == i + 1`).
    log: Vec<FaultRecord>,
    /// Where the armed crash point struck, if it did.
    crash_point: Option<CrashPoint>,
    /// Rotted sectors per file inode: byte ranges that read back as garbage forever.
    pub(super) rot: BTreeMap<u64, Vec<(usize, usize)>>,
    /// Calls into the image's contents so far: every reach for a file's data, a directory's
    /// entries, a new inode or a pending directory operation counts (see [`SimFs::changes`]).
    changes: u64,
}

/// Splits a path into its names; `/`, `.` and a Windows prefix are ignored, `..` is refused.
fn names(path: &Path) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s.to_str().ok_or_else(|| {
                Error::InvalidArgument(format!("non-UTF-8 path {}", path.display()))
            })?),
            Component::ParentDir => {
                return Err(Error::InvalidArgument(format!(
                    "SimFs does not resolve '..' in {}",
                    path.display()
                )))
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

fn io_err(op: &str, path: &Path, kind: std::io::ErrorKind, msg: &str) -> Error {
    Error::io(format!("{op} {}", path.display()), std::io::Error::new(kind, msg.to_string()))
}

fn not_found(path: &Path) -> Error {
    Error::NotFound(path.display().to_string())
}

fn crashed_err(op: &str, what: &dyn fmt::Display) -> Error {
    Error::io(format!("{op} {what}"), std::io::Error::other("simulated crash: the machine is down"))
}

/// The byte a rotted sector XORs into byte `offset` of its file: never zero, so every rotted
/// byte reads back wrong.
fn rot_pattern(offset: usize) -> u8 {
    (remix(offset as u64) as u8) | 1
}

/// A uniform number in `[0, 1)` from 53 random bits.
fn unit(roll: u64) -> f64 {
    (roll >> 11) as f64 / (1u64 << 53) as f64
}

/// A second, independent-looking number from the same roll (splitmix64 finaliser).
fn remix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl State {
    fn new(seed: u64) -> State {
        let mut inodes = BTreeMap::new();
        let mut root = Inode::new(Node::Dir(DirData::default()));
        // The root's own name is the mount point: durable and volatile forever.
        root.vlinks = 1;
        root.dlinks = 1;
        inodes.insert(ROOT, root);
        State {
            inodes,
            next_ino: ROOT + 1,
            pending: Vec::new(),
            locks: BTreeSet::new(),
            crash_at: None,
            crashed: false,
            faults: FaultConfig::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            live_bytes: 0,
            stats: SimStats::default(),
            log: Vec::new(),
            crash_point: None,
            rot: BTreeMap::new(),
            changes: 0,
        }
    }

    /// Builds a fresh, fully durable state from a crash image: `dirs` holds the entries of every
    /// reachable directory, `files` the bytes of every reachable file.
    pub(super) fn from_image(
        seed: u64,
        dirs: BTreeMap<u64, BTreeMap<String, u64>>,
        files: BTreeMap<u64, Vec<u8>>,
        next_ino: u64,
    ) -> State {
        let mut state = State::new(seed);
        state.next_ino = next_ino;
        let mut links: BTreeMap<u64, u32> = BTreeMap::new();
        for entries in dirs.values() {
            for ino in entries.values() {
                *links.entry(*ino).or_default() += 1;
            }
        }
        for (ino, entries) in dirs {
            let node = Node::Dir(DirData { durable: entries.clone(), entries });
            state.inodes.insert(ino, Inode::new(node));
        }
        for (ino, data) in files {
            let durable_len = data.len();
            let node = Node::File(FileData { data, durable_len, durable_copy: None });
            state.inodes.insert(ino, Inode::new(node));
        }
        let root = state.inodes.get_mut(&ROOT).expect("the image always holds the root");
        root.vlinks = 1;
        root.dlinks = 1;
        for (ino, n) in links {
            let inode = state.inodes.get_mut(&ino).expect("entries name reachable inodes");
            inode.vlinks += n;
            inode.dlinks += n;
            state.live_bytes += inode.len() as u64;
            inode.counted = true;
        }
        state
    }

    /// Numbers the call, applies the crash point and draws the call's fault roll. Returns the
    /// roll when the call may proceed (fault checks still to come).
    fn begin(&mut self, op: &'static str, what: &dyn fmt::Display) -> Result<u64> {
        if self.crashed {
            return Err(crashed_err(op, what));
        }
        self.stats.calls += 1;
        let roll = self.rng.next_u64();
        if self.crash_at == Some(self.stats.calls) {
            self.crashed = true;
            self.crash_point =
                Some(CrashPoint { call: self.stats.calls, op, path: what.to_string() });
            return Err(crashed_err(op, what));
        }
        Ok(roll)
    }

    /// Records a fault and returns its id.
    fn record(&mut self, kind: FaultKind, op: &'static str, what: &dyn fmt::Display) -> u64 {
        self.stats.faults += 1;
        let id = self.stats.faults;
        self.log.push(FaultRecord {
            id,
            call: self.stats.calls,
            kind,
            op,
            path: what.to_string(),
            persisted: "",
        });
        id
    }

    /// Notes on the newest fault (a failed sync) what it made durable anyway.
    fn note_persisted(&mut self, persisted: &'static str) {
        if let Some(last) = self.log.last_mut() {
            last.persisted = persisted;
        }
    }

    /// `begin` plus the injected-error decision for calls exposed to `exposure`.
    fn begin_call(
        &mut self,
        op: &'static str,
        what: &dyn fmt::Display,
        exposure: Exposure,
    ) -> Result<u64> {
        let roll = self.begin(op, what)?;
        if self.injects(roll, exposure) {
            return Err(self.injected(op, what, exposure));
        }
        Ok(roll)
    }

    fn injects(&self, roll: u64, exposure: Exposure) -> bool {
        let prob = match exposure {
            Exposure::Read => self.faults.read_error_prob,
            Exposure::Write => self.faults.write_error_prob,
            Exposure::Sync => self.faults.sync_error_prob,
            Exposure::Metadata => self.faults.metadata_error_prob,
            Exposure::Never => 0.0,
        };
        prob > 0.0 && unit(roll) < prob
    }

    fn injected(&mut self, op: &'static str, what: &dyn fmt::Display, exposure: Exposure) -> Error {
        let kind = match exposure {
            Exposure::Read => FaultKind::ReadError,
            Exposure::Write => FaultKind::WriteError,
            Exposure::Sync => FaultKind::SyncError,
            Exposure::Metadata | Exposure::Never => FaultKind::MetadataError,
        };
        self.injected_kind(op, what, kind)
    }

    fn injected_kind(
        &mut self,
        op: &'static str,
        what: &dyn fmt::Display,
        kind: FaultKind,
    ) -> Error {
        self.stats.errors_injected += 1;
        let name = match kind {
            FaultKind::ReadError => "read",
            FaultKind::WriteError | FaultKind::ShortWrite => "write",
            FaultKind::SyncError => "sync",
            _ => "metadata",
        };
        let id = self.record(kind, op, what);
        Error::io(
            format!("{op} {what}"),
            std::io::Error::other(format!("injected {name} error (fault #{id})")),
        )
    }

    fn check_capacity(
        &mut self,
        op: &'static str,
        what: &dyn fmt::Display,
        grow: usize,
    ) -> Result<()> {
        if let Some(cap) = self.faults.capacity_bytes {
            if self.live_bytes.saturating_add(grow as u64) > cap {
                self.stats.storage_full_errors += 1;
                let id = self.record(FaultKind::StorageFull, op, what);
                return Err(Error::io(
                    format!("{op} {what}"),
                    std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        format!(
                            "no space left: {} of {cap} bytes used (fault #{id})",
                            self.live_bytes
                        ),
                    ),
                ));
            }
        }
        Ok(())
    }

    fn inode(&self, ino: u64) -> &Inode {
        self.inodes.get(&ino).expect("a referenced inode is never freed")
    }

    fn inode_mut(&mut self, ino: u64) -> &mut Inode {
        self.inodes.get_mut(&ino).expect("a referenced inode is never freed")
    }

    fn dir(&self, ino: u64) -> &DirData {
        match &self.inode(ino).node {
            Node::Dir(d) => d,
            Node::File(_) => panic!("inode {ino} is not a directory"),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> &mut DirData {
        self.changes += 1;
        match &mut self.inode_mut(ino).node {
            Node::Dir(d) => d,
            Node::File(_) => panic!("inode {ino} is not a directory"),
        }
    }

    fn file_mut(&mut self, ino: u64) -> &mut FileData {
        self.changes += 1;
        match &mut self.inode_mut(ino).node {
            Node::File(f) => f,
            Node::Dir(_) => panic!("inode {ino} is not a file"),
        }
    }

    fn is_dir(&self, ino: u64) -> bool {
        matches!(self.inode(ino).node, Node::Dir(_))
    }

    /// Re-derives whether `ino` counts toward `live_bytes` and frees it when nothing refers to
    /// it. Call after every change to its reference counts.
    fn refresh(&mut self, ino: u64) {
        let Some(inode) = self.inodes.get_mut(&ino) else { return };
        let live = inode.vlinks > 0 || inode.handles > 0;
        if live != inode.counted {
            let len = inode.len() as u64;
            if live {
                self.live_bytes += len;
            } else {
                self.live_bytes -= len;
            }
            inode.counted = live;
        }
        if inode.vlinks == 0 && inode.dlinks == 0 && inode.op_refs == 0 && inode.handles == 0 {
            assert!(ino != ROOT && !matches!(inode.node, Node::Dir(_)), "freeing dir {ino}");
            self.inodes.remove(&ino);
        }
    }

    /// Changes a file's volatile length, keeping `live_bytes` in step.
    fn resize_accounting(&mut self, ino: u64, old_len: usize, new_len: usize) {
        if self.inode(ino).counted {
            self.live_bytes = self.live_bytes - old_len as u64 + new_len as u64;
        }
    }

    fn resolve(&self, names: &[&str]) -> Option<u64> {
        let mut ino = ROOT;
        for name in names {
            match &self.inode(ino).node {
                Node::Dir(d) => ino = *d.entries.get(*name)?,
                Node::File(_) => return None,
            }
        }
        Some(ino)
    }

    /// The directory that holds (or would hold) `path`, and the last name.
    fn parent_of<'p>(&self, op: &'static str, path: &'p Path) -> Result<(u64, &'p str)> {
        let names = names(path)?;
        let Some((last, parents)) = names.split_last() else {
            return Err(Error::InvalidArgument(format!(
                "{op} needs a name, got {}",
                path.display()
            )));
        };
        match self.resolve(parents) {
            Some(dir) if self.is_dir(dir) => Ok((dir, last)),
            _ => Err(io_err(op, path, std::io::ErrorKind::NotFound, "parent directory missing")),
        }
    }

    fn lookup(&self, dir: u64, name: &str) -> Option<u64> {
        self.dir(dir).entries.get(name).copied()
    }

    fn push_op(&mut self, op: DirOp) {
        self.changes += 1;
        if let Some(ino) = op.ino() {
            self.inode_mut(ino).op_refs += 1;
        }
        self.pending.push(op);
    }

    /// Sets a volatile entry and logs the operation.
    fn insert_entry(&mut self, dir: u64, name: &str, ino: u64) {
        self.inode_mut(ino).vlinks += 1;
        let old = self.dir_mut(dir).entries.insert(name.to_string(), ino);
        if let Some(old) = old {
            self.inode_mut(old).vlinks -= 1;
            self.refresh(old);
        }
        self.refresh(ino);
        self.push_op(DirOp::Insert { dir, name: name.to_string(), ino });
    }

    fn new_inode(&mut self, node: Node) -> u64 {
        self.changes += 1;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::new(node));
        ino
    }

    /// Makes the pending operation durable: applies it to the durable entries.
    fn apply_durable(&mut self, op: DirOp) {
        let set = |s: &mut State, dir: u64, name: &str, ino: Option<u64>| {
            if let Some(ino) = ino {
                s.inode_mut(ino).dlinks += 1;
            }
            let d = s.dir_mut(dir);
            let old = match ino {
                Some(ino) => d.durable.insert(name.to_string(), ino),
                None => d.durable.remove(name),
            };
            if let Some(old) = old {
                s.inode_mut(old).dlinks -= 1;
                s.refresh(old);
            }
        };
        match &op {
            DirOp::Insert { dir, name, ino } => set(self, *dir, name, Some(*ino)),
            DirOp::Remove { dir, name } => set(self, *dir, name, None),
            DirOp::Rename { from_dir, from_name, to_dir, to_name, ino } => {
                set(self, *from_dir, from_name, None);
                set(self, *to_dir, to_name, Some(*ino));
            }
        }
        if let Some(ino) = op.ino() {
            self.inode_mut(ino).op_refs -= 1;
            self.refresh(ino);
        }
    }

    /// Makes durable every pending operation touching `dir`, and every earlier one touching a
    /// directory those touch (fault model, rule 4).
    fn commit_dir(&mut self, dir: u64) {
        self.commit_dir_part(dir, None);
        let d = self.dir(dir);
        assert_eq!(d.entries, d.durable, "sync_dir left dir {dir} with volatile entries");
    }

    /// `commit_dir`, limited (for a failed `sync_dir`, rule 12) to the first `limit` of the
    /// operations it would make durable, in log order. For every directory, the operations
    /// made durable are still a prefix of its pending ones. Returns how many it made durable
    /// and how many the whole commit holds.
    fn commit_dir_part(&mut self, dir: u64, limit: Option<usize>) -> (usize, usize) {
        if !self.pending.iter().any(|op| op.touches(dir)) {
            return (0, 0);
        }
        let mut needed = BTreeSet::from([dir]);
        let mut commit = vec![false; self.pending.len()];
        for (i, op) in self.pending.iter().enumerate().rev() {
            if op.dirs().iter().any(|d| needed.contains(d)) {
                commit[i] = true;
                needed.extend(op.dirs());
            }
        }
        let total = commit.iter().filter(|c| **c).count();
        let mut left = limit.unwrap_or(total).min(total);
        let made = left;
        let ops = std::mem::take(&mut self.pending);
        for (op, commit) in ops.into_iter().zip(commit) {
            if commit && left > 0 {
                left -= 1;
                self.apply_durable(op);
            } else {
                self.pending.push(op);
            }
        }
        (made, total)
    }

    fn make_all_durable(&mut self) {
        self.changes += 1;
        for op in std::mem::take(&mut self.pending) {
            self.apply_durable(op);
        }
        for inode in self.inodes.values_mut() {
            if let Node::File(f) = &mut inode.node {
                f.sync();
            }
        }
    }

    /// Every path reachable from the root through `entries` of `dirs`, in sorted order.
    pub(super) fn walk<'a>(
        dirs: &dyn Fn(u64) -> Option<&'a BTreeMap<String, u64>>,
        visit: &mut dyn FnMut(&str, u64),
    ) {
        fn go<'a>(
            dirs: &dyn Fn(u64) -> Option<&'a BTreeMap<String, u64>>,
            visit: &mut dyn FnMut(&str, u64),
            path: &mut String,
            ino: u64,
            on_path: &mut BTreeSet<u64>,
        ) {
            let Some(entries) = dirs(ino) else { return };
            // A crash image may replay a subset of renames into a directory loop; never loop.
            if !on_path.insert(ino) {
                return;
            }
            for (name, child) in entries {
                let len = path.len();
                path.push('/');
                path.push_str(name);
                visit(path, *child);
                go(dirs, visit, path, *child, on_path);
                path.truncate(len);
            }
            on_path.remove(&ino);
        }
        visit("/", ROOT);
        go(dirs, visit, &mut String::new(), ROOT, &mut BTreeSet::new());
    }
}

struct Shared {
    seed: u64,
    state: Mutex<State>,
}

/// The simulated filesystem. Cloning shares the same state (it is one machine).
#[derive(Clone)]
pub struct SimFs {
    shared: Arc<Shared>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock_state();
        f.debug_struct("SimFs")
            .field("seed", &self.shared.seed)
            .field("calls", &s.stats.calls)
            .field("crashed", &s.crashed)
            .field("inodes", &s.inodes.len())
            .field("pending_dir_ops", &s.pending.len())
            .finish()
    }
}

impl SimFs {
    /// An empty filesystem holding only the (durable) root directory; `seed` seeds the fault
    /// stream.
    pub fn new(seed: u64) -> SimFs {
        SimFs::from_state(seed, State::new(seed))
    }

    fn from_state(seed: u64, state: State) -> SimFs {
        SimFs { shared: Arc::new(Shared { seed, state: Mutex::new(state) }) }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    /// Writes `files` (`/`-rooted paths and their bytes) durably, through the ordinary calls:
    /// each file created, written and synced, then every directory on the way synced, deepest
    /// first. A saved database (crossversion images, `image.rs`) is loaded this way.
    pub fn import(&self, files: &[(String, Vec<u8>)]) -> Result<()> {
        let mut dirs = std::collections::BTreeSet::new();
        for (path, bytes) in files {
            let path = Path::new(path);
            let parent = path.parent().unwrap_or(Path::new("/"));
            self.create_dir_all(parent)?;
            let f = self.create(path)?;
            f.append(bytes)?;
            f.sync()?;
            dirs.extend(parent.ancestors().map(Path::to_path_buf));
        }
        for dir in dirs.iter().rev() {
            self.sync_dir(dir)?;
        }
        Ok(())
    }

    /// Arms (or disarms) the crash point: call number `call` fails and crashes the instance.
    pub fn set_crash_at(&self, call: Option<u64>) {
        self.lock_state().crash_at = call;
    }

    /// Calls made so far; the next call is number `call_count() + 1`.
    pub fn call_count(&self) -> u64 {
        self.lock_state().stats.calls
    }

    /// Crashes the instance now: every later call fails.
    pub fn crash_now(&self) {
        self.lock_state().crashed = true;
    }

    /// True once the instance has crashed.
    pub fn is_crashed(&self) -> bool {
        self.lock_state().crashed
    }

    /// Crashes this instance (if it is not already) and returns what a reboot finds, as a new,
    /// independent `SimFs`, with what the crash threw away. Fault model, rule 7.
    pub fn crash_image(&self, policy: &CrashPolicy, seed: u64) -> (SimFs, CrashReport) {
        let mut state = self.lock_state();
        state.crashed = true;
        let (image, report) = crash::build_image(&state, policy, seed);
        (SimFs::from_state(seed, image), report)
    }

    /// What a crash now would leave of this instance's durable state (unsynced data and
    /// directory entries dropped), as a new, independent `SimFs`; this one carries on
    /// untouched. For checking that something made durable really is, without crashing.
    pub fn durable_image(&self, seed: u64) -> SimFs {
        let state = self.lock_state();
        let (image, _) = crash::build_image(&state, &CrashPolicy::drop_unsynced(), seed);
        SimFs::from_state(seed, image)
    }

    /// Replaces the error-injection settings (`FaultConfig::none()` switches faults off).
    pub fn set_faults(&self, faults: FaultConfig) {
        for p in [
            faults.read_error_prob,
            faults.write_error_prob,
            faults.sync_error_prob,
            faults.metadata_error_prob,
            faults.corrupt_read_prob,
        ] {
            assert!((0.0..=1.0).contains(&p), "fault probability {p} out of [0, 1]");
        }
        self.lock_state().faults = faults;
    }

    /// The error-injection settings in force.
    pub fn faults(&self) -> FaultConfig {
        self.lock_state().faults.clone()
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        let s = self.lock_state();
        SimStats { live_bytes: s.live_bytes, inodes: s.inodes.len() as u64, ..s.stats.clone() }
    }

    /// Every fault this instance produced with an id above `after`, in order.
    pub fn faults_after(&self, after: u64) -> Vec<FaultRecord> {
        let s = self.lock_state();
        s.log.iter().skip(after as usize).cloned().collect()
    }

    /// Where the armed crash point struck, if it did.
    pub fn crash_point(&self) -> Option<CrashPoint> {
        self.lock_state().crash_point.clone()
    }

    /// Rots one seeded sector of `sector` bytes (aligned to file offsets) in a seeded file among
    /// those with a volatile name for which `pick` gives `Some(guard)` and that hold durable
    /// bytes, never within the last `guard` durable bytes of the file: from now on every read
    /// of it returns the same wrong bytes (fault model, rule 10). Not a call: no counter, no
    /// fault roll. Returns the path and the sector's offset, or `None` when no file qualifies.
    pub fn rot_sector(
        &self,
        seed: u64,
        sector: usize,
        pick: &dyn Fn(&str) -> Option<usize>,
    ) -> Option<(String, u64)> {
        assert!(sector > 0, "a sector has at least one byte");
        let mut s = self.lock_state();
        let mut candidates = Vec::new();
        let dirs = |ino: u64| match &s.inodes.get(&ino)?.node {
            Node::Dir(d) => Some(&d.entries),
            Node::File(_) => None,
        };
        State::walk(&dirs, &mut |path, ino| {
            if let Node::File(f) = &s.inode(ino).node {
                // Unguarded, every sector may rot, the final partial one too; guarded, only
                // sectors that end at or before `durable_len - guard`.
                let eligible = |guard: usize| match guard {
                    0 => f.durable_len.div_ceil(sector),
                    g => f.durable_len.saturating_sub(g) / sector,
                };
                if f.durable_copy.is_none() {
                    if let Some(n) = pick(path).map(eligible).filter(|&n| n > 0) {
                        candidates.push((path.to_string(), ino, f.durable_len, n));
                    }
                }
            }
        });
        if candidates.is_empty() {
            return None;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (path, ino, len, sectors) =
            candidates.swap_remove((rng.next_u64() % candidates.len() as u64) as usize);
        let lo = (rng.next_u64() % sectors as u64) as usize * sector;
        let hi = (lo + sector).min(len);
        // Rot is a property of the bytes, not a count of events: a sector that rots again
        // stays rotted once (two XORs of the pattern would restore the good bytes), so the
        // ranges are kept disjoint.
        let ranges = s.rot.entry(ino).or_default();
        let fresh = !ranges.iter().any(|&(a, b)| a <= lo && hi <= b);
        ranges.push((lo, hi));
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for &(a, b) in ranges.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *ranges = merged;
        if fresh {
            s.stats.rotted_sectors += 1;
        }
        Some((path, lo as u64))
    }

    /// True while some sector is rotted.
    pub fn has_rot(&self) -> bool {
        !self.lock_state().rot.is_empty()
    }

    /// Repairs every rotted sector (as restoring the bytes from a replica would): reads return
    /// the stored bytes again.
    pub fn heal_rot(&self) {
        self.lock_state().rot.clear();
    }

    /// Makes every file's bytes and every directory operation durable, without counting a call
    /// or injecting faults: for setting up state that "was there before the run".
    pub fn make_all_durable(&self) {
        self.lock_state().make_all_durable();
    }

    /// A counter that moves whenever anything in the image may have changed (file data, a
    /// directory's entries, an inode, durability): equal readings before and after some work
    /// prove it wrote nothing, without hashing the whole image as [`SimFs::image_hash`] does.
    pub fn changes(&self) -> u64 {
        self.lock_state().changes
    }

    /// A hash of the whole volatile and durable state (inodes, bytes, entries, pending
    /// operations), not of counters: equal histories give equal hashes.
    pub fn image_hash(&self) -> u64 {
        let s = self.lock_state();
        let mut h = Digest::default();
        for (ino, inode) in &s.inodes {
            h.write_u64(*ino);
            match &inode.node {
                Node::File(f) => {
                    h.write_u64(1);
                    h.write_bytes(&f.data);
                    h.write_bytes(f.durable());
                }
                Node::Dir(d) => {
                    h.write_u64(2);
                    for map in [&d.entries, &d.durable] {
                        h.write_u64(map.len() as u64);
                        for (name, child) in map {
                            h.write_bytes(name.as_bytes());
                            h.write_u64(*child);
                        }
                    }
                }
            }
        }
        h.write_u64(s.pending.len() as u64);
        for op in &s.pending {
            op.hash_into(&mut h);
        }
        h.finish()
    }

    /// What a crash under `CrashPolicy::drop_unsynced()` would keep, for debugging: every
    /// durably named path with its durable length, sorted. Directories end in `/`, length 0.
    pub fn durable_listing(&self) -> Vec<(String, u64)> {
        let s = self.lock_state();
        let mut out = Vec::new();
        let dirs = |ino: u64| match &s.inodes.get(&ino)?.node {
            Node::Dir(d) => Some(&d.durable),
            Node::File(_) => None,
        };
        State::walk(&dirs, &mut |path, ino| match &s.inode(ino).node {
            Node::Dir(_) if ino == ROOT => {}
            Node::Dir(_) => out.push((format!("{path}/"), 0)),
            Node::File(f) => out.push((path.to_string(), f.durable().len() as u64)),
        });
        out.sort();
        out
    }

    /// A digest of everything durably named under the directory `dir` (an absolute path):
    /// each path, file or directory, with its durable bytes. Equal digests of two images mean
    /// a database there reads the same in both. Not a call, like `durable_files`.
    pub fn durable_digest(&self, dir: &str) -> u64 {
        let s = self.lock_state();
        let mut h = Digest::default();
        let dirs = |ino: u64| match &s.inodes.get(&ino)?.node {
            Node::Dir(d) => Some(&d.durable),
            Node::File(_) => None,
        };
        let under = format!("{}/", dir.trim_end_matches('/'));
        State::walk(&dirs, &mut |path, ino| {
            if !path.starts_with(&under) {
                return;
            }
            h.write_bytes(path.as_bytes());
            match &s.inode(ino).node {
                Node::File(f) => h.write_bytes(f.durable()),
                Node::Dir(_) => h.write_u64(u64::MAX),
            }
        });
        h.finish()
    }

    /// Every durably named file with its durable bytes, sorted by path. Not a call: it counts
    /// nothing and draws nothing from the fault stream (crossversion images, debugging).
    pub fn durable_files(&self) -> Vec<(String, Vec<u8>)> {
        let s = self.lock_state();
        let mut out = Vec::new();
        let dirs = |ino: u64| match &s.inodes.get(&ino)?.node {
            Node::Dir(d) => Some(&d.durable),
            Node::File(_) => None,
        };
        State::walk(&dirs, &mut |path, ino| {
            if let Node::File(f) = &s.inode(ino).node {
                out.push((path.to_string(), f.durable().to_vec()));
            }
        });
        out.sort();
        out
    }

    fn open_handle(&self, state: &mut State, ino: u64, path: &Path) -> Arc<dyn File> {
        state.inode_mut(ino).handles += 1;
        state.refresh(ino);
        Arc::new(SimFile { shared: self.shared.clone(), ino, name: path.display().to_string() })
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // Every call is a scheduling point of the model scheduler (shuttle builds; `sched.rs`),
    // taken before the lock so no switch happens while it is held. Not while unwinding.
    if !std::thread::panicking() {
        crate::sched::io_point();
    }
    // A panic while holding the lock is a bug already being reported; don't pile on.
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}
