//! Golden and property tests for SSTables: datadriven tables (testdata/sstable), a proptest
//! round trip against a sorted model, and byte-flip / truncation corruption sweeps.
//!
//! Size: a test file; its length is cases, not logic.

use crate::sync::Arc;
use std::cmp::Ordering;
use std::path::Path;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Table, TableInfo, TableWriter};
use crate::comparator::Bytewise;
use crate::datadriven::{self, TestCase};
use crate::env::{File, Fs, MemFs};
use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key::{self, InternalComparator, Kind, RangeTombstone, SEQNUM_MAX};
use crate::options::{Compression, DelimiterPrefix, Options};

/// Parses `user#seq,KIND` into an encoded internal key.
pub(super) fn parse_ikey(s: &str) -> Vec<u8> {
    let (user, rest) = s.rsplit_once('#').unwrap_or_else(|| panic!("bad key {s}"));
    let (seq, kind) = rest.split_once(',').unwrap_or_else(|| panic!("bad key {s}"));
    let kind = match kind {
        "DEL" => Kind::Delete,
        "SET" => Kind::Set,
        "MERGE" => Kind::Merge,
        "SINGLEDEL" => Kind::SingleDelete,
        "RANGEDEL" => Kind::RangeDelete,
        _ => panic!("bad kind in {s}"),
    };
    let seq = if seq == "MAX" { SEQNUM_MAX } else { seq.parse().expect("seq") };
    key::encode(user.as_bytes(), seq, kind)
}

/// Formats an internal key as `user#seq,KIND` (or hex when it does not parse).
pub(super) fn fmt_ikey(k: &[u8]) -> String {
    match key::parse(k) {
        Some(p) => {
            let kind = match p.kind {
                Kind::Delete => "DEL",
                Kind::Set => "SET",
                Kind::Merge => "MERGE",
                Kind::SingleDelete => "SINGLEDEL",
                Kind::RangeDelete => "RANGEDEL",
            };
            let seq = if p.seq == SEQNUM_MAX { "MAX".to_string() } else { p.seq.to_string() };
            format!("{}#{seq},{kind}", String::from_utf8_lossy(p.user_key))
        }
        None => format!("{k:x?}"),
    }
}

/// A seek target: a full internal key, or a bare user key meaning its smallest internal key.
pub(super) fn seek_target(s: &str) -> Vec<u8> {
    if s.contains('#') {
        parse_ikey(s)
    } else {
        key::seek_key(s.as_bytes(), SEQNUM_MAX).to_vec()
    }
}

/// A positionable thing the iterator script drives (a block iterator or a table iterator).
pub(super) trait Scripted {
    fn op(&mut self, op: &str, arg: Option<&str>) -> Result<()>;
    fn entry(&self) -> Option<(Vec<u8>, Vec<u8>)>;
}

impl Scripted for super::TableIter {
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

/// Runs one op per input line, printing the entry after each (or `.` when invalid).
pub(super) fn run_script(it: &mut dyn Scripted, input: &str) -> String {
    let mut out = String::new();
    for line in input.lines() {
        let mut words = line.split_whitespace();
        let Some(op) = words.next() else { continue };
        let arg = words.next();
        if matches!(op, "next" | "prev") && it.entry().is_none() {
            // Stepping an unpositioned iterator is a caller bug (it asserts); say so.
            out.push_str(&format!("{line:<12} -> (not positioned)\n"));
            continue;
        }
        let shown = match it.op(op, arg) {
            Err(e) => format!("err: {e}"),
            Ok(()) => match it.entry() {
                Some((k, v)) => format!("{}:{}", fmt_ikey(&k), String::from_utf8_lossy(&v)),
                None => ".".to_string(),
            },
        };
        out.push_str(&format!("{line:<12} -> {shown}\n"));
    }
    out
}

fn options_from(case: &TestCase) -> Options {
    let mut o = Options {
        fs: Arc::new(MemFs::new()),
        block_size: case.arg_or("block_size", 4096),
        index_block_size: case.arg_or("index_block_size", 4096),
        restart_interval: case.arg_or("restart_interval", 16),
        bloom_bits_per_key: case.arg_or("bloom", 10),
        ..Options::default()
    };
    o.compression = match case.arg_or("compression", "none".to_string()).as_str() {
        "none" => Compression::None,
        "lz4" => Compression::Lz4,
        other => panic!("unknown compression {other}"),
    };
    if let Some([p]) = case.arg("prefix") {
        o.prefix_extractor = Some(Arc::new(DelimiterPrefix(p.as_bytes()[0])));
    }
    o
}

/// Entries of a `build` input: `key:value` points and `rangedel start-end#seq` tombstones.
enum Item {
    Point(Vec<u8>, Vec<u8>),
    Tombstone(RangeTombstone),
}

fn parse_items(input: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for line in input.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("rangedel ") {
            let (range, seq) = rest.split_once('#').expect("rangedel start-end#seq");
            let (s, e) = range.split_once('-').expect("rangedel start-end#seq");
            items.push(Item::Tombstone(RangeTombstone {
                start: s.as_bytes().to_vec(),
                end: e.as_bytes().to_vec(),
                seq: seq.parse().expect("seq"),
            }));
        } else {
            let (k, v) = line.split_once(':').unwrap_or((line, ""));
            let v = match v.strip_prefix("x") {
                // `xN` for a value of N repeated bytes, to make blocks compressible.
                Some(n) if n.parse::<usize>().is_ok() => vec![b'v'; n.parse().expect("n")],
                _ => v.as_bytes().to_vec(),
            };
            items.push(Item::Point(parse_ikey(k), v));
        }
    }
    items
}

fn build(opts: &Options, items: &[Item]) -> (Arc<dyn File>, TableInfo) {
    let file = opts.fs.create(Path::new("/table.sst")).expect("create");
    let mut w = TableWriter::new(file.clone(), opts);
    for item in items {
        match item {
            Item::Point(k, v) => w.add(k, v).expect("add"),
            Item::Tombstone(t) => w.add_range_tombstone(t).expect("add tombstone"),
        }
    }
    let info = w.finish().expect("finish");
    assert_eq!(info.file_size, file.len().expect("len"));
    (file, info)
}

fn describe(table: &Arc<Table>, info: &TableInfo) -> String {
    let (parts, data) = table.layout().expect("layout");
    let mut out = format!("file_size={}\n", info.file_size);
    for (sep, h) in &data {
        out.push_str(&format!("data {}+{} sep={}\n", h.offset, h.size, fmt_ikey(sep)));
    }
    if !parts.is_empty() {
        out.push_str(&format!(
            "index partitions: {}\n",
            parts.iter().map(|h| format!("{}+{}", h.offset, h.size)).collect::<Vec<_>>().join(" ")
        ));
    }
    let p = table.properties();
    out.push_str(&format!(
        "entries={} deletions={} merges={} range_deletions={}\n",
        p.num_entries, p.num_deletions, p.num_merges, p.num_range_deletions
    ));
    out.push_str(&format!(
        "data_size={} index_size={} filter_size={} data_blocks={} index_partitions={}\n",
        p.data_size, p.index_size, p.filter_size, p.num_data_blocks, p.num_index_partitions
    ));
    let show = |k: &[u8]| if k.is_empty() { "-".to_string() } else { fmt_ikey(k) };
    out.push_str(&format!(
        "bounds: {} .. {} seqs {}..{}\n",
        show(&p.smallest),
        show(&p.largest),
        p.smallest_seq,
        p.largest_seq
    ));
    out.push_str(&format!(
        "names: comparator={} merge={} prefix={:?} compression={:?}\n",
        p.comparator, p.merge_operator, p.prefix_extractor, p.compression
    ));
    assert_eq!(&info.properties, p);
    assert_eq!((&info.smallest, &info.largest), (&p.smallest, &p.largest));
    out
}

#[test]
fn datadriven_sstable() {
    let mut table: Option<Arc<Table>> = None;
    let mut opts = Options::default();
    datadriven::run("testdata/sstable", |case| match case.cmd.as_str() {
        "build" => {
            opts = options_from(case);
            let (file, info) = build(&opts, &parse_items(&case.input));
            let t = Table::open(file, 7, &opts).expect("open");
            let out = describe(&t, &info);
            table = Some(t);
            out
        }
        "iter" => {
            let mut it = table.as_ref().expect("build first").iter();
            run_script(&mut it, &case.input)
        }
        "scan" => {
            // Forward then backward over everything.
            let t = table.as_ref().expect("build first");
            let mut it = t.iter();
            let mut fwd = Vec::new();
            it.first().expect("first");
            // `scan values` shows values too.
            let show = |it: &super::TableIter| {
                if case.has("values") {
                    format!("{}:{}", fmt_ikey(it.key()), String::from_utf8_lossy(it.value()))
                } else {
                    fmt_ikey(it.key())
                }
            };
            while it.valid() {
                fwd.push(show(&it));
                it.next().expect("next");
            }
            let mut bwd = Vec::new();
            it.last().expect("last");
            while it.valid() {
                bwd.push(show(&it));
                it.prev().expect("prev");
            }
            bwd.reverse();
            assert_eq!(fwd, bwd, "backward scan differs from forward");
            fwd.join(" ")
        }
        "may-contain" | "may-contain-prefix" => {
            let t = table.as_ref().expect("build first");
            let mut out = String::new();
            for k in case.input.split_whitespace() {
                let yes = if case.cmd == "may-contain" {
                    t.may_contain(k.as_bytes())
                } else {
                    t.may_contain_prefix(k.as_bytes())
                };
                out.push_str(&format!("{k}: {}\n", if yes { "maybe" } else { "no" }));
            }
            out
        }
        "hexdump" => {
            // The whole file, 16 bytes a line: pins the byte format (use compression=none so
            // the output does not depend on the LZ4 encoder's choices).
            let t = table.as_ref().expect("build first");
            let mut bytes = vec![0u8; t.file.len().expect("len") as usize];
            t.file.read_at(0, &mut bytes).expect("read");
            let mut out = String::new();
            for (i, line) in bytes.chunks(16).enumerate() {
                let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
                let text: String = line
                    .iter()
                    .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
                    .collect();
                out.push_str(&format!("{:04x}: {:<47}  {text}\n", i * 16, hex.join(" ")));
            }
            out
        }
        "range-dels" => {
            let t = table.as_ref().expect("build first");
            t.range_tombstones().iter().map(|r| format!("{r:?}\n")).collect()
        }
        other => panic!("unknown command {other}"),
    });
}

// ---------------------------------------------------------------------------------------
// Round trip against a sorted model.

fn icmp() -> InternalComparator {
    InternalComparator::new(Arc::new(Bytewise))
}

/// The model's answer to `seek_ge`: index of the first entry >= target.
fn model_ge(model: &[(Vec<u8>, Vec<u8>)], target: &[u8]) -> usize {
    let c = icmp();
    model.partition_point(|(k, _)| c.compare(k, target) == Ordering::Less)
}

fn check_round_trip(
    entries: Vec<(Vec<u8>, u64, u8, Vec<u8>)>,
    tombstones: Vec<(Vec<u8>, u64)>,
    opts: &Options,
    seeks: &[(Vec<u8>, u64)],
) -> std::result::Result<(), TestCaseError> {
    let c = icmp();
    let mut model: Vec<(Vec<u8>, Vec<u8>)> = entries
        .into_iter()
        .map(|(u, s, k, v)| (key::encode(&u, s, Kind::from_u8(k).expect("kind")), v))
        .collect();
    model.sort_by(|a, b| c.compare(&a.0, &b.0));
    model.dedup_by(|a, b| a.0 == b.0);
    // Tombstones `[s, s~)#seq`, sorted by (start, seq descending), duplicates dropped.
    let mut rdels: Vec<RangeTombstone> = tombstones
        .into_iter()
        .map(|(s, seq)| {
            let mut end = s.clone();
            end.push(b'~');
            RangeTombstone { start: s, end, seq }
        })
        .collect();
    rdels.sort_by(|a, b| a.start.cmp(&b.start).then(b.seq.cmp(&a.seq)));
    rdels.dedup_by(|a, b| (&a.start, a.seq) == (&b.start, b.seq));
    let mut items: Vec<Item> =
        model.iter().map(|(k, v)| Item::Point(k.clone(), v.clone())).collect();
    items.extend(rdels.iter().cloned().map(Item::Tombstone));
    let (file, info) = build(opts, &items);
    let t = Table::open(file, 1, opts).expect("open");
    prop_assert_eq!(t.properties().num_entries, model.len() as u64);
    prop_assert_eq!(&info.properties, t.properties());
    prop_assert_eq!(t.range_tombstones(), &rdels[..]);

    // Bounds: the smallest and largest of point keys, tombstone starts and end sentinels.
    let mut bounds: Vec<Vec<u8>> = model.iter().map(|(k, _)| k.clone()).collect();
    for r in &rdels {
        bounds.push(key::encode(&r.start, r.seq, Kind::RangeDelete));
        bounds.push(key::encode(&r.end, SEQNUM_MAX, Kind::RangeDelete));
    }
    bounds.sort_by(|a, b| c.compare(a, b));
    prop_assert_eq!(&info.smallest, &bounds.first().cloned().unwrap_or_default());
    prop_assert_eq!(&info.largest, &bounds.last().cloned().unwrap_or_default());
    let seqs = model
        .iter()
        .map(|(k, _)| key::parse(k).expect("key").seq)
        .chain(rdels.iter().map(|r| r.seq));
    prop_assert_eq!(info.smallest_seq, seqs.clone().min().unwrap_or(0));
    prop_assert_eq!(info.largest_seq, seqs.max().unwrap_or(0));

    // Forward through the table's iterator and through sequential (compaction) readers with
    // windows of a few bytes (blocks straddle them) and of the default size.
    let sequential = [1, 97, 4096, 1 << 20].map(|size| t.sequential_iter_sized(size));
    for mut it in std::iter::once(t.iter()).chain(sequential) {
        it.first().expect("first");
        for (k, v) in &model {
            prop_assert!(it.valid());
            prop_assert_eq!((it.key(), it.value()), (&k[..], &v[..]));
            it.next().expect("next");
        }
        prop_assert!(!it.valid());
    }
    let mut it = t.iter();
    it.last().expect("last");
    for (k, v) in model.iter().rev() {
        prop_assert!(it.valid());
        prop_assert_eq!((it.key(), it.value()), (&k[..], &v[..]));
        it.prev().expect("prev");
    }
    prop_assert!(!it.valid());

    for (u, seq) in seeks {
        let target = key::seek_key(u, *seq);
        let i = model_ge(&model, &target);
        it.seek_ge(&target).expect("seek_ge");
        prop_assert_eq!(it.valid(), i < model.len());
        if i < model.len() {
            prop_assert_eq!(it.key(), &model[i].0[..]);
            // Step back and forth around the seek position.
            it.prev().expect("prev");
            prop_assert_eq!(it.valid(), i > 0);
            if i > 0 {
                prop_assert_eq!(it.key(), &model[i - 1].0[..]);
                it.next().expect("next");
                prop_assert_eq!(it.key(), &model[i].0[..]);
            }
        }
        it.seek_lt(&target).expect("seek_lt");
        prop_assert_eq!(it.valid(), i > 0);
        if i > 0 {
            prop_assert_eq!(it.key(), &model[i - 1].0[..]);
            it.next().expect("next");
            prop_assert_eq!(it.valid(), i < model.len());
            if i < model.len() {
                prop_assert_eq!(it.key(), &model[i].0[..]);
            }
        }
    }
    for (k, _) in &model {
        let u = key::user_key(k);
        prop_assert!(t.may_contain(u));
        if let Some(p) = opts.prefix_extractor.as_ref().and_then(|pe| pe.prefix(u)) {
            prop_assert!(t.may_contain_prefix(p));
        }
    }
    Ok(())
}

fn user_key_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b"abcz\x00\xff".to_vec()), 0..6)
}

fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        (0usize..200).prop_map(|n| vec![b'x'; n]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn tables_round_trip_against_a_sorted_model(
        entries in prop::collection::vec(
            (user_key_strategy(), 0u64..50, 0u8..4, value_strategy()), 0..120),
        tombstones in prop::collection::vec((user_key_strategy(), 0u64..60), 0..6),
        seeks in prop::collection::vec((user_key_strategy(), 0u64..60), 0..20),
        block_size in prop_oneof![Just(1usize), 1usize..600],
        index_block_size in prop_oneof![Just(1usize), 1usize..300, Just(1 << 20)],
        restart_interval in 1usize..8,
        bloom in prop_oneof![Just(0usize), 1usize..14],
        lz4 in any::<bool>(),
        prefix in any::<bool>(),
    ) {
        let opts = Options {
            fs: Arc::new(MemFs::new()),
            block_size,
            index_block_size,
            restart_interval,
            bloom_bits_per_key: bloom,
            compression: if lz4 { Compression::Lz4 } else { Compression::None },
            prefix_extractor: prefix.then(|| {
                Arc::new(DelimiterPrefix(b'c')) as Arc<dyn crate::options::PrefixExtractor>
            }),
            ..Options::default()
        };
        check_round_trip(entries, tombstones, &opts, &seeks)?;
    }
}

// ---------------------------------------------------------------------------------------
// Corruption: every damaged byte and every truncation is caught or harmless.

/// What a full read of a table yields.
#[derive(Debug, PartialEq, Eq)]
struct Contents {
    forward: Vec<(Vec<u8>, Vec<u8>)>,
    /// `forward` again, through sequential readers with small and default windows.
    sequential: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    backward: Vec<(Vec<u8>, Vec<u8>)>,
    tombstones: Vec<RangeTombstone>,
    properties: super::Properties,
    filter_hits: Vec<bool>,
}

fn read_all(file: Arc<dyn File>, opts: &Options, probes: &[&[u8]]) -> Result<Contents> {
    let t = Table::open(file, 3, opts)?;
    let mut it = t.iter();
    let mut forward = Vec::new();
    it.first()?;
    while it.valid() {
        forward.push((it.key().to_vec(), it.value().to_vec()));
        it.next()?;
    }
    let mut sequential = Vec::new();
    for size in [50, 1 << 20] {
        let mut it = t.sequential_iter_sized(size);
        let mut entries = Vec::new();
        it.first()?;
        while it.valid() {
            entries.push((it.key().to_vec(), it.value().to_vec()));
            it.next()?;
        }
        sequential.push(entries);
    }
    let mut backward = Vec::new();
    it.last()?;
    while it.valid() {
        backward.push((it.key().to_vec(), it.value().to_vec()));
        it.prev()?;
    }
    Ok(Contents {
        forward,
        sequential,
        backward,
        tombstones: t.range_tombstones().to_vec(),
        properties: t.properties().clone(),
        filter_hits: probes.iter().map(|p| t.may_contain(p)).collect(),
    })
}

fn corruption_fixture(opts: &Options) -> Vec<u8> {
    let mut items = Vec::new();
    items.push(Item::Tombstone(RangeTombstone {
        start: b"a".to_vec(),
        end: b"c".to_vec(),
        seq: 90,
    }));
    for i in 0..40u32 {
        let k = format!("key{:03}", i * 7);
        let v = if i % 3 == 0 { vec![b'z'; 30] } else { format!("value-{i}").into_bytes() };
        items.push(Item::Point(key::encode(k.as_bytes(), 100 - u64::from(i), Kind::Set), v));
    }
    items.push(Item::Tombstone(RangeTombstone {
        start: b"q".to_vec(),
        end: b"r".to_vec(),
        seq: 5,
    }));
    let (file, _) = build(opts, &items);
    let mut bytes = vec![0u8; file.len().expect("len") as usize];
    file.read_at(0, &mut bytes).expect("read");
    bytes
}

fn write_copy(fs: &MemFs, bytes: &[u8]) -> Arc<dyn File> {
    let f = fs.create(Path::new("/copy.sst")).expect("create");
    f.append(bytes).expect("append");
    f
}

#[test]
fn every_flipped_byte_and_truncation_is_caught_or_harmless() {
    let fs = MemFs::new();
    for (compression, index_block_size) in [(Compression::Lz4, 64), (Compression::None, 1 << 20)] {
        let opts = Options {
            fs: Arc::new(MemFs::new()),
            block_size: 100,
            index_block_size,
            bloom_bits_per_key: 10,
            compression,
            ..Options::default()
        };
        let bytes = corruption_fixture(&opts);
        let probes: Vec<&[u8]> = vec![b"key000", b"key007", b"nope", b"key001"];
        let good = read_all(write_copy(&fs, &bytes), &opts, &probes).expect("clean read");
        assert_eq!(good.forward.len(), 40);
        assert!(good.sequential.iter().all(|s| *s == good.forward));
        assert_eq!(good.tombstones.len(), 2);
        let t = Table::open(write_copy(&fs, &bytes), 3, &opts).expect("open");
        assert!(t.properties().num_data_blocks >= 4);
        assert_eq!(t.properties().num_index_partitions > 0, index_block_size == 64);

        // Every byte of a table sits under a block CRC or the footer checksum, so beyond
        // "right data or Corruption" every damage here must in fact be reported.
        let check =
            |damaged: &[u8], what: &str| match read_all(write_copy(&fs, damaged), &opts, &probes) {
                Ok(c) => {
                    assert_eq!(c, good, "{what}: wrong data");
                    panic!("{what}: damage went unnoticed");
                }
                Err(e) => assert!(e.is_corruption(), "{what}: not corruption: {e}"),
            };
        eprintln!("corruption sweep over {} bytes ({compression:?})", bytes.len());
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0xff;
            check(&damaged, &format!("byte {i} inverted"));
            let mut damaged = bytes.clone();
            damaged[i] ^= 1 << rng.gen_range(0..8);
            check(&damaged, &format!("bit flipped in byte {i}"));
        }
        for len in 0..bytes.len() {
            check(&bytes[..len], &format!("truncated to {len}"));
        }
    }
}

#[test]
fn tables_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Table>();
    assert_send::<super::TableIter>();
}

/// Reverse byte order, to show nothing assumes bytewise order.
#[derive(Debug)]
struct Reverse;

impl crate::comparator::Comparator for Reverse {
    fn name(&self) -> &str {
        "test.reverse"
    }
    fn compare(&self, a: &[u8], b: &[u8]) -> Ordering {
        b.cmp(a)
    }
}

#[test]
fn open_refuses_other_comparators_and_foreign_files() {
    let opts = Options { fs: Arc::new(MemFs::new()), ..Options::default() };
    let (file, _) = build(&opts, &[Item::Point(parse_ikey("a#1,SET"), b"v".to_vec())]);
    let other = Options { comparator: Arc::new(Reverse), ..opts.clone() };
    let err = Table::open(file.clone(), 1, &other).unwrap_err();
    assert!(matches!(err, crate::Error::InvalidArgument(_)), "{err}");

    let fs = MemFs::new();
    let foreign = write_copy(&fs, &[7u8; 200]);
    let err = Table::open(foreign, 1, &opts).unwrap_err();
    assert!(err.is_corruption() && err.to_string().contains("magic"), "{err}");
}

#[test]
fn a_reverse_comparator_orders_the_table() {
    // The index separators come from the comparator's defaults (the last key itself).
    let opts = Options {
        fs: Arc::new(MemFs::new()),
        comparator: Arc::new(Reverse),
        block_size: 1,
        index_block_size: 1,
        ..Options::default()
    };
    let items: Vec<Item> = ["c#1,SET", "b#2,SET", "b#1,SET", "a#1,SET"]
        .iter()
        .map(|k| Item::Point(parse_ikey(k), vec![]))
        .collect();
    let (file, _) = build(&opts, &items);
    let t = Table::open(file, 1, &opts).expect("open");
    let mut it = t.iter();
    it.seek_ge(&seek_target("b")).expect("seek");
    assert_eq!(fmt_ikey(it.key()), "b#2,SET");
    it.seek_lt(&seek_target("b")).expect("seek");
    assert_eq!(fmt_ikey(it.key()), "c#1,SET");
    it.last().expect("last");
    assert_eq!(fmt_ikey(it.key()), "a#1,SET");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The sweep above on random tables and options: every byte is under a checksum, so
    /// any single damaged byte must be reported as corruption.
    #[test]
    fn any_damaged_byte_of_any_table_is_corruption(
        entries in prop::collection::vec((user_key_strategy(), 0u64..50, value_strategy()), 0..60),
        tombstones in prop::collection::vec((user_key_strategy(), 0u64..60), 0..4),
        block_size in prop_oneof![Just(1usize), 1usize..300],
        index_block_size in prop_oneof![Just(1usize), 1usize..200, Just(1 << 20)],
        bloom in prop_oneof![Just(0usize), 1usize..14],
        lz4 in any::<bool>(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..20),
    ) {
        let c = icmp();
        let mut points: Vec<(Vec<u8>, Vec<u8>)> = entries
            .into_iter()
            .map(|(u, s, v)| (key::encode(&u, s, Kind::Set), v))
            .collect();
        points.sort_by(|a, b| c.compare(&a.0, &b.0));
        points.dedup_by(|a, b| a.0 == b.0);
        let mut rdels: Vec<RangeTombstone> = tombstones
            .into_iter()
            .map(|(s, seq)| {
                let mut end = s.clone();
                end.push(b'~');
                RangeTombstone { start: s, end, seq }
            })
            .collect();
        rdels.sort_by(|a, b| a.start.cmp(&b.start).then(b.seq.cmp(&a.seq)));
        rdels.dedup_by(|a, b| (&a.start, a.seq) == (&b.start, b.seq));
        let mut items: Vec<Item> = points.into_iter().map(|(k, v)| Item::Point(k, v)).collect();
        items.extend(rdels.into_iter().map(Item::Tombstone));
        let opts = Options {
            fs: Arc::new(MemFs::new()),
            block_size,
            index_block_size,
            bloom_bits_per_key: bloom,
            compression: if lz4 { Compression::Lz4 } else { Compression::None },
            ..Options::default()
        };
        let (file, _) = build(&opts, &items);
        let mut bytes = vec![0u8; file.len().expect("len") as usize];
        file.read_at(0, &mut bytes).expect("read");
        let fs = MemFs::new();
        read_all(write_copy(&fs, &bytes), &opts, &[]).expect("clean read");
        for (at, xor) in damage {
            let mut damaged = bytes.clone();
            let i = at.index(damaged.len());
            damaged[i] ^= xor;
            match read_all(write_copy(&fs, &damaged), &opts, &[]) {
                Ok(_) => prop_assert!(false, "damage at byte {} went unnoticed", i),
                Err(e) => prop_assert!(e.is_corruption(), "byte {}: {}", i, e),
            }
        }
    }
}

/// A cached block's entries are walked once: the first reader checks them and marks the
/// cached bytes; a later hit trusts the mark. A block that fails the check is never marked.
#[test]
fn a_cached_block_is_checked_once_and_a_bad_one_never_passes() {
    use super::block::{Block, BlockBuf, BlockBuilder};
    let cache = crate::cache::Cache::new(1 << 20);
    let id = cache.new_id();
    let mut b = BlockBuilder::new(2);
    for k in ["a", "b", "c"] {
        b.add(&key::encode(k.as_bytes(), 1, Kind::Set), b"v");
    }
    let good = b.finish();
    let h = cache.insert(id, 1, 0, good.into_boxed_slice());
    assert!(!h.is_checked());
    Block::new(BlockBuf::Cached(h.clone()), "t").expect("a good block");
    assert!(h.is_checked(), "the first reader marks the cached bytes");
    Block::new(BlockBuf::Cached(h.clone()), "t").expect("a hit on checked bytes");

    // An entry that runs past the block: refused on every attempt, never marked.
    let mut bad = b.finish();
    bad.splice(0..0, [0u8, 9, 1]);
    let bad_len = bad.len();
    bad[bad_len - 4..].copy_from_slice(&1u32.to_le_bytes());
    let hb = cache.insert(id, 1, 4096, bad.into_boxed_slice());
    for _ in 0..2 {
        assert!(Block::new(BlockBuf::Cached(hb.clone()), "t").is_err());
        assert!(!hb.is_checked());
    }
    drop((h, hb));
}
