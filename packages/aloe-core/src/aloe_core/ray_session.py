"""One way to get a Ray cluster, used by every command and by the test suite.

If ``RAY_ADDRESS`` is set (a job submitted with ``ray job submit`` has it, and users on a cluster export
it), connect to that cluster; otherwise start an embedded local Ray sized for this machine. Calling
:func:`ensure_ray` when Ray is already initialised is a no-op, so library code can call it freely.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from aloe_core import fixed_cluster

logger = logging.getLogger(__name__)


# Imported by each worker of the embedded cluster as it starts, before it takes work (the raylet's
# ``preload_python_modules``). Every pipeline stage runs on Ray Data, whose import costs a worker
# 0.5-0.75 s on 2 cores; Ray prestarts one worker per CPU at ``ray.init``, so they import it while the
# driver plans its first stage instead of inside the first task of each worker, where on 2 CPUs both
# workers paid it at once. Not numba (vLLM 0.32 cannot start an engine in a process where llvmlite is
# loaded) and nothing of aloe's: the embedded cluster also runs vLLM actors and Ray Train workers.
WORKER_PRELOAD_MODULES = ("ray.data",)


def ensure_ray(num_cpus: int | None = None, *, log_to_driver: bool = True) -> dict[str, float]:
    """Initialise Ray once and return the cluster's resources.

    Args:
        num_cpus: CPUs for an embedded local Ray (ignored when connecting to ``RAY_ADDRESS``); default:
            all of this machine's cores.
        log_to_driver: forward worker logs to this process (off in tests to keep output readable).
    """
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        if address:
            logger.info("connecting to the Ray cluster at RAY_ADDRESS")
            ray.init(address=address, log_to_driver=log_to_driver)
        else:
            _disable_uv_run_propagation()
            # A busy 2-core machine can take longer than Ray's default 30 s to bring up the raylet's agents.
            os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
            with _lean_head_node():
                ray.init(
                    num_cpus=num_cpus or os.cpu_count() or 1,
                    include_dashboard=False,
                    log_to_driver=log_to_driver,
                    # The embedded cluster binds to loopback only; a real cluster is configured by its
                    # operator.
                    _node_ip_address="127.0.0.1",
                    _system_config={"preload_python_modules": list(WORKER_PRELOAD_MODULES)},
                )
            _small_cluster_data_settings()
            fixed_cluster.install()
        _quiet_ray_data()
    return ray.cluster_resources()


@contextmanager
def _lean_head_node() -> Iterator[None]:
    """Start the embedded head node without the autoscaler monitor and the dashboard's API server.

    ``ray.init`` always starts both, even with ``include_dashboard=False`` (the API server then runs
    only its usage-stats module), and waits for the API server to register before it returns. A fixed
    local cluster has nothing to autoscale and nobody to serve: on 2 cores the two processes cost
    about 1 s of ``ray.init`` and 1 s of ``ray.shutdown`` (the monitor stops slowly), and their imports
    compete with the raylet's agents for the cores (``benchmarks/startup.py`` measures it). Ray offers
    no ``ray.init`` argument for either (``ray start`` has ``--no-monitor`` but no way to leave the API
    server out), so the two ``Node`` methods are replaced for the duration of this one call. A Ray
    without them (the requirement allows any 2.x from 2.55) starts its full head instead, with a
    warning; ``tests/core/test_ray_session.py`` pins what the embedded head runs. Users who want the
    dashboard or ``ray status`` start a cluster with ``ray start --head`` and set ``RAY_ADDRESS``,
    which this module then connects to unchanged.
    """
    from ray._private.node import Node

    names = ("start_monitor", "start_api_server")
    if not all(callable(getattr(Node, name, None)) for name in names):
        logger.warning("Ray %s: starting the full head node (no lean start for it)", ray.__version__)
        yield
        return
    saved = {name: getattr(Node, name) for name in names}
    for name in names:
        setattr(Node, name, _skipped_process)
    try:
        yield
    finally:
        for name, method in saved.items():
            setattr(Node, name, method)


def _skipped_process(self: object, *args: object, **kwargs: object) -> None:
    """Stands in for a head process :func:`_lean_head_node` leaves out."""


def _disable_uv_run_propagation() -> None:
    """Make local workers run this interpreter as is.

    When the driver runs under `uv run`, Ray (>= 2.45) by default packages the working directory and
    starts every worker process through `uv run` again, which costs tens of seconds per worker on a small
    machine. A local Ray shares this machine's venv, so that is pure overhead; on a cluster (RAY_ADDRESS)
    the propagation is what installs the workspace on the workers, so it is left on there.
    """
    from ray._private import ray_constants

    os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"  # for drivers this process starts
    ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False


def _quiet_ray_data() -> None:
    """Keep Ray Data's progress bars but drop its per-operator verbose stats on every run."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.verbose_stats_logs = False


def _small_cluster_data_settings() -> None:
    """Ray Data settings for the embedded cluster (clusters reached through ``RAY_ADDRESS`` keep Ray's).

    * V1 Parquet datasource: the V2 datasource starts footer-reading actors on every ``read_parquet``;
      on a 2-core machine that made reading three tiny stage shards take 3-15 s instead of 0.2-0.3 s,
      and pipeline stages read their input several times.
    * Per-operator resource reservation stays on here (Ray's default). An earlier version turned it off
      for every Dataset; a 2-CPU local cluster then deadlocked when a map ran as its own operator: read
      tasks blocked on downstream backpressure held both CPUs while the map tasks that would drain them
      waited for one. Pipeline stages whose plan is one fused operator run without it
      (:func:`aloe_data.pipeline.runner.resource_reservation` says why).
    """
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.use_datasource_v2 = False
