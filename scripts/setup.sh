#!/usr/bin/env bash
# Installs what building and testing Blueprint Vault needs on a fresh Debian machine.
# Idempotent: only missing packages are installed, and apt is updated at most once.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  build-essential pkg-config ripgrep zstd
  # the desktop app (Tauri 2 on WebKitGTK)
  libwebkit2gtk-4.1-dev libssl-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev
  # its end-to-end tests and screenshots (WebKitWebDriver, a virtual display, a D-Bus session)
  xvfb xauth webkit2gtk-driver dbus dbus-x11 at-spi2-core imagemagick
  # credentials: the real stores the keychain tests run against, libdbus for the Secret Service client
  gnome-keyring keyutils libdbus-1-dev
)
# The UI is built with Node.js and npm (the machine's own when present).
if ! command -v npm >/dev/null 2>&1; then APT_PACKAGES+=(nodejs npm); fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: Rust (cargo) is required: install it with rustup (https://rustup.rs) and rerun" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

# tauri-driver: the WebDriver bridge for the app's end-to-end tests (scripts/e2e.sh).
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  echo "setup: installing tauri-driver"
  cargo install --quiet --locked tauri-driver --version "^2"
fi

# Garage: the S3-compatible distributed store the team-library tests run a 3-node
# cluster of (scripts/garage-cluster.sh). A source build, ~8-15 min once per machine.
if ! command -v garage >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/garage" ]; then
  echo "setup: installing garage 2.5.0 (once; several minutes)"
  cargo install --quiet --locked garage --version 2.5.0
fi
