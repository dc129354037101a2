//! The engine's threads under shuttle: a database with `Scheduler::Threads` (two compaction
//! workers) on `MemFs`, written by two client threads while flushes and compactions run, inside
//! a shuttle runner whose random scheduler is seeded. The same seed must give the same
//! interleaving (the order in which the clients' writes were acknowledged) and the same final
//! database, run after run: the property Tumbler's threaded configs rely on to replay.
//!
//! Run: `cargo test -p cobble --features shuttle --release --test shuttle`. Outside a shuttle
//! runner a shuttle build panics on its first lock, so this is the only test to run in it.
#![cfg(feature = "shuttle")]

use cobble::internal::sync::{thread, Arc, Mutex};
use cobble::{Db, Fs, MemFs, Options, ReadOptions, Scheduler, WriteOptions};
use shuttle::scheduler::RandomScheduler;
use shuttle::{Config, Runner};

/// What one execution shows: the acknowledgement order of the clients' writes and a full scan.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Outcome {
    acks: Vec<String>,
    scan: Vec<(Vec<u8>, Vec<u8>)>,
}

#[expect(
    clippy::disallowed_methods,
    reason = "the clients are the concurrency under test; shuttle schedules them"
)]
fn workload(outcome: &Mutex<Outcome>) {
    let fs = MemFs::new();
    let opts = Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 1024,
        target_file_size: 1024,
        block_size: 256,
        l0_compaction_threshold: 2,
        scheduler: Scheduler::Threads { max_concurrent_compactions: 2 },
        ..Options::default()
    };
    let db = Arc::new(Db::open(opts, "/db").expect("open"));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let (db, acks) = (Arc::clone(&db), Arc::clone(&acks));
            thread::spawn(move || {
                let wo = WriteOptions::default();
                for i in 0..40 {
                    let key = format!("k{:03}", (i * 7 + c * 3) % 50);
                    db.put(key.as_bytes(), format!("c{c}i{i}").as_bytes(), &wo).expect("put");
                    acks.lock().expect("acks").push(format!("{c}:{i}"));
                    if i % 15 == 14 {
                        db.flush().expect("flush");
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
    db.compact_range(None, None).expect("compact_range");
    let mut scan = Vec::new();
    let mut it = db.iter(&ReadOptions::default()).expect("iter");
    let mut ok = it.first().expect("first");
    while ok {
        scan.push((it.key().to_vec(), it.value().to_vec()));
        ok = it.next().expect("next");
    }
    drop(it);
    db.close().expect("close");
    let acks = acks.lock().expect("acks").clone();
    *outcome.lock().expect("outcome") = Outcome { acks, scan };
}

/// One execution under a random scheduler seeded with `seed`.
#[expect(
    clippy::disallowed_types,
    reason = "the result leaves the shuttle runner, so it is kept in a std mutex outside it"
)]
fn run(seed: u64) -> Outcome {
    let out = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = std::sync::Arc::clone(&out);
    let runner = Runner::new(RandomScheduler::new_from_seed(seed, 1), Config::new());
    runner.run(move || {
        let outcome = Mutex::new(Outcome::default());
        workload(&outcome);
        let outcome = outcome.lock().expect("outcome").clone();
        *slot.lock().expect("slot") = Some(outcome);
    });
    let outcome = out.lock().expect("out").take().expect("the execution ran");
    outcome
}

#[test]
fn same_seed_same_interleaving_and_state() {
    for seed in [1u64, 7] {
        let first = run(seed);
        let second = run(seed);
        assert_eq!(first.acks.len(), 80);
        assert_eq!(first, second, "seed {seed} did not replay");
    }
}

/// The scheduler really interleaves the clients: different seeds give different orders (so the
/// replay above is not a single fixed schedule in disguise).
#[test]
fn seeds_interleave_differently() {
    let outcomes: Vec<Outcome> = (1..=6).map(run).collect();
    let orders: std::collections::BTreeSet<&Vec<String>> =
        outcomes.iter().map(|o| &o.acks).collect();
    assert!(orders.len() > 1, "six seeds gave one interleaving");
}

/// Group commit under many interleavings: three clients write their own keys, synced and
/// not, while a background worker flushes and compacts. Each write reads back right after it
/// returns; at the end every write is there, and the groups never outnumber the writes.
#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "the clients are the concurrency under test; shuttle schedules them"
)]
fn concurrent_writers_commit_in_groups_under_every_schedule() {
    shuttle::check_random(
        || {
            let opts = Options {
                fs: Arc::new(MemFs::new()) as Arc<dyn Fs>,
                memtable_size: 2048,
                target_file_size: 1024,
                block_size: 256,
                l0_compaction_threshold: 2,
                scheduler: Scheduler::Threads { max_concurrent_compactions: 1 },
                ..Options::default()
            };
            let db = Arc::new(Db::open(opts, "/db").expect("open"));
            let clients: Vec<_> = (0..3)
                .map(|c| {
                    let db = Arc::clone(&db);
                    thread::spawn(move || {
                        for i in 0..12 {
                            let wo = WriteOptions { sync: (i + c) % 3 == 0 };
                            let (key, value) = (format!("c{c}k{}", i % 5), format!("v{i}"));
                            db.put(&key, &value, &wo).expect("put");
                            let got = db.get(&ReadOptions::default(), &key).expect("get");
                            assert_eq!(got, Some(value.into_bytes()), "{key} after its put");
                        }
                    })
                })
                .collect();
            for client in clients {
                client.join().expect("client");
            }
            for c in 0..3 {
                for k in 0..5 {
                    let last = (0..12).filter(|i| i % 5 == k).max().expect("a write");
                    let got = db.get(&ReadOptions::default(), format!("c{c}k{k}")).expect("get");
                    assert_eq!(got, Some(format!("v{last}").into_bytes()));
                }
            }
            let m = db.metrics();
            assert_eq!(m.writes, 36);
            assert!(m.write_groups >= 1 && m.write_groups <= m.writes);
            assert_eq!(m.queued_writes, 0);
            db.close().expect("close");
        },
        60,
    );
}
