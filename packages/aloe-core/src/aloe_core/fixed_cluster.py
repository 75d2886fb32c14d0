"""Ray Data on the embedded local cluster: what a cluster of fixed size does without.

Ray Data (2.60) runs two actors for every driver's executions, whatever the cluster:

* an **autoscaling coordinator** (``_AutoscalingCoordinatorActor``), through which each execution asks
  for nodes and learns its share of the cluster: the executor's resource limits are what the actor has
  reserved for it, fetched asynchronously, so early in an execution they read as 0 CPUs;
* a **stats actor** (``_StatsActor``), which numbers Datasets and feeds the dashboard's Ray Data
  metrics; the first Dataset of a session waits on it for its id.

Each is a worker process of its own (about 1 s of CPU to start on 2 cores), started during the first
execution of a session, which waits for both; on 2 cores that made the first stage of a run (ingest)
take 1.5-2.2 s longer than its work, and the coordinator's late share held later stages back as well.
The embedded cluster (:func:`aloe_core.ray_session.ensure_ray`) is one node of a fixed size that nobody
watches (no dashboard), so :func:`install` gives its executions

* :class:`FixedClusterAutoscaler`: the limits are the cluster's resources from the start, and nothing
  is ever requested;
* no stats actor: Datasets get uuid ids (the fallback Ray itself uses when the actor is unreachable)
  and execution and iteration metrics are not exported. ``Dataset.stats()`` is unaffected (it is kept
  in the driver).

Only executions on the embedded cluster are changed: a process connected to a cluster through
``RAY_ADDRESS`` (a real one, which can autoscale and has a dashboard) gets Ray's own behaviour, also
after an embedded session in the same process. Both hooks are private Ray names; a Ray without them
keeps its own behaviour, with a warning. ``tests/core/test_ray_session.py`` pins that no such actor
starts and that the limits are the cluster's.
"""

from __future__ import annotations

import logging
from typing import Any

import ray

logger = logging.getLogger(__name__)

_embedded_session: str | None = None  # session name of the embedded cluster this process started


def _current_session() -> str | None:
    node = getattr(ray._private.worker, "_global_node", None)
    return getattr(node, "session_name", None) if ray.is_initialized() else None


def on_embedded_cluster() -> bool:
    """Whether this process is connected to the embedded cluster it started (not one at RAY_ADDRESS)."""
    return _embedded_session is not None and _current_session() == _embedded_session


class FixedClusterAutoscaler:
    """A Ray Data cluster autoscaler for a cluster that cannot grow: the execution's resource limits
    are the cluster's total resources, read once when the executor starts; no request is ever made."""

    def __init__(self) -> None:
        from ray.data._internal.execution.interfaces.execution_options import ExecutionResources

        self._total = ExecutionResources.from_resource_dict(ray.cluster_resources())

    def try_trigger_scaling(self) -> None:
        """Nothing to scale."""

    def on_executor_shutdown(self) -> None:
        """No request to cancel."""

    def get_total_resources(self) -> Any:
        return self._total


def install() -> None:
    """Record the current (embedded) session and hook Ray Data's autoscaler and stats for it."""
    global _embedded_session
    _embedded_session = _current_session()
    try:
        from ray.data._internal import stats
        from ray.data._internal.execution import streaming_executor
    except ImportError:  # pragma: no cover - a Ray Data laid out differently
        logger.warning("Ray %s: Ray Data keeps its autoscaling coordinator and stats actor", ray.__version__)
        return
    manager = getattr(stats, "_StatsManager", None)
    hooked = [getattr(manager, name, None) for name in _STATS_METHODS]
    factory = getattr(streaming_executor, "create_cluster_autoscaler", None)
    if manager is None or not all(callable(m) for m in hooked) or not callable(factory):
        logger.warning("Ray %s: Ray Data keeps its autoscaling coordinator and stats actor", ray.__version__)
        return
    if getattr(factory, "_aloe_original", None) is None:  # once per process
        embedded = _fixed_unless_placement_group(factory)
        streaming_executor.create_cluster_autoscaler = _choosing(factory, embedded)
        for name, method in zip(_STATS_METHODS, hooked, strict=True):
            setattr(manager, name, staticmethod(_choosing(method, _STATS_STAND_INS[name])))


def _fixed_unless_placement_group(factory: Any) -> Any:
    """The autoscaler for an embedded execution: fixed, except for one scheduled into a placement group
    (Ray Train's), whose limits are the group's bundles, as Ray's own choice for it has them."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    def create(topology: Any, resource_manager: Any, data_context: Any, **kwargs: Any) -> Any:
        strategies = (data_context.scheduling_strategy, data_context.scheduling_strategy_large_args)
        if all(isinstance(s, PlacementGroupSchedulingStrategy) for s in strategies):
            return factory(topology, resource_manager, data_context, **kwargs)
        return FixedClusterAutoscaler()

    return create


def _new_dataset_id() -> str:
    from uuid import uuid4

    return uuid4().hex


def _no_metrics(*args: object, **kwargs: object) -> None:
    """Execution and iteration metrics of the embedded cluster go nowhere (no dashboard reads them)."""


_STATS_STAND_INS = {
    "gen_dataset_id_from_stats_actor": _new_dataset_id,
    "register_dataset_to_stats_actor": _no_metrics,
    "update_execution_metrics": _no_metrics,
    "update_iteration_metrics": _no_metrics,
}
_STATS_METHODS = tuple(_STATS_STAND_INS)


def _choosing(original: Any, embedded: Any) -> Any:
    """A function that calls ``embedded`` on the embedded cluster and ``original`` anywhere else."""

    def call(*args: object, **kwargs: object) -> Any:
        return (embedded if on_embedded_cluster() else original)(*args, **kwargs)

    call._aloe_original = original  # type: ignore[attr-defined]
    name = getattr(original, "__qualname__", original)
    call.__doc__ = f"{name}, or aloe's stand-in on the embedded cluster"
    return call
