//! Names of the files in a database directory.
//!
//! `NNNNNN.log` (WAL), `NNNNNN.sst` (table), `MANIFEST-NNNNNN`, `CURRENT` (names the live
//! manifest), `LOCK`, and `NNNNNN.dbtmp` (a file being written that is renamed into place).

use std::path::{Path, PathBuf};

/// What a file in the database directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    Wal(u64),
    Table(u64),
    Manifest(u64),
    Temp(u64),
    Current,
    Lock,
}

/// The path of WAL `num`.
pub fn wal(dir: &Path, num: u64) -> PathBuf {
    dir.join(format!("{num:06}.log"))
}

/// The path of table `num`.
pub fn table(dir: &Path, num: u64) -> PathBuf {
    dir.join(format!("{num:06}.sst"))
}

/// The path of manifest `num`.
pub fn manifest(dir: &Path, num: u64) -> PathBuf {
    dir.join(format!("MANIFEST-{num:06}"))
}

/// The path of temporary file `num`.
pub fn temp(dir: &Path, num: u64) -> PathBuf {
    dir.join(format!("{num:06}.dbtmp"))
}

/// The path of `CURRENT`.
pub fn current(dir: &Path) -> PathBuf {
    dir.join("CURRENT")
}

/// The path of `LOCK`.
pub fn lock(dir: &Path) -> PathBuf {
    dir.join("LOCK")
}

/// Parses a name from the database directory; `None` for names Cobble does not own.
pub fn parse(name: &str) -> Option<FileKind> {
    match name {
        "CURRENT" => return Some(FileKind::Current),
        "LOCK" => return Some(FileKind::Lock),
        _ => {}
    }
    if let Some(num) = name.strip_prefix("MANIFEST-") {
        return parse_num(num).map(FileKind::Manifest);
    }
    let (num, ext) = name.split_once('.')?;
    let num = parse_num(num)?;
    match ext {
        "log" => Some(FileKind::Wal(num)),
        "sst" => Some(FileKind::Table(num)),
        "dbtmp" => Some(FileKind::Temp(num)),
        _ => None,
    }
}

fn parse_num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let dir = Path::new("/d");
        for (path, kind) in [
            (wal(dir, 7), FileKind::Wal(7)),
            (table(dir, 1234567), FileKind::Table(1234567)),
            (manifest(dir, 3), FileKind::Manifest(3)),
            (temp(dir, 9), FileKind::Temp(9)),
            (current(dir), FileKind::Current),
            (lock(dir), FileKind::Lock),
        ] {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(parse(name), Some(kind), "{name}");
        }
        for bad in ["", "x.log", "12.txt", "MANIFEST-", "MANIFEST-1a", "-1.sst", ".sst"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
