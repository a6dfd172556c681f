#!/usr/bin/env bash
# `bpv creds list` at N blueprints: every 20th blueprint of a generated corpus references a
# credential (`${secret:svc-K}`), 50 of them are encrypted; 20 credentials are stored, in
# the kernel keyutils store (inside `keyctl session -`: no passphrase KDF in the figures).
# Runs of every binary are interleaved (this machine is shared and noisy); each figure is a
# median of R runs. Baselines measured in the same runs: `bpv info` (opening the library:
# the part of every command that `creds list` cannot avoid) and `rg -l` over the library
# (reading every blueprint at the least).
# Usage: scripts/bench-creds-list.sh N [R=7] [BPV_BINARY…]   (default binary: target/release/bpv)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:?usage: bench-creds-list.sh N [runs] [bpv…]}"
runs="${2:-7}"
shift $(( $# >= 2 ? 2 : 1 ))
bins=("$@")
if [ "${#bins[@]}" -eq 0 ]; then
  cargo build --release --locked -q -p bpv -p bpv-bench
  bins=("$PWD/target/release/bpv")
fi
bench="${BPV_BENCH_BIN:-$PWD/target/release/bpv-bench}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bench" corpus --out "$work/lib" --count "$n" >/dev/null
# References in every 20th blueprint (a comment line: references count wherever they are).
find "$work/lib" -name '*.blueprint.yaml' | sort | awk 'NR % 20 == 0' >"$work/uses"
awk '{ printf "%s\t%d\n", $0, NR % 25 }' "$work/uses" | while IFS=$'\t' read -r f k; do
  printf '# api key: ${secret:svc-%s}\n' "$k" >>"$f"
done

keyctl session - bash -s "$work" "$runs" "$n" "${bins[@]}" <<'EOF2'
set -euo pipefail
work="$1"; runs="$2"; n="$3"; shift 3
export BPV_CREDENTIAL_STORE=keyutils
i=0
for bin in "$@"; do
  i=$((i + 1))
  lib=(--library "$work/lib" --data-dir "$work/data-$i")
  "$bin" "${lib[@]}" reindex >/dev/null
  for k in $(seq 0 19); do printf 'v%s' "$k" | "$bin" "${lib[@]}" creds set "svc-$k" >/dev/null; done
  # 50 of the referencing blueprints encrypted (the same content, sealed).
  head -50 "$work/uses" | while read -r f; do
    rel="${f#"$work/lib/"}"
    "$bin" "${lib[@]}" save "$rel" --encrypt --file "$f" >/dev/null 2>&1 || true
  done
  "$bin" "${lib[@]}" creds list >/dev/null # warm
done
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
: >"$work/times"
for r in $(seq "$runs"); do
  i=0
  for bin in "$@"; do
    i=$((i + 1))
    lib=(--library "$work/lib" --data-dir "$work/data-$i")
    echo "list $i $(ms "$bin" "${lib[@]}" creds list)" >>"$work/times"
    echo "info $i $(ms "$bin" "${lib[@]}" info)" >>"$work/times"
  done
  echo "rg 0 $(ms rg -l --no-messages '\$\{secret:' "$work/lib")" >>"$work/times"
done
rg_ms=$(awk '$1 == "rg" { print $3 }' "$work/times" | median)
printf '| N | binary | `creds list` ms | `info` ms (baseline) | list / info | `rg -l` ms (baseline) | list / rg |\n|---|---|---|---|---|---|---|\n'
i=0
for bin in "$@"; do
  i=$((i + 1))
  list=$(awk -v i="$i" '$1 == "list" && $2 == i { print $3 }' "$work/times" | median)
  info=$(awk -v i="$i" '$1 == "info" && $2 == i { print $3 }' "$work/times" | median)
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$bin" "$list" "$info" \
    "$(awk "BEGIN{printf \"%.2f\", $list/($info>0?$info:1)}")" "$rg_ms" "$(awk "BEGIN{printf \"%.2f\", $list/($rg_ms>0?$rg_ms:1)}")"
done
EOF2
