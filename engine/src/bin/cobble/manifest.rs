//! `cobble manifest dump`: every version edit of a MANIFEST and the version they build.

use cobble::internal::sync::Arc;
use std::io::Write;

use cobble::internal::key::InternalComparator;
use cobble::internal::version::edit::VersionEdit;
use cobble::internal::version::{manifest, Version};
use cobble::{Bytewise, Error};

use crate::wal::{print_end, walk};
use crate::{show, Args, Failure};

/// The counters a manifest carries besides the version; the last edit setting one wins.
#[derive(Debug, Default)]
pub struct Counters {
    pub log_number: Option<u64>,
    pub next_file_num: Option<u64>,
    pub last_seq: Option<u64>,
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

/// Prints the counters on one line.
pub fn print_counters(c: &Counters, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "log number {}, next file {}, last seq {}",
        opt(c.log_number),
        opt(c.next_file_num),
        opt(c.last_seq)
    )
}

/// Prints a version level by level; `annotate` adds text after each file (used by `lsm` to
/// say whether the file is on disk).
pub fn print_version(
    v: &Version,
    out: &mut dyn Write,
    mut annotate: impl FnMut(u64) -> String,
) -> std::io::Result<()> {
    let total: usize = v.levels.iter().map(Vec::len).sum();
    if total == 0 {
        writeln!(out, "  (no tables)")?;
    }
    for (level, files) in v.levels.iter().enumerate() {
        if files.is_empty() {
            continue;
        }
        writeln!(out, "  L{level}: {} files, {} bytes", files.len(), v.level_bytes(level))?;
        for f in files {
            writeln!(out, "    {}{}", show::file(f), annotate(f.num))?;
        }
    }
    Ok(())
}

fn print_edit(e: &VersionEdit, out: &mut dyn Write) -> std::io::Result<()> {
    if let Some(c) = &e.comparator {
        writeln!(out, "  comparator: {}", show::bytes(c.as_bytes()))?;
    }
    if let Some(n) = e.log_number {
        writeln!(out, "  log number: {n}")?;
    }
    if let Some(n) = e.next_file_num {
        writeln!(out, "  next file: {n}")?;
    }
    if let Some(n) = e.last_seq {
        writeln!(out, "  last seq: {n}")?;
    }
    for (level, num) in &e.deleted {
        writeln!(out, "  delete L{level} {num:06}")?;
    }
    for (level, f) in &e.added {
        writeln!(out, "  add L{level} {}", show::file(f))?;
    }
    Ok(())
}

/// `manifest dump FILE`.
pub fn dump(args: &Args, out: &mut dyn Write) -> Result<(), Failure> {
    writeln!(out, "manifest {}", args.path.display())?;
    let location = args.path.display().to_string();
    // Cobble writes only bytewise databases; a manifest naming another comparator is still
    // dumped, but its levels are ordered bytewise here.
    let cmp = InternalComparator::new(Arc::new(Bytewise));
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut version = Version::default();
    let mut counters = Counters::default();
    let mut edits = 0usize;
    let mut comparator: Option<String> = None;
    let end = walk(&args.path, args.mode, |offset, record| {
        let edit = VersionEdit::decode(record, &format!("{location} record at {offset}"))?;
        if edits < limit {
            writeln!(out, "edit {edits} @{offset}")?;
            print_edit(&edit, out)?;
        }
        if edits == 0 {
            comparator = edit.comparator.clone();
        }
        edits += 1;
        version = manifest::apply(&version, &edit, &cmp, &format!("{location} edit at {offset}"))?;
        counters.log_number = edit.log_number.or(counters.log_number);
        counters.next_file_num = edit.next_file_num.or(counters.next_file_num);
        counters.last_seq = edit.last_seq.or(counters.last_seq);
        Ok(())
    })?;
    if edits > limit {
        writeln!(out, "... printed {limit} of {edits} edits (--limit {limit})")?;
    }
    print_end(&end, out)?;
    write!(out, "version after {edits} edits: ")?;
    print_counters(&counters, out)?;
    print_version(&version, out, |_| String::new())?;
    // What recovery demands of a manifest, so that a dump that looks fine means it opens.
    let lacks = if comparator.is_none() {
        Some("a comparator in its first edit")
    } else if counters.log_number.is_none() {
        Some("a log number")
    } else if counters.next_file_num.is_none() {
        Some("a next file number")
    } else if counters.last_seq.is_none() {
        Some("a last seqnum")
    } else {
        None
    };
    if edits == 0 && end.len > 0 {
        let what = format!(
            "not a MANIFEST: no valid record in {} bytes; it looks like {}",
            end.len,
            crate::sniff::looks_like(&args.path)
        );
        return Err(Error::corruption(what, location).into());
    }
    if let Some(what) = lacks {
        return Err(Error::corruption(format!("manifest lacks {what}"), location).into());
    }
    Ok(())
}
