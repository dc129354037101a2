//! Resume: continuing a poisoned database without a reopen, once the error that poisoned it
//! has cleared. Flush every memtable (the mutable one included), start a new WAL, write a fresh
//! manifest holding the whole version, then clear the poison and delete obsolete files.
//!
//! Invariants: no write or step runs while `State::resuming` is set; nothing is appended to the
//! old WAL or manifest (their tails' fate is unknown); a failure at any step deletes nothing and
//! leaves the database poisoned, so resume may be retried; a panic-poisoned database is refused.

use crate::sync::{Arc, MutexGuard};

use super::{DbInner, MemEntry, State};
use crate::error::{Error, Result};
use crate::filename;
use crate::memtable::Memtable;
use crate::version::edit::VersionEdit;
use crate::version::manifest;
use crate::version::FileMetadata;
use crate::wal::LogWriter;

impl DbInner {
    /// See [`super::Db::resume`].
    pub(super) fn resume(&self) -> Result<()> {
        let mut state = self.lock();
        loop {
            if state.closed || state.shutting_down {
                return Err(Error::Closed);
            }
            let Some(poison) = &state.poison else { return Ok(()) };
            if poison.fatal {
                return Err(Error::Poisoned { cause: poison.cause.clone() });
            }
            // One resume at a time, and none while a step started before the poison still
            // writes (it will fail at `log_and_apply` and notify) or a write group appends.
            if !state.resuming && !state.flushing && state.compacting.is_empty() && !state.writing {
                break;
            }
            state = self.wait(state);
        }
        state.resuming = true;
        let result = self.resume_inner(state);
        let mut state = self.lock();
        state.resuming = false;
        self.wake_all();
        result
    }

    /// The body of [`DbInner::resume`]: `state.resuming` is set; no write or step runs.
    fn resume_inner<'a>(&'a self, state: MutexGuard<'a, State>) -> Result<()> {
        // 1. Flush every memtable, oldest first. Their writes were acknowledged, but the WAL
        //    holding the newest of them may have failed its sync: tables make them durable.
        let mut mems: Vec<Arc<Memtable>> = state.imms.iter().map(|m| m.mem.clone()).collect();
        if !state.mem.mem.is_empty() {
            mems.push(state.mem.mem.clone());
        }
        drop(state);
        let mut added: Vec<FileMetadata> = Vec::new();
        let mut flush_bytes = 0;
        let forget = |added: &[FileMetadata]| {
            let mut state = self.lock();
            for f in added {
                state.pending_outputs.remove(&f.num);
            }
        };
        for m in &mems {
            match Self::catch_panic(|| self.flush_memtable(m)) {
                Ok((files, bytes, _)) => {
                    added.extend(files);
                    flush_bytes += bytes;
                }
                Err(e) => {
                    // Tables already written stay (nothing is deleted while poisoned); the
                    // next successful resume or open removes them as orphans.
                    forget(&added);
                    return Err(e);
                }
            }
        }
        drop(mems);
        let mut state = self.lock();
        let result = (|| {
            if state.shutting_down {
                return Err(Error::Closed);
            }
            let mut edit = VersionEdit::default();
            edit.added.extend(added.iter().map(|f| (0, f.clone())));
            let next = manifest::apply(&state.version, &edit, &self.cmp, "resume")?;
            // 2. A new WAL: the old one may have an unknown tail. Its directory entry becomes
            //    durable with the manifest's directory sync below.
            let wal_num = state.next_file_num;
            state.next_file_num += 1;
            let wal = if self.opts.disable_wal {
                None
            } else {
                Some(LogWriter::new(self.fs.create(&filename::wal(&self.dir, wal_num))?))
            };
            // 3. A fresh manifest with the whole version, installed through CURRENT.
            let last_seq = state.last_seq;
            let manifest = self.create_manifest(&mut state, &next, wal_num, last_seq)?;
            Ok((next, wal_num, wal, manifest))
        })();
        for f in &added {
            assert!(state.pending_outputs.remove(&f.num), "a resume output was pending");
        }
        let (next, wal_num, wal, manifest) = result?;
        // 4. Install, clear the poison, and only now delete what the new manifest does not
        //    name (old WALs and manifests, orphan tables): CURRENT naming it is durable.
        self.install_version(&mut state, next);
        state.manifest = Some(manifest);
        if wal.is_some() {
            state.wal = wal;
        }
        state.imms.clear();
        state.mem = MemEntry { mem: self.new_memtable(self.opts.memtable_size), wal_num };
        self.publish(&state);
        state.manifest_last_seq = state.last_seq;
        if !added.is_empty() {
            state.stats.flushes += 1;
            state.stats.flush_bytes += flush_bytes;
        }
        state.poison = None;
        state.bg_error = None;
        state.resumes += 1;
        self.delete_obsolete_files(&mut state);
        self.wake_all();
        Ok(())
    }
}
