//! Fuzz target `manifest_replay`: a thin adapter over `cobble::internal::fuzz::manifest_replay`, which says what it
//! checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cobble::internal::fuzz::manifest_replay(data));
