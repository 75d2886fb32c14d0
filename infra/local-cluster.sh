#!/usr/bin/env bash
# A real multi-node Ray cluster on this machine: one head and N worker nodes, each its own `ray start`
# process group on 127.0.0.1 with its own CPU count and temp dir. The tests submit jobs to it; use it to
# try `infra/submit.sh` before a real cluster.
#
#   export $(infra/local-cluster.sh start 2)   # prints RAY_ADDRESS=http://127.0.0.1:PORT (the job server)
#                                               # and the token settings, RAY_AUTH_MODE / RAY_AUTH_TOKEN_PATH
#   infra/submit.sh aloe data run configs/data/sample-sft.yaml --out /tmp/x
#   infra/local-cluster.sh stop         # ends only the processes `start` started
#
# Settings (environment): ALOE_CLUSTER_DIR (state and temp dirs; default /tmp/aloe-cluster-$UID, keep it
# short: Ray's socket paths live under it), ALOE_HEAD_CPUS (0: the head runs drivers, work goes to the
# workers), ALOE_WORKER_CPUS (1 per worker node), ALOE_OBJECT_STORE_BYTES (per node, 300 MB).
#
# What it leaves: $ALOE_CLUSTER_DIR/<node>.pid (the process group of each node), <node>.log and <node>/
# (Ray's session logs). `stop` signals only the process groups in those pid files, after checking each is
# still a `ray start` of this directory; it never runs `ray stop`, which would end every Ray on the machine.
# Every port is bound to 127.0.0.1 and chosen free at start, so clusters of other users are not touched.
set -euo pipefail

dir=${ALOE_CLUSTER_DIR:-/tmp/aloe-cluster-$(id -u)}
repo=$(cd "$(dirname "$0")/.." && pwd)

usage() { echo "usage: $0 start N | stop | status" >&2; exit 2; }

ray_bin() {  # the workspace's ray: nodes run the interpreter and packages of `uv sync --frozen`
  (cd "$repo" && uv run --frozen python -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "ray"))')
}

free_ports() {  # free_ports N: N distinct free TCP ports on 127.0.0.1 (bound at once, then released)
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

alive() {  # alive NODE: the pid file names a live process that is a `ray start` of this cluster dir
  local pidfile="$dir/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--temp-dir=$dir/$1 "
}

start_node() {  # start_node NAME ARGS...: one `ray start --block` in its own session (= process group)
  local name=$1; shift
  # setsid: the node's processes (GCS, raylet, agents, workers) share one process group that `stop`
  # (and the node-loss test) can signal without touching anything else.
  setsid "$ray" start --block --node-ip-address=127.0.0.1 --temp-dir="$dir/$name" \
    --object-store-memory="$object_store" --disable-usage-stats "$@" </dev/null >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

wait_for() {  # wait_for NAME PATTERN: until the node's log shows PATTERN (or the node dies: fail)
  local name=$1 pattern=$2 waited=0 pid
  pid=$(cat "$dir/$name.pid")
  until grep -q "$pattern" "$dir/$name.log" 2>/dev/null; do
    # Liveness by pid, not by `alive`: right after the fork the child may not have exec'd `ray start`
    # yet (its command line is still this script's), and a loaded machine can hold it there for a while.
    if ! kill -0 "$pid" 2>/dev/null; then echo "node $name exited; its log:" >&2; tail -n 30 "$dir/$name.log" >&2; exit 1; fi
    if [ "$waited" -ge 240 ]; then echo "node $name not up after 240 s; see $dir/$name.log" >&2; exit 1; fi
    sleep 1; waited=$((waited + 1))
  done
}

start() {
  local workers=${1:?number of worker nodes}
  [[ "$workers" =~ ^[0-9]+$ ]] || usage
  mkdir -p "$dir"
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    if alive "$(basename "$pidfile" .pid)"; then echo "a cluster is running in $dir; stop it first" >&2; exit 1; fi
    rm -f "$pidfile"
  done
  ray=$(ray_bin)
  object_store=${ALOE_OBJECT_STORE_BYTES:-300000000}
  # A cluster behaves like a real one: workers follow the job's `uv run` (Ray's default), and nothing from
  # the caller's own Ray settings leaks into the nodes.
  unset RAY_ENABLE_UV_RUN_RUNTIME_ENV RAY_ADDRESS
  # Jobs' `uv run` must use the interpreter the cluster runs: Ray refuses a driver whose Python differs
  # from the cluster's, to the patch version.
  UV_PYTHON=$("$(dirname "$ray")/python" -c 'import sys; print(sys._base_executable)')
  export UV_PYTHON
  # Token authentication (Ray >= 2.52) with a token of this cluster's own, not ~/.ray/auth_token: every
  # gRPC call and every job-server request must carry it. Nodes and jobs read it from this file; a
  # submitter exports the two variables `start` prints.
  umask 077
  python3 -c 'import secrets; print(secrets.token_hex(32))' >"$dir/auth_token"
  umask 022
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$dir/auth_token"
  read -r gcs dashboard client agent <<<"$(free_ports 4)"
  start_node head --head --port="$gcs" --num-cpus="${ALOE_HEAD_CPUS:-0}" --num-gpus=0 \
    --include-dashboard=true --dashboard-host=127.0.0.1 --dashboard-port="$dashboard" \
    --ray-client-server-port="$client" --dashboard-agent-listen-port="$agent"
  wait_for head "Ray runtime started"
  for i in $(seq 1 "$workers"); do
    read -r agent <<<"$(free_ports 1)"
    start_node "worker$i" --address="127.0.0.1:$gcs" --num-cpus="${ALOE_WORKER_CPUS:-1}" --num-gpus=0 \
      --dashboard-agent-listen-port="$agent"
  done
  for i in $(seq 1 "$workers"); do wait_for "worker$i" "Ray runtime started"; done
  echo "http://127.0.0.1:$dashboard" >"$dir/address"
  echo "127.0.0.1:$gcs" >"$dir/gcs-address"
  echo "RAY_ADDRESS=http://127.0.0.1:$dashboard"
  echo "RAY_AUTH_MODE=token"
  echo "RAY_AUTH_TOKEN_PATH=$dir/auth_token"
}

stop() {
  local pidfile name pid waited groups=()
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    name=$(basename "$pidfile" .pid)
    pid=$(cat "$pidfile")
    if alive "$name"; then
      kill -TERM -- "-$pid" 2>/dev/null || true
      groups+=("$pid")
      echo "stopping $name (process group $pid)"
    elif pgrep -g "$pid" -f -- "$dir/" >/dev/null 2>&1; then
      # The group's leader is gone (a node killed by a test) but some of its processes are not; they
      # are this cluster's (their command lines name its dir): end them too.
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done
  waited=0  # all nodes shut down together; whatever ignored SIGTERM for 15 s is killed
  for pid in "${groups[@]}"; do
    while kill -0 -- "-$pid" 2>/dev/null && [ "$waited" -lt 30 ]; do sleep 0.5; waited=$((waited + 1)); done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  rm -f "$dir"/*.pid "$dir/address" "$dir/gcs-address"
}

status() {
  local pidfile name
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    name=$(basename "$pidfile" .pid)
    if alive "$name"; then echo "$name: running (process group $(cat "$pidfile"))"; else echo "$name: gone"; fi
  done
  [ -f "$dir/address" ] && echo "RAY_ADDRESS=$(cat "$dir/address")"
  return 0
}

case "${1:-}" in
  start) shift; [ $# -eq 1 ] || usage; start "$1" ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
