//! Draining background work: what a test, a benchmark or an operator waits for before looking
//! at the LSM's shape.

use std::time::Duration;

use super::{Db, DbInner};
use crate::error::{Error, Result};
use crate::options::Scheduler;

/// How long the Threads scheduler may go without finishing a step, while work is pending or
/// running, before [`Db::drain_background_work`] says it does not converge. Wall time decides
/// only that; nothing it returns depends on timing otherwise.
const NO_PROGRESS_LIMIT: Duration = Duration::from_secs(30);

/// What [`Db::drain_background_work`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drained {
    /// No flush or compaction is pending or running.
    Idle,
    /// Work is still pending after the step budget (or, under Threads, after a long time
    /// without a finished step): the tree does not converge.
    NotConverged,
}

impl Db {
    /// Runs (Manual scheduler) or awaits (Threads) flushes and compactions until none is pending
    /// or running, or until `max_steps` steps have finished without getting there. A step that
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
                let mut last_progress = (steps(&state), 0u32);
                loop {
                    DbInner::check_writable(&state)?;
                    if state.bg_failures != failures {
                        return Err(state.bg_error.as_ref().map_or_else(
                            || Error::io("background work", std::io::Error::other("a step failed")),
                            Error::duplicate,
                        ));
                    }
                    let idle = !state.flushing
                        && state.compacting.is_empty()
                        && inner.pending_work(&state).is_empty();
                    if idle {
                        return Ok(Drained::Idle);
                    }
                    let done = steps(&state);
                    if done - start >= max_steps {
                        return Ok(Drained::NotConverged);
                    }
                    if done != last_progress.0 {
                        last_progress = (done, 0);
                    }
                    inner.cond.notify_all();
                    let (s, timeout) = inner
                        .cond
                        .wait_timeout(state, Duration::from_secs(1))
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    state = s;
                    if timeout.timed_out() {
                        last_progress.1 += 1;
                        if u64::from(last_progress.1) >= NO_PROGRESS_LIMIT.as_secs() {
                            return Ok(Drained::NotConverged);
                        }
                    }
                }
            }
        }
    }
}
