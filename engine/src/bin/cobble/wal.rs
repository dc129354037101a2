//! `cobble wal dump`, and the record-log walk it shares with `cobble manifest dump`.

use std::io::Write;
use std::path::Path;

use cobble::internal::wal::{LogReader, BLOCK_SIZE, HEADER_SIZE};
use cobble::{Error, WalRecoveryMode, WriteBatch};

use crate::{open_file, show, Args, Failure};

/// Where a log stands after a walk.
pub struct LogEnd {
    pub records: u64,
    /// The end of the last whole record.
    pub end: u64,
    pub len: u64,
    /// What a tolerated damaged tail held, if one was dropped.
    pub dropped_tail: Option<String>,
}

/// Where the record after one ending at `prev_end` starts: the writer starts a new block
/// when fewer than a header's bytes are left in this one.
fn record_start(prev_end: u64) -> u64 {
    let block = BLOCK_SIZE as u64;
    let left = block - prev_end % block;
    if left < HEADER_SIZE as u64 {
        prev_end + left
    } else {
        prev_end
    }
}

/// Reads every record of the log at `path`, calling `each` with its start offset and bytes.
/// Damage the mode does not tolerate is the returned error (the records before it have been
/// passed to `each`).
pub fn walk(
    path: &Path,
    mode: WalRecoveryMode,
    mut each: impl FnMut(u64, &[u8]) -> Result<(), Failure>,
) -> Result<LogEnd, Failure> {
    let file = open_file(path)?;
    let len = file.len()?;
    let mut reader = LogReader::new(file, path.display().to_string(), mode)?;
    let mut records = 0;
    let mut start = 0;
    while let Some(record) = reader.read_record()? {
        each(start, &record)?;
        records += 1;
        start = record_start(reader.record_end());
    }
    Ok(LogEnd {
        records,
        end: reader.record_end(),
        len,
        dropped_tail: reader.dropped_tail().map(str::to_string),
    })
}

/// Prints how a log ended: its size, what was read, and any dropped tail.
pub fn print_end(e: &LogEnd, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "read {} of {} bytes", e.end, e.len)?;
    match &e.dropped_tail {
        Some(t) => writeln!(out, "damaged tail dropped: {t}"),
        None => writeln!(out, "clean end"),
    }
}

fn mode_name(m: WalRecoveryMode) -> &'static str {
    match m {
        WalRecoveryMode::TolerateCorruptTail => "tolerate",
        WalRecoveryMode::AbsoluteConsistency => "absolute",
    }
}

/// `wal dump FILE`: each record's offset, batch seqnum, count and operations.
pub fn dump(args: &Args, out: &mut dyn Write) -> Result<(), Failure> {
    writeln!(out, "wal {} (mode {})", args.path.display(), mode_name(args.mode))?;
    let limit = args.limit.unwrap_or(usize::MAX);
    let (mut printed, mut ops, mut bad) = (0usize, 0u64, 0u64);
    let mut seqs: Option<(u64, u64)> = None;
    let end = walk(&args.path, args.mode, |offset, record| {
        let batch = match WriteBatch::decode(record) {
            Ok(b) => b,
            Err(e) => {
                // Checksummed fragments around a bad batch: show it and read on, since the
                // records after it are intact.
                bad += 1;
                writeln!(out, "@{offset} bad batch ({} bytes): {e}", record.len())?;
                return Ok(());
            }
        };
        let (seq, count) = (batch.seq(), batch.count());
        ops += u64::from(count);
        if count > 0 {
            let last = seq + u64::from(count) - 1;
            seqs = Some(seqs.map_or((seq, last), |(lo, hi)| (lo.min(seq), hi.max(last))));
        }
        if printed < limit {
            printed += 1;
            writeln!(out, "@{offset} seq={seq} count={count} ({} bytes)", record.len())?;
            for (i, op) in batch.iter().enumerate() {
                let s = seq + i as u64;
                writeln!(out, "  {}", show::op(op.kind, op.key, s, op.value, args.value_width))?;
            }
        }
        Ok(())
    })?;
    if (end.records as usize) > printed + bad as usize {
        writeln!(out, "... printed {printed} records (--limit {limit})")?;
    }
    let seq_text = seqs.map_or("none".to_string(), |(lo, hi)| format!("{lo}..{hi}"));
    writeln!(out, "{} records, {ops} operations, seqnums {seq_text}", end.records)?;
    print_end(&end, out)?;
    // A non-empty file with no valid record is not a WAL (an empty one is a fresh WAL).
    if end.records == bad && end.len > 0 {
        let what = format!(
            "not a WAL: no valid record in {} bytes; it looks like {}",
            end.len,
            crate::sniff::looks_like(&args.path)
        );
        return Err(Error::corruption(what, args.path.display()).into());
    }
    if bad > 0 {
        let what = format!("{bad} records hold bad write batches");
        return Err(Error::corruption(what, args.path.display()).into());
    }
    Ok(())
}
