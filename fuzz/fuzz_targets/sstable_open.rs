//! Fuzz target `sstable_open`: a thin adapter over `cobble::fuzz::sstable_open`, which says what it
//! checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cobble::fuzz::sstable_open(data));
