//! Byte-level pieces of the SSTable format: varints, fixed-width integers, block handles,
//! block trailers (compression type + masked CRC32C) and the footer. See docs/format.md.

use crate::error::{Error, Result};

/// The format version written in the footer; `Table::open` refuses any other.
pub const FORMAT_VERSION: u32 = 1;

/// The last 8 bytes of every table ("cobbleT1" read as little-endian bytes).
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"cobbleT1");

/// Bytes after each block's contents: 1-byte compression type + 4-byte masked CRC32C.
pub const BLOCK_TRAILER_LEN: usize = 5;

/// A varint64 takes at most 10 bytes, so a handle (two of them) at most 20.
pub const MAX_HANDLE_LEN: usize = 20;

/// Footer: two handles padded to 40 bytes, index kind (1), reserved (3), version (4),
/// checksum (4), magic (8).
pub const FOOTER_LEN: usize = 2 * MAX_HANDLE_LEN + 1 + 3 + 4 + 4 + 8;

/// Compression type byte: contents stored as is.
pub const COMPRESSION_NONE: u8 = 0;
/// Compression type byte: varint32 uncompressed length, then an LZ4 block.
pub const COMPRESSION_LZ4: u8 = 1;

const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// Masks a CRC so that a CRC stored inside CRC-covered data does not checksum to a constant
/// (the LevelDB trick): rotate right by 15 and add a constant.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// CRC32C over several pieces, masked.
pub fn masked_crc(pieces: &[&[u8]]) -> u32 {
    let mut crc = 0;
    for p in pieces {
        crc = crc32c::crc32c_append(crc, p);
    }
    mask_crc(crc)
}

/// Appends `v` as a varint (7 bits per byte, low groups first, high bit = more follows).
pub fn put_varint64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a varint32.
pub fn put_varint32(out: &mut Vec<u8>, v: u32) {
    put_varint64(out, u64::from(v));
}

/// Decodes a varint64 from the front of `buf`: `(value, bytes used)`, or `None` when it is
/// truncated, longer than 10 bytes or overflows 64 bits.
#[inline]
pub fn get_varint64(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        let bits = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Decodes a varint32 (a varint64 that must fit 32 bits).
#[inline]
pub fn get_varint32(buf: &[u8]) -> Option<(u32, usize)> {
    let (v, n) = get_varint64(buf)?;
    Some((u32::try_from(v).ok()?, n))
}

/// Reads a little-endian u32 at `at`, `None` when out of range.
pub fn get_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Reads a little-endian u64 at `at`, `None` when out of range.
pub fn get_u64(buf: &[u8], at: usize) -> Option<u64> {
    let b = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Where a block lives: `size` counts the stored contents, without the 5-byte trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BlockHandle {
    pub offset: u64,
    pub size: u64,
}

impl BlockHandle {
    /// Appends the handle as two varint64s.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        put_varint64(out, self.offset);
        put_varint64(out, self.size);
    }

    /// The handle as bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_HANDLE_LEN);
        self.encode_to(&mut out);
        out
    }

    /// Decodes a handle from the front of `buf`: `(handle, bytes used)`.
    pub fn decode_prefix(buf: &[u8]) -> Option<(BlockHandle, usize)> {
        let (offset, a) = get_varint64(buf)?;
        let (size, b) = get_varint64(&buf[a..])?;
        Some((BlockHandle { offset, size }, a + b))
    }

    /// Decodes a handle that must fill `buf` exactly; `where_` names the place for the error.
    pub fn decode_exact(buf: &[u8], where_: &str) -> Result<BlockHandle> {
        match BlockHandle::decode_prefix(buf) {
            Some((h, n)) if n == buf.len() => Ok(h),
            _ => Err(Error::corruption("bad block handle", where_)),
        }
    }
}

/// How the footer's index handle is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    /// The index handle points at the one index block of data-block handles.
    SingleLevel = 1,
    /// The index handle points at a top-level block of index-partition handles.
    TwoLevel = 2,
}

/// The fixed-size end of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    pub metaindex: BlockHandle,
    pub index: BlockHandle,
    pub index_kind: IndexKind,
}

impl Footer {
    /// Encodes the footer into exactly [`FOOTER_LEN`] bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        self.metaindex.encode_to(&mut out);
        self.index.encode_to(&mut out);
        out.resize(2 * MAX_HANDLE_LEN, 0);
        out.push(self.index_kind as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = masked_crc(&[&out]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        assert_eq!(out.len(), FOOTER_LEN);
        out
    }

    /// Decodes and checks a footer: magic, checksum, version, index kind, padding.
    pub fn decode(buf: &[u8], where_: &str) -> Result<Footer> {
        let bad = |what: &str| Error::corruption(format!("footer: {what}"), where_);
        if buf.len() != FOOTER_LEN {
            return Err(bad("wrong length"));
        }
        if get_u64(buf, FOOTER_LEN - 8) != Some(TABLE_MAGIC) {
            return Err(bad("bad magic number (not a cobble table)"));
        }
        let body = &buf[..FOOTER_LEN - 12];
        if get_u32(buf, FOOTER_LEN - 12) != Some(masked_crc(&[body])) {
            return Err(bad("checksum mismatch"));
        }
        let version = get_u32(buf, FOOTER_LEN - 16).ok_or_else(|| bad("short"))?;
        if version != FORMAT_VERSION {
            return Err(bad(&format!("unsupported format version {version}")));
        }
        let (metaindex, a) =
            BlockHandle::decode_prefix(&buf[..2 * MAX_HANDLE_LEN]).ok_or_else(|| bad("handle"))?;
        let (index, b) =
            BlockHandle::decode_prefix(&buf[a..2 * MAX_HANDLE_LEN]).ok_or_else(|| bad("handle"))?;
        if buf[a + b..2 * MAX_HANDLE_LEN + 4].iter().enumerate().any(|(i, &x)| {
            // Byte 40 is the index kind; everything else in this range is zero padding.
            a + b + i != 2 * MAX_HANDLE_LEN && x != 0
        }) {
            return Err(bad("non-zero padding"));
        }
        let index_kind = match buf[2 * MAX_HANDLE_LEN] {
            1 => IndexKind::SingleLevel,
            2 => IndexKind::TwoLevel,
            k => return Err(bad(&format!("unknown index kind {k}"))),
        };
        Ok(Footer { metaindex, index, index_kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_garbage() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint64(&mut b, v);
            assert_eq!(get_varint64(&b), Some((v, b.len())));
            assert_eq!(get_varint64(&b[..b.len() - 1]), None);
        }
        assert_eq!(get_varint64(&[0xff; 10]), None);
        assert_eq!(
            get_varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        let mut b = Vec::new();
        put_varint64(&mut b, 1 << 32);
        assert_eq!(get_varint32(&b), None);
    }

    #[test]
    fn footer_round_trips_and_every_flip_is_caught() {
        let f = Footer {
            metaindex: BlockHandle { offset: 1000, size: 77 },
            index: BlockHandle { offset: 1082, size: 3000 },
            index_kind: IndexKind::TwoLevel,
        };
        let enc = f.encode();
        assert_eq!(Footer::decode(&enc, "t").unwrap(), f);
        for i in 0..enc.len() {
            for bit in 0..8 {
                let mut b = enc.clone();
                b[i] ^= 1 << bit;
                assert!(Footer::decode(&b, "t").unwrap_err().is_corruption(), "byte {i}");
            }
        }
    }
}
