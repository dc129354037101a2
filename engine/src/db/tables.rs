//! `TableSet`: opens SSTables through the table cache and the block cache, and the
//! `LevelIter` that walks one sorted level file by file, opening tables lazily.

use crate::sync::Arc;
use std::cmp::Ordering;
use std::fmt;
use std::path::PathBuf;

use crate::cache::Cache;
use crate::error::Result;
use crate::filename;
use crate::iter::InternalIterator;
use crate::key::InternalComparator;
use crate::options::Options;
use crate::sstable::{Table, TableIter};
use crate::table_cache::TableCache;
use crate::version::FileMetadata;

/// Every open table of one database.
pub(crate) struct TableSet {
    pub opts: Options,
    pub dir: PathBuf,
    pub cache: Arc<Cache>,
    pub cache_id: u64,
    tables: TableCache<Table>,
}

impl fmt::Debug for TableSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableSet").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl TableSet {
    pub fn new(opts: Options, dir: PathBuf, cache: Arc<Cache>) -> TableSet {
        let cache_id = cache.new_id();
        let tables = TableCache::new(opts.max_open_files);
        TableSet { opts, dir, cache, cache_id, tables }
    }

    /// The reader of table `num`, opened if needed.
    pub fn get(&self, num: u64) -> Result<Arc<Table>> {
        self.tables.get_or_open(num, || {
            let file = self.opts.fs.open(&filename::table(&self.dir, num))?;
            Table::open_with_cache(file, num, &self.opts, Some((self.cache.clone(), self.cache_id)))
        })
    }

    /// Number of table readers open.
    pub fn open_tables(&self) -> usize {
        self.tables.len()
    }

    /// The tables with an open reader.
    pub fn open_table_nums(&self) -> Vec<u64> {
        self.tables.files_by_recency()
    }

    /// Forgets a deleted table.
    pub fn evict(&self, num: u64) {
        self.tables.evict(num);
        self.cache.evict_file(self.cache_id, num);
    }
}

/// Iterates the files of one level (sorted, non-overlapping) as one sequence.
pub(crate) struct LevelIter {
    files: Vec<Arc<FileMetadata>>,
    tables: Arc<TableSet>,
    cmp: InternalComparator,
    index: usize,
    cur: Option<TableIter>,
    /// Each table is read by `Table::sequential_iter` (read-ahead, no cache fill).
    sequential: bool,
}

impl LevelIter {
    pub fn new(
        files: Vec<Arc<FileMetadata>>,
        tables: Arc<TableSet>,
        cmp: InternalComparator,
    ) -> LevelIter {
        LevelIter { files, tables, cmp, index: 0, cur: None, sequential: false }
    }

    /// A level iterator for a compaction: see `Table::sequential_iter`.
    pub fn sequential(
        files: Vec<Arc<FileMetadata>>,
        tables: Arc<TableSet>,
        cmp: InternalComparator,
    ) -> LevelIter {
        LevelIter { sequential: true, ..LevelIter::new(files, tables, cmp) }
    }

    fn open(&mut self, index: usize) -> Result<&mut TableIter> {
        self.index = index;
        let table = self.tables.get(self.files[index].num)?;
        let iter = if self.sequential { table.sequential_iter() } else { table.iter() };
        Ok(self.cur.insert(iter))
    }

    /// Moves forward from file `index` until a file yields an entry.
    fn settle_forward(&mut self, mut index: usize) -> Result<()> {
        while index < self.files.len() {
            self.open(index)?.first()?;
            if self.valid() {
                return Ok(());
            }
            index += 1;
        }
        self.cur = None;
        Ok(())
    }

    /// Moves backward from file `index` (inclusive) until a file yields an entry.
    fn settle_backward(&mut self, index: Option<usize>) -> Result<()> {
        let Some(mut index) = index else {
            self.cur = None;
            return Ok(());
        };
        loop {
            self.open(index)?.last()?;
            if self.valid() {
                return Ok(());
            }
            if index == 0 {
                self.cur = None;
                return Ok(());
            }
            index -= 1;
        }
    }
}

impl InternalIterator for LevelIter {
    fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
        let index =
            self.files.partition_point(|f| self.cmp.compare(&f.largest, target) == Ordering::Less);
        if index >= self.files.len() {
            self.cur = None;
            return Ok(());
        }
        self.open(index)?.seek_ge(target)?;
        if self.valid() {
            return Ok(());
        }
        self.settle_forward(index + 1)
    }

    fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
        let count =
            self.files.partition_point(|f| self.cmp.compare(&f.smallest, target) == Ordering::Less);
        if count == 0 {
            self.cur = None;
            return Ok(());
        }
        let index = count - 1;
        self.open(index)?.seek_lt(target)?;
        if self.valid() {
            return Ok(());
        }
        self.settle_backward(index.checked_sub(1))
    }

    fn first(&mut self) -> Result<()> {
        self.settle_forward(0)
    }

    fn last(&mut self) -> Result<()> {
        self.settle_backward(self.files.len().checked_sub(1))
    }

    fn next(&mut self) -> Result<()> {
        let cur = self.cur.as_mut().expect("next on an invalid level iterator");
        cur.next()?;
        if cur.valid() {
            return Ok(());
        }
        self.settle_forward(self.index + 1)
    }

    fn prev(&mut self) -> Result<()> {
        let cur = self.cur.as_mut().expect("prev on an invalid level iterator");
        cur.prev()?;
        if cur.valid() {
            return Ok(());
        }
        self.settle_backward(self.index.checked_sub(1))
    }

    fn valid(&self) -> bool {
        self.cur.as_ref().is_some_and(|c| c.valid())
    }

    fn key(&self) -> &[u8] {
        self.cur.as_ref().expect("key on an invalid level iterator").key()
    }

    fn value(&self) -> &[u8] {
        self.cur.as_ref().expect("value on an invalid level iterator").value()
    }
}
