#!/usr/bin/env bash
# Start Ray on a Slurm allocation, run one aloe command as its driver on the head, stop Ray.
#   sbatch --nodes=4 --gpus-per-node=8 --cpus-per-task=64 infra/slurm/ray-on-slurm.sh \
#     aloe data run configs/data/sample-sft.yaml --out /shared/runs/x
#   ALOE_SLURM_MODE=classic sbatch ... infra/slurm/ray-on-slurm.sh aloe train sft CONFIG
#
# ALOE_SLURM_MODE: `symmetric` (default; `ray symmetric-run`, Ray >= 2.49: every node runs the same
# command, the head runs the entrypoint and all stop together) or `classic` (a head `ray start`, one
# `ray start` per other node, the driver here; for older Ray or when symmetric-run misbehaves).
#
# The checkout (submit from it) and the run folders must be on a filesystem every node shares (Lustre,
# GPFS, NFS). The workspace is installed once into the checkout's .venv (`uv sync`) and every node runs
# it, so all nodes have the same interpreter and packages. Security: the dashboard and job server bind to
# 127.0.0.1 on the head (reach them with `ssh -L 8265:127.0.0.1:8265 HEAD`); the GCS and raylets must
# listen on the node addresses for the nodes to talk, and every call carries this job's token (token
# auth, a file readable only by you).
#SBATCH --job-name=aloe
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: sbatch [options] $0 aloe COMMAND ARGS..." >&2; exit 2; }
cd "${SLURM_SUBMIT_DIR:-.}"

uv sync --frozen --no-dev
ray=$PWD/.venv/bin/ray
command=("$PWD/.venv/bin/$1" "${@:2}")

mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head_node=${nodes[0]}
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head_node" hostname --ip-address | awk '{print $1}')
port=${ALOE_RAY_PORT:-6379}
cpus=${SLURM_CPUS_PER_TASK:-$(nproc)}
gpus=${SLURM_GPUS_PER_NODE:-0}
gpus=${gpus##*:}  # --gpus-per-node=h100:8 -> 8

state=${ALOE_SLURM_STATE:-$HOME/.aloe-slurm}/$SLURM_JOB_ID
mkdir -p "$state"
(umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' >"$state/auth_token")
# Exported: srun passes the environment to every node's ray processes (--export=ALL is Slurm's default).
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$state/auth_token
common=(--num-cpus="$cpus" --num-gpus="$gpus" --temp-dir="${ALOE_RAY_TMP:-/tmp/ray-$SLURM_JOB_ID}"
  --dashboard-host=127.0.0.1 --disable-usage-stats)

symmetric() {
  srun --nodes="${#nodes[@]}" --ntasks-per-node=1 \
    "$ray" symmetric-run --address "$head_ip:$port" --min-nodes "${#nodes[@]}" "${common[@]}" \
    -- "${command[@]}"
}

steps=()  # the srun steps of the classic mode, ended when this script exits

classic() {
  trap 'kill "${steps[@]}" 2>/dev/null || true; wait' EXIT
  srun --nodes=1 --ntasks=1 -w "$head_node" \
    "$ray" start --head --block --node-ip-address="$head_ip" --port="$port" "${common[@]}" &
  steps+=($!)
  wait_nodes 1
  local node
  for node in "${nodes[@]:1}"; do
    srun --nodes=1 --ntasks=1 -w "$node" "$ray" start --block --address="$head_ip:$port" "${common[@]}" &
    steps+=($!)
  done
  wait_nodes "${#nodes[@]}"
  RAY_ADDRESS="$head_ip:$port" "${command[@]}"
}

wait_nodes() {  # wait_nodes N: until N nodes are alive in the cluster (10 minutes at most)
  local waited=0
  until RAY_ADDRESS="$head_ip:$port" "$PWD/.venv/bin/python" -c \
    "import ray, sys; ray.init(log_to_driver=False); sys.exit(sum(n['Alive'] for n in ray.nodes()) < $1)" \
    >/dev/null 2>&1; do
    [ "$waited" -lt 600 ] || { echo "only part of the cluster came up after 600 s" >&2; exit 1; }
    sleep 5; waited=$((waited + 5))
  done
}

case "${ALOE_SLURM_MODE:-symmetric}" in
  symmetric) symmetric ;;
  classic) classic ;;
  *) echo "ALOE_SLURM_MODE must be symmetric or classic" >&2; exit 2 ;;
esac
