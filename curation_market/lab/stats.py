"""The numbers the report shows: rank correlations, concentration, shares and ratios.

Kept apart from the runner and the renderer so that a figure means the same thing in the
Markdown, the HTML and the plots: each is computed here once, from the plain results.
Money stays integer milli-units until a ratio is taken.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

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

