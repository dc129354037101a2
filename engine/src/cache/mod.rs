//! The block cache: a sharded, byte-bounded CLOCK-Pro cache of table blocks, shared by every
//! table (and every database) that holds an `Arc<Cache>`.
//!
//! Keys are `(cache_id, file_num, offset)`; [`Cache::new_id`] hands out `cache_id`s so users
//! of one cache never collide. A key picks its shard by hash; each shard is a `Mutex` around a
//! `clock` ring and evicts on its own within `capacity / shards` bytes.
//!
//! Accounting: every block is charged its length plus [`ENTRY_OVERHEAD`]. [`Cache::usage`] is
//! the exact sum of the charges of all blocks alive: the resident ones plus those the cache
//! has already let go of (replaced, or their table evicted) but that handles still pin.
//!
//! Capacity: a resident block pinned by a [`CacheHandle`] is never evicted. When pinned blocks
//! alone fill a shard, it exceeds its share of the capacity until handles are dropped; the
//! release of a handle into an over-full shard runs its eviction, so the cache shrinks back
//! without waiting for the next insert. A block bigger than its shard's share is never
//! admitted: its handle works, and the bytes go when the handle does.

mod clock;
mod handle;
#[cfg(test)]
mod tests;

use crate::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex, MutexGuard};
use std::fmt;
use std::panic::Location;

use clock::{CacheKey, Clock, ClockStats};
pub use handle::CacheHandle;
use handle::{Block, HandleRegistry};

/// Bytes charged per entry on top of the block's length. It stands for the bookkeeping of a
/// resident block: its ring node (about 64 bytes), its index entry (key and slot, about 48
/// bytes with B-tree slack), and the shared allocation holding the block's pointer, charge and
/// reference counts (about 48 bytes). A test checks the real sizes stay under it.
pub const ENTRY_OVERHEAD: usize = 192;

/// Below this many bytes per shard, more shards would only make each one too small to hold a
/// useful hot set.
const SHARD_BYTES_MIN: usize = 512 << 10;

/// Beyond this, lock contention is no longer the bottleneck.
const SHARD_COUNT_MAX: usize = 64;

/// A point-in-time summary of the cache. Counters are cumulative since creation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheMetrics {
    /// `get` calls that found a resident block.
    pub hits: u64,
    /// `get` calls that found nothing (or only a ghost).
    pub misses: u64,
    /// `insert` calls.
    pub inserts: u64,
    /// Blocks dropped by the replacement policy (not by `evict_file` or replacement).
    pub evictions: u64,
    /// Charges of all blocks alive: resident ones and ones held only by handles.
    pub usage: usize,
    /// Charges of resident blocks only.
    pub resident_bytes: usize,
    /// The configured capacity in bytes.
    pub capacity: usize,
    /// Resident blocks (hot plus cold).
    pub entries: usize,
    /// Resident blocks the policy considers hot.
    pub hot_entries: usize,
    /// Resident blocks on probation.
    pub cold_entries: usize,
    /// Evicted blocks still remembered by key, to notice they were evicted too early.
    pub ghost_entries: usize,
    /// Charges the ghosts stand for: never more than `capacity` (ghost metadata stays
    /// proportional to what the cache holds).
    pub ghost_bytes: usize,
    /// Number of shards.
    pub shards: usize,
}

/// Handles still out when the cache's owner shut down, each with the location that took it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakedHandles {
    pub locations: Vec<String>,
}

impl fmt::Display for LeakedHandles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cache handle(s) still out:", self.locations.len())?;
        for location in &self.locations {
            write!(f, "\n  {location}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LeakedHandles {}

/// One independently locked part of the cache.
#[derive(Debug)]
pub(crate) struct Shard {
    clock: Mutex<Clock>,
    /// Raised while the ring may be over capacity because of pins; a handle release that sees
    /// it runs the eviction again. Written only under `clock`'s lock.
    over_capacity: AtomicBool,
    handles: HandleRegistry,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Clock> {
        self.clock.lock().expect("cache shard lock poisoned by a panic inside the cache")
    }

    /// Evicts down to capacity, publishing whether pins kept the shard over it.
    ///
    /// The flag and the pin counts form a Dekker pair with [`Shard::after_unpin`]: this side
    /// raises the flag, then reads pin counts; a releasing handle lowers its pin count, then
    /// reads the flag. With a SeqCst fence between each write and read, at least one side sees
    /// the other, so either this eviction frees the block or the release retries: an unpinned
    /// block never lingers over capacity unnoticed.
    fn evict_locked(&self, clock: &mut Clock) {
        if !clock.is_over_capacity() {
            self.over_capacity.store(false, Ordering::Relaxed);
            return;
        }
        self.over_capacity.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let still_over = clock.evict();
        self.over_capacity.store(still_over, Ordering::Relaxed);
    }

    /// Called by a handle right after it dropped its pin.
    fn after_unpin(&self) {
        fence(Ordering::SeqCst);
        if !self.over_capacity.load(Ordering::Relaxed) {
            return;
        }
        // A handle may be dropped while unwinding from a panic that poisoned the lock; then
        // leave the shard as it is rather than panic twice.
        if let Ok(mut clock) = self.clock.lock() {
            self.evict_locked(&mut clock);
        }
    }
}

/// The block cache. `Send + Sync`; share it as `Arc<Cache>`.
pub struct Cache {
    shards: Box<[Arc<Shard>]>,
    /// `shards.len() == 1 << shard_bits`.
    shard_bits: u32,
    capacity: usize,
    usage: Arc<AtomicUsize>,
    next_id: AtomicU64,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("capacity", &self.capacity)
            .field("shards", &self.shards.len())
            .field("usage", &self.usage())
            .finish_non_exhaustive()
    }
}

/// The shard count for a capacity: a power of two, at least one, each shard holding at least
/// `SHARD_BYTES_MIN`.
fn shard_bits_for(capacity: usize) -> u32 {
    let count = (capacity / SHARD_BYTES_MIN).clamp(1, SHARD_COUNT_MAX);
    // Round down to a power of two.
    usize::BITS - 1 - count.leading_zeros()
}

/// A 64-bit mix of the key (the splitmix64 finaliser), so neighbouring offsets of one file
/// spread over the shards.
fn key_hash(key: &CacheKey) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    mix(key.id ^ mix(key.file_num ^ mix(key.offset)))
}

impl Cache {
    /// A cache holding up to `capacity_bytes` of charged blocks (pins aside). Any capacity
    /// works; a tiny one keeps almost nothing, but its handles still work.
    pub fn new(capacity_bytes: usize) -> Arc<Cache> {
        let shard_bits = shard_bits_for(capacity_bytes);
        let count = 1usize << shard_bits;
        let shards = (0..count)
            .map(|i| {
                // Spread the remainder so the shares add up to the capacity exactly.
                let share = capacity_bytes / count + usize::from(i < capacity_bytes % count);
                Arc::new(Shard {
                    clock: Mutex::new(Clock::new(share)),
                    over_capacity: AtomicBool::new(false),
                    handles: HandleRegistry::default(),
                })
            })
            .collect();
        Arc::new(Cache {
            shards,
            shard_bits,
            capacity: capacity_bytes,
            usage: Arc::new(AtomicUsize::new(0)),
            next_id: AtomicU64::new(1),
        })
    }

    /// A fresh id for a user of this cache (a table reader, a database). Never 0.
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn shard(&self, key: &CacheKey) -> &Arc<Shard> {
        let i = if self.shard_bits == 0 { 0 } else { key_hash(key) >> (64 - self.shard_bits) };
        &self.shards[i as usize]
    }

    /// The cached block at `offset` of `file_num` for user `id`, pinned until the handle drops.
    #[track_caller]
    pub fn get(&self, id: u64, file_num: u64, offset: u64) -> Option<CacheHandle> {
        let key = CacheKey { id, file_num, offset };
        let shard = self.shard(&key);
        let block = shard.lock().lookup(&key)?;
        Some(CacheHandle::new(block, Arc::clone(shard), key, Location::caller()))
    }

    /// Caches `block` under the key, replacing any entry there, and returns it pinned. Older
    /// bytes for the key stay valid in the handles that hold them.
    #[track_caller]
    pub fn insert(&self, id: u64, file_num: u64, offset: u64, block: Box<[u8]>) -> CacheHandle {
        let key = CacheKey { id, file_num, offset };
        let shard = self.shard(&key);
        let charge = block.len().saturating_add(ENTRY_OVERHEAD);
        let block = Arc::new(Block::new(block, charge, Arc::clone(&self.usage)));
        // Pin before the eviction below runs, so the new block is not its first victim.
        let pinned = Arc::clone(&block);
        {
            let mut clock = shard.lock();
            clock.insert(key, block);
            shard.evict_locked(&mut clock);
        }
        CacheHandle::new(pinned, Arc::clone(shard), key, Location::caller())
    }

    /// Forgets every block of one table (it was deleted). Unpinned blocks are freed now;
    /// pinned ones when their handles drop.
    pub fn evict_file(&self, id: u64, file_num: u64) {
        for shard in self.shards.iter() {
            shard.lock().remove_file(id, file_num);
        }
    }

    /// Exact charged bytes of all blocks alive (see the module docs).
    pub fn usage(&self) -> usize {
        self.usage.load(Ordering::Relaxed)
    }

    /// The configured capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counters and sizes, summed over the shards.
    pub fn metrics(&self) -> CacheMetrics {
        let mut sum = ClockStats::default();
        for shard in self.shards.iter() {
            let stats = shard.lock().stats();
            sum.hits += stats.hits;
            sum.misses += stats.misses;
            sum.inserts += stats.inserts;
            sum.evictions += stats.evictions;
            sum.resident_bytes += stats.resident_bytes;
            sum.hot_count += stats.hot_count;
            sum.cold_count += stats.cold_count;
            sum.ghost_count += stats.ghost_count;
            sum.ghost_bytes += stats.ghost_bytes;
        }
        CacheMetrics {
            hits: sum.hits,
            misses: sum.misses,
            inserts: sum.inserts,
            evictions: sum.evictions,
            usage: self.usage(),
            resident_bytes: sum.resident_bytes,
            capacity: self.capacity,
            entries: sum.hot_count + sum.cold_count,
            hot_entries: sum.hot_count,
            cold_entries: sum.cold_count,
            ghost_entries: sum.ghost_count,
            ghost_bytes: sum.ghost_bytes,
            shards: self.shards.len(),
        }
    }

    /// Every handle still out, as `file:line:column (block id/file_num/offset)` of the place
    /// that took it, sorted. Release builds record no locations and list placeholders.
    pub fn outstanding_handles(&self) -> Vec<String> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            shard.handles.outstanding(&mut out);
        }
        out.sort();
        out
    }

    /// The shutdown check: an error listing every handle still out. The cache itself keeps
    /// working (other users may share it); the check is for the owner that is closing.
    pub fn close(&self) -> Result<(), LeakedHandles> {
        let locations = self.outstanding_handles();
        if locations.is_empty() {
            Ok(())
        } else {
            Err(LeakedHandles { locations })
        }
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        for shard in self.shards.iter() {
            shard.lock().check_invariants();
        }
    }
}
