//! Executing ops: each op against the engine and the model at once, reads checked as they
//! return, writes acknowledged or refused as the model says, and what an injected fault
//! leaves to retry (`Outcome`).

use std::collections::BTreeMap;
use std::sync::Arc;

use cobble::{Db, Error, IndexedBatch, PinnedValue, ReadOptions, WriteBatch, WriteOptions};
use rand::Rng;

use super::{attribution, Check, Exec, Failure, Oracle};
use crate::model::{self, ModelError, Write};
use crate::ops::{self, CrashAt, IterId, Op, SnapshotId};
use crate::sim::{FaultConfig, FaultRecord, SimFs};

pub(super) struct IterState {
    it: cobble::Cursor,
    seq: u64,
    /// The bounds the ops set (a config without a prefix extractor gives the engine these
    /// narrowed to the prefix's range).
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    /// The prefix the iterator is pinned to.
    prefix: Option<Vec<u8>>,
    /// The writes of the batch the iterator reads through, as they were when it was made
    /// (none for a plain iterator).
    pending: Vec<Write>,
    /// The model's view: the visible pairs within the bounds (and prefix) at `seq`.
    list: Vec<(Vec<u8>, Vec<u8>)>,
    pos: Option<usize>,
    /// Not on a key but parked at this limit (after an `iter.limited` that found no key
    /// inside its limit): `next` goes on at the limit, `prev` before it. Never with `pos`.
    parked: Option<Vec<u8>>,
}

impl IterState {
    /// Where a step from the model's position lands: forward, the first key at or after the
    /// park or past the current key; backward, the last one before either.
    fn step_target(&self, forward: bool) -> Option<usize> {
        let n = self.list.len();
        match (&self.parked, self.pos, forward) {
            (Some(at), _, true) => {
                let i = self.list.partition_point(|(k, _)| k < at);
                (i < n).then_some(i)
            }
            (Some(at), _, false) => self.list.partition_point(|(k, _)| k < at).checked_sub(1),
            (None, p, true) => p.and_then(|p| (p + 1 < n).then_some(p + 1)),
            (None, p, false) => p.and_then(|p| p.checked_sub(1)),
        }
    }

    /// Puts the engine's iterator back where the model says it is (after a read fault), so
    /// a retry moves from the same place: on the key, or parked at the limit (a seek to the
    /// limit limited by itself can land on no key, so it parks there).
    fn reposition(&mut self) -> cobble::Result<()> {
        if let Some(at) = &self.parked {
            self.it.seek_ge_with_limit(at, at)?;
        } else if let Some(p) = self.pos {
            self.it.seek_ge(&self.list[p].0)?;
        }
        Ok(())
    }
}

/// The pairs of an ascending `list` in the order a `scan` taking them from `ends` meets them.
pub fn scan_order<T: Clone>(list: &[T], ends: ops::ScanEnds) -> Vec<T> {
    match ends {
        ops::ScanEnds::Front => list.to_vec(),
        ops::ScanEnds::Back => list.iter().rev().cloned().collect(),
        ops::ScanEnds::Both => {
            let (mut i, mut j) = (0, list.len());
            let mut out = Vec::with_capacity(list.len());
            while i < j {
                out.push(list[i].clone());
                i += 1;
                if i < j {
                    j -= 1;
                    out.push(list[j].clone());
                }
            }
            out
        }
    }
}

/// A `scan`'s result in a history: how many pairs, and a hash of them in order.
pub fn fmt_scan(pairs: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut h = crate::sim::Digest::default();
    for (k, v) in pairs {
        h.write_bytes(k);
        h.write_bytes(v);
    }
    format!("{} pairs {:016x}", pairs.len(), h.finish())
}

/// A checkpoint the runner made: its directory, the seqnum it captured and the state the
/// model had then (kept: a later crash may truncate the model below that seqnum).
pub(super) struct Checkpoint {
    dir: String,
    seq: u64,
    expect: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The durable digest of `dir` when it last opened to `expect`: an image that holds the
    /// same bytes there reads the same, so it is not opened again (see `check_checkpoints`).
    verified: Option<u64>,
}

/// Checkpoints kept for checking after crashes.
const CHECKPOINTS_KEPT: usize = 3;

/// The keys with model prefix `p` are exactly those in `[p@, pA)` (`A` follows `@`): what a
/// config without a prefix extractor (and RocksDB, in `differential`) iterates instead of
/// pinning to `p`.
pub fn prefix_range(p: &[u8]) -> (Vec<u8>, Vec<u8>) {
    ([p, b"@"].concat(), [p, b"A"].concat())
}

/// The bounds the engine gets: the ops' bounds, narrowed to `prefix`'s range when the config
/// has no extractor to pin the iterator with.
pub fn bounds_within_prefix(
    lower: &Option<Vec<u8>>,
    upper: &Option<Vec<u8>>,
    emulated_prefix: Option<&[u8]>,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let Some(p) = emulated_prefix else { return (lower.clone(), upper.clone()) };
    let (lo, hi) = prefix_range(p);
    let lower = Some(lower.clone().map_or(lo.clone(), |l| l.max(lo)));
    let upper = Some(upper.clone().map_or(hi.clone(), |u| u.min(hi)));
    (lower, upper)
}

pub fn fmt_bytes(b: &[u8]) -> String {
    if b.len() <= 40 {
        ops::format::quote(b)
    } else {
        let mut h = crate::sim::Digest::default();
        h.write_bytes(b);
        format!("<{} bytes {:016x}>", b.len(), h.finish())
    }
}

pub fn fmt_value(v: &Option<Vec<u8>>) -> String {
    match v {
        Some(v) => fmt_bytes(v),
        None => "not-found".to_string(),
    }
}

pub fn fmt_pos(pos: Option<(&[u8], &[u8])>) -> String {
    match pos {
        Some((k, v)) => format!("{}={}", fmt_bytes(k), fmt_bytes(v)),
        None => ".".to_string(),
    }
}

/// What one attempt at an op came to.
pub(super) enum Outcome {
    Done(String),
    /// A write-side op met an injected fault; `write` holds the writes it tried.
    Faulted {
        error: String,
        write: Option<Vec<Write>>,
    },
    /// A read met an injected fault; it may simply be retried.
    FaultedRead {
        error: String,
    },
}

/// One write through its own method of the API.
fn submit_one(db: &cobble::Db, w: &Write, wo: &WriteOptions) -> cobble::Result<()> {
    match w {
        Write::Put { key, value } => db.put(key, value, wo),
        Write::Delete { key } => db.delete(key, wo),
        Write::SingleDelete { key } => db.single_delete(key, wo),
        Write::Merge { key, value } => db.merge(key, value, wo),
        Write::DeleteRange { start, end } => db.delete_range(start, end, wo),
    }
}

/// `[lower, upper)` as the bounds of a `std` range.
fn scan_bounds(
    lower: &Option<Vec<u8>>,
    upper: &Option<Vec<u8>>,
) -> (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>) {
    use std::ops::Bound;
    let start = lower.clone().map_or(Bound::Unbounded, Bound::Included);
    let end = upper.clone().map_or(Bound::Unbounded, Bound::Excluded);
    (start, end)
}

/// Takes every pair of `r` from the ends `ends` says.
fn take_scan(mut r: cobble::Range, ends: ops::ScanEnds) -> cobble::Result<Vec<cobble::KeyValue>> {
    let mut got = Vec::new();
    let mut front = true;
    loop {
        let step = match ends {
            ops::ScanEnds::Front => r.next(),
            ops::ScanEnds::Back => r.next_back(),
            ops::ScanEnds::Both if front => r.next(),
            ops::ScanEnds::Both => r.next_back(),
        };
        front = !front;
        match step {
            Some(kv) => got.push(kv?),
            None => return Ok(got),
        }
    }
}

/// Adds `w` to an indexed batch, through its own method.
fn add_to_indexed(batch: &mut IndexedBatch, w: &Write) {
    match w {
        Write::Put { key, value } => batch.put(key, value),
        Write::Delete { key } => batch.delete(key),
        Write::SingleDelete { key } => batch.single_delete(key),
        Write::Merge { key, value } => batch.merge(key, value),
        Write::DeleteRange { start, end } => batch.delete_range(start, end),
    }
}

pub(super) fn add_to_batch(batch: &mut WriteBatch, w: &Write) {
    match w {
        Write::Put { key, value } => batch.put(key, value),
        Write::Delete { key } => batch.delete(key),
        Write::SingleDelete { key } => batch.single_delete(key),
        Write::Merge { key, value } => batch.merge(key, value),
        Write::DeleteRange { start, end } => batch.delete_range(start, end),
    }
}

/// An upper bound on the arena bytes one write needs: every entry's key and value plus a
/// generous per-entry overhead (skiplist node, internal key trailer, length prefixes), so that
/// the memory budget allows a write too large for `memtable_size` its own arena.
pub(super) fn write_arena_bound(writes: &[Write]) -> u64 {
    writes
        .iter()
        .map(|w| {
            let bytes = match w {
                Write::Put { key, value } | Write::Merge { key, value } => key.len() + value.len(),
                Write::Delete { key } | Write::SingleDelete { key } => key.len(),
                Write::DeleteRange { start, end } => start.len() + end.len(),
            };
            bytes as u64 + 128
        })
        .sum()
}

/// The failure text for a fault the engine did not report.
pub(super) fn swallowed_message(rec: &FaultRecord) -> String {
    format!(
        "the op succeeded although fault #{} ({} in {} {}, call {}) struck during it, and the \
         database is not poisoned: the engine swallowed it",
        rec.id,
        rec.kind.name(),
        rec.op,
        rec.path,
        rec.call
    )
}

impl Exec {
    /// Runs one op, including any crash it meets and the recovery from it. Returns the
    /// result text for the history.
    pub(super) fn exec_op(&mut self, op: &Op) -> Check<String> {
        match op {
            Op::Crash { policy, at } => {
                self.end_objects();
                match at {
                    // Threaded configs too: the crash then strikes whichever thread makes the
                    // call, the op's or a background one.
                    CrashAt::Within(n) => {
                        self.fs.set_crash_at(Some(self.fs.call_count() + u64::from(*n)));
                        self.armed = Some(*policy);
                    }
                    _ => self.crash_and_recover(*policy, "at op boundary")?,
                }
                return Ok("ok".to_string());
            }
            Op::Restart => {
                self.end_objects();
                self.restart(None)?;
                return Ok("ok".to_string());
            }
            Op::Reconfigure => {
                self.end_objects();
                let next = self.config.reconfigured(self.rng.gen());
                self.restart(Some(next))?;
                return Ok("ok".to_string());
            }
            _ => {}
        }
        let armed = self.armed.take();
        let result = self.exec_plain(op);
        if armed.is_none() && self.deterministic {
            if let Ok(Outcome::Done(_)) = &result {
                let poisoned = self.db.as_ref().is_some_and(Db::is_poisoned);
                if let Some(rec) =
                    attribution::swallowed(&self.fs, self.marks).filter(|_| !poisoned)
                {
                    return self.fail(Oracle::Engine, swallowed_message(&rec));
                }
            }
        }
        if let Some(policy) = armed {
            // The crash strikes during this op, or at its end if it made fewer calls.
            self.fs.set_crash_at(None);
            let during = self.fs.is_crashed();
            let what = if during { "during the op" } else { "after the op" };
            self.end_objects();
            match result {
                Ok(Outcome::Done(text)) => {
                    self.crash_and_recover(policy, what)?;
                    return Ok(text);
                }
                Ok(Outcome::Faulted { write, .. }) => {
                    if let Some(w) = write {
                        self.apply_unacknowledged(w);
                    }
                    self.crash_and_recover(policy, what)?;
                    return self.retry_after_recovery(op);
                }
                Ok(Outcome::FaultedRead { .. }) => {
                    self.crash_and_recover(policy, what)?;
                    return self.retry_after_recovery(op);
                }
                Err(f) => return Err(f),
            }
        }
        match result? {
            Outcome::Done(text) => Ok(text),
            Outcome::FaultedRead { error, .. } => {
                self.history.push(format!("# injected error, read retried: {error}"));
                self.fs.set_faults(FaultConfig::none());
                self.fs.heal_rot();
                match self.retry_faults_off(op)? {
                    Outcome::Done(text) => Ok(text),
                    Outcome::Faulted { error, .. } | Outcome::FaultedRead { error, .. } => {
                        self.fail(Oracle::Engine, format!("read failed with faults off: {error}"))
                    }
                }
            }
            Outcome::Faulted { error, write } => {
                self.history.push(format!("# injected error: {error}"));
                let poisoned = self.db.as_ref().is_some_and(Db::is_poisoned);
                if !poisoned {
                    // Only a poisoning failure can have applied part of a write: this one
                    // changed nothing, so retry it as is.
                    self.fs.set_faults(FaultConfig::none());
                    self.fs.heal_rot();
                    return match self.retry_faults_off(op)? {
                        Outcome::Done(text) => Ok(text),
                        Outcome::Faulted { error, .. } | Outcome::FaultedRead { error, .. } => self
                            .fail(Oracle::Engine, format!("retry with faults off failed: {error}")),
                    };
                }
                self.end_objects_for_fault()?;
                if let Some(w) = write {
                    self.apply_unacknowledged(w);
                }
                self.stats.fault_reopens += 1;
                self.recover_from_poison()?;
                self.retry_after_recovery(op)
            }
        }
    }

    /// True when `e` is a corruption that a rotted sector of this instance explains.
    pub(super) fn rot_explains(&self, e: &Error) -> bool {
        e.is_corruption() && self.fs.has_rot() && self.fs.stats().rot_reads > 0
    }

    /// Runs `op` again with faults off. Under Threads a background step that failed while
    /// faults were still on may hand its (explained) error to this attempt, since a stalled
    /// write returns that step's error: such attempts are repeated a few times.
    pub(super) fn retry_faults_off(&mut self, op: &Op) -> Check<Outcome> {
        let mut outcome = self.exec_plain(op)?;
        for _ in 0..4 {
            if self.deterministic || matches!(outcome, Outcome::Done(_)) {
                break;
            }
            outcome = self.exec_plain(op)?;
        }
        Ok(outcome)
    }

    /// After a fault-triggered reopen, iterators and snapshots would be gone in this config
    /// only; faults that poison are armed only when none are open, so this is a harness bug.
    pub(super) fn end_objects_for_fault(&mut self) -> Check<()> {
        if !self.iters.is_empty() || !self.snapshots.is_empty() {
            return self
                .fail(Oracle::Engine, "database poisoned while iterators or snapshots were open");
        }
        Ok(())
    }

    /// Re-runs an op whose first attempt met a fault, now that the database is healthy.
    pub(super) fn retry_after_recovery(&mut self, op: &Op) -> Check<String> {
        self.fs.set_faults(FaultConfig::none());
        if let Op::BatchCommit { id, .. } = op {
            self.batches.remove(id);
            return Ok("ok".to_string());
        }
        if let Op::BatchIngest { ids } = op {
            // As a commit: the model applied the ingestion, and recovery found or re-applied it.
            for id in ids {
                self.batches.remove(id);
            }
            return Ok("ok".to_string());
        }
        if Write::from_op(op).is_some() {
            // The write was already applied to the model, and the recovery found it or
            // re-applied it.
            return Ok("ok".to_string());
        }
        match self.exec_plain(op)? {
            Outcome::Done(text) => Ok(text),
            Outcome::Faulted { error, .. } | Outcome::FaultedRead { error, .. } => self.fail(
                Oracle::Engine,
                format!("op failed again after recovery, with faults off: {error}"),
            ),
        }
    }

    /// Records a write whose outcome is unknown (it failed, or a crash interrupted it): the
    /// model applies it, and recovery either finds it or re-applies it.
    pub(super) fn apply_unacknowledged(&mut self, writes: Vec<Write>) {
        let _ = self.model.apply_batch(writes);
    }

    pub(super) fn end_objects(&mut self) {
        self.iters.clear();
        self.snapshots.clear();
        self.batches.clear();
    }

    pub(super) fn write_done(&mut self, writes: Vec<Write>, sync: bool) -> Check<String> {
        match self.model.apply_batch(writes) {
            Ok(_) => {}
            Err(e) => {
                return self
                    .fail(Oracle::Model, format!("engine accepted a write the model refuses: {e}"))
            }
        }
        let engine = self.db().last_seqnum();
        if engine != self.model.last_seq() {
            return self.fail(
                Oracle::Model,
                format!("last seqnum {engine}, model expects {}", self.model.last_seq()),
            );
        }
        if sync && !self.wal_disabled {
            self.synced_seq = self.model.last_seq();
        }
        self.acked_seq = self.model.last_seq();
        Ok("ok".to_string())
    }

    /// Submits `writes`: as `batch` through `Db::write`, or (`None`, one write) through the
    /// write's own method.
    pub(super) fn write(
        &mut self,
        writes: Vec<Write>,
        batch: Option<WriteBatch>,
        sync: bool,
    ) -> Check<Outcome> {
        let refused = writes.iter().find_map(|w| w.validate().err());
        self.largest_write_arena = self.largest_write_arena.max(write_arena_bound(&writes));
        let wo = WriteOptions { sync };
        let was_poisoned = self.db().is_poisoned();
        let result = match (batch, writes.as_slice()) {
            (Some(batch), _) => self.db().write(batch, &wo),
            (None, [w]) => submit_one(self.db(), w, &wo),
            (None, _) => unreachable!("only a single write goes without a batch"),
        };
        match result {
            Ok(()) => {
                if let Some(e) = refused {
                    return self.fail(
                        Oracle::Model,
                        format!("engine accepted a write the model refuses: {e}"),
                    );
                }
                self.write_done(writes, sync).map(Outcome::Done)
            }
            Err(Error::InvalidArgument(m)) => match refused {
                Some(ModelError::InvalidArgument(_)) => {
                    Ok(Outcome::Done("err invalid-argument".to_string()))
                }
                None => self.fail(Oracle::Model, format!("engine refused a valid write: {m}")),
            },
            Err(e) if self.is_fault(&e) => {
                // The call that meets the fault reports the fault itself, as the cause a
                // program can act on; `Poisoned` is for the calls after it. Under Manual
                // nothing else runs between ops, so this call met it.
                if self.deterministic && !was_poisoned && e.is_poisoned() {
                    return self.fail(
                        Oracle::Engine,
                        format!(
                            "the write that met the fault returned `{e}`: the failing call must \
                             return the fault's own error, not Poisoned"
                        ),
                    );
                }
                Ok(Outcome::Faulted { error: e.to_string(), write: Some(writes) })
            }
            Err(e) => self.unexplained("write", &e),
        }
    }

    /// Writes `files` as external tables with `SstWriter` and ingests them in one
    /// `Db::ingest`, checked against [`model::ingest_writes`]: refused exactly when the model
    /// refuses, and otherwise one commit, durable on return with every write before it.
    fn ingest(&mut self, files: &[Vec<Write>]) -> Check<Outcome> {
        let expect = model::ingest_writes(files);
        let attempt = self.ingest_attempts;
        self.ingest_attempts += 1;
        let opts = self.config.to_options(Arc::new(self.fs.clone()));
        let result = (|| -> cobble::Result<()> {
            let mut paths = Vec::with_capacity(files.len());
            for (i, writes) in files.iter().enumerate() {
                let path = format!("/ingest-{attempt}-{i}.sst");
                let mut w = cobble::SstWriter::create(&opts, &path)?;
                let mut points: Vec<&Write> =
                    writes.iter().filter(|w| w.point_key().is_some()).collect();
                // Stable: a repeated key reaches the writer, which must refuse it.
                points.sort_by_key(|w| w.point_key());
                for p in points {
                    match p {
                        Write::Put { key, value } => w.put(key, value)?,
                        Write::Delete { key } | Write::SingleDelete { key } => w.delete(key)?,
                        Write::Merge { key, value } => w.merge(key, value)?,
                        Write::DeleteRange { .. } => unreachable!("filtered out"),
                    }
                }
                for r in writes {
                    if let Write::DeleteRange { start, end } = r {
                        w.delete_range(start, end)?;
                    }
                }
                w.finish()?;
                paths.push(path);
            }
            self.db().ingest(&paths)
        })();
        match (result, expect) {
            (Ok(()), Ok(writes)) => {
                self.write_done(writes, true)?;
                // Durable even without a WAL: the ingestion flushed the memtables first.
                self.synced_seq = self.model.last_seq();
                Ok(Outcome::Done("ok".to_string()))
            }
            (Ok(()), Err(e)) => {
                self.fail(Oracle::Model, format!("engine ingested files the model refuses: {e}"))
            }
            (Err(Error::InvalidArgument(_)), Err(_)) => {
                Ok(Outcome::Done("err invalid-argument".to_string()))
            }
            (Err(Error::InvalidArgument(m)), Ok(_)) => {
                self.fail(Oracle::Model, format!("engine refused a valid ingestion: {m}"))
            }
            (Err(e), expect) if self.is_fault(&e) => {
                Ok(Outcome::Faulted { error: e.to_string(), write: expect.ok() })
            }
            (Err(e), _) => self.unexplained("ingest", &e),
        }
    }

    /// A point read: `get`, or in odd-numbered ops `get_pinned` (the value read where it lies,
    /// then copied for the check), so both paths answer to the model.
    fn point_read(&self, ro: &ReadOptions, key: &[u8]) -> cobble::Result<Option<Vec<u8>>> {
        if self.current_op.is_some_and(|i| i % 2 == 1) {
            Ok(self.db().get_pinned(ro, key)?.map(cobble::PinnedValue::into_vec))
        } else {
            self.db().get(ro, key)
        }
    }

    /// Checks the pairs a `scan` or `batch.scan` took (`r`) against the model's `list`.
    fn check_scan(
        &self,
        what: &str,
        r: cobble::Result<Vec<cobble::KeyValue>>,
        list: &[cobble::KeyValue],
        ends: ops::ScanEnds,
    ) -> Check<Outcome> {
        let got = match self.read_result(r)? {
            Ok(got) => got,
            Err(error) => return Ok(Outcome::FaultedRead { error }),
        };
        let want = scan_order(list, ends);
        if got != want {
            let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
            let show = |l: &[(Vec<u8>, Vec<u8>)]| fmt_pos(l.get(at).map(|(k, v)| (&k[..], &v[..])));
            return self.fail(
                Oracle::Model,
                format!(
                    "{what} {}: engine {} pairs, model {}; pair {at}: engine {}, model {}",
                    ends.name(),
                    got.len(),
                    want.len(),
                    show(&got),
                    show(&want)
                ),
            );
        }
        Ok(Outcome::Done(fmt_scan(&got)))
    }

    pub(super) fn read_result<T>(&self, r: cobble::Result<T>) -> Check<Result<T, String>> {
        match r {
            Ok(v) => Ok(Ok(v)),
            Err(e) if self.is_fault(&e) => Ok(Err(e.to_string())),
            Err(e) => self.unexplained("read", &e),
        }
    }

    pub(super) fn check_get(
        &self,
        got: Option<Vec<u8>>,
        expect: Option<Vec<u8>>,
        what: &str,
    ) -> Check<String> {
        if got != expect {
            return self.fail(
                Oracle::Model,
                format!("{what}: engine {}, model {}", fmt_value(&got), fmt_value(&expect)),
            );
        }
        Ok(fmt_value(&got))
    }

    /// Executes one op without crash handling.
    pub(super) fn exec_plain(&mut self, op: &Op) -> Check<Outcome> {
        let done = |s: &str| Ok(Outcome::Done(s.to_string()));
        match op {
            Op::Put { sync, .. }
            | Op::Delete { sync, .. }
            | Op::SingleDelete { sync, .. }
            | Op::Merge { sync, .. }
            | Op::DeleteRange { sync, .. } => {
                // One write goes through its own method (`put`, `delete`, ...), batches
                // through `write`: both paths of the API are under the oracles.
                let w = Write::from_op(op).expect("a write op");
                self.write(vec![w], None, *sync)
            }
            Op::Get { key } => {
                let r = self.point_read(&ReadOptions::default(), key);
                match self.read_result(r)? {
                    Ok(v) => {
                        let expect = self.model.get(key);
                        self.check_get(v, expect, &format!("get {}", fmt_bytes(key)))
                            .map(Outcome::Done)
                    }
                    Err(error) => Ok(Outcome::FaultedRead { error }),
                }
            }
            Op::BatchNew { id } => {
                let batch = self.db().indexed_batch();
                self.batches.insert(*id, (batch, Vec::new()));
                done("ok")
            }
            Op::BatchPut { id, .. }
            | Op::BatchDelete { id, .. }
            | Op::BatchSingleDelete { id, .. }
            | Op::BatchMerge { id, .. }
            | Op::BatchDeleteRange { id, .. } => {
                let w = Write::from_op(op).expect("a batch write op");
                let Some((batch, writes)) = self.batches.get_mut(id) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown batch {id}"));
                };
                add_to_indexed(batch, &w);
                writes.push(w);
                done("ok")
            }
            Op::BatchCommit { id, sync } => {
                let Some((batch, writes)) = self.batches.get(id).cloned() else {
                    return self.fail(Oracle::Engine, format!("ops name unknown batch {id}"));
                };
                let outcome = self.write(writes, Some(batch.into_batch()), *sync)?;
                if let Outcome::Done(_) = outcome {
                    self.batches.remove(id);
                }
                Ok(outcome)
            }
            Op::BatchAbort { id } => {
                self.batches.remove(id);
                done("ok")
            }
            Op::BatchIngest { ids } => {
                let mut files = Vec::with_capacity(ids.len());
                for id in ids {
                    let Some((_, writes)) = self.batches.get(id) else {
                        return self.fail(Oracle::Engine, format!("ops name unknown batch {id}"));
                    };
                    files.push(writes.clone());
                }
                let outcome = self.ingest(&files)?;
                if let Outcome::Done(_) = outcome {
                    for id in ids {
                        self.batches.remove(id);
                    }
                }
                Ok(outcome)
            }
            Op::BatchClear { id } => {
                let Some((batch, writes)) = self.batches.get_mut(id) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown batch {id}"));
                };
                batch.clear();
                writes.clear();
                done("ok")
            }
            Op::Scan { lower, upper, ends } => {
                let bounds = scan_bounds(lower, upper);
                let r = self.db().range(&ReadOptions::default(), bounds);
                let r = r.and_then(|r| take_scan(r, *ends));
                let list =
                    self.model.scan(self.model.last_seq(), lower.as_deref(), upper.as_deref());
                self.check_scan("scan", r, &list, *ends)
            }
            Op::BatchGet { id, snapshot, key } => {
                let (snap, seq) = self.read_point(*snapshot)?;
                let Some((batch, writes)) = self.batches.get(id) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown batch {id}"));
                };
                let ro = ReadOptions { snapshot: snap, ..ReadOptions::default() };
                let r = if self.current_op.is_some_and(|i| i % 2 == 1) {
                    batch.get_pinned(self.db(), &ro, key).map(|v| v.map(PinnedValue::into_vec))
                } else {
                    batch.get(self.db(), &ro, key)
                };
                let expect = self.model.get_with(key, seq, writes);
                match self.read_result(r)? {
                    Ok(v) => {
                        let what = format!("batch.get {id} {}", fmt_bytes(key));
                        self.check_get(v, expect, &what).map(Outcome::Done)
                    }
                    Err(error) => Ok(Outcome::FaultedRead { error }),
                }
            }
            Op::BatchScan { id, snapshot, lower, upper, ends } => {
                let (snap, seq) = self.read_point(*snapshot)?;
                let Some((batch, writes)) = self.batches.get(id) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown batch {id}"));
                };
                let bounds = scan_bounds(lower, upper);
                let ro = ReadOptions { snapshot: snap, ..ReadOptions::default() };
                let r = batch.range(self.db(), &ro, bounds);
                let r = r.and_then(|r| take_scan(r, *ends));
                let list = self.model.scan_with(seq, lower.as_deref(), upper.as_deref(), writes);
                self.check_scan(&format!("batch.scan {id}"), r, &list, *ends)
            }
            Op::MultiGet { snapshot, keys } => {
                let (snap, seq) = self.read_point(*snapshot)?;
                let ro = ReadOptions { snapshot: snap, ..ReadOptions::default() };
                let r = self.db().multi_get(&ro, keys);
                match self.read_result(r)? {
                    Ok(values) if values.len() != keys.len() => self.fail(
                        Oracle::Engine,
                        format!("multi_get of {} keys gave {} values", keys.len(), values.len()),
                    ),
                    Ok(values) => {
                        let mut texts = Vec::with_capacity(keys.len());
                        for (k, v) in keys.iter().zip(values) {
                            let expect = self.model.get_at(k, seq);
                            let what = format!("multi_get {}", fmt_bytes(k));
                            texts.push(self.check_get(v, expect, &what)?);
                        }
                        Ok(Outcome::Done(texts.join(" ")))
                    }
                    Err(error) => Ok(Outcome::FaultedRead { error }),
                }
            }
            Op::SnapshotNew { id } => {
                let snap = self.db().snapshot();
                let seq = self.model.snapshot();
                if snap.seqnum() != seq {
                    return self.fail(
                        Oracle::Model,
                        format!("snapshot at seq {}, model at {seq}", snap.seqnum()),
                    );
                }
                self.snapshots.insert(*id, (snap, seq));
                done("ok")
            }
            Op::SnapshotGet { id, key } => {
                let Some((snap, seq)) = self.snapshots.get(id) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown snapshot {id}"));
                };
                let seq = *seq;
                let ro = ReadOptions { snapshot: Some(snap.clone()), ..ReadOptions::default() };
                let r = self.point_read(&ro, key);
                match self.read_result(r)? {
                    Ok(v) => {
                        let expect = self.model.get_at(key, seq);
                        self.check_get(v, expect, &format!("snapshot get {}", fmt_bytes(key)))
                            .map(Outcome::Done)
                    }
                    Err(error) => Ok(Outcome::FaultedRead { error }),
                }
            }
            Op::SnapshotClose { id } => {
                self.snapshots.remove(id);
                done("ok")
            }
            Op::IterNew { id, snapshot, lower, upper, batch } => {
                self.open_iter(*id, *snapshot, lower.clone(), upper.clone(), None, *batch)
            }
            Op::IterNewPrefix { id, snapshot, prefix } => {
                self.open_iter(*id, *snapshot, None, None, Some(prefix.clone()), None)
            }
            Op::IterClone { id, from } => {
                let Some(st) = self.iters.get(from) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown iterator {from}"));
                };
                let r = st.it.try_clone();
                match self.read_result(r)? {
                    Ok(it) => {
                        let st = &self.iters[from];
                        if it.seqnum() != st.it.seqnum() {
                            return self.fail(
                                Oracle::Engine,
                                format!("clone of {from} reads at seq {}", it.seqnum()),
                            );
                        }
                        let clone = IterState {
                            it,
                            seq: st.seq,
                            lower: st.lower.clone(),
                            upper: st.upper.clone(),
                            prefix: st.prefix.clone(),
                            pending: st.pending.clone(),
                            list: st.list.clone(),
                            pos: None,
                            parked: None,
                        };
                        self.iters.insert(*id, clone);
                        done("ok")
                    }
                    Err(error) => Ok(Outcome::FaultedRead { error }),
                }
            }
            Op::IterRefresh { id } => {
                let seq = self.model.last_seq();
                let Some(st) = self.iters.get_mut(id) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown iterator {id}"));
                };
                let r = st.it.refresh();
                let engine_seq = st.it.seqnum();
                match self.read_result(r)? {
                    Ok(()) if engine_seq != seq => self.fail(
                        Oracle::Model,
                        format!("refreshed iterator {id} at seq {engine_seq}, model at {seq}"),
                    ),
                    Ok(()) => {
                        let model = &self.model;
                        let st = self.iters.get_mut(id).expect("looked up above");
                        st.seq = seq;
                        st.list = model.scan_prefix(
                            seq,
                            st.lower.as_deref(),
                            st.upper.as_deref(),
                            st.prefix.as_deref(),
                            &st.pending,
                        );
                        st.pos = None;
                        st.parked = None;
                        done("ok")
                    }
                    Err(error) => Ok(Outcome::FaultedRead { error }),
                }
            }
            Op::IterFirst { id }
            | Op::IterLast { id }
            | Op::IterSeekGe { id, .. }
            | Op::IterSeekLt { id, .. }
            | Op::IterNext { id }
            | Op::IterPrev { id }
            | Op::IterNextPrefix { id } => self.iter_op(*id, op),
            Op::IterLimited { id, step, limit } => self.iter_limited(*id, step, limit),
            Op::IterSetBounds { id, lower, upper } => {
                let (model, extractor) = (&self.model, self.prefix_extractor);
                let Some(st) = self.iters.get_mut(id) else {
                    return self.fail(Oracle::Engine, format!("ops name unknown iterator {id}"));
                };
                let emulated = st.prefix.as_deref().filter(|_| !extractor);
                let (lo, hi) = bounds_within_prefix(lower, upper, emulated);
                st.it.set_bounds(lo, hi);
                st.lower = lower.clone();
                st.upper = upper.clone();
                st.list = model.scan_prefix(
                    st.seq,
                    lower.as_deref(),
                    upper.as_deref(),
                    st.prefix.as_deref(),
                    &st.pending,
                );
                st.pos = None;
                st.parked = None;
                done("ok")
            }
            Op::IterClose { id } => {
                self.iters.remove(id);
                done("ok")
            }
            Op::Flush => {
                let r = self.db().flush();
                self.durability_op(r, "flush", true)
            }
            Op::Checkpoint => {
                let dir = format!("/checkpoint-{}", self.checkpoint_attempts);
                self.checkpoint_attempts += 1;
                let seq = self.model.last_seq();
                match self.db().checkpoint(&dir) {
                    Ok(()) => {
                        let expect = self.model.state_at(seq);
                        self.checkpoints.push_back(Checkpoint { dir, seq, expect, verified: None });
                        if self.checkpoints.len() > CHECKPOINTS_KEPT {
                            self.checkpoints.pop_front();
                        }
                        self.check_checkpoints("when made")?;
                        done("ok")
                    }
                    Err(e) if self.is_fault(&e) => {
                        Ok(Outcome::Faulted { error: e.to_string(), write: None })
                    }
                    Err(e) => self.unexplained("checkpoint", &e),
                }
            }
            Op::EstimateDiskUsage { start, end } => {
                let db = self.db();
                let all_tables: u64 = db.metrics().levels.iter().map(|l| l.bytes).sum();
                let r = db
                    .estimate_disk_usage(start.as_deref(), end.as_deref())
                    .and_then(|e| Ok((e, db.estimate_disk_usage(None, None)?)));
                // Under Threads a background step may change the tables between the calls.
                let exact = self.deterministic;
                match self.read_result(r)? {
                    Ok((_, all)) if exact && all != all_tables => self.fail(
                        Oracle::Engine,
                        format!("estimate_disk_usage of everything is {all}, the tables hold {all_tables}"),
                    ),
                    Ok((e, all)) if exact && e > all => self.fail(
                        Oracle::Engine,
                        format!("estimate_disk_usage of a range is {e}, more than all of it ({all})"),
                    ),
                    Ok(_) => done("ok"),
                    Err(error) => Ok(Outcome::FaultedRead { error }),
                }
            }
            Op::CompactRange { start, end } => {
                let r = self.db().compact_range(start.as_deref(), end.as_deref());
                self.durability_op(r, "compact_range", true)
            }
            Op::FlushWal { sync } => {
                let r = self.db().flush_wal(*sync);
                self.durability_op(r, "flush_wal", *sync && !self.wal_disabled)
            }
            Op::BackgroundSteps { n } => {
                if self.deterministic {
                    for _ in 0..*n {
                        match self.db().run_background_step() {
                            Ok(true) => {}
                            // "Nothing to do" must mean nothing is pending.
                            Ok(false) => {
                                let pending = self.db().pending_background_work();
                                // Read the fields, not the engine's own `is_empty`.
                                if pending.flushes > 0 || pending.compactions > 0 {
                                    return self.fail(
                                        Oracle::Liveness,
                                        format!(
                                            "a background step ran nothing, {pending:?} pending"
                                        ),
                                    );
                                }
                                break;
                            }
                            Err(e) if self.is_fault(&e) => {
                                return Ok(Outcome::Faulted { error: e.to_string(), write: None })
                            }
                            Err(e) => return self.unexplained("a background step", &e),
                        }
                    }
                }
                done("ok")
            }
            Op::Restart | Op::Reconfigure | Op::Crash { .. } => {
                unreachable!("handled by exec_op")
            }
        }
    }

    /// The outcome of an op that writes nothing of its own (flush, compact_range, flush_wal):
    /// on success, when `makes_durable`, every write so far is durable.
    pub(super) fn durability_op(
        &mut self,
        r: cobble::Result<()>,
        what: &str,
        makes_durable: bool,
    ) -> Check<Outcome> {
        match r {
            Ok(()) => {
                if makes_durable {
                    self.synced_seq = self.model.last_seq();
                }
                Ok(Outcome::Done("ok".to_string()))
            }
            Err(e) if self.is_fault(&e) => {
                Ok(Outcome::Faulted { error: e.to_string(), write: None })
            }
            Err(e) => self.unexplained(what, &e),
        }
    }

    /// Opens checkpoint `cp` as a database of its own in `image` (what a crash now would
    /// leave of the filesystem: the checkpoint must be durable once made, and opening it
    /// there leaves the run's filesystem as it was) and compares every key with the model's
    /// state at the checkpoint. A checkpoint that does not open, or opens to other data, lost
    /// what its `checkpoint` call acknowledged: a durability finding.
    fn check_checkpoint(&mut self, image: &SimFs, cp: &Checkpoint, when: &str) -> Check<()> {
        let opts = cobble::Options {
            create_if_missing: false,
            ..self.config.to_options(Arc::new(image.clone()))
        };
        let read = (|| -> cobble::Result<Vec<(Vec<u8>, Vec<u8>)>> {
            let db = Db::open(opts, &cp.dir)?;
            let mut it = db.iter(&ReadOptions::default())?;
            let mut got = Vec::new();
            let mut ok = it.first()?;
            while ok {
                got.push((it.key().to_vec(), it.value().to_vec()));
                ok = it.next()?;
            }
            drop(it);
            db.close()?;
            Ok(got)
        })();
        let got = match read {
            Ok(got) => got,
            Err(e) => {
                return self.fail(
                    Oracle::Durability,
                    format!("checkpoint {} (seq {}) {when} does not open: {e}", cp.dir, cp.seq),
                )
            }
        };
        let expect: Vec<(Vec<u8>, Vec<u8>)> =
            cp.expect.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if got != expect {
            let first = got.iter().zip(&expect).position(|(a, b)| a != b);
            let at = first.unwrap_or(got.len().min(expect.len()));
            let show = |l: &[(Vec<u8>, Vec<u8>)]| fmt_pos(l.get(at).map(|(k, v)| (&k[..], &v[..])));
            return self.fail(
                Oracle::Durability,
                format!(
                    "checkpoint {} (seq {}) {when}: {} keys, model {}; first difference: {} \
                     against model {}",
                    cp.dir,
                    cp.seq,
                    got.len(),
                    expect.len(),
                    show(&got),
                    show(&expect)
                ),
            );
        }
        Ok(())
    }

    /// Checks every checkpoint kept (after a crash: each was durable when made).
    /// A checkpoint whose directory holds, durably, the very bytes it held when it last read
    /// right is not opened again: nothing reads differently from the same bytes.
    pub(super) fn check_checkpoints(&mut self, when: &str) -> Check<()> {
        let mut kept = std::mem::take(&mut self.checkpoints);
        // Durable bytes are the same in the filesystem and in its durable image.
        let digests: Vec<u64> = kept.iter().map(|cp| self.fs.durable_digest(&cp.dir)).collect();
        let result = if kept.iter().zip(&digests).all(|(cp, d)| cp.verified == Some(*d)) {
            Ok(())
        } else {
            let image = self.fs.durable_image(self.rng.gen());
            // Rot is a read fault, not lost data: the checkpoint's stored bytes are under test
            // (and its tables may share rotted sectors with the database's, being hard links).
            image.heal_rot();
            kept.iter_mut().zip(digests).try_for_each(|(cp, digest)| {
                if cp.verified != Some(digest) {
                    self.check_checkpoint(&image, cp, when)?;
                    cp.verified = Some(digest);
                }
                Ok(())
            })
        };
        self.checkpoints = kept;
        result
    }

    /// Where a read at `snapshot` (or now) reads: the engine's snapshot and the model's seqnum.
    fn read_point(&self, snapshot: Option<SnapshotId>) -> Check<(Option<cobble::Snapshot>, u64)> {
        match snapshot {
            Some(s) => match self.snapshots.get(&s) {
                Some((snap, seq)) => Ok((Some(snap.clone()), *seq)),
                None => self.fail(Oracle::Engine, format!("ops name unknown snapshot {s}")),
            },
            None => Ok((None, self.model.last_seq())),
        }
    }

    /// Opens iterator `id` (`iter.new` or `iter.new_prefix`) and the model's list beside it.
    fn open_iter(
        &mut self,
        id: IterId,
        snapshot: Option<SnapshotId>,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        prefix: Option<Vec<u8>>,
        batch: Option<ops::BatchId>,
    ) -> Check<Outcome> {
        let (snap, seq) = self.read_point(snapshot)?;
        let emulated = prefix.as_deref().filter(|_| !self.prefix_extractor);
        let (lower_bound, upper_bound) = bounds_within_prefix(&lower, &upper, emulated);
        let ro = ReadOptions {
            snapshot: snap,
            lower_bound,
            upper_bound,
            prefix: prefix.clone().filter(|_| self.prefix_extractor),
        };
        let (r, pending) = match batch {
            None => (self.db().iter(&ro), Vec::new()),
            Some(b) => match self.batches.get(&b) {
                Some((batch, writes)) => (batch.iter(self.db(), &ro), writes.clone()),
                None => return self.fail(Oracle::Engine, format!("ops name unknown batch {b}")),
            },
        };
        match self.read_result(r)? {
            Ok(it) => {
                let (lo, hi, p) = (lower.as_deref(), upper.as_deref(), prefix.as_deref());
                let list = self.model.scan_prefix(seq, lo, hi, p, &pending);
                let (pos, parked) = (None, None);
                let state = IterState { it, seq, lower, upper, prefix, pending, list, pos, parked };
                self.iters.insert(id, state);
                Ok(Outcome::Done("ok".to_string()))
            }
            Err(error) => Ok(Outcome::FaultedRead { error }),
        }
    }

    /// `iter.limited`: a step or seek that stops at `limit`. The model says where it lands:
    /// on its key when that is inside the limit, else parked at the limit (`AtLimit` for
    /// certain when a visible key lay past the limit, since the walk must meet it; either
    /// state otherwise: deleted entries past the limit may stop a walk that would run out),
    /// or `InvalidArgument` when the limit is on the wrong side of the position. The history
    /// prints `parked` for both states, which configs may legitimately tell apart.
    fn iter_limited(
        &mut self,
        id: IterId,
        step: &ops::LimitedStep,
        limit: &[u8],
    ) -> Check<Outcome> {
        use cobble::IterState as S;
        use ops::LimitedStep as L;
        let (fs, marks, deterministic) = (self.fs.clone(), self.marks, self.deterministic);
        let op_index = self.current_op;
        let Some(st) = self.iters.get_mut(&id) else {
            return self.fail(Oracle::Engine, format!("ops name unknown iterator {id}"));
        };
        let current = st.pos.map(|p| st.list[p].0.as_slice());
        let unpositioned = current.is_none() && st.parked.is_none();
        // The position the limit must not be behind (forward) or ahead of (backward).
        let at = match step {
            L::SeekGe(k) | L::SeekLt(k) => Some(k.as_slice()),
            L::Next | L::Prev => st.parked.as_deref().or(current),
        };
        let refused = match (step, at) {
            (L::Next, Some(a)) if st.parked.is_none() => limit <= a,
            (L::Next | L::SeekGe(_), Some(a)) => limit < a,
            (L::Prev | L::SeekLt(_), Some(a)) => limit > a,
            (_, None) => false,
        };
        let n = st.list.len();
        let target = match step {
            L::Next | L::Prev => st.step_target(step.forward()),
            L::SeekGe(k) => Some(st.list.partition_point(|(x, _)| x < k)).filter(|&i| i < n),
            L::SeekLt(k) => st.list.partition_point(|(x, _)| x < k).checked_sub(1),
        };
        let inside = |i: usize| {
            let k = st.list[i].0.as_slice();
            if step.forward() {
                k < limit
            } else {
                k >= limit
            }
        };
        let lands = target.filter(|&i| inside(i));
        let r = match step {
            L::Next => st.it.next_with_limit(limit),
            L::Prev => st.it.prev_with_limit(limit),
            L::SeekGe(k) => st.it.seek_ge_with_limit(k, limit),
            L::SeekLt(k) => st.it.seek_lt_with_limit(k, limit),
        };
        let fail = |message: String| Err(Failure { oracle: Oracle::Model, op_index, message });
        let state = match r {
            Err(cobble::Error::InvalidArgument(_)) if refused => {
                return Ok(Outcome::Done("err invalid-argument".to_string()))
            }
            _ if refused => {
                return fail(format!(
                    "iterator {id}: a limit on the wrong side of the position was not refused"
                ))
            }
            Ok(state) => state,
            Err(e) if attribution::explain(&fs, marks, deterministic, &e).is_ok() => {
                if st.pos.is_some() || st.parked.is_some() {
                    fs.set_faults(FaultConfig::none());
                    fs.heal_rot();
                }
                if let Err(e) = st.reposition() {
                    return Err(Failure {
                        oracle: Oracle::Engine,
                        op_index,
                        message: format!("iterator reposition with faults off: {e}"),
                    });
                }
                return Ok(Outcome::FaultedRead { error: e.to_string() });
            }
            Err(e) => {
                let why = attribution::explain(&fs, marks, deterministic, &e).err();
                return Err(Failure {
                    oracle: Oracle::Engine,
                    op_index,
                    message: format!(
                        "iterator op failed: {e}; unexplained: {}; {}",
                        why.unwrap_or_default(),
                        attribution::last_fault(&fs)
                    ),
                });
            }
        };
        let got = (state == S::Valid).then(|| (st.it.key(), st.it.value()));
        let want = lands.map(|i| (st.list[i].0.as_slice(), st.list[i].1.as_slice()));
        let engine = match state {
            S::Valid => fmt_pos(got),
            S::AtLimit => "at limit".to_string(),
            S::Exhausted => "exhausted".to_string(),
        };
        // `next` or `prev` with nothing to step from: exhausted, not parked (as `next`).
        let stepless = unpositioned && matches!(step, L::Next | L::Prev);
        let model = match (lands, target) {
            (Some(_), _) => fmt_pos(want),
            (None, Some(_)) => "at limit".to_string(),
            (None, None) if stepless => "exhausted".to_string(),
            (None, None) => "at limit or exhausted".to_string(),
        };
        let agrees = match state {
            S::Valid => got == want,
            S::AtLimit => lands.is_none() && !stepless,
            S::Exhausted => lands.is_none() && target.is_none(),
        };
        if !agrees || st.it.valid() != (state == S::Valid) {
            return fail(format!(
                "iterator {id} (seq {}, bounds {:?}..{:?}) {} with limit {}: engine {engine}, \
                 model {model}",
                st.seq,
                st.lower.as_deref().map(fmt_bytes),
                st.upper.as_deref().map(fmt_bytes),
                step.name(),
                fmt_bytes(limit)
            ));
        }
        if stepless {
            return Ok(Outcome::Done(fmt_pos(None)));
        }
        st.pos = lands;
        st.parked = lands.is_none().then(|| limit.to_vec());
        Ok(Outcome::Done(if lands.is_some() { fmt_pos(want) } else { "parked".to_string() }))
    }

    pub(super) fn iter_op(&mut self, id: IterId, op: &Op) -> Check<Outcome> {
        let (fs, marks, deterministic) = (self.fs.clone(), self.marks, self.deterministic);
        let extractor = self.prefix_extractor;
        let Some(st) = self.iters.get_mut(&id) else {
            return Err(Failure {
                oracle: Oracle::Engine,
                op_index: self.current_op,
                message: format!("ops name unknown iterator {id}"),
            });
        };
        let n = st.list.len();
        let expect: Option<usize> = match op {
            Op::IterFirst { .. } => (n > 0).then_some(0),
            Op::IterLast { .. } => n.checked_sub(1),
            Op::IterSeekGe { key, .. } => {
                let i = st.list.partition_point(|(k, _)| k < key);
                (i < n).then_some(i)
            }
            Op::IterSeekLt { key, .. } => st.list.partition_point(|(k, _)| k < key).checked_sub(1),
            Op::IterNext { .. } => st.step_target(true),
            Op::IterPrev { .. } => st.step_target(false),
            Op::IterNextPrefix { .. } => st.pos.and_then(|p| {
                let current = model::key_prefix(&st.list[p].0);
                let skip = |k: &[u8]| current.is_some() && model::key_prefix(k) == current;
                (p + 1..n).find(|&i| !skip(&st.list[i].0))
            }),
            _ => unreachable!("an iterator positioning op"),
        };
        let r = match op {
            Op::IterFirst { .. } => st.it.first(),
            Op::IterLast { .. } => st.it.last(),
            Op::IterSeekGe { key, .. } => st.it.seek_ge(key),
            Op::IterSeekLt { key, .. } => st.it.seek_lt(key),
            Op::IterNext { .. } => st.it.next(),
            Op::IterPrev { .. } => st.it.prev(),
            Op::IterNextPrefix { .. } if extractor => st.it.next_prefix(),
            // Without an extractor: past the keys of the current prefix by a seek (the keys
            // with prefix `p` end before `pA`).
            Op::IterNextPrefix { .. } if !st.it.valid() => Ok(false),
            Op::IterNextPrefix { .. } => match model::key_prefix(st.it.key()) {
                Some(p) => {
                    let past = prefix_range(p).1;
                    st.it.seek_ge(&past)
                }
                None => st.it.next(),
            },
            _ => unreachable!("an iterator positioning op"),
        };
        let valid = match r {
            Ok(v) => v,
            Err(e) if attribution::explain(&fs, marks, deterministic, &e).is_ok() => {
                // Reposition where the model says the iterator was, so the retry steps from
                // the same place.
                if st.pos.is_some() || st.parked.is_some() {
                    self.fs.set_faults(FaultConfig::none());
                    self.fs.heal_rot();
                }
                if let Err(e) = st.reposition() {
                    return Err(Failure {
                        oracle: Oracle::Engine,
                        op_index: self.current_op,
                        message: format!("iterator reposition with faults off: {e}"),
                    });
                }
                return Ok(Outcome::FaultedRead { error: e.to_string() });
            }
            Err(e) => {
                let why = attribution::explain(&fs, marks, deterministic, &e).err();
                return Err(Failure {
                    oracle: Oracle::Engine,
                    op_index: self.current_op,
                    message: format!(
                        "iterator op failed: {e}; unexplained: {}; {}",
                        why.unwrap_or_default(),
                        attribution::last_fault(&fs)
                    ),
                });
            }
        };
        let got = valid.then(|| (st.it.key(), st.it.value()));
        let want = expect.map(|i| (st.list[i].0.as_slice(), st.list[i].1.as_slice()));
        if got != want || valid != st.it.valid() {
            let message = format!(
                "iterator {id} (seq {}, bounds {:?}..{:?}{}): engine {}, model {}",
                st.seq,
                st.lower.as_deref().map(fmt_bytes),
                st.upper.as_deref().map(fmt_bytes),
                st.prefix
                    .as_deref()
                    .map(|p| format!(", prefix {}", fmt_bytes(p)))
                    .unwrap_or_default(),
                fmt_pos(got),
                fmt_pos(want)
            );
            return Err(Failure { oracle: Oracle::Model, op_index: self.current_op, message });
        }
        let text = fmt_pos(got);
        st.pos = expect;
        // Every move but `next_prefix` (which needs a key to start from) leaves the park.
        if !matches!(op, Op::IterNextPrefix { .. }) {
            st.parked = None;
        }
        Ok(Outcome::Done(text))
    }
}
