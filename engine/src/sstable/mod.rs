//! SSTables: immutable sorted files of internal keys in blocks, with a (possibly two-level)
//! index, a bloom filter, range tombstones and properties. The byte layout is in
//! docs/format.md; `format` holds the fixed-size pieces, `block` the block encoding.
//!
//! File layout, in write order:
//! ```text
//! data block*  filter?  range-del?  index-partition*  index  properties  meta-index  footer
//! ```
//! Every block is followed by a compression-type byte and a masked CRC32C of contents and
//! type; the footer carries its own checksum, so every byte of a table is covered.

mod block;
mod filter;
mod format;
mod fuzz;
mod properties;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use properties::Properties;
pub use reader::{Table, TableIter};
pub use writer::{TableInfo, TableWriter};

/// Fuzzing hooks over the private block code (see `crate::fuzz`); not part of the API.
#[doc(hidden)]
pub use fuzz::{fuzz_block, fuzz_fix_checksums};

/// Meta-index name of the bloom filter block.
const META_FILTER: &[u8] = b"cobble.filter";
/// Meta-index name of the properties block.
const META_PROPERTIES: &[u8] = b"cobble.properties";
/// Meta-index name of the range-deletion block.
const META_RANGE_DEL: &[u8] = b"cobble.range_del";
