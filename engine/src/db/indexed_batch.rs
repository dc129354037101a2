//! Indexed batches: a [`WriteBatch`] that can be read before it is committed, merged with the
//! database (RocksDB's `WriteBatchWithIndex` with `GetFromBatchAndDB` and
//! `NewIteratorWithBase`; Pebble's indexed batches).
//!
//! The batch keeps, next to its records, a sorted index of its point writes and a list of its
//! range deletes, each tagged with its position in the batch (1 for the first write). A read
//! takes the database's view at `ro.snapshot` (or now), seqnum `s`, and gives the batch's
//! writes the seqnums they would get if committed right after it: `s + position`. It then
//! reads at `s + count` with the batch as one more source, the newest, and every source of
//! the database capped at `s` ([`SeqCap`]): entries and tombstones written after the view
//! stay hidden even though their seqnums are below the read's. Merges, deletes, single
//! deletes and range deletes of the batch therefore resolve exactly as they will once
//! committed, in one full merge with the database's operands (never a merge of a merged
//! value).
//!
//! Invariants: the index holds exactly the batch's writes (every mutation goes through both);
//! an iterator reads the batch as it was when the iterator was made (it shares a frozen copy
//! of the index, copied on the next write to the batch); the batch's seqnums exist only in
//! reads: committing goes through [`Db::write`] as for any batch.

use std::cmp::Ordering;
use std::ops::RangeBounds;

use super::read::{IterSpec, TombstoneLayer};
use super::{Cursor, Db, Range, ReadOptions};
use crate::batch::WriteBatch;
use crate::error::Result;
use crate::iter::{InternalIterator, PinnedValue, PointLookup, TombstoneSet, Unread, VecIterator};
use crate::key::{self, InternalComparator, Kind, RangeTombstone};
use crate::sync::Arc;

/// A batch that can be read before it is committed. Build it with [`Db::indexed_batch`] (it
/// orders keys with the database's comparator), read it with [`IndexedBatch::get`] and
/// [`IndexedBatch::iter`], commit it with `db.write(batch.into_batch(), &wo)`.
///
/// ```
/// use cobble::{Db, MemFs, Options, ReadOptions, WriteOptions};
/// use std::sync::Arc;
///
/// let db = Db::open(Options { fs: Arc::new(MemFs::new()), ..Options::default() }, "/db")?;
/// db.put("a", "1", &WriteOptions::default())?;
/// let mut batch = db.indexed_batch();
/// batch.put("b", "2");
/// batch.delete("a");
/// let ro = ReadOptions::default();
/// assert_eq!(batch.get(&db, &ro, "a")?, None);
/// assert_eq!(batch.get(&db, &ro, "b")?.as_deref(), Some(&b"2"[..]));
/// assert_eq!(db.get(&ro, "b")?, None); // not committed yet
/// db.write(batch.into_batch(), &WriteOptions::default())?;
/// assert_eq!(db.get(&ro, "b")?.as_deref(), Some(&b"2"[..]));
/// # Ok::<(), cobble::Error>(())
/// ```
#[derive(Clone)]
pub struct IndexedBatch {
    batch: WriteBatch,
    index: Arc<BatchIndex>,
}

impl std::fmt::Debug for IndexedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexedBatch").field("batch", &self.batch).finish_non_exhaustive()
    }
}

/// One point write of the batch.
#[derive(Clone)]
struct Point {
    key: Vec<u8>,
    /// 1 for the batch's first write.
    position: u32,
    kind: Kind,
    value: Vec<u8>,
}

/// The batch's writes, sorted for reads.
#[derive(Clone)]
pub(super) struct BatchIndex {
    cmp: InternalComparator,
    /// Sorted by key (the database's comparator), then newest (largest position) first: the
    /// order of their internal keys once given seqnums.
    points: Vec<Point>,
    /// `(start, end, position)` of each range delete.
    ranges: Vec<(Vec<u8>, Vec<u8>, u32)>,
    /// Writes so far (points and ranges).
    count: u32,
}

impl BatchIndex {
    fn add(&mut self, kind: Kind, key: &[u8], value: &[u8]) {
        self.count += 1;
        let position = self.count;
        if kind == Kind::RangeDelete {
            self.ranges.push((key.to_vec(), value.to_vec(), position));
            return;
        }
        // Before every older write of the key, after every smaller key.
        let at = self.key_run(key).start;
        let point = Point { key: key.to_vec(), position, kind, value: value.to_vec() };
        self.points.insert(at, point);
    }

    /// `points` (a sorted run of the index) as internal entries, each at `base` plus its
    /// position.
    fn entries(&self, points: &[Point], base: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        points
            .iter()
            .map(|p| (key::encode(&p.key, base + u64::from(p.position), p.kind), p.value.clone()))
            .collect()
    }

    /// Where `key`'s writes lie in `points` (empty, at its place, when it has none).
    fn key_run(&self, key: &[u8]) -> std::ops::Range<usize> {
        let from = self.points.partition_point(|p| self.cmp.compare_user(&p.key, key).is_lt());
        let len = self.points[from..]
            .iter()
            .take_while(|p| self.cmp.compare_user(&p.key, key) == Ordering::Equal)
            .count();
        from..from + len
    }

    /// The seqnum a read over the batch and a view at `base` reads at.
    fn read_seq(&self, base: u64) -> u64 {
        base + u64::from(self.count)
    }

    /// Lays the batch over an iterator's database `sources` and tombstone `layers`, read as
    /// of the view at `base`: the batch becomes the newest source, every database source and
    /// tombstone layer is capped at `base`, then the batch's range deletes join as a layer of
    /// their own. Returns the seqnum the iterator reads at.
    pub(super) fn lay_over(
        &self,
        sources: &mut Vec<Box<dyn InternalIterator>>,
        layers: &mut Vec<TombstoneLayer>,
        base: u64,
    ) -> u64 {
        let batch = VecIterator::new(self.entries(&self.points, base), self.cmp.clone());
        let capped = sources.drain(..).map(|s| Box::new(SeqCap::new(s, base)) as _);
        *sources =
            std::iter::once(Box::new(batch) as Box<dyn InternalIterator>).chain(capped).collect();
        for (_, visible) in layers.iter_mut() {
            *visible = (*visible).min(base);
        }
        let own: Vec<RangeTombstone> = self
            .ranges
            .iter()
            .map(|(start, end, position)| RangeTombstone {
                start: start.clone(),
                end: end.clone(),
                seq: base + u64::from(*position),
            })
            .collect();
        let read_seq = self.read_seq(base);
        layers.push((Arc::new(TombstoneSet::new(&own, &self.cmp)), read_seq));
        read_seq
    }

    /// `key`'s versions in the batch, read into a lookup at seqnums above `base`.
    fn lookup<'k>(&self, key: &'k [u8], base: u64) -> Result<PointLookup<'k>> {
        let mut lookup = PointLookup::new(key, self.read_seq(base));
        for (start, end, position) in &self.ranges {
            lookup.add_tombstone(&self.cmp, start, end, base + u64::from(*position));
        }
        let run = self.entries(&self.points[self.key_run(key)], base);
        lookup.read_source(&mut VecIterator::new(run, self.cmp.clone()), &self.cmp)?;
        Ok(lookup)
    }
}

impl Db {
    /// An empty [`IndexedBatch`] ordering keys as this database does.
    pub fn indexed_batch(&self) -> IndexedBatch {
        let index = BatchIndex {
            cmp: self.inner.cmp.clone(),
            points: Vec::new(),
            ranges: Vec::new(),
            count: 0,
        };
        IndexedBatch { batch: WriteBatch::new(), index: Arc::new(index) }
    }
}

impl IndexedBatch {
    fn add(&mut self, kind: Kind, key: &[u8], value: &[u8]) {
        // A copy only when an iterator still reads the index as it was.
        Arc::make_mut(&mut self.index).add(kind, key, value);
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.batch.put(key, value);
        self.add(Kind::Set, key, value);
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.batch.delete(key.as_ref());
        self.add(Kind::Delete, key.as_ref(), &[]);
    }

    /// Deletes the single older `put` of `key` (see [`WriteBatch::single_delete`]).
    pub fn single_delete(&mut self, key: impl AsRef<[u8]>) {
        self.batch.single_delete(key.as_ref());
        self.add(Kind::SingleDelete, key.as_ref(), &[]);
    }

    /// Adds a merge operand for `key`.
    pub fn merge(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.batch.merge(key, value);
        self.add(Kind::Merge, key, value);
    }

    /// Deletes every key in `[start, end)` (the database refuses `start > end` at commit).
    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) {
        let (start, end) = (start.as_ref(), end.as_ref());
        self.batch.delete_range(start, end);
        self.add(Kind::RangeDelete, start, end);
    }

    /// Appends `other`'s writes after this batch's, as if made here one by one.
    pub fn append(&mut self, other: &WriteBatch) {
        self.batch.append(other);
        let index = Arc::make_mut(&mut self.index);
        for op in other.iter() {
            index.add(op.kind, op.key, op.value);
        }
    }

    /// Forgets every write; the batch stays usable.
    pub fn clear(&mut self) {
        self.batch.clear();
        let index = Arc::make_mut(&mut self.index);
        index.points.clear();
        index.ranges.clear();
        index.count = 0;
    }

    /// The number of writes.
    pub fn count(&self) -> u32 {
        self.batch.count()
    }

    /// True when the batch holds no write.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// The batch's records, to commit (`db.write(batch.batch().clone(), ..)`) or inspect.
    pub fn batch(&self) -> &WriteBatch {
        &self.batch
    }

    /// The batch's records, to commit with [`Db::write`].
    pub fn into_batch(self) -> WriteBatch {
        self.batch
    }

    /// `key`'s value with this batch applied over `db` at `ro.snapshot` (or now), as it would
    /// read right after committing the batch (were nothing else written meanwhile).
    pub fn get(&self, db: &Db, ro: &ReadOptions, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        Ok(self.get_pinned(db, ro, key)?.map(PinnedValue::into_vec))
    }

    /// As [`IndexedBatch::get`], handing out the value where it lies in the database when
    /// the batch leaves the key alone (see [`Db::get_pinned`]).
    pub fn get_pinned(
        &self,
        db: &Db,
        ro: &ReadOptions,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<PinnedValue>> {
        let key = key.as_ref();
        let inner = &db.inner;
        let view = inner.view(ro.snapshot.as_ref())?;
        let merge_op = inner.opts.merge_operator.as_ref();
        let batch = self.index.lookup(key, view.seq)?;
        // Everything the database holds for the view lies at or below its seqnum.
        if batch.decided(Unread::AtMost(view.seq)) {
            return Ok(batch.resolve(merge_op).map(PinnedValue::owned));
        }
        let below = inner.lookup_in(&view, key)?;
        if batch.is_empty() {
            return Ok(below.resolve_pinned(merge_op));
        }
        Ok(below.resolve_beneath(&batch, merge_op).map(PinnedValue::owned))
    }

    /// An iterator over this batch applied over `db` at `ro.snapshot` (or now), with `ro`'s
    /// bounds and prefix: every move of a [`Cursor`]. It reads the batch as it is now; later
    /// writes to the batch do not reach it ([`Cursor::refresh`] moves the database's part to
    /// the latest state and keeps this batch part).
    pub fn iter(&self, db: &Db, ro: &ReadOptions) -> Result<Cursor> {
        let view = db.inner.view(ro.snapshot.as_ref())?;
        let mut spec = IterSpec::from_read_options(ro);
        spec.batch = Some(self.index.clone());
        db.inner.iterator(view, spec)
    }
}

impl IndexedBatch {
    /// The keys within `range` with this batch applied over `db`, as [`Db::range`] gives
    /// them (a double-ended iterator at one view).
    pub fn range<K: AsRef<[u8]>>(
        &self,
        db: &Db,
        ro: &ReadOptions,
        range: impl RangeBounds<K>,
    ) -> Result<Range> {
        let (start, end) = super::range::owned_bounds(&range);
        db.range_of(ro, start, end, None, Some(self))
    }
}

/// A database source capped at a view's seqnum: entries above it (written after the view)
/// are skipped, so a read at a larger seqnum (a batch's) still sees the database as of the
/// view.
struct SeqCap {
    inner: Box<dyn InternalIterator>,
    cap: u64,
}

impl SeqCap {
    fn new(inner: Box<dyn InternalIterator>, cap: u64) -> SeqCap {
        SeqCap { inner, cap }
    }

    fn hidden(&self) -> bool {
        self.inner.valid() && key::trailer_of(self.inner.key()) >> 8 > self.cap
    }

    fn skip_forward(&mut self) -> Result<()> {
        while self.hidden() {
            self.inner.next()?;
        }
        Ok(())
    }

    fn skip_backward(&mut self) -> Result<()> {
        while self.hidden() {
            self.inner.prev()?;
        }
        Ok(())
    }
}

impl InternalIterator for SeqCap {
    fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
        self.inner.seek_ge(target)?;
        self.skip_forward()
    }
    fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
        self.inner.seek_lt(target)?;
        self.skip_backward()
    }
    fn first(&mut self) -> Result<()> {
        self.inner.first()?;
        self.skip_forward()
    }
    fn last(&mut self) -> Result<()> {
        self.inner.last()?;
        self.skip_backward()
    }
    fn next(&mut self) -> Result<()> {
        self.inner.next()?;
        self.skip_forward()
    }
    fn prev(&mut self) -> Result<()> {
        self.inner.prev()?;
        self.skip_backward()
    }
    fn valid(&self) -> bool {
        self.inner.valid()
    }
    fn key(&self) -> &[u8] {
        self.inner.key()
    }
    fn value(&self) -> &[u8] {
        self.inner.value()
    }
    fn value_pin(&self) -> Option<PinnedValue> {
        self.inner.value_pin()
    }
}
