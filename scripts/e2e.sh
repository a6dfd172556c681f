#!/usr/bin/env bash
# End-to-end tests of the real desktop app: builds the UI and the app (debug, once),
# then drives it through tauri-driver + WebKitWebDriver under Xvfb, inside its own
# D-Bus session, with HOME and XDG dirs in a temporary folder. Screenshots go to
# target/e2e-artifacts/.
#   scripts/e2e.sh            the end-to-end suite
#   scripts/e2e.sh --bench    the app figures for docs/BENCHMARKS.md, from the release app
#                             (BPV_E2E_BENCH_COUNTS=10000,100000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Tests drive the debug app; figures come from the release app (what scripts/run.sh starts).
APP_PROFILE=debug
[ "${1:-}" = "--bench" ] && APP_PROFILE=release
export BPV_APP_BIN="${BPV_APP_BIN:-$TARGET_DIR/$APP_PROFILE/blueprint-vault}"
export BPV_E2E_ARTIFACTS="${BPV_E2E_ARTIFACTS:-$PWD/target/e2e-artifacts}"
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p "$BPV_E2E_ARTIFACTS"

if [ ! -f ui/dist/index.html ] || ! grep -q 'assets/' ui/dist/index.html; then
  scripts/build-ui.sh
fi
if [ "$APP_PROFILE" = release ]; then
  cargo build --release --locked -p blueprint-vault
else
  cargo build --locked -p blueprint-vault
fi
cargo test --locked -p bpv-e2e --no-run

# Test-name filters (any match runs): the browse flow, import (issue 5), backup/restore (issue 6).
TEST="browse_search_edit_delete import_dropped_folder backup_delete_restore"
if [ "${1:-}" = "--bench" ]; then
  TEST=app_figures
  export BPV_E2E_BENCH_COUNTS="${BPV_E2E_BENCH_COUNTS:-10000,100000}"
fi

# Isolate the GUI session: its own D-Bus and X server; GTK's helper daemons die with it.
HOME_TMP="$(mktemp -d)"
# The cleanup must never turn a passing run into a failure (under set -e a failed
# fusermount, e.g. when no document portal was mounted, would exit 1 from the trap).
cleanup() {
  fusermount -u "$HOME_TMP/doc" 2>/dev/null || true
  rm -rf "$HOME_TMP" 2>/dev/null || true
}
trap cleanup EXIT
# Run a command in the isolated GUI session.
gui() {
  env HOME="$HOME_TMP" XDG_RUNTIME_DIR="$HOME_TMP" NO_AT_BRIDGE=1 CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" \
    RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
    dbus-run-session -- bash -c '
      # A desktop session has an unlocked keychain: gnome-keyring'"'"'s Secret Service,
      # with a throwaway password (its keyring file lives in the temp HOME).
      printf e2e-keyring | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1 || true
      exec xvfb-run -a -s "-screen 0 1280x800x24" "$@"' gui "$@"
}
gui cargo test --locked -p bpv-e2e --test app -- --ignored --nocapture --test-threads=1 $TEST
if [ "${1:-}" != "--bench" ]; then
  # The open blueprint following outside edits, deletes and version restores; credentials
  # in the keychain and encryption at rest.
  gui cargo test --locked -p bpv-e2e --test live -- --ignored --nocapture --test-threads=1
  # Team library sync against a real 3-node Garage cluster (the other member uses bpv).
  cargo build --locked -p bpv && gui cargo test --locked -p bpv-e2e --test team -- --ignored --nocapture --test-threads=1
fi
