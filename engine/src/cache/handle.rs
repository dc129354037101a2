//! Cached blocks, the reference-counted handles that pin them, and the registry of handles
//! still out (with the place each was taken, in debug builds).

use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::Arc;
use std::fmt;
use std::ops::Deref;
use std::panic::Location;

use super::clock::CacheKey;
use super::Shard;

/// The bytes of one cached block and their charge. The block accounts for itself: creating it
/// adds its charge to the cache's usage and dropping it (the last `Arc` going away, wherever
/// that happens) subtracts it, so `Cache::usage` counts exactly the blocks alive, resident or
/// held only by handles.
pub(crate) struct Block {
    data: Box<[u8]>,
    charge: usize,
    usage: Arc<AtomicUsize>,
    /// Set once a reader has checked every entry of these (immutable) bytes: later hits need
    /// not walk them again.
    checked: AtomicBool,
}

impl Block {
    pub fn new(data: Box<[u8]>, charge: usize, usage: Arc<AtomicUsize>) -> Block {
        usage.fetch_add(charge, Ordering::Relaxed);
        Block { data, charge, usage, checked: AtomicBool::new(false) }
    }

    pub fn charge(&self) -> usize {
        self.charge
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.usage.fetch_sub(self.charge, Ordering::Relaxed);
    }
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("len", &self.data.len())
            .field("charge", &self.charge)
            .finish()
    }
}

/// A pinned cached block. Derefs to its bytes, which stay valid (and counted in the cache's
/// usage) until the last handle to them is dropped, even if the cache evicts or replaces the
/// entry meanwhile.
///
/// Every handle must be dropped before the owner shuts down: `Cache::outstanding_handles`
/// lists those still out, with the source location that took each (debug builds).
pub struct CacheHandle {
    /// `Some` until `drop`, which must release the block before it looks at the shard.
    block: Option<Arc<Block>>,
    shard: Arc<Shard>,
    key: CacheKey,
    ticket: Ticket,
}

impl CacheHandle {
    pub(crate) fn new(
        block: Arc<Block>,
        shard: Arc<Shard>,
        key: CacheKey,
        location: &'static Location<'static>,
    ) -> CacheHandle {
        let ticket = shard.handles.register(key, location);
        CacheHandle { block: Some(block), shard, key, ticket }
    }

    /// The block's bytes (also available through `Deref`).
    pub fn as_slice(&self) -> &[u8] {
        &self.block.as_ref().expect("a live handle holds its block").data
    }

    /// True once [`CacheHandle::mark_checked`] was called on a handle of these bytes.
    pub fn is_checked(&self) -> bool {
        self.block.as_ref().expect("a live handle holds its block").checked.load(Ordering::Acquire)
    }

    /// Records that the block's bytes passed a reader's full check (see `sstable::Block::new`):
    /// a cache hit on them skips it.
    pub fn mark_checked(&self) {
        let block = self.block.as_ref().expect("a live handle holds its block");
        block.checked.store(true, Ordering::Release);
    }

    /// The table file the block belongs to.
    pub fn file_num(&self) -> u64 {
        self.key.file_num
    }

    /// The block's offset within its file.
    pub fn offset(&self) -> u64 {
        self.key.offset
    }

    #[cfg(test)]
    pub(crate) fn block(&self) -> &Arc<Block> {
        self.block.as_ref().expect("a live handle holds its block")
    }
}

impl Deref for CacheHandle {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for CacheHandle {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Clone for CacheHandle {
    /// A clone is a handle of its own, registered at the place that cloned it.
    #[track_caller]
    fn clone(&self) -> CacheHandle {
        let block = Arc::clone(self.block.as_ref().expect("a live handle holds its block"));
        CacheHandle::new(block, Arc::clone(&self.shard), self.key, Location::caller())
    }
}

impl Drop for CacheHandle {
    fn drop(&mut self) {
        self.shard.handles.release(&self.ticket);
        // Unpin first: the shard may be waiting for exactly this block to become evictable.
        drop(self.block.take());
        self.shard.after_unpin();
    }
}

impl fmt::Debug for CacheHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheHandle")
            .field("id", &self.key.id)
            .field("file_num", &self.key.file_num)
            .field("offset", &self.key.offset)
            .field("len", &self.as_slice().len())
            .finish()
    }
}

/// A handle's entry in its shard's registry.
#[derive(Debug)]
pub(crate) struct Ticket {
    #[cfg(debug_assertions)]
    id: u64,
}

/// The handles of one shard that are still out. Debug builds remember where each was taken;
/// release builds only count them, to keep the hot path free of a second lock.
#[derive(Debug, Default)]
pub(crate) struct HandleRegistry {
    #[cfg(debug_assertions)]
    live: crate::sync::Mutex<Registered>,
    #[cfg(not(debug_assertions))]
    live: AtomicUsize,
}

#[cfg(debug_assertions)]
#[derive(Debug, Default)]
struct Registered {
    next_id: u64,
    by_id: std::collections::BTreeMap<u64, (CacheKey, &'static Location<'static>)>,
}

#[cfg(debug_assertions)]
impl HandleRegistry {
    fn lock(&self) -> crate::sync::MutexGuard<'_, Registered> {
        // Nothing in the registry can be left half-updated by a panic, so a poisoned lock is
        // still consistent; handles are dropped during unwinding and must not panic again.
        self.live.lock().unwrap_or_else(crate::sync::PoisonError::into_inner)
    }

    pub fn register(&self, key: CacheKey, location: &'static Location<'static>) -> Ticket {
        let mut live = self.lock();
        let id = live.next_id;
        live.next_id += 1;
        live.by_id.insert(id, (key, location));
        Ticket { id }
    }

    pub fn release(&self, ticket: &Ticket) {
        let removed = self.lock().by_id.remove(&ticket.id);
        debug_assert!(removed.is_some(), "handle released twice");
    }

    pub fn outstanding(&self, out: &mut Vec<String>) {
        for (key, location) in self.lock().by_id.values() {
            out.push(format!("{location} (block {}/{}/{})", key.id, key.file_num, key.offset));
        }
    }
}

#[cfg(not(debug_assertions))]
impl HandleRegistry {
    pub fn register(&self, _key: CacheKey, _location: &'static Location<'static>) -> Ticket {
        self.live.fetch_add(1, Ordering::Relaxed);
        Ticket {}
    }

    pub fn release(&self, _ticket: &Ticket) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn outstanding(&self, out: &mut Vec<String>) {
        let count = self.live.load(Ordering::Relaxed);
        for _ in 0..count {
            out.push("<location recorded only in debug builds>".to_string());
        }
    }
}
