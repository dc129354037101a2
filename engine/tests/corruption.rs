//! Damaged files: build a small real database on MemFs (tables on several levels with range
//! tombstones, a manifest, a WAL holding unflushed writes), then damage one file at a time
//! (flipped bytes at seeded positions, truncations), reopen and read everything.
//!
//! Every read must give what the undamaged database gives, or `Error::Corruption`; never a
//! panic, never wrong data. WAL damage is judged more loosely: `TolerateCorruptTail` may drop a
//! damaged tail, so the state may be that after any prefix of the WAL's batches, but all reads
//! of one reopen must agree on one prefix.
//!
//! Bugs this test found (the checks they led to are in `db/recovery.rs`):
//! - The manifest reader drops a damaged last edit, as it must for a torn append after a crash.
//!   But a bit flip in a complete, synced last edit looks the same, and dropping it left an
//!   older version: one whose compaction inputs were already deleted, or one missing the tables
//!   of the last flush whose WAL was already deleted, and reads returned old data. A torn edit
//!   was never acted on, so every file its predecessor names still exists: a missing table, or
//!   a missing WAL at the log number while newer WALs exist, is now `Corruption`.
//! - Every WAL was read tolerating a damaged tail, so a flipped byte near the end of an older
//!   WAL dropped its last batches while the next WAL's batches were still replayed: a hole in
//!   the middle of history, not a lost tail. An older WAL is synced before the next one is
//!   created, so a crash never tears it: a dropped tail followed by writes in a later WAL is
//!   now `Corruption`.
//! - The same hole without visible damage: an older WAL cut at a record boundary (or to
//!   nothing) reads as clean, but the writes that follow skip seqnums. Each replayed batch must
//!   now continue the one before it.

use cobble::internal::sync::Arc;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use cobble::internal::filename::{self, FileKind};
use cobble::{
    Compression, Db, Fs, MemFs, Options, ReadOptions, Scheduler, WriteBatch, WriteOptions,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

const DIR: &str = "/db";
const KEYS: usize = 160;

fn key(i: usize) -> Vec<u8> {
    format!("key{:04}", i % KEYS).into_bytes()
}

fn options(fs: &MemFs, compression: Compression) -> Options {
    Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 4096,
        target_file_size: 1024,
        block_size: 128,
        index_block_size: 128,
        l0_compaction_threshold: 2,
        l0_stop_writes_threshold: 20,
        lbase_max_bytes: 4096,
        compression,
        cache_size: 4096,
        scheduler: Scheduler::Manual,
        ..Options::default()
    }
}

/// One write, applied to both the database (inside a batch) and the model.
#[derive(Debug, Clone)]
enum W {
    Put(usize, String),
    Delete(usize),
    Merge(usize, String),
    DeleteRange(usize, usize),
}

fn apply(model: &mut Map, w: &W) {
    match w {
        W::Put(k, v) => {
            model.insert(key(*k), v.clone().into_bytes());
        }
        W::Delete(k) => {
            model.remove(&key(*k));
        }
        W::Merge(k, v) => match model.get_mut(&key(*k)) {
            Some(old) => {
                old.push(b',');
                old.extend_from_slice(v.as_bytes());
            }
            None => {
                model.insert(key(*k), v.clone().into_bytes());
            }
        },
        W::DeleteRange(a, b) => {
            let doomed: Vec<Vec<u8>> =
                model.range(key(*a)..key(*b)).map(|(k, _)| k.clone()).collect();
            for k in doomed {
                model.remove(&k);
            }
        }
    }
}

fn random_write(rng: &mut ChaCha8Rng, n: usize) -> W {
    let k = rng.gen_range(0..KEYS);
    match rng.gen_range(0..20) {
        0..=10 => W::Put(k, format!("v{n}-{}", "x".repeat(rng.gen_range(0..24)))),
        11..=13 => W::Delete(k),
        14..=17 => W::Merge(k, format!("m{n}")),
        _ => W::DeleteRange(k, (k + rng.gen_range(1..12)).min(KEYS - 1)),
    }
}

fn write_batch(db: &Db, model: &mut Map, ws: &[W]) {
    let mut b = WriteBatch::new();
    for w in ws {
        match w {
            W::Put(k, v) => b.put(key(*k), v.as_bytes()),
            W::Delete(k) => b.delete(key(*k)),
            W::Merge(k, v) => b.merge(key(*k), v.as_bytes()),
            W::DeleteRange(a, c) => b.delete_range(key(*a), key(*c)),
        }
        apply(model, w);
    }
    db.write(b, &WriteOptions::default()).expect("write");
}

/// The built database: its files, and the states a reader may legitimately see.
struct Built {
    files: BTreeMap<String, Vec<u8>>,
    /// The full state (tables + WAL).
    full: Map,
    /// States after each prefix of the WAL's batches (`prefixes[0]` = tables only).
    prefixes: Vec<Map>,
}

fn build(compression: Compression, seed: u64) -> Built {
    let fs = MemFs::new();
    let db = Db::open(options(&fs, compression), DIR).expect("open");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = Map::new();
    let mut n = 0;
    // Bulk: lands on the bottom level after compact_range.
    for i in 0..KEYS {
        write_batch(&db, &mut model, &[W::Put(i, format!("base{i}"))]);
    }
    for _ in 0..300 {
        n += 1;
        let w = random_write(&mut rng, n);
        write_batch(&db, &mut model, &[w]);
    }
    db.compact_range(None, None).expect("compact_range");
    // Middle: flushed and compacted into L1 (and maybe further).
    for _ in 0..250 {
        n += 1;
        let w = random_write(&mut rng, n);
        write_batch(&db, &mut model, &[w]);
        if n % 40 == 0 {
            while db.run_background_step().expect("step") {}
        }
    }
    db.flush().expect("flush");
    while db.run_background_step().expect("step") {}
    // Top: flushed to L0 and left there.
    for _ in 0..40 {
        n += 1;
        let w = random_write(&mut rng, n);
        write_batch(&db, &mut model, &[w]);
    }
    write_batch(&db, &mut model, &[W::DeleteRange(20, 30)]);
    db.flush().expect("flush");
    // Tail: only in WALs, in batches of a few writes each. Big enough to fill the memtable
    // once, so the tail spans two WALs (the older one full and synced, the newer one open).
    let mut prefixes = vec![model.clone()];
    for _ in 0..24 {
        let ws: Vec<W> = (0..rng.gen_range(1..4))
            .map(|_| {
                n += 1;
                match random_write(&mut rng, n) {
                    W::Put(k, v) => W::Put(k, format!("{v}{}", "t".repeat(150))),
                    w => w,
                }
            })
            .collect();
        write_batch(&db, &mut model, &ws);
        prefixes.push(model.clone());
    }
    let lsm = db.lsm_description();
    eprintln!("{lsm}");
    let levels: Vec<usize> = db.metrics().levels.iter().map(|l| l.files).collect();
    assert!(levels[0] > 0 && levels[1..].iter().filter(|&&n| n > 0).count() >= 2, "{lsm}");
    db.close().expect("close");
    drop(db);
    let mut files = BTreeMap::new();
    for name in fs.list(Path::new(DIR)).expect("list") {
        let f = fs.open(&Path::new(DIR).join(&name)).expect("open file");
        let mut buf = vec![0; f.len().expect("len") as usize];
        f.read_at(0, &mut buf).expect("read");
        files.insert(name, buf);
    }
    let wals =
        files.keys().filter(|n| matches!(filename::parse(n), Some(FileKind::Wal(_)))).count();
    assert_eq!(wals, 2, "two WALs hold the tail: {:?}", files.keys().collect::<Vec<_>>());
    Built { files, full: model, prefixes }
}

fn restore(files: &BTreeMap<String, Vec<u8>>) -> MemFs {
    let fs = MemFs::new();
    fs.create_dir_all(Path::new(DIR)).expect("mkdir");
    for (name, data) in files {
        let f = fs.create(&Path::new(DIR).join(name)).expect("create");
        f.append(data).expect("append");
    }
    fs
}

/// What one reopen of a (maybe damaged) copy showed.
#[derive(Debug, Default)]
struct Outcome {
    open_failed: bool,
    corrupt_reads: usize,
}

/// Opens a copy of `files` and reads everything; every answer must fit one of `candidates`
/// (all answers the same one) or be `Error::Corruption`. Panics with `what` on a violation.
fn check(
    files: &BTreeMap<String, Vec<u8>>,
    compression: Compression,
    candidates: &[&Map],
    what: &str,
) -> Outcome {
    let fs = restore(files);
    let mut out = Outcome::default();
    let db = match Db::open(options(&fs, compression), DIR) {
        Ok(db) => db,
        Err(e) => {
            assert!(e.is_corruption(), "{what}: open failed with a non-corruption error: {e}");
            out.open_failed = true;
            return out;
        }
    };
    // Candidates still consistent with everything read so far.
    let mut alive: Vec<&Map> = candidates.to_vec();
    let ro = ReadOptions::default();
    let mut narrow = |answer: &dyn Fn(&Map) -> bool, read: &str| {
        alive.retain(|m| answer(m));
        assert!(!alive.is_empty(), "{what}: {read} returned data no acceptable state has");
    };
    let mut corrupt = |e: cobble::Error, read: &str| {
        assert!(e.is_corruption(), "{what}: {read} failed with a non-corruption error: {e}");
        out.corrupt_reads += 1;
    };
    match scan(&db, &ro, false) {
        Ok(got) => narrow(&|m: &Map| entries(m) == got, "forward scan"),
        Err(e) => corrupt(e, "forward scan"),
    }
    match scan(&db, &ro, true) {
        Ok(got) => narrow(&|m: &Map| entries(m) == got, "reverse scan"),
        Err(e) => corrupt(e, "reverse scan"),
    }
    for i in 0..KEYS {
        let k = key(i);
        match db.get(&ro, &k) {
            Ok(got) => narrow(&|m: &Map| m.get(&k) == got.as_ref(), "get"),
            Err(e) => corrupt(e, "get"),
        }
    }
    let _ = db.close();
    out
}

fn entries(m: &Map) -> Vec<(Vec<u8>, Vec<u8>)> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn scan(db: &Db, ro: &ReadOptions, reverse: bool) -> cobble::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut it = db.iter(ro)?;
    let mut out = Vec::new();
    let mut ok = if reverse { it.last()? } else { it.first()? };
    while ok {
        out.push((it.key().to_vec(), it.value().to_vec()));
        ok = if reverse { it.prev()? } else { it.next()? };
    }
    if reverse {
        out.reverse();
    }
    Ok(out)
}

/// Which files are damaged: tables, the manifest and the WAL (not CURRENT or LOCK).
fn damageable(name: &str) -> bool {
    matches!(
        filename::parse(name),
        Some(FileKind::Table(_) | FileKind::Manifest(_) | FileKind::Wal(_))
    )
}

fn is_wal(name: &str) -> bool {
    matches!(filename::parse(name), Some(FileKind::Wal(_)))
}

fn run(
    compression: Compression,
    seed: u64,
    flips: usize,
    wal_flips: usize,
    truncations_per_file: usize,
) {
    let built = build(compression, seed);
    let full = [&built.full];
    let prefixes: Vec<&Map> = built.prefixes.iter().collect();
    assert_eq!(check(&built.files, compression, &full, "undamaged").corrupt_reads, 0);
    let names: Vec<&String> = built.files.keys().filter(|n| damageable(n)).collect();
    let total: usize = names.iter().map(|n| built.files[*n].len()).sum();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xdead_beef);
    let mut stats: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut trial = |files: BTreeMap<String, Vec<u8>>, name: &str, what: String| {
        let candidates: &[&Map] = if is_wal(name) { &prefixes } else { &full };
        let outcome =
            catch_unwind(AssertUnwindSafe(|| check(&files, compression, candidates, &what)));
        let outcome = match outcome {
            Ok(o) => o,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{what}: {msg}");
            }
        };
        let kind = match filename::parse(name) {
            Some(FileKind::Table(_)) => "table",
            Some(FileKind::Manifest(_)) => "manifest",
            _ => "wal",
        };
        let s = stats.entry(kind).or_default();
        s.0 += 1;
        s.1 += usize::from(outcome.open_failed);
        s.2 += usize::from(outcome.corrupt_reads > 0);
    };
    for _ in 0..flips {
        // A uniformly chosen byte over all damageable files.
        let mut pos = rng.gen_range(0..total);
        let mut name = names[0];
        for n in &names {
            if pos < built.files[*n].len() {
                name = n;
                break;
            }
            pos -= built.files[*n].len();
        }
        let mask: u8 = rng.gen_range(1..=255);
        let mut files = built.files.clone();
        files.get_mut(name).expect("file")[pos] ^= mask;
        trial(files, name, format!("{compression:?}: {name} byte {pos} ^= {mask:#04x}"));
    }
    // The WALs are small, so uniform sampling hits them rarely: extra flips there.
    let wals: Vec<&String> = names.iter().copied().filter(|n| is_wal(n)).collect();
    for _ in 0..wal_flips {
        let wal = wals[rng.gen_range(0..wals.len())];
        let pos = rng.gen_range(0..built.files[wal].len());
        let mask: u8 = rng.gen_range(1..=255);
        let mut files = built.files.clone();
        files.get_mut(wal).expect("file")[pos] ^= mask;
        trial(files, wal, format!("{compression:?}: {wal} byte {pos} ^= {mask:#04x}"));
    }
    for name in &names {
        let len = built.files[*name].len();
        for t in 0..truncations_per_file {
            let cut = if t == 0 { 0 } else { rng.gen_range(0..len) };
            let mut files = built.files.clone();
            files.get_mut(*name).expect("file").truncate(cut);
            trial(files, name, format!("{compression:?}: {name} truncated to {cut} of {len}"));
        }
    }
    eprintln!(
        "{compression:?}: {} files, {total} bytes; (trials, open failed, reads failed): {stats:?}",
        names.len()
    );
}

#[test]
fn damaged_files_never_give_wrong_data_uncompressed() {
    run(Compression::None, 1, 1200, 150, 8);
}

#[test]
fn damaged_files_never_give_wrong_data_lz4() {
    run(Compression::Lz4, 2, 1200, 150, 8);
}
