//! User-key comparators. The comparator's name is stored in the manifest and checked on open.

use std::cmp::Ordering;
use std::fmt::Debug;

/// Orders user keys. Must be a total order, consistent forever for a given name.
pub trait Comparator: Send + Sync + Debug {
    /// A stable name, recorded in the manifest.
    fn name(&self) -> &str;
    /// Compares two user keys.
    fn compare(&self, a: &[u8], b: &[u8]) -> Ordering;
    /// A short key `s` with `a <= s < b` (for index blocks); `a` itself is always correct.
    fn separator(&self, a: &[u8], _b: &[u8]) -> Vec<u8> {
        a.to_vec()
    }
    /// A short key `s >= a`; `a` itself is always correct.
    fn successor(&self, a: &[u8]) -> Vec<u8> {
        a.to_vec()
    }
}

/// Lexicographic byte order, the default.
#[derive(Debug, Default, Clone, Copy)]
pub struct Bytewise;

impl Comparator for Bytewise {
    fn name(&self) -> &str {
        "cobble.bytewise"
    }

    fn compare(&self, a: &[u8], b: &[u8]) -> Ordering {
        a.cmp(b)
    }

    fn separator(&self, a: &[u8], b: &[u8]) -> Vec<u8> {
        // Shorten `a` to its common prefix with `b` plus one incremented byte, when that stays
        // strictly below `b`.
        let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        if common < a.len() && common < b.len() {
            let byte = a[common];
            if byte < 0xff && byte + 1 < b[common] {
                let mut s = a[..=common].to_vec();
                s[common] += 1;
                debug_assert!(s.as_slice() > a && s.as_slice() < b);
                return s;
            }
        }
        a.to_vec()
    }

    fn successor(&self, a: &[u8]) -> Vec<u8> {
        for (i, &byte) in a.iter().enumerate() {
            if byte != 0xff {
                let mut s = a[..=i].to_vec();
                s[i] += 1;
                return s;
            }
        }
        a.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytewise_separator_and_successor_stay_in_range() {
        let c = Bytewise;
        assert_eq!(c.separator(b"abcd", b"abzz"), b"abd".to_vec());
        assert_eq!(c.separator(b"abc", b"abd"), b"abc".to_vec());
        assert_eq!(c.separator(b"ab", b"abc"), b"ab".to_vec());
        assert_eq!(c.successor(b"\xff\xffa"), b"\xff\xffb".to_vec());
        assert_eq!(c.successor(b"\xff"), b"\xff".to_vec());
    }
}
