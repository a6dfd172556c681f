#!/usr/bin/env bash
# Run every cargo-fuzz target in fuzz/ for SECONDS each (default 30). Needs a nightly
# toolchain and cargo-fuzz; without them it says so and exits 0 (the same checks run on
# stable as property tests: crates/engine/tests/fuzz_props.rs, tests/transfer.rs).
# A crash is saved under fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/
# so `cargo test -p bpv-engine --test fuzz_props` replays it from then on.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
shift || true
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly' || ! cargo fuzz --help >/dev/null 2>&1; then
  echo "fuzz: skipped (needs a nightly toolchain and cargo-fuzz; the stable property tests cover the same checks)"
  exit 0
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
for t in "${targets[@]}"; do
  echo "== fuzz $t (${secs}s)"
  # A scratch copy of the seeds: new inputs the fuzzer finds are not committed by accident.
  work="fuzz/target/corpus-$t"
  mkdir -p "$work"
  cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  (cd fuzz && cargo +nightly fuzz run "$t" "../$work" -- -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048)
done
