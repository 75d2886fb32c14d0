#!/usr/bin/env bash
# Submit an aloe command to a Ray cluster as a job: the one supported way to run aloe on a cluster.
#   RAY_ADDRESS=http://127.0.0.1:8265 infra/submit.sh aloe data run configs/data/sample-sft.yaml --out /shared/runs/x
#   ALOE_SUBMIT_ARGS="--no-wait --submission-id sft-1" infra/submit.sh aloe train sft configs/train/tiny_sft_cpu.yaml
#
# * RAY_ADDRESS is the cluster's job server (dashboard), http://HEAD:8265 (infra/local-cluster.sh prints it).
# * The working directory (this checkout minus .gitignore'd files, so no .venv) is uploaded once; the
#   command runs on the head as `uv run --frozen --no-dev ...` in it, and Ray starts every worker of the job
#   through the same `uv run` (its default since 2.47): each node installs the workspace from uv.lock into
#   that working dir, reusing uv's cache (see infra/uv-job.toml: bytecode compilation is skipped there).
# * Python is pinned: uv picks it from UV_PYTHON on the node (infra/local-cluster.sh and the KubeRay /
#   Slurm files set it to the interpreter the cluster runs), else from .python-version; Ray passes the
#   driver's exact version to the workers. Ray refuses a driver whose Python differs in the patch version.
# * Paths in the command are read on the cluster: use a filesystem or bucket every node sees.
# * ALOE_SUBMIT_ARGS: extra `ray job submit` options (--no-wait, --submission-id ID, --entrypoint-num-cpus N).
# Exit status: the job's (ray job submit waits for it and streams its logs unless --no-wait).
set -euo pipefail
: "${RAY_ADDRESS:?set RAY_ADDRESS to the cluster job server, e.g. http://127.0.0.1:8265}"
[ $# -gt 0 ] || { echo "usage: $0 aloe COMMAND ARGS..." >&2; exit 2; }
cd "$(dirname "$0")/.."
runtime_env='{"env_vars": {"UV_CONFIG_FILE": "infra/uv-job.toml"}}'
# shellcheck disable=SC2086  # ALOE_SUBMIT_ARGS is a list of options, split on purpose
exec uv run --frozen ray job submit --address "$RAY_ADDRESS" --working-dir . \
  --runtime-env-json "$runtime_env" ${ALOE_SUBMIT_ARGS:-} -- uv run --frozen --no-dev "$@"
