//! Combining merge operands in compactions: a run of merge operands of one key that every
//! snapshot sees alike becomes one operand, through the operator's `partial_merge`, so later
//! reads (and compactions) handle one operand instead of the whole stack. RocksDB's
//! `MergeHelper` does the same within a snapshot stripe.
//!
//! Invariants: only operands at or below the smallest snapshot join a run (no reader can tell
//! them apart, and no snapshot sits between them); only operands adjacent in the kept stream
//! join (anything else of the key between them, a value or a deletion, ends the run); the
//! combined operand carries the newest operand's internal key, so it sorts where the run
//! began. No range tombstone can lie between two operands of a run: the compaction drops
//! every entry below a tombstone every snapshot sees, and a tombstone above the smallest
//! snapshot is newer than every operand of a run. When the operator declines (`None`), the
//! operands are written as they came.

use std::cmp::Ordering;

use crate::error::Result;
use crate::key::{self, InternalComparator, Kind};
use crate::merge::MergeOperator;

/// Where a run's entries go: the output tables' `add`.
pub(super) type Sink<'s> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 's;

/// Buffers the current run of combinable operands (newest first) between kept entries.
pub(super) struct OperandRuns<'a> {
    operator: &'a dyn MergeOperator,
    cmp: &'a InternalComparator,
    smallest_snapshot: u64,
    /// (internal key, operand), newest first, all of one user key.
    run: Vec<(Vec<u8>, Vec<u8>)>,
    /// Operands folded into another (a run of n combined counts n - 1).
    pub(super) combined: u64,
}

impl<'a> OperandRuns<'a> {
    pub(super) fn new(
        operator: &'a dyn MergeOperator,
        cmp: &'a InternalComparator,
        smallest_snapshot: u64,
    ) -> OperandRuns<'a> {
        OperandRuns { operator, cmp, smallest_snapshot, run: Vec::new(), combined: 0 }
    }

    /// Takes the next kept entry (in internal-key order): it joins the run, or ends it and
    /// goes to `sink` (after the run) unless it starts the next one.
    pub(super) fn push(&mut self, ikey: &[u8], value: &[u8], sink: &mut Sink<'_>) -> Result<()> {
        let p = key::parse(ikey).expect("tables hold valid internal keys");
        let combinable = p.kind == Kind::Merge && p.seq <= self.smallest_snapshot;
        if let Some((first, _)) = self.run.first() {
            let first_user = key::user_key(first);
            if combinable && self.cmp.compare_user(first_user, p.user_key) == Ordering::Equal {
                self.run.push((ikey.to_vec(), value.to_vec()));
                return Ok(());
            }
            self.finish(sink)?;
        }
        if combinable {
            self.run.push((ikey.to_vec(), value.to_vec()));
            return Ok(());
        }
        sink(ikey, value)
    }

    /// Writes the run buffered, combined when it has several operands and the operator can.
    pub(super) fn finish(&mut self, sink: &mut Sink<'_>) -> Result<()> {
        if self.run.len() > 1 {
            let user_key = key::user_key(&self.run[0].0);
            let oldest_first: Vec<&[u8]> = self.run.iter().rev().map(|(_, v)| &v[..]).collect();
            if let Some(v) = self.operator.partial_merge(user_key, &oldest_first) {
                sink(&self.run[0].0, &v)?;
                self.combined += self.run.len() as u64 - 1;
                self.run.clear();
                return Ok(());
            }
        }
        for (k, v) in self.run.drain(..) {
            sink(&k, &v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comparator::Bytewise;
    use crate::merge::StringAppend;
    use crate::sync::Arc;

    fn ikey(user: &str, seq: u64, kind: Kind) -> Vec<u8> {
        key::encode(user.as_bytes(), seq, kind)
    }

    /// Feeds `entries` and returns what reached the sink, as (user key, seq, kind, value).
    fn run(
        op: &dyn MergeOperator,
        smallest_snapshot: u64,
        entries: &[(Vec<u8>, &str)],
    ) -> (Vec<(String, u64, Kind, String)>, u64) {
        let cmp = InternalComparator::new(Arc::new(Bytewise));
        let mut runs = OperandRuns::new(op, &cmp, smallest_snapshot);
        let mut out = Vec::new();
        let mut sink = |k: &[u8], v: &[u8]| {
            let p = key::parse(k).unwrap();
            out.push((
                String::from_utf8_lossy(p.user_key).into_owned(),
                p.seq,
                p.kind,
                String::from_utf8_lossy(v).into_owned(),
            ));
            Ok(())
        };
        for (k, v) in entries {
            runs.push(k, v.as_bytes(), &mut sink).unwrap();
        }
        runs.finish(&mut sink).unwrap();
        let combined = runs.combined;
        (out, combined)
    }

    #[test]
    fn a_stack_every_snapshot_sees_becomes_one_operand_oldest_first() {
        let op = StringAppend::default();
        let entries = [
            (ikey("a", 9, Kind::Merge), "c"),
            (ikey("a", 7, Kind::Merge), "b"),
            (ikey("a", 3, Kind::Merge), "a"),
            (ikey("a", 2, Kind::Set), "base"),
            (ikey("b", 5, Kind::Merge), "x"),
        ];
        let (out, combined) = run(&op, 100, &entries);
        assert_eq!(
            out,
            vec![
                ("a".into(), 9, Kind::Merge, "a,b,c".into()),
                ("a".into(), 2, Kind::Set, "base".into()),
                ("b".into(), 5, Kind::Merge, "x".into()),
            ]
        );
        assert_eq!(combined, 2);
    }

    #[test]
    fn operands_a_snapshot_can_tell_apart_stay_apart() {
        let op = StringAppend::default();
        let entries = [
            (ikey("a", 9, Kind::Merge), "c"),
            (ikey("a", 7, Kind::Merge), "b"),
            (ikey("a", 3, Kind::Merge), "a"),
        ];
        // A snapshot at 7 sees b and a but not c: only the two below it combine.
        let (out, combined) = run(&op, 7, &entries);
        assert_eq!(
            out,
            vec![
                ("a".into(), 9, Kind::Merge, "c".into()),
                ("a".into(), 7, Kind::Merge, "a,b".into()),
            ]
        );
        assert_eq!(combined, 1);
    }

    #[test]
    fn a_value_or_deletion_between_operands_ends_the_run() {
        let op = StringAppend::default();
        let entries = [
            (ikey("a", 9, Kind::Merge), "c"),
            (ikey("a", 8, Kind::Delete), ""),
            (ikey("a", 7, Kind::Merge), "b"),
            (ikey("a", 6, Kind::Merge), "a"),
        ];
        let (out, combined) = run(&op, 100, &entries);
        assert_eq!(
            out,
            vec![
                ("a".into(), 9, Kind::Merge, "c".into()),
                ("a".into(), 8, Kind::Delete, "".into()),
                ("a".into(), 7, Kind::Merge, "a,b".into()),
            ]
        );
        assert_eq!(combined, 1);
    }

    /// An operator without `partial_merge` (as a non-associative one must be) keeps every
    /// operand as it came.
    #[test]
    fn an_operator_that_declines_keeps_its_operands() {
        #[derive(Debug)]
        struct Declines;
        impl MergeOperator for Declines {
            fn name(&self) -> &str {
                "declines"
            }
            fn full_merge(&self, _: &[u8], _: Option<&[u8]>, ops: &[&[u8]]) -> Vec<u8> {
                ops.concat()
            }
        }
        let entries = [(ikey("a", 9, Kind::Merge), "c"), (ikey("a", 7, Kind::Merge), "b")];
        let (out, combined) = run(&Declines, 100, &entries);
        assert_eq!(out.len(), 2);
        assert_eq!(combined, 0);
    }
}
