//! Checks that an op sequence is one the runner can execute: objects are live when named,
//! single_deletes are valid uses, bounds are ordered. The generator guarantees it; a reducer
//! uses it to reject candidates; hand-written files are checked before running.
//!
//! Written independently of the generator's key manager (plain look-back over the ops), so the
//! two keep each other honest.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{CrashAt, IterId, Op, SnapshotId};

/// Why a sequence is invalid: the op index (0-based) and the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub index: usize,
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op {}: {}", self.index, self.message)
    }
}

impl std::error::Error for Invalid {}

/// Checks `ops`:
/// 1. An object id is created once and named only while live: after its `.new`, before its
///    close/commit/abort and before the next `restart`, boundary `crash`, or the op following a
///    `crash .. within n`.
/// 2. A snapshot is not closed while a live iterator reads at it (a clone reads where its
///    source does; a refreshed iterator reads at no snapshot).
/// 3. An iterator's prefix holds no `@`. Iterator bounds and batch range deletes have
///    lower <= upper (a direct `delete_range` may be reversed: the engine must refuse it).
/// 4. A single_delete of `k` is valid (SEMANTICS.md): counting every write issued before it
///    takes effect (a batched one at its batch's commit), `k` was put at most once and never
///    deleted, single-deleted, merged or covered by a range delete.
pub fn validate(ops: &[Op]) -> Result<(), Invalid> {
    let mut batches = BTreeSet::new();
    let mut snaps = BTreeSet::new();
    let mut iters: BTreeMap<IterId, Option<SnapshotId>> = BTreeMap::new();
    let mut created = BTreeSet::new();
    let mut armed = false;
    for (index, op) in ops.iter().enumerate() {
        let fail = |message: String| Err(Invalid { index, message: format!("{message}: {op}") });
        let need = |ok: bool, what: &str| if ok { Ok(()) } else { fail(what.to_string()) };
        match op {
            Op::BatchNew { id } => {
                need(created.insert(id.to_string()), "id created twice")?;
                batches.insert(*id);
            }
            Op::BatchPut { id, .. } | Op::BatchDelete { id, .. } | Op::BatchMerge { id, .. } => {
                need(batches.contains(id), "batch not live")?
            }
            Op::BatchGet { id, snapshot, .. } | Op::BatchScan { id, snapshot, .. } => {
                need(batches.contains(id), "batch not live")?;
                need(snapshot.is_none_or(|s| snaps.contains(&s)), "snapshot not live")?;
            }
            Op::BatchDeleteRange { id, start, end } => {
                need(batches.contains(id), "batch not live")?;
                need(start <= end, "batch range delete with start > end")?;
            }
            Op::BatchCommit { id, .. } | Op::BatchAbort { id } => {
                need(batches.remove(id), "batch not live")?
            }
            Op::BatchIngest { ids } => {
                need(!ids.is_empty(), "batch.ingest of no batch")?;
                for id in ids {
                    need(batches.remove(id), "batch not live (or named twice)")?;
                }
            }
            Op::BatchClear { id } => {
                need(batches.contains(id), "batch not live")?;
                // A pending single_delete would vanish, and the single_delete rules count it
                // as written at commit.
                let holds_single_delete = ops[..index].iter().rev().take_while(|o| {
                    !matches!(o, Op::BatchNew { id: n } | Op::BatchClear { id: n } if n == id)
                }).any(|o| matches!(o, Op::BatchSingleDelete { id: b, .. } if b == id));
                need(!holds_single_delete, "batch.clear of a batch holding a single_delete")?;
            }
            Op::SnapshotNew { id } => {
                need(created.insert(id.to_string()), "id created twice")?;
                snaps.insert(*id);
            }
            Op::SnapshotGet { id, .. } => need(snaps.contains(id), "snapshot not live")?,
            Op::MultiGet { snapshot, keys } => {
                need(snapshot.is_none_or(|s| snaps.contains(&s)), "snapshot not live")?;
                need(!keys.is_empty(), "multi_get of no keys")?;
            }
            Op::SnapshotClose { id } => {
                need(
                    !iters.values().any(|s| *s == Some(*id)),
                    "snapshot closed under an iterator",
                )?;
                need(snaps.remove(id), "snapshot not live")?;
            }
            Op::IterNew { id, snapshot, lower, upper, batch } => {
                need(created.insert(id.to_string()), "id created twice")?;
                need(snapshot.is_none_or(|s| snaps.contains(&s)), "snapshot not live")?;
                need(batch.is_none_or(|b| batches.contains(&b)), "batch not live")?;
                need(ordered(lower, upper), "iterator bounds with lower > upper")?;
                iters.insert(*id, *snapshot);
            }
            Op::IterNewPrefix { id, snapshot, prefix } => {
                need(created.insert(id.to_string()), "id created twice")?;
                // The model's prefix ends at the first `@`: one holding `@` has no keys.
                need(!prefix.contains(&b'@'), "iterator prefix holding `@`")?;
                need(snapshot.is_none_or(|s| snaps.contains(&s)), "snapshot not live")?;
                iters.insert(*id, *snapshot);
            }
            Op::IterClone { id, from } => {
                need(created.insert(id.to_string()), "id created twice")?;
                let Some(snapshot) = iters.get(from).copied() else {
                    return fail("iterator not live".to_string());
                };
                iters.insert(*id, snapshot);
            }
            Op::IterRefresh { id } => {
                need(iters.contains_key(id), "iterator not live")?;
                iters.insert(*id, None);
            }
            Op::IterSetBounds { id, lower, upper } => {
                need(iters.contains_key(id), "iterator not live")?;
                need(ordered(lower, upper), "iterator bounds with lower > upper")?;
            }
            Op::IterFirst { id }
            | Op::IterLast { id }
            | Op::IterSeekGe { id, .. }
            | Op::IterSeekLt { id, .. }
            | Op::IterNext { id }
            | Op::IterPrev { id }
            | Op::IterNextPrefix { id }
            | Op::IterLimited { id, .. } => need(iters.contains_key(id), "iterator not live")?,
            Op::IterClose { id } => need(iters.remove(id).is_some(), "iterator not live")?,
            Op::SingleDelete { key, .. } => {
                if let Some(why) = single_delete_conflict(ops, index, index, key) {
                    return fail(why);
                }
            }
            Op::BatchSingleDelete { id, key } => {
                need(batches.contains(id), "batch not live")?;
                // Takes effect when its batch commits (or never).
                let effect = ops[index..]
                    .iter()
                    .position(|o| match o {
                        Op::BatchCommit { id: c, .. } | Op::BatchAbort { id: c } => c == id,
                        Op::BatchIngest { ids } => ids.contains(id),
                        Op::Restart | Op::Reconfigure | Op::Crash { .. } => true,
                        _ => false,
                    })
                    .map_or(ops.len(), |p| index + p);
                if let Some(why) = single_delete_conflict(ops, index, effect, key) {
                    return fail(why);
                }
            }
            _ => {}
        }
        let ends =
            matches!(op, Op::Restart | Op::Reconfigure | Op::Crash { at: CrashAt::Boundary, .. });
        if ends || armed {
            batches.clear();
            snaps.clear();
            iters.clear();
        }
        armed = matches!(op, Op::Crash { at: CrashAt::Within(_), .. });
    }
    Ok(())
}

fn ordered(lower: &Option<Vec<u8>>, upper: &Option<Vec<u8>>) -> bool {
    match (lower, upper) {
        (Some(l), Some(u)) => l <= u,
        _ => true,
    }
}

/// Why the single_delete of `key` at `at`, taking effect at `effect`, is invalid, if it is.
fn single_delete_conflict(ops: &[Op], at: usize, effect: usize, key: &[u8]) -> Option<String> {
    let mut puts = 0;
    for (j, op) in ops[..effect.min(ops.len())].iter().enumerate() {
        if j == at {
            continue;
        }
        let conflict = match op {
            Op::Put { key: k, .. } | Op::BatchPut { key: k, .. } => {
                puts += usize::from(k == key);
                puts > 1
            }
            Op::Delete { key: k, .. }
            | Op::SingleDelete { key: k, .. }
            | Op::Merge { key: k, .. }
            | Op::BatchDelete { key: k, .. }
            | Op::BatchSingleDelete { key: k, .. }
            | Op::BatchMerge { key: k, .. } => k == key,
            Op::DeleteRange { start, end, .. } | Op::BatchDeleteRange { start, end, .. } => {
                start.as_slice() <= key && key < end.as_slice()
            }
            _ => false,
        };
        if conflict {
            return Some(format!("invalid single_delete because of op {j} ({op})"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{parse, BatchId};

    fn check(body: &str) -> Result<(), Invalid> {
        validate(&parse(&format!("# tumbler ops v1\n{body}")).unwrap().ops)
    }

    #[test]
    fn accepts_valid_sequences() {
        check("put \"a\" \"1\"\nsingle_delete \"a\"\nput \"a\" \"2\"").unwrap();
        check(
            "batch.new b1\nbatch.put b1 \"a\" \"1\"\nbatch.single_delete b1 \"b\"\nbatch.commit b1",
        )
        .unwrap();
        check("snapshot.new s1\niter.new i1 s1 \"a\" \"a\"\niter.close i1\nsnapshot.close s1")
            .unwrap();
        check("delete_range \"z\" \"a\"\nsingle_delete \"b\"").unwrap();
        check("crash torn within 3\nflush\nbatch.new b2").unwrap();
    }

    #[test]
    fn rejects_dead_objects() {
        let cases = [
            ("batch.put b1 \"a\" \"1\"", 0, "batch not live"),
            ("batch.new b1\nbatch.commit b1\nbatch.abort b1", 2, "batch not live"),
            ("batch.new b1\nbatch.abort b1\nbatch.new b1", 2, "id created twice"),
            ("snapshot.new s1\nrestart\nsnapshot.get s1 \"a\"", 2, "snapshot not live"),
            ("iter.new i1 - - -\ncrash drop\niter.next i1", 2, "iterator not live"),
            ("iter.new i1 - - -\ncrash drop within 2\nflush\niter.next i1", 3, "not live"),
            ("snapshot.new s1\niter.new i1 s1 - -\nsnapshot.close s1", 2, "under an iterator"),
            ("iter.new i1 - \"b\" \"a\"", 0, "lower > upper"),
            ("batch.new b1\nbatch.delete_range b1 \"b\" \"a\"", 1, "start > end"),
            ("batch.new b1\nbatch.ingest b1 b1", 1, "named twice"),
            ("batch.new b1\nbatch.ingest b1\nbatch.commit b1", 2, "batch not live"),
        ];
        for (body, index, want) in cases {
            let e = check(body).unwrap_err();
            assert_eq!(e.index, index, "{body}");
            assert!(e.message.contains(want), "{body}: {e}");
        }
    }

    #[test]
    fn rejects_invalid_single_deletes() {
        for body in [
            "put \"a\" \"1\"\nput \"a\" \"2\"\nsingle_delete \"a\"",
            "put \"a\" \"1\"\ndelete \"a\"\nput \"a\" \"2\"\nsingle_delete \"a\"",
            "merge \"a\" \"1\"\nsingle_delete \"a\"",
            "delete_range \"a\" \"b\"\nput \"a@1\" \"1\"\nsingle_delete \"a@1\"",
            "single_delete \"a\"\nsingle_delete \"a\"",
            // Issued after the batched single_delete but committed before it.
            "put \"a\" \"1\"\nbatch.new b1\nbatch.single_delete b1 \"a\"\nput \"a\" \"2\"\nbatch.commit b1",
            "batch.new b1\nbatch.single_delete b1 \"a\"\ndelete \"a\"\nbatch.commit b1",
        ] {
            let e = check(body).unwrap_err();
            assert!(e.message.contains("invalid single_delete"), "{body}: {e}");
        }
        // An aborted batch's later writes never meet its single_delete... but are counted
        // for later ones (conservative).
        let ok = vec![
            Op::BatchNew { id: BatchId(1) },
            Op::BatchSingleDelete { id: BatchId(1), key: b"a".to_vec() },
            Op::BatchAbort { id: BatchId(1) },
            Op::Put { key: b"a".to_vec(), value: crate::ops::Value::Lit(vec![]), sync: false },
        ];
        validate(&ok).unwrap();
    }
}
