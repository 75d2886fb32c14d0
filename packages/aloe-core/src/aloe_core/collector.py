"""Python's cyclic garbage collector, paused around work that builds many short-lived acyclic objects.

Why: code that makes thousands of fresh dicts, lists and strings at a time (rows read from JSON, the
embedded corpus) sets off collection after collection, and every full one walks all objects the
process holds (a Ray worker with ray.data, pyarrow and pandas imported holds over 10^5). Objects
without reference cycles are freed by reference counting anyway, so a pause around such work collects
nothing later that the collector would have collected during it. Keep the paused region free of code
that is not yours (never hold it across a ``yield``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off inside the block, then back as it was (also when the block raises)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
