//! `LogWriter`: cuts records into fragments and appends them, one `File::append` per record.

use crate::sync::Arc;
use std::fmt;

use super::{FragmentType, BLOCK_SIZE, HEADER_SIZE};
use crate::coding::masked_crc32c;
use crate::env::File;
use crate::error::{Error, Result};

/// Appends records to a new log file.
///
/// After an append or sync fails the file's contents are unknown (part of a record may have
/// landed), so the writer refuses all further work with [`Error::Poisoned`].
pub struct LogWriter {
    file: Arc<dyn File>,
    /// Bytes appended so far; the offset of the next fragment is derived from it.
    size: u64,
    /// The framed record, reused between records.
    buf: Vec<u8>,
    /// A payload `add_record_with` fills, reused between records.
    payload: Vec<u8>,
    /// The first failure, once there was one.
    failure: Option<Arc<Error>>,
}

impl fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogWriter")
            .field("file", &self.file)
            .field("size", &self.size)
            .field("failure", &self.failure)
            .finish()
    }
}

impl LogWriter {
    /// A writer for `file`, which must be new and empty: the block layout is counted from
    /// offset 0.
    pub fn new(file: Arc<dyn File>) -> LogWriter {
        LogWriter { file, size: 0, buf: Vec::new(), payload: Vec::new(), failure: None }
    }

    /// Appends one record (any length, including zero) as one `File::append`.
    pub fn add_record(&mut self, data: &[u8]) -> Result<()> {
        self.check_usable()?;
        self.buf.clear();
        encode_record(self.size, data, &mut self.buf);
        if let Err(e) = self.file.append(&self.buf) {
            self.failure = Some(Arc::new(e.duplicate()));
            return Err(e);
        }
        self.size += self.buf.len() as u64;
        Ok(())
    }

    /// Appends a record whose payload `fill` writes into a buffer the writer keeps, so a
    /// record costs no allocation once the buffers have grown. Returns the payload's length.
    pub fn add_record_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> Result<usize> {
        let mut payload = std::mem::take(&mut self.payload);
        payload.clear();
        fill(&mut payload);
        let result = self.add_record(&payload).map(|()| payload.len());
        self.payload = payload;
        result
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> Result<()> {
        self.check_usable()?;
        // A failed fsync may have dropped dirty pages while marking them clean, so a retry
        // could "succeed" without the data: the writer is done after the first failure.
        if let Err(e) = self.file.sync() {
            self.failure = Some(Arc::new(e.duplicate()));
            return Err(e);
        }
        Ok(())
    }

    /// Bytes written so far (the file's length, when no append has failed).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file being written.
    pub fn file(&self) -> &Arc<dyn File> {
        &self.file
    }

    fn check_usable(&self) -> Result<()> {
        match &self.failure {
            Some(cause) => Err(Error::Poisoned { cause: cause.clone() }),
            None => Ok(()),
        }
    }
}

/// Appends to `out` the bytes of `data` written as a record at file offset `offset`: block
/// tail padding where needed, then the fragments.
fn encode_record(mut offset: u64, data: &[u8], out: &mut Vec<u8>) {
    let mut rest = data;
    let mut first = true;
    // Runs at least once, so an empty record still gets its (empty) Full fragment.
    loop {
        let in_block = (offset % BLOCK_SIZE as u64) as usize;
        let left = BLOCK_SIZE - in_block;
        if left < HEADER_SIZE {
            // Too small for a header: zero fill, which readers skip.
            out.resize(out.len() + left, 0);
            offset += left as u64;
            continue;
        }
        let n = rest.len().min(left - HEADER_SIZE);
        let last = n == rest.len();
        let kind = match (first, last) {
            (true, true) => FragmentType::Full,
            (true, false) => FragmentType::First,
            (false, false) => FragmentType::Middle,
            (false, true) => FragmentType::Last,
        };
        let (payload, tail) = rest.split_at(n);
        let kind_byte = [kind as u8];
        let crc = masked_crc32c(&[&kind_byte, payload]);
        out.extend_from_slice(&crc.to_le_bytes());
        // n <= BLOCK_SIZE - HEADER_SIZE, which fits in u16.
        let len = u16::try_from(n).expect("fragment payload fits in a block");
        out.extend_from_slice(&len.to_le_bytes());
        out.push(kind as u8);
        out.extend_from_slice(payload);
        offset += (HEADER_SIZE + n) as u64;
        rest = tail;
        first = false;
        if last {
            return;
        }
    }
}
