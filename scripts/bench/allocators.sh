#!/usr/bin/env bash
# Compares the allocators under Cobble: the system's (glibc), jemalloc and mimalloc. Builds the
# bench once per allocator, then runs rounds that interleave them (rotating who goes first)
# and prints, per workload, the median ops/s of each, its ratio to the system allocator, and
# churn's RSS after the last cycle with its growth over that cycle.
#
#   scripts/bench/allocators.sh [--num N] [--rounds R] [--workloads w1,w2]
set -euo pipefail
cd "$(dirname "$0")"
num=200000 rounds=3 workloads=fillrandom,readrandom,seekrandom,ycsb_a,churn
while [ $# -gt 0 ]; do
  case "$1" in
    --num) num=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    *) echo "usage: $0 [--num N] [--rounds R] [--workloads w1,w2]" >&2; exit 2 ;;
  esac
done
out=$(mktemp -d)
allocs=(system jemalloc mimalloc)
for a in "${allocs[@]}"; do
  features=(); [ "$a" != system ] && features=(--features "$a")
  cargo build --release -q "${features[@]}"
  cp target/release/cobble-bench "$out/bench-$a"
done
for r in $(seq 1 "$rounds"); do
  for i in 0 1 2; do
    a=${allocs[$(( (i + r) % 3 ))]}
    echo "round $r: $a" >&2
    "$out/bench-$a" --engines cobble --num "$num" --rounds 1 --workloads "$workloads" \
      --json "$out/$a-$r.json" >/dev/null 2>&1
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
allocs = ["system", "jemalloc", "mimalloc"]
runs = {}
for a in allocs:
    for r in range(1, rounds + 1):
        for row in json.load(open(f"{out}/{a}-{r}.json"))["results"]:
            runs.setdefault((row["workload"], a), []).append(row["median"])
print("| workload | " + " | ".join(f"{a} ops/s" for a in allocs) + " | jemalloc/system | mimalloc/system |")
print("|---|" + "---|" * (len(allocs) + 2))
for w in sorted({w for w, _ in runs}):
    med = {a: statistics.median(x["ops_per_sec"] for x in runs[(w, a)]) for a in allocs}
    cells = " | ".join(f"{med[a]:.0f}" for a in allocs)
    print(f"| {w} | {cells} | {med['jemalloc'] / med['system']:.2f}x | {med['mimalloc'] / med['system']:.2f}x |")
for a in allocs:
    for x in runs.get(("churn", a), [])[:1]:
        rss = x["rss_cycles_mib"]
        print(f"churn {a}: RSS MiB per cycle {' '.join(f'{v:.0f}' for v in rss)}; "
              f"last cycle {(rss[-1] - rss[-2]) / rss[-2] * 100:+.1f}%; peak {x['peak_rss_mib']:.0f} MiB")
PY
rm -rf "$out"
