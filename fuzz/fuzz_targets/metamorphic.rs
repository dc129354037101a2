//! Fuzz target `metamorphic`: a thin adapter over `tumbler::fuzz::metamorphic`, which runs a
//! generated op sequence under a random config and the default one through all of Tumbler's
//! oracles.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tumbler::fuzz::metamorphic(data));
