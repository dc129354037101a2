//! The workloads: a preload (not measured) and a measured phase, on one engine in this process.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::engines::{self, Engine};

pub const WORKLOADS: &[&str] = &[
    "fillseq",
    "fillrandom",
    "fillbatch",
    "overwrite",
    "readrandom_mem",
    "readrandom_l0",
    "readrandom",
    "readmissing",
    "readseq",
    "readreverse",
    "seekrandom",
    "deleterandom",
    "readwhilewriting",
    "fillsync1",
    "fillsync16",
    "ycsb_a",
    "ycsb_b",
    "ycsb_c",
    "ycsb_d",
    "ycsb_e",
    "ycsb_f",
    "compact",
    "churn",
];

/// Churn cycles (Dgraph's memory test): each fills, reads, deletes, flushes and compacts.
pub const CHURN_CYCLES: usize = 12;

#[derive(Clone, Debug)]
pub struct Settings {
    pub num: u64,
    pub value_size: usize,
    pub dir: PathBuf,
}

#[derive(Clone, Debug, Default)]
pub struct RunResult {
    pub ops: u64,
    pub secs: f64,
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub write_amp: f64,
    pub space_amp: f64,
    pub peak_rss_mib: f64,
    /// Heap allocations per operation inside the timed calls; `None` when the calls were
    /// not timed one by one on this thread.
    pub allocs_per_op: Option<f64>,
    /// `churn` only: resident memory (VmRSS) after each cycle.
    pub rss_cycles_mib: Vec<f64>,
}

impl RunResult {
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::json!({
            "ops": self.ops, "secs": self.secs, "ops_per_sec": self.ops_per_sec,
            "p50_us": self.p50_us, "p99_us": self.p99_us, "write_amp": self.write_amp,
            "space_amp": self.space_amp, "peak_rss_mib": self.peak_rss_mib,
            "allocs_per_op": self.allocs_per_op,
            "rss_cycles_mib": self.rss_cycles_mib,
        })
    }

    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    pub fn from_json(s: &str) -> Option<RunResult> {
        let v: serde_json::Value = serde_json::from_str(s).ok()?;
        let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
        Some(RunResult {
            ops: v.get("ops")?.as_u64()?,
            secs: f("secs")?,
            ops_per_sec: f("ops_per_sec")?,
            p50_us: f("p50_us")?,
            p99_us: f("p99_us")?,
            write_amp: f("write_amp")?,
            space_amp: f("space_amp")?,
            peak_rss_mib: f("peak_rss_mib")?,
            allocs_per_op: f("allocs_per_op"),
            rss_cycles_mib: v
                .get("rss_cycles_mib")
                .and_then(serde_json::Value::as_array)
                .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
                .unwrap_or_default(),
        })
    }
}

/// A 16-byte key for id `i` (the db_bench layout: zero-padded decimal).
fn key(i: u64) -> Vec<u8> {
    format!("{i:016}").into_bytes()
}

/// A key that sorts among the loaded ones but is never written.
fn missing_key(i: u64) -> Vec<u8> {
    format!("{i:015}x").into_bytes()
}

/// Values cut from a 1 MiB pool that compresses to about half (db_bench's default ratio).
struct Values {
    pool: Vec<u8>,
    size: usize,
}

impl Values {
    fn new(size: usize) -> Values {
        let mut rng = ChaCha8Rng::seed_from_u64(301);
        let mut pool = Vec::with_capacity((1 << 20) + size);
        while pool.len() < (1 << 20) + size {
            let c = rng.gen_range(b'a'..=b'z');
            for j in 0..16 {
                pool.push(if j < 8 { rng.gen_range(b'a'..=b'z') } else { c });
            }
        }
        Values { pool, size }
    }

    fn get(&self, rng: &mut ChaCha8Rng) -> &[u8] {
        let at = rng.gen_range(0..1 << 20);
        &self.pool[at..at + self.size]
    }

    /// A value of a random length up to the pool's value size (so allocations of many sizes).
    fn get_varied(&self, rng: &mut ChaCha8Rng) -> &[u8] {
        let len = rng.gen_range(self.size / 20..=self.size);
        &self.get(rng)[..len]
    }
}

/// YCSB's zipfian generator (Gray et al., theta 0.99) over `0..n`, scrambled so the hot keys
/// spread over the key space.
struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipf {
    fn new(n: u64) -> Zipf {
        let theta = 0.99;
        let zeta = |n: u64| (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(n);
        let zeta2 = zeta(2);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Zipf { n, theta, alpha, zetan, eta }
    }

    /// A rank: 0 is the hottest.
    fn rank(&self, rng: &mut ChaCha8Rng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        ((self.n as f64) * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64 % self.n
    }

    fn scrambled(&self, rng: &mut ChaCha8Rng) -> u64 {
        let r = self.rank(rng);
        // FNV-1a of the rank: a fixed permutation-like spread.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in r.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        h % self.n
    }
}

/// What one child measures.
struct Meter {
    lat: Vec<u32>,
    /// Allocations this thread made inside `timed` calls.
    allocs: u64,
    user_bytes: u64,
    /// Each key's live value length, 0 when absent.
    live: Vec<u32>,
    value_size: usize,
}

impl Meter {
    fn timed<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let a = crate::alloc_count::this_thread();
        let t = Instant::now();
        let r = f();
        let elapsed = t.elapsed();
        self.allocs += crate::alloc_count::this_thread() - a;
        self.lat.push(elapsed.as_nanos().min(u128::from(u32::MAX)) as u32);
        r
    }

    fn wrote(&mut self, id: u64) {
        self.wrote_len(id, self.value_size);
    }

    fn wrote_len(&mut self, id: u64, len: usize) {
        self.user_bytes += 16 + len as u64;
        if let Some(slot) = self.live.get_mut(id as usize) {
            *slot = len as u32;
        }
    }

    fn deleted(&mut self, id: u64) {
        self.user_bytes += 16;
        if let Some(slot) = self.live.get_mut(id as usize) {
            *slot = 0;
        }
    }

    /// Bytes of the live keys and values.
    fn live_bytes(&self) -> u64 {
        self.live.iter().filter(|&&l| l > 0).map(|&l| 16 + u64::from(l)).sum()
    }
}

fn proc_field(file: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Loads ids `0..n` in a shuffled order (every key present), flushing `chunks - 1` times on
/// the way (and not after the last chunk).
fn preload(db: &dyn Engine, m: &mut Meter, values: &Values, n: u64, chunks: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut ids: Vec<u64> = (0..n).collect();
    for i in (1..ids.len()).rev() {
        ids.swap(i, rng.gen_range(0..=i));
    }
    let per = n.div_ceil(chunks.max(1)).max(1);
    for (i, id) in ids.into_iter().enumerate() {
        db.put(&key(id), values.get(&mut rng), false);
        m.wrote(id);
        if (i as u64 + 1) % per == 0 && (i as u64 + 1) < n {
            db.flush();
        }
    }
}

/// `count` puts of random ids below `n`, not timed.
fn overwrite(db: &dyn Engine, m: &mut Meter, values: &Values, n: u64, count: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for _ in 0..count {
        let id = rng.gen_range(0..n);
        db.put(&key(id), values.get(&mut rng), false);
        m.wrote(id);
    }
}

pub fn run(engine: &str, workload: &str, s: &Settings) -> RunResult {
    let dir = s.dir.join(format!("{engine}-{workload}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let db = engines::open(engine, &dir);
    let values = Values::new(s.value_size);
    let n = s.num;
    let mut m = Meter {
        lat: Vec::new(),
        allocs: 0,
        user_bytes: 0,
        live: vec![0; (n + n / 10 + 1) as usize],
        value_size: s.value_size,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let wchar_start = proc_field("/proc/self/io", "wchar:");

    // Preload.
    match workload {
        "readrandom_mem" => preload(&*db, &mut m, &values, n.min(200_000), 1),
        "readrandom_l0" => preload(&*db, &mut m, &values, n, 3),
        "overwrite" | "deleterandom" => preload(&*db, &mut m, &values, n, 1),
        // Eight flushed runs, each spanning the key space, then an overwrite of half the keys
        // (left in the memtable), so the full compaction merges runs and drops old versions.
        "compact" => {
            preload(&*db, &mut m, &values, n, 8);
            db.flush();
            overwrite(&*db, &mut m, &values, n, n / 2);
        }
        w if w.starts_with("ycsb") => preload(&*db, &mut m, &values, n, 1),
        "readrandom" | "readmissing" | "readseq" | "readreverse" | "seekrandom"
        | "readwhilewriting" => {
            preload(&*db, &mut m, &values, n, 1);
            db.compact();
        }
        _ => {}
    }
    if workload == "readrandom_l0" {
        db.flush();
    }

    let mut rss_cycles = Vec::new();
    let start = Instant::now();
    let ops: u64 = match workload {
        "fillseq" => {
            for i in 0..n {
                let v = values.get(&mut rng);
                let k = key(i);
                m.timed(|| db.put(&k, v, false));
                m.wrote(i);
            }
            n
        }
        "fillrandom" | "overwrite" => {
            for _ in 0..n {
                let id = rng.gen_range(0..n);
                let v = values.get(&mut rng);
                let k = key(id);
                m.timed(|| db.put(&k, v, false));
                m.wrote(id);
            }
            n
        }
        "fillbatch" => {
            let mut done = 0;
            while done < n {
                let count = 100.min(n - done);
                let mut pairs = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let id = rng.gen_range(0..n);
                    pairs.push((key(id), values.get(&mut rng)));
                    m.wrote(id);
                }
                m.timed(|| db.put_batch(&pairs));
                done += count;
            }
            n
        }
        "readrandom_mem" | "readrandom_l0" | "readrandom" => {
            let loaded = if workload == "readrandom_mem" { n.min(200_000) } else { n };
            let mut found = 0;
            for _ in 0..n {
                let k = key(rng.gen_range(0..loaded));
                found += m.timed(|| db.get(&k)).is_some() as u64;
            }
            assert_eq!(found, n, "every loaded key reads back");
            n
        }
        "readmissing" => {
            for _ in 0..n {
                let k = missing_key(rng.gen_range(0..n));
                assert!(m.timed(|| db.get(&k)).is_none());
            }
            n
        }
        "readseq" | "readreverse" => {
            let got = m.timed(|| db.scan(workload == "readreverse"));
            assert_eq!(got, n, "a scan sees every key");
            got
        }
        "seekrandom" => {
            let seeks = (n / 10).max(1);
            for _ in 0..seeks {
                let k = key(rng.gen_range(0..n));
                m.timed(|| db.seek_next(&k, 10));
            }
            seeks
        }
        "deleterandom" => {
            for _ in 0..n {
                let id = rng.gen_range(0..n);
                let k = key(id);
                m.timed(|| db.delete(&k));
                m.deleted(id);
            }
            n
        }
        "readwhilewriting" => {
            let stop = Arc::new(AtomicBool::new(false));
            let writer = {
                let (db, stop, vs) = (db.clone(), stop.clone(), s.value_size);
                std::thread::spawn(move || {
                    let values = Values::new(vs);
                    let mut rng = ChaCha8Rng::seed_from_u64(13);
                    let mut written = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        db.put(&key(rng.gen_range(0..n)), values.get(&mut rng), false);
                        written += 1;
                    }
                    written
                })
            };
            for _ in 0..n {
                let k = key(rng.gen_range(0..n));
                m.timed(|| db.get(&k));
            }
            stop.store(true, Ordering::Relaxed);
            let written = writer.join().expect("writer");
            m.user_bytes += written * (16 + s.value_size as u64);
            n
        }
        "fillsync1" | "fillsync16" => {
            let writers: u64 = if workload == "fillsync1" { 1 } else { 16 };
            let total = (n / 100).max(1000);
            let per = total / writers;
            let lats: Vec<Vec<u32>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..writers)
                    .map(|w| {
                        let db = db.clone();
                        let values = &values;
                        scope.spawn(move || {
                            let mut rng = ChaCha8Rng::seed_from_u64(100 + w);
                            let mut lat = Vec::with_capacity(per as usize);
                            for i in 0..per {
                                let v = values.get(&mut rng);
                                let t = Instant::now();
                                db.put(&key(w * per + i), v, true);
                                lat.push(t.elapsed().as_nanos() as u32);
                            }
                            lat
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("writer")).collect()
            });
            for l in lats {
                m.lat.extend(l);
            }
            for id in 0..per * writers {
                m.wrote(id);
            }
            per * writers
        }
        y if y.starts_with("ycsb") => ycsb(&*db, &mut m, &values, &mut rng, n, &y[5..]),
        // One call: flush and compact everything into one sorted run. Its ops are the keys
        // written before it, so ops/s is keys compacted per second.
        "compact" => {
            m.timed(|| {
                db.flush();
                db.compact();
            });
            n + n / 2
        }
        "churn" => {
            let varied = Values::new(2000);
            let per_cycle = (n / 4).max(1);
            let mut ops = 0;
            for _ in 0..CHURN_CYCLES {
                for _ in 0..per_cycle {
                    let id = rng.gen_range(0..n);
                    let (k, v) = (key(id), varied.get_varied(&mut rng));
                    m.timed(|| db.put(&k, v, false));
                    m.wrote_len(id, v.len());
                }
                for _ in 0..per_cycle / 2 {
                    let k = key(rng.gen_range(0..n));
                    m.timed(|| db.get(&k));
                }
                for _ in 0..per_cycle / 4 {
                    let id = rng.gen_range(0..n);
                    let k = key(id);
                    m.timed(|| db.delete(&k));
                    m.deleted(id);
                }
                db.flush();
                db.compact();
                ops += per_cycle + per_cycle / 2 + per_cycle / 4;
                rss_cycles.push(proc_field("/proc/self/status", "VmRSS:") as f64 / 1024.0);
            }
            ops
        }
        other => panic!("unknown workload {other}"),
    };
    let secs = start.elapsed().as_secs_f64();
    // The multi-writer workloads time their calls on threads of their own.
    let timed_here = !workload.starts_with("fillsync");
    let allocs_per_op = timed_here.then(|| m.allocs as f64 / ops.max(1) as f64);

    let live_bytes = m.live_bytes();
    let space = dir_bytes(&dir);
    drop(db);
    let wchar = proc_field("/proc/self/io", "wchar:") - wchar_start;
    let _ = std::fs::remove_dir_all(&dir);
    m.lat.sort_unstable();
    let pct = |p: f64| {
        if m.lat.is_empty() {
            0.0
        } else {
            f64::from(m.lat[((m.lat.len() - 1) as f64 * p) as usize]) / 1000.0
        }
    };
    RunResult {
        ops,
        secs,
        ops_per_sec: ops as f64 / secs,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        write_amp: wchar as f64 / m.user_bytes.max(1) as f64,
        space_amp: space as f64 / live_bytes.max(1) as f64,
        peak_rss_mib: proc_field("/proc/self/status", "VmHWM:") as f64 / 1024.0,
        allocs_per_op,
        rss_cycles_mib: rss_cycles,
    }
}

/// YCSB core workloads A-F over `n` preloaded keys with a zipfian chooser.
fn ycsb(
    db: &dyn Engine,
    m: &mut Meter,
    values: &Values,
    rng: &mut ChaCha8Rng,
    n: u64,
    which: &str,
) -> u64 {
    let zipf = Zipf::new(n);
    let mut inserted = n;
    for _ in 0..n {
        let r: f64 = rng.gen();
        match which {
            "a" | "b" => {
                let update = if which == "a" { r < 0.5 } else { r < 0.05 };
                let id = zipf.scrambled(rng);
                if update {
                    let v = values.get(rng);
                    let k = key(id);
                    m.timed(|| db.put(&k, v, false));
                    m.wrote(id);
                } else {
                    let k = key(id);
                    m.timed(|| db.get(&k));
                }
            }
            "c" => {
                let id = zipf.scrambled(rng);
                let k = key(id);
                m.timed(|| db.get(&k));
            }
            "d" | "e" => {
                if r < 0.05 {
                    let v = values.get(rng);
                    let k = key(inserted);
                    m.timed(|| db.put(&k, v, false));
                    m.wrote(inserted);
                    inserted += 1;
                } else if which == "d" {
                    // The latest keys are the hottest.
                    let back = zipf.rank(rng) % inserted;
                    let k = key(inserted - 1 - back);
                    m.timed(|| db.get(&k));
                } else {
                    let id = zipf.scrambled(rng);
                    let len = rng.gen_range(1..=100);
                    let k = key(id);
                    m.timed(|| db.seek_next(&k, len));
                }
            }
            "f" => {
                let id = zipf.scrambled(rng);
                if r < 0.5 {
                    let k = key(id);
                    m.timed(|| db.get(&k));
                } else {
                    let v = values.get(rng);
                    m.timed(|| {
                        db.get(&key(id));
                        db.put(&key(id), v, false);
                    });
                    m.wrote(id);
                }
            }
            other => panic!("unknown YCSB workload {other}"),
        }
    }
    n
}
