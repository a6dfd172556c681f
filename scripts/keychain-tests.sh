#!/usr/bin/env bash
# Runs the credential and encryption tests against each REAL store:
#   file            the passphrase-protected file (works anywhere)
#   keyutils        inside a fresh session keyring (`keyctl session -`): keyutils never holds a
#                   library's secrets (it forgets them at reboot), so this runs the file store
#                   there, and the reboot tests (crates/cli/tests/reboot.rs: a new session
#                   keyring per run, no Secret Service)
#   secret-service  gnome-keyring's Secret Service, inside a private D-Bus session, unlocked
#                   with a throwaway password; HOME and XDG_* point at a temp dir so the
#                   keyring file is a test one (and is scanned for plain text by the tests).
# Usage: scripts/keychain-tests.sh [cargo test filter…]
set -euo pipefail
cd "$(dirname "$0")/.."

# --workspace: the features `cargo test --workspace` built with, so nothing is compiled again.
tests=(--workspace --test keychain --test keychain_cli)
cargo test --locked "${tests[@]}" --no-run

for store in file keyutils secret-service; do
  echo "== keychain tests: $store"
  case "$store" in
    file)
      BPV_TEST_STORE=file cargo test --locked -q "${tests[@]}" -- "$@"
      ;;
    keyutils)
      keyctl session - env BPV_TEST_STORE=file cargo test --locked -q "${tests[@]}" -- "$@"
      env -u DBUS_SESSION_BUS_ADDRESS cargo test --locked -q --workspace --test reboot -- "$@"
      ;;
    secret-service)
      # cargo and rustup must still be found once HOME moves.
      export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
      home="$(mktemp -d)"
      trap 'rm -rf "$home"' EXIT
      mkdir -p "$home/run" && chmod 700 "$home/run"
      HOME="$home" XDG_RUNTIME_DIR="$home/run" XDG_DATA_HOME="$home/.local/share" \
        XDG_CONFIG_HOME="$home/.config" XDG_CACHE_HOME="$home/.cache" TMPDIR="$home" \
        dbus-run-session -- bash -c '
          set -euo pipefail
          # The daemon prints its environment; the password unlocks a new login keyring.
          printf "test-keyring-password" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
          BPV_TEST_STORE=secret-service BPV_TEST_SCAN_HOME=1 cargo test --locked -q "$@"
        ' keychain-tests "${tests[@]}" -- "$@"
      ;;
  esac
done
