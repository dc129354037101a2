//! Deleting the files an old version kept alive, once its last reader is gone: an iterator
//! pins the version it was created on, and a compaction that finished meanwhile could not
//! delete its inputs. Without this, they would wait for the next flush or compaction.

use crate::sync::{Arc, Weak};

use super::DbInner;

/// Dropped last among an iterator's fields (after the version it pinned), it deletes the files
/// no live version needs any more.
pub(super) struct PurgeOnDrop {
    db: Weak<DbInner>,
}

impl PurgeOnDrop {
    pub(super) fn new(db: &Arc<DbInner>) -> PurgeOnDrop {
        PurgeOnDrop { db: Arc::downgrade(db) }
    }
}

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
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
