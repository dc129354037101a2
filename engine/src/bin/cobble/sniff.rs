//! What a file that holds no valid record looks like, from its first and last bytes, so a dump
//! of the wrong kind of file says so instead of printing "0 records".

use std::path::Path;

use crate::open_file;

/// The SSTable footer's magic, its last 8 bytes (`docs/format.md`).
const TABLE_MAGIC: &[u8; 8] = b"cobbleT1";

/// A phrase naming what `path` looks like: `an SSTable (footer magic)`, `an ELF binary`, ...
pub fn looks_like(path: &Path) -> String {
    let Ok(file) = open_file(path) else { return "an unreadable file".to_string() };
    let Ok(len) = file.len() else { return "an unreadable file".to_string() };
    if len == 0 {
        return "an empty file".to_string();
    }
    let head_len = len.min(512) as usize;
    let mut head = vec![0u8; head_len];
    if file.read_at(0, &mut head).is_err() {
        return "an unreadable file".to_string();
    }
    let mut tail = [0u8; 8];
    let has_tail = len >= 8 && file.read_at(len - 8, &mut tail).is_ok();
    if head.starts_with(b"\x7fELF") {
        "an ELF binary".to_string()
    } else if has_tail && &tail == TABLE_MAGIC {
        "an SSTable (footer magic)".to_string()
    } else if head.starts_with(b"# tumbler ops") {
        "a Tumbler ops file".to_string()
    } else if head.iter().all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace()) {
        "a text file".to_string()
    } else if head.iter().all(|&b| b == 0) {
        "zeroes".to_string()
    } else {
        "random or damaged bytes".to_string()
    }
}
