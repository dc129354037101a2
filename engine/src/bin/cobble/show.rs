//! Text forms shared by every subcommand: escaped bytes, internal keys, values, batch ops.

use cobble::internal::key::{self, Kind, RangeTombstone, SEQNUM_MAX};
use cobble::internal::version::FileMetadata;

/// Bytes as text: printable ASCII as is, a backslash doubled, anything else as `\xNN`, so
/// the output is one line per entry and binary keys stay readable and unambiguous.
pub fn bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(c)),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out
}

/// The short upper-case name of a kind, as the dumps print it.
pub fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Delete => "DEL",
        Kind::Set => "SET",
        Kind::Merge => "MERGE",
        Kind::SingleDelete => "SINGLEDEL",
        Kind::RangeDelete => "RANGEDEL",
    }
}

/// A seqnum; the largest one (used by range-tombstone sentinels and seek keys) is `inf`.
pub fn seq(s: u64) -> String {
    if s == SEQNUM_MAX {
        "inf".to_string()
    } else {
        s.to_string()
    }
}

/// An encoded internal key as `user_key#seq,KIND`; bytes that do not parse as one are shown
/// escaped inside `<bad key ...>` rather than rejected, since a dump should show what is there.
pub fn ikey(k: &[u8]) -> String {
    match key::parse(k) {
        Some(p) => format!("{}#{},{}", bytes(p.user_key), seq(p.seq), kind(p.kind)),
        None if k.is_empty() => "-".to_string(),
        None => format!("<bad key {}>", bytes(k)),
    }
}

/// A value: whole when at most `width` bytes, else its first `width` bytes and its length.
pub fn value(v: &[u8], width: usize) -> String {
    if v.len() <= width {
        bytes(v)
    } else {
        format!("{}... ({} bytes)", bytes(&v[..width]), v.len())
    }
}

/// A range tombstone as `[start, end)#seq`.
pub fn tombstone(t: &RangeTombstone) -> String {
    format!("[{}, {})#{}", bytes(&t.start), bytes(&t.end), seq(t.seq))
}

/// One write (a table entry or a batch operation) at `seq`: `key#seq,KIND -> value`, with a
/// range deletion shown as `[start, end)#seq,RANGEDEL` and deletions without a value.
pub fn op(k: Kind, user_key: &[u8], seqnum: u64, v: &[u8], width: usize) -> String {
    match k {
        Kind::Set | Kind::Merge => {
            format!("{}#{},{} -> {}", bytes(user_key), seq(seqnum), kind(k), value(v, width))
        }
        Kind::Delete | Kind::SingleDelete => {
            format!("{}#{},{}", bytes(user_key), seq(seqnum), kind(k))
        }
        Kind::RangeDelete => {
            format!("[{}, {})#{},{}", bytes(user_key), value(v, width), seq(seqnum), kind(k))
        }
    }
}

/// A table as a version lists it: number, size, internal key range, seqnums, and whether it
/// holds range tombstones.
pub fn file(f: &FileMetadata) -> String {
    format!(
        "{:06} size={} [{} .. {}] seqs {}..{}{}",
        f.num,
        f.size,
        ikey(&f.smallest),
        ikey(&f.largest),
        f.smallest_seq,
        f.largest_seq,
        if f.has_range_dels { " rangedels" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(bytes(b"a\\b\x00\xff~ "), "a\\\\b\\x00\\xff~ ");
        assert_eq!(ikey(&key::encode(b"k\n", 7, Kind::Merge)), "k\\x0a#7,MERGE");
        assert_eq!(ikey(&key::encode(b"z", SEQNUM_MAX, Kind::RangeDelete)), "z#inf,RANGEDEL");
        assert_eq!(ikey(b"ab"), "<bad key ab>");
        assert_eq!(value(b"abcdef", 6), "abcdef");
        assert_eq!(value(b"abcdefg", 3), "abc... (7 bytes)");
        assert_eq!(op(Kind::Delete, b"k", 3, b"", 8), "k#3,DEL");
        assert_eq!(op(Kind::RangeDelete, b"a", 4, b"c", 8), "[a, c)#4,RANGEDEL");
        assert_eq!(op(Kind::Set, b"a", 5, b"v", 8), "a#5,SET -> v");
    }
}
