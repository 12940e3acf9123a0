#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer coverage instrumentation (on stable
# Rust, the same flags cargo-fuzz passes) and runs each for SECONDS seconds.
#   fuzz/run.sh [SECONDS]        default 10; 0 only builds
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-10}
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-target}
# An explicit --target keeps RUSTFLAGS off build scripts, as cargo-fuzz does.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --bins --target "$host"
[ "$seconds" = 0 ] && exit 0
for t in decode_chunk decode_matrix decode_meta prefix_key snapshot token_file; do
  mkdir -p "corpus/$t"
  "$CARGO_TARGET_DIR/$host/release/$t" "corpus/$t" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024 2>&1 | tail -n 2
done
