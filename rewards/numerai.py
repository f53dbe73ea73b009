"""Numerai's staking tournaments (seeds ``004_*``: 2018, ``003_*``: 2019) mapped to curation.

Each forecast on a post is a stake ``s`` with a bid; the post's curation pool is the prize pool.

- ``numerai-2018`` — probability bids. The bid p is the forecaster's confidence of landing in
  the band (spec §3: ``0.9·F ≤ P ≤ F``). Bids are filled from the highest down; the cutoff P
  is the lowest bid at which the filled stakes' earning potential ``s(1−P)/P`` exhausts the
  pool (the marginal stake is partly filled, lower bids sit out and keep their stake).
  Everyone filled plays at the same P: a hit earns ``s(1−P)/P`` from the pool, a miss burns
  the filled stake. Bidding p = p̂ (one's true hit probability) makes the bet break even, so
  the auction elicits honest confidence.
- ``numerai-2019`` — benchmark bids. The score is the accuracy ``a = min(P,F)/max(P,F)``; bids
  b are filled from the highest down until the filled stakes (the most a stake can earn is
  itself) exhaust the pool; the benchmark B is the marginal bid. Payout ``s·Φ(a − B)``:
  positive from the pool, negative burned, with Φ = sign, clip(x/width, −1, 1) or
  tanh(x/width).

Both are settled per post. Money is integer milli-units: earnings and burns are floored
(toward zero), so Σ paid ≤ pool; the rest of the pool is returned to the reward fund.
Exact ratios (fractions) decide the cutoff, so no float rounding can over-fill a pool.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial

from rewards.band import in_band
from rewards.outcome import (
    Award,
    Forecast,
    Outcome,
    Round,
    Settled,
    bid_of,
    build_settled,
    check_unrevealed,
    forfeits,
    stake_of,
)

PAYOUT_CURVES = ("sign", "clip", "tanh")


@dataclass(frozen=True, slots=True)
class Numerai2018Params:
    default_stake: int | None = None  # milli; None → the predictor's SP at commit
    default_bid: float = 0.5  # p when the reveal names none: "a coin flip"
    unrevealed: str = "burn"  # "burn": an unrevealed commitment forfeits its stake; "free"

    def __post_init__(self) -> None:
        check_unrevealed(self.unrevealed)


@dataclass(frozen=True, slots=True)
class Numerai2019Params:
    default_stake: int | None = None  # milli; None → the predictor's SP at commit
    # b when the reveal names none: accuracy 0.9 is the band's lower edge (P = 0.9·F).
    default_bid: float = 0.9
    curve: str = "clip"  # the seed's proposal: clipped linear
    width: float = 0.1  # accuracy margin for a full payout (the seed's 0.02 is in AUC units)
    unrevealed: str = "burn"  # "burn": an unrevealed commitment forfeits its stake; "free"

    def __post_init__(self) -> None:
        check_unrevealed(self.unrevealed)
        if self.curve not in PAYOUT_CURVES:
            raise ValueError(f"curve must be one of {PAYOUT_CURVES}, got {self.curve!r}")
        if not self.width > 0:
            raise ValueError("width must be > 0")


# --- numerai-2018 --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Auction2018:
    cutoff: Fraction | None  # P; None when nobody is filled
    filled: tuple[Fraction, ...]  # per bid, in input order


def probability_auction(bids: Sequence[tuple[float, int]], pool: int) -> Auction2018:
    """Cutoff P and filled stakes for ``(p, stake)`` bids (input order breaks ties).

    Bids outside (0, 1] or with stake ≤ 0 never fill. If the bids above a bid b already
    exhaust the pool at P = b, P is raised to where they exactly exhaust it
    (``S/(S + pool)``) and b sits out — the lowest P that exhausts the pool, as the seed
    words it. If all bids together cannot exhaust it, P is the lowest valid bid.
    """
    order = sorted((i for i, (p, s) in enumerate(bids) if 0 < p <= 1 and s > 0),
                   key=lambda i: (-bids[i][0], i))
    filled = [Fraction(0)] * len(bids)
    if pool <= 0:  # nothing to earn: nobody plays
        return Auction2018(None, tuple(filled))
    cutoff: Fraction | None = None
    total = Fraction(0)
    for i in order:
        p, s = _exact(bids[i][0]), bids[i][1]
        if p == 1 or total * (1 - p) < pool * p:  # earlier stakes alone do not exhaust it
            cutoff = p
            room = pool * p / (1 - p) - total if p < 1 else Fraction(s)
            take = min(Fraction(s), room)
            filled[i] = take
            total += take
            if take < s:
                break
        else:
            cutoff = total / (total + pool)
            break
    return Auction2018(cutoff, tuple(filled))


def _exact(bid: float | Fraction) -> Fraction:
    """A bid as the decimal it was written as (0.6 → 3/5, not the nearest binary float), so
    a cutoff of 0.6 fills exactly 150 and not 149.99999999999994."""
    return bid if isinstance(bid, Fraction) else Fraction(repr(float(bid)))


def earning_2018(stake: float | Fraction, cutoff: float | Fraction) -> Fraction:
    """What a filled stake earns on a hit: ``s(1−P)/P``."""
    p = _exact(cutoff)
    return Fraction(stake) * (1 - p) / p


def expected_value_2018(p_hat: float, cutoff: float, stake: float) -> float:
    """EV of one bet: win ``s(1−P)/P`` with probability p̂, burn s otherwise (zero at P=p̂)."""
    return p_hat * stake * (1 - cutoff) / cutoff - (1 - p_hat) * stake


def _filled_awards(o: Outcome, filled: Sequence[int], awards: list[Award],
                   amount_of: Callable[[Forecast, int], int]) -> tuple[int, int]:
    """Append the awards of one post's filled bids (amount > 0 earns, < 0 burns the stake);
    returns (paid, burned). Both auctions settle a post this way."""
    paid = burned = 0
    for f, fill in zip(o.forecasts, filled, strict=True):
        if fill == 0:
            continue
        amount = amount_of(f, fill)
        if amount > 0:
            paid += amount
        else:
            burned -= amount
        if amount:
            awards.append(Award(f.predictor, o.author, o.permlink, amount))
    return paid, burned


def _amount_2018(final: int, cutoff: float, f: Forecast, filled: int) -> int:
    """In the band: earn ``s(1−P)/P``; else burn the filled stake."""
    if in_band(f.prediction, final):
        return math.floor(earning_2018(filled, cutoff))
    return -math.floor(filled)


def settle_2018(outcomes: Sequence[Outcome], params: Numerai2018Params = Numerai2018Params()
                ) -> Settled:
    awards: list[Award] = []
    rounds: list[Round] = []
    for o in outcomes:
        fc = o.forecasts
        auction = probability_auction(
            [(bid_of(f, params.default_bid), stake_of(f, params.default_stake)) for f in fc],
            o.pool)
        cutoff = auction.cutoff
        paid = burned = 0
        if cutoff is not None:
            paid, burned = _filled_awards(o, auction.filled, awards,
                                          partial(_amount_2018, o.final_payout, cutoff))
        info = () if cutoff is None else (("cutoff_p", float(cutoff)),)
        rounds.append(Round(f"@{o.author}/{o.permlink}", o.pool, paid, o.pool - paid, burned,
                            info))
    lost, forfeited = forfeits(outcomes, params.default_stake, params.unrevealed)
    return build_settled("numerai-2018", outcomes, awards + lost, rounds + forfeited)


# --- numerai-2019 --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Auction2019:
    benchmark: float | None  # B; None when nobody is filled
    filled: tuple[int, ...]  # milli-units per bid, in input order


def benchmark_auction(bids: Sequence[tuple[float, int]], pool: int) -> Auction2019:
    """Benchmark B and filled stakes for ``(b, stake)`` bids: highest b first (input order
    breaks ties) until Σ filled = pool (the most a stake can earn is itself); B is the bid
    of the last stake filled, partly or fully. Stakes ≤ 0 and bids outside [0, 1] never
    fill."""
    order = sorted((i for i, (b, s) in enumerate(bids) if s > 0 and 0 <= b <= 1),
                   key=lambda i: (-bids[i][0], i))
    filled = [0] * len(bids)
    benchmark: float | None = None
    room = pool
    for i in order:
        if room <= 0:
            break
        take = min(bids[i][1], room)
        filled[i], room, benchmark = take, room - take, bids[i][0]
    return Auction2019(benchmark, tuple(filled))


def accuracy(prediction: int, final: int) -> float:
    """``min(P,F)/max(P,F)``: 1 for an exact forecast (also 0 vs 0), 0 when one side is 0."""
    hi = max(prediction, final)
    return 1.0 if hi == 0 else min(prediction, final) / hi


def payout_curve(x: float, curve: str = "clip", width: float = 0.02) -> float:
    """Φ(x) ∈ [−1, 1] of the 2019 design."""
    if curve == "sign":
        return float((x > 0) - (x < 0))
    if curve == "clip":
        return max(-1.0, min(1.0, x / width))
    if curve == "tanh":
        return math.tanh(x / width)
    raise ValueError(f"curve must be one of {PAYOUT_CURVES}, got {curve!r}")


def payout_2019(stake: float, score: float, benchmark: float, curve: str = "clip",
                width: float = 0.02) -> float:
    """``s·Φ(a − B)``: positive earns, negative burns."""
    return stake * payout_curve(score - benchmark, curve, width)


def _exact_payout(stake: int, prediction: int, final: int, benchmark: float, curve: str,
                  width: float) -> Fraction | float:
    """:func:`payout_2019` in exact fractions where the curve allows (sign, clip), so a
    payout of exactly half a stake is not floored to one milli-unit less."""
    hi = max(prediction, final)
    x = (Fraction(1) if hi == 0 else Fraction(min(prediction, final), hi)) - _exact(benchmark)
    if curve == "sign":
        return stake * ((x > 0) - (x < 0))
    if curve == "clip":
        return stake * max(Fraction(-1), min(Fraction(1), x / _exact(width)))
    return stake * math.tanh(float(x / _exact(width)))


def _amount_2019(final: int, benchmark: float, params: Numerai2019Params, f: Forecast,
                 filled: int) -> int:
    """``s·Φ(a − B)`` rounded toward zero, never beyond the filled stake either way."""
    x = _exact_payout(filled, f.prediction, final, benchmark, params.curve, params.width)
    toward_zero = math.floor(x) if x >= 0 else -math.floor(-x)
    return max(-filled, min(filled, toward_zero))


def settle_2019(outcomes: Sequence[Outcome], params: Numerai2019Params = Numerai2019Params()
                ) -> Settled:
    awards: list[Award] = []
    rounds: list[Round] = []
    for o in outcomes:
        fc: tuple[Forecast, ...] = o.forecasts
        auction = benchmark_auction(
            [(bid_of(f, params.default_bid), stake_of(f, params.default_stake)) for f in fc],
            o.pool)
        benchmark = auction.benchmark
        paid = burned = 0
        if benchmark is not None:
            paid, burned = _filled_awards(o, auction.filled, awards,
                                          partial(_amount_2019, o.final_payout, benchmark, params))
        info = () if auction.benchmark is None else (("benchmark_b", auction.benchmark),)
        rounds.append(Round(f"@{o.author}/{o.permlink}", o.pool, paid, o.pool - paid, burned,
                            info))
    lost, forfeited = forfeits(outcomes, params.default_stake, params.unrevealed)
    return build_settled("numerai-2019", outcomes, awards + lost, rounds + forfeited)
