#!/usr/bin/env bash
# What encryption at rest and the keychain cost a `bpv` command, against the plain command
# measured in the same run (the baseline). Runs inside a fresh keyutils session keyring.
# Usage: scripts/bench-keychain.sh [N=100]   (release build of bpv)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100}"
cargo build --release --locked -q -p bpv
bpv="$PWD/target/release/bpv"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

keyctl session - bash -s "$bpv" "$work" "$n" <<'EOF'
set -euo pipefail
bpv="$1"; work="$2"; n="$3"
export BPV_LIBRARY="$work/lib" BPV_DATA_DIR="$work/data"
"$bpv" init >/dev/null
yaml="$work/in.yaml"
printf 'name: Bench\nnodes:\n  - id: a\n    type: http\n    parameters:\n      url: https://example.com/${secret:k}\n      prompt: %s\n' "$(head -c 3000 /dev/zero | tr '\0' x)" >"$yaml"
printf 'v' | "$bpv" --store keyutils creds set k
"$bpv" --store keyutils save Blueprints/personal/warm --encrypt --file "$yaml" >/dev/null
ms() { # ms per run of "$@"
  local start end
  start=$(date +%s%N)
  for i in $(seq "$n"); do "$@" >/dev/null; done
  end=$(date +%s%N)
  echo $(( (end - start) / n / 1000 ))
}
save_plain=$(ms "$bpv" save Blueprints/personal/plain --file "$yaml")
save_enc=$(ms "$bpv" --store keyutils save Blueprints/personal/enc --encrypt --file "$yaml")
show_plain=$(ms "$bpv" show Blueprints/personal/plain.blueprint.yaml)
show_enc=$(ms "$bpv" --store keyutils show Blueprints/personal/enc.blueprint.yaml)
get_cred=$(ms "$bpv" --store keyutils creds get k --reveal)
printf '| command (%s runs each, keyutils) | µs per run | vs plain |\n|---|---|---|\n' "$n"
printf '| `save` (plain, baseline) | %s | 1.00 |\n' "$save_plain"
printf '| `save --encrypt` | %s | %s |\n' "$save_enc" "$(awk "BEGIN{printf \"%.2f\", $save_enc/$save_plain}")"
printf '| `show` (plain, baseline) | %s | 1.00 |\n' "$show_plain"
printf '| `show` (encrypted) | %s | %s |\n' "$show_enc" "$(awk "BEGIN{printf \"%.2f\", $show_enc/$show_plain}")"
printf '| `creds get --reveal` | %s | %s (vs plain show) |\n' "$get_cred" "$(awk "BEGIN{printf \"%.2f\", $get_cred/$show_plain}")"
EOF
