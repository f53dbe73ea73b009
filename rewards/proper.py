"""A bounded proper scoring rule on the log payout (spec §5 ``proper``, beyond the seeds).

Why: the band (``0.9·F ≤ P ≤ F``) pays a forecaster who aims below their belief — the best
point to aim at is ≈ 0.9487 × the median, not the honest number. A proper scoring rule
makes the honest forecast the best one.

Choice: a reveal names one number P, so the rule reads it as a predictive distribution for
``y = ln(1 + F)`` (F in dollars): a normal with mean ``μ = ln(1 + P)`` and a fixed width σ
(default 0.25, about ±25 % in payout). Its **quadratic score** ``2·f(y) − ‖f‖²`` is strictly
proper; over this family it is an affine function of ``f(y)`` (and so is the spherical
score ``f(y)/‖f‖``), and rescaled to [0, 1] both become

    s = exp(−z²/2),   z = (ln(1 + F) − ln(1 + P)) / σ.

Affine rescaling keeps a rule proper, so s is a bounded proper score: 1 for an exact
forecast, → 0 for a wild one, never negative (nothing is burned). A ring spraying the range
splits the same stake over many forecasts, most of which score low: its stake-weighted
average score is below that of one honest forecast with the whole stake. The log score
would not be bounded; truncating it breaks properness near the truncation, which is why it
was not chosen. Limits, said plainly: one number per forecast makes the rule proper over
the family it names — a forecaster whose belief about ln(1 + F) is roughly normal reports
its mean (the log-median of F); for a skewed belief the best report is the mode of the
belief smoothed by a width-σ normal.

Pay per post: ``pool · (m_i / Σm) · s_i`` with m_i the forecaster's stake; since s_i ≤ 1 the
sum never exceeds the pool; floored to milli-units, the rest is returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from rewards.outcome import (
    Award,
    Outcome,
    Round,
    Settled,
    build_settled,
    check_unrevealed,
    forfeits,
    log_payout,
    stake_of,
)


@dataclass(frozen=True, slots=True)
class ProperParams:
    sigma: float = 0.25  # width of the predictive normal on ln(1 + F)
    default_stake: int | None = None  # milli; None → the predictor's SP at commit
    unrevealed: str = "burn"  # "burn": an unrevealed commitment forfeits its stake; "free"

    def __post_init__(self) -> None:
        check_unrevealed(self.unrevealed)
        if not self.sigma > 0:
            raise ValueError("sigma must be > 0")


def score(prediction: int, final: int, sigma: float = 0.25) -> float:
    """The rescaled quadratic score in [0, 1] of forecast P (milli) for outcome F (milli)."""
    z = (log_payout(final) - log_payout(prediction)) / sigma
    return math.exp(-z * z / 2)


def quadratic_score(y: float, mu: float, sigma: float) -> float:
    """The raw quadratic score ``2 f(y) − ‖f‖²`` of N(μ, σ²) at y (kept to show that
    :func:`score` is its affine rescaling: ``score = (qs + ‖f‖²) / (2·f(μ))``)."""
    f = math.exp(-((y - mu) / sigma) ** 2 / 2) / (sigma * math.sqrt(2 * math.pi))
    return 2 * f - 1 / (2 * sigma * math.sqrt(math.pi))


def settle(outcomes: Sequence[Outcome], params: ProperParams = ProperParams()) -> Settled:
    awards: list[Award] = []
    rounds: list[Round] = []
    for o in outcomes:
        stakes = [stake_of(f, params.default_stake) for f in o.forecasts]
        total = sum(stakes)
        paid = 0
        if total > 0 and o.pool > 0:
            for f, m in zip(o.forecasts, stakes, strict=True):
                s = score(f.prediction, o.final_payout, params.sigma)
                # exact: floor(pool · m/Σm · s) with s taken as its exact binary fraction
                amount = math.floor(Fraction(o.pool * m, total) * Fraction(s))
                if amount > 0:
                    paid += amount
                    awards.append(Award(f.predictor, o.author, o.permlink, amount))
        rounds.append(Round(f"@{o.author}/{o.permlink}", o.pool, paid, o.pool - paid, 0,
                            (("stake", float(total)),)))
    lost, forfeited = forfeits(outcomes, params.default_stake, params.unrevealed)
    return build_settled("proper", outcomes, awards + lost, rounds + forfeited)
