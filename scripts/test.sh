#!/usr/bin/env bash
# Runs every test of Blueprint Vault, installing what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== ui: install, format, lint, types, component tests, build"
scripts/build-ui.sh
(cd ui && npm run --silent lint && npm run --silent check && npm test --silent)
echo "== format"
cargo fmt --all -- --check
echo "== lint"
# The fault-injection feature too, so tests/faults.rs (required-features) is linted.
cargo clippy --workspace --all-targets --locked --features bpv-engine/fault-injection -- -D warnings
echo "== tests"
cargo test --workspace --locked
echo "== reliability: fault injection, short cargo-fuzz runs (crash loop, concurrency: above)"
scripts/reliability.sh --skip-workspace-tests
echo "== keychain: credentials and encryption against real stores (Secret Service, keyutils, passphrase file)"
scripts/keychain-tests.sh
echo "== desktop app end-to-end (real app under Xvfb; screenshots in target/e2e-artifacts)"
scripts/e2e.sh
echo "== benchmark smoke run (small corpus; full figures: docs/BENCHMARKS.md)"
scripts/bench.sh --smoke
