"""A real multi-node Ray cluster on this machine for tests: `infra/local-cluster.sh` started in a private
directory, jobs submitted through `infra/submit.sh` (the documented way), status read from the job server.

Every node is its own process group (see the script), so a test can SIGKILL one node whole: its raylet,
agents and every worker it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "infra" / "local-cluster.sh"
SUBMIT = REPO_ROOT / "infra" / "submit.sh"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


class LocalCluster:
    """``infra/local-cluster.sh start WORKERS`` with ``worker_cpus`` CPUs per worker node (head: 0 CPUs)."""

    def __init__(self, workers: int, worker_cpus: int = 1) -> None:
        # Short and under /tmp: Ray's unix socket paths live below it (108-byte limit).
        self.dir = Path(tempfile.mkdtemp(prefix="aloe-cl-", dir="/tmp"))
        self.workers = workers
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env = base | {"ALOE_CLUSTER_DIR": str(self.dir), "ALOE_WORKER_CPUS": str(worker_cpus)}

    def start(self) -> None:
        done = subprocess.run(
            [str(SCRIPT), "start", str(self.workers)],
            env=self.env, capture_output=True, text=True, timeout=420, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"local-cluster.sh start failed:\n{done.stdout}\n{done.stderr}")
        printed = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        assert printed["RAY_ADDRESS"].startswith("http://127.0.0.1:"), done.stdout
        self.env |= printed

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop"], env=self.env, capture_output=True, timeout=120, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def node_group(self, node: str) -> int:
        return int((self.dir / f"{node}.pid").read_text())

    def kill_node(self, node: str) -> None:
        """SIGKILL every process of ``node`` (its `ray start`, raylet, agents and workers) at once."""
        os.killpg(self.node_group(node), signal.SIGKILL)

    def submit(self, *args: str, options: str = "") -> subprocess.CompletedProcess:
        """``infra/submit.sh ARGS`` (waits for the job unless ``options`` has --no-wait)."""
        env = self.env | {"ALOE_SUBMIT_ARGS": options}
        return subprocess.run(
            [str(SUBMIT), *args], env=env, capture_output=True, text=True, timeout=600, check=False
        )

    def job(self, submission_id: str) -> dict[str, Any]:
        """The job server's record of a job (status, message, ...), as `ray job status` reads it."""
        token = Path(self.env["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
        request = urllib.request.Request(
            f"{self.env['RAY_ADDRESS']}/api/jobs/{submission_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def wait(self, submission_id: str, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (record := self.job(submission_id))["status"] not in TERMINAL:
            assert time.monotonic() < deadline, f"job {submission_id} still {record['status']}"
            time.sleep(2)
        return record
