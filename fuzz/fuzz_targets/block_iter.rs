//! Fuzz target `block_iter`: a thin adapter over `cobble::internal::fuzz::block_iter`, which says what it
//! checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cobble::internal::fuzz::block_iter(data));
