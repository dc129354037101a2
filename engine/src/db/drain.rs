//! Draining background work: what a test, a benchmark or an operator waits for before looking
//! at the LSM's shape.

use super::{Db, DbInner};
use crate::error::{Error, Result};
use crate::options::Scheduler;

/// What [`Db::drain_background_work`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drained {
    /// No flush or compaction is pending or running.
    Idle,
    /// Work is still pending after the step budget, or pending work that no step can pick:
    /// the tree does not converge.
    NotConverged,
}

impl Db {
    /// Runs (Manual scheduler) or awaits (Threads) flushes and compactions until none is pending
    /// or running, or until `max_steps` steps have finished without getting there. Once idle,
    /// it deletes the obsolete files still there (a removal that failed is retried here, as
    /// at every flush or compaction). A step that
    /// fails returns its error (under Threads: one that fails while this call waits); a poisoned
    /// or closed database returns that.
    pub fn drain_background_work(&self, max_steps: u64) -> Result<Drained> {
        let inner = &self.inner;
        match inner.opts.scheduler {
            Scheduler::Manual => {
                let mut state = inner.lock();
                for _ in 0..max_steps {
                    DbInner::check_writable(&state)?;
                    let (s, ran) = inner.run_step(state)?;
                    state = s;
                    if !ran {
                        let idle = inner.pending_work(&state).is_empty();
                        if idle {
                            inner.delete_obsolete_files(&mut state);
                        }
                        return Ok(if idle { Drained::Idle } else { Drained::NotConverged });
                    }
                }
                Ok(Drained::NotConverged)
            }
            Scheduler::Threads { .. } => {
                let mut state = inner.lock();
                let steps = |s: &super::State| s.stats.flushes + s.stats.compactions;
                let start = steps(&state);
                let failures = state.bg_failures;
                loop {
                    DbInner::check_writable(&state)?;
                    if state.bg_failures != failures {
                        return Err(state.bg_error.as_ref().map_or_else(
                            || Error::io("background work", std::io::Error::other("a step failed")),
                            Error::duplicate,
                        ));
                    }
                    let running = state.flushing || !state.compacting.is_empty();
                    if !running && inner.pending_work(&state).is_empty() {
                        // A delete-only step has no score, so `pending_work` does not count
                        // it: run it here, under the lock, or a worker could still drop
                        // tables after this call said idle (Manual's `run_step` runs it).
                        let (s, dropped) = inner.run_delete_only(state)?;
                        state = s;
                        if dropped {
                            continue;
                        }
                        inner.delete_obsolete_files(&mut state);
                        return Ok(Drained::Idle);
                    }
                    // Work is pending, nothing runs, and no step could be picked: the workers
                    // sleep until something changes, so waiting would never end.
                    let stuck = !running
                        && state.imms.is_empty()
                        && inner.pick_compaction(&state).is_none();
                    if stuck || steps(&state) - start >= max_steps {
                        return Ok(Drained::NotConverged);
                    }
                    // Every finished or failed step, and close, notify.
                    inner.kick_workers();
                    state = inner.wait(state);
                }
            }
        }
    }
}
