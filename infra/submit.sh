#!/usr/bin/env bash
# Submit an aloe command to a Ray cluster as a job.
#   RAY_ADDRESS=http://127.0.0.1:8265 infra/submit.sh aloe data run configs/data/sample-sft.yaml --out /shared/runs/x
# The working directory (this repo, minus .gitignore'd files) is uploaded; `uv run` on the driver makes
# Ray start every worker through `uv run` too, so the workspace from uv.lock is installed on each node.
set -euo pipefail
: "${RAY_ADDRESS:?set RAY_ADDRESS to the cluster's dashboard address, e.g. http://127.0.0.1:8265}"
cd "$(dirname "$0")/.."
exec ray job submit --address "$RAY_ADDRESS" --working-dir . -- uv run --frozen "$@"
