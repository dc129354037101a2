#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 30) on nightly with cargo-fuzz, installing
# cargo-fuzz if it is missing. Seeds come from fuzz/corpus/<target>/ (read only); what
# libFuzzer learns goes to fuzz/target/corpus/<target>/ (ignored by git). A crash stops the
# run; its reproducer is in fuzz/artifacts/<target>/ (see fuzz/README.md).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail

seconds="${1:-30}"
shift || true
cd "$(dirname "$0")/../fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds}s"
  mkdir -p "target/corpus/$target"
  cargo +nightly fuzz run "$target" "target/corpus/$target" "corpus/$target" -- \
    -max_total_time="$seconds"
done
