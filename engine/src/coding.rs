//! Byte encodings shared by every on-disk format: little-endian fixed-width integers, varints,
//! length-prefixed slices, and masked CRC32C checksums.
//!
//! Encoders append to a `Vec<u8>`. Decoders never panic on bad input: the free functions
//! return `None` when the bytes are short or malformed, and [`Decoder`] reads a buffer front
//! to back the same way. Varints are accepted only in their canonical (shortest) form, so
//! that every value has exactly one encoding and decode-then-encode gives back the input.

/// The longest varint encoding of a `u32`.
pub const VARINT32_LEN_MAX: usize = 5;
/// The longest varint encoding of a `u64`.
pub const VARINT64_LEN_MAX: usize = 10;

/// Appends `v` as 4 little-endian bytes.
pub fn put_fixed32(dst: &mut Vec<u8>, v: u32) {
    dst.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as 8 little-endian bytes.
pub fn put_fixed64(dst: &mut Vec<u8>, v: u64) {
    dst.extend_from_slice(&v.to_le_bytes());
}

/// Reads a little-endian `u32` from the first 4 bytes of `src`.
pub fn get_fixed32(src: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = src.get(..4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Reads a little-endian `u64` from the first 8 bytes of `src`.
pub fn get_fixed64(src: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = src.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Appends `v` as a varint: 7 bits a byte, low bits first, high bit set on all but the last.
pub fn put_varint32(dst: &mut Vec<u8>, v: u32) {
    put_varint64(dst, u64::from(v));
}

/// Appends `v` as a varint (see [`put_varint32`]).
pub fn put_varint64(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// The number of bytes [`put_varint64`] writes for `v`.
pub fn varint_len(v: u64) -> usize {
    // Every 7 significant bits take a byte; zero still takes one.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decodes a varint of at most `len_max` bytes whose value is at most `value_max`.
/// Returns the value and the number of bytes it took.
fn get_varint(src: &[u8], len_max: usize, value_max: u64) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in src.iter().take(len_max).enumerate() {
        let low = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        // The tenth byte holds bit 63 only; anything more does not fit in a u64.
        if shift == 63 && low > 1 {
            return None;
        }
        v |= low << shift;
        if b & 0x80 == 0 {
            // A final zero byte after the first is a longer-than-needed encoding.
            if i > 0 && b == 0 {
                return None;
            }
            return (v <= value_max).then_some((v, i + 1));
        }
    }
    None
}

/// Decodes a varint `u32` from the front of `src`: the value and the bytes it took, or `None`
/// when `src` ends early, the encoding is longer than needed, or the value overflows.
pub fn get_varint32(src: &[u8]) -> Option<(u32, usize)> {
    let (v, n) = get_varint(src, VARINT32_LEN_MAX, u64::from(u32::MAX))?;
    Some((u32::try_from(v).ok()?, n))
}

/// Decodes a varint `u64` from the front of `src` (see [`get_varint32`]).
pub fn get_varint64(src: &[u8]) -> Option<(u64, usize)> {
    get_varint(src, VARINT64_LEN_MAX, u64::MAX)
}

/// Appends a varint32 length followed by the bytes. Panics if `data` is 4 GiB or longer
/// (callers bound their sizes well below that).
pub fn put_length_prefixed(dst: &mut Vec<u8>, data: &[u8]) {
    let len = u32::try_from(data.len()).expect("length-prefixed slice is shorter than 4 GiB");
    put_varint32(dst, len);
    dst.extend_from_slice(data);
}

/// A delta added to masked CRCs (the constant LevelDB chose).
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// Masks a CRC before storing it. A CRC computed over bytes that themselves contain CRCs
/// (a log record holding a table block, say) is weak; rotating and offsetting the stored value
/// breaks that correlation.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// Inverts [`mask_crc`].
pub fn unmask_crc(masked: u32) -> u32 {
    masked.wrapping_sub(CRC_MASK_DELTA).rotate_left(15)
}

/// The masked CRC32C of the concatenation of `parts`.
pub fn masked_crc32c(parts: &[&[u8]]) -> u32 {
    mask_crc(parts.iter().fold(0, |crc, p| crc32c::crc32c_append(crc, p)))
}

/// Reads a buffer front to back. Every method returns `None` (and leaves the position where it
/// was) when the remaining bytes do not hold what was asked for.
#[derive(Clone, Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Starts at the front of `buf`.
    pub fn new(buf: &'a [u8]) -> Decoder<'a> {
        Decoder { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not yet consumed.
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.remaining().get(..n)?;
        self.pos += n;
        Some(out)
    }

    /// Takes one byte.
    pub fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    /// Takes a little-endian `u32`.
    pub fn fixed32(&mut self) -> Option<u32> {
        let v = get_fixed32(self.remaining())?;
        self.pos += 4;
        Some(v)
    }

    /// Takes a little-endian `u64`.
    pub fn fixed64(&mut self) -> Option<u64> {
        let v = get_fixed64(self.remaining())?;
        self.pos += 8;
        Some(v)
    }

    /// Takes a varint `u32`.
    pub fn varint32(&mut self) -> Option<u32> {
        let (v, n) = get_varint32(self.remaining())?;
        self.pos += n;
        Some(v)
    }

    /// Takes a varint `u64`.
    pub fn varint64(&mut self) -> Option<u64> {
        let (v, n) = get_varint64(self.remaining())?;
        self.pos += n;
        Some(v)
    }

    /// Takes a varint32 length and that many bytes (the inverse of [`put_length_prefixed`]).
    pub fn length_prefixed(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        let len = self.varint32()?;
        let out = usize::try_from(len).ok().and_then(|len| self.bytes(len));
        if out.is_none() {
            self.pos = start;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn varint64_bytes(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint64(&mut out, v);
        out
    }

    #[test]
    fn varint_known_encodings() {
        assert_eq!(varint64_bytes(0), [0x00]);
        assert_eq!(varint64_bytes(1), [0x01]);
        assert_eq!(varint64_bytes(127), [0x7f]);
        assert_eq!(varint64_bytes(128), [0x80, 0x01]);
        assert_eq!(varint64_bytes(300), [0xac, 0x02]);
        assert_eq!(varint64_bytes(u64::from(u32::MAX)), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            varint64_bytes(u64::MAX),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn varint_rejects_bad_input() {
        // Empty, and a continuation bit with nothing after it.
        assert_eq!(get_varint32(&[]), None);
        assert_eq!(get_varint32(&[0x80]), None);
        assert_eq!(get_varint64(&[0xff; 9]), None);
        // Longer than needed: 0 as two bytes, 1 as three.
        assert_eq!(get_varint32(&[0x80, 0x00]), None);
        assert_eq!(get_varint64(&[0x81, 0x80, 0x00]), None);
        // u32 overflow: 2^32 needs a fifth byte of 0x10.
        assert_eq!(get_varint32(&[0x80, 0x80, 0x80, 0x80, 0x10]), None);
        assert_eq!(get_varint64(&[0x80, 0x80, 0x80, 0x80, 0x10]), Some((1 << 32, 5)));
        // Six bytes for a u32, eleven for a u64.
        assert_eq!(get_varint32(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), None);
        assert_eq!(
            get_varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            None
        );
        // u64 overflow in the tenth byte (only its lowest bit fits).
        assert_eq!(
            get_varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        // Trailing bytes after a complete varint are left alone.
        assert_eq!(get_varint32(&[0x05, 0xff]), Some((5, 1)));
    }

    #[test]
    fn fixed_and_decoder() {
        let mut buf = Vec::new();
        put_fixed32(&mut buf, 0x0403_0201);
        put_fixed64(&mut buf, 0x0807_0605_0403_0201);
        put_length_prefixed(&mut buf, b"abc");
        put_varint32(&mut buf, 7);
        assert_eq!(&buf[..4], &[1, 2, 3, 4]);
        assert_eq!(get_fixed32(&buf[..3]), None);
        assert_eq!(get_fixed64(&buf[..7]), None);

        let mut d = Decoder::new(&buf);
        assert_eq!(d.fixed32(), Some(0x0403_0201));
        assert_eq!(d.fixed64(), Some(0x0807_0605_0403_0201));
        assert_eq!(d.length_prefixed(), Some(&b"abc"[..]));
        assert_eq!(d.fixed32(), None, "a failed read does not move the position");
        assert_eq!(d.varint32(), Some(7));
        assert!(d.is_empty());
        assert_eq!(d.u8(), None);

        // A length prefix that runs past the end fails and leaves the position unchanged.
        let mut d = Decoder::new(&[0x05, b'a', b'b']);
        assert_eq!(d.length_prefixed(), None);
        assert_eq!(d.position(), 0);
    }

    #[test]
    fn crc_mask_round_trips_and_changes_the_value() {
        let crc = crc32c::crc32c(b"hello");
        assert_ne!(mask_crc(crc), crc);
        assert_eq!(unmask_crc(mask_crc(crc)), crc);
        assert_eq!(masked_crc32c(&[b"he", b"llo"]), mask_crc(crc));
        assert_eq!(masked_crc32c(&[]), mask_crc(0));
    }

    proptest! {
        #[test]
        fn varint64_round_trips(v in any::<u64>(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut buf = varint64_bytes(v);
            prop_assert_eq!(buf.len(), varint_len(v));
            buf.extend_from_slice(&tail);
            prop_assert_eq!(get_varint64(&buf), Some((v, varint_len(v))));
            // Every strict prefix of the encoding is rejected.
            for n in 0..varint_len(v) {
                prop_assert_eq!(get_varint64(&buf[..n]), None);
            }
        }

        #[test]
        fn varint32_round_trips(v in any::<u32>()) {
            let mut buf = Vec::new();
            put_varint32(&mut buf, v);
            prop_assert_eq!(get_varint32(&buf), Some((v, buf.len())));
            prop_assert!(buf.len() <= VARINT32_LEN_MAX);
        }

        #[test]
        fn varint_decoding_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            // Whatever decodes re-encodes to exactly the bytes it was read from.
            if let Some((v, n)) = get_varint64(&bytes) {
                prop_assert_eq!(varint64_bytes(v), &bytes[..n]);
            }
            if let Some((v, n)) = get_varint32(&bytes) {
                prop_assert_eq!(varint64_bytes(u64::from(v)), &bytes[..n]);
            }
        }
    }
}
