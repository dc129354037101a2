//! The memtable switch: making room for a write, stalling it while too many memtables or L0
//! files wait, and freezing a full memtable behind a new WAL.
//!
//! Invariants: the old WAL is synced before the new one is created, so a crash never keeps a
//! newer WAL's writes while losing older ones; queued memtables are oldest first and their WAL
//! numbers never decrease, so the oldest one's WAL is the log number.

use crate::sync::MutexGuard;

use super::{DbInner, MemEntry, State};
use crate::error::{Error, Result};
use crate::filename;
use crate::options::Scheduler;
use crate::wal::LogWriter;

impl DbInner {
    /// Makes room in the memtable for a write needing `needed` arena bytes, switching
    /// memtables and stalling (running or awaiting background work) as needed.
    pub(super) fn make_room<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        needed: usize,
    ) -> Result<MutexGuard<'a, State>> {
        let mut stalled = false;
        loop {
            Self::check_writable(&state)?;
            let mem = &state.mem.mem;
            let fits = mem.capacity() - mem.used_bytes() >= needed;
            let l0_stop = state.version.l0_depth() >= self.opts.l0_stop_writes_threshold;
            let imm_stop = state.imms.len() + 1 >= self.opts.memtable_stop_writes_threshold;
            if (l0_stop || (!fits && imm_stop)) && !stalled {
                state.stats.stalls += 1;
                let before = (state.imms.len(), state.version.levels[0].len());
                state = self.help_or_wait(state)?;
                let after = (state.imms.len(), state.version.levels[0].len());
                if before == after && matches!(self.opts.scheduler, Scheduler::Manual) {
                    // No step could make progress: let the write through rather than hang.
                    stalled = true;
                }
                continue;
            }
            if fits {
                return Ok(state);
            }
            let capacity = self.opts.memtable_size.max(needed);
            if mem.is_empty() {
                // An empty memtable too small for this batch: replace it, keeping its WAL.
                state.mem.mem = self.new_memtable(capacity);
                return Ok(state);
            }
            return self.switch_memtable(state, capacity);
        }
    }

    /// Freezes the memtable and starts a new one with a new WAL. The old WAL is synced first,
    /// so a crash can never keep a newer WAL's writes while losing older ones.
    pub(super) fn switch_memtable<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        capacity: usize,
    ) -> Result<MutexGuard<'a, State>> {
        // Waiting may let go of the lock: the database may have closed or been poisoned
        // meanwhile (`close` itself switches while shutting down, so only `closed` counts).
        state = self.wait_for_wal(state);
        if state.closed {
            return Err(Error::Closed);
        }
        Self::check_not_poisoned(&state)?;
        let mut wal_num = state.mem.wal_num;
        if !self.opts.disable_wal {
            let num = state.next_file_num;
            let result = (|| {
                if let Some(wal) = state.wal.as_mut() {
                    wal.sync()?;
                }
                let file = self.fs.create(&filename::wal(&self.dir, num))?;
                self.fs.sync_dir(&self.dir)?;
                Ok(LogWriter::new(file))
            })();
            match result {
                Ok(wal) => {
                    state.next_file_num += 1;
                    state.wal = Some(wal);
                    wal_num = num;
                }
                Err(e) => return Err(self.poison(&mut state, e)),
            }
        }
        let new = MemEntry { mem: self.new_memtable(capacity), wal_num };
        let old = std::mem::replace(&mut state.mem, new);
        assert!(old.wal_num <= wal_num, "WAL numbers of queued memtables never decrease");
        state.imms.push_back(old);
        self.publish(&state);
        self.wake_all();
        Ok(state)
    }
}
