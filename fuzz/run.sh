#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer coverage instrumentation (on stable
# Rust, the same flags cargo-fuzz passes) and runs each for SECONDS seconds.
#   fuzz/run.sh [SECONDS [TARGET...]]   default 10 s, every target; 0 only builds
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
# A crash stops the script (libFuzzer exits non-zero and saves the input);
# otherwise one summary line per target: executions, seconds, corpus size.
summary=""
targets=("${@:2}")
[ ${#targets[@]} -gt 0 ] || targets=(decode_chunk decode_matrix decode_meta prefix_key snapshot token_file)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="$CARGO_TARGET_DIR/fuzz-$t.log"
  if ! "$CARGO_TARGET_DIR/$host/release/$t" "corpus/$t" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024 >"$log" 2>&1; then
    tail -n 40 "$log"
    exit 1
  fi
  tail -n 2 "$log"
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 executions in \2 s/p' "$log")
  summary+="$t: ${runs:-?}, 0 crashes, corpus $(ls "corpus/$t" | wc -l) inputs"$'\n'
done
printf '%s' "$summary"
