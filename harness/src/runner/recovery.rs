//! Crash and recovery, and every other way a database's life ends and begins again: a crash
//! under a policy (possibly striking again inside recovery), the ways of carrying on after a
//! poisoning fault (reopen in place, `resume`, a crash), a clean restart (sometimes with
//! client threads racing the close), and the durability bounds every recovery is checked
//! against.

use std::fmt::Write as _;
use std::sync::Arc;

use cobble::{Db, Error, ReadOptions, WriteBatch, WriteOptions};
use rand::Rng;

use super::checks::Budget;
use super::exec::{add_to_batch, fmt_bytes, write_arena_bound};
use super::{checks, close_race, file_kind, Check, Exec, Oracle, DB_DIR};
use crate::config::EngineConfig;
use crate::model::{Model, Write};
use crate::ops;
use crate::sim::{CrashPolicy, FaultConfig, FaultKind};

/// How the runner carries on after a fault poisoned the database (`recover_from_poison`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PoisonRecovery {
    /// Close, and open again on the same filesystem: everything volatile survives.
    Reopen,
    /// `Db::resume()` once the fault has cleared.
    Resume,
    /// The process dies and the machine with it: a crash under this policy.
    Crash(ops::CrashPolicy),
}

impl PoisonRecovery {
    const ALL: [PoisonRecovery; 5] = [
        PoisonRecovery::Reopen,
        PoisonRecovery::Resume,
        PoisonRecovery::Crash(ops::CrashPolicy::Keep),
        PoisonRecovery::Crash(ops::CrashPolicy::Torn),
        PoisonRecovery::Crash(ops::CrashPolicy::Drop),
    ];

    fn name(self) -> &'static str {
        match self {
            PoisonRecovery::Reopen => "reopen",
            PoisonRecovery::Resume => "resume",
            PoisonRecovery::Crash(p) => match p {
                ops::CrashPolicy::Keep => "crash-keep",
                ops::CrashPolicy::Torn => "crash-torn",
                ops::CrashPolicy::Dirs => "crash-dirs",
                ops::CrashPolicy::Drop => "crash-drop",
            },
        }
    }
}

/// The durability bounds on a recovered database: it recovered to `recovered` (its last
/// seqnum) and a full scan gave `scan`. Writes up to `synced` were acknowledged as durable.
/// The state must be exactly the model's after some whole commit between the two: no lost
/// synced write, no partial batch, no hole, nothing never written.
pub fn check_recovery(
    model: &Model,
    synced: u64,
    recovered: u64,
    scan: &[(Vec<u8>, Vec<u8>)],
) -> Result<(), String> {
    let last = model.last_seq();
    if recovered < synced {
        return Err(format!("recovered to seq {recovered}, but writes up to {synced} were synced"));
    }
    if recovered > last {
        return Err(format!("recovered to seq {recovered}, past the last write {last}"));
    }
    if !model.is_commit_point(recovered) {
        return Err(format!("recovered to seq {recovered}, inside a batch"));
    }
    let expect: Vec<(Vec<u8>, Vec<u8>)> = model.state_at(recovered).into_iter().collect();
    if scan != expect.as_slice() {
        return Err(format!(
            "recovered state at seq {recovered} differs from the model: {}",
            first_difference(&expect, scan)
        ));
    }
    Ok(())
}

/// Every visible pair, by a forward scan.
pub fn scan_all(db: &Db) -> cobble::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut it = db.iter(&ReadOptions::default())?;
    let mut out = Vec::new();
    let mut valid = it.first()?;
    while valid {
        out.push((it.key().to_vec(), it.value().to_vec()));
        valid = it.next()?;
    }
    Ok(out)
}

/// How many bytes at the end of a manifest never rot (see `crash_and_recover`): several
/// edits' worth, so valid records follow any rotted one.
const MANIFEST_ROT_TAIL_GUARD: usize = 4096;

pub(super) fn first_difference(
    expect: &[(Vec<u8>, Vec<u8>)],
    got: &[(Vec<u8>, Vec<u8>)],
) -> String {
    for i in 0..expect.len().max(got.len()) {
        let e = expect.get(i);
        let g = got.get(i);
        if e != g {
            let show = |p: Option<&(Vec<u8>, Vec<u8>)>| {
                p.map_or(".".to_string(), |(k, v)| format!("{}={}", fmt_bytes(k), fmt_bytes(v)))
            };
            return format!("entry {i}: expected {}, got {}", show(e), show(g));
        }
    }
    "no difference".to_string()
}

impl Exec {
    /// Crashes the filesystem, builds the crash image, reopens on it (possibly crashing once
    /// more inside recovery) and checks the durability bounds.
    pub(super) fn crash_and_recover(&mut self, policy: ops::CrashPolicy, when: &str) -> Check<()> {
        // Batches live in the client and survive; iterators and snapshots die with the
        // process.
        self.iters.clear();
        self.snapshots.clear();
        self.fs.set_crash_at(None);
        self.fs.crash_now();
        drop(self.db.take());
        let mut report_text = String::new();
        let mut crashes_in_recovery = 0;
        let sim_policy = self.sim_policy(policy);
        loop {
            let seed: u64 = self.rng.gen();
            let (image, report) = self.fs.crash_image(&sim_policy, seed);
            self.stats.crashes += 1;
            self.stats.unsynced_bytes_dropped += report.unsynced_bytes_dropped;
            self.stats.dir_entries_dropped += report.dir_entries_dropped;
            self.stats.torn_writes += report.torn_writes;
            if self.fs.crash_point().is_none() {
                *self.stats.faults.coverage.entry("crash/boundary/-".to_string()).or_default() += 1;
            }
            let _ = write!(
                report_text,
                " dropped {} bytes, {} dir entries, {} torn;",
                report.unsynced_bytes_dropped, report.dir_entries_dropped, report.torn_writes
            );
            self.replace_fs(image);
            // Now and then the media rot (replayable runs, with faults enabled): a
            // sector of a durable table or manifest reads back wrong from now on.
            if self.replayable() && self.settings.error_rate > 0.0 && self.rng.gen_ratio(1, 6) {
                let seed: u64 = self.rng.gen();
                // A manifest tolerates a damaged tail (a torn, never acknowledged edit), so rot
                // in its last records would look exactly like one and be dropped, synced or not:
                // no engine that tolerates torn tails can tell them apart. Rot strikes only where
                // valid records follow, which makes it mid-log corruption the open must report.
                let rot_target = |p: &str| match file_kind(p) {
                    "sst" => Some(0),
                    "manifest" => Some(MANIFEST_ROT_TAIL_GUARD),
                    _ => None,
                };
                if let Some((path, at)) = self.fs.rot_sector(seed, 512, &rot_target) {
                    let _ = write!(report_text, " rotted {path} at {at};");
                }
            }
            // One crash in four (replayable runs) strikes again inside recovery.
            if self.replayable() && crashes_in_recovery == 0 && self.rng.gen_ratio(1, 4) {
                let at = self.rng.gen_range(1..60);
                self.fs.set_crash_at(Some(at));
            }
            let mut faults_before_open;
            let opened = loop {
                faults_before_open = self.fs.stats().faults;
                match Db::open(self.options(), DB_DIR) {
                    // An open that meets rot must say so; the sector is then repaired (as from
                    // a replica) and the open tried again.
                    Err(e) if !self.fs.is_crashed() && self.rot_explains(&e) => {
                        let _ = write!(report_text, " open met rot ({e}), repaired;");
                        self.fs.heal_rot();
                    }
                    other => break other,
                }
            };
            match opened {
                Ok(db) => {
                    // Disarm first, then look: a background thread may reach the armed call
                    // at any moment until it is disarmed.
                    self.fs.set_crash_at(None);
                    if self.fs.is_crashed() {
                        // The armed call was past recovery's end, inside a background thread:
                        // treat it as a crash right after recovery.
                        drop(db);
                        crashes_in_recovery += 1;
                        continue;
                    }
                    // Manifest rot lies before the guarded tail, so valid records follow it:
                    // an open that read it and succeeded took mid-log damage for a torn tail.
                    let manifest_rot =
                        self.fs.faults_after(faults_before_open).into_iter().find(|r| {
                            r.kind == FaultKind::RotRead && file_kind(&r.path) == "manifest"
                        });
                    if let Some(r) = manifest_rot {
                        drop(db);
                        return self.fail(
                            Oracle::Durability,
                            format!(
                                "the open read rotted manifest bytes (fault #{}, {}) and \
                                 succeeded: damage followed by valid records must be Corruption",
                                r.id, r.path
                            ),
                        );
                    }
                    self.db = Some(db);
                    self.mark_open();
                    break;
                }
                Err(e) if self.fs.is_crashed() => {
                    crashes_in_recovery += 1;
                    let _ = write!(report_text, " crashed again in recovery ({e});");
                    if crashes_in_recovery > 3 {
                        return self.fail(Oracle::Engine, "recovery crashed too often");
                    }
                }
                Err(e) => {
                    return self.fail(
                        Oracle::Durability,
                        format!("reopen after a crash {when} ({policy:?}) failed: {e}"),
                    )
                }
            }
        }
        self.reopen_count += 1;
        // A crash that kept every volatile byte kept every acknowledged write (when they go
        // through the WAL).
        let floor = if self.keeps_acked(&sim_policy) { self.acked_seq } else { self.synced_seq };
        let lost = self.verify_recovered(&format!("crash {when}"), floor)?;
        self.check_checkpoints(&format!("after a crash {when}"))?;
        self.history.push(format!(
            "# crash {} {when}:{report_text} recovered to seq {}, {lost} writes lost and re-applied",
            policy.name(),
            self.model.last_seq() - lost
        ));
        Ok(())
    }

    pub(super) fn sim_policy(&mut self, policy: ops::CrashPolicy) -> CrashPolicy {
        match policy {
            // Under AbsoluteConsistency a torn WAL tail is an error by design: tear nothing.
            ops::CrashPolicy::Torn if !self.absolute_consistency => {
                CrashPolicy::drop_unsynced().with_torn_writes(512, 0.3)
            }
            ops::CrashPolicy::Dirs => CrashPolicy::random_dir_ops(),
            // The same holds for a record the crash cut between two of its appends.
            ops::CrashPolicy::Keep if !self.absolute_consistency => CrashPolicy::keep_unsynced(),
            _ => CrashPolicy::drop_unsynced(),
        }
    }

    /// Whether a recovery from a crash image built under `policy` must hold every
    /// acknowledged write: every volatile byte survives, and writes go through the WAL.
    pub(super) fn keeps_acked(&self, policy: &CrashPolicy) -> bool {
        policy.keep_unsynced && !self.wal_disabled
    }

    /// After a fault poisoned the database: picks by seed how the client carries on, as a
    /// real one might (the error handler issue 14 describes), and checks the result against
    /// the model like any recovery. The failed write, if any, is already in the model as
    /// unacknowledged.
    pub(super) fn recover_from_poison(&mut self) -> Check<()> {
        self.fs.set_faults(FaultConfig::none());
        // A poisoned database names what poisoned it (`Db::poison_cause`), as RocksDB's
        // background error does.
        if let Some(db) = self.db.as_ref().filter(|db| db.is_poisoned()) {
            match db.poison_cause() {
                None => {
                    return self.fail(Oracle::Engine, "poisoned, but poison_cause() names nothing")
                }
                // The root cause, never a wrapper around another poisoning.
                Some(cause) if cause.is_poisoned() => {
                    return self.fail(
                        Oracle::Engine,
                        format!(
                            "poison_cause() is itself a poisoning, not the root cause: {cause}"
                        ),
                    )
                }
                Some(_) => {}
            }
        }
        // Under AbsoluteConsistency a torn WAL tail (a short write that poisoned) must fail the
        // open by design: only recoveries that cannot see one.
        let choices: &[PoisonRecovery] = if self.absolute_consistency {
            &[PoisonRecovery::Resume, PoisonRecovery::Crash(ops::CrashPolicy::Drop)]
        } else {
            &PoisonRecovery::ALL
        };
        let choice = choices[self.rng.gen_range(0..choices.len())];
        *self.stats.faults.coverage.entry(format!("poison/-/{}", choice.name())).or_default() += 1;
        match choice {
            PoisonRecovery::Crash(policy) => {
                self.crash_and_recover(policy, "after a poisoning fault")
            }
            PoisonRecovery::Reopen => self.reopen_in_place(),
            PoisonRecovery::Resume => self.resume_after_poison(),
        }
    }

    /// Closes the poisoned database and opens it again on the same filesystem, with nothing
    /// lost: whatever a failed sync left behind is still there to be read.
    pub(super) fn reopen_in_place(&mut self) -> Check<()> {
        // Batches live in the client and survive; `end_objects_for_fault` saw no iterator or
        // snapshot open.
        let db = self.db.take().expect("database open");
        if let Err(e) = db.close() {
            if !self.is_fault(&e) {
                return self.unexplained("close of a poisoned database", &e);
            }
        }
        let leaks = db.leaks();
        if !leaks.is_empty() {
            return self.fail(Oracle::Invariant, format!("leaked at a poisoned close: {leaks:?}"));
        }
        drop(db);
        self.fs.heal_rot();
        match Db::open(self.options(), DB_DIR) {
            Ok(db) => {
                self.db = Some(db);
                self.mark_open();
            }
            Err(e) => {
                return self.fail(
                    Oracle::Durability,
                    format!(
                        "reopen after a poisoning fault (clean close, nothing lost) failed: {e}"
                    ),
                )
            }
        }
        self.reopen_count += 1;
        let floor = if self.wal_disabled { self.synced_seq } else { self.acked_seq };
        let lost = self.verify_recovered("reopen after a poisoning fault", floor)?;
        self.history.push(format!(
            "# poisoned, closed and reopened: recovered to seq {}, {lost} writes re-applied",
            self.model.last_seq() - lost
        ));
        Ok(())
    }

    /// `Db::resume` on the poisoned database, with the fault cleared: it must succeed and keep
    /// every acknowledged write.
    pub(super) fn resume_after_poison(&mut self) -> Check<()> {
        self.fs.heal_rot();
        if let Err(e) = self.db().resume() {
            return self.unexplained("resume with faults off", &e);
        }
        if self.db().is_poisoned() {
            return self.fail(Oracle::Engine, "resume returned Ok but the database is poisoned");
        }
        let floor = self.acked_seq;
        let lost = self.verify_recovered("resume after a poisoning fault", floor)?;
        self.history.push(format!(
            "# poisoned and resumed: at seq {}, {lost} writes re-applied",
            self.model.last_seq() - lost
        ));
        Ok(())
    }

    /// Checks the reopened database against the model (durability bounds: it holds at least
    /// every write up to `floor`), then re-applies the writes it lost. Returns how many writes
    /// were lost.
    pub(super) fn verify_recovered(&mut self, what: &str, floor: u64) -> Check<u64> {
        self.fs.set_faults(FaultConfig::none());
        let db = self.db.as_ref().expect("reopened");
        let recovered = db.last_seqnum();
        let last = self.model.last_seq();
        let got = match scan_all(db) {
            Ok(v) => v,
            Err(e) if self.rot_explains(&e) => {
                // The scan met rot and said so: repair the sector and look again.
                self.history.push(format!("# {what}: scan met rot ({e}), repaired"));
                self.fs.heal_rot();
                match scan_all(db) {
                    Ok(v) => v,
                    Err(e) => return self.engine_error(&format!("{what}: scan failed"), &e),
                }
            }
            Err(e) => return self.engine_error(&format!("{what}: scan failed"), &e),
        };
        if let Err(m) = check_recovery(&self.model, floor.max(self.synced_seq), recovered, &got) {
            return self.fail(Oracle::Durability, format!("{what}: {m}"));
        }
        // Point reads too: a scan never consults bloom filters, so a recovered table whose
        // filter answers wrongly would pass it. A get and the scan must agree on every key.
        for (key, value) in &got {
            let mut r = self.db().get(&ReadOptions::default(), key);
            if matches!(&r, Err(e) if self.rot_explains(e)) {
                self.fs.heal_rot();
                r = self.db().get(&ReadOptions::default(), key);
            }
            match r {
                Ok(Some(v)) if &v == value => {}
                Ok(other) => {
                    return self.fail(
                        Oracle::Model,
                        format!(
                            "{what}: get {} returns {} but the scan found {}",
                            fmt_bytes(key),
                            other.as_deref().map_or("not-found".to_string(), fmt_bytes),
                            fmt_bytes(value)
                        ),
                    )
                }
                Err(e) => return self.engine_error(&format!("{what}: get failed"), &e),
            }
        }
        let commits: Vec<Vec<Write>> = self
            .model
            .commits_after(recovered)
            .into_iter()
            .map(|c| c.into_iter().map(|(_, w)| w.clone()).collect())
            .collect();
        for writes in commits {
            let mut batch = WriteBatch::new();
            for w in &writes {
                add_to_batch(&mut batch, w);
            }
            let mut result = self.db().write(batch.clone(), &WriteOptions::default());
            if let Err(e) = &result {
                if self.rot_explains(e) && !self.db().is_poisoned() {
                    // A stalled write ran a compaction that met rot and said so.
                    self.fs.heal_rot();
                    result = self.db().write(batch, &WriteOptions::default());
                }
            }
            if let Err(e) = result {
                return self.engine_error(&format!("{what}: re-applying a write"), &e);
            }
        }
        if self.db().last_seqnum() != last {
            return self.fail(
                Oracle::Engine,
                format!(
                    "{what}: after re-applying, last seqnum {} != model {last}",
                    self.db().last_seqnum()
                ),
            );
        }
        self.synced_seq = recovered;
        self.acked_seq = last;
        self.stats.writes_lost += last - recovered;
        Ok(last - recovered)
    }

    /// A clean close and reopen, with every close-time invariant checked.
    /// Opening a closed database with a comparator of another name must be refused with
    /// `InvalidArgument`, before anything on disk changes: the keys were ordered by the
    /// recorded comparator, and the manifest must go on naming it.
    fn check_refused_open(&mut self) -> Check<()> {
        let before = self.fs.changes();
        let mut opts = self.options();
        opts.comparator = Arc::new(Renamed(opts.comparator.clone()));
        match Db::open(opts, DB_DIR) {
            Err(Error::InvalidArgument(_)) => {}
            Ok(_) => {
                return self.fail(
                    Oracle::Engine,
                    "opening with a comparator of another name succeeded; it must be refused",
                )
            }
            Err(e) => {
                return self.fail(
                    Oracle::Engine,
                    format!("opening with a comparator of another name: {e}, not InvalidArgument"),
                )
            }
        }
        if self.fs.changes() != before {
            return self.fail(Oracle::Engine, "a refused open changed the database directory");
        }
        Ok(())
    }

    /// A clean close and reopen, under `next` when given (`reconfigure`): everything must read
    /// the same under the new table format, caches and sizes.
    pub(super) fn restart(&mut self, next: Option<EngineConfig>) -> Check<()> {
        self.stats.restarts += 1;
        // Close with faults off: a removal that failed would leave a file behind, which is
        // allowed, but the close-time check wants none.
        self.fs.set_faults(FaultConfig::none());
        // Threaded configs close, one time in two, while client threads still call.
        let race = !self.deterministic && self.rng.gen_ratio(1, 2);
        let raced = if race {
            self.close_racing()?
        } else {
            self.close_and_check()?;
            Vec::new()
        };
        self.fs.set_faults(FaultConfig::none());
        self.check_refused_open()?;
        if let Some(next) = next {
            let changed = crate::config::diff(&self.config, &next);
            self.history.push(format!("# reconfigured: {}", changed.join(", ")));
            self.config = next;
            let opts = self.options();
            self.prefix_extractor = opts.prefix_extractor.is_some();
            self.budget = Budget::new(&opts);
        }
        match Db::open(self.options(), DB_DIR) {
            Ok(db) => {
                self.db = Some(db);
                self.mark_open();
            }
            Err(e) => return self.engine_error("reopen after close", &e),
        }
        // A clean close keeps everything, synced or not.
        let last = self.model.last_seq();
        let recovered = self.db().last_seqnum();
        if recovered != last {
            return self.fail(
                Oracle::Durability,
                format!("clean restart recovered to seq {recovered}, expected {last}"),
            );
        }
        self.verify_recovered("clean restart", last)?;
        if !raced.is_empty() {
            // The racing puts were checked (the scan holds exactly the acknowledged ones);
            // delete them so the history goes on as in every other config.
            let deletes: Vec<Write> =
                raced.into_iter().map(|(key, _)| Write::Delete { key }).collect();
            let mut batch = WriteBatch::new();
            for w in &deletes {
                add_to_batch(&mut batch, w);
            }
            // The batch may outgrow a tiny memtable (it then gets a dedicated one): the memory
            // budget allows for it as for any generated write.
            self.largest_write_arena = self.largest_write_arena.max(write_arena_bound(&deletes));
            if let Err(e) = self.db().write(batch, &WriteOptions::default()) {
                return self.engine_error("deleting the close-race keys", &e);
            }
            self.write_done(deletes, false)?;
        }
        Ok(())
    }

    /// Closes the database while client threads still call it (`close_race`), checks what
    /// every side saw and the close-time invariants, and puts the acknowledged racing writes
    /// in the model. Returns those writes.
    pub(super) fn close_racing(&mut self) -> Check<Vec<(Vec<u8>, Vec<u8>)>> {
        self.end_objects();
        let db = self.db.take().expect("database open");
        if let Err(e) = db.check_invariants() {
            return self.fail(Oracle::Invariant, format!("LSM invariant: {e}"));
        }
        let race = close_race::close_while_busy(&db, 3);
        *self.stats.faults.coverage.entry("close-race/-/close".to_string()).or_default() += 1;
        if let Some(Err(e)) = &race.close {
            return self.unexplained("close racing live calls", e);
        }
        if let Some(e) = &race.caught_panic {
            return self.unexplained("a call racing close", e);
        }
        let mut problems = race.problems.clone();
        for (what, e) in &race.errors {
            if !self.is_fault(e) {
                problems.push(format!("{what} returned {e}"));
            }
        }
        if !problems.is_empty() {
            let shown: Vec<&str> = problems.iter().take(4).map(String::as_str).collect();
            return self.fail(
                Oracle::Engine,
                format!(
                    "close racing live calls: {} call(s) broke the contract: {}",
                    problems.len(),
                    shown.join("; ")
                ),
            );
        }
        let leaks = db.leaks();
        if !leaks.is_empty() {
            return self.fail(Oracle::Invariant, format!("leaked at a racing close: {leaks:?}"));
        }
        let live = db.live_files();
        drop(db);
        let on_disk = match checks::list_dir(&self.fs, DB_DIR) {
            Ok(names) => names,
            Err(e) => return self.fail(Oracle::Engine, format!("listing the db dir: {e}")),
        };
        // A racer's iterator may have pinned tables past close: those stay until the next
        // open deletes them. A live file missing is a bug all the same.
        let (_, missing) = checks::file_difference(&on_disk, &live, self.wal_disabled);
        if !missing.is_empty() {
            return self.fail(
                Oracle::Invariant,
                format!("files after a racing close: missing {missing:?}"),
            );
        }
        // Distinct keys, one put each: their order does not change the state the model reaches.
        for (key, value) in &race.acked {
            let put = Write::Put { key: key.clone(), value: value.clone() };
            if let Err(e) = self.model.apply_batch(vec![put]) {
                return self.fail(Oracle::Model, format!("a racing put the model refuses: {e}"));
            }
        }
        self.acked_seq = self.model.last_seq();
        Ok(race.acked)
    }

    /// Closes the database and checks the close-time invariants.
    pub(super) fn close_and_check(&mut self) -> Check<()> {
        self.end_objects();
        let Some(db) = self.db.take() else { return Ok(()) };
        if let Err(e) = db.check_invariants() {
            return self.fail(Oracle::Invariant, format!("LSM invariant: {e}"));
        }
        // Every close runs with faults off, so any error is the engine's.
        if let Err(e) = db.close() {
            return self.engine_error("close failed", &e);
        }
        let leaks = db.leaks();
        if !leaks.is_empty() {
            return self.fail(Oracle::Invariant, format!("leaked at close: {leaks:?}"));
        }
        let live = db.live_files();
        drop(db);
        let on_disk = match checks::list_dir(&self.fs, DB_DIR) {
            Ok(names) => names,
            Err(e) => return self.fail(Oracle::Engine, format!("listing the db dir: {e}")),
        };
        let (extra, missing) = checks::file_difference(&on_disk, &live, self.wal_disabled);
        if !extra.is_empty() || !missing.is_empty() {
            return self.fail(
                Oracle::Invariant,
                format!("files after close: obsolete {extra:?}, missing {missing:?}"),
            );
        }
        Ok(())
    }
}

/// A comparator that orders like the one it wraps under another name: a database written
/// with the inner one must refuse to open with it.
#[derive(Debug)]
struct Renamed(Arc<dyn cobble::Comparator>);

impl cobble::Comparator for Renamed {
    fn name(&self) -> &str {
        "tumbler.renamed"
    }

    fn compare(&self, a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        self.0.compare(a, b)
    }
}
