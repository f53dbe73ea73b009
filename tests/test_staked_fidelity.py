"""The staked rule sets against their outside references (issue 15).

- ``yuma`` with ``miners = "author"`` follows subtensor's original Yuma
  (opentensor/subtensor ``pallets/subtensor/src/epoch/run_epoch.rs``): bonds of every holder
  are renormalised per column and absent holders are paid their dividend;
- ``mmc`` with a constant consensus returns the plain covariance where numerai-tools
  (``numerai_tools/scoring.py`` ``correlation_contribution``) returns NaN — pinned here;
- an unrevealed commitment forfeits its stake under every staked rule set (``unrevealed =
  "burn"``, the default), or costs nothing (``"free"``, the rule before).
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import mmc, yuma
from rewards.outcome import WEEK, Forecast, Outcome, Withheld, withheld_stake
from rewards.split import split
from rewards.staked import STAKED_RULES, settle_staked

# --- yuma: the three-week example, milli-unit exact -------------------------------

def _week(week: int, names: list[str], author: str = "x", pool: int = 1_000) -> Outcome:
    fc = tuple(Forecast(n, 10_000, 0, 0, 1_000, None) for n in names)
    return Outcome(author, f"p{week}", 0, WEEK * week + 10, 10_000, pool, fc)


def test_yuma_absent_holder_keeps_and_is_paid_its_bond() -> None:
    """Author x; curators A and B in week 1, A alone in week 2, both in week 3. Subtensor:
    week 2 bonds 0.1·1 + 0.9·0.5 = 0.55 (A) and 0.9·0.5 = 0.45 (B, inactive but bonded),
    renormalised over both holders → 550/450; week 3: 0.1·0.5 + 0.9·0.55 = 0.545 → 545/455.
    (Before the fix: A 1000 in week 2, then 676/324.)"""
    s = settle_staked("yuma", [_week(1, ["A", "B"]), _week(2, ["A"]), _week(3, ["A", "B"])],
                      miners="author")
    by_week = {(a.epoch // WEEK, a.predictor): a.amount for a in s.awards}
    assert by_week == {(1, "A"): 500, (1, "B"): 500, (2, "A"): 550, (2, "B"): 450,
                       (3, "A"): 545, (3, "B"): 455}
    assert s.paid == 3_000 and s.returned == 0 and s.burned == 0
    for r in s.rounds:
        assert r.paid + r.returned == r.pool == 1_000
    assert dict(s.rounds[1].info)["holders"] == 2 and dict(s.rounds[1].info)["curators"] == 1


def test_yuma_author_nobody_forecast_keeps_its_bonds() -> None:
    """Week 2 has only author y: x's column is unweighted, so subtensor's EMA then column
    renormalisation leave it as it was. Week 3 back on x: 0.1·ΔB + 0.9·(bonds of week 1)."""
    outs = [_week(1, ["A", "B"]), _week(2, ["A"], author="y"), _week(3, ["A"])]
    s = settle_staked("yuma", outs, miners="author")
    week3 = {a.predictor: a.amount for a in s.awards if a.epoch == 3 * WEEK}
    assert week3 == {"A": 550, "B": 450}  # A: 0.1 + 0.45, B: 0.45 — not decayed twice


def _reference_yuma(outs: list[Outcome], alpha: float = 0.1, kappa: float = 0.5
                    ) -> list[dict[str, int]]:
    """Subtensor's original Yuma over the full matrix of every curator and author ever seen
    (dense, as ``epoch_dense_mechanism`` does): weights are the epoch's forecasts (an absent
    curator's row is zero and its stake masked), bonds column-normalised, ΔB = W̄◦S, EMA,
    column-normalised, dividends = Bᵀ·incentive."""
    from rewards.outcome import by_epoch

    names = sorted({f.predictor for o in outs for f in o.forecasts})
    authors = sorted({o.author for o in outs})
    bonds = np.zeros((len(names), len(authors)))
    out = []
    for _, posts in by_epoch(outs, WEEK):
        w = np.zeros_like(bonds)
        stake = np.zeros(len(names))
        for o in posts:
            for f in o.forecasts:
                i, j = names.index(f.predictor), authors.index(o.author)
                w[i, j] += f.prediction
                stake[i] += f.stake or 0
        rows = w.sum(axis=1, keepdims=True)
        w = np.divide(w, rows, out=np.zeros_like(w), where=rows > 0)
        s = stake / stake.sum()
        cons = np.array([yuma.weighted_median(s, w[:, j], kappa) for j in range(w.shape[1])])
        clipped = np.minimum(w, cons[None, :])
        inc = s @ clipped
        inc = inc / inc.sum() if inc.sum() > 0 else inc
        delta = s[:, None] * clipped
        cs = delta.sum(axis=0, keepdims=True)
        delta = np.divide(delta, cs, out=np.zeros_like(delta), where=cs > 0)
        ema = alpha * delta + (1 - alpha) * bonds
        cs = ema.sum(axis=0, keepdims=True)
        bonds = np.divide(ema, cs, out=np.zeros_like(ema), where=cs > 0)
        d = bonds @ inc
        d = d / d.sum() if d.sum() > 0 else d
        pool = sum(o.pool for o in posts)
        rewards, _ = split(pool, [float(x) for x in d])
        out.append({n: r for n, r in zip(names, rewards, strict=True) if r > 0})
    return out


@pytest.mark.parametrize("seed", range(6))
def test_yuma_by_author_matches_a_dense_subtensor_reference(seed: int) -> None:
    rnd = random.Random(seed)
    curators, authors = ["ann", "ben", "cat", "dan", "eve"], ["x", "y", "z"]
    outs = []
    for week in range(1, 7):
        for k in range(rnd.randint(1, 3)):
            who = rnd.sample(curators, rnd.randint(1, 4))
            fc = tuple(Forecast(n, rnd.randint(1, 50) * 1_000, 0, 0, rnd.randint(1, 9) * 1_000)
                       for n in who)
            outs.append(Outcome(rnd.choice(authors), f"p{week}-{k}", 0, WEEK * week + k,
                                10_000, rnd.randint(1, 5) * 1_000, fc))
    s = settle_staked("yuma", outs, miners="author")
    got: dict[int, dict[str, int]] = {}
    for a in s.awards:
        got.setdefault(a.epoch, {})[a.predictor] = a.amount
    want = _reference_yuma(outs)
    assert len(want) == len(got)
    for (_, mine), ref in zip(sorted(got.items()), want, strict=True):
        assert mine.keys() == ref.keys()
        # same dividends up to float rounding: a largest-remainder tie may move 1 milli
        assert all(abs(mine[n] - ref[n]) <= 1 for n in ref)
        assert sum(mine.values()) == sum(ref.values())


# --- mmc: constant consensus --------------------------------------------------------------

def _numerai_tools_mmc(p: list[float], m: list[float], y: list[float]) -> float:
    """numerai-tools' arithmetic as written (scoring.py: tie_kept_rank → gaussian →
    orthogonalize(v, u) = v − u·(vᵀu)/(uᵀu) → centred target · neutral / n)."""
    gp, gm = mmc.gaussianize(p), mmc.gaussianize(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        neutral = gp - np.outer(gm, (gp @ gm) / (gm @ gm)).ravel()
    t = np.asarray(y, dtype=float)
    if ((t >= 0) & (t <= 1)).all():  # "convert target to buckets [-2, -1, 0, 1, 2]"
        t = t * 4
    t = t - t.mean()
    return float(t @ neutral / len(t))


def test_mmc_constant_consensus_pays_the_plain_covariance() -> None:
    preds, target = [0.1, 0.4, 0.35, 0.8, 0.6], [0.0, 0.25, 0.5, 1.0, 0.75]
    flat = [0.5] * 5
    assert math.isnan(_numerai_tools_mmc(preds, flat, target))  # the reference: NaN
    # ours: nothing to neutralise against, so the covariance of the gaussianised predictions
    # with the centred target (target in [0, 1] → ×4, numerai-tools' buckets)
    t = np.asarray(target) * 4
    want = float((t - t.mean()) @ mmc.gaussianize(preds) / 5)
    assert mmc.mmc(preds, flat, target) == pytest.approx(want, abs=1e-12)
    # by hand: ranks 1,3,2,5,4 → Φ⁻¹(.1,.5,.3,.9,.7) = −1.28155, 0, −0.52440, 1.28155,
    # 0.52440; centred target −2,−1,0,2,1 → (2.56310 + 2.56310 + 0.52440)/5
    assert want == pytest.approx(1.130121, abs=1e-6)
    # a non-constant consensus agrees with numerai-tools' arithmetic
    cons = [0.2, 0.3, 0.5, 0.7, 0.9]
    assert mmc.mmc(preds, cons, target) == pytest.approx(_numerai_tools_mmc(preds, cons,
                                                                             target))
    # one prediction: p = Φ⁻¹(½) = 0, so the covariance is 0 (numerai-tools: NaN)
    assert mmc.mmc([3.0], [1.0], [2.0]) == 0.0
    assert math.isnan(_numerai_tools_mmc([3.0], [1.0], [2.0]))


def test_mmc_settle_with_a_constant_consensus_pays_the_covariance_return() -> None:
    """Two forecasters with equal stakes mirror each other in log space (1/3/7 against
    7/3/1 units: ln 2 + ln 8 = ln 4 + ln 4), so the stake-weighted consensus is ln 4 on every
    post — flat. numerai-tools would score both NaN (neither paid nor burned); here the one
    whose ranking matches the outcomes earns its covariance return, the other burns it."""
    def o(k: int, final: int, a_units: int, b_units: int) -> Outcome:
        fc = (Forecast("a", a_units * 1_000, 0, 0, 4_000), Forecast("b", b_units * 1_000, 0, 0,
                                                                     4_000))
        return Outcome("bob", f"p{k}", 0, WEEK + k, final, 10_000, fc)

    outs = [o(1, 2_000, 1, 7), o(2, 3_000, 3, 3), o(3, 9_000, 7, 1)]
    s = settle_staked("mmc", outs, cap=1.0)
    t = np.log1p([2.0, 3.0, 9.0])
    score = float((t - t.mean()) @ mmc.gaussianize([1, 3, 7]) / 3)
    # by hand: Φ⁻¹(5/6) · (ln 10 − ln 3)/3 = 0.967422 · 0.401324
    assert score == pytest.approx(0.388250, abs=1e-6)
    assert s.totals() == {"a": math.floor(12_000 * score), "b": -math.floor(12_000 * score)}
    assert s.paid + s.returned == s.pools == 30_000


# --- unrevealed commitments forfeit their stake ------------------------------------------

def _market(k: int, forecasts: tuple[Forecast, ...], withheld: tuple[Withheld, ...],
            final: int = 10_000, pool: int = 2_500) -> Outcome:
    return Outcome("bob", f"p{k}", WEEK + k * 3600, WEEK + k * 3600 + 600, final, pool,
                   forecasts, withheld)


@pytest.mark.parametrize("name", sorted(STAKED_RULES))
def test_unrevealed_commitment_burns_its_default_stake(name: str) -> None:
    honest = tuple(Forecast(n, 9_500, 0, 5_000, 100, 0.6) for n in ("h1", "h2", "h3"))
    outs = [_market(k, honest, (Withheld("sel", 0, 7_000),)) for k in range(4)]
    burn = settle_staked(name, outs)
    free = settle_staked(name, outs, unrevealed="free")
    # "free": the withheld commitments cost nothing, nothing else moves
    assert "sel" not in free.totals()
    # "burn": each forfeits the stake of a forecast naming none — its SP at commit — burned,
    # not paid to anyone: pools, payments and the others' awards are untouched
    assert burn.totals()["sel"] == -4 * 7_000
    assert burn.burned == free.burned + 4 * 7_000
    assert (burn.paid, burn.returned, burn.pools) == (free.paid, free.returned, free.pools)
    assert {k: v for k, v in burn.totals().items() if k != "sel"} == free.totals()
    # a configured default stake is what forfeits instead of SP
    fixed = settle_staked(name, outs, default_stake=1_234)
    assert fixed.totals()["sel"] == -4 * 1_234
    # epoch rule sets book the burn on the epoch, per-post ones on the post
    lost = [a for a in burn.awards if a.predictor == "sel"]
    if STAKED_RULES[name].per == "epoch":
        assert all(a.epoch == WEEK for a in lost)
    else:
        assert [a.permlink for a in lost] == ["p0", "p1", "p2", "p3"]


def test_unrevealed_policy_is_validated_and_defaults_to_burn() -> None:
    for rule in STAKED_RULES.values():
        assert rule.params.unrevealed == "burn"
        with pytest.raises(ValueError, match="unrevealed"):
            dataclasses.replace(rule.params, unrevealed="later")
    w = Withheld("x", 0, 0)
    assert withheld_stake(w, None) == 0  # unknown SP forfeits nothing unless configured
    assert withheld_stake(w, 500) == 500


def test_config_selects_the_unrevealed_policy(tmp_path: Path) -> None:
    from curation_market.config import ConfigError, load_settings

    good = tmp_path / "good.toml"
    good.write_text('[rules]\nname = "numerai-2019"\nunrevealed = "free"\n')
    name, params = load_settings(good).staked_rules()
    assert name == "numerai-2019" and params.unrevealed == "free"
    good.write_text('[rules]\nname = "yuma"\n')
    assert load_settings(good).staked_rules()[1].unrevealed == "burn"  # the default
    bad = tmp_path / "bad.toml"
    bad.write_text('[rules]\nname = "mmc"\nunrevealed = "sometimes"\n')
    with pytest.raises(ConfigError, match="unrevealed"):
        load_settings(bad)


names = st.sampled_from(["ann", "ben", "cat", "dan"])
forecast = st.builds(Forecast, names, st.integers(0, 500_000), st.just(0),
                     st.integers(0, 50_000), st.one_of(st.none(), st.integers(0, 300_000)),
                     st.one_of(st.none(), st.integers(0, 1000).map(lambda m: m / 1000)))
withheld = st.builds(Withheld, names, st.just(0), st.integers(0, 50_000))
market = st.builds(
    lambda k, t, final, fc, wh: Outcome("bob", f"p{k}", t - 3600, t, final, final // 4,
                                        tuple(fc), tuple(wh)),
    st.integers(0, 10_000), st.integers(1_500_000_000, 1_500_000_000 + 4 * WEEK),
    st.integers(0, 400_000), st.lists(forecast, max_size=5), st.lists(withheld, max_size=3))


@settings(max_examples=40, deadline=None)
@given(st.lists(market, max_size=10), st.sampled_from(sorted(STAKED_RULES)),
       st.one_of(st.none(), st.integers(0, 9_000)))
def test_forfeits_keep_every_pool_exact(outs: list[Outcome], name: str,
                                        default_stake: int | None) -> None:
    burn = settle_staked(name, outs, default_stake=default_stake)
    free = settle_staked(name, outs, default_stake=default_stake, unrevealed="free")
    lost = sum(withheld_stake(w, default_stake) for o in outs for w in o.unrevealed)
    assert burn.paid + burn.returned == burn.pools == free.pools
    assert (burn.paid, burn.returned) == (free.paid, free.returned)
    assert burn.burned == free.burned + lost
    assert all(isinstance(a.amount, int) and a.amount != 0 for a in burn.awards)
