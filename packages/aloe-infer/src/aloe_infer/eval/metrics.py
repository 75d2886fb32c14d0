"""Statistics of a benchmark run: accuracy with its uncertainty, and paired comparison of two runs.

* :func:`wilson_interval`: the Wilson score interval of a proportion. Chosen over the normal
  approximation (``p +- 1.96 * stderr``) because it stays inside [0, 1] and keeps its coverage at the
  small ``n`` of per-subject MMLU splits and at accuracies near 0 or 1 (a tiny model, a safety ASR).
* :func:`standard_error`: lm-evaluation-harness's ``stderr`` for a mean of 0/1 scores,
  ``sample_std / sqrt(n)`` with the ``n - 1`` sample standard deviation, so our figures read like theirs.
* :func:`mcnemar`: the exact (binomial) McNemar test on paired outcomes: two models answering the same
  questions differ only on the questions one gets right and the other wrong; the test asks whether those
  discordant pairs split 50/50. Exact rather than chi-square because discordant counts are often small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` for ``successes`` out of ``n`` (``(0, 1)`` when n = 0)."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # successes = 0 or n give exactly 0 or 1 analytically; float noise would leave 1e-17 there.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def standard_error(successes: int, n: int) -> float:
    """``sample_std / sqrt(n)`` of ``n`` scores of which ``successes`` are 1 (lm-eval's ``stderr``);
    0 for ``n < 2``."""
    if n < 2:
        return 0.0
    p = successes / n
    variance = p * (1 - p) * n / (n - 1)
    return math.sqrt(variance / n)


@dataclass(frozen=True)
class McNemar:
    """Paired comparison of runs A and B on the same questions.

    ``a_only``: questions A gets right and B wrong; ``b_only`` the reverse; ``p_value``: two-sided exact
    binomial test of ``a_only`` vs ``b_only`` (1.0 when they never disagree).
    """

    n: int
    both: int
    a_only: int
    b_only: int
    neither: int
    p_value: float

    @property
    def difference(self) -> float:
        """Accuracy of B minus accuracy of A (the paired difference, over the shared questions)."""
        return (self.b_only - self.a_only) / self.n if self.n else 0.0


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> McNemar:
    """McNemar's exact test on paired correctness lists (same questions, same order)."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need equal lengths, got {len(a)} and {len(b)}")
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    neither = len(a) - both - a_only - b_only
    return McNemar(len(a), both, a_only, b_only, neither, _binomial_two_sided(a_only, a_only + b_only))


def _binomial_two_sided(k: int, n: int) -> float:
    """Two-sided exact p-value of ``k`` successes in ``n`` fair coin flips: ``min(1, 2 * P(X <= min))``."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return min(1.0, 2 * tail)
