//! loom models of the engine's lock-free parts: the memtable skiplist's publication protocol at
//! every level, the arena's allocation counter, and the block cache's pins and eviction.
//!
//! Run with `scripts/loom.sh` (`RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2`, release build,
//! its own target dir). loom runs every interleaving of the loom operations within the
//! preemption bound, and for the atomics it also explores the values a weaker ordering allows.
//!
//! What is modelled, and how:
//! - **Skiplist publication** (`memtable/skiplist.rs`). The real links are `AtomicU32`s laid over
//!   arena memory with `from_ptr`, which loom cannot instrument, so this file models the protocol
//!   with the same orderings on loom atomics: a node's payload (header, key, value) is written
//!   plainly (a `loom::cell::UnsafeCell`, so loom flags a read not ordered after the write), its
//!   tower is set Relaxed, then each predecessor's link is stored Release from level 0 upward,
//!   and the list height is raised Relaxed. Readers follow links with Acquire at every level from
//!   the top down, as `find` does, and read the payload of every node they reach.
//! - **Arena allocation** (`memtable/arena.rs`): the CAS loop on `used` with Relaxed orderings,
//!   copied; checks ranges are disjoint, never start at 0 and fit the capacity.
//! - **Block cache** (`cache/`): the real `Cache` code, whose locks, flag and fences come from
//!   `cobble::internal::sync` and so are loom's here. Block pins are std `Arc` counts, which loom runs
//!   sequentially consistent; the weak-memory side of the pin/flag Dekker pair
//!   (`Shard::evict_locked` / `Shard::after_unpin`) is modelled separately with a loom counter.
//!
//! Every model runs its threads as spawned threads and only joins them from the model's main
//! thread: with the main thread racing a spawned one, loom 0.7 explored a single interleaving
//! here (checked by planting an assertion that only the other order can break).
//!
//! Cost at `LOOM_MAX_PREEMPTIONS=2`, release: 84 + 62 + 110 + 1883 executions, about 0.3 s in
//! all. Mutation check: making the link store Relaxed, or dropping the releaser's SeqCst fence,
//! fails the skiplist and handshake models respectively.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

const MAX_HEIGHT: usize = 3;

/// A node: payload written once before publication, then only its tower changes.
struct Node {
    key: UnsafeCell<u32>,
    tower: [AtomicU32; MAX_HEIGHT],
}

/// Nodes live in a fixed "arena" (index 0 is the head; link 0 means end of list).
struct List {
    nodes: Vec<Node>,
    height: AtomicUsize,
}

impl List {
    fn new(count: usize) -> List {
        let nodes = (0..count)
            .map(|_| Node {
                key: UnsafeCell::new(0),
                tower: [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)],
            })
            .collect();
        List { nodes, height: AtomicUsize::new(1) }
    }

    /// The writer's insert, as in `Skiplist::insert` (one writer at a time).
    fn insert(&self, slot: usize, key: u32, height: usize) {
        // Fill the node (not yet reachable).
        self.nodes[slot].key.with_mut(|k| unsafe { *k = key });
        // Find the splice: with one writer, Relaxed reads of its own links are current.
        let mut preds = [0usize; MAX_HEIGHT];
        let mut succs = [0u32; MAX_HEIGHT];
        let mut x = 0usize;
        for level in (0..MAX_HEIGHT).rev() {
            loop {
                let next = self.nodes[x].tower[level].load(Ordering::Acquire);
                if next != 0 && self.key_of(next as usize) < key {
                    x = next as usize;
                } else {
                    preds[level] = x;
                    succs[level] = next;
                    break;
                }
            }
        }
        for (level, succ) in succs.iter().enumerate().take(height) {
            self.nodes[slot].tower[level].store(*succ, Ordering::Relaxed);
        }
        for (level, pred) in preds.iter().enumerate().take(height) {
            self.nodes[*pred].tower[level].store(slot as u32, Ordering::Release);
        }
        if height > self.height.load(Ordering::Relaxed) {
            self.height.store(height, Ordering::Relaxed);
        }
    }

    fn key_of(&self, node: usize) -> u32 {
        // SAFETY (model): reached through an Acquire link, so the write happened-before.
        self.nodes[node].key.with(|k| unsafe { *k })
    }

    /// Every node reachable at `level`, in order, reading each one's key.
    fn scan(&self, level: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let mut x = self.nodes[0].tower[level].load(Ordering::Acquire);
        while x != 0 {
            out.push(self.key_of(x as usize));
            x = self.nodes[x as usize].tower[level].load(Ordering::Acquire);
        }
        out
    }

    /// A search from the top, as `find` does: returns the first key >= target.
    fn seek_ge(&self, target: u32) -> Option<u32> {
        let mut x = 0usize;
        let top = self.height.load(Ordering::Relaxed);
        let mut found = None;
        for level in (0..top.max(1)).rev() {
            loop {
                let next = self.nodes[x].tower[level].load(Ordering::Acquire);
                if next == 0 {
                    found = None;
                    break;
                }
                let k = self.key_of(next as usize);
                if k < target {
                    x = next as usize;
                } else {
                    found = Some(k);
                    break;
                }
            }
        }
        found
    }
}

fn sorted_subset(seen: &[u32], all: &[u32]) -> bool {
    seen.windows(2).all(|w| w[0] < w[1]) && seen.iter().all(|k| all.contains(k))
}

/// One writer publishes nodes of heights 3, 1 and 2 (so every level gains a node and one node
/// is spliced between two others); a reader scans every level and seeks. Every node a reader
/// reaches is fully written (loom checks the payload access), each level is sorted, and a
/// level-0 scan is a prefix-closed subset consistent with insertion.
#[test]
fn skiplist_publication_every_level() {
    loom::model(|| {
        let list = Arc::new(List::new(4));
        let writer = {
            let list = Arc::clone(&list);
            thread::spawn(move || {
                list.insert(1, 20, 3);
                list.insert(2, 40, 1);
                list.insert(3, 30, 2);
            })
        };
        let reader = {
            let list = Arc::clone(&list);
            thread::spawn(move || {
                let all = [20, 30, 40];
                for level in 0..MAX_HEIGHT {
                    let seen = list.scan(level);
                    assert!(sorted_subset(&seen, &all), "level {level}: {seen:?}");
                }
                if let Some(k) = list.seek_ge(25) {
                    assert!(k == 30 || k == 40, "seek_ge(25) gave {k}");
                }
            })
        };
        reader.join().expect("reader");
        writer.join().expect("writer");
        assert_eq!(list.scan(0), vec![20, 30, 40]);
        assert_eq!(list.scan(1), vec![20, 30]);
        assert_eq!(list.scan(2), vec![20]);
        assert_eq!(list.seek_ge(25), Some(30));
    });
}

/// `Arena::alloc`'s CAS loop, copied: two threads allocate concurrently.
fn arena_alloc(used: &AtomicUsize, capacity: usize, size: usize, align: usize) -> Option<usize> {
    let mut cur = used.load(Ordering::Relaxed);
    loop {
        let start = cur.max(1).checked_next_multiple_of(align)?;
        let end = start.checked_add(size)?;
        if end > capacity {
            return None;
        }
        match used.compare_exchange_weak(cur, end, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(start),
            Err(actual) => cur = actual,
        }
    }
}

/// Ranges handed out concurrently are disjoint, never start at 0 and fit the capacity; a
/// failed allocation consumes nothing, so `used` ends at the last range's end.
#[test]
fn arena_allocation_counter() {
    loom::model(|| {
        let used = Arc::new(AtomicUsize::new(0));
        let capacity = 24;
        let threads: Vec<_> = [(8usize, 4usize), (12, 4)]
            .into_iter()
            .map(|(size, align)| {
                let used = Arc::clone(&used);
                thread::spawn(move || {
                    let a = arena_alloc(&used, capacity, size, align).map(|s| (s, s + size));
                    let b = arena_alloc(&used, capacity, 4, 4).map(|s| (s, s + 4));
                    [a, b]
                })
            })
            .collect();
        let mut ranges: Vec<(usize, usize)> =
            threads.into_iter().flat_map(|t| t.join().expect("allocator")).flatten().collect();
        ranges.sort_unstable();
        for r in &ranges {
            assert!(r.0 >= 1 && r.1 <= capacity && r.0 % 4 == 0, "bad range {r:?}");
        }
        for w in ranges.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlapping ranges {ranges:?}");
        }
        let end = ranges.last().map_or(0, |r| r.1);
        assert_eq!(used.load(Ordering::Relaxed), end);
    });
}

/// The real block cache: one thread inserts and releases blocks over capacity while another
/// pins and releases an older one. Once every handle is gone the cache is back within capacity,
/// its usage counts exactly the resident blocks, and `close` finds no handle still out.
#[test]
fn cache_pins_and_eviction() {
    loom::model(|| {
        // Room for one block of this size (charge = len + per-entry overhead).
        let cache = cobble::Cache::new(700);
        let id = cache.new_id();
        drop(cache.insert(id, 1, 0, vec![1u8; 400].into_boxed_slice()));
        let reader = {
            let cache = std::sync::Arc::clone(&cache);
            thread::spawn(move || {
                if let Some(h) = cache.get(id, 1, 0) {
                    assert_eq!(h.as_slice()[0], 1, "a pinned block keeps its bytes");
                }
            })
        };
        let writer = {
            let cache = std::sync::Arc::clone(&cache);
            thread::spawn(move || {
                let h = cache.insert(id, 1, 4096, vec![2u8; 400].into_boxed_slice());
                assert_eq!(h.as_slice()[0], 2);
            })
        };
        writer.join().expect("writer");
        reader.join().expect("reader");
        assert!(
            cache.usage() <= cache.capacity(),
            "unpinned blocks left over capacity: usage {} > {}",
            cache.usage(),
            cache.capacity()
        );
        cache.close().expect("no handle still out");
    });
}

/// The pin/flag Dekker pair of `Shard::evict_locked` and `Shard::after_unpin`, with the pin
/// count as a loom atomic (in the engine it is the block's `Arc` count). The evictor raises the
/// flag, fences, and frees the block if unpinned; the releaser unpins, fences, and if it sees
/// the flag runs the eviction itself (under the shard lock). Either way the block is freed.
#[test]
fn cache_unpin_eviction_handshake() {
    loom::model(|| {
        let pins = Arc::new(AtomicUsize::new(1));
        let over = Arc::new(AtomicBool::new(false));
        let lock = Arc::new(Mutex::new(false)); // true once the block is freed
        let evict = |pins: &AtomicUsize, over: &AtomicBool, freed: &mut bool| {
            if *freed {
                over.store(false, Ordering::Relaxed);
                return;
            }
            over.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if pins.load(Ordering::Relaxed) == 0 {
                *freed = true;
            }
            over.store(!*freed, Ordering::Relaxed);
        };
        let releaser = {
            let (pins, over, lock) = (Arc::clone(&pins), Arc::clone(&over), Arc::clone(&lock));
            thread::spawn(move || {
                pins.fetch_sub(1, Ordering::Release);
                fence(Ordering::SeqCst);
                if over.load(Ordering::Relaxed) {
                    let mut freed = lock.lock().expect("lock");
                    evict(&pins, &over, &mut freed);
                }
            })
        };
        let evictor = {
            let (pins, over, lock) = (Arc::clone(&pins), Arc::clone(&over), Arc::clone(&lock));
            thread::spawn(move || {
                let mut freed = lock.lock().expect("lock");
                evict(&pins, &over, &mut freed);
            })
        };
        evictor.join().expect("evictor");
        releaser.join().expect("releaser");
        assert!(*lock.lock().expect("lock"), "an unpinned block lingered over capacity");
    });
}
