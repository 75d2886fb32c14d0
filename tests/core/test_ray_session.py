"""aloe_core.ray_session: a given RAY_ADDRESS is used or fails, never replaced by a local Ray."""

from __future__ import annotations

import os
import subprocess
import sys

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


def test_the_embedded_cluster_starts_only_what_a_fixed_local_cluster_uses(ray_session):
    # No autoscaler monitor and no dashboard API server (aloe_core.ray_session._lean_head_node); the
    # log monitor stays, since commands forward worker logs to the terminal.
    from ray._private.node import Node
    from ray._private.worker import _global_node

    assert sorted(_global_node.all_processes) == ["gcs_server", "log_monitor", "raylet"]
    # Ray's own methods are back once the head is up, for anything else in this process that starts a node.
    assert Node.start_monitor.__qualname__ == "Node.start_monitor"
    assert Node.start_api_server.__qualname__ == "Node.start_api_server"

    @ray_session.remote
    def square(x: int) -> int:
        return x * x

    assert ray_session.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
