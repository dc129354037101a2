//! The table's bloom filter: one bit array for the whole table over whole user keys and,
//! with a prefix extractor, their prefixes. Probes use double hashing over a 64-bit hash.
//!
//! Layout: `bits: [u8; n]` then `probes: u8` (1..=30). A probe sets bit `g % (8n)` where
//! `g = h1 + i*h2` for `i in 0..probes`, `h1`/`h2` the low/high halves of [`hash64`].

use crate::error::{Error, Result};

/// Seed for whole user keys.
pub const KEY_SEED: u64 = 0x6b65_795f_7365_6564;
/// Seed for prefixes, so that a prefix and an equal whole key set different bits.
pub const PREFIX_SEED: u64 = 0x7072_6566_6978_5f73;

const M1: u64 = 0x9e37_79b9_7f4a_7c15;
const M2: u64 = 0xbf58_476d_1ce4_e5b9;
const M3: u64 = 0x94d0_49bb_1331_11eb;

/// A small 64-bit hash: multiply-rotate over 8-byte words, then a splitmix64 finaliser.
/// Part of the on-disk format: changing it changes which bits a key sets.
pub fn hash64(data: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M1);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("chunk of 8"));
        h = (h ^ w.wrapping_mul(M2)).rotate_left(31).wrapping_mul(M1);
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    h = (h ^ u64::from_le_bytes(tail).wrapping_mul(M3)).rotate_left(27).wrapping_mul(M1);
    h ^= h >> 30;
    h = h.wrapping_mul(M2);
    h ^= h >> 27;
    h = h.wrapping_mul(M3);
    h ^ (h >> 31)
}

/// Collects hashes while a table is written and builds the filter at the end.
#[derive(Debug)]
pub struct FilterBuilder {
    bits_per_key: usize,
    hashes: Vec<u64>,
}

impl FilterBuilder {
    /// A builder with `bits_per_key` (> 0) bits per added hash.
    pub fn new(bits_per_key: usize) -> FilterBuilder {
        assert!(bits_per_key > 0);
        FilterBuilder { bits_per_key, hashes: Vec::new() }
    }

    /// Adds an item (a user key with [`KEY_SEED`] or a prefix with [`PREFIX_SEED`]).
    pub fn add(&mut self, item: &[u8], seed: u64) {
        let h = hash64(item, seed);
        // Consecutive versions of one key (or keys of one prefix) hash the same: keep one.
        if self.hashes.last() != Some(&h) {
            self.hashes.push(h);
        }
    }

    /// The filter bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        self.hashes.sort_unstable();
        self.hashes.dedup();
        // k = bits_per_key * ln 2 minimises the false-positive rate.
        let probes = ((self.bits_per_key as f64 * 0.69) as usize).clamp(1, 30);
        let nbits = (self.hashes.len() * self.bits_per_key).max(64);
        let nbytes = nbits.div_ceil(8);
        let nbits = (nbytes * 8) as u64;
        let mut out = vec![0u8; nbytes + 1];
        for &h in &self.hashes {
            let (mut g, delta) = (h & 0xffff_ffff, (h >> 32) | 1);
            for _ in 0..probes {
                let bit = g % nbits;
                out[(bit / 8) as usize] |= 1 << (bit % 8);
                g = g.wrapping_add(delta);
            }
        }
        out[nbytes] = probes as u8;
        self.hashes.clear();
        out
    }
}

/// A filter read back from a table.
#[derive(Debug)]
pub struct Filter {
    data: Vec<u8>,
    probes: u32,
}

impl Filter {
    /// Validates filter bytes.
    pub fn new(data: Vec<u8>, location: &str) -> Result<Filter> {
        match data.split_last() {
            Some((&p, bits)) if !bits.is_empty() && (1..=30).contains(&p) => {
                Ok(Filter { probes: u32::from(p), data })
            }
            _ => Err(Error::corruption("bad filter block", location)),
        }
    }

    /// False only when no item equal to `item` (with `seed`) was added.
    pub fn may_contain(&self, item: &[u8], seed: u64) -> bool {
        let nbytes = self.data.len() - 1;
        let nbits = (nbytes * 8) as u64;
        let h = hash64(item, seed);
        let (mut g, delta) = (h & 0xffff_ffff, (h >> 32) | 1);
        for _ in 0..self.probes {
            let bit = g % nbits;
            if self.data[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
                return false;
            }
            g = g.wrapping_add(delta);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let mut b = FilterBuilder::new(10);
        for i in 0..2000u32 {
            b.add(format!("key{i}").as_bytes(), KEY_SEED);
        }
        let f = Filter::new(b.finish(), "t").unwrap();
        for i in 0..2000u32 {
            assert!(f.may_contain(format!("key{i}").as_bytes(), KEY_SEED));
        }
        let fp = (0..10000u32)
            .filter(|i| f.may_contain(format!("other{i}").as_bytes(), KEY_SEED))
            .count();
        // 10 bits per key gives about 1%; allow a wide margin.
        assert!(fp < 300, "false positives: {fp}");
    }

    #[test]
    fn empty_filter_contains_nothing_and_bad_bytes_are_corruption() {
        let f = Filter::new(FilterBuilder::new(10).finish(), "t").unwrap();
        assert!(!f.may_contain(b"a", KEY_SEED));
        assert!(Filter::new(vec![], "t").unwrap_err().is_corruption());
        assert!(Filter::new(vec![0, 31], "t").unwrap_err().is_corruption());
        assert!(Filter::new(vec![5], "t").unwrap_err().is_corruption());
    }
}
