"""Adaptive mixture of generators: a generator whose rows keep being rejected is drawn less often.

Some generators have little room (a hormone has one source; a short question about it can only be asked
a few ways), others have a lot (vignettes with random vital signs). As the corpus grows, the distinctness
guard rejects more and more candidates from the small ones; drawing each generator in proportion to its
base weight times its recent acceptance rate keeps the cost per accepted row bounded and lets the mix
drift towards the roomy generators at large sizes. Fully deterministic: the state only depends on the
sequence of draws and guard decisions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Mix(Generic[T]):
    """Weighted choice among ``options`` with an acceptance-rate feedback loop (see module docstring).

    ``last`` is the index of the latest draw; a caller that generates one candidate (possibly after
    redraws) reads it once the candidate is made and later reports the guard's decision for it.
    """

    def __init__(
        self, options: Sequence[T], weights: Sequence[float], memory: float = 0.05, floor: float = 0.02
    ) -> None:
        if len(options) != len(weights) or not options:
            raise ValueError("options and weights must be non-empty and of the same length")
        self.options = tuple(options)
        self._base = [float(w) for w in weights]
        self._rate = [1.0] * len(options)
        self._memory = memory
        self._floor = floor
        self.last = 0

    def choose(self, rng: random.Random) -> T:
        weights = [b * max(r, self._floor) for b, r in zip(self._base, self._rate, strict=True)]
        x = rng.random() * sum(weights)
        self.last = len(weights) - 1
        for i, w in enumerate(weights):
            x -= w
            if x < 0:
                self.last = i
                break
        return self.options[self.last]

    def feedback(self, choices: Sequence[int], accepted: Sequence[bool]) -> None:
        """Update acceptance rates: ``choices[k]`` (a ``last`` value) was accepted iff ``accepted[k]``."""
        for i, ok in zip(choices, accepted, strict=True):
            self._rate[i] += self._memory * ((1.0 if ok else 0.0) - self._rate[i])
