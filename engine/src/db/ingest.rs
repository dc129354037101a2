//! SST ingestion: [`SstWriter`] writes an external table of sorted user keys outside any
//! database, and [`Db::ingest`] adds such tables to a database in one atomic step.
//!
//! An external table stores every entry at seqnum 0 and at most one entry per user key; its
//! range deletions are stored as their union (disjoint, sorted). Ingesting assigns seqnums as
//! if the tables were one write batch: file by file in key order, first the file's deleted
//! ranges, then its point entries in key order, each the next seqnum. So a file's range
//! deletions never hide its own point entries, and an ingestion reads exactly like that batch.
//!
//! The steps (ARCHITECTURE.md's "Ingestion" gives every fsync in order):
//! 1. Open and check every file (comparator, seqnum 0, no two files overlapping).
//! 2. Hold writers off (`State::ingesting`) and flush every memtable. The flush is what lets
//!    the manifest's last seqnum jump past the ingested seqnums: WAL replay skips every batch
//!    at or below it, so no unflushed write may sit below the ingestion.
//! 3. Without the lock, rewrite each file into new tables of this database, the seqnums
//!    stamped in, in this database's table format; each table synced, then the directory.
//!    (A copy, not a hard link: the stored seqnums are the ones reads compare, with no
//!    per-file override in the read path.)
//! 4. Under the lock, place each file's tables in the lowest level where neither that level
//!    nor any above it overlaps them, and log one edit adding them all with the new last
//!    seqnum. That edit is the commit point: a crash before it leaves orphans the next open
//!    removes; after it, every ingested entry is durable.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use super::{Db, DbInner, State};
use crate::batch::check_entry_limits;
use crate::env::{File, Fs};
use crate::error::{Error, Result};
use crate::iter::InternalIterator;
use crate::key::{self, InternalComparator, Kind, RangeTombstone};
use crate::options::Options;
use crate::sstable::{Table, TableWriter};
use crate::sync::{Arc, MutexGuard};
use crate::version::edit::VersionEdit;
use crate::version::{FileMetadata, Version, NUM_LEVELS};

/// Writes an external table for [`Db::ingest`]: point entries in strictly increasing key
/// order (by `opts.comparator`), and range deletions in any order.
///
/// ```
/// use cobble::{Db, MemFs, Options, ReadOptions, SstWriter};
/// # fn main() -> cobble::Result<()> {
/// let opts = Options { fs: std::sync::Arc::new(MemFs::new()), ..Options::default() };
/// let mut w = SstWriter::create(&opts, "/load.sst")?;
/// w.put("apple", "1")?;
/// w.put("pear", "2")?;
/// w.finish()?;
/// let db = Db::open(opts, "/db")?;
/// db.ingest(&["/load.sst"])?;
/// assert_eq!(db.get(&ReadOptions::default(), b"pear")?, Some(b"2".to_vec()));
/// db.close()
/// # }
/// ```
#[derive(Debug)]
pub struct SstWriter {
    fs: Arc<dyn Fs>,
    path: PathBuf,
    file: Arc<dyn File>,
    writer: TableWriter,
    cmp: InternalComparator,
    last_key: Option<Vec<u8>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
    points: u64,
}

/// What [`SstWriter::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalTable {
    pub path: PathBuf,
    pub file_size: u64,
    /// Point entries (puts, deletes and merges).
    pub points: u64,
    /// Disjoint deleted ranges: the union of the `delete_range` calls.
    pub range_deletions: u64,
}

impl SstWriter {
    /// Creates (truncating) the file at `path` on `opts.fs`, written with `opts`' table
    /// options and comparator; the database that ingests it must use the same comparator.
    pub fn create(opts: &Options, path: impl AsRef<Path>) -> Result<SstWriter> {
        let path = path.as_ref().to_path_buf();
        let file = opts.fs.create(&path)?;
        Ok(SstWriter {
            fs: opts.fs.clone(),
            writer: TableWriter::new(file.clone(), opts),
            file,
            path,
            cmp: InternalComparator::new(opts.comparator.clone()),
            last_key: None,
            ranges: Vec::new(),
            points: 0,
        })
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.add(key.as_ref(), Kind::Set, value.as_ref())
    }

    /// Deletes `key` (every version older than the ingestion).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        self.add(key.as_ref(), Kind::Delete, &[])
    }

    /// Merges `operand` into `key`'s value with the database's merge operator.
    pub fn merge(&mut self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> Result<()> {
        self.add(key.as_ref(), Kind::Merge, operand.as_ref())
    }

    /// Deletes `[start, end)` as of the ingestion; the file's own point entries stay (they
    /// take later seqnums). `start == end` deletes nothing; `start > end` is `InvalidArgument`.
    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> Result<()> {
        let (start, end) = (start.as_ref(), end.as_ref());
        check_entry_limits(Kind::RangeDelete, start, end).map_err(Error::InvalidArgument)?;
        match self.cmp.compare_user(start, end) {
            Ordering::Greater => {
                Err(Error::InvalidArgument("delete_range: start is after end".to_string()))
            }
            Ordering::Equal => Ok(()),
            Ordering::Less => {
                self.ranges.push((start.to_vec(), end.to_vec()));
                Ok(())
            }
        }
    }

    fn add(&mut self, user_key: &[u8], kind: Kind, value: &[u8]) -> Result<()> {
        check_entry_limits(kind, user_key, value).map_err(Error::InvalidArgument)?;
        if let Some(last) = &self.last_key {
            if self.cmp.compare_user(last, user_key) != Ordering::Less {
                return Err(Error::InvalidArgument(format!(
                    "SstWriter: key {:?} does not follow {:?} (keys must strictly increase)",
                    user_key.escape_ascii().to_string(),
                    last.escape_ascii().to_string()
                )));
            }
        }
        self.writer.add(&key::encode(user_key, 0, kind), value)?;
        self.last_key = Some(user_key.to_vec());
        self.points += 1;
        Ok(())
    }

    /// Writes the deleted ranges (their union), the index and footer, and syncs the file.
    /// A table with no entry at all is `InvalidArgument` (and its file is removed).
    pub fn finish(mut self) -> Result<ExternalTable> {
        let ranges = union(std::mem::take(&mut self.ranges), &self.cmp);
        if self.points == 0 && ranges.is_empty() {
            drop(self.writer);
            drop(self.file);
            let _ = self.fs.remove(&self.path);
            return Err(Error::InvalidArgument(format!(
                "SstWriter: {} holds no entry",
                self.path.display()
            )));
        }
        for (start, end) in &ranges {
            let t = RangeTombstone { start: start.clone(), end: end.clone(), seq: 0 };
            self.writer.add_range_tombstone(&t)?;
        }
        let info = self.writer.finish()?;
        self.file.sync()?;
        Ok(ExternalTable {
            path: self.path,
            file_size: info.file_size,
            points: self.points,
            range_deletions: ranges.len() as u64,
        })
    }
}

/// The union of `[start, end)` ranges as disjoint ranges sorted by start; ranges that
/// overlap or touch become one.
fn union(mut ranges: Vec<(Vec<u8>, Vec<u8>)>, cmp: &InternalComparator) -> Vec<(Vec<u8>, Vec<u8>)> {
    ranges.sort_by(|a, b| cmp.compare_user(&a.0, &b.0));
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if cmp.compare_user(&start, &last.1) != Ordering::Greater => {
                if cmp.compare_user(&end, &last.1) == Ordering::Greater {
                    last.1 = end;
                }
            }
            _ => out.push((start, end)),
        }
    }
    out
}

/// An external table opened for ingestion, with its user-key range.
struct External {
    path: PathBuf,
    table: Arc<Table>,
    smallest: Vec<u8>,
    /// The largest user key, and whether the table holds it (not when a range deletion
    /// ends the table there).
    largest: Vec<u8>,
    largest_inclusive: bool,
}

impl External {
    fn open(db: &DbInner, path: &Path) -> Result<External> {
        let file = db.fs.open(path)?;
        let table = Table::open(file, 0, &db.opts).map_err(|e| match e {
            Error::InvalidArgument(m) => {
                Error::InvalidArgument(format!("ingest {}: {m}", path.display()))
            }
            e => e,
        })?;
        let props = table.properties();
        let invalid =
            |why: String| Error::InvalidArgument(format!("ingest {}: {why}", path.display()));
        if props.num_entries + props.num_range_deletions == 0 {
            return Err(invalid("the table is empty".to_string()));
        }
        if props.largest_seq != 0 {
            return Err(invalid(format!(
                "not an external table (it holds seqnum {}): write it with SstWriter",
                props.largest_seq
            )));
        }
        if props.num_merges > 0 && props.merge_operator != db.opts.merge_operator.name() {
            return Err(invalid(format!(
                "its merges were written for merge operator {:?}, the database uses {:?}",
                props.merge_operator,
                db.opts.merge_operator.name()
            )));
        }
        let smallest = key::user_key(&props.smallest).to_vec();
        let largest = key::user_key(&props.largest).to_vec();
        let largest_inclusive = key::trailer_of(&props.largest)
            != key::trailer(key::SEQNUM_MAX, Kind::RangeDelete as u8);
        Ok(External { path: path.to_path_buf(), table, smallest, largest, largest_inclusive })
    }

    /// Seqnums the file takes: one per deleted range and one per point entry.
    fn seqnums(&self) -> u64 {
        let p = self.table.properties();
        p.num_range_deletions + p.num_entries
    }
}

/// Clears `State::ingesting` however the ingestion ends (a panic included), waking the
/// writers held off.
struct HoldingWriters<'a>(&'a DbInner);

impl Drop for HoldingWriters<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.ingesting = false;
        self.0.wake_all();
    }
}

impl Db {
    /// Adds the external tables at `paths` (written by [`SstWriter`], on this database's
    /// filesystem) atomically: after a crash either all of them are in the database or none.
    /// They read as one write batch applied now: each file's deleted ranges, then its point
    /// entries. The files themselves are only read. On success every earlier write is durable
    /// too (the memtables are flushed first).
    ///
    /// `InvalidArgument` when a file was not written by `SstWriter` for this comparator, is
    /// empty, or overlaps another of `paths`; `Poisoned` or `Closed` as writes are.
    pub fn ingest<P: AsRef<Path>>(&self, paths: &[P]) -> Result<()> {
        let inner = &*self.inner;
        let mut files = paths
            .iter()
            .map(|p| External::open(inner, p.as_ref()))
            .collect::<Result<Vec<External>>>()?;
        if files.is_empty() {
            return Ok(());
        }
        let cmp = &inner.cmp;
        files.sort_by(|a, b| cmp.compare_user(&a.smallest, &b.smallest));
        for pair in files.windows(2) {
            let order = cmp.compare_user(&pair[0].largest, &pair[1].smallest);
            if order.is_gt() || (order.is_eq() && pair[0].largest_inclusive) {
                return Err(Error::InvalidArgument(format!(
                    "ingest: {} and {} overlap",
                    pair[0].path.display(),
                    pair[1].path.display()
                )));
            }
        }

        let mut state = inner.lock();
        DbInner::check_writable(&state)?;
        while state.ingesting {
            state = inner.wait(state);
            DbInner::check_writable(&state)?;
        }
        state.ingesting = true;
        let _holding = HoldingWriters(inner);
        // A write group that took its seqnums before `ingesting` was set publishes first.
        state = inner.wait_for_wal(state);
        DbInner::check_writable(&state)?;
        if !state.mem.mem.is_empty() {
            state = inner.switch_memtable(state, inner.opts.memtable_size)?;
        }
        while !state.imms.is_empty() {
            state = inner.help_or_wait(state)?;
        }
        let first_seq = state.last_seq + 1;
        drop(state);

        let mut written: Vec<Vec<FileMetadata>> = Vec::with_capacity(files.len());
        let mut seq = first_seq;
        for f in &files {
            match inner.stamp_external(f, seq) {
                Ok(tables) => written.push(tables),
                Err(e) => {
                    for t in written.iter().flatten() {
                        inner.discard_output(t.num);
                    }
                    return Err(e);
                }
            }
            seq += f.seqnums();
        }
        let last_seq = seq - 1;

        let mut state = inner.lock();
        // A running compaction may write a table spanning its inputs' whole range, overlapping
        // a level the version shows free: place only once none runs.
        while !state.compacting.is_empty() && !state.closed && state.poison.is_none() {
            state = inner.wait(state);
        }
        let result = inner.install_ingested(&mut state, &written, first_seq, last_seq);
        drop(state);
        if result.is_err() {
            // A poisoned database deletes nothing (the edit may be durable); the next open
            // removes the tables if it is not.
            for t in written.iter().flatten() {
                inner.discard_output(t.num);
            }
        }
        result
    }
}

impl DbInner {
    /// Step 3: writes external table `f` into new tables with seqnums from `first_seq`.
    fn stamp_external(&self, f: &External, first_seq: u64) -> Result<Vec<FileMetadata>> {
        let location = || format!("ingest {}", f.path.display());
        let mut seq = first_seq;
        let mut tombstones = Vec::with_capacity(f.table.range_tombstones().len());
        for t in f.table.range_tombstones() {
            if t.seq != 0 {
                return Err(Error::corruption("range deletion not at seqnum 0", location()));
            }
            tombstones.push(RangeTombstone { start: t.start.clone(), end: t.end.clone(), seq });
            seq += 1;
        }
        let points = f.table.properties().num_entries;
        let (tables, _) = self.write_tables_from(tombstones, |add| {
            let mut it = f.table.iter();
            it.first()?;
            let mut stamped = Vec::new();
            let mut last: Option<Vec<u8>> = None;
            let mut n = 0u64;
            while it.valid() {
                let k = key::parse(it.key()).expect("table iterators check their keys");
                let ordered =
                    last.as_deref().is_none_or(|l| self.cmp.compare_user(l, k.user_key).is_lt());
                if k.seq != 0
                    || !ordered
                    || !matches!(k.kind, Kind::Set | Kind::Delete | Kind::Merge)
                {
                    return Err(Error::corruption(
                        format!("entry {k:?} of an external table (seqnum 0, one per key)"),
                        location(),
                    ));
                }
                stamped.clear();
                key::append(&mut stamped, k.user_key, seq + n, k.kind as u8);
                add(&stamped, it.value())?;
                last = Some(k.user_key.to_vec());
                n += 1;
                it.next()?;
            }
            if n != points {
                return Err(Error::corruption(
                    format!("{n} entries, the properties say {points}"),
                    location(),
                ));
            }
            Ok(())
        })?;
        Ok(tables)
    }

    /// Step 4: places the tables and logs the edit; the seqnums become visible.
    fn install_ingested(
        &self,
        state: &mut MutexGuard<'_, State>,
        written: &[Vec<FileMetadata>],
        first_seq: u64,
        last_seq: u64,
    ) -> Result<()> {
        if state.closed {
            return Err(Error::Closed);
        }
        Self::check_not_poisoned(state)?;
        assert_eq!(state.last_seq + 1, first_seq, "writers were held off during the ingestion");
        let mut edit = VersionEdit { last_seq: Some(last_seq), ..VersionEdit::default() };
        for tables in written.iter().filter(|t| !t.is_empty()) {
            let lo = tables[0].smallest_user();
            let hi = tables[tables.len() - 1].largest_user();
            let level = self.ingest_level(&state.version, lo, hi);
            for t in tables {
                edit.added.push((level, t.clone()));
            }
        }
        self.log_and_apply(state, edit)?;
        for t in written.iter().flatten() {
            assert!(state.pending_outputs.remove(&t.num), "an ingested table was pending");
        }
        state.last_seq = last_seq;
        self.publish(state);
        state.stats.ingested_files += written.len() as u64;
        self.wake_all();
        Ok(())
    }

    /// The lowest level where neither it nor any level above holds a table overlapping
    /// `[lo, hi]`: L0 when L0 overlaps. Called with no compaction running: every table is in
    /// the version, and later compactions see the ingested ones.
    fn ingest_level(&self, version: &Version, lo: &[u8], hi: &[u8]) -> usize {
        let mut level = 0;
        for l in 0..NUM_LEVELS {
            if version.levels[l].iter().any(|f| f.overlaps(&self.cmp, Some(lo), Some(hi))) {
                break;
            }
            level = l;
        }
        level
    }
}
