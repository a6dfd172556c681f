#!/usr/bin/env bash
# Import and export figures for docs/BENCHMARKS.md ("Import and export").
#   scripts/bench_transfer.sh [COUNT=10000] [WORKDIR=/tmp/bpv-transfer-bench] [RUNS=3]
# Builds release binaries, generates a corpus with bpv-bench, then times (wall clock,
# median of RUNS, each import into a fresh library):
#   dry run of the folder · import of the folder · export of everything to a bundle ·
#   dry run of the bundle · import of the bundle into an empty library.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
W=${2:-/tmp/bpv-transfer-bench}
RUNS=${3:-3}
cargo build --release --locked -p bpv -p bpv-bench >&2
BPV=$PWD/target/release/bpv
BENCH=$PWD/target/release/bpv-bench
rm -rf "$W"
mkdir -p "$W"
"$BENCH" corpus --out "$W/corpus" --count "$N" >&2
rm -f "$W/corpus/corpus.json"

fresh() { rm -rf "$W/$1" "$W/$1-data"; "$BPV" --library "$W/$1" --data-dir "$W/$1-data" init >/dev/null; }
bpv() { local lib=$1; shift; "$BPV" --json --library "$W/$lib" --data-dir "$W/$lib-data" "$@"; }
# seconds for one run of a command (stdout to $W/out.json)
secs() { local s e; s=$(date +%s%N); "$@" >"$W/out.json"; e=$(date +%s%N); echo "scale=3; ($e - $s) / 1000000000" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
count() { python3 -c "import json,sys; r=json.load(open('$W/out.json')); print(len(r['$1']))"; }

report() { # name seconds items
  printf '%-28s %8s s  %6s items  %8.0f items/s\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)"
}

# 1. The folder.
fresh L1
t=$(for _ in $(seq "$RUNS"); do secs bpv L1 import "$W/corpus" --dry-run; done | median)
report "dry run (10k-file folder)" "$t" "$(count imported)"
t=$(for _ in $(seq "$RUNS"); do fresh L1; secs bpv L1 import "$W/corpus"; done | median)
n=$(count imported)
report "import (10k-file folder)" "$t" "$n"
# 2. Export everything to one bundle.
t=$(for _ in $(seq "$RUNS"); do rm -f "$W/all.zip"; secs bpv L1 export --folder Blueprints/personal --to "$W/all.zip" --allow-secrets; done | median)
report "export (bundle)" "$t" "$(count exported)"
ls -l "$W/all.zip" | awk '{print "bundle bytes: " $5}'
# 3. The bundle into an empty library.
fresh L2
t=$(for _ in $(seq "$RUNS"); do secs bpv L2 import "$W/all.zip" --dry-run; done | median)
report "dry run (10k-entry bundle)" "$t" "$(count imported)"
t=$(for _ in $(seq "$RUNS"); do fresh L2; secs bpv L2 import "$W/all.zip"; done | median)
report "import (10k-entry bundle)" "$t" "$(count imported)"
# 4. Re-import: everything identical.
t=$(secs bpv L2 import "$W/all.zip")
report "re-import (all identical)" "$t" "$(count identical)"
