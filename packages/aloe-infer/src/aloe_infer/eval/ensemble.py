"""Medprompt's choice-shuffle ensemble: distinct option orders per member, answers mapped back, the vote.

An order is a permutation of option indices: ``order[j] = i`` means the member sees original option
``i`` at position ``j`` (letter ``letters[j]``). Letters are always A, B, C... in order; only the texts
move. A member's answer letter at position ``j`` therefore means original option ``order[j]``, which is
what :func:`map_back` returns. Shuffling cancels position bias (a model that prefers "A" no longer
prefers one option text), which is where much of Medprompt's ensemble gain comes from.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Literal

from aloe_core.schemas import stable_id

TieRule = Literal["first", "none"]


def member_orders(n_options: int, members: int, *, shuffle: bool, seed: object) -> list[tuple[int, ...]]:
    """The option order of each ensemble member: distinct random permutations (at most ``n!`` of them:
    a 3-option question has only 6), or the original order for every member when ``shuffle`` is off.

    Deterministic in ``seed`` (the run seed and the item id), so a rerun shows the same orders.
    """
    identity = tuple(range(n_options))
    if not shuffle:
        return [identity] * members
    count = min(members, math.factorial(n_options))
    rng = random.Random(int(stable_id("orders", seed)[:16], 16))
    if count * 4 >= math.factorial(n_options):  # few permutations: sample from the full list
        return [tuple(p) for p in rng.sample(list(itertools.permutations(identity)), count)]
    seen: set[tuple[int, ...]] = set()
    orders = []
    while len(orders) < count:
        order = list(identity)
        rng.shuffle(order)
        if tuple(order) not in seen:
            seen.add(tuple(order))
            orders.append(tuple(order))
    return orders


def map_back(shown: str | None, order: Sequence[int], letters: Sequence[str]) -> str | None:
    """The original letter of the answer ``shown`` by a member that saw ``order`` (None stays None)."""
    if shown is None:
        return None
    position = letters.index(shown)
    return letters[order[position]]


def majority_vote(answers: Sequence[str | None], tie: TieRule = "first") -> str | None:
    """The most frequent answer (unparsed ``None`` answers do not vote). On a tie, ``first``: the tied
    answer seen first (prompt_engine's rule); ``none``: no prediction. None when nobody answered."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    tied = [a for a in dict.fromkeys(a for a in answers if a is not None) if counts[a] == best]
    if len(tied) > 1 and tie == "none":
        return None
    return tied[0]
