//! Fuzz target `wal_replay`: a thin adapter over `cobble::internal::fuzz::wal_replay`, which says what it
//! checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cobble::internal::fuzz::wal_replay(data));
