"""Settled markets as plain data: what every rule set (seed or staked) is judged on.

The market engine produces one :class:`Outcome` per settled post; the staked rule sets of
spec §5 (numerai-2018/2019, mmc, yuma, proper) turn a sequence of outcomes into
:class:`Award` rows. Keeping this table shape apart from the engine lets the evaluation
compare every rule set on the very same replay.

Money conservation of a staked settlement (:class:`Settled`): every milli-unit of every pool
is either paid to a forecaster or returned to the reward fund, exactly
(``paid + returned == pools``). Burned stakes are the forecasters' own money, not the pool's,
so they are reported apart (``burned``) and never enter that sum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WEEK = 7 * 86_400


@dataclass(frozen=True, slots=True)
class Forecast:
    """One validly revealed prediction, in commit order within its post."""

    predictor: str
    prediction: int  # milli-units
    commit_time: int  # chain time, unix seconds
    sp: int  # milli-units of Steem Power at the commit block (0 = unknown)
    stake: int | None = None  # milli-units, from the reveal payload (staked rule sets)
    bid: float | None = None  # 0..1, the revealed thousandths as a weight (:func:`bid_weight`)


@dataclass(frozen=True, slots=True)
class Withheld:
    """A live commitment on a settled market that was never validly revealed (a *miss*,
    spec §2). Its prediction, stake and bid stay hidden: only what the commit showed is
    known."""

    predictor: str
    commit_time: int  # chain time, unix seconds
    sp: int  # milli-units of Steem Power at the commit block (0 = unknown)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A post at payout with its revealed forecasts (and its unrevealed commitments)."""

    author: str
    permlink: str
    created: int  # chain time, unix seconds
    paid_at: int  # chain time of the payout
    final_payout: int  # F, milli-units
    pool: int  # curation pool for this post, milli-units
    forecasts: tuple[Forecast, ...]
    unrevealed: tuple[Withheld, ...] = ()  # in commit order


@dataclass(frozen=True, slots=True)
class Award:
    """Money moved for one forecast: positive = paid from the pool, negative = stake burned.

    Per-post rule sets name the post; epoch rule sets (mmc, yuma) pay a predictor once per
    epoch: then ``author``/``permlink`` are empty and ``epoch`` is the epoch's start time.
    A forfeited unrevealed commitment (:func:`forfeits`) names its post, and under an epoch
    rule set also the epoch of the post's payout.
    """

    predictor: str
    author: str
    permlink: str
    amount: int  # milli-units
    epoch: int | None = None  # chain time (unix seconds) the epoch starts, epoch rules only


@dataclass(frozen=True, slots=True)
class Round:
    """One settled unit: a post (per-post rules) or an epoch (mmc, yuma).

    ``info`` carries the rule's own numbers (cutoff P, benchmark B, consensus, ...) as sorted
    name/value pairs, so reports can show why the round paid what it paid.
    """

    key: str  # "@author/permlink" or "epoch:<start>"
    pool: int
    paid: int
    returned: int
    burned: int
    info: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Settled:
    """What a staked rule set did to a sequence of outcomes."""

    rules: str
    # non-zero amounts only; in round order, then commit order (per-post) or name (epoch)
    awards: tuple[Award, ...]
    rounds: tuple[Round, ...]
    pools: int  # Σ pools of the outcomes
    paid: int  # Σ positive awards
    returned: int  # pool milli-units nobody was paid: pools == paid + returned
    burned: int  # Σ stakes burned (−Σ negative awards), apart from the pools

    def totals(self) -> dict[str, int]:
        """Net amount per predictor (paid − burned), sorted by name."""
        out: dict[str, int] = {}
        for a in self.awards:
            out[a.predictor] = out.get(a.predictor, 0) + a.amount
        return dict(sorted(out.items()))


def log_payout(milli: int) -> float:
    """ln(1 + F) with F in units: the scale the log-scored rule sets judge forecasts on."""
    return math.log1p(max(milli, 0) / 1000)


def stake_of(f: Forecast, default_stake: int | None) -> int:
    """The stake a forecast puts at risk: the revealed stake, else the configured default,
    else (default None) the predictor's Steem Power at commit — so splitting one account's SP
    over many accounts (a sybil ring) does not multiply its default stake."""
    if f.stake is not None:
        return max(0, f.stake)
    if default_stake is not None:
        return max(0, default_stake)
    return max(0, f.sp)


UNREVEALED = ("burn", "free")


def check_unrevealed(policy: str) -> None:
    if policy not in UNREVEALED:
        raise ValueError(f"unrevealed must be one of {UNREVEALED}, got {policy!r}")


def withheld_stake(w: Withheld, default_stake: int | None) -> int:
    """What an unrevealed commitment forfeits: the stake of a forecast that names none
    (:func:`stake_of`) — the configured default, else the Steem Power at commit. The stake
    a reveal would have named is bound in the commitment but hidden, so it cannot be used."""
    if default_stake is not None:
        return max(0, default_stake)
    return max(0, w.sp)


def forfeits(outcomes: Iterable[Outcome], default_stake: int | None, policy: str,
             epoch_seconds: int | None = None) -> tuple[list[Award], list[Round]]:
    """Burn the stake of every unrevealed commitment (``policy = "burn"``, the default).

    Why: the seed's commenter (``002_*``, the commit–reveal proposal) — "If they do not
    reveal in time, their prediction is automatically considered wrong". Without it a staked
    rule set only sees revealed forecasts, and a curator who reveals only the commitments
    the votes make look good holds a free option. Burned, not added to the pool: a wrong
    forecast's stake is burned under Numerai's rules (seeds ``003_*``, ``004_*``), and
    paying it to the others would make their rewards depend on someone else's misses; so
    pools stay ``paid + returned`` exactly and the forfeit is reported with the burns.
    ``"free"`` keeps the old behaviour (an unrevealed commitment costs nothing).

    Per-post rule sets book the burn on the post; epoch rule sets (``epoch_seconds`` given)
    on the epoch of the post's payout, like their other awards. One round per post with a
    forfeit, key ``forfeit:@author/permlink``, pool 0.
    """
    check_unrevealed(policy)
    awards: list[Award] = []
    rounds: list[Round] = []
    if policy == "free":
        return awards, rounds
    for o in outcomes:
        burned = 0
        for w in o.unrevealed:
            amount = withheld_stake(w, default_stake)
            if amount <= 0:
                continue
            epoch = None if epoch_seconds is None else epoch_of(o.paid_at, epoch_seconds)
            awards.append(Award(w.predictor, o.author, o.permlink, -amount, epoch))
            burned += amount
        if burned:
            rounds.append(Round(f"forfeit:@{o.author}/{o.permlink}", 0, 0, 0, burned,
                                (("unrevealed", float(len(o.unrevealed))),)))
    return awards, rounds


def bid_weight(thousandths: int | None) -> float | None:
    """A revealed bid (integer thousandths, as the payload, the commitment and the database
    hold it) as the probability the staked rule sets weigh with: the one place it becomes a
    float, one way (600 → 0.6, the float nearest the decimal, whose repr is that decimal).
    No money is computed from it without the rule's exact path (numerai ``_exact``)."""
    return None if thousandths is None else thousandths / 1000


def bid_of(f: Forecast, default_bid: float) -> float:
    return default_bid if f.bid is None else f.bid


def epoch_of(t: int, epoch_seconds: int) -> int:
    """Start of the epoch holding chain time ``t``; epochs align to the unix epoch, so the
    grouping never depends on where a replay starts."""
    return t - t % epoch_seconds


def by_epoch(outcomes: Iterable[Outcome], epoch_seconds: int = WEEK
             ) -> list[tuple[int, list[Outcome]]]:
    """Outcomes grouped by the epoch of their payout time, epochs ascending; inside an epoch
    by payout time, then post, so the order of the input never matters."""
    if epoch_seconds <= 0:
        raise ValueError("epoch_seconds must be > 0")
    groups: dict[int, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(epoch_of(o.paid_at, epoch_seconds), []).append(o)
    return [(start, sorted(groups[start], key=lambda o: (o.paid_at, o.author, o.permlink)))
            for start in sorted(groups)]


def build_settled(rules: str, outcomes: Sequence[Outcome], awards: list[Award],
                  rounds: list[Round]) -> Settled:
    """Assemble and check the conservation law every staked rule set must keep."""
    pools = sum(o.pool for o in outcomes)
    paid = sum(a.amount for a in awards if a.amount > 0)
    burned = -sum(a.amount for a in awards if a.amount < 0)
    returned = sum(r.returned for r in rounds)
    if paid + returned != pools or sum(r.pool for r in rounds) != pools:
        raise AssertionError(f"{rules}: paid {paid} + returned {returned} != pools {pools}")
    return Settled(rules, tuple(awards), tuple(rounds), pools, paid, returned, burned)
