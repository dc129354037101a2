//! `Db::checkpoint`: a consistent copy that opens as a database of its own, whatever the
//! source does afterwards; tables hard-linked, or copied where the filesystem cannot link.

use cobble::internal::sync::Arc;
use std::path::Path;

use cobble::{
    Db, Error, File, FileLock, Fs, MemFs, Options, ReadOptions, Result, Scheduler, WriteBatch,
    WriteOptions,
};

const WO: WriteOptions = WriteOptions { sync: false };

fn opts(fs: Arc<dyn Fs>) -> Options {
    Options {
        fs,
        memtable_size: 8 << 10,
        target_file_size: 4 << 10,
        block_size: 256,
        scheduler: Scheduler::Manual,
        ..Options::default()
    }
}

fn scan(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = db.iter(&ReadOptions::default()).unwrap();
    let mut out = Vec::new();
    let mut ok = it.first().unwrap();
    while ok {
        out.push((it.key().to_vec(), it.value().to_vec()));
        ok = it.next().unwrap();
    }
    out
}

/// Writes that leave data in every place a checkpoint must copy: tables in L0 and below,
/// a full memtable waiting for flush, the mutable memtable, merges and a range delete.
fn fill(db: &Db) {
    for i in 0..300u32 {
        db.put(format!("k{:03}", i % 97).as_bytes(), format!("v{i}").as_bytes(), &WO).unwrap();
        if i % 40 == 0 {
            db.merge(b"m", format!("{i}").as_bytes(), &WO).unwrap();
        }
        if i == 150 {
            db.flush().unwrap();
            db.compact_range(None, None).unwrap();
            db.delete_range(b"k010", b"k020", &WO).unwrap();
        }
    }
    let mut b = WriteBatch::new();
    b.put(b"batch", b"1");
    b.delete(b"k050");
    db.write(b, &WO).unwrap();
}

fn checkpoint_opens_as_it_was(fs: Arc<dyn Fs>, disable_wal: bool) {
    let o = Options { disable_wal, ..opts(fs.clone()) };
    let db = Db::open(o.clone(), "/db").unwrap();
    fill(&db);
    let before = scan(&db);
    db.checkpoint("/cp").unwrap();
    assert!(!fs.exists(Path::new("/cp.tmp")).unwrap(), "the temp directory was renamed");
    // The source moves on, compacts and deletes the tables the checkpoint holds.
    db.put(b"after", b"x", &WO).unwrap();
    db.delete_range(b"k", b"l", &WO).unwrap();
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    let cp = Db::open(Options { create_if_missing: false, ..o.clone() }, "/cp").unwrap();
    assert_eq!(scan(&cp), before);
    assert_eq!(
        cp.get(&ReadOptions::default(), b"m").unwrap(),
        Some(b"0,40,80,120,160,200,240,280".to_vec())
    );
    // The checkpoint takes writes of its own, apart from the source.
    cp.put(b"only-in-checkpoint", b"y", &WO).unwrap();
    assert_eq!(db.get(&ReadOptions::default(), b"only-in-checkpoint").unwrap(), None);
    cp.close().unwrap();
    let cp = Db::open(o, "/cp").unwrap();
    assert_eq!(scan(&cp).len(), before.len() + 1);
    cp.close().unwrap();
    db.close().unwrap();
}

#[test]
fn a_checkpoint_opens_to_the_state_it_captured() {
    checkpoint_opens_as_it_was(Arc::new(MemFs::new()), false);
}

#[test]
fn with_the_wal_disabled_a_checkpoint_holds_the_flushed_state() {
    checkpoint_opens_as_it_was(Arc::new(MemFs::new()), true);
}

/// A filesystem without hard links: the checkpoint copies its tables.
#[derive(Debug)]
struct NoLinks(MemFs);

impl Fs for NoLinks {
    fn create(&self, path: &Path) -> Result<Arc<dyn File>> {
        self.0.create(path)
    }
    fn open(&self, path: &Path) -> Result<Arc<dyn File>> {
        self.0.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.0.rename(from, to)
    }
    fn remove(&self, path: &Path) -> Result<()> {
        self.0.remove(path)
    }
    fn link(&self, from: &Path, _to: &Path) -> Result<()> {
        let e = std::io::Error::new(std::io::ErrorKind::Unsupported, "no hard links here");
        Err(Error::io(format!("link {}", from.display()), e))
    }
    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        self.0.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.0.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.0.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.0.lock(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.0.exists(path)
    }
}

#[test]
fn without_hard_links_a_checkpoint_copies_its_tables() {
    checkpoint_opens_as_it_was(Arc::new(NoLinks(MemFs::new())), false);
}

#[test]
fn a_checkpoint_refuses_an_existing_directory_and_reuses_a_leftover_temp() {
    let fs = MemFs::new();
    let db = Db::open(opts(Arc::new(fs.clone())), "/db").unwrap();
    db.put(b"a", b"1", &WO).unwrap();
    fs.create_dir_all(Path::new("/taken")).unwrap();
    assert!(matches!(db.checkpoint("/taken"), Err(Error::InvalidArgument(_))));
    assert!(matches!(db.checkpoint("/db"), Err(Error::InvalidArgument(_))));
    // What a crashed checkpoint left behind.
    fs.create_dir_all(Path::new("/cp.tmp")).unwrap();
    fs.create(Path::new("/cp.tmp/000009.log")).unwrap().append(b"junk").unwrap();
    db.checkpoint("/cp").unwrap();
    let cp = Db::open(opts(Arc::new(fs.clone())), "/cp").unwrap();
    assert_eq!(scan(&cp), [(b"a".to_vec(), b"1".to_vec())]);
    cp.close().unwrap();
    db.close().unwrap();
    assert!(matches!(db.checkpoint("/cp2"), Err(Error::Closed)));
}
