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

/// The longest user key (and `delete_range` bound) a write may carry: 16 MiB. Tables store
/// key lengths as varint32 and a whole batch must fit one memtable arena (32-bit offsets);
/// this bound keeps every such length far from those limits.
pub const MAX_KEY_LEN: usize = 1 << 24;

/// The longest value (or merge operand) a write may carry: 256 MiB.
pub const MAX_VALUE_LEN: usize = 1 << 28;

/// The most operations one batch may hold: 2^24. With [`MAX_BATCH_BYTES`] this bounds the
/// arena a batch needs (per-entry overhead included) well below 4 GiB.
pub const MAX_BATCH_COUNT: u32 = 1 << 24;

/// The largest encoded batch (header, operations and checksum: one WAL record): 1 GiB.
pub const MAX_BATCH_BYTES: usize = 1 << 30;

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

    /// An empty batch with room for `bytes` of operations (each takes its key and value, a
    /// kind byte and up to 5 bytes of length per key or value), so filling it allocates once.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut rep = Vec::with_capacity(HEADER_LEN + bytes);
        rep.resize(HEADER_LEN, 0);
        WriteBatch { rep }
    }

    /// A batch of one operation, sized for it (one allocation): what `Db::put` and its
    /// siblings write.
    pub(crate) fn one(kind: Kind, key: &[u8], value: Option<&[u8]>) -> WriteBatch {
        let mut b = WriteBatch::with_capacity(1 + 5 + key.len() + 5 + value.map_or(0, <[u8]>::len));
        b.push(kind, key, value);
        b
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.push(Kind::Set, key.as_ref(), Some(value.as_ref()));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.push(Kind::Delete, key.as_ref(), None);
    }

    /// Deletes the single older `put` of `key` (see SEMANTICS.md for the contract).
    pub fn single_delete(&mut self, key: impl AsRef<[u8]>) {
        self.push(Kind::SingleDelete, key.as_ref(), None);
    }

    /// Adds a merge operand for `key`.
    pub fn merge(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.push(Kind::Merge, key.as_ref(), Some(value.as_ref()));
    }

    /// Deletes every key in `[start, end)`. The batch takes any bounds; the database rejects
    /// `start > end` when the batch is written.
    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) {
        self.push(Kind::RangeDelete, start.as_ref(), Some(end.as_ref()));
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

    /// Checks the batch against the size limits ([`MAX_KEY_LEN`], [`MAX_VALUE_LEN`],
    /// [`MAX_BATCH_COUNT`], [`MAX_BATCH_BYTES`]); on failure returns what is over which
    /// limit. `Db::write` refuses such a batch with `InvalidArgument` before writing anything;
    /// recovery reports a WAL record over a limit as `Corruption`.
    pub fn check_limits(&self) -> std::result::Result<(), String> {
        if self.count() > MAX_BATCH_COUNT {
            return Err(format!(
                "batch of {} operations exceeds MAX_BATCH_COUNT ({MAX_BATCH_COUNT})",
                self.count()
            ));
        }
        let encoded = self.rep.len() + CRC_LEN;
        if encoded > MAX_BATCH_BYTES {
            return Err(format!(
                "batch of {encoded} encoded bytes exceeds MAX_BATCH_BYTES ({MAX_BATCH_BYTES})"
            ));
        }
        self.iter().try_for_each(|op| check_entry_limits(op.kind, op.key, op.value))
    }

    /// The operations in insertion order.
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter { records: Decoder::new(&self.rep[HEADER_LEN..]), left: self.count() }
    }

    /// The rep followed by its masked CRC32C: the bytes to put in a WAL record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rep.len() + CRC_LEN);
        self.encode_into(&mut out);
        out
    }

    /// Appends [`WriteBatch::encode`]'s bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.rep);
        put_fixed32(out, masked_crc32c(&[&self.rep]));
    }

    /// Parses bytes made by [`WriteBatch::encode`], checking the checksum, the header and every
    /// record. Any flaw is [`Error::Corruption`]; no input makes it panic.
    pub fn decode(bytes: &[u8]) -> Result<WriteBatch> {
        let at_byte = |at: usize| format!("write batch at byte {at}");
        if bytes.len() < HEADER_LEN + CRC_LEN {
            return Err(Error::corruption(
                format!("write batch of {} bytes is shorter than its header", bytes.len()),
                at_byte(0),
            ));
        }
        let (rep, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        let stored = u32::from_le_bytes(crc.try_into().expect("split leaves 4 bytes"));
        if masked_crc32c(&[rep]) != stored {
            return Err(Error::corruption("write batch checksum mismatch", at_byte(rep.len())));
        }
        let mut header = Decoder::new(rep);
        let seq = header.fixed64().expect("length checked above");
        let count = header.fixed32().expect("length checked above");
        let mut records = Decoder::new(&rep[HEADER_LEN..]);
        let mut found: u64 = 0;
        while !records.is_empty() {
            let at = HEADER_LEN + records.position();
            parse_op(&mut records).map_err(|what| Error::corruption(what, at_byte(at)))?;
            found += 1;
        }
        if found != u64::from(count) {
            return Err(Error::corruption(
                format!("write batch header counts {count} operations, found {found}"),
                at_byte(8),
            ));
        }
        // Seqnums seq..seq+count must all fit in 56 bits (count 0 takes none).
        if count > 0 && u128::from(seq) + u128::from(count) - 1 > u128::from(SEQNUM_MAX) {
            return Err(Error::corruption(
                format!("write batch seqnums {seq}+{count} exceed the seqnum range"),
                at_byte(0),
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

/// Checks one entry against [`MAX_KEY_LEN`] and [`MAX_VALUE_LEN`] (a range deletion's end is
/// a key): what a batch checks of each of its entries, and an external table of each of its own.
pub(crate) fn check_entry_limits(
    kind: Kind,
    key: &[u8],
    value: &[u8],
) -> std::result::Result<(), String> {
    if key.len() > MAX_KEY_LEN {
        return Err(format!("key of {} bytes exceeds MAX_KEY_LEN ({MAX_KEY_LEN})", key.len()));
    }
    let (limit, name) = match kind {
        Kind::RangeDelete => (MAX_KEY_LEN, "MAX_KEY_LEN"),
        _ => (MAX_VALUE_LEN, "MAX_VALUE_LEN"),
    };
    if value.len() > limit {
        return Err(format!(
            "{} of {} bytes exceeds {name} ({limit})",
            if kind == Kind::RangeDelete { "range end key" } else { "value" },
            value.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datadriven::{self, TestCase};
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses hex, ignoring whitespace and `|` separators.
    fn unhex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        assert!(digits.len().is_multiple_of(2), "odd number of hex digits in {text:?}");
        digits
            .chunks(2)
            .map(|pair| {
                u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex")
            })
            .collect()
    }

    /// `""` is the empty string; anything else is literal.
    fn arg(word: &str) -> &[u8] {
        if word == "\"\"" {
            b""
        } else {
            word.as_bytes()
        }
    }

    /// Applies one op line (`put k v`, `delete k`, ...) to `b`.
    fn apply(b: &mut WriteBatch, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["put", k, v] => b.put(arg(k), arg(v)),
            ["delete", k] => b.delete(arg(k)),
            ["single-delete", k] => b.single_delete(arg(k)),
            ["merge", k, v] => b.merge(arg(k), arg(v)),
            ["delete-range", s, e] => b.delete_range(arg(s), arg(e)),
            _ => panic!("bad op line {line:?}"),
        }
    }

    /// The ops, the header fields, and the encoding cut into header, records and checksum.
    fn show(b: &WriteBatch) -> String {
        let mut out = String::new();
        for op in b.iter() {
            out.push_str(&format!("{op:?}\n"));
        }
        out.push_str(&format!("seq={} count={} size={}\n", b.seq(), b.count(), b.size_bytes()));
        let enc = b.encode();
        out.push_str(&format!("header  {}\n", hex(&enc[..HEADER_LEN])));
        let mut d = Decoder::new(&enc[HEADER_LEN..enc.len() - CRC_LEN]);
        while !d.is_empty() {
            let start = d.position();
            parse_op(&mut d).expect("well formed");
            let end = d.position();
            out.push_str(&format!("record  {}\n", hex(&enc[HEADER_LEN + start..HEADER_LEN + end])));
        }
        out.push_str(&format!("crc     {}\n", hex(&enc[enc.len() - CRC_LEN..])));
        out
    }

    #[test]
    fn golden() {
        let mut batch = WriteBatch::new();
        datadriven::run("testdata/batch", |case: &TestCase| match case.cmd.as_str() {
            "build" => {
                batch = WriteBatch::new();
                case.input.lines().for_each(|l| apply(&mut batch, l));
                batch.set_seq(case.arg_or("seq", 0));
                show(&batch)
            }
            "append" => {
                let mut other = WriteBatch::new();
                case.input.lines().for_each(|l| apply(&mut other, l));
                batch.append(&other);
                show(&batch)
            }
            "clear" => {
                batch.clear();
                show(&batch)
            }
            "decode" => {
                let mut bytes = unhex(&case.input);
                if case.has("fix-crc") {
                    let crc = masked_crc32c(&[&bytes]);
                    put_fixed32(&mut bytes, crc);
                }
                match WriteBatch::decode(&bytes) {
                    Ok(b) => show(&b),
                    Err(e) => format!("error: {e}\n"),
                }
            }
            other => panic!("line {}: unknown command {other}", case.line),
        });
    }

    #[test]
    fn a_batch_is_usable_after_clear_and_default() {
        let mut b = WriteBatch::default();
        assert!(b.is_empty());
        assert_eq!(b.size_bytes(), HEADER_LEN);
        b.put(b"k", b"v");
        b.set_seq(9);
        assert_eq!(b.count(), 1);
        b.clear();
        assert_eq!(b, WriteBatch::new());
        assert_eq!(WriteBatch::decode(&b.encode()).expect("empty batch decodes"), b);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(Vec<u8>, Vec<u8>),
        Delete(Vec<u8>),
        SingleDelete(Vec<u8>),
        Merge(Vec<u8>, Vec<u8>),
        DeleteRange(Vec<u8>, Vec<u8>),
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            (bytes(), proptest::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(k, v)| Op::Put(k, v)),
            bytes().prop_map(Op::Delete),
            bytes().prop_map(Op::SingleDelete),
            (bytes(), bytes()).prop_map(|(k, v)| Op::Merge(k, v)),
            (bytes(), bytes()).prop_map(|(s, e)| Op::DeleteRange(s, e)),
        ]
    }

    fn build(ops: &[Op]) -> WriteBatch {
        let mut b = WriteBatch::new();
        for op in ops {
            match op {
                Op::Put(k, v) => b.put(k, v),
                Op::Delete(k) => b.delete(k),
                Op::SingleDelete(k) => b.single_delete(k),
                Op::Merge(k, v) => b.merge(k, v),
                Op::DeleteRange(s, e) => b.delete_range(s, e),
            }
        }
        b
    }

    fn expected(op: &Op) -> (Kind, &[u8], &[u8]) {
        match op {
            Op::Put(k, v) => (Kind::Set, k, v),
            Op::Delete(k) => (Kind::Delete, k, &[]),
            Op::SingleDelete(k) => (Kind::SingleDelete, k, &[]),
            Op::Merge(k, v) => (Kind::Merge, k, v),
            Op::DeleteRange(s, e) => (Kind::RangeDelete, s, e),
        }
    }

    proptest! {
        #[test]
        fn ops_round_trip(
            ops in proptest::collection::vec(op_strategy(), 0..20),
            seq in 0..=SEQNUM_MAX - 20,
        ) {
            let mut b = build(&ops);
            b.set_seq(seq);
            prop_assert_eq!(b.count() as usize, ops.len());
            prop_assert_eq!(b.is_empty(), ops.is_empty());
            prop_assert_eq!(b.iter().len(), ops.len());
            for (got, want) in b.iter().zip(&ops) {
                prop_assert_eq!((got.kind, got.key, got.value), expected(want));
            }
            let enc = b.encode();
            prop_assert_eq!(enc.len(), b.size_bytes() + CRC_LEN);
            let decoded = WriteBatch::decode(&enc).expect("own encoding decodes");
            prop_assert_eq!(decoded.seq(), seq);
            prop_assert_eq!(&decoded, &b);
            // Every strict prefix of the encoding, and every single flipped bit, is refused.
            for n in 0..enc.len() {
                prop_assert!(WriteBatch::decode(&enc[..n]).is_err_and(|e| e.is_corruption()));
            }
            for i in 0..enc.len().min(64) {
                let mut bad = enc.clone();
                bad[i] ^= 0x10;
                prop_assert!(WriteBatch::decode(&bad).is_err_and(|e| e.is_corruption()));
            }
        }

        #[test]
        fn append_is_concatenation(
            a in proptest::collection::vec(op_strategy(), 0..10),
            b in proptest::collection::vec(op_strategy(), 0..10),
            seq in any::<u64>(),
        ) {
            let mut left = build(&a);
            left.set_seq(seq);
            let mut right = build(&b);
            right.set_seq(seq.wrapping_add(1000));
            left.append(&right);
            let mut whole = build(&[a, b].concat());
            whole.set_seq(seq);
            prop_assert_eq!(left, whole);
        }

        /// Arbitrary bytes never panic, and whatever decodes encodes back to the same bytes.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(b) = WriteBatch::decode(&bytes) {
                prop_assert_eq!(b.encode(), bytes);
            }
        }

        /// The same with a valid checksum, so the record parser itself meets garbage.
        #[test]
        fn decode_of_checksummed_garbage_never_panics(
            seq in prop_oneof![Just(0u64), Just(SEQNUM_MAX), any::<u64>()],
            count in 0..6u32,
            body in proptest::collection::vec(
                prop_oneof![0..6u8, Just(0x80), Just(0xff), any::<u8>()], 0..60),
        ) {
            let mut rep = Vec::new();
            rep.extend_from_slice(&seq.to_le_bytes());
            rep.extend_from_slice(&count.to_le_bytes());
            rep.extend_from_slice(&body);
            let crc = masked_crc32c(&[&rep]);
            let mut bytes = rep;
            put_fixed32(&mut bytes, crc);
            match WriteBatch::decode(&bytes) {
                Ok(b) => {
                    prop_assert_eq!(b.encode(), bytes);
                    prop_assert_eq!(b.iter().count(), count as usize);
                }
                Err(e) => prop_assert!(e.is_corruption()),
            }
        }
    }
}
