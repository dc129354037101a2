//! The MANIFEST: a log (same record format as the WAL) of version edits, and `CURRENT`, which
//! names the live manifest.
//!
//! Protocol (see ARCHITECTURE.md, "Durability protocol"):
//! 1. a new manifest starts with one edit holding a snapshot of the whole version;
//! 2. the manifest is synced, then the directory (so its entry is durable);
//! 3. `CURRENT` is replaced atomically: write `NNNNNN.dbtmp`, sync it, rename it over
//!    `CURRENT`, sync the directory;
//! 4. every later edit is appended and synced before the version it describes is used.

use crate::sync::Arc;
use std::path::Path;

use super::edit::VersionEdit;
use super::{FileMetadata, Version};
use crate::env::Fs;
use crate::error::{Error, Result};
use crate::filename;
use crate::key::InternalComparator;
use crate::wal::{LogReader, LogWriter, WalRecoveryMode};

/// An open manifest being appended to.
#[derive(Debug)]
pub struct ManifestWriter {
    num: u64,
    log: LogWriter,
}

impl ManifestWriter {
    /// Creates `MANIFEST-num` holding `snapshot`, syncs it, and points `CURRENT` at it.
    pub fn create(
        fs: &Arc<dyn Fs>,
        dir: &Path,
        num: u64,
        snapshot: &VersionEdit,
    ) -> Result<ManifestWriter> {
        let file = fs.create(&filename::manifest(dir, num))?;
        let mut log = LogWriter::new(file);
        log.add_record(&snapshot.encode())?;
        log.sync()?;
        // The manifest's directory entry (and those of any tables it lists) must be durable
        // before CURRENT can name it.
        fs.sync_dir(dir)?;
        set_current(fs, dir, num)?;
        Ok(ManifestWriter { num, log })
    }

    /// Appends an edit and syncs it.
    pub fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        self.log.add_record(&edit.encode())?;
        self.log.sync()
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.log.size()
    }

    /// The manifest's file number.
    pub fn num(&self) -> u64 {
        self.num
    }
}

fn set_current(fs: &Arc<dyn Fs>, dir: &Path, num: u64) -> Result<()> {
    let temp = filename::temp(dir, num);
    let file = fs.create(&temp)?;
    file.append(format!("MANIFEST-{num:06}\n").as_bytes())?;
    file.sync()?;
    fs.rename(&temp, &filename::current(dir))?;
    fs.sync_dir(dir)
}

/// What recovery learns from the manifest.
#[derive(Debug)]
pub struct Recovered {
    pub version: Version,
    pub log_number: u64,
    pub next_file_num: u64,
    pub last_seq: u64,
    pub manifest_num: u64,
}

/// Reads `CURRENT` and replays the manifest it names.
pub fn recover(fs: &Arc<dyn Fs>, dir: &Path, cmp: &InternalComparator) -> Result<Recovered> {
    let current_path = filename::current(dir);
    let current = fs.open(&current_path)?;
    let len = current.len()?;
    if len > 64 {
        return Err(Error::corruption("CURRENT is too long", current_path.display()));
    }
    let mut buf = vec![0u8; len as usize];
    current.read_at(0, &mut buf)?;
    let name = std::str::from_utf8(&buf)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .ok_or_else(|| Error::corruption("CURRENT is not a line", current_path.display()))?;
    let manifest_num = match filename::parse(name) {
        Some(filename::FileKind::Manifest(n)) => n,
        _ => {
            return Err(Error::corruption(
                format!("CURRENT names {name:?}, not a manifest"),
                current_path.display(),
            ))
        }
    };
    let path = filename::manifest(dir, manifest_num);
    let location = path.display().to_string();
    let file = fs.open(&path).map_err(|e| match e {
        Error::NotFound(_) => Error::corruption("CURRENT names a missing manifest", &location),
        e => e,
    })?;
    // A torn last record was never synced, so no version that used it was acknowledged.
    let mut reader = LogReader::new(file, location.clone(), WalRecoveryMode::TolerateCorruptTail)?;
    let mut version = Version::default();
    let (mut log_number, mut next_file_num, mut last_seq) = (None, None, None);
    let mut first = true;
    while let Some(record) = reader.read_record()? {
        let edit = VersionEdit::decode(&record, &location)?;
        if first {
            match &edit.comparator {
                Some(name) if name == cmp.user().name() => {}
                Some(name) => {
                    return Err(Error::InvalidArgument(format!(
                        "database uses comparator {name:?}, options give {:?}",
                        cmp.user().name()
                    )))
                }
                None => return Err(Error::corruption("manifest lacks a comparator", &location)),
            }
            first = false;
        }
        version = apply(&version, &edit, cmp, &location)?;
        log_number = edit.log_number.or(log_number);
        next_file_num = edit.next_file_num.or(next_file_num);
        last_seq = edit.last_seq.or(last_seq);
    }
    let missing = |what: &str| Error::corruption(format!("manifest lacks {what}"), &location);
    Ok(Recovered {
        version,
        log_number: log_number.ok_or_else(|| missing("a log number"))?,
        next_file_num: next_file_num.ok_or_else(|| missing("a next file number"))?,
        last_seq: last_seq.ok_or_else(|| missing("a last seqnum"))?,
        manifest_num,
    })
}

/// Applies `edit` to `base`, checking that it makes sense.
pub fn apply(
    base: &Version,
    edit: &VersionEdit,
    cmp: &InternalComparator,
    location: &str,
) -> Result<Version> {
    let mut next = base.clone();
    for &(level, num) in &edit.deleted {
        let files = &mut next.levels[level];
        let before = files.len();
        files.retain(|f| f.num != num);
        if files.len() == before {
            return Err(Error::corruption(
                format!("edit deletes file {num} that L{level} does not have"),
                location,
            ));
        }
    }
    for (level, f) in &edit.added {
        if next.file_nums().any(|n| n == f.num) {
            return Err(Error::corruption(format!("edit adds file {} twice", f.num), location));
        }
        next.levels[*level].push(Arc::new(f.clone()));
    }
    next.sort_levels(cmp);
    next.check_invariants(cmp).map_err(|what| Error::corruption(what, location))?;
    Ok(next)
}

/// An edit that recreates `version` from nothing: the first record of a new manifest.
pub fn snapshot_edit(
    version: &Version,
    comparator: &str,
    log_number: u64,
    next_file_num: u64,
    last_seq: u64,
) -> VersionEdit {
    let added: Vec<(usize, FileMetadata)> = version
        .levels
        .iter()
        .enumerate()
        .flat_map(|(level, files)| files.iter().map(move |f| (level, FileMetadata::clone(f))))
        .collect();
    VersionEdit {
        comparator: Some(comparator.to_string()),
        log_number: Some(log_number),
        next_file_num: Some(next_file_num),
        last_seq: Some(last_seq),
        deleted: Default::default(),
        added,
    }
}
