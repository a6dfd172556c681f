#!/usr/bin/env bash
# Installs the UI's npm packages (the versions in package-lock.json) when needed, and
# builds ui/dist. (`npm install --no-save` rather than `npm ci`: the lock file records
# only this platform's optional native packages, which `npm ci` refuses.)
set -euo pipefail
cd "$(dirname "$0")/../ui"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-save --no-audit --no-fund --loglevel=error
fi
before="$(sha256sum dist/index.html 2>/dev/null || true)"
npm run --silent build -- --logLevel warn
# The app embeds ui/dist through a proc macro, whose expansion incremental builds can
# reuse even though the build script saw dist change: touch the file that expands it
# when the UI really changed (index.html names the content-hashed assets).
if [ "$before" != "$(sha256sum dist/index.html)" ]; then
  touch ../src-tauri/src/main.rs
fi
