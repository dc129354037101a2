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

/// 64-bit FNV-1a, for image hashes that must not depend on the Rust version or the process
/// (std's `DefaultHasher` promises neither across releases).
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

#[cfg(test)]
mod tests {
    use super::Fnv64;

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
