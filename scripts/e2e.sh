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
# --workspace everywhere: the same features as `cargo test --workspace`, so what that built is
# reused (a `-p` build resolves features for that package alone and compiles much again).
if [ "$APP_PROFILE" = release ]; then
  cargo build --release --locked -p blueprint-vault
else
  cargo build --locked --workspace --bins
fi
# The end-to-end test programs: every test target of bpv-e2e (read from cargo's build
# output, so a new test file runs without being listed here).
mapfile -t E2E_BINS < <(cargo test --locked --workspace --no-run --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "test" in m["target"]["kind"] \
            and m["manifest_path"].endswith("/crates/e2e/Cargo.toml"):
        print(m["executable"])')
[ ${#E2E_BINS[@]} -gt 0 ] || { echo "e2e: no end-to-end test programs were built" >&2; exit 1; }
# Every end-to-end test runs (they are #[ignore]d only so that `cargo test` leaves them to
# this script); the benchmark is the one left out, and the only one run with --bench.
FILTER=(--skip app_figures)
if [ "${1:-}" = "--bench" ]; then
  FILTER=(app_figures --exact)
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
      # The tests assert the app stores credentials there, so a daemon that fails to start fails.
      printf e2e-keyring | gnome-keyring-daemon --unlock --components=secrets >/dev/null
      exec xvfb-run -a -s "-screen 0 1280x800x24" "$@"' gui "$@"
}
failed=()
for bin in "${E2E_BINS[@]}"; do
  name=$(basename "$bin")
  echo "== e2e: ${name%-*}"
  gui "$bin" --ignored --nocapture --test-threads=1 "${FILTER[@]}" || failed+=("${name%-*}")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "e2e: FAILED: ${failed[*]}" >&2
  exit 1
fi
