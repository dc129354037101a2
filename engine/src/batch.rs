//! `WriteBatch`: an ordered group of writes that commit atomically, and its encoding (the
//! payload of a WAL record).
//!
//! # Format
//!
//! The batch keeps its encoded form (`rep`) and appends to it as operations are added:
//!
//! 1. Header, 12 bytes: the seqnum of the first operation (`u64` LE), then the operation count
//!    (`u32` LE). Operation `i` gets seqnum `seq + i`.
//! 2. Then one record per operation, in insertion order: the kind byte ([`Kind`] as `u8`), the
//!    key as a varint32 length and bytes, and for `Set` and `Merge` the value, for
//!    `RangeDelete` the end key, the same way. `Delete` and `SingleDelete` carry nothing more.
//! 3. On disk (in a WAL record) the rep is followed by the masked CRC32C of the rep, 4 bytes
//!    LE ([`WriteBatch::encode`]). The log's own checksums cover fragments; this one covers
//!    the batch as a whole, so a batch reassembled wrongly is caught too.

use std::fmt;

use crate::coding::{masked_crc32c, put_fixed32, put_length_prefixed, Decoder};
use crate::error::{Error, Result};
use crate::key::{Kind, SEQNUM_MAX};

/// Length of the header: seqnum (8) and count (4).
pub const HEADER_LEN: usize = 12;

/// Length of the checksum that follows the rep in [`WriteBatch::encode`].
const CRC_LEN: usize = 4;

/// An ordered group of writes. Cloning copies the operations.
#[derive(Clone, PartialEq, Eq)]
pub struct WriteBatch {
    /// Header and records (see the module docs). Invariant: always well formed, with the
    /// header's count equal to the number of records.
    rep: Vec<u8>,
}

/// One operation of a batch. `value` is the value for `Set` and `Merge`, the (exclusive) end
/// key for `RangeDelete`, and empty for `Delete` and `SingleDelete`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BatchOp<'a> {
    pub kind: Kind,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl fmt::Debug for BatchOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = String::from_utf8_lossy(self.key);
        let value = String::from_utf8_lossy(self.value);
        match self.kind {
            Kind::Set | Kind::Merge | Kind::RangeDelete => {
                write!(f, "{:?}({key:?}, {value:?})", self.kind)
            }
            Kind::Delete | Kind::SingleDelete => write!(f, "{:?}({key:?})", self.kind),
        }
    }
}

impl Default for WriteBatch {
    fn default() -> Self {
        WriteBatch::new()
    }
}

impl fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteBatch")
            .field("seq", &self.seq())
            .field("ops", &self.iter().collect::<Vec<_>>())
            .finish()
    }
}

impl WriteBatch {
    /// An empty batch with seqnum 0.
    pub fn new() -> Self {
        WriteBatch { rep: vec![0; HEADER_LEN] }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.push(Kind::Set, key, Some(value));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.push(Kind::Delete, key, None);
    }

    /// Deletes the single older `put` of `key` (see SEMANTICS.md for the contract).
    pub fn single_delete(&mut self, key: &[u8]) {
        self.push(Kind::SingleDelete, key, None);
    }

    /// Adds a merge operand for `key`.
    pub fn merge(&mut self, key: &[u8], value: &[u8]) {
        self.push(Kind::Merge, key, Some(value));
    }

    /// Deletes every key in `[start, end)`. The batch takes any bounds; the database rejects
    /// `start > end` when the batch is written.
    pub fn delete_range(&mut self, start: &[u8], end: &[u8]) {
        self.push(Kind::RangeDelete, start, Some(end));
    }

    /// Appends one record. Panics if the count overflows `u32` or a key or value is 4 GiB or
    /// longer: both are far beyond what a batch can be used for.
    fn push(&mut self, kind: Kind, key: &[u8], value: Option<&[u8]>) {
        let count = self.count().checked_add(1).expect("batch holds fewer than 2^32 operations");
        self.rep.push(kind as u8);
        put_length_prefixed(&mut self.rep, key);
        if let Some(value) = value {
            put_length_prefixed(&mut self.rep, value);
        }
        self.set_count(count);
    }

    /// The number of operations.
    pub fn count(&self) -> u32 {
        u32::from_le_bytes(self.rep[8..HEADER_LEN].try_into().expect("header has a count"))
    }

    fn set_count(&mut self, count: u32) {
        self.rep[8..HEADER_LEN].copy_from_slice(&count.to_le_bytes());
    }

    /// True when the batch holds no operations.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Removes every operation and resets the seqnum to 0.
    pub fn clear(&mut self) {
        self.rep.clear();
        self.rep.resize(HEADER_LEN, 0);
    }

    /// The seqnum of the first operation.
    pub fn seq(&self) -> u64 {
        u64::from_le_bytes(self.rep[..8].try_into().expect("header has a seqnum"))
    }

    /// Sets the seqnum of the first operation (the database does this at commit).
    pub fn set_seq(&mut self, seq: u64) {
        self.rep[..8].copy_from_slice(&seq.to_le_bytes());
    }

    /// The length of the rep (header and records, without the checksum).
    pub fn size_bytes(&self) -> usize {
        self.rep.len()
    }

    /// The operations in insertion order.
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter { records: Decoder::new(&self.rep[HEADER_LEN..]), left: self.count() }
    }

    /// The rep followed by its masked CRC32C: the bytes to put in a WAL record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rep.len() + CRC_LEN);
        out.extend_from_slice(&self.rep);
        put_fixed32(&mut out, masked_crc32c(&[&self.rep]));
        out
    }

    /// Parses bytes made by [`WriteBatch::encode`], checking the checksum, the header and every
    /// record. Any flaw is [`Error::Corruption`]; no input makes it panic.
    pub fn decode(bytes: &[u8]) -> Result<WriteBatch> {
        let where_ = |at: usize| format!("write batch at byte {at}");
        if bytes.len() < HEADER_LEN + CRC_LEN {
            return Err(Error::corruption(
                format!("write batch of {} bytes is shorter than its header", bytes.len()),
                where_(0),
            ));
        }
        let (rep, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        let stored = u32::from_le_bytes(crc.try_into().expect("split leaves 4 bytes"));
        if masked_crc32c(&[rep]) != stored {
            return Err(Error::corruption("write batch checksum mismatch", where_(rep.len())));
        }
        let mut header = Decoder::new(rep);
        let seq = header.fixed64().expect("length checked above");
        let count = header.fixed32().expect("length checked above");
        let mut records = Decoder::new(&rep[HEADER_LEN..]);
        let mut found: u64 = 0;
        while !records.is_empty() {
            let at = HEADER_LEN + records.position();
            parse_op(&mut records).map_err(|what| Error::corruption(what, where_(at)))?;
            found += 1;
        }
        if found != u64::from(count) {
            return Err(Error::corruption(
                format!("write batch header counts {count} operations, found {found}"),
                where_(8),
            ));
        }
        // Seqnums seq..seq+count must all fit in 56 bits (count 0 takes none).
        if count > 0 && u128::from(seq) + u128::from(count) - 1 > u128::from(SEQNUM_MAX) {
            return Err(Error::corruption(
                format!("write batch seqnums {seq}+{count} exceed the seqnum range"),
                where_(0),
            ));
        }
        Ok(WriteBatch { rep: rep.to_vec() })
    }

    /// Appends `other`'s operations after this batch's (for group commit). The seqnum stays
    /// this batch's.
    pub fn append(&mut self, other: &WriteBatch) {
        let count = self
            .count()
            .checked_add(other.count())
            .expect("batch holds fewer than 2^32 operations");
        self.rep.extend_from_slice(&other.rep[HEADER_LEN..]);
        self.set_count(count);
    }
}

/// Parses one record from the front of `d`; the error says what is wrong.
fn parse_op<'a>(d: &mut Decoder<'a>) -> Result<BatchOp<'a>, String> {
    let kind_byte = d.u8().ok_or("missing operation kind")?;
    let kind = Kind::from_u8(kind_byte).ok_or_else(|| format!("bad operation kind {kind_byte}"))?;
    let key = d.length_prefixed().ok_or_else(|| format!("{kind:?} key is cut off or malformed"))?;
    let value = match kind {
        Kind::Set | Kind::Merge | Kind::RangeDelete => {
            d.length_prefixed().ok_or_else(|| format!("{kind:?} value is cut off or malformed"))?
        }
        Kind::Delete | Kind::SingleDelete => &[],
    };
    Ok(BatchOp { kind, key, value })
}

/// The operations of a [`WriteBatch`], in insertion order.
#[derive(Clone, Debug)]
pub struct BatchIter<'a> {
    records: Decoder<'a>,
    left: u32,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = BatchOp<'a>;

    fn next(&mut self) -> Option<BatchOp<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The rep is well formed: built by `push` or checked by `decode`.
        Some(parse_op(&mut self.records).expect("batch rep is well formed"))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.left as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for BatchIter<'_> {}

impl<'a> IntoIterator for &'a WriteBatch {
    type Item = BatchOp<'a>;
    type IntoIter = BatchIter<'a>;

    fn into_iter(self) -> BatchIter<'a> {
        self.iter()
    }
}
