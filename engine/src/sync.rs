//! The engine's one concurrency facade: every lock, condition variable, atomic and thread.
//!
//! Normally these are std's. With the cargo feature `shuttle` they are shuttle's, so a seeded
//! model scheduler decides every interleaving of the engine's threads (Tumbler replays threaded
//! configs this way); under `--cfg loom` (scripts/loom.sh) the atomics, locks and threads are
//! loom's, so the loom models in `tests/loom.rs` explore every interleaving of the lock-free
//! parts. The engine's code is the same in all three builds: no test-only branches.
//!
//! Invariant: nothing else in the engine names `std::sync` or `std::thread`; `engine/clippy.toml`
//! bans their types, and this file is the one exemption. In the std build the types are type
//! aliases, not re-exports: clippy's `disallowed_types` sees through a `pub use` (it bans the
//! item, whatever path names it) but not through an alias, so the aliases are what let the rest
//! of the engine use them while the ban stands.
//!
//! Two things stay std in every build, on purpose:
//! - `Arc`, `Weak` (shuttle re-exports std's; loom's cannot hold `dyn` values) and `OnceLock`
//!   (a one-time initialisation, never contended in a way a scheduler must see).
//! - [`raw_atomic`]: atomics laid over arena memory with `from_ptr`, which no model checker can
//!   instrument. The loom models model that protocol through [`atomic`]'s types instead.

#![expect(
    clippy::disallowed_types,
    reason = "the facade is the one place that names std::sync and std::thread"
)]

pub use std::sync::{Arc, LockResult, OnceLock, PoisonError, Weak};

#[cfg(not(any(feature = "shuttle", loom)))]
mod imp {
    pub type Mutex<T> = std::sync::Mutex<T>;
    pub type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;
    pub type RwLock<T> = std::sync::RwLock<T>;
    pub type Condvar = std::sync::Condvar;
    pub mod atomic {
        pub use std::sync::atomic::fence;
        pub type AtomicBool = std::sync::atomic::AtomicBool;
        pub type AtomicU32 = std::sync::atomic::AtomicU32;
        pub type AtomicU64 = std::sync::atomic::AtomicU64;
        pub type AtomicUsize = std::sync::atomic::AtomicUsize;
    }
    pub mod thread {
        pub use std::thread::{scope, spawn, yield_now};
        pub type Builder = std::thread::Builder;
        pub type JoinHandle<T> = std::thread::JoinHandle<T>;
    }
}

#[cfg(all(feature = "shuttle", not(loom)))]
mod imp {
    pub use shuttle::sync::{Condvar, Mutex, MutexGuard, RwLock};
    pub mod atomic {
        pub use shuttle::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    }
    pub mod thread {
        pub use shuttle::thread::{scope, spawn, yield_now, Builder, JoinHandle};
    }
}

#[cfg(loom)]
mod imp {
    pub use loom::sync::{Condvar, Mutex, MutexGuard, RwLock};
    pub mod atomic {
        pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    }
    pub mod thread {
        pub use loom::thread::{spawn, yield_now, Builder, JoinHandle};
        pub use std::thread::scope;
    }
}

pub use imp::{Condvar, Mutex, MutexGuard, RwLock};

/// Atomics the scheduler (shuttle) or model checker (loom) sees.
pub mod atomic {
    pub use super::imp::atomic::*;
    pub use std::sync::atomic::Ordering;
}

/// Atomics over raw memory (`AtomicU32::from_ptr` on the memtable arena): always std's, since
/// neither shuttle nor loom can instrument memory they did not allocate.
pub mod raw_atomic {
    pub type AtomicU32 = std::sync::atomic::AtomicU32;
    pub use std::sync::atomic::Ordering;
}

/// Threads: `spawn`, `Builder`, `JoinHandle`, `yield_now`, `scope`. Spawning stays banned by
/// clippy.toml outside the Threads scheduler driver whichever backend provides it.
pub use imp::thread;

/// Clears a mutex's poison flag, once the engine has taken the guard with `into_inner` and
/// recorded the panic (see ARCHITECTURE.md "Panics"). loom's mutex has no poison flag to clear
/// (a panic ends the model), so there it does nothing.
pub fn clear_poison<T>(mutex: &Mutex<T>) {
    #[cfg(not(loom))]
    mutex.clear_poison();
    #[cfg(loom)]
    let _ = mutex;
}
