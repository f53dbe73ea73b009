"""Every worked number of the spec (mechanism.md §2, §3, §6)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from curation.commitment import commitment
from rewards.rules import Rules, named
from rewards.settle import Entry, closeness, earlier_closest, pool_for, reputation, settle
from rewards.split import split
from rewards.underdog import curve

# the share of F paid to curators on Steem before HF21, the era the spec's numbers are from
QUARTER = Fraction(1, 4)


def test_commitment_test_vector() -> None:
    got = commitment("0" * 64, "heimindanger", "dtube-0-3", "alice", 95000, bytes(range(32)))
    assert got == "f6fd7b2a961b547177d7e345123bd044a48571de689616e4360dbf7e8fddfcdd"


def test_commitment_binds_every_field() -> None:
    base = ("0" * 64, "heimindanger", "dtube-0-3", "alice", 95000, bytes(range(32)))
    ref = commitment(*base)
    for i, other in enumerate(("1" * 64, "heimindangeR", "dtube-0-4", "bob", 95001,
                               bytes(range(1, 33)))):
        changed = list(base)
        changed[i] = other
        assert commitment(*changed) != ref


@pytest.mark.parametrize(("hits", "n", "rp"), [(1, 2, 0.125), (5, 10, 0.125), (9, 10, 0.729)])
def test_reputation_penalty(hits: int, n: int, rp: float) -> None:
    # N counts this prediction; R counts it as a hit: prior = (n - 1, hits - 1)
    got_n, got_r, got_rp = reputation(np.array([n - 1]), np.array([hits - 1]))
    assert (got_n[0], got_r[0]) == (n, hits)
    assert got_rp[0] == pytest.approx(rp)


@pytest.mark.parametrize(("p", "cp"), [(92, 0.937839), (99, 0.917562)])
def test_closeness_as_written(p: int, cp: float) -> None:
    _, got = closeness(np.array([p], float), np.array([95.0]), np.array([True]), "as_written")
    assert got[0] == pytest.approx(cp, abs=1e-6)


def test_closeness_options_on_a_copy_and_on_ninety_percent() -> None:
    copy = np.array([95.0]), np.array([95.0]), np.array([True])
    assert closeness(*copy, "prose")[1][0] == 0.0  # "a copy earns 0"
    assert closeness(*copy, "as_written")[1][0] == 1.0  # the formula as printed: full weight
    assert closeness(*copy, "inverse")[1][0] == 0.0
    assert closeness(*copy, "off")[1][0] == 1.0
    ninety = np.array([90.0]), np.array([100.0]), np.array([True])  # 10 % away
    assert closeness(*ninety, "prose")[1][0] == pytest.approx(0.01)  # "90 % the same: 1 %"
    none_before = np.array([90.0]), np.array([0.0]), np.array([False])
    assert closeness(*none_before, "prose")[1][0] == 1.0


def test_closeness_zero_earlier_prediction() -> None:
    d, _ = closeness(np.array([0.0, 5.0]), np.array([0.0, 0.0]), np.array([True, True]), "prose")
    assert list(d) == [0.0, 1.0]


def test_split_worked_example() -> None:
    rewards, returned = split(50000, [1000, 468.9197, 57.3476])
    assert rewards == [32760, 15361, 1879]
    assert returned == 0


def test_split_no_winner_returns_pool() -> None:
    assert split(777, [0.0, 0.0]) == ([0, 0], 777)
    assert split(777, []) == ([], 777)


def test_split_ties_go_to_commit_order() -> None:
    assert split(2, [1.0, 1.0, 1.0]) == ([1, 1, 0], 0)


@pytest.mark.parametrize(("x", "f"), [(0.8, 0.0), (0.9, 0.125), (1.0, 0.25), (1.2, 0.5),
                                      (2.0, 0.5)])
def test_underdog_curve(x: float, f: float) -> None:
    assert float(curve(x, Fraction(1, 5))) == pytest.approx(f, abs=1e-12)


def test_underdog_curve_at_one_is_exact_so_the_pool_is_not_a_milli_short() -> None:
    assert curve(1.0, Fraction(1, 5)) == Fraction(1, 4)
    rules = Rules(underdog="curve")
    assert pool_for(4000, rules, curve(1.0, rules.underdog_c)) == (1000, 1000)


def test_band_is_an_integer_test() -> None:
    entries = [Entry(p, 0, 0, 1000, 0) for p in (8999, 9000, 10000, 10001)]
    result = settle(entries, 10000, 0, Rules(closeness="off"), chain_fraction=QUARTER)
    assert [f.qualified for f in result.factors] == [False, True, True, False]


def test_pool_is_a_quarter_floored() -> None:
    assert pool_for(10003, Rules(), None, QUARTER) == (2500, 0)
    assert pool_for(10003, Rules(curation_fraction=Fraction(1, 2)), None) == (5001, 0)


def test_earlier_closest_prefers_the_earliest_on_ties() -> None:
    # 110 committed before 90; for 100 both are 10 away → the earlier (110)
    assert earlier_closest([110, 90, 100]) == [None, 110, 110]
    assert earlier_closest([90, 110, 100]) == [None, 90, 90]
    assert earlier_closest([None, 50, None, 50]) == [None, None, None, 50]


def test_settle_full_market_by_hand() -> None:
    """Three revealed predictions and a miss, F = 100.000, prose closeness."""
    entries = [
        Entry(95000, 0, 0, 2000, 0),  # first: CP 1
        Entry(None, 4, 4, 9000, 0),  # never revealed
        Entry(99000, 1, 0, 1000, 0),  # EP 95000, d = 4/95, RP (1/2)^3
        Entry(80000, 0, 0, 5000, 0),  # outside the band
    ]
    result = settle(entries, 100000, 0, named("seed"), chain_fraction=QUARTER)
    w1 = 2000.0
    w3 = 0.125 * 1000 * (4000 / 95000) ** 2
    assert result.pool == 25000
    assert [f.weight for f in result.factors] == pytest.approx([w1, 0, w3, 0])
    # 25000·w/Σw = 24997.23… and 2.77…: floors 24997 + 2, the leftover milli to the .77
    assert [f.reward for f in result.factors] == [24997, 0, 3, 0]
    assert result.returned == 0


def test_information_added_commit_reveal_rule_set() -> None:
    entries = [Entry(95000, 0, 0, 1000, 0), Entry(96000, 0, 0, 1000, 750)]
    result = settle(entries, 100000, 1000, named("commit-reveal"), chain_fraction=QUARTER)
    assert [f.ia for f in result.factors] == [1.0, 0.25]
    assert [f.cp for f in result.factors] == [1.0, 1.0]
    assert [f.reward for f in result.factors] == [20000, 5000]
