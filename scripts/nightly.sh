#!/usr/bin/env bash
# Runs one shard of the nightly Tumbler search, exactly as a user would by hand.
#   DURATION  how long to search (default 10m: 30s, 10m, 2h, ...)
#   SHARD     K/N, this machine's share of the seeds (default 0/1)
#   OUT       output directory: summary.json, junit.xml, failures/ (default nightly-out)
#   OPS       ops per seed (default 1000); JOBS  seeds at once (default 1)
#   FEATURES  cargo features of the build: `shuttle` runs threaded configs under the seeded
#             model scheduler, so their failures replay; the default runs them on OS threads
#             (real timing, a stress mode whose threaded failures may not replay). Run shards
#             both ways.
#   SHUTTLE_RETRY  with the default build, also build a shuttle tumbler (target/shuttle) and
#             retry each threaded failure under it first, so a race the model scheduler
#             reproduces comes with a case that replays exactly (default 1; 0 skips it)
# Extra arguments go to `tumbler nightly` (e.g. --random-configs 4 --swarm).
# Exit code: 0 no failure, 1 failures found (see $OUT/summary.json), 2 usage or harness error.
set -euo pipefail
cd "$(dirname "$0")/.."
features=()
[ -z "${FEATURES:-}" ] || features=(--features "$FEATURES")
cargo build --release -p tumbler "${features[@]}"
retry=()
if [ -z "${FEATURES:-}" ] && [ "${SHUTTLE_RETRY:-1}" != 0 ]; then
  cargo build --release -p tumbler --features shuttle --target-dir target/shuttle
  retry=(--shuttle-bin target/shuttle/release/tumbler)
fi
exec target/release/tumbler nightly \
  --duration "${DURATION:-10m}" \
  --shard "${SHARD:-0/1}" \
  --ops "${OPS:-1000}" \
  --jobs "${JOBS:-1}" \
  --out "${OUT:-nightly-out}" \
  "${retry[@]}" \
  "$@"
