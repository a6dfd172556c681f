# Timed stages for the test scripts: `stage NAME CMD...` runs CMD, records how long it took
# and whether it passed; the table of every stage is printed when the script exits (also
# when a stage fails, so a failed CI run still says where its time went).
# Source it: `source scripts/lib/stages.sh`.

_stage_rows=()
_stage_start_all=$SECONDS

stage() {
  local name=$1
  shift
  local t0=$SECONDS
  echo "== $name"
  local rc=0
  "$@" || rc=$?
  local took=$((SECONDS - t0))
  _stage_rows+=("$(printf '%-48s %5ds  %s' "$name" "$took" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")")")
  return $rc
}

_stage_summary() {
  local rc=$?
  echo
  echo "== stage durations"
  local row
  for row in "${_stage_rows[@]}"; do echo "  $row"; done
  printf '  %-48s %5ds  %s\n' "total" "$((SECONDS - _stage_start_all))" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")"
}
trap _stage_summary EXIT

# In CI (`CI` set) a check that cannot run is a failure, never a skip.
require_or_fail() {
  local what=$1 reason=$2
  if [ -n "${CI:-}" ]; then
    echo "FAILED: $what cannot run: $reason (CI is set, so this fails the run)" >&2
    exit 1
  fi
  echo "NOT RUN: $what: $reason (outside CI; this run is incomplete)" >&2
}
