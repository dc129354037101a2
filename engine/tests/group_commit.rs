//! Group commit: concurrent writes queue behind the one appending to the WAL and commit as one
//! group with one sync; a failed group sync fails every member and poisons the database.
//!
//! The first writer's WAL sync is held at a gate (`fault_fs`) while the others queue, so the
//! groups formed do not depend on thread timing.

mod fault_fs;

use cobble::internal::sync::Arc;

use cobble::{Db, Fs, MemFs, Options, ReadOptions, Scheduler, WriteOptions};
use fault_fs::{FaultFs, Op, Rule, Target};

const SYNC: WriteOptions = WriteOptions { sync: true };
const FOLLOWERS: usize = 7;

fn open(fs: &FaultFs) -> Db {
    let opts = Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        scheduler: Scheduler::Manual,
        ..Options::default()
    };
    Db::open(opts, "/db").expect("open")
}

/// Holds the next WAL sync, lets one writer reach it and `FOLLOWERS` more queue behind it,
/// then opens the gate; returns every writer's result, the leader's first.
#[expect(clippy::disallowed_methods, reason = "concurrent writers are what this test is about")]
fn leader_and_followers(db: &Db, fs: &FaultFs, before_release: impl FnOnce()) -> Vec<bool> {
    fs.control.hold(Op::Sync, Target::Wal, 1);
    cobble::internal::sync::thread::scope(|s| {
        let leader = s.spawn(|| db.put(b"leader", b"l", &SYNC));
        fs.control.wait_held();
        let followers: Vec<_> =
            (0..FOLLOWERS).map(|i| s.spawn(move || db.put(format!("f{i}"), b"v", &SYNC))).collect();
        // The leader appends without the lock, so the followers queue behind it.
        while db.metrics().queued_writes < 1 + FOLLOWERS {
            cobble::internal::sync::thread::yield_now();
        }
        before_release();
        fs.control.open_gate();
        let mut ok = vec![leader.join().expect("leader returns").is_ok()];
        ok.extend(followers.into_iter().map(|f| f.join().expect("follower returns").is_ok()));
        ok
    })
}

#[test]
fn concurrent_synced_writers_share_one_sync() {
    let mem = MemFs::new();
    let fs = FaultFs::over(Arc::new(mem.clone()), Rule::Never);
    let db = open(&fs);
    let before = db.metrics();
    let ok = leader_and_followers(&db, &fs, || {});
    assert!(ok.iter().all(|&ok| ok), "{ok:?}");
    let after = db.metrics();
    assert_eq!(after.writes - before.writes, 1 + FOLLOWERS as u64);
    assert_eq!(
        after.write_groups - before.write_groups,
        2,
        "the leader's, then one of all followers"
    );
    assert_eq!(after.queued_writes, 0);
    db.close().expect("close");
    // Every write is in the WAL (one record per batch of the group): replay finds them.
    let fs = FaultFs::over(Arc::new(mem), Rule::Never);
    let db = open(&fs);
    let ro = ReadOptions::default();
    assert_eq!(db.get(&ro, "leader").unwrap(), Some(b"l".to_vec()));
    for i in 0..FOLLOWERS {
        assert_eq!(db.get(&ro, format!("f{i}")).unwrap(), Some(b"v".to_vec()), "f{i}");
    }
    db.close().expect("close");
}

#[test]
fn a_failed_group_sync_fails_every_member_and_poisons() {
    let fs = FaultFs::over(Arc::new(MemFs::new()), Rule::Never);
    let db = open(&fs);
    let ok = leader_and_followers(&db, &fs, || {
        // The held sync fails once the gate opens.
        fs.control.arm(Rule::Match { op: Op::Sync, target: Target::Wal, after: None });
    });
    assert!(ok.iter().all(|&ok| !ok), "no write of a failed group succeeds: {ok:?}");
    assert!(db.is_poisoned());
    assert_eq!(db.metrics().queued_writes, 0, "every writer left the queue");
    assert!(db.put(b"later", b"x", &SYNC).is_err(), "a poisoned database refuses writes");
    db.close().expect("close");
}
