//! The simulated world the engine runs in: `SimFs`, a deterministic filesystem with a crash and
//! fault model (written down at the top of `fs.rs`).
//!
//! Everything here is a pure function of the seeds and the sequence of calls: no clock, no
//! threads, no unseeded randomness, no hash-map iteration order.

mod crash;
mod fs;
mod planted;

pub use crash::{CrashPolicy, CrashReport};
pub use fs::{cited_faults, CrashPoint, FaultConfig, FaultKind, FaultRecord, SimFs, SimStats};
pub use planted::{PlantedFault, PlantedFs, ALL_PLANTED};

/// 64-bit FNV-1a, for deriving seeds (per config, per nightly shard, per generated stream):
/// its values must not depend on the Rust version or the process (std's `DefaultHasher`
/// promises neither across releases) and never change, or every saved seed would replay
/// another run.
#[derive(Debug, Clone)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Feeds a number (little endian), so that field boundaries stay unambiguous.
    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    /// Feeds a length-prefixed byte string.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_u64(bytes.len() as u64);
        self.write(bytes);
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// A fast 64-bit digest of outputs (scans and long values in histories, filesystem images),
/// eight bytes a step where FNV takes one. Like [`Fnv64`] it depends on nothing but its input,
/// but its values are only ever compared within one build: seeds are derived with `Fnv64`,
/// whose values are fixed.
#[derive(Debug, Clone)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(0x243f_6a88_85a3_08d3)
    }
}

impl Digest {
    const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(Self::MUL).rotate_left(31);
    }

    /// Feeds a length-prefixed byte string.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_u64(bytes.len() as u64);
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes(w.try_into().expect("chunks of eight")));
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        self.mix(u64::from_le_bytes(tail));
    }

    /// Feeds a number.
    pub fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }

    /// The digest so far, with its bits avalanched (splitmix64's finalizer).
    pub fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::{Digest, Fnv64};

    #[test]
    fn digests_tell_apart_lengths_orders_and_single_bits() {
        let d = |parts: &[&[u8]]| {
            let mut d = Digest::default();
            parts.iter().for_each(|p| d.write_bytes(p));
            d.finish()
        };
        let long = [7u8; 23];
        let mut flipped = long;
        flipped[19] ^= 4;
        let all = [
            d(&[]),
            d(&[b""]),
            d(&[b"", b""]),
            d(&[b"\0"]),
            d(&[b"ab", b"c"]),
            d(&[b"a", b"bc"]),
            d(&[b"c", b"ab"]),
            d(&[&long]),
            d(&[&flipped]),
            d(&[&long[..22]]),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b, "digests {all:x?}");
            }
        }
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        let h = |s: &[u8]| {
            let mut f = Fnv64::default();
            f.write(s);
            f.finish()
        };
        assert_eq!(h(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
