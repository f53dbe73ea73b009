"""Splitting a pool of milli-units by weight, exactly (spec §3).

Weights are floats (products of ratios), but every float is an exact binary fraction, so the
split is done on exact integers: ``floor(pool·w_i/Σw)`` then the leftover one by one to the
largest remainders (ties → earlier commit). Σ rewards + returned = pool, always.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def exact_weights(weights: Sequence[float]) -> list[int]:
    """Scale float weights to integers with the same exact ratios."""
    ratios = []
    for w in weights:
        w = float(w)
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"weight must be finite and >= 0, got {w}")
        ratios.append(w.as_integer_ratio())
    if not ratios:
        return []
    common = max(den for _, den in ratios)  # all powers of two: the max divides by each
    return [num * (common // den) for num, den in ratios]


def split(pool: int, weights: Sequence[float]) -> tuple[list[int], int]:
    """Return (rewards, returned). No positive weight → everything is returned."""
    if pool < 0:
        raise ValueError("pool must be >= 0")
    ints = exact_weights(weights)
    total = sum(ints)
    if total == 0:
        return [0] * len(ints), pool
    shares = [divmod(pool * w, total) for w in ints]
    rewards = [q for q, _ in shares]
    leftover = pool - sum(rewards)
    order = sorted(range(len(ints)), key=lambda i: (-shares[i][1], i))
    for i in order[:leftover]:
        rewards[i] += 1
    return rewards, 0
