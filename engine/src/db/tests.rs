//! Golden tests of compactions through a real `Db` on `MemFs`: how range tombstones are
//! truncated at the boundaries of split compaction outputs (testdata/compaction_rangedel).

use crate::sync::Arc;

use super::{Db, ReadOptions, WriteOptions};
use crate::datadriven::{self, TestCase};
use crate::env::{Fs, MemFs};
use crate::filename;
use crate::iter::InternalIterator;
use crate::key;
use crate::options::{Compression, Options, Scheduler};
use crate::sstable::Table;
use crate::version::NUM_LEVELS;
use crate::Snapshot;

const DIR: &str = "/db";

fn internal(ikey: &[u8]) -> String {
    match key::parse(ikey) {
        Some(k) => {
            if key::trailer_of(ikey) == key::trailer(key::SEQNUM_MAX, key::Kind::RangeDelete as u8)
            {
                format!("{}#inf,RangeDelete", String::from_utf8_lossy(k.user_key))
            } else {
                format!("{k:?}")
            }
        }
        None => format!("bad key {ikey:?}"),
    }
}

/// Every file of the LSM with its bounds, its point keys and its range tombstones, read from
/// the table files themselves.
fn describe_lsm(db: &Db, fs: &MemFs, opts: &Options) -> String {
    let version = db.inner.lock().version.clone();
    let mut out = String::new();
    for level in 0..NUM_LEVELS {
        for f in &version.levels[level] {
            out.push_str(&format!(
                "L{level} {:06}: {} - {}\n",
                f.num,
                internal(&f.smallest),
                internal(&f.largest)
            ));
            let file = fs.open(&filename::table(std::path::Path::new(DIR), f.num)).expect("open");
            let table = Table::open(file, f.num, opts).expect("table");
            let mut it = table.iter();
            it.first().expect("first");
            let mut points = Vec::new();
            while it.valid() {
                points.push(internal(it.key()));
                it.next().expect("next");
            }
            if !points.is_empty() {
                out.push_str(&format!("  points: {}\n", points.join(" ")));
            }
            for t in table.range_tombstones() {
                out.push_str(&format!("  rangedel: {t:?}\n"));
            }
        }
    }
    if out.is_empty() {
        out.push_str("empty\n");
    }
    out
}

fn scan(db: &Db, ro: &ReadOptions) -> String {
    let mut it = db.iter(ro).expect("iter");
    let mut out = Vec::new();
    let mut ok = it.first().expect("first");
    while ok {
        out.push(format!(
            "{}={}",
            String::from_utf8_lossy(it.key()),
            String::from_utf8_lossy(it.value())
        ));
        ok = it.next().expect("next");
    }
    format!("{}\n", out.join(" "))
}

struct Env {
    fs: MemFs,
    opts: Options,
    db: Option<Db>,
    snaps: Vec<Snapshot>,
}

impl Env {
    fn db(&self) -> &Db {
        self.db.as_ref().expect("open first")
    }

    fn handle(&mut self, case: &TestCase) -> String {
        let wo = WriteOptions::default();
        match case.cmd.as_str() {
            // `open [target-file-size=N]`: a new database on a fresh MemFs.
            "open" => {
                self.snaps.clear();
                self.db = None;
                self.fs = MemFs::new();
                self.opts = Options {
                    fs: Arc::new(self.fs.clone()) as Arc<dyn Fs>,
                    target_file_size: case.arg_or("target-file-size", 64),
                    block_size: 32,
                    compression: Compression::None,
                    bloom_bits_per_key: 0,
                    scheduler: Scheduler::Manual,
                    ..Options::default()
                };
                self.db = Some(Db::open(self.opts.clone(), DIR).expect("open"));
                "ok\n".to_string()
            }
            // One write per line: `put k v`, `del k`, `merge k v`, `delrange a b`.
            "write" => {
                for line in case.input.lines() {
                    let w: Vec<&str> = line.split_whitespace().collect();
                    let r = match w.as_slice() {
                        ["put", k, v] => self.db().put(k.as_bytes(), v.as_bytes(), &wo),
                        ["del", k] => self.db().delete(k.as_bytes(), &wo),
                        ["merge", k, v] => self.db().merge(k.as_bytes(), v.as_bytes(), &wo),
                        ["delrange", a, b] => {
                            self.db().delete_range(a.as_bytes(), b.as_bytes(), &wo)
                        }
                        _ => panic!("line {}: bad write {line:?}", case.line),
                    };
                    r.expect("write");
                }
                format!("last seqnum {}\n", self.db().last_seqnum())
            }
            // Holds a snapshot (so compactions keep what it sees) until `release`.
            "snapshot" => {
                let s = self.db().snapshot();
                let out = format!("snapshot at {}\n", s.seqnum());
                self.snaps.push(s);
                out
            }
            "release" => {
                self.snaps.clear();
                "ok\n".to_string()
            }
            "flush" => {
                self.db().flush().expect("flush");
                describe_lsm(self.db(), &self.fs, &self.opts)
            }
            // `compact [start=K] [end=K]`: compact_range, then the LSM.
            "compact" => {
                let start: Option<String> = case.arg("start").map(|v| v[0].clone());
                let end: Option<String> = case.arg("end").map(|v| v[0].clone());
                self.db()
                    .compact_range(
                        start.as_deref().map(str::as_bytes),
                        end.as_deref().map(str::as_bytes),
                    )
                    .expect("compact_range");
                self.db().check_invariants().expect("invariants");
                describe_lsm(self.db(), &self.fs, &self.opts)
            }
            "lsm" => describe_lsm(self.db(), &self.fs, &self.opts),
            // The visible state now, and at each held snapshot.
            "scan" => {
                let mut out = format!("now: {}", scan(self.db(), &ReadOptions::default()));
                for s in &self.snaps {
                    let ro = ReadOptions { snapshot: Some(s.clone()), ..Default::default() };
                    out.push_str(&format!("at {}: {}", s.seqnum(), scan(self.db(), &ro)));
                }
                out
            }
            other => panic!("line {}: unknown command {other}", case.line),
        }
    }
}

#[test]
fn compaction_rangedel() {
    let mut env = Env { fs: MemFs::new(), opts: Options::default(), db: None, snaps: Vec::new() };
    datadriven::run("testdata/compaction_rangedel", |case| env.handle(case));
}
