#!/usr/bin/env bash
# Crash loop: SIGKILL a child doing saves, batches, deletes, imports and backups at random
# moments N times, checking after each kill that every acknowledged write is whole, nothing
# is torn, no temp file looks like a blueprint, the index equals a fresh reindex and every
# backup snapshot verifies (crates/engine/tests/crash_loop.rs).
# Usage: scripts/crash-loop.sh [KILLS=30] [SEED]    e.g. scripts/crash-loop.sh 1000
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-30}"
seed="${2:-$(date +%s)}"
echo "crash loop: $kills kills, seed $seed (rerun the same sequence with: $0 $kills $seed)"
BPV_CRASH_KILLS="$kills" BPV_CRASH_SEED="$seed" \
  cargo test -p bpv-engine --locked --test crash_loop -- --exact acknowledged_writes_survive_sigkill_at_random_moments --nocapture
