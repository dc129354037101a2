//! db_bench-style workloads for Cobble, fjall and RocksDB, run side by side.
//!
//! ```sh
//! cd scripts/bench && cargo run --release -- --num 1000000 --rounds 5
//! ROCKSDB_LIB_DIR=/usr/lib/x86_64-linux-gnu cargo run --release --features rocksdb -- ...
//! ```
//!
//! Each (workload, engine) run is a child process of its own (a fresh directory, its own peak
//! RSS and write counters); rounds interleave the engines, rotating who goes first, and the
//! table shows each figure's median over the rounds with Cobble's ratio to each peer (above 1
//! is Cobble ahead: throughput over throughput, the peer's amplification over Cobble's).
//!
//! Figures per run: ops/s of the measured phase, p50 and p99 latency of its operations, write
//! amplification (bytes the process wrote through `write(2)`, /proc/self/io `wchar`, over the
//! bytes of keys and values the workload wrote, preload included), space amplification (bytes
//! in the directory over the live keys' and values' bytes), peak RSS (VmHWM) and heap
//! allocations per operation (made on the calling thread inside the timed calls, counted by
//! this binary's global allocator: Rust's heap only, so RocksDB's C++ allocations are not
//! seen; `-` for the multi-writer workloads, which time their calls themselves).

mod alloc_count;
mod engines;
mod workloads;

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use workloads::{RunResult, Settings, WORKLOADS};

struct Args {
    settings: Settings,
    engines: Vec<String>,
    workloads: Vec<String>,
    rounds: usize,
    json: Option<PathBuf>,
    child: Option<(String, String)>,
}

fn usage() -> ! {
    eprintln!(
        "usage: cobble-bench [--num N] [--value-size B] [--rounds R] [--engines a,b] \
         [--workloads w1,w2|all] [--dir DIR] [--json FILE]\nworkloads: {}",
        WORKLOADS.join(", ")
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        settings: Settings {
            num: 1_000_000,
            value_size: 100,
            dir: std::env::temp_dir().join("cobble-bench"),
        },
        engines: engines::available().into_iter().map(String::from).collect(),
        workloads: WORKLOADS.iter().map(|w| w.to_string()).collect(),
        rounds: 3,
        json: None,
        child: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        let number = |s: String| s.parse::<u64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--num" => a.settings.num = number(val()),
            "--value-size" => a.settings.value_size = number(val()) as usize,
            "--rounds" => a.rounds = number(val()).max(1) as usize,
            "--dir" => a.settings.dir = PathBuf::from(val()),
            "--json" => a.json = Some(PathBuf::from(val())),
            "--engines" => a.engines = val().split(',').map(String::from).collect(),
            "--workloads" => {
                let v = val();
                if v != "all" {
                    a.workloads = v.split(',').map(String::from).collect();
                }
            }
            "--child" => {
                let engine = val();
                a.child = Some((engine, val()));
            }
            _ => usage(),
        }
    }
    for w in &a.workloads {
        if !WORKLOADS.contains(&w.as_str()) {
            eprintln!("unknown workload {w}");
            usage();
        }
    }
    for e in &a.engines {
        if !engines::available().contains(&e.as_str()) {
            eprintln!("engine {e} is not in this build (rocksdb needs --features rocksdb)");
            usage();
        }
    }
    a
}

fn main() {
    let args = parse_args();
    if let Some((engine, workload)) = &args.child {
        let r = workloads::run(engine, workload, &args.settings);
        println!("{}", r.to_json());
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let mut results: BTreeMap<(String, String), Vec<RunResult>> = BTreeMap::new();
    for round in 0..args.rounds {
        for w in &args.workloads {
            let n = args.engines.len();
            for i in 0..n {
                let e = &args.engines[(i + round) % n];
                let out = Command::new(&exe)
                    .args(["--child", e, w])
                    .args(["--num", &args.settings.num.to_string()])
                    .args(["--value-size", &args.settings.value_size.to_string()])
                    .args(["--dir", &args.settings.dir.display().to_string()])
                    .output()
                    .expect("run a child");
                if !out.status.success() {
                    eprintln!("{e} {w} failed:\n{}", String::from_utf8_lossy(&out.stderr));
                    std::process::exit(1);
                }
                let line = String::from_utf8_lossy(&out.stdout);
                let r = RunResult::from_json(line.trim()).expect("a child's result");
                eprintln!("round {} {w:<18} {e:<8} {:>12.0} ops/s", round + 1, r.ops_per_sec);
                results.entry((w.clone(), e.clone())).or_default().push(r);
            }
        }
    }
    let mut table = report(&args, &results);
    table.push_str(&churn_report(&results));
    println!("{table}");
    if let Some(path) = &args.json {
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|((w, e), runs)| {
                serde_json::json!({
                    "workload": w, "engine": e,
                    "median": median(runs).to_value(),
                    "runs": runs.iter().map(RunResult::to_value).collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "num": args.settings.num, "value_size": args.settings.value_size,
            "rounds": args.rounds, "results": rows,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc).expect("json"))
            .expect("write json");
    }
}

/// Resident memory after each churn cycle, per engine (the median run's), and its growth
/// between the last two cycles: memory that keeps growing while the data does not is
/// fragmentation or a leak.
fn churn_report(results: &BTreeMap<(String, String), Vec<RunResult>>) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for ((w, e), runs) in results {
        let m = median(runs);
        let rss = &m.rss_cycles_mib;
        if w != "churn" || rss.len() < 2 {
            continue;
        }
        let (prev, last) = (rss[rss.len() - 2], rss[rss.len() - 1]);
        let cycles: Vec<String> = rss.iter().map(|r| format!("{r:.0}")).collect();
        let _ = writeln!(
            s,
            "churn {e}: RSS MiB per cycle {}; last cycle {:+.1}%",
            cycles.join(" "),
            (last - prev) / prev * 100.0
        );
    }
    s
}

/// The run with the median throughput (its other figures come with it).
fn median(runs: &[RunResult]) -> RunResult {
    let mut v = runs.to_vec();
    v.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
    v[v.len() / 2].clone()
}

fn report(args: &Args, results: &BTreeMap<(String, String), Vec<RunResult>>) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ops, {} B values, 16 B keys, median of {} rounds, {} allocator",
        args.settings.num,
        args.settings.value_size,
        args.rounds,
        alloc_count::NAME
    );
    let peers: Vec<&String> = args.engines.iter().filter(|e| *e != "cobble").collect();
    let mut head =
        "| workload | engine | ops/s | p50 us | p99 us | write amp | space amp | peak RSS MiB \
         | allocs/op |"
            .to_string();
    let mut rule = "|---|---|---|---|---|---|---|---|---|".to_string();
    for p in &peers {
        let _ = write!(head, " cobble/{p} ops | cobble/{p} wamp |");
        rule.push_str("---|---|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for w in &args.workloads {
        let cobble = results.get(&(w.clone(), "cobble".to_string())).map(|r| median(r));
        for e in &args.engines {
            let Some(runs) = results.get(&(w.clone(), e.clone())) else { continue };
            let m = median(runs);
            let _ = write!(
                s,
                "| {w} | {e} | {:.0} | {:.1} | {:.1} | {:.2} | {:.2} | {:.0} | {} |",
                m.ops_per_sec,
                m.p50_us,
                m.p99_us,
                m.write_amp,
                m.space_amp,
                m.peak_rss_mib,
                m.allocs_per_op.map_or("-".to_string(), |a| format!("{a:.2}"))
            );
            for p in &peers {
                match (&cobble, results.get(&(w.clone(), (*p).clone()))) {
                    (Some(c), Some(pr)) if e == "cobble" => {
                        let pm = median(pr);
                        let _ = write!(
                            s,
                            " {:.2}x | {:.2}x |",
                            c.ops_per_sec / pm.ops_per_sec,
                            pm.write_amp / c.write_amp
                        );
                    }
                    _ => s.push_str(" | |"),
                }
            }
            s.push('\n');
        }
    }
    s
}
