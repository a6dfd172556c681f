#!/usr/bin/env bash
# Benchmarks on generated corpora (see docs/BENCHMARKS.md).
#   scripts/bench.sh            10k and 100k corpora, release build, full runs
#   scripts/bench.sh 25000      one corpus of that size
#   scripts/bench.sh --smoke    a 2k corpus with few iterations (CI: the runner's checks must pass)
set -euo pipefail
cd "$(dirname "$0")/.."

WORK="${BPV_BENCH_DIR:-${TMPDIR:-/tmp}/bpv-bench}"
mkdir -p "$WORK"

if [ "${1:-}" = "--smoke" ]; then
  cargo build --locked --workspace --bins  # --workspace: reuses what the tests built
  BIN=target/debug
  rm -rf "$WORK/smoke"
  "$BIN/bpv-bench" corpus --out "$WORK/smoke/corpus" --count 2000 --seed 7
  "$BIN/bpv-bench" run --corpus "$WORK/smoke/corpus" --data-dir "$WORK/smoke/data" --bpv "$BIN/bpv" \
    --queries 20 --process-runs 3 --saves 20 --rg-runs 2 --out "$WORK/smoke/report.json"
  exit 0
fi

scripts/setup.sh --test --no-garage  # ripgrep and zstd, the baselines
cargo build --release --locked -p bpv -p bpv-bench
BIN=target/release
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10000 100000)
for n in "${counts[@]}"; do
  dir="$WORK/$n"
  if [ ! -f "$dir/corpus/corpus.json" ]; then
    rm -rf "$dir"
    "$BIN/bpv-bench" corpus --out "$dir/corpus" --count "$n" --seed 1
  fi
  rm -rf "$dir/data"
  "$BIN/bpv-bench" run --corpus "$dir/corpus" --data-dir "$dir/data" --bpv "$BIN/bpv" --out "$dir/report.json"
done
