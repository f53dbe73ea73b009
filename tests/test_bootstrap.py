"""Bootstrap intervals of the evaluation's headline ratios (lab/stats.py, issue 15).

Deterministic for a seed, close to the nominal coverage on a crossed runs × markets case
whose answer is known, and defined (or plainly undefined) in the degenerate cases.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import spearmanr

from curation_market.lab.stats import (
    Interval,
    bootstrap,
    cell_matrix,
    fmt_interval,
    headline,
    per_sp_ratio,
    rank_rho,
)

RATIO = per_sp_ratio([0], 1, [1], 1)


def crossed(rng: np.random.Generator, runs: int, units: int, truth: float = 3.0
            ) -> np.ndarray:
    """Ring (agent 0) and twin (agent 1) rewards over runs × markets: a market effect
    shared by every run (the same real posts), a per-run effect per agent, and cell noise.
    E[ring] / E[twin] = ``truth`` (both run effects and the noise have the same mean)."""
    market = rng.lognormal(0, 1.0, units)
    x = np.zeros((runs, units, 2))
    for a, scale in enumerate((truth, 1.0)):
        run = rng.lognormal(0, 0.5, runs)
        x[:, :, a] = scale * market[None, :] * run[:, None] * rng.lognormal(0, 0.7,
                                                                           (runs, units))
    return x


def test_same_seed_same_interval_and_the_point_is_the_pooled_ratio() -> None:
    x = crossed(np.random.default_rng(5), 8, 40)
    a, b = bootstrap(x, RATIO, seed=11), bootstrap(x, RATIO, seed=11)
    assert a == b
    assert bootstrap(x, RATIO, seed=12) != a
    assert a.point == pytest.approx(x[:, :, 0].sum() / x[:, :, 1].sum())
    assert a.low < a.point < a.high and a.replicates == 2000


def test_coverage_is_near_the_nominal_rate() -> None:
    """200 synthetic evaluations (10 runs × 60 markets) with a known ratio of 3: the 95 %
    interval should cover it about 95 % of the time (measured: 0.93 with these seeds; the
    pigeonhole bootstrap is mildly conservative in theory, a ratio estimator a little
    anti-conservative in small samples)."""
    rng = np.random.default_rng(1)
    deadline = time.monotonic() + 60
    hits = n = 0
    while n < 200:
        assert time.monotonic() < deadline, f"coverage loop too slow: {n} of 200 done"
        i = bootstrap(crossed(rng, 10, 60), RATIO, replicates=500, seed=n)
        hits += i.low <= 3.0 <= i.high
        n += 1
    assert 0.88 <= hits / n <= 0.99, hits / n


def test_one_run_resamples_markets_only_and_one_cell_is_the_point() -> None:
    x = crossed(np.random.default_rng(2), 1, 30)
    i = bootstrap(x, RATIO, seed=1)
    assert i.low < i.point < i.high  # markets still vary
    one = bootstrap(x[:, :1, :], RATIO, seed=1)
    assert one.low == one.high == pytest.approx(one.point)
    empty = bootstrap(np.zeros((0, 0, 2)), RATIO)
    assert empty == Interval(None, None, None)
    assert fmt_interval(empty) == "n/a"


def test_twin_at_or_below_zero_gives_an_open_ended_interval() -> None:
    x = np.zeros((2, 3, 2))
    x[:, :, 0] = 5.0  # the ring earns, the twin never does
    i = bootstrap(x, RATIO, seed=3)
    assert i.point == math.inf and i.low == i.high == math.inf
    assert fmt_interval(i) == "∞ [∞, ∞]"
    nobody = bootstrap(np.zeros((2, 3, 2)), RATIO, seed=3)  # 0/0 everywhere: undefined
    assert nobody.point is None and nobody.low is None and nobody.replicates == 0
    ring_loses = np.zeros((4, 10, 2))
    ring_loses[:, :, 0], ring_loses[0, 0, 0], ring_loses[0, 0, 1] = -1.0, 30.0, -1.0
    mostly = bootstrap(ring_loses, RATIO, seed=3)  # both ≤ 0 in most replicates: undefined
    assert mostly.point is None and mostly.low is None and 0 < mostly.replicates < 1900
    assert fmt_interval(mostly) == "n/a"
    x[0, 0, 1] = 1.0  # the twin earns in one cell only: some replicates miss it → ∞
    mixed = bootstrap(x, RATIO, seed=3)
    assert math.isfinite(mixed.point) and mixed.high == math.inf
    assert mixed.verdict(1.0) == "above"


def test_rank_rho_point_is_spearman() -> None:
    skill = [-0.1, -0.3, -0.9, -2.0, -0.5]
    sp = [15, 15, 15, 200, 30]
    rewards = np.array([[40.0, 10.0, 2.0, 5.0, 3.0]])
    got = rank_rho(skill, sp, range(5))(rewards)[0]
    want = spearmanr(skill, rewards[0] / np.array(sp)).statistic
    assert got == pytest.approx(want)
    assert math.isnan(rank_rho(skill, sp, range(5))(np.zeros((1, 5)))[0])


def test_headline_of_a_small_evaluation() -> None:
    """Headline over plain run results: per-unit rows, the honest side pooled."""
    agents = [SimpleNamespace(name=n, kind=k, sp=sp) for n, k, sp in [
        ("s0", "skilled", 10), ("t", "twin", 30), ("r0", "sybil", 10), ("r1", "sybil", 20),
        ("sel", "selective", 10)]]
    units = [{"@a/1": {"s0": 10, "t": 3, "r0": 4, "r1": 8}, "@a/2": {"s0": 6, "t": 3},
              "@a/3": {"sel": -100}},
             {"@a/1": {"s0": 8, "t": 6, "r0": 1}, "@a/2": {}, "@a/3": {"r1": 2}}]
    ev = SimpleNamespace(agents=agents, skills={"s0": -0.1, "t": -0.5, "r0": -0.5,
                                                "r1": -0.5, "sel": -2.0},
                         cfg=SimpleNamespace(evaluate=SimpleNamespace(seed=17)))
    r = SimpleNamespace(label="seed", units=units)
    h = headline(ev, r, replicates=300)
    assert h.ring_twin.point == pytest.approx((15 / 30) / (12 / 30))
    honest = (24 + 12) / 40
    assert h.attacks["sybil"].point == pytest.approx((15 / 30) / honest)
    assert h.attacks["selective"].point == pytest.approx((-100 / 10) / honest)
    assert set(h.attacks) == {"sybil", "selective"}
    assert headline(ev, r, replicates=300) == h  # deterministic
    x = cell_matrix(units, [a.name for a in agents])
    assert x.shape == (2, 3, 5) and x.sum() == 24 + 12 + 15 - 100 + 0
