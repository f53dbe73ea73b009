"""Numerai's meta-model contribution (MMC) mapped to curation, settled per epoch of posts.

Seed ``000_*``: a forecaster should be paid for what they add to the stake-weighted
consensus (the "meta model"), not for agreeing with it. Over one epoch (default a week of
chain time), for each predictor with at least ``min_posts`` forecasts:

- x = their log-predictions ``ln(1 + P)`` (P in dollars) on the posts they forecast,
- m = the consensus on those posts: the stake-weighted mean of every forecaster's
  log-prediction on the post (their own included, as Numerai's meta model includes them),
- y = the log outcomes ``ln(1 + F)``.

``mmc``: rank-gaussianise x and m (tie-kept ranks, ``Φ⁻¹((rank − ½)/n)``, as numerai-tools
does), orthogonalise x against m, and take the covariance with the centred target
(numerai-tools also multiplies targets that lie in [0, 1] by 4 — its 5 buckets; the check
vector of spec §5 goes through that path, the curation targets ``ln(1 + F)`` do not).
``corr-ind``: the seed's own proposal ``CORR × (1 − corr with consensus) × c``, CORR being
the Pearson correlation of the gaussianised predictions with the centred target.

Where this departs from numerai-tools (numerai/numerai-tools ``numerai_tools/scoring.py``,
``correlation_contribution``, read at commit 54ef5f10): when the consensus is constant over
the predictor's posts — or they forecast a single post — its tie-kept rank is ½ everywhere,
``norm.ppf(½) = 0``, and numerai-tools' ``orthogonalize(v, u) = v − u·(vᵀu)/(uᵀu)`` divides
0 by 0: the score is NaN. Here the projection on the zero vector is taken as zero (the
orthogonal complement of span{0} is everything), so :func:`mmc` returns the plain
covariance of the gaussianised predictions with the centred target. Why pay it rather than
skip the predictor: a consensus that ranks every post alike carries no ranking, so whatever
ranking the predictor adds is wholly their contribution; and a NaN would otherwise leave
the stake neither paid nor burned, a free pass exactly when the crowd knows nothing. A
single post gives p = Φ⁻¹(½) = 0, so the plain covariance is 0 (and ``min_posts`` ≥ 2 keeps
it from being settled at all). ``corr-ind`` is unaffected: Pearson with a constant is 0.

Money: like Numerai, a score is a return on stake — ``stake × clip(multiplier·score, ±cap)``
where stake is the predictor's summed stake in the epoch. Positive returns are paid from the
epoch's pool (Σ curation pools of its posts), scaled down by an exact split when they would
exceed it; negative returns burn that much of the stake; what nobody earned is returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rewards.outcome import (
    WEEK,
    Award,
    Outcome,
    Round,
    Settled,
    build_settled,
    by_epoch,
    check_unrevealed,
    forfeits,
    log_payout,
    stake_of,
)
from rewards.split import split

SCORES = ("mmc", "corr-ind")


@dataclass(frozen=True, slots=True)
class MMCParams:
    epoch_seconds: int = WEEK
    score: str = "mmc"  # "mmc" (numerai-tools) or "corr-ind" (the seed's CORR×(1−corr_mm)×c)
    multiplier: float = 1.0  # c of the seed / Numerai's MMC multiplier
    cap: float = 0.25  # |return| per epoch at most this share of the stake (Numerai: 25 %)
    min_posts: int = 3  # fewer forecasts in an epoch → no score (a correlation needs a few)
    default_stake: int | None = None  # milli; None → the predictor's SP at commit
    unrevealed: str = "burn"  # "burn": an unrevealed commitment forfeits its stake; "free"

    def __post_init__(self) -> None:
        check_unrevealed(self.unrevealed)
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {self.score!r}")
        if self.epoch_seconds <= 0 or self.min_posts < 2 or not 0 < self.cap <= 1:
            raise ValueError("epoch_seconds > 0, min_posts >= 2 and 0 < cap <= 1 required")


def gaussianize(values: Sequence[float]) -> np.ndarray:
    """Tie-kept percentile ranks centred on ½, through the normal quantile function."""
    # imported here: scipy.stats takes most of a second to import, and every CLI command
    # (a replay too) imports this module through the rule-set registry without needing it
    from scipy.stats import norm, rankdata

    v = np.asarray(values, dtype=np.float64)
    return norm.ppf((rankdata(v, method="average") - 0.5) / len(v))


def orthogonalize(v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """v minus its projection on u (u ≠ 0)."""
    return v - u * (v @ u) / (u @ u)


def mmc(predictions: Sequence[float], consensus: Sequence[float], target: Sequence[float],
        scale_unit_targets: bool = True) -> float:
    """Contribution of ``predictions`` to the consensus' covariance with the target."""
    p, m = gaussianize(predictions), gaussianize(consensus)
    y = np.asarray(target, dtype=np.float64)
    if scale_unit_targets and ((y >= 0) & (y <= 1)).all():
        y = y * 4
    y = y - y.mean()
    if not (m @ m) > 0:
        # a constant consensus (or a single post) gaussianises to the zero vector: there is
        # nothing to neutralise against, so the contribution is the plain covariance.
        # numerai-tools computes 0/0 here and returns NaN (see the module docstring).
        return float(y @ p / len(y))
    return float(y @ orthogonalize(p, m) / len(y))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return 0.0 if den == 0 else float(a @ b) / den


def corr_independence(predictions: Sequence[float], consensus: Sequence[float],
                      target: Sequence[float], c: float = 1.0) -> float:
    """The seed's ``CORR × (1 − corr with consensus) × c`` on gaussianised predictions."""
    p, m = gaussianize(predictions), gaussianize(consensus)
    y = np.asarray(target, dtype=np.float64)
    return _pearson(p, y) * (1 - _pearson(p, m)) * c


def settle(outcomes: Sequence[Outcome], params: MMCParams = MMCParams()) -> Settled:
    awards: list[Award] = []
    rounds: list[Round] = []
    for start, posts in by_epoch(outcomes, params.epoch_seconds):
        pool = sum(o.pool for o in posts)
        consensus: list[float] = []
        rows: dict[str, list[tuple[int, float, int]]] = {}  # predictor → (post, x, stake)
        for j, o in enumerate(posts):
            xs = [(f.predictor, log_payout(f.prediction), stake_of(f, params.default_stake))
                  for f in o.forecasts]
            weight = sum(s for _, _, s in xs)
            consensus.append(sum(x * s for _, x, s in xs) / weight if weight
                             else sum(x for _, x, _ in xs) / max(len(xs), 1))
            for name, x, s in xs:
                rows.setdefault(name, []).append((j, x, s))
        target = [log_payout(o.final_payout) for o in posts]
        names, returns, scores = [], [], []
        for name in sorted(rows):
            row = rows[name]
            stake = sum(s for _, _, s in row)
            if len(row) < params.min_posts or stake <= 0:
                continue
            xs = [x for _, x, _ in row]
            ms = [consensus[j] for j, _, _ in row]
            ys = [target[j] for j, _, _ in row]
            if params.score == "mmc":
                score = mmc(xs, ms, ys, scale_unit_targets=False) * params.multiplier
            else:
                score = corr_independence(xs, ms, ys, params.multiplier)
            if not math.isfinite(score):
                continue
            names.append(name)
            scores.append(score)
            returns.append(stake * max(-params.cap, min(params.cap, score)))
        gains = [max(r, 0.0) for r in returns]
        wanted = sum(math.floor(g) for g in gains)
        if wanted > pool:
            paid_each, _ = split(pool, gains)
        else:
            paid_each = [math.floor(g) for g in gains]
        paid = burned = 0
        for name, ret, gain in zip(names, returns, paid_each, strict=True):
            amount = gain if ret > 0 else -math.floor(-ret)
            if amount == 0:
                continue
            if amount > 0:
                paid += amount
            else:
                burned -= amount
            awards.append(Award(name, "", "", amount, start))
        info = (("posts", float(len(posts))), ("scored", float(len(names))),
                ("mean_score", float(np.mean(scores)) if scores else 0.0))
        rounds.append(Round(f"epoch:{start}", pool, paid, pool - paid, burned, info))
    lost, forfeited = forfeits(outcomes, params.default_stake, params.unrevealed,
                               params.epoch_seconds)
    return build_settled("mmc", outcomes, awards + lost, rounds + forfeited)
