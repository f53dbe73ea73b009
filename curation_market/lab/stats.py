"""The numbers the report shows: rank correlations, concentration, shares and ratios.

Kept apart from the runner and the renderer so that a figure means the same thing in the
Markdown, the HTML and the plots: each is computed here once, from the plain results.
Money stays integer milli-units until a ratio is taken.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from curation_market.lab.agents import Ledger, agent_type
from rewards.outcome import Outcome

if TYPE_CHECKING:
    from curation_market.lab.runner import Evaluation, RunResult


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's ρ (average ranks for ties); None when undefined."""
    if len(xs) < 3:
        return None
    from scipy.stats import spearmanr
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    rho = float(spearmanr(xs, ys).statistic)
    return None if math.isnan(rho) else rho


def gini(values: Sequence[int]) -> float | None:
    """Gini of non-negative amounts (burned stakes count as 0)."""
    xs = sorted(max(0, v) for v in values)
    total = sum(xs)
    if not xs or total == 0:
        return None
    n = len(xs)
    return sum((2 * i - n + 1) * x for i, x in enumerate(xs)) / (n * total)


def early_spearman(outcomes: Sequence[Outcome], window: int) -> float | None:
    """ρ between F and the median of predictions committed in the window's first half."""
    xs, ys = [], []
    for o in outcomes:
        early = sorted(f.prediction for f in o.forecasts
                       if f.commit_time - o.created <= window // 2)
        if early:
            xs.append(early[len(early) // 2])
            ys.append(o.final_payout)
    return spearman(xs, ys)


def errors(ledger: Ledger, finals: dict[tuple[str, str], int]) -> dict[str, list[float]]:
    """|ln(P/F)| of every prediction each agent committed (revealed or not), F > 0."""
    errs: dict[str, list[float]] = defaultdict(list)
    for name, author, permlink, _, prediction in ledger.commits:
        final = finals.get((author, permlink), 0)
        if final > 0:
            errs[name].append(abs(math.log(max(prediction, 1) / final)))
    return dict(errs)


def agent_types(ev: Evaluation) -> list[str]:
    """Report groups in population order, so columns and colours match between configs."""
    return list(dict.fromkeys(agent_type(a) for a in ev.agents))


def shares(ev: Evaluation, r: RunResult) -> dict[str, float]:
    """Each type's share of the positive net rewards (burned stakes are shown apart)."""
    by_type: dict[str, int] = defaultdict(int)
    for a in ev.agents:
        by_type[agent_type(a)] += max(0, r.rewards.get(a.name, 0))
    total = sum(by_type.values())
    return {t: (by_type[t] / total if total else 0.0) for t in agent_types(ev)}


def sybil_row(ev: Evaluation, r: RunResult) -> tuple[int, int, int, int, float | None]:
    """(ring reward, ring SP, twin reward, twin SP, ring/twin per SP): whether splitting one
    SP budget over accounts and spraying pays, against the same SP and skill played honestly."""
    ring = [a for a in ev.agents if a.kind == "sybil"]
    twin = [a for a in ev.agents if a.kind == "twin"]
    ring_sp, twin_sp = sum(a.sp for a in ring), sum(a.sp for a in twin)
    ring_r = sum(r.rewards.get(a.name, 0) for a in ring)
    twin_r = sum(r.rewards.get(a.name, 0) for a in twin)
    ratio = None
    if ring_sp and twin_sp and twin_r > 0:
        ratio = (ring_r / ring_sp) / (twin_r / twin_sp)
    return ring_r, ring_sp, twin_r, twin_sp, ratio


def skill_spearman(ev: Evaluation, r: RunResult) -> float | None:
    """ρ(skill, reward per SP) on the pooled rewards: does a rule set pay for being right
    rather than for being big?"""
    names = [a.name for a in ev.agents if a.name in ev.skills and a.sp > 0]
    sp = {a.name: a.sp for a in ev.agents}
    return spearman([ev.skills[n] for n in names],
                    [r.rewards.get(n, 0) / sp[n] for n in names])



# --- bootstrap confidence intervals over runs and settlement units ----------------------
#
# Why: single runs put the seed's ring/twin ratio anywhere from 1.2 to 1,923, so a pooled
# ratio means little without its spread. The runs (independent agent draws) and the
# settlement units (markets, or epochs of an epoch rule set) are *crossed*: every run plays
# the same real markets. So the resampling is the pigeonhole bootstrap of Owen (2007, "The
# pigeonhole bootstrap", Ann. Appl. Stat. 1(2)): each replicate draws runs with replacement
# and, independently, units with replacement, and takes the statistic over the cells
# (run, unit) weighted by how often each was drawn. The interval is the percentile interval
# of those replicates (``inverted_cdf``: an order statistic, no interpolation, so ±∞ — a
# ratio whose denominator is ≤ 0 — stays usable). Owen shows the pigeonhole variance is
# mildly conservative (it over-counts the interaction term); tests/test_bootstrap.py measures
# the coverage on a synthetic crossed case with a known answer.

HONEST = frozenset({"skilled", "twin"})
ATTACKS = ("sybil", "copier", "selfvoter", "selective", "whale", "late")
LEVEL = 0.95
REPLICATES = 2000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile interval; None where undefined."""

    point: float | None
    low: float | None
    high: float | None
    level: float = LEVEL
    replicates: int = 0  # replicates where the statistic was defined

    def verdict(self, threshold: float) -> str:
        """Where the interval lies against ``threshold``: "above", "below" or "straddles"."""
        if self.low is None or self.high is None:
            return "undefined"
        if self.low > threshold:
            return "above"
        if self.high < threshold:
            return "below"
        return "straddles"


def cell_matrix(units: Sequence[Mapping[str, Mapping[str, int]]], agents: Sequence[str]
                ) -> np.ndarray:
    """runs × units × agents of net milli-units; a unit missing from a run is all zeros."""
    keys = sorted({k for run in units for k in run})
    col = {a: j for j, a in enumerate(agents)}
    x = np.zeros((len(units), len(keys), len(agents)))
    for r, run in enumerate(units):
        for u, k in enumerate(keys):
            for who, amount in run.get(k, {}).items():
                if who in col:
                    x[r, u, col[who]] += amount
    return x


def bootstrap(x: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
              replicates: int = REPLICATES, level: float = LEVEL, seed: int = 0) -> Interval:
    """Crossed (pigeonhole) percentile bootstrap of ``statistic`` over ``x`` (runs × units ×
    agents). ``statistic`` maps totals per agent, shape (B, agents), to B values (NaN:
    undefined, dropped; undefined in more than 1 − level of them: no interval).
    Deterministic for a seed. One run: only units are resampled; one
    unit and one run: the interval is the point."""
    runs, n_units, n_agents = x.shape
    if runs == 0 or n_units == 0:
        return Interval(None, None, None, level)
    point = float(statistic(x.sum(axis=(0, 1))[None, :])[0])
    point_v: float | None = None if math.isnan(point) else point
    rng = np.random.default_rng(seed)
    w = rng.multinomial(runs, np.full(runs, 1 / runs), size=replicates).astype(float)
    v = rng.multinomial(n_units, np.full(n_units, 1 / n_units), size=replicates).astype(float)
    by_unit = (w @ x.reshape(runs, n_units * n_agents)).reshape(replicates, n_units, n_agents)
    totals = np.einsum("bu,bua->ba", v, by_unit)
    values = np.asarray(statistic(totals), dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < level * replicates:
        # undefined in more replicates than the interval may leave out: no interval (a
        # percentile of the defined ones alone would describe a different population)
        return Interval(point_v, None, None, level, len(values))
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail], method="inverted_cdf")
    return Interval(point_v, float(low), float(high), level, len(values))


def per_sp_ratio(num: Sequence[int], num_sp: int, den: Sequence[int], den_sp: int
                 ) -> Callable[[np.ndarray], np.ndarray]:
    """(Σ totals[num] / num_sp) / (Σ totals[den] / den_sp) per replicate: +∞ when the
    denominator nets ≤ 0 and the numerator > 0 (the attack wins outright), NaN when both
    are ≤ 0 (nobody earned: undefined)."""
    num_i, den_i = list(num), list(den)

    def stat(t: np.ndarray) -> np.ndarray:
        a = t[:, num_i].sum(axis=1) / num_sp
        b = t[:, den_i].sum(axis=1) / den_sp
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(b > 0, a / np.where(b > 0, b, 1), np.where(a > 0, np.inf, np.nan))
        return out

    return stat


def rank_rho(skill: Sequence[float], sp: Sequence[int], idx: Sequence[int]
             ) -> Callable[[np.ndarray], np.ndarray]:
    """Spearman ρ(skill, reward per SP) per replicate (average ranks; NaN if constant)."""
    from scipy.stats import rankdata

    s = rankdata(np.asarray(skill, dtype=float))
    s = s - s.mean()
    per = np.asarray(sp, dtype=float)
    cols = list(idx)

    def stat(t: np.ndarray) -> np.ndarray:
        r = rankdata(t[:, cols] / per, axis=1)
        r = r - r.mean(axis=1, keepdims=True)
        den = np.sqrt((r * r).sum(axis=1) * float(s @ s))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, (r @ s) / np.where(den > 0, den, 1), np.nan)

    return stat


@dataclass(frozen=True)
class Headline:
    """One rule set's headline numbers with their intervals."""

    ring_twin: Interval
    attacks: dict[str, Interval]  # kind → attacker per SP / honest per SP
    rho: Interval  # ρ(skill, reward/SP)


def _seed_of(ev: Evaluation, label: str) -> int:
    """The bootstrap's seed: the evaluation's seed and the rule set's label, so one rule
    set's interval does not move when another is added to the config."""
    return ev.cfg.evaluate.seed * 1_000_003 + zlib.crc32(label.encode())


def headline(ev: Evaluation, r: RunResult, replicates: int = REPLICATES,
             level: float = LEVEL) -> Headline:
    names = [a.name for a in ev.agents]
    x = cell_matrix(r.units, names)
    seed = _seed_of(ev, r.label)

    def group(kinds: frozenset[str] | set[str]) -> tuple[list[int], int]:
        idx = [i for i, a in enumerate(ev.agents) if a.kind in kinds]
        return idx, sum(ev.agents[i].sp for i in idx)

    def ratio(num: tuple[list[int], int], den: tuple[list[int], int]) -> Interval:
        if not num[0] or not den[0] or not num[1] or not den[1]:
            return Interval(None, None, None, level)
        return bootstrap(x, per_sp_ratio(num[0], num[1], den[0], den[1]), replicates, level,
                         seed)

    ring_twin = ratio(group({"sybil"}), group({"twin"}))
    honest = group(HONEST)
    attacks = {k: ratio(group({k}), honest) for k in ATTACKS
               if any(a.kind == k for a in ev.agents)}
    idx = [i for i, a in enumerate(ev.agents) if a.name in ev.skills and a.sp > 0]
    rho = Interval(None, None, None, level)
    if len(idx) >= 3:
        rho = bootstrap(x, rank_rho([ev.skills[names[i]] for i in idx],
                                    [ev.agents[i].sp for i in idx], idx),
                        replicates, level, seed)
    return Headline(ring_twin, attacks, rho)


def fmt_interval(i: Interval, digits: int = 2) -> str:
    """"4.70 [1.93, 30.1]": the point, then the interval (∞ where a replicate's honest side
    netted ≤ 0)."""
    def one(v: float | None) -> str:
        if v is None:
            return "n/a"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.{digits}f}"

    if i.point is None and i.low is None:
        return "n/a"
    if i.low is None:
        return f"{one(i.point)} [n/a]"
    return f"{one(i.point)} [{one(i.low)}, {one(i.high)}]"
