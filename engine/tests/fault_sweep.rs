//! A fault sweep on the real filesystem, like RocksDB's fault-injection tests: one fixed
//! workload (synced and unsynced writes, deletes, a flush, a compaction, manifest rotations
//! through a tiny `max_manifest_file_size`, close) runs once under a counting `Fs` to learn
//! its number of filesystem calls N, then N more times, the n-th run failing call n with EIO.
//!
//! After each failure: close must return (no hang, no panic); an open on the healthy
//! filesystem must succeed; every write made durable before the failure (acknowledged by a
//! synced write, a flush or a compaction) must read back with its value, and any other key
//! may only hold a value it was given. The resume variant calls `Db::resume` on the healthy
//! filesystem right after the failure: it must succeed, every acknowledged write must be
//! visible at once, new writes must work, and all of it must survive a reopen.

mod fault_fs;

use cobble::internal::sync::Arc;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cobble::{Db, Error, Options, OsFs, ReadOptions, Result, Scheduler, WriteOptions};
use fault_fs::{FaultFs, Rule, TempDir};

type Value = Option<Vec<u8>>;

/// What the workload did, in order.
#[derive(Debug, Default)]
struct History {
    /// Acknowledged writes (`None` = delete).
    acked: Vec<(Vec<u8>, Value)>,
    /// `acked[..durable]` are durable (a synced write, flush or compaction returned `Ok`).
    durable: usize,
    /// The write that failed, whose fate is unknown.
    failed: Option<(Vec<u8>, Value)>,
    /// The database handle, when the failure left it open.
    db: Option<Db>,
    /// The workload reached its end, close included.
    completed: bool,
    /// The failure hit the mid-workload close or reopen: the handle is closed, nothing to
    /// resume.
    closing: bool,
}

impl History {
    fn state(&self, upto: usize) -> BTreeMap<Vec<u8>, Value> {
        let mut m = BTreeMap::new();
        for (k, v) in &self.acked[..upto] {
            m.insert(k.clone(), v.clone());
        }
        m
    }

    fn keys(&self) -> BTreeSet<Vec<u8>> {
        self.acked.iter().chain(&self.failed).map(|(k, _)| k.clone()).collect()
    }

    /// Checks a recovered database: durable writes exact, the rest only values once given.
    fn check_recovered(&self, db: &Db, n: u64) {
        let durable = self.state(self.durable);
        for k in self.keys() {
            let got = db.get(&ReadOptions::default(), &k).expect("get");
            let mut allowed: Vec<Value> = vec![durable.get(&k).cloned().flatten()];
            allowed.extend(
                self.acked[self.durable..]
                    .iter()
                    .chain(&self.failed)
                    .filter(|(k2, _)| *k2 == k)
                    .map(|(_, v)| v.clone()),
            );
            assert!(
                allowed.contains(&got),
                "n={n}: key {:?} reads {got:?}, allowed {allowed:?}",
                String::from_utf8_lossy(&k)
            );
        }
    }

    /// Checks that every acknowledged write is visible (after a resume, or a clean close),
    /// except that the failed write's key may hold its old or its new value.
    fn check_all_acked(&self, db: &Db, n: u64, when: &str) {
        let acked = self.state(self.acked.len());
        for k in self.keys() {
            let got = db.get(&ReadOptions::default(), &k).expect("get");
            let mut allowed = vec![acked.get(&k).cloned().flatten()];
            if let Some((fk, fv)) = &self.failed {
                if *fk == k {
                    allowed.push(fv.clone());
                }
            }
            assert!(
                allowed.contains(&got),
                "n={n} {when}: key {:?} reads {got:?}, allowed {allowed:?}",
                String::from_utf8_lossy(&k)
            );
        }
    }
}

fn options(fs: Arc<dyn cobble::Fs>, scheduler: Scheduler) -> Options {
    Options {
        fs,
        memtable_size: 4096,
        target_file_size: 2048,
        block_size: 256,
        l0_compaction_threshold: 2,
        lbase_max_bytes: 8192,
        max_manifest_file_size: 512,
        scheduler,
        ..Options::default()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{:03}", i % 37).into_bytes()
}

/// The workload. Stops at the first error, recording the failed write.
fn workload(fs: &FaultFs, dir: &Path, scheduler: Scheduler, h: &mut History) {
    let open = || Db::open(options(Arc::new(fs.clone()), scheduler), dir);
    let Ok(mut db) = open() else { return };
    let result = (|| -> Result<()> {
        for i in 0..150u32 {
            let sync = i % 11 == 10;
            let wo = WriteOptions { sync };
            let k = key(i);
            let v = if i % 9 == 4 {
                None
            } else {
                Some(format!("v{i}-{}", "x".repeat(40)).into_bytes())
            };
            h.failed = Some((k.clone(), v.clone()));
            match &v {
                Some(v) => db.put(&k, v, &wo)?,
                None => db.delete(&k, &wo)?,
            }
            h.failed = None;
            h.acked.push((k, v));
            if sync {
                h.durable = h.acked.len();
            }
            if i == 30 || i == 110 {
                db.flush()?;
                h.durable = h.acked.len();
            }
            if i == 60 {
                db.compact_range(None, None)?;
                h.durable = h.acked.len();
            }
            if i % 20 == 7 {
                db.get(&ReadOptions::default(), key(i / 2))?;
            }
            if i == 80 {
                // A clean close and a recovery (WAL replay, flush, new manifest) mid-workload.
                h.closing = true;
                db.close()?;
                h.durable = h.acked.len();
                db = open()?;
                h.closing = false;
            }
        }
        Ok(())
    })();
    if result.is_err() {
        h.db = Some(db);
        return;
    }
    h.completed = db.close().is_ok();
    if h.completed {
        // A clean close syncs the WAL: everything acknowledged is durable.
        h.durable = h.acked.len();
    }
}

/// What one run saw.
#[derive(Debug, Default)]
struct Outcome {
    calls: u64,
    failures: u64,
    /// The failure left the database open and poisoned.
    poisoned: bool,
    /// `resume` ran on a poisoned database (and succeeded: it must).
    resumed: bool,
}

fn run(rule: Rule, n: u64, resume: bool, scheduler: Scheduler) -> Outcome {
    let dir = TempDir::new("fault-sweep");
    let fs = FaultFs::new(rule);
    let mut h = History::default();
    workload(&fs, dir.path(), scheduler, &mut h);
    let mut out = Outcome {
        calls: fs.control.calls(),
        failures: fs.control.failures(),
        poisoned: !h.closing && h.db.as_ref().is_some_and(Db::is_poisoned),
        resumed: false,
    };
    let healthy = || options(Arc::new(OsFs::new()), scheduler);
    match h.db.take() {
        Some(db) if resume && !h.closing => {
            // The fault was one-shot: the filesystem is healthy again.
            db.resume().unwrap_or_else(|e| panic!("n={n}: resume: {e}"));
            assert!(!db.is_poisoned(), "n={n}");
            h.check_all_acked(&db, n, "after resume");
            for i in 0..10u32 {
                let k = format!("after{i}").into_bytes();
                let v = format!("resumed{i}").into_bytes();
                db.put(&k, &v, &WriteOptions { sync: i == 9 })
                    .unwrap_or_else(|e| panic!("n={n}: put after resume: {e}"));
                h.acked.push((k, Some(v)));
            }
            db.flush().unwrap_or_else(|e| panic!("n={n}: flush after resume: {e}"));
            db.close().unwrap_or_else(|e| panic!("n={n}: close after resume: {e}"));
            drop(db);
            let db = Db::open(healthy(), dir.path())
                .unwrap_or_else(|e| panic!("n={n}: reopen after resume: {e}"));
            h.check_all_acked(&db, n, "after resume and reopen");
            out.resumed = out.poisoned;
        }
        db => {
            if let Some(db) = db {
                // Must return, whatever it says.
                let _ = db.close();
                assert!(matches!(db.put(b"k", b"v", &WriteOptions::default()), Err(Error::Closed)));
            }
            let db = Db::open(healthy(), dir.path())
                .unwrap_or_else(|e| panic!("n={n}: reopen after the failure: {e}"));
            h.check_recovered(&db, n);
            if h.completed {
                h.check_all_acked(&db, n, "after a clean close");
            }
            db.close().expect("close");
        }
    }
    out
}

#[test]
fn every_single_failure_leaves_an_openable_database_with_its_durable_writes() {
    let clean = run(Rule::Never, 0, false, Scheduler::Manual);
    assert_eq!(clean.failures, 0);
    let total = clean.calls;
    assert!(total > 250, "the workload made only {total} filesystem calls");
    let (mut poisoned, mut resumed) = (0, 0);
    for resume in [false, true] {
        for n in 1..=total {
            let out = run(Rule::Nth(n), n, resume, Scheduler::Manual);
            assert_eq!(out.failures, 1, "n={n}: the failure was not injected");
            poisoned += u64::from(out.poisoned && !resume);
            resumed += u64::from(out.resumed);
        }
    }
    println!(
        "fault sweep: {total} filesystem calls, each failed once; {poisoned} failures \
         poisoned the open database; {resumed} runs resumed"
    );
    // The sweep really reached the poisoning failures (WAL, manifest, CURRENT) and resumed
    // after each of them.
    assert!(poisoned > 50, "{poisoned}");
    assert_eq!(resumed, poisoned);
}

/// The same workload with background threads: the call count varies from run to run and a
/// failure may land in a worker's flush or compaction, so every third call is failed, with
/// and without resume. Close must return, reopen must keep every durable write, and resume
/// (when poisoned) must succeed.
#[test]
fn single_failures_under_the_threads_scheduler() {
    let threads = Scheduler::Threads { max_concurrent_compactions: 2 };
    let total = run(Rule::Never, 0, false, threads).calls;
    assert!(total > 250, "{total}");
    let (mut runs, mut injected, mut poisoned) = (0u64, 0u64, 0u64);
    for resume in [false, true] {
        for n in (1..=total).step_by(3) {
            let out = run(Rule::Nth(n), n, resume, threads);
            runs += 1;
            injected += out.failures;
            poisoned += u64::from(out.poisoned);
        }
    }
    println!("threads fault sweep: {total} calls, {runs} runs, {injected} failures injected, {poisoned} poisoned");
    // Near the end a run may make fewer calls than the counting run did.
    assert!(injected * 10 >= runs * 9, "{injected} of {runs}");
    assert!(poisoned > 20, "{poisoned}");
}
