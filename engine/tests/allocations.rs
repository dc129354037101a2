//! Heap allocations on the read path, counted per thread by this test binary's global
//! allocator: a read served from the block cache or a memtable allocates nothing beyond the
//! value it returns (Pebble's and RocksDB's discipline: no per-call garbage on the hot path).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cobble::internal::sync::Arc;
use cobble::{Db, Fs, MemFs, Options, ReadOptions, Scheduler, WriteOptions};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to `System` unchanged; the counter is a thread-local `Cell`
// with a const initializer and no destructor, so touching it never allocates or reenters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: `ptr` came from this allocator (so from `System`) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (so from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations this thread made while `f` ran.
fn allocs_in<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (r, ALLOCS.with(Cell::get) - before)
}

const WO: WriteOptions = WriteOptions { sync: false };
const N: u32 = 1500;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

/// A database holding keys `0..N` in the bottom level, `N..2N` in an L0 table and `2N..3N`
/// in the memtable, with a block cache holding every block, all read once.
fn loaded(compression: cobble::Compression) -> Db {
    let fs = MemFs::new();
    let opts = Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 4 << 20,
        cache_size: 16 << 20,
        compression,
        scheduler: Scheduler::Manual,
        ..Options::default()
    };
    let db = Db::open(opts, "/db").unwrap();
    for i in 0..3 * N {
        db.put(key(i), [b'a' + (i % 26) as u8; 100], &WO).unwrap();
        if i == N - 1 {
            db.compact_range(None, None).unwrap();
        }
        if i == 2 * N - 1 {
            db.flush().unwrap();
        }
    }
    let levels: Vec<usize> = db.metrics().levels.iter().map(|l| l.files).collect();
    assert!(levels[0] >= 1 && levels[1..].iter().sum::<usize>() >= 1, "{levels:?}");
    let ro = ReadOptions::default();
    for i in 0..3 * N {
        assert!(db.get_pinned(&ro, key(i)).unwrap().is_some());
    }
    db
}

#[test]
fn cached_point_reads_allocate_only_the_value_they_return() {
    for compression in [cobble::Compression::None, cobble::Compression::Lz4] {
        let db = loaded(compression);
        let ro = ReadOptions::default();
        let keys: Vec<Vec<u8>> = (0..3 * N).map(key).collect();
        let (pinned, n) = allocs_in(|| {
            let mut pinned = 0;
            for k in &keys {
                let v = db.get_pinned(&ro, k).unwrap().unwrap();
                pinned += usize::from(v.is_pinned() && v.len() == 100);
            }
            pinned
        });
        assert_eq!(pinned, keys.len(), "every value is pinned where it lies");
        assert_eq!(n, 0, "{n} allocations in {} pinned gets ({compression:?})", keys.len());

        let (found, n) =
            allocs_in(|| keys.iter().filter(|k| db.get(&ro, k).unwrap().is_some()).count());
        assert_eq!(found, keys.len());
        assert_eq!(n, found as u64, "one allocation per get, its value ({compression:?})");

        let missing: Vec<Vec<u8>> =
            (0..3 * N).map(|i| format!("key{i:06}x").into_bytes()).collect();
        let (found, n) =
            allocs_in(|| missing.iter().filter(|k| db.get(&ro, k).unwrap().is_some()).count());
        assert_eq!(found, 0);
        assert_eq!(n, 0, "{n} allocations in {} missing gets ({compression:?})", missing.len());
    }
}

#[test]
fn iterator_steps_allocate_nothing() {
    let db = loaded(cobble::Compression::Lz4);
    let ro = ReadOptions::default();
    let mut it = db.iter(&ro).unwrap();
    for backward in [false, true] {
        assert!(if backward { it.last() } else { it.first() }.unwrap());
        let (steps, n) = allocs_in(|| {
            let mut steps = 1;
            while if backward { it.prev() } else { it.next() }.unwrap() {
                steps += 1;
            }
            steps
        });
        assert_eq!(steps, 3 * N);
        assert_eq!(n, 0, "{n} allocations in {steps} steps (backward: {backward})");
    }

    let targets: Vec<Vec<u8>> = (0..3 * N).step_by(7).map(key).collect();
    let (seen, n) = allocs_in(|| {
        let mut seen = 0;
        for t in &targets {
            let mut ok = it.seek_ge(t).unwrap();
            for _ in 0..10 {
                seen += usize::from(ok && it.value().len() == 100);
                ok = it.next().unwrap();
            }
        }
        seen
    });
    assert!(seen > targets.len() * 9, "{seen}");
    assert_eq!(n, 0, "{n} allocations in {} seeks with short scans", targets.len());
}

#[test]
fn a_put_allocates_only_its_batch() {
    let fs = MemFs::new();
    let opts = Options {
        fs: Arc::new(fs.clone()) as Arc<dyn Fs>,
        memtable_size: 4 << 20,
        scheduler: Scheduler::Manual,
        ..Options::default()
    };
    let db = Db::open(opts, "/db").unwrap();
    // The WAL's buffers grow to a record's size on the first writes.
    for i in 0..10 {
        db.put(key(i), [b'v'; 100], &WO).unwrap();
    }
    let keys: Vec<Vec<u8>> = (10..1010).map(key).collect();
    let ((), n) = allocs_in(|| {
        for k in &keys {
            db.put(k, [b'v'; 100], &WO).unwrap();
        }
    });
    // Beyond one batch per put, only MemFs's in-memory WAL file grows (doubling: a handful
    // of reallocations over the whole run).
    let per_put = keys.len() as u64;
    assert!((per_put..per_put + 16).contains(&n), "{n} allocations in {per_put} puts");
    let ((), n) = allocs_in(|| {
        for k in &keys {
            db.delete(k, &WO).unwrap();
        }
    });
    assert!((per_put..per_put + 16).contains(&n), "{n} allocations in {per_put} deletes");
}

/// Range tombstones are fragmented once (per table, per memtable until its next range
/// delete, per version for iterators), not per read: a pinned `get` under 200 tombstones in
/// tables and memtable allocates nothing, and opening an iterator allocates as much as with
/// none at all.
#[test]
fn range_tombstones_cost_reads_no_allocations() {
    let plain = loaded(cobble::Compression::None);
    let deleted = loaded(cobble::Compression::None);
    // Tombstones over keys nobody reads, half flushed into a table, half in the memtable;
    // the other database gets puts of the same keys, so both trees have the same shape.
    for i in 0..200 {
        let start = format!("zz{i:04}");
        let end = format!("zz{i:04}~");
        deleted.delete_range(&start, end, &WO).unwrap();
        plain.put(start, b"v", &WO).unwrap();
        if i == 99 {
            deleted.flush().unwrap();
            plain.flush().unwrap();
        }
    }
    let ro = ReadOptions::default();
    let keys: Vec<Vec<u8>> = (0..3 * N).step_by(3).map(key).collect();
    for db in [&plain, &deleted] {
        for k in &keys {
            assert!(db.get_pinned(&ro, k).unwrap().is_some());
        }
        drop(db.iter(&ro).unwrap());
    }
    let (_, n) = allocs_in(|| {
        for k in &keys {
            assert!(deleted.get_pinned(&ro, k).unwrap().is_some());
        }
    });
    assert_eq!(n, 0, "{n} allocations in {} gets under 200 tombstones", keys.len());
    let (_, with_none) = allocs_in(|| plain.iter(&ro).unwrap());
    let (_, with_many) = allocs_in(|| deleted.iter(&ro).unwrap());
    assert_eq!(with_many, with_none, "opening an iterator fragments nothing");
}
