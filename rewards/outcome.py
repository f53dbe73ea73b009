"""Settled markets as plain data: what every rule set (seed or staked) is judged on.

The market engine produces one :class:`Outcome` per settled post; the staked rule sets of
spec §5 (numerai-2018/2019, mmc, yuma, proper) turn a sequence of outcomes into
:class:`Award` rows. Keeping this table shape apart from the engine lets the evaluation
compare every rule set on the very same replay.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Forecast:
    """One validly revealed prediction, in commit order within its post."""

    predictor: str
    prediction: int  # milli-units
    commit_time: int  # chain time, unix seconds
    sp: int  # milli-units of Steem Power at the commit block (0 = unknown)
    stake: int | None = None  # milli-units, from the reveal payload (staked rule sets)
    bid: float | None = None  # 0..1, from the reveal payload (staked rule sets)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A post at payout with its revealed forecasts."""

    author: str
    permlink: str
    created: int  # chain time, unix seconds
    paid_at: int  # chain time of the payout
    final_payout: int  # F, milli-units
    pool: int  # curation pool for this post, milli-units
    forecasts: tuple[Forecast, ...]


@dataclass(frozen=True, slots=True)
class Award:
    """Money moved for one forecast: positive = paid from the pool, negative = stake burned."""

    predictor: str
    author: str
    permlink: str
    amount: int  # milli-units
