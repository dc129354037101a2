//! `cobble sst dump` and `cobble sst check`: an SSTable's properties, entries and range
//! tombstones, and a full forward and backward verification pass.

use cobble::internal::sync::Arc;
use std::cmp::Ordering;
use std::io::Write;
use std::path::Path;

use cobble::internal::filename::{self, FileKind};
use cobble::internal::iter::InternalIterator;
use cobble::internal::key::{self, InternalComparator, Kind};
use cobble::internal::sstable::{Properties, Table};
use cobble::{Bytewise, Error, Options, OsFs};

use crate::{open_file, show, Args, Failure};

/// Opens the table at `path`, taking its number from its name when it has a table name (so
/// error locations match the engine's), else 0.
fn open(path: &Path) -> cobble::Result<(Arc<Table>, u64)> {
    let num = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(filename::parse)
        .and_then(|k| match k {
            FileKind::Table(n) => Some(n),
            _ => None,
        })
        .unwrap_or(0);
    let file = open_file(path)?;
    let len = file.len()?;
    let opts = Options { fs: Arc::new(OsFs::new()), ..Options::default() };
    Ok((Table::open(file, num, &opts)?, len))
}

/// Adds the path to a corruption's location: the engine names a table by its number only,
/// which says little about a file given on the command line.
fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::Corruption { what, location } => {
            Error::corruption(what, format!("{}: {location}", path.display()))
        }
        e => e,
    }
}

fn properties(p: &Properties, out: &mut dyn Write) -> std::io::Result<()> {
    let or_dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
    writeln!(out, "properties:")?;
    writeln!(
        out,
        "  entries: {} (deletions {}, merges {}), range deletions: {}",
        p.num_entries, p.num_deletions, p.num_merges, p.num_range_deletions
    )?;
    writeln!(
        out,
        "  data: {} blocks, {} bytes; index: {} bytes, {} partitions; filter: {} bytes",
        p.num_data_blocks, p.data_size, p.index_size, p.num_index_partitions, p.filter_size
    )?;
    writeln!(out, "  smallest: {}", show::ikey(&p.smallest))?;
    writeln!(out, "  largest: {}", show::ikey(&p.largest))?;
    writeln!(out, "  seqnums: {}..{}", p.smallest_seq, p.largest_seq)?;
    writeln!(out, "  comparator: {}", or_dash(&p.comparator))?;
    writeln!(out, "  merge operator: {}", or_dash(&p.merge_operator))?;
    writeln!(out, "  prefix extractor: {}", or_dash(&p.prefix_extractor))?;
    writeln!(out, "  compression: {:?}", p.compression)
}

/// `sst dump FILE`: properties, every entry, then the range tombstones.
pub fn dump(args: &Args, out: &mut dyn Write) -> Result<(), Failure> {
    dump_table(args, out).map_err(|f| match f {
        Failure::Engine(e) => Failure::Engine(in_file(&args.path, e)),
        f => f,
    })
}

fn dump_table(args: &Args, out: &mut dyn Write) -> Result<(), Failure> {
    let (table, len) = open(&args.path)?;
    writeln!(out, "sstable {} ({len} bytes)", args.path.display())?;
    properties(table.properties(), out)?;
    let limit = args.limit.unwrap_or(usize::MAX);
    writeln!(out, "entries:")?;
    let mut it = table.iter();
    it.first()?;
    let mut n = 0usize;
    while it.valid() && n < limit {
        let k = key::parse(it.key())
            .ok_or_else(|| Error::corruption("entry key is not an internal key", "entries"))?;
        writeln!(out, "  {}", show::op(k.kind, k.user_key, k.seq, it.value(), args.value_width))?;
        n += 1;
        it.next()?;
    }
    if it.valid() {
        writeln!(out, "  ... stopped at --limit {limit} of {}", table.properties().num_entries)?;
    }
    writeln!(out, "range tombstones:")?;
    let tombstones = table.range_tombstones();
    for t in tombstones.iter().take(limit) {
        writeln!(out, "  {}", show::tombstone(t))?;
    }
    if tombstones.len() > limit {
        writeln!(out, "  ... stopped at --limit {limit} of {}", tombstones.len())?;
    }
    Ok(())
}

/// `sst check FILE`: opening checks the footer, meta blocks, properties, range tombstones and
/// index; iterating reads (and checksums) every data block twice. On top, the entries must be
/// strictly ordered, the same both ways, and agree with the properties.
pub fn check(args: &Args, out: &mut dyn Write) -> Result<(), Failure> {
    check_table(args, out).map_err(|f| match f {
        Failure::Engine(e) => Failure::Engine(in_file(&args.path, e)),
        f => f,
    })
}

fn check_table(args: &Args, out: &mut dyn Write) -> Result<(), Failure> {
    let (table, _) = open(&args.path)?;
    let cmp = InternalComparator::new(Arc::new(Bytewise));
    let p = table.properties();

    let mut keys: Vec<Vec<u8>> = Vec::new();
    let (mut deletions, mut merges) = (0u64, 0u64);
    let mut it = table.iter();
    it.first()?;
    while it.valid() {
        let i = keys.len();
        let k = key::parse(it.key()).ok_or_else(|| {
            Error::corruption("entry key is not an internal key", format!("entry {i}"))
        })?;
        match k.kind {
            Kind::Delete | Kind::SingleDelete => deletions += 1,
            Kind::Merge => merges += 1,
            Kind::Set => {}
            Kind::RangeDelete => {
                return Err(Error::corruption(
                    format!("range deletion {} among the point entries", show::ikey(it.key())),
                    format!("entry {i}"),
                )
                .into())
            }
        }
        if k.seq < p.smallest_seq || k.seq > p.largest_seq {
            return Err(Error::corruption(
                format!(
                    "{} outside the seqnum range {}..{} of the properties",
                    show::ikey(it.key()),
                    p.smallest_seq,
                    p.largest_seq
                ),
                format!("entry {i}"),
            )
            .into());
        }
        if let Some(prev) = keys.last() {
            if cmp.compare(prev, it.key()) != Ordering::Less {
                return Err(Error::corruption(
                    format!(
                        "entries out of order: {} then {}",
                        show::ikey(prev),
                        show::ikey(it.key())
                    ),
                    format!("entry {i}"),
                )
                .into());
            }
        }
        keys.push(it.key().to_vec());
        it.next()?;
    }

    // Backward must visit exactly the same keys in reverse.
    it.last()?;
    let mut back = keys.len();
    while it.valid() {
        let expected = back.checked_sub(1).and_then(|j| keys.get(j));
        if expected.map(|k| &k[..]) != Some(it.key()) {
            return Err(Error::corruption(
                format!(
                    "backward iteration found {} where forward found {}",
                    show::ikey(it.key()),
                    expected.map_or("nothing".to_string(), |k| show::ikey(k))
                ),
                format!("entry {}", back.saturating_sub(1)),
            )
            .into());
        }
        back -= 1;
        it.prev()?;
    }
    if back != 0 {
        return Err(Error::corruption(
            format!("backward iteration stopped {back} entries before the first"),
            "backward pass",
        )
        .into());
    }

    let counts = (keys.len() as u64, deletions, merges);
    if counts != (p.num_entries, p.num_deletions, p.num_merges) {
        return Err(Error::corruption(
            format!(
                "found {} entries ({deletions} deletions, {merges} merges), properties say {} \
                 ({}, {})",
                keys.len(),
                p.num_entries,
                p.num_deletions,
                p.num_merges
            ),
            "properties",
        )
        .into());
    }
    if let (Some(first), Some(last)) = (keys.first(), keys.last()) {
        // Bounds that do not parse would make the comparator panic; `Properties` checks
        // non-empty ones, so an empty bound over entries is the remaining case.
        if key::parse(&p.smallest).is_none() || key::parse(&p.largest).is_none() {
            return Err(Error::corruption(
                "properties lack key bounds for a table with entries",
                "properties",
            )
            .into());
        }
        if cmp.compare(first, &p.smallest) == Ordering::Less
            || cmp.compare(last, &p.largest) == Ordering::Greater
        {
            return Err(Error::corruption(
                format!(
                    "entries {}..{} outside the bounds {}..{} of the properties",
                    show::ikey(first),
                    show::ikey(last),
                    show::ikey(&p.smallest),
                    show::ikey(&p.largest)
                ),
                "properties",
            )
            .into());
        }
    }
    writeln!(
        out,
        "ok: {} entries, {} range tombstones",
        keys.len(),
        table.range_tombstones().len()
    )?;
    Ok(())
}
