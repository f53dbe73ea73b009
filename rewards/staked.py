"""The staked rule sets of spec §5 by name: what ``rules.name`` and the evaluation select.

Every entry maps a name to a pure ``settle(outcomes, params) -> Settled`` and its default
parameters (a frozen dataclass: override with :func:`dataclasses.replace` or
:func:`settle_staked`'s keyword arguments). The seed rule sets (``seed``,
``seed-as-written``, ``commit-reveal``) are not here: the market engine settles them per
post as it replays (rewards/rules.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rewards import mmc, numerai, proper, yuma
from rewards.outcome import Outcome, Settled


@dataclass(frozen=True, slots=True)
class StakedRule:
    name: str
    settle: Callable[[Sequence[Outcome], Any], Settled]
    params: Any  # the default params dataclass of this rule set
    per: str  # "post" or "epoch": the unit it settles
    summary: str


STAKED_RULES: dict[str, StakedRule] = {
    "numerai-2018": StakedRule(
        "numerai-2018", numerai.settle_2018, numerai.Numerai2018Params(), "post",
        "probability-bid auction: cutoff P, a hit earns s(1-P)/P, a miss burns the stake"),
    "numerai-2019": StakedRule(
        "numerai-2019", numerai.settle_2019, numerai.Numerai2019Params(), "post",
        "benchmark auction on accuracy min(P,F)/max(P,F): s*phi(a-B), phi sign/clip/tanh"),
    "mmc": StakedRule(
        "mmc", mmc.settle, mmc.MMCParams(), "epoch",
        "contribution to the stake-weighted consensus (Numerai MMC), or CORR*(1-corr_mm)*c"),
    "yuma": StakedRule(
        "yuma", yuma.settle, yuma.YumaParams(), "epoch",
        "BitTensor Yuma: stake-weighted kappa-median consensus, clip, bonds EMA, dividends"),
    "proper": StakedRule(
        "proper", proper.settle, proper.ProperParams(), "post",
        "bounded quadratic score of a normal on ln(1+F): pool*(m_i/sum m)*s_i"),
}


def staked_rule(name: str) -> StakedRule:
    if name not in STAKED_RULES:
        raise KeyError(f"unknown staked rule set {name!r}; known: {', '.join(STAKED_RULES)}")
    return STAKED_RULES[name]


def settle_staked(name: str, outcomes: Sequence[Outcome], **overrides: Any) -> Settled:
    """Settle ``outcomes`` with the named rule set, its defaults overridden by keyword
    (e.g. ``settle_staked("numerai-2019", outs, curve="tanh", width=0.05)``)."""
    rule = staked_rule(name)
    params = replace(rule.params, **overrides) if overrides else rule.params
    return rule.settle(outcomes, params)
