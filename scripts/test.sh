#!/usr/bin/env bash
# Runs every test of Blueprint Vault, installing what it needs first, and prints how long
# each stage took. In CI (`CI` set) a suite that cannot run fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/stages.sh
mkdir -p target/ci-logs

stage "setup" scripts/setup.sh --test --no-garage
# Garage (a source build, minutes, once per machine) builds in the background while the UI is
# installed and built; the Rust test stages wait for it.
scripts/setup.sh --garage >target/ci-logs/garage-install.log 2>&1 &
garage_install=$!
wait_for_garage() {
  if ! wait "$garage_install"; then
    cat target/ci-logs/garage-install.log >&2
    return 1
  fi
}

stage "ui: install, format, lint, types, tests, build" \
  bash -c 'scripts/build-ui.sh && cd ui && npm run --silent lint && npm run --silent check && npm test --silent'
stage "format" cargo fmt --all -- --check
# The fault-injection feature too, so the tests that require it are linted.
stage "lint" cargo clippy --workspace --all-targets --locked --features bpv-engine/fault-injection,bpv/fault-injection -- -D warnings
stage "build: tests and binaries" cargo test --workspace --locked --no-run
stage "garage (background install)" wait_for_garage
stage "tests" cargo test --workspace --locked
stage "reliability: faults, cargo-fuzz" scripts/reliability.sh --skip-workspace-tests
stage "keychain: real stores" scripts/keychain-tests.sh
stage "desktop app end-to-end" scripts/e2e.sh
stage "benchmark smoke run" scripts/bench.sh --smoke
