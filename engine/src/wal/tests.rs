//! Tests of the record log: golden layouts and damage cases (`testdata/wal`), writer
//! behaviour around failing files, and properties of reading damaged logs.

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::Arc;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::coding::masked_crc32c;
use crate::datadriven::{self, TestCase};
use crate::env::{File, Fs, MemFs};
use crate::error::{Error, Result};
use crate::wal::WalRecoveryMode;

/// A MemFs file holding exactly `bytes`.
fn file_with(bytes: &[u8]) -> Arc<dyn File> {
    let file = MemFs::new().create(Path::new("/log")).expect("create in memfs");
    file.append(bytes).expect("append to memfs");
    file
}

fn file_bytes(file: &Arc<dyn File>) -> Vec<u8> {
    let mut buf = vec![0; file.len().expect("len") as usize];
    file.read_at(0, &mut buf).expect("read whole file");
    buf
}

/// Writes `records` to a new log: the file's bytes and the end offset of each record.
fn write_log(records: &[Vec<u8>]) -> (Vec<u8>, Vec<u64>) {
    let file = MemFs::new().create(Path::new("/log")).expect("create in memfs");
    let mut w = LogWriter::new(file.clone());
    let mut ends = Vec::new();
    for r in records {
        w.add_record(r).expect("memfs append");
        ends.push(w.size());
    }
    let bytes = file_bytes(&file);
    assert_eq!(bytes.len() as u64, w.size());
    (bytes, ends)
}

/// How a read of a whole log ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    Clean,
    Dropped(String),
    Corrupt(String),
}

fn read_all(bytes: &[u8], mode: WalRecoveryMode) -> (Vec<Vec<u8>>, Outcome) {
    let mut r = LogReader::new(file_with(bytes), "log".into(), mode).expect("open reader");
    let mut records = Vec::new();
    loop {
        match r.read_record() {
            Ok(Some(rec)) => records.push(rec),
            Ok(None) => {
                let outcome = match r.dropped_tail() {
                    Some(d) => Outcome::Dropped(d.to_string()),
                    None => Outcome::Clean,
                };
                // The end is sticky.
                assert!(matches!(r.read_record(), Ok(None)));
                return (records, outcome);
            }
            Err(e) => {
                assert!(e.is_corruption(), "unexpected error {e}");
                // So is an error.
                assert!(r.read_record().is_err_and(|e| e.is_corruption()));
                return (records, Outcome::Corrupt(e.to_string()));
            }
        }
    }
}

/// Parses a record spec: `""` is empty, `c*N` is N copies of c, anything else is literal.
fn parse_record(spec: &str) -> Vec<u8> {
    if spec == "\"\"" {
        return Vec::new();
    }
    if let Some((c, n)) = spec.split_once('*') {
        if c.len() == 1 {
            if let Ok(n) = n.parse::<usize>() {
                return vec![c.as_bytes()[0]; n];
            }
        }
    }
    spec.as_bytes().to_vec()
}

/// The inverse of [`parse_record`], with hex for bytes that are not printable.
fn show_record(r: &[u8]) -> String {
    if r.is_empty() {
        return "\"\"".into();
    }
    if r.len() > 4 && r.iter().all(|&b| b == r[0]) && r[0].is_ascii_graphic() {
        return format!("{}*{}", r[0] as char, r.len());
    }
    if r.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return format!("{:?}", String::from_utf8_lossy(r));
    }
    r.iter().map(|b| format!("{b:02x}")).collect()
}

/// Describes the physical layout of `bytes[from..to]`, a region that starts at a fragment
/// boundary: one line per fragment, block-tail padding, or unreadable header.
fn layout(bytes: &[u8], from: usize, to: usize) -> String {
    let mut out = String::new();
    let mut pos = from;
    while pos < to {
        let in_block = pos % BLOCK_SIZE;
        let block_end = (pos - in_block + BLOCK_SIZE).min(bytes.len());
        if BLOCK_SIZE - in_block < HEADER_SIZE {
            out.push_str(&format!("  {pos}: padding {}\n", block_end - pos));
            pos = block_end;
            continue;
        }
        if bytes.len() - pos < HEADER_SIZE {
            out.push_str(&format!("  {pos}: cut-off header ({} bytes)\n", bytes.len() - pos));
            break;
        }
        let h = &bytes[pos..pos + HEADER_SIZE];
        if h.iter().all(|&b| b == 0) {
            out.push_str(&format!("  {pos}: zeros to block end\n"));
            pos = block_end;
            continue;
        }
        let len = usize::from(u16::from_le_bytes([h[4], h[5]]));
        let kind = match FragmentType::from_u8(h[6]) {
            Some(k) => format!("{k:?}"),
            None => format!("type={}", h[6]),
        };
        let end = pos + HEADER_SIZE + len;
        if end > block_end {
            out.push_str(&format!("  {pos}: {kind} len={len} (cut off at {block_end})\n"));
            pos = block_end;
            continue;
        }
        let crc = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let ok = masked_crc32c(&[&h[6..7], &bytes[pos + HEADER_SIZE..end]]) == crc;
        out.push_str(&format!("  {pos}: {kind} len={len}{}\n", if ok { "" } else { " bad-crc" }));
        pos = end;
    }
    out
}

fn mode_name(mode: WalRecoveryMode) -> &'static str {
    match mode {
        WalRecoveryMode::TolerateCorruptTail => "tolerate",
        WalRecoveryMode::AbsoluteConsistency => "absolute",
    }
}

/// State of the golden-file test: one log file, its writer, and how it was mutated.
struct Golden {
    file: Arc<dyn File>,
    writer: LogWriter,
}

impl Golden {
    fn fresh() -> Golden {
        let file = MemFs::new().create(Path::new("/log")).expect("create in memfs");
        Golden { writer: LogWriter::new(file.clone()), file }
    }

    fn handle(&mut self, case: &TestCase) -> String {
        let len = || self.file.len().expect("len") as usize;
        match case.cmd.as_str() {
            "write" => {
                if !case.has("append") {
                    *self = Golden::fresh();
                }
                let mut out = String::new();
                for line in case.input.lines() {
                    let record = parse_record(line);
                    let before = self.writer.size() as usize;
                    self.writer.add_record(&record).expect("memfs append");
                    let bytes = file_bytes(&self.file);
                    out.push_str(&format!("{}:\n", show_record(&record)));
                    out.push_str(&layout(&bytes, before, bytes.len()));
                }
                out.push_str(&format!("size {}\n", self.writer.size()));
                out
            }
            "dump" => {
                let bytes = file_bytes(&self.file);
                format!("{}size {}\n", layout(&bytes, 0, bytes.len()), bytes.len())
            }
            "read" => {
                let bytes = file_bytes(&self.file);
                let mut out = String::new();
                for mode in
                    [WalRecoveryMode::TolerateCorruptTail, WalRecoveryMode::AbsoluteConsistency]
                {
                    out.push_str(&format!("{}:\n", mode_name(mode)));
                    let (records, outcome) = read_all(&bytes, mode);
                    for r in &records {
                        out.push_str(&format!("  {}\n", show_record(r)));
                    }
                    match outcome {
                        Outcome::Clean => out.push_str("  end\n"),
                        Outcome::Dropped(d) => out.push_str(&format!("  end, dropped {d}\n")),
                        Outcome::Corrupt(e) => out.push_str(&format!("  error: {e}\n")),
                    }
                }
                out
            }
            "truncate" => {
                let n: usize = case.arg_or("len", 0);
                self.file.truncate(n as u64).expect("truncate memfs");
                format!("size {}\n", len())
            }
            "flip" => {
                let offset: usize = case.arg_or("offset", 0);
                let bit: u8 = case.arg_or("bit", 0);
                let mut bytes = file_bytes(&self.file);
                bytes[offset] ^= 1 << bit;
                self.replace(&bytes);
                format!("byte {offset} is now {:02x}\n", bytes[offset])
            }
            "zero" => {
                let from: usize = case.arg_or("from", 0);
                let to: usize = case.arg_or("to", len());
                let mut bytes = file_bytes(&self.file);
                bytes[from..to].fill(0);
                self.replace(&bytes);
                format!("zeroed [{from}, {to})\n")
            }
            "append-zeros" => {
                let n: usize = case.arg_or("n", 0);
                self.file.append(&vec![0; n]).expect("append memfs");
                format!("size {}\n", len())
            }
            "append-garbage" => {
                // Non-zero bytes that hold no valid fragment.
                let n: usize = case.arg_or("n", 0);
                let garbage: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8 | 0x80).collect();
                self.file.append(&garbage).expect("append memfs");
                format!("size {}\n", len())
            }
            "append-fragment" => {
                // A hand-made fragment, for shapes the writer never makes.
                let kind: u8 = case.arg_or("type", 1);
                let data = parse_record(&case.arg_or("data", "\"\"".to_string()));
                let mut crc = masked_crc32c(&[&[kind], &data]);
                if case.has("bad-crc") {
                    crc ^= 1;
                }
                let mut frag = crc.to_le_bytes().to_vec();
                frag.extend_from_slice(&(data.len() as u16).to_le_bytes());
                frag.push(kind);
                frag.extend_from_slice(&data);
                let at = len();
                self.file.append(&frag).expect("append memfs");
                format!("{}size {}\n", layout(&file_bytes(&self.file), at, len()), len())
            }
            other => panic!("line {}: unknown command {other}", case.line),
        }
    }

    /// Swaps in a file holding `bytes` (the writer is left pointing at the old one).
    fn replace(&mut self, bytes: &[u8]) {
        self.file.truncate(0).expect("truncate memfs");
        self.file.append(bytes).expect("append memfs");
    }
}

#[test]
fn golden() {
    let mut g = Golden::fresh();
    datadriven::run("testdata/wal", |case| g.handle(case));
}

/// A file that counts appends and can be told to fail them or sync.
#[derive(Debug)]
struct CountingFile {
    inner: Arc<dyn File>,
    appends: AtomicUsize,
    fail: bool,
}

impl File for CountingFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn append(&self, data: &[u8]) -> Result<()> {
        self.appends.fetch_add(1, Ordering::Relaxed);
        if self.fail {
            return Err(Error::io("append /log", std::io::Error::other("disk on fire")));
        }
        self.inner.append(data)
    }
    fn sync(&self) -> Result<()> {
        if self.fail {
            return Err(Error::io("sync /log", std::io::Error::other("disk on fire")));
        }
        Ok(())
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn truncate(&self, len: u64) -> Result<()> {
        self.inner.truncate(len)
    }
}

fn counting_file(fail: bool) -> Arc<CountingFile> {
    let inner = MemFs::new().create(Path::new("/log")).expect("create in memfs");
    Arc::new(CountingFile { inner, appends: AtomicUsize::new(0), fail })
}

#[test]
fn one_append_per_record() {
    let file = counting_file(false);
    let mut w = LogWriter::new(file.clone());
    for size in [0, 10, 100_000, BLOCK_SIZE - HEADER_SIZE, 3] {
        w.add_record(&vec![7; size]).expect("append");
    }
    w.sync().expect("sync");
    assert_eq!(file.appends.load(Ordering::Relaxed), 5);
    assert_eq!(w.size(), file.len().expect("len"));
}

#[test]
fn writer_refuses_work_after_a_failure() {
    let file = counting_file(true);
    let mut w = LogWriter::new(file.clone());
    assert!(w.add_record(b"x").is_err_and(|e| e.is_io()));
    assert!(matches!(w.add_record(b"y"), Err(Error::Poisoned { .. })));
    assert!(matches!(w.sync(), Err(Error::Poisoned { .. })));
    assert_eq!(file.appends.load(Ordering::Relaxed), 1, "no append after the failure");
    assert_eq!(w.size(), 0);

    let mut w = LogWriter::new(counting_file(true));
    assert!(w.sync().is_err_and(|e| e.is_io()));
    assert!(matches!(w.add_record(b"y"), Err(Error::Poisoned { .. })));
}

#[test]
fn record_end_marks_the_intact_prefix() {
    let records = vec![b"one".to_vec(), vec![b'x'; 40_000], b"three".to_vec()];
    let (bytes, ends) = write_log(&records);
    // Cut the last record short: the intact prefix ends after the second.
    let cut = &bytes[..bytes.len() - 2];
    let mut r = LogReader::new(file_with(cut), "log".into(), WalRecoveryMode::TolerateCorruptTail)
        .expect("open");
    assert_eq!(r.record_end(), 0);
    assert_eq!(r.read_record().expect("first"), Some(records[0].clone()));
    assert_eq!(r.record_end(), ends[0]);
    assert_eq!(r.read_record().expect("second"), Some(records[1].clone()));
    assert_eq!(r.read_record().expect("tail"), None);
    assert_eq!(r.record_end(), ends[1]);
    assert!(r.dropped_tail().is_some());
}

#[test]
fn megabyte_records_round_trip() {
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let records = vec![b"a".to_vec(), big, Vec::new(), b"b".to_vec()];
    let (bytes, _) = write_log(&records);
    let (read, outcome) = read_all(&bytes, WalRecoveryMode::AbsoluteConsistency);
    assert_eq!(outcome, Outcome::Clean);
    assert!(read == records);
}

/// Record sizes: mostly small, some crossing one or several blocks.
fn record_strategy(size_max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..64),
        2 => proptest::collection::vec(any::<u8>(), 0..size_max.min(2000)),
        1 => (0..size_max, any::<u8>()).prop_map(|(n, b)| {
            // Large records: cheap to generate, still distinct per position.
            (0..n).map(|i| b.wrapping_add((i / 7) as u8)).collect()
        }),
    ]
}

/// Starts of the written fragments and block-tail padding are the only places a writer puts
/// bytes; this lists each fragment's byte range, walking the writer's own layout.
fn fragment_ranges(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let in_block = pos % BLOCK_SIZE;
        if BLOCK_SIZE - in_block < HEADER_SIZE {
            pos += BLOCK_SIZE - in_block;
            continue;
        }
        let len = usize::from(u16::from_le_bytes([bytes[pos + 4], bytes[pos + 5]]));
        out.push((pos, pos + HEADER_SIZE + len));
        pos += HEADER_SIZE + len;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn records_round_trip(records in proptest::collection::vec(record_strategy(100_000), 0..12)) {
        let (bytes, _) = write_log(&records);
        for mode in [WalRecoveryMode::TolerateCorruptTail, WalRecoveryMode::AbsoluteConsistency] {
            let (read, outcome) = read_all(&bytes, mode);
            prop_assert_eq!(outcome, Outcome::Clean);
            prop_assert!(read == records, "records differ");
        }
    }

    /// A truncated log reads as exactly the records wholly before the cut; the cut is clean
    /// when only zeros (block padding) lie between the last whole record and it.
    #[test]
    fn truncation_gives_a_prefix(
        records in proptest::collection::vec(record_strategy(40_000), 1..8),
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 48),
    ) {
        let (bytes, ends) = write_log(&records);
        let cuts: Vec<usize> = if bytes.len() <= 2500 {
            (0..=bytes.len()).collect()
        } else {
            // Every offset near a record end or a block boundary, and some at random.
            let mut cuts: Vec<usize> = picks.iter().map(|p| p.index(bytes.len() + 1)).collect();
            let marks = ends.iter().map(|&e| e as usize).chain((0..=bytes.len()).step_by(BLOCK_SIZE));
            for m in marks {
                cuts.extend((m.saturating_sub(9)..=m + 9).filter(|&c| c <= bytes.len()));
            }
            cuts
        };
        for cut in cuts {
            let whole = ends.iter().filter(|&&e| e as usize <= cut).count();
            let last_end = if whole == 0 { 0 } else { ends[whole - 1] as usize };
            let clean = bytes[last_end..cut].iter().all(|&b| b == 0);
            let (read, outcome) = read_all(&bytes[..cut], WalRecoveryMode::TolerateCorruptTail);
            prop_assert!(read[..] == records[..whole], "cut {}: wrong records", cut);
            prop_assert_eq!(matches!(outcome, Outcome::Clean), clean, "cut {}: {:?}", cut, outcome);
            prop_assert!(!matches!(outcome, Outcome::Corrupt(_)), "cut {}: {:?}", cut, outcome);
            let (read, outcome) = read_all(&bytes[..cut], WalRecoveryMode::AbsoluteConsistency);
            prop_assert!(read[..] == records[..whole], "cut {}: wrong records", cut);
            prop_assert_eq!(matches!(outcome, Outcome::Clean), clean, "cut {}: {:?}", cut, outcome);
        }
    }

    /// One flipped bit inside a fragment: the records before it are read, then the log ends
    /// (a tolerated tail) if no fragment follows the damaged one, and is corrupt otherwise.
    /// A flip in block padding changes nothing.
    #[test]
    fn one_bit_flip_is_found_and_judged(
        records in proptest::collection::vec(record_strategy(40_000), 1..8),
        pick in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let (mut bytes, ends) = write_log(&records);
        prop_assume!(!bytes.is_empty());
        let frags = fragment_ranges(&bytes);
        let at = pick.index(bytes.len());
        bytes[at] ^= 1 << bit;
        let (read, outcome) = read_all(&bytes, WalRecoveryMode::TolerateCorruptTail);
        match frags.iter().position(|&(s, e)| s <= at && at < e) {
            None => {
                prop_assert_eq!(outcome, Outcome::Clean);
                prop_assert!(read == records);
            }
            Some(f) => {
                let damaged = ends.iter().filter(|&&e| e as usize <= at).count();
                prop_assert!(read[..] == records[..damaged], "flip at {}: wrong records", at);
                if f + 1 < frags.len() {
                    prop_assert!(matches!(outcome, Outcome::Corrupt(_)), "{:?}", outcome);
                } else {
                    prop_assert!(matches!(outcome, Outcome::Dropped(_)), "{:?}", outcome);
                    let (_, strict) = read_all(&bytes, WalRecoveryMode::AbsoluteConsistency);
                    prop_assert!(matches!(strict, Outcome::Corrupt(_)), "{:?}", strict);
                }
            }
        }
    }

    /// Any damage at all: what is read is a prefix of what was written, and nothing panics.
    #[test]
    fn damage_never_invents_records(
        records in proptest::collection::vec(record_strategy(40_000), 0..8),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..6),
        garbage in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (mut bytes, _) = write_log(&records);
        for (pick, byte, how) in &edits {
            if bytes.is_empty() {
                break;
            }
            let at = pick.index(bytes.len());
            match how {
                0 => bytes[at] = *byte,
                1 => bytes.truncate(at),
                _ => bytes.splice(at..at, garbage.iter().copied()).for_each(drop),
            }
        }
        for mode in [WalRecoveryMode::TolerateCorruptTail, WalRecoveryMode::AbsoluteConsistency] {
            let (read, _) = read_all(&bytes, mode);
            prop_assert!(read.len() <= records.len());
            prop_assert!(read[..] == records[..read.len()], "read records that were not written");
        }
    }

    /// A file that was never a log reads as nothing, without panicking.
    #[test]
    fn garbage_files_hold_no_records(
        garbage in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..100),
            proptest::collection::vec(any::<u8>(), 0..70_000),
            (0..70_000usize, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        ],
    ) {
        for mode in [WalRecoveryMode::TolerateCorruptTail, WalRecoveryMode::AbsoluteConsistency] {
            let (read, outcome) = read_all(&garbage, mode);
            prop_assert!(read.is_empty());
            if garbage.iter().all(|&b| b == 0) {
                prop_assert_eq!(outcome, Outcome::Clean);
            }
        }
    }
}
