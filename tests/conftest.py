"""Shared test fixtures: one Ray per test session, one tiny model per test session, the shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MCQA = REPO_ROOT.parent / "shared" / "data" / "medical-mcqa"


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray (2 CPUs), started once for the whole test session."""
    import ray

    from aloe_core.ray_session import ensure_ray

    os.environ.pop("RAY_ADDRESS", None)  # tests never attach to a user's cluster by accident
    ensure_ray(num_cpus=2, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def shared_mcqa() -> Path:
    """The real benchmark files beside the checkout; tests that need them skip when they are absent."""
    if not SHARED_MCQA.is_dir():
        pytest.skip(f"real benchmark files not found at {SHARED_MCQA} (the ../shared folder beside the repo)")
    return SHARED_MCQA
