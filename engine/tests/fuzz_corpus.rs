//! The engine's fuzz targets on stable Rust: every file of each seed corpus in
//! `fuzz/corpus/<target>/`, then a few thousand seeded mutations of them, through the
//! `cobble::internal::fuzz` entry points. Also the generator of those seed corpora: run with
//! `REWRITE=1` to write them again (after a format change, say).

use cobble::internal::sync::Arc;
use std::path::{Path, PathBuf};

use cobble::internal::fuzz;
use cobble::internal::key::{self, Kind, RangeTombstone};
use cobble::internal::sstable::{Table, TableWriter};
use cobble::internal::version::edit::VersionEdit;
use cobble::internal::version::manifest::{self, ManifestWriter};
use cobble::internal::version::FileMetadata;
use cobble::internal::wal::LogWriter;
use cobble::{Compression, File, Fs, MemFs, Options, WalRecoveryMode, WriteBatch};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Target = fn(&[u8]);

/// The engine's targets, by corpus directory name.
const TARGETS: [(&str, Target); 5] = [
    ("sstable_open", fuzz::sstable_open),
    ("block_iter", fuzz::block_iter),
    ("wal_replay", fuzz::wal_replay),
    ("manifest_replay", fuzz::manifest_replay),
    ("batch_decode", fuzz::batch_decode),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

/// The files of a corpus, sorted by name (so mutations are reproducible).
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("readable corpus dir").path();
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("readable corpus file"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "seed corpus {} is empty", dir.display());
    files
}

#[test]
fn every_seed_runs_through_its_target() {
    for (target, run) in TARGETS {
        for (name, bytes) in corpus(target) {
            eprintln!("{target}/{name}");
            run(&bytes);
        }
    }
}

/// One random edit of `input`, of the kinds a fuzzer makes.
fn mutate(rng: &mut ChaCha8Rng, input: &[u8], others: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let len = out.len();
        match rng.gen_range(0..7) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                out[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                out[i] = *[0, 1, 0x7f, 0x80, 0xff].get(rng.gen_range(0..5)).expect("in range");
            }
            2 => out.truncate(rng.gen_range(0..=len)),
            3 => {
                let i = rng.gen_range(0..=len);
                let n = rng.gen_range(1..=16);
                let junk: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                out.splice(i..i, junk);
            }
            4 if len > 0 => {
                let i = rng.gen_range(0..len);
                let j = rng.gen_range(i..=len.min(i + 64));
                out.drain(i..j);
            }
            5 if len > 0 => {
                // Copy a run from elsewhere in the input over another place.
                let (a, b) = (rng.gen_range(0..len), rng.gen_range(0..len));
                let n = rng.gen_range(1..=32).min(len - a).min(len - b);
                let run = out[a..a + n].to_vec();
                out[b..b + n].copy_from_slice(&run);
            }
            _ => {
                // Splice: our head, another seed's tail.
                let other = &others[rng.gen_range(0..others.len())].1;
                let cut = rng.gen_range(0..=len);
                let from = rng.gen_range(0..=other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
        }
    }
    out
}

#[test]
fn seeded_mutations_of_the_seeds_run_through_their_targets() {
    for (t, (target, run)) in TARGETS.into_iter().enumerate() {
        let seeds = corpus(target);
        let mut rng = ChaCha8Rng::seed_from_u64(0xf022_0000 + t as u64);
        for i in 0..4000 {
            let input = if i % 10 == 0 {
                let n = rng.gen_range(0..256);
                (0..n).map(|_| rng.gen()).collect()
            } else {
                let seed = &seeds[rng.gen_range(0..seeds.len())].1;
                mutate(&mut rng, seed, &seeds)
            };
            run(&input);
        }
    }
}

/// The seed files still say what they were made to say: each valid one is still accepted,
/// so a format change that made the corpus stale shows up here (then run with `REWRITE=1`).
#[test]
fn valid_seeds_are_still_valid() {
    let opts = fuzz::table_options();
    for (name, bytes) in corpus("sstable_open").iter().filter(|(n, _)| n.starts_with("valid")) {
        let table = Table::open(mem_file(bytes), 1, &opts);
        assert!(table.is_ok(), "sstable_open/{name}: {table:?}");
    }
    for (name, bytes) in corpus("wal_replay").iter().filter(|(n, _)| n.starts_with("valid")) {
        let mut reader =
            cobble::internal::wal::LogReader::new(mem_file(bytes), name.clone(), strict())
                .expect("len");
        let mut n = 0;
        while let Some(record) = reader.read_record().expect("a valid seed log") {
            WriteBatch::decode(&record).expect("a valid seed batch");
            n += 1;
        }
        assert!(n > 0, "wal_replay/{name} holds no records");
    }
    for (name, bytes) in corpus("batch_decode").iter().filter(|(n, _)| n.starts_with("valid")) {
        assert!(WriteBatch::decode(bytes).is_ok(), "batch_decode/{name}");
    }
    for (name, bytes) in corpus("manifest_replay").iter().filter(|(n, _)| n.starts_with("valid")) {
        let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
        let dir = Path::new("/db");
        fs.create_dir_all(dir).expect("memfs");
        fs.create(&cobble::internal::filename::manifest(dir, 1))
            .expect("memfs")
            .append(bytes)
            .expect("ok");
        let current = fs.create(&cobble::internal::filename::current(dir)).expect("memfs");
        current.append(b"MANIFEST-000001\n").expect("memfs");
        let r = manifest::recover(&fs, dir, &icmp());
        assert!(r.is_ok(), "manifest_replay/{name}: {r:?}");
    }
}

fn strict() -> WalRecoveryMode {
    WalRecoveryMode::AbsoluteConsistency
}

fn icmp() -> key::InternalComparator {
    key::InternalComparator::new(Arc::new(cobble::Bytewise))
}

fn mem_file(bytes: &[u8]) -> Arc<dyn File> {
    let file = MemFs::new().create(Path::new("/f")).expect("memfs");
    file.append(bytes).expect("memfs");
    file
}

// ---- The seed corpus generator -----------------------------------------------------------

/// Writes the seed corpora when `REWRITE=1`; otherwise checks every file it would write is
/// there (its bytes may differ after a harmless format tweak: `valid_seeds_are_still_valid`
/// is the test that matters).
#[test]
fn seed_corpus_generator() {
    let files = seed_files();
    let total: usize = files.iter().map(|(_, _, b)| b.len()).sum();
    assert!(total < 150 << 10, "seed corpora grew to {total} bytes; keep them small");
    let rewrite = std::env::var_os("REWRITE").is_some();
    for (target, name, bytes) in files {
        let path = corpus_dir(target).join(name);
        if rewrite {
            std::fs::create_dir_all(corpus_dir(target)).expect("create corpus dir");
            std::fs::write(&path, bytes).expect("write corpus file");
        } else {
            assert!(path.exists(), "{} missing: run with REWRITE=1", path.display());
        }
    }
}

/// Every seed: `(target, file name, bytes)`. Files named `valid*` must be accepted as they
/// are; the others are deliberately damaged.
fn seed_files() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut out = Vec::new();

    // Tables: small blocks so there are several, one with a two-level index, one LZ4.
    let small = table(&Options { block_size: 128, restart_interval: 4, ..fuzz::table_options() });
    let two_level = table(&Options {
        block_size: 64,
        index_block_size: 64,
        compression: Compression::None,
        bloom_bits_per_key: 0,
        ..fuzz::table_options()
    });
    out.push(("sstable_open", "valid_small", small.clone()));
    out.push(("sstable_open", "valid_two_level", two_level.clone()));
    out.push(("sstable_open", "flipped_byte", flip(&small, small.len() / 3)));
    out.push(("sstable_open", "truncated", small[..small.len() - 9].to_vec()));

    // Blocks, encoded here from the documented layout.
    let ikeys: Vec<(Vec<u8>, Vec<u8>)> = (0..12u64)
        .map(|i| {
            (
                key::encode(format!("key@{i:02}").as_bytes(), 100 - i, Kind::Set),
                vec![b'v'; i as usize],
            )
        })
        .collect();
    let ikeys: Vec<(&[u8], &[u8])> = ikeys.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    out.push(("block_iter", "valid_internal", block(&ikeys, 3)));
    let plain: Vec<(&[u8], &[u8])> =
        vec![(b"cobble.filter", b"\x00\x10"), (b"cobble.properties", b"\x10\x20")];
    out.push(("block_iter", "valid_bytewise", block(&plain, 1)));
    out.push(("block_iter", "valid_empty", block(&[], 16)));
    let mut bad_restart = block(&ikeys, 3);
    let n = bad_restart.len();
    bad_restart[n - 8] ^= 0x01; // The last restart offset no longer starts an entry.
    out.push(("block_iter", "bad_restart", bad_restart));

    // WALs: a few batches, and one log whose large record spans blocks.
    let small_wal = log(&[batch(1, 3).encode(), batch(4, 5).encode(), batch(9, 1).encode()]);
    let mut big = WriteBatch::new();
    big.set_seq(20);
    big.put(b"big@1", vec![b'x'; 34 << 10]);
    big.delete(b"small@1");
    let big_wal = log(&[batch(1, 2).encode(), big.encode(), batch(30, 2).encode()]);
    out.push(("wal_replay", "valid_small", small_wal.clone()));
    out.push(("wal_replay", "valid_multiblock", big_wal));
    out.push(("wal_replay", "torn_tail", small_wal[..small_wal.len() - 5].to_vec()));
    out.push(("wal_replay", "damaged_middle", flip(&small_wal, 20)));

    // Manifests: a snapshot edit, then flushes and a compaction.
    let valid_manifest = manifest_bytes();
    out.push(("manifest_replay", "valid", valid_manifest.clone()));
    out.push(("manifest_replay", "torn_tail", valid_manifest[..valid_manifest.len() - 3].to_vec()));
    out.push(("manifest_replay", "flipped_byte", flip(&valid_manifest, 12)));

    // Batches.
    out.push(("batch_decode", "valid_mixed", batch(7, 6).encode()));
    out.push(("batch_decode", "valid_empty", WriteBatch::new().encode()));
    let mut bad_count = batch(7, 2).encode();
    bad_count[8] = 3; // Header counts 3, body holds 2: caught after the CRC is fixed below.
    let n = bad_count.len() - 4;
    let crc = cobble::internal::coding::masked_crc32c(&[&bad_count[..n]]);
    bad_count[n..].copy_from_slice(&crc.to_le_bytes());
    out.push(("batch_decode", "bad_count", bad_count));
    out
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x20;
    out
}

/// A table of 40 entries over 20 user keys (sets, deletes, merges) and two range tombstones.
fn table(opts: &Options) -> Vec<u8> {
    let file = MemFs::new().create(Path::new("/t")).expect("memfs");
    let mut w = TableWriter::new(file.clone(), opts);
    for i in 0..20u64 {
        let user = format!("user{:02}@{}", i, i % 3);
        let kinds = [Kind::Set, Kind::Delete, Kind::Merge];
        w.add(&key::encode(user.as_bytes(), 200 - i, kinds[(i % 3) as usize]), b"new-value")
            .expect("add");
        w.add(&key::encode(user.as_bytes(), 100 - i, Kind::Set), format!("old{i}").as_bytes())
            .expect("add");
    }
    for (start, end, seq) in [("user03", "user07", 150), ("user10", "user12", 90)] {
        let t = RangeTombstone { start: start.into(), end: end.into(), seq };
        w.add_range_tombstone(&t).expect("add tombstone");
    }
    let info = w.finish().expect("finish");
    let mut bytes = vec![0u8; info.file_size as usize];
    file.read_at(0, &mut bytes).expect("read back");
    bytes
}

/// Block contents per docs/format.md: prefix-compressed entries, restart array, count.
fn block(entries: &[(&[u8], &[u8])], restart_interval: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut restarts = vec![0u32];
    let mut prev: &[u8] = &[];
    for (i, (k, v)) in entries.iter().enumerate() {
        let shared = if i % restart_interval == 0 {
            if i > 0 {
                restarts.push(out.len() as u32);
            }
            0
        } else {
            prev.iter().zip(k.iter()).take_while(|(a, b)| a == b).count()
        };
        for n in [shared, k.len() - shared, v.len()] {
            cobble::internal::coding::put_varint32(&mut out, n as u32);
        }
        out.extend_from_slice(&k[shared..]);
        out.extend_from_slice(v);
        prev = k;
    }
    for r in &restarts {
        out.extend_from_slice(&r.to_le_bytes());
    }
    out.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
    out
}

/// A batch of `n` mixed operations starting at seqnum `seq`.
fn batch(seq: u64, n: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.set_seq(seq);
    for i in 0..n {
        let k = format!("k{}@{i}", seq + i);
        match i % 5 {
            0 => b.put(k.as_bytes(), b"value"),
            1 => b.delete(k.as_bytes()),
            2 => b.merge(k.as_bytes(), b"operand"),
            3 => b.single_delete(k.as_bytes()),
            _ => b.delete_range(k.as_bytes(), b"z"),
        }
    }
    b
}

fn log(records: &[Vec<u8>]) -> Vec<u8> {
    let file = MemFs::new().create(Path::new("/log")).expect("memfs");
    let mut w = LogWriter::new(file.clone());
    for r in records {
        w.add_record(r).expect("append");
    }
    let mut bytes = vec![0u8; file.len().expect("len") as usize];
    file.read_at(0, &mut bytes).expect("read back");
    bytes
}

fn meta(num: u64, smallest: &str, largest: &str, seq: u64) -> FileMetadata {
    FileMetadata {
        num,
        size: 1000 + num,
        smallest: key::encode(smallest.as_bytes(), seq, Kind::Set),
        largest: key::encode(largest.as_bytes(), seq + 5, Kind::Set),
        smallest_seq: seq,
        largest_seq: seq + 5,
        has_range_dels: num.is_multiple_of(2),
    }
}

/// A manifest written by `ManifestWriter`: snapshot, two flushes to L0, a compaction to L1.
fn manifest_bytes() -> Vec<u8> {
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let dir = Path::new("/db");
    fs.create_dir_all(dir).expect("memfs");
    let snapshot = VersionEdit {
        comparator: Some("cobble.bytewise".into()),
        log_number: Some(1),
        next_file_num: Some(3),
        last_seq: Some(0),
        ..VersionEdit::default()
    };
    let mut w = ManifestWriter::create(&fs, dir, 2, &snapshot).expect("create manifest");
    let flush = |num: u64, seq: u64| VersionEdit {
        log_number: Some(num + 1),
        next_file_num: Some(num + 2),
        last_seq: Some(seq + 5),
        added: vec![(0, meta(num, "a@1", "m@2", seq))],
        ..VersionEdit::default()
    };
    w.append(&flush(4, 10)).expect("append");
    w.append(&flush(6, 20)).expect("append");
    let compaction = VersionEdit {
        next_file_num: Some(10),
        deleted: [(0, 4), (0, 6)].into_iter().collect(),
        added: vec![(1, meta(8, "a@1", "f@2", 10)), (1, meta(9, "g@1", "m@2", 20))],
        ..VersionEdit::default()
    };
    w.append(&compaction).expect("append");
    let file = fs.open(&cobble::internal::filename::manifest(dir, 2)).expect("manifest exists");
    let mut bytes = vec![0u8; file.len().expect("len") as usize];
    file.read_at(0, &mut bytes).expect("read back");
    bytes
}

/// `fuzz_fix_checksums` is what lets mutations of a table get past its CRCs: a table with a
/// changed byte inside an (uncompressed) data block fails its scan as is and reads once fixed,
/// showing the changed byte.
#[test]
fn fixed_checksums_let_a_mutated_table_through() {
    use cobble::internal::iter::InternalIterator;
    let values = |bytes: &[u8]| -> cobble::Result<Vec<String>> {
        let table = Table::open(mem_file(bytes), 1, &fuzz::table_options())?;
        let mut it = table.iter();
        it.first()?;
        let mut values = Vec::new();
        while it.valid() {
            values.push(String::from_utf8_lossy(it.value()).into_owned());
            it.next()?;
        }
        Ok(values)
    };
    let bytes = corpus("sstable_open")
        .into_iter()
        .find(|(n, _)| n == "valid_two_level")
        .expect("seed exists")
        .1;
    let at = bytes.windows(4).position(|w| w == b"old7").expect("value stored uncompressed");
    let mut mutated = bytes.clone();
    mutated[at] = b'N';
    assert!(values(&mutated).is_err_and(|e| e.is_corruption()));
    assert_eq!(
        cobble::internal::sstable::fuzz_fix_checksums(&bytes),
        bytes,
        "a valid table needs no fix"
    );
    let fixed = values(&cobble::internal::sstable::fuzz_fix_checksums(&mutated))
        .expect("fixed table reads");
    assert_eq!(fixed.len(), 40);
    assert!(fixed.contains(&"Nld7".to_string()), "{fixed:?}");
}

/// Likewise `fix_log_checksums` for logs: a changed payload byte is damage as is, and once
/// fixed the log reads to its end with the changed record in place.
#[test]
fn fixed_checksums_let_a_mutated_log_through() {
    let records = |bytes: &[u8]| -> cobble::Result<Vec<Vec<u8>>> {
        let mut reader =
            cobble::internal::wal::LogReader::new(mem_file(bytes), "log".into(), strict())?;
        let mut out = Vec::new();
        while let Some(r) = reader.read_record()? {
            out.push(r);
        }
        Ok(out)
    };
    for name in ["valid_small", "valid_multiblock"] {
        let bytes = corpus("wal_replay").into_iter().find(|(n, _)| n == name).expect("seed").1;
        let original = records(&bytes).expect("a valid seed");
        assert_eq!(fuzz::fix_log_checksums(&bytes), bytes, "a valid log needs no fix");
        let at = bytes.len() - 10; // Inside the last record's payload.
        let mut mutated = bytes.clone();
        mutated[at] ^= 0x01;
        assert!(records(&mutated).is_err_and(|e| e.is_corruption()), "{name}");
        let fixed = records(&fuzz::fix_log_checksums(&mutated)).expect("fixed log reads");
        assert_eq!(fixed.len(), original.len(), "{name}");
        assert_ne!(fixed.last(), original.last(), "{name}");
    }
}
