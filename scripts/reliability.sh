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
# Every test target that requires the feature (read from the manifests, so a new one runs too).
# --workspace: dependencies keep the features `cargo test --workspace` built them with, so only
# the crates with the feature are compiled again, with the fault seam.
mapfile -t fault_tests < <(cargo metadata --format-version 1 --no-deps --locked | python3 -c '
import json, sys
features = set()
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if "test" in t["kind"] and "fault-injection" in (t.get("required-features") or []):
            features.add(p["name"] + "/fault-injection")
            print("--test"); print(t["name"])
print("--features"); print(",".join(sorted(features)))')
[ ${#fault_tests[@]} -gt 2 ] || { echo "no fault-injection test targets found" >&2; exit 1; }
cargo test --workspace --locked "${fault_tests[@]}"
if [ "$all" = 1 ]; then
  echo "== crash loop: 30 SIGKILLs"
  scripts/crash-loop.sh 30
  echo "== fuzz checks on stable (property tests + seeds + regressions)"
  cargo test -p bpv-engine --locked --test fuzz_props
  echo "== concurrency: the app's engine with a watcher, bpv processes and an outside editor"
  cargo test -p bpv --locked --test concurrency
fi
echo "== cargo-fuzz: every target (\$BPV_FUZZ_SECS s each, default 10)"
scripts/fuzz.sh "${BPV_FUZZ_SECS:-10}"
