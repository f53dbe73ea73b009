"""The underdog-author adjustment (spec §6, from the seed's comment thread).

Curators who spot a post that beats its author's own recent record add more information
than those who confirm that a famous author is famous, so the curation fraction grows with
``x = r / R`` where r = max(net_rshares, 0)² at payout and R the author's weighted average.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class AuthorEntry:
    time: int
    r: float
    w: float


def author_average(entries: Iterable[AuthorEntry], now: int, window: int) -> float | None:
    """R = Σ w r / Σ w over posts paid in the window; None when there is no history."""
    sw = swr = 0.0
    seen = False
    for e in entries:
        if now - e.time <= window:
            seen = True
            sw += e.w
            swr += e.w * e.r
    if not seen:
        return None
    return swr / sw if sw > 0 else 0.0


def relative_payout(r: float, r_before: float | None, floor: float) -> tuple[float, float]:
    """(x, w) for a newly paid post: the first post has x = 1 and weight 1."""
    if r_before is None:
        return 1.0, 1.0
    denom = max(r_before, floor)
    x = r / denom
    return x, x  # the seed's weight r / R_before is x itself: zero payouts never dilute R


HALF = Fraction(1, 2)


def curve(x: float, c: Fraction) -> Fraction:
    """f = min(0.5, max(0, (x + c − 1)/(4c))), in exact arithmetic.

    The pool is ``floor(F·f)``: with floats, f(1) comes out as 0.24999999999999994 and the
    pool one milli-unit short, so x is taken exactly as the float it is and c as a fraction.
    """
    f = (Fraction(x) + c - 1) / (4 * c)
    return min(HALF, max(Fraction(0), f))


def beat_average(x: float) -> Fraction:
    return HALF if x > 1.0 else Fraction(0)


def fraction(mode: str, x: float, c: Fraction) -> Fraction:
    if mode == "curve":
        return curve(x, c)
    if mode == "beat-average":
        return beat_average(x)
    raise ValueError(f"no underdog fraction for mode {mode!r}")
