#!/usr/bin/env bash
# Runs the loom models (engine/tests/loom.rs) exhaustively up to a preemption bound.
# Usage: scripts/loom.sh [extra cargo test args, e.g. a test name]
# Its own target dir, so the `--cfg loom` build does not invalidate the normal one.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/loom}"
exec cargo test -p cobble --release --test loom -- --test-threads=1 "$@"
