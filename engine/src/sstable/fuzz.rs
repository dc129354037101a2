//! Fuzzing hooks that need the private block and format code: the block-iterator target and
//! a checksum fixer that lets a fuzzer's mutations get past the CRCs of a table.
//!
//! Only `crate::fuzz` and the fuzz targets call these; they are re-exported `#[doc(hidden)]`
//! from `sstable` and are not part of the engine's API.

use crate::sync::Arc;
use std::cmp::Ordering;

use super::block::{Block, KeyOrder};
use super::format::{masked_crc, BlockHandle, Footer, IndexKind, BLOCK_TRAILER_LEN, FOOTER_LEN};
use super::reader::read_raw_block;
use crate::comparator::Bytewise;
use crate::key::{self, InternalComparator};

/// At most this many entries are collected from one block: a block of `n` bytes holds at most
/// `n / 3` entries (three one-byte varints each), so the cap only bounds pathological work.
const ENTRIES_MAX: usize = 1 << 16;

/// Parses `data` as the contents of one (uncompressed) block, in both key orders, and drives
/// its iterator: a full forward and backward scan, then `seek_ge`/`seek_lt` to every key
/// found and to a few keys made from the input.
///
/// Errors are expected; a panic is a bug. Checked: `Block::new` accepted the block, so a full
/// forward scan and a full backward scan that both succeed see the same entries; and when the
/// keys come out strictly increasing, every seek lands where a sorted list says it must.
pub fn fuzz_block(data: &[u8]) {
    let cmp = InternalComparator::new(Arc::new(Bytewise));
    let Ok(block) = Block::new(data.into(), "fuzz block") else {
        return;
    };
    for order in [KeyOrder::Bytewise, KeyOrder::Internal(cmp)] {
        let compare = |a: &[u8], b: &[u8]| match &order {
            KeyOrder::Internal(c) => c.compare(a, b),
            KeyOrder::Bytewise => a.cmp(b),
        };
        let mut it = block.iter(order.clone());

        let mut forward = Vec::new();
        let mut forward_ok = it.first().is_ok();
        while forward_ok && it.valid() && forward.len() < ENTRIES_MAX {
            forward.push((it.key().to_vec(), it.value().to_vec()));
            forward_ok = it.next().is_ok();
        }
        let mut backward = Vec::new();
        let mut backward_ok = it.last().is_ok();
        while backward_ok && it.valid() && backward.len() < ENTRIES_MAX {
            backward.push((it.key().to_vec(), it.value().to_vec()));
            backward_ok = it.prev().is_ok();
        }
        if forward_ok && backward_ok && forward.len() < ENTRIES_MAX {
            backward.reverse();
            assert_eq!(forward, backward, "block scans disagree");
        }

        let sorted = forward_ok
            && forward.len() < ENTRIES_MAX
            && forward.windows(2).all(|w| compare(&w[0].0, &w[1].0) == Ordering::Less);
        let mut targets: Vec<Vec<u8>> = forward.iter().take(64).map(|(k, _)| k.clone()).collect();
        // Keys between and around the real ones.
        targets.push(Vec::new());
        targets.push(data.iter().take(12).copied().collect());
        targets.push(vec![0xff; 12]);
        for (k, _) in forward.iter().take(16) {
            let mut shorter = k.clone();
            shorter.pop();
            targets.push(shorter);
            let mut longer = k.clone();
            longer.push(0);
            targets.push(longer);
        }
        for mut target in targets {
            if let KeyOrder::Internal(_) = order {
                // Seeks take internal keys: give every target a trailer.
                if target.len() < key::TRAILER_LEN {
                    target.resize(key::TRAILER_LEN, 0x01);
                }
            }
            let ge = it.seek_ge(&target).map(|()| it.valid().then(|| it.key().to_vec()));
            let lt = it.seek_lt(&target).map(|()| it.valid().then(|| it.key().to_vec()));
            if sorted {
                let at = forward.partition_point(|(k, _)| compare(k, &target) == Ordering::Less);
                let want_ge = forward.get(at).map(|(k, _)| k.clone());
                let want_lt = at.checked_sub(1).map(|i| forward[i].0.clone());
                assert_eq!(ge.expect("seek in a block that scans cleanly"), want_ge, "seek_ge");
                assert_eq!(lt.expect("seek in a block that scans cleanly"), want_lt, "seek_lt");
            }
        }
    }
}

/// Returns a copy of `table` with the footer checksum and the trailer checksum of every block
/// the footer, the meta-index and the index (both levels) point at recomputed, so a fuzzer's
/// mutation inside a block reaches the code after the CRC check. Handles out of bounds are
/// left alone. (Blocks are fixed before they are read, so a mutated index still leads on.)
pub fn fuzz_fix_checksums(table: &[u8]) -> Vec<u8> {
    let mut out = table.to_vec();
    let Some(blocks_end) = out.len().checked_sub(FOOTER_LEN) else {
        return out;
    };
    let crc_at = blocks_end + FOOTER_LEN - 12;
    let crc = masked_crc(&[&out[blocks_end..crc_at]]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    let Ok(footer) = Footer::decode(&out[blocks_end..], "fuzz") else {
        return out;
    };

    let cmp = InternalComparator::new(Arc::new(Bytewise));
    let index_depth = if footer.index_kind == IndexKind::TwoLevel { 2 } else { 1 };
    let mut pending = vec![
        (footer.metaindex, KeyOrder::Bytewise, 1),
        (footer.index, KeyOrder::Internal(cmp.clone()), index_depth),
    ];
    let mut fixed = 0;
    // Every block is fixed at most once per handle seen; the cap bounds a forged index that
    // lists the same block many times.
    while let Some((h, order, depth)) = pending.pop() {
        if fixed >= 4096 || !fix_block(&mut out, blocks_end, h) {
            continue;
        }
        fixed += 1;
        if depth == 0 {
            continue;
        }
        let Ok(bytes) = read_raw_block(&MemBytes(&out), 0, blocks_end as u64, h) else {
            continue;
        };
        let Ok(block) = Block::new(bytes.into(), "fuzz") else {
            continue;
        };
        let mut it = block.iter(order.clone());
        let mut ok = it.first().is_ok();
        while ok && it.valid() {
            if let Some((child, n)) = BlockHandle::decode_prefix(it.value()) {
                if n == it.value().len() {
                    let child_order = KeyOrder::Internal(cmp.clone());
                    pending.push((child, child_order, depth - 1));
                }
            }
            ok = it.next().is_ok();
        }
    }
    out
}

/// Rewrites the trailer CRC of the block at `h`; false when `h` is out of bounds.
fn fix_block(out: &mut [u8], blocks_end: usize, h: BlockHandle) -> bool {
    let (Ok(start), Ok(size)) = (usize::try_from(h.offset), usize::try_from(h.size)) else {
        return false;
    };
    let Some(end) = start.checked_add(size).and_then(|e| e.checked_add(BLOCK_TRAILER_LEN)) else {
        return false;
    };
    if end > blocks_end {
        return false;
    }
    let crc = masked_crc(&[&out[start..start + size + 1]]);
    out[start + size + 1..end].copy_from_slice(&crc.to_le_bytes());
    true
}

/// A read-only [`crate::env::File`] over a byte slice, so `read_raw_block` can read from the
/// buffer being fixed.
#[derive(Debug)]
struct MemBytes<'a>(&'a [u8]);

impl crate::env::File for MemBytes<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> crate::Result<()> {
        let start = usize::try_from(offset).ok();
        let src = start.and_then(|s| self.0.get(s..s.checked_add(buf.len())?));
        let src = src.ok_or_else(|| crate::Error::corruption("read past the end", "fuzz"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn append(&self, _data: &[u8]) -> crate::Result<()> {
        Err(crate::Error::InvalidArgument("read-only".into()))
    }
    fn sync(&self) -> crate::Result<()> {
        Ok(())
    }
    fn len(&self) -> crate::Result<u64> {
        Ok(self.0.len() as u64)
    }
    fn truncate(&self, _len: u64) -> crate::Result<()> {
        Err(crate::Error::InvalidArgument("read-only".into()))
    }
}
