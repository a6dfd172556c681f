#!/usr/bin/env bash
# Runs every test of Blueprint Vault, installing what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== format"
cargo fmt --all -- --check
echo "== lint"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
cargo test --workspace --locked
echo "== benchmark smoke run (small corpus; full figures: docs/BENCHMARKS.md)"
scripts/bench.sh --smoke
