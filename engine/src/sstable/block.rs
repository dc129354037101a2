//! Blocks: sorted entries with prefix-compressed keys and a restart array, their builder and
//! a bidirectional iterator that validates every offset it reads.
//!
//! Layout of a block's contents (see docs/format.md):
//! ```text
//! entry*            shared: varint32 | unshared: varint32 | value_len: varint32
//!                   | key[shared..] (unshared bytes) | value
//! restart: u32 LE * num_restarts      offsets of entries whose `shared` is 0
//! num_restarts: u32 LE
//! ```

use std::cmp::Ordering;
use std::sync::Arc;

use super::format::{get_u32, get_varint32, put_varint32};
use crate::error::{Error, Result};
use crate::key::{self, InternalComparator};

/// The bytes of one uncompressed block, shared between a reader and its iterators.
///
/// This is the seam for the block cache: whatever the cache hands out must deref to `[u8]`.
pub type BlockBuf = Arc<[u8]>;

/// Builds the contents of one block. Keys must be added in strictly increasing order.
#[derive(Debug)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    counter: usize,
    entries: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    /// A builder that places a restart point every `restart_interval` entries (at least 1).
    pub fn new(restart_interval: usize) -> BlockBuilder {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            restart_interval: restart_interval.max(1),
            counter: 0,
            entries: 0,
            last_key: Vec::new(),
        }
    }

    /// Appends an entry; the caller guarantees `key` sorts after the previous one.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let mut shared = 0;
        if self.counter >= self.restart_interval {
            self.restarts.push(u32::try_from(self.buf.len()).expect("block below 4 GiB"));
            self.counter = 0;
        } else {
            shared = self.last_key.iter().zip(key).take_while(|(a, b)| a == b).count();
        }
        let len32 = |n: usize| u32::try_from(n).expect("entry below 4 GiB");
        put_varint32(&mut self.buf, len32(shared));
        put_varint32(&mut self.buf, len32(key.len() - shared));
        put_varint32(&mut self.buf, len32(value.len()));
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
        self.entries += 1;
    }

    /// The size `finish` would return.
    pub fn estimated_size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// True when no entry was added since the last `finish`.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The last key added.
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Returns the finished contents and resets the builder for the next block.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        let n = u32::try_from(self.restarts.len()).expect("restart count below 4 Gi");
        out.extend_from_slice(&n.to_le_bytes());
        self.restarts.clear();
        self.restarts.push(0);
        self.counter = 0;
        self.entries = 0;
        self.last_key.clear();
        out
    }
}

/// How the keys of a block are ordered.
#[derive(Clone, Debug)]
pub enum KeyOrder {
    /// Encoded internal keys (data, index and range-deletion blocks). Every key is checked to
    /// carry a trailer with a known kind before it is compared.
    Internal(InternalComparator),
    /// Plain bytes (meta-index and properties blocks).
    Bytewise,
}

impl KeyOrder {
    fn compare(&self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            KeyOrder::Internal(c) => c.compare(a, b),
            KeyOrder::Bytewise => a.cmp(b),
        }
    }
}

/// A parsed, validated block: its bytes and where its restart array starts.
#[derive(Clone, Debug)]
pub struct Block {
    data: BlockBuf,
    restarts_offset: usize,
    num_restarts: usize,
    location: Arc<str>,
}

impl Block {
    /// Checks the restart array of `data`. `location` names the block in errors
    /// (file and offset).
    pub fn new(data: BlockBuf, location: impl Into<Arc<str>>) -> Result<Block> {
        let location = location.into();
        let bad = |what: &str| Error::corruption(format!("block: {what}"), &location);
        let len = data.len();
        let n = get_u32(&data, len.checked_sub(4).ok_or_else(|| bad("shorter than 4 bytes"))?)
            .expect("length checked") as usize;
        if n == 0 {
            return Err(bad("no restart points"));
        }
        let restarts_offset = n
            .checked_mul(4)
            .and_then(|r| len.checked_sub(4)?.checked_sub(r))
            .ok_or_else(|| bad("restart array larger than block"))?;
        let mut prev = None;
        for i in 0..n {
            let r = get_u32(&data, restarts_offset + 4 * i).expect("inside block") as usize;
            let ok = match prev {
                None => r == 0,
                Some(p) => r > p && r < restarts_offset,
            };
            if !ok {
                return Err(bad(&format!("restart point {i} at offset {r} out of order")));
            }
            prev = Some(r);
        }
        Ok(Block { data, restarts_offset, num_restarts: n, location })
    }

    /// An iterator over the block in `order`.
    pub fn iter(&self, order: KeyOrder) -> BlockIter {
        BlockIter {
            block: self.clone(),
            order,
            current: self.restarts_offset,
            next: self.restarts_offset,
            restart_index: 0,
            key: Vec::new(),
            value: (0, 0),
        }
    }

    /// The block's bytes.
    pub fn data(&self) -> &BlockBuf {
        &self.data
    }

    fn restart(&self, i: usize) -> usize {
        get_u32(&self.data, self.restarts_offset + 4 * i).expect("validated in Block::new") as usize
    }
}

/// A cursor over one block. Invalid positions: before the first or after the last entry.
#[derive(Debug)]
pub struct BlockIter {
    block: Block,
    order: KeyOrder,
    /// Offset of the current entry; `restarts_offset` when not valid.
    current: usize,
    /// Offset just past the current entry.
    next: usize,
    /// The restart interval holding `current`.
    restart_index: usize,
    key: Vec<u8>,
    value: (usize, usize),
}

impl BlockIter {
    /// True when positioned on an entry.
    pub fn valid(&self) -> bool {
        self.current < self.block.restarts_offset
    }

    /// The current key. Only while `valid()`.
    pub fn key(&self) -> &[u8] {
        debug_assert!(self.valid());
        &self.key
    }

    /// The current value. Only while `valid()`.
    pub fn value(&self) -> &[u8] {
        debug_assert!(self.valid());
        &self.block.data[self.value.0..self.value.1]
    }

    fn invalidate(&mut self) {
        self.current = self.block.restarts_offset;
        self.next = self.block.restarts_offset;
        self.key.clear();
    }

    fn corrupt(&mut self, what: &str, at: usize) -> Error {
        self.invalidate();
        Error::corruption(format!("block: {what} at offset {at}"), &self.block.location)
    }

    /// Decodes the entry at `offset` on top of the current key (which must be the key of the
    /// entry before it, or empty at a restart point) and makes it current.
    fn decode_at(&mut self, offset: usize) -> Result<()> {
        let limit = self.block.restarts_offset;
        let data = &self.block.data[..limit];
        let mut p = offset;
        let field = |p: &mut usize| -> Option<usize> {
            let (v, n) = get_varint32(data.get(*p..)?)?;
            *p += n;
            Some(v as usize)
        };
        let (Some(shared), Some(unshared), Some(vlen)) =
            (field(&mut p), field(&mut p), field(&mut p))
        else {
            return Err(self.corrupt("bad entry header", offset));
        };
        if shared > self.key.len() {
            return Err(self.corrupt("shared prefix longer than previous key", offset));
        }
        let key_end = p.checked_add(unshared).filter(|&e| e <= limit);
        let Some(end) = key_end.and_then(|k| k.checked_add(vlen)).filter(|&e| e <= limit) else {
            return Err(self.corrupt("entry runs past the block", offset));
        };
        let key_end = p + unshared;
        self.key.truncate(shared);
        self.key.extend_from_slice(&self.block.data[p..key_end]);
        if let KeyOrder::Internal(_) = self.order {
            if key::parse(&self.key).is_none() {
                return Err(self.corrupt("bad internal key", offset));
            }
        }
        self.current = offset;
        self.next = end;
        self.value = (key_end, end);
        Ok(())
    }

    /// Positions on restart point `i`'s entry.
    fn seek_restart(&mut self, i: usize) -> Result<()> {
        self.key.clear();
        self.restart_index = i;
        let off = self.block.restart(i);
        if off >= self.block.restarts_offset {
            // Only restart 0 of an empty block can be here.
            self.invalidate();
            return Ok(());
        }
        self.decode_at(off)
    }

    /// Moves to the first entry.
    pub fn first(&mut self) -> Result<()> {
        self.seek_restart(0)
    }

    /// Moves to the last entry.
    pub fn last(&mut self) -> Result<()> {
        self.seek_restart(self.block.num_restarts - 1)?;
        while self.valid() && self.next < self.block.restarts_offset {
            self.decode_at(self.next)?;
        }
        Ok(())
    }

    /// Moves to the next entry (or past the end).
    pub fn next(&mut self) -> Result<()> {
        debug_assert!(self.valid());
        if self.next >= self.block.restarts_offset {
            self.invalidate();
            return Ok(());
        }
        while self.restart_index + 1 < self.block.num_restarts
            && self.block.restart(self.restart_index + 1) <= self.next
        {
            self.restart_index += 1;
        }
        self.decode_at(self.next)
    }

    /// Moves to the previous entry (or before the start).
    pub fn prev(&mut self) -> Result<()> {
        debug_assert!(self.valid());
        let target = self.current;
        // Find the restart interval that starts strictly before the current entry.
        while self.block.restart(self.restart_index) >= target {
            if self.restart_index == 0 {
                self.invalidate();
                return Ok(());
            }
            self.restart_index -= 1;
        }
        self.seek_restart(self.restart_index)?;
        while self.valid() && self.next < target {
            self.decode_at(self.next)?;
        }
        if self.next != target {
            // The entries did not chain up to where we were: the restart array lies.
            return Err(self.corrupt("restart point not on an entry boundary", target));
        }
        Ok(())
    }

    /// Moves to the first entry with key `>= target`.
    pub fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
        if let KeyOrder::Internal(_) = self.order {
            assert!(target.len() >= key::TRAILER_LEN, "seek target is not an internal key");
        }
        // Binary search for the last restart point whose key is < target.
        let (mut lo, mut hi) = (0, self.block.num_restarts);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            self.seek_restart(mid)?;
            if !self.valid() {
                return Err(self.corrupt("restart point past the entries", mid));
            }
            if self.order.compare(&self.key, target) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        self.seek_restart(lo)?;
        while self.valid() && self.order.compare(&self.key, target) == Ordering::Less {
            self.next()?;
        }
        Ok(())
    }

    /// Moves to the last entry with key `< target`.
    pub fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
        self.seek_ge(target)?;
        if self.valid() {
            self.prev()
        } else {
            self.last()
        }
    }
}
