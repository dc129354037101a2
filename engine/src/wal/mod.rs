//! The record log: the physical format shared by the write-ahead log and the MANIFEST.
//!
//! # Format
//!
//! A log is a sequence of records (opaque byte strings, possibly empty, possibly many
//! megabytes). The file is cut into blocks of [`BLOCK_SIZE`] bytes, and each record is stored
//! as one or more *fragments*, none of which crosses a block boundary:
//!
//! 1. A fragment is a 7-byte header followed by its payload:
//!    `masked_crc32c: u32 LE | payload_len: u16 LE | type: u8 | payload`.
//!    The checksum covers the type byte and the payload (see [`crate::coding::mask_crc`]).
//! 2. The type says which part of a record the payload is: [`FragmentType::Full`] (the whole
//!    record), or [`FragmentType::First`], any number of [`FragmentType::Middle`], then
//!    [`FragmentType::Last`]. Type 0 is never written, so a zeroed header is recognisably not
//!    a fragment.
//! 3. When fewer than [`HEADER_SIZE`] bytes remain in a block, the writer fills them with zeros
//!    and the next fragment starts the next block. A reader skips such a block tail unread.
//!    When exactly a header's worth remains, the writer may put an empty `First` there.
//! 4. The writer never pads the last block: the file ends right after the last fragment.
//!
//! Because every block starts with a fragment header, a reader that loses its place can find
//! fragments again at the next block boundary; the recovery rules in [`LogReader`] use that
//! (and a byte-by-byte search) to tell a damaged tail from damage in the middle of the log.

mod reader;
mod writer;

pub use reader::{LogReader, WalRecoveryMode};
pub use writer::LogWriter;

/// The size of a block. Fragments never cross a multiple of this offset.
pub const BLOCK_SIZE: usize = 32 * 1024;

/// The size of a fragment header: checksum (4), length (2), type (1).
pub const HEADER_SIZE: usize = 7;

/// Which part of a record a fragment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FragmentType {
    /// A whole record.
    Full = 1,
    /// The start of a record continued in later fragments.
    First = 2,
    /// Neither the start nor the end of a record.
    Middle = 3,
    /// The end of a record.
    Last = 4,
}

impl FragmentType {
    /// Decodes a type byte; `None` for 0 (zero fill) and unknown values.
    pub fn from_u8(b: u8) -> Option<FragmentType> {
        Some(match b {
            1 => FragmentType::Full,
            2 => FragmentType::First,
            3 => FragmentType::Middle,
            4 => FragmentType::Last,
            _ => return None,
        })
    }
}

/// A fragment header whose type, length and checksum are all valid for its place in
/// `block` (bytes of one block, starting at the block boundary) at `pos`: returns its type
/// and payload. Used by the reader both to read and to search for surviving fragments.
fn valid_fragment_at(block: &[u8], pos: usize) -> Option<(FragmentType, &[u8])> {
    let header = block.get(pos..pos.checked_add(HEADER_SIZE)?)?;
    let kind = FragmentType::from_u8(header[6])?;
    let len = usize::from(u16::from_le_bytes([header[4], header[5]]));
    let payload = block.get(pos + HEADER_SIZE..pos + HEADER_SIZE + len)?;
    let stored = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    (crate::coding::masked_crc32c(&[&header[6..7], payload]) == stored).then_some((kind, payload))
}

#[cfg(test)]
mod tests;
