#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (or the ones named) for SECONDS each (default 30).
# Needs the nightly toolchain and cargo-fuzz (`scripts/setup.sh --test` installs both); without
# them it fails, since a fuzz run that did not happen must never look like one that passed.
# A crash is saved under fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/
# so `cargo test -p bpv-engine --test fuzz_props` replays it from then on.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
shift || true
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: FAILED: no nightly toolchain (scripts/setup.sh --test installs it)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: FAILED: cargo-fuzz is missing (scripts/setup.sh --test installs it)" >&2
  exit 1
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: FAILED: no fuzz targets found in fuzz/" >&2; exit 1; }
# One build for every target; no sanitizer: the code under test is safe Rust, so a panic,
# an abort, a timeout or an out-of-memory is what a run can find, and the build is minutes
# shorter. Debug assertions stay on.
(cd fuzz && cargo +nightly fuzz build --sanitizer none --debug-assertions)
for t in "${targets[@]}"; do
  echo "== fuzz $t (${secs}s)"
  # A scratch copy of the seeds: new inputs the fuzzer finds are not committed by accident.
  work="fuzz/target/corpus-$t"
  mkdir -p "$work"
  for seed in fuzz/corpus/"$t"/*; do
    if [ -f "$seed" ] && [ ! -e "$work/${seed##*/}" ]; then cp "$seed" "$work/"; fi
  done
  (cd fuzz && cargo +nightly fuzz run --sanitizer none --debug-assertions "$t" "../$work" -- \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 60)
done
