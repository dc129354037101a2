#!/usr/bin/env bash
# Measures Tumbler's bug-finding power: for each planted bug of scripts/planted-bugs/ (or the
# patches named as arguments), apply it to a scratch copy of the committed tree, build tumbler,
# run seeds BASE_SEED, BASE_SEED+1, ... until one fails or BUDGET seconds pass; record the time
# to detect, seeds run, the oracle that fired and the first failure line. The unpatched tree runs
# the same budget first and must pass. Prints a table and writes $HUNT_DIR/hunt.json.
#
#   scripts/hunt.sh [PATCH...]
#   env: BUDGET (s per bug, 300) OPS (2000) RANDOM_CONFIGS (4) BASE_SEED (1)
#        HUNT_DIR (/tmp/tumbler-hunt) REDUCE (0; 1 runs `tumbler reduce` on each finding)
#        REUSE_TREE (0) SKIP_UNPATCHED (0): continue an earlier hunt in the same HUNT_DIR
#        FEATURES (''): cargo features of the tumbler build; `shuttle` runs threaded configs
#                   under the seeded model scheduler (harness/src/sched.rs)
#        REQUIRE_DETECTED (0): exit 1 unless every patch is detected (and replays identically)
#        HUNT_TARGET_DIR ($HUNT_DIR/target): cargo's target dir for the scratch builds
#        REPLAYS (0): replay each finding this many times and count the replays whose
#                   histories are byte-identical to the finding's (the "replays" column)
# Wall-clock timing here is a benchmark, never a simulation input.
set -euo pipefail
BUDGET=${BUDGET:-300}
OPS=${OPS:-2000}
RANDOM_CONFIGS=${RANDOM_CONFIGS:-4}
BASE_SEED=${BASE_SEED:-1}
HUNT_DIR=${HUNT_DIR:-/tmp/tumbler-hunt}
REDUCE=${REDUCE:-0}
FEATURES=${FEATURES:-}
REPLAYS=${REPLAYS:-0}
features=()
[ -z "$FEATURES" ] || features=(--features "$FEATURES")
root=$(git rev-parse --show-toplevel)
patches=("$@")
if [ ${#patches[@]} -eq 0 ]; then
    patches=("$root"/scripts/planted-bugs/*.patch)
fi
tree=$HUNT_DIR/tree
# HUNT_TARGET_DIR: reuse another build's target dir (CI: its dependencies are built already).
export CARGO_TARGET_DIR=${HUNT_TARGET_DIR:-$HUNT_DIR/target}
mkdir -p "$HUNT_DIR"
# A scratch copy of the committed tree, a git repo of its own so each patch is reverted with
# `git checkout` (only the patched files change: the shared target dir rebuilds only the engine).
# REUSE_TREE=1 keeps an existing scratch copy (and appends to its results), skipping the rebuild.
results=$HUNT_DIR/results.tsv
if [ "${REUSE_TREE:-0}" != 1 ] || [ ! -d "$tree/.git" ]; then
    rm -rf "$tree" "$HUNT_DIR/out"
    mkdir -p "$tree" "$HUNT_DIR/out"
    git -C "$root" archive HEAD | tar -x -C "$tree"
    git -C "$tree" init -q
    git -C "$tree" add -A
    git -C "$tree" -c user.name=hunt -c user.email=hunt@localhost commit -qm base
    : > "$results"
fi

hunt_one() { # name patch-or-empty
    local name=$1 patch=$2
    git -C "$tree" checkout -q -- . && git -C "$tree" clean -qfd
    if [ -n "$patch" ] && ! git -C "$tree" apply "$patch"; then
        printf '%s\tapply-failed\t0\t0\t-\t-\n' "$name" >> "$results"; return
    fi
    if ! (cd "$tree" && cargo build -q --release -p tumbler "${features[@]}" 2> "$HUNT_DIR/out/$name.build.log"); then
        printf '%s\tbuild-failed\t0\t0\t-\t-\n' "$name" >> "$results"; return
    fi
    local start now found= seed=$BASE_SEED seeds=0 status=escaped line=- oracle=- reduced=- replays=-
    start=$(date +%s.%N)
    while :; do
        now=$(date +%s.%N)
        local left
        left=$(awk -v s="$start" -v n="$now" -v b="$BUDGET" 'BEGIN { printf "%d", b - (n - s) }')
        [ "$left" -gt 0 ] || break
        local out=$HUNT_DIR/out/$name/seed-$seed rc=0
        mkdir -p "$HUNT_DIR/out/$name"
        (cd "$tree" && timeout "$left" "$CARGO_TARGET_DIR/release/tumbler" run --seed "$seed" \
            --ops "$OPS" --random-configs "$RANDOM_CONFIGS" --json --out "$out" \
            > "$out.stdout" 2>&1) || rc=$?
        seeds=$((seeds + 1))
        if [ "$rc" -eq 124 ]; then break; fi # the budget ran out mid-seed
        if [ "$rc" -ne 0 ]; then
            status=detected
            found=$(date +%s.%N) # time to detect ends here: replays and reduction come after
            line=$(head -n1 "$out/failure.txt" 2>/dev/null || grep -m1 -E '^\[[a-z-]+\]' "$out.stdout" || echo "exit $rc")
            oracle=$(grep -m1 -oE '\[(model|durability|engine|memory|liveness|invariant[a-z]*|panic|hang|abort|diff|cross-config|determinism)[^]]*\]' "$out.stdout" || true)
            [ -n "$oracle" ] || oracle=$(grep -m1 -oE '^\[[a-z-]+\]' "$out.stdout" || echo "exit-$rc")
            if [ "$REPLAYS" -gt 0 ] && [ -d "$out" ]; then
                local same=0 r
                for r in $(seq 1 "$REPLAYS"); do
                    rm -rf "$out.replay"
                    (cd "$tree" && "$CARGO_TARGET_DIR/release/tumbler" replay "$out" --out "$out.replay" \
                        > /dev/null 2>&1) || true
                    # Every history the replay wrote (the failing config's, at least) must
                    # equal the finding's, byte for byte.
                    local ok=0 f
                    for f in "$out.replay"/histories/*; do
                        [ -f "$f" ] || continue
                        cmp -s "$f" "$out/histories/$(basename "$f")" || { ok=0; break; }
                        ok=1
                    done
                    same=$((same + ok))
                done
                replays="$same/$REPLAYS"
            fi
            if [ "$REDUCE" = 1 ] && [ -d "$out" ]; then
                (cd "$tree" && timeout 120 "$CARGO_TARGET_DIR/release/tumbler" reduce "$out" --budget-secs 60 > "$out.reduce" 2>&1) || true
                [ -f "$out/reduced/ops.txt" ] && reduced=$(grep -cv '^#' "$out/reduced/ops.txt" || true)
            fi
            break
        fi
        seed=$((seed + 1))
    done
    now=${found:-$(date +%s.%N)}
    local secs
    secs=$(awk -v s="$start" -v n="$now" 'BEGIN { printf "%.1f", n - s }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$secs" "$seeds" "$oracle" "$reduced" "${line//$'\t'/ }" "$replays" >> "$results"
    write_report
}

write_report() {
    python3 - "$results" "$HUNT_DIR/hunt.json" "$BUDGET" "$OPS" "$RANDOM_CONFIGS" "$BASE_SEED" "$FEATURES" <<'PY'
import json, sys
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1]) if l.strip()]
keys = ['name', 'status', 'seconds', 'seeds', 'oracle', 'reduced_ops', 'first_failure', 'identical_replays']
out = [dict(zip(keys, r)) for r in rows]
json.dump({'budget_secs': int(sys.argv[3]), 'ops': int(sys.argv[4]), 'features': sys.argv[7],
           'random_configs': int(sys.argv[5]), 'base_seed': int(sys.argv[6]), 'bugs': out},
          open(sys.argv[2], 'w'), indent=1)
PY
}

[ "${SKIP_UNPATCHED:-0}" = 1 ] || hunt_one unpatched ""
for p in "${patches[@]}"; do
    hunt_one "$(basename "$p" .patch)" "$(realpath "$p")"
done
printf '%-52s %-9s %7s %5s %8s  %s\n' BUG STATUS SECS SEEDS REPLAYS ORACLE
while IFS=$'\t' read -r name status secs seeds oracle _reduced _line replays; do
    [ "$name" = unpatched ] && [ "$status" = escaped ] && status=passed
    printf '%-52s %-9s %7s %5s %8s  %s\n' "$name" "$status" "$secs" "$seeds" "${replays:--}" "$oracle"
done < "$results"
echo "wrote $HUNT_DIR/hunt.json"
# The unpatched tree must pass its budget.
if grep -q $'^unpatched\t' "$results" && ! grep -q $'^unpatched\tescaped\t' "$results"; then
    echo "the unpatched tree failed its budget" >&2
    exit 1
fi
# REQUIRE_DETECTED=1: every planted bug must be found, and every replay identical.
if [ "${REQUIRE_DETECTED:-0}" = 1 ]; then
    missed=$(awk -F'\t' -v r="$REPLAYS" '$1 != "unpatched" && ($2 != "detected" ||
        (r > 0 && $8 != r "/" r)) { print $1 }' "$results")
    if [ -n "$missed" ]; then
        echo "not detected, or not replayed identically: $missed" >&2
        exit 1
    fi
fi
