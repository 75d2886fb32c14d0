"""Where a model runs and in which dtype: the one rule every engine and scorer follows.

``auto`` means "the best this process can see": CUDA when torch sees a GPU, else the CPU; bf16 on a GPU
and fp32 on the CPU (CPU bf16 matmuls are slow and lose the precision the parity tests rely on). Keeping
the rule in one place means the transformers engine, the vLLM engine and the next-token scorers agree
on what ``auto`` picks. torch is imported inside the functions so importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(name: str) -> str:
    """``cuda`` if ``name`` is ``auto`` and torch sees a GPU, ``cpu`` for ``auto`` otherwise; any other
    name (``cpu``, ``cuda``, ``cuda:1``) as given."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def on_cpu(name: str) -> bool:
    """True if a model configured with device ``name`` runs on the CPU (see :func:`resolve_device`)."""
    return resolve_device(name) == "cpu"


def torch_dtype(name: str, device: str) -> Any:
    """The ``torch.dtype`` for dtype ``name`` on ``device``: bf16 on GPU and fp32 on CPU for ``auto``.

    Raises:
        ValueError: ``name`` is not one of :data:`DTYPES`.
    """
    if name not in DTYPES:
        raise ValueError(f"dtype {name!r} is not one of {', '.join(DTYPES)}")
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)
