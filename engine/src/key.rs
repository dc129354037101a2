//! Internal keys: a user key followed by an 8-byte trailer `(seqnum << 8) | kind`, little
//! endian. Order: user key ascending by the comparator, then trailer descending, so the newest
//! version of a key comes first.

use crate::sync::Arc;
use std::cmp::Ordering;
use std::fmt;

use crate::comparator::{Bytewise, Comparator};

/// Sequence numbers fit in 56 bits.
pub const SEQNUM_MAX: u64 = (1 << 56) - 1;

/// Length of the trailer that ends every internal key.
pub const TRAILER_LEN: usize = 8;

/// What an internal key records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Hides every older version of the key.
    Delete = 0,
    /// A value.
    Set = 1,
    /// An operand for the merge operator.
    Merge = 2,
    /// Deletes exactly one older `Set` (valid use only).
    SingleDelete = 3,
    /// A range tombstone `[key, value)`; lives in the range-deletion structures.
    RangeDelete = 4,
}

impl Kind {
    /// The largest kind value: seeking to `(key, seq, KIND_MAX)` lands before every entry of
    /// `key` at `seq`.
    pub const MAX: u8 = 4;

    /// Decodes a kind byte.
    pub fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Delete,
            1 => Kind::Set,
            2 => Kind::Merge,
            3 => Kind::SingleDelete,
            4 => Kind::RangeDelete,
            _ => return None,
        })
    }
}

/// Packs a seqnum and kind into a trailer.
pub fn trailer(seq: u64, kind: u8) -> u64 {
    debug_assert!(seq <= SEQNUM_MAX);
    (seq << 8) | u64::from(kind)
}

/// Encodes an internal key.
pub fn encode(user_key: &[u8], seq: u64, kind: Kind) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    append(&mut out, user_key, seq, kind as u8);
    out
}

/// Appends an internal key with a raw kind byte (used for seek targets).
pub fn append(out: &mut Vec<u8>, user_key: &[u8], seq: u64, kind: u8) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&trailer(seq, kind).to_le_bytes());
}

/// A key held inline up to 64 bytes (a 56-byte user key and its trailer), on the heap
/// beyond: what a cursor or a point read keeps of a key without allocating for it.
pub type KeyBuf = smallvec::SmallVec<[u8; 64]>;

/// The smallest internal key for `user_key` visible at `seq`: a `seek_ge` target (inline for
/// keys up to 56 bytes, so seeking allocates nothing).
pub fn seek_key(user_key: &[u8], seq: u64) -> KeyBuf {
    key_buf(user_key, seq, Kind::MAX)
}

/// The largest internal key for `user_key`: `seek_ge` of it lands past `user_key` unless a
/// seqnum-0 delete exists.
pub fn last_key(user_key: &[u8]) -> KeyBuf {
    key_buf(user_key, 0, 0)
}

fn key_buf(user_key: &[u8], seq: u64, kind: u8) -> KeyBuf {
    let n = user_key.len();
    let trailer = trailer(seq, kind).to_le_bytes();
    let mut inline = [0u8; 64];
    if n + TRAILER_LEN > inline.len() {
        let mut out = Vec::with_capacity(n + TRAILER_LEN);
        out.extend_from_slice(user_key);
        out.extend_from_slice(&trailer);
        return KeyBuf::from_vec(out);
    }
    // Two plain copies into the inline array: `SmallVec::extend_from_slice` goes through its
    // general insert path, a tenth of a bloom-filtered miss's time.
    inline[..n].copy_from_slice(user_key);
    inline[n..n + TRAILER_LEN].copy_from_slice(&trailer);
    KeyBuf::from_buf_and_len(inline, n + TRAILER_LEN)
}

/// A decoded view of an encoded internal key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub user_key: &'a [u8],
    pub seq: u64,
    pub kind: Kind,
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{},{:?}", String::from_utf8_lossy(self.user_key), self.seq, self.kind)
    }
}

/// Parses an internal key; `None` when it is too short or its kind byte is unknown.
pub fn parse(ikey: &[u8]) -> Option<ParsedKey<'_>> {
    let n = ikey.len().checked_sub(TRAILER_LEN)?;
    let t = u64::from_le_bytes(ikey[n..].try_into().ok()?);
    Some(ParsedKey { user_key: &ikey[..n], seq: t >> 8, kind: Kind::from_u8((t & 0xff) as u8)? })
}

/// The user key part. Panics on a key shorter than a trailer (a bug: keys are validated when
/// read from disk).
pub fn user_key(ikey: &[u8]) -> &[u8] {
    &ikey[..ikey.len() - TRAILER_LEN]
}

/// The trailer part.
pub fn trailer_of(ikey: &[u8]) -> u64 {
    let n = ikey.len() - TRAILER_LEN;
    u64::from_le_bytes(ikey[n..].try_into().expect("trailer is 8 bytes"))
}

/// Compares encoded internal keys: user key by the comparator, then trailer descending.
#[derive(Clone)]
pub struct InternalComparator {
    user: Arc<dyn Comparator>,
    /// The user comparator is [`Bytewise`] (by name, as the manifest records it): user keys
    /// compare as byte slices, without a dynamic call per comparison.
    bytewise: bool,
}

impl fmt::Debug for InternalComparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InternalComparator({})", self.user.name())
    }
}

impl InternalComparator {
    /// Wraps a user comparator.
    pub fn new(user: Arc<dyn Comparator>) -> InternalComparator {
        let bytewise = user.name() == Bytewise.name();
        InternalComparator { user, bytewise }
    }

    /// The user comparator.
    pub fn user(&self) -> &Arc<dyn Comparator> {
        &self.user
    }

    /// Compares two user keys.
    #[inline]
    pub fn compare_user(&self, a: &[u8], b: &[u8]) -> Ordering {
        if self.bytewise {
            a.cmp(b)
        } else {
            self.user.compare(a, b)
        }
    }

    /// Compares two encoded internal keys.
    #[inline]
    pub fn compare(&self, a: &[u8], b: &[u8]) -> Ordering {
        self.compare_user(user_key(a), user_key(b)).then_with(|| trailer_of(b).cmp(&trailer_of(a)))
    }
}

/// A range tombstone: deletes every key in `[start, end)` written with a seqnum below `seq`.
#[derive(Clone, PartialEq, Eq)]
pub struct RangeTombstone {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub seq: u64,
}

impl fmt::Debug for RangeTombstone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}, {})#{}",
            String::from_utf8_lossy(&self.start),
            String::from_utf8_lossy(&self.end),
            self.seq
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comparator::Bytewise;

    #[test]
    fn order_is_user_key_then_newest_first() {
        let c = InternalComparator::new(Arc::new(Bytewise));
        let a5 = encode(b"a", 5, Kind::Set);
        let a3 = encode(b"a", 3, Kind::Set);
        let b9 = encode(b"b", 9, Kind::Delete);
        assert_eq!(c.compare(&a5, &a3), Ordering::Less);
        assert_eq!(c.compare(&a3, &b9), Ordering::Less);
        assert_eq!(c.compare(&seek_key(b"a", 5), &a5), Ordering::Less);
        assert_eq!(c.compare(&a3, &last_key(b"a")), Ordering::Less);
        let p = parse(&a5).unwrap();
        assert_eq!((p.user_key, p.seq, p.kind), (&b"a"[..], 5, Kind::Set));
        assert!(parse(b"short").is_none());
    }
}
