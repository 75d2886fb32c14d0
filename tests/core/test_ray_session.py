"""aloe_core.ray_session: a given RAY_ADDRESS is used or fails, never replaced by a local Ray; the embedded
local Ray keeps its dashboard processes minimal although the workspace installs ray[default]."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil

ATTEMPT = """
import ray
from aloe_core.ray_session import ensure_ray
try:
    ensure_ray()
except Exception as error:
    print(type(error).__name__, "initialized" if ray.is_initialized() else "not initialized")
"""


def test_a_given_address_is_never_replaced_by_a_local_ray():
    # The job server's URL is not a GCS address: Ray refuses it, and no local Ray starts in its place.
    env = os.environ | {"RAY_ADDRESS": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-c", ATTEMPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "ValueError not initialized", done.stderr[-2000:]


def test_the_embedded_ray_runs_minimal_dashboard_processes(ray_session):
    import ray.dashboard.optional_deps  # noqa: F401  (ray[default] is installed: Ray would go full)

    session = ray_session._private.worker._global_node.get_session_dir_path()
    commands = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if session in cmdline and ("dashboard/agent.py" in cmdline or "dashboard/dashboard.py" in cmdline):
            commands.append(cmdline)
    assert len(commands) == 2, commands  # the dashboard head and this node's agent
    assert all("--minimal" in c for c in commands), commands
