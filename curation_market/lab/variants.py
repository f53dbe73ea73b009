"""Which rule sets to compare, and over which runs.

Variant syntax (``examples/eval.toml``): ``base[+key=value…]`` with base a seed-family rule
set (``seed``, ``seed-as-written``, ``commit-reveal``) and keys ``closeness``, ``ia``
(on/off), ``underdog``, ``voters`` (flagged/out), ``window``, ``reveal`` (seconds); or
``staked:NAME[+unrevealed=burn|free][+default_stake=AMOUNT][+miners=post|author]`` (miners:
yuma only) for a rule set of the staked registry (``rewards/staked.py``), which judges the
settled markets of the seed replay;
``unrevealed`` says whether a commitment never revealed forfeits its stake (``burn``, the
default) or costs nothing (``free``, the rule before issue 15); ``default_stake`` (e.g.
``15.000``) is the stake of a forecast naming none — in the evaluation, where every reveal
names its stake, that is what an unrevealed commitment forfeits (default: its SP).

Agents know the rules they play under (the market's timing, what a staked bid means), so
variants are grouped by the stream they need: one task per run × (window, reveal period, bid
meaning), each building its stream once and playing every variant of its group on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from curation.market import MarketConfig
from curation.payload import parse_milli
from rewards.outcome import UNREVEALED, Award, Outcome
from rewards.rules import RULE_SETS, named
from rewards.staked import STAKED_RULES

HOUR = 3600
DEFAULT_VARIANTS = (
    "seed", "seed-as-written", "commit-reveal",
    "seed+closeness=inverse", "seed+closeness=off", "seed+ia=on",
    "seed+underdog=curve", "seed+underdog=beat-average", "seed+voters=out",
    "seed+window=900", "seed+window=3600", "seed+reveal=3600", "seed+reveal=86400",
    "commit-reveal+underdog=curve",
    "staked:numerai-2018", "staked:numerai-2019", "staked:mmc", "staked:yuma", "staked:proper",
)
BID_MEANING = {"numerai-2019": "accuracy"}  # every other staked rule: confidence


@dataclass(frozen=True)
class Variant:
    """One rule set to compare: a seed-family rule set with overrides and its own timing, or a
    staked rule set (which plays the seed rules' market and only settles differently)."""

    label: str
    base: str  # seed-family rule set name, or the staked rule set's name
    staked: bool = False
    overrides: tuple[tuple[str, object], ...] = ()
    window: int = 1800
    reveal_period: int = 6 * HOUR

    def market_config(self, include_replies: bool) -> MarketConfig:
        rules = named("seed" if self.staked else self.base,
                      **({} if self.staked else dict(self.overrides)))
        return MarketConfig(window=self.window, reveal_period=self.reveal_period,
                            include_replies=include_replies, rules=rules)

    def settle_staked(self, outcomes: Sequence[Outcome]) -> Iterable[Award]:
        """The staked rule set's awards with its defaults and this variant's overrides
        (``staked:mmc+unrevealed=free``)."""
        rule = STAKED_RULES[self.base]
        params = replace(rule.params, **dict(self.overrides)) if self.overrides else rule.params
        return rule.settle(outcomes, params).awards

    @property
    def bid_meaning(self) -> str:
        return BID_MEANING.get(self.base, "confidence") if self.staked else "confidence"


_KEYS: dict[str, Callable[[str], tuple[str, object]]] = {
    "closeness": lambda v: ("closeness", v),
    "ia": lambda v: ("information_added", {"on": True, "off": False}[v]),
    "underdog": lambda v: ("underdog", v),
    "voters": lambda v: ("disqualify_voters", {"out": True, "flagged": False}[v]),
}


def parse_variant(text: str) -> Variant:
    """``seed+closeness=inverse+window=900`` or ``staked:mmc`` → a Variant (ValueError)."""
    if text.startswith("staked:"):
        name, *mods = text.removeprefix("staked:").split("+")
        if name not in staked_registry():
            raise ValueError(f"unknown staked rule set {name!r}; known: "
                             f"{', '.join(staked_registry())}")
        staked_overrides: list[tuple[str, object]] = []
        for mod in mods:
            key, _, value = mod.partition("=")
            if key == "unrevealed":
                if value not in UNREVEALED:
                    raise ValueError(f"bad value {value!r} for unrevealed; expected "
                                     f"{' or '.join(UNREVEALED)}")
                staked_overrides.append((key, value))
            elif key == "miners" and name == "yuma":
                if value not in ("post", "author"):
                    raise ValueError(f"bad value {value!r} for miners; expected post or author")
                staked_overrides.append((key, value))
            elif key == "default_stake":
                milli = parse_milli(value)
                if milli is None:
                    raise ValueError(f"bad value {value!r} for default_stake; expected an "
                                     'amount like "15.000"')
                staked_overrides.append((key, milli))
            else:
                raise ValueError(f"unknown modifier {key!r} for a staked rule set; expected "
                                 "unrevealed, default_stake (or miners, for yuma)")
        return Variant(text, name, staked=True, overrides=tuple(staked_overrides))
    base, *mods = text.split("+")
    if base not in RULE_SETS:
        raise ValueError(f"unknown rule set {base!r}; known: {', '.join(RULE_SETS)}, staked:NAME")
    overrides, window, reveal = [], 1800, 6 * HOUR
    for mod in mods:
        key, _, value = mod.partition("=")
        if key in ("window", "reveal"):
            if not value.isdigit() or int(value) < 60:
                raise ValueError(f"{key} expects seconds (an integer ≥ 60)")
            window, reveal = (int(value), reveal) if key == "window" else (window, int(value))
        elif key in _KEYS:
            try:
                overrides.append(_KEYS[key](value))
            except KeyError:
                raise ValueError(f"bad value {value!r} for {key}") from None
        else:
            raise ValueError(f"unknown modifier {key!r}; expected one of "
                             f"{', '.join([*_KEYS, 'window', 'reveal'])}")
    named(base, **dict(overrides))  # the Rules dataclass validates the values
    return Variant(text, base, False, tuple(overrides), window, reveal)


def staked_registry() -> dict[str, Callable[[Sequence[Outcome]], Iterable[Award]]]:
    """name → settle(outcomes) → awards, each staked rule set with its default parameters
    (``rewards/staked.py``)."""

    def bind(rule: Any) -> Callable[[Sequence[Outcome]], Iterable[Award]]:
        return lambda outcomes: rule.settle(outcomes, rule.params).awards

    return {name: bind(rule) for name, rule in STAKED_RULES.items()}


StreamKey = tuple[int, int, str]  # window, reveal period, bid meaning
DEFAULT_KEY: StreamKey = (1800, 6 * HOUR, "confidence")


class Task(NamedTuple):
    """One worker's job: build run ``run``'s stream for ``key``, play ``variants`` on it."""

    run: int
    key: StreamKey
    variants: list[str]


def plan(variants: Sequence[str], runs: int) -> list[Task]:
    """Every variant × every run, grouped by stream. The default stream always has a task
    (even with no variant of its own): the report's agent columns are measured on it."""
    texts = list(dict.fromkeys(variants))
    groups: dict[StreamKey, list[str]] = {DEFAULT_KEY: []}
    for t in texts:
        v = parse_variant(t)
        groups.setdefault((v.window, v.reveal_period, v.bid_meaning), []).append(t)
    return [Task(run, key, group) for run in range(runs) for key, group in groups.items()]
