//! Fuzz target `batch_decode`: a thin adapter over `cobble::internal::fuzz::batch_decode`, which says what it
//! checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cobble::internal::fuzz::batch_decode(data));
