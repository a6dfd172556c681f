#!/usr/bin/env bash
# Short runs of the reliability suites, for CI (scripts/test.sh). Long runs on demand:
# scripts/crash-loop.sh 1000, scripts/fuzz.sh 600. See docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== fault injection: every file operation failed (EIO, ENOSPC) and cut by a power loss"
cargo test -p bpv-engine --locked --features fault-injection --test faults
echo "== crash loop: 30 SIGKILLs"
scripts/crash-loop.sh 30
echo "== fuzz checks on stable (property tests + seeds + regressions)"
cargo test -p bpv-engine --locked --test fuzz_props
echo "== concurrency: the app's engine with a watcher, bpv processes and an outside editor"
cargo test -p bpv --locked --test concurrency
echo "== cargo-fuzz, 10 s per new target (only where nightly + cargo-fuzz exist)"
scripts/fuzz.sh 10 key_new blueprint_parse companion_parse backup_manifest
