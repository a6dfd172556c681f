#!/usr/bin/env bash
# Short runs of the reliability suites (docs/RELIABILITY.md). Long runs on demand:
# scripts/crash-loop.sh 1000, scripts/fuzz.sh 600.
# Usage: scripts/reliability.sh [--skip-workspace-tests]
#   --skip-workspace-tests: leave out the suites `cargo test --workspace` already ran
#   (crash loop, fuzz property tests, concurrency), as scripts/test.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
all=1
[ "${1:-}" = "--skip-workspace-tests" ] && all=0
echo "== fault injection: every file operation failed (EIO, ENOSPC, fsync) and cut by a power loss"
cargo test -p bpv-engine --locked --features fault-injection --test faults
cargo test -p bpv-engine --locked --features fault-injection --test faults_more
if [ "$all" = 1 ]; then
  echo "== crash loop: 30 SIGKILLs"
  scripts/crash-loop.sh 30
  echo "== fuzz checks on stable (property tests + seeds + regressions)"
  cargo test -p bpv-engine --locked --test fuzz_props
  echo "== concurrency: the app's engine with a watcher, bpv processes and an outside editor"
  cargo test -p bpv --locked --test concurrency
fi
echo "== cargo-fuzz, 5 s per target added by issue 8 (only where nightly + cargo-fuzz exist)"
scripts/fuzz.sh 5 key_new blueprint_parse companion_parse backup_manifest
