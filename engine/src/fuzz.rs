//! Fuzzing entry points: one function per target of the `fuzz/` cargo-fuzz project.
//!
//! Each takes arbitrary bytes, drives one decoder of the engine as far as the bytes allow, and
//! checks what the engine promises about the result. Errors are the expected answer to bad
//! bytes; a panic means a decoder panicked on bad input or a promise checked here was broken,
//! which is an engine bug either way. The functions live here, not in `fuzz/`, so that
//! `engine/tests/fuzz_corpus.rs` runs them over the seed corpus on stable Rust.
//!
//! Not part of the engine's API (`#[doc(hidden)]` in lib.rs).

use crate::sync::Arc;
use std::cmp::Ordering;
use std::path::Path;

use crate::batch::WriteBatch;
use crate::cache::Cache;
use crate::coding::masked_crc32c;
use crate::comparator::Bytewise;
use crate::env::{File, Fs, MemFs};
use crate::iter::InternalIterator;
use crate::key::{self, InternalComparator, Kind};
use crate::options::{DelimiterPrefix, Options};
use crate::sstable::{self, Table, TableIter};
use crate::version::edit::VersionEdit;
use crate::version::{manifest, Version};
use crate::wal::WalRecoveryMode;
use crate::wal::{FragmentType, LogReader, BLOCK_SIZE, HEADER_SIZE};

/// The prefix extractor the seed tables are written with (keys like `a@3`), so that opening
/// them reaches the prefix-filter path.
pub const PREFIX_DELIMITER: u8 = b'@';

/// Table options the fuzz targets open tables with (and the corpus generator writes them
/// with): defaults on a `MemFs`, plus the `@` prefix extractor.
pub fn table_options() -> Options {
    Options {
        fs: Arc::new(MemFs::new()),
        prefix_extractor: Some(Arc::new(DelimiterPrefix(PREFIX_DELIMITER))),
        ..Options::default()
    }
}

/// Writes `data` to a fresh in-memory file.
fn mem_file(data: &[u8]) -> Arc<dyn File> {
    let fs = MemFs::new();
    let file = fs.create(Path::new("/fuzz")).expect("MemFs creates files in its root");
    file.append(data).expect("MemFs appends");
    file
}

/// `data` as an SSTable: `Table::open`, then a full forward and backward scan, seeks,
/// `may_contain`, `may_contain_prefix` and the range tombstones. Runs twice: on the bytes as
/// given and, when they differ, on a copy with every reachable checksum recomputed (so a
/// mutation inside a block is parsed instead of stopping at its CRC).
///
/// Checked: open validated the range tombstones (each `start < end`, in order); a forward and
/// a backward scan that both finish see the same entries, each a well-formed internal key;
/// the table opened through a small block cache scans the same, and leaves no handle pinned.
pub fn sstable_open(data: &[u8]) {
    check_table(data);
    let fixed = sstable::fuzz_fix_checksums(data);
    if fixed != data {
        check_table(&fixed);
    }
}

fn check_table(data: &[u8]) {
    let opts = table_options();
    let Ok(table) = Table::open(mem_file(data), 1, &opts) else {
        return;
    };
    let cmp = InternalComparator::new(opts.comparator.clone());
    for pair in table.range_tombstones().windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let ordered = cmp.compare_user(&a.start, &b.start).then(b.seq.cmp(&a.seq));
        assert_eq!(ordered, Ordering::Less, "range tombstones out of order: {a:?} {b:?}");
    }
    for t in table.range_tombstones() {
        assert_eq!(cmp.compare_user(&t.start, &t.end), Ordering::Less, "empty tombstone {t:?}");
    }

    let mut it = table.iter();
    let (forward, forward_done) = scan(&mut it, Direction::Forward);
    let (mut backward, backward_done) = scan(&mut it, Direction::Backward);
    if forward_done && backward_done {
        backward.reverse();
        assert_eq!(forward, backward, "table scans disagree");
    }

    // The same table through a block cache small enough to evict: the same entries, and no
    // pinned block left behind once the table and its iterators are gone.
    let cache = Cache::new(4 << 10);
    let cached = Table::open_with_cache(mem_file(data), 1, &opts, Some((cache.clone(), 1)));
    if let Ok(cached) = cached {
        let (cached_forward, cached_done) = scan(&mut cached.iter(), Direction::Forward);
        if forward_done && cached_done {
            assert_eq!(forward, cached_forward, "the block cache changes what a scan sees");
        }
    }
    if let Err(leaked) = cache.close() {
        panic!("block cache handles outlive their table: {leaked:?}");
    }

    // Seeks, filters: anything goes but a panic (a forged table may lie in its index or
    // filter; only the CRCs would have caught that).
    let mut targets: Vec<Vec<u8>> = forward.iter().take(32).map(|(k, _)| k.clone()).collect();
    targets.push(key::encode(b"", key::SEQNUM_MAX, Kind::RangeDelete));
    targets.push(key::encode(&[0xff; 8], 0, Kind::Delete));
    for (k, _) in forward.iter().take(8) {
        let user = key::user_key(k);
        targets.push(key::seek_key(user, 0).to_vec());
        targets.push(key::last_key(user).to_vec());
    }
    for t in &targets {
        let _ = it.seek_ge(t);
        let _ = it.seek_lt(t);
        if it.valid() {
            let _ = it.next();
        }
        let user = key::user_key(t);
        table.may_contain(user);
        if let Some(p) = opts.prefix_extractor.as_ref().and_then(|p| p.prefix(user)) {
            table.may_contain_prefix(p);
        }
    }
    let _ = format!("{:?}", table.properties());
}

/// A key and its value.
type Entry = (Vec<u8>, Vec<u8>);

/// Which way [`scan`] goes.
#[derive(Clone, Copy, Debug)]
enum Direction {
    Forward,
    Backward,
}

/// Every entry of a table iterator in one direction, and whether the scan finished (no
/// error, and under the cap: a forged index may list one block many times, so a small table
/// can yield many entries, and the cap bounds the work).
fn scan(it: &mut TableIter, direction: Direction) -> (Vec<Entry>, bool) {
    const CAP: usize = 1 << 16;
    let mut entries = Vec::new();
    let mut ok = match direction {
        Direction::Forward => it.first().is_ok(),
        Direction::Backward => it.last().is_ok(),
    };
    while ok && it.valid() && entries.len() < CAP {
        assert!(key::parse(it.key()).is_some(), "table iterator yields a bad internal key");
        entries.push((it.key().to_vec(), it.value().to_vec()));
        ok = match direction {
            Direction::Forward => it.next().is_ok(),
            Direction::Backward => it.prev().is_ok(),
        };
    }
    let done = ok && entries.len() < CAP;
    (entries, done)
}

/// `data` as the contents of one block: see [`sstable::fuzz_block`].
pub fn block_iter(data: &[u8]) {
    sstable::fuzz_block(data);
}

/// The outcome of reading a log to its end.
#[derive(Debug, PartialEq, Eq)]
enum LogEnd {
    /// `Ok(None)`: a clean end, or (in tolerant mode) a dropped tail.
    Clean {
        dropped_tail: bool,
    },
    Corruption,
}

/// Reads every record of `file` in `mode`; also checks that a reader's last answer repeats.
fn read_log(file: &Arc<dyn File>, mode: WalRecoveryMode) -> (Vec<Vec<u8>>, LogEnd, u64) {
    let mut reader =
        LogReader::new(file.clone(), "fuzz.log".into(), mode).expect("MemFs knows the length");
    let mut records = Vec::new();
    let len = file.len().expect("MemFs knows the length");
    let end = loop {
        match reader.read_record() {
            Ok(Some(r)) => {
                records.push(r);
                // Every record takes at least one 7-byte header.
                assert!(records.len() as u64 <= len / 7, "log reader does not progress");
            }
            Ok(None) => {
                assert_eq!(reader.read_record().ok(), Some(None), "end of log does not repeat");
                break LogEnd::Clean { dropped_tail: reader.dropped_tail().is_some() };
            }
            Err(e) => {
                assert!(e.is_corruption(), "in-memory log read failed with {e}");
                let again = reader.read_record().expect_err("corruption repeats");
                assert!(again.is_corruption());
                break LogEnd::Corruption;
            }
        }
    };
    assert!(reader.record_end() <= len, "record end past the file");
    (records, end, reader.record_end())
}

/// `data` as a WAL: a `LogReader` in both recovery modes, every record decoded as a
/// [`WriteBatch`] (see [`batch_decode`]). Runs twice: on the bytes as given and, when they
/// differ, on a copy with the fragment checksums recomputed ([`fix_log_checksums`]).
///
/// Checked: both modes return the same records; where the tolerant mode ends cleanly without
/// dropping anything, the strict mode does too, and where it drops a tail the strict mode
/// reports corruption; after a dropped tail, the file cut at `record_end()` reads back as
/// the same records with a clean end (the recovery promise the engine relies on when it
/// truncates a WAL).
pub fn wal_replay(data: &[u8]) {
    check_wal(data);
    let fixed = fix_log_checksums(data);
    if fixed != data {
        check_wal(&fixed);
    }
}

fn check_wal(data: &[u8]) {
    let file = mem_file(data);
    let (tolerant, tolerant_end, record_end) =
        read_log(&file, WalRecoveryMode::TolerateCorruptTail);
    let (strict, strict_end, _) = read_log(&file, WalRecoveryMode::AbsoluteConsistency);
    assert_eq!(tolerant, strict, "recovery modes disagree on the records");
    match tolerant_end {
        LogEnd::Clean { dropped_tail: false } => {
            assert_eq!(strict_end, LogEnd::Clean { dropped_tail: false })
        }
        LogEnd::Clean { dropped_tail: true } => {
            assert_eq!(strict_end, LogEnd::Corruption);
            let cut = usize::try_from(record_end).expect("record end within the data");
            let (again, end, _) =
                read_log(&mem_file(&data[..cut]), WalRecoveryMode::AbsoluteConsistency);
            assert_eq!(again, tolerant, "the intact prefix reads back differently");
            assert_eq!(end, LogEnd::Clean { dropped_tail: false }, "the intact prefix is damaged");
        }
        LogEnd::Corruption => assert_eq!(strict_end, LogEnd::Corruption),
    }
    for record in &tolerant {
        batch_decode(record);
    }
}

/// `data` as a MANIFEST: its records decoded as [`VersionEdit`]s and applied one after the
/// other to an empty [`Version`]; then the same bytes recovered through
/// [`manifest::recover`] from a `MemFs` directory whose `CURRENT` names them. Runs twice: on
/// the bytes as given and, when they differ, with the fragment checksums recomputed.
///
/// Checked: a decoded edit re-encodes to bytes that decode to the same edit; every version
/// `apply` accepts satisfies the level invariants; and when `recover` succeeds, its version
/// is the one the step-by-step replay built.
pub fn manifest_replay(data: &[u8]) {
    check_manifest(data);
    let fixed = fix_log_checksums(data);
    if fixed != data {
        check_manifest(&fixed);
    }
}

fn check_manifest(data: &[u8]) {
    let cmp = InternalComparator::new(Arc::new(Bytewise));
    let (records, _, _) = read_log(&mem_file(data), WalRecoveryMode::TolerateCorruptTail);
    let mut version = Some(Version::default());
    for record in &records {
        let edit = VersionEdit::decode(record, "fuzz");
        let Ok(edit) = edit else {
            version = None;
            continue;
        };
        let again = VersionEdit::decode(&edit.encode(), "fuzz re-encoded");
        assert_eq!(again.as_ref().ok(), Some(&edit), "version edit round trip");
        version = version.and_then(|v| manifest::apply(&v, &edit, &cmp, "fuzz").ok());
        if let Some(v) = &version {
            v.check_invariants(&cmp).expect("apply returned a version breaking an invariant");
        }
    }

    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let dir = Path::new("/db");
    fs.create_dir_all(dir).expect("MemFs makes directories");
    let manifest = fs.create(&crate::filename::manifest(dir, 1)).expect("MemFs creates files");
    manifest.append(data).expect("MemFs appends");
    let current = fs.create(&crate::filename::current(dir)).expect("MemFs creates files");
    current.append(b"MANIFEST-000001\n").expect("MemFs appends");
    if let Ok(recovered) = manifest::recover(&fs, dir, &cmp) {
        recovered.version.check_invariants(&cmp).expect("recovered version breaks an invariant");
        let stepwise = version.expect("recover succeeded where stepwise replay failed");
        assert!(
            recovered.version.levels == stepwise.levels,
            "recover and stepwise replay disagree"
        );
    }
}

/// `data` as an encoded [`WriteBatch`]. Runs twice: on the bytes as given and, when they
/// differ, with the trailing checksum recomputed (so mutations reach the record parser).
///
/// Checked: a batch that decodes re-encodes to exactly its input; iterating it yields
/// `count()` operations; and rebuilding a batch from those operations gives an equal batch.
pub fn batch_decode(data: &[u8]) {
    check_batch(data);
    if let Some(body) = data.len().checked_sub(4) {
        let mut fixed = data.to_vec();
        let crc = masked_crc32c(&[&data[..body]]);
        fixed[body..].copy_from_slice(&crc.to_le_bytes());
        if fixed != data {
            check_batch(&fixed);
        }
    }
}

fn check_batch(data: &[u8]) {
    let Ok(batch) = WriteBatch::decode(data) else {
        return;
    };
    assert_eq!(batch.encode(), data, "batch re-encodes differently");
    let mut rebuilt = WriteBatch::new();
    rebuilt.set_seq(batch.seq());
    let mut n = 0u32;
    for op in &batch {
        n += 1;
        match op.kind {
            Kind::Set => rebuilt.put(op.key, op.value),
            Kind::Delete => rebuilt.delete(op.key),
            Kind::SingleDelete => rebuilt.single_delete(op.key),
            Kind::Merge => rebuilt.merge(op.key, op.value),
            Kind::RangeDelete => rebuilt.delete_range(op.key, op.value),
        }
    }
    assert_eq!(n, batch.count(), "batch iterates a different number of operations");
    assert_eq!(rebuilt, batch, "batch rebuilt from its operations differs");
}

/// Returns a copy of `log` with the checksum of every fragment a reader would meet recomputed:
/// fragments are followed from the start, block by block, as long as each header names a known
/// type and a length that fits its block and the file. Lets a fuzzer's mutations inside
/// records reach the record decoders.
pub fn fix_log_checksums(log: &[u8]) -> Vec<u8> {
    let mut out = log.to_vec();
    let mut pos = 0;
    while pos < out.len() {
        let in_block = pos % BLOCK_SIZE;
        if BLOCK_SIZE - in_block < HEADER_SIZE {
            pos += BLOCK_SIZE - in_block;
            continue;
        }
        let Some(header) = out.get(pos..pos + HEADER_SIZE) else {
            break;
        };
        let len = usize::from(u16::from_le_bytes([header[4], header[5]]));
        let end = pos + HEADER_SIZE + len;
        if FragmentType::from_u8(header[6]).is_none()
            || in_block + HEADER_SIZE + len > BLOCK_SIZE
            || end > out.len()
        {
            break;
        }
        let crc = masked_crc32c(&[&out[pos + 6..end]]);
        out[pos..pos + 4].copy_from_slice(&crc.to_le_bytes());
        pos = end;
    }
    out
}
