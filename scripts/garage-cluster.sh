#!/usr/bin/env bash
# A 3-node Garage cluster on loopback for the team-library tests and benchmarks.
#
#   scripts/garage-cluster.sh start DIR      start 3 nodes (configs, data, logs in DIR), wait
#                                            until healthy, create bucket `team` and a key;
#                                            writes DIR/cluster.env (ENDPOINTS, BUCKET, keys)
#   scripts/garage-cluster.sh stop DIR       stop every node
#   scripts/garage-cluster.sh kill DIR N     kill node N (1-3) hard (SIGKILL)
#   scripts/garage-cluster.sh restart DIR N  start node N again and wait until it answers
#
# Garage: $GARAGE_BIN, else `garage` on PATH, else ~/.cargo/bin/garage (scripts/setup.sh
# installs it). Ports: a random base per cluster, so clusters can run side by side.
set -euo pipefail

cmd=${1:?usage: garage-cluster.sh start|stop|kill|restart DIR [N]}
dir=${2:?usage: garage-cluster.sh start|stop|kill|restart DIR [N]}
GARAGE=${GARAGE_BIN:-$(command -v garage || echo "$HOME/.cargo/bin/garage")}
[ -x "$GARAGE" ] || { echo "garage not found (run scripts/setup.sh, or set GARAGE_BIN)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

g() { "$GARAGE" -c "$dir/n$1.toml" "${@:2}"; }

start_node() {
  local i=$1
  RUST_LOG=${GARAGE_LOG:-warn} setsid "$GARAGE" -c "$dir/n$i.toml" server >>"$dir/n$i.log" 2>&1 < /dev/null &
  echo $! >"$dir/n$i.pid"
}

wait_node() {
  local i=$1
  for _ in $(seq 1 100); do
    if g "$i" status >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "node $i did not come up; log:" >&2
  tail -20 "$dir/n$i.log" >&2
  return 1
}

stop_node() {
  local i=$1 sig=${2:-TERM}
  if [ -f "$dir/n$i.pid" ]; then
    local pid
    pid=$(cat "$dir/n$i.pid")
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/n$i.pid"
  fi
}

launch() {
  # Ports below Linux's ephemeral range (32768+), so no outgoing connection holds one.
  base=$((20000 + (RANDOM % 1200) * 10))
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  endpoints=()
  for i in 1 2 3; do
    p=$((base + i * 3))
    mkdir -p "$dir/n$i/meta" "$dir/n$i/data"
    cat >"$dir/n$i.toml" <<TOML
metadata_dir = "$dir/n$i/meta"
data_dir = "$dir/n$i/data"
db_engine = "lmdb"
metadata_fsync = false
data_fsync = false
replication_factor = 3
rpc_bind_addr = "127.0.0.1:$p"
rpc_public_addr = "127.0.0.1:$p"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$((p + 1))"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$((p + 2))"
TOML
    endpoints+=("http://127.0.0.1:$((p + 1))")
    start_node "$i"
  done
  for i in 1 2 3; do wait_node "$i" || return 1; done
}

case "$cmd" in
start)
  # A port taken by something else makes a node fail to start: try other ports.
  for attempt in 1 2 3; do
    if launch; then break; fi
    for i in 1 2 3; do stop_node "$i"; done
    rm -rf "$dir"/n1 "$dir"/n2 "$dir"/n3
    [ "$attempt" = 3 ] && { echo "garage cluster did not start" >&2; exit 1; }
  done
  for i in 2 3; do g 1 node connect "$(g "$i" node id -q 2>/dev/null)" >/dev/null; done
  for i in 1 2 3; do
    id=$(g "$i" node id -q 2>/dev/null | cut -d@ -f1)
    g 1 layout assign -z "dc$i" -c 1G "$id" >/dev/null
  done
  g 1 layout apply --version 1 >/dev/null
  # The bucket and key operations need the layout everywhere: retry briefly.
  for _ in $(seq 1 50); do g 1 bucket create team >/dev/null 2>&1 && break; sleep 0.2; done
  keyinfo=$(g 1 key create team-key)
  key_id=$(echo "$keyinfo" | awk '/Key ID/ {print $NF}')
  secret_key=$(echo "$keyinfo" | awk '/Secret key/ {print $NF}')
  g 1 bucket allow --read --write --owner team --key team-key >/dev/null
  {
    echo "ENDPOINTS=$(IFS=,; echo "${endpoints[*]}")"
    echo "BUCKET=team"
    echo "ACCESS_KEY_ID=$key_id"
    echo "SECRET_ACCESS_KEY=$secret_key"
    echo "REGION=garage"
  } >"$dir/cluster.env"
  # Stop the cluster when the process that started it ends (tests holding it in a static).
  if [ -n "${GARAGE_WATCH_PID:-}" ]; then
    setsid bash -c "while kill -0 $GARAGE_WATCH_PID 2>/dev/null; do sleep 1; done; bash '$0' stop '$dir'" \
      >/dev/null 2>&1 < /dev/null &
  fi
  echo "garage cluster up in $dir: ${endpoints[*]}"
  ;;
stop)
  for i in 1 2 3; do stop_node "$i"; done
  ;;
kill)
  stop_node "${3:?node number}" KILL
  ;;
restart)
  i=${3:?node number}
  start_node "$i"
  wait_node "$i"
  # Reconnect it to every running node now (they would retry on their own, later).
  me=$(g "$i" node id -q 2>/dev/null)
  for j in 1 2 3; do
    [ "$j" = "$i" ] && continue
    [ -f "$dir/n$j.pid" ] && kill -0 "$(cat "$dir/n$j.pid")" 2>/dev/null || continue
    g "$j" node connect "$me" >/dev/null 2>&1 || true
    g "$i" node connect "$(g "$j" node id -q 2>/dev/null)" >/dev/null 2>&1 || true
  done
  ;;
*)
  echo "unknown command $cmd" >&2
  exit 2
  ;;
esac
