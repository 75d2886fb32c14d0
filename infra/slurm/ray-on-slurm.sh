#!/usr/bin/env bash
# Start Ray on a Slurm allocation and run one aloe command on it.
#   sbatch --nodes=4 --gpus-per-node=8 --cpus-per-task=64 infra/slurm/ray-on-slurm.sh \
#     aloe data run configs/data/sample-sft.yaml --out /shared/runs/x
# The head runs on the first node; every other node joins it. The run folder must be on a filesystem
# all nodes share (Lustre, GPFS, NFS).
#SBATCH --job-name=aloe
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail

nodes=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
head_node=${nodes[0]}
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head_node" hostname --ip-address | awk '{print $1}')
port=6379

srun --nodes=1 --ntasks=1 -w "$head_node" \
  uv run --frozen ray start --head --node-ip-address="$head_ip" --port=$port \
  --num-cpus="$SLURM_CPUS_PER_TASK" --num-gpus="${SLURM_GPUS_PER_NODE:-0}" --block &
sleep 20

for node in "${nodes[@]:1}"; do
  srun --nodes=1 --ntasks=1 -w "$node" \
    uv run --frozen ray start --address="$head_ip:$port" \
    --num-cpus="$SLURM_CPUS_PER_TASK" --num-gpus="${SLURM_GPUS_PER_NODE:-0}" --block &
done
sleep 20

export RAY_ADDRESS="$head_ip:$port"
uv run --frozen "$@"
