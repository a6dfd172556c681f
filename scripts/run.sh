#!/usr/bin/env bash
# Without arguments: builds and starts the Blueprint Vault desktop app on the default
# library (<Documents>/Blueprint Vault, created on first start; $BPV_LIBRARY overrides).
# With arguments: runs `bpv ARGS…` (the command-line interface) on the same library.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [ $# -gt 0 ]; then
  cargo build --release --locked -p bpv
  exec "$TARGET_DIR/release/bpv" "$@"
fi
scripts/build-ui.sh
# A release build: the engine optimised (a debug build indexes a large library several times slower).
cargo build --release --locked -p blueprint-vault
exec "$TARGET_DIR/release/blueprint-vault"
