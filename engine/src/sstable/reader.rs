//! `Table`: an open SSTable (footer, meta blocks and index read and checked at open) and
//! `TableIter`, its bidirectional iterator across data blocks and a one- or two-level index.

use crate::sync::Arc;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use super::block::{Block, BlockBuf, BlockIter, BlockLocation, KeyOrder};
use super::filter::{Filter, KEY_SEED, PREFIX_SEED};
use super::format::{
    get_varint32, masked_crc, BlockHandle, Footer, IndexKind, BLOCK_TRAILER_LEN, COMPRESSION_LZ4,
    COMPRESSION_NONE, FOOTER_LEN,
};
use super::properties::Properties;
use super::{META_FILTER, META_PROPERTIES, META_RANGE_DEL};
use crate::cache::Cache;
use crate::env::File;
use crate::error::{Error, Result};
use crate::iter::{InternalIterator, PinnedValue, TombstoneSet};
use crate::key::{self, InternalComparator, Kind, RangeTombstone};
use crate::options::Options;

/// An open, immutable SSTable. Shared by iterators through `Arc`.
pub struct Table {
    pub(super) file: Arc<dyn File>,
    file_num: u64,
    /// Where the footer starts: every block and its trailer must end at or before it.
    blocks_end: u64,
    cmp: InternalComparator,
    index: Block,
    index_kind: IndexKind,
    filter: Option<Filter>,
    /// True when the filter holds prefixes from the same extractor the reader uses.
    prefix_filter: bool,
    range_tombstones: Vec<RangeTombstone>,
    /// `range_tombstones` fragmented once, for point reads.
    range_del_set: TombstoneSet,
    properties: Properties,
    cache: Option<(Arc<Cache>, u64)>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("file_num", &self.file_num)
            .field("index_kind", &self.index_kind)
            .field("properties", &self.properties)
            .finish_non_exhaustive()
    }
}

fn location(file_num: u64, offset: u64) -> BlockLocation {
    BlockLocation::Table { file_num, offset }
}

/// Checks where block `h` ends: at or before `blocks_end`. Returns the length of its stored
/// bytes and trailer.
fn stored_len(file_num: u64, blocks_end: u64, h: BlockHandle) -> Result<usize> {
    let loc = || location(file_num, h.offset);
    let end = h
        .offset
        .checked_add(h.size)
        .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN as u64))
        .filter(|&e| e <= blocks_end)
        .ok_or_else(|| Error::corruption(format!("block handle {h:?} past the data"), loc()))?;
    usize::try_from(end - h.offset).map_err(|_| Error::corruption("huge block", loc()))
}

/// Reads one block's stored bytes and trailer, checks the CRC and decompresses.
pub(super) fn read_raw_block(
    file: &dyn File,
    file_num: u64,
    blocks_end: u64,
    h: BlockHandle,
) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; stored_len(file_num, blocks_end, h)?];
    file.read_at(h.offset, &mut buf)?;
    match unframe_block(&buf, file_num, h.offset)? {
        // Stored raw: the contents are the buffer's first bytes.
        Cow::Borrowed(contents) => {
            let n = contents.len();
            buf.truncate(n);
            Ok(buf)
        }
        Cow::Owned(contents) => Ok(contents),
    }
}

/// The contents of a stored block (its bytes and trailer, as read from `offset`): the CRC
/// checked, then decompressed (`Owned`) or, stored raw, the stored bytes themselves.
fn unframe_block(stored: &[u8], file_num: u64, offset: u64) -> Result<Cow<'_, [u8]>> {
    let loc = || location(file_num, offset);
    let n = stored.len() - BLOCK_TRAILER_LEN;
    let kind = stored[n];
    let stored_crc = u32::from_le_bytes(stored[n + 1..].try_into().expect("4 bytes"));
    if masked_crc(&[&stored[..n + 1]]) != stored_crc {
        return Err(Error::corruption("block checksum mismatch", loc()));
    }
    match kind {
        COMPRESSION_NONE => Ok(Cow::Borrowed(&stored[..n])),
        COMPRESSION_LZ4 => {
            let bad = || Error::corruption("bad lz4 block", loc());
            let (ulen, used) = get_varint32(&stored[..n]).ok_or_else(bad)?;
            let input = &stored[used..n];
            // LZ4 cannot expand input by more than 255x: refuse to allocate beyond that.
            if ulen as usize > input.len().saturating_mul(255).saturating_add(16) {
                return Err(bad());
            }
            let mut out = vec![0u8; ulen as usize];
            match lz4_flex::block::decompress_into(input, &mut out) {
                Ok(m) if m == out.len() => Ok(Cow::Owned(out)),
                _ => Err(bad()),
            }
        }
        k => Err(Error::corruption(format!("unknown compression type {k}"), loc())),
    }
}

/// Bytes a sequential (compaction) table iterator reads ahead: one read for many blocks, as
/// RocksDB's `compaction_readahead_size` does.
const READAHEAD_SIZE: usize = 256 << 10;

/// A sequential reader's window of the file: `buf` holds the bytes from `offset`; a refill
/// reads at least `size` bytes.
#[derive(Debug)]
struct ReadAhead {
    offset: u64,
    buf: Vec<u8>,
    size: usize,
}

impl Table {
    /// Opens a table: reads and checks the footer, meta-index, properties, filter,
    /// range-deletion block and index. Bad bytes give `Error::Corruption`; a comparator
    /// other than the one the table was written with gives `Error::InvalidArgument`.
    pub fn open(file: Arc<dyn File>, file_num: u64, opts: &Options) -> Result<Arc<Table>> {
        Table::open_with_cache(file, file_num, opts, None)
    }

    /// Like [`Table::open`], reading data blocks and index partitions through `cache`
    /// (with the given cache id).
    pub fn open_with_cache(
        file: Arc<dyn File>,
        file_num: u64,
        opts: &Options,
        cache: Option<(Arc<Cache>, u64)>,
    ) -> Result<Arc<Table>> {
        let file_len = file.len()?;
        let floc = format!("table {file_num:06}");
        if file_len < FOOTER_LEN as u64 {
            return Err(Error::corruption(format!("file too short ({file_len} bytes)"), floc));
        }
        let blocks_end = file_len - FOOTER_LEN as u64;
        let mut fbuf = vec![0u8; FOOTER_LEN];
        file.read_at(blocks_end, &mut fbuf)?;
        let footer = Footer::decode(&fbuf, &floc)?;
        let read = |h: BlockHandle| -> Result<Block> {
            let buf = read_raw_block(&*file, file_num, blocks_end, h)?;
            Block::new(buf.into(), location(file_num, h.offset))
        };

        let metaindex = read(footer.metaindex)?;
        let (mut filter_h, mut props_h, mut rdel_h) = (None, None, None);
        let mut it = metaindex.iter(KeyOrder::Bytewise);
        it.first()?;
        while it.valid() {
            let h = BlockHandle::decode_exact(it.value(), &floc)?;
            let slot = match it.key() {
                META_FILTER => &mut filter_h,
                META_PROPERTIES => &mut props_h,
                META_RANGE_DEL => &mut rdel_h,
                other => {
                    let name = String::from_utf8_lossy(other);
                    return Err(Error::corruption(format!("unknown meta block {name:?}"), floc));
                }
            };
            *slot = Some(h);
            it.next()?;
        }

        let props_h =
            props_h.ok_or_else(|| Error::corruption("no properties block", floc.clone()))?;
        let properties =
            Properties::decode(&read(props_h)?, &location(file_num, props_h.offset).to_string())?;
        if properties.comparator != opts.comparator.name() {
            return Err(Error::InvalidArgument(format!(
                "table {file_num:06} was written with comparator {:?}, opened with {:?}",
                properties.comparator,
                opts.comparator.name()
            )));
        }
        let cmp = InternalComparator::new(opts.comparator.clone());

        let filter = match filter_h {
            Some(h) => {
                let buf = read_raw_block(&*file, file_num, blocks_end, h)?;
                Some(Filter::new(buf, &location(file_num, h.offset).to_string())?)
            }
            None => None,
        };
        let prefix_filter = filter.is_some()
            && !properties.prefix_extractor.is_empty()
            && opts.prefix_extractor.as_ref().map(|p| p.name())
                == Some(properties.prefix_extractor.as_str());

        let mut range_tombstones = Vec::new();
        if let Some(h) = rdel_h {
            let loc = location(file_num, h.offset);
            let block = read(h)?;
            let mut it = block.iter(KeyOrder::Internal(cmp.clone()));
            it.first()?;
            let mut prev: Option<Vec<u8>> = None;
            while it.valid() {
                let k = key::parse(it.key()).expect("block iterator checked the key");
                let ordered =
                    prev.as_ref().is_none_or(|p| cmp.compare(p, it.key()) == Ordering::Less);
                if k.kind != Kind::RangeDelete
                    || cmp.compare_user(k.user_key, it.value()) != Ordering::Less
                    || !ordered
                {
                    return Err(Error::corruption("bad range tombstone", loc));
                }
                range_tombstones.push(RangeTombstone {
                    start: k.user_key.to_vec(),
                    end: it.value().to_vec(),
                    seq: k.seq,
                });
                prev = Some(it.key().to_vec());
                it.next()?;
            }
        }
        if range_tombstones.len() as u64 != properties.num_range_deletions
            || (footer.index_kind == IndexKind::TwoLevel) != (properties.num_index_partitions > 0)
        {
            return Err(Error::corruption("properties disagree with the table", floc));
        }

        let index = read(footer.index)?;
        let range_del_set = TombstoneSet::new(&range_tombstones, &cmp);
        Ok(Arc::new(Table {
            file,
            file_num,
            blocks_end,
            cmp,
            index,
            index_kind: footer.index_kind,
            filter,
            prefix_filter,
            range_del_set,
            range_tombstones,
            properties,
            cache,
        }))
    }

    /// Reads a data block or an index partition. The one door to block bytes after open:
    /// the block cache (keyed by `(file_num, handle.offset)`) goes here.
    fn read_block(&self, handle: BlockHandle) -> Result<BlockBuf> {
        let Some((cache, id)) = &self.cache else {
            return read_raw_block(&*self.file, self.file_num, self.blocks_end, handle)
                .map(BlockBuf::from);
        };
        if let Some(h) = cache.get(*id, self.file_num, handle.offset) {
            return Ok(BlockBuf::Cached(h));
        }
        let bytes = read_raw_block(&*self.file, self.file_num, self.blocks_end, handle)?;
        let h = cache.insert(*id, self.file_num, handle.offset, bytes.into_boxed_slice());
        Ok(BlockBuf::Cached(h))
    }

    /// Reads a data block for a sequential reader from its read-ahead window, refilled with
    /// the next `READAHEAD_SIZE` bytes of the data blocks when the block is not wholly in it.
    /// The block cache is neither filled (a compaction reads each block once, and its blocks
    /// would evict those the readers use) nor consulted.
    ///
    /// Invariant: every byte read is checked. Data blocks lie end to end from offset 0 to
    /// `data_size`, a refill keeps the part of the block already in the window and reads on
    /// from where the window ended, and it never reads past the data blocks; so a reader that
    /// walks the whole table puts each byte it read under a block's CRC exactly once, and a
    /// bad read cannot land in bytes nobody checks.
    fn read_block_ahead(&self, h: BlockHandle, ra: &mut ReadAhead) -> Result<BlockBuf> {
        let len = stored_len(self.file_num, self.blocks_end, h)?;
        let block_end = h.offset + len as u64;
        let window_end = ra.offset + ra.buf.len() as u64;
        if h.offset < ra.offset || block_end > window_end {
            // The part of this block the window holds (none unless it starts inside it).
            let kept = if (ra.offset..=window_end).contains(&h.offset) {
                let from = (h.offset - ra.offset) as usize;
                ra.buf.copy_within(from.., 0);
                ra.buf.len() - from
            } else {
                0
            };
            let data_end = self.properties.data_size.min(self.blocks_end).max(block_end);
            let want = (len.max(ra.size) as u64).min(data_end - h.offset) as usize;
            ra.buf.resize(want, 0);
            ra.offset = h.offset;
            if let Err(e) = self.file.read_at(h.offset + kept as u64, &mut ra.buf[kept..]) {
                ra.buf.clear();
                return Err(e);
            }
        }
        let start = (h.offset - ra.offset) as usize;
        let stored = &ra.buf[start..start + len];
        Ok(BlockBuf::from(unframe_block(stored, self.file_num, h.offset)?.into_owned()))
    }

    /// An iterator over the table's point entries, unpositioned.
    pub fn iter(self: &Arc<Self>) -> TableIter {
        self.iter_with(None)
    }

    /// An iterator for reading the whole table in order, as a compaction does: it reads
    /// `READAHEAD_SIZE` bytes at a time and leaves the block cache alone
    /// (`read_block_ahead`).
    pub fn sequential_iter(self: &Arc<Self>) -> TableIter {
        self.sequential_iter_sized(READAHEAD_SIZE)
    }

    /// [`Table::sequential_iter`] reading at least `size` bytes at a time (tests use a few,
    /// so that blocks straddle windows).
    pub fn sequential_iter_sized(self: &Arc<Self>, size: usize) -> TableIter {
        self.iter_with(Some(ReadAhead { offset: 0, buf: Vec::new(), size }))
    }

    fn iter_with(self: &Arc<Self>, readahead: Option<ReadAhead>) -> TableIter {
        let order = KeyOrder::Internal(self.cmp.clone());
        let top = self.index.iter(order);
        let inner = match self.index_kind {
            IndexKind::SingleLevel => Levels::One(TwoLevel::new(self.clone(), top, readahead)),
            IndexKind::TwoLevel => Levels::Two(TwoLevel::new(
                self.clone(),
                TwoLevel::new(self.clone(), top, None),
                readahead,
            )),
        };
        TableIter { inner }
    }

    /// False only when no entry of `user_key` is in the table (true without a filter).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_contain(user_key, KEY_SEED))
    }

    /// False only when no key with this prefix is in the table. True without a filter or
    /// when the table's prefix extractor differs from the reader's.
    pub fn may_contain_prefix(&self, prefix: &[u8]) -> bool {
        match &self.filter {
            Some(f) if self.prefix_filter => f.may_contain(prefix, PREFIX_SEED),
            _ => true,
        }
    }

    /// Where in the file the data block that would hold `user_key` starts (the data size when
    /// the key is past every block): data blocks come first, in key order, so the difference
    /// of two such offsets approximates the bytes between the keys. Reads one index partition
    /// at most (through the block cache).
    pub fn approximate_offset_of(&self, user_key: &[u8]) -> Result<u64> {
        let target = key::encode(user_key, key::SEQNUM_MAX, Kind::RangeDelete);
        let order = KeyOrder::Internal(self.cmp.clone());
        let loc = format!("table {:06} index", self.file_num);
        let mut top = self.index.iter(order.clone());
        top.seek_ge(&target)?;
        if !top.valid() {
            return Ok(self.properties.data_size);
        }
        let h = BlockHandle::decode_exact(top.value(), &loc)?;
        if self.index_kind == IndexKind::SingleLevel {
            return Ok(h.offset);
        }
        let partition = Block::new(self.read_block(h)?, location(self.file_num, h.offset))?;
        let mut it = partition.into_cursor(order);
        it.seek_ge(&target)?;
        if !it.valid() {
            return Ok(self.properties.data_size);
        }
        Ok(BlockHandle::decode_exact(it.value(), &loc)?.offset)
    }

    /// The table's range tombstones fragmented, for point reads.
    pub fn range_del_set(&self) -> &TombstoneSet {
        &self.range_del_set
    }

    /// The table's range tombstones, sorted by (start, seq descending).
    pub fn range_tombstones(&self) -> &[RangeTombstone] {
        &self.range_tombstones
    }

    /// The table's properties.
    pub fn properties(&self) -> &Properties {
        &self.properties
    }

    /// The file number the table was opened as.
    pub fn file_num(&self) -> u64 {
        self.file_num
    }

    /// Handles of the index partitions (two-level) and, with their index keys, of the data
    /// blocks: for tests.
    #[cfg(test)]
    #[allow(clippy::type_complexity)] // A test-only view.
    pub(crate) fn layout(
        self: &Arc<Self>,
    ) -> Result<(Vec<BlockHandle>, Vec<(Vec<u8>, BlockHandle)>)> {
        let order = KeyOrder::Internal(self.cmp.clone());
        let mut parts = Vec::new();
        let mut data = Vec::new();
        let mut top = self.index.iter(order.clone());
        top.first()?;
        while top.valid() {
            let h = BlockHandle::decode_exact(top.value(), "test")?;
            if self.index_kind == IndexKind::TwoLevel {
                parts.push(h);
                let b = Block::new(self.read_block(h)?, "test")?;
                let mut it = b.iter(order.clone());
                it.first()?;
                while it.valid() {
                    data.push((it.key().to_vec(), BlockHandle::decode_exact(it.value(), "test")?));
                    it.next()?;
                }
            } else {
                data.push((top.key().to_vec(), h));
            }
            top.next()?;
        }
        Ok((parts, data))
    }
}

/// The positioning calls shared by a block iterator and a two-level iterator, so that an
/// index can itself be two-level.
trait Cursor: Send + fmt::Debug {
    fn seek_ge(&mut self, target: &[u8]) -> Result<()>;
    fn seek_lt(&mut self, target: &[u8]) -> Result<()>;
    fn first(&mut self) -> Result<()>;
    fn last(&mut self) -> Result<()>;
    fn next(&mut self) -> Result<()>;
    fn prev(&mut self) -> Result<()>;
    fn valid(&self) -> bool;
    fn key(&self) -> &[u8];
    fn value(&self) -> &[u8];
    fn value_pin(&self) -> Option<PinnedValue>;
}

impl Cursor for BlockIter {
    fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
        BlockIter::seek_ge(self, target)
    }
    fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
        BlockIter::seek_lt(self, target)
    }
    fn first(&mut self) -> Result<()> {
        BlockIter::first(self)
    }
    fn last(&mut self) -> Result<()> {
        BlockIter::last(self)
    }
    fn next(&mut self) -> Result<()> {
        BlockIter::next(self)
    }
    fn prev(&mut self) -> Result<()> {
        BlockIter::prev(self)
    }
    fn valid(&self) -> bool {
        BlockIter::valid(self)
    }
    fn key(&self) -> &[u8] {
        BlockIter::key(self)
    }
    fn value(&self) -> &[u8] {
        BlockIter::value(self)
    }
    fn value_pin(&self) -> Option<PinnedValue> {
        Some(BlockIter::value_pin(self))
    }
}

/// An index cursor whose values are block handles, and an iterator over the block the index
/// is on. Empty blocks are stepped over.
#[derive(Debug)]
struct TwoLevel<I> {
    table: Arc<Table>,
    index: I,
    /// The loaded block's offset and an iterator over it.
    data: Option<(u64, BlockIter)>,
    /// A sequential reader's window (`Table::sequential_iter`); `None` reads through the
    /// block cache.
    readahead: Option<ReadAhead>,
}

impl<I: Cursor> TwoLevel<I> {
    fn new(table: Arc<Table>, index: I, readahead: Option<ReadAhead>) -> TwoLevel<I> {
        TwoLevel { table, index, data: None, readahead }
    }

    /// Loads the block under the index cursor (keeping it when already loaded).
    fn load(&mut self) -> Result<()> {
        if !self.index.valid() {
            self.data = None;
            return Ok(());
        }
        let v = self.index.value();
        let h = match BlockHandle::decode_prefix(v) {
            Some((h, n)) if n == v.len() => h,
            _ => {
                let loc = format!("table {:06} index", self.table.file_num);
                return Err(Error::corruption("bad block handle in index", loc));
            }
        };
        if self.data.as_ref().is_some_and(|(off, _)| *off == h.offset) {
            return Ok(());
        }
        let buf = match &mut self.readahead {
            Some(ra) => self.table.read_block_ahead(h, ra)?,
            None => self.table.read_block(h)?,
        };
        let block = Block::new(buf, location(self.table.file_num, h.offset))?;
        self.data = Some((h.offset, block.into_cursor(KeyOrder::Internal(self.table.cmp.clone()))));
        Ok(())
    }

    fn data_mut(&mut self) -> Option<&mut BlockIter> {
        self.data.as_mut().map(|(_, d)| d)
    }

    fn skip_forward(&mut self) -> Result<()> {
        while self.data.as_ref().is_some_and(|(_, d)| !d.valid()) {
            self.index.next()?;
            self.load()?;
            if let Some(d) = self.data_mut() {
                d.first()?;
            }
        }
        Ok(())
    }

    fn skip_backward(&mut self) -> Result<()> {
        while self.data.as_ref().is_some_and(|(_, d)| !d.valid()) {
            self.index.prev()?;
            self.load()?;
            if let Some(d) = self.data_mut() {
                d.last()?;
            }
        }
        Ok(())
    }

    /// Runs a positioning step; on error the iterator becomes invalid.
    fn guard(&mut self, step: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let r = step(self);
        if r.is_err() {
            self.data = None;
        }
        r
    }
}

impl<I: Cursor> Cursor for TwoLevel<I> {
    fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
        self.guard(|s| {
            s.index.seek_ge(target)?;
            s.load()?;
            if let Some(d) = s.data_mut() {
                d.seek_ge(target)?;
            }
            s.skip_forward()
        })
    }

    fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
        self.guard(|s| {
            // The first block whose separator is >= target may still hold keys < target;
            // past every separator, all keys are < target.
            s.index.seek_ge(target)?;
            if !s.index.valid() {
                s.index.last()?;
            }
            s.load()?;
            if let Some(d) = s.data_mut() {
                d.seek_lt(target)?;
            }
            s.skip_backward()
        })
    }

    fn first(&mut self) -> Result<()> {
        self.guard(|s| {
            s.index.first()?;
            s.load()?;
            if let Some(d) = s.data_mut() {
                d.first()?;
            }
            s.skip_forward()
        })
    }

    fn last(&mut self) -> Result<()> {
        self.guard(|s| {
            s.index.last()?;
            s.load()?;
            if let Some(d) = s.data_mut() {
                d.last()?;
            }
            s.skip_backward()
        })
    }

    fn next(&mut self) -> Result<()> {
        assert!(self.valid(), "next on an invalid table iterator");
        self.guard(|s| {
            s.data_mut().expect("valid").next()?;
            s.skip_forward()
        })
    }

    fn prev(&mut self) -> Result<()> {
        assert!(self.valid(), "prev on an invalid table iterator");
        self.guard(|s| {
            s.data_mut().expect("valid").prev()?;
            s.skip_backward()
        })
    }

    fn valid(&self) -> bool {
        self.data.as_ref().is_some_and(|(_, d)| d.valid())
    }

    fn key(&self) -> &[u8] {
        self.data.as_ref().expect("key on an invalid iterator").1.key()
    }

    fn value(&self) -> &[u8] {
        self.data.as_ref().expect("value on an invalid iterator").1.value()
    }

    fn value_pin(&self) -> Option<PinnedValue> {
        Some(self.data.as_ref().expect("value on an invalid iterator").1.value_pin())
    }
}

/// A bidirectional iterator over a table's point entries.
#[derive(Debug)]
pub struct TableIter {
    inner: Levels,
}

/// The cursor over a table's index levels, held inline (opening a table iterator allocates
/// nothing; boxing the larger variant would allocate for every partitioned table read).
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "held inline in every table iterator; a box would allocate per read"
)]
enum Levels {
    One(TwoLevel<BlockIter>),
    Two(TwoLevel<TwoLevel<BlockIter>>),
}

impl TableIter {
    fn cursor(&self) -> &dyn Cursor {
        match &self.inner {
            Levels::One(c) => c,
            Levels::Two(c) => c,
        }
    }

    fn cursor_mut(&mut self) -> &mut dyn Cursor {
        match &mut self.inner {
            Levels::One(c) => c,
            Levels::Two(c) => c,
        }
    }
}

impl InternalIterator for TableIter {
    fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
        self.cursor_mut().seek_ge(target)
    }
    fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
        self.cursor_mut().seek_lt(target)
    }
    fn first(&mut self) -> Result<()> {
        self.cursor_mut().first()
    }
    fn last(&mut self) -> Result<()> {
        self.cursor_mut().last()
    }
    fn next(&mut self) -> Result<()> {
        self.cursor_mut().next()
    }
    fn prev(&mut self) -> Result<()> {
        self.cursor_mut().prev()
    }
    fn valid(&self) -> bool {
        self.cursor().valid()
    }
    fn key(&self) -> &[u8] {
        self.cursor().key()
    }
    fn value(&self) -> &[u8] {
        self.cursor().value()
    }
    fn value_pin(&self) -> Option<PinnedValue> {
        self.cursor().value_pin()
    }
}
