//! Fuzz target `wal_replay`: a thin adapter over `cobble::fuzz::wal_replay`, which says what it
//! checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cobble::fuzz::wal_replay(data));
