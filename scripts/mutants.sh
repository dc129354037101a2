#!/usr/bin/env bash
# Mutation score of the engine against a short Tumbler campaign.
#
# cargo-mutants mutates engine/src (one mutant at a time: a function body replaced, an operator
# swapped, a condition negated), rebuilds, and runs harness/tests/mutation_campaign.rs: the
# standard configs plus two random ones, a few fixed seeds with crashes and injected faults.
# A mutant is killed when the campaign fails (an oracle finding, a panic, a hang past the
# timeout). The score is killed / viable, where viable means the mutant built.
#
# Usage: scripts/mutants.sh [extra cargo-mutants args]
#   SHARD      which deterministic slice of the mutants to run, k/n (default 0/6: every 6th
#              mutant, round-robin over cargo-mutants' stable list; 0/1 runs them all)
#   OUT        output directory (default mutants-out; cargo-mutants writes OUT/mutants.out)
#   JOBS       mutants built and tested at once (default 1; each job has its own tree copy)
#   MUTANTS_SEEDS, MUTANTS_OPS   the campaign's size (default 1,2,3,4 and 1000)
#   SURVIVORS  a missed.txt of an earlier run: test exactly those mutants again (matched by file,
#              function and mutation, not line, so engine edits since do not lose them),
#              e.g. after the campaign gained an oracle; SHARD is then ignored
#
# Not mutated, because Tumbler does not reach them by design: the `cobble` inspection tool
# (engine/src/bin, tested by its own tests), the fuzz entry points (engine/src/fuzz.rs,
# engine/src/sstable/fuzz.rs, exercised by cargo-fuzz), the real-filesystem Fs
# (engine/src/env/os.rs; Tumbler runs on SimFs), the engine's own in-memory Fs and the
# vector iterator, which only its unit tests and fuzz targets use (engine/src/env/mem.rs,
# engine/src/iter/vec_iter.rs), and the std/shuttle/loom facade (engine/src/sync.rs). `Debug` impls are not mutated either: their output is no behaviour a
# campaign should pin down.
#
# Prints the score and the surviving mutants by file; exit 0 whatever the score (the score is
# a measurement, triaged in docs/mutants.md), 2 when cargo-mutants itself fails to run.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked --version 27.1.0

out="${OUT:-mutants-out}"
export MUTANTS_SEEDS="${MUTANTS_SEEDS:-1,2,3,4}"
export MUTANTS_OPS="${MUTANTS_OPS:-1000}"
mkdir -p "$out"

# Our own baseline: cargo-mutants' would build the mutated package's tests (cobble's), not the
# campaign, so it is skipped below and the unmutated campaign must pass here first.
cargo test --profile mutants -p tumbler --features mutation-campaign --test mutation_campaign

select=(--shard "${SHARD:-0/6}" --sharding round-robin)
if [ -n "${SURVIVORS:-}" ]; then
  select=()
  while IFS= read -r line; do
    [ -n "$line" ] && select+=(--re "$(python3 -c 'import re,sys; f,_,_,rest=sys.argv[1].split(":",3); print(re.escape(f)+r":\d+:\d+:"+re.escape(rest)+"$")' "$line")")
  done <"$SURVIVORS"
fi

set +e
cargo mutants \
  --package cobble \
  --test-package tumbler \
  --features mutation-campaign \
  --cargo-arg=--test=mutation_campaign \
  --profile mutants \
  "${select[@]}" \
  --jobs "${JOBS:-1}" \
  --timeout 120 --build-timeout 600 \
  --exclude 'engine/src/bin/**' \
  --exclude engine/src/fuzz.rs \
  --exclude engine/src/sstable/fuzz.rs \
  --exclude engine/src/env/os.rs \
  --exclude engine/src/sync.rs \
  --exclude engine/src/env/mem.rs \
  --exclude engine/src/iter/vec_iter.rs \
  --exclude-re '<impl (fmt::)?Debug for ' \
  --baseline skip \
  --no-times \
  --output "$out" \
  "$@"
rc=$?
set -e
# cargo-mutants: 0 all caught, 2 some missed, 3 some timed out, others are its own failures.
case "$rc" in 0 | 2 | 3) ;; *) echo "cargo-mutants failed (exit $rc)" >&2; exit 2 ;; esac

python3 - "$out/mutants.out/outcomes.json" "${SURVIVORS:-}" <<'EOF'
import collections, json, re, sys

def unlined(name):
    return re.sub(r":\d+:\d+:", ":", name, count=1)

outcomes = json.load(open(sys.argv[1]))["outcomes"]
if sys.argv[2]:
    # cargo-mutants lets struct-field deletions through --re: count the named mutants only.
    wanted = {unlined(l.strip()) for l in open(sys.argv[2]) if l.strip()}
    outcomes = [o for o in outcomes
                if o["scenario"] == "Baseline" or unlined(o["scenario"]["Mutant"]["name"]) in wanted]
counts = collections.Counter()
missed = collections.defaultdict(list)
for o in outcomes:
    scenario = o["scenario"]
    if scenario == "Baseline":
        continue
    summary = o["summary"]
    counts[summary] += 1
    if summary == "MissedMutant":
        m = scenario["Mutant"]
        missed[m["file"]].append(m["name"])
killed = counts["CaughtMutant"] + counts["Timeout"]
viable = killed + counts["MissedMutant"]
print(f"mutants: {sum(counts.values())} tested, {counts['Unviable']} unviable, {viable} viable")
print(f"killed:  {counts['CaughtMutant']} caught + {counts['Timeout']} timed out = {killed}")
if viable:
    print(f"score:   {killed}/{viable} = {100 * killed / viable:.1f}%")
for file in sorted(missed):
    print(f"survivors in {file}: {len(missed[file])}")
    for name in missed[file]:
        print(f"  {name}")
EOF
