//! Tests of the block cache: accounting, pinning, scan resistance, leak reports, threads, and a
//! model-based property test.

use crate::sync::Arc;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::clock::{CacheKey, Clock};
use super::*;

fn block(len: usize, fill: u8) -> Box<[u8]> {
    vec![fill; len].into_boxed_slice()
}

/// Recounts usage from first principles: the charges of the distinct blocks alive, found in
/// the shards' indexes and in the given handles.
fn recount_usage<'a>(cache: &Cache, handles: impl IntoIterator<Item = &'a CacheHandle>) -> usize {
    let mut seen = BTreeSet::new();
    let mut total = 0;
    let resident = cache.shards.iter().flat_map(|s| s.lock().resident_blocks());
    let held = handles.into_iter().map(|h| Arc::clone(h.block()));
    for b in resident.chain(held) {
        if seen.insert(Arc::as_ptr(&b) as usize) {
            total += b.charge();
        }
    }
    total
}

#[test]
fn cache_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Cache>();
    check::<CacheHandle>();
    check::<Arc<Cache>>();
}

#[test]
fn shard_counts_are_powers_of_two_and_shares_add_up() {
    for capacity in [0, 1, 1000, SHARD_BYTES_MIN, 3 * SHARD_BYTES_MIN + 7, 64 << 20, 1 << 40] {
        let cache = Cache::new(capacity);
        let n = cache.shards.len();
        assert!(n.is_power_of_two() && n <= SHARD_COUNT_MAX, "{capacity}: {n} shards");
        assert_eq!(n, 1 << cache.shard_bits);
        let sum: usize = cache.shards.iter().map(|s| s.lock().capacity()).sum();
        assert_eq!(sum, capacity);
    }
    assert_eq!(Cache::new(1000).shards.len(), 1);
    assert_eq!(Cache::new(8 << 20).shards.len(), 16);
}

#[test]
fn entry_overhead_covers_the_bookkeeping() {
    // Ring node in its slab slot, the index's key and slot, and the Arc allocation of a Block.
    let node = std::mem::size_of::<Option<clock::Node>>();
    let index = std::mem::size_of::<CacheKey>() + std::mem::size_of::<usize>();
    let arc = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Block>();
    // B-tree nodes are at least half full: allow the index entry twice.
    assert!(node + 2 * index + arc <= ENTRY_OVERHEAD, "{node} + 2*{index} + {arc}");
}

#[test]
fn insert_get_replace() {
    let cache = Cache::new(1 << 20);
    let id = cache.new_id();
    assert_ne!(id, cache.new_id());
    assert!(cache.get(id, 1, 0).is_none());
    let h = cache.insert(id, 1, 0, block(10, 7));
    assert_eq!(&*h, &[7u8; 10][..]);
    assert_eq!((h.file_num(), h.offset()), (1, 0));
    assert_eq!(cache.usage(), 10 + ENTRY_OVERHEAD);
    let g = cache.get(id, 1, 0).expect("just inserted");
    assert_eq!(&*g, &*h);
    // Same file and offset under another id is another block.
    assert!(cache.get(id + 1, 1, 0).is_none());

    // Replacing while pinned: old handles keep the old bytes, which are still counted.
    let r = cache.insert(id, 1, 0, block(20, 9));
    assert_eq!(&*h, &[7u8; 10][..]);
    assert_eq!(&*r, &[9u8; 20][..]);
    assert_eq!(&*cache.get(id, 1, 0).expect("replaced"), &[9u8; 20][..]);
    assert_eq!(cache.usage(), 30 + 2 * ENTRY_OVERHEAD);
    drop((h, g));
    assert_eq!(cache.usage(), 20 + ENTRY_OVERHEAD);
    drop(r);
    assert_eq!(cache.usage(), 20 + ENTRY_OVERHEAD, "the cache still holds the new block");

    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.inserts, m.evictions), (2, 2, 2, 0));
    assert_eq!((m.entries, m.cold_entries, m.resident_bytes), (1, 1, 20 + ENTRY_OVERHEAD));
    assert_eq!(m.capacity, 1 << 20);
    cache.check_invariants();
}

#[test]
fn tiny_capacities_still_hand_out_working_handles() {
    for capacity in [0, 1, ENTRY_OVERHEAD + 3] {
        let cache = Cache::new(capacity);
        let a = cache.insert(1, 1, 0, block(4, 1));
        let b = cache.insert(1, 1, 8, block(4, 2));
        assert_eq!((&*a, &*b), (&[1u8; 4][..], &[2u8; 4][..]));
        assert_eq!(cache.usage(), 2 * (4 + ENTRY_OVERHEAD));
        cache.check_invariants();
        drop((a, b));
        assert_eq!(cache.usage(), 0, "capacity {capacity} keeps nothing of that size");
        assert!(cache.get(1, 1, 0).is_none());
        assert!(cache.outstanding_handles().is_empty());
        cache.check_invariants();
    }
    // A block that fits exactly is kept.
    let cache = Cache::new(ENTRY_OVERHEAD + 4);
    drop(cache.insert(1, 1, 0, block(4, 1)));
    assert_eq!(&*cache.get(1, 1, 0).expect("fits exactly"), &[1u8; 4][..]);
}

#[test]
fn pinned_blocks_overflow_then_shrink_back() {
    let charge = 100 + ENTRY_OVERHEAD;
    let cache = Cache::new(4 * charge);
    let handles: Vec<_> = (0..10).map(|i| cache.insert(1, 1, i, block(100, i as u8))).collect();
    // Everything is pinned, so nothing could go.
    assert_eq!(cache.usage(), 10 * charge);
    assert_eq!(cache.metrics().entries, 10);
    for (i, h) in handles.iter().enumerate() {
        assert_eq!(&**h, &[i as u8; 100][..]);
    }
    cache.check_invariants();
    drop(handles);
    assert!(cache.usage() <= 4 * charge, "usage {} after release", cache.usage());
    assert_eq!(cache.usage(), cache.metrics().resident_bytes);
    cache.check_invariants();
}

#[test]
fn hot_pinned_entries_do_not_block_eviction_of_others() {
    // A pinned block on probation must not stop the shard from evicting unpinned hot ones.
    let charge = 100 + ENTRY_OVERHEAD;
    let cache = Cache::new(4 * charge);
    for i in 0..4 {
        drop(cache.insert(1, 1, i, block(100, 0)));
        drop(cache.get(1, 1, i));
    }
    let pins: Vec<_> = (10..14).map(|i| cache.insert(1, 1, i, block(100, 1))).collect();
    assert!(cache.metrics().resident_bytes <= 4 * charge);
    drop(pins);
    cache.check_invariants();
}

#[test]
fn evict_file_frees_unpinned_and_forgets_pinned() {
    let cache = Cache::new(1 << 20);
    for off in 0..5 {
        drop(cache.insert(1, 7, off, block(10, 1)));
        drop(cache.insert(1, 8, off, block(10, 2)));
    }
    let pinned = cache.get(1, 7, 3).expect("cached");
    cache.evict_file(1, 7);
    assert!((0..5).all(|off| cache.get(1, 7, off).is_none()));
    assert!((0..5).all(|off| cache.get(1, 8, off).is_some()));
    assert_eq!(&*pinned, &[1u8; 10][..]);
    assert_eq!(cache.usage(), 6 * (10 + ENTRY_OVERHEAD));
    drop(pinned);
    assert_eq!(cache.usage(), 5 * (10 + ENTRY_OVERHEAD));
    cache.check_invariants();
}

/// Reads block `(file, offset)` through the cache the way a table reader does: a hit, or a
/// miss followed by an insert. Returns whether it hit.
fn read(cache: &Cache, file: u64, offset: u64) -> bool {
    let fill = (file * 31 + offset) as u8;
    match cache.get(1, file, offset) {
        Some(h) => {
            assert_eq!(&*h, &[fill; 100][..]);
            true
        }
        None => {
            drop(cache.insert(1, file, offset, block(100, fill)));
            false
        }
    }
}

#[test]
fn scan_does_not_flush_the_hot_set() {
    // A cache of 64 blocks with a hot set of 16 (file 1) that is read often, then one long pass
    // over other blocks (file 2), each read once, with the hot set read only every 200 scan
    // blocks: far longer than the cache holds, so an LRU cache would have lost all of it.
    let cache = Cache::new(64 * (100 + ENTRY_OVERHEAD));
    for round in 0..4 {
        for k in 0..16 {
            read(&cache, 1, k);
        }
        for j in 0..40 {
            read(&cache, 3, round * 40 + j);
        }
    }
    let scan_len = if cfg!(miri) { 400 } else { 10_000 };
    let (mut hot_reads, mut hot_hits) = (0, 0);
    for s in 0..scan_len {
        assert!(!read(&cache, 2, s), "scan blocks are new");
        if s % 200 == 199 {
            for k in 0..16 {
                hot_reads += 1;
                hot_hits += usize::from(read(&cache, 1, k));
            }
        }
    }
    assert_eq!(hot_hits, hot_reads, "hot set lost blocks during the scan");
    assert!((0..16).all(|k| cache.get(1, 1, k).is_some()), "hot set survives the scan");
    let m = cache.metrics();
    assert!(m.evictions >= scan_len - 64, "{m:?}");
    assert!(m.usage <= m.capacity);
    cache.check_invariants();
}

#[test]
fn quick_return_after_eviction_comes_back_hot() {
    // A block evicted on probation and read again while its ghost is remembered was evicted
    // too early: it returns hot, and the cold region grows.
    let cache = Cache::new(8 * (100 + ENTRY_OVERHEAD));
    for k in 0..12 {
        read(&cache, 1, k);
    }
    assert!(cache.get(1, 1, 0).is_none(), "block 0 was evicted on probation");
    let ghosts = cache.metrics().ghost_entries;
    assert!(ghosts > 0);
    read(&cache, 1, 0);
    let m = cache.metrics();
    assert_eq!(m.hot_entries, 1, "{m:?}");
    cache.check_invariants();
}

#[test]
fn leaked_handles_are_reported_with_their_location() {
    let cache = Cache::new(1 << 20);
    assert_eq!(cache.close(), Ok(()));
    let (kept, line) = (cache.insert(1, 2, 3, block(1, 0)), line!());
    let dropped = cache.get(1, 2, 3).expect("cached");
    drop(dropped);
    let (cloned, clone_line) = (kept.clone(), line!());
    let out = cache.outstanding_handles();
    assert_eq!(out.len(), 2, "{out:?}");
    if cfg!(debug_assertions) {
        let here = |line: u32| format!("{}:{line}:", file!());
        assert!(out.iter().any(|l| l.starts_with(&here(line))), "{out:?}");
        assert!(out.iter().any(|l| l.starts_with(&here(clone_line))), "{out:?}");
        assert!(out.iter().all(|l| l.ends_with("(block 1/2/3)")), "{out:?}");
    }
    let err = cache.close().expect_err("two handles are out");
    assert_eq!(err.locations, out);
    assert!(err.to_string().starts_with("2 cache handle(s) still out:"));
    drop(kept);
    assert_eq!(cache.outstanding_handles().len(), 1);
    drop(cloned);
    assert!(cache.outstanding_handles().is_empty());
    assert_eq!(cache.close(), Ok(()));
}

#[test]
fn handles_outlive_the_cache() {
    let cache = Cache::new(1000);
    let h = cache.insert(1, 1, 1, block(5, 4));
    drop(cache);
    assert_eq!(&*h, &[4u8; 5][..]);
}

#[test]
#[expect(clippy::disallowed_methods, reason = "concurrent readers are what this test is about")]
fn threads_share_one_cache() {
    // Several threads read overlapping blocks through a small multi-shard cache, holding some
    // handles a while. Every read must see the bytes of its key; at the end nothing is out.
    let charge = 1000 + ENTRY_OVERHEAD;
    let cache = Cache::new(SHARD_BYTES_MIN * 2 + charge);
    let per_thread = if cfg!(miri) { 30 } else { 3000 };
    crate::sync::thread::scope(|s| {
        for t in 0..4u64 {
            let cache = &cache;
            s.spawn(move || {
                let mut held = Vec::new();
                for i in 0..per_thread {
                    let offset = (i * 7919 + t * 104_729) % 2000;
                    let fill = (offset % 251) as u8;
                    let h = match cache.get(1, 1, offset) {
                        Some(h) => h,
                        None => cache.insert(1, 1, offset, vec![fill; 1000].into_boxed_slice()),
                    };
                    assert_eq!(&*h, &[fill; 1000][..]);
                    if i % 5 == 0 {
                        held.push(h.clone());
                    }
                    if held.len() > 8 {
                        held.remove(0);
                    }
                }
            });
        }
    });
    assert!(cache.outstanding_handles().is_empty());
    assert!(cache.usage() <= cache.capacity(), "{:?}", cache.metrics());
    assert_eq!(cache.usage(), recount_usage(&cache, []));
    cache.check_invariants();
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    Insert { file: u64, offset: u64, len: usize },
    Get { file: u64, offset: u64, keep: bool },
    Drop(usize),
    Clone(usize),
    EvictFile(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..3, 0u64..6, 0usize..400).prop_map(|(file, offset, len)| Op::Insert { file, offset, len }),
        4 => (0u64..3, 0u64..6, any::<bool>()).prop_map(|(file, offset, keep)| Op::Get { file, offset, keep }),
        3 => any::<usize>().prop_map(Op::Drop),
        1 => any::<usize>().prop_map(Op::Clone),
        1 => (0u64..3).prop_map(Op::EvictFile),
    ]
}

fn capacity() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0), Just(1), 100usize..4000, Just(2 * SHARD_BYTES_MIN + 1)]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 8 } else { 512 },
        // Miri's isolation has no working directory to persist failures in.
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    /// Random inserts, reads, handle clones and drops against a model of what was inserted:
    /// reads return the latest bytes of their key, held bytes never change, usage equals the
    /// recounted charges of all live blocks, and with nothing pinned the cache fits.
    #[test]
    fn behaves_like_the_model(capacity in capacity(), ops in proptest::collection::vec(op(), 0..80)) {
        let cache = Cache::new(capacity);
        let mut latest: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
        let mut held: Vec<(CacheHandle, Vec<u8>)> = Vec::new();
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert { file, offset, len } => {
                    let data = vec![n as u8; len];
                    let h = cache.insert(1, file, offset, data.clone().into_boxed_slice());
                    prop_assert_eq!(&*h, &data[..]);
                    latest.insert((file, offset), data.clone());
                    held.push((h, data));
                }
                Op::Get { file, offset, keep } => {
                    if let Some(h) = cache.get(1, file, offset) {
                        let want = latest.get(&(file, offset));
                        prop_assert_eq!(Some(&h.to_vec()), want, "stale or phantom hit");
                        if keep {
                            let data = h.to_vec();
                            held.push((h, data));
                        }
                    }
                }
                Op::Drop(i) => {
                    if !held.is_empty() {
                        held.swap_remove(i % held.len());
                    }
                }
                Op::Clone(i) => {
                    if !held.is_empty() {
                        let (h, data) = &held[i % held.len()];
                        let pair = (h.clone(), data.clone());
                        held.push(pair);
                    }
                }
                Op::EvictFile(file) => {
                    cache.evict_file(1, file);
                    latest.retain(|&(f, _), _| f != file);
                }
            }
            for (h, data) in &held {
                prop_assert_eq!(&**h, &data[..], "pinned bytes changed");
            }
            prop_assert_eq!(cache.usage(), recount_usage(&cache, held.iter().map(|(h, _)| h)));
            prop_assert_eq!(cache.outstanding_handles().len(), held.len());
            if held.is_empty() {
                let m = cache.metrics();
                prop_assert!(m.usage <= capacity, "unpinned cache over capacity: {:?}", m);
                prop_assert_eq!(m.usage, m.resident_bytes);
            }
            cache.check_invariants();
        }
        held.clear();
        prop_assert!(cache.usage() <= capacity);
        prop_assert!(cache.close().is_ok());
        for file in 0..3 {
            cache.evict_file(1, file);
        }
        prop_assert_eq!(cache.usage(), 0);
        prop_assert_eq!(cache.metrics().entries, 0);
    }
}

/// Golden test of the CLOCK-Pro transitions on a single shard. Commands:
/// `new capacity=N`, `insert off=N [len=N] [keep]`, `get off=N [keep]`, `release off=N`,
/// `evict-file`, `state`. Blocks belong to id 1, file 1; `keep` holds the handle.
#[cfg(not(miri))]
#[test]
fn clock_pro_datadriven() {
    let mut cache = Cache::new(0);
    let mut kept: BTreeMap<u64, Vec<CacheHandle>> = BTreeMap::new();
    crate::datadriven::run("testdata/cache/clock_pro", |case| {
        let offset: u64 = case.arg_or("off", 0);
        match case.cmd.as_str() {
            "new" => {
                kept.clear();
                cache = Cache::new(case.arg_or("capacity", 0));
                assert_eq!(cache.shards.len(), 1, "golden tests need one shard");
                String::new()
            }
            "insert" => {
                let len: usize = case.arg_or("len", 8);
                let h = cache.insert(1, 1, offset, block(len, offset as u8));
                if case.has("keep") {
                    kept.entry(offset).or_default().push(h);
                }
                String::new()
            }
            "get" => match cache.get(1, 1, offset) {
                Some(h) => {
                    if case.has("keep") {
                        kept.entry(offset).or_default().push(h);
                    }
                    "hit".to_string()
                }
                None => "miss".to_string(),
            },
            "release" => {
                kept.remove(&offset);
                String::new()
            }
            "evict-file" => {
                cache.evict_file(1, 1);
                String::new()
            }
            "state" => {
                cache.check_invariants();
                let m = cache.metrics();
                format!(
                    "usage={} evictions={}\n{}",
                    m.usage,
                    m.evictions,
                    cache.shards[0].lock().describe()
                )
            }
            other => panic!("line {}: unknown command {other}", case.line),
        }
    });
}

#[test]
fn clock_alone_evicts_unpinned_cold_first() {
    // The policy without the sharding around it: with every block unpinned, the cold hand
    // evicts the oldest unreferenced cold block and a referenced one is promoted.
    let usage = Arc::new(crate::sync::atomic::AtomicUsize::new(0));
    let mut clock = Clock::new(3 * 10);
    for offset in 0..3 {
        let key = CacheKey { id: 1, file_num: 1, offset };
        clock.insert(key, Arc::new(Block::new(block(0, 0), 10, Arc::clone(&usage))));
    }
    assert!(clock.lookup(&CacheKey { id: 1, file_num: 1, offset: 0 }).is_some());
    clock.insert(
        CacheKey { id: 1, file_num: 1, offset: 3 },
        Arc::new(Block::new(block(0, 0), 10, Arc::clone(&usage))),
    );
    assert!(!clock.evict());
    clock.check_invariants();
    assert!(clock.lookup(&CacheKey { id: 1, file_num: 1, offset: 0 }).is_some(), "promoted");
    assert!(clock.lookup(&CacheKey { id: 1, file_num: 1, offset: 1 }).is_none(), "evicted");
    assert_eq!(usage.load(crate::sync::atomic::Ordering::Relaxed), 30);
}
