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
//!
//! Size: over 600 lines: the block builder, reader and its entry validation share the format
//! above.

use crate::sync::Arc;
use std::cmp::Ordering;
use std::fmt;

use super::format::{get_u32, get_varint32, put_varint32};
use crate::error::{Error, Result};
use crate::iter::PinnedValue;
use crate::key::{self, InternalComparator};

/// The bytes of one uncompressed block, shared between a reader and its iterators: either
/// owned (read outside the cache, or a meta block) or pinned in the block cache by a handle.
#[derive(Clone, Debug)]
pub enum BlockBuf {
    Owned(Arc<[u8]>),
    Cached(crate::cache::CacheHandle),
}

impl std::ops::Deref for BlockBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            BlockBuf::Owned(b) => b,
            BlockBuf::Cached(h) => h,
        }
    }
}

impl From<&[u8]> for BlockBuf {
    fn from(v: &[u8]) -> BlockBuf {
        BlockBuf::Owned(v.into())
    }
}

impl From<Vec<u8>> for BlockBuf {
    fn from(v: Vec<u8>) -> BlockBuf {
        BlockBuf::Owned(v.into())
    }
}

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

    /// Hands back a buffer `finish` returned, once written, so the next block is built in
    /// it rather than in a newly grown one.
    pub fn reuse(&mut self, mut buf: Vec<u8>) {
        if self.buf.is_empty() && buf.capacity() > self.buf.capacity() {
            buf.clear();
            self.buf = buf;
        }
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

/// The header of the entry at `p` of `data`, `(shared, unshared, value_len, header_len)`, or
/// `None` when a field is not a varint32 or runs past `data`. The one decoder of entry
/// headers: the check of a loaded block, iteration and the restart-key search share it. Most
/// headers are three one-byte varints (LevelDB's fast path), read without the varint loop.
#[inline]
fn entry_header(data: &[u8], p: usize) -> Option<(usize, usize, usize, usize)> {
    let rest = data.get(p..)?;
    if let Some(&[a, b, c]) = rest.get(..3) {
        if (a | b | c) < 0x80 {
            return Some((usize::from(a), usize::from(b), usize::from(c), 3));
        }
    }
    let mut used = 0;
    let mut field = || -> Option<usize> {
        let (v, n) = get_varint32(rest.get(used..)?)?;
        used += n;
        Some(v as usize)
    };
    let (shared, unshared, value_len) = (field()?, field()?, field()?);
    Some((shared, unshared, value_len, used))
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
    location: BlockLocation,
}

/// Where a block lies, as its errors name it; formatted only when an error is reported, so
/// loading a block allocates nothing for it.
#[derive(Clone, Copy, Debug)]
pub enum BlockLocation {
    /// A block of a table file.
    Table { file_num: u64, offset: u64 },
    /// A block named by its caller (tests, fuzzing).
    Named(&'static str),
}

impl fmt::Display for BlockLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockLocation::Table { file_num, offset } => {
                write!(f, "table {file_num:06} block at {offset}")
            }
            BlockLocation::Named(name) => f.write_str(name),
        }
    }
}

impl From<&'static str> for BlockLocation {
    fn from(name: &'static str) -> BlockLocation {
        BlockLocation::Named(name)
    }
}

impl Block {
    /// Checks the restart array of `data` and walks its entries (see `check_entries`), once
    /// per cached block: a block cache hit on bytes a reader already checked skips both walks.
    /// `location` names the block in errors (file and offset).
    pub fn new(data: BlockBuf, location: impl Into<BlockLocation>) -> Result<Block> {
        let location = location.into();
        let bad = |what: &str| Error::corruption(format!("block: {what}"), location);
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
        if matches!(&data, BlockBuf::Cached(h) if h.is_checked()) {
            return Ok(Block { data, restarts_offset, num_restarts: n, location });
        }
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
        let block = Block { data, restarts_offset, num_restarts: n, location };
        if let Err((what, at)) = block.check_entries() {
            let what = format!("block: {what} at offset {at}");
            return Err(Error::corruption(what, block.location));
        }
        if let BlockBuf::Cached(h) = &block.data {
            h.mark_checked();
        }
        Ok(block)
    }

    /// Walks the entries once: each must fit, share no more than the previous key's length,
    /// and every restart point must start an entry that shares nothing. After this, forward
    /// and backward iteration agree on what the block holds. (One pass over bytes the CRC
    /// has already read; with the block cache it is paid once per load.)
    fn check_entries(&self) -> std::result::Result<(), (&'static str, usize)> {
        let data = &self.data[..self.restarts_offset];
        let (mut p, mut prev_key_len, mut next_restart) = (0, 0, 0);
        while p < data.len() {
            let at_restart = next_restart < self.num_restarts && self.restart(next_restart) == p;
            if next_restart < self.num_restarts && self.restart(next_restart) < p {
                return Err(("restart point not on an entry boundary", self.restart(next_restart)));
            }
            let start = p;
            let Some((shared, unshared, vlen, header_len)) = entry_header(data, p) else {
                return Err(("bad entry header", start));
            };
            p += header_len;
            if shared > prev_key_len || (at_restart && shared != 0) {
                return Err(("shared prefix longer than previous key", start));
            }
            match p.checked_add(unshared).and_then(|e| e.checked_add(vlen)) {
                Some(end) if end <= data.len() => p = end,
                _ => return Err(("entry runs past the block", start)),
            }
            prev_key_len = shared + unshared;
            if at_restart {
                next_restart += 1;
            }
        }
        if next_restart < self.num_restarts && !(self.num_restarts == 1 && data.is_empty()) {
            return Err(("restart point past the entries", self.restart(next_restart)));
        }
        Ok(())
    }

    /// An iterator over the block in `order`.
    pub fn iter(&self, order: KeyOrder) -> BlockIter {
        self.clone().into_cursor(order)
    }

    /// An iterator over the block in `order`, taking the block (no second cache handle).
    pub fn into_cursor(self, order: KeyOrder) -> BlockIter {
        let restarts_offset = self.restarts_offset;
        BlockIter {
            block: self,
            order,
            current: restarts_offset,
            next: restarts_offset,
            restart_index: 0,
            key: key::KeyBuf::new(),
            value: (0, 0),
        }
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
    key: key::KeyBuf,
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

    /// The current value, pinned in the block (which the handle keeps). Only while `valid()`.
    pub fn value_pin(&self) -> PinnedValue {
        debug_assert!(self.valid());
        let range = self.value.0..self.value.1;
        match &self.block.data {
            BlockBuf::Owned(bytes) => PinnedValue::shared(bytes.clone(), range),
            BlockBuf::Cached(handle) => PinnedValue::cached(handle.clone(), range),
        }
    }

    fn invalidate(&mut self) {
        self.current = self.block.restarts_offset;
        self.next = self.block.restarts_offset;
        self.key.clear();
    }

    fn corrupt(&mut self, what: &str, at: usize) -> Error {
        self.invalidate();
        Error::corruption(format!("block: {what} at offset {at}"), self.block.location)
    }

    /// Decodes the entry at `offset` on top of the current key (which must be the key of the
    /// entry before it, or empty at a restart point) and makes it current.
    fn decode_at(&mut self, offset: usize) -> Result<()> {
        let limit = self.block.restarts_offset;
        let data = &self.block.data[..limit];
        let Some((shared, unshared, vlen, header_len)) = entry_header(data, offset) else {
            return Err(self.corrupt("bad entry header", offset));
        };
        let p = offset + header_len;
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

    /// The key of restart point `i`'s entry, read in place: a restart entry shares nothing
    /// with the one before, so its key lies whole in the block. `None` when the entry is not
    /// a well-formed one (too short an internal key included).
    fn restart_key(&self, i: usize) -> Option<&[u8]> {
        let data = &self.block.data[..self.block.restarts_offset];
        let p = self.block.restart(i);
        let (shared, unshared, _, header_len) = entry_header(data, p)?;
        let p = p + header_len;
        let key = data.get(p..p.checked_add(unshared)?)?;
        let short = matches!(self.order, KeyOrder::Internal(_)) && key.len() < key::TRAILER_LEN;
        (shared == 0 && !short).then_some(key)
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
        // Binary search for the last restart point whose key is < target, comparing restart
        // keys where they lie.
        let (mut lo, mut hi) = (0, self.block.num_restarts);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let Some(key) = self.restart_key(mid) else {
                return Err(self.corrupt("bad restart entry", self.block.restart(mid)));
            };
            if self.order.compare(key, target) == Ordering::Less {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::comparator::Bytewise;
    use crate::datadriven;
    use crate::sstable::tests::{fmt_ikey, parse_ikey, run_script, seek_target, Scripted};

    impl Scripted for BlockIter {
        fn op(&mut self, op: &str, arg: Option<&str>) -> Result<()> {
            match (op, arg) {
                ("first", None) => self.first(),
                ("last", None) => self.last(),
                ("next", None) => self.next(),
                ("prev", None) => self.prev(),
                ("seek-ge", Some(t)) => self.seek_ge(&seek_target(t)),
                ("seek-lt", Some(t)) => self.seek_lt(&seek_target(t)),
                _ => panic!("unknown iterator op {op}"),
            }
        }
        fn entry(&self) -> Option<(Vec<u8>, Vec<u8>)> {
            self.valid().then(|| (self.key().to_vec(), self.value().to_vec()))
        }
    }

    fn order() -> KeyOrder {
        KeyOrder::Internal(InternalComparator::new(Arc::new(Bytewise)))
    }

    /// Shows every entry's header fields, key and value, then the restart array.
    fn dump(bytes: &[u8]) -> Result<String> {
        let block = Block::new(bytes.into(), "test")?;
        let mut it = block.iter(order());
        let mut out = format!("size={}\n", bytes.len());
        it.first()?;
        while it.valid() {
            let (shared, unshared, vlen, _) = entry_header(bytes, it.current).expect("validated");
            out.push_str(&format!(
                "{:>4}: shared={shared} unshared={unshared} value_len={vlen} {}:{}\n",
                it.current,
                fmt_ikey(it.key()),
                String::from_utf8_lossy(it.value())
            ));
            it.next()?;
        }
        let restarts: Vec<usize> = (0..block.num_restarts).map(|i| block.restart(i)).collect();
        out.push_str(&format!("restarts={restarts:?}\n"));
        Ok(out)
    }

    #[test]
    fn datadriven_sstable_block() {
        let mut bytes = Vec::new();
        datadriven::run("testdata/sstable_block", |case| match case.cmd.as_str() {
            "build" => {
                let mut b = BlockBuilder::new(case.arg_or("restart_interval", 16));
                for line in case.input.lines() {
                    let (k, v) = line.split_once(':').unwrap_or((line, ""));
                    b.add(&parse_ikey(k), v.as_bytes());
                }
                let estimate = b.estimated_size();
                bytes = b.finish();
                assert_eq!(estimate, bytes.len());
                dump(&bytes).expect("fresh block")
            }
            "poke" => {
                // Overwrites one byte: `at=N` from the start or `from_end=N` from the end.
                let at = match case.arg("from_end") {
                    Some(_) => bytes.len() - case.arg_or("from_end", 0usize),
                    None => case.arg_or("at", 0usize),
                };
                bytes[at] = case.arg_or("value", 0u8);
                match dump(&bytes) {
                    Ok(s) => s,
                    Err(e) => format!("err: {e}"),
                }
            }
            "truncate" => {
                bytes.truncate(case.arg_or("len", 0usize));
                match dump(&bytes) {
                    Ok(s) => s,
                    Err(e) => format!("err: {e}"),
                }
            }
            "iter" => match Block::new(bytes.clone().into(), "test") {
                Ok(block) => run_script(&mut block.iter(order()), &case.input),
                Err(e) => format!("err: {e}"),
            },
            other => panic!("unknown command {other}"),
        });
    }

    fn build_block(keys: &[Vec<u8>], restart_interval: usize) -> Vec<u8> {
        let mut b = BlockBuilder::new(restart_interval);
        for (i, k) in keys.iter().enumerate() {
            b.add(k, format!("v{i}").as_bytes());
        }
        b.finish()
    }

    fn sorted_keys(raw: Vec<(Vec<u8>, u64)>) -> Vec<Vec<u8>> {
        let c = InternalComparator::new(Arc::new(Bytewise));
        let mut keys: Vec<Vec<u8>> =
            raw.into_iter().map(|(u, s)| key::encode(&u, s, key::Kind::Set)).collect();
        keys.sort_by(|a, b| c.compare(a, b));
        keys.dedup();
        keys
    }

    proptest! {
        #[test]
        fn block_iteration_and_seeks_match_the_sorted_keys(
            raw in prop::collection::vec((prop::collection::vec(b'a'..b'e', 0..5), 0u64..5), 0..60),
            restart_interval in 1usize..6,
            targets in prop::collection::vec((prop::collection::vec(b'a'..b'f', 0..5), 0u64..6), 0..10),
        ) {
            let keys = sorted_keys(raw);
            let c = InternalComparator::new(Arc::new(Bytewise));
            let block = Block::new(build_block(&keys, restart_interval).into(), "t").unwrap();
            let mut it = block.iter(order());
            it.first().unwrap();
            for k in &keys {
                prop_assert_eq!(it.key(), &k[..]);
                it.next().unwrap();
            }
            prop_assert!(!it.valid());
            it.last().unwrap();
            for k in keys.iter().rev() {
                prop_assert_eq!(it.key(), &k[..]);
                it.prev().unwrap();
            }
            prop_assert!(!it.valid());
            for (u, s) in targets {
                let t = key::seek_key(&u, s);
                let i = keys.partition_point(|k| c.compare(k, &t) == Ordering::Less);
                it.seek_ge(&t).unwrap();
                prop_assert_eq!(it.valid(), i < keys.len());
                if i < keys.len() {
                    prop_assert_eq!(it.key(), &keys[i][..]);
                }
                it.seek_lt(&t).unwrap();
                prop_assert_eq!(it.valid(), i > 0);
                if i > 0 {
                    prop_assert_eq!(it.key(), &keys[i - 1][..]);
                }
            }
        }

        #[test]
        fn damaged_blocks_never_panic(
            raw in prop::collection::vec((prop::collection::vec(b'a'..b'e', 0..5), 0u64..5), 1..30),
            restart_interval in 1usize..6,
            pokes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            // No CRC stands in front of the block here: every bad byte reaches the parser,
            // which must answer with an error or some entries, never a panic.
            let mut bytes = build_block(&sorted_keys(raw), restart_interval);
            for (i, v) in pokes {
                let at = i.index(bytes.len());
                bytes[at] = v;
            }
            if truncate {
                let n = cut.index(bytes.len());
                bytes.truncate(n);
            }
            if let Ok(block) = Block::new(bytes.into(), "t") {
                let mut it = block.iter(order());
                let mut steps = 0;
                if it.first().is_ok() {
                    while it.valid() && it.next().is_ok() {
                        steps += 1;
                    }
                }
                if it.last().is_ok() {
                    while it.valid() && it.prev().is_ok() {
                        steps += 1;
                    }
                }
                for t in [&b"a"[..], b"c", b"zz"] {
                    let t = key::seek_key(t, 3);
                    let _ = it.seek_ge(&t);
                    let _ = it.seek_lt(&t);
                }
                prop_assert!(steps < 1000);
            }
        }
    }
}
