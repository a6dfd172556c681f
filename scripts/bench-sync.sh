#!/usr/bin/env bash
# Team-library figures on a local 3-node Garage cluster (docs/BENCHMARKS.md, "Team libraries"):
# 10k-blueprint initial push and pull (verified byte for byte), one change end to end, and
# what an idle linked library costs. Needs garage (scripts/setup.sh installs it).
#   scripts/bench-sync.sh            the 10k run (and the 1k one)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p bpv-sync --locked --test garage migration -- --include-ignored --nocapture --test-threads 1 2>&1 |
  grep -E "blueprints:|test result"
