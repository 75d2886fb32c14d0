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


def test_ray_data_on_the_embedded_cluster_starts_no_coordinator_or_stats_actor(ray_session):
    # aloe_core.fixed_cluster: a fixed-size cluster needs neither actor; each was a worker process of its
    # own that the first execution of a session waited for.
    import ray.data
    from ray.data._internal.execution import streaming_executor
    from ray.data._internal.stats import STATS_ACTOR_NAME, STATS_ACTOR_NAMESPACE

    from aloe_core.fixed_cluster import FixedClusterAutoscaler, on_embedded_cluster

    assert on_embedded_cluster()
    doubled = ray.data.range(8, override_num_blocks=2).map_batches(lambda b: {"id": b["id"] * 2})
    assert sorted(row["id"] for row in doubled.take_all()) == [0, 2, 4, 6, 8, 10, 12, 14]
    named = {(a["namespace"], a["name"]) for a in ray_session.util.list_named_actors(all_namespaces=True)}
    assert ("AutoscalingCoordinator", "AutoscalingCoordinator") not in named
    assert (STATS_ACTOR_NAMESPACE, STATS_ACTOR_NAME) not in named
    # The executor's limits are the whole cluster from its first scheduling step on.
    context = ray.data.DataContext.get_current()
    autoscaler = streaming_executor.create_cluster_autoscaler(None, None, context, execution_id="t")
    assert isinstance(autoscaler, FixedClusterAutoscaler)
    total = autoscaler.get_total_resources()
    resources = ray_session.cluster_resources()
    assert (total.cpu, total.object_store_memory) == (resources["CPU"], resources["object_store_memory"])


def test_a_process_on_another_cluster_gets_ray_data_as_ray_ships_it(ray_session, monkeypatch):
    # After an embedded session, a process connected to a cluster at RAY_ADDRESS (another session name)
    # calls Ray's own functions: that cluster may autoscale, and its dashboard reads the stats actor.
    from aloe_core import fixed_cluster

    choose = fixed_cluster._choosing(lambda: "ray's", lambda: "embedded")
    assert choose() == "embedded"
    monkeypatch.setattr(fixed_cluster, "_embedded_session", "session_of_another_cluster")
    assert not fixed_cluster.on_embedded_cluster()
    assert choose() == "ray's"


def test_embedded_workers_import_ray_data_before_their_first_task(ray_session):
    # aloe_core.ray_session.WORKER_PRELOAD_MODULES: the raylet starts every worker with the preload, so
    # a stage's first task does not pay Ray Data's import in each worker at once.
    @ray_session.remote
    def started_with() -> list[str]:
        return sys.argv

    assert "--worker-preload-modules=ray.data" in ray_session.get(started_with.remote())
