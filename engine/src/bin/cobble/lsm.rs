//! `cobble lsm DIR`: the shape of a database from CURRENT and its manifest, checked against
//! the files in the directory.

use cobble::internal::sync::Arc;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use cobble::internal::filename::{self, FileKind};
use cobble::internal::key::InternalComparator;
use cobble::internal::version::manifest;
use cobble::{Bytewise, Error, Fs, OsFs};

use crate::manifest::{print_counters, print_version, Counters};
use crate::{open_file, Args, Failure};

/// The size of a file in the directory, or `?` when it cannot be opened (a subdirectory).
fn size(path: &Path) -> String {
    match open_file(path).and_then(|f| f.len()) {
        Ok(n) => format!("{n} bytes"),
        Err(_) => "? bytes".to_string(),
    }
}

/// `lsm DIR`.
pub fn show(args: &Args, out: &mut dyn Write) -> Result<(), Failure> {
    let dir = &args.path;
    let fs: Arc<dyn Fs> = Arc::new(OsFs::new());
    if !fs.exists(dir)? {
        return Err(Error::NotFound(dir.display().to_string()).into());
    }
    let names = fs.list(dir)?;
    if !names.iter().any(|n| n == "CURRENT") {
        let what = format!("not a Cobble database: no CURRENT in {}", dir.display());
        return Err(Error::NotFound(what).into());
    }
    let cmp = InternalComparator::new(Arc::new(Bytewise));
    let rec = manifest::recover(&fs, dir, &cmp)?;
    writeln!(out, "database {}", dir.display())?;
    writeln!(out, "CURRENT -> MANIFEST-{:06}", rec.manifest_num)?;
    let counters = Counters {
        log_number: Some(rec.log_number),
        next_file_num: Some(rec.next_file_num),
        last_seq: Some(rec.last_seq),
    };
    print_counters(&counters, out)?;

    let on_disk: BTreeSet<u64> = names
        .iter()
        .filter_map(|n| match filename::parse(n) {
            Some(FileKind::Table(num)) => Some(num),
            _ => None,
        })
        .collect();
    let mut problems = 0usize;
    writeln!(out, "levels:")?;
    print_version(&rec.version, out, |num| {
        if !on_disk.contains(&num) {
            problems += 1;
            return "  MISSING".to_string();
        }
        let listed = rec.version.levels.iter().flatten().find(|f| f.num == num).map(|f| f.size);
        match open_file(&filename::table(dir, num)).and_then(|f| f.len()) {
            Ok(n) if Some(n) == listed => String::new(),
            Ok(n) => {
                problems += 1;
                format!("  SIZE MISMATCH: {n} bytes on disk")
            }
            Err(e) => {
                problems += 1;
                format!("  UNREADABLE: {e}")
            }
        }
    })?;

    let live: BTreeSet<u64> = rec.version.file_nums().collect();
    writeln!(out, "wal files:")?;
    let mut wals = 0;
    for name in &names {
        if let Some(FileKind::Wal(num)) = filename::parse(name) {
            wals += 1;
            let state = if num >= rec.log_number {
                "live".to_string()
            } else {
                format!("obsolete: below log number {}", rec.log_number)
            };
            writeln!(out, "  {name} {} ({state})", size(&dir.join(name)))?;
        }
    }
    if wals == 0 {
        writeln!(out, "  (none)")?;
    }

    writeln!(out, "unreferenced files:")?;
    let mut extra = 0;
    for name in &names {
        let why = match filename::parse(name) {
            Some(FileKind::Table(num)) if !live.contains(&num) => "table not in the version",
            Some(FileKind::Manifest(num)) if num != rec.manifest_num => "old manifest",
            Some(FileKind::Temp(_)) => "temporary file",
            None => "not a Cobble file",
            Some(_) => continue,
        };
        extra += 1;
        writeln!(out, "  {name} {} ({why})", size(&dir.join(name)))?;
    }
    if extra == 0 {
        writeln!(out, "  (none)")?;
    }
    if problems > 0 {
        let what = format!("{problems} tables of the version are missing or damaged on disk");
        return Err(Error::corruption(what, dir.display()).into());
    }
    Ok(())
}
