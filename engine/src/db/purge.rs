//! Deleting the files an old version kept alive, once its last reader is gone: every read
//! (a `get`, a `multi_get`, an iterator, a checkpoint, `estimate_disk_usage`) pins the
//! version it started on, and a compaction that finished meanwhile could not delete its
//! inputs. Without this, they would wait for the next flush or compaction, and their readers
//! would stay in the table cache.
//!
//! Invariant: every `Arc<Version>` held outside the state lock is held with a
//! [`PurgeOnDrop`] (in a read's view, or a [`HeldVersion`]); one held under the lock is
//! dropped before the step that changed the version purges.

use crate::sync::{Arc, Weak};

use super::DbInner;
use crate::version::Version;

/// Dropped after the version a read pinned, it deletes the files no live version needs any
/// more, when that version died with this read. A read of the current version (the common
/// case) takes no lock here: the state still holds it.
#[derive(Clone)]
pub(super) struct PurgeOnDrop {
    db: Weak<DbInner>,
    version: Weak<Version>,
}

impl PurgeOnDrop {
    pub(super) fn new(db: &Arc<DbInner>, version: &Arc<Version>) -> PurgeOnDrop {
        PurgeOnDrop { db: Arc::downgrade(db), version: Arc::downgrade(version) }
    }
}

/// A version pinned outside the state lock by something other than a read's view: it purges
/// when it drops, as a view does.
pub(super) struct HeldVersion {
    pub(super) version: Arc<Version>,
    /// Declared last so that it drops after `version`.
    _purge: PurgeOnDrop,
}

impl HeldVersion {
    pub(super) fn new(db: &Arc<DbInner>, version: Arc<Version>) -> HeldVersion {
        let purge = PurgeOnDrop::new(db, &version);
        HeldVersion { version, _purge: purge }
    }
}

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        // Every holder drops its reference before checking, so the last one to let go sees
        // zero here and purges (two may both see zero; a second purge finds nothing to do).
        if self.version.strong_count() > 0 {
            return;
        }
        let Some(inner) = self.db.upgrade() else { return };
        // A poisoned lock means a panic is already being reported: delete nothing.
        let Ok(mut state) = inner.state.lock() else { return };
        // A closed, closing or poisoned database deletes nothing: the next open decides.
        if state.closed || state.shutting_down || state.poison.is_some() {
            return;
        }
        if state.live_versions.iter().any(|v| v.strong_count() == 0) {
            inner.delete_obsolete_files(&mut state);
        }
    }
}
