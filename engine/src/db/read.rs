//! Reads: `get`, `multi_get` and iterators (with their clone and refresh).
//!
//! Every read takes one [`View`] (the memtables and the version at one moment, and the seqnum
//! it reads at), so the keys of one `multi_get` and every step of an iterator see one state
//! however the database moves on. Point reads consult the whole-key bloom filter; an iterator
//! pinned to a prefix (`ReadOptions::prefix`) consults the prefix bloom filter and skips the
//! tables it rules out.

use crate::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use crate::sync::{Arc, PoisonError, Weak};
use std::fmt;

use super::indexed_batch::BatchIndex;
use super::tables::LevelIter;
use super::{purge, Db, DbInner, ReadOptions, ReadState, Snapshot};
use crate::comparator::{Bytewise, Comparator};
use crate::error::{Error, Result};
use crate::iter::TombstoneSet;
use crate::iter::{bytewise_successor, DbIterator, Fragments, InternalIterator};
use crate::iter::{MergingIterator, PinnedValue, PointLookup, PrefixSpec, Unread};
use crate::version::{self, Version, NUM_LEVELS};

/// A source's range tombstones and the seqnum a read sees them at.
pub(super) type TombstoneLayer = (Arc<TombstoneSet>, u64);

/// What one read sees: the memtables and version captured together, and its seqnum.
#[derive(Clone)]
pub(super) struct View {
    rs: ReadState,
    pub(super) seq: u64,
    /// Declared last so that it drops after the version `rs` pins.
    _purge: purge::PurgeOnDrop,
}

/// What an iterator is asked for beyond its view: bounds and a pinned prefix.
pub(super) struct IterSpec {
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    prefix: Option<Vec<u8>>,
    /// An indexed batch read over the view (`indexed_batch.rs`).
    pub(super) batch: Option<Arc<BatchIndex>>,
}

impl IterSpec {
    pub(super) fn from_read_options(ro: &ReadOptions) -> IterSpec {
        IterSpec {
            lower: ro.lower_bound.clone(),
            upper: ro.upper_bound.clone(),
            prefix: ro.prefix.clone(),
            batch: None,
        }
    }
}

impl DbInner {
    /// The view now, at `snapshot`'s seqnum if given (it must belong to this database).
    pub(super) fn view(self: &Arc<Self>, snapshot: Option<&Snapshot>) -> Result<View> {
        let (rs, last_seq) = {
            let published = self.published.lock().unwrap_or_else(PoisonError::into_inner);
            (published.rs.clone(), published.last_seq)
        };
        let Some(rs) = rs else { return Err(Error::Closed) };
        let seq = match snapshot {
            Some(s) if !std::ptr::eq(s.inner.db.as_ptr(), Arc::as_ptr(self)) => {
                return Err(Error::InvalidArgument("snapshot belongs to another database".into()))
            }
            Some(s) => s.inner.seq,
            None => last_seq,
        };
        let purge = purge::PurgeOnDrop::new(self, &rs.version);
        Ok(View { rs, seq, _purge: purge })
    }

    /// The memtables of `view` as sources, and their range tombstones as layers read at the
    /// view's seqnum.
    fn memtable_sources(view: &View) -> (Vec<Box<dyn InternalIterator>>, Vec<TombstoneLayer>) {
        let mut sources: Vec<Box<dyn InternalIterator>> = Vec::new();
        let mut layers = Vec::new();
        for m in &view.rs.mems {
            layers.extend(m.range_del_set().map(|set| (set, view.seq)));
            sources.push(Box::new(m.iter()));
        }
        (sources, layers)
    }

    /// The range tombstones of every table of `version`, fragmented once per version: the
    /// last version asked for is cached, so iterators over an unchanged tree fragment nothing.
    fn version_range_dels(&self, version: &Arc<Version>) -> Result<Arc<TombstoneSet>> {
        let lock = || self.version_range_dels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached, set)) = &*lock() {
            if std::ptr::eq(cached.as_ptr(), Arc::as_ptr(version)) {
                return Ok(set.clone());
            }
        }
        let mut tombstones = Vec::new();
        for (level, files) in version.levels.iter().enumerate() {
            // Every L0 table is asked (they are opened for the iterator anyway); below, the
            // manifest says which tables hold tombstones.
            for f in files.iter().filter(|f| level == 0 || f.has_range_dels) {
                tombstones.extend(self.tables.get(f.num)?.range_tombstones().iter().cloned());
            }
        }
        let set = Arc::new(TombstoneSet::new(&tombstones, &self.cmp));
        *lock() = Some((Arc::downgrade(version), set.clone()));
        Ok(set)
    }

    /// Reads `key` in `view`, newest source first (memtables, the L0 tables holding it, then
    /// one table per level), and stops at the first source after which nothing unread can
    /// change the answer ([`PointLookup::decided`]). A table's range tombstones count whether
    /// or not its bloom filter passes; its entries are read only when it does.
    ///
    /// Memtables and L0 tables bound what they hold by their largest seqnum; the levels below
    /// by the level invariant (for one key, a level holds only what is older than every level
    /// above it and every memtable).
    fn get_in(&self, view: &View, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.lookup_in(view, key)?.resolve(self.opts.merge_operator.as_ref()))
    }

    /// Reads `key`'s versions in `view`, source by source, until they decide it.
    pub(super) fn lookup_in<'k>(&self, view: &View, key: &'k [u8]) -> Result<PointLookup<'k>> {
        let version = &view.rs.version;
        // The largest seqnum among the memtables and L0 tables not yet read, for each point
        // of the walk; L0 is newest first (largest seqnum first).
        let l0 = version.l0_files_for_key(&self.cmp, key);
        let l0_bound = |from: usize| l0[from..].iter().map(|f| f.largest_seq).max();
        let mut lookup = PointLookup::new(key, view.seq);
        let mems = &view.rs.mems;
        for (i, m) in mems.iter().enumerate() {
            if let Some(set) = m.range_del_set() {
                lookup.add_tombstones(&set);
            }
            lookup.read_source(&mut m.iter(), &self.cmp)?;
            let unread = mems[i + 1..].iter().map(|m| m.max_seq()).max().max(l0_bound(0));
            if lookup.decided(unread.map_or(Unread::Older, Unread::AtMost)) {
                return Ok(lookup);
            }
        }
        for (i, f) in l0.iter().enumerate() {
            self.read_table(&mut lookup, f.num, key)?;
            if lookup.decided(l0_bound(i + 1).map_or(Unread::Older, Unread::AtMost)) {
                return Ok(lookup);
            }
        }
        for level in 1..NUM_LEVELS {
            let Some(f) = version.file_for_key(&self.cmp, level, key) else { continue };
            self.read_table(&mut lookup, f.num, key)?;
            if lookup.decided(Unread::Older) {
                break;
            }
        }
        Ok(lookup)
    }

    /// Feeds table `num` to `lookup`: its tombstones, and its entries when the bloom filter
    /// admits `key`.
    fn read_table(&self, lookup: &mut PointLookup<'_>, num: u64, key: &[u8]) -> Result<()> {
        let table = self.tables.get(num)?;
        lookup.add_tombstones(table.range_del_set());
        if table.may_contain(key) {
            lookup.read_source(&mut table.iter(), &self.cmp)?;
        }
        Ok(())
    }

    /// What the iterators know of prefixes; `InvalidArgument` when `pinned` is asked for
    /// without an extractor.
    fn prefix_spec(&self, pinned: Option<Vec<u8>>) -> Result<Option<PrefixSpec>> {
        match (&self.opts.prefix_extractor, pinned) {
            (None, Some(_)) => Err(Error::InvalidArgument(
                "ReadOptions::prefix needs Options::prefix_extractor".into(),
            )),
            (None, None) => Ok(None),
            (Some(extractor), pinned) => Ok(Some(PrefixSpec {
                extractor: extractor.clone(),
                bytewise: self.opts.comparator.name() == Bytewise.name(),
                pinned,
            })),
        }
    }

    /// An iterator over `view`. With a pinned prefix, a table joins only when its prefix
    /// bloom filter admits the prefix (and, under the bytewise comparator, when its key range
    /// meets the prefix's); range tombstones are gathered from every table regardless.
    pub(super) fn iterator(self: &Arc<Self>, view: View, spec: IterSpec) -> Result<Cursor> {
        let prefix = self.prefix_spec(spec.prefix)?;
        let pinned = prefix.as_ref().and_then(|p| p.pinned.as_deref());
        let range = pinned.filter(|_| prefix.as_ref().is_some_and(|p| p.bytewise));
        let range_end = range.and_then(bytewise_successor);
        let (mut sources, mut layers) = Self::memtable_sources(&view);
        layers.push((self.version_range_dels(&view.rs.version)?, view.seq));
        // L0 by sorted runs (`l0_runs`), one source each as a deeper level is: the version's
        // runs, or with a pinned prefix, the runs of the tables its filters admit.
        let runs = match pinned {
            None => view.rs.version.l0_runs().to_vec(),
            Some(p) => {
                let mut admitted = Vec::new();
                for f in &view.rs.version.levels[0] {
                    if self.tables.get(f.num)?.may_contain_prefix(p) {
                        admitted.push(f.clone());
                    } else {
                        self.prefix_filter_skips.fetch_add(1, AtomicOrdering::Relaxed);
                    }
                }
                version::l0_runs(&self.cmp, &admitted)
            }
        };
        for run in runs {
            sources.push(Box::new(LevelIter::new(run, self.tables.clone(), self.cmp.clone())));
        }
        for level in 1..NUM_LEVELS {
            let files = &view.rs.version.levels[level];
            let mut kept = Vec::with_capacity(files.len());
            for f in files {
                if range.is_some() && !f.overlaps(&self.cmp, range, range_end.as_deref()) {
                    continue;
                }
                if let Some(p) = pinned {
                    if !self.tables.get(f.num)?.may_contain_prefix(p) {
                        self.prefix_filter_skips.fetch_add(1, AtomicOrdering::Relaxed);
                        continue;
                    }
                }
                kept.push(f.clone());
            }
            if kept.is_empty() {
                continue;
            }
            sources.push(Box::new(LevelIter::new(kept, self.tables.clone(), self.cmp.clone())));
        }
        let read_seq = match &spec.batch {
            Some(batch) => batch.lay_over(&mut sources, &mut layers, view.seq),
            None => view.seq,
        };
        let fragments = Fragments::layered(layers, &self.cmp);
        let merged = MergingIterator::new(sources, self.cmp.clone());
        let mut it = DbIterator::new(
            Box::new(merged),
            fragments,
            read_seq,
            self.opts.merge_operator.clone(),
            self.cmp.clone(),
            spec.lower,
            spec.upper,
        );
        if let Some(p) = prefix {
            it = it.with_prefix(p);
        }
        self.live_iterators.fetch_add(1, AtomicOrdering::SeqCst);
        let batch = spec.batch;
        Ok(Cursor { it, view, batch, db: Arc::downgrade(self), live: self.live_iterators.clone() })
    }
}

impl Db {
    /// Reads `key` at `ro.snapshot` (or now).
    pub fn get(&self, ro: &ReadOptions, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let view = self.inner.view(ro.snapshot.as_ref())?;
        self.inner.get_in(&view, key.as_ref())
    }

    /// Reads `key` as [`Db::get`] does, handing out the value where it lies (a cached block,
    /// a memtable) instead of copying it, when it is one version's own; a merge's result is
    /// computed as usual ([`PinnedValue::is_pinned`] tells which). The value holds its block
    /// or memtable until dropped: drop it before closing the database.
    pub fn get_pinned(
        &self,
        ro: &ReadOptions,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<PinnedValue>> {
        let view = self.inner.view(ro.snapshot.as_ref())?;
        let lookup = self.inner.lookup_in(&view, key.as_ref())?;
        Ok(lookup.resolve_pinned(self.inner.opts.merge_operator.as_ref()))
    }

    /// Approximately how many bytes the tables hold for keys in `[start, end)` (`None`:
    /// unbounded), memtables not counted: a table wholly inside counts its file size, one
    /// partly inside the data blocks between the two keys (block granularity, from its index).
    /// Unbounded on both sides it is the size of every table exactly. It grows with the range.
    pub fn estimate_disk_usage(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<u64> {
        let held = purge::HeldVersion::new(&self.inner, self.inner.lock().version.clone());
        let version = &held.version;
        let cmp = &self.inner.cmp;
        let mut total = 0;
        for f in version.levels.iter().flatten() {
            if !f.overlaps(cmp, start, end) {
                continue;
            }
            if f.within(cmp, start, end) {
                total += f.size;
                continue;
            }
            let table = self.inner.tables.get(f.num)?;
            let lo = match start {
                Some(s) => table.approximate_offset_of(s)?,
                None => 0,
            };
            let hi = match end {
                Some(e) => table.approximate_offset_of(e)?,
                None => table.properties().data_size,
            };
            total += hi.saturating_sub(lo);
        }
        Ok(total)
    }

    /// Reads every key of `keys` at one view (`ro.snapshot`, or now): the values are those of
    /// one moment even while writes go on. The first error fails the whole call.
    pub fn multi_get<K: AsRef<[u8]>>(
        &self,
        ro: &ReadOptions,
        keys: &[K],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let view = self.inner.view(ro.snapshot.as_ref())?;
        keys.iter().map(|k| self.inner.get_in(&view, k.as_ref())).collect()
    }

    /// An iterator over the database at `ro.snapshot` (or now), within `ro`'s bounds, pinned
    /// to `ro.prefix` if given.
    pub fn iter(&self, ro: &ReadOptions) -> Result<Cursor> {
        let view = self.inner.view(ro.snapshot.as_ref())?;
        self.inner.iterator(view, IterSpec::from_read_options(ro))
    }
}

/// The user-facing iterator, a cursor: positioned by seeks, moved both ways, each move
/// fallible (so not a `std::iter::Iterator`; [`Db::range`] and [`Db::prefix`] are those).
/// Its moves are [`DbIterator`]'s. It keeps the memtables and tables it reads alive until
/// dropped.
pub struct Cursor {
    it: DbIterator,
    /// After `it`, whose sources read what the view pins.
    view: View,
    /// The indexed batch read over the view, as it was when the cursor was made.
    batch: Option<Arc<BatchIndex>>,
    db: Weak<DbInner>,
    live: Arc<AtomicUsize>,
}

impl Cursor {
    /// The seqnum the iterator reads at.
    pub fn seqnum(&self) -> u64 {
        self.view.seq
    }

    /// A second iterator over the same view (same seqnum, memtables and tables), with the
    /// same bounds and prefix, unpositioned. `Closed` once the database is closed.
    pub fn try_clone(&self) -> Result<Cursor> {
        let db = self.open_db()?;
        db.iterator(self.view.clone(), self.spec())
    }

    /// Moves the iterator to the latest state (a snapshot it was opened at no longer
    /// applies), keeping its bounds and prefix; it is unpositioned afterwards. On an error
    /// the iterator keeps its old view.
    pub fn refresh(&mut self) -> Result<()> {
        let db = self.open_db()?;
        let view = db.view(None)?;
        *self = db.iterator(view, self.spec())?;
        Ok(())
    }

    fn open_db(&self) -> Result<Arc<DbInner>> {
        let db = self.db.upgrade().ok_or(Error::Closed)?;
        if db.lock().closed {
            return Err(Error::Closed);
        }
        Ok(db)
    }

    fn spec(&self) -> IterSpec {
        let (lower, upper) = self.it.bounds();
        IterSpec {
            lower: lower.map(<[u8]>::to_vec),
            upper: upper.map(<[u8]>::to_vec),
            prefix: self.it.pinned_prefix().map(<[u8]>::to_vec),
            batch: self.batch.clone(),
        }
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cursor").field("seq", &self.view.seq).finish_non_exhaustive()
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.live.fetch_sub(1, AtomicOrdering::SeqCst);
    }
}

impl std::ops::Deref for Cursor {
    type Target = DbIterator;
    fn deref(&self) -> &DbIterator {
        &self.it
    }
}

impl std::ops::DerefMut for Cursor {
    fn deref_mut(&mut self) -> &mut DbIterator {
        &mut self.it
    }
}
