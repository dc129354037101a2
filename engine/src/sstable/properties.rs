//! Table properties: counts, sizes, key and seqnum bounds and the names of the functions the
//! table was written with, stored as a bytewise-sorted block of `name -> value` entries.

use std::collections::BTreeMap;
use std::fmt;

use super::block::{Block, BlockBuilder, KeyOrder};
use super::format::{get_varint64, put_varint64};
use crate::error::{Error, Result};
use crate::key;
use crate::options::Compression;

/// What a table holds and how it was written.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Properties {
    /// Point entries (every kind).
    pub num_entries: u64,
    /// Point deletions, single deletions included.
    pub num_deletions: u64,
    pub num_merges: u64,
    pub num_range_deletions: u64,
    /// Bytes of data blocks on disk, trailers included.
    pub data_size: u64,
    /// Bytes of index blocks on disk (partitions and top level), trailers included.
    pub index_size: u64,
    /// Bytes of the filter block on disk, trailer included; 0 without a filter.
    pub filter_size: u64,
    pub num_data_blocks: u64,
    /// Index partitions; 0 for a single-level index.
    pub num_index_partitions: u64,
    /// Smallest internal key, points and range-deletion starts considered; empty when the
    /// table is empty.
    pub smallest: Vec<u8>,
    /// Largest internal key; a range tombstone `[s, e)#n` counts as the sentinel
    /// `e#SEQNUM_MAX,RangeDelete`, which sorts before every real key of `e`.
    pub largest: Vec<u8>,
    pub smallest_seq: u64,
    pub largest_seq: u64,
    pub comparator: String,
    pub merge_operator: String,
    /// Empty when the table was written without a prefix extractor.
    pub prefix_extractor: String,
    pub compression: Compression,
}

fn show_key(k: &[u8]) -> String {
    match key::parse(k) {
        Some(p) => format!("{p:?}"),
        None if k.is_empty() => "-".to_string(),
        None => format!("{k:?}"),
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Properties")
            .field("num_entries", &self.num_entries)
            .field("num_deletions", &self.num_deletions)
            .field("num_merges", &self.num_merges)
            .field("num_range_deletions", &self.num_range_deletions)
            .field("data_size", &self.data_size)
            .field("index_size", &self.index_size)
            .field("filter_size", &self.filter_size)
            .field("num_data_blocks", &self.num_data_blocks)
            .field("num_index_partitions", &self.num_index_partitions)
            .field("smallest", &show_key(&self.smallest))
            .field("largest", &show_key(&self.largest))
            .field("smallest_seq", &self.smallest_seq)
            .field("largest_seq", &self.largest_seq)
            .field("comparator", &self.comparator)
            .field("merge_operator", &self.merge_operator)
            .field("prefix_extractor", &self.prefix_extractor)
            .field("compression", &self.compression)
            .finish()
    }
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Lz4 => "lz4",
    }
}

/// The numeric properties: stored name and the field it fills.
type NumberField = (&'static str, fn(&mut Properties) -> &mut u64);

const NUMBERS: [NumberField; 11] = [
    ("cobble.num_entries", |p| &mut p.num_entries),
    ("cobble.num_deletions", |p| &mut p.num_deletions),
    ("cobble.num_merges", |p| &mut p.num_merges),
    ("cobble.num_range_deletions", |p| &mut p.num_range_deletions),
    ("cobble.data_size", |p| &mut p.data_size),
    ("cobble.index_size", |p| &mut p.index_size),
    ("cobble.filter_size", |p| &mut p.filter_size),
    ("cobble.num_data_blocks", |p| &mut p.num_data_blocks),
    ("cobble.num_index_partitions", |p| &mut p.num_index_partitions),
    ("cobble.smallest_seq", |p| &mut p.smallest_seq),
    ("cobble.largest_seq", |p| &mut p.largest_seq),
];

impl Properties {
    /// Encodes the properties as block contents.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut m: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        let mut copy = self.clone();
        for (name, field) in NUMBERS {
            let mut b = Vec::new();
            put_varint64(&mut b, *field(&mut copy));
            m.insert(name, b);
        }
        m.insert("cobble.smallest", self.smallest.clone());
        m.insert("cobble.largest", self.largest.clone());
        m.insert("cobble.comparator", self.comparator.as_bytes().to_vec());
        m.insert("cobble.merge_operator", self.merge_operator.as_bytes().to_vec());
        m.insert("cobble.prefix_extractor", self.prefix_extractor.as_bytes().to_vec());
        m.insert("cobble.compression", compression_name(self.compression).as_bytes().to_vec());
        let mut b = BlockBuilder::new(1);
        for (k, v) in &m {
            b.add(k.as_bytes(), v);
        }
        b.finish()
    }

    /// Decodes a properties block; every known name must be present (unknown ones are
    /// skipped, for forward compatibility).
    pub(super) fn decode(block: &Block, location: &str) -> Result<Properties> {
        let bad = |what: String| Error::corruption(format!("properties: {what}"), location);
        let mut m: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut it = block.iter(KeyOrder::Bytewise);
        it.first()?;
        while it.valid() {
            m.insert(it.key().to_vec(), it.value().to_vec());
            it.next()?;
        }
        let mut take =
            |name: &str| m.remove(name.as_bytes()).ok_or_else(|| bad(format!("{name} missing")));
        let mut p = Properties::default();
        let num = |v: Vec<u8>, name: &str| match get_varint64(&v) {
            Some((x, n)) if n == v.len() => Ok(x),
            _ => Err(bad(format!("{name} is not a varint"))),
        };
        let text = |v: Vec<u8>, name: &str| {
            String::from_utf8(v).map_err(|_| bad(format!("{name} is not UTF-8")))
        };
        for (name, field) in NUMBERS {
            *field(&mut p) = num(take(name)?, name)?;
        }
        p.smallest = take("cobble.smallest")?;
        p.largest = take("cobble.largest")?;
        for k in [&p.smallest, &p.largest] {
            if !k.is_empty() && key::parse(k).is_none() {
                return Err(bad("bound is not an internal key".to_string()));
            }
        }
        p.comparator = text(take("cobble.comparator")?, "comparator")?;
        p.merge_operator = text(take("cobble.merge_operator")?, "merge_operator")?;
        p.prefix_extractor = text(take("cobble.prefix_extractor")?, "prefix_extractor")?;
        p.compression = match &take("cobble.compression")?[..] {
            b"none" => Compression::None,
            b"lz4" => Compression::Lz4,
            _ => return Err(bad("unknown compression".to_string())),
        };
        Ok(p)
    }
}
