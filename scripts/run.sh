#!/usr/bin/env bash
# Builds and runs Blueprint Vault on the default library (or the one in $BPV_LIBRARY).
# With arguments, runs `bpv ARGS…`; without, prepares the library and lists it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --locked -p bpv
BPV="$PWD/target/release/bpv"
if [ $# -gt 0 ]; then
  exec "$BPV" "$@"
fi
"$BPV" init
"$BPV" info
"$BPV" list
echo
echo "Try: $BPV search WORD · $BPV save Blueprints/personal/NAME --file FILE.yaml · $BPV --help"
