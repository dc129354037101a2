//! The memtable's arena: one block of memory allocated up front and carved by a bump offset.
//!
//! The arena never grows and never moves, so a byte range handed out stays at the same address
//! for the arena's whole life. That is what lets readers hold plain `&[u8]` into it while the
//! writer keeps allocating. Offsets are `u32` (the capacity is capped at `u32::MAX`) and offset
//! 0 is never handed out, so it can mean "null" in links.
//!
//! The block is not zeroed up front (for a 64 MiB memtable that is 64 MiB of writes and page
//! faults before the first key): each allocation zeroes its own range, padding before it
//! included, so every byte below `used` is initialized, and readers only read ranges handed out.
//!
//! The arena knows nothing about what lives in it; the access rules (write a range only before
//! it is published, touch link words only through atomics) are the skiplist's to keep, which is
//! why the accessors are `unsafe fn`s with the rules in their `# Safety` sections.

use crate::sync::atomic::{AtomicU64, AtomicUsize};
use crate::sync::raw_atomic::{AtomicU32, Ordering};
use crate::sync::Arc;
use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;

use super::ArenaFull;

/// Alignment of the block itself: enough for every atomic placed in it.
pub(crate) const ARENA_ALIGN: usize = 8;

/// A fixed-size bump allocator over one heap block.
pub(crate) struct Arena {
    /// Start of the block; dangling (and never dereferenced) when `capacity` is 0.
    base: NonNull<u8>,
    capacity: usize,
    /// Bytes handed out so far, padding included: the next allocation starts here (aligned).
    used: AtomicUsize,
    /// Shared count of memtable memory; holds `capacity` for as long as the block exists.
    mem_counter: Arc<AtomicU64>,
}

// SAFETY: the block is plain bytes owned by the arena, freed only in Drop. Concurrent access
// goes through `&self` methods whose contracts rule out data races: a range is written only by
// the thread that allocated it, before it is published through an atomic Release store; link
// words are only ever accessed atomically.
unsafe impl Send for Arena {}
// SAFETY: as for Send.
unsafe impl Sync for Arena {}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("capacity", &self.capacity)
            .field("used", &self.used())
            .finish()
    }
}

impl Arena {
    /// Reserves the whole block now (the pages are the allocator's to commit as they are
    /// touched) and adds `capacity` to `mem_counter`.
    ///
    /// Panics if `capacity > u32::MAX`: offsets are 32-bit, and the DB caps memtable sizes
    /// well below that.
    pub(crate) fn new(capacity: usize, mem_counter: Arc<AtomicU64>) -> Arena {
        assert!(
            u32::try_from(capacity).is_ok(),
            "memtable arena capacity {capacity} exceeds u32::MAX (offsets are 32-bit)"
        );
        let base = if capacity == 0 {
            // Nothing fits, so nothing is ever read or written through this pointer.
            NonNull::<u64>::dangling().cast::<u8>()
        } else {
            let layout = Self::layout(capacity);
            // SAFETY: `layout` has a non-zero size. The bytes start uninitialized; `alloc`
            // zeroes each range it hands out, and nothing reads at or past `used`.
            let p = unsafe { alloc::alloc(layout) };
            NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
        };
        mem_counter.fetch_add(capacity as u64, Ordering::SeqCst);
        Arena { base, capacity, used: AtomicUsize::new(0), mem_counter }
    }

    fn layout(capacity: usize) -> Layout {
        Layout::from_size_align(capacity, ARENA_ALIGN)
            .expect("a size <= u32::MAX is a valid layout")
    }

    /// Size of the block in bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes handed out so far, alignment padding included.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Hands out `size` bytes aligned to `align`, or `ArenaFull` if they do not fit; a failed
    /// allocation consumes nothing. Never returns offset 0.
    pub(crate) fn alloc(&self, size: usize, align: usize) -> Result<usize, ArenaFull> {
        assert!(align.is_power_of_two() && align <= ARENA_ALIGN, "bad alignment {align}");
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            // `max(1)` keeps offset 0 free to mean null.
            let start = cur.max(1).checked_next_multiple_of(align).ok_or(ArenaFull)?;
            let end = start.checked_add(size).ok_or(ArenaFull)?;
            if end > self.capacity {
                return Err(ArenaFull);
            }
            // Relaxed is enough: the CAS alone makes ranges disjoint; the bytes in a range are
            // handed to other threads by the skiplist's Release/Acquire links.
            match self.used.compare_exchange_weak(cur, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    // SAFETY: `[cur, end)` (the padding and the range) is inside the block
                    // (`end <= capacity`, and capacity > 0 here since `end >= 1`) and this
                    // thread's alone: the CAS moved `used` past it, and nothing is handed out
                    // or read there until `alloc` returns.
                    unsafe { std::ptr::write_bytes(self.base.as_ptr().add(cur), 0, end - cur) };
                    return Ok(start);
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Panics unless `[off, off + len)` lies inside the block. (That it lies inside a range
    /// `alloc` handed out, so initialized, is the callers' contract.)
    fn check_range(&self, off: usize, len: usize) {
        assert!(
            off.checked_add(len).is_some_and(|end| end <= self.capacity),
            "arena range {off}+{len} out of bounds (capacity {})",
            self.capacity
        );
    }

    /// Copies `data` to `off`.
    ///
    /// # Safety
    /// `[off, off + data.len())` lies in a range this thread got from [`Arena::alloc`] and has
    /// not yet published: no other thread can be reading it, and no `&[u8]` over it is alive.
    pub(crate) unsafe fn write(&self, off: usize, data: &[u8]) {
        self.check_range(off, data.len());
        // SAFETY: in bounds (checked above); the caller guarantees exclusive access to the
        // range; `data` cannot overlap the range since no reference into it exists.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.as_ptr().add(off), data.len())
        }
    }

    /// The bytes at `[off, off + len)`.
    ///
    /// # Safety
    /// The range lies inside ranges [`Arena::alloc`] handed out (so it is initialized).
    /// No thread writes the range while the returned slice lives: it was written before being
    /// published (and this thread saw the publication with Acquire, or wrote it itself), and
    /// it is never written again. It holds no link words (those are accessed atomically).
    pub(crate) unsafe fn slice(&self, off: usize, len: usize) -> &[u8] {
        self.check_range(off, len);
        // SAFETY: in bounds (checked above), so when `len > 0` the block exists; the range was
        // handed out by `alloc`, which zeroed it, so its bytes are initialized (the caller's
        // contract: it was written and published); the caller rules out concurrent writes.
        // A zero-length slice at the dangling base is valid too.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(off), len) }
    }

    /// The 4-byte word at `off`, as an atomic.
    ///
    /// # Safety
    /// The 4 bytes were handed out by [`Arena::alloc`] (so they are initialized).
    /// Every access to these 4 bytes, by any thread, after they were allocated, is through this
    /// method (atomic), or happens-before the allocating thread published them.
    pub(crate) unsafe fn atomic_u32(&self, off: usize) -> &AtomicU32 {
        self.check_range(off, 4);
        assert!(off.is_multiple_of(4), "unaligned atomic at arena offset {off}");
        // SAFETY: in bounds and 4-aligned (the base is 8-aligned), initialized (handed out by
        // `alloc`, the caller's contract), and the caller guarantees no non-atomic access
        // races with it. The reference lives no longer than `&self`, and the block lives as
        // long as the arena.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(off).cast::<u32>()) }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        if self.capacity > 0 {
            // SAFETY: `base` came from `alloc` with this very layout and is freed once,
            // here; `&mut self` means no reference into the block is left.
            unsafe { alloc::dealloc(self.base.as_ptr(), Self::layout(self.capacity)) };
        }
        // After the free, so a zero count really means the memory is gone.
        self.mem_counter.fetch_sub(self.capacity as u64, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_allocation_aligns_skips_zero_and_reports_full() {
        let counter = Arc::new(AtomicU64::new(0));
        let arena = Arena::new(32, counter.clone());
        assert_eq!(counter.load(Ordering::SeqCst), 32);
        assert_eq!(arena.alloc(3, 4), Ok(4));
        assert_eq!(arena.used(), 7);
        assert_eq!(arena.alloc(1, 1), Ok(7));
        assert_eq!(arena.alloc(8, 8), Ok(8));
        assert_eq!(arena.alloc(17, 1), Err(ArenaFull));
        // A failed allocation consumes nothing: exactly the rest still fits.
        assert_eq!(arena.used(), 16);
        assert_eq!(arena.alloc(16, 1), Ok(16));
        assert_eq!(arena.alloc(0, 1), Ok(32));
        assert_eq!(arena.alloc(1, 1), Err(ArenaFull));
        assert_eq!(arena.alloc(usize::MAX, 1), Err(ArenaFull));
        drop(arena);
        assert_eq!(counter.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn writes_read_back_and_atomics_work() {
        let arena = Arena::new(64, Arc::new(AtomicU64::new(0)));
        let off = arena.alloc(12, 4).unwrap();
        // SAFETY: the range is ours and unpublished; single-threaded test.
        unsafe { arena.write(off + 4, b"abcdefgh") };
        // SAFETY: nothing writes these bytes any more.
        assert_eq!(unsafe { arena.slice(off + 4, 8) }, b"abcdefgh");
        // SAFETY: the word at `off` is only accessed through atomics.
        let a = unsafe { arena.atomic_u32(off) };
        a.store(7, Ordering::Release);
        assert_eq!(a.load(Ordering::Acquire), 7);
    }

    #[test]
    fn every_range_is_handed_out_zeroed() {
        // The block is not zeroed up front: fill one arena with garbage and free it, so the
        // next one likely gets the same memory back.
        let size = 1 << 16;
        let dirty = Arena::new(size, Arc::new(AtomicU64::new(0)));
        let off = dirty.alloc(size - 8, 8).unwrap();
        // SAFETY: ours and unpublished; single-threaded test.
        unsafe { dirty.write(off, &vec![0xa5; size - 8]) };
        drop(dirty);
        let arena = Arena::new(size, Arc::new(AtomicU64::new(0)));
        for (len, align) in [(3, 1), (5, 8), (4000, 4), (17, 8), (size / 2, 1)] {
            let off = arena.alloc(len, align).unwrap();
            // SAFETY: handed out just now, never written.
            assert!(unsafe { arena.slice(off, len) }.iter().all(|b| *b == 0));
            // SAFETY: ours and unpublished.
            unsafe { arena.write(off, &vec![0xff; len]) };
        }
    }

    #[test]
    fn zero_capacity_arena_holds_nothing() {
        let counter = Arc::new(AtomicU64::new(0));
        let arena = Arena::new(0, counter.clone());
        assert_eq!(arena.alloc(0, 1), Err(ArenaFull));
        assert_eq!(arena.alloc(1, 1), Err(ArenaFull));
        drop(arena);
        assert_eq!(counter.load(Ordering::SeqCst), 0);
    }
}
