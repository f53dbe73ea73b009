"""Settling one market at payout (spec §3): band, CP, RP, SP, IA, weight, exact split.

Pure: it sees only the numbers of one post's commits, in commit order, and the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import floor

import numpy as np
from sortedcontainers import SortedList

from rewards.band import in_band
from rewards.rules import Rules
from rewards.split import split


@dataclass(frozen=True, slots=True)
class Entry:
    """One commit on the post, in commit order. ``prediction`` None = never validly revealed."""

    prediction: int | None
    prior_n: int  # predictions on posts settled in earlier blocks (counted ones)
    prior_hits: int
    sp: int  # milli-units of Steem Power at the commit block (0 when unknown)
    abs_at_commit: int  # Σ|rshares| on the post when the commit was made
    voted: bool = False


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What settlement decided for one commit, and why: made once here, kept by the engine on
    its commit (``curation.state.Commit.result``), stored as it is (the result columns of
    ``commits``, in this field order) and read back by the read model. Nobody copies or
    recomputes a field of it."""

    voted: bool  # the predictor also voted on the post (flagged; disqualified by the rules)
    qualified: bool  # a hit that may be weighted (voters can be disqualified)
    ep: int | None
    d: float | None
    cp: float
    n: int
    r: int
    rp: float
    ia: float
    weight: float
    reward: int
    hit: bool  # revealed inside the band: counts toward reputation's R


@dataclass(frozen=True, slots=True)
class Settlement:
    final_payout: int
    pool: int
    returned: int  # pool milli-units nobody won
    underdog_returned: int  # F·(0.5 − f) held back by the underdog adjustment
    factors: tuple[CommitResult, ...]  # in commit order, one per entry


def pool_fraction(rules: Rules, chain_fraction: Fraction | None) -> Fraction:
    """The configured fraction when the rules set one, else the chain's for the settled block
    (the caller's: settlement here has no clock, so it cannot tell the era itself)."""
    if rules.curation_fraction is not None:
        return rules.curation_fraction
    if chain_fraction is None:
        raise ValueError("the rules leave curation_fraction to the chain and no chain "
                         "fraction was given")
    return chain_fraction


def pool_for(final_payout: int, rules: Rules, underdog_f: Fraction | None,
             chain_fraction: Fraction | None = None) -> tuple[int, int]:
    """(pool, underdog_returned). With the underdog adjustment the fraction is f instead."""
    if rules.underdog == "off" or underdog_f is None:
        return floor(final_payout * pool_fraction(rules, chain_fraction)), 0
    pool = floor(final_payout * underdog_f)
    return pool, floor(final_payout * Fraction(1, 2)) - pool


def earlier_closest(predictions: Sequence[int | None]) -> list[int | None]:
    """For each revealed prediction, the closest revealed prediction committed before it.

    Closest by absolute difference; equal distance → the one committed earliest. O(K log K):
    a sorted list of the distinct values seen so far, each remembering its first commit.
    """
    seen = SortedList()
    first_at: dict[int, int] = {}
    out: list[int | None] = []
    for i, p in enumerate(predictions):
        if p is None:
            out.append(None)
            continue
        k = seen.bisect_left(p)
        candidates = [seen[j] for j in (k - 1, k) if 0 <= j < len(seen)]
        if candidates:
            out.append(min(candidates, key=lambda v: (abs(v - p), first_at[v])))
        else:
            out.append(None)
        if p not in first_at:
            first_at[p] = i
            seen.add(p)
    return out


def closeness(p: np.ndarray, ep: np.ndarray, has_ep: np.ndarray, mode: str) -> tuple:
    """(d, CP) per prediction. No earlier prediction → CP = 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(ep > 0, np.abs(ep - p) / np.where(ep > 0, ep, 1), np.where(p == 0, 0.0, 1.0))
    if mode == "prose":
        cp = np.minimum(1.0, d) ** 2
    elif mode == "as_written":
        cp = np.maximum(0.0, 1.0 - d) ** 2
    elif mode == "inverse":
        cp = 1.0 - np.maximum(0.0, 1.0 - d) ** 2
    else:
        cp = np.ones_like(d)
    return np.where(has_ep, d, np.nan), np.where(has_ep, cp, 1.0)


def reputation(prior_n: np.ndarray, prior_hits: np.ndarray) -> tuple:
    """N = 1 + earlier predictions, R = earlier hits + 1 (this one), RP = (R/N)³."""
    n = prior_n + 1
    r = prior_hits + 1
    return n, r, (r / n) ** 3


def information_added(abs_at_commit: np.ndarray, abs_final: int) -> np.ndarray:
    """IA = 1 − A(t_commit)/A_final, clamped to [0, 1] (votes can be withdrawn)."""
    if abs_final <= 0:
        return np.ones(len(abs_at_commit))
    return np.clip(1.0 - abs_at_commit.astype(float) / float(abs_final), 0.0, 1.0)


def settle(
    entries: Sequence[Entry],
    final_payout: int,
    abs_final: int,
    rules: Rules,
    underdog_f: Fraction | None = None,
    chain_fraction: Fraction | None = None,
) -> Settlement:
    pool, underdog_returned = pool_for(final_payout, rules, underdog_f, chain_fraction)
    revealed = [e.prediction for e in entries]
    mask = np.array([p is not None for p in revealed], dtype=bool)
    p = np.array([x if x is not None else 0 for x in revealed], dtype=np.int64)
    ep_list = earlier_closest(revealed)
    has_ep = np.array([x is not None for x in ep_list], dtype=bool)
    ep = np.array([x if x is not None else 0 for x in ep_list], dtype=np.int64)

    hit = mask & in_band(p, final_payout)
    qualified = hit.copy()
    voted = np.array([e.voted for e in entries], dtype=bool)
    if rules.disqualify_voters:
        qualified &= ~voted
    d, cp = closeness(p.astype(float), ep.astype(float), has_ep, rules.closeness)
    n, r, rp = reputation(np.array([e.prior_n for e in entries], dtype=np.int64),
                          np.array([e.prior_hits for e in entries], dtype=np.int64))
    sp = np.array([e.sp for e in entries], dtype=float)
    ia = (information_added(np.array([e.abs_at_commit for e in entries], dtype=object),
                            abs_final)
          if rules.information_added else np.ones(len(entries)))
    weight = np.where(qualified, rp * sp * cp * ia, 0.0)
    rewards, returned = split(pool, weight.tolist())

    factors = tuple(
        CommitResult(
            voted=bool(voted[i]),
            qualified=bool(qualified[i]),
            ep=ep_list[i],
            d=None if np.isnan(d[i]) else float(d[i]),
            cp=float(cp[i]),
            n=int(n[i]),
            r=int(r[i]),
            rp=float(rp[i]),
            ia=float(ia[i]),
            weight=float(weight[i]),
            reward=rewards[i],
            hit=bool(hit[i]),
        )
        for i in range(len(entries))
    )
    return Settlement(final_payout, pool, returned, underdog_returned, factors)
