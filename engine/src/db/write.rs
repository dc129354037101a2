//! The write path, with group commit.
//!
//! Every write joins a queue (`State::writers`). The write at its front leads a group: itself
//! and the writes queued behind it, up to a byte limit (a write asking for sync never joins a
//! group that does not sync). The leader makes room in the memtable for the whole group, takes
//! its seqnums, then, without the lock while more writes queue, appends one WAL record per
//! batch, syncs once and applies the batches to the memtable in seqnum order (readers skip
//! entries above the published seqnum); it takes the lock back, publishes the last seqnum,
//! hands every member its result and wakes the next leader. So concurrent synced writers
//! share one fsync, and the mutex is held neither across WAL I/O nor across memtable inserts
//! (readers taking a view never wait for them).
//!
//! Invariants:
//! - One group at a time: only the queue's front writer leads, and it leaves the queue only
//!   after its group is published (or failed).
//! - While a leader appends and applies, `State::writing` is set and the WAL is out of
//!   `State::wal`:
//!   everything else that touches the WAL, switches the memtable or takes seqnums (flush,
//!   ingestion, checkpoint, close, resume, `flush_wal`) first waits for it
//!   ([`DbInner::wait_for_wal`]); obsolete-file deletion keeps the current WAL live.
//! - A write returns only once its batch is applied and, when it asked for sync, every write
//!   up to it is durable; a failed WAL append or sync poisons the database and fails the
//!   whole group.

use crate::sync::MutexGuard;

use super::{arena_bytes_needed, Db, DbInner, State, WriteOptions};
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::key::Kind;

/// A group takes the writes behind its leader up to this many batch bytes...
const MAX_GROUP_BYTES: usize = 1 << 20;
/// ...or, behind a small leader, this many more than the leader's own, so a small write is
/// not held up by a large group.
const SMALL_LEADER_EXTRA: usize = 128 << 10;

/// A write waiting in the queue.
pub(crate) struct QueuedWrite {
    id: u64,
    /// Taken by the leader of the group the write joins.
    batch: Option<WriteBatch>,
    /// The memtable arena bytes the batch needs (`arena_bytes_needed`).
    arena: usize,
    sync: bool,
}

impl Db {
    /// Commits `batch` atomically, with one contiguous range of seqnums.
    ///
    /// A batch over a size limit ([`crate::MAX_KEY_LEN`], [`crate::MAX_VALUE_LEN`],
    /// [`crate::MAX_BATCH_COUNT`], [`crate::MAX_BATCH_BYTES`]) is refused with
    /// `InvalidArgument` before anything is written. Concurrent writes commit in groups that
    /// share one WAL sync (see `db/write.rs`).
    pub fn write(&self, batch: WriteBatch, wo: &WriteOptions) -> Result<()> {
        let inner = &self.inner;
        batch.check_limits().map_err(Error::InvalidArgument)?;
        for op in batch.iter() {
            if op.kind == Kind::RangeDelete && inner.cmp.compare_user(op.key, op.value).is_gt() {
                return Err(Error::InvalidArgument("delete_range: start is after end".to_string()));
            }
        }
        let arena = arena_bytes_needed(&batch)?;
        let mut state = inner.lock();
        DbInner::check_writable(&state)?;
        // An empty batch only matters as a sync: it returns once every earlier write is
        // durable. Regression: corpus/empty-sync-batch-is-a-wal-barrier.ops.
        let sync = wo.sync && !inner.opts.disable_wal;
        if batch.is_empty() && !sync {
            return Ok(());
        }
        let id = state.next_writer;
        state.next_writer += 1;
        state.writers.push_back(QueuedWrite { id, batch: Some(batch), arena, sync });
        loop {
            if let Some(result) = state.write_results.remove(&id) {
                return result;
            }
            if state.writers.front().is_some_and(|w| w.id == id) {
                return inner.lead_group(state);
            }
            if let Some(p) = state.poison.as_ref().filter(|p| p.fatal) {
                // A panic poisoned the database: the leader may be gone with it.
                return Err(Error::Poisoned { cause: p.cause.clone() });
            }
            state = inner.wait(state);
        }
    }
}

impl DbInner {
    /// Waits until no group leader is appending to the WAL; afterwards the WAL, the memtable
    /// and the seqnums are the caller's while it holds the lock.
    pub(super) fn wait_for_wal<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
    ) -> MutexGuard<'a, State> {
        while state.writing {
            state = self.wait(state);
        }
        state
    }

    /// Commits the group the queue's front writer (the caller) leads, hands each member its
    /// result, takes the group off the queue and wakes the next leader. Returns the leader's
    /// own result.
    fn lead_group(&self, mut state: MutexGuard<'_, State>) -> Result<()> {
        let (len, sync) = self.group_len(&state);
        let needed = state.writers.iter().take(len).map(|w| w.arena).fold(0, usize::saturating_add);
        // Inline: a group of a few writes allocates nothing to gather them.
        let mut batches: smallvec::SmallVec<[WriteBatch; 4]> =
            state.writers.iter_mut().take(len).filter_map(|w| w.batch.take()).collect();
        let (mut state, result) = match self.commit_group(state, &mut batches, needed, sync) {
            Ok(state) => (state, Ok(())),
            // The error dropped the guard (a stall or a poisoning may have let it go).
            Err(e) => (self.lock(), Err(e)),
        };
        let leader = state.writers.pop_front().expect("the leader is queued");
        for w in state.writers.drain(..len - 1).collect::<Vec<_>>() {
            let r = result.as_ref().map(|_| ()).map_err(Error::duplicate);
            state.write_results.insert(w.id, r);
        }
        debug_assert!(leader.batch.is_none(), "the leader's batch joined its group");
        self.wake_callers();
        result
    }

    /// How many queued writes, from the front, form the next group, and whether it syncs.
    /// Followers join only while the group fits one ordinary memtable, so grouping never
    /// makes a dedicated larger one (the memory budget holds).
    fn group_len(&self, state: &State) -> (usize, bool) {
        let mut writers = state.writers.iter();
        let leader = writers.next().expect("the leader is queued");
        let size = |w: &QueuedWrite| w.batch.as_ref().map_or(0, WriteBatch::size_bytes);
        let leader_size = size(leader);
        let max = if leader_size <= SMALL_LEADER_EXTRA {
            leader_size + SMALL_LEADER_EXTRA
        } else {
            MAX_GROUP_BYTES
        };
        let (mut len, mut total, mut arena_total) = (1, leader_size, leader.arena);
        for w in writers {
            // A write asking for sync waits for a group that syncs.
            if w.sync && !leader.sync {
                break;
            }
            total += size(w);
            arena_total = arena_total.saturating_add(w.arena);
            if total > max || arena_total > self.opts.memtable_size {
                break;
            }
            len += 1;
        }
        (len, leader.sync)
    }

    /// Makes room for `batches` (`needed` arena bytes), gives them seqnums, appends them to the WAL (synced when
    /// `sync`) without the lock, applies them to the memtable and publishes them.
    fn commit_group<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        batches: &mut [WriteBatch],
        needed: usize,
        sync: bool,
    ) -> Result<MutexGuard<'a, State>> {
        Self::check_writable(&state)?;
        state = self.make_room(state, needed)?;
        while state.ingesting {
            // An ingestion holds the next seqnums (and flushes the memtables): wait, then make
            // room again, since waiting released the lock.
            while state.ingesting {
                state = self.wait(state);
                Self::check_writable(&state)?;
            }
            state = self.make_room(state, needed)?;
        }
        let first_seq = state.last_seq + 1;
        let mut seq = first_seq;
        for b in batches.iter_mut() {
            b.set_seq(seq);
            seq += u64::from(b.count());
        }
        // The memtable is the one room was made in: switching it waits for `writing`.
        let mem = state.mem.mem.clone();
        let mut wal = if self.opts.disable_wal {
            None
        } else {
            Some(state.wal.take().expect("WAL open when enabled"))
        };
        state.writing = true;
        drop(state);
        // A panic here must not leave `writing` set or the group queued: it becomes a
        // (fatal) poisoning like any other. The memtable takes the batches only after the
        // WAL holds them; readers skip them until `last_seq` publishes them below.
        let (mut wal_bytes, mut user_bytes) = (0, 0);
        let result = Self::catch_panic(|| {
            if let Some(wal) = wal.as_mut() {
                for b in batches.iter().filter(|b| !b.is_empty()) {
                    wal_bytes += wal.add_record_with(|out| b.encode_into(out))? as u64;
                }
                if sync {
                    wal.sync()?;
                }
            }
            for b in batches.iter() {
                for (i, op) in b.iter().enumerate() {
                    mem.add(b.seq() + i as u64, op.kind, op.key, op.value)
                        .expect("make_room reserved space for the whole group");
                    user_bytes += (op.key.len() + op.value.len()) as u64;
                }
            }
            Ok(())
        });
        state = self.lock();
        if wal.is_some() {
            state.wal = wal;
        }
        state.writing = false;
        self.wake_callers();
        if let Err(e) = result {
            return Err(self.poison(&mut state, e));
        }
        state.stats.wal_bytes += wal_bytes;
        state.stats.user_bytes += user_bytes;
        state.stats.write_groups += 1;
        state.stats.writes += batches.len() as u64;
        // Only the leader takes seqnums, and no ingestion began while it held them.
        assert_eq!(state.last_seq + 1, first_seq, "a group's seqnums continue the last write's");
        state.last_seq = seq - 1;
        self.publish(&state);
        Ok(state)
    }
}
