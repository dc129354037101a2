//! Fuzzing entry points of the harness: one function per harness-side target of the `fuzz/`
//! cargo-fuzz project, here (not in `fuzz/`) so `harness/tests/fuzz_corpus.rs` runs them on
//! stable Rust. (The engine's decoders have theirs in `cobble::fuzz`.)
//!
//! `metamorphic`, which will build ops and an engine configuration from the bytes and run them
//! through the runner, belongs here too once the runner exists.

use crate::ops;

/// `data` as an ops file (lossily decoded as UTF-8) through [`ops::parse`].
///
/// Errors are the expected answer to bad text; a panic is a bug. Checked: a file that parses
/// prints to text that parses back to the same file, and printing is stable (printing the
/// re-parsed file gives the same text).
pub fn ops_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(file) = ops::parse(&text) else {
        return;
    };
    let printed = ops::print(&file);
    let again = ops::parse(&printed)
        .unwrap_or_else(|e| panic!("printed ops file does not parse: {e}\n{printed}"));
    assert_eq!(again, file, "parse(print(x)) != x; printed:\n{printed}");
    assert_eq!(ops::print(&again), printed, "printing is not stable");
}
