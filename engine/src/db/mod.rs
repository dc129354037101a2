//! `Db`: the engine's public handle: the write path, reads, snapshots, iterators, the state
//! and its lock, poisoning, manifest edits and obsolete-file deletion. Each background concept
//! has its own file: `memtable_switch.rs`, `flush.rs`, `compaction.rs` (with `output.rs`, the
//! tables both write), `scheduler.rs` (steps and worker threads), `recovery.rs`, `resume.rs`,
//! `close.rs`.
//!
//! Concurrency: one mutex guards [`State`]. Writers hold it for the whole write (WAL append,
//! optional sync, memtable insert), so seqnums are assigned and applied in order. Readers take
//! it only to clone a [`ReadState`] (memtables and version as `Arc`s) and then read without it.
//! Background steps take it to pick work and to install results, never while doing I/O on
//! tables.
//!
//! Size: near 1,000 lines: the public `Db` API and the state it guards; each background concept
//! has its own file beside it (flush, compaction, recovery, resume, close, scheduler).

mod checkpoint;
mod close;
mod compaction;
mod delete_only;
mod drain;
mod flush;
mod indexed_batch;
mod ingest;
mod memtable_switch;
mod operand_runs;
mod options;
mod output;
mod purge;
mod range;
mod read;
mod recovery;
mod resume;
mod scheduler;
mod tables;
#[cfg(test)]
mod tests;
mod write;

use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::batch::WriteBatch;
use crate::cache::{Cache, CacheMetrics};
use crate::env::{FileLock, Fs};
use crate::error::{Error, Result};
use crate::filename::{self, FileKind};
use crate::key::{InternalComparator, Kind};
use crate::memtable::Memtable;
use crate::options::{Options, Scheduler};
use crate::version::edit::VersionEdit;
use crate::version::manifest::{self, ManifestWriter};
use crate::version::{Version, NUM_LEVELS};
use crate::wal::LogWriter;
use tables::TableSet;

pub use drain::Drained;
pub use indexed_batch::IndexedBatch;
pub use ingest::{ExternalTable, SstWriter};
pub use options::{ReadOptions, WriteOptions};
pub use range::{KeyValue, Range};
pub use read::Cursor;
pub use scheduler::BackgroundWork;

/// An open database.
pub struct Db {
    inner: Arc<DbInner>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

pub(crate) struct DbInner {
    opts: Options,
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    cmp: InternalComparator,
    state: Mutex<State>,
    /// Signalled when background work appears, finishes, or the database shuts down: callers
    /// waiting for a flush, a compaction, a resume or close wait here.
    cond: Condvar,
    /// The background workers wait here ([`DbInner::wait_for_work`]); every [`DbInner::wake_all`]
    /// signals it too. Callers kick the workers through it alone, so that a stalled caller never
    /// wakes the other stalled callers: waking each other in a loop, they would spin, and under a
    /// priority scheduler (shuttle's PCT) starve the worker they wait for.
    work_cond: Condvar,
    tables: Arc<TableSet>,
    mem_counter: Arc<AtomicU64>,
    live_iterators: Arc<AtomicUsize>,
    /// Tables an iterator pinned to a prefix left out because their prefix filter ruled the
    /// prefix out.
    prefix_filter_skips: AtomicU64,
    /// Merge operands compactions folded into others with `partial_merge`.
    merge_operands_combined: AtomicU64,
    /// The range tombstones of every table of the last version an iterator read, fragmented
    /// (`DbInner::version_range_dels`). The `Weak` names the version and keeps its address
    /// from being reused while it is cached.
    version_range_dels: Mutex<Option<(Weak<Version>, Arc<crate::iter::TombstoneSet>)>>,
    /// What reads see: their own lock, held only to clone it.
    published: Mutex<Published>,
    threads: Mutex<Vec<crate::sync::thread::JoinHandle<()>>>,
}

/// A memtable and the WAL that holds its writes.
#[derive(Clone)]
pub(crate) struct MemEntry {
    mem: Arc<Memtable>,
    wal_num: u64,
}

pub(crate) struct State {
    mem: MemEntry,
    /// Full memtables waiting for flush, oldest first.
    imms: VecDeque<MemEntry>,
    wal: Option<LogWriter>,
    version: Arc<Version>,
    manifest: Option<ManifestWriter>,
    next_file_num: u64,
    /// The seqnum of the last write applied (visible to new reads).
    last_seq: u64,
    /// The last seqnum recorded in the manifest (the newest flushed write).
    manifest_last_seq: u64,
    /// The log number the live manifest records last: WALs below it hold only flushed writes.
    /// It never decreases.
    log_number: u64,
    /// Live snapshots: seqnum -> count.
    snapshots: BTreeMap<u64, usize>,
    /// Set by the first failed WAL or manifest write or sync (or a panic); cleared only by
    /// a successful [`Db::resume`]. While set, writes and background steps are refused and no
    /// file is deleted.
    poison: Option<Poison>,
    /// A [`Db::resume`] is writing tables or the new manifest without the lock.
    resuming: bool,
    /// Successful resumes so far: a background step that started before one and failed (under
    /// the poison it cleared) reports nothing once it has.
    resumes: u64,
    closed: bool,
    shutting_down: bool,
    flushing: bool,
    /// A [`Db::ingest`] holds its seqnums: writes wait until it is installed or failed.
    ingesting: bool,
    /// Writes waiting to commit, oldest first; the front one leads the next group
    /// (`write.rs`).
    writers: VecDeque<write::QueuedWrite>,
    /// The next `QueuedWrite::id`.
    next_writer: u64,
    /// Results of group members, by id, until each member takes its own.
    write_results: BTreeMap<u64, Result<()>>,
    /// A group leader is appending to the WAL (taken out of `wal`) without the lock: nothing
    /// else may touch the WAL, switch the memtable or take seqnums until it is back.
    writing: bool,
    /// Files in a running compaction.
    compacting: BTreeSet<u64>,
    /// The version a delete-only search last found nothing in, and the smallest seqnum of a
    /// tombstone a snapshot kept from acting then: the next step searches again only when the
    /// version changed or the smallest snapshot reached that seqnum.
    delete_only_checked: Option<(Weak<Version>, u64)>,
    /// Files being written (not yet in a version): never deleted as obsolete.
    pending_outputs: BTreeSet<u64>,
    /// Versions still referenced by readers; their files stay.
    live_versions: Vec<Weak<Version>>,
    compact_pointer: [Option<Vec<u8>>; NUM_LEVELS],
    lock: Option<Box<dyn FileLock>>,
    stats: Stats,
    /// What `live_files` reported when the database closed.
    files_at_close: Option<Vec<String>>,
    /// Background steps that failed in a worker thread, and the last one's error.
    bg_failures: u64,
    /// The last background step's error, handed to the writes that waited for that step.
    bg_error: Option<Error>,
}

/// Why the database is poisoned.
#[derive(Clone, Debug)]
pub(crate) struct Poison {
    /// A copy of the first failure.
    cause: Arc<Error>,
    /// A panic poisoned it: the in-memory state may be half-updated, so only a reopen helps.
    fatal: bool,
}

/// The cause recorded when a panic is found to have poisoned the state mutex.
const LOCK_PANIC: &str = "a call panicked while holding the database state lock";

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    flushes: u64,
    flush_bytes: u64,
    compactions: u64,
    compaction_bytes_read: u64,
    compaction_bytes_written: u64,
    user_bytes: u64,
    wal_bytes: u64,
    stalls: u64,
    ingested_files: u64,
    delete_only_compactions: u64,
    tables_dropped_by_tombstones: u64,
    write_groups: u64,
    writes: u64,
}

/// What reads see, as last published under the state lock ([`DbInner::publish`]).
struct Published {
    /// `None` once the database is closed (a closed database holds no memtable).
    rs: Option<ReadState>,
    last_seq: u64,
}

/// What a reader needs, captured at one moment.
#[derive(Clone)]
pub(crate) struct ReadState {
    /// The mutable memtable, then the immutable ones newest first (inline: taking a view
    /// allocates nothing).
    mems: smallvec::SmallVec<[Arc<Memtable>; 4]>,
    version: Arc<Version>,
}

/// A consistent view of the database at one seqnum. Cheap to clone; released when the last
/// clone drops.
#[derive(Clone)]
pub struct Snapshot {
    inner: Arc<SnapshotInner>,
}

struct SnapshotInner {
    seq: u64,
    db: Weak<DbInner>,
}

impl Snapshot {
    /// The seqnum the snapshot reads at.
    pub fn seqnum(&self) -> u64 {
        self.inner.seq
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snapshot({})", self.inner.seq)
    }
}

impl Drop for SnapshotInner {
    fn drop(&mut self) {
        if let Some(db) = self.db.upgrade() {
            let mut state = db.lock();
            if let Some(n) = state.snapshots.get_mut(&self.seq) {
                *n -= 1;
                if *n == 0 {
                    state.snapshots.remove(&self.seq);
                }
            }
        }
    }
}

/// Per-level shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelMetrics {
    pub files: usize,
    pub bytes: u64,
}

/// One live table, from [`Db::tables`] (RocksDB's `LiveFileMetaData`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub level: usize,
    /// The table's file number (its name is `{num:06}.sst`).
    pub num: u64,
    pub size: u64,
    /// The smallest user key the table may hold.
    pub smallest: Vec<u8>,
    /// The largest user key the table may hold (exclusive when a range tombstone ends the
    /// table).
    pub largest: Vec<u8>,
}

/// Counters and sizes, from [`Db::metrics`].
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub levels: [LevelMetrics; NUM_LEVELS],
    pub cache: CacheMetrics,
    /// Arena bytes of all memtables alive (including those held by iterators).
    pub memtable_bytes: u64,
    pub immutable_memtables: usize,
    /// Table readers open in the table cache (at most `max_open_files`; a deleted table's
    /// reader is dropped when the file is).
    pub open_tables: usize,
    pub flushes: u64,
    pub flush_bytes: u64,
    pub compactions: u64,
    pub compaction_bytes_read: u64,
    pub compaction_bytes_written: u64,
    /// Bytes of keys and values written by the user.
    pub user_bytes: u64,
    pub wal_bytes: u64,
    /// (WAL + flush + compaction bytes written) / user bytes.
    pub write_amplification: f64,
    pub write_stalls: u64,
    /// External tables added by [`Db::ingest`].
    pub ingested_files: u64,
    /// Delete-only compactions (counted in `compactions` too): tables a range tombstone hides
    /// from every reader, dropped from the version without being read or rewritten.
    pub delete_only_compactions: u64,
    /// Tables those compactions dropped.
    pub tables_dropped_by_tombstones: u64,
    /// Write groups committed: each is one WAL append (and at most one sync) for one or more
    /// concurrent writes.
    pub write_groups: u64,
    /// Writes committed (each batch, and each empty synced one, counts once).
    pub writes: u64,
    /// Writes queued now, the one leading a group included.
    pub queued_writes: usize,
    /// Tables left out of iterators pinned to a prefix by their prefix bloom filter.
    pub prefix_filter_skips: u64,
    /// Merge operands compactions folded into another with the operator's `partial_merge`
    /// (a run of n operands combined counts n - 1).
    pub merge_operands_combined: u64,
}

/// Resources still held, from [`Db::leaks`]; all zero after a clean close.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leaks {
    pub iterators: usize,
    pub snapshots: usize,
    pub cache_handles: Vec<String>,
    /// Memtable arena bytes still allocated: the live memtables while open, only those
    /// pinned by a leaked iterator after close.
    pub memtable_bytes: u64,
}

impl Leaks {
    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        *self == Leaks::default()
    }
}

impl DbInner {
    /// Takes the state lock. A panic that unwound while the lock was held (a user's `Fs` or
    /// comparator in a write, say) left the state possibly half-updated: the lock is taken
    /// anyway and the database poisoned for good, so later calls, close and Drop return errors
    /// instead of panicking in turn.
    fn lock(&self) -> MutexGuard<'_, State> {
        let result = self.state.lock();
        self.recover_lock(result)
    }

    /// Waits until background work or the database's state changes ([`DbInner::wake_all`]).
    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let result = self.cond.wait(guard);
        self.recover_lock(result)
    }

    /// A background worker's wait: for new work, a change of state, or a caller's kick.
    fn wait_for_work<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let result = self.work_cond.wait(guard);
        self.recover_lock(result)
    }

    /// Wakes everyone waiting: callers and workers.
    fn wake_all(&self) {
        self.cond.notify_all();
        self.work_cond.notify_all();
    }

    /// Wakes the callers waiting (queued writers, waiters for the WAL), not the background
    /// workers: a write that made no background work (a memtable switch wakes them itself)
    /// must not cost each idle worker a wake-up and a turn on the state lock.
    fn wake_callers(&self) {
        self.cond.notify_all();
    }

    /// Wakes the background workers only (a caller about to wait for their work).
    fn kick_workers(&self) {
        self.work_cond.notify_all();
    }

    fn recover_lock<'a>(
        &self,
        result: Result<MutexGuard<'a, State>, PoisonError<MutexGuard<'a, State>>>,
    ) -> MutexGuard<'a, State> {
        match result {
            Ok(guard) => guard,
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                crate::sync::clear_poison(&self.state);
                self.poison(&mut guard, Error::Panicked { message: LOCK_PANIC.to_string() });
                guard
            }
        }
    }
    fn new_memtable(&self, capacity: usize) -> Arc<Memtable> {
        Arc::new(Memtable::new(capacity, self.cmp.clone(), self.mem_counter.clone()))
    }

    /// `Closed` once `close` has begun, `Poisoned` while poisoned.
    fn check_writable(state: &State) -> Result<()> {
        if state.closed || state.shutting_down {
            return Err(Error::Closed);
        }
        Self::check_not_poisoned(state)
    }

    fn check_not_poisoned(state: &State) -> Result<()> {
        match &state.poison {
            Some(p) => Err(Error::Poisoned { cause: p.cause.clone() }),
            None => Ok(()),
        }
    }

    /// Records the first failure of a WAL or manifest write or sync (or a panic), wakes every
    /// waiter so that it sees it, and returns the error.
    fn poison(&self, state: &mut State, e: Error) -> Error {
        let fatal = matches!(e, Error::Panicked { .. });
        let generic =
            |p: &Poison| matches!(&*p.cause, Error::Panicked { message } if message == LOCK_PANIC);
        match &mut state.poison {
            None => state.poison = Some(Poison { cause: Arc::new(e.duplicate()), fatal }),
            // A panic found through the lock's poison flag is reported again, with its
            // message, by the worker that caught it: keep the better cause.
            Some(p) if fatal && generic(p) => {
                *p = Poison { cause: Arc::new(e.duplicate()), fatal };
            }
            Some(p) => p.fatal |= fatal,
        }
        self.wake_all();
        e
    }

    fn read_state(&self, state: &State) -> ReadState {
        let mut mems = smallvec::smallvec![state.mem.mem.clone()];
        mems.extend(state.imms.iter().rev().map(|m| m.mem.clone()));
        let version = state.version.clone();
        ReadState { mems, version }
    }

    /// Registers `version` as current, remembering it until every reader drops it, and
    /// publishes it to readers before anything can purge the version it replaces.
    fn install_version(&self, state: &mut State, version: Version) {
        let version = Arc::new(version);
        state.live_versions.retain(|v| v.strong_count() > 0);
        state.live_versions.push(Arc::downgrade(&version));
        state.version = version;
        self.publish(state);
    }

    /// Publishes what reads see (the memtables, the version, the last seqnum; nothing once
    /// closed) from `state`. Called under the state lock after every change of them, so a
    /// read takes its view without the state lock ([`DbInner::view`]): it never waits for a
    /// writer or a background step holding it.
    fn publish(&self, state: &State) {
        let rs = (!state.closed).then(|| self.read_state(state));
        let mut published = self.published.lock().unwrap_or_else(PoisonError::into_inner);
        let old = std::mem::replace(&mut *published, Published { rs, last_seq: state.last_seq });
        drop(published);
        // The old memtables and version may go with it: freed outside the published lock.
        drop(old);
    }

    /// Appends an edit to the manifest (rotating it past `max_manifest_file_size`) and
    /// installs the resulting version. A failure poisons the database.
    ///
    /// Invariant: nothing is appended to a manifest after a failed write or sync of it (its
    /// tail's fate is unknown): the failure poisons, a poisoned database logs no edit, and
    /// [`Db::resume`] starts a fresh manifest.
    fn log_and_apply(&self, state: &mut State, mut edit: VersionEdit) -> Result<()> {
        Self::check_not_poisoned(state)?;
        let next = manifest::apply(&state.version, &edit, &self.cmp, "new version edit")?;
        if let Some(n) = edit.log_number {
            assert!(n >= state.log_number, "log number {n} after {}", state.log_number);
        }
        for (_, f) in &edit.added {
            assert!(f.num < state.next_file_num, "table {} was never allocated", f.num);
        }
        edit.next_file_num = Some(state.next_file_num);
        if let Some(seq) = edit.last_seq {
            state.manifest_last_seq = state.manifest_last_seq.max(seq);
        }
        let rotate =
            state.manifest.as_ref().is_none_or(|m| m.size() >= self.opts.max_manifest_file_size);
        let result = if rotate {
            let log_number = edit.log_number.unwrap_or(self.min_unflushed_wal(state));
            let last_seq = state.manifest_last_seq;
            self.create_manifest(state, &next, log_number, last_seq).map(|m| {
                state.manifest = Some(m);
            })
        } else {
            let m = state.manifest.as_mut().expect("manifest open when not rotating");
            m.append(&edit).map(|()| {
                if let Some(n) = edit.log_number {
                    state.log_number = n;
                }
            })
        };
        if let Err(e) = result {
            // The edit (or the new manifest and CURRENT) may or may not be durable: nothing it
            // names or replaces may go, and the next open decides from what it reads.
            return Err(self.poison(state, e));
        }
        self.install_version(state, next);
        Ok(())
    }

    /// Creates a new manifest numbered from `next_file_num`, holding the whole of `version`,
    /// and installs it through `CURRENT` (the protocol of `ManifestWriter::create`).
    fn create_manifest(
        &self,
        state: &mut State,
        version: &Version,
        log_number: u64,
        last_seq: u64,
    ) -> Result<ManifestWriter> {
        assert!(
            log_number >= state.log_number,
            "log number {log_number} after {}",
            state.log_number
        );
        let num = state.next_file_num;
        state.next_file_num += 1;
        let snapshot = manifest::snapshot_edit(
            version,
            self.cmp.user().name(),
            log_number,
            state.next_file_num,
            last_seq,
        );
        let writer = ManifestWriter::create(&self.fs, &self.dir, num, &snapshot)?;
        state.log_number = log_number;
        Ok(writer)
    }

    /// The oldest WAL still needed: the one of the oldest unflushed memtable.
    fn min_unflushed_wal(&self, state: &State) -> u64 {
        state.imms.front().map_or(state.mem.wal_num, |m| m.wal_num)
    }

    /// Deletes files that nothing needs: tables in no live version and not being written,
    /// WALs older than the oldest unflushed memtable's, manifests other than the live one,
    /// temp files. Deletion failures are ignored (the next pass retries).
    ///
    /// Invariant: a poisoned database deletes nothing. After a failed manifest or CURRENT
    /// write the durable version is unknown, so which files are obsolete is decided by the
    /// next open (or a successful resume), from what it actually reads.
    fn delete_obsolete_files(&self, state: &mut State) {
        if state.poison.is_some() {
            return;
        }
        state.live_versions.retain(|v| v.strong_count() > 0);
        let mut live: BTreeSet<u64> = state.version.file_nums().collect();
        for n in &state.pending_outputs {
            assert!(!live.contains(n), "pending output {n} is a file of the live version");
        }
        for v in state.live_versions.iter().filter_map(Weak::upgrade) {
            live.extend(v.file_nums());
        }
        live.extend(state.pending_outputs.iter().copied());
        // A reader of a table no version needs goes even when its file is already gone from
        // the directory (removed by an earlier attempt, or by someone else): readers of
        // deleted tables must not stay in the table cache. Found by Tumbler's liveness oracle
        // (`tumbler run --seed 15 --ops 1500`, config tiny_memtable, error rate 0.02, planted
        // delete-after-failed-sync: the planted table removal left its reader behind).
        for n in self.tables.open_table_nums() {
            if !live.contains(&n) {
                self.tables.evict(n);
            }
        }
        let min_wal = self.min_unflushed_wal(state);
        let manifest_num = state.manifest.as_ref().map(|m| m.num());
        let Ok(names) = self.fs.list(&self.dir) else { return };
        for name in names {
            let obsolete = match filename::parse(&name) {
                Some(FileKind::Table(n)) => !live.contains(&n),
                Some(FileKind::Wal(n)) => self.opts.disable_wal || n < min_wal,
                Some(FileKind::Manifest(n)) => Some(n) != manifest_num,
                Some(FileKind::Temp(n)) => !state.pending_outputs.contains(&n),
                _ => false,
            };
            if obsolete {
                if let Some(FileKind::Table(n)) = filename::parse(&name) {
                    self.tables.evict(n);
                }
                let _ = self.fs.remove(&self.dir.join(&name));
            }
        }
    }

    fn live_files(&self, state: &State) -> Vec<String> {
        let name = |p: PathBuf| {
            p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        };
        let mut names: Vec<String> =
            state.version.file_nums().map(|n| name(filename::table(&self.dir, n))).collect();
        // A group leader holds the WAL outside `wal` while it appends.
        if state.wal.is_some() || state.writing {
            for m in state.imms.iter().chain([&state.mem]) {
                names.push(name(filename::wal(&self.dir, m.wal_num)));
            }
        }
        if let Some(m) = &state.manifest {
            names.push(name(filename::manifest(&self.dir, m.num())));
        }
        names.push(name(filename::current(&self.dir)));
        names.push(name(filename::lock(&self.dir)));
        names.sort();
        names.dedup();
        names
    }

    fn smallest_snapshot(state: &State) -> u64 {
        state.snapshots.keys().next().copied().unwrap_or(state.last_seq)
    }
}

impl Db {
    /// Opens (or creates) the database in `path`, recovering from the manifest and the WAL.
    pub fn open(opts: Options, path: impl AsRef<Path>) -> Result<Db> {
        opts.validate()?;
        let dir = path.as_ref().to_path_buf();
        let fs = opts.fs.clone();
        let cmp = InternalComparator::new(opts.comparator.clone());
        let cache = Cache::new(opts.cache_size);
        let tables = Arc::new(TableSet::new(opts.clone(), dir.clone(), cache));
        let mem_counter = Arc::new(AtomicU64::new(0));
        let placeholder = Arc::new(Memtable::new(0, cmp.clone(), mem_counter.clone()));
        let inner = Arc::new(DbInner {
            opts: opts.clone(),
            fs: fs.clone(),
            dir: dir.clone(),
            cmp,
            state: Mutex::new(State {
                mem: MemEntry { mem: placeholder, wal_num: 0 },
                imms: VecDeque::new(),
                wal: None,
                version: Arc::new(Version::default()),
                manifest: None,
                next_file_num: 1,
                last_seq: 0,
                manifest_last_seq: 0,
                log_number: 0,
                snapshots: BTreeMap::new(),
                poison: None,
                resuming: false,
                resumes: 0,
                closed: false,
                shutting_down: false,
                flushing: false,
                ingesting: false,
                writers: VecDeque::new(),
                next_writer: 0,
                write_results: BTreeMap::new(),
                writing: false,
                compacting: BTreeSet::new(),
                delete_only_checked: None,
                pending_outputs: BTreeSet::new(),
                live_versions: Vec::new(),
                compact_pointer: Default::default(),
                lock: None,
                stats: Stats::default(),
                files_at_close: None,
                bg_failures: 0,
                bg_error: None,
            }),
            cond: Condvar::new(),
            work_cond: Condvar::new(),
            tables,
            mem_counter,
            live_iterators: Arc::new(AtomicUsize::new(0)),
            prefix_filter_skips: AtomicU64::new(0),
            merge_operands_combined: AtomicU64::new(0),
            version_range_dels: Mutex::new(None),
            published: Mutex::new(Published { rs: None, last_seq: 0 }),
            threads: Mutex::new(Vec::new()),
        });
        inner.recover()?;
        let db = Db { inner };
        if let Scheduler::Threads { max_concurrent_compactions } = opts.scheduler {
            scheduler::start_threads(&db.inner, max_concurrent_compactions.max(1));
        }
        Ok(db)
    }

    /// Writes `value` under `key`.
    pub fn put(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        wo: &WriteOptions,
    ) -> Result<()> {
        self.write(WriteBatch::one(Kind::Set, key.as_ref(), Some(value.as_ref())), wo)
    }

    /// Deletes `key`.
    pub fn delete(&self, key: impl AsRef<[u8]>, wo: &WriteOptions) -> Result<()> {
        self.write(WriteBatch::one(Kind::Delete, key.as_ref(), None), wo)
    }

    /// Deletes the single `put` of `key` (see SEMANTICS: on misuse, acts as `delete`).
    pub fn single_delete(&self, key: impl AsRef<[u8]>, wo: &WriteOptions) -> Result<()> {
        self.write(WriteBatch::one(Kind::SingleDelete, key.as_ref(), None), wo)
    }

    /// Adds a merge operand for `key`.
    pub fn merge(
        &self,
        key: impl AsRef<[u8]>,
        operand: impl AsRef<[u8]>,
        wo: &WriteOptions,
    ) -> Result<()> {
        self.write(WriteBatch::one(Kind::Merge, key.as_ref(), Some(operand.as_ref())), wo)
    }

    /// Deletes every key in `[start, end)`. `start > end` is `InvalidArgument`.
    pub fn delete_range(
        &self,
        start: impl AsRef<[u8]>,
        end: impl AsRef<[u8]>,
        wo: &WriteOptions,
    ) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete_range(start, end);
        self.write(b, wo)
    }

    /// Syncs the WAL (when `sync`), making every earlier write durable.
    pub fn flush_wal(&self, sync: bool) -> Result<()> {
        let mut state = self.inner.wait_for_wal(self.inner.lock());
        DbInner::check_writable(&state)?;
        if sync {
            if let Some(wal) = state.wal.as_mut() {
                if let Err(e) = wal.sync() {
                    return Err(self.inner.poison(&mut state, e));
                }
            }
        }
        Ok(())
    }

    /// True when an earlier WAL or manifest failure (or a panic) poisoned the database:
    /// writes fail until [`Db::resume`] succeeds or it is reopened.
    pub fn is_poisoned(&self) -> bool {
        self.inner.lock().poison.is_some()
    }

    /// The failure that poisoned the database, if it is poisoned.
    pub fn poison_cause(&self) -> Option<Error> {
        self.inner.lock().poison.as_ref().map(|p| p.cause.duplicate())
    }

    /// Continues after the error that poisoned the database has cleared (space came back
    /// after ENOSPC, a transient EIO), without a reopen, like RocksDB's `DB::Resume()`.
    ///
    /// Steps: wait for running flushes and compactions to end; flush every memtable (the
    /// mutable one included) to L0 tables, each synced, then sync the directory; create a new
    /// WAL; write a fresh manifest holding the whole current version (never appending to the
    /// old one, whose tail may be unknown) and install it through `CURRENT` with the same
    /// protocol as at open (sync the manifest, sync the directory, write, sync and rename the
    /// temp file, sync the directory); then clear the poison and delete obsolete files.
    ///
    /// Flushing the memtables is what makes the writes that were only in the failed WAL
    /// durable: after its sync failed, the WAL's unsynced bytes may be on disk, partly, or
    /// not at all, and the fresh manifest's log number skips every old WAL.
    ///
    /// After `Ok(())`:
    /// - every write acknowledged (returned `Ok`) before the poison, synced or not, is
    ///   durable and visible, and so is every write acknowledged afterwards as usual;
    /// - the write (or `flush_wal`) that failed and poisoned the database was not applied:
    ///   it is not visible now, and it is not durable either unless its WAL record was read
    ///   back by an open before the resume; its seqnums are reused by the next writes. Treat
    ///   it as "may or may not be present" until it is written again;
    /// - the database accepts writes and runs background work again.
    ///
    /// On `Err` the database stays poisoned and nothing obsolete has been deleted; `resume`
    /// may be called again. A database poisoned by a panic is not resumable (its memory may
    /// be half-updated): `resume` returns `Err(Poisoned)` and only a reopen helps. Returns
    /// `Ok(())` at once when the database is not poisoned, and `Err(Closed)` once `close` has
    /// begun.
    pub fn resume(&self) -> Result<()> {
        self.inner.resume()
    }

    /// The seqnum of the newest write.
    pub fn last_seqnum(&self) -> u64 {
        self.inner.lock().last_seq
    }

    /// A snapshot of the current state.
    pub fn snapshot(&self) -> Snapshot {
        let mut state = self.inner.lock();
        let seq = state.last_seq;
        *state.snapshots.entry(seq).or_insert(0) += 1;
        Snapshot { inner: Arc::new(SnapshotInner { seq, db: Arc::downgrade(&self.inner) }) }
    }

    /// Flushes every memtable to L0 and waits for it.
    pub fn flush(&self) -> Result<()> {
        let mut state = self.inner.lock();
        DbInner::check_writable(&state)?;
        if !state.mem.mem.is_empty() {
            state = self.inner.switch_memtable(state, self.inner.opts.memtable_size)?;
        }
        while !state.imms.is_empty() {
            state = self.inner.help_or_wait(state)?;
        }
        Ok(())
    }

    /// Compacts every file overlapping the user-key range `[start, end]` (`None` = unbounded)
    /// down the levels, after flushing.
    pub fn compact_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        self.flush()?;
        self.inner.compact_range(start, end)
    }

    /// What background work is waiting (for the `Manual` scheduler).
    pub fn pending_background_work(&self) -> BackgroundWork {
        let state = self.inner.lock();
        self.inner.pending_work(&state)
    }

    /// Runs one background step (a flush, else a compaction) in this thread. Returns false
    /// when there was nothing to do.
    pub fn run_background_step(&self) -> Result<bool> {
        let state = self.inner.lock();
        DbInner::check_writable(&state)?;
        if state.resuming {
            return Ok(false);
        }
        let (_state, ran) = self.inner.run_step(state)?;
        Ok(ran)
    }

    /// Counters and sizes.
    pub fn metrics(&self) -> Metrics {
        let state = self.inner.lock();
        let mut m = Metrics::default();
        for (level, files) in state.version.levels.iter().enumerate() {
            m.levels[level] =
                LevelMetrics { files: files.len(), bytes: state.version.level_bytes(level) };
        }
        m.cache = self.inner.tables.cache.metrics();
        m.memtable_bytes = self.inner.mem_counter.load(AtomicOrdering::SeqCst);
        m.immutable_memtables = state.imms.len();
        m.open_tables = self.inner.tables.open_tables();
        let s = state.stats;
        m.flushes = s.flushes;
        m.flush_bytes = s.flush_bytes;
        m.compactions = s.compactions;
        m.compaction_bytes_read = s.compaction_bytes_read;
        m.compaction_bytes_written = s.compaction_bytes_written;
        m.user_bytes = s.user_bytes;
        m.wal_bytes = s.wal_bytes;
        m.write_stalls = s.stalls;
        m.ingested_files = s.ingested_files;
        m.delete_only_compactions = s.delete_only_compactions;
        m.tables_dropped_by_tombstones = s.tables_dropped_by_tombstones;
        m.write_groups = s.write_groups;
        m.writes = s.writes;
        m.queued_writes = state.writers.len();
        m.prefix_filter_skips = self.inner.prefix_filter_skips.load(AtomicOrdering::Relaxed);
        m.merge_operands_combined =
            self.inner.merge_operands_combined.load(AtomicOrdering::Relaxed);
        if s.user_bytes > 0 {
            m.write_amplification = (s.wal_bytes + s.flush_bytes + s.compaction_bytes_written)
                as f64
                / s.user_bytes as f64;
        }
        m
    }

    /// A description of the LSM shape (levels and files), for debugging.
    pub fn lsm_description(&self) -> String {
        let state = self.inner.lock();
        let mut out = String::new();
        for (level, files) in state.version.levels.iter().enumerate() {
            for f in files {
                out.push_str(&format!("L{level} {f:?} size={}\n", f.size));
            }
        }
        out
    }

    /// Every live table, level by level, each level in its read order (L0 newest first, the
    /// others by key).
    pub fn tables(&self) -> Vec<TableInfo> {
        let state = self.inner.lock();
        let levels = state.version.levels.iter().enumerate();
        levels
            .flat_map(|(level, files)| {
                files.iter().map(move |f| TableInfo {
                    level,
                    num: f.num,
                    size: f.size,
                    smallest: f.smallest_user().to_vec(),
                    largest: f.largest_user().to_vec(),
                })
            })
            .collect()
    }

    /// The names of the files the database needs now (tables of the current version, the
    /// live WAL and manifest, `CURRENT`, `LOCK`), sorted. After `close`, the directory should
    /// hold exactly these: anything else is an obsolete file left behind.
    pub fn live_files(&self) -> Vec<String> {
        let state = self.inner.lock();
        match &state.files_at_close {
            Some(files) => files.clone(),
            None => self.inner.live_files(&state),
        }
    }

    /// Checks the version's level invariants (sorted, non-overlapping below L0).
    pub fn check_invariants(&self) -> Result<()> {
        let state = self.inner.lock();
        state.version.check_invariants(&self.inner.cmp).map_err(Error::InvalidArgument)
    }

    /// Resources still held: open iterators and snapshots, cache handles, memtable bytes.
    /// After `close` with everything released, all are zero.
    pub fn leaks(&self) -> Leaks {
        let state = self.inner.lock();
        let memtable_bytes = self.inner.mem_counter.load(AtomicOrdering::SeqCst);
        Leaks {
            iterators: self.inner.live_iterators.load(AtomicOrdering::SeqCst),
            snapshots: state.snapshots.values().sum(),
            cache_handles: self.inner.tables.cache.outstanding_handles(),
            memtable_bytes,
        }
    }

    /// Closes the database: stops background work, flushes memtables when the WAL is off,
    /// syncs the WAL, deletes obsolete files and releases the lock. Every call waiting in
    /// another thread (a stalled write, `flush`, `compact_range`) is woken and returns its
    /// result or `Error::Closed`; later calls return `Error::Closed`. A poisoned database
    /// syncs and deletes nothing: the next open decides what survived. Dropping a `Db`
    /// closes it too.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.inner.close();
    }
}

/// The arena bytes a batch needs in one memtable, refused as `InvalidArgument` when no arena
/// could hold it (arena offsets are 32-bit). The batch limits keep this far below 4 GiB; the
/// check guards the arena's own assertion anyway.
fn arena_bytes_needed(batch: &WriteBatch) -> Result<usize> {
    let needed = batch
        .iter()
        .map(|op| Memtable::entry_size_bound(op.key.len(), op.value.len()))
        .fold(0usize, usize::saturating_add);
    if u32::try_from(needed).is_err() {
        return Err(Error::InvalidArgument(format!(
            "batch needs {needed} bytes of memtable, more than one arena holds"
        )));
    }
    Ok(needed)
}
