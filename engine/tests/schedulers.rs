//! Both schedulers give the same database: one seeded workload (puts, deletes, range deletes,
//! merges, batches; a tiny memtable so flushes and compactions run all the time) under
//! `Scheduler::Threads { max_concurrent_compactions: 2 }` and under `Scheduler::Manual` with
//! `run_background_step` called every few writes. Every read (full scans and gets, now and at
//! snapshots, before and after reopen) must be identical, and equal to a BTreeMap model.

use cobble::internal::sync::Arc;
use std::collections::BTreeMap;

use cobble::{Db, Fs, MemFs, Options, ReadOptions, Scheduler, Snapshot, WriteBatch, WriteOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

const KEYS: usize = 400;
const WRITES: usize = 6000;
const SEED: u64 = 0x5ced_u64;

/// The workload seed: `SEED`, or `SCHEDULERS_SEED` for a soak run over other seeds.
fn seed() -> u64 {
    std::env::var("SCHEDULERS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED)
}

fn key(i: usize) -> Vec<u8> {
    format!("key{:05}", i % KEYS).into_bytes()
}

fn options(fs: &MemFs, scheduler: Scheduler) -> Options {
    Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 4096,
        target_file_size: 2048,
        block_size: 256,
        l0_compaction_threshold: 2,
        l0_stop_writes_threshold: 8,
        lbase_max_bytes: 8192,
        level_multiplier: 4,
        cache_size: 16 << 10,
        scheduler,
        ..Options::default()
    }
}

fn scan(db: &Db, ro: &ReadOptions) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = db.iter(ro).expect("iter");
    let mut out = Vec::new();
    let mut ok = it.first().expect("first");
    while ok {
        out.push((it.key().to_vec(), it.value().to_vec()));
        ok = it.next().expect("next");
    }
    out
}

/// Everything one view shows: a full scan, then a get of every key.
fn read_all(db: &Db, ro: &ReadOptions) -> Vec<String> {
    let mut out: Vec<String> = scan(db, ro)
        .into_iter()
        .map(|(k, v)| format!("{}={}", k.escape_ascii(), v.escape_ascii()))
        .collect();
    out.push("--".to_string());
    for i in 0..KEYS {
        let v = db.get(ro, key(i)).expect("get");
        out.push(v.map(|v| v.escape_ascii().to_string()).unwrap_or_default());
    }
    out
}

fn model_view(m: &Map) -> Vec<String> {
    let mut out: Vec<String> =
        m.iter().map(|(k, v)| format!("{}={}", k.escape_ascii(), v.escape_ascii())).collect();
    out.push("--".to_string());
    for i in 0..KEYS {
        out.push(m.get(&key(i)).map(|v| v.escape_ascii().to_string()).unwrap_or_default());
    }
    out
}

/// Runs the workload; returns every read it made, in order.
fn run(scheduler: Scheduler) -> Vec<Vec<String>> {
    let fs = MemFs::new();
    let db = Db::open(options(&fs, scheduler), "/db").expect("open");
    let manual = scheduler == Scheduler::Manual;
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let wo = WriteOptions::default();
    let mut model = Map::new();
    let mut reads = Vec::new();
    let mut snaps: Vec<(Snapshot, Map)> = Vec::new();
    let mut i = 0;
    while i < WRITES {
        let mut batch = WriteBatch::new();
        let n = if rng.gen_bool(0.1) { rng.gen_range(2..6) } else { 1 };
        for _ in 0..n {
            i += 1;
            let k = rng.gen_range(0..KEYS);
            match rng.gen_range(0..100) {
                0..=54 => {
                    let v = format!("v{i}-{}", "p".repeat(rng.gen_range(0..40)));
                    batch.put(key(k), v.as_bytes());
                    model.insert(key(k), v.into_bytes());
                }
                55..=69 => {
                    batch.delete(key(k));
                    model.remove(&key(k));
                }
                70..=95 => {
                    let op = format!("m{i}");
                    batch.merge(key(k), op.as_bytes());
                    match model.get_mut(&key(k)) {
                        Some(v) => {
                            v.push(b',');
                            v.extend_from_slice(op.as_bytes());
                        }
                        None => {
                            model.insert(key(k), op.into_bytes());
                        }
                    }
                }
                _ => {
                    let end = (k + rng.gen_range(0..20)).min(KEYS - 1);
                    batch.delete_range(key(k), key(end));
                    let doomed: Vec<Vec<u8>> =
                        model.range(key(k)..key(end)).map(|(k, _)| k.clone()).collect();
                    for d in doomed {
                        model.remove(&d);
                    }
                }
            }
        }
        db.write(batch, &wo).expect("write");
        // Drawn under both schedulers, so the workload's stream is the same.
        let step = rng.gen_range(0..8) == 0;
        if manual && step {
            db.run_background_step().expect("background step");
        }
        if rng.gen_range(0..1500) == 0 {
            // Under Threads this races the background compactions for the same files.
            let a = rng.gen_range(0..KEYS);
            let b = (a + rng.gen_range(0..100)).min(KEYS - 1);
            db.compact_range(Some(&key(a)), Some(&key(b))).expect("compact_range");
        }
        if rng.gen_range(0..1000) == 0 {
            if snaps.len() >= 3 {
                snaps.remove(0);
            }
            snaps.push((db.snapshot(), model.clone()));
        }
        if rng.gen_range(0..700) == 0 {
            let view = read_all(&db, &ReadOptions::default());
            assert_eq!(view, model_view(&model), "{scheduler:?}: at write {i}");
            reads.push(view);
        }
    }
    let view = read_all(&db, &ReadOptions::default());
    assert_eq!(view, model_view(&model), "{scheduler:?}: at the end");
    reads.push(view);
    for (s, m) in &snaps {
        let ro = ReadOptions { snapshot: Some(s.clone()), ..Default::default() };
        let view = read_all(&db, &ro);
        assert_eq!(view, model_view(m), "{scheduler:?}: snapshot {}", s.seqnum());
        reads.push(view);
    }
    snaps.clear();
    let metrics = db.metrics();
    eprintln!("{scheduler:?}: {metrics:?}");
    assert!(metrics.flushes > 10 && metrics.compactions > 5, "{scheduler:?}: {metrics:?}");
    db.check_invariants().expect("invariants");
    db.close().expect("close");
    assert!(db.leaks().is_empty(), "{:?}", db.leaks());
    drop(db);

    let db = Db::open(options(&fs, scheduler), "/db").expect("reopen");
    let view = read_all(&db, &ReadOptions::default());
    assert_eq!(view, model_view(&model), "{scheduler:?}: after reopen");
    reads.push(view);
    db.compact_range(None, None).expect("compact_range");
    let view = read_all(&db, &ReadOptions::default());
    assert_eq!(view, model_view(&model), "{scheduler:?}: after compact_range");
    reads.push(view);
    db.check_invariants().expect("invariants");
    db.close().expect("close");
    assert!(db.leaks().is_empty(), "{:?}", db.leaks());
    reads
}

#[test]
fn threads_and_manual_give_identical_reads() {
    let manual = run(Scheduler::Manual);
    let threads = run(Scheduler::Threads { max_concurrent_compactions: 2 });
    assert_eq!(manual.len(), threads.len());
    for (i, (m, t)) in manual.iter().zip(&threads).enumerate() {
        assert_eq!(m, t, "read {i} differs between schedulers");
    }
}
