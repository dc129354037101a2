#!/usr/bin/env bash
# Builds RocksDB from source once and keeps `librocksdb.a` outside the repository, so the
# bench relinks it through ROCKSDB_LIB_DIR instead of compiling RocksDB on every clean build.
#
# The source is the release the bench's `rocksdb` crate binds (librocksdb-sys 0.11.0 bundles
# RocksDB 8.1.1), compiled by that crate's build script in release mode (-O3, NDEBUG: no
# assertions, unlike Debian's librocksdb-dev), with LZ4. About 20-40 minutes on 2 cores; needs
# a C++ compiler and libclang (Debian: `apt-get install -y g++ libclang-dev`).
#
#   scripts/bench/build-rocksdb.sh [DIR]    # default DIR: ~/.cache/cobble-bench/rocksdb-8.1.1
#
# Then, in scripts/bench (the two variables it prints):
#   ROCKSDB_LIB_DIR=DIR ROCKSDB_STATIC=1 cargo run --release --features rocksdb -- ...
set -euo pipefail
cd "$(dirname "$0")"
dest=${1:-$HOME/.cache/cobble-bench/rocksdb-8.1.1}
mkdir -p "$dest"
if [ ! -f "$dest/librocksdb.a" ]; then
  # Unset, so librocksdb-sys compiles its bundled source instead of linking a library.
  env -u ROCKSDB_LIB_DIR -u ROCKSDB_STATIC \
    cargo build --release --features rocksdb --target-dir "$dest/build"
  lib=$(find "$dest/build/release/build" -name librocksdb.a -print -quit)
  [ -n "$lib" ] || { echo "no librocksdb.a under $dest/build" >&2; exit 1; }
  cp "$lib" "$dest/librocksdb.a"
  rm -rf "$dest/build"
fi
echo "ROCKSDB_LIB_DIR=$dest ROCKSDB_STATIC=1"
