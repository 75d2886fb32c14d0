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
