#!/usr/bin/env bash
# Installs the UI's npm packages (the versions in package-lock.json) when needed, and
# builds ui/dist. (`npm install --no-save` rather than `npm ci`: the lock file records
# only this platform's optional native packages, which `npm ci` refuses.)
set -euo pipefail
cd "$(dirname "$0")/../ui"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-save --no-audit --no-fund --loglevel=error
fi
npm run --silent build -- --logLevel warn
