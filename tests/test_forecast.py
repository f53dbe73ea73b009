"""The forecast rule (rewards/forecast.py): an SP-weighted median of the revealed predictions,
in integer milli-units, and the quality figures (Spearman, median errors).

Spearman is checked against scipy's (an independent implementation); the median's cases
are written out by hand from the rule in the module docstring.
"""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from rewards.band import in_band
from rewards.forecast import forecast, median_int, quality, ranks, spearman, weighted_median


@pytest.mark.parametrize(("pairs", "expected"), [
    ([(5000, 1)], 5000),
    ([(1000, 1), (2000, 1), (3000, 1)], 2000),
    ([(1000, 1), (2000, 1)], 1500),  # exactly half: midpoint
    ([(1000, 1), (2001, 1)], 1500),  # midpoint rounded down to the milli-unit
    ([(1000, 3), (2000, 1), (9000, 1)], 1000),  # 3 of 5 at 1000
    ([(1000, 1), (2000, 1), (9000, 3)], 9000),  # the weight sits at 9000
    ([(9000, 1), (1000, 1), (2000, 2)], 2000),  # order does not matter
    ([(1000, 2), (1000, 2), (3000, 4)], 2000),  # equal values add up, then exactly half
    ([(1000, 0), (2000, 0), (3000, 0)], 2000),  # no SP known: the plain median
    ([(1000, 5), (2000, 0), (3000, 5)], 2000),  # half at 1000: midpoint with the next value
    ([(1000, 5), (3000, 5), (2000, 0)], 2000),  # ... a zero-weight value still counts as one
    ([(0, 1), (0, 1)], 0),
])
def test_weighted_median_cases(pairs: list[tuple[int, int]], expected: int) -> None:
    assert weighted_median(pairs) == expected


def test_forecast_reports_count_and_sp() -> None:
    fc = forecast([(12000, 40_000_000), (15000, 2_500_000), (11000, 0)])
    assert (fc.value, fc.predictions, fc.sp) == (12000, 3, 42_500_000)
    assert forecast([]) is None
    with pytest.raises(ValueError):
        weighted_median([(1, -1)])


pairs_st = st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 10**12)), min_size=1,
                    max_size=30)


@settings(max_examples=300, deadline=None)
@given(pairs_st, st.randoms(use_true_random=False), st.integers(1, 1000))
def test_median_properties(pairs, rnd, k) -> None:
    m = weighted_median(pairs)
    values = [v for v, _ in pairs]
    assert min(values) <= m <= max(values)
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    assert weighted_median(shuffled) == m  # order-free
    assert weighted_median([(v, w * k) for v, w in pairs]) == m  # scale-free
    total = sum(w for _, w in pairs) or len(pairs)
    weights = [w for _, w in pairs] if sum(w for _, w in pairs) else [1] * len(pairs)
    below = sum(w for (v, _), w in zip(pairs, weights, strict=True) if v < m)
    above = sum(w for (v, _), w in zip(pairs, weights, strict=True) if v > m)
    assert 2 * below <= total and 2 * above <= total  # the defining property of a median


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=25))
def test_equal_weights_give_the_ordinary_median(values) -> None:
    assert weighted_median([(v, 7) for v in values]) == int(statistics.median(values) // 1)
    assert median_int(values) == int(statistics.median(values) // 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=2, max_size=30))
def test_spearman_matches_scipy(xy) -> None:
    xs, ys = [x for x, _ in xy], [y for _, y in xy]
    ours = spearman(xs, ys)
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        assert ours is None
        return
    assert ours == pytest.approx(float(spearmanr(xs, ys).statistic), abs=1e-9)


def test_ranks_average_ties() -> None:
    assert ranks([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]


def test_quality_figures() -> None:
    pairs = [(9000, 10000), (20000, 18000), (0, 0), (5000, 4000), (100, 1000)]
    q = quality(pairs)
    assert q.markets == 5 and q.zero_payout == 1
    assert q.median_abs_error == 1000  # errors 1000, 2000, 0, 1000, 900
    assert q.median_rel_error == pytest.approx((1 / 9 + 0.25) / 2)  # .1, .111, .25, .9
    assert q.within_band == sum(1 for f, p in pairs if in_band(f, p)) == 2  # 9000/10000, 0/0
    assert q.spearman == pytest.approx(float(spearmanr([f for f, _ in pairs],
                                                       [p for _, p in pairs]).statistic))
    empty = quality([])
    assert (empty.markets, empty.spearman, empty.median_abs_error) == (0, None, None)
