#!/usr/bin/env bash
# `bpv creds list` at N blueprints: every 20th blueprint of a generated corpus references a
# credential (`${secret:svc-K}`), 50 of them are encrypted; 20 credentials are stored (the
# passphrase file store). Each figure is the median of R runs; the baseline measured in the
# same run is `rg -l` over the library (what reading every blueprint costs at the least).
# Usage: scripts/bench-creds-list.sh N [R=5] [BPV_BINARY…]   (default binary: target/release/bpv)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:?usage: bench-creds-list.sh N [runs] [bpv…]}"
runs="${2:-5}"
shift $(( $# >= 2 ? 2 : 1 ))
bins=("$@")
if [ "${#bins[@]}" -eq 0 ]; then
  cargo build --release --locked -q -p bpv -p bpv-bench
  bins=("$PWD/target/release/bpv")
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
target/release/bpv-bench corpus --out "$work/lib" --count "$n" >/dev/null
# References in every 20th blueprint (a comment line: references count wherever they are).
find "$work/lib" -name '*.blueprint.yaml' | sort | awk 'NR % 20 == 0' >"$work/uses"
awk '{ printf "%s\t%d\n", $0, NR % 25 }' "$work/uses" | while IFS=$'\t' read -r f k; do
  printf '# api key: ${secret:svc-%s}\n' "$k" >>"$f"
done
export BPV_CREDENTIAL_STORE=file BPV_CREDENTIALS_PASSPHRASE="bench passphrase 1234"

median_ms() { # median wall time in ms of R runs of "$@"
  for _ in $(seq "$runs"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
    echo $(( (e - s) / 1000000 ))
  done | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

printf '| N | binary | `creds list` ms (median of %s) | `rg -l` baseline ms | ratio |\n|---|---|---|---|---|\n' "$runs"
for bin in "${bins[@]}"; do
  data="$work/data-$(basename "$bin")"
  lib=(--library "$work/lib" --data-dir "$data")
  "$bin" "${lib[@]}" reindex >/dev/null
  for k in $(seq 0 19); do printf 'v%s' "$k" | "$bin" "${lib[@]}" creds set "svc-$k"; done
  # 50 of the referencing blueprints encrypted (re-saved sealed: their content leaves the index).
  head -50 "$work/uses" | while read -r f; do
    rel="${f#"$work/lib/"}"
    "$bin" "${lib[@]}" show "$rel" >"$work/plain.yaml" 2>/dev/null || continue
    "$bin" "${lib[@]}" save "$rel" --encrypt --file "$work/plain.yaml" >/dev/null 2>&1 || true
  done
  "$bin" "${lib[@]}" creds list >/dev/null # warm the page cache and the index
  list=$(median_ms "$bin" "${lib[@]}" creds list)
  base=$(median_ms rg -l --no-messages '\$\{secret:' "$work/lib")
  printf '| %s | %s | %s | %s | %s |\n' "$n" "$bin" "$list" "$base" "$(awk "BEGIN{printf \"%.2f\", $list/($base>0?$base:1)}")"
  rm -rf "$data"
done
