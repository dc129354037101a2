//! `LogReader`: reassembles records from fragments and decides what damage means.
//!
//! Recovery rules. The reader returns whole, checksummed records in order until it meets
//! *damage*: a bad checksum, type or length, a header or payload cut off by the end of the
//! file, a record whose `First` is never followed by its `Last`, or a `Middle`/`Last` with no
//! `First`. It never skips damage to read on, so every record it returns is a chain of valid
//! fragments from the start of the file: exactly a record the writer wrote.
//!
//! What happens at damage depends on what follows it:
//! 1. Only zeros to the end of the file, and no record under way: a clean end (preallocated
//!    or zero-filled space is not damage).
//! 2. Some valid fragment anywhere later (found by trying every byte offset): the damage is
//!    in the middle of the log, which a crash cannot explain (the writer appends, and a valid
//!    later fragment means later bytes were written and survived). Always
//!    [`Error::Corruption`].
//! 3. Otherwise the damage is the log's *tail*, the shape a torn final write leaves:
//!    [`WalRecoveryMode::TolerateCorruptTail`] ends the log there (the records before it
//!    stand; [`LogReader::dropped_tail`] says what was dropped) and
//!    [`WalRecoveryMode::AbsoluteConsistency`] reports [`Error::Corruption`].
//!
//! The search in rule 2 also looks inside the dropped bytes' payloads, so a record whose
//! payload happens to contain a well-formed fragment (a log stored inside a log) turns a
//! torn tail into a reported corruption: a false alarm, never a silent loss.

use crate::sync::Arc;
use std::fmt;

use super::{valid_fragment_at, FragmentType, BLOCK_SIZE, HEADER_SIZE};
use crate::env::File;
use crate::error::{Error, Result};

const BLOCK: u64 = BLOCK_SIZE as u64;

/// How WAL recovery treats a damaged log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WalRecoveryMode {
    /// A torn or corrupt tail of the newest log is dropped (the writes in it were never
    /// acknowledged as synced); corruption before the tail is an error.
    #[default]
    TolerateCorruptTail,
    /// Any damage, even at the tail, is `Error::Corruption`.
    AbsoluteConsistency,
}

/// Reads the records of a log file in order.
pub struct LogReader {
    file: Arc<dyn File>,
    name: String,
    mode: WalRecoveryMode,
    /// The file's length when the reader was opened; bytes appended later are not read.
    file_len: u64,
    /// The bytes of block `block_index` (shorter than a block only at the end of the file).
    block: Vec<u8>,
    block_index: Option<u64>,
    /// Offset of the next fragment header to read.
    pos: u64,
    /// End of the last record returned.
    record_end: u64,
    state: State,
    dropped_tail: Option<String>,
}

/// Where the reader stands; `End` and `Failed` are final.
#[derive(Debug)]
enum State {
    Reading,
    End,
    Failed { what: String, location: String },
}

/// The outcome of reading one record's fragments.
enum Step {
    Record(Vec<u8>),
    End,
    Damage(Damage),
}

/// Damage met while reading: what rules 1–3 of the module docs need to decide.
struct Damage {
    /// Where the damage was seen.
    at: u64,
    /// The first byte not returned: the start of the record under way, or `at`.
    dropped_from: u64,
    reason: String,
    /// Where the search for later valid fragments (and for non-zero bytes) starts.
    scan_from: u64,
    /// True when zeros from `scan_from` to the end make this a clean end (rule 1).
    clean_if_zeros: bool,
}

impl fmt::Debug for LogReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("file_len", &self.file_len)
            .field("pos", &self.pos)
            .field("state", &self.state)
            .finish()
    }
}

impl LogReader {
    /// A reader of `file`, called `name` in error locations.
    pub fn new(file: Arc<dyn File>, name: String, mode: WalRecoveryMode) -> Result<LogReader> {
        let file_len = file.len()?;
        Ok(LogReader {
            file,
            name,
            mode,
            file_len,
            block: Vec::new(),
            block_index: None,
            pos: 0,
            record_end: 0,
            state: State::Reading,
            dropped_tail: None,
        })
    }

    /// The next record: `Ok(Some(record))` for each whole valid record in order, `Ok(None)` at
    /// the clean end or at a tolerated damaged tail, `Err(Error::Corruption { .. })` for damage
    /// that cannot be tolerated. After `Ok(None)` or a corruption, every later call answers the
    /// same. An I/O error leaves the reader where it was, so the call may be retried.
    pub fn read_record(&mut self) -> Result<Option<Vec<u8>>> {
        match &self.state {
            State::Reading => {}
            State::End => return Ok(None),
            State::Failed { what, location } => return Err(Error::corruption(what, location)),
        }
        let start = self.pos;
        let step = match self.next_record() {
            Ok(step) => step,
            Err(e) => {
                self.pos = start;
                return Err(e);
            }
        };
        match step {
            Step::Record(record) => {
                self.record_end = self.pos;
                Ok(Some(record))
            }
            Step::End => {
                self.state = State::End;
                Ok(None)
            }
            Step::Damage(damage) => match self.judge(damage) {
                Ok(()) => {
                    self.state = State::End;
                    Ok(None)
                }
                Err(Error::Corruption { what, location }) => {
                    self.state = State::Failed { what: what.clone(), location: location.clone() };
                    Err(Error::Corruption { what, location })
                }
                Err(e) => {
                    self.pos = start;
                    Err(e)
                }
            },
        }
    }

    /// After `Ok(None)`: a description of the damaged tail that was dropped, if there was one.
    pub fn dropped_tail(&self) -> Option<&str> {
        self.dropped_tail.as_deref()
    }

    /// The file offset just past the last record returned (0 before the first). After a
    /// dropped tail, the log's intact part is the file's first `record_end()` bytes.
    pub fn record_end(&self) -> u64 {
        self.record_end
    }

    /// Reads fragments from `pos` until a record is whole, the file ends, or damage.
    fn next_record(&mut self) -> Result<Step> {
        let mut record = Vec::new();
        // Offset of the `First` fragment of the record being assembled.
        let mut first_at: Option<u64> = None;
        loop {
            let at = self.pos;
            let dropped_from = first_at.unwrap_or(at);
            let damage = |reason: String, scan_from: u64| {
                Ok(Step::Damage(Damage {
                    at,
                    dropped_from,
                    reason,
                    scan_from,
                    clean_if_zeros: false,
                }))
            };
            if at >= self.file_len {
                return match first_at {
                    None => Ok(Step::End),
                    Some(s) => damage(format!("record at offset {s} has no last fragment"), at),
                };
            }
            let in_block = (at % BLOCK) as usize;
            if BLOCK_SIZE - in_block < HEADER_SIZE {
                // A block tail too short for a header: zero fill, skipped unread.
                self.pos += (BLOCK_SIZE - in_block) as u64;
                continue;
            }
            self.load_block(at / BLOCK)?;
            let block = &self.block;
            let header = &block[in_block..block.len().min(in_block + HEADER_SIZE)];
            if header.iter().all(|&b| b == 0) {
                // Zeros where a header should be: the end of written data, if only zeros follow.
                return Ok(Step::Damage(match first_at {
                    None => Damage {
                        at,
                        dropped_from,
                        reason: "zeroed bytes followed by non-zero bytes".to_string(),
                        scan_from: at,
                        clean_if_zeros: true,
                    },
                    Some(s) => Damage {
                        at,
                        dropped_from,
                        reason: format!("record at offset {s} runs into zeroed bytes"),
                        scan_from: at,
                        clean_if_zeros: false,
                    },
                }));
            }
            if header.len() < HEADER_SIZE {
                return damage(
                    format!("fragment header cut off ({} of {HEADER_SIZE} bytes)", header.len()),
                    at + 1,
                );
            }
            let type_byte = header[6];
            let len = usize::from(u16::from_le_bytes([header[4], header[5]]));
            let Some(kind) = FragmentType::from_u8(type_byte) else {
                return damage(format!("bad fragment type {type_byte}"), at + 1);
            };
            let end_in_block = in_block + HEADER_SIZE + len;
            if end_in_block > BLOCK_SIZE {
                return damage(format!("fragment length {len} overruns its block"), at + 1);
            }
            if end_in_block > block.len() {
                let present = block.len() - in_block - HEADER_SIZE;
                return damage(
                    format!("fragment cut off ({present} of {len} payload bytes)"),
                    at + 1,
                );
            }
            let Some((_, payload)) = valid_fragment_at(block, in_block) else {
                return damage("fragment checksum mismatch".to_string(), at + 1);
            };
            match (kind, first_at) {
                (FragmentType::Full, None) => {
                    let record = payload.to_vec();
                    self.pos = at + (HEADER_SIZE + len) as u64;
                    return Ok(Step::Record(record));
                }
                (FragmentType::First, None) => {
                    record.extend_from_slice(payload);
                    first_at = Some(at);
                }
                (FragmentType::Middle, Some(_)) => record.extend_from_slice(payload),
                (FragmentType::Last, Some(_)) => {
                    record.extend_from_slice(payload);
                    self.pos = at + (HEADER_SIZE + len) as u64;
                    return Ok(Step::Record(record));
                }
                (FragmentType::Full | FragmentType::First, Some(s)) => {
                    // This fragment is itself valid, so the search from `at` finds it: an
                    // unfinished record followed by more log is always mid-log corruption.
                    return damage(
                        format!("record at offset {s} has no last fragment before a {kind:?}"),
                        at,
                    );
                }
                (FragmentType::Middle | FragmentType::Last, None) => {
                    return damage(format!("{kind:?} fragment without a First"), at + 1);
                }
            }
            self.pos = at + (HEADER_SIZE + len) as u64;
        }
    }

    /// Applies rules 1–3: `Ok(())` ends the log (cleanly, or dropping a tolerated tail).
    fn judge(&mut self, d: Damage) -> Result<()> {
        let (all_zero, valid_at) = self.search(d.scan_from)?;
        if all_zero && d.clean_if_zeros {
            return Ok(());
        }
        let location = format!("{} at offset {}", self.name, d.at);
        if let Some(v) = valid_at {
            return Err(Error::corruption(
                format!("{}; a valid fragment follows at offset {v}", d.reason),
                location,
            ));
        }
        let description = format!(
            "{} bytes from offset {}: {} at offset {}",
            self.file_len - d.dropped_from,
            d.dropped_from,
            d.reason,
            d.at
        );
        match self.mode {
            WalRecoveryMode::TolerateCorruptTail => {
                self.dropped_tail = Some(description);
                Ok(())
            }
            WalRecoveryMode::AbsoluteConsistency => {
                Err(Error::corruption(format!("damaged log tail: {}", d.reason), location))
            }
        }
    }

    /// Looks at every byte from `from` to the end: whether all are zero, and the offset of the
    /// first valid fragment starting at any of them. Fragments never cross blocks, so each
    /// block is searched on its own.
    fn search(&self, from: u64) -> Result<(bool, Option<u64>)> {
        let mut all_zero = true;
        let mut block = Vec::new();
        let mut index = from / BLOCK;
        let mut start = (from % BLOCK) as usize;
        while index * BLOCK < self.file_len {
            self.read_block(index, &mut block)?;
            let rest = block.get(start..).unwrap_or_default();
            // A valid fragment has a non-zero type byte, so an all-zero stretch holds none.
            if rest.iter().any(|&b| b != 0) {
                all_zero = false;
                for p in start..block.len() {
                    if valid_fragment_at(&block, p).is_some() {
                        return Ok((false, Some(index * BLOCK + p as u64)));
                    }
                }
            }
            index += 1;
            start = 0;
        }
        Ok((all_zero, None))
    }

    fn load_block(&mut self, index: u64) -> Result<()> {
        if self.block_index != Some(index) {
            let mut block = std::mem::take(&mut self.block);
            // Forget the old block first, so a failed read leaves nothing stale behind.
            self.block_index = None;
            let res = self.read_block(index, &mut block);
            self.block = block;
            res?;
            self.block_index = Some(index);
        }
        Ok(())
    }

    /// Reads block `index` (shorter at the end of the file) into `buf`.
    fn read_block(&self, index: u64, buf: &mut Vec<u8>) -> Result<()> {
        let start = index * BLOCK;
        let len = (self.file_len - start).min(BLOCK) as usize;
        buf.resize(len, 0);
        self.file.read_at(start, buf)
    }
}
