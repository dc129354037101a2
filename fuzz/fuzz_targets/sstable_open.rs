//! Fuzz target `sstable_open`: a thin adapter over `cobble::internal::fuzz::sstable_open`, which says what it
//! checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cobble::internal::fuzz::sstable_open(data));
