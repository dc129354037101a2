//! End-to-end checks of the public API on `MemFs`: writes, reads, iterators, snapshots,
//! flush, compaction and reopen.

use cobble::internal::sync::Arc;

use cobble::{Db, Error, Fs, MemFs, Options, ReadOptions, Scheduler, WriteBatch, WriteOptions};

fn small_opts(fs: &MemFs) -> Options {
    Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 4096,
        target_file_size: 1024,
        block_size: 128,
        l0_compaction_threshold: 2,
        lbase_max_bytes: 4096,
        scheduler: Scheduler::Manual,
        ..Options::default()
    }
}

fn scan(db: &Db, ro: &ReadOptions) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = db.iter(ro).unwrap();
    let mut out = Vec::new();
    let mut ok = it.first().unwrap();
    while ok {
        out.push((it.key().to_vec(), it.value().to_vec()));
        ok = it.next().unwrap();
    }
    out
}

#[test]
fn writes_survive_flush_compaction_and_reopen() {
    let fs = MemFs::new();
    let wo = WriteOptions::default();
    let db = Db::open(small_opts(&fs), "/db").unwrap();
    for i in 0..500u32 {
        let k = format!("key{:04}", i % 137);
        db.put(k.as_bytes(), format!("v{i}").as_bytes(), &wo).unwrap();
        if i % 50 == 0 {
            db.delete_range(b"key0010", b"key0020", &wo).unwrap();
        }
        if i % 7 == 0 {
            db.merge(b"m", format!("{i}").as_bytes(), &wo).unwrap();
        }
        while db.run_background_step().unwrap() {}
    }
    let snap = db.snapshot();
    db.put(b"after", b"snap", &wo).unwrap();
    let before = scan(&db, &ReadOptions::default());
    let at_snap = scan(&db, &ReadOptions { snapshot: Some(snap.clone()), ..Default::default() });
    assert_eq!(before.len(), at_snap.len() + 1);
    db.compact_range(None, None).unwrap();
    assert_eq!(scan(&db, &ReadOptions::default()), before);
    assert_eq!(
        scan(&db, &ReadOptions { snapshot: Some(snap.clone()), ..Default::default() }),
        at_snap
    );
    assert_eq!(db.get(&ReadOptions::default(), b"after").unwrap(), Some(b"snap".to_vec()));
    let m = db.get(&ReadOptions::default(), b"m").unwrap().unwrap();
    assert!(m.starts_with(b"0,7,14"), "{}", String::from_utf8_lossy(&m));
    drop(snap);
    db.check_invariants().unwrap();
    let metrics = db.metrics();
    assert!(metrics.flushes > 0 && metrics.compactions > 0, "{metrics:?}");
    eprintln!("{metrics:?}\n{}", db.lsm_description());
    db.close().unwrap();
    assert!(db.leaks().is_empty(), "{:?}", db.leaks());
    drop(db);

    let db = Db::open(small_opts(&fs), "/db").unwrap();
    assert_eq!(scan(&db, &ReadOptions::default()), before);
    let mut b = WriteBatch::new();
    b.put(b"x", b"1");
    b.delete(b"x");
    b.merge(b"y", b"a");
    db.write(b, &WriteOptions { sync: true }).unwrap();
    assert_eq!(db.get(&ReadOptions::default(), b"x").unwrap(), None);
    assert_eq!(db.get(&ReadOptions::default(), b"y").unwrap(), Some(b"a".to_vec()));
    assert!(db.delete_range(b"b", b"a", &wo).unwrap_err().to_string().contains("invalid"));
    db.put(b"still", b"usable", &wo).unwrap();
}

/// Options chain like fjall's `Config`; `open` refuses impossible values by name, with
/// `InvalidArgument`, before touching the filesystem.
#[test]
fn options_chain_and_impossible_values_are_refused() {
    let fs = Arc::new(MemFs::new()) as Arc<dyn Fs>;
    let base = Options::default().fs(fs).scheduler(Scheduler::Manual);
    let o = base.clone().memtable_size(1 << 16).cache_size(0).bloom_bits_per_key(12);
    assert_eq!((o.memtable_size, o.cache_size, o.bloom_bits_per_key), (1 << 16, 0, 12));
    let db = Db::open(o, "/db").expect("open");
    db.put("k", "v", &WriteOptions::default()).expect("put");
    db.close().expect("close");
    let refused = [
        ("memtable_size", base.clone().memtable_size(0)),
        ("memtable_size", base.clone().memtable_size(4 << 30)),
        ("block_size", base.clone().block_size(0)),
        ("restart_interval", base.clone().restart_interval(0)),
        ("target_file_size", base.clone().target_file_size(0)),
        ("max_open_files", base.clone().max_open_files(0)),
        ("bloom_bits_per_key", base.clone().bloom_bits_per_key(1000)),
        ("level_multiplier", base.clone().level_multiplier(1)),
        (
            "max_concurrent_compactions",
            base.clone().scheduler(Scheduler::Threads { max_concurrent_compactions: 0 }),
        ),
    ];
    for (name, o) in refused {
        match Db::open(o, "/other") {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains(name), "{name}: {msg}"),
            other => panic!("{name}: expected InvalidArgument, got {other:?}"),
        }
    }
}
