//! Close: refuse new calls and wake every waiter, join the workers, wait for steps running in
//! callers' threads, then (unless poisoned) flush memtables when the WAL is off or else sync
//! the WAL, delete obsolete files and release everything, the directory lock last.
//!
//! Invariants: every close path ends with the database marked closed, even after a panic, so
//! no later close or `Drop` waits forever; no close path `expect`s a lock; a poisoned database
//! syncs and deletes nothing.

use crate::sync::{Arc, PoisonError};
use std::panic::{self, AssertUnwindSafe};

use super::{DbInner, State};
use crate::error::{Error, Result};
use crate::version::Version;

impl DbInner {
    /// See [`super::Db::close`].
    pub(super) fn close(&self) -> Result<()> {
        {
            let mut state = self.lock();
            if state.shutting_down {
                // Another close runs: return when it is done, as if this one had done it.
                while !state.closed {
                    state = self.wait(state);
                }
                return Ok(());
            }
            // From here on every call returns `Closed`, and every waiter is woken to see it.
            state.shutting_down = true;
            self.wake_all();
        }
        // A panic here (a user's `Fs` syncing the WAL, say) must still end in a closed
        // database: otherwise a later close, or Drop, would wait for this one forever.
        match panic::catch_unwind(AssertUnwindSafe(|| self.shut_down())) {
            Ok(result) => result,
            Err(payload) => {
                let mut state = self.lock();
                let e = self.poison(&mut state, Error::from_panic(&*payload));
                self.release(&mut state);
                Err(e)
            }
        }
    }

    /// The body of `close` once `shutting_down` is set.
    fn shut_down(&self) -> Result<()> {
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for t in threads {
            // A worker catches panics in its steps; a join error is one outside them, already
            // reported on that thread. Close goes on.
            let _ = t.join();
        }
        let mut state = self.lock();
        // Steps running in callers' threads (`Manual` steps, `compact_range`, `resume`, a
        // write group's WAL append) end before the state is torn down. They notify when done. A panic-poisoned database
        // may have left a flag set by the panicking step: do not wait for it.
        while (state.flushing || !state.compacting.is_empty() || state.resuming || state.writing)
            && !state.poison.as_ref().is_some_and(|p| p.fatal)
        {
            state = self.wait(state);
        }
        let mut result = Ok(());
        if state.poison.is_none() {
            if self.opts.disable_wal {
                // Without a WAL, memtables are the only copy: flush them.
                match self.flush_all(state) {
                    Ok(s) => state = s,
                    Err(e) => {
                        result = Err(e);
                        state = self.lock();
                    }
                }
            } else if let Some(wal) = state.wal.as_mut() {
                if let Err(e) = wal.sync() {
                    result = Err(self.poison(&mut state, e));
                }
            }
        }
        // A no-op when poisoned: the next open decides what is obsolete.
        self.delete_obsolete_files(&mut state);
        self.release(&mut state);
        result
    }

    /// Marks the database closed, drops what it holds (memtables, WAL, manifest, tables, the
    /// directory lock) and wakes every waiter.
    fn release(&self, state: &mut State) {
        state.files_at_close = Some(self.live_files(state));
        state.closed = true;
        state.mem.mem = self.new_memtable(0);
        state.imms.clear();
        state.wal = None;
        state.manifest = None;
        let nums: Vec<u64> = state.version.file_nums().collect();
        state.version = Arc::new(Version::default());
        for n in nums {
            self.tables.evict(n);
        }
        state.lock = None;
        self.publish(state);
        self.wake_all();
    }
}
