"""A market's forecast of a post's final payout, and how well past forecasts did.

Why a median: the revealed predictions of a market are what the proposal exists for, a
crowd's estimate of what the post will pay. A mean would let one absurd prediction (the
spec allows any non-negative value up to a configured maximum) move the forecast without
bound; a weighted median moves only as far as the weight behind it. The weight is the Steem
Power the predictor had at the commit block (spec §3's SP, the ``commits.sp`` column): an
account cannot split itself into many small accounts to pull the median, because the SP
moves with it.

The rule, in integer milli-units (spec §1), defined once here for the read model and the
tests:

* Inputs are the validly revealed predictions ``(prediction, sp)`` of one market, both
  integers, ``sp`` >= 0 (an unknown SP is 0, as in settlement).
* Weights are the SPs. If they sum to 0 (nobody's SP is known) every prediction weighs 1:
  the forecast is then the plain median, and the SP behind it is reported as 0.
* Sort by prediction. The forecast is the smallest prediction ``p`` whose cumulative weight
  (of all predictions ``<= p``) reaches half the total, ``2·cum >= W``. When the cumulative
  weight is *exactly* half (the weights split evenly at ``p``), the forecast is the midpoint
  between ``p`` and the next larger prediction, rounded down to the milli-unit
  (``(p + q) // 2``): the usual median of an even count, extended to weights.
* Equal predictions are one value (their weights add up), so ties need no order.

The result is always between the smallest and the largest prediction, does not depend on
the order the predictions come in, and does not change when every weight is multiplied by
the same positive integer (``tests/test_forecast.py`` checks all three, with hypothesis).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rewards.band import in_band


@dataclass(frozen=True, slots=True)
class Forecast:
    value: int  # milli-units
    predictions: int  # how many revealed predictions it is the median of
    sp: int  # milli SP behind it (sum of the predictors' SP at their commits)


def weighted_median(values: Sequence[tuple[int, int]]) -> int:
    """The forecast rule above over ``(prediction, weight)`` pairs; raises on an empty list
    or a negative weight."""
    if not values:
        raise ValueError("no predictions")
    if any(w < 0 for _, w in values):
        raise ValueError("negative weight")
    total = sum(w for _, w in values)
    pairs = values if total > 0 else [(v, 1) for v, _ in values]
    if total <= 0:
        total = len(values)
    merged: dict[int, int] = {}
    for v, w in pairs:
        merged[v] = merged.get(v, 0) + w
    points = sorted(merged.items())
    cum = 0
    for i, (v, w) in enumerate(points):
        cum += w
        if 2 * cum > total:
            return v
        if 2 * cum == total:
            # exactly half: the midpoint with the next value that carries weight
            for nv, nw in points[i + 1:]:
                if nw > 0:
                    return (v + nv) // 2
            return v
    return points[-1][0]  # unreachable: cum reaches total


def forecast(revealed: Sequence[tuple[int, int]]) -> Forecast | None:
    """A market's forecast from its revealed ``(prediction, sp)`` pairs; None without any."""
    if not revealed:
        return None
    return Forecast(weighted_median(revealed), len(revealed), sum(sp for _, sp in revealed))


# --- how well forecasts matched the payouts -------------------------------------------------

def ranks(xs: Sequence[int | float]) -> list[float]:
    """1-based ranks, ties sharing their average rank (what Spearman's rho needs)."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            out[order[k]] = avg
        i = j + 1
    return out


def spearman(xs: Sequence[int | float], ys: Sequence[int | float]) -> float | None:
    """Spearman's rank correlation (Pearson's r of the tie-averaged ranks); None with fewer
    than two pairs or when either side is constant (no ranking to compare)."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    if len(xs) < 2:
        return None
    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / (sxx * syy) ** 0.5


def median_int(xs: Sequence[int]) -> int | None:
    """The median of integers, an even count's midpoint rounded down (None when empty)."""
    if not xs:
        return None
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) // 2


def median_float(xs: Sequence[float]) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


@dataclass(frozen=True, slots=True)
class Quality:
    markets: int  # settled markets with a forecast judged
    spearman: float | None  # rank correlation of forecast and final payout
    median_abs_error: int | None  # milli-units, median of |forecast − F|
    median_rel_error: float | None  # median of |forecast − F| / F over markets with F > 0
    within_band: int  # markets whose forecast fell in the 90–100 % band of F
    zero_payout: int  # markets with F = 0 (left out of the relative error)


def quality(pairs: Sequence[tuple[int, int]]) -> Quality:
    """How well ``(forecast, final payout)`` pairs matched, for a frontend deciding whether to
    trust the feed: rank correlation (does the feed rank posts as they were paid?) and the
    typical error (by how much?)."""
    fs = [f for f, _ in pairs]
    finals = [p for _, p in pairs]
    errors = [abs(f - p) for f, p in pairs]
    rel = [abs(f - p) / p for f, p in pairs if p > 0]
    return Quality(len(pairs), spearman(fs, finals), median_int(errors), median_float(rel),
                   sum(1 for f, p in pairs if in_band(f, p)),
                   sum(1 for _, p in pairs if p == 0))
