"""The 90–100 % band (spec §3): the one test of whether a prediction hit.

Settlement, the staked rule sets, the read model's SQL counts, the API's ``band`` and the
report's sentences all ask this one module, so they cannot drift apart (before, the test was
written out five times, twice as ``-(-9 * F // 10)`` and three times as ``10·P ≥ 9·F``).
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def band(final_payout: int) -> tuple[int, int]:
    """``(lo, hi)``: the lowest and highest prediction (milli-units) inside the band.

    ``lo = ceil(0.9·F)`` in integers: for an integer P, ``10·P ≥ 9·F`` holds exactly when
    ``P ≥ ceil(9·F/10)``, so ``lo <= P <= hi`` is :func:`in_band` (no float rounding)."""
    return -(-9 * final_payout // 10), final_payout


def in_band(prediction: T, final_payout: Any) -> T:
    """``0.9·F ≤ P ≤ F`` as the integer test ``10·P ≥ 9·F and P ≤ F``.

    One expression for three kinds of operands: Python ints (a bool), numpy integer arrays
    (a bool array; Python ints inside when ``F`` is large enough for ``10·P`` to overflow
    int64) and SQLAlchemy column expressions (a SQL condition, NULL when P is NULL)."""
    p: Any = prediction
    if isinstance(p, np.ndarray) and final_payout > 2**52:
        p = p.astype(object)
    return (10 * p >= 9 * final_payout) & (p <= final_payout)
