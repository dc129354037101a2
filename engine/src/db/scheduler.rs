//! Who runs background steps. A step is one flush (the oldest memtable) or else one
//! compaction; `run_step` picks and runs it. `Scheduler::Threads` runs steps on worker threads
//! (`start_threads`, `worker`); `Scheduler::Manual` runs them only when the embedder calls
//! `Db::run_background_step`, or inline in a write that would stall (`help_or_wait`).
//!
//! Invariants: both drivers call the same `run_step`, so they give the same results; a panic in
//! a step becomes `Error::Panicked` and poisons the database, never a dead worker or a poisoned
//! lock; a writer waiting for a step that failed gets that step's error, never a wait forever.

use crate::sync::{Arc, MutexGuard, PoisonError};
use std::panic::{self, AssertUnwindSafe};

use super::{DbInner, State};
use crate::error::{Error, Result};
use crate::options::Scheduler;
use crate::version::{picker, Version, NUM_LEVELS};

/// What background work is waiting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackgroundWork {
    /// Immutable memtables waiting for flush.
    pub flushes: usize,
    /// Levels whose compaction score is at least 1.
    pub compactions: usize,
}

impl BackgroundWork {
    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.flushes == 0 && self.compactions == 0
    }
}

impl DbInner {
    /// Runs `f`, turning a panic in it (a user's comparator or `Fs`, say) into
    /// [`Error::Panicked`]. For work done without the state lock, so a panic leaves no lock
    /// poisoned and no flag set; the caller poisons the database with the error.
    pub(super) fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
        panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(Error::from_panic(&*p)))
    }

    /// Runs a step here (Manual) or waits for the background threads (Threads).
    pub(super) fn help_or_wait<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>> {
        Self::check_writable(&state)?;
        match self.opts.scheduler {
            Scheduler::Manual => {
                let (state, ran) = self.run_step(state)?;
                if !ran && (state.flushing || !state.compacting.is_empty()) {
                    // Another thread runs the step this caller needs; `close` and `poison`
                    // wake this wait too, and the check below sees why.
                    let state = self.wait(state);
                    Self::check_writable(&state)?;
                    return Ok(state);
                }
                Ok(state)
            }
            Scheduler::Threads { .. } => {
                let failures = state.bg_failures;
                self.kick_workers();
                let state = self.wait(state);
                Self::check_writable(&state)?;
                if state.bg_failures != failures {
                    // The step this writer waits for failed: return its error (same kind) and
                    // let the caller retry, never wait again (engine/tests/shutdown.rs).
                    return Err(state.bg_error.as_ref().map_or_else(
                        || Error::io("background work", std::io::Error::other("a step failed")),
                        Error::duplicate,
                    ));
                }
                Ok(state)
            }
        }
    }

    pub(super) fn pending_work(&self, state: &State) -> BackgroundWork {
        let compactions = (0..NUM_LEVELS - 1)
            .filter(|&level| self.level_score(&state.version, level) >= 1.0)
            .count();
        BackgroundWork { flushes: state.imms.len(), compactions }
    }

    fn level_score(&self, version: &Version, level: usize) -> f64 {
        picker::level_score(&self.picker_options(), version, level)
    }

    /// Runs one step: the oldest flush, else a delete-only compaction, else the best
    /// compaction. Returns whether it ran.
    pub(super) fn run_step<'a>(
        &'a self,
        state: MutexGuard<'a, State>,
    ) -> Result<(MutexGuard<'a, State>, bool)> {
        if !state.flushing && !state.imms.is_empty() {
            return self.flush_oldest(state).map(|s| (s, true));
        }
        let (state, dropped) = self.run_delete_only(state)?;
        if dropped {
            return Ok((state, true));
        }
        match self.pick_compaction(&state) {
            Some(c) => self.run_compaction(state, c).map(|s| (s, true)),
            None => Ok((state, false)),
        }
    }
}

/// Starts the `Threads` scheduler's workers.
pub(super) fn start_threads(inner: &Arc<DbInner>, count: usize) {
    let mut threads = inner.threads.lock().unwrap_or_else(PoisonError::into_inner);
    for i in 0..count {
        let db = inner.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "the Threads scheduler is the engine's one place that spawns threads"
        )]
        let handle = crate::sync::thread::Builder::new()
            .name(format!("cobble-bg-{i}"))
            .spawn(move || worker(&db))
            .expect("spawning a background thread");
        threads.push(handle);
    }
}

fn worker(db: &Arc<DbInner>) {
    let mut state = db.lock();
    loop {
        if state.shutting_down {
            return;
        }
        if state.poison.is_some() || state.resuming {
            state = db.wait_for_work(state);
            continue;
        }
        // Invariant: a panic in a step poisons the database and wakes every waiter; the worker
        // lives on. Regression: tests/failures.rs
        // a_panic_in_a_background_compaction_poisons_instead_of_hanging (issue 14).
        let resumes = state.resumes;
        match panic::catch_unwind(AssertUnwindSafe(|| db.run_step(state))) {
            Ok(Ok((s, true))) => state = s,
            Ok(Ok((s, false))) => state = db.wait_for_work(s),
            Err(payload) => {
                let e = Error::from_panic(&*payload);
                let mut s = db.lock();
                s.bg_failures += 1;
                s.bg_error = Some(e.duplicate());
                db.poison(&mut s, e);
                if s.shutting_down {
                    return;
                }
                state = s;
            }
            Ok(Err(e)) => {
                // A failed flush or compaction removed its outputs and changed no version
                // (a manifest failure poisons the database in `log_and_apply`). Tell the
                // writers waiting for it, and retry when something changes instead of
                // spinning on a persistent error.
                //
                // A step that failed under a poison a resume has cleared since (the resume
                // waited for the step to end, then ran while this thread had no lock) is no
                // failure of the resumed database: recording it would hand its stale error to
                // the next writer that waits (found by tests/fault_sweep.rs under Threads).
                let mut s = db.lock();
                if s.resumes == resumes {
                    s.bg_failures += 1;
                    s.bg_error = Some(e.duplicate());
                }
                db.wake_all();
                if s.shutting_down {
                    return;
                }
                state = db.wait_for_work(s);
            }
        }
    }
}
