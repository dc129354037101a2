//! Fuzz target `ops_parse`: a thin adapter over `tumbler::fuzz::ops_parse`, which says what it
//! checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tumbler::fuzz::ops_parse(data));
