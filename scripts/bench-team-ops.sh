#!/usr/bin/env bash
# Team-library maintenance figures on a local 3-node Garage cluster (docs/BENCHMARKS.md,
# "Team libraries: gc and migrate --to"): one garbage collection deleting 10k unreferenced
# contents among 10k referenced ones, and `migrate --to` of 10k blueprints to a folder
# (baseline: cp -r + sync) and to the cluster (baseline: one PUT at a time).
# Needs garage (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p bpv-sync --locked --test garage_ops bench_ -- --ignored --nocapture --test-threads 1 2>&1 |
  grep -E "gc: |migrate [0-9]+ to|test result"
