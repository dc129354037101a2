//! Version edits: the records of the MANIFEST. Each edit says which tables were added to and
//! removed from which level, plus the counters recovery needs.
//!
//! Encoding: a sequence of fields, each a tag byte followed by its payload (varints and
//! length-prefixed byte strings, see `crate::coding`). Unknown tags are corruption.

use std::collections::BTreeSet;

use super::{FileMetadata, NUM_LEVELS};
use crate::coding::{put_length_prefixed, put_varint64, Decoder};
use crate::error::{Error, Result};
use crate::key;

const TAG_COMPARATOR: u8 = 1;
const TAG_LOG_NUMBER: u8 = 2;
const TAG_NEXT_FILE_NUM: u8 = 3;
const TAG_LAST_SEQ: u8 = 4;
const TAG_DELETED_FILE: u8 = 5;
const TAG_NEW_FILE: u8 = 6;

/// A change from one version to the next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// The comparator's name; set in the first edit of every manifest.
    pub comparator: Option<String>,
    /// WALs numbered below this hold nothing that is not in a table.
    pub log_number: Option<u64>,
    pub next_file_num: Option<u64>,
    pub last_seq: Option<u64>,
    /// `(level, file number)` removed.
    pub deleted: BTreeSet<(usize, u64)>,
    /// `(level, file)` added.
    pub added: Vec<(usize, FileMetadata)>,
}

impl VersionEdit {
    /// Encodes the edit as one manifest record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(name) = &self.comparator {
            out.push(TAG_COMPARATOR);
            put_length_prefixed(&mut out, name.as_bytes());
        }
        for (tag, value) in [
            (TAG_LOG_NUMBER, self.log_number),
            (TAG_NEXT_FILE_NUM, self.next_file_num),
            (TAG_LAST_SEQ, self.last_seq),
        ] {
            if let Some(v) = value {
                out.push(tag);
                put_varint64(&mut out, v);
            }
        }
        for &(level, num) in &self.deleted {
            out.push(TAG_DELETED_FILE);
            put_varint64(&mut out, level as u64);
            put_varint64(&mut out, num);
        }
        for (level, f) in &self.added {
            out.push(TAG_NEW_FILE);
            put_varint64(&mut out, *level as u64);
            put_varint64(&mut out, f.num);
            put_varint64(&mut out, f.size);
            put_length_prefixed(&mut out, &f.smallest);
            put_length_prefixed(&mut out, &f.largest);
            put_varint64(&mut out, f.smallest_seq);
            put_varint64(&mut out, f.largest_seq);
            out.push(u8::from(f.has_range_dels));
        }
        out
    }

    /// Decodes a manifest record; `location` names it in errors.
    pub fn decode(bytes: &[u8], location: &str) -> Result<VersionEdit> {
        let mut d = Decoder::new(bytes);
        let mut edit = VersionEdit::default();
        let bad = |what: &str, d: &Decoder<'_>| {
            Error::corruption(
                format!("version edit: {what}"),
                format!("{location} +{}", d.position()),
            )
        };
        while !d.is_empty() {
            let tag = d.u8().ok_or_else(|| bad("missing tag", &d))?;
            match tag {
                TAG_COMPARATOR => {
                    let name = d.length_prefixed().ok_or_else(|| bad("comparator", &d))?;
                    let name =
                        std::str::from_utf8(name).map_err(|_| bad("comparator not utf-8", &d))?;
                    edit.comparator = Some(name.to_string());
                }
                TAG_LOG_NUMBER => {
                    edit.log_number = Some(d.varint64().ok_or_else(|| bad("log number", &d))?)
                }
                TAG_NEXT_FILE_NUM => {
                    edit.next_file_num =
                        Some(d.varint64().ok_or_else(|| bad("next file number", &d))?)
                }
                TAG_LAST_SEQ => {
                    let seq = d.varint64().ok_or_else(|| bad("last seqnum", &d))?;
                    if seq > key::SEQNUM_MAX {
                        return Err(bad("last seqnum out of range", &d));
                    }
                    edit.last_seq = Some(seq)
                }
                TAG_DELETED_FILE => {
                    let level = level(&mut d).ok_or_else(|| bad("deleted file level", &d))?;
                    let num = d.varint64().ok_or_else(|| bad("deleted file number", &d))?;
                    edit.deleted.insert((level, num));
                }
                TAG_NEW_FILE => {
                    let f = new_file(&mut d).ok_or_else(|| bad("new file", &d))?;
                    edit.added.push(f);
                }
                _ => return Err(bad(&format!("unknown tag {tag}"), &d)),
            }
        }
        Ok(edit)
    }
}

fn level(d: &mut Decoder<'_>) -> Option<usize> {
    let level = usize::try_from(d.varint64()?).ok()?;
    (level < NUM_LEVELS).then_some(level)
}

fn new_file(d: &mut Decoder<'_>) -> Option<(usize, FileMetadata)> {
    let level = level(d)?;
    let num = d.varint64()?;
    let size = d.varint64()?;
    let smallest = d.length_prefixed()?.to_vec();
    let largest = d.length_prefixed()?.to_vec();
    let smallest_seq = d.varint64()?;
    let largest_seq = d.varint64()?;
    let has_range_dels = match d.u8()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    key::parse(&smallest)?;
    key::parse(&largest)?;
    if smallest_seq > largest_seq || largest_seq > key::SEQNUM_MAX {
        return None;
    }
    let file =
        FileMetadata { num, size, smallest, largest, smallest_seq, largest_seq, has_range_dels };
    Some((level, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Kind;

    fn sample() -> VersionEdit {
        VersionEdit {
            comparator: Some("cobble.bytewise".into()),
            log_number: Some(4),
            next_file_num: Some(9),
            last_seq: Some(77),
            deleted: [(0, 3), (1, 5)].into_iter().collect(),
            added: vec![(
                1,
                FileMetadata {
                    num: 8,
                    size: 1000,
                    smallest: key::encode(b"a", 3, Kind::Set),
                    largest: key::encode(b"m", 70, Kind::Delete),
                    smallest_seq: 3,
                    largest_seq: 70,
                    has_range_dels: true,
                },
            )],
        }
    }

    #[test]
    fn round_trip() {
        let e = sample();
        assert_eq!(VersionEdit::decode(&e.encode(), "test").unwrap(), e);
        assert_eq!(VersionEdit::decode(&[], "test").unwrap(), VersionEdit::default());
    }

    #[test]
    fn every_truncation_and_flip_is_an_error_or_decodes_without_panic() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            // A cut at a field boundary decodes to a shorter edit; elsewhere it is corruption.
            if let Err(e) = VersionEdit::decode(&bytes[..n], "t") {
                assert!(e.is_corruption());
            }
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                if let Err(e) = VersionEdit::decode(&b, "t") {
                    assert!(e.is_corruption());
                }
            }
        }
        assert!(VersionEdit::decode(&[99], "t").unwrap_err().is_corruption());
    }
}
