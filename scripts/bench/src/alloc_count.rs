//! Counts heap allocations per thread, so a workload can report how many its timed calls made.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

#[cfg(all(feature = "jemalloc", feature = "mimalloc"))]
compile_error!("choose one allocator: `jemalloc` or `mimalloc`");

/// The allocator every allocation goes to: the system's unless a feature picks another.
#[cfg(feature = "jemalloc")]
static INNER: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[cfg(feature = "mimalloc")]
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
static INNER: std::alloc::System = std::alloc::System;

/// The allocator's name, for the report.
pub const NAME: &str = if cfg!(feature = "jemalloc") {
    "jemalloc"
} else if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system"
};

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// The chosen allocator, counting each allocation (and reallocation) on the calling thread.
pub struct Counting;

fn count() {
    // `try_with`: a thread being torn down may still allocate.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded to `INNER` unchanged; the counter is a thread-local `Cell`
// with a const initializer and no destructor, so touching it never allocates or reenters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's layout.
        unsafe { INNER.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's layout.
        unsafe { INNER.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from this allocator, so from `INNER`, with `layout`.
        unsafe { INNER.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from `INNER`, with `layout`.
        unsafe { INNER.dealloc(ptr, layout) }
    }
}

/// Allocations the calling thread has made so far.
pub fn this_thread() -> u64 {
    ALLOCS.with(Cell::get)
}
