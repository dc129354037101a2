//! `TableWriter`: streams sorted internal keys into data blocks and, at `finish`, writes the
//! filter, range-deletion, properties, meta-index and index blocks and the footer.

use crate::sync::Arc;
use std::cmp::Ordering;

use super::block::BlockBuilder;
use super::filter::{FilterBuilder, KEY_SEED, PREFIX_SEED};
use super::format::{
    masked_crc, put_varint32, BlockHandle, Footer, IndexKind, BLOCK_TRAILER_LEN, COMPRESSION_LZ4,
    COMPRESSION_NONE,
};
use super::properties::Properties;
use super::{META_FILTER, META_PROPERTIES, META_RANGE_DEL};
use crate::env::File;
use crate::error::Result;
use crate::key::{self, InternalComparator, Kind, RangeTombstone, SEQNUM_MAX};
use crate::options::{Compression, Options, PrefixExtractor};

/// What `finish` reports about the table it wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub file_size: u64,
    /// Smallest internal key (range-deletion starts considered); empty for an empty table.
    pub smallest: Vec<u8>,
    /// Largest internal key (range-deletion end sentinels considered); empty when empty.
    pub largest: Vec<u8>,
    pub smallest_seq: u64,
    pub largest_seq: u64,
    pub properties: Properties,
}

/// Bytes of framed blocks a [`TableWriter`] gathers before appending them to its file (as
/// RocksDB's `WritableFileWriter` buffers): a few large writes rather than one per block.
const WRITE_BUFFER_SIZE: usize = 256 << 10;

/// Writes one SSTable through [`File::append`]. Does not sync: the caller does.
#[derive(Debug)]
pub struct TableWriter {
    file: Arc<dyn File>,
    cmp: InternalComparator,
    block_size: usize,
    index_block_size: usize,
    compression: Compression,
    prefix_extractor: Option<Arc<dyn PrefixExtractor>>,
    offset: u64,
    data_block: BlockBuilder,
    /// Index entries (separator key, handle) of the data blocks written so far.
    index_entries: Vec<(Vec<u8>, BlockHandle)>,
    index_entries_size: usize,
    /// Handle of the last data block when its index entry awaits the next key.
    pending_handle: Option<BlockHandle>,
    last_key: Vec<u8>,
    filter: Option<FilterBuilder>,
    last_prefix: Option<Vec<u8>>,
    range_dels: BlockBuilder,
    last_tombstone: Option<Vec<u8>>,
    props: Properties,
    /// Framed blocks not yet appended to the file: blocks go out `WRITE_BUFFER_SIZE` bytes at
    /// a time, not one small write each. The buffer is reused.
    pending: Vec<u8>,
}

impl TableWriter {
    /// A writer appending to `file` (expected empty) with the table options of `opts`.
    pub fn new(file: Arc<dyn File>, opts: &Options) -> TableWriter {
        let props = Properties {
            comparator: opts.comparator.name().to_string(),
            merge_operator: opts.merge_operator.name().to_string(),
            prefix_extractor: opts
                .prefix_extractor
                .as_ref()
                .map(|p| p.name().to_string())
                .unwrap_or_default(),
            compression: opts.compression,
            ..Properties::default()
        };
        TableWriter {
            file,
            cmp: InternalComparator::new(opts.comparator.clone()),
            block_size: opts.block_size.max(1),
            index_block_size: opts.index_block_size.max(1),
            compression: opts.compression,
            prefix_extractor: opts.prefix_extractor.clone(),
            offset: 0,
            data_block: BlockBuilder::new(opts.restart_interval),
            index_entries: Vec::new(),
            index_entries_size: 0,
            pending_handle: None,
            last_key: Vec::new(),
            filter: (opts.bloom_bits_per_key > 0)
                .then(|| FilterBuilder::new(opts.bloom_bits_per_key)),
            last_prefix: None,
            range_dels: BlockBuilder::new(1),
            last_tombstone: None,
            props,
            pending: Vec::new(),
        }
    }

    /// Adds a point entry. Internal keys must be strictly increasing (asserted).
    pub fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let parsed = key::parse(ikey).expect("TableWriter::add: not an internal key");
        assert_ne!(parsed.kind, Kind::RangeDelete, "range deletions go to add_range_tombstone");
        if self.props.num_entries > 0 {
            assert_eq!(
                self.cmp.compare(&self.last_key, ikey),
                Ordering::Less,
                "TableWriter::add: keys out of order"
            );
        }
        if let Some(handle) = self.pending_handle.take() {
            let sep = self.separator(&self.last_key, ikey);
            self.push_index_entry(sep, handle);
        }
        if let Some(f) = &mut self.filter {
            f.add(parsed.user_key, KEY_SEED);
            if let Some(pe) = &self.prefix_extractor {
                if let Some(prefix) = pe.prefix(parsed.user_key) {
                    if self.last_prefix.as_deref() != Some(prefix) {
                        f.add(prefix, PREFIX_SEED);
                        self.last_prefix = Some(prefix.to_vec());
                    }
                }
            }
        }
        // Points only grow, so the largest point bound is settled in `finish`.
        self.note_bounds(ikey, None, parsed.seq);
        let p = &mut self.props;
        p.num_entries += 1;
        match parsed.kind {
            Kind::Delete | Kind::SingleDelete => p.num_deletions += 1,
            Kind::Merge => p.num_merges += 1,
            Kind::Set | Kind::RangeDelete => {}
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(ikey);
        self.data_block.add(ikey, value);
        if self.data_block.estimated_size() >= self.block_size {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// Adds a range tombstone. Tombstones come as non-overlapping fragments sorted by
    /// (start ascending, seq descending); `start < end` (both asserted).
    pub fn add_range_tombstone(&mut self, t: &RangeTombstone) -> Result<()> {
        assert!(t.seq <= SEQNUM_MAX);
        assert_eq!(
            self.cmp.compare_user(&t.start, &t.end),
            Ordering::Less,
            "range tombstone with start >= end"
        );
        let k = key::encode(&t.start, t.seq, Kind::RangeDelete);
        if let Some(prev) = &self.last_tombstone {
            assert_eq!(self.cmp.compare(prev, &k), Ordering::Less, "range tombstones out of order");
        }
        self.range_dels.add(&k, &t.end);
        let end = key::encode(&t.end, SEQNUM_MAX, Kind::RangeDelete);
        self.note_bounds(&k, Some(&end), t.seq);
        self.props.num_range_deletions += 1;
        self.last_tombstone = Some(k);
        Ok(())
    }

    /// Widens the key and seqnum bounds of the table to cover `smallest..=largest` at `seq`.
    /// Called before the entry is counted.
    fn note_bounds(&mut self, smallest: &[u8], largest: Option<&[u8]>, seq: u64) {
        let first = self.entry_count() == 0;
        let p = &mut self.props;
        if first || self.cmp.compare(smallest, &p.smallest) == Ordering::Less {
            p.smallest = smallest.to_vec();
        }
        if let Some(largest) = largest {
            if p.largest.is_empty() || self.cmp.compare(largest, &p.largest) == Ordering::Greater {
                p.largest = largest.to_vec();
            }
        }
        if first {
            p.smallest_seq = seq;
            p.largest_seq = seq;
        }
        p.smallest_seq = p.smallest_seq.min(seq);
        p.largest_seq = p.largest_seq.max(seq);
    }

    /// Bytes written so far plus what the pending blocks will add (roughly).
    pub fn estimated_size(&self) -> u64 {
        self.offset
            + self.data_block.estimated_size() as u64
            + self.index_entries_size as u64
            + self.range_dels.estimated_size() as u64
    }

    /// Point entries plus range tombstones added so far.
    pub fn entry_count(&self) -> u64 {
        self.props.num_entries + self.props.num_range_deletions
    }

    /// The index key between data blocks ending with `last` and starting with `next`: a
    /// shortened user key when the comparator finds one, otherwise `last` itself.
    fn separator(&self, last: &[u8], next: &[u8]) -> Vec<u8> {
        let (ul, un) = (key::user_key(last), key::user_key(next));
        let sep = self.cmp.user().separator(ul, un);
        if self.cmp.compare_user(ul, &sep) == Ordering::Less
            && self.cmp.compare_user(&sep, un) == Ordering::Less
        {
            // The largest trailer makes `sep#MAX` the smallest internal key of `sep`; it is
            // still above `last` because `sep > user_key(last)`.
            key::encode(&sep, SEQNUM_MAX, Kind::RangeDelete)
        } else {
            last.to_vec()
        }
    }

    fn push_index_entry(&mut self, sep: Vec<u8>, handle: BlockHandle) {
        self.index_entries_size += sep.len() + 2 * 4 + 3;
        self.index_entries.push((sep, handle));
    }

    fn flush_data_block(&mut self) -> Result<()> {
        if self.data_block.is_empty() {
            return Ok(());
        }
        let contents = self.data_block.finish();
        let written = self.write_block(&contents, self.compression);
        self.data_block.reuse(contents);
        let handle = written?;
        self.props.data_size += handle.size + BLOCK_TRAILER_LEN as u64;
        self.props.num_data_blocks += 1;
        self.pending_handle = Some(handle);
        Ok(())
    }

    /// Frames `contents` (compressed when that saves at least 1/8) with its trailer at the end
    /// of the pending output, which goes to the file once it holds `WRITE_BUFFER_SIZE` bytes.
    fn write_block(&mut self, contents: &[u8], compression: Compression) -> Result<BlockHandle> {
        let out = &mut self.pending;
        let start = out.len();
        let mut kind = COMPRESSION_NONE;
        if compression == Compression::Lz4 {
            put_varint32(out, u32::try_from(contents.len()).expect("block below 4 GiB"));
            let header = out.len();
            out.resize(header + lz4_flex::block::get_maximum_output_size(contents.len()), 0);
            let n = lz4_flex::block::compress_into(contents, &mut out[header..])
                .expect("the output is sized for the worst case");
            out.truncate(header + n);
            if out.len() - start <= contents.len() - contents.len() / 8 {
                kind = COMPRESSION_LZ4;
            } else {
                out.truncate(start);
            }
        }
        if kind == COMPRESSION_NONE {
            out.extend_from_slice(contents);
        }
        let crc = masked_crc(&[&out[start..], &[kind]]);
        let handle = BlockHandle { offset: self.offset, size: (out.len() - start) as u64 };
        out.push(kind);
        out.extend_from_slice(&crc.to_le_bytes());
        self.offset += (out.len() - start) as u64;
        if out.len() >= WRITE_BUFFER_SIZE {
            self.write_pending()?;
        }
        Ok(handle)
    }

    /// Appends the pending output to the file.
    fn write_pending(&mut self) -> Result<()> {
        let written = self.file.append(&self.pending);
        self.pending.clear();
        written
    }

    /// Writes the remaining blocks and the footer. Does not sync.
    pub fn finish(mut self) -> Result<TableInfo> {
        self.flush_data_block()?;
        if let Some(handle) = self.pending_handle.take() {
            let sep = self.cmp.user().successor(key::user_key(&self.last_key));
            let sep =
                if self.cmp.compare_user(key::user_key(&self.last_key), &sep) == Ordering::Less {
                    key::encode(&sep, SEQNUM_MAX, Kind::RangeDelete)
                } else {
                    self.last_key.clone()
                };
            self.push_index_entry(sep, handle);
        }
        if self.props.num_entries > 0 {
            let last = self.last_key.clone();
            let p = &mut self.props;
            if p.largest.is_empty() || self.cmp.compare(&last, &p.largest) == Ordering::Greater {
                p.largest = last;
            }
        }

        let mut meta: Vec<(&[u8], BlockHandle)> = Vec::new();
        if let Some(mut f) = self.filter.take() {
            let bytes = f.finish();
            let h = self.write_block(&bytes, Compression::None)?;
            self.props.filter_size = h.size + BLOCK_TRAILER_LEN as u64;
            meta.push((META_FILTER, h));
        }
        if !self.range_dels.is_empty() {
            let contents = self.range_dels.finish();
            let h = self.write_block(&contents, self.compression)?;
            meta.push((META_RANGE_DEL, h));
        }

        // The index: one block when it fits `index_block_size`, else partitions plus a top
        // level whose keys are each partition's last key.
        let mut single = BlockBuilder::new(1);
        for (k, h) in &self.index_entries {
            single.add(k, &h.encode());
        }
        let (index_contents, index_kind, partitions) =
            if single.estimated_size() <= self.index_block_size || self.index_entries.len() <= 1 {
                (single.finish(), IndexKind::SingleLevel, Vec::new())
            } else {
                let mut parts = Vec::new();
                let mut part = BlockBuilder::new(1);
                for (k, h) in &self.index_entries {
                    part.add(k, &h.encode());
                    if part.estimated_size() >= self.index_block_size {
                        parts.push((part.last_key().to_vec(), part.finish()));
                    }
                }
                if !part.is_empty() {
                    parts.push((part.last_key().to_vec(), part.finish()));
                }
                (Vec::new(), IndexKind::TwoLevel, parts)
            };
        let mut top = BlockBuilder::new(1);
        let mut index_size = 0;
        self.props.num_index_partitions = partitions.len() as u64;
        for (last, contents) in &partitions {
            let h = self.write_block(contents, self.compression)?;
            index_size += h.size + BLOCK_TRAILER_LEN as u64;
            top.add(last, &h.encode());
        }
        let index_contents =
            if index_kind == IndexKind::TwoLevel { top.finish() } else { index_contents };

        // The index goes before the properties so that they can record its size.
        let index_handle = self.write_block(&index_contents, self.compression)?;
        index_size += index_handle.size + BLOCK_TRAILER_LEN as u64;
        self.props.index_size = index_size;

        let props_contents = self.props.encode();
        let h = self.write_block(&props_contents, self.compression)?;
        meta.push((META_PROPERTIES, h));

        meta.sort_by(|a, b| a.0.cmp(b.0));
        let mut mi = BlockBuilder::new(1);
        for (name, h) in &meta {
            mi.add(name, &h.encode());
        }
        let mi_contents = mi.finish();
        let metaindex = self.write_block(&mi_contents, Compression::None)?;

        let footer = Footer { metaindex, index: index_handle, index_kind }.encode();
        self.pending.extend_from_slice(&footer);
        self.offset += footer.len() as u64;
        self.write_pending()?;

        let p = &self.props;
        Ok(TableInfo {
            file_size: self.offset,
            smallest: p.smallest.clone(),
            largest: p.largest.clone(),
            smallest_seq: p.smallest_seq,
            largest_seq: p.largest_seq,
            properties: self.props.clone(),
        })
    }
}
